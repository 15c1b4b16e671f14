"""Price a grid of (batch, prompt length) points in one vectorized ``hwsim.estimate`` call.

Prints points per second on one core (best of a few repeats). Run:
``python benchmarks/bench_estimate.py [--points 100000]``. Timing is never asserted in
tests; the figure is recorded in the README's performance section.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import hwsim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="grid size (batch x prompt length)")
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--device", default="h100-sxm")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n_batch = 1000
    n_len = max(1, args.points // n_batch)
    batch = np.arange(1, n_batch + 1)[:, None]
    input_len = (np.arange(1, n_len + 1) * 64)[None, :]
    hwsim.estimate(args.model, args.device, batch=1, input_len=64, output_len=128)  # load catalog and presets
    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        est = hwsim.estimate(args.model, args.device, batch=batch, input_len=input_len, output_len=128)
        best = min(best, time.perf_counter() - start)
    points = est.tpot_s.size
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"{args.model} on {args.device}: {points:,} (batch, prompt) points in {best * 1e3:.1f} ms "
        f"= {points / best:,.0f} points/s (best of {args.repeats}; OMP_NUM_THREADS={threads})"
    )


if __name__ == "__main__":
    main()
