"""Fit a Python-scheduled engine's host time per running sequence on its batch rows.

A serving fit (``sim.serving.calibrate``) needs an engine's ``server`` rows. vLLM's V0 engine has
none in the fit set, but it has offline and end-to-end rows: static batches and throughput runs of
hundreds of sequences, whose steps carry the engine's host work per running sequence (scheduling,
input preparation, sampling and output processing in Python: "when BS is 200, all this together
can be 20 ms", vllm-project/vllm issue #6801, 2024-08-08; "5-13 ms of GPU bubble" per decode
step, issue #6854, 2024-07-26). Its ``seq_overhead_us`` is fitted here on those rows, priced by
the analytic path (``roofline.validation.predict``, which charges ``FrameworkTerms.host_step_s``
per step), by a grid search on the mean squared log error, with leave-one-source-out error. An
engine whose optimum lies at the top of the grid is not fitted (the term does not explain its
rows); its stated value stays.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import numpy as np
import pandas as pd

from hwmodels.calibration.params import framework_overridden
from hwmodels.engine_config import engine_for
from roofline.grid_fit import best_index, held_out_errors
from roofline.validation import (
    HELD_OUT_PREFIXES,
    load_measured,
    operating_point,
    predict,
    resolve,
    serving_source,
)
from workloads.errors import HwsimError

BATCH_SEQ_GRID_US = (0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0)
"""Host time per running sequence per step searched on batch rows, us: from none to 90 us (vLLM
V0 before multi-step scheduling, ~100 us at a batch of 200 per issue #6801)."""
SHARED_HOST = {"vllm-eager": "vllm-v0", "vllm-sync": "vllm-v0"}
"""Frameworks whose host-side engine is another's: vLLM run with ``--enforce-eager`` (and before
v0.2.6) schedules, prepares inputs and processes outputs in the same V0 Python engine as
``vllm-v0``, so one per-sequence time is fitted for both; vLLM V1 before async scheduling was its
default (``vllm-sync``) does that work per running request in Python between the GPU's steps
as V0 did, which is taken to cost the same (frameworks.yaml vllm-sync: an assumption), so its
batch rows join the fit."""
HOST_FITTED = ("vllm-v0",)
"""Host engines fitted on batch rows: Python-scheduled batching engines with no ``server`` fit
rows of their own (TensorRT-LLM's scheduler is C++; vLLM V1 with async scheduling and SGLang are
fitted on server rows)."""
BATCH_METRICS = ("e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_device", "requests_per_s", "tpot_s")
MIN_BATCH_ROWS = 4
MIN_BATCH_SOURCES = 2


def host_of(framework: str) -> str:
    """The framework whose host-side engine ``framework`` runs on (itself unless ``SHARED_HOST``)."""
    return SHARED_HOST.get(framework, framework)


def sharing(host: str) -> list[str]:
    """``host`` and the frameworks that run on its host-side engine (``SHARED_HOST``)."""
    return [host] + [f for f, h in SHARED_HOST.items() if h == host]


def batch_rows(frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fit rows (never held-out ones) of the engines in ``HOST_FITTED`` that the analytic path
    prices: offline, end-to-end and decode rows of a batching engine."""
    frame = load_measured() if frame is None else frame
    out = []
    for _, row in frame.iterrows():
        if row["phase"] == "server" or row["metric"] not in BATCH_METRICS:
            continue
        if str(row["id"]).startswith(HELD_OUT_PREFIXES):
            continue
        cond = resolve(row)
        if isinstance(cond, str) or cond.kernel_op or not cond.framework:
            continue
        if host_of(cond.framework) not in HOST_FITTED or engine_for(cond.framework).scheduler == "static":
            continue
        out.append(
            {
                "id": row["id"],
                "cond": cond,
                "host": host_of(cond.framework),
                "measured": float(row["value"]),
                "source": serving_source(row["source"]),
            }
        )
    return pd.DataFrame(out, columns=["id", "cond", "host", "measured", "source"])


def _predictions(host: str, rows: pd.DataFrame, say: Callable[[str], None]) -> np.ndarray:
    """Each row's prediction at each grid point, (points, rows); NaN where a row is not priced."""
    preds = np.full((len(BATCH_SEQ_GRID_US), len(rows)), np.nan)
    for i, seq_us in enumerate(BATCH_SEQ_GRID_US):
        say(f"  {host}: {seq_us:g} us per sequence on {len(rows)} offline and end-to-end rows")
        with ExitStack() as stack:
            for name in sharing(host):
                stack.enter_context(framework_overridden(name, {"seq_overhead_us": seq_us}))
            for k, cond in enumerate(rows["cond"]):
                try:
                    value, _ = predict(operating_point(cond))
                except HwsimError:
                    continue
                preds[i, k] = np.nan if value is None else value
    return preds


def _summary(ape: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(ape)
    return {"rows": int(ok.sum()), "median_ape": float(np.median(ape[ok])) if ok.any() else None}


def fit_batch_hosts(say: Callable[[str], None]) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The fitted ``seq_overhead_us`` of each host engine in ``HOST_FITTED`` (by framework, its
    ``SHARED_HOST`` members included) and the fit's errors (by host engine)."""
    rows = batch_rows()
    terms: dict[str, dict[str, float]] = {}
    errors: dict[str, Any] = {}
    for host, group in rows.groupby("host"):
        group = group.reset_index(drop=True)
        if len(group) < MIN_BATCH_ROWS or group["source"].nunique() < MIN_BATCH_SOURCES:
            say(f"{host}: {len(group)} batch rows from {group['source'].nunique()} sources: not fitted")
            continue
        preds = _predictions(host, group, say)
        measured = group["measured"].to_numpy()
        everything = np.ones(len(group), dtype=bool)
        i = best_index(preds, measured, everything)
        in_sample = np.abs(preds[i] / measured - 1.0)
        record: dict[str, Any] = {
            "fitted_on": "offline and end-to-end rows",
            "sources": int(group["source"].nunique()),
        }
        if i == len(BATCH_SEQ_GRID_US) - 1:
            say(
                f"{host}: not fitted: the best per-sequence time is the grid's top ({BATCH_SEQ_GRID_US[i]:g} us)"
            )
            errors[host] = {
                **record,
                "not_fitted": "optimum at the edge of the plausible range",
                **_summary(in_sample),
            }
            continue
        loso = held_out_errors(preds, measured, group["source"])
        for framework in sharing(host):
            terms[framework] = {"seq_overhead_us": float(BATCH_SEQ_GRID_US[i])}
        errors[host] = {**record, "in_sample": _summary(in_sample), "leave_one_source_out": _summary(loso)}
        say(
            f"{host}: {BATCH_SEQ_GRID_US[i]:g} us per sequence; in-sample median APE {np.nanmedian(in_sample):.1%}"
        )
    return terms, errors
