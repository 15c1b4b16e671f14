"""Frames of a serving run for the charts in ``roofline.plots``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from roofline.plots import serving_timeline_chart
from sim.serving.serve import ServeResult


def step_frame(result: ServeResult) -> pd.DataFrame:
    """One row per engine step of every replica: start, duration, batch, queue and KV occupancy."""
    frames = []
    for r in result.replicas:
        s = r.steps
        if s is None or not s.start_s:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "replica": r.name,
                    "start_s": s.start_s,
                    "time_s": s.time_s,
                    "n_decode": s.n_decode,
                    "prefill_tokens": s.prefill_tokens,
                    "n_running": s.n_running,
                    "n_waiting": s.n_waiting,
                    "kv_tokens": s.kv_tokens,
                    "kv_fraction": [k / r.kv.tokens for k in s.kv_tokens],
                    "preempted": s.preempted,
                }
            )
        )
    if not frames:
        raise ValueError("the run recorded no steps (serve(..., record=True) records them)")
    return pd.concat(frames, ignore_index=True)


def serving_timeline(result: ServeResult, out: Path, title: str = "") -> list[Path]:
    """The batch-size and KV-occupancy timeline of a run (PNG and SVG)."""
    return serving_timeline_chart(step_frame(result), out, title)
