"""The ``hwsim`` command line. Every command takes ``--json`` and then prints one JSON
document on stdout and nothing else. A user mistake prints one line on stderr and exits
with status 2; no traceback.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np

from hwsim import cli_explore, cli_serve, cli_sim
from hwsim.options import PathType, StrictGroup, moe_options, output_file, output_folder
from hwsim.output import emit, estimate_text, fmt, pct, quoted_cells, table
from workloads.errors import HwsimError, HwsimNote


@click.group(cls=StrictGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwsim")
def cli() -> None:
    """hwsim: which hardware and system design serves a transformer fastest, cheapest and
    with the fewest joules, and why."""


# ----- listings --------------------------------------------------------------------------
@cli.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(query: str | None, as_json: bool) -> None:
    """List the shipped model presets, or the presets QUERY stands for: the one a name or
    HuggingFace id resolves to (meta-llama/Llama-3.1-8B-Instruct), else every preset whose name
    or repo id holds QUERY (qwen1.5, deepseek-ai)."""
    from workloads.model_spec import find_models, load_model, preset_index

    rows = []
    for name in find_models(query) if query else sorted(preset_index()):
        entry = preset_index()[name]
        s = load_model(name)
        rows.append(
            {
                "name": name,
                "family": s.family,
                "params": s.n_params(),
                "active_params": s.n_active_params(),
                "published_params": float(entry["published_params"]),
                "layers": s.n_layers,
                "hidden": s.hidden_size,
                "heads": s.n_heads,
                "kv_heads": s.n_kv_heads,
                "attention": s.attention_kind,
                "experts": s.moe.n_routed_experts if s.moe else 0,
                "hf_ids": entry.get("hf_ids", []),
                "source": entry["source"],
            }
        )
    text_rows = [
        dict(r, params=f"{r['params'] / 1e9:.2f}B", active_params=f"{r['active_params'] / 1e9:.2f}B")
        for r in rows
    ]
    emit(
        as_json,
        rows,
        table(
            text_rows,
            [
                "name",
                "params",
                "active_params",
                "layers",
                "hidden",
                "heads",
                "kv_heads",
                "attention",
                "experts",
            ],
        ),
    )


@cli.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def devices(query: str | None, as_json: bool) -> None:
    """List the device catalog, or the devices QUERY stands for: the one a name or alias
    resolves to, the parts of a SoC (snapdragon-8-gen-3) or the variants of an ambiguous name
    (a100), else every device whose name or description holds QUERY (nvidia, snapdragon)."""
    from hwmodels.device_names import find_devices
    from hwmodels.device_spec import catalog
    from roofline.economics import bases_of

    names = find_devices(query) if query else list(catalog())
    rows = []
    for name, d in ((n, catalog()[n]) for n in names):
        peaks = {k: v / 1e12 for k, v in d.peak_flop_per_s.items()}
        basis = ", ".join(bases_of(d)) or None
        rows.append(
            {
                "name": name,
                "display_name": d.display_name,
                "arch": d.arch,
                "device_class": d.device_class,
                "peak_tflops": peaks,
                "fp16_tflops": peaks.get("fp16", peaks.get("bf16")),
                "memory_gb": d.memory.capacity_bytes / 1e9 if d.memory else None,
                "memory_bw_gbps": d.memory.bw_bytes_per_s / 1e9 if d.memory else None,
                "tdp_w": d.tdp_w,
                "price_usd": d.price_usd,
                "cloud_usd_per_hour": d.cloud_usd_per_hour,
                "price_bases": basis,
            }
        )
    emit(
        as_json,
        rows,
        table(
            rows,
            [
                "name",
                "arch",
                "device_class",
                "fp16_tflops",
                "memory_gb",
                "memory_bw_gbps",
                "tdp_w",
                "price_usd",
                "cloud_usd_per_hour",
                "price_bases",
            ],
        ),
    )


@cli.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def frameworks(query: str | None, as_json: bool) -> None:
    """List the serving frameworks --framework prices, or those QUERY stands for: the one a
    name, spelling or name with a version resolves to (trtllm-serve, vllm 0.6.3), else every
    framework whose name or spelling holds QUERY (tensorrt). launch_us: time per kernel launch
    (class: the device class's fitted value); step_us and seq_us: host time per step and per
    running sequence; request_us: a request's time to the scheduler per launch of the forward
    pass."""
    from hwmodels.calibration.params import find_frameworks, framework_names, framework_terms, spellings_of
    from hwmodels.engine_config import engine_for
    from hwsim.options import framework_name

    rows = []
    for name in find_frameworks(framework_name(query)) if query else framework_names():
        t = framework_terms(name)
        us = t.serving_terms()
        rows.append(
            {
                "name": name,
                "kernels": t.kernels,
                "launch_us": t.kernel_overhead_us,  # None: the device class's fitted value
                "launch_overlaps_device": t.launch_overlaps_device,
                "step_us": us["step_overhead_us"],
                "seq_us": us["seq_overhead_us"],
                "request_us": us["request_latency_per_launch_us"],
                "memory_fraction": t.memory_fraction,
                "scheduler": engine_for(name).scheduler,
                "also_named": spellings_of(name),
                "source": t.source,
            }
        )
    text_rows = [
        dict(
            r,
            also_named=_few(r["also_named"]),
            launch_us="class" if r["launch_us"] is None else r["launch_us"],
        )
        for r in rows
    ]
    columns = [
        "name",
        "kernels",
        "launch_us",
        "step_us",
        "seq_us",
        "request_us",
        "memory_fraction",
        "scheduler",
    ]
    emit(as_json, rows, table(text_rows, [*columns, "also_named"]))


def _few(names: list[str], n: int = 3) -> str:
    """The first ``n`` of ``names``, and how many more."""
    more = f" (+{len(names) - n})" if len(names) > n else ""
    return ", ".join(names[:n]) + more


# ----- estimate ----------------------------------------------------------------------------
def _workload_options(f):
    for opt in reversed(
        [
            click.option("--model", "-m", required=True, help="Preset name or path to a config.json."),
            click.option(
                "--device", "-d", required=True, help="Catalog device name or path to a device YAML."
            ),
            click.option(
                "--batch", "-b", type=int, default=1, show_default=True, help="Sequences per replica."
            ),
            click.option(
                "--input-len", type=int, default=1024, show_default=True, help="Prompt tokens per sequence."
            ),
            click.option(
                "--output-len",
                type=int,
                default=128,
                show_default=True,
                help="Generated tokens per sequence.",
            ),
            click.option(
                "--precision",
                "-p",
                default="fp16",
                show_default=True,
                help="fp32, bf16, fp16, fp8, int8, int4 or wXaY[kvZ][gG] (e.g. w4a16g128).",
            ),
            click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel degree."),
            click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel degree."),
            click.option("--ep", type=int, default=1, show_default=True, help="Expert-parallel degree."),
            click.option("--n-devices", type=int, default=None, help="Devices in all (default tp*pp*ep)."),
            click.option(
                "--framework",
                default=None,
                help="Serving framework whose overheads apply (vllm, tensorrt-llm, sglang, llama.cpp, ...).",
            ),
        ]
    ):
        f = opt(f)
    return f


@cli.command()
@_workload_options
@moe_options
@click.option(
    "--cached-len",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Prompt tokens per sequence already in the prefix cache (a shared system prompt): not prefilled.",
)
@click.option(
    "--price-basis",
    type=click.Choice(["tco", "cloud"]),
    default="tco",
    show_default=True,
    help="tco: purchase over the lifetime + energy; cloud: on-demand $/h. A device without a price "
    "on the basis gets no $ figures (never the other basis).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def estimate(
    model,
    device,
    batch,
    input_len,
    output_len,
    precision,
    tp,
    pp,
    ep,
    n_devices,
    framework,
    attention_dp,
    expert_imbalance,
    mtp_tokens,
    mtp_acceptance,
    cached_len,
    price_basis,
    as_json,
):
    """Analytic estimate: TTFT, TPOT, throughput, tokens per J and per $ for one batch.

    FP8 or FP4 on a GPU without those tensor cores is refused, naming the weight-only precision
    engines run there; a prompt plus output beyond the model's context is refused; tp x ep beyond
    the device's NVLink domain is priced with a warning."""
    from hwsim.checks import note_missing_price, precision_for, warn_scale_out
    from roofline.economics import Economics
    from roofline.estimate import compute_device
    from roofline.estimate import estimate as run
    from workloads.model_spec import check_lengths, load_model

    spec, dev = load_model(model), compute_device(device)
    quant = precision_for(precision, dev)
    check_lengths(spec, input_len, output_len)
    est = run(
        spec,
        dev,
        batch=batch,
        input_len=input_len,
        output_len=output_len,
        n_devices=n_devices,
        tp=tp,
        pp=pp,
        ep=ep,
        precision=quant,
        economics=Economics(basis=price_basis),
        framework=framework,
        attention_dp=attention_dp,
        expert_imbalance=expert_imbalance,
        mtp_tokens=mtp_tokens,
        mtp_acceptance=mtp_acceptance,
        cached_len=cached_len,
    )
    warn_scale_out(dev, tp * ep, "the estimate prices them over NVLink")
    d = est.to_dict()
    if d["usd_per_million_tokens"] is None:
        note_missing_price(device, price_basis)
    if not d["fits"]:
        from hwmodels.device_spec import load_device

        cap = load_device(device).memory.capacity_bytes
        shipped = (
            f"; {spec.name} ships block-scaled FP8 weights, which --precision fp8 prices"
            if spec.fp8_weight_block and quant.weight_bits > 8
            else ""
        )
        click.echo(
            f"hwsim: warning: {d['model']} does not fit on {d['device']}: needs {d['memory_bytes'] / 1e9:.2f} GB "
            f"per device, has {cap / 1e9:.2f} GB (short by {(d['memory_bytes'] - cap) / 1e9:.2f} GB); the times "
            f"assume it did (add devices with --tp/--pp or lower --precision){shipped}",
            err=True,
        )
    emit(as_json, d, estimate_text(d))


@cli.command()
@_workload_options
@click.option(
    "--out",
    "-o",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    callback=output_file,
    help="Chart path (.png; an .svg is written beside it). Default results/roofline-<model>-<device>.png.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def roofline(
    model, device, batch, input_len, output_len, precision, tp, pp, ep, n_devices, framework, out, as_json
):
    """Roofline chart of a decode step's and a prefill's ops on a device's roof (checks as estimate's)."""
    from hwmodels.calibration.params import canonical_framework, framework_terms
    from hwmodels.placement import Placement
    from hwsim.checks import precision_for, warn_scale_out
    from roofline.estimate import MAX_COUNT, compute_device, resolve_parallelism
    from roofline.plots import roofline_chart
    from roofline.roofline import op_roofline, ridge_point
    from workloads.graph import build_ops
    from workloads.model_spec import check_lengths, load_model

    spec, dev = load_model(model), compute_device(device)
    quant = precision_for(precision, dev)
    resolve_parallelism(spec, n_devices, tp, pp, ep)
    if framework:
        framework = canonical_framework(framework)
        spec = framework_terms(framework).model_as_run(spec)  # a TensorRT engine: no sliding window
    place = Placement(tp=tp, pp=pp, ep=ep, framework=framework)
    for value, field in ((batch, "batch"), (input_len, "input_len"), (output_len, "output_len")):
        if not 1 <= value <= MAX_COUNT:
            raise HwsimError(f"{field} is {value}; expected a positive integer up to {MAX_COUNT:,}")
    check_lengths(spec, input_len, output_len)
    warn_scale_out(dev, tp * ep, "the chart prices them over NVLink")
    kw = dict(tp=tp, pp=pp, ep=ep)
    tables = {
        "decode": op_roofline(
            build_ops(spec, quant, phase="decode", batch=batch, context=input_len, **kw), dev, place
        ),
        "prefill": op_roofline(
            build_ops(spec, quant, phase="prefill", batch=batch, tokens=input_len, **kw), dev, place
        ),
    }
    out = out or Path("results") / f"roofline-{spec.name}-{dev.name}.png"
    paths = roofline_chart(
        tables,
        dev,
        out,
        title=f"{spec.name} on {dev.name}, batch {batch}, context {input_len}, {quant.name}",
        fmt=quant.compute_format,
    )
    payload = {
        "model": spec.name,
        "device": dev.name,
        "ridge_flop_per_byte": ridge_point(dev, quant.compute_format),
        "chart": [str(p) for p in paths],
        "ops": {ph: t.replace([np.inf], None).to_dict(orient="records") for ph, t in tables.items()},
    }
    text = (
        "\n\n".join(
            f"{ph}:\n{t[['op', 'intensity_flop_per_byte', 'achieved_flop_per_s', 'share_of_step', 'bound']].to_string(index=False)}"
            for ph, t in tables.items()
        )
        + f"\n\nchart: {', '.join(map(str, paths))}"
    )
    emit(as_json, payload, text)


@cli.command()
@click.option(
    "--data",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    help="A measured-data CSV in the schema of docs/data-formats.md (default: the shipped set).",
)
@click.option(
    "--plot",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    callback=output_file,
    help="Also write the predicted-vs-measured chart (.png and .svg).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate(data, plot, as_json):
    """Predict every measured row and report the error, overall and per device class."""
    from roofline.calibrate import held_out_errors
    from roofline.source_agreement import agreement
    from roofline.validation import (
        HELD_OUT_PREFIXES,
        load_measured,
        server_conditions,
        summarize,
        validate_frame,
    )
    from sim.serving.validation import predict_serving, simulate_rows

    frame = load_measured(data)
    simulate_rows(server_conditions(frame))  # the server rows' runs, one process per core
    points = validate_frame(frame, serving=predict_serving)
    report = summarize(points)
    report["held_out"] = held_out_errors(points)
    report["source_agreement"] = agreement(frame)
    if plot:
        from roofline.plots import predicted_vs_measured

        predicted_vs_measured(points, plot)
    lines = [
        f"rows {report['rows']}, covered {report['covered']}: median APE {pct(report['median_ape'])}, "
        f"p90 {pct(report['p90_ape'])}, within 10% {pct(report['within_10pct'])}, "
        f"within 25% {pct(report['within_25pct'])}",
        "",
    ]
    lines += [
        f"{cls:>16}: {v['covered']:>3} of {v['rows']:>3} rows covered, median APE {pct(v['median_ape'])}, "
        f"p90 {pct(v['p90_ape'])}"
        for cls, v in report["by_class"].items()
    ]
    if report["by_phase_mode"]:
        width = max(map(len, report["by_phase_mode"]))
        lines += ["", "serving and offline rows (phase/mode/metric):"] + [
            f"{key:>{width}}: {v['covered']:>3} of {v['rows']:>3} rows covered, median APE {pct(v['median_ape'])}, "
            f"p90 {pct(v['p90_ape'])}"
            for key, v in report["by_phase_mode"].items()
        ]
    held = report["held_out"]
    if held["covered"]:
        ranges = held["ranges"]
        lines += [
            "",
            f"held-out rows (ids {', '.join(HELD_OUT_PREFIXES)}: sources no fit has seen): {held['covered']} of "
            f"{held['rows']} covered, median APE {pct(held['median_ape'])}, p90 {pct(held['p90_ape'])}"
            + (
                f"; {pct(ranges['inside'])} of {ranges['with_range']} inside their 10th-90th percentile range"
                if ranges["with_range"]
                else ""
            ),
        ]
    same = report["source_agreement"]
    if same["pairs"]:
        lines += [
            "",
            f"sources that measured the same configuration: {same['pairs']} pairs over {same['configurations']} "
            f"configurations differ by a median {pct(same['median_spread'])}, p90 {pct(same['p90_spread'])} "
            f"(larger over smaller value); one prediction for both misses each by at least "
            f"{pct(same['median_floor'])} (median), {pct(same['p90_floor'])} (p90)",
        ]
    gpu, wall = report["energy"]["gpu"], report["energy"]["wall"]
    if gpu["rows"] or wall["rows"]:
        lines += [
            "",
            f"device energy per token (j_per_token): {gpu['covered']} of {gpu['rows']} rows covered, "
            f"median APE {pct(gpu['median_ape'])}, p90 {pct(gpu['p90_ape'])}",
        ] + [
            f"{cls:>16}: {v['covered']:>3} of {v['rows']:>3} rows covered, median APE {pct(v['median_ape'])}, "
            f"p90 {pct(v['p90_ape'])}"
            for cls, v in gpu["by_class"].items()
        ]
        if wall["rows"]:
            lines.append(f"wall energy (j_per_token_wall): {wall['rows']} rows, {wall['note']}")
    uncovered = [p for p in report["points"] if not p["covered"]]
    if uncovered:
        lines += ["", "not covered:"] + [
            quoted_cells(f"  {p['id']} {p['hardware']} {p['model']}: {p['reason']}") for p in uncovered
        ]
    emit(as_json, report, "\n".join(lines))


@cli.command()
@click.option(
    "--part",
    type=click.Choice(["all", "kernels", "devices", "serving", "energy"]),
    default="all",
    show_default=True,
    help="kernels: GPU kernel-efficiency curves on the measured kernels (hwmodels/calibration/kernels/); "
    "devices: per-class efficiencies on the analytic rows; serving: framework terms on the server rows; "
    "energy: per-class static power fraction on the measured device-energy rows.",
)
@click.option(
    "--out",
    type=PathType(file_okay=False),
    default=None,
    callback=output_folder,
    help="Write the refitted files (*_fitted.yaml) into this folder; the shipped fits of the parts not "
    "refitted are copied beside them.",
)
@click.option(
    "--write", is_flag=True, help="Write the refitted files into the package (hwmodels/calibration/)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def calibrate(part, out, write, as_json):
    """Refit the GPU kernel-efficiency curves on the shipped measured kernels, the efficiency
    parameters per device class on the shipped measured set, the static power fraction per
    class on its device-energy rows, and the serving frameworks' step overhead and output lag
    on its server rows, with in-sample, leave-one-source-out and leave-one-family-out errors.
    The fitted files go to the folder --out names, or with --write into the package's
    hwmodels/calibration/ (tracked files); without either, nothing is written."""
    with _fits_destination(out, write):
        _calibrate(part, as_json)


@contextlib.contextmanager
def _fits_destination(out: Path | None, write: bool) -> Iterator[None]:
    """Inside the block the fit reads and writes its files where the user said (a temporary folder,
    deleted after, when they named none)."""
    from hwmodels.calibration.params import differing_fits, fits_folder, fits_in
    from roofline import intervals

    if out is not None and write:
        raise click.UsageError("give --out DIR or --write, not both")
    if write:
        click.echo(f"hwsim: note: writing the fitted files into the package, {fits_folder()}/", err=True)
        yield
        return
    with contextlib.ExitStack() as stack:
        if out is None:
            click.echo(
                "hwsim: note: nothing is kept: without --out DIR or --write the fitted files go to a "
                "temporary folder, deleted at the end",
                err=True,
            )
        folder = out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hwsim-fit-")))
        kept = differing_fits(folder)
        if kept:
            click.echo(
                f"hwsim: note: {folder}/ already holds {', '.join(kept)}, unlike the package's: the fit "
                "reads those (empty the folder to start from the shipped fits)",
                err=True,
            )
        stack.enter_context(fits_in(folder))
        stack.callback(intervals.table.cache_clear)
        intervals.table.cache_clear()
        yield
    if out is not None:
        click.echo(f"hwsim: note: fitted files written to {out}/", err=True)


def _awq_gemm_line(record: dict) -> str:
    """Refit AutoAWQ 0.1's AWQ GEMM rate (``roofline.awq_fit``) into ``record`` and say it beside the
    shipped value, which frameworks.yaml holds and only a person changes."""
    from hwmodels.calibration.params import framework_terms
    from roofline.awq_fit import AWQ_FRAMEWORK, fit

    result = record["awq_gemm"] = fit()  # refuses a frameworks.yaml without the kernel
    shipped = framework_terms(AWQ_FRAMEWORK).awq_gemm.macs_per_sm_us
    line = (
        f"{AWQ_FRAMEWORK} AWQ GEMM kernel: {result['macs_per_sm_us']:,.0f} MACs per SM per us on "
        f"{result['rows']} rows of {result['sources']} sources (median APE {pct(result['in_sample_median_ape'])} "
        f"in sample, {pct(result['leave_one_source_out_median_ape'])} leaving a source out)"
    )
    if result["macs_per_sm_us"] != shipped:
        line += f"; frameworks.yaml ships {shipped:,.0f}: write the fitted rate there by hand"
    return line


def _calibrate(part, as_json):
    say = None if as_json else (lambda msg: click.echo(msg, err=True))
    record, lines = {}, []
    if part in ("all", "kernels"):
        from roofline.kernel_fit import calibrate_kernels

        record["kernels"] = calibrate_kernels(progress=say)
        e = record["kernels"]["errors"]
        lines.append(
            "kernel curves (median APE in sample): "
            + "; ".join(
                f"{kind} {arch} {fmt} {pct(v['in_sample']['median_ape'])}"
                for kind in ("gemm", "attention_prefill", "attention_decode")
                for arch, formats in e[kind].items()
                for fmt, v in formats.items()
            )
            + "".join(
                f"; allreduce {link} {pct(v['in_sample']['median_ape'])}"
                for link, v in e["allreduce"].items()
            )
            + f"; Vidur FP16 check {pct(e['vidur_check']['median_ape'])}"
            + f"; TensorRT-LLM fused MoE check {pct(e['trtllm_moe_check']['median_ape'])}"
        )
        lines.append(_awq_gemm_line(record))
    if part in ("all", "devices"):
        from roofline.calibrate import calibrate as run
        from sim.serving.validation import predict_serving

        record["devices"] = run(progress=say, serving=predict_serving)
        e = record["devices"]["errors"]
        lines.append(
            f"fitted: {record['devices']['classes']}\nin-sample median APE {pct(e['in_sample']['median_ape'])}, "
            f"p90 {pct(e['in_sample']['p90_ape'])}; leave-one-source-out median APE "
            f"{pct(e['leave_one_source_out']['median_ape'])}, p90 {pct(e['leave_one_source_out']['p90_ape'])}"
        )
        for key, label in (
            ("leave_one_family_out", "leave-one-family-out"),
            ("leave_one_family_out_without_kernel_curves", "leave-one-family-out without its kernel curves"),
        ):
            lofo = e[key]
            if lofo["covered"]:
                lines.append(
                    f"{label}: median APE {pct(lofo['median_ape'])}, p90 {pct(lofo['p90_ape'])} over "
                    f"{lofo['covered']} rows; "
                    + ", ".join(
                        f"{f} {pct(v['median_ape'])}/{pct(v['p90_ape'])} ({v['covered']})"
                        for f, v in lofo["by_family"].items()
                    )
                )
        c = record["devices"]["intervals"]
        lines.append(
            f"10th-90th percentile ranges, each source held out: {pct(c['inside'])} of {c['with_range']} rows "
            f"inside (target 80%), median width high/low {fmt(c['median_width'])}x; "
            + ", ".join(
                f"{p} {pct(v['inside'])}" for p, v in c["by_phase"].items() if v["inside"] is not None
            )
        )
    if part in ("all", "energy"):
        from roofline.calibrate_energy import calibrate_energy

        record["energy"] = calibrate_energy(progress=say)
        for key, v in record["energy"]["by_class"].items():
            defaults = ", ".join(f"{p} {x:g}" for p, x in v["default"].items())
            if v["fitted"] is None:
                lines.append(
                    f"energy {key}: not fitted (needs 8+ rows from 2+ sources); median APE at the defaults "
                    f"({defaults}): {pct(v['at_default']['median_ape'])}"
                )
                continue
            values = ", ".join(f"{p} {x:.3g}" for p, x in v["fitted"].items())
            lines.append(
                f"energy {key}: {values} (defaults {defaults}) on "
                f"{v['in_sample']['rows']} rows from {len(v['sources'])} sources; median APE at the default "
                f"{pct(v['at_default']['median_ape'])}, in-sample {pct(v['in_sample']['median_ape'])}, "
                f"leave-one-source-out {pct(v['leave_one_source_out']['median_ape'])} "
                f"(p90 {pct(v['leave_one_source_out']['p90_ape'])})"
            )
        ranges = record["energy"].get("intervals")
        if ranges and ranges["with_range"]:
            lines.append(
                f"energy 10th-90th percentile ranges, each source held out: {pct(ranges['inside'])} of "
                f"{ranges['with_range']} rows inside, median width high/low {ranges['median_width']:.3g}x"
            )
    if part in ("all", "serving"):
        from sim.serving.calibrate import calibrate_serving

        record["serving"] = calibrate_serving(progress=say)
        lines.append("serving (median APE of TTFT / TPOT / end-to-end means):")
        for framework, err in record["serving"]["errors"].items():
            if "not_fitted" in err:
                lines.append(
                    f"  {framework}: not fitted ({err['not_fitted']}); median APE {pct(err['median_ape'])}"
                )
                continue
            terms = record["serving"]["frameworks"][framework]
            if "fitted_on" in err:  # a host time fitted on offline and end-to-end rows
                lines.append(
                    f"  {framework} {terms} on its {err['fitted_on']} ({err['in_sample']['rows']} rows, "
                    f"{err['sources']} sources): in-sample {pct(err['in_sample']['median_ape'])}; "
                    f"leave-one-source-out {pct(err['leave_one_source_out']['median_ape'])}"
                )
                continue
            cells = [
                f"{label} "
                + " / ".join(
                    pct(err[label_key].get(f"{m}_median_ape")) for m in ("ttft_s", "tpot_s", "e2e_s")
                )
                for label, label_key in (
                    ("in-sample", "in_sample"),
                    ("leave-one-source-out", "leave_one_source_out"),
                )
            ]
            if not err["leave_one_source_out"]["rows"]:
                cells[1] = "leave-one-source-out: no other source to fit on"
            n = err["sources"]
            lines.append(f"  {framework} {terms} over {n} source{'' if n == 1 else 's'}: " + "; ".join(cells))
        for framework, err in record["serving"].get("request_latency", {}).items():
            fitted = record["serving"]["frameworks"].get(framework, {}).get("request_latency_per_launch_us")
            held = err["leave_one_source_out"]
            lines.append(
                f"  {framework} request latency "
                + (f"{fitted:g} us per launch" if fitted is not None else f"not fitted ({err['not_fitted']})")
                + f" on {err['rows']} TTFT rows: in-sample {pct(err['in_sample']['median_ape'])}; "
                + (
                    f"leave-one-source-out {pct(held['median_ape'])}"
                    if held["rows"]
                    else "leave-one-source-out: no other source to fit on"
                )
                + f"; leave-one-model-out {pct(err['leave_one_model_out']['median_ape'])}"
            )
    emit(as_json, record, "\n".join(lines))


@cli.command()
@click.option(
    "--out",
    "-o",
    type=PathType(file_okay=False),
    default="results",
    show_default=True,
    callback=output_folder,
    help="Folder for plots, tables, index.md and index.html.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Fewer sections, devices and points (for tests; includes the Pareto fronts).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the files written).")
def report(out, quick, as_json):
    """Write the report: plots (PNG and SVG), CSV tables, index.md and index.html, into --out."""
    from report.build import build_report

    written = build_report(out, quick=quick, progress=not as_json)
    emit(
        as_json,
        {"out": str(out), "files": [str(p) for p in written]},
        f"wrote {len(written)} files into {out}/ (open {out}/index.html)",
    )


for _command in (
    cli_sim.systems,
    cli_sim.simulate,
    cli_sim.reproduce,
    cli_serve.serve,
    cli_explore.sweep,
    cli_explore.best,
    cli_explore.compare,
    cli_explore.pareto,
):
    cli.add_command(_command)


@contextlib.contextmanager
def _notes_on_stderr() -> Iterator[None]:
    """Show each ``HwsimNote`` (an assumption hwsim made about a name) once, as one
    ``hwsim: note:`` line on stderr; other warnings as Python shows them."""
    seen: set[str] = set()
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, HwsimNote):
            default(message, category, filename, lineno, file, line)
        elif str(message) not in seen:
            seen.add(str(message))
            click.echo(f"hwsim: note: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", HwsimNote)
        warnings.showwarning = show
        yield


def main() -> None:
    """Entry point: run the CLI, turning user mistakes into one line on stderr."""
    try:
        with _notes_on_stderr():
            cli.main(standalone_mode=False)
    except HwsimError as exc:
        click.echo(f"hwsim: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("hwsim: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line, as every other user mistake
        message = " ".join(exc.format_message().split())
        where = f" (`{exc.ctx.command_path} --help` lists the options)" if exc.ctx else ""
        click.echo(f"hwsim: error: {message}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
