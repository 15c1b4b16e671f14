"""Analytic-path speed: design points per second of one vectorized ``hwsim.estimate`` call, and
the ratio to llm-analysis's per-point inference call measured in the same run.

hwsim prices a grid of batch 1..1000 x prompt lengths 64, 128, ... (output 128 tokens) of
Llama-2-7B on one H100 SXM in one call, at 10^5 and 10^6 points (best of a few repeats, wall
time), its chunks on as many threads as it has cores (``HWSIM_THREADS``, the default) and, for
comparison, on one. llm-analysis (``pip install -e '.[bench]'``, version 0.2.2) prices one point per
``LLMAnalysis.inference`` call; it is timed over many calls on the same kind of point (its
shipped Llama-2-7B config, H100-SXM-80GB and W16A16 configs, batch 1..32 x prompt 64..2048
tokens, which fit its memory check), with its logger set to errors only (it logs every call's
configs and warnings otherwise). The rounds of the two alternate, so both see the same load on a
shared machine; ``ratio_vs_llm_analysis`` is the smaller of the ratios at the two sizes (hwsim on
its default threads; llm-analysis has no way to use a second core within one call). Run
``python benchmarks/bench_estimate.py [--points 100000 1000000] [--json]``; timing is never
asserted in tests.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from collections.abc import Callable

import numpy as np

import hwsim
from roofline.estimate import THREADS_ENV, threads

HWSIM_PER_POINT = (
    "TTFT, TPOT (exact mean over the decode run), end-to-end time, prefill and decode tokens/s, "
    "J/token, tokens/J, $/M tokens, tokens/$, bound, memory per device and fit, and a 10-90% range "
    "on six of them, from per-op costs of the prefill and of the first and last decode steps"
)
LLM_ANALYSIS_PER_POINT = (
    "prefill latency, one decode step's latency (at the prompt length, plus the KV-cache read) and "
    "the totals over the output, tokens/s, and weight, KV-cache and activation memory with their "
    "breakdowns, from per-layer FLOPs and bytes"
)
LLM_ANALYSIS_CONFIGS = {
    "llama-2-7b": "NousResearch_Llama-2-7b-hf",
    "h100-sxm": "h100-sxm-80gb",
    "a100-sxm-80gb": "a100-sxm-80gb",
}
"""hwsim names and llm-analysis's shipped configs of the same model and GPUs."""
OUTPUT_LEN = 128
BATCH_AXIS = 1000


def grid(points: int) -> tuple[np.ndarray, np.ndarray]:
    """(batch, prompt lengths): 1..1000 sequences x multiples of 64 tokens, about ``points`` in all."""
    n_prompts = max(1, points // BATCH_AXIS)
    return np.arange(1, BATCH_AXIS + 1)[:, None], (np.arange(1, n_prompts + 1) * 64)[None, :]


def hwsim_call(model: str, device: str, points: int, threads: int) -> Callable[[], int]:
    """One ``estimate`` call over the ``grid`` of about ``points`` points, its chunks priced on
    ``threads`` threads (``HWSIM_THREADS``)."""
    batch, input_len = grid(points)

    def call() -> int:
        os.environ[THREADS_ENV] = str(threads)
        est = hwsim.estimate(model, device, batch=batch, input_len=input_len, output_len=OUTPUT_LEN)
        return est.tpot_s.size

    return call


def llm_analysis_calls(model: str, device: str) -> Callable[[], int] | None:
    """llm-analysis's inference call over 32 x 6 points of the same kind, one call each, or None
    when it is not installed or has no config of ``model`` or ``device``."""
    try:
        from llm_analysis.analysis import LLMAnalysis
        from llm_analysis.config import (
            ParallelismConfig,
            get_dtype_config_by_name,
            get_gpu_config_by_name,
            get_model_config_by_name,
        )
        from llm_analysis.logger import logger
    except ImportError:
        return None
    if model not in LLM_ANALYSIS_CONFIGS or device not in LLM_ANALYSIS_CONFIGS:
        return None
    logger.setLevel("ERROR")
    analysis = LLMAnalysis(
        get_model_config_by_name(LLM_ANALYSIS_CONFIGS[model]),
        get_gpu_config_by_name(LLM_ANALYSIS_CONFIGS[device]),
        get_dtype_config_by_name("w16a16e16"),
        ParallelismConfig(tp_size=1),
    )
    points = [(b, s) for b in range(1, 33) for s in (64, 128, 256, 512, 1024, 2048)]

    def call() -> int:
        for b, s in points:
            analysis.inference(batch_size_per_gpu=b, seq_len=s, num_tokens_to_generate=OUTPUT_LEN)
        return len(points)

    return call


def size_label(n: int) -> str:
    """``1e5`` for 100,000 (a power of ten), else the count: the JSON keys' suffix."""
    exponent = len(str(n)) - 1
    return f"1e{exponent}" if n == 10**exponent else str(n)


def best_rate(call: Callable[[], int], best: float) -> float:
    """Points per second of one timed ``call``, or ``best`` if that was faster."""
    start = time.perf_counter()
    n = call()
    return max(best, n / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100_000, 1_000_000], help="grid sizes")
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--device", default="h100-sxm")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    hwsim.estimate(args.model, args.device, batch=1, input_len=64, output_len=OUTPUT_LEN)  # loads the catalog
    cores = threads()
    calls = {n: hwsim_call(args.model, args.device, n, cores) for n in args.points}
    alone = {n: hwsim_call(args.model, args.device, n, 1) for n in args.points} if cores > 1 else {}
    other = llm_analysis_calls(args.model, args.device)
    rates, rates_alone = {n: 0.0 for n in calls}, {n: 0.0 for n in alone}
    other_rate = 0.0
    for _ in range(args.repeats):  # alternate the tools, so both see the same load
        for n in calls:
            rates[n] = best_rate(calls[n], rates[n])
            if n in alone:
                rates_alone[n] = best_rate(alone[n], rates_alone[n])
        if other is not None:
            other_rate = best_rate(other, other_rate)
    os.environ.pop(THREADS_ENV)
    sizes = {n: int(np.prod(np.broadcast_shapes(*(a.shape for a in grid(n))))) for n in calls}
    ratios = {n: rates[n] / other_rate for n in calls} if other else {}
    ratios_alone = {n: rates_alone[n] / other_rate for n in alone} if other else {}
    result = {
        "model": args.model,
        "device": args.device,
        "output_len": OUTPUT_LEN,
        "repeats": args.repeats,
        "threads": cores,
        **{f"points_per_s_{size_label(sizes[n])}": rates[n] for n in calls},
        **{f"points_per_s_{size_label(sizes[n])}_one_thread": r for n, r in rates_alone.items()},
        "llm_analysis_version": importlib.metadata.version("llm-analysis") if other else None,
        "llm_analysis_points_per_s": other_rate if other else None,
        "ratio_vs_llm_analysis": min(ratios.values()) if other else None,
        **{f"ratio_vs_llm_analysis_{size_label(sizes[n])}": r for n, r in ratios.items()},
        **{f"ratio_vs_llm_analysis_{size_label(sizes[n])}_one_thread": r for n, r in ratios_alone.items()},
        "hwsim_per_point": HWSIM_PER_POINT,
        "llm_analysis_per_point": LLM_ANALYSIS_PER_POINT,
    }
    if args.json:
        print(json.dumps(result))
        return
    for n in calls:
        print(
            f"hwsim: {args.model} on {args.device}, {sizes[n]:,} (batch, prompt) points in one call: "
            f"{rates[n]:,.0f} points/s on {cores} thread(s) (best of {args.repeats})"
            + (f"; {rates_alone[n]:,.0f} points/s on one" if n in alone else "")
        )
    print(f"  per point: {HWSIM_PER_POINT}")
    if other is None:
        print("llm-analysis: not installed (pip install -e '.[bench]') or no config of this model and device")
        return
    print(
        f"llm-analysis {result['llm_analysis_version']}: {other_rate:,.0f} points/s, one inference() "
        f"call per point (best of {args.repeats} rounds)"
    )
    print(f"  per point: {LLM_ANALYSIS_PER_POINT}")
    for n, r in ratios.items():
        print(
            f"ratio at {sizes[n]:,} points: {r:,.0f}x"
            + (f" ({ratios_alone[n]:,.0f}x with hwsim on one thread)" if n in ratios_alone else "")
        )


if __name__ == "__main__":
    main()
