"""``CostTable``: what a cost model returns, one row per op, every quantity named."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

BOUNDS = ("compute", "memory", "link", "overhead")
"""What limits an op: its math, its memory traffic, its link transfers, or fixed overheads."""


def count_sum(count: np.ndarray, per_occurrence: np.ndarray) -> np.ndarray:
    """Sum over ops (axis 0) of ``count`` times a per-occurrence term, shape ``sweep``. NumPy's own
    loop, not BLAS: a threaded BLAS call costs more than the sum on a busy machine."""
    return np.einsum("i,i...->...", count, per_occurrence)


@dataclass(frozen=True)
class CostTable:
    """Per-op cost of one step. Arrays broadcast to (n_ops, *sweep); a term that does not vary
    along a sweep axis (a launch overhead, a link term) has size 1 there.

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

    @classmethod
    def deferred(
        cls, derive: Callable[[], Mapping[str, Any]], step_dynamic_j: np.ndarray, **values: Any
    ) -> CostTable:
        """A table whose ``DERIVED`` fields (which step pricing never reads) are computed by
        ``derive`` (a mapping of them) on first access, then stored; every other field from
        ``values``; ``step_dynamic_j`` is its per-op dynamic energy already summed over the ops
        (``step_dynamic_energy_j``). It reads, compares and copies (``dataclasses.replace``) as
        one built whole."""
        table = object.__new__(cls)
        table.__dict__.update(values, _derive=derive, _step_dynamic=step_dynamic_j)
        missing = {f.name for f in fields(cls)} - DERIVED - values.keys()
        if missing:
            raise TypeError(f"CostTable.deferred: missing {sorted(missing)}")
        return table

    def __getattr__(self, name: str) -> Any:
        # only reached for an attribute not stored: a deferred table's derived fields
        derive = self.__dict__.get("_derive")
        if derive is None or name not in DERIVED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__.update(derive())
        del self.__dict__["_derive"]
        return self.__dict__[name]

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

    def bound_index(self) -> np.ndarray:
        """Per-op index into ``BOUNDS`` of the largest term, shape (n_ops, *sweep)."""
        terms = np.stack(np.broadcast_arrays(self.compute_s, self.memory_s, self.link_s, self.overhead_s))
        return np.argmax(terms, axis=0)

    @property
    def bound(self) -> np.ndarray:
        """Per-op limiting term: one of ``BOUNDS``."""
        return np.asarray(BOUNDS)[self.bound_index()]

    def total_time_s(self) -> np.ndarray:
        """Step time, seconds, shape ``sweep``: each term summed over the ops at its own shape (link
        and launch terms are often one value per op)."""
        overlapped = count_sum(self.count, np.maximum(self.compute_s, self.memory_s))
        return overlapped + count_sum(self.count, self.link_s) + count_sum(self.count, self.overhead_s)

    def step_dynamic_energy_j(self) -> np.ndarray:
        """Dynamic energy of the whole step, joules, shape ``sweep``: ``dynamic_energy_j`` summed
        over the ops (a deferred table has it summed as it was priced, with no per-op array)."""
        total = self.__dict__.get("_step_dynamic")
        return self.dynamic_energy_j.sum(axis=0) if total is None else total

    def total_energy_j(self) -> np.ndarray:
        """Step energy, joules, capped for the step as a whole."""
        t = self.total_time_s()
        return np.minimum(self.step_dynamic_energy_j() + self.static_power_w * t, self.power_cap_w * t)

    def total_roofline_s(self) -> np.ndarray:
        """The step's roofline bound, seconds."""
        return self._per_step(self.roofline_s).sum(axis=0)

    def busy_s(self) -> np.ndarray:
        """Per-step busy time of each resource in ``BOUNDS`` order, shape (4, *sweep): what the
        step would take if each of its ops were limited by that resource alone."""
        return np.stack(np.broadcast_arrays(*self.busy_terms()))

    def busy_terms(self) -> tuple[np.ndarray, ...]:
        """``busy_s`` as one array per resource, each of its own shape (a resource whose terms
        do not vary along a sweep axis has size 1 there)."""
        return tuple(
            count_sum(self.count, term)
            for term in (self.compute_s, self.memory_s, self.link_s, self.overhead_s)
        )

    def dominant_bound(self) -> np.ndarray:
        """The step's bound: the resource with the most busy time summed over its ops."""
        return np.asarray(BOUNDS)[np.argmax(self.busy_s(), axis=0)]

    def to_frame(self):
        """A tidy DataFrame, one row per op (single configuration only)."""
        import pandas as pd

        if self.time_s.ndim != 1:
            raise ValueError("to_frame needs a single configuration; index the sweep first")
        n = len(self.op)
        data = {
            "op": self.op,
            "kind": self.kind,
            "count": self.count,
            "time_s": self.time_s,
            "energy_j": self.energy_j,
            "bound": self.bound,
            "flops": self.flops,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "link_s": self.link_s,
            "overhead_s": self.overhead_s,
        }
        data.update({f"{level}_bytes": v for level, v in self.bytes_by_level.items()})
        data = {k: np.broadcast_to(v, (n,)) for k, v in data.items()}
        return pd.DataFrame(data)


DERIVED = frozenset({"roofline_s", "flops", "bytes_by_level", "dynamic_energy_j"})
"""The ``CostTable`` fields a ``CostTable.deferred`` table computes on first access."""
