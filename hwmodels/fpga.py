"""The FPGA cost model (``arch: fpga``): FlightLLM's sparse DSP chain and always-on-chip decode.

FlightLLM (Zeng et al., FPGA'24, arXiv 2401.03868; artifact FlightLLM/flightllm_test_demo) maps
an LLM onto an HBM FPGA as instructions for three units: a matrix processing engine (MPE) of
cascaded DSP slices, a special-function unit (SFU: norms, softmax, activations) and a memory
unit streaming HBM into on-chip buffers. What moves where, per op:

- a GEMM's weights are stored compressed in HBM: N:M sparse along K in groups of ``M = 16``
  (N per 16 x 16 block), values 4- or 8-bit, a 4-bit index per kept weight of a sparse block
  and a descriptor byte per block (``hwmodels/kernels/sparse_gemv.py`` performs it). They stream
  into the on-chip weight buffer and the configurable sparse DSP chain spends one INT8
  multiply-add per *kept* weight and token;
- decode keeps the activations on chip (the paper's always-on-chip decode, Sec. 1): a GEMV reads its
  input from and writes its output to on-chip RAM, so HBM carries only weights and the KV
  cache. Prefill (or a decode batch whose activations do not fit on chip) also moves every
  op's input and output through HBM;
- attention reads (and appends) the INT8 KV cache in HBM and runs its products on the MPE,
  dense (the paper's block-sparse attention is not modelled); norms and activations run on
  the SFU, 16 elements a cycle, two passes for a norm (the artifact's ``time_MISC``).

``action_counts`` returns these actions per op (``FpgaActions``): DSP multiply-adds, SFU
element-passes, HBM bytes, on-chip bytes, op boundaries. Time and energy come from them only:
loads overlap compute (the weight buffer holds two loads, the artifact's LD/MV wait-release),
so an op takes ``max(DSP and SFU cycles / clock, HBM bytes / (bandwidth x efficiency))`` plus
``op_sync_cycles`` at its boundary (``time_terms``); energy is each count times its energy
(``dynamic_energy_j``) plus the static power over the time. The N:M format and the mean kept
share are the catalog's ``fpga`` block; the weights' mean value width (mixed 4/8-bit) is the
precision's (``Quant``: the OpTable's bits per weight), so both are stated inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from hwmodels.registry import register
from workloads.errors import ConfigError
from workloads.graph import OpTable
from workloads.quant import FORMAT_BITS

NORM_PASSES = 2
"""SFU passes over a norm's (or softmax's) input: one to reduce, one to scale (the artifact's
``time_MISC`` doubles layernorm and softmax cycles, profile/inst_gen/inst_profiler.py)."""

REQUIRED = (
    "clock_MHz",
    "hbm_efficiency",
    "op_sync_cycles",
    "sfu_elements_per_cycle",
    "nm_group",
    "nm_index_bits",
    "nm_descriptor_bits",
    "nm_density",
    "dsp_mac_energy_pJ",
    "sram_energy_pJ_per_byte",
    "board_power_W",
    "onchip_sram_MB",
)


@dataclass(frozen=True)
class NmFormat:
    """How a GEMM's weights are stored: groups of ``group`` along K, a mean kept share
    ``density`` (N/M), ``index_bits`` per kept weight of a sparse block, ``descriptor_bits`` per
    ``group x group`` block."""

    group: int
    density: float
    index_bits: float
    descriptor_bits: float

    def indexed_share(self) -> float:
        """Share of kept weights that carry an index: all when blocks are sparse (N < M)."""
        return 1.0 if self.density < 1.0 else 0.0


@dataclass(frozen=True)
class FpgaDesign:
    """A FlightLLM-style design on an FPGA card, in SI units (the catalog's ``fpga`` block)."""

    clock_hz: float
    mac_lanes: float
    peak_mac_lanes: float
    hbm_efficiency: float
    op_sync_cycles: float
    sfu_lanes: float
    nm: NmFormat
    onchip_bytes: float
    e_mac: float
    e_sram: float
    board_power_w: float

    @classmethod
    def of(cls, device: DeviceSpec) -> FpgaDesign:
        block = device.extra.get("fpga")
        if block is None:
            raise ConfigError(
                f"device {device.name!r} has no 'fpga' block (design clock, DSPs, N:M format...)"
            )
        missing = [k for k in REQUIRED if k not in block]
        if "mpe_macs_per_cycle" not in block and not {
            "dsp_count",
            "mpe_dsp_fraction",
            "int8_ops_per_dsp_cycle",
        } <= set(block):
            missing.append("mpe_macs_per_cycle (or dsp_count, mpe_dsp_fraction, int8_ops_per_dsp_cycle)")
        if missing:
            raise ConfigError(f"{device.file}: fpga block is missing {', '.join(missing)}")
        for name in ("hbm_efficiency", "mpe_dsp_fraction", "nm_density"):
            if block.get(name, 0.0) > 1.0:
                raise ConfigError(f"{device.file}: fpga.{name} is {block[name]}; expected a share in (0, 1]")
        dsp_lanes = (
            block["dsp_count"] * block["int8_ops_per_dsp_cycle"] / 2.0 if "dsp_count" in block else None
        )
        lanes = (
            block["mpe_macs_per_cycle"]
            if "mpe_macs_per_cycle" in block
            else dsp_lanes * block["mpe_dsp_fraction"]
        )
        return cls(
            clock_hz=block["clock_MHz"] * 1e6,
            mac_lanes=lanes,
            peak_mac_lanes=max(lanes, dsp_lanes or 0.0),
            hbm_efficiency=block["hbm_efficiency"],
            op_sync_cycles=block["op_sync_cycles"],
            sfu_lanes=block["sfu_elements_per_cycle"],
            nm=NmFormat(
                int(block["nm_group"]),
                block["nm_density"],
                block["nm_index_bits"],
                block["nm_descriptor_bits"],
            ),
            onchip_bytes=block["onchip_sram_MB"] * 1e6,
            e_mac=block["dsp_mac_energy_pJ"] * 1e-12,
            e_sram=block["sram_energy_pJ_per_byte"] * 1e-12,
            board_power_w=block["board_power_W"],
        )


@dataclass(frozen=True)
class FpgaActions:
    """Hardware actions of an op, per occurrence (NumPy arrays over ops and the sweep).

    dsp_macs : INT8 multiply-adds on the DSP chain (kept weights only);
    sfu_passes : elements times passes through the special-function unit;
    hbm_bytes : bytes read from or written to HBM (compressed weights, KV cache, and activations
        outside the always-on-chip decode);
    sram_bytes : bytes moved in on-chip RAM (weights staged, activations, KV staged);
    syncs : op boundaries (the next op waits on this one's result).
    """

    dsp_macs: np.ndarray
    sfu_passes: np.ndarray
    hbm_bytes: np.ndarray
    sram_bytes: np.ndarray
    syncs: np.ndarray


def compressed_bits_per_weight(value_bits, nm: NmFormat, indexed_share=None):
    """Stored bits per weight position: kept values at their mean width, an index per kept weight
    of a sparse block, the block descriptors (vectorized over ``value_bits``)."""
    share = nm.indexed_share() if indexed_share is None else indexed_share
    return nm.density * (np.asarray(value_bits, dtype=float) + nm.index_bits * share) + (
        nm.descriptor_bits / nm.group**2
    )


def gemv_counts(n, k, tokens, value_bits, nm: NmFormat, act_bytes=1.0, indexed_share=None) -> FpgaActions:
    """The sparse GEMV's actions in closed form (``sparse_gemv``'s counts): ``tokens`` rows through
    an ``n x k`` weight of mean value width ``value_bits`` over kept weights, activations on chip."""
    n, k, tokens, act_bytes = (np.asarray(v, dtype=float) for v in (n, k, tokens, act_bytes))
    weights = n * k * compressed_bits_per_weight(value_bits, nm, indexed_share) / 8.0
    x_reads = (n / nm.group) * k * tokens * act_bytes  # every block row reads its input segments
    y_writes = n * tokens * act_bytes
    return FpgaActions(
        dsp_macs=n * k * nm.density * tokens,
        sfu_passes=np.zeros_like(weights),
        hbm_bytes=weights,
        sram_bytes=weights + x_reads + y_writes,
        syncs=np.ones_like(weights),
    )


def _elem_bytes(fmt: np.ndarray) -> np.ndarray:
    """Bytes per element of each op's format (``int3`` and the like by their digits)."""
    bits = [FORMAT_BITS.get(f, int(f[3:]) if f.startswith("int") and f[3:].isdigit() else 16) for f in fmt]
    return np.asarray(bits, dtype=float) / 8.0


def action_counts(ops: OpTable, design: FpgaDesign, always_on_chip: bool = True) -> FpgaActions:
    """Actions of every op of ``ops`` on ``design``, per occurrence, shape (n_ops, *sweep).

    ``always_on_chip=False`` sends decode activations through HBM as prefill does (the
    design without FlightLLM's always-on-chip decode)."""
    nd = ops.flops.ndim
    shape = np.broadcast_shapes(
        ops.flops.shape, ops.n.shape, ops.k.shape, ops.weight_bytes.shape, ops.kv_read_bytes.shape
    )
    col = lambda a: a.reshape((-1,) + (1,) * (nd - 1))  # noqa: E731
    kind = col(ops.kind)
    gemm = np.isin(kind, ("gemm", "router"))
    attention = kind == "attention"
    sfu_op = np.isin(kind, ("norm", "elementwise"))
    nk = np.maximum(ops.n * ops.k, 1.0)
    tokens = ops.flops / (2.0 * nk)
    act_bytes = np.where(tokens * ops.k > 0, ops.act_in_bytes / np.maximum(tokens * ops.k, 1e-30), 1.0)
    g = gemv_counts(ops.n, ops.k, tokens, ops.bits_per_weight, design.nm, act_bytes)
    acts = ops.act_in_bytes + ops.act_out_bytes
    kv = ops.kv_read_bytes + ops.kv_write_bytes
    on_chip = (ops.phase == "decode") & always_on_chip & (acts <= design.onchip_bytes)
    offchip_acts = np.where(on_chip, 0.0, acts)
    passes = np.where(col(ops.kind) == "norm", NORM_PASSES, 1.0)
    elements = ops.act_in_bytes / col(_elem_bytes(ops.fmt))
    dsp = np.where(gemm, g.dsp_macs, np.where(attention, ops.flops / 2.0, 0.0))
    sfu = np.where(sfu_op, elements * passes, 0.0)
    hbm = np.where(gemm, g.hbm_bytes, np.where(attention, kv, ops.weight_bytes)) + offchip_acts
    sram = np.where(gemm, g.sram_bytes, ops.weight_bytes + acts + kv)
    busy = (ops.flops + ops.memory_bytes) > 0
    return FpgaActions(
        dsp_macs=np.broadcast_to(dsp, shape),
        sfu_passes=np.broadcast_to(sfu, shape),
        hbm_bytes=np.broadcast_to(hbm, shape),
        sram_bytes=np.broadcast_to(sram, shape),
        syncs=np.broadcast_to(np.where(busy, 1.0, 0.0), shape),
    )


def time_terms(
    a: FpgaActions, design: FpgaDesign, hbm_bytes_per_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compute_s, memory_s, overhead_s) of an op from its actions: DSP and SFU cycles over the
    clock, HBM bytes over the sustained bandwidth, op boundaries over the clock. The op takes
    ``max(compute_s, memory_s) + overhead_s`` (loads overlap compute)."""
    compute_s = (a.dsp_macs / design.mac_lanes + a.sfu_passes / design.sfu_lanes) / design.clock_hz
    memory_s = a.hbm_bytes / (hbm_bytes_per_s * design.hbm_efficiency)
    overhead_s = a.syncs * design.op_sync_cycles / design.clock_hz
    return compute_s, memory_s, overhead_s


def op_time_s(a: FpgaActions, design: FpgaDesign, hbm_bytes_per_s: float) -> np.ndarray:
    """Seconds per occurrence of an op from its actions (``time_terms`` combined)."""
    compute_s, memory_s, overhead_s = time_terms(a, design, hbm_bytes_per_s)
    return np.maximum(compute_s, memory_s) + overhead_s


def dynamic_energy_j(a: FpgaActions, design: FpgaDesign, hbm_j_per_byte: float) -> np.ndarray:
    """Dynamic energy of an op (J): multiply-adds, HBM bytes and on-chip bytes at their energies.
    SFU passes are priced through the on-chip bytes they read and write."""
    return a.dsp_macs * design.e_mac + a.hbm_bytes * hbm_j_per_byte + a.sram_bytes * design.e_sram


def static_power_w(design: FpgaDesign, device: DeviceSpec) -> float:
    """Power drawn regardless of the counted actions (W), derived from the board's measured power:
    the board power less what the HBM stream draws at the sustained bandwidth, since decode (the
    measured state) streams HBM throughout; DSP and on-chip traffic (~1 W) are left in it. Never
    below zero (a what-if with much more bandwidth)."""
    hbm_w = device.memory.energy_j_per_byte * device.memory.bw_bytes_per_s * design.hbm_efficiency
    return max(design.board_power_w - hbm_w, 0.0)


@register
class FpgaCostModel:
    """Ops of a decode step or a prefill on a FlightLLM-style FPGA design."""

    arch: ClassVar[str] = "fpga"

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        design = FpgaDesign.of(device)
        a = action_counts(ops, design)
        bw = device.memory.bw_bytes_per_s
        compute_s, memory_s, overhead_s = time_terms(a, design, bw)
        count = ops.count.reshape((-1,) + (1,) * (ops.flops.ndim - 1))
        # the bound: the same actions at the DSPs' full rate and HBM's full bandwidth, no boundaries
        roofline = np.maximum(
            a.dsp_macs / (design.peak_mac_lanes * design.clock_hz)
            + a.sfu_passes / (design.sfu_lanes * design.clock_hz),
            a.hbm_bytes / bw,
        )
        return CostTable(
            op=ops.name,
            kind=ops.kind,
            count=ops.count,
            compute_s=compute_s,
            memory_s=memory_s,
            link_s=np.zeros_like(compute_s),
            overhead_s=overhead_s,
            dynamic_energy_j=count * dynamic_energy_j(a, design, device.memory.energy_j_per_byte),
            roofline_s=roofline,
            flops=ops.per_step("flops"),
            bytes_by_level={"hbm": count * a.hbm_bytes, "sram": count * a.sram_bytes},
            static_power_w=static_power_w(design, device),
            power_cap_w=device.tdp_w if device.tdp_w else float("inf"),
        )
