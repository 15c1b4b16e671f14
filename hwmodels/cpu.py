"""The CPU cost model (``arch: cpu``): vector instructions against the memory level the data lives in.

Per op and occurrence:

- ``compute_s``: the vector instructions of llama.cpp-style dot-product kernels, which
  unpack, de-quantize and multiply every weight for every token (instructions per 32-weight
  block by weight format in ``calibration/cpu_kernels.yaml``, scaled by the SIMD width),
  issued on ``cores x simd_units`` vector pipes at the clock, times ``compute_efficiency``;
  attention in fp32 by its FLOPs;
- ``memory_s``: bytes over the bandwidth of the level the step's weights live in: the
  last-level cache when the whole step's weights fit in it, else DRAM, times
  ``memory_efficiency``;
- ``overhead_s``: a thread-pool barrier per op (``kernel_overhead_us``).

Threads: one per core, all cores of one socket, no NUMA effects (the catalog entries are
single sockets). Parameters per class in ``calibration/cpu.yaml``; the micro-architecture
(cores, clock, SIMD, caches) in each catalog entry's ``cpu`` block.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any, ClassVar

import numpy as np

from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import CpuMicroarch, DeviceSpec
from hwmodels.placement import Placement
from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel
from workloads.errors import ConfigError
from workloads.graph import INT8_MAX_BITS_PER_WEIGHT, OpTable
from workloads.shipped import parse_yaml


@lru_cache(maxsize=1)
def kernel_table() -> dict[str, Any]:
    """The instruction counts of ``calibration/cpu_kernels.yaml``."""
    raw = parse_yaml(files("hwmodels.calibration").joinpath("cpu_kernels.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError("hwmodels/calibration/cpu_kernels.yaml: schema_version must be 1")
    return raw


def microarch(device: DeviceSpec) -> CpuMicroarch:
    """The ``cpu`` block of a catalog entry, or a clear error."""
    block = device.extra.get("cpu")
    if block is None:
        raise ConfigError(
            f"device {device.name!r} ({device.file}) has no 'cpu' block (cores, clock, SIMD, caches)"
        )
    return block


def instructions_per_mac(bits_per_weight: np.ndarray, simd_bits: int) -> np.ndarray:
    """Vector instructions per multiply-accumulate of one weight with one token's activation."""
    table = kernel_table()
    out = np.zeros_like(bits_per_weight, dtype=float)
    remaining = np.ones_like(bits_per_weight, dtype=bool)
    for fmt in table["formats"].values():
        hit = remaining & (bits_per_weight <= fmt["max_bits_per_weight"])
        out = np.where(hit, fmt["instructions_per_block"] / 32.0, out)
        remaining &= ~hit
    out = np.where(remaining, table["formats"]["fp32"]["instructions_per_block"] / 32.0, out)
    return out * table["reference_simd_bits"] / simd_bits


def instructions(
    ops: OpTable, simd_bits: int, tiled_gemm: bool = False, untiled_formats: tuple[str, ...] = ()
) -> np.ndarray:
    """Vector instructions per occurrence of each op.

    With ``tiled_gemm`` (a framework with register-tiled GEMM micro-kernels), GEMMs of more
    than one token row unpack each weight once per tile and issue one int8 dot product per
    ``simd_bits / 8`` multiply-adds (``simd_bits / 16`` for 16-bit weights, ``/ 32`` for fp32),
    instead of re-running the per-token dot kernel; ops whose math format is in
    ``untiled_formats`` (not covered by those micro-kernels) keep the per-token kernel.
    """
    bits = ops.bits_per_weight
    kind = ops.kind.reshape((-1,) + (1,) * (ops.flops.ndim - 1))
    macs = ops.flops / 2.0
    gemm = np.isin(kind, ("gemm", "router"))
    attention = kind == "attention"
    table = kernel_table()
    per_flop = table["attention_instructions_per_flop"] * table["reference_simd_bits"] / simd_bits
    per_mac = instructions_per_mac(bits, simd_bits)
    if tiled_gemm:  # one dot-product lane group per MAC: int8 (<= 8.6 bits/weight), 16-bit, or fp32 math
        math_bits = np.where(bits <= INT8_MAX_BITS_PER_WEIGHT, 8.0, np.where(bits <= 16.0, 16.0, 32.0))
        covered = ~np.isin(ops.fmt, untiled_formats).reshape(kind.shape)
        per_mac = np.where((ops.m > 1) & covered, math_bits / simd_bits, per_mac)
    return np.where(gemm, macs * per_mac, np.where(attention, ops.flops * per_flop, 0.0))


@register
class CpuCostModel(RooflineCostModel):
    """CPUs running llama.cpp-style kernels on their vector units against cache or DRAM."""

    arch: ClassVar[str] = "cpu"

    def compute_s(
        self,
        ops: OpTable,
        device: DeviceSpec,
        p: dict[str, float],
        peaks: np.ndarray,
        compute_eff: float,
        placement: Placement,
    ) -> np.ndarray:
        cpu = microarch(device)
        issue_per_s = cpu.cores * cpu.simd_units * cpu.freq_hz * compute_eff
        if not placement.framework:
            return instructions(ops, cpu.simd_bits) / issue_per_s
        terms = framework_terms(placement.framework)
        return instructions(ops, cpu.simd_bits, terms.cpu_tiled_gemm, terms.cpu_untiled_formats) / issue_per_s

    def memory_bw(self, ops: OpTable, device: DeviceSpec) -> float:
        """DRAM bandwidth, or the last-level cache's when the step's weights fit in it."""
        cpu = microarch(device)
        step_weights = float(np.max(ops.total("weight_bytes")))
        if step_weights <= cpu.llc_bytes:
            llc = cpu.caches[-1]
            return llc.bw_bytes_per_cycle * cpu.cores * cpu.freq_hz
        return device.memory.bw_bytes_per_s
