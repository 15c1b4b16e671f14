"""Exact mean of per-step costs over a decode run whose context grows by one per step.

Every op's compute, memory, link and overhead terms are affine in the context length
(attention reads ``context`` KV entries; nothing else depends on it), so an op's time,
``max(compute, memory) + link + overhead``, is the maximum of two affine functions plus an
affine one. Its mean over the integer steps ``x = 0 .. n-1`` has a closed form: split the
steps where compute wins from those where memory wins and sum each arithmetic series.
This prices a whole decode run from the op costs at its first and last step, for every
point of a sweep at once, with no loop over steps.
"""

from __future__ import annotations

import numpy as np

from hwmodels.cost_table import CostTable


def _series_sum(a0: np.ndarray, a1: np.ndarray, n: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum over integer x in [lo, hi) of the affine f(x) with f(0)=a0, f(n-1)=a1."""
    slope = np.where(n > 1, (a1 - a0) / np.maximum(n - 1, 1), 0.0)
    k = np.maximum(hi - lo, 0)
    x_sum = (lo + hi - 1) * k / 2.0
    return a0 * k + slope * x_sum


def mean_max_affine(
    c0: np.ndarray, c1: np.ndarray, m0: np.ndarray, m1: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """Mean over x = 0..n-1 of max(c(x), m(x)) for affine c, m given at x = 0 and x = n-1."""
    n = np.asarray(n, dtype=float)
    d0, d1 = c0 - m0, c1 - m1
    # number of steps where compute wins (d(x) >= 0); d is affine, so they are a prefix or suffix
    slope = np.where(n > 1, (d1 - d0) / np.maximum(n - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(slope != 0, -d0 / slope, np.inf)  # d(cross) = 0
    prefix = np.clip(np.floor(cross) + 1, 0, n)  # steps 0..floor(cross) when d decreasing
    suffix_start = np.clip(np.ceil(cross), 0, n)  # steps ceil(cross)..n-1 when d increasing
    all_c = (d0 >= 0) & (d1 >= 0)
    all_m = (d0 < 0) & (d1 < 0)
    zero = np.zeros_like(d0)
    # compute wins on a prefix (d0 >= 0 > d1) or a suffix (d0 < 0 <= d1)
    c_lo = np.where(d0 >= 0, zero, suffix_start)
    c_hi = np.where(d0 >= 0, prefix, n)
    c_lo = np.where(all_c, 0.0, np.where(all_m, 0.0, c_lo))
    c_hi = np.where(all_c, n, np.where(all_m, 0.0, c_hi))
    total_c = _series_sum(c0, c1, n, c_lo, c_hi)
    total_m = _series_sum(m0, m1, n, zero, c_lo) + _series_sum(m0, m1, n, c_hi, n)
    return (total_c + total_m) / n


def _align(per_op: np.ndarray, n_sweep_dims: int) -> np.ndarray:
    """Insert unit axes after the op axis so a (n_ops, *sweep) array has ``n_sweep_dims`` sweep axes."""
    missing = n_sweep_dims - (per_op.ndim - 1)
    return per_op.reshape(per_op.shape[:1] + (1,) * missing + per_op.shape[1:])


def mean_time_per_op(
    c0: np.ndarray, c1: np.ndarray, m0: np.ndarray, m1: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """``mean_max_affine`` over whole op tables, fast: where one term wins at both ends it wins
    throughout (affine functions cross at most once), so the mean is the mean of the ends;
    only the points where the winner changes take the exact piecewise sum."""
    d0, d1 = c0 - m0, c1 - m1
    out = (np.maximum(c0, m0) + np.maximum(c1, m1)) / 2.0
    cross = (d0 >= 0) != (d1 >= 0)
    if np.any(cross):
        shape = out.shape
        pick = lambda a: np.broadcast_to(a, shape)[cross]  # noqa: E731
        out[cross] = mean_max_affine(pick(c0), pick(c1), pick(m0), pick(m1), pick(np.asarray(n, dtype=float)))
    return out


def mean_step(first: CostTable, last: CostTable, n_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean step time (s) and mean dynamic energy (J) over ``n_steps`` steps.

    ``first`` and ``last`` price the same ops at the first and last step's context. The
    dynamic energy is affine in the context, so its mean is the mean of the two ends;
    static energy (power times time) is the caller's to add for the devices it counts.
    """
    n = np.asarray(n_steps, dtype=float)
    nd = max(n.ndim, first.compute_s.ndim - 1, last.compute_s.ndim - 1)
    al = lambda a: _align(a, nd)  # noqa: E731
    count = first.count.reshape((-1,) + (1,) * nd)
    per_op = mean_time_per_op(
        al(first.compute_s), al(last.compute_s), al(first.memory_s), al(last.memory_s), n[None]
    )
    per_op = (
        per_op
        + (al(first.link_s) + al(last.link_s)) / 2.0
        + (al(first.overhead_s) + al(last.overhead_s)) / 2.0
    )
    time_s = (count * per_op).sum(axis=0)
    dynamic = (first.step_dynamic_energy_j() + last.step_dynamic_energy_j()) / 2.0
    return time_s, dynamic
