"""Per-request and aggregate metrics of a serving run, as benchmark clients report them.

- TTFT: first token time minus arrival (the submit time for a closed-loop client);
- TPOT: (finish - first token) / (output tokens - 1), over requests with more than one
  output token (``vllm bench serve`` and ``genai-perf`` exclude one-token outputs);
- inter-token latency: the gap between a request's consecutive tokens, i.e. the step
  times weighted by the decode tokens each step produced;
- end-to-end latency: finish minus arrival;
- throughput over the run's duration (first arrival to last finish): requests/s and
  output tokens/s (per device too);
- steady-state throughput: requests finishing inside the arrival span after its first 10%
  (an open loop's after its ramp-up where that is longer: the 90th percentile of the end-to-end
  latency), over that window, which a short run's ramp-up and drain do not bias; for an open loop
  also steady-state latency means, over the requests arriving after the ramp-up and a ramp
  before the last arrival (their whole life in the steady state, neither filling nor draining);
- SLO attainment: the share of requests meeting both the TTFT and the TPOT limit (a limit
  not given always holds); goodput: those requests per second.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.serving.requests import Requests


def _stats(values: np.ndarray, prefix: str, unit: str = "s") -> dict[str, float]:
    if values.size == 0:
        nan = float("nan")
        return {f"{prefix}_{unit}_{k}": nan for k in ("mean", "p50", "p90", "p99")}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        f"{prefix}_{unit}_mean": float(values.mean()),
        f"{prefix}_{unit}_p50": float(p50),
        f"{prefix}_{unit}_p90": float(p90),
        f"{prefix}_{unit}_p99": float(p99),
    }


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, q: list[float]) -> list[float]:
    """Percentiles ``q`` (0-100) of ``values`` where each counts ``weights`` times."""
    keep = weights > 0
    if not keep.any():
        return [float("nan")] * len(q)
    v, w = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(w[order])
    return [float(v[min(np.searchsorted(cum, p / 100.0 * cum[-1]), len(v) - 1)]) for p in q]


def request_metrics(
    req: Requests,
    n_devices: int,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    output_lag_steps: float = 0.0,
    open_loop: bool = False,
) -> dict[str, Any]:
    """The aggregate latency and throughput figures of a finished run, as a streaming client
    sees them: ``output_lag_steps`` engine steps after the engine produced each token. An
    ``open_loop`` run (requests arriving on their own schedule) takes its steady window after its
    ramp-up (``ramp_s``) and adds steady latency means (``_steady_latency``)."""
    done = req.completed
    arrival = req.arrival_s[done]
    first = req.first_token_s[done] + output_lag_steps * req.first_step_s[done]
    finish = req.finish_s[done] + output_lag_steps * req.last_step_s[done]
    out = req.output_len[done]
    ttft = first - arrival
    e2e = finish - arrival
    multi = out > 1
    tpot = (finish[multi] - first[multi]) / (out[multi] - 1)
    duration = float(finish.max() - np.nanmin(req.arrival_s)) if done.any() else float("nan")
    tokens = float(out.sum())
    ok = np.ones(done.sum(), dtype=bool)
    if slo_ttft_s is not None:
        ok &= ttft <= slo_ttft_s
    if slo_tpot_s is not None:
        tpot_all = np.where(multi, (finish - first) / np.maximum(out - 1, 1), 0.0)
        ok &= tpot_all <= slo_tpot_s
    metrics: dict[str, Any] = {}
    metrics.update(_stats(ttft, "ttft"))
    metrics.update(_stats(tpot, "tpot"))
    e2e_stats = _stats(e2e, "e2e")
    metrics.update({k: e2e_stats[k] for k in ("e2e_s_mean", "e2e_s_p50", "e2e_s_p90", "e2e_s_p99")})
    metrics.update(
        {
            "requests_per_s": float(done.sum()) / duration if duration > 0 else float("nan"),
            "output_tokens_per_s": tokens / duration if duration > 0 else float("nan"),
            "output_tokens_per_s_per_device": tokens / duration / n_devices if duration > 0 else float("nan"),
            "completed": int(done.sum()),
            "preempted": int(req.preemptions.sum()),
            "slo_attainment": float(ok.mean()) if ok.size else float("nan"),
            "goodput_requests_per_s": float(ok.sum()) / duration if duration > 0 else float("nan"),
            "duration_s": duration,
            "output_tokens": tokens,
        }
    )
    metrics.update(_steady(req, n_devices, ramp_s(e2e) if open_loop else 0.0))
    if open_loop:
        per_request_tpot = np.where(multi, (finish - first) / np.maximum(out - 1, 1), np.nan)
        metrics.update(_steady_latency(arrival, ttft, e2e, per_request_tpot))
    return metrics


STEADY_MIN_SHARE = 0.5
"""Least share of a run's completed requests its steady window must hold to stand for the run."""
STEADY_LATENCY_MIN_SHARE = 0.25
"""Least share of a run's completed requests that must arrive in its steady latency window
(after the ramp-up, a ramp before the last arrival) for steady latency means."""
RAMP_PERCENTILE = 90.0
"""The ramp-up of an open-loop run: this percentile of its requests' end-to-end latency, about
the time the engine takes to fill (an arrival's request is still running that long after)."""


def ramp_s(e2e: np.ndarray) -> float:
    """The ramp-up (and drain) time of an open-loop run whose requests took ``e2e`` (s)."""
    return float(np.percentile(e2e, RAMP_PERCENTILE)) if e2e.size else 0.0


def _steady_latency(
    arrival: np.ndarray, ttft: np.ndarray, e2e: np.ndarray, tpot: np.ndarray
) -> dict[str, float]:
    """Mean TTFT, TPOT and end-to-end latency at steady state: over the completed requests
    arriving ``ramp_s`` after the first arrival and ``ramp_s`` before the last, whose whole life the
    engine spends full (a measured run of 10 to 40 minutes, as MLPerf's server runs are, is almost
    all such requests; a simulated one of a few minutes is not). ``tpot`` is NaN for a one-token
    output. None where fewer than ``STEADY_LATENCY_MIN_SHARE`` of the requests fall in it."""
    if arrival.size == 0:
        return {}
    ramp = ramp_s(e2e)
    inside = (arrival >= arrival.min() + ramp) & (arrival <= arrival.max() - ramp)
    if inside.sum() < max(10, STEADY_LATENCY_MIN_SHARE * arrival.size):
        return {}
    tpot_in = tpot[inside & ~np.isnan(tpot)]
    return {
        "steady_ttft_s_mean": float(ttft[inside].mean()),
        "steady_tpot_s_mean": float(tpot_in.mean()) if tpot_in.size else float("nan"),
        "steady_e2e_s_mean": float(e2e[inside].mean()),
    }


def tokens_generated_between(
    first_s: np.ndarray, finish_s: np.ndarray, output_len: np.ndarray, lo: float, hi: float
) -> float:
    """Output tokens generated in ``[lo, hi]`` (s) by requests whose first token came at
    ``first_s`` and whose last at ``finish_s``: the first at ``first_s``, the other
    ``output_len - 1`` evenly spread over ``(first_s, finish_s]``."""
    first_in = (first_s >= lo) & (first_s <= hi)
    overlap = np.clip(np.minimum(finish_s, hi) - np.maximum(first_s, lo), 0.0, None)
    share = overlap / np.maximum(finish_s - first_s, 1e-12)  # 0 for a one-token output
    return float(first_in.sum() + ((output_len - 1) * share).sum())


def _steady(req: Requests, n_devices: int, ramp: float = 0.0) -> dict[str, float]:
    """Throughput at steady state, over the arrival span after its ramp-up (its first 10%, or
    ``ramp`` s where that is longer): requests finishing inside that window, and the output
    tokens generated inside it. A request's first token comes
    at its first-token time and its others evenly up to its finish, so a long request running
    across the window's edge counts the share it generated inside (counting whole outputs of the
    requests finishing inside would favour short outputs in an overloaded run, whose long
    requests finish after the window). Open loop only; a closed loop has no arrival span, so its
    whole-run figures stand, as they do for a burst that the engine mostly serves after its last
    arrival (fewer than ``STEADY_MIN_SHARE`` of the requests finish inside the window: a short
    overloaded run, whose client measures its tokens over the whole run)."""
    done = req.completed
    arrival = req.arrival_s
    t0, t1 = float(np.nanmin(arrival)), float(np.nanmax(arrival))
    finish = req.finish_s[done]
    lo = t0 + max(0.1 * (t1 - t0), ramp)
    inside = (finish >= lo) & (finish <= t1)
    span = t1 - lo
    if span <= 0 or inside.sum() < max(10, STEADY_MIN_SHARE * done.sum()):
        return {}
    rate = float(inside.sum()) / span
    tokens = tokens_generated_between(req.first_token_s[done], finish, req.output_len[done], lo, t1) / span
    return {
        "steady_requests_per_s": rate,
        "steady_output_tokens_per_s": tokens,
        "steady_output_tokens_per_s_per_device": tokens / n_devices,
    }
