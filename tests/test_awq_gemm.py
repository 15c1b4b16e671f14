"""AutoAWQ before v0.2.0: llm-awq's first GEMM kernel, priced by its rate per SM."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.calibration import params
from hwmodels.calibration.params import AwqGemmKernel, framework_terms
from hwmodels.device_spec import load_device
from hwmodels.gpu import awq_gemm_s
from hwmodels.placement import Placement
from roofline import awq_fit
from roofline.validation import HELD_OUT_PREFIXES, framework_of, stated_version
from workloads.errors import ConfigError, HwsimNote
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

W4 = Quant.from_name("w4a16g128")
KERNEL = AwqGemmKernel(tile_rows=16, macs_per_sm_us=200_000.0, max_rows=None, source="test")
GEMV_ROWS = 8.0


@pytest.fixture(scope="module")
def llama():
    return load_model("llama-2-7b")


def _prefill(spec, tokens, quant=W4):
    return build_ops(spec, quant, phase="prefill", batch=1, tokens=tokens, context=0)


def test_a_gemm_takes_its_padded_macs_at_the_rate_of_every_sm(llama):
    """By hand: Llama-2-7B's 2,048-row QKV projection (4096 x 12288) on an A100's 108 SMs at 200,000
    MACs per SM per us takes 2048 * 4096 * 12288 / (108 * 2e11) s; 20 rows are padded to 32."""
    a100 = load_device("a100-sxm-80gb")
    assert a100.extra["gpu"]["sm_count"] == 108
    for rows, padded in ((2048, 2048), (20, 32)):
        ops = _prefill(llama, rows)
        qkv = list(ops.name).index("qkv_proj")
        t = np.ravel(awq_gemm_s(ops, a100, KERNEL, GEMV_ROWS))[qkv]
        assert t == pytest.approx(padded * 4096 * 12288 / (108 * 2e11), rel=1e-9)


def test_only_4bit_weight_only_gemms_beyond_the_gemv_sizes_take_it(llama):
    """Attention, norms, 16-bit and 8-bit-math GEMMs, GEMV-sized ones (a prefill's LM head, on its
    last row), GEMV-sized steps and steps above the kernel's max_rows cost nothing here."""
    a100 = load_device("a100-sxm-80gb")
    ops = _prefill(llama, 512)
    t = np.ravel(awq_gemm_s(ops, a100, KERNEL, GEMV_ROWS))
    gemm4 = (ops.kind == "gemm") & (np.ravel(ops.bits_per_weight) < 5) & (np.ravel(ops.m) > GEMV_ROWS)
    assert set(ops.name[gemm4]) == {"qkv_proj", "o_proj", "ffn_up", "ffn_down"}
    assert (t[gemm4] > 0).all() and (t[~gemm4] == 0).all()
    for quant in ("fp16", "fp8", "w8a8"):
        assert not np.any(awq_gemm_s(_prefill(llama, 512, Quant.from_name(quant)), a100, KERNEL, GEMV_ROWS))
    assert not np.any(awq_gemm_s(_prefill(llama, 8), a100, KERNEL, GEMV_ROWS))
    capped = replace(KERNEL, max_rows=1023)
    assert not np.any(awq_gemm_s(_prefill(llama, 1024), a100, capped, GEMV_ROWS))
    assert np.any(awq_gemm_s(_prefill(llama, 1023), a100, capped, GEMV_ROWS))


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(1e4, 1e6),
    faster=st.floats(1.0, 8.0),
    sms=st.integers(16, 256),
    clock=st.floats(0.5, 3.0),
    rows=st.integers(9, 8192),
)
def test_more_sms_or_rate_is_never_slower_and_the_clock_does_not_matter(
    llama, rate, faster, sms, clock, rows
):
    """The kernel is bound by its loads' latency: time falls with SMs and rate, not with the clock."""
    base = load_device("a100-sxm-80gb")
    ops = _prefill(llama, rows)
    kernel = replace(KERNEL, macs_per_sm_us=rate)

    def with_gpu(n, ghz):
        return replace(
            base, extra={**base.extra, "gpu": {**base.extra["gpu"], "sm_count": n, "boost_clock_GHz": ghz}}
        )

    t = awq_gemm_s(ops, with_gpu(sms, clock), kernel, GEMV_ROWS)
    assert np.all(awq_gemm_s(ops, with_gpu(sms, clock * 2), kernel, GEMV_ROWS) == t)
    assert np.all(awq_gemm_s(ops, with_gpu(sms * 2, clock), kernel, GEMV_ROWS) <= t)
    assert np.all(
        awq_gemm_s(ops, with_gpu(sms, clock), replace(kernel, macs_per_sm_us=rate * faster), GEMV_ROWS) <= t
    )
    assert np.all(np.isfinite(t)) and np.all(t >= 0)


def test_the_old_kernel_slows_a_long_prefill_and_leaves_decode_alone(llama):
    """Under autoawq-0.1 a 2,048-token prefill of Llama-2-7B on an A100 takes at least its quantized
    GEMMs' MACs at the kernel's rate and is slower than under autoawq (later kernels); a decode step
    of one sequence costs the same under both. Tripling the rate shortens the prefill."""
    a100 = load_device("a100-sxm-80gb")
    model = registry.get(a100.arch)
    rate = framework_terms("autoawq-0.1").awq_gemm.macs_per_sm_us
    ops = _prefill(llama, 2048)

    def step_s(table, framework):
        cost = model.estimate(table, a100, Placement(framework=framework))
        return float(np.sum(np.maximum(cost.compute_s, cost.memory_s) * table.count))

    gemm4 = (ops.kind == "gemm") & (np.ravel(ops.bits_per_weight) < 5)
    macs = float(np.sum((np.ravel(ops.flops) / 2 * ops.count)[gemm4]))
    old, new = step_s(ops, "autoawq-0.1"), step_s(ops, "autoawq")
    assert old >= macs / (108 * rate * 1e6) and old > 2 * new
    kernel = framework_terms("autoawq-0.1").awq_gemm
    with params.framework_replaced("autoawq-0.1", awq_gemm=replace(kernel, macs_per_sm_us=3 * rate)):
        assert step_s(ops, "autoawq-0.1") < old / 2
    decode = build_ops(llama, W4, phase="decode", batch=1, context=512)
    assert step_s(decode, "autoawq-0.1") == pytest.approx(step_s(decode, "autoawq"), rel=1e-12)


def test_the_shipped_rate_is_the_fit_on_the_shipped_rows():
    """roofline/awq_fit.py's optimum on kernels/awq_gemm.csv is the rate frameworks.yaml ships,
    inside the grid; its rows are A100 rows of two sources, none held out, and the shipped rate
    holds the error its source text states."""
    rows = awq_fit.awq_rows()
    assert not rows["id"].str.startswith(HELD_OUT_PREFIXES).any()
    assert set(rows["hardware"]) == {"a100-sxm-80gb"}
    result = awq_fit.fit(rows)
    shipped = framework_terms(awq_fit.AWQ_FRAMEWORK).awq_gemm
    assert result["macs_per_sm_us"] == shipped.macs_per_sm_us and not result["at_grid_edge"]
    assert (result["rows"], result["sources"]) == (10, 2)
    assert f"{result['in_sample_median_ape']:.1%} median error in sample" in shipped.source
    assert f"{result['leave_one_source_out_median_ape']:.1%} leaving a source out" in shipped.source


def test_the_fit_recovers_a_planted_rate():
    """Rows 'measured' at hwsim's own price at 250,000 MACs per SM per us are fitted there, exactly."""
    rows = awq_fit.awq_rows()
    planted = awq_fit.predictions(rows, (250_000.0,))[0]
    result = awq_fit.fit(rows.assign(value=planted))
    assert result["macs_per_sm_us"] == 250_000.0
    assert result["in_sample_median_ape"] == pytest.approx(0.0, abs=1e-12)
    assert result["leave_one_source_out_median_ape"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("version", "framework"),
    [
        ("AutoAWQ 0.1.6", "autoawq-0.1"),
        ("AutoAWQ 0.0.2", "autoawq-0.1"),
        ("AutoAWQ 0.2.1", "autoawq"),
        ("", "autoawq"),
    ],
)
def test_a_rows_version_names_its_kernels(version, framework):
    assert framework_of("autoawq", f"notes version={stated_version(version)}") == framework


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"tile_rows": 0, "macs_per_sm_us": 1e5, "max_rows": None, "source": "s"}, "tile_rows"),
        ({"tile_rows": 16, "macs_per_sm_us": -1, "max_rows": None, "source": "s"}, "macs_per_sm_us"),
        ({"tile_rows": 16, "macs_per_sm_us": True, "max_rows": None, "source": "s"}, "macs_per_sm_us"),
        ({"tile_rows": 16, "macs_per_sm_us": 1e5, "max_rows": 0, "source": "s"}, "max_rows"),
        ({"tile_rows": 16, "macs_per_sm_us": 1e5}, "expected the keys"),
    ],
)
def test_a_malformed_awq_gemm_entry_is_named(entry, field):
    with pytest.raises(ConfigError, match=field):
        params._awq_gemm(entry, "frameworks.x.awq_gemm")


def test_a_device_without_an_sm_count_says_the_kernel_is_not_priced(llama):
    """The H20's entry gives no SM count: its GEMMs keep the class's rate and a note says so; the
    H200's gives 132 SMs and takes the kernel."""
    ops = _prefill(llama, 2048)
    with pytest.warns(HwsimNote, match="h20's catalog entry gives no SM count"):
        assert not np.any(awq_gemm_s(ops, load_device("h20"), KERNEL, GEMV_ROWS))
    assert np.any(awq_gemm_s(ops, load_device("h200"), KERNEL, GEMV_ROWS))
