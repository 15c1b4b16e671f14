"""Fit the rate of the AWQ GEMM kernel that AutoAWQ before v0.2.0 ran (``AwqGemmKernel``).

MIT llm-awq's first GEMM kernel (``gemm_forward_4bit_cuda_m16n128k32``) gives each thread block
of two warps a 16 x 128 output tile and reloads and dequantizes its weights at every 32-deep K
step without a pipeline, so its speed follows the SMs' count and the latency of those loads,
not the tensor cores' width: on an A100 AutoAWQ prefilled Llama-2-7B at 3,300-3,900 tokens/s
where FP16 math alone would allow about 17,000 (hwsim without the term), and on an RTX 4090 at
about the same speed though its FP16 tensor peak is half the A100's.

The kernel's multiply-adds per SM and microsecond (``macs_per_sm_us``) are fitted here by a grid
search on the mean squared log error of hwsim's prices of AutoAWQ prefill rows timed on A100s
(``hwmodels/calibration/kernels/awq_gemm.csv``: two sources, never the held-out rows), each
priced whole by ``roofline.validation`` under the framework the row's version names; the error
with each source left out is reported beside it. ``python -m roofline.awq_fit`` prints the fit;
the value is then written by hand into ``frameworks.yaml`` (``autoawq-0.1``), and
``tests/test_awq_gemm.py`` holds the two equal.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwmodels.calibration.params import framework_replaced, framework_terms
from roofline.grid_fit import best_index, held_out_errors
from roofline.validation import load_measured, source_key, validate_frame
from workloads.errors import ConfigError

AWQ_FRAMEWORK = "autoawq-0.1"
"""The framework whose ``awq_gemm`` rate is fitted (AutoAWQ before v0.2.0)."""
RATE_GRID = tuple(float(r) for r in range(100_000, 400_001, 10_000))
"""Multiply-adds per SM and microsecond searched: 100,000 to 400,000 in steps of 10,000 (an A100
SM's FP16 tensor peak is 1.4 million, an RTX 4090's 0.65 million with FP32 accumulation)."""


def awq_rows() -> pd.DataFrame:
    """The shipped AutoAWQ prefill rows timed on the AWQ GEMM kernel (measured-data schema)."""
    return load_measured(Path(str(files("hwmodels.calibration").joinpath("kernels/awq_gemm.csv"))))


def predictions(rows: pd.DataFrame, grid: tuple[float, ...] = RATE_GRID) -> np.ndarray:
    """hwsim's value of each row at each rate of ``grid``, shape (rates, rows); NaN where unpriced."""
    kernel = framework_terms(AWQ_FRAMEWORK).awq_gemm
    if kernel is None:
        raise ConfigError(
            f"hwmodels/calibration/frameworks.yaml: {AWQ_FRAMEWORK} states no awq_gemm kernel to fit"
        )
    out = np.full((len(grid), len(rows)), np.nan)
    for i, rate in enumerate(grid):
        with framework_replaced(AWQ_FRAMEWORK, awq_gemm=replace(kernel, macs_per_sm_us=rate)):
            points = validate_frame(rows)
        out[i] = pd.to_numeric(points["predicted"], errors="coerce").to_numpy(dtype=float)
    return out


def fit(rows: pd.DataFrame | None = None, grid: tuple[float, ...] = RATE_GRID) -> dict[str, Any]:
    """The fitted rate (MACs per SM per us), its in-sample and leave-one-source-out absolute errors
    (median over rows) and the row and source counts."""
    rows = awq_rows() if rows is None else rows.reset_index(drop=True)
    preds = predictions(rows, grid)
    measured = rows["value"].to_numpy(dtype=float)
    sources = rows["source"].map(source_key).to_numpy()
    i = best_index(preds, measured, np.ones(len(rows), dtype=bool))
    loso = held_out_errors(preds, measured, sources)
    return {
        "macs_per_sm_us": grid[i],
        "at_grid_edge": i in (0, len(grid) - 1),
        "in_sample_median_ape": float(np.nanmedian(np.abs(preds[i] / measured - 1.0))),
        "leave_one_source_out_median_ape": float(np.nanmedian(loso)),
        "rows": len(rows),
        "sources": int(len(np.unique(sources))),
    }


def awq_frames() -> dict[tuple[str, str], pd.DataFrame]:
    """The shipped rows beside hwsim's prices under the fitted kernel and under AutoAWQ's later
    kernels (the class's 16-bit rate), for the report's kernel charts: one panel per source,
    prefill tokens/s against prompt tokens."""
    rows = awq_rows()
    cited = rows["source"].map(source_key).str.split(" [(]").str[0].str.replace("casper-hansen/", "")
    panel = rows["model"] + ", " + cited + " (A100 80GB)"
    frames = []
    for label, version in (
        ("priced with the AWQ GEMM kernel (autoawq-0.1)", "0.1"),
        ("priced at the 16-bit class rate (autoawq)", "0.2"),
    ):
        points = validate_frame(rows.assign(framework_version=version))
        frames.append(
            pd.DataFrame(
                {
                    "panel": panel,
                    "x": rows["input_len"],
                    "series": label,
                    "measured": rows["value"] if version == "0.1" else np.nan,  # the timings dotted once
                    "predicted": pd.to_numeric(points["predicted"], errors="coerce"),
                }
            )
        )
    return {("awq_gemm", "a100-sxm-80gb AutoAWQ 0.1"): pd.concat(frames, ignore_index=True)}


if __name__ == "__main__":
    result = fit()
    print(
        f"{AWQ_FRAMEWORK} awq_gemm: {result['macs_per_sm_us']:,.0f} MACs per SM per us"
        f"{' (at the grid edge: not a fit)' if result['at_grid_edge'] else ''}; "
        f"median error {result['in_sample_median_ape']:.1%} in sample, "
        f"{result['leave_one_source_out_median_ape']:.1%} leaving a source out "
        f"({result['rows']} rows, {result['sources']} sources)"
    )
