"""LUT-GEMV: the reference kernel against NumPy, and its counts against the SAIL cost model's."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.kernels.lut_gemv import dequantized_lut_gemv, lut_gemv, to_bits
from hwmodels.sail import lut_counts, saved_lookups
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
    assert counts == lut_counts(m, k, batch, group, act_bits)
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
