"""``CostTable``: what a cost model returns, one row per op, every quantity named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

BOUNDS = ("compute", "memory", "link", "overhead")
"""What limits an op: its math, its memory traffic, its link transfers, or fixed overheads."""


@dataclass(frozen=True)
class CostTable:
    """Per-op cost of one step. Arrays have shape (n_ops, *sweep).

    Per-occurrence terms (seconds): ``compute_s`` (FLOPs over the achievable peak),
    ``memory_s`` (bytes over the achievable bandwidth), ``link_s`` (collective bytes and
    latency steps), ``overhead_s`` (kernel launches). One occurrence takes
    ``max(compute_s, memory_s) + link_s + overhead_s``; ``time_s`` is that times ``count``.

    ``dynamic_energy_j`` is per step (count included): action counts times energy per
    action. ``static_power_w`` and ``power_cap_w`` are the device's; ``energy_j`` adds
    static power over the op's time and never exceeds ``power_cap_w * time_s``.
    ``roofline_s`` is the op's time at 100% of peak compute and bandwidth, no overhead:
    the bound no prediction may beat. ``bytes_by_level`` is per step.
    """

    op: np.ndarray
    kind: np.ndarray
    count: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    link_s: np.ndarray
    overhead_s: np.ndarray
    dynamic_energy_j: np.ndarray
    roofline_s: np.ndarray
    flops: np.ndarray
    bytes_by_level: Mapping[str, np.ndarray]
    static_power_w: float
    power_cap_w: float

    def _per_step(self, per_occurrence: np.ndarray) -> np.ndarray:
        return per_occurrence * self.count.reshape((-1,) + (1,) * (per_occurrence.ndim - 1))

    @property
    def time_s(self) -> np.ndarray:
        """Per-op time per step, seconds."""
        return self._per_step(np.maximum(self.compute_s, self.memory_s) + self.link_s + self.overhead_s)

    @property
    def energy_j(self) -> np.ndarray:
        """Per-op energy per step, joules, capped at the power limit times the op's time."""
        t = self.time_s
        return np.minimum(self.dynamic_energy_j + self.static_power_w * t, self.power_cap_w * t)

    @property
    def bound(self) -> np.ndarray:
        """Per-op limiting term: one of ``BOUNDS``."""
        terms = np.stack([self.compute_s, self.memory_s, self.link_s, self.overhead_s])
        return np.asarray(BOUNDS)[np.argmax(terms, axis=0)]

    def total_time_s(self) -> np.ndarray:
        """Step time, seconds, shape ``sweep``."""
        return self.time_s.sum(axis=0)

    def total_energy_j(self) -> np.ndarray:
        """Step energy, joules, capped for the step as a whole."""
        t = self.total_time_s()
        return np.minimum(self.dynamic_energy_j.sum(axis=0) + self.static_power_w * t, self.power_cap_w * t)

    def total_roofline_s(self) -> np.ndarray:
        """The step's roofline bound, seconds."""
        return self._per_step(self.roofline_s).sum(axis=0)

    def dominant_bound(self) -> np.ndarray:
        """The bound that accounts for most of the step's time, shape ``sweep``."""
        shares = np.stack([
            self._per_step(np.where(self.bound == b, np.maximum(self.compute_s, self.memory_s)
                                    + self.link_s + self.overhead_s, 0.0)).sum(axis=0)
            for b in BOUNDS
        ])
        return np.asarray(BOUNDS)[np.argmax(shares, axis=0)]

    def to_frame(self):
        """A tidy DataFrame, one row per op (single configuration only)."""
        import pandas as pd

        if self.time_s.ndim != 1:
            raise ValueError("to_frame needs a single configuration; index the sweep first")
        data = {"op": self.op, "kind": self.kind, "count": self.count, "time_s": self.time_s,
                "energy_j": self.energy_j, "bound": self.bound, "flops": self.flops,
                "compute_s": self.compute_s, "memory_s": self.memory_s, "link_s": self.link_s,
                "overhead_s": self.overhead_s}
        data.update({f"{level}_bytes": v for level, v in self.bytes_by_level.items()})
        return pd.DataFrame(data)
