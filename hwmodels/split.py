"""A decode step split across two device pools per layer: attention-FFN disaggregation (Step-3
AFD) and attention offloading (Lamina).

Dataflow (``hwmodels.kernels.microbatch_pipeline`` performs it): ``n_micro`` micro-batches
walk the layers round robin; per layer a micro-batch runs on pool A, crosses the network
(A -> B), runs on pool B and crosses back (B -> A). ``action_counts`` counts the executions
and bytes of a step; the step's time comes only from those counts and the per-execution
durations the pools' own cost models give (the busiest resource, or one micro-batch's path
through every layer, whichever is longer: the steady state of the round-robin pipeline,
which the reference schedule exceeds by at most one layer's fill); its energy from the same
counts times each execution's joules and the link's joules per byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitActions:
    """Executions and bytes of one decode step of a split model (NumPy arrays over the sweep).

    a_runs, b_runs : stage executions on pool A and pool B (one per micro-batch per layer);
    ab_transfers, ba_transfers : network transfers in each direction;
    ab_bytes, ba_bytes : bytes they carry (activations out and results back);
    path_layers : layers one micro-batch walks in sequence (its critical path).
    """

    a_runs: np.ndarray
    b_runs: np.ndarray
    ab_transfers: np.ndarray
    ba_transfers: np.ndarray
    ab_bytes: np.ndarray
    ba_bytes: np.ndarray
    path_layers: np.ndarray


@dataclass(frozen=True)
class StageDurations:
    """Seconds per execution: one micro-batch's layer on A and on B, and one transfer each way
    (bytes / link rate + latency), with the joules of an execution on A and on B."""

    a_s: np.ndarray
    b_s: np.ndarray
    ab_s: np.ndarray
    ba_s: np.ndarray
    a_j: np.ndarray | float = 0.0
    b_j: np.ndarray | float = 0.0


def action_counts(n_layers, n_micro, bytes_ab_per_micro, bytes_ba_per_micro) -> SplitActions:
    """Counts of one decode step: every micro-batch visits A, the wire, B and the wire back in
    every layer."""
    L = np.asarray(n_layers, dtype=float)
    n = np.asarray(n_micro, dtype=float)
    runs = L * n
    return SplitActions(
        a_runs=runs,
        b_runs=runs,
        ab_transfers=runs,
        ba_transfers=runs,
        ab_bytes=runs * np.asarray(bytes_ab_per_micro, dtype=float),
        ba_bytes=runs * np.asarray(bytes_ba_per_micro, dtype=float),
        path_layers=L,
    )


def resource_busy_s(a: SplitActions, d: StageDurations) -> dict[str, np.ndarray]:
    """Busy seconds of each resource in one step: executions times their durations."""
    return {
        "a": a.a_runs * d.a_s,
        "ab": a.ab_transfers * d.ab_s,
        "b": a.b_runs * d.b_s,
        "ba": a.ba_transfers * d.ba_s,
    }


def step_time_s(a: SplitActions, d: StageDurations) -> np.ndarray:
    """Steady-state seconds of one decode step (the time per output token of each sequence):
    the busiest resource, or one micro-batch's path through every layer."""
    busy = resource_busy_s(a, d)
    path = a.path_layers * (d.a_s + d.ab_s + d.b_s + d.ba_s)
    return np.maximum.reduce([*busy.values(), path])


def bottleneck(a: SplitActions, d: StageDurations) -> np.ndarray:
    """Name of what bounds the step: ``a``, ``ab``, ``b``, ``ba`` or ``path`` (latency-bound)."""
    busy = resource_busy_s(a, d)
    names = np.array([*busy, "path"])
    stacked = np.stack(np.broadcast_arrays(*busy.values(), a.path_layers * (d.a_s + d.ab_s + d.b_s + d.ba_s)))
    return names[np.argmax(stacked, axis=0)]


def step_energy_j(a: SplitActions, d: StageDurations, link_j_per_byte: float) -> np.ndarray:
    """Dynamic joules of one step: executions times their joules, bytes times the link's."""
    return a.a_runs * d.a_j + a.b_runs * d.b_j + (a.ab_bytes + a.ba_bytes) * link_j_per_byte
