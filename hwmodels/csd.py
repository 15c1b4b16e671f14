"""The computational-storage cost model (``arch: csd``): decode attention inside the drive.

Dataflow (InstInfer, Pan et al., arXiv 2409.04992; ``hwmodels/kernels/flash_attention_split.py``
performs it): the KV cache lives in flash, page-sized chunks of each KV head striped over
the channels. The drive's engine reads every page once per step, computes partial softmax
per channel and merges them; only the query and the attention output cross PCIe. A page
read costs ``tR`` on one die (``dies_per_channel`` dies overlap per channel) and its bytes
on the channel bus; the channels run in parallel, and the path from the flash to the engine
(``internal_path_GBps``) caps their sum. Attention FLOPs run on the drive's FPGA at its
peak. Other ops (none in the InstInfer split) are priced as a roofline of the FPGA and its
DRAM. Parameters: the catalog entry's ``csd`` block, each with its basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.kernels.flash_attention_split import SplitCounts, tokens_per_page
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


def attention_counts(
    batch: int,
    kv_heads: int,
    heads: int,
    ctx: int,
    head_dim: int,
    kv_bytes: float,
    page_bytes: int,
    channels: int,
) -> SplitCounts:
    """Page reads and bytes per channel and merges of ``split_attention``, in closed form."""
    tpp = tokens_per_page(page_bytes, head_dim, kv_bytes)
    n_chunks = -(-ctx // tpp)
    j = np.arange(n_chunks)
    tokens = np.minimum(tpp, ctx - j * tpp)
    ch = j % channels
    reads = np.bincount(ch, minlength=channels).astype(np.int64) * batch * kv_heads
    nbytes = np.bincount(ch, weights=tokens * 2 * head_dim * kv_bytes, minlength=channels).astype(np.int64)
    used = min(channels, n_chunks)
    return SplitCounts(reads, nbytes * batch * kv_heads, batch * heads * (used - 1))


def flash_read_s(kv_bytes_total: np.ndarray, flash: Flash, n_drives: int = 1) -> np.ndarray:
    """Time to stream ``kv_bytes_total`` bytes striped evenly over the channels of ``n_drives`` drives."""
    per_channel = kv_bytes_total / (n_drives * flash.channels)
    pages = per_channel / flash.page_bytes
    bus = per_channel / flash.channel_bw
    dies = pages * flash.page_read_s / flash.dies_per_channel
    path = kv_bytes_total / (n_drives * flash.internal_bw)
    return np.maximum(np.maximum(bus, dies), path)


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
        compute_s = ops.flops / peak
        flash_s = flash_read_s(ops.kv_read_bytes, flash)
        other_bytes = ops.memory_bytes - ops.kv_read_bytes
        memory_s = np.where(attention, flash_s + other_bytes / dram, ops.memory_bytes / dram)
        count = ops.count.reshape((-1,) + (1,) * (nd - 1))
        c = device.extra["csd"]
        static_w = c["static_power_fraction"] * device.tdp_w
        j_per_flop = c["math_power_fraction"] * (device.tdp_w - static_w) / peak
        dynamic = count * (
            ops.flops * j_per_flop
            + ops.kv_read_bytes * flash.read_j_per_byte
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
            bytes_by_level={"flash": count * ops.kv_read_bytes, "dram": count * other_bytes},
            static_power_w=static_w,
            power_cap_w=device.tdp_w,
        )
