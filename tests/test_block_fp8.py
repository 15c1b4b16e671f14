"""Block-scaled FP8 checkpoints (DeepSeek-V3/R1) under the early-2025 engines' kernels."""

from dataclasses import replace
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from hwmodels import registry
from hwmodels.calibration import params
from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import load_device
from hwmodels.placement import Placement
from roofline.kernel_fit import _fused_moe_frames, predict_fused_moe
from roofline.validation import framework_of
from workloads.errors import ConfigError
from workloads.graph import build_ops
from workloads.model_spec import load_model, spec_from_config
from workloads.quant import Quant

FP8 = Quant.from_name("fp8")


@pytest.fixture(scope="module")
def deepseek():
    return load_model("deepseek-r1")


def _decode(spec, batch=4, quant=FP8):
    return build_ops(spec, quant, phase="decode", batch=batch, context=3200, tp=8)


def test_the_checkpoints_weight_blocks_tag_its_fp8_gemms(deepseek):
    """DeepSeek-R1 states 128 x 128 FP8 weight blocks; its linear layers carry them, while the
    router and LM head (BF16 in the checkpoint) and MLA's absorbed products (re-laid at load) do
    not, nor does any op of a BF16 run or of a checkpoint without blocks."""
    assert deepseek.fp8_weight_block == 128
    ops = _decode(deepseek)
    tagged = set(ops.name[ops.weight_block > 0])
    assert {"q_down", "o_proj", "experts_up", "experts_down", "shared_expert_up"} <= tagged
    assert not tagged & {"router", "lm_head", "q_absorb", "v_absorb", "attention", "allreduce_attn"}
    assert not _decode(deepseek, quant=Quant.from_name("bf16")).weight_block.any()
    assert load_model("llama-3.1-70b").fp8_weight_block == 0


@pytest.mark.parametrize("size", [[128], [128, 64], "128", [128.0, 128.0], [0, 0], [True, True]])
def test_a_malformed_weight_block_size_is_named(deepseek, size):
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 256,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "vocab_size": 1000,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": size},
    }
    with pytest.raises(ConfigError, match="weight_block_size"):
        spec_from_config(cfg, "m")


def _priced(ops, framework, device="h200"):
    dev = load_device(device)
    return registry.get(dev.arch).estimate(ops, dev, Placement(tp=8, framework=framework))


def test_early_engines_charge_their_block_fp8_kernels_by_hand(deepseek, monkeypatch):
    """Under vllm-v0 each block-scaled GEMM pays 15 us besides its roofline time and the routed
    experts stream their weights at 0.26 of the bandwidth; without its block_fp8 terms the same
    step differs in exactly those ops (the dense ones' math, at 0.28 of the FP8 peak, barely
    shows at 4 rows)."""
    ops = _decode(deepseek)
    early = _priced(ops, "vllm-v0")
    kernels = framework_terms("vllm-v0").block_fp8
    assert kernels.gemm_latency_us == 15 and framework_terms("vllm").block_fp8 is None
    table = params._frameworks()
    monkeypatch.setitem(table, "vllm-v0", replace(table["vllm-v0"], block_fp8=None))
    plain = _priced(ops, "vllm-v0")
    block = ops.weight_block > 0
    extra = (early.overhead_s - plain.overhead_s).reshape(-1)
    assert np.allclose(extra[block], 15e-6) and np.allclose(extra[~block], 0.0)
    moe = np.isin(ops.name, ["experts_up", "experts_down"])
    want = ops.memory_bytes[moe].reshape(-1) / (load_device("h200").memory.bw_bytes_per_s * 0.26)
    got = early.memory_s.reshape(-1)[moe]  # the Hopper FP8 curve's partial overlap adds a sliver of math
    assert np.all(want <= got) and np.all(got <= 1.01 * want)
    for term in ("memory_s", "compute_s"):  # ops over no block-scaled weights are as they were
        assert np.allclose(getattr(early, term).reshape(-1)[~block], getattr(plain, term).reshape(-1)[~block])
    dense = block & ~moe  # at 4 rows the dense block GEMMs stream their weights as before
    assert np.allclose(early.memory_s.reshape(-1)[dense], plain.memory_s.reshape(-1)[dense], rtol=0.01)
    assert np.all(early.compute_s.reshape(-1)[dense] >= plain.compute_s.reshape(-1)[dense])


def test_tripling_the_latency_adds_twice_it_per_block_gemm(deepseek, monkeypatch):
    ops = _decode(deepseek, batch=1)
    base = float(_priced(ops, "vllm-v0").total_time_s())
    table = params._frameworks()
    terms = table["vllm-v0"]
    monkeypatch.setitem(
        table, "vllm-v0", replace(terms, block_fp8=replace(terms.block_fp8, gemm_latency_us=45))
    )
    tripled = float(_priced(ops, "vllm-v0").total_time_s())
    calls = float(ops.count @ (ops.weight_block > 0))
    assert tripled - base == pytest.approx(calls * 30e-6, rel=1e-9)


def test_per_tensor_fp8_checkpoints_are_untouched(deepseek, monkeypatch):
    """Llama's FP8 checkpoints scale per tensor or channel (CUTLASS scaled_mm): the block-FP8
    terms leave their steps as they were, and DeepSeek's step only where they apply."""
    llama = build_ops(load_model("llama-3.1-70b"), FP8, phase="decode", batch=16, context=2048, tp=8)
    ds = _decode(deepseek)
    with_terms = [float(_priced(o, "vllm-v0").total_time_s()) for o in (llama, ds)]
    table = params._frameworks()
    monkeypatch.setitem(table, "vllm-v0", replace(table["vllm-v0"], block_fp8=None))
    without = [float(_priced(o, "vllm-v0").total_time_s()) for o in (llama, ds)]
    assert not llama.weight_block.any() and with_terms[0] == without[0]
    assert with_terms[1] > 1.5 * without[1]


def test_the_fused_moe_timings_it_was_fitted_on_are_met():
    """vLLM PR #13932 timed the Triton fused MoE of DeepSeek-V3 at TP 8 on an H100 (us a layer,
    ``kernels/block_fp8.csv``); hwsim's routed experts under vllm-v0 come within 0.85-1.2x of
    each, where the class's terms (vLLM V1) are 2-7x too fast. The report charts both."""
    kernels = pd.read_csv(files("hwmodels.calibration").joinpath("kernels/block_fp8.csv"))
    moe = kernels[kernels["kernel"] == "fused_moe"]
    assert len(moe) == 6 and set(moe["device"]) == {"h100-sxm"}
    for framework, low, high in (("vllm-v0", 0.85, 1.2), ("vllm", 0.15, 0.5)):
        ratio = predict_fused_moe(moe["tokens"], "h100-sxm", framework) * 1e6 / moe["latency_us"].to_numpy()
        assert np.all((low <= ratio) & (ratio <= high)), (framework, ratio)
    (frame,) = _fused_moe_frames().values()
    assert frame["measured"].notna().sum() == 6 and frame["predicted"].notna().sum() == 12


def test_sglang_versions_resolve_to_their_engine_terms():
    """SGLang's DeepGEMM default came with v0.4.6 (PR #5628): earlier releases are sglang-0.4,
    which differs from sglang only in its block-FP8 kernels and its absorbed MLA prefill."""
    cases = {"0.4.3.post2": "sglang-0.4", "0.4.2.post4": "sglang-0.4", "0.3.0": "sglang-0.4"}
    cases |= {"0.4.6": "sglang", "0.4.10": "sglang", "0.5.9": "sglang"}
    for version, framework in cases.items():
        assert framework_of("sglang", f"notes version={version}") == framework, version
    early, late = framework_terms("sglang-0.4"), framework_terms("sglang")
    assert (
        replace(early, name="sglang", source=late.source, block_fp8=None, absorbed_mla_prefill=None) == late
    )
    assert early.block_fp8 == framework_terms("vllm-v0").block_fp8


def test_the_dense_block_gemms_at_prefill_sizes_run_at_the_timed_rate():
    """vLLM PR #23280 and SGLang PR #5820 timed the early Triton block-FP8 GEMM at 1,024-8,192
    rows of DeepSeek-V3's TP-8 shapes at 243-590 TFLOP/s; ``gemm_math_efficiency`` (0.28 of the
    FP8 peak) was fitted to them through hwsim's pricing, which meets each within 0.7-1.45x and
    the median within 0.9-1.15x, where the class's FP8 curve (vLLM V1) prices them at least 1.5x
    faster than timed in the median."""
    from workloads.graph import gemm_table

    kernels = pd.read_csv(files("hwmodels.calibration").joinpath("kernels/block_fp8.csv"))
    large = kernels[(kernels["kernel"] == "gemm") & (kernels["tokens"] >= 1024)]
    assert len(large) == 10
    h100 = load_device("h100-sxm")
    ratios = {}
    for framework in ("vllm-v0", "vllm"):
        got = []
        for row in large.itertuples():
            ops = gemm_table(float(row.tokens), float(row.n), float(row.k), FP8)
            ops = replace(ops, weight_block=np.array([128.0]))
            cost = registry.get("gpu").estimate(ops, h100, Placement(framework=framework))
            # the timings are the GEMM kernel's alone: the launch of the activation-quantizing
            # kernel hwsim charges before a block-FP8 GEMM is taken off
            quantize_s = framework_terms(framework).kernel_overhead_us * 1e-6
            got.append(
                float((np.maximum(cost.compute_s, cost.memory_s) + cost.overhead_s).ravel()[0]) - quantize_s
            )
        ratios[framework] = np.array(got) * 1e6 / large["latency_us"].to_numpy()
    early = ratios["vllm-v0"]
    assert np.all((0.7 <= early) & (early <= 1.45)) and 0.9 <= np.median(early) <= 1.15, early
    assert np.median(ratios["vllm"]) <= 1 / 1.5, ratios["vllm"]
    flops = 2.0 * 4096 * 2112 * 7168  # by hand: compute-bound at 0.28 of the 1,979 TFLOP/s peak
    ops = replace(gemm_table(4096.0, 2112.0, 7168.0, FP8), weight_block=np.array([128.0]))
    cost = registry.get("gpu").estimate(ops, h100, Placement(framework="vllm-v0"))
    # the curve's partial overlap adds a sliver of weight streaming
    assert float(cost.compute_s.ravel()[0]) == pytest.approx(flops / (1978.9e12 * 0.28), rel=5e-3)


def test_a_block_fp8_gemm_launches_its_activation_quantization_too():
    """A GEMM over block-scaled FP8 weights launches two kernels (the activations' group
    quantization, then the GEMM), the same GEMM over per-tensor FP8 weights one: under vLLM V1
    (2 us a graph node) 4 against 2 us of launches; under TensorRT-LLM's eager PyTorch backend
    (20 us a Python launch, hidden behind the device time before it) exactly 20 us more."""
    from workloads.graph import gemm_table

    h100 = load_device("h100-sxm")
    plain = gemm_table(4.0, 2112.0, 7168.0, FP8)
    blocked = replace(plain, weight_block=np.array([128.0]))
    gpu = registry.get("gpu")

    def overhead_us(ops, framework):
        return float(gpu.estimate(ops, h100, Placement(framework=framework)).overhead_s.ravel()[0]) * 1e6

    assert overhead_us(plain, "vllm") == pytest.approx(2.0)
    assert overhead_us(blocked, "vllm") == pytest.approx(4.0)
    eager = "tensorrt-llm-pytorch-eager"
    assert overhead_us(blocked, eager) - overhead_us(plain, eager) == pytest.approx(20.0)


def test_on_cdna3_the_kernels_run_at_their_fitted_rates_by_hand(deepseek):
    """On MI300X (and MI325X) the early block-FP8 terms are the ``devices`` entry's: the math at
    0.55 of the Hopper fractions (a dense block GEMM at 0.154 of the FP8 peak, the fused MoE at
    0.0286) and the fused MoE streaming at 0.35 of the bandwidth; elsewhere as timed on the H100."""
    kernels = framework_terms("vllm-v0").block_fp8
    assert kernels.on("h200") == kernels and kernels.on("b200") == kernels
    for name in ("mi300x", "mi325x"):
        on = kernels.on(name)
        assert (on.gemm_math_efficiency, on.moe_math_efficiency) == pytest.approx((0.154, 0.0286))
        assert on.moe_stream_efficiency == 0.35 and on.gemm_latency_us == 15
    assert framework_terms("sglang-0.4").block_fp8.on("mi300x") == kernels.on("mi300x")
    # the math at 0.55 slows a prefill's routed experts by up to 1/0.55 (their other time unchanged);
    # a decode's expert weights stream at 0.35 of MI300X's bandwidth
    mi300x = load_device("mi300x")
    table = params._frameworks()
    plain = replace(table["vllm-v0"], block_fp8=replace(kernels, devices=()))
    ops = build_ops(deepseek, FP8, phase="prefill", batch=1, tokens=4096.0, tp=8)
    moe = np.isin(ops.name, ["experts_up", "experts_down"])
    fitted = _priced(ops, "vllm-v0", "mi300x").compute_s.reshape(-1)[moe]
    with params.framework_replaced("vllm-v0", block_fp8=plain.block_fp8):
        timed = _priced(ops, "vllm-v0", "mi300x").compute_s.reshape(-1)[moe]
    assert np.all((1.4 < fitted / timed) & (fitted / timed <= 1 / 0.55 + 1e-9))
    ops = _decode(deepseek, batch=64)
    moe = np.isin(ops.name, ["experts_up", "experts_down"])
    want = ops.memory_bytes[moe].reshape(-1) / (mi300x.memory.bw_bytes_per_s * 0.35)
    got = _priced(ops, "vllm-v0", "mi300x").memory_s.reshape(-1)[moe]  # plus the overlap's share of math
    assert np.all(want <= got) and np.all(got <= 1.1 * want)


def test_the_cdna3_rates_are_the_fit_on_the_whole_mi300x_runs():
    """``roofline.block_fp8_device_fit`` finds the shipped MI300X rates as the least-squares
    point of its grid, inside it, on the five numbers of three runs; hwsim meets each within
    0.7-1.4x there, and each run is reported with its error when left out."""
    from roofline.block_fp8_device_fit import fit

    result = fit()
    (rates,) = framework_terms("vllm-v0").block_fp8.devices
    assert (result["math_scale"], result["moe_stream_efficiency"]) == (
        rates.math_scale,
        rates.moe_stream_efficiency,
    )
    assert not result["at_grid_edge"] and len(result["runs"]) == 5
    assert np.all((0.7 <= result["ratios"]) & (result["ratios"] <= 1.4))
    assert set(result["held_out"]) == {"rocm-blog-before-aiter", "sglang-pr3237", "vllm-pr13199"}
    # the report's chart of the runs prices them at the shipped rates: the fit's ratios
    from roofline.block_fp8_device_fit import frames

    (frame,) = frames().values()
    assert np.allclose(frame["predicted"] / frame["measured"], result["ratios"])


@pytest.mark.parametrize(
    "devices",
    [
        "mi300x",
        [{"devices": ["mi300x"], "math_scale": 0, "moe_stream_efficiency": 0.3, "source": "s"}],
        [{"devices": [], "math_scale": 0.5, "moe_stream_efficiency": 0.3, "source": "s"}],
        [{"devices": ["mi300x"], "math_scale": 0.5, "source": "s"}],
    ],
)
def test_a_malformed_device_entry_is_named(devices):
    entry = {
        "gemm_latency_us": 15,
        "gemm_math_efficiency": 0.28,
        "moe_stream_efficiency": 0.26,
        "moe_math_efficiency": 0.052,
        "source": "s",
        "devices": devices,
    }
    with pytest.raises(ConfigError, match=r"block_fp8\.devices"):
        params._block_fp8(entry, "frameworks.x.block_fp8")
