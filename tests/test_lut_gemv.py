"""LUT-GEMV: the reference kernel against NumPy, and its counts against the SAIL cost model's."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.kernels.lut_gemv import dequantized_lut_gemv, lut_gemv, to_bits
from hwmodels.sail import action_counts, saved_lookups
from workloads.errors import ConfigError


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 6),
    groups=st.integers(1, 6),
    group=st.sampled_from([1, 2, 3, 4]),
    batch=st.integers(1, 4),
    act_bits=st.integers(1, 8),
    w_bits=st.integers(1, 8),
    seed=st.integers(0, 10_000),
)
def test_lut_gemv_is_exact_and_counts_match_the_model(m, groups, group, batch, act_bits, w_bits, seed):
    rng = np.random.default_rng(seed)
    k = groups * group
    w = rng.integers(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), size=(m, k))
    x = rng.integers(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1), size=(k, batch))
    y, counts = lut_gemv(w, x, act_bits=act_bits, group=group)
    np.testing.assert_array_equal(y, w @ x)
    # one output per array row: rows written and read are the per-output table entries and lookups
    a = action_counts(
        m, k, batch, _params(group=group, act_bits=act_bits, outputs_per_row=1), weight_bytes=0.0
    )
    assert (
        (a.row_writes, a.row_reads)
        == (counts.table_entries, counts.lookups)
        == (
            counts.row_writes,
            counts.row_reads,
        )
    )
    assert counts.shift_adds == counts.lookups == m * (k // group) * act_bits * batch
    y2, aware = lut_gemv(w, x, act_bits=act_bits, group=group, pattern_aware=True)
    np.testing.assert_array_equal(y2, w @ x)
    assert aware.lookups + aware.saved_lookups == counts.lookups
    assert aware.saved_lookups == saved_lookups(x, m, group, act_bits)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 5),
    n_quant=st.integers(1, 3),
    batch=st.integers(1, 3),
    act_bits=st.sampled_from([4, 8]),
    seed=st.integers(0, 10_000),
)
def test_dequantized_lut_gemv_matches_float_within_1e6(m, n_quant, batch, act_bits, seed):
    rng = np.random.default_rng(seed)
    quant_group, k = 8, 8 * n_quant
    w_int = rng.integers(-8, 8, size=(m, k))
    w_scale = rng.uniform(0.01, 0.1, size=(m, n_quant))
    x_int = rng.integers(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1), size=(k, batch))
    x_scale = rng.uniform(0.01, 0.1, size=batch)
    y, _ = dequantized_lut_gemv(
        w_int, w_scale, x_int, x_scale, act_bits=act_bits, quant_group=quant_group, group=4
    )
    w_float = w_int * np.repeat(w_scale, quant_group, axis=1)
    expected = w_float @ (x_int * x_scale[None, :])
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-12)


def test_hand_case_two_by_two():
    """w = [[1, 2]], x = [[1], [-1]] at 2 bits: table {0, 1, 2, 3}; bit 0 index 0b11 -> 3, bit 1 (sign) index
    0b10 -> 2 weighted -2: 3 - 4 = -1 = 1*1 + 2*(-1)."""
    y, c = lut_gemv(np.array([[1, 2]]), np.array([[1], [-1]]), act_bits=2, group=2)
    assert y.item() == -1 and c.lookups == 2 and c.table_entries == 4


def test_bit_planes_and_errors():
    np.testing.assert_array_equal(to_bits(np.array([-1, 1]), 2), [[1, 1], [1, 0]])
    with pytest.raises(ConfigError, match="range"):
        to_bits(np.array([4]), 3)
    with pytest.raises(ConfigError, match="does not divide"):
        lut_gemv(np.ones((1, 6), int), np.ones((6, 1), int), act_bits=2, group=4)


def _params(group=4, act_bits=8, outputs_per_row=4, quant_group=8, conversion_cycles=3.0):
    from hwmodels.sail import SailParams

    return SailParams(
        n_arrays=1024.0,
        pim_freq_hz=1e9,
        outputs_per_row=float(outputs_per_row),
        lut_group=group,
        act_bits=act_bits,
        conversion_cycles=conversion_cycles,
        quant_group=quant_group,
        area_overhead=0.0,
        dram_efficiency=0.8,
    )


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 9),
    n_quant=st.integers(1, 3),
    batch=st.integers(1, 3),
    act_bits=st.sampled_from([2, 4, 8]),
    opr=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_kernel_row_actions_equal_action_counts(m, n_quant, batch, act_bits, opr, seed):
    """Row writes, row reads and conversions the dequantized kernel performs, with ``opr``
    outputs laid out per array row, are ``hwmodels.sail.action_counts``' for the same GEMM."""
    from hwmodels.sail import action_counts

    rng = np.random.default_rng(seed)
    quant_group, k = 8, 8 * n_quant
    w_int = rng.integers(-8, 8, size=(m, k))
    x_int = rng.integers(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1), size=(k, batch))
    _, c = dequantized_lut_gemv(
        w_int,
        np.ones((m, n_quant)),
        x_int,
        np.ones(batch),
        act_bits=act_bits,
        quant_group=quant_group,
        group=4,
        outputs_per_row=opr,
    )
    a = action_counts(m, k, batch, _params(act_bits=act_bits, outputs_per_row=opr), weight_bytes=0.0)
    assert (a.row_writes, a.row_reads, a.conversions) == (c.row_writes, c.row_reads, c.conversions)


def test_sail_time_from_counts_by_hand():
    """A 4096 x 4096 GEMV at batch 1, 4 outputs per row, g = 4, 8-bit activations, groups of 8:
    1024 row groups x 1024 weight groups x 16 entries = 16.78M row writes; x 8 bits x 1 token =
    8.39M row reads; 1024 x 512 x 1 = 0.52M conversions at 3 cycles. On 1024 arrays at 1 GHz:
    (16.78M + 8.39M + 1.57M) / 1.024e12 s = 26.1 us; 8 MB of 4-bit weights at 0.8 x the DRAM."""
    from hwmodels.device_spec import load_device
    from hwmodels.sail import action_counts, gemm_time_s

    sp, dev = _params(), load_device("sail-n1")
    a = action_counts(4096, 4096, 1, sp, weight_bytes=4096 * 4096 / 2)
    pim_s, dram_s = gemm_time_s(a, sp, dev)
    assert pim_s == pytest.approx((1024 * 1024 * 16 + 1024 * 1024 * 8 + 1024 * 512 * 3) / 1.024e12)
    assert dram_s == pytest.approx(4096 * 4096 / 2 / (dev.memory.bw_bytes_per_s * 0.8))


@pytest.mark.parametrize("field", ["row_writes", "row_reads", "conversions", "dram_bytes"])
def test_tripling_any_sail_action_changes_the_time(field):
    from dataclasses import replace

    from hwmodels.device_spec import load_device
    from hwmodels.sail import action_counts, gemm_time_s

    sp, dev = _params(), load_device("sail-n1")
    tokens, weights = (1, 1e12) if field == "dram_bytes" else (64, 0.0)
    a = action_counts(4096, 4096, tokens, sp, weight_bytes=weights)
    if field == "row_writes":
        a = replace(a, row_reads=a.row_reads * 0, conversions=a.conversions * 0)
    tripled = replace(a, **{field: 3 * getattr(a, field)})
    assert max(gemm_time_s(tripled, sp, dev)) > max(gemm_time_s(a, sp, dev))
