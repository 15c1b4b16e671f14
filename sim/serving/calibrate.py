"""Fit the serving frameworks' global terms on the measured ``server`` rows.

Per framework with enough rows, three terms of ``hwmodels/calibration/frameworks.yaml``
(and first, for a framework that states it, ``request_latency_per_launch_us``, below):
``step_overhead_us`` (host time per engine step), ``seq_overhead_us`` (host time per running
sequence per step: scheduling, input preparation, sampling and detokenization, which grow with
the batch in Python-scheduled engines) and ``output_lag_steps`` (steps between a token leaving
the engine and reaching a streaming client). All are fitted by a grid search
that minimises the mean squared log error of the rows' TTFT, TPOT and end-to-end means (each
row's simulation, ``sim.serving.validation``, is run once per host-time point, the points on
forked processes (``roofline.forked``); the lag only
shifts client-side times, so every lag value is scored from the same runs). The grid makes
leave-one-source-out exact and cheap: each held-out source gets the grid point that fits the
others best, and its rows are scored at that point. A framework whose best point lies on the
edge of the plausible range is not fitted (those terms do not explain its rows' error) and
keeps its stated values; the miss is reported. Device-class parameters stay as fitted
on the analytic rows (``roofline.calibrate``).

A framework whose frameworks.yaml entry states ``request_latency_per_launch_us`` (SGLang: a
fixed time per request in its TTFT, which delays that request alone) first gets that term by a
grid search on its TTFT rows alone, at its other terms as they stand; the grid above then runs
with it. One pass, not a joint search: the term moves TTFT (and end-to-end time), not the steps
that TPOT measures. Its errors are reported in sample, leaving one source out and leaving one
model out (a framework with one source still has several models).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hwmodels.calibration.params import (
    SERVING_FITTED,
    fits_request_latency,
    framework_overridden,
    inherits_serving_terms,
    serving_fitted_path,
)
from roofline.forked import forked_map
from roofline.validation import HELD_OUT_PREFIXES, load_measured, resolve, serving_source
from sim.serving.host_fit import fit_batch_hosts
from sim.serving.metrics import request_metrics
from sim.serving.validation import metric_key
from workloads.errors import HwsimError

STEP_OVERHEAD_GRID_US = (0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
"""Host time per step, us: from none (fully overlapped scheduling) to 4 ms (Python engines
with no CUDA graphs)."""
SEQ_OVERHEAD_GRID_US = (0.0, 15.0, 30.0, 60.0)
"""Host time per running sequence per step, us, for Python-scheduled engines (vLLM, SGLang): from
none to 60 us (vLLM V0's per-sequence scheduling and output processing)."""
CPP_SCHEDULED = ("tensorrt-llm", "tensorrt-llm-0.6")
"""Engines whose batch scheduler runs in C++ (TensorRT-LLM's executor): no per-sequence host time
is fitted (``seq_overhead_us`` stays 0)."""
OUTPUT_LAG_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
"""Steps a token takes to reach a streaming client: 0 (synchronous) to 3."""
REQUEST_LATENCY_GRID_US = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 130.0, 160.0, 200.0)
"""A request's time to the scheduler per kernel launch of the model's forward pass, us: none to
200 us (at most the time of several Python-dispatched PyTorch ops per launch, each 10-50 us on a
server CPU: hwsim's own measurement of an eager launch from Python is 10-17 us for an add and
47 us for a BF16 linear, docs/own-measurements.md)."""
FIT_METRICS = ("ttft_s", "tpot_s", "e2e_s")
MIN_ROWS = 6
"""A framework is fitted only with at least this many latency rows."""


def serving_rows(frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The latency rows of ``server`` measurements that resolve to a serving run (held-out rows,
    ``roofline.validation.HELD_OUT_PREFIXES``, are never fitted)."""
    frame = load_measured() if frame is None else frame
    out = []
    for _, row in frame.iterrows():
        if row["phase"] != "server" or row["metric"] not in FIT_METRICS:
            continue
        if str(row["id"]).startswith(HELD_OUT_PREFIXES):
            continue
        cond = resolve(row)
        if isinstance(cond, str) or cond.serving is None or not cond.framework:
            continue
        out.append(
            {
                "id": row["id"],
                "cond": cond,
                "framework": cond.framework,
                "metric": row["metric"],
                "measured": float(row["value"]),
                "source": serving_source(row["source"]),
            }
        )
    return pd.DataFrame(out)


def host_grid(framework: str) -> list[tuple[float, float]]:
    """The (step overhead, per-sequence overhead) points, us, searched for ``framework``."""
    seq = (0.0,) if framework in CPP_SCHEDULED else SEQ_OVERHEAD_GRID_US
    return [(step, per_seq) for step in STEP_OVERHEAD_GRID_US for per_seq in seq]


def _host_point(
    framework: str, runs: dict[str, list[tuple[int, pd.Series]]], n_rows: int, point: tuple[float, float]
) -> np.ndarray:
    """The rows' predictions at one (step, per-sequence) host-time point, every output lag: (lags, rows)."""
    from sim.serving.validation import _simulate_result

    step_us, seq_us = point
    preds = np.full((len(OUTPUT_LAG_GRID), n_rows), np.nan)
    terms = {"step_overhead_us": step_us, "seq_overhead_us": seq_us, "output_lag_steps": 0.0}
    with framework_overridden(framework, terms):
        for members in runs.values():
            cond = members[0][1]["cond"]
            result = _simulate_result(cond)
            if isinstance(result, str):
                continue
            for j, lag in enumerate(OUTPUT_LAG_GRID):
                m = request_metrics(
                    result.requests,
                    result.metrics["n_devices"],
                    output_lag_steps=lag,
                    open_loop=not cond.closed_loop,
                )
                for k, r in members:
                    preds[j, k] = m[metric_key(r["cond"], m)]
    return preds


def _predictions(rows: pd.DataFrame, say: Callable[[str], None]) -> np.ndarray:
    """Predicted value of every row at every (host time, lag) grid point: (hosts, lags, rows)."""
    framework = rows["framework"].iloc[0]
    runs = _runs(rows)
    task = partial(_host_point, framework, runs, len(rows))
    done = forked_map(
        task,
        host_grid(framework),
        lambda p: say(
            f"  {framework}: step overhead {p[0]:g} us, {p[1]:g} us per sequence ({len(runs)} runs)"
        ),
    )
    return np.stack(done)


def _loss(preds: np.ndarray, measured: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean squared log error over the rows in ``mask`` at every grid point."""
    err = np.log(preds[..., mask] / measured[mask])
    return np.nanmean(err**2, axis=-1)


def _ape(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    return np.abs(pred / measured - 1.0)


def _summary(ape: np.ndarray, metrics: np.ndarray) -> dict[str, Any]:
    """Rows and median errors (overall and per metric) of the finite errors in ``ape``; the median
    is None where none is finite (a framework of one source has no leave-one-source-out error)."""
    ok = np.isfinite(ape)
    out = {"rows": int(ok.sum()), "median_ape": float(np.median(ape[ok])) if ok.any() else None}
    for metric in FIT_METRICS:
        sel = (metrics == metric) & np.isfinite(ape)
        if sel.any():
            out[f"{metric}_median_ape"] = float(np.median(ape[sel]))
    return out


def _runs(rows: pd.DataFrame) -> dict[str, list[tuple[int, pd.Series]]]:
    """The rows of each simulation run: rows of one campaign and serving settings share a run."""
    runs: dict[str, list[tuple[int, pd.Series]]] = {}
    for k, (_, r) in enumerate(rows.iterrows()):
        runs.setdefault(r["id"].split("-")[0] + repr(r["cond"].serving), []).append((k, r))
    return runs


def _latency_point(
    framework: str, runs: dict[str, list[tuple[int, pd.Series]]], n_rows: int, us: float
) -> np.ndarray:
    """The TTFT rows' predicted means with ``request_latency_per_launch_us`` at ``us``: (rows,)."""
    from sim.serving.validation import _simulate_result

    preds = np.full(n_rows, np.nan)
    with framework_overridden(framework, {"request_latency_per_launch_us": us}):
        for members in runs.values():
            result = _simulate_result(members[0][1]["cond"])
            if isinstance(result, str):
                continue
            for k, _r in members:
                preds[k] = result.metrics["ttft_s_mean"]
    return preds


def fit_request_latency(
    rows: pd.DataFrame, say: Callable[[str], None]
) -> tuple[float | None, dict[str, Any]]:
    """``request_latency_per_launch_us`` of one framework fitted on its TTFT ``rows`` (``REQUEST_LATENCY_GRID_US``,
    least mean squared log error) and its errors; None where the best point is the grid's top
    (the term does not explain the rows' error) or no row is simulated."""
    framework = rows["framework"].iloc[0]
    ttft = rows.loc[rows["metric"] == "ttft_s"].reset_index(drop=True)
    runs = _runs(ttft)
    done = forked_map(
        partial(_latency_point, framework, runs, len(ttft)),
        REQUEST_LATENCY_GRID_US,
        lambda us: say(f"  {framework}: request latency {us:g} us per launch ({len(runs)} runs)"),
    )
    preds = np.stack(done)
    measured = ttft["measured"].to_numpy()
    if not np.isfinite(preds).any():
        return None, {"not_fitted": "no TTFT row simulated"}
    loss = _loss(preds[:, None, :], measured, np.ones(len(ttft), dtype=bool))[:, 0]
    best = int(np.nanargmin(loss))
    metrics = ttft["metric"].to_numpy()
    errors: dict[str, Any] = {"rows": len(ttft), "in_sample": _summary(_ape(preds[best], measured), metrics)}
    for field, column in (("leave_one_source_out", "source"), ("leave_one_model_out", "model")):
        groups = ttft["cond"].map(lambda c: c.model) if column == "model" else ttft[column]
        held_out = np.full(len(ttft), np.nan)
        for g in groups.unique():
            held = (groups == g).to_numpy()
            if not held.all():
                a = int(np.nanargmin(_loss(preds[:, None, :], measured, ~held)[:, 0]))
                held_out[held] = _ape(preds[a, held], measured[held])
        errors[field] = _summary(held_out, metrics)
    if best == len(REQUEST_LATENCY_GRID_US) - 1:
        return None, {"not_fitted": "optimum at the edge of the plausible range", **errors}
    return REQUEST_LATENCY_GRID_US[best], errors


def calibrate_serving(progress: Callable[[str], None] | None = None, write: bool = True) -> dict[str, Any]:
    """Fit every framework with ``MIN_ROWS`` latency rows; write ``serving_fitted.yaml``."""
    say = progress or (lambda _msg: None)
    rows = serving_rows()
    record: dict[str, Any] = {
        "schema_version": 1,
        "fitted_on": (
            "server rows of hwmodels/validation/measured.csv (TTFT, TPOT, end-to-end means); vLLM V0's "
            "host times per step, per sequence and per tensor-parallel step on its offline and end-to-end "
            f"rows (host_fit.py), {_dt.date.today().isoformat()}"
        ),
        "frameworks": {},
        "errors": {},
    }
    for framework, group in rows.groupby("framework"):
        if inherits_serving_terms(framework):
            say(
                f"{framework}: takes its serving terms from other frameworks (serving_terms_from): not fitted"
            )
            continue
        if len(group) < MIN_ROWS:
            say(f"{framework}: {len(group)} latency rows, fewer than {MIN_ROWS}: not fitted")
            continue
        group = group.reset_index(drop=True)
        latency: dict[str, float] = {}
        if fits_request_latency(framework):
            us, errors = fit_request_latency(group, say)
            record.setdefault("request_latency", {})[framework] = errors
            if us is not None:
                latency = {"request_latency_per_launch_us": float(us)}
                record["frameworks"][framework] = dict(latency)
                say(f"{framework}: request latency {us:g} us per launch")
        try:
            with framework_overridden(framework, latency):
                preds = _predictions(group, say)
        except HwsimError as exc:
            say(f"{framework}: {exc}")
            continue
        measured = group["measured"].to_numpy()
        metrics = group["metric"].to_numpy()
        everything = np.ones(len(group), dtype=bool)
        grid = host_grid(framework)
        i, j = np.unravel_index(np.nanargmin(_loss(preds, measured, everything)), preds.shape[:2])
        step_us, seq_us = grid[i]
        edge = step_us in (STEP_OVERHEAD_GRID_US[0], STEP_OVERHEAD_GRID_US[-1]) or (
            seq_us == SEQ_OVERHEAD_GRID_US[-1]
        )
        if edge or j == len(OUTPUT_LAG_GRID) - 1:
            say(
                f"{framework}: not fitted: the best point (step {step_us:g} us, {seq_us:g} us per sequence, lag "
                f"{OUTPUT_LAG_GRID[j]:g} steps) is at the edge of the plausible range, so these terms do not "
                "explain the rows' error"
            )
            record["errors"][framework] = {"not_fitted": "optimum at the edge of the plausible range"}
            record["errors"][framework].update(_summary(_ape(preds[i, j], measured), metrics))
            continue
        in_sample = _ape(preds[i, j], measured)
        loso = np.full(len(group), np.nan)
        for source in group["source"].unique():
            held = (group["source"] == source).to_numpy()
            if held.all():
                continue
            a, b = np.unravel_index(np.nanargmin(_loss(preds, measured, ~held)), preds.shape[:2])
            loso[held] = _ape(preds[a, b, held], measured[held])
        values = {
            "step_overhead_us": float(step_us),
            "seq_overhead_us": float(seq_us),
            "output_lag_steps": float(OUTPUT_LAG_GRID[j]),
            **latency,
        }
        record["frameworks"][framework] = values
        record["errors"][framework] = {
            "sources": int(group["source"].nunique()),
            "in_sample": _summary(in_sample, metrics),
            "leave_one_source_out": _summary(loso, metrics),
        }
        say(f"{framework}: {values}; in-sample median APE {np.nanmedian(in_sample):.1%}")
    hosts, host_errors = fit_batch_hosts(say)
    for framework, values in hosts.items():
        record["frameworks"].setdefault(framework, values)  # a server fit, where one exists, wins
    record["errors"].update(host_errors)
    if write and record["frameworks"]:
        serving_fitted_path().write_text(
            f"# Written by hwsim calibrate (sim/serving/calibrate.py); {SERVING_FITTED} overrides\n"
            "# frameworks.yaml for the terms it names.\n" + yaml.safe_dump(record, sort_keys=False)
        )
    return record
