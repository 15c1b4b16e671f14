"""The CPU cost model (``arch: cpu``), roofline form for now.

A CPU runs a decode step as GEMVs streaming weights from DRAM, so the roofline form
(peak SIMD/matrix throughput, achievable DRAM bandwidth, per-op overhead) already
captures its first-order behaviour. Parameters per device class (server, desktop,
embedded) live in ``hwmodels/calibration/cpu.yaml``. The dataflow model with cache
levels and dequantization cost on the vector units replaces it with the CPU/SAIL issue.
"""

from __future__ import annotations

from typing import ClassVar

from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel


@register
class CpuCostModel(RooflineCostModel):
    """CPUs running GEMV/GEMM on their cores against DRAM."""

    arch: ClassVar[str] = "cpu"
