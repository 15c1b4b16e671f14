"""Contracts every registered cost model keeps, and the GPU model's hand cases."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.calibration.curves import curves_overridden
from hwmodels.calibration.params import class_params, params_for
from hwmodels.device_spec import device_names, load_device
from hwmodels.placement import Placement
from workloads.errors import UnknownNameError
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

ARCH_DEVICE = {
    "gpu": "a100-sxm-80gb",
    "cpu": "graviton3",
    "sail": "sail-n1",
    "wafer": "wse-2",
    "csd": "smartssd",
    "fpga": "alveo-u280",
    "npu": "sd8g3-npu",
    "hardwired": "hnlpu",
}
ARCH_MODEL = {"hardwired": "gpt-oss-120b"}
"""Arches that run only the model wired into them are held to the contracts on that model."""
SPEC = load_model("llama-3.1-8b")
FP16 = Quant.from_name("fp16")


def test_every_registered_arch_has_a_test_device():
    assert set(registry.names()) <= set(ARCH_DEVICE)


def test_unknown_arch_lists_closest():
    with pytest.raises(UnknownNameError, match="gpu"):
        registry.get("gpuu")


@pytest.mark.parametrize("arch", registry.names())
@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 512),
    ctx=st.integers(0, 16384),
    tokens=st.integers(1, 4096),
    phase=st.sampled_from(["decode", "prefill"]),
    scale=st.floats(1.01, 8.0),
    tp=st.sampled_from([1, 2, 4]),
    precision=st.sampled_from(["fp16", "int8", "q4_0", "int4"]),
)
def test_cost_model_invariants(arch, batch, ctx, tokens, phase, scale, tp, precision):
    dev = load_device(ARCH_DEVICE[arch])
    tp = tp if arch == "gpu" else 1  # collectives are modeled between GPUs only
    model = registry.get(arch)
    spec = load_model(ARCH_MODEL[arch]) if arch in ARCH_MODEL else SPEC
    ops = build_ops(
        spec, Quant.from_name(precision), phase=phase, batch=batch, tokens=tokens, context=ctx, tp=tp
    )
    place = Placement(tp=tp)
    base = model.estimate(ops, dev, place)
    t = base.time_s
    # never below the roofline bound
    assert np.all(t >= base.count * base.roofline_s * (1 - 1e-12))
    # more bandwidth or more compute is never slower
    assert np.all(model.estimate(ops, dev.scaled(bw=scale), place).time_s <= t * (1 + 1e-12))
    assert np.all(model.estimate(ops, dev.scaled(compute=scale), place).time_s <= t * (1 + 1e-12))
    # energy is never negative nor above peak power times time
    e = base.energy_j
    assert np.all(e >= 0) and np.all(e <= dev.tdp_w * t * (1 + 1e-12))
    assert 0 <= base.total_energy_j() <= dev.tdp_w * base.total_time_s() * (1 + 1e-12)
    # deterministic
    np.testing.assert_array_equal(model.estimate(ops, dev, place).time_s, t)


@pytest.mark.parametrize("arch", registry.names())
def test_count_scales_time_linearly(arch, small_ops):
    dev = load_device(ARCH_DEVICE[arch])
    ops = small_ops["decode"]
    if arch in ARCH_MODEL:
        ops = build_ops(load_model(ARCH_MODEL[arch]), FP16, phase="decode", batch=8, context=2048)
    doubled = type(ops)(**{**ops.__dict__, "count": ops.count * 2})
    model = registry.get(arch)
    np.testing.assert_allclose(
        model.estimate(doubled, dev).total_time_s(), 2 * model.estimate(ops, dev).total_time_s()
    )


def test_gpu_hand_case_memory_bound_gemv(a100):
    """Llama-3.1-8B decode at batch 1: ffn_down reads 4096*14336*2 B = 117,440,512 B of weights;
    on A100 80GB at 2039 GB/s * memory_efficiency the op takes bytes / (2.039e12 * eff) + one launch
    (the class's single efficiencies: the A100's measured kernel curves set aside)."""
    p = {k: v.value for k, v in params_for("gpu", "datacenter-gpu").items()}
    ops = build_ops(SPEC, FP16, phase="decode", batch=1, context=0)
    with curves_overridden({}):
        cost = registry.get("gpu").estimate(ops, a100)
    i = int(np.flatnonzero(ops.name == "ffn_down")[0])
    moved = 117_440_512 + 14336 * 2 + 4096 * 2  # weights + activation in and out
    expected = moved / (2.039e12 * p["memory_efficiency"]) + p["kernel_overhead_us"] * 1e-6
    assert cost.time_s[i] / 32 == pytest.approx(expected, rel=1e-12)
    assert cost.bound[i] == "memory"


def test_gpu_hand_case_compute_bound_gemm(a100):
    """Prefill of 4096 tokens: ffn_down is 2*4096*4096*14336 = 481 GFLOP at 312 TFLOP/s * compute_efficiency
    (the class's single efficiency: the A100's measured kernel curves set aside)."""
    p = {k: v.value for k, v in params_for("gpu", "datacenter-gpu").items()}
    ops = build_ops(SPEC, FP16, phase="prefill", batch=1, tokens=4096)
    with curves_overridden({}):
        cost = registry.get("gpu").estimate(ops, a100)
    i = int(np.flatnonzero(ops.name == "ffn_down")[0])
    expected = 2 * 4096 * 4096 * 14336 / (312e12 * p["compute_efficiency"]) + p["kernel_overhead_us"] * 1e-6
    assert cost.time_s[i] / 32 == pytest.approx(expected, rel=1e-12)
    assert cost.bound[i] == "compute"


def test_llama_cpp_quantized_gemm_is_issue_bound(a100):
    """Hand case: a 512-token Q4_0 prefill under llama.cpp on an A100 (108 SMs of 128 issue
    lanes at 1.41 GHz): ffn_down's 512*4096*14336 multiply-adds take at least that over
    108 * 128 * 1.41e9 * rate;
    the same GEMM in fp16, or without a framework, keeps the tensor-peak time."""
    p = {k: v.value for k, v in params_for("gpu", "datacenter-gpu").items()}
    q4 = build_ops(SPEC, Quant.from_name("q4_0"), phase="prefill", batch=1, tokens=512)
    i = int(np.flatnonzero(q4.name == "ffn_down")[0])
    gpu = registry.get("gpu")
    issue_s = 512 * 4096 * 14336 / (108 * 128 * 1.41e9 * p["issue_bound_gemm_macs_per_lane_cycle"])
    llama = gpu.estimate(q4, a100, Placement(framework="llama.cpp"))
    assert llama.compute_s[i] == pytest.approx(issue_s, rel=1e-12)
    assert gpu.estimate(q4, a100, Placement(framework="ollama")).compute_s[i] == pytest.approx(
        issue_s, rel=1e-12
    )
    tensor_s = gpu.estimate(q4, a100).compute_s[i]
    assert tensor_s < issue_s
    fp16 = build_ops(SPEC, FP16, phase="prefill", batch=1, tokens=512)
    plain = gpu.estimate(fp16, a100).compute_s[i]
    assert gpu.estimate(fp16, a100, Placement(framework="llama.cpp")).compute_s[i] == pytest.approx(plain)
    # a device without SM data keeps the tensor-peak time
    bare = replace(a100, extra={})
    assert gpu.estimate(q4, bare, Placement(framework="llama.cpp")).compute_s[i] == pytest.approx(tensor_s)


def test_tile_padding_makes_skinny_gemms_no_faster_per_flop(a100):
    """A 9-row GEMM (too wide for a mat-vec kernel) pays for a 64-row tile of math; a 1-row one runs as GEMV
    (at the class's single efficiency: the A100's measured kernel curves set aside)."""
    ops1 = build_ops(SPEC, FP16, phase="prefill", batch=1, tokens=9)
    ops64 = build_ops(SPEC, FP16, phase="prefill", batch=1, tokens=64)
    gpu = registry.get("gpu")
    i = int(np.flatnonzero(ops1.name == "ffn_up")[0])
    gemv = build_ops(SPEC, FP16, phase="prefill", batch=1, tokens=1)
    with curves_overridden({}):
        assert gpu.estimate(ops1, a100).compute_s[i] == pytest.approx(gpu.estimate(ops64, a100).compute_s[i])
        assert gpu.estimate(gemv, a100).compute_s[i] == pytest.approx(
            gpu.estimate(ops64, a100).compute_s[i] / 64
        )


def test_calibration_parameters_are_physical():
    for cls, params in class_params("gpu").items():
        for name in (
            "compute_efficiency",
            "memory_efficiency",
            "static_power_fraction",
        ):
            assert 0.05 <= params[name].value <= 1.0, (cls, name)
        # the math units' draw at the dense peak over the dynamic budget: above 1 where the part
        # cannot hold its peak within its TDP (H200's GEMMs: 1.42-1.80), never past 1 / 0.4 (a
        # GPU whose GEMMs at the TDP sustain under 40% of the dense peak)
        assert 0.05 <= params["math_power_fraction"].value <= 2.5, cls
        assert params["kernel_overhead_us"].value >= 0
        assert all(p.source for p in params.values())


def test_every_gpu_has_class_parameters():
    """Every GPU's class resolves to a full parameter set (an unknown class raises)."""
    needed = {
        "compute_efficiency",
        "memory_efficiency",
        "kernel_overhead_us",
        "issue_bound_gemm_macs_per_lane_cycle",
    }
    for name in device_names("gpu"):
        assert needed <= set(params_for("gpu", load_device(name).device_class)), name


@pytest.mark.parametrize(
    "device, link",
    [
        ("a100-sxm-80gb", "nvlink"),
        ("mi300x", "infinity_fabric"),
        ("gaudi3", "roce"),
        ("ascend-910b", "hccs"),
        ("tpu-v5e", "ici"),
        ("rtx-4090", "pcie"),
    ],
)
def test_collectives_run_over_the_devices_scale_up_fabric(device, link):
    """Tensor-parallel all-reduces take each vendor's scale-up fabric, PCIe only without one; a
    device with no PCIe link (Ascend 910B, TPU v5e) still runs tensor parallel."""
    from hwmodels.device_spec import load_device
    from hwmodels.placement import Placement
    from roofline.estimate import estimate

    assert Placement(tp=8).collective_link(load_device(device)).name == link
    est = estimate("llama-3.1-8b", device, batch=1, input_len=128, output_len=8, tp=8)
    assert np.isfinite(est.tpot_s).all() and (est.tpot_s > 0).all()


def test_a_faster_fabric_shortens_the_all_reduce():
    """Gaudi 2 at TP8: over its 300 GB/s RoCE ports the decode step is shorter than over its
    31.5 GB/s PCIe link, and the roofline bound holds either way."""
    from hwmodels import registry
    from hwmodels.device_spec import load_device
    from hwmodels.placement import Placement
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    dev = load_device("gaudi2")
    ops = build_ops(
        load_model("llama-3.1-70b"), Quant.from_name("bf16"), phase="decode", batch=64, context=2048, tp=8
    )
    model = registry.get("gpu")
    fabric = model.estimate(ops, dev, Placement(tp=8)).time_s.sum()
    pcie = model.estimate(ops, dev, Placement(tp=8, link="pcie")).time_s.sum()
    assert fabric < pcie


def test_gpu_dynamic_energy_by_hand(a100):
    """A step's dynamic energy is its FLOPs at the class's J per FLOP plus its device-memory bytes
    at the DRAM's energy per byte and the on-chip carry (``onchip_pJ_per_byte``), times each op's
    count: tripling the bytes triples their share, and the on-chip term adds its own."""
    from hwmodels.calibration.params import overridden

    gpu = registry.get("gpu")
    ops = build_ops(SPEC, FP16, phase="decode", batch=4, tokens=1, context=512)
    cls = a100.device_class
    with overridden("gpu", cls, {"onchip_pJ_per_byte": 30.0}):
        p = {k: v.value for k, v in params_for("gpu", cls).items()}
        cost = gpu.estimate(ops, a100)
    static_w = p["static_power_fraction"] * a100.tdp_w
    j_per_flop = (
        p["math_power_fraction"] * (a100.tdp_w - static_w) / np.array([a100.peak(f) for f in ops.fmt])
    )
    j_per_byte = a100.memory.energy_j_per_byte + 30e-12
    by_hand = ops.count * (ops.flops * j_per_flop + ops.memory_bytes * j_per_byte)
    assert cost.dynamic_energy_j == pytest.approx(by_hand, rel=1e-12)
    # the step total the estimate reads is summed as it is priced, not from the per-op array
    assert cost.step_dynamic_energy_j() == pytest.approx(by_hand.sum(axis=0), rel=1e-12)
    tripled = replace(ops, weight_bytes=3 * ops.weight_bytes)
    with overridden("gpu", cls, {"onchip_pJ_per_byte": 30.0}):
        more = gpu.estimate(tripled, a100).dynamic_energy_j
    assert more - cost.dynamic_energy_j == pytest.approx(
        2 * ops.count * ops.weight_bytes * j_per_byte, rel=1e-9
    )


def test_sustained_gemm_rate_bounds_long_math_and_leaves_decode_alone():
    """Hand case on the H200 (measured sustained bf16 GEMM rate 661 TFLOP/s): a 4096-token
    prefill's ffn_down, 2*4096*4096*14336 = 481 GFLOP, takes 481e9 / 661e12 s of math,
    while the burst-timed kernel curve alone prices it faster; halving the stated rate doubles
    that time. A batch-1 decode step, memory-bound, does not move."""
    h200 = load_device("h200")
    assert h200.sustained_rate("bf16") == pytest.approx(661e12)
    assert h200.sustained_rate("fp16") == pytest.approx(661e12)  # the same tensor units
    gpu = registry.get("gpu")
    bf16 = Quant.from_name("bf16")
    pre = build_ops(SPEC, bf16, phase="prefill", batch=1, tokens=4096)
    i = int(np.flatnonzero(pre.name == "ffn_down")[0])
    flops = 2 * 4096 * 4096 * 14336
    unbound = replace(h200, sustained_gemm={})
    burst = gpu.estimate(pre, unbound).compute_s[i]
    assert burst < flops / 661e12  # the kernel curve's burst rate is above the sustained one
    bound = gpu.estimate(pre, h200).compute_s[i]  # the curve's partial overlap adds a little memory time
    assert flops / 661e12 <= bound == pytest.approx(flops / 661e12, rel=1e-3)
    halved = replace(h200, sustained_gemm={"bf16": 330.5e12})
    assert gpu.estimate(pre, halved).compute_s[i] == pytest.approx(2 * flops / 661e12, rel=1e-3)
    dec = build_ops(SPEC, bf16, phase="decode", batch=1, context=1024)
    np.testing.assert_array_equal(gpu.estimate(dec, h200).time_s, gpu.estimate(dec, unbound).time_s)
