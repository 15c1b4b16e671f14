"""The event engine: a DAG of coarse tasks played on SimPy resources.

Each device (or symmetric tensor-parallel group) and each link is a ``simpy.Resource`` of
capacity 1. A task waits for its dependencies, then holds its resource for its duration.
Events are coarse (a layer segment, a transfer, a collective), never per scalar op.
Simultaneous events resolve in SimPy's fixed order (time, priority, insertion id), so the
same tasks always give the same timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from workloads.errors import ConfigError

MAX_TASKS = 1_000_000
"""Most tasks one simulation may build (about half a minute of SimPy on one core, and a
timeline of that many rows); beyond it the run is refused before anything is allocated."""


def check_size(n_tasks: float, what: str) -> None:
    """Raise ``ConfigError`` when a run would build more than ``MAX_TASKS`` tasks."""
    if n_tasks > MAX_TASKS:
        raise ConfigError(
            f"{what} would build about {n_tasks:,.0f} engine tasks, more than {MAX_TASKS:,}; lower "
            "output_len or batch (hwsim estimate prices long outputs in closed form)"
        )


@dataclass
class Task:
    """One unit of work: ``duration_s`` on ``resource`` after every task in ``deps`` ends."""

    name: str
    resource: str
    duration_s: float
    deps: list[int] = field(default_factory=list)
    energy_j: float = 0.0


class TaskGraph:
    """Tasks added in order; a task may only depend on tasks added before it (a DAG by construction)."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    def add(
        self,
        name: str,
        resource: str,
        duration_s: float,
        deps: list[int] | tuple[int, ...] = (),
        energy_j: float = 0.0,
    ) -> int:
        """Add a task; return its index for use in later ``deps``."""
        if duration_s < 0 or not np.isfinite(duration_s):
            raise ConfigError(f"task {name!r}: duration {duration_s!r} s; expected a finite number >= 0")
        index = len(self.tasks)
        for d in deps:
            if not 0 <= d < index:
                raise ConfigError(f"task {name!r} depends on task {d}, which is not added before it")
        self.tasks.append(Task(name, resource, float(duration_s), list(deps), energy_j))
        return index

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True)
class Timeline:
    """Busy intervals per resource, the makespan and the utilization of each resource."""

    intervals: pd.DataFrame
    makespan_s: float
    task_end_s: np.ndarray

    def utilization(self) -> dict[str, float]:
        """Busy time over the makespan, per resource."""
        if self.makespan_s <= 0:
            return {r: 0.0 for r in self.intervals["resource"].unique()}
        busy = (self.intervals["end_s"] - self.intervals["start_s"]).groupby(self.intervals["resource"]).sum()
        return {str(r): float(v / self.makespan_s) for r, v in busy.items()}

    def busy_s(self, resource_prefix: str) -> float:
        """Total busy seconds of the resources whose names start with ``resource_prefix``."""
        sel = self.intervals["resource"].str.startswith(resource_prefix)
        return float((self.intervals.loc[sel, "end_s"] - self.intervals.loc[sel, "start_s"]).sum())


def run(graph: TaskGraph, record: bool = True) -> Timeline:
    """Play the task graph on SimPy; return the timeline.

    With ``record=False`` only the makespan is kept (faster for large sweeps).
    """
    env = simpy.Environment()
    resources: dict[str, simpy.Resource] = {}
    done = [env.event() for _ in graph.tasks]
    starts = np.zeros(len(graph.tasks))
    ends = np.zeros(len(graph.tasks))

    def process(i: int, task: Task, resource: simpy.Resource):
        deps = task.deps
        if len(deps) == 1:
            yield done[deps[0]]
        elif deps:
            yield env.all_of([done[d] for d in deps])
        with resource.request() as req:
            yield req
            starts[i] = env.now
            if task.duration_s > 0:
                yield env.timeout(task.duration_s)
            ends[i] = env.now
        done[i].succeed()

    for i, task in enumerate(graph.tasks):
        resource = resources.get(task.resource)
        if resource is None:
            resource = resources[task.resource] = simpy.Resource(env, capacity=1)
        env.process(process(i, task, resource))
    env.run()
    makespan = float(ends.max()) if len(ends) else 0.0
    frame = pd.DataFrame()
    if record:
        frame = pd.DataFrame(
            {
                "task": [t.name for t in graph.tasks],
                "resource": [t.resource for t in graph.tasks],
                "start_s": starts,
                "end_s": ends,
            }
        )
    return Timeline(frame, makespan, ends)
