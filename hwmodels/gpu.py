"""The GPU cost model (``arch: gpu``): the roofline form with GPU parameters.

Tensor-core peaks per math format, HBM/GDDR bandwidth, tile padding of skinny GEMMs,
NCCL's collective latencies and CUDA launch overhead; parameters per device class in
``hwmodels/calibration/gpu.yaml``.

A framework whose quantized GEMM kernels are bound by instruction issue rather than by
tensor-core width (``issue_bound_quantized_gemm`` in ``calibration/frameworks.yaml``:
llama.cpp's MMQ) is also held to ``issue_bound_gemm_macs_per_lane_cycle`` multiply-adds per
issued instruction lane and clock (an NVIDIA SM issues 4 warps x 32 lanes per cycle, an AMD
CU 64 lanes) on devices whose catalog entry gives SM (CU) count, issue lanes and boost clock
(``gpu`` block).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel
from workloads.graph import INT8_MAX_BITS_PER_WEIGHT, OpTable


def issue_lane_cycles_per_s(device: DeviceSpec) -> float | None:
    """Instruction lanes the device issues per second: SMs (or CUs) x lanes each issues per
    cycle x boost clock; None without a ``gpu`` block."""
    block = device.extra.get("gpu")
    if block is None:
        return None
    return block["sm_count"] * block["issue_lanes_per_sm"] * block["boost_clock_GHz"] * 1e9


def issue_bound_gemm_s(ops: OpTable, rate_macs_per_s: float, gemv_max_rows: float) -> np.ndarray:
    """Time per occurrence of the quantized GEMMs (more than ``gemv_max_rows`` rows) at an
    issue-bound rate of multiply-adds per second; 0 for every other op."""
    kind = ops.kind.reshape((-1,) + (1,) * (ops.flops.ndim - 1))
    quantized = ops.bits_per_weight <= INT8_MAX_BITS_PER_WEIGHT
    hit = np.isin(kind, ("gemm", "router")) & quantized & (ops.m > gemv_max_rows)
    return np.where(hit, ops.flops / 2.0 / rate_macs_per_s, 0.0)


@register
class GpuCostModel(RooflineCostModel):
    """GPUs and accelerators that run kernels on a device memory (HBM, GDDR, unified LPDDR)."""

    arch: ClassVar[str] = "gpu"

    def compute_s(
        self,
        ops: OpTable,
        device: DeviceSpec,
        p: dict[str, float],
        peaks: np.ndarray,
        compute_eff: float,
        placement: Placement,
    ) -> np.ndarray:
        """The roofline math time, or the issue-bound time of a framework's quantized GEMMs where longer."""
        tensor_s = super().compute_s(ops, device, p, peaks, compute_eff, placement)
        lane_rate = issue_lane_cycles_per_s(device)
        if not placement.framework or lane_rate is None:
            return tensor_s
        kernels = framework_terms(framework_terms(placement.framework).kernels)
        if not kernels.issue_bound_quantized_gemm:
            return tensor_s
        rate = lane_rate * p["issue_bound_gemm_macs_per_lane_cycle"]
        return np.maximum(tensor_s, issue_bound_gemm_s(ops, rate, p["gemv_max_rows"]))
