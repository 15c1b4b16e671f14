"""LUT-GEMV, the dataflow of SAIL's SRAM processing-in-memory (Zhang et al., arXiv 2509.25853).

For each output row and each group of ``g`` consecutive weights, a table of the ``2**g``
subset sums of those weights is built once; the activations are processed bit-serially:
at bit ``i`` the ``i``-th bits of the group's ``g`` activations form the table index, the
entry is looked up, shifted left by ``i`` and accumulated (subtracted at the sign bit of
two's complement). A ``b``-bit activation costs ``b`` lookups per group, whatever the
weight width; every token of a batch reuses the same tables.

The pattern-aware variant notes that the index depends only on the activations, so
within a group every repeated index pattern (across bit planes and tokens) and the all-zero
pattern need no new lookup: an earlier result is reused.

This is the readable reference (a loop over groups and bit planes, NumPy inside); it counts
the hardware's actions per array row as well as per output, and ``hwmodels.sail.action_counts``
gives the same actions in closed form, from which the cost model's time and energy follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.errors import ConfigError


@dataclass
class LutCounts:
    """Hardware actions of one LUT-GEMV.

    Per output (the algorithm's view): tables built (one per output row and weight group);
    table_entries: entries written (``2**g`` per table, each one add of a smaller entry);
    lookups: table reads; shift_adds: shift-and-accumulate operations (one per lookup, reused
    results included); saved_lookups: reads avoided by pattern reuse.

    Per array row (the hardware's view, ``outputs_per_row`` outputs laid side by side in a
    row): row_writes: rows written while building tables (one per entry, for all the row's
    outputs at once); row_reads: rows read by lookups (one read serves every output in the
    row); conversions: integer-to-float scalings of a row's partial sums, one per row,
    quantization group and token (the dequantized kernel only).
    """

    tables: int = 0
    table_entries: int = 0
    lookups: int = 0
    shift_adds: int = 0
    saved_lookups: int = 0
    row_writes: int = 0
    row_reads: int = 0
    conversions: int = 0


def to_bits(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement bit planes of integers ``x``: shape (bits, *x.shape), LSB first."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if np.any(x < lo) or np.any(x > hi):
        raise ConfigError(f"activations outside the {bits}-bit two's-complement range [{lo}, {hi}]")
    u = np.asarray(x, dtype=np.int64) & ((1 << bits) - 1)
    return np.stack([(u >> i) & 1 for i in range(bits)])


def group_indices(x: np.ndarray, bits: int, group: int) -> np.ndarray:
    """Table indices of every (group, bit plane, token): shape (k/group, bits, batch)."""
    k, batch = x.shape
    planes = to_bits(x, bits)  # (bits, k, batch)
    planes = planes.reshape(bits, k // group, group, batch)
    weights = (1 << np.arange(group)).reshape(1, 1, group, 1)
    return np.transpose((planes * weights).sum(axis=2), (1, 0, 2))


def lut_gemv(
    w: np.ndarray,
    x: np.ndarray,
    *,
    act_bits: int,
    group: int = 4,
    pattern_aware: bool = False,
    outputs_per_row: int = 1,
) -> tuple[np.ndarray, LutCounts]:
    """Integer ``w @ x`` by table lookup.

    Parameters
    ----------
    w : (m, k) integer weights (any width; the tables hold their subset sums).
    x : (k, batch) integer activations, ``act_bits``-bit two's complement, processed bit-serially.
    group : weights per table, ``g`` (tables of ``2**g`` entries); must divide k.
    pattern_aware : reuse the result of a repeated (or all-zero) index pattern.
    outputs_per_row : outputs whose table entries share an array row (one row read serves them).
    """
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64).reshape(w.shape[1], -1)
    m, k = w.shape
    if k % group:
        raise ConfigError(f"group {group} does not divide k = {k}")
    batch = x.shape[1]
    rows = -(-m // outputs_per_row)  # array rows holding the m outputs' tables
    idx = group_indices(x, act_bits, group)  # (k/g, bits, batch)
    counts = LutCounts()
    y = np.zeros((m, batch), dtype=np.int64)
    subsets = (np.arange(2**group)[:, None] >> np.arange(group)[None, :]) & 1  # (2^g, g)
    sign = np.where(np.arange(act_bits) == act_bits - 1, -1, 1) * (1 << np.arange(act_bits))
    for j in range(k // group):
        table = w[:, j * group : (j + 1) * group] @ subsets.T  # (m, 2^g): built once, reused by the batch
        counts.tables += m
        counts.table_entries += m * 2**group
        counts.row_writes += rows * 2**group
        planes = idx[j]  # (bits, batch)
        if pattern_aware:
            distinct = np.unique(planes[planes != 0]).size
            counts.lookups += m * distinct
            counts.saved_lookups += m * (planes.size - distinct)
            counts.row_reads += rows * distinct
        else:
            counts.lookups += m * planes.size
            counts.row_reads += rows * planes.size
        counts.shift_adds += m * planes.size
        y += np.einsum("mbt,b->mt", table[:, planes], sign)
    return y, counts


def dequantized_lut_gemv(
    w_int: np.ndarray,
    w_scale: np.ndarray,
    x_int: np.ndarray,
    x_scale: np.ndarray,
    *,
    act_bits: int,
    quant_group: int,
    group: int = 4,
    pattern_aware: bool = False,
    outputs_per_row: int = 1,
) -> tuple[np.ndarray, LutCounts]:
    """Float GEMV from integer weights with per-group scales and per-token activation scales.

    ``w_scale`` has shape (m, k/quant_group); ``x_scale`` (batch,). Each quantization group's
    integer partial sum comes from ``lut_gemv`` and is scaled before accumulation (the
    in-array type conversion of SAIL). ``group`` must divide ``quant_group``.
    """
    m, k = w_int.shape
    if k % quant_group or quant_group % group:
        raise ConfigError(f"quant_group {quant_group} must divide k = {k} and be a multiple of group {group}")
    total = LutCounts()
    x_int = np.asarray(x_int).reshape(k, -1)
    y = np.zeros((m, x_int.shape[1]))
    for q in range(k // quant_group):
        cols = slice(q * quant_group, (q + 1) * quant_group)
        part, c = lut_gemv(
            w_int[:, cols],
            x_int[cols],
            act_bits=act_bits,
            group=group,
            pattern_aware=pattern_aware,
            outputs_per_row=outputs_per_row,
        )
        y += w_scale[:, q : q + 1] * part  # scaled in the arrays: one conversion per row and token
        c.conversions = -(-m // outputs_per_row) * x_int.shape[1]
        for f in (
            "tables",
            "table_entries",
            "lookups",
            "shift_adds",
            "saved_lookups",
            "row_writes",
            "row_reads",
            "conversions",
        ):
            setattr(total, f, getattr(total, f) + getattr(c, f))
    return y * np.asarray(x_scale)[None, :], total
