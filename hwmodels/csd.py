"""The computational-storage cost model (``arch: csd``): decode attention inside the drive.

Dataflow (InstInfer, Pan et al., arXiv 2409.04992; ``hwmodels/kernels/flash_attention_split.py``
performs it): the KV cache lives in flash, page-sized chunks of each KV head striped over
the channels. The drive's engine reads every page once per step, computes partial softmax
per channel and merges them; only the query and the attention output cross PCIe. A page
read costs ``tR`` on one die (``dies_per_channel`` dies overlap per channel) and its bytes
on the channel bus; the channels run in parallel, and the path from the flash to the engine
(``internal_path_GBps``) caps their sum. Attention FLOPs run on the drive's FPGA at its
peak. ``action_counts`` gives the actions (page reads and bytes on the busiest channel, bytes
over the path, multiply-adds, merges) and the time and energy are computed from them only
(``attention_time_s``, ``attention_energy_j``); the reference kernel counts the same. Other ops (none in the InstInfer split) are priced as a roofline of the FPGA and its
DRAM. Parameters: the catalog entry's ``csd`` block, each with its basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.kernels.flash_attention_split import tokens_per_page
from hwmodels.placement import Placement
from hwmodels.registry import register
from workloads.errors import ConfigError, DoesNotFitError
from workloads.graph import OpTable


@dataclass(frozen=True)
class Flash:
    """Flash array of a drive, SI units."""

    channels: int
    dies_per_channel: float
    page_bytes: float
    page_read_s: float
    channel_bw: float
    internal_bw: float
    read_j_per_byte: float
    capacity_bytes: float

    @classmethod
    def of(cls, device: DeviceSpec) -> Flash:
        c = device.extra.get("csd")
        if c is None:
            raise ConfigError(
                f"device {device.name!r} has no 'csd' block (flash channels, pages, engine path)"
            )
        return cls(
            int(c["channels"]),
            c["dies_per_channel"],
            c["page_KB"] * 1024.0,
            c["page_read_us"] * 1e-6,
            c["channel_GBps"] * 1e9,
            c["internal_path_GBps"] * 1e9,
            c["read_energy_pJ_per_byte"] * 1e-12,
            device.extra["storage"]["capacity_bytes"],
        )


MERGE_FLOPS_PER_DIM = 2.0
"""FLOPs per output element of one online-softmax merge: rescale the running output and add
the other partial (plus a few scalar operations per merge, ``MERGE_SCALAR_FLOPS``)."""
MERGE_SCALAR_FLOPS = 6.0


@dataclass(frozen=True)
class CsdActions:
    """Hardware actions of decode attention in the drive (NumPy arrays over the sweep).

    critical_page_reads, critical_bytes : page reads and bytes on the busiest flash channel;
    total_bytes : bytes over the flash-to-engine path (all channels);
    engine_macs : multiply-adds of QK^T and PV on the engine;
    merges : online-softmax merges of the channels' partials (per query head);
    merge_dim : elements of the vector each merge rescales and adds (the head dimension).
    """

    critical_page_reads: np.ndarray
    critical_bytes: np.ndarray
    total_bytes: np.ndarray
    engine_macs: np.ndarray
    merges: np.ndarray
    merge_dim: np.ndarray

    @property
    def engine_flops(self) -> np.ndarray:
        """FLOPs on the engine: 2 per multiply-add, plus the merges."""
        return 2.0 * self.engine_macs + self.merges * (
            MERGE_FLOPS_PER_DIM * self.merge_dim + MERGE_SCALAR_FLOPS
        )


def action_counts(
    batch,
    kv_heads,
    heads,
    ctx,
    head_dim: int,
    kv_bytes: float,
    page_bytes: int,
    channels: int,
    read_fraction: float = 1.0,
) -> CsdActions:
    """Actions of ``split_attention`` in closed form, vectorized over ``batch`` and ``ctx``.

    Each (sequence, KV head) stripes its ``p = ceil(ctx / tpp)`` pages over the channels from
    channel 0, so the busiest channel holds ``ceil(p / C)`` pages; they are all full unless it
    is the only channel with that many, in which case it also holds the last, partial page.
    ``read_fraction`` < 1 reads that share of the pages (a sparse attention's selection).
    """
    batch, ctx = np.asarray(batch, dtype=float), np.asarray(ctx, dtype=float)
    tpp = tokens_per_page(page_bytes, head_dim, kv_bytes)
    bytes_per_token = 2.0 * head_dim * kv_bytes
    pages = np.ceil(ctx / tpp)
    per_channel = np.ceil(pages / channels)
    holders = pages - (per_channel - 1) * channels  # channels with per_channel pages
    deficit = np.where(holders == 1, (pages * tpp - ctx) * bytes_per_token, 0.0)
    stripes = batch * kv_heads * read_fraction
    group = heads / kv_heads
    used = np.minimum(channels, pages)
    return CsdActions(
        critical_page_reads=stripes * per_channel,
        critical_bytes=stripes * (per_channel * tpp * bytes_per_token - deficit),
        total_bytes=stripes * ctx * bytes_per_token,
        engine_macs=stripes * 2 * group * ctx * head_dim,
        merges=batch * heads * (used - 1),
        merge_dim=np.asarray(float(head_dim)),
    )


def evenly_striped(kv_read_bytes, flops, flash: Flash) -> CsdActions:
    """Actions of an op that reads ``kv_read_bytes`` in full pages spread evenly over the channels
    (what ``action_counts`` gives when the context fills whole pages on every channel): the form
    the cost model uses on an ``OpTable``, whose attention rows carry bytes, not shapes."""
    kv_read_bytes = np.asarray(kv_read_bytes, dtype=float)
    zero = np.zeros_like(kv_read_bytes)
    return CsdActions(
        critical_page_reads=kv_read_bytes / (flash.page_bytes * flash.channels),
        critical_bytes=kv_read_bytes / flash.channels,
        total_bytes=kv_read_bytes,
        engine_macs=np.asarray(flops, dtype=float) / 2.0,
        merges=zero,
        merge_dim=zero,
    )


def flash_time_s(a: CsdActions, flash: Flash, n_drives: int = 1) -> np.ndarray:
    """Time to read the KV pages: the busiest channel's bus bytes or its page reads on its dies,
    whichever is longer, or the flash-to-engine path for all bytes; ``n_drives`` split the work."""
    bus = a.critical_bytes / flash.channel_bw
    dies = a.critical_page_reads * flash.page_read_s / flash.dies_per_channel
    path = a.total_bytes / flash.internal_bw
    return np.maximum(np.maximum(bus, dies), path) / n_drives


def engine_time_s(a: CsdActions, device: DeviceSpec) -> np.ndarray:
    """Time of the engine's arithmetic at the drive's FP16 peak."""
    return a.engine_flops / device.peak("fp16")


def attention_time_s(a: CsdActions, flash: Flash, device: DeviceSpec) -> np.ndarray:
    """In-drive attention: page reads and engine arithmetic overlap (streamed), the longer wins."""
    return np.maximum(flash_time_s(a, flash), engine_time_s(a, device))


def attention_energy_j(a: CsdActions, flash: Flash, device: DeviceSpec) -> np.ndarray:
    """Dynamic energy: flash bytes at the read energy per byte, engine FLOPs at the FPGA's J/FLOP."""
    return a.total_bytes * flash.read_j_per_byte + a.engine_flops * _j_per_flop(device)


def _j_per_flop(device: DeviceSpec) -> float:
    c = device.extra["csd"]
    static_w = c["static_power_fraction"] * device.tdp_w
    return c["math_power_fraction"] * (device.tdp_w - static_w) / device.peak("fp16")


def check_capacity(kv_bytes_total: float, device: DeviceSpec, n_drives: int = 1) -> None:
    """Raise ``DoesNotFitError`` with the shortfall when the KV cache exceeds the drives."""
    cap = Flash.of(device).capacity_bytes * n_drives
    if kv_bytes_total > cap:
        raise DoesNotFitError(
            f"KV cache of {kv_bytes_total / 1e12:.2f} TB exceeds {n_drives} x {device.name} "
            f"({cap / 1e12:.2f} TB): short by {(kv_bytes_total - cap) / 1e9:.1f} GB"
        )


@register
class CsdCostModel:
    """Attention on a computational storage drive; other ops on its FPGA and DRAM."""

    arch: ClassVar[str] = "csd"
    standalone: ClassVar[str | None] = (
        "a computational storage drive runs decode attention beside a GPU, not a whole model: "
        "see `hwsim reproduce instinfer` (sim/experiments/instinfer.py builds the GPU + drive system)"
    )
    """Why this arch cannot price a whole model on its own (``estimate`` refuses it)."""

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        flash = Flash.of(device)
        nd = ops.flops.ndim
        kind = ops.kind.reshape((-1,) + (1,) * (nd - 1))
        attention = kind == "attention"
        peak = device.peak("fp16")
        dram = device.memory.bw_bytes_per_s
        actions = evenly_striped(
            np.where(attention, ops.kv_read_bytes, 0.0), np.where(attention, ops.flops, 0.0), flash
        )
        other_bytes = ops.memory_bytes - np.where(attention, ops.kv_read_bytes, 0.0)
        compute_s = np.where(attention, engine_time_s(actions, device), ops.flops / peak)
        memory_s = flash_time_s(actions, flash) + other_bytes / dram
        count = ops.count.reshape((-1,) + (1,) * (nd - 1))
        static_w = device.extra["csd"]["static_power_fraction"] * device.tdp_w
        dynamic = count * (
            attention_energy_j(actions, flash, device)
            + np.where(attention, 0.0, ops.flops) * _j_per_flop(device)
            + other_bytes * device.memory.energy_j_per_byte
        )
        shape = np.broadcast_shapes(compute_s.shape, memory_s.shape)
        return CostTable(
            op=ops.name,
            kind=ops.kind,
            count=ops.count,
            compute_s=np.broadcast_to(compute_s, shape),
            memory_s=np.broadcast_to(memory_s, shape),
            link_s=np.zeros(shape),
            overhead_s=np.zeros(shape),
            dynamic_energy_j=np.broadcast_to(dynamic, shape),
            roofline_s=np.broadcast_to(np.maximum(ops.flops / peak, ops.memory_bytes / dram), shape),
            flops=ops.per_step("flops"),
            bytes_by_level={
                "flash": count * np.where(attention, ops.kv_read_bytes, 0.0),
                "dram": count * other_bytes,
            },
            static_power_w=static_w,
            power_cap_w=device.tdp_w,
        )
