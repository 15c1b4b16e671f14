"""``hwsim serve``: a request stream on an engine's scheduler, with latency percentiles,
throughput, SLO attainment, cost and energy."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim.options import PathType, StrictCommand, moe_options, output_file
from hwsim.output import LazyBar, emit, fmt
from workloads.errors import ConfigError

TEXT_KEYS = (
    "ttft_s_mean",
    "ttft_s_p50",
    "ttft_s_p99",
    "tpot_s_mean",
    "tpot_s_p50",
    "tpot_s_p99",
    "e2e_s_mean",
    "e2e_s_p99",
    "requests_per_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "completed",
    "preempted",
    "kv_capacity_tokens",
    "slo_attainment",
    "usd_per_million_tokens",
    "j_per_token",
    "capacity_requests_per_s",
    "sim_wall_s",
)


def _range_text(d: dict, key: str) -> str:
    """``  (10-90%: low-high)`` after a metric that carries a range, else nothing."""
    low, high = d.get(f"{key}_low"), d.get(f"{key}_high")
    return "" if low is None or high is None else f"  (10-90%: {fmt(low)}-{fmt(high)})"


@click.command(cls=StrictCommand)
@click.option("--model", "-m", required=True, help="Preset name or path to a config.json.")
@click.option("--device", "-d", required=True, help="Catalog device name.")
@click.option("--n-devices", type=int, default=None, help="Devices in all (default tp*pp*ep*dp).")
@click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel degree of a replica.")
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel degree of a replica.")
@click.option("--ep", type=int, default=1, show_default=True, help="Expert-parallel degree of a replica.")
@click.option("--dp", type=int, default=None, help="Replicas behind the router (data parallel).")
@click.option("--precision", "-p", default="fp16", show_default=True, help="As for estimate.")
@click.option(
    "--framework",
    default="vllm",
    show_default=True,
    help="vllm, vllm-sync, vllm-v0, tensorrt-llm, sglang, ...",
)
@click.option("--concurrency", type=int, default=None, help="Closed loop: requests kept in flight.")
@click.option("--rate", type=float, default=None, help="Open loop: requests per second.")
@click.option("--arrival", type=click.Choice(["poisson", "gamma"]), default="poisson", show_default=True)
@click.option(
    "--cv",
    type=float,
    default=1.0,
    show_default=True,
    help="Coefficient of variation of gamma gaps (0.001 to 1000).",
)
@click.option("--input-len", type=int, default=None, help="Prompt tokens (fixed).")
@click.option("--output-len", type=int, default=None, help="Output tokens (fixed).")
@click.option(
    "--length-spread",
    type=float,
    default=None,
    help="Draw each length uniformly within this share of --input-len/--output-len (a benchmark "
    "client's random range: SGLang's --random-range-ratio R is (1 - R) / (1 + R) about its mean, "
    "vLLM's is R); from 0 to 1.",
)
@click.option(
    "--lengths", default=None, help="sharegpt, openorca, cnn-dailymail, arxiv-summarization or FILE.csv."
)
@click.option("--trace", "trace_csv", default=None, help="Replay a CSV of arrival_s, input_len, output_len.")
@click.option("--num-requests", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-batch", type=int, default=None, help="The engine's max_num_seqs (default: engine's).")
@click.option(
    "--max-batched-tokens", type=int, default=None, help="Token budget per step (default: engine's)."
)
@click.option(
    "--max-model-len",
    type=int,
    default=None,
    help="The engine's --max-model-len, which sets vLLM V0's token budget (default: the model's context).",
)
@click.option(
    "--chunked-prefill/--no-chunked-prefill",
    default=None,
    help="vLLM V0's --enable-chunked-prefill (default: V0's own choice, on above a max_model_len of 32,768).",
)
@click.option(
    "--kv-fraction",
    type=float,
    default=None,
    help="The run's memory share for weights and KV cache in its engine's rule: vLLM's "
    "--gpu-memory-utilization, SGLang's --mem-fraction-static, TensorRT-LLM's free_gpu_memory_fraction "
    "(default: the engine's).",
)
@click.option("--preemption", type=click.Choice(["recompute", "swap"]), default=None)
@click.option(
    "--scheduler-steps",
    type=click.IntRange(min=1),
    default=None,
    help="vLLM V0's --num-scheduler-steps: decode steps per scheduling pass; without chunked prefill, "
    "new prompts join only between them (default 1).",
)
@click.option("--mode", type=click.Choice(["agg", "disagg"]), default="agg", show_default=True)
@click.option("--prefill-workers", type=int, default=1, show_default=True)
@click.option("--prefill-tp", type=int, default=1, show_default=True)
@click.option("--decode-workers", type=int, default=1, show_default=True)
@click.option("--decode-tp", type=int, default=1, show_default=True)
@click.option("--prefill-ep", type=int, default=1, show_default=True, help="Expert-parallel degree (disagg).")
@click.option("--decode-ep", type=int, default=1, show_default=True, help="Expert-parallel degree (disagg).")
@moe_options
@click.option("--kv-link-gbps", type=float, default=None, help="GB/s per GPU between the pools (disagg).")
@click.option(
    "--router", type=click.Choice(["least-outstanding", "round-robin"]), default="least-outstanding"
)
@click.option("--slo-ttft", type=float, default=None, help="TTFT limit, seconds.")
@click.option("--slo-tpot", type=float, default=None, help="TPOT limit, seconds.")
@click.option(
    "--price-basis",
    type=click.Choice(["tco", "cloud"]),
    default="tco",
    show_default=True,
    help="tco: purchase over the lifetime + energy; cloud: on-demand $/h.",
)
@click.option("--find-capacity", is_flag=True, help="Also find the highest Poisson rate meeting the SLOs.")
@click.option(
    "--timeline",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    callback=output_file,
    help="Write batch size and KV occupancy over time (.png and .svg).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one flat JSON object.")
def serve(**o):
    """Serve a request stream: continuous batching, KV capacity, preemption, disaggregation.

    Checks as estimate's: FP8 or FP4 without those tensor cores and requests beyond the model's
    context are refused; a tp x ep group beyond the device's NVLink domain is warned of."""
    from hwsim.checks import precision_for, warn_scale_out
    from roofline.economics import Economics
    from roofline.estimate import compute_device
    from sim.serving.capacity import find_capacity
    from sim.serving.serve import serve as run
    from workloads.model_spec import check_lengths, load_model
    from workloads.traces import make_trace, read_trace_csv

    if o["slo_ttft"] is not None and not o["slo_ttft"] > 0:
        raise ConfigError(f"slo-ttft is {o['slo_ttft']!r}; expected a positive number of seconds")
    if o["slo_tpot"] is not None and not o["slo_tpot"] > 0:
        raise ConfigError(f"slo-tpot is {o['slo_tpot']!r}; expected a positive number of seconds")
    trace_args = dict(
        n_requests=o["num_requests"],
        seed=o["seed"],
        input_len=o["input_len"],
        output_len=o["output_len"],
        lengths=o["lengths"],
        length_spread=o["length_spread"],
    )
    if o["rate"] is not None and not o["rate"] > 0:
        raise ConfigError(f"rate is {o['rate']!r}; expected a positive number of requests per second")
    if o["trace_csv"]:
        given = [
            f"--{k.replace('_', '-')}"
            for k in ("rate", "concurrency", "input_len", "output_len", "lengths", "length_spread")
            if o[k] is not None
        ]
        if given:
            raise ConfigError(
                f"--trace replays its own arrivals and lengths; drop {', '.join(given)} or the trace"
            )
        trace = read_trace_csv(o["trace_csv"])
    else:
        trace = make_trace(
            rate=o["rate"], concurrency=o["concurrency"], arrival=o["arrival"], cv=o["cv"], **trace_args
        )
    spec, dev = load_model(o["model"]), compute_device(o["device"])
    check_lengths(spec, trace.input_len, trace.output_len)
    config = dict(
        tp=o["tp"],
        pp=o["pp"],
        ep=o["ep"],
        dp=o["dp"],
        n_devices=o["n_devices"],
        precision=precision_for(o["precision"], dev),
        framework=o["framework"],
        max_batch=o["max_batch"],
        max_batched_tokens=o["max_batched_tokens"],
        max_model_len=o["max_model_len"],
        chunked_prefill=o["chunked_prefill"],
        kv_fraction=o["kv_fraction"],
        preemption=o["preemption"],
        scheduler_steps=o["scheduler_steps"],
        mode=o["mode"],
        prefill_workers=o["prefill_workers"],
        prefill_tp=o["prefill_tp"],
        decode_workers=o["decode_workers"],
        decode_tp=o["decode_tp"],
        prefill_ep=o["prefill_ep"],
        decode_ep=o["decode_ep"],
        attention_dp=o["attention_dp"],
        expert_imbalance=o["expert_imbalance"],
        mtp_tokens=o["mtp_tokens"],
        mtp_acceptance=o["mtp_acceptance"],
    )
    with LazyBar("requests", "requests") as bar:
        result = run(
            spec,
            dev,
            trace,
            kv_link_GBps=o["kv_link_gbps"],
            router=o["router"],
            slo_ttft_s=o["slo_ttft"],
            slo_tpot_s=o["slo_tpot"],
            economics=Economics(basis=o["price_basis"]),
            record=bool(o["timeline"]),
            progress=bar,
            **config,
        )
    groups = (
        [o["tp"] * o["ep"]]
        if o["mode"] == "agg"
        else [o["prefill_tp"] * o["prefill_ep"], o["decode_tp"] * o["decode_ep"]]
    )
    warn_scale_out(dev, max(groups), "the simulation prices them over NVLink")
    d = result.to_dict()
    if o["find_capacity"]:
        capacity_trace_args = (
            dict(trace_args, lengths=o["trace_csv"], input_len=None, output_len=None)
            if o["trace_csv"]
            else trace_args
        )  # a replayed trace lends its requests' lengths to the Poisson probes
        with LazyBar("capacity search", "runs") as cap_bar:
            d["capacity_requests_per_s"] = find_capacity(
                o["model"],
                o["device"],
                slo_ttft_s=o["slo_ttft"],
                slo_tpot_s=o["slo_tpot"],
                trace_args=capacity_trace_args,
                progress=cap_bar,
                sim_args=dict(kv_link_GBps=o["kv_link_gbps"], router=o["router"]),
                **config,
            )
    if o["timeline"]:
        from sim.serving.plots import serving_timeline

        serving_timeline(
            result, o["timeline"], title=f"{result.config['model']} on {result.config['device']}"
        )
    text = "\n".join(f"{k:>32}: {fmt(d[k])}{_range_text(d, k)}" for k in TEXT_KEYS if k in d)
    kv = result.config["kv"]
    text += "\n" + "\n".join(
        f"{'KV pool (' + role + ')':>32}: {v['kv_capacity_tokens']:,} tokens per engine = {v['kv_bytes_per_device'] / 1e9:.1f} GB "
        f"per device ({v['kv_rule']} {v['kv_memory_fraction']:g} of {v['device_memory_bytes'] / 1e9:.1f} GB, weights {v['weight_bytes_per_device'] / 1e9:.1f} GB, "
        f"activations {v['activation_peak_bytes'] / 1e9:.2f} GB, reserve {v['runtime_reserve_bytes'] / 1e9:.1f} GB)"
        for role, v in kv.items()
    )
    emit(o["as_json"], d, text)
