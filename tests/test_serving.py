"""Serving on the event engine: schedulers, KV capacity, preemption, metrics, disaggregation."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodels.device_spec import catalog
from hwmodels.engine_config import engine_for, kv_capacity
from roofline.estimate import estimate
from sim.serving.capacity import approximate
from sim.serving.plots import step_frame
from sim.serving.replica import Replica
from sim.serving.serve import serve
from workloads.errors import ConfigError, DoesNotFitError
from workloads.graph import kv_cache_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant
from workloads.traces import Trace, make_trace

MODEL, DEVICE = "llama-3.1-8b", "h100-sxm"


@pytest.mark.parametrize("framework", ["vllm", "tensorrt-llm", "sglang", "vllm-v0", "hf-accelerate"])
def test_concurrency_one_matches_the_estimate(framework):
    """One request at a time is the estimate's batch-1 run: same TTFT and TPOT (10%)."""
    trace = make_trace(n_requests=3, concurrency=1, input_len=1024, output_len=128)
    r = serve(MODEL, DEVICE, trace, precision="bf16", framework=framework).metrics
    e = estimate(
        MODEL, DEVICE, batch=1, input_len=1024, output_len=128, precision="bf16", framework=framework
    )
    assert r["ttft_s_mean"] == pytest.approx(float(e.ttft_s), rel=0.10)
    assert r["tpot_s_mean"] == pytest.approx(float(e.tpot_s), rel=0.10)


def test_littles_law_on_the_engine_queue():
    """Time-averaged requests in the system, read from the engine's own step records (waiting
    plus running at each step, weighted by its duration), equal throughput x mean latency (2%)."""
    trace = make_trace(n_requests=3000, rate=8.0, input_len=512, output_len=128, length_cv=0.5, seed=3)
    result = serve(MODEL, DEVICE, trace, precision="bf16", framework="vllm")
    steps = step_frame(result)
    req = result.requests
    horizon = float(np.nanmax(req.finish_s) - np.nanmin(req.arrival_s))
    in_system = float(((steps["n_waiting"] + steps["n_running"]) * steps["time_s"]).sum()) / horizon
    throughput = req.n / horizon
    latency = float(np.mean(req.finish_s - req.arrival_s))
    assert in_system == pytest.approx(throughput * latency, rel=0.02)


def test_same_seed_same_output():
    kw = dict(n_requests=300, rate=20.0, lengths="sharegpt", seed=7)
    a = serve(MODEL, DEVICE, make_trace(**kw), precision="bf16").to_dict()
    b = serve(MODEL, DEVICE, make_trace(**kw), precision="bf16").to_dict()
    a.pop("sim_wall_s"), b.pop("sim_wall_s")
    assert a == b


@st.composite
def _traces(draw):
    n = draw(st.integers(1, 40))
    lin = draw(st.lists(st.integers(1, 700), min_size=n, max_size=n))
    lout = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    if draw(st.booleans()):
        gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
        times = np.cumsum([0.0] + gaps[1:])
        trace = Trace(np.array(lin), np.array(lout), arrival_s=times)
    else:
        trace = Trace(np.array(lin), np.array(lout), concurrency=draw(st.integers(1, 16)))
    if draw(st.booleans()):
        trace = trace.with_prefixes(draw(st.integers(1, 5)))
    return trace


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace=_traces(),
    framework=st.sampled_from(["vllm", "vllm-v0", "sglang", "tensorrt-llm", "hf-accelerate"]),
    kv_tokens=st.integers(1100, 6000),
    max_batch=st.integers(1, 32),
    budget=st.sampled_from([256, 512, 2048]),
    preemption=st.sampled_from(["recompute", "swap"]),
)
def test_preemption_never_loses_a_request(trace, framework, kv_tokens, max_batch, budget, preemption):
    """Every admitted request completes with exactly the tokens it asked for, under tight KV
    pools, small batches and token budgets, with prefix caching and either preemption mode;
    the pool's blocks are all back at the end."""
    result = serve(
        "llama-2-7b",
        DEVICE,
        trace,
        precision="fp16",
        framework=framework,
        max_batch=max_batch,
        max_batched_tokens=budget,
        max_kv_tokens=kv_tokens,
        preemption=preemption,
        record=False,
    )
    req = result.requests
    assert np.array_equal(req.generated, trace.output_len)
    assert req.completed.all()
    assert np.all(req.arrival_s <= req.first_token_s) and np.all(req.first_token_s <= req.finish_s)
    for r in result.replicas:
        cached = sum(r.prefix_cache.values())
        assert r.free_blocks + cached == r.kv.blocks
        assert len(r.rid) == 0 and not r.waiting


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace=_traces(),
    framework=st.sampled_from(["vllm", "vllm-v0", "sglang", "tensorrt-llm", "lmdeploy", "llama.cpp"]),
    kv_tokens=st.integers(1100, 6000),
    preemption=st.sampled_from(["recompute", "swap"]),
    scheduler_steps=st.sampled_from([1, 4]),
)
def test_a_steady_decode_step_is_planned_and_credited_as_the_whole_path_would(
    trace, framework, kv_tokens, preemption, scheduler_steps
):
    """The shortcuts for steps in which every running sequence decodes (``_plan_steady``,
    ``_credit_decodes``, and ``_steady_ahead``, which runs the uninterruptible ones after it as
    one wait, also for a static batch: llama.cpp's) form the plan ``_plan`` would and credit
    what ``_apply`` would: with them turned
    off, every request's times and tokens, every step's record and the pool's blocks come out
    the same, and so does the pool at the start of every step the shortcuts plan."""
    kw = dict(
        precision="fp16",
        framework=framework,
        max_kv_tokens=kv_tokens,
        preemption=preemption,
        scheduler_steps=scheduler_steps if framework == "vllm-v0" else None,
    )
    plan = Replica._plan

    def pools(log: dict):
        def logged(self):  # the pool as each step's planning finds it
            log.setdefault(
                (self.name, self.env.now), (self.free_blocks, int(self.blocks.sum()), len(self.rid))
            )
            return plan(self)

        return patch.object(Replica, "_plan", logged)

    fast_pool, whole_pool = {}, {}
    with pools(fast_pool):
        fast = serve("llama-2-7b", DEVICE, trace, **kw)
    with (
        pools(whole_pool),
        patch.object(Replica, "_plan_steady", lambda self: None),
        patch.object(Replica, "_credit_decodes", lambda self, dt: False),
        patch.object(Replica, "_steady_ahead", lambda self, dt: []),
    ):
        whole = serve("llama-2-7b", DEVICE, trace, **kw)
    assert fast_pool == {k: whole_pool[k] for k in fast_pool}
    for name in ("first_token_s", "finish_s", "generated", "preemptions", "first_step_s", "last_step_s"):
        assert np.array_equal(getattr(fast.requests, name), getattr(whole.requests, name), equal_nan=True), (
            name
        )
    for a, b in zip(fast.replicas, whole.replicas, strict=True):
        assert vars(a.steps) == vars(b.steps)
        assert (a.free_blocks, a.preempted, a.busy_s) == (b.free_blocks, b.preempted, b.busy_s)


def test_tight_kv_pool_preempts_and_a_bigger_pool_does_not():
    trace = make_trace(n_requests=60, concurrency=30, input_len=200, output_len=400, seed=1)
    tight = serve("llama-2-7b", DEVICE, trace, precision="fp16", max_kv_tokens=4000, record=False).metrics
    roomy = serve("llama-2-7b", DEVICE, trace, precision="fp16", record=False).metrics
    assert tight["preempted"] > 0 and roomy["preempted"] == 0
    assert tight["e2e_s_mean"] > roomy["e2e_s_mean"]


def test_vllm_kv_capacity_by_hand():
    """vLLM: 0.9 x memory - weights - activation peak - reserve, in 16-token blocks.

    Llama-3.1-8B bf16 on an H100 SXM (80 GiB, of which CUDA reports 79.18 GiB = 85.019 GB, the
    total vLLM takes its share of), as vLLM V1 sets itself up there (max_num_seqs 1024, an
    8192-token budget for its server): weights 16.06 GB; the profiling pass's peak is its
    sampler's, 1024 x 128256 x 38.9 B = 5.109 GB, above the forward's 8192 tokens x (3 x 4096 + 1.5
    x 28672) x 2 B = 0.906 GB; reserve 0.14 GB at TP 1; KV per token 32 layers x 8 heads x 128 x 2
    x 2 B = 131,072 B: 0.9 x 79.18 - 14.96 - 4.76 - 0.13 = 51.41 GiB, where vLLM logged 51.38 GiB
    for this model on an H100 (llm-d-benchmark). On an A100 80GB (79.15 GiB) it keeps 256
    sequences (1.277 GB)."""
    spec, q = load_model(MODEL), Quant.from_name("bf16")
    load = __import__("hwmodels.device_spec").device_spec.load_device
    weights = spec.n_params() * 2
    for device, seqs, gib in ((DEVICE, 1024, 79.18), ("a100-sxm-80gb", 256, 79.15)):
        engine = engine_for("vllm").for_device(load(device))
        kv = kv_capacity(spec, q, load(device), engine)
        act = max(engine.max_num_batched_tokens * (3 * 4096 + 1.5 * 28672) * 2, seqs * 128256 * 38.9)
        assert engine.max_num_seqs == seqs
        assert kv.activation_bytes == pytest.approx(act)
        assert kv.bytes_per_token == 131072
        assert kv.blocks == int((0.9 * gib * 2**30 - weights - act - 0.14e9) // (131072 * 16))
    assert kv_capacity(
        spec, q, load(DEVICE), engine_for("vllm").for_device(load(DEVICE))
    ).kv_bytes / 2**30 == (pytest.approx(51.38, rel=0.002))


def test_vllm_v1_picks_its_limits_by_device():
    """vLLM V1's defaults where a run sets none: 1024 sequences and 8192 tokens a step for its server
    (16384 offline) on GPUs of at least 70 GiB but the A100; 256 and 2048 (8192) elsewhere."""
    load = __import__("hwmodels.device_spec").device_spec.load_device
    for device, want in (
        ("h100-sxm", (1024, 8192, 16384)),
        ("mi300x", (1024, 8192, 16384)),
        ("a100-sxm-80gb", (256, 2048, 8192)),
        ("l40s", (256, 2048, 8192)),
    ):
        server = engine_for("vllm").for_device(load(device))
        offline = engine_for("vllm").for_device(load(device), offline=True)
        assert (server.max_num_seqs, server.max_num_batched_tokens, offline.max_num_batched_tokens) == want
    v0 = engine_for("vllm-v0")
    assert v0.for_device(load("h100-sxm")) == v0  # V0 kept 256 sequences everywhere


def test_kv_rules_differ_as_the_engines_do():
    """Llama-3.1-8B bf16 on an H100 SXM (CUDA's total 79.18 GiB = 85.019 GB), weights 2 x
    8,030,261,248 B = 16.061 GB.

    TensorRT-LLM: 0.9 x (85.019 - 16.061 - activations (8192 x 55,296 x 2 B + 2048 x 128,256 x 4 B
    = 1.957 GB) - 1.0 reserve) = 59.40 GB; SGLang: 0.88 x 85.019 - 16.061 = 58.76 GB.
    """
    spec, q = load_model(MODEL), Quant.from_name("bf16")
    dev = __import__("hwmodels.device_spec").device_spec.load_device(DEVICE)
    trt, sgl = (kv_capacity(spec, q, dev, engine_for(f)) for f in ("tensorrt-llm", "sglang"))
    mem, weights = 79.18 * 2**30, 2 * 8_030_261_248
    act = 8192 * (3 * 4096 + 1.5 * 28672) * 2 + 2048 * 128256 * 4
    assert trt.kv_bytes == pytest.approx(0.9 * (mem - weights - act - 1.0e9), rel=1e-4)
    assert sgl.kv_bytes == pytest.approx(0.88 * mem - weights, rel=1e-4)


def test_sglang_before_0_4_6_keeps_less_memory_on_larger_tensor_parallel_groups():
    """SGLang 0.4's unset mem_fraction_static: 0.88 at TP 1, 0.85 at TP 4, 0.81 at TP 8 and 0.79
    from TP 16; Llama-3.1-70B in BF16 on 8 H100s keeps 0.81 x 79.18 GiB (the total CUDA reports)
    less an eighth of its weights per device for KV. A run's own share replaces the table."""
    from hwmodels.device_spec import load_device

    spec, q, dev = load_model("llama-3.1-70b"), Quant.from_name("bf16"), load_device(DEVICE)
    old = engine_for("sglang-0.4")
    assert [old.memory_fraction(tp) for tp in (1, 2, 4, 6, 8, 16, 32)] == [
        0.88,
        0.87,
        0.85,
        0.85,
        0.81,
        0.79,
        0.79,
    ]
    weights = 2 * spec.n_params() / 8
    kv = kv_capacity(spec, q, dev, old, tp=8)
    assert kv.kv_bytes == pytest.approx(0.81 * 79.18 * 2**30 - weights, rel=1e-4)
    own = kv_capacity(spec, q, dev, old.with_limits(kv_fraction=0.9), tp=8)
    assert own.kv_bytes == pytest.approx(0.9 * 79.18 * 2**30 - weights, rel=1e-4)
    assert (kv.to_dict()["kv_memory_fraction"], own.fraction) == (0.81, 0.9)
    assert engine_for("sglang").memory_fraction(8) == 0.88


def test_a_model_that_leaves_no_kv_says_by_how_much():
    with pytest.raises(DoesNotFitError, match="short by"):
        serve("llama-2-70b", "rtx-3090", make_trace(n_requests=2, concurrency=1, input_len=8, output_len=8))


def test_queueing_approximation_agrees_at_moderate_load():
    kw = dict(input_len=1024, output_len=256, precision="bf16", framework="vllm")
    cap = approximate(MODEL, DEVICE, rate=1e-3, **kw).capacity_requests_per_s
    rate = 0.5 * cap
    a = approximate(MODEL, DEVICE, rate=rate, **kw)
    trace = make_trace(n_requests=3000, rate=rate, input_len=1024, output_len=256, seed=2)
    s = serve(MODEL, DEVICE, trace, precision="bf16", framework="vllm", record=False).metrics
    assert a.tpot_s == pytest.approx(s["tpot_s_mean"], rel=0.10)
    assert a.e2e_s == pytest.approx(s["e2e_s_mean"], rel=0.10)
    assert a.ttft_s == pytest.approx(s["ttft_s_mean"], rel=0.35)


def test_prefix_caching_serves_repeated_prompts_from_the_cache():
    trace = make_trace(n_requests=400, rate=15.0, input_len=600, output_len=64, seed=4).with_prefixes(10)
    on = serve("llama-2-7b", DEVICE, trace, precision="fp16", prefix_caching=True)
    off = serve("llama-2-7b", DEVICE, trace, precision="fp16", prefix_caching=False)
    assert on.requests.cached_tokens.sum() > 0 and off.requests.cached_tokens.sum() == 0
    assert on.metrics["ttft_s_mean"] < off.metrics["ttft_s_mean"]
    # 10 distinct prompts: all but the first 10 requests hit, 592 of 600 tokens (37 whole blocks)
    assert int((on.requests.cached_tokens == 592).sum()) >= 380


def test_a_cached_prefix_is_not_allocated_again_as_its_requests_decode():
    """Requests share one 512-token prompt prefix (32 blocks of 16) and add 8 prompt tokens and 64
    outputs each, 5 blocks of their own. The first runs alone and leaves the prefix in the cache;
    the other 23 arrive a second later and run 8 at a time: the cache's 32 blocks and 8 x 5 of
    their own fit a pool of 80 blocks, so nothing is preempted. Counting the cached prefix again
    in each decoding request's blocks would need 8 x 37 = 296."""
    arrival = np.concatenate([[0.0], 1.0 + 0.001 * np.arange(23)])
    trace = Trace(np.full(24, 520), np.full(24, 64), arrival_s=arrival).with_prefixes(1, prefix_len=512)
    result = serve(
        "llama-2-7b", DEVICE, trace, precision="fp16", max_batch=8, max_kv_tokens=80 * 16, record=False
    )
    assert result.metrics["preempted"] == 0
    assert int((result.requests.cached_tokens == 512).sum()) == 23
    r = result.replicas[0]
    assert r.free_blocks + sum(r.prefix_cache.values()) == r.kv.blocks


def test_static_batches_finish_together():
    trace = Trace(np.array([100, 100, 100]), np.array([10, 50, 90]), concurrency=3)
    result = serve("llama-2-7b", DEVICE, trace, precision="fp16", framework="hf-accelerate", max_batch=3)
    req = result.requests
    assert np.ptp(req.finish_s) == 0 and np.ptp(req.first_token_s) == 0


def test_disaggregation_moves_kv_over_the_link():
    """TTFT comes from the prefill pool and does not depend on the link; a slower link only
    delays decoding."""
    trace = make_trace(n_requests=200, rate=5.0, input_len=2048, output_len=64, seed=5)
    kw = dict(mode="disagg", prefill_workers=1, decode_workers=1, precision="bf16", record=False)
    fast = serve(MODEL, DEVICE, trace, kv_link_GBps=50, **kw).metrics
    slow = serve(MODEL, DEVICE, trace, kv_link_GBps=0.5, **kw).metrics
    assert fast["n_devices"] == 2
    assert slow["ttft_s_mean"] == pytest.approx(fast["ttft_s_mean"], rel=1e-9)
    # 2048 tokens x 131,072 B = 0.27 GB: 5.4 ms at 50 GB/s, 537 ms at 0.5 GB/s
    assert slow["e2e_s_mean"] - fast["e2e_s_mean"] > 0.4


def test_disaggregated_split_needs_its_devices():
    with pytest.raises(ConfigError, match="needs 4 devices"):
        serve(
            MODEL,
            DEVICE,
            make_trace(n_requests=2, concurrency=1, input_len=8, output_len=8),
            mode="disagg",
            prefill_workers=2,
            decode_workers=2,
            n_devices=3,
        )


def test_data_parallel_replicas_share_the_load():
    trace = make_trace(n_requests=2000, rate=30.0, input_len=1024, output_len=256, seed=6)
    one = serve(MODEL, DEVICE, trace, precision="bf16", record=False).metrics
    two = serve(MODEL, DEVICE, trace, precision="bf16", dp=2, record=False).metrics
    assert two["n_devices"] == 2
    assert two["tpot_s_mean"] < one["tpot_s_mean"]


def test_energy_and_cost_are_positive_and_below_the_power_cap():
    r = serve(
        MODEL, DEVICE, make_trace(n_requests=300, rate=10.0, input_len=512, output_len=128), precision="bf16"
    )
    m = r.metrics
    assert m["j_per_token"] > 0 and m["usd_per_million_tokens"] > 0
    tdp = __import__("hwmodels.device_spec").device_spec.load_device(DEVICE).tdp_w
    assert m["energy_j"] <= tdp * m["duration_s"] * (1 + 1e-9)


def test_slo_attainment_counts_requests_meeting_both_limits():
    trace = make_trace(n_requests=500, rate=12.0, input_len=1024, output_len=128, seed=8)
    loose = serve(MODEL, DEVICE, trace, precision="bf16", slo_ttft_s=10.0, slo_tpot_s=1.0).metrics
    tight = serve(MODEL, DEVICE, trace, precision="bf16", slo_ttft_s=1e-4, slo_tpot_s=1.0).metrics
    assert loose["slo_attainment"] == 1.0 and tight["slo_attainment"] == 0.0


@pytest.mark.parametrize(
    "model, tp, precision, reported_blocks",
    [
        ("llama-2-7b", 1, "fp16", 7462),
        ("llama-2-70b", 4, "fp16", 31356),
        ("mixtral-8x7b", 2, "bf16", 27510),
        ("codellama-34b", 2, "bf16", 26602),
    ],
)
def test_vllm_kv_capacity_matches_what_vllm_reported(model, tp, precision, reported_blocks):
    """The KV blocks per GPU vLLM allocated for the four H100 deployments of
    inference-sim/training (replay_data config kv_blocks_total_gpu, @c4f0340; max_num_seqs 128,
    max_num_batched_tokens 2048, 16-token blocks): hwsim's resolution within 1%."""
    from hwmodels.device_spec import load_device

    engine = engine_for("vllm").with_limits(128, 2048)
    kv = kv_capacity(load_model(model), Quant.from_name(precision), load_device("h100-sxm"), engine, tp)
    assert kv.blocks == pytest.approx(reported_blocks, rel=0.01)


@pytest.mark.parametrize("share", [0.0, 1.5, -0.9, True, "0.9"])
def test_a_memory_share_outside_0_1_is_refused(share):
    with pytest.raises(ConfigError, match="kv_fraction"):
        engine_for("vllm").with_limits(kv_fraction=share)


def test_a_run_that_takes_more_memory_serves_from_a_larger_pool():
    """``serve``'s ``kv_fraction`` is the run's ``--gpu-memory-utilization``: 0.95 of an H100's
    memory (the total CUDA reports) gives Llama-3.1-8B's pool 0.05 of it in 16-bit KV tokens more
    than the default 0.9."""
    trace = make_trace(n_requests=4, rate=10.0, input_len=128, output_len=16)
    base = serve("llama-3.1-8b", "h100-sxm", trace, record=False)
    more = serve("llama-3.1-8b", "h100-sxm", trace, record=False, kv_fraction=0.95)
    per_token = kv_cache_bytes(load_model("llama-3.1-8b"), Quant.from_name("fp16"), 1, 1, 1, 1)
    gained = 0.05 * catalog()["h100-sxm"].memory.visible_bytes / per_token
    extra = more.metrics["kv_capacity_tokens"] - base.metrics["kv_capacity_tokens"]
    assert extra == pytest.approx(gained, rel=0.02)


def test_an_engine_that_mixes_prompts_with_decodes_chunks_a_prompt_longer_than_its_budget():
    """TensorRT-LLM runs a 10,000-token prompt, longer than its 8,192-token step budget, only with
    chunked context on; its chunks then share the steps with the other requests' decodes, so
    8 such requests arriving together finish in well under 8 times one request's run (before,
    each waited for a step with nothing else in it: the requests ran one after another)."""
    trace = dict(rate=1000.0, input_len=10_000, output_len=200)
    engine = dict(precision="fp8", framework="tensorrt-llm", record=False)
    one = serve("llama-3.1-8b", "h100-sxm", make_trace(n_requests=1, **trace), **engine)
    eight = serve("llama-3.1-8b", "h100-sxm", make_trace(n_requests=8, **trace), **engine)
    assert eight.metrics["completed"] == 8
    assert eight.metrics["duration_s"] < 3.0 * one.metrics["duration_s"]


def _finished_run(finish_s: np.ndarray, open_loop: bool = False) -> dict:
    """Metrics of 100 requests of 10 output tokens arriving one a second (0 to 99 s), each
    producing its first token 0.5 s after arriving and finishing at ``finish_s``."""
    from sim.serving.metrics import request_metrics
    from sim.serving.requests import Requests

    req = Requests(Trace(np.full(100, 64), np.full(100, 10), arrival_s=np.arange(100.0)))
    req.arrival_s = np.arange(100.0)
    req.first_token_s = req.arrival_s + 0.5
    req.finish_s = finish_s
    return request_metrics(req, n_devices=1, open_loop=open_loop)


def test_steady_tokens_are_those_generated_in_the_window_not_the_outputs_finishing_in_it():
    """A pair of requests, of 5 and of 500 output tokens, starts every 10 s, and each running
    request generates a token a second. In the window (100-400 s) the short ones finish, the long
    ones mostly after it, so whole outputs of the requests finishing inside would count under
    2 tokens/s where the engine generates about 30 (the running requests, one token a second each)."""
    from sim.serving.metrics import tokens_generated_between

    first = np.arange(0.0, 1000.0, 10.0)  # a new pair every 10 s
    out = np.tile([5, 500], 50)
    first = np.repeat(first[:50], 2)
    finish = first + (out - 1.0)  # one token a second each
    tokens = tokens_generated_between(first, finish, out, 100.0, 400.0)
    short_in = ((out == 5) & (finish >= 100) & (finish <= 400)).sum()
    assert short_in * 5 / 300.0 < 2.0  # what counting whole finished outputs would give
    running = [((first <= t) & (finish >= t)).sum() for t in np.arange(100.5, 400.0, 1.0)]
    assert tokens == pytest.approx(sum(running), rel=0.02)
    assert tokens_generated_between(first, finish, out, 2000.0, 3000.0) == 0.0


def test_steady_throughput_only_where_the_run_keeps_up():
    """Kept up (each done 2 s after arriving): the steady window, 9.9 s to 99 s, holds the 90
    requests finishing at 10-99 s (arrivals 8-97), 90 / 89.1 = 1.0101 a second; the tokens
    generated in it (first token 0.5 s after arrival, the other 9 evenly over the next 1.5 s):
    0.6 of arrival 8's, 6.6 of 9's, all 10 of 10-97's, 4 of 98's (its first and 3 of 9), none of
    99's: 891.2 / 89.1 = 10.002 a second. A burst served after its last
    arrival (finishing at 150-249 s): no request finishes in the window, so no steady figure;
    the whole run's stands, 1,000 tokens over 249 s."""
    kept = _finished_run(np.arange(100.0) + 2.0)
    assert kept["steady_requests_per_s"] == pytest.approx(90 / 89.1)
    assert kept["steady_output_tokens_per_s"] == pytest.approx(891.2 / 89.1)
    burst = _finished_run(np.arange(100.0) + 150.0)
    assert "steady_requests_per_s" not in burst
    assert burst["output_tokens_per_s"] == pytest.approx(1000 / 249.0)
    # a run whose window holds under half of its completions has none either: 42 of 100
    late = np.where(np.arange(100) < 50, np.arange(100.0) + 2.0, 300.0)  # 42 inside (10-51 s)
    assert "steady_requests_per_s" not in _finished_run(late)


def test_an_open_loops_steady_state_starts_after_its_ramp_up():
    """The first 10 requests find an engine filling and take 2 s end to end, the other 90 take
    10 s. The ramp (the 90th percentile end-to-end latency) is 10 s, so the steady latency window
    holds the arrivals at 10-89 s, all of 10 s (TPOT (10 - 0.5) / 9), where the whole run's mean is
    (10 x 2 + 90 x 10) / 100 = 9.2; the throughput window starts at 10 s, not 9.9 s, and holds the
    82 requests finishing at 10-99 s (arrivals 8-89) over 89 s. A closed loop's figures stay the
    whole run's, with no steady latency."""
    e2e = np.where(np.arange(100) < 10, 2.0, 10.0)
    run = _finished_run(np.arange(100.0) + e2e, open_loop=True)
    assert run["e2e_s_mean"] == pytest.approx(9.2)
    assert run["steady_e2e_s_mean"] == pytest.approx(10.0)
    assert run["steady_ttft_s_mean"] == pytest.approx(0.5)
    assert run["steady_tpot_s_mean"] == pytest.approx(9.5 / 9)
    assert run["steady_requests_per_s"] == pytest.approx(82 / 89)
    closed = _finished_run(np.arange(100.0) + e2e)
    assert "steady_e2e_s_mean" not in closed
    assert closed["steady_requests_per_s"] == pytest.approx(82 / 89.1)  # 10% of the span: 9.9 s on
    # a run whose requests mostly still run at its last arrival has no steady latency
    assert "steady_e2e_s_mean" not in _finished_run(np.arange(100.0) + 60.0, open_loop=True)


@pytest.mark.parametrize(
    ("model", "max_model_len", "budget"),
    [
        ("llama-2-7b", None, 4096),  # its context, 4,096: chunked prefill off, the whole context a step
        ("llama-2-7b", 1000, 2048),  # V0's floor of 2,048
        ("llama-3.1-8b", None, 2048),  # 131,072 > 32K: V0 turns chunked prefill on, at its chunked budget
        ("llama-3.1-8b", 16384, 16384),  # stated within 32K: chunked prefill off
        ("deepseek-r1", None, 163840),  # MLA: V0 forces chunked prefill off at any length
        ("deepseek-r1", 32768, 32768),
    ],
)
def test_vllm_v0_token_budget_follows_max_model_len(model, max_model_len, budget):
    """vLLM V0's SchedulerConfig without chunked prefill: max_num_batched_tokens = max(max_model_len, 2048)."""
    spec = load_model(model)
    assert engine_for("vllm-v0").sized_for(spec, max_model_len).max_num_batched_tokens == budget
    # vLLM before v0.2.6 had no chunked prefill: its default stays
    eager = engine_for("vllm-eager").sized_for(spec, max_model_len).max_num_batched_tokens
    assert eager == (8192 if budget == 2048 and max_model_len is None else budget)
    assert (
        engine_for("vllm").sized_for(spec, max_model_len).max_num_batched_tokens == 8192
    )  # V1 keeps its own


def test_a_run_that_turns_chunked_prefill_off_gets_the_whole_context_as_its_budget():
    """Left unset, V0 chunks prefills above 32K: it then schedules as V1 does (decodes first,
    prompt chunks in the rest of the budget) at its chunked budget of 2,048 tokens; a run that
    states chunked prefill off (as vLLM's benchmark_throughput.py does unless given the flag)
    prefills whole prompts of its 91,680-token context in V0's own steps; one that states it on
    chunks at any length."""
    from roofline.validation import stated_chunked_prefill

    spec, v0 = load_model("llama-3.1-405b"), engine_for("vllm-v0")
    for chunked in (v0.sized_for(spec, 91680), v0.sized_for(spec, 16384, chunked_prefill=True)):
        assert (chunked.scheduler, chunked.max_num_batched_tokens) == ("vllm", 2048)
    whole = v0.sized_for(spec, 91680, chunked_prefill=False)
    assert (whole.scheduler, whole.max_num_batched_tokens) == ("vllm-v0", 91680)
    # a stated budget still wins (the serving path applies the run's limits after)
    assert v0.sized_for(spec, 91680).with_limits(max_num_batched_tokens=512).max_num_batched_tokens == 512
    assert stated_chunked_prefill("benchmarks/benchmark_throughput.py --max-model-len 91680") is False
    assert stated_chunked_prefill("benchmark_throughput.py --enable-chunked-prefill") is True
    assert stated_chunked_prefill("vllm serve m --enable-chunked-prefill=False") is False
    assert stated_chunked_prefill("vllm serve m (no --enable-chunked-prefill)") is None
    assert stated_chunked_prefill("vllm serve m --max-model-len 8192") is None
    with pytest.raises(ConfigError, match="chunked_prefill is 'yes'"):
        v0.sized_for(spec, 8192, chunked_prefill="yes")


def test_v0s_non_torch_reserve_grows_with_its_tensor_parallel_group_on_hopper_boards():
    """vLLM V0 logged 1.79 GiB of non-torch memory at TP 1 and 3.58 GiB at TP 2 on an H100, 7.16
    GiB at TP 8 on an H200 (engines.yaml vllm-v0 nccl_reserve): 1.92 GB x (1 + log2 tp) is 1.92,
    3.84 and 7.68 GB. An A100 board keeps the flat 1.5 GB at any TP. V1's is 0.14 GB at TP 1 and
    0.32 GB more per doubling of the group (llm-d-benchmark's H100 logs: 0.13 GiB at TP 1, 0.55 GiB
    at TP 2; its H100 pools at TP 1-4 meet vLLM's within 1% with it: the test above); the reserve
    comes out of the pool byte for byte, to a block."""
    from hwmodels.device_spec import load_device
    from hwmodels.engine_config import runtime_reserve

    v0, v1 = engine_for("vllm-v0"), engine_for("vllm")
    h100, h200, a100 = (load_device(d) for d in ("h100-sxm", "h200", "a100-sxm-80gb"))
    for tp, gb in ((1, 1.92), (2, 3.84), (4, 5.76), (8, 7.68)):
        assert runtime_reserve(v0, h100, tp) == pytest.approx(gb * 1e9)
        assert runtime_reserve(v0, h200, tp) == pytest.approx(gb * 1e9)
        assert runtime_reserve(v0, a100, tp) == 1.5e9
        assert runtime_reserve(v1, h100, tp) == pytest.approx(0.14e9 + 0.32e9 * {1: 0, 2: 1, 4: 2, 8: 3}[tp])
    spec, q = load_model("llama-3.1-70b"), Quant.from_name("fp8")
    on_h100 = kv_capacity(spec, q, h100, v0, tp=8)
    flat = kv_capacity(spec, q, h100, replace(v0, nccl_reserve_devices=()), tp=8)
    assert on_h100.reserve_bytes == pytest.approx(7.68e9)
    block = on_h100.bytes_per_token * on_h100.block_size  # the pool is whole blocks
    assert flat.kv_bytes - on_h100.kv_bytes == pytest.approx(7.68e9 - 1.5e9, abs=block)


def test_v0s_deepseek_r1_pool_on_8_h200_against_vllms_logs():
    """vLLM V0 materialized MLA's absorbed decode matrices (engines.yaml vllm-v0 mla_memory): per
    rank and layer, W_Q_UK 1,536 x 16 x 512 and W_UV_O 16 x 512 x 7,168 in FP8, W_QR 1,536 x 16 x
    64 and the dequantized kv_b_proj 512 x 16 x 256 at 2 B: 4.797 GB over 61 layers. Its 0.7.3
    log of DeepSeek-R1 on 8 H200 (utilization 0.85, max_model_len 128,000, 32,000 batched tokens,
    1,024 sequences) gives weights 83.88 GiB, non-torch 7.16 GiB and 294,688 KV tokens of 78,080 B
    (61 x 1,280: entries padded from 1,152 B); the defaults' run of vllm-project/vllm PR #14842,
    4,739 blocks of 64 = 303,296 tokens. hwsim meets the weights within 2% and the non-torch
    memory within 1%, and its pools come out 11-15% larger, as the catalog's 141 GiB (CUDA: 139.81)
    and the 16-bit embedding, LM head and replicated MLA down-projections it leaves out account
    for (3.1 GiB of 3.1 in the first log)."""
    from hwmodels.device_spec import load_device
    from hwmodels.engine_config import mla_extra_bytes

    spec, q, h200, v0 = (
        load_model("deepseek-r1"),
        Quant.from_name("fp8-kv16"),
        load_device("h200"),
        engine_for("vllm-v0"),
    )
    extra = (1536 * 16 * 512 + 16 * 512 * 7168) * 1.0 + (1536 * 16 * 64 + 512 * 16 * 256) * 2.0
    assert mla_extra_bytes(spec, q, tp=8) == pytest.approx(61 * extra)
    assert mla_extra_bytes(load_model("llama-3.1-8b"), q, tp=8) == 0.0
    blog = kv_capacity(
        spec, q, h200, replace(v0.sized_for(spec, 128000), kv_fraction=0.85).with_limits(1024, 32000), tp=8
    )
    assert blog.bytes_per_token == 61 * 1280
    assert blog.weight_bytes / 2**30 == pytest.approx(83.88, rel=0.02)
    assert blog.reserve_bytes / 2**30 == pytest.approx(7.16, rel=0.01)
    assert 1.0 < blog.tokens / 294688 < 1.15
    assert 1.0 < kv_capacity(spec, q, h200, v0.sized_for(spec), tp=8).tokens / 303296 < 1.15


@pytest.mark.parametrize(
    "parse, entry, field",
    [
        ("_nccl_reserve", {"devices": "h100-sxm", "GB": 1.9, "source": "s"}, "nccl_reserve"),
        ("_nccl_reserve", {"devices": ["h100-sxm"], "GB": -1, "source": "s"}, "nccl_reserve"),
        ("_nccl_reserve", {"devices": ["h100-sxm"], "GB": 1.9}, "nccl_reserve"),
        ("_nccl_reserve", 3, "nccl_reserve"),
        ("_mla_memory", {"decode_copies": "yes", "kv_align_bytes": 256, "source": "s"}, "mla_memory"),
        ("_mla_memory", {"decode_copies": True, "kv_align_bytes": -8, "source": "s"}, "mla_memory"),
        ("_mla_memory", {"decode_copies": True, "kv_align_bytes": True, "source": "s"}, "mla_memory"),
        ("_mla_memory", ["decode_copies"], "mla_memory"),
    ],
)
def test_a_malformed_engine_memory_entry_names_its_field(parse, entry, field):
    import hwmodels.engine_config as ec

    with pytest.raises(ConfigError, match=f"engines.x.{field} is"):
        getattr(ec, parse)(entry, f"engines.x.{field}")
    assert ec._nccl_reserve(None, "w") == ec._mla_memory(None, "w") == {}


def test_benchmark_throughput_leaves_chunked_prefill_to_v0_from_v0_6_3_post2():
    """vllm-project/vllm PR #9529 (in v0.6.4) made benchmark_throughput.py take the engine's own
    arguments, whose enable_chunked_prefill defaults to None (V0's choice); before, the script
    passed its own store_true False. A version that cannot be read keeps the older reading."""
    from roofline.validation import stated_chunked_prefill

    run = "benchmarks/benchmark_throughput.py --max-model-len 91680"
    assert stated_chunked_prefill(run, "0.6.3.post2.dev308+gb489fc3c") is None
    assert stated_chunked_prefill(run, "vLLM v0.6.4") is None
    assert stated_chunked_prefill(run, "0.6.3.post1") is False
    assert stated_chunked_prefill(run, "0.5.4") is False
    assert stated_chunked_prefill(run, "0.6.x (inferred from the post date)") is False
    assert stated_chunked_prefill(run + " --enable-chunked-prefill=False", "0.6.4") is False


def test_a_larger_v0_budget_reserves_its_activations_out_of_the_kv_pool():
    """The profiling pass runs the whole budget: DeepSeek-R1 (FP8 weights and activations, 16-bit
    KV) on 8 H200s under V0. Its widest block is an MoE layer's: the residual stream, the block's
    input, its output and the shared expert's output, 4 x 7,168 x 2 B (16-bit: the model's dtype,
    not the GEMMs' FP8), for each of 163,840 tokens, plus the fused-MoE buffers for a 32,768-token
    chunk: 8 active experts x (gate-up 512 x 2 B + activated half 256 x 2 B + its FP8 copy 256 x
    1 B + down output 7,168 x 2 B) = 8 x 16,128 B; the dense FFN's (3 x 7,168 x 2 + 4,608 x 2 +
    2,304 x 2 + 2,304 x 1 = 59,136 B a token) is narrower. Plus fp32 logits of 256 x 129,280 / 8
    x 4 B. At the default 8,192-token budget the same sum (1.544 GB) exceeds the sampler's
    256 x 129,280 x 38.9 B = 1.287 GB. The KV per token: 61 layers x 576 x 2 B, each entry padded
    to 1,280 B under V0 (engines.yaml mla_memory): 78,080 B."""
    spec, q = load_model("deepseek-r1"), Quant.from_name("fp8-kv16")
    dev = __import__("hwmodels.device_spec").device_spec.load_device("h200")
    small = kv_capacity(spec, q, dev, engine_for("vllm-v0"), tp=8)
    large = kv_capacity(spec, q, dev, engine_for("vllm-v0").sized_for(spec), tp=8)
    logits = 256 * 129280 / 8 * 4

    def moe(tokens: int) -> float:
        return tokens * 4 * 7168 * 2 + min(tokens, 32768) * 8 * 16128 + logits

    assert large.bytes_per_token == small.bytes_per_token == 78080
    assert (large.activation_bytes, small.activation_bytes) == (
        pytest.approx(moe(163840)),
        pytest.approx(moe(8192)),
    )
    assert moe(8192) > 256 * 129280 * 38.9 > 8192 * 59136
    assert small.kv_bytes - large.kv_bytes == pytest.approx(moe(163840) - moe(8192), abs=78080 * 16)


def test_the_activation_peak_matches_vllms_profiling_of_llama_3_1_8b():
    """vLLM V0 (v0.6.4) profiled Llama-3.1-8B (bf16, one GPU) at 20,000 and 29,000 budget tokens
    (256 dummy sequences of 78 and 113 tokens: 19,968 and 28,928) with peak torch memory less
    weights of 2.10 and 3.02 GiB (vllm-project/vllm issue #10517): the residual stream, the FFN's
    input and output (3 x 4,096 x 2 B) with its gate-up output and activated half (1.5 x 28,672
    x 2 B) give 110.6 kB a token, 2.06 and 2.98 GiB (logits left out: no sequences)."""
    from workloads.graph import activation_peak_bytes

    spec, q = load_model("llama-3.1-8b"), Quant.from_name("bf16")
    for tokens, measured_gib in ((19968, 2.10), (28928, 3.02)):
        assert activation_peak_bytes(spec, q, tokens, 0) == pytest.approx(tokens * 110592)
        assert activation_peak_bytes(spec, q, tokens, 0) / 2**30 == pytest.approx(measured_gib, rel=0.03)


def test_serve_refuses_a_max_model_len_below_the_trace_and_a_bad_one():
    trace = make_trace(n_requests=4, input_len=3000, output_len=200, rate=1.0)
    with pytest.raises(
        ConfigError, match="max_model_len is 2,048; the longest request of the trace needs 3,200"
    ):
        serve(MODEL, DEVICE, trace, framework="vllm-v0", max_model_len=2048)
    with pytest.raises(ConfigError, match="max_model_len is 8,192; llama-2-7b takes at most 4,096 tokens"):
        serve("llama-2-7b", DEVICE, trace, framework="vllm-v0", max_model_len=8192)
    with pytest.raises(ConfigError, match="max_model_len is 0; expected a positive integer"):
        serve(MODEL, DEVICE, trace, framework="vllm-v0", max_model_len=0)
    stated = serve("llama-2-7b", DEVICE, trace, framework="vllm-v0", max_batched_tokens=8192, record=False)
    ruled = serve("llama-2-7b", DEVICE, trace, framework="vllm-v0", record=False)  # 4,096-token budget
    assert stated.metrics["kv_capacity_tokens"] < ruled.metrics["kv_capacity_tokens"]


def _prefill_gaps(steps: int) -> list[int]:
    """Decode steps between consecutive prefill steps of a V0 engine at ``steps`` decode steps per
    scheduling pass (a Poisson stream, so prompts keep arriving while others decode)."""
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    trace = make_trace(n_requests=120, seed=3, rate=20.0, input_len=256, output_len=64)
    r = serve(
        "llama-3.1-8b",
        "h100-sxm",
        trace,
        framework="vllm-v0",
        precision="bf16",
        chunked_prefill=False,
        scheduler_steps=steps,
    )
    s = r.replicas[0].steps
    gaps, run = [], None
    for n_dec, pre in zip(s.n_decode, s.prefill_tokens, strict=True):
        if pre:
            if run is not None:
                gaps.append(run)
            run = 0
        elif run is not None and n_dec:
            run += 1
    assert r.metrics["completed"] == 120
    return [g for g in gaps if g]


def test_multi_step_scheduling_admits_prompts_only_between_runs_of_decode_steps():
    """vLLM V0's --num-scheduler-steps 8: a prompt that arrives while others decode waits for
    the run of 8 decode steps to end (the gaps between prefills are multiples of 8 decode
    steps, up to the stream's idle tails), where one step per pass admits it at the next step."""
    eight, one = _prefill_gaps(8), _prefill_gaps(1)
    assert eight and min(eight) >= 8 and sum(g % 8 == 0 for g in eight) >= 0.8 * len(eight)
    assert min(one) < 8


def test_tensorrt_llms_max_utilization_admits_on_what_a_step_needs():
    """GUARANTEED_NO_EVICT reserves each request's prompt plus its whole output at admission; under
    MAX_UTILIZATION (NVIDIA's MLPerf harness) a request is admitted on the blocks its next step
    needs, so a pool of 24,576 tokens runs more of these 512 + 1,536-token requests at once (and
    pauses the newest when it runs out); every request still finishes."""
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    trace = make_trace(n_requests=60, seed=1, concurrency=60, input_len=512, output_len=1536)
    running = {}
    for scheduler in ("tensorrt-llm", "tensorrt-llm-max-util"):
        r = serve(
            "llama-3.1-8b",
            "h100-sxm",
            trace,
            framework="tensorrt-llm",
            precision="bf16",
            max_kv_tokens=24576,
            scheduler=scheduler,
        )
        assert r.metrics["completed"] == 60
        running[scheduler] = max(r.replicas[0].steps.n_running)
    assert running["tensorrt-llm"] <= 24576 // 2048 < running["tensorrt-llm-max-util"]
