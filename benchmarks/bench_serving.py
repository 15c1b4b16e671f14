"""Serving-simulation speed: a 10,000-request Poisson trace on one H100 with continuous
batching (vLLM's scheduler, Llama-3.1-8B bf16, ShareGPT lengths), wall time on one core, and
the same seed twice to show the output repeats. Prints the figures; asserts nothing."""

from __future__ import annotations

import argparse
import json
import time

from sim.serving.serve import serve
from workloads.traces import make_trace


def run_once(seed: int = 0) -> tuple[float, dict]:
    trace = make_trace(n_requests=10_000, rate=20.0, lengths="sharegpt", seed=seed)
    start = time.perf_counter()
    result = serve("llama-3.1-8b", "h100-sxm", trace, precision="bf16", framework="vllm", record=False)
    return time.perf_counter() - start, result.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    wall, first = run_once()
    _, second = run_once()
    first.pop("sim_wall_s"), second.pop("sim_wall_s")
    if args.json:
        print(json.dumps({"requests": 10_000, "wall_s": wall, "repeats": first == second}))
        return
    print(
        "10,000 requests (Poisson 20 req/s, ShareGPT lengths), llama-3.1-8b on one h100-sxm, vLLM V1 scheduler"
    )
    print(f"  wall time: {wall:.2f} s on one core  (target < 5 s)")
    print(
        f"  simulated: {first['duration_s']:.0f} s, {first['completed']} requests, TTFT p99 {first['ttft_s_p99'] * 1e3:.1f} ms, "
        f"TPOT mean {first['tpot_s_mean'] * 1e3:.2f} ms"
    )
    print(f"  same seed, same output: {first == second}")


if __name__ == "__main__":
    main()
