"""Pareto fronts over two or three of TTFT, TPOT, tokens per $ and tokens per J.

A design is on the front when no other design is at least as good in every objective and
better in one. Rows with a NaN or infinite objective (a device without a price on the
basis, a point that could not be priced) take no part and are counted in the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workloads.errors import ConfigError, closest_names

OBJECTIVES = {
    "ttft_s": "min",
    "tpot_s": "min",
    "e2e_s": "min",
    "tokens_per_usd": "max",
    "tokens_per_j": "max",
    "decode_tokens_per_s": "max",
    "prefill_tokens_per_s": "max",
    "usd_per_million_tokens": "min",
    "energy_j_per_token": "min",
}
"""Metrics a front can be drawn over, and whether lower or higher is better."""


def check_metrics(metrics: Sequence[str]) -> None:
    """Refuse anything but two or three different metrics of ``OBJECTIVES``."""
    if not 2 <= len(metrics) <= 3 or len(set(metrics)) != len(metrics):
        raise ConfigError(f"a Pareto front takes two or three different metrics; got {list(metrics)}")
    for m in metrics:
        if m not in OBJECTIVES:
            near = closest_names(m, OBJECTIVES) if m.strip() else []
            hint = f"closest: {', '.join(near)}; " if near else ""
            raise ConfigError(f"metric {m!r} has no direction; {hint}expected one of {', '.join(OBJECTIVES)}")


def pareto_mask(frame: pd.DataFrame, metrics: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows on the front (lower-is-better after flipping the 'max' metrics)."""
    check_metrics(metrics)
    values = np.column_stack(
        [frame[m].to_numpy(float) * (1.0 if OBJECTIVES[m] == "min" else -1.0) for m in metrics]
    )
    valid = np.isfinite(values).all(axis=1)
    mask = np.zeros(len(frame), dtype=bool)
    idx = np.flatnonzero(valid)
    if not len(idx):
        return mask
    order = idx[np.lexsort(values[idx].T[::-1])]  # by the first metric, ties by the next
    front: list[int] = []
    for i in order:
        v = values[i]
        if front:
            f = values[front]
            if np.any(np.all(f <= v, axis=1) & np.any(f < v, axis=1)) or np.any(np.all(f == v, axis=1)):
                continue
        front.append(i)
    mask[front] = True
    return mask


def pareto_front(
    frame: pd.DataFrame, metrics: Sequence[str], label_columns: Sequence[str] = ("device",)
) -> pd.DataFrame:
    """The rows on the front, sorted by the first metric, each named by ``label_columns``."""
    mask = pareto_mask(frame, metrics)
    front = frame.loc[mask].copy()
    front.insert(
        0, "design", front[list(label_columns)].astype(str).agg(" ".join, axis=1) if len(front) else []
    )
    ascending = OBJECTIVES[metrics[0]] == "min"
    return front.sort_values(list(metrics[:1]), ascending=ascending).reset_index(drop=True)
