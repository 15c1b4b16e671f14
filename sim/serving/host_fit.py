"""Fit a Python-scheduled engine's host time per step on its batch rows.

A serving fit (``sim.serving.calibrate``) needs an engine's ``server`` rows. vLLM's V0 engine has
none in the fit set, but it has offline and end-to-end rows: static batches and throughput runs,
whose steps carry the engine's host work that does not overlap the GPU. Three terms of it are
fitted here (``FrameworkTerms.host_step_s``):

- ``step_overhead_us``, per step: scheduling, input preparation, sampling and output processing
  in Python ("5-13 ms of GPU bubble" per decode step, vllm-project/vllm issue #6854, 2024-07-26);
- ``seq_overhead_us``, per running sequence and step ("when BS is 200, all this together can be
  20 ms", issue #6801, 2024-08-08);
- ``tp_step_overhead_us``, per step over more than one tensor-parallel worker: V0's driver
  worker broadcasts each step's inputs to the other workers (``broadcast_tensor_dict``: the
  metadata over shared memory from v0.5.1, vllm-project/vllm PR #5399, the tensors over
  torch.distributed) and they start the step when it arrives, unevenly ("the asynchronous
  broadcast of tensor dictionaries at the start of each decoding step causes CUDA kernels to
  launch at quite different times across processes", issue #5792); one broadcast a step, so
  one term, whatever the worker count (small collectives take about as long at 2 as at 8
  ranks on one node: 9.5, 9.1 and 10.1 us for a 512-byte all-reduce at TP 2, 4 and 8 on H100,
  sgl-project/sglang PR #2904).

The analytic path (``roofline.validation.predict``) charges ``host_step_s`` on every step of a
schedule that does not depend on time, so a row's predicted time is affine in the three terms:
four predictions a row (none, and each term alone) give it at every grid point
(``affine_terms``). The grid point of least mean squared log error, each source weighing the
same, is chosen; leave-one-source-out error is reported. An engine whose optimum lies at the
top of a term's grid is not fitted (the terms do not explain its rows); its stated values stay.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hwmodels.calibration.params import framework_overridden
from hwmodels.engine_config import engine_for
from roofline.grid_fit import best_index, held_out_errors, source_weights
from roofline.intervals import is_rate
from roofline.validation import (
    HELD_OUT_PREFIXES,
    load_measured,
    operating_point,
    predict,
    resolve,
    serving_source,
)
from workloads.errors import HwsimError

STEP_GRID_US = tuple(float(v) for v in range(0, 4001, 250))
"""Host time per step searched, us: none to 4 ms (V0's Python engine; issue #6854's bubbles of 5-13 ms
include the per-sequence work)."""
BATCH_SEQ_GRID_US = (0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0)
"""Host time per running sequence per step searched, us: from none to 90 us (vLLM V0 before
multi-step scheduling, ~100 us at a batch of 200 per issue #6801)."""
TP_STEP_GRID_US = tuple(float(v) for v in range(0, 3001, 250))
"""Host time per step over several tensor-parallel workers searched, us: none to 3 ms (the per-step
RPC of Ray workers that V0's executor loop removed was about 2 ms at TP 2 on A100, vllm-project/vllm
PR #3763's 24.2 s and 20.2 s for 2,000 tokens)."""
GRID_TERMS = ("step_overhead_us", "seq_overhead_us", "tp_step_overhead_us")
GRIDS = (STEP_GRID_US, BATCH_SEQ_GRID_US, TP_STEP_GRID_US)
PROBE_US = 1000.0
"""The value of a term in the probe predictions that give its slope, us."""
SHARED_HOST = {"vllm-eager": "vllm-v0", "vllm-sync": "vllm-v0"}
"""Frameworks whose host-side engine is another's: vLLM run with ``--enforce-eager`` (and before
v0.2.6) schedules, prepares inputs, hands steps to its workers and processes outputs in the same
V0 Python engine as ``vllm-v0``, so all three terms are fitted for both; vLLM V1 before async
scheduling was its default (``vllm-sync``) does the per-sequence work in Python between the GPU's
steps as V0 did, which is taken to cost the same (frameworks.yaml vllm-sync: an assumption), so
its batch rows join the fit for that term only: its per-step time is V1's (``serving_terms_from``)
and V1 hands a step to its workers over a shared-memory queue, not V0's broadcast."""
SHARED_TERMS = {"vllm-eager": GRID_TERMS, "vllm-sync": ("seq_overhead_us",)}
"""The terms of its host engine's fit each ``SHARED_HOST`` framework takes."""
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


def sharing(host: str) -> dict[str, tuple[str, ...]]:
    """``host`` and the frameworks that run on its host-side engine (``SHARED_HOST``), each with the
    terms of the fit it takes."""
    return {host: GRID_TERMS} | {f: SHARED_TERMS[f] for f, h in SHARED_HOST.items() if h == host}


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


@dataclass(frozen=True)
class Affine:
    """Each row's predicted time (a rate's reciprocal) with no host time (``base``, s) and its
    growth per microsecond of each term of ``GRID_TERMS`` (``slope``, (terms, rows), s/us), and
    whether the row is a rate."""

    base: np.ndarray
    slope: np.ndarray
    rate: np.ndarray

    def at(self, step_us: Any, seq_us: Any, tp_step_us: Any) -> np.ndarray:
        """The rows' predicted values at the terms given (scalars, or arrays that broadcast against
        a trailing rows axis)."""
        t = self.base + self.slope[0] * step_us + self.slope[1] * seq_us + self.slope[2] * tp_step_us
        return np.where(self.rate, 1.0 / t, t)

    def grid(self) -> np.ndarray:
        """Every grid point's predictions, (points, rows), points in ``np.ndindex`` order of ``GRIDS``."""
        axes = np.meshgrid(*[np.asarray(g) for g in GRIDS], indexing="ij")
        return self.at(*(a.reshape(-1, 1) for a in axes))


def _priced(host: str, rows: pd.DataFrame, values: dict[str, float]) -> np.ndarray:
    """The rows' predictions with ``host``'s engine charged ``values`` (us, by term) and nothing else;
    NaN where a row is not priced."""
    out = np.full(len(rows), np.nan)
    with ExitStack() as stack:
        for name, terms in sharing(host).items():
            stack.enter_context(framework_overridden(name, {t: values.get(t, 0.0) for t in terms}))
        for k, cond in enumerate(rows["cond"]):
            try:
                value, _ = predict(operating_point(cond))
            except HwsimError:
                continue
            out[k] = np.nan if value is None else value
    return out


def affine_terms(host: str, rows: pd.DataFrame, say: Callable[[str], None]) -> Affine:
    """The rows' predictions as affine functions of ``host``'s three terms, from four pricings."""
    say(f"  {host}: {len(rows)} offline and end-to-end rows priced with no host time and each term alone")
    rate = rows["cond"].map(lambda c: is_rate(c.metric)).to_numpy(dtype=bool)

    def time_s(values: dict[str, float]) -> np.ndarray:
        priced = _priced(host, rows, values)
        return np.where(rate, 1.0 / priced, priced)

    base = time_s({})
    slope = np.stack([(time_s({t: PROBE_US}) - base) / PROBE_US for t in GRID_TERMS])
    return Affine(base, slope, rate)


def _summary(ape: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(ape)
    return {"rows": int(ok.sum()), "median_ape": float(np.median(ape[ok])) if ok.any() else None}


def fit_batch_hosts(say: Callable[[str], None]) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The fitted terms of each host engine in ``HOST_FITTED`` (by framework, its ``SHARED_HOST``
    members included with the terms they take) and the fit's errors (by host engine)."""
    rows = batch_rows()
    terms: dict[str, dict[str, float]] = {}
    errors: dict[str, Any] = {}
    for host, group in rows.groupby("host"):
        group = group.reset_index(drop=True)
        if len(group) < MIN_BATCH_ROWS or group["source"].nunique() < MIN_BATCH_SOURCES:
            say(f"{host}: {len(group)} batch rows from {group['source'].nunique()} sources: not fitted")
            continue
        preds = affine_terms(host, group, say).grid()
        measured = group["measured"].to_numpy()
        weight = source_weights(group["source"])
        i = best_index(preds, measured, np.ones(len(group), dtype=bool), weight)
        point = np.unravel_index(i, tuple(len(g) for g in GRIDS))
        values = {t: float(g[k]) for t, g, k in zip(GRID_TERMS, GRIDS, point, strict=True)}
        in_sample = np.abs(preds[i] / measured - 1.0)
        record: dict[str, Any] = {
            "fitted_on": "offline and end-to-end rows, each source weighing the same",
            "sources": int(group["source"].nunique()),
        }
        at_top = [t for t, g, k in zip(GRID_TERMS, GRIDS, point, strict=True) if k == len(g) - 1]
        if at_top:
            say(f"{host}: not fitted: the best {', '.join(at_top)} is the grid's top")
            errors[host] = {
                **record,
                "not_fitted": "optimum at the edge of the plausible range",
                **_summary(in_sample),
            }
            continue
        loso = held_out_errors(preds, measured, group["source"], weight)
        for framework, taken in sharing(host).items():
            terms[framework] = {t: values[t] for t in taken}
        errors[host] = {**record, "in_sample": _summary(in_sample), "leave_one_source_out": _summary(loso)}
        say(f"{host}: {values}; in-sample median APE {np.nanmedian(in_sample):.1%}")
    return terms, errors
