"""A Hardwired-Neuron GEMV: constant FP4 weights as wires, bit-serial inputs (HNLPU, arXiv 2508.16151).

Each output neuron has one POPCNT accumulator for each of the 16 FP4 (E2M1) values
(Sec. 3.1, Figs. 4-5). A weight is the wire from its input to the accumulator of its value;
a zero weight has no wire (the port is grounded). Inputs are ``act_bits``-bit two's
complement integers, sent one bit per cycle, least significant bit first. In each cycle:

- every accumulator adds the popcount of the bits on its wires, shifted by the bit's
  position (the sign bit's popcount is subtracted);
- each wire's bit counts as one popcount addition.

After the last bit, each of the 16 accumulator sums is multiplied by its constant (16
constant multiplies). A tree of 15 adders then sums the products into the neuron's output.
By the distributive law this equals ``W @ x``.

This is the readable reference: a loop over neurons, bits and values, with NumPy inside. It
returns the result and the actions it performed. ``hwmodels.hardwired.gemv_actions`` gives
the same counts in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.errors import ConfigError

FP4_E2M1_CODES = np.array(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
)
"""The 16 FP4 (E2M1) codes: sign, 2 exponent bits, 1 mantissa bit (OCP MX formats spec v1.0,
Table 5); +0 and -0 both exist. An HN has one accumulator per code (Sec. 3.1)."""


@dataclass
class HnCounts:
    """Actions of one hard-wired GEMV (see ``hwmodels.hardwired.HardwiredActions``)."""

    tokens: int = 0
    bitserial_cycles: int = 0
    popcount_adds: int = 0
    const_mults: int = 0
    tree_adds: int = 0


def fp4_codes(w: np.ndarray) -> np.ndarray:
    """The code index (0..15) of each weight; weights must be E2M1 values (``ConfigError`` otherwise)."""
    w = np.asarray(w, dtype=float)
    magnitude = np.abs(w)
    idx = np.abs(magnitude[..., None] - FP4_E2M1_CODES[:8]).argmin(axis=-1)  # magnitude codes 0..7
    off = FP4_E2M1_CODES[idx] != magnitude
    if off.any():
        raise ConfigError(
            f"weight {float(w[off].ravel()[0])!r} is not an FP4 (E2M1) value; expected one of "
            f"{sorted({float(v) for v in FP4_E2M1_CODES})}"
        )
    return np.where(np.signbit(w), idx + 8, idx)


def hardwired_gemv(w: np.ndarray, x: np.ndarray, act_bits: int = 8) -> tuple[np.ndarray, HnCounts]:
    """``y = w @ x`` on a Hardwired-Neuron array.

    Parameters
    ----------
    w : (n, k) array of FP4 (E2M1) values: the wiring, fixed when the chip is made.
    x : (k,) or (k, tokens) integers in ``[-2**(act_bits-1), 2**(act_bits-1))``, streamed bit-serially.
    act_bits : bits per input, 2..16.
    """
    codes = fp4_codes(w)
    x2 = np.asarray(x).reshape(codes.shape[1], -1)
    if not np.issubdtype(x2.dtype, np.integer):
        raise ConfigError("inputs of a hard-wired GEMV are integers (bit-serial two's complement)")
    lo, hi = -(2 ** (act_bits - 1)), 2 ** (act_bits - 1)
    if x2.size and (x2.min() < lo or x2.max() >= hi):
        raise ConfigError(f"an input lies outside the {act_bits}-bit range [{lo}, {hi})")
    n, tokens = codes.shape[0], x2.shape[1]
    pattern = x2.astype(np.int64) & ((1 << act_bits) - 1)  # two's complement bit pattern
    counts = HnCounts(tokens=tokens, bitserial_cycles=tokens * act_bits)
    y = np.zeros((n, tokens))
    for t in range(tokens):
        bits = [(pattern[:, t] >> b) & 1 for b in range(act_bits)]
        for j in range(n):
            acc = np.zeros(len(FP4_E2M1_CODES), dtype=np.int64)
            for code, value in enumerate(FP4_E2M1_CODES):
                wires = (codes[j] == code) & (value != 0.0)  # a zero weight is not wired
                for b in range(act_bits):  # LSB first; the sign bit weighs -2**(act_bits-1)
                    pop = int(bits[b][wires].sum())
                    acc[code] += -(pop << b) if b == act_bits - 1 else pop << b
                    counts.popcount_adds += int(wires.sum())
            products = acc * FP4_E2M1_CODES  # one constant multiply per accumulator
            counts.const_mults += len(products)
            level = list(products)
            while len(level) > 1:  # the adder tree, pairwise
                level = [level[i] + level[i + 1] for i in range(0, len(level), 2)]
                counts.tree_adds += len(level)
            y[j, t] = level[0]
    return (y.reshape(-1) if np.ndim(x) == 1 else y), counts
