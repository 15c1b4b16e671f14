"""Expert parallelism with attention data parallel, expert load imbalance, and multi-token prediction."""

from __future__ import annotations

import numpy as np
import pytest

from roofline.estimate import estimate, memory_per_device, mtp_expected_tokens
from workloads.errors import ConfigError
from workloads.graph import build_ops, kv_cache_bytes, weight_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant

FP8 = Quant.from_name("fp8")


def _row(ops, name: str, column: str) -> float:
    return float(np.asarray(getattr(ops, column)).reshape(len(ops.name), -1)[list(ops.name).index(name), 0])


def test_attention_dp_gives_each_device_its_share_of_the_sequences():
    """DeepSeek-V3 decode, 64 sequences over EP 8 with attention DP: each device attends over 8
    sequences exactly as a single device serving 8 would."""
    spec = load_model("deepseek-v3")
    group = build_ops(spec, FP8, phase="decode", batch=64, context=4096, ep=8, attention_dp=True)
    alone = build_ops(spec, FP8, phase="decode", batch=8, context=4096)
    for column in ("flops", "kv_read_bytes"):
        assert _row(group, "attention", column) == pytest.approx(_row(alone, "attention", column))


@pytest.mark.parametrize("imbalance", [1.0, 1.5])
def test_experts_and_all_to_all_by_hand(imbalance):
    """64 tokens (8 per device) pick 8 of 256 experts each: 64 x 8 / 8 = 64 routed rows on the mean
    device, x imbalance on the busiest; its up projection does 2 x 64 x imbalance x 4096 x 7168
    FLOPs a layer. Each device sends 8 tokens x 8 experts x 7168 x 1 byte, 7/8 of it off-device,
    and takes as much back."""
    spec = load_model("deepseek-v3")
    ops = build_ops(
        spec, FP8, phase="decode", batch=64, context=1, ep=8, attention_dp=True, expert_imbalance=imbalance
    )
    assert _row(ops, "experts_up", "flops") == pytest.approx(2 * 64 * imbalance * 4096 * 7168)
    assert _row(ops, "all_to_all_moe", "link_bytes") == pytest.approx(2 * 8 * 8 * 7168 * 7 / 8 * imbalance)
    # the shared expert and the router run on the device's own 8 tokens
    assert _row(ops, "router", "flops") == pytest.approx(2 * 8 * 256 * 7168)


def test_imbalance_below_one_is_refused():
    with pytest.raises(ConfigError, match="expert_imbalance is 0.9; expected a number >= 1"):
        build_ops(load_model("deepseek-v3"), FP8, phase="decode", batch=8, ep=8, expert_imbalance=0.9)


def test_attention_dp_holds_each_devices_own_kv_cache():
    """Each of the 8 devices holds a full copy of the non-expert weights, 1/8 of the experts, and
    the KV cache and prefill workspace of its own 8 of the 64 sequences."""
    from workloads.graph import activation_peak_bytes

    spec = load_model("deepseek-v3")
    dp = memory_per_device(spec, FP8, 64, 4096, 512, ep=8, attention_dp=True)
    expected = (
        weight_bytes(spec, FP8, ep=8)
        + float(kv_cache_bytes(spec, FP8, 8, 4096 + 512))
        + float(activation_peak_bytes(spec, FP8, 8 * 4096, 8))
    )
    assert float(dp) == pytest.approx(expected)


def test_expected_tokens_of_multi_token_prediction():
    """1 + a + a^2: with two drafts at 50% acceptance a step emits 1.75 tokens."""
    assert mtp_expected_tokens(2, 0.5) == pytest.approx(1.75)
    assert mtp_expected_tokens(0, 0.9) == 1.0
    with pytest.raises(ConfigError, match="acceptance 1.2"):
        mtp_expected_tokens(1, 1.2)


def test_mtp_pays_only_when_drafts_are_accepted():
    """A draft that is never accepted costs a verification and a drafting pass for nothing; at
    full acceptance one draft doubles the tokens a step emits for less than twice its time."""
    kw = dict(batch=64, input_len=2048, output_len=256, precision="fp8", ep=8, attention_dp=True)
    plain = float(estimate("deepseek-v3", "h200", **kw).tpot_s)
    none = float(estimate("deepseek-v3", "h200", mtp_tokens=1, mtp_acceptance=0.0, **kw).tpot_s)
    full = float(estimate("deepseek-v3", "h200", mtp_tokens=1, mtp_acceptance=1.0, **kw).tpot_s)
    assert none > plain
    assert plain / 2 < full < plain
    with pytest.raises(ConfigError, match="no multi-token-prediction module"):
        estimate("llama-3.1-8b", "h200", batch=1, input_len=8, output_len=8, mtp_tokens=1, mtp_acceptance=0.5)


def test_serving_with_attention_dp_and_mtp():
    """An EP-8 replica with attention DP pools the eight devices' KV caches; with one draft at 85%
    acceptance, decoding sequences emit about 1.85 tokens a step; no request is lost, and the run
    is deterministic."""
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    trace = make_trace(n_requests=120, rate=50.0, input_len=512, output_len=400, seed=3)
    kw = dict(precision="fp8", framework="sglang", ep=8, record=True)
    one = serve("deepseek-v3", "h200", trace, **kw)
    dp = serve("deepseek-v3", "h200", trace, attention_dp=True, **kw)
    assert dp.metrics["kv_capacity_tokens"] == 8 * one.metrics["kv_capacity_tokens"]
    mtp = serve("deepseek-v3", "h200", trace, attention_dp=True, mtp_tokens=1, mtp_acceptance=0.85, **kw)
    again = serve("deepseek-v3", "h200", trace, attention_dp=True, mtp_tokens=1, mtp_acceptance=0.85, **kw)
    for key in ("ttft_s_p50", "tpot_s_p50", "e2e_s_p99", "output_tokens_per_s"):
        assert mtp.metrics[key] == again.metrics[key]
    assert bool(mtp.requests.completed.all())
    steps = sum(sum(r.steps.n_decode) for r in mtp.replicas)
    decoded = int((trace.output_len - 1).sum())
    assert decoded / steps == pytest.approx(1.85, rel=0.05)
    assert mtp.metrics["tpot_s_p50"] < dp.metrics["tpot_s_p50"]


def test_wide_ep_that_does_not_divide_the_experts_holds_redundant_slots():
    """256 experts on 72 GPUs (an NVL72 rack): 4 expert slots per GPU (32 redundant copies), so a
    GPU holds 4/256 of the routed expert weights; more GPUs than experts is refused."""
    from workloads.graph import experts_per_device

    spec = load_model("deepseek-r1")
    assert experts_per_device(spec, 72) == 4
    per_expert = spec.moe.n_moe_layers * spec.ffn_params_expert() * FP8.weight_bytes_per_param("experts")
    dense = weight_bytes(spec, FP8) - 256 * per_expert
    assert weight_bytes(spec, FP8, ep=72) == pytest.approx(dense + 4 * per_expert)
    with pytest.raises(ConfigError, match="ep 512 exceeds deepseek-r1's 256 experts"):
        build_ops(spec, FP8, phase="decode", batch=1, ep=512)


def test_experts_split_inside_the_tp_group_cost_what_tensor_parallel_experts_cost():
    """TensorRT-LLM's --tp 8 --ep 4 on 8 GPUs: each GPU holds 256 / 4 = 64 of DeepSeek-V3's experts,
    each split over 8 / 4 = 2 GPUs. By hand, at 128 decode tokens: the touched experts' share on a
    GPU times their (2 x 2048 x 4 / 8) x 7168 gate/up bytes, and its routed FLOPs, equal the TP-8
    rows, so such a run is priced as tp 8 (``test_serving_validation``)."""
    from workloads.graph import expected_distinct_experts

    spec = load_model("deepseek-v3")
    E, k, f, h, tp, m_ep = 256, 8, 2048, 7168, 8, 4
    tokens = 128
    touched = expected_distinct_experts(E, k, tokens)
    weight = touched / m_ep * (2 * f * m_ep / tp) * h  # FP8: a byte a weight
    flops = 2 * (tokens * k / m_ep) * (2 * f * m_ep / tp) * h
    ops = build_ops(spec, FP8, phase="decode", batch=tokens, context=1, tp=tp)
    assert _row(ops, "experts_up", "weight_bytes") == pytest.approx(float(weight))
    assert _row(ops, "experts_up", "flops") == pytest.approx(flops)


def test_an_ep_inside_tp_device_count_is_refused_with_how_hwsim_prices_it():
    """hwsim's ep counts devices beside tp, so TensorRT-LLM's --tp 8 --ep 4 on 8 GPUs asks for 32;
    estimate and serve refuse it and say to give --tp 8 alone (the test above: the same cost). A
    count that no such reading explains gets the plain error."""
    from sim.serving.serve import serve
    from workloads.traces import Trace

    hint = r"n_devices 8 is not a multiple of tp\*pp\*ep = 32; .*give --tp 8 without --ep"
    run = dict(tp=8, n_devices=8, precision="fp8")
    with pytest.raises(ConfigError, match=hint):
        estimate("deepseek-r1", "h200", batch=1, input_len=128, output_len=8, ep=4, **run)
    with pytest.raises(ConfigError, match=hint):
        serve("deepseek-r1", "h200", Trace(np.full(4, 128), np.full(4, 8), concurrency=2), ep=4, **run)
    with pytest.raises(ConfigError, match=r"= 24$"):
        estimate("deepseek-r1", "h200", batch=1, input_len=128, output_len=8, ep=3, **run)


def _pricers(max_tokens: int = 16384):
    from hwmodels.device_spec import load_device
    from hwmodels.placement import Placement
    from sim.serving.step_cost import StepPricer

    spec, dev = load_model("deepseek-v3"), load_device("h200")
    kw = dict(max_tokens=max_tokens, max_seqs=256, max_context=8192)
    dp = StepPricer(spec, FP8, dev, Placement(ep=8, attention_dp=True), **kw)
    ep = StepPricer(spec, FP8, dev, Placement(ep=8), **kw)
    return dp, ep


def test_attention_dp_runs_one_prompt_on_one_rank():
    """A lone prompt under attention DP sits on one rank, which runs all of its attention and
    dense work as a device without DP does (every device runs the whole batch's): the step costs
    the same. Eight prompts on eight ranks take each rank one prompt's own work plus the experts
    over all eight, which a device without DP pays eightfold; energy per device is the ranks'
    mean, so seven idle ranks cut it."""
    from sim.serving.step_cost import RankWork

    dp, ep = _pricers()
    assert dp.ranks == 8 and ep.ranks == 1
    one = RankWork(0, 0.0, ((2048, 0),), 1)
    lone = dp.step_ranks([one])
    assert lone.time_s == pytest.approx(ep.step(0, 0.0, [(2048, 0)], 1).time_s, rel=1e-9)
    assert lone.energy_j < ep.step(0, 0.0, [(2048, 0)], 1).energy_j
    eight = dp.step_ranks([one] * 8)
    assert eight.time_s == pytest.approx(dp._rank(one)[0] + dp._group(8 * 2048)[0], rel=1e-9)
    assert eight.time_s < ep.step(0, 0.0, [(2048, 0)] * 8, 8).time_s
    # the even split step() assumes equals the stated one
    assert dp.step(0, 0.0, [(2048, 0)] * 8, 8).time_s == pytest.approx(eight.time_s, rel=1e-12)
    # the busiest rank sets the pace: one rank with two prompts is slower than two ranks with one
    assert (
        dp.step_ranks([RankWork(0, 0.0, ((2048, 0), (2048, 0)), 2)]).time_s > dp.step_ranks([one, one]).time_s
    )
    with pytest.raises(ValueError, match="9 ranks"):
        dp.step_ranks([one] * 9)


def test_attention_dp_dispatches_requests_to_ranks_in_turn():
    """Requests go to the ranks round robin as they arrive and keep their rank: eight requests
    arriving together prefill in one step, one per rank, the step no longer than one prompt's
    own work plus the experts over all eight."""
    from sim.serving.serve import serve
    from workloads.traces import Trace

    trace = Trace(np.full(16, 1024), np.full(16, 4), concurrency=8)
    run = serve("deepseek-v3", "h200", trace, precision="fp8", framework="sglang", ep=8, attention_dp=True)
    replica = run.replicas[0]
    assert bool(run.requests.completed.all())
    assert replica.steps.prefill_tokens[0] == 8 * 1024
    dp = replica.pricer
    from sim.serving.step_cost import RankWork

    one_each = dp.step_ranks([RankWork(0, 0.0, ((1024, 0),), 1)] * 8).time_s
    assert replica.steps.time_s[0] == pytest.approx(one_each, rel=1e-9)


def test_sglangs_dp_attention_sizes_each_ranks_budget_by_its_version():
    """With --enable-dp-attention SGLang v0.4.0-v0.4.3 halve each rank's chunked prefill (8,192
    -> 4,096 a rank, 32,768 over 8 ranks) and later releases split it over the ranks (1,024 a
    rank, 8,192 in all); other engines give each rank the whole budget. Eight 3,000-token prompts
    arriving together prefill in one step under the first, in chunks of 8,192 under the second."""
    from hwmodels.engine_config import engine_for
    from sim.serving.serve import serve
    from workloads.traces import Trace

    assert engine_for("sglang-0.4").rank_token_budget(8) == 4096
    assert engine_for("sglang").rank_token_budget(8) == 1024
    assert engine_for("vllm").rank_token_budget(8) == engine_for("vllm").max_num_batched_tokens
    assert engine_for("sglang-0.4").rank_token_budget(1) == 8192  # one rank: no data parallelism
    trace = Trace(np.full(8, 3000), np.full(8, 4), concurrency=8)
    kw = dict(precision="fp8", ep=8, attention_dp=True)
    early = serve("deepseek-v3", "h200", trace, framework="sglang-0.4", **kw).replicas[0]
    late = serve("deepseek-v3", "h200", trace, framework="sglang", **kw).replicas[0]
    assert early.engine.max_num_batched_tokens == 32768 and late.engine.max_num_batched_tokens == 8192
    assert early.steps.prefill_tokens[0] == 8 * 3000
    assert late.steps.prefill_tokens[0] == 8192
