"""FlightLLM's sparse mixed-precision GEMV on a DSP array (Zeng et al., FPGA'24, arXiv 2401.03868).

The weight matrix ``W`` (``n`` outputs x ``k`` inputs) is cut into ``M x M`` blocks (``M = 16``,
the paper's N:M group and the artifact's FSB block). Every block has one N in {0, 2, 4, 8, 16}:
each of its rows keeps at most N of its M weights (N:M structured sparsity along K), and one
weight width, 4 or 8 bits (mixed precision). ``encode`` packs a block as the hardware stores it
in HBM: a one-byte descriptor (N and width), the kept values (two's complement, two 4-bit values
per byte) and, for a sparse block (N < M), one 4-bit position index per kept value (the
artifact's meta buffer, FlightLLM/flightllm_test_demo profile/inst_gen/layer_support/IR_linear_mv.py).

``sparse_gemv`` performs the dataflow: it streams the packed blocks from "HBM", stages them in
the on-chip weight buffer, decodes each block, and feeds only the kept weights (dequantized to
INT8) with the activations they select to the DSP chain: one multiply-add per kept weight and
token (the configurable sparse DSP chain skips the pruned ones). Activations stay on chip
(always-on-chip decode): each block row reads its 16-element input segment from the activation
buffer, and the outputs are written back once. It returns ``y`` (exact integers) and the
actions it performed; ``hwmodels/fpga.py`` (``gemv_counts``) predicts the same counts in closed
form and prices them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.errors import ConfigError

ALLOWED_N = (0, 2, 4, 8, 16)
"""Kept weights per group of 16 the sparse DSP chain supports (arXiv 2401.03868 Sec. 3.2.1)."""
ALLOWED_BITS = (4, 8)
"""Weight widths of the mixed-precision scheme (arXiv 2401.03868 Fig. 1: 8-bit and 4-bit)."""


@dataclass
class SparseGemvCounts:
    """Actions of one sparse GEMV.

    dsp_macs : INT8 multiply-adds on the DSP chain (kept weights x tokens);
    hbm_bytes : bytes streamed from HBM (packed values, indices and descriptors);
    sram_bytes : on-chip bytes moved: the weight stream staged through the weight buffer, the
        input segments read by every block row, the outputs written;
    syncs : op boundaries (one per GEMV: the next op waits on its result);
    value_bytes, index_bytes, descriptor_bytes : the HBM stream by part;
    kept, kept_in_sparse_blocks, value_bits : kept weights, those carrying an index, and the
        bits of all kept values (for the closed form's mean width).
    """

    dsp_macs: int = 0
    hbm_bytes: int = 0
    sram_bytes: int = 0
    syncs: int = 0
    value_bytes: int = 0
    index_bytes: int = 0
    descriptor_bytes: int = 0
    kept: int = 0
    kept_in_sparse_blocks: int = 0
    value_bits: int = 0


@dataclass(frozen=True)
class PackedBlock:
    """One M x M block as stored: descriptor byte, packed values, packed indices (may be empty)."""

    descriptor: int
    values: bytes
    indices: bytes


def _pack_nibbles(nibbles: list[int]) -> bytes:
    """Two 4-bit fields per byte, low nibble first (an even count: N is even)."""
    return bytes((nibbles[i] & 0xF) | ((nibbles[i + 1] & 0xF) << 4) for i in range(0, len(nibbles), 2))


def _unpack_nibbles(data: bytes) -> list[int]:
    out = []
    for byte in data:
        out += [byte & 0xF, byte >> 4]
    return out


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def encode_block(block: np.ndarray, n_keep: int, bits: int, group: int = 16) -> PackedBlock:
    """Pack one ``group x group`` block keeping ``n_keep`` weights per row; every nonzero of a row
    must be among them (the block is already N:M sparse) and fit ``bits``-bit two's complement."""
    if n_keep not in ALLOWED_N or bits not in ALLOWED_BITS:
        raise ConfigError(
            f"block N {n_keep} and width {bits}: expected N in {ALLOWED_N}, bits in {ALLOWED_BITS}"
        )
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if block.min(initial=0) < lo or block.max(initial=0) > hi:
        raise ConfigError(f"a weight of a {bits}-bit block lies outside [{lo}, {hi}]")
    values: list[int] = []
    indices: list[int] = []
    for row in block:
        nonzero = np.flatnonzero(row)
        if len(nonzero) > n_keep:
            raise ConfigError(f"a row has {len(nonzero)} nonzeros in a block of N = {n_keep}")
        # keep the nonzeros, padded with the first zero positions up to N (a fixed-size slot)
        pad = [i for i in range(group) if i not in set(nonzero)][: n_keep - len(nonzero)]
        keep = sorted(list(nonzero) + pad)
        values += [int(row[i]) & ((1 << bits) - 1) for i in keep]
        indices += keep
    packed = _pack_nibbles(values) if bits == 4 else bytes(values)
    sparse = 0 < n_keep < group
    descriptor = ALLOWED_N.index(n_keep) | (ALLOWED_BITS.index(bits) << 3)
    return PackedBlock(descriptor, packed, _pack_nibbles(indices) if sparse else b"")


def decode_block(p: PackedBlock, group: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(values, column indices) of one packed block, each ``group x N``."""
    n_keep = ALLOWED_N[p.descriptor & 0x7]
    bits = ALLOWED_BITS[p.descriptor >> 3]
    raw = _unpack_nibbles(p.values) if bits == 4 else list(p.values)
    values = np.array([_signed(v, bits) for v in raw], dtype=np.int64).reshape(group, n_keep)
    if 0 < n_keep < group:
        idx = np.array(_unpack_nibbles(p.indices), dtype=np.int64).reshape(group, n_keep)
    else:
        idx = np.broadcast_to(np.arange(n_keep, dtype=np.int64), (group, n_keep))
    return values, idx


def sparse_gemv(
    w: np.ndarray,
    x: np.ndarray,
    block_n: np.ndarray,
    block_bits: np.ndarray,
    group: int = 16,
    act_bytes: int = 1,
) -> tuple[np.ndarray, SparseGemvCounts]:
    """``y = w @ x`` with ``w`` (n x k) stored N:M sparse in mixed 4/8-bit blocks.

    Parameters
    ----------
    w : integer array (n, k), n and k multiples of ``group``; already N:M sparse per block.
    x : integer array (k,) or (k, tokens): INT8 activations.
    block_n, block_bits : integer arrays (n / group, k / group): each block's N and width.
    act_bytes : bytes per activation element (1: INT8).
    """
    w = np.asarray(w, dtype=np.int64)
    x2 = np.asarray(x, dtype=np.int64).reshape(w.shape[1], -1)
    n, k = w.shape
    if n % group or k % group:
        raise ConfigError(f"weight shape {w.shape} is not a multiple of the {group} x {group} block")
    rows, cols = n // group, k // group
    if np.shape(block_n) != (rows, cols) or np.shape(block_bits) != (rows, cols):
        raise ConfigError(f"block maps must be {rows} x {cols}")
    tokens = x2.shape[1]
    counts = SparseGemvCounts(syncs=1)
    # the HBM stream: every block packed as the hardware stores it
    stream = {}
    for r, c in np.ndindex(rows, cols):
        b = w[r * group : (r + 1) * group, c * group : (c + 1) * group]
        p = encode_block(b, int(block_n[r, c]), int(block_bits[r, c]), group)
        stream[r, c] = p
        counts.descriptor_bytes += 1
        counts.value_bytes += len(p.values)
        counts.index_bytes += len(p.indices)
    counts.hbm_bytes = counts.descriptor_bytes + counts.value_bytes + counts.index_bytes
    counts.sram_bytes += counts.hbm_bytes  # staged through the on-chip weight buffer once
    y = np.zeros((n, tokens), dtype=np.int64)
    for r in range(rows):  # a block row: 16 outputs accumulate along the DSP cascade
        acc = np.zeros((group, tokens), dtype=np.int64)
        for c in range(cols):
            segment = x2[c * group : (c + 1) * group]  # read from the activation buffer
            counts.sram_bytes += group * tokens * act_bytes
            values, idx = decode_block(stream[r, c], group)
            n_keep, bits = values.shape[1], int(block_bits[r, c])
            for i in range(group):  # one DSP multiply-add per kept weight and token
                for j in range(n_keep):
                    acc[i] += values[i, j] * segment[idx[i, j]]
            counts.dsp_macs += group * n_keep * tokens
            counts.kept += group * n_keep
            counts.value_bits += group * n_keep * bits
            if 0 < n_keep < group:
                counts.kept_in_sparse_blocks += group * n_keep
        y[r * group : (r + 1) * group] = acc
        counts.sram_bytes += group * tokens * act_bytes  # outputs written back once
    return (y.reshape(-1) if np.ndim(x) == 1 else y), counts


def random_nm_matrix(
    block_n: np.ndarray, block_bits: np.ndarray, rng: np.random.Generator, group: int = 16
) -> np.ndarray:
    """A weight matrix that is N:M sparse per block, values spanning each block's width (tests)."""
    rows, cols = np.shape(block_n)
    w = np.zeros((rows * group, cols * group), dtype=np.int64)
    for r, c in np.ndindex(rows, cols):
        n_keep, bits = int(block_n[r, c]), int(block_bits[r, c])
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        for i in range(group):
            keep = rng.choice(group, size=n_keep, replace=False)
            w[r * group + i, c * group + keep] = rng.integers(lo, hi + 1, size=n_keep)
    return w
