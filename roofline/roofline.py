"""Roofline per op: arithmetic intensity, attainable throughput, ridge point, bound.

The roofline of a device for one math format is ``min(peak, intensity * bandwidth)``;
its ridge point is ``peak / bandwidth`` FLOP per byte. An op's intensity is its FLOPs
over the bytes it moves through device memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from workloads.graph import OpTable


def ridge_point(device: DeviceSpec, fmt: str = "fp16") -> float:
    """FLOP per byte above which an op is compute-bound at peak, for math format ``fmt``."""
    return device.peak(fmt) / device.memory.bw_bytes_per_s


def attainable_flop_per_s(device: DeviceSpec, intensity: np.ndarray, fmt: str = "fp16") -> np.ndarray:
    """The roof: ``min(peak, intensity * bandwidth)`` in FLOP/s."""
    return np.minimum(device.peak(fmt), np.asarray(intensity, dtype=float) * device.memory.bw_bytes_per_s)


def op_roofline(ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> pd.DataFrame:
    """One row per op (single configuration): intensity, roof, achieved throughput, bound.

    ``achieved_flop_per_s`` is the op's FLOPs over the cost model's predicted time; it is
    never above ``attainable_flop_per_s`` (the cost model never beats the roofline).
    """
    if ops.sweep_shape:
        raise ValueError("op_roofline needs a single configuration")
    cost = registry.get(device.arch).estimate(ops, device, placement)
    flops = ops.flops
    moved = ops.memory_bytes
    with np.errstate(divide="ignore", invalid="ignore"):
        # an op without math (a norm, a collective that moves link bytes only) has intensity 0
        intensity = np.where(flops > 0, np.where(moved > 0, flops / moved, np.inf), 0.0)
        per_occurrence_s = cost.time_s / ops.count
        achieved = np.where(per_occurrence_s > 0, flops / per_occurrence_s, 0.0)
    roofs = np.array(
        [
            min(device.peak(f), i * device.memory.bw_bytes_per_s)
            for f, i in zip(ops.fmt, intensity, strict=False)
        ]
    )
    return pd.DataFrame(
        {
            "op": ops.name,
            "kind": ops.kind,
            "count": ops.count,
            "fmt": ops.fmt,
            "flops": flops,
            "bytes": moved,
            "intensity_flop_per_byte": intensity,
            "attainable_flop_per_s": roofs,
            "achieved_flop_per_s": achieved,
            "time_s": cost.time_s,
            "share_of_step": cost.time_s / cost.time_s.sum(),
            "bound": cost.bound,
        }
    )
