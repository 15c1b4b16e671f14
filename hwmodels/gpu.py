"""The GPU cost model (``arch: gpu``): the roofline form with GPU parameters.

Tensor-core peaks per math format, HBM/GDDR bandwidth, tile padding of skinny GEMMs,
NCCL's collective latencies and CUDA launch overhead; parameters per device class in
``hwmodels/calibration/gpu.yaml``.
"""

from __future__ import annotations

from typing import ClassVar

from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel


@register
class GpuCostModel(RooflineCostModel):
    """GPUs and accelerators that run kernels on a device memory (HBM, GDDR, unified LPDDR)."""

    arch: ClassVar[str] = "gpu"
