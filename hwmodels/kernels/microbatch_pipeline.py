"""Reference schedule of a decode step split across two device pools, layer by layer.

The dataflow of attention-FFN disaggregation (Step-3 AFD, arXiv 2507.19427 Sec. 3) and of
attention offloading (Lamina, arXiv 2405.01814 Sec. 4): ``n_micro`` micro-batches walk the
layers; in each layer a micro-batch runs on pool A (attention), crosses the network to pool
B (FFN or the rest of the layer), runs there, and crosses back before its next layer. Each
pool and each direction of the network serves one micro-batch at a time, in the fixed
round-robin order the papers use (micro-batch 0, 1, ... of layer 0, then of layer 1, ...),
so while one micro-batch is on A the others are on B or on the wire.

``split_pipeline`` plays that static schedule with plain Python arithmetic on small shapes and
counts what it executed: it is the reference the closed form (``hwmodels.split``) and the
event engine are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("a", "ab", "b", "ba")
"""The four resources of a layer, in the order a micro-batch visits them."""


@dataclass(frozen=True)
class ScheduleResult:
    """What the schedule did: its makespan (s), the busy seconds and the executions of each
    resource, and when each micro-batch finished its last layer."""

    makespan_s: float
    busy_s: dict[str, float]
    runs: dict[str, int]
    finish_s: tuple[float, ...]


def split_pipeline(
    t_a: float, t_ab: float, t_b: float, t_ba: float, n_layers: int, n_micro: int
) -> ScheduleResult:
    """Play ``n_micro`` micro-batches through ``n_layers`` layers of A -> network -> B -> network.

    Durations are seconds per micro-batch per layer. The last layer's return trip is kept
    (the logits leave pool B for the sampler on pool A's side, as the papers' pipelines do).
    """
    if n_layers < 1 or n_micro < 1:
        raise ValueError(f"n_layers {n_layers} and n_micro {n_micro} must be >= 1")
    duration = dict(zip(STAGES, (t_a, t_ab, t_b, t_ba), strict=True))
    free = dict.fromkeys(STAGES, 0.0)
    busy = dict.fromkeys(STAGES, 0.0)
    runs = dict.fromkeys(STAGES, 0)
    ready = [0.0] * n_micro
    for _layer in range(n_layers):
        for j in range(n_micro):
            t = ready[j]
            for stage in STAGES:
                start = max(t, free[stage])
                t = start + duration[stage]
                free[stage] = t
                busy[stage] += duration[stage]
                runs[stage] += 1
            ready[j] = t
    return ScheduleResult(max(ready), busy, runs, tuple(ready))
