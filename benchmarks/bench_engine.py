"""Event-engine speed: events per second on one core, and the wall time of 128 decode steps
of Llama-2-70B on 8 H100s with tensor parallelism. Prints the figures; asserts nothing."""

from __future__ import annotations

import argparse
import json
import time

import simpy

from sim.engine import TaskGraph, run
from sim.simulate import simulate


def events_per_second(n_tasks: int = 100_000) -> float:
    """A chain of tasks alternating between a device and a link, with a side task per layer."""
    graph = TaskGraph()
    prev = None
    for i in range(n_tasks):
        prev = graph.add(f"t{i}", "gpu" if i % 2 else "link", 1e-6, [] if prev is None else [prev])
    counter = {"events": 0}
    original = simpy.Environment.step

    def counting_step(self):
        counter["events"] += 1
        return original(self)

    simpy.Environment.step = counting_step
    try:
        start = time.perf_counter()
        run(graph, record=False)
        elapsed = time.perf_counter() - start
    finally:
        simpy.Environment.step = original
    return counter["events"] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    eps = events_per_second()
    best = min(_time_70b() for _ in range(3))
    if args.json:
        print(json.dumps({"events_per_s": eps, "llama2_70b_tp8_128_steps_s": best}))
        return
    print(f"engine: {eps:,.0f} SimPy events per second (chain of 100,000 tasks, one core)")
    print(f"Llama-2-70B, 8x H100 TP8, batch 1, 128 decode steps: {best:.2f} s wall time (best of 3)")


def _time_70b() -> float:
    start = time.perf_counter()
    simulate("8xh100-nvlink", "llama-2-70b", batch=1, input_len=512, output_len=129, record=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
