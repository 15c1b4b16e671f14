"""The SAIL cost model (``arch: sail``): LUT-GEMV in SRAM arrays of a CPU's last-level cache.

Dataflow (Zhang et al., SAIL, arXiv 2509.25853; ``hwmodels/kernels/lut_gemv.py`` performs it):
a GEMM's weights stream from DRAM into compute-capable SRAM arrays beside the LLC slices.
In an array, the ``2**g`` rows of a group's table hold, side by side in the columns, the
subset sums of ``outputs_per_row`` output rows' weights; building a table takes one row
write per entry. Activations are processed bit-serially: each bit plane of each token
selects one row, and that one row read serves every output laid out in it (a shift-add per
output in the near-array accumulators). A pattern-reuse table skips the read of a
repeated or all-zero index pattern. Tables are built once per batch, so building and the
weight stream from DRAM are amortized over the tokens; integer partial sums are scaled in
the arrays (type conversion) once per quantization group and output.

Per GEMM: ``time = max(weight bytes / DRAM bandwidth, (build + lookup + conversion)
array-cycles / (arrays x PIM clock))``; other ops (attention, norms) run on the CPU cores
as the CPU cost model prices them. PIM parameters are in the catalog entry's ``sail`` block,
each with its stated basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.cpu import CpuCostModel
from hwmodels.device_spec import DeviceSpec
from hwmodels.kernels.lut_gemv import group_indices
from hwmodels.placement import Placement
from hwmodels.registry import register
from workloads.errors import ConfigError
from workloads.graph import OpTable

SAIL_PARAMS = (
    "n_arrays",
    "pim_freq_GHz",
    "outputs_per_row",
    "lut_group",
    "act_bits",
    "conversion_cycles",
    "quant_group",
    "area_overhead",
    "dram_efficiency",
)


@dataclass(frozen=True)
class SailParams:
    """The PIM parameters of a SAIL device (``sail`` block of its catalog entry)."""

    n_arrays: float
    pim_freq_hz: float
    outputs_per_row: float
    lut_group: int
    act_bits: int
    conversion_cycles: float
    quant_group: int
    area_overhead: float
    dram_efficiency: float

    @classmethod
    def of(cls, device: DeviceSpec) -> SailParams:
        block = device.extra.get("sail")
        if block is None:
            raise ConfigError(
                f"device {device.name!r} has no 'sail' block (PIM arrays, clock, table group...)"
            )
        missing = [k for k in SAIL_PARAMS if k not in block]
        if missing:
            raise ConfigError(f"{device.file}: sail block is missing {', '.join(missing)}")
        return cls(
            block["n_arrays"],
            block["pim_freq_GHz"] * 1e9,
            block["outputs_per_row"],
            int(block["lut_group"]),
            int(block["act_bits"]),
            block["conversion_cycles"],
            int(block["quant_group"]),
            block["area_overhead"],
            block["dram_efficiency"],
        )


@dataclass(frozen=True)
class SailActions:
    """Hardware actions of one GEMM on the PIM arrays (NumPy arrays over the sweep).

    row_writes : array rows written to build tables (``2**g`` per table row group);
    row_reads : rows read by lookups, after pattern reuse (one read serves a row's outputs);
    conversions : integer-to-float scalings (per row group of outputs, quantization group, token);
    dram_bytes : weight bytes streamed from DRAM into the arrays.
    """

    row_writes: np.ndarray
    row_reads: np.ndarray
    conversions: np.ndarray
    dram_bytes: np.ndarray


def action_counts(m, k, tokens, sp: SailParams, weight_bytes, reuse_fraction: float = 0.0) -> SailActions:
    """Actions of a LUT-GEMV of ``tokens`` rows through a (k x m) weight, in closed form: the
    reference kernel's row counts (``lut_gemv(..., outputs_per_row=sp.outputs_per_row)``)."""
    m, k, tokens = (np.asarray(v, dtype=float) for v in (m, k, tokens))
    rows = np.ceil(m / sp.outputs_per_row)
    groups = k / sp.lut_group
    return SailActions(
        row_writes=rows * groups * 2**sp.lut_group,
        row_reads=rows * groups * sp.act_bits * tokens * (1.0 - reuse_fraction),
        conversions=rows * (k / sp.quant_group) * tokens,
        dram_bytes=np.asarray(weight_bytes, dtype=float),
    )


def array_cycles(a: SailActions, sp: SailParams) -> np.ndarray:
    """PIM array-cycles: a row write or read is one cycle; a conversion takes ``conversion_cycles``."""
    return a.row_writes + a.row_reads + a.conversions * sp.conversion_cycles


def gemm_time_s(a: SailActions, sp: SailParams, device: DeviceSpec) -> tuple[np.ndarray, np.ndarray]:
    """(PIM time, DRAM time) of a GEMM: array-cycles over the arrays' clock, and the weight
    stream at the achievable DRAM bandwidth; they overlap, so the longer bounds the GEMM."""
    pim_s = array_cycles(a, sp) / (sp.n_arrays * sp.pim_freq_hz)
    dram_s = a.dram_bytes / (device.memory.bw_bytes_per_s * sp.dram_efficiency)
    return pim_s, dram_s


def gemm_energy_j(a: SailActions, sp: SailParams, device: DeviceSpec) -> np.ndarray:
    """Array-cycles at the row energy, plus the weight bytes at the DRAM's energy per byte."""
    return array_cycles(a, sp) * sp_energy(device) + a.dram_bytes * device.memory.energy_j_per_byte


def saved_lookups(x_int: np.ndarray, m: int, group: int, act_bits: int) -> int:
    """Lookups a pattern-reuse table saves for activations ``x_int`` (k, tokens): within each
    group, every repeated index pattern and the all-zero one reuse an earlier result."""
    idx = group_indices(np.asarray(x_int).reshape(x_int.shape[0], -1), act_bits, group)
    flat = idx.reshape(idx.shape[0], -1)  # (groups, bits * tokens)
    ordered = np.sort(flat, axis=1)
    new = np.ones_like(ordered, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    distinct_nonzero = (new & (ordered != 0)).sum()
    return int(m * (flat.size - distinct_nonzero))


@register
class SailCostModel(CpuCostModel):
    """A CPU whose GEMMs run as LUT-GEMV in its last-level-cache SRAM arrays."""

    arch: ClassVar[str] = "sail"
    params_arch: ClassVar[str | None] = "cpu"

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        cpu = super().estimate(ops, device, placement)
        sp = SailParams.of(device)
        gemm = np.isin(ops.kind, ("gemm", "router")).reshape((-1,) + (1,) * (ops.flops.ndim - 1))
        tokens = ops.flops / np.maximum(2.0 * ops.n * ops.k, 1.0)  # rows through the GEMM (MoE: routed)
        reuse = device.extra["sail"].get("pattern_reuse_fraction", 0.0)
        actions = action_counts(ops.n, ops.k, tokens, sp, ops.weight_bytes, reuse)
        pim_s, dram_s = gemm_time_s(actions, sp, device)
        compute_s = np.where(gemm, pim_s, cpu.compute_s)
        memory_s = np.where(gemm, dram_s, cpu.memory_s)
        count = cpu.count.reshape((-1,) + (1,) * (ops.flops.ndim - 1))
        pim_energy = count * gemm_energy_j(actions, sp, device)
        return CostTable(
            op=cpu.op,
            kind=cpu.kind,
            count=cpu.count,
            compute_s=compute_s,
            memory_s=memory_s,
            link_s=cpu.link_s,
            overhead_s=cpu.overhead_s,
            dynamic_energy_j=np.where(gemm, pim_energy, cpu.dynamic_energy_j),
            roofline_s=np.where(gemm, ops.weight_bytes / device.memory.bw_bytes_per_s, cpu.roofline_s),
            flops=cpu.flops,
            bytes_by_level=cpu.bytes_by_level,
            static_power_w=cpu.static_power_w,
            power_cap_w=cpu.power_cap_w,
        )


def sp_energy(device: DeviceSpec) -> float:
    """Energy of one array-cycle (a row read or write with its near-array add), joules."""
    block = device.extra["sail"]
    if "row_energy_pJ" not in block:
        raise ConfigError(f"{device.file}: sail block is missing row_energy_pJ")
    return block["row_energy_pJ"] * 1e-12
