"""A split decode step (attention on one pool, the rest on another) played on the event engine.

One task per micro-batch, layer and stage (pool A, the wire A -> B, pool B, the wire back),
in the round-robin order the Step-3 and Lamina pipelines use; each resource serves its
micro-batches in that order (each task also waits for the previous task on its resource), so
the engine's timeline is the static schedule of ``hwmodels.kernels.microbatch_pipeline``,
with a timeline to plot.
"""

from __future__ import annotations

from hwmodels.kernels.microbatch_pipeline import STAGES
from hwmodels.split import StageDurations
from sim.engine import TaskGraph, Timeline, run

RESOURCE = {"a": "pool A", "ab": "network A->B", "b": "pool B", "ba": "network B->A"}
"""Engine resource of each stage."""


def split_step_graph(
    d: StageDurations, n_layers: int, n_micro: int, labels: dict[str, str] | None = None
) -> TaskGraph:
    """The task DAG of one decode step; ``labels`` renames the resources (e.g. ``{"a": "H20 attention"}``)."""
    names = {**RESOURCE, **(labels or {})}
    duration = {"a": float(d.a_s), "ab": float(d.ab_s), "b": float(d.b_s), "ba": float(d.ba_s)}
    g = TaskGraph()
    last_on: dict[str, int] = {}
    prev_of: list[int | None] = [None] * n_micro
    for layer in range(n_layers):
        for j in range(n_micro):
            for stage in STAGES:
                deps = [t for t in (prev_of[j], last_on.get(stage)) if t is not None]
                prev_of[j] = last_on[stage] = g.add(
                    f"L{layer}/mb{j}/{stage}", names[stage], duration[stage], deps
                )
    return g


def play_split_step(
    d: StageDurations, n_layers: int, n_micro: int, labels: dict[str, str] | None = None, record: bool = True
) -> Timeline:
    """Run one decode step on the engine."""
    return run(split_step_graph(d, n_layers, n_micro, labels), record=record)
