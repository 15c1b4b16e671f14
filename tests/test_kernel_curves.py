"""Kernel-efficiency curves (GEMM, prefill and decode attention, NVLink all-reduce), their fit on the shipped
kernel extracts, and the leave-one-family-out error they are judged by."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import yaml

from hwmodels.calibration.curves import (
    FORMAT_CURVE,
    architectures,
    curves_overridden,
    gemm_curve,
    without_curves,
)
from hwmodels.device_spec import catalog
from hwmodels.gpu import GpuCostModel
from hwmodels.placement import Placement
from roofline.calibrate import covered_rows, device_family, families, leave_one_family_out
from roofline.kernel_fit import PARAMS, fit_curve, load_kernels, predict_decode_attention, predict_gemm
from roofline.validation import load_measured
from workloads.errors import ConfigError
from workloads.graph import allreduce_table, attention_table, build_ops, decode_attention_table, gemm_table
from workloads.model_spec import load_model
from workloads.quant import Quant

CURVE = {"e_max": 0.5, "m_half": 64.0, "stream_efficiency": 0.8, "latency_us": 10.0}
RECORD = {"gemm": {"hopper-gh100": {"fp8": CURVE}}}


def test_gemm_curve_hand_case():
    """An FP8 GEMM of m = 64 rows, n = k = 8192 on an H100 SXM (1978.9 TFLOP/s FP8, 3.35 TB/s)
    under e_max 0.5, m_half 64: efficiency 0.5 * 64 / 128 = 0.25, so the math takes
    2 * 64 * 8192^2 / (1978.9e12 * 0.25) = 17.36 us; the 8192^2 FP8 weights plus 2 * 64 * 8192
    activation bytes stream at 0.8 * 3.35 TB/s in 25.24 us. The curve's 10 us per call (the
    collector's launch) is not charged: the launch costs the class's kernel overhead, as before."""
    ops = gemm_table(64.0, 8192.0, 8192.0, Quant.from_name("fp8"))
    model, device = GpuCostModel(), catalog()["h100-sxm"]
    with curves_overridden(RECORD):
        cost = model.estimate(ops, device)
    with curves_overridden({}):
        plain = model.estimate(ops, device)
    assert float(cost.compute_s[0]) == pytest.approx(2 * 64 * 8192**2 / (1978.9e12 * 0.25), rel=1e-3)
    assert float(cost.memory_s[0]) == pytest.approx((8192**2 + 2 * 64 * 8192) / (0.8 * 3.35e12), rel=1e-3)
    np.testing.assert_allclose(cost.overhead_s, plain.overhead_s)


def test_partial_overlap_of_math_and_memory_hand_case():
    """The hand case above with overlap k: the larger time (memory, 25.24 us) becomes
    (17.36^k + 25.24^k)^(1/k) us: their sum at k = 1 (42.60 us), 30.63 us at k = 2; the math time
    and the bound stay; a compute-bound GEMM (m = 8192) is raised on its math time instead."""
    c, m = 2 * 64 * 8192**2 / (1978.9e12 * 0.25), (8192**2 + 2 * 64 * 8192) / (0.8 * 3.35e12)
    device = catalog()["h100-sxm"]
    for k, expect in ((1.0, c + m), (2.0, (c**2 + m**2) ** 0.5), (64.0, m)):
        record = {"gemm": {"hopper-gh100": {"fp8": {**CURVE, "overlap": k}}}}
        with curves_overridden(record):
            cost = GpuCostModel().estimate(gemm_table(64.0, 8192.0, 8192.0, Quant.from_name("fp8")), device)
        assert float(cost.memory_s[0]) == pytest.approx(expect, rel=1e-3), k
        assert float(cost.compute_s[0]) == pytest.approx(c, rel=1e-3)
    with curves_overridden({"gemm": {"hopper-gh100": {"fp8": {**CURVE, "overlap": 1.0}}}}):
        big = GpuCostModel().estimate(gemm_table(8192.0, 8192.0, 8192.0, Quant.from_name("fp8")), device)
    c_big = 2 * 8192**3 / (1978.9e12 * 0.5 * 8192 / (8192 + 64))
    m_big = (8192**2 + 2 * 8192 * 8192) / (0.8 * 3.35e12)
    assert float(big.compute_s[0]) == pytest.approx(c_big + m_big, rel=1e-3)
    assert float(big.memory_s[0]) == pytest.approx(m_big, rel=1e-3)


def test_gemm_efficiency_saturates_with_rows():
    """More token rows never lower a GEMM's achieved rate, and the rate approaches e_max."""
    m = 2.0 ** np.arange(4, 15)
    ops = gemm_table(m, 8192.0, 8192.0, Quant.from_name("fp8"))
    with curves_overridden(RECORD):
        cost = GpuCostModel().estimate(ops, catalog()["h100-sxm"])
    rate = (ops.flops / cost.compute_s)[0] / 1978.9e12
    assert np.all(np.diff(rate) >= -1e-12) and 0.49 < rate[-1] <= 0.5


def test_curve_fit_recovers_its_parameters():
    """Kernel times the model gives under known curve values (latency included, as the collectors
    time each call) are fitted back to those values."""
    rows = load_kernels("gemm")
    rows = rows.loc[(rows["device"] == "h100-sxm") & (rows["dtype"] == "fp8")].reset_index(drop=True)
    with curves_overridden(RECORD):
        rows["latency_us"] = predict_gemm(rows) * 1e6
    got = fit_curve("gemm", "hopper-gh100", "fp8", rows)
    for name, value in CURVE.items():
        assert got[name] == pytest.approx(value, rel=0.05, abs=1.0), name


def test_attention_of_fp4_models_runs_in_fp8_and_w8a8_in_16_bits():
    """NVFP4 keeps an FP8 KV cache, so attention runs at the FP8 peak, not the FP4 one; a W8A8
    model with a 16-bit cache attends in 16 bits."""
    assert Quant.from_name("fp4").attention_format == "fp8"
    assert Quant.from_name("int8").attention_format == "fp16"
    assert Quant.from_name("fp8").attention_format == "fp8"
    ops = build_ops(load_model("llama-3.1-8b"), Quant.from_name("fp4"), phase="prefill", batch=1, tokens=512)
    body = (ops.kind == "gemm") & (ops.name != "lm_head")  # the recipe keeps its LM head in 16 bits
    assert set(ops.fmt[ops.kind == "attention"]) == {"fp8"} and set(ops.fmt[body]) == {"fp4"}
    assert ops.keys[ops.kind == "attention"].ravel() == pytest.approx([(512 + 1) / 2])


def test_prefill_attention_curve_hand_case():
    """Prefill attention of 4 prompts of 2048 tokens, 32 heads over 8 KV heads of 128 on an H100 in
    BF16 (989.4 TFLOP/s): 2 * 4 * 32 * 2048 * 1024.5 * 256 FLOPs at 0.5 * 1024.5 / (1024.5 + 1024.5)
    = 0.25 of peak. Decode attention (fitted on no decode kernel) keeps the class's efficiency."""
    record = {
        "attention_prefill": {"hopper-gh100": {"bf16": {"e_max": 0.5, "keys_half": 1024.5, "latency_us": 15}}}
    }
    model, device, bf16 = GpuCostModel(), catalog()["h100-sxm"], Quant.from_name("bf16")
    ops = attention_table(4, 2048, 32, 8, 128, bf16)
    decode = build_ops(load_model("llama-3.1-8b"), bf16, phase="decode", batch=64, context=2048)
    with curves_overridden(record):
        cost = model.estimate(ops, device)
        dec = model.estimate(decode, device)
    with curves_overridden({}):
        dec_plain = model.estimate(decode, device)
    flops = 2 * 4 * 32 * 2048 * 1024.5 * 256
    assert float(cost.compute_s.ravel()[0]) == pytest.approx(flops / (989.4e12 * 0.25), rel=1e-3)
    np.testing.assert_allclose(dec.compute_s, dec_plain.compute_s)


DECODE = {"stream_efficiency": 0.8, "stream_ns": 10.0, "latency_us": 12.0}
DECODE_RECORD = {"attention_decode": {"hopper-gh100": {"vllm/bf16": DECODE}}}


def test_decode_attention_curve_hand_case():
    """Decode attention of 64 sequences after 2048 cached tokens, 64 query heads over 8 KV heads of
    128 in BF16 on an H100 (3.35 TB/s) under vLLM's kernels: its bytes (the 64 x 2048 x 8 x 128 x 2
    x 2 = 536,870,912 B of cached keys and values, plus the new token's query, output and K/V)
    stream at 0.8 of the bandwidth, and its 64 x 8 = 512 (sequence, KV head) walks cost 10 ns each:
    5.12 us. The curve's 12 us per call (the collector's launch) is not charged. Tripling the time
    per walk adds twice 5.12 us. The same op under TensorRT-LLM's kernels (no curve here), with no
    framework, or on an MI300X keeps the class's efficiency and no time per walk."""
    bf16 = Quant.from_name("bf16")
    ops = decode_attention_table(64.0, 2048.0, 64, 8, 128, bf16)
    h100 = catalog()["h100-sxm"]
    model = GpuCostModel()
    kv = 64 * 2048 * 8 * 128 * 2 * 2
    assert float(ops.kv_read_bytes.ravel()[0]) == kv and float(ops.kv_streams.ravel()[0]) == 512
    moved = float(ops.memory_bytes.ravel()[0])
    with curves_overridden(DECODE_RECORD):
        vllm = float(model.estimate(ops, h100, Placement(framework="vllm")).memory_s.ravel()[0])
        trt = float(model.estimate(ops, h100, Placement(framework="tensorrt-llm")).memory_s.ravel()[0])
        bare = float(model.estimate(ops, h100).memory_s.ravel()[0])
        amd = model.estimate(ops, catalog()["mi300x"], Placement(framework="vllm"))
    triple = {"attention_decode": {"hopper-gh100": {"vllm/bf16": {**DECODE, "stream_ns": 30.0}}}}
    with curves_overridden(triple):
        slower = float(model.estimate(ops, h100, Placement(framework="vllm")).memory_s.ravel()[0])
    with curves_overridden({}):
        plain = float(model.estimate(ops, h100, Placement(framework="vllm")).memory_s.ravel()[0])
        amd_plain = model.estimate(ops, catalog()["mi300x"], Placement(framework="vllm"))
    assert vllm == pytest.approx(moved / (0.8 * 3.35e12) + 512 * 10e-9, rel=1e-9)
    assert slower - vllm == pytest.approx(2 * 512 * 10e-9, rel=1e-6)
    assert trt == pytest.approx(plain) and bare == pytest.approx(plain) and plain != pytest.approx(vllm)
    np.testing.assert_allclose(amd.memory_s, amd_plain.memory_s)


def test_decode_attention_curve_prices_only_decode_in_full_models():
    """In a whole decode step of Llama-3.1-8B under vLLM only the attention row changes with the
    decode curve (its GEMMs, norms and the prefill step do not); more context or more sequences
    never make it faster."""
    spec, bf16, h100 = load_model("llama-3.1-8b"), Quant.from_name("bf16"), catalog()["h100-sxm"]
    batch = np.array([1.0, 16.0, 256.0])[:, None]
    context = np.array([128.0, 2048.0, 16384.0])[None, :]
    decode = build_ops(spec, bf16, phase="decode", batch=batch, context=context)
    prefill = build_ops(spec, bf16, phase="prefill", batch=4, tokens=512)
    place, model = Placement(framework="vllm"), GpuCostModel()
    with curves_overridden(DECODE_RECORD):
        on, pre_on = model.estimate(decode, h100, place), model.estimate(prefill, h100, place)
    with curves_overridden({}):
        off, pre_off = model.estimate(decode, h100, place), model.estimate(prefill, h100, place)
    attention = decode.kind == "attention"
    np.testing.assert_allclose(on.memory_s[~attention], off.memory_s[~attention])
    np.testing.assert_allclose(pre_on.memory_s, pre_off.memory_s)
    t = np.broadcast_to(on.memory_s[attention][0], (3, 3))
    assert np.all(np.diff(t, axis=0) > 0) and np.all(np.diff(t, axis=1) > 0)


def test_decode_attention_fit_recovers_its_parameters():
    """Decode-attention times the model gives under known curve values (latency included, as the
    collectors time each call) are fitted back to those values."""
    rows = load_kernels("attention_decode")
    rows = rows.loc[
        rows["device"].isin(["h100-sxm", "h200"]) & (rows["engine"] == "vllm") & (rows["kv_dtype"] == "bf16")
    ].reset_index(drop=True)
    with curves_overridden(DECODE_RECORD):
        rows["latency_us"] = predict_decode_attention(rows) * 1e6
    got = fit_curve("attention_decode", "hopper-gh100", "vllm/bf16", rows)
    for name, value in DECODE.items():
        assert got[name] == pytest.approx(value, rel=0.02), name


def test_allreduce_curve_hand_case():
    """A 1 MiB all-reduce over 8 H100s (450 GB/s NVLink): a ring sends 2 * 7/8 MiB per device in 14
    steps; at 0.5 of the link, 3 us base and 0.2 us per step it takes 1835008 / 225e9 + 3 + 2.8 us.
    With its first 1 MB at 0.25 of the link those bytes take 2 x as long: 1e6 / 450e9 x (4 - 2) s
    more; with a 10 MB knee all 1835008 bytes do."""
    ops = allreduce_table(2.0**20, 8, Quant.from_name("bf16"))
    link_bytes = 2 * 7 / 8 * 2**20
    terms = {"bw_efficiency": 0.5, "base_latency_us": 3.0, "step_latency_us": 0.2}

    def link_s(small: float, knee_mb: float) -> float:
        record = {"allreduce": {"nvlink": {**terms, "small_bw_efficiency": small, "knee_MB": knee_mb}}}
        with curves_overridden(record):
            cost = GpuCostModel().estimate(ops, catalog()["h100-sxm"], Placement(tp=8))
        return float(cost.link_s.ravel()[0])

    assert link_s(0.5, 0.0) == pytest.approx(link_bytes / 225e9 + 5.8e-6, rel=1e-6)
    assert link_s(0.25, 1.0) == pytest.approx(link_bytes / 225e9 + 5.8e-6 + 1e6 / 450e9 * 2, rel=1e-6)
    assert link_s(0.25, 10.0) == pytest.approx(link_bytes / 112.5e9 + 5.8e-6, rel=1e-6)


def test_devices_without_measured_kernels_keep_their_class_efficiency():
    """MI300X has no measured kernels: no curve prices it, and its BF16 estimate is the same with
    the curves on or off; an H100 priced without its curves (the strict leave-one-family-out) changes."""
    ops = build_ops(load_model("llama-3.1-8b"), Quant.from_name("fp8"), phase="prefill", batch=4, tokens=1024)
    bf16 = build_ops(
        load_model("llama-3.1-8b"), Quant.from_name("bf16"), phase="prefill", batch=4, tokens=1024
    )
    model = GpuCostModel()
    with curves_overridden(RECORD):
        assert gemm_curve("mi300x", "fp8") is None and gemm_curve("h100-sxm", "fp8") is not None
        on = model.estimate(bf16, catalog()["mi300x"]).total_time_s()
        with_curves = model.estimate(ops, catalog()["h100-sxm"]).total_time_s()
        with without_curves(["h100-sxm"]):
            assert gemm_curve("h100-sxm", "fp8") is None
            assert model.estimate(ops, catalog()["h100-sxm"]).total_time_s() != pytest.approx(with_curves)
    with curves_overridden({}):
        assert model.estimate(bf16, catalog()["mi300x"]).total_time_s() == pytest.approx(on)


def test_a_card_with_the_measured_parts_power_per_flop_takes_its_curve():
    """H200 NVL (600 W over 1,670.5 FP8 TFLOP/s, the SXM part's power per peak FLOP) is priced on
    the Hopper curve at its own peak: a compute-bound FP8 GEMM of 8192^3 takes the H200's time
    times 1978.9 / 1670.5. H100 NVL (400 W over the same peak) keeps its class efficiency."""
    ops = gemm_table(8192.0, 8192.0, 8192.0, Quant.from_name("fp8"))
    model = GpuCostModel()

    def compute_s(device: str) -> float:
        dev = replace(catalog()[device], sustained_gemm={})  # the curve alone, no power limit
        return float(model.estimate(ops, dev).compute_s.ravel()[0])

    assert gemm_curve("h200-nvl", "fp8") is not None and gemm_curve("h100-nvl", "fp8") is None
    assert compute_s("h200-nvl") == pytest.approx(compute_s("h200") * 1978.9 / 1670.5, rel=1e-3)
    # the class efficiency (with FP8 held to the measured speed-up over BF16) is below the curve's
    assert compute_s("h100-nvl") > 1.1 * compute_s("h200-nvl")


def test_fp8_gemm_without_a_curve_runs_at_the_measured_speedup_over_bf16():
    """MI300X promises twice its BF16 peak in FP8 (2614.9 vs 1307.4 TFLOP/s); with FP8 measured at
    1.5x BF16 elsewhere, its FP8 GEMMs run at 1.5 / 2 = 0.75 of the class efficiency of the FP8 peak.
    Gaudi 3 promises no FP8 gain (1677 both), so nothing shrinks there."""
    ops = gemm_table(4096.0, 8192.0, 8192.0, Quant.from_name("fp8"))
    model = GpuCostModel()
    for device, factor in (("mi300x", 0.75), ("gaudi3", 1.0)):
        dev = replace(catalog()[device], sustained_gemm={})  # the kernels' own rate, no power limit
        with curves_overridden({}):
            plain = float(model.estimate(ops, dev).compute_s.ravel()[0])
        with curves_overridden({"format_speedup": {"fp8": 1.5}}):
            scaled = float(model.estimate(ops, dev).compute_s.ravel()[0])
        assert scaled == pytest.approx(plain / factor, rel=1e-3), device


def test_an_architecture_with_a_measured_peak_fraction_ignores_the_class_and_the_median():
    """Gaudi 2's large GEMMs were timed at 96.7% (BF16) and 91.8% (FP8) of their peaks
    (gpu_kernels.yaml): a 4096 x 8192 x 8192 GEMM (no tile padding) takes its FLOPs over that
    share of the 432 and 865 TFLOP/s peaks, whatever the class's efficiency or the median FP8
    speed-up of the other architectures; MI300X, without a stated share, still takes the median."""
    fp8 = gemm_table(4096.0, 8192.0, 8192.0, Quant.from_name("fp8"))
    bf16 = gemm_table(4096.0, 8192.0, 8192.0, Quant.from_name("bf16"))
    flops = 2.0 * 4096 * 8192 * 8192
    model = GpuCostModel()
    gaudi2 = catalog()["gaudi2"]
    mi300x = replace(catalog()["mi300x"], sustained_gemm={})  # the kernels' own rates, no power limit
    assert architectures()["gaudi2-hl225"]["gemm_peak_fraction"] == {"bf16": 0.967, "fp8": 0.918}
    for median in (1.2, 1.5):
        with curves_overridden({"format_speedup": {"fp8": median}}):
            t8 = float(model.estimate(fp8, gaudi2).compute_s.ravel()[0])
            t16 = float(model.estimate(bf16, gaudi2).compute_s.ravel()[0])
            assert t16 == pytest.approx(flops / (432e12 * 0.967), rel=1e-9)
            assert t8 == pytest.approx(flops / (865e12 * 0.918), rel=1e-9)
            m8 = float(model.estimate(fp8, mi300x).compute_s.ravel()[0])
            m16 = float(model.estimate(bf16, mi300x).compute_s.ravel()[0])
            assert m16 / m8 == pytest.approx(median, rel=1e-6)


def test_architectures_name_catalog_gpus():
    for name, entry in architectures().items():
        for device in entry["devices"]:
            assert catalog()[device].arch == "gpu", (name, device)


def test_families_cover_the_catalog_by_name():
    """Families hold catalog devices, none twice; a device in no family is its own."""
    listed = [d for devices in families().values() for d in devices]
    assert len(listed) == len(set(listed)) and set(listed) <= set(catalog())
    assert (
        device_family("h800") == "h100" and device_family("gh200") == "h200" and device_family("t4") == "t4"
    )


def test_leave_one_family_out_predicts_every_row_once():
    """Each family is refit without its rows and predicted; the strict prediction exists only for
    families that have kernel curves (here H100's, under a stated curve)."""
    rows = covered_rows(load_measured())
    rows = rows.loc[rows["family"].isin(["h100", "rtx-50"]) & (rows["arch"] == "gpu")].head(40)
    with curves_overridden(RECORD):
        predicted, strict = leave_one_family_out(rows, {}, lambda _msg: None)
    assert predicted.notna().all() and (predicted > 0).all()
    fp8_h100 = rows["cond"].map(lambda c: c.device == "h100-sxm" and c.precision == "fp8")
    assert strict[rows["family"] == "h100"].notna().all() and strict[rows["family"] == "rtx-50"].isna().all()
    assert fp8_h100.any()


def test_cli_fits_the_shipped_kernels(tmp_path):
    """`hwsim calibrate --part kernels --out DIR` fits every measured architecture's curves on the
    shipped extracts: each value within its range, each in-sample median error below 35%, and
    Vidur's never-fitted FP16 projections predicted within 15%."""
    r = subprocess.run(
        [sys.executable, "-m", "hwsim", "calibrate", "--part", "kernels", "--out", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    record = yaml.safe_load((tmp_path / "gpu_kernels_fitted.yaml").read_text())
    assert json.loads(r.stdout)["kernels"]["errors"] == record["errors"]
    gemm = load_kernels("gemm")
    for arch, entry in architectures().items():
        # an architecture without kernel rows (Gaudi 2: only its FP8 speed-up is stated) has no
        # curves; FP16 kernels (MI300X's) fit the 16-bit curve
        measured = gemm.loc[gemm["device"].isin(entry["measured"]), "dtype"].map(FORMAT_CURVE)
        assert set(measured) == set(record["gemm"].get(arch, {}))
    for kind in ("gemm", "attention_prefill", "attention_decode"):
        for arch, formats in record[kind].items():
            for fmt, values in formats.items():
                for name, value in values.items():
                    assert PARAMS[kind][name][1] <= value <= PARAMS[kind][name][2], (kind, arch, fmt, name)
                assert record["errors"][kind][arch][fmt]["in_sample"]["median_ape"] < 0.35
    assert record["errors"]["vidur_check"]["median_ape"] < 0.15
    assert 1.0 < record["format_speedup"]["fp8"] < 2.0 and 1.0 < record["format_speedup"]["fp4"] < 4.0


def test_device_time_latency_is_charged_only_where_kernels_were_timed_alone():
    """MI300X (cdna3) GEMMs were timed by aiter's profiler on the device alone, so a curve's 9 us
    per call is the kernel's own and adds to each GEMM's overhead; the same curve on an H100 (a
    collector's per-call time, launch included) adds nothing."""
    ops = gemm_table(1.0, 8192.0, 8192.0, Quant.from_name("fp8"))
    curve = {**CURVE, "latency_us": 9.0}
    record = {"gemm": {"cdna3": {"fp8": curve}, "hopper-gh100": {"fp8": curve}}}
    model = GpuCostModel()
    with curves_overridden(record):
        amd = model.estimate(ops, catalog()["mi300x"])
        nvidia = model.estimate(ops, catalog()["h100-sxm"])
    with curves_overridden({}):
        amd_plain = model.estimate(ops, catalog()["mi300x"])
        nvidia_plain = model.estimate(ops, catalog()["h100-sxm"])
    assert float(amd.overhead_s.ravel()[0] - amd_plain.overhead_s.ravel()[0]) == pytest.approx(9e-6)
    np.testing.assert_allclose(nvidia.overhead_s, nvidia_plain.overhead_s)
    # the M = 1 GEMM streams its 64 MiB of FP8 weights at 0.8 of 5.3 TB/s
    assert float(amd.memory_s.ravel()[0]) == pytest.approx((8192**2 + 2 * 8192) / (0.8 * 5.3e12), rel=1e-3)


def test_mi300x_fp16_kernels_price_its_16_bit_gemms():
    """vLLM's PyTorch TunableOp results on MI300X (FP16, hipBLASLt) fit cdna3's 16-bit curve, which
    then prices BF16 GEMMs too (the same matrix cores, 1307 TFLOP/s each): the shipped curve meets
    the M = 1, 8192 x 8192 GEMM (34.1898 us) and the M = 8192, 57344 x 8192 one (14,817.7 us)
    within 15%."""
    assert gemm_curve("mi300x", "bf16") is not None and gemm_curve("mi300x", "fp16") is not None
    rows = load_kernels("gemm")
    rows = rows.loc[(rows["device"] == "mi300x") & (rows["dtype"] == "fp16")]
    big = rows.loc[(rows["m"] == 8192) & (rows["n"] == 57344) & (rows["k"] == 8192)]
    small = rows.loc[(rows["m"] == 1) & (rows["n"] == 8192) & (rows["k"] == 8192)]
    assert small["latency_us"].item() == 34.1898 and big["latency_us"].item() == 14817.7
    for row in (small, big):
        predicted = predict_gemm(row.reset_index(drop=True))[0] * 1e6
        assert predicted == pytest.approx(row["latency_us"].item(), rel=0.15)


def test_allreduce_curves_are_fitted_per_link_type():
    """The shipped all-reduce extract holds NVLink (aiconfigurator), Infinity Fabric (RCCL on 8
    MI300X) and PCIe (nccl-tests on RTX 4090s, aiconfigurator on two L40S) rows; each link gets its own curve, and an MI300X
    all-reduce is priced by its own."""
    from roofline.kernel_fit import allreduce_links

    rows = load_kernels("allreduce")
    links = allreduce_links(rows)
    assert set(links) == {"nvlink", "infinity_fabric", "pcie"}
    assert set(rows.loc[links == "infinity_fabric", "device"]) == {"mi300x"}
    assert set(rows.loc[links == "pcie", "device"]) == {"rtx-4090", "l40s"}
    ops = allreduce_table(2.0**20, 8, Quant.from_name("bf16"))
    record = {
        "allreduce": {
            "infinity_fabric": {
                "bw_efficiency": 0.5,
                "base_latency_us": 3.0,
                "step_latency_us": 0.2,
                "small_bw_efficiency": 0.5,
                "knee_MB": 0.0,
            }
        }
    }
    with curves_overridden(record):
        cost = GpuCostModel().estimate(ops, catalog()["mi300x"], Placement(tp=8))
    assert float(cost.link_s.ravel()[0]) == pytest.approx(2 * 7 / 8 * 2**20 / 224e9 + 5.8e-6, rel=1e-6)


def test_kernel_timings_are_priced_as_bursts():
    """The collectors time kernels in bursts, so the curves are fitted and charted on prices that
    set the device's sustained GEMM rate aside: on the H200, aiconfigurator's largest BF16 GEMMs
    price faster as a burst than sustained (661 TFLOP/s), and never slower."""
    gemm = load_kernels("gemm")
    h200 = gemm.loc[(gemm["device"] == "h200") & (gemm["dtype"] == "bf16") & (gemm["m"] >= 4096)].reset_index(
        drop=True
    )
    burst, sustained = predict_gemm(h200), predict_gemm(h200, sustained=True)
    assert np.all(burst <= sustained) and np.any(burst < 0.95 * sustained)
    flops = 2.0 * h200["m"] * h200["n"] * h200["k"]
    assert np.all(flops / sustained <= 661e12 * (1 + 1e-9))


def test_an_allreduce_curve_without_its_knee_is_a_clear_error():
    """A fitted file written before the knee terms names what it lacks and how to refit."""
    from hwmodels.calibration.curves import link_curve

    record = {"allreduce": {"nvlink": {"bw_efficiency": 0.5, "base_latency_us": 3.0, "step_latency_us": 0.2}}}
    with curves_overridden(record), pytest.raises(ConfigError, match="small_bw_efficiency, knee_MB"):
        link_curve("nvlink")


def test_an_architectures_own_allreduce_curve_prices_its_devices_only():
    """With an NVLink curve for Hopper beside the link's own, an H100 takes Hopper's (0.25 of
    the link: twice the bandwidth term of 0.5), an A100 the link's."""
    ops = allreduce_table(2.0**24, 8, Quant.from_name("bf16"))
    flat = {"base_latency_us": 3.0, "step_latency_us": 0.2, "knee_MB": 0.0}
    record = {
        "allreduce": {
            "nvlink": {**flat, "bw_efficiency": 0.5, "small_bw_efficiency": 0.5},
            "nvlink/hopper-gh100": {**flat, "bw_efficiency": 0.25, "small_bw_efficiency": 0.25},
        }
    }
    link_bytes = 2 * 7 / 8 * 2**24
    with curves_overridden(record):
        h100 = GpuCostModel().estimate(ops, catalog()["h100-sxm"], Placement(tp=8))
        a100 = GpuCostModel().estimate(ops, catalog()["a100-sxm-80gb"], Placement(tp=8))
    assert float(h100.link_s.ravel()[0]) == pytest.approx(link_bytes / (450e9 * 0.25) + 5.8e-6, rel=1e-6)
    assert float(a100.link_s.ravel()[0]) == pytest.approx(link_bytes / (300e9 * 0.5) + 5.8e-6, rel=1e-6)
