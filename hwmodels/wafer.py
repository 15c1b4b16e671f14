"""The wafer-scale cost model (``arch: wafer``): MeshGEMV and MeshGEMM priced by the PLMR model.

WaferLLM (He et al., OSDI 2025) reads a wafer as PLMR: massive Parallelism, non-uniform
Latency (a hop per mesh step), constrained per-core Memory, limited Routing. Here a GEMM
of ``m`` tokens by a ``k x n`` weight runs on a ``p_r x p_c`` mesh:

- decode (``m <= GEMV_MAX_ROWS``): MeshGEMV. Core (r, c) holds a ``k/p_r x n/p_c`` tile and
  computes its partial products; columns reduce them with a two-level tree (groups of about
  ``sqrt(p_r)`` cores), and multicast the result back. Time = per-core compute or SRAM read
  (the larger) + critical path of the reduction: stations x (receive-add-forward cycles) +
  hops x hop cycles + the message's bytes over a link;
- prefill: MeshGEMM, Cannon's algorithm on the interleaved ring (every shift <= 2 hops):
  ``p`` steps of max(tile compute, tile shift), plus the skew.

``naive=True`` prices the layouts WaferLLM improves on (a chain reduction for GEMV, the
physical-order ring whose wrap-around spans the mesh for GEMM): they stop scaling as the
mesh grows. ``gemv_actions`` and ``gemm_actions`` give each kernel's actions (multiply-adds
and SRAM bytes per core, stations, hops and link bytes on the critical path, hop bytes over the
fabric) in closed form, equal to those the reference kernels in ``hwmodels/kernels/mesh.py``
count; time and energy are computed from them only (``gemv_time_from``, ``gemm_time_from``,
``mesh_energy_j``). Other ops (attention over the
distributed KV cache, norms) are spread over all cores and end with a tree reduction.
Parameters: the ``wafer`` block of the catalog entry, each with its basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.kernels.mesh import interleaved_order
from hwmodels.placement import Placement
from hwmodels.registry import register
from workloads.errors import ConfigError
from workloads.graph import OpTable

GEMV_MAX_ROWS = 8
"""Token rows up to which a GEMM runs as MeshGEMV (WaferLLM's decode path)."""


@dataclass(frozen=True)
class Mesh:
    """The wafer's PLMR parameters, in cycles and bytes per cycle."""

    rows: int
    cols: int
    clock_hz: float
    sram_bytes: float
    flop_per_cycle: float
    sram_bytes_per_cycle: float
    link_bytes_per_cycle: float
    hop_cycles: float
    station_cycles: float
    routes: float
    reserved_bytes: float
    e_sram: float
    e_flop: float
    e_hop: float

    @classmethod
    def of(cls, device: DeviceSpec, rows: int | None = None, cols: int | None = None) -> Mesh:
        w = device.extra.get("wafer")
        if w is None:
            raise ConfigError(
                f"device {device.name!r} has no 'wafer' block (mesh, clock, per-core SRAM, hops)"
            )
        return cls(
            int(rows or w["mesh_height"]),
            int(cols or w["mesh_width"]),
            w["clock_GHz"] * 1e9,
            w["sram_KB"] * 1024.0,
            w["flop_per_cycle"],
            w["sram_bytes_per_cycle"],
            w["link_bytes_per_cycle"],
            w["hop_cycles"],
            w["station_cycles"],
            w["routes_per_core"],
            w["reserved_KB"] * 1024.0,
            w["sram_energy_pJ_per_byte"] * 1e-12,
            w["flop_energy_pJ"] * 1e-12,
            w["hop_energy_pJ_per_byte"] * 1e-12,
        )

    @property
    def cores(self) -> int:
        return self.rows * self.cols


def tree_group(p: int) -> int:
    """Group size of the two-level reduction: the divisor of ``p`` nearest ``sqrt(p)``."""
    divisors = [g for g in range(1, p + 1) if p % g == 0]
    return min(divisors, key=lambda g: abs(g - np.sqrt(p)))


def reduce_path(p, naive: bool = False, group=None):
    """(stations, hops) on the critical path of reducing a column of ``p`` cores, broadcast back
    included. Vectorized over ``p`` for the tree with ``group`` ~ sqrt(p)."""
    p = np.asarray(p, dtype=float)
    if naive:
        return p - 1.0, (p - 1.0) + (p - 1.0)
    g = np.asarray(group, dtype=float) if group is not None else np.maximum(np.round(np.sqrt(p)), 1.0)
    n_groups = np.ceil(p / g)
    root_in = np.floor(g / 2)
    mid = np.floor(n_groups / 2)
    first = np.maximum(root_in, g - 1 - root_in)
    second = np.maximum(mid, n_groups - 1 - mid)
    root = mid * g + root_in
    return first + second, first + second * g + np.maximum(root, p - 1 - root)


@dataclass(frozen=True)
class WaferActions:
    """Actions of a mesh kernel along its critical path (NumPy arrays over the sweep).

    macs_per_core, sram_bytes_per_core : work of every core (all cores do the same);
    critical_stations, critical_hops : receive-add-forward stations and router hops on the
        critical path (GEMM: over all its shift steps);
    critical_link_bytes : bytes serialized onto a link on the critical path;
    steps : compute steps on the critical path (GEMV 1; GEMM ``p``, each overlapping its shift);
    skew_shifts : shift steps of the initial skew (GEMM; 0 for GEMV);
    fabric_hop_bytes : bytes x hops moved over the whole fabric (for energy);
    cores : cores at work.
    """

    macs_per_core: np.ndarray
    sram_bytes_per_core: np.ndarray
    critical_stations: np.ndarray
    critical_hops: np.ndarray
    critical_link_bytes: np.ndarray
    steps: np.ndarray
    skew_shifts: np.ndarray
    fabric_hop_bytes: np.ndarray
    cores: np.ndarray


def column_hops(p: int, naive: bool = False, group=None) -> float:
    """Hops of every message of one column's reduction and multicast back (``mesh_gemv``'s)."""
    if naive:
        return 2.0 * (p - 1)
    g = float(group) if group is not None else max(round(np.sqrt(p)), 1.0)
    n_groups = np.ceil(p / g)
    root = np.floor(n_groups / 2) * g + np.floor(g / 2)
    return float(n_groups * (g - 1) + (n_groups - 1) * g + root + (p - 1 - root))


def gemv_actions(
    n, k, batch, mesh: Mesh, elem_bytes: float = 2.0, naive: bool = False, group=None
) -> WaferActions:
    """MeshGEMV's actions in closed form (``mesh_gemv``'s counts; vectorized over shapes)."""
    n, k, batch = (np.asarray(v, dtype=float) for v in (n, k, batch))
    nt, kt = n / mesh.cols, k / mesh.rows
    stations, hops = reduce_path(mesh.rows, naive, group)
    vector = nt * batch * elem_bytes
    return WaferActions(
        macs_per_core=nt * kt * batch,
        sram_bytes_per_core=nt * kt * elem_bytes,
        critical_stations=np.asarray(stations, dtype=float),
        critical_hops=np.asarray(hops, dtype=float),
        critical_link_bytes=vector,
        steps=np.asarray(1.0),
        skew_shifts=np.asarray(0.0),
        fabric_hop_bytes=mesh.cols * column_hops(mesh.rows, naive, group) * vector,
        cores=np.asarray(float(mesh.cores)),
    )


def gemm_actions(m, k, n, mesh: Mesh, elem_bytes: float = 2.0, naive: bool = False) -> WaferActions:
    """MeshGEMM's (Cannon's) actions in closed form on the square ``p x p`` part of the mesh: ``p``
    steps, each shifting the larger tile over the ring (<= 2 hops interleaved, the wrap-around's
    ``p - 1`` on the physical ring) through one station; the skew takes about ``p / 2`` shifts."""
    side = min(mesh.rows, mesh.cols)
    p = float(side)
    m, k, n = (np.asarray(v, dtype=float) for v in (m, k, n))
    mt, kt, nt = m / p, k / p, n / p
    shift_hops = (p - 1.0) if naive else 2.0
    tile = np.maximum(mt * kt, kt * nt) * elem_bytes
    ring_hops, skew_hops = ring_hop_sums(side, naive)
    return WaferActions(
        macs_per_core=p * mt * kt * nt,
        sram_bytes_per_core=p * (mt * kt + kt * nt) * elem_bytes,
        critical_stations=np.asarray(p),
        critical_hops=np.asarray(p * shift_hops),
        critical_link_bytes=p * tile,
        steps=np.asarray(p),
        skew_shifts=np.asarray(p / 2.0),
        fabric_hop_bytes=(p * p * ring_hops + skew_hops) * (mt * kt + kt * nt) * elem_bytes,
        cores=np.asarray(p * p),
    )


def ring_hop_sums(p: int, naive: bool = False) -> tuple[float, float]:
    """(hops of one full turn of Cannon's ring, hops of one operand's skew over the mesh) for the
    interleaved or the physical ring (``mesh_gemm``'s message hops)."""
    pos = np.arange(p) if naive else interleaved_order(p)
    j = np.arange(p)
    ring = float(np.abs(pos - np.roll(pos, 1)).sum())
    skew = float(sum(np.abs(pos[j] - pos[(j - i) % p]).sum() for i in range(1, p)))
    return ring, skew


def action_counts(tokens, k, n, mesh: Mesh, elem_bytes: float = 2.0, naive: bool = False) -> WaferActions:
    """The actions of a GEMM of ``tokens`` rows through a ``k x n`` weight as the wafer runs it:
    MeshGEMV up to ``GEMV_MAX_ROWS`` rows, MeshGEMM beyond (elementwise over a sweep)."""
    tokens = np.asarray(tokens, dtype=float)
    v, m = (
        gemv_actions(n, k, tokens, mesh, elem_bytes, naive),
        gemm_actions(tokens, k, n, mesh, elem_bytes, naive),
    )
    gemv = tokens <= GEMV_MAX_ROWS
    return WaferActions(
        **{f: np.where(gemv, getattr(v, f), getattr(m, f)) for f in WaferActions.__dataclass_fields__}
    )


def time_from(a: WaferActions, mesh: Mesh) -> np.ndarray:
    """Time (s) of a kernel from its actions: MeshGEMV's (one step) or MeshGEMM's overlap rule."""
    return np.where(a.steps <= 1, gemv_time_from(a, mesh), gemm_time_from(a, mesh))


def gemv_time_from(a: WaferActions, mesh: Mesh) -> np.ndarray:
    """MeshGEMV time (s) from its actions: each core's multiply-adds or SRAM reads (the longer),
    then the reduction's critical path (stations, hops, the message on a link)."""
    core = np.maximum(
        2.0 * a.macs_per_core / mesh.flop_per_cycle, a.sram_bytes_per_core / mesh.sram_bytes_per_cycle
    )
    comm = (
        a.critical_stations * mesh.station_cycles
        + a.critical_hops * mesh.hop_cycles
        + a.critical_link_bytes / mesh.link_bytes_per_cycle
    )
    return (core + comm) / mesh.clock_hz


def gemm_time_from(a: WaferActions, mesh: Mesh) -> np.ndarray:
    """MeshGEMM time (s) from its actions: ``steps`` of the longer of a step's compute (or SRAM
    reads) and its shift, plus the skew's shifts."""
    compute = (
        np.maximum(
            2.0 * a.macs_per_core / mesh.flop_per_cycle, a.sram_bytes_per_core / mesh.sram_bytes_per_cycle
        )
        / a.steps
    )
    shift = (
        a.critical_link_bytes / mesh.link_bytes_per_cycle
        + a.critical_hops * mesh.hop_cycles
        + a.critical_stations * mesh.station_cycles
    ) / a.steps
    return (a.steps * np.maximum(compute, shift) + a.skew_shifts * shift) / mesh.clock_hz


def mesh_energy_j(a: WaferActions, mesh: Mesh) -> np.ndarray:
    """Dynamic energy (J): FLOPs, SRAM bytes and hop bytes of every core at their energies."""
    return a.cores * (2.0 * a.macs_per_core * mesh.e_flop + a.sram_bytes_per_core * mesh.e_sram) + (
        a.fabric_hop_bytes * mesh.e_hop
    )


def gemv_time_s(n, k, batch, mesh: Mesh, elem_bytes: float = 2.0, naive: bool = False):
    """MeshGEMV time (s), vectorized (``gemv_time_from`` of ``gemv_actions``)."""
    return gemv_time_from(gemv_actions(n, k, batch, mesh, elem_bytes, naive), mesh)


def gemm_time_s(m, k, n, mesh: Mesh, elem_bytes: float = 2.0, naive: bool = False):
    """MeshGEMM time (s), vectorized (``gemm_time_from`` of ``gemm_actions``)."""
    return gemm_time_from(gemm_actions(m, k, n, mesh, elem_bytes, naive), mesh)


@register
class WaferCostModel:
    """Ops of a decode step or a prefill on a wafer-scale mesh, by PLMR terms."""

    arch: ClassVar[str] = "wafer"

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        mesh = Mesh.of(device)
        nd = ops.flops.ndim
        shape = np.broadcast_shapes(ops.flops.shape, ops.m.shape, ops.n.shape, ops.k.shape)
        kind = ops.kind.reshape((-1,) + (1,) * (nd - 1))
        gemm = np.isin(kind, ("gemm", "router"))
        elem = 2.0
        tokens = np.broadcast_to(np.where(ops.m > 0, ops.m, 1.0), shape)
        n = np.broadcast_to(np.maximum(ops.n, 1.0), shape)
        k = np.broadcast_to(np.maximum(ops.k, 1.0), shape)
        actions = action_counts(tokens, k, n, mesh, elem)
        matmul_s = time_from(actions, mesh)
        matmul_j = mesh_energy_j(actions, mesh)
        # everything else spreads over every core and ends with one tree reduction
        stations, hops = reduce_path(mesh.rows)
        spread_compute = ops.flops / (mesh.cores * mesh.flop_per_cycle * mesh.clock_hz)
        spread_memory = ops.memory_bytes / (mesh.cores * mesh.sram_bytes_per_cycle * mesh.clock_hz)
        reduce_s = (stations * mesh.station_cycles + hops * mesh.hop_cycles) / mesh.clock_hz
        other_link = np.where(ops.flops + ops.memory_bytes > 0, reduce_s, 0.0)
        compute_s = np.where(gemm, matmul_s, np.broadcast_to(spread_compute, shape))
        memory_s = np.where(gemm, 0.0, np.broadcast_to(spread_memory, shape))
        link_s = np.where(gemm, 0.0, np.broadcast_to(other_link, shape))
        count = ops.count.reshape((-1,) + (1,) * (nd - 1))
        hop_bytes = np.where(gemm, actions.fabric_hop_bytes, 0.0)
        other_j = ops.flops * mesh.e_flop + ops.memory_bytes * mesh.e_sram
        dynamic = count * np.where(gemm, matmul_j, other_j)
        tdp = device.tdp_w
        roofline = np.maximum(
            ops.flops / (mesh.cores * mesh.flop_per_cycle * mesh.clock_hz),
            ops.memory_bytes / (mesh.cores * mesh.sram_bytes_per_cycle * mesh.clock_hz),
        )
        return CostTable(
            op=ops.name,
            kind=ops.kind,
            count=ops.count,
            compute_s=compute_s,
            memory_s=memory_s,
            link_s=link_s,
            overhead_s=np.zeros(shape),
            dynamic_energy_j=dynamic,
            roofline_s=np.broadcast_to(roofline, shape),
            flops=ops.per_step("flops"),
            bytes_by_level={"sram": count * ops.memory_bytes, "fabric": count * hop_bytes},
            static_power_w=device.extra["wafer"]["static_power_fraction"] * tdp,
            power_cap_w=tdp,
        )


def check_fit(
    spec_weight_bytes: float, kv_bytes: float, device: DeviceSpec, cores: int | None = None
) -> float:
    """Bytes per core the placement needs (weights and KV cache spread evenly, plus the reserve);
    raises ``DoesNotFitError`` with the per-core and total shortfall when it exceeds the core's SRAM."""
    from workloads.errors import DoesNotFitError

    mesh = Mesh.of(device)
    n = cores or mesh.cores
    need = (spec_weight_bytes + kv_bytes) / n + mesh.reserved_bytes
    if need > mesh.sram_bytes:
        short = need - mesh.sram_bytes
        raise DoesNotFitError(
            f"{device.name}: needs {need / 1024:.1f} KB per core on {n:,} cores, has "
            f"{mesh.sram_bytes / 1024:.0f} KB (short by {short / 1024:.1f} KB per core, "
            f"{short * n / 1e9:.1f} GB in all)"
        )
    return need
