"""Independent, deterministic tasks on forked processes (the fits' leave-one-out refits and grid
points, a measured set's serving simulations)."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from roofline.estimate import threads


def forked_workers(n_tasks: int) -> int:
    """Processes ``forked_map`` runs ``n_tasks`` tasks on: as many as ``roofline.estimate.threads()``
    allows, at most one a task; 1 where this platform cannot fork."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(threads(), n_tasks))


def forked_map(
    task: Callable[[Any], Any], items: Sequence[Any], done: Callable[[Any], None] | None = None
) -> list[Any]:
    """``task`` of every item, in order, calling ``done(item)`` as each result arrives (in order).
    The processes are forked, so each starts with this process's memory as it stands (its
    calibration and any override in force); with one worker the tasks run here, one after another.
    ``task`` must be picklable (a module-level function, or a ``functools.partial`` of one)."""
    workers = forked_workers(len(items))
    results: list[Any] = []
    with contextlib.ExitStack() as stack:
        mapped: Iterable[Any] = map(task, items)  # lazy: each task runs as its result is asked for
        if workers > 1:
            pool = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            )
            mapped = pool.map(task, items)
        for item, result in zip(items, mapped, strict=True):
            results.append(result)
            if done:
                done(item)
    return results
