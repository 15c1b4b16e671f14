"""Fit how the early-2025 block-FP8 Triton kernels ran on AMD's CDNA3 GPUs (MI300X, MI325X):
the ``devices`` entry of ``block_fp8`` in ``frameworks.yaml`` (``BlockFp8DeviceRates``).

The ``block_fp8`` terms come from kernels timed on an H100. On MI300X the same Triton kernels ran
(with AMD's tuned configs) until ROCm's AITER kernels replaced them, and no timing of them there is
public; whole runs are (``hwmodels/calibration/kernels/block_fp8_runs.csv``: a ROCm blog's SGLang
``bench_one_batch`` before AITER, prefill and decode; an SGLang pull request's ``bench_one_batch``;
a vLLM pull request's ``benchmark_latency``). Two numbers are fitted on them by a grid search on
the mean squared log error of hwsim's price of each: ``math_scale``, the share of the Hopper
fractions of the FP8 peak (``gemm_math_efficiency``, ``moe_math_efficiency``) the kernels reach
there, and the fused MoE's ``moe_stream_efficiency``. ``bench_one_batch`` prefills without a
prefix cache, so its prompts attend expanded (not ``absorbed_mla_prefill``). The error with each
source left out is reported beside the fit. ``python -m roofline.block_fp8_device_fit`` prints
it; the values are then written by hand into ``frameworks.yaml`` and
``tests/test_block_fp8.py`` holds the two equal.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from hwmodels.calibration.params import BlockFp8DeviceRates, framework_replaced, framework_terms
from roofline.estimate import estimate
from roofline.kernel_data import load_kernels

MATH_SCALES = tuple(round(0.3 + 0.05 * i, 2) for i in range(15))
"""Shares of the Hopper math efficiencies searched: 0.3 to 1.0."""
STREAM_EFFICIENCIES = tuple(round(0.15 + 0.05 * i, 2) for i in range(15))
"""Fused-MoE streaming efficiencies searched: 0.15 to 0.85 of the memory bandwidth."""


def load_runs() -> pd.DataFrame:
    """The whole runs of ``kernels/block_fp8_runs.csv``, one row per timed number."""
    return load_kernels("block_fp8_runs")


def predict(runs: pd.DataFrame, math_scale: float, stream: float) -> np.ndarray:
    """hwsim's value of each row with the device's rates at (``math_scale``, ``stream``)."""
    out = np.empty(len(runs))
    for i, row in enumerate(runs.itertuples()):
        terms = framework_terms(row.framework)
        rates = BlockFp8DeviceRates((row.device,), math_scale, stream, "trial")
        kernels = replace(terms.block_fp8, devices=(rates,))
        with framework_replaced(row.framework, block_fp8=kernels, absorbed_mla_prefill=None):
            point = estimate(
                model=row.model,
                device=row.device,
                precision="fp8-kv16",
                framework=row.framework,
                tp=int(row.tp),
                batch=int(row.batch),
                input_len=int(row.input_len),
                output_len=int(row.output_len),
            )
        out[i] = float(getattr(point, row.metric))
    return out


def _loss(pred: np.ndarray, measured: np.ndarray) -> float:
    return float(np.mean(np.log(pred / measured) ** 2))


def fit(runs: pd.DataFrame | None = None) -> dict[str, Any]:
    """The grid point of least mean squared log error, each row's ratio there, and the median
    absolute error of each source's rows under the fit without that source."""
    runs = load_runs() if runs is None else runs.reset_index(drop=True)
    measured = runs["value"].to_numpy(dtype=float)
    grid = list(itertools.product(MATH_SCALES, STREAM_EFFICIENCIES))
    preds = np.array([predict(runs, s, e) for s, e in grid])
    best = int(np.argmin([_loss(p, measured) for p in preds]))
    held_out = {}
    for source in runs["run"].unique():
        mine = (runs["run"] == source).to_numpy()
        i = int(np.argmin([_loss(p[~mine], measured[~mine]) for p in preds]))
        held_out[source] = float(np.median(np.abs(preds[i][mine] / measured[mine] - 1.0)))
    math_scale, stream = grid[best]
    return {
        "math_scale": math_scale,
        "moe_stream_efficiency": stream,
        "at_grid_edge": math_scale in (MATH_SCALES[0], MATH_SCALES[-1])
        or stream in (STREAM_EFFICIENCIES[0], STREAM_EFFICIENCIES[-1]),
        "ratios": preds[best] / measured,
        "held_out": held_out,
        "runs": runs,
    }


def frames() -> dict[tuple[str, str], pd.DataFrame]:
    """The runs beside hwsim's price of each at the shipped rates, for the report's kernel charts:
    seconds against the measured seconds (a run on the diagonal is met)."""
    runs = load_runs()
    predicted = np.empty(len(runs))
    for i, row in enumerate(runs.itertuples()):
        (rates,) = [r for r in framework_terms(row.framework).block_fp8.devices if row.device in r.devices]
        predicted[i] = predict(runs.iloc[[i]], rates.math_scale, rates.moe_stream_efficiency)[0]
    frame = pd.DataFrame(
        {
            "panel": "MI300X, DeepSeek at TP 8",
            "x": runs["value"],
            "series": runs["run"] + " " + runs["metric"],
            "measured": runs["value"],
            "predicted": predicted,
        }
    )
    return {("block_fp8_runs", "mi300x"): frame}


if __name__ == "__main__":
    result = fit()
    print(
        f"block_fp8 on {', '.join(sorted(set(result['runs']['device'])))}: math_scale {result['math_scale']}, "
        f"moe_stream_efficiency {result['moe_stream_efficiency']}"
        f"{' (at the grid edge: not a fit)' if result['at_grid_edge'] else ''}"
    )
    for row, ratio in zip(result["runs"].itertuples(), result["ratios"], strict=True):
        print(f"  {row.run} {row.metric}: measured {row.value:g}, hwsim/measured {ratio:.2f}")
    for source, error in result["held_out"].items():
        print(f"  leaving {source} out: its median error {error:.1%}")
