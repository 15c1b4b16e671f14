"""How far two sources that measured the same configuration disagree: a floor under the error of
any model that, like hwsim, sees only what the rows state.

Two measured rows are the same configuration when they resolve to the same ``Condition``
(device, model, precision, framework, phase, metric, lengths, parallelism and every serving
setting their notes state): hwsim prices them alike, so where their sources differ, at least one
of them is missed by the difference, whatever the model. Sources are grouped as the fit groups
them (``validation.source_group``: MLPerf logs of one round are one source). For each configuration
that two or more sources measured, each source's value is the median of its rows, and each pair of
sources gives a spread ``s``, larger over smaller less one: the error one source's value would
have as a prediction of the other's. No single prediction meets both: the best one (their harmonic
mean) still misses each by ``s / (2 + s)`` (its floor).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import numpy as np
import pandas as pd

from roofline.validation import resolve, source_group


def config_key(row: pd.Series) -> str | None:
    """The configuration a measured row resolves to, as a canonical string (None if it does not
    resolve)."""
    cond = resolve(row)
    if isinstance(cond, str):
        return None
    return json.dumps(dataclasses.asdict(cond), sort_keys=True, default=str)


def source_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (configuration, pair of sources that both measured it): the configuration (a
    number), its device, model and metric, the two sources, each one's median value and their spread."""
    keyed = frame.assign(
        key=[config_key(row) for _, row in frame.iterrows()],
        group=frame["source"].map(source_group),
    ).dropna(subset=["key"])
    out = []
    for n, (_, rows) in enumerate(keyed.groupby("key", sort=False)):
        values = rows.groupby("group", sort=True)["value"].median()
        first = rows.iloc[0]
        for (a, va), (b, vb) in itertools.combinations(values.items(), 2):
            out.append(
                {
                    "configuration": n,
                    "hardware": first["hardware"],
                    "model": first["model"],
                    "metric": first["metric"],
                    "source_a": a,
                    "source_b": b,
                    "value_a": float(va),
                    "value_b": float(vb),
                    "spread": float(max(va, vb) / min(va, vb) - 1.0),
                }
            )
    columns = [
        "configuration",
        "hardware",
        "model",
        "metric",
        "source_a",
        "source_b",
        "value_a",
        "value_b",
        "spread",
    ]
    return pd.DataFrame(out, columns=columns)


def agreement(frame: pd.DataFrame) -> dict[str, Any]:
    """``spread_summary`` of the source pairs of ``frame``'s rows with a positive value."""
    return spread_summary(source_pairs(frame.loc[frame["value"] > 0]))


def spread_summary(pairs: pd.DataFrame) -> dict[str, Any]:
    """Pairs of sources that measured one configuration (``source_pairs``), how many
    configurations they cover, and the median and 90th percentile of their spread and of its
    floor (None where no configuration has two sources)."""
    spread = pairs["spread"].to_numpy()
    floor = spread / (2.0 + spread)

    def stat(x: np.ndarray, q: float) -> float | None:
        return round(float(np.quantile(x, q)), 4) if len(x) else None

    return {
        "pairs": int(len(pairs)),
        "configurations": int(pairs["configuration"].nunique()),
        "median_spread": stat(spread, 0.5),
        "p90_spread": stat(spread, 0.9),
        "median_floor": stat(floor, 0.5),
        "p90_floor": stat(floor, 0.9),
    }
