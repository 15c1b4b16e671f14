"""MeshGEMV and MeshGEMM on a simulated P x P mesh of cores (WaferLLM, He et al., OSDI 2025).

Every core holds tiles in its own memory; a message moves between cores along mesh links,
one hop per neighbouring step. The functions perform the dataflow (loops over cores and
steps, NumPy inside a core), check nothing themselves, and return the result with the
hardware actions they performed: messages, hops per message, MACs per core and peak memory
per core. ``hwmodels/wafer.py`` predicts the same counts in closed form.

- ``mesh_gemv`` (decode): core (r, c) holds the tile W[c-block of outputs, r-block of inputs]
  and the input segment x[r-block]; partial products are reduced along each column, either
  by a plain chain from one end (``reduce="ring"``) or by WaferLLM's two-level tree (groups of
  ``group`` cores reduce toward their middle, group roots toward the column's middle), then
  the result is multicast back along the column.
- ``mesh_gemm`` (prefill): Cannon's algorithm; ``layout="interleaved"`` places the logical
  ring 0, 2, 4, ..., 5, 3, 1 on the physical line so every shift is at most 2 hops (WaferLLM's
  MeshGEMM), ``layout="naive"`` keeps the physical order, whose wrap-around shift spans the
  whole row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workloads.errors import ConfigError


@dataclass
class MeshCounts:
    """Actions of a mesh kernel: messages sent, their hop lengths, MACs and peak bytes per core."""

    messages: int = 0
    hops: list[int] = field(default_factory=list)
    macs_per_core: int = 0
    peak_bytes_per_core: int = 0
    critical_stations: int = 0
    critical_hops: int = 0
    sram_bytes_per_core: int = 0
    """Bytes a core reads from its SRAM for its multiply-adds (weight tiles; GEMM: A and B tiles per step)."""
    critical_link_bytes: int = 0
    """Bytes serialized onto a link along the critical path (GEMV: one partial vector, forwarded
    cut-through; GEMM: the larger tile of every shift step)."""
    hop_bytes: int = 0
    """Bytes times hops of every message over the fabric."""

    @property
    def total_hops(self) -> int:
        return int(sum(self.hops))


def _check(n: int, p: int, what: str) -> int:
    if n % p:
        raise ConfigError(f"{what} {n} is not a multiple of the mesh side {p}")
    return n // p


def interleaved_order(p: int) -> np.ndarray:
    """Physical position of each logical ring index: the ring visits positions 0, 2, 4, ... and
    comes back ..., 5, 3, 1, so neighbours on the ring (wrap-around included) are at most 2 hops apart."""
    return np.array(list(range(0, p, 2)) + list(range(1, p, 2))[::-1], dtype=int)


def tree_reduce_plan(p: int, group: int) -> tuple[list[tuple[int, int]], int, int]:
    """Messages (src, dst) of a two-level reduction of a column of ``p`` cores toward its middle,
    and the critical path in stations and hops. ``group`` must divide ``p``."""
    _check(p, group, "column length")
    msgs: list[tuple[int, int]] = []
    root_in = group // 2
    for g0 in range(0, p, group):  # phase 1: inside each group, toward its middle
        root = g0 + root_in
        msgs += [(i, i + 1) for i in range(g0, root)] + [(i, i - 1) for i in range(g0 + group - 1, root, -1)]
    n_groups = p // group
    roots = [g * group + root_in for g in range(n_groups)]
    mid = n_groups // 2  # phase 2: group roots, toward the middle group
    msgs += [(roots[i], roots[i + 1]) for i in range(mid)] + [
        (roots[i], roots[i - 1]) for i in range(n_groups - 1, mid, -1)
    ]
    stations = max(root_in, group - 1 - root_in) + max(mid, n_groups - 1 - mid)
    hops = max(root_in, group - 1 - root_in) + max(mid, n_groups - 1 - mid) * group
    return msgs, stations, hops


def mesh_gemv(
    w: np.ndarray, x: np.ndarray, p: int, reduce: str = "tree", group: int | None = None, elem_bytes: int = 2
) -> tuple[np.ndarray, MeshCounts]:
    """``y = w @ x`` (w: N x K, x: K or K x batch) on a ``p x p`` mesh."""
    w = np.asarray(w, dtype=float)
    x2 = np.asarray(x, dtype=float).reshape(w.shape[1], -1)
    n, k = w.shape
    nt, kt = _check(n, p, "N"), _check(k, p, "K")
    batch = x2.shape[1]
    counts = MeshCounts(
        macs_per_core=nt * kt * batch,
        peak_bytes_per_core=(nt * kt + kt * batch + 2 * nt * batch) * elem_bytes,
        sram_bytes_per_core=nt * kt * elem_bytes,
        critical_link_bytes=nt * batch * elem_bytes,
    )
    partial = np.zeros((p, p, nt, batch))
    for r in range(p):
        for c in range(p):
            partial[r, c] = w[c * nt : (c + 1) * nt, r * kt : (r + 1) * kt] @ x2[r * kt : (r + 1) * kt]
    if reduce == "ring":
        msgs = [(i, i + 1) for i in range(p - 1)]  # chain from row 0 to row p-1
        stations, crit_hops, root = p - 1, p - 1, p - 1
    elif reduce == "tree":
        g = group or max(1, int(round(np.sqrt(p))))
        msgs, stations, crit_hops = tree_reduce_plan(p, g)
        root = (p // g // 2) * g + g // 2
    else:
        raise ConfigError(f"reduce is {reduce!r}; expected 'tree' or 'ring'")
    acc = partial.copy()
    vector = nt * batch * elem_bytes  # every message carries a partial (or the result) vector
    for c in range(p):  # every column reduces its partials
        for src, dst in msgs:
            acc[dst, c] += acc[src, c]
            counts.messages += 1
            counts.hops.append(abs(dst - src))
            counts.hop_bytes += abs(dst - src) * vector
    y = np.concatenate([acc[root, c] for c in range(p)], axis=0)
    for _c in range(p):  # multicast back up and down each column
        for extent in (root, p - 1 - root):
            if extent:
                counts.messages += 1
                counts.hops.append(extent)
                counts.hop_bytes += extent * vector
    counts.critical_stations = stations
    counts.critical_hops = crit_hops + max(root, p - 1 - root)
    return (y.reshape(-1) if np.ndim(x) == 1 else y), counts


def mesh_gemm(
    a: np.ndarray, b: np.ndarray, p: int, layout: str = "interleaved", elem_bytes: int = 2
) -> tuple[np.ndarray, MeshCounts]:
    """``c = a @ b`` (M x K times K x N) by Cannon's algorithm on a ``p x p`` mesh."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m, k = a.shape
    n = b.shape[1]
    mt, kt, nt = _check(m, p, "M"), _check(k, p, "K"), _check(n, p, "N")
    if layout == "interleaved":
        pos = interleaved_order(p)
    elif layout == "naive":
        pos = np.arange(p)
    else:
        raise ConfigError(f"layout is {layout!r}; expected 'interleaved' or 'naive'")
    counts = MeshCounts(
        macs_per_core=p * mt * kt * nt,
        peak_bytes_per_core=2 * (mt * kt + kt * nt + mt * nt) * elem_bytes,
        sram_bytes_per_core=p * (mt * kt + kt * nt) * elem_bytes,
        critical_link_bytes=p * max(mt * kt, kt * nt) * elem_bytes,
    )
    # logical core (i, j) starts with A(i, i+j) and B(i+j, j) after the skew
    a_tile = {
        (i, j): a[i * mt : (i + 1) * mt, ((i + j) % p) * kt : ((i + j) % p + 1) * kt]
        for i in range(p)
        for j in range(p)
    }
    b_tile = {
        (i, j): b[((i + j) % p) * kt : ((i + j) % p + 1) * kt, j * nt : (j + 1) * nt]
        for i in range(p)
        for j in range(p)
    }
    for i in range(p):  # skew: A(i, .) moves i steps left, B(., j) j steps up
        for j in range(p):
            for (step_from, step_to), tile in (((j, (j - i) % p), mt * kt), ((i, (i - j) % p), kt * nt)):
                if step_from != step_to:
                    counts.messages += 1
                    counts.hops.append(int(abs(pos[step_from] - pos[step_to])))
                    counts.hop_bytes += counts.hops[-1] * tile * elem_bytes
    c = np.zeros((m, n))
    shift_hops = [int(abs(pos[j] - pos[(j - 1) % p])) for j in range(p)]
    for _step in range(p):
        for i in range(p):
            for j in range(p):
                c[i * mt : (i + 1) * mt, j * nt : (j + 1) * nt] += a_tile[(i, j)] @ b_tile[(i, j)]
        a_tile = {(i, j): a_tile[(i, (j + 1) % p)] for i in range(p) for j in range(p)}
        b_tile = {(i, j): b_tile[((i + 1) % p, j)] for i in range(p) for j in range(p)}
        for _i in range(p):
            for j in range(p):
                counts.messages += 2  # one A tile along the row, one B tile along the column
                counts.hops += [shift_hops[j], shift_hops[j]]
                counts.hop_bytes += shift_hops[j] * (mt * kt + kt * nt) * elem_bytes
    counts.critical_stations = p
    counts.critical_hops = p * max(shift_hops)
    return c, counts
