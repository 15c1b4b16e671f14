"""Per-request and aggregate metrics of a serving run, as benchmark clients report them.

- TTFT: first token time minus arrival (the submit time for a closed-loop client);
- TPOT: (finish - first token) / (output tokens - 1), over requests with more than one
  output token (``vllm bench serve`` and ``genai-perf`` exclude one-token outputs);
- inter-token latency: the gap between a request's consecutive tokens, i.e. the step
  times weighted by the decode tokens each step produced;
- end-to-end latency: finish minus arrival;
- throughput over the run's duration (first arrival to last finish): requests/s and
  output tokens/s (per device too);
- steady-state throughput (open loop): requests finishing inside the arrival span after its
  first 10%, over that window, which a short run's ramp-up and drain do not bias;
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
) -> dict[str, Any]:
    """The aggregate latency and throughput figures of a finished run, as a streaming client
    sees them: ``output_lag_steps`` engine steps after the engine produced each token."""
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
    metrics.update(_steady(req, n_devices))
    return metrics


STEADY_MIN_SHARE = 0.5
"""Least share of a run's completed requests its steady window must hold to stand for the run."""


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


def _steady(req: Requests, n_devices: int) -> dict[str, float]:
    """Throughput at steady state, over the arrival span after its first 10%: requests finishing
    inside that window, and the output tokens generated inside it. A request's first token comes
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
    lo = t0 + 0.1 * (t1 - t0)
    finish = req.finish_s[done]
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
