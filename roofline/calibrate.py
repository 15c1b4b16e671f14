"""``hwsim calibrate``: fit the few efficiency parameters per device class on the measured set.

For each arch and device class, the parameters in ``FITTABLE`` (memory efficiency, then
compute efficiency, then kernel overhead, one more for every ``ROWS_PER_PARAM`` covered
rows of that class) are fitted with scipy's bounded least squares on ``log(predicted /
measured)`` over the class's covered rows of the shipped measured set. Predictions use
the estimate's code path (``roofline.validation``). Classes with too few rows keep their
stated defaults.

The honest figure is the leave-one-source-out error: for every source, refit without its
rows and predict them. Both errors are written beside the fitted values in
``hwmodels/calibration/<arch>_fitted.yaml``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from hwmodels.calibration.params import (
    FITTABLE,
    class_params,
    fitted,
    fitted_path,
    overridden,
    without_fitted,
)
from hwmodels.device_spec import catalog
from roofline.validation import Condition, load_measured, predict, resolve, source_key

ARCHES = ("gpu", "cpu")
ROWS_PER_PARAM = 4
BOUNDS = {
    "memory_efficiency": (0.05, 1.0),
    "compute_efficiency": (0.05, 1.0),
    "kernel_overhead_us": (0.0, 50.0),
}
"""Physical ranges: an achievable fraction lies in [0.05, 1]; a launch overhead in [0, 50] us."""


def covered_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose conditions resolve and whose prediction exists, with arch, class and source."""
    out = []
    for _, row in frame.iterrows():
        cond = resolve(row)
        if isinstance(cond, str):
            continue
        value, _ = predict(cond)
        if value is None or not row["value"] > 0:
            continue
        dev = catalog()[cond.device]
        out.append(
            {
                "id": row["id"],
                "cond": cond,
                "measured": float(row["value"]),
                "arch": dev.arch,
                "device_class": dev.device_class,
                "source": source_key(row["source"]),
            }
        )
    return pd.DataFrame(out)


def _predict_all(conds: list[Condition]) -> np.ndarray:
    return np.array([predict(c)[0] for c in conds], dtype=float)


def fit_class(arch: str, device_class: str, rows: pd.DataFrame) -> dict[str, float]:
    """Least-squares fit of the class's parameters on ``rows``; {} when too few rows."""
    n_params = min(len(FITTABLE), len(rows) // ROWS_PER_PARAM)
    if n_params == 0:
        return {}
    names = FITTABLE[:n_params]
    defaults = class_params(arch)[device_class]
    x0 = np.array([defaults[n].value for n in names])
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    conds, measured = list(rows["cond"]), rows["measured"].to_numpy()

    def residual(x: np.ndarray) -> np.ndarray:
        with overridden(arch, device_class, dict(zip(names, x, strict=True))):
            return np.log(_predict_all(conds) / measured)

    result = least_squares(residual, np.clip(x0, lo, hi), bounds=(lo, hi), x_scale="jac", diff_step=1e-3)
    return {n: float(v) for n, v in zip(names, result.x, strict=True)}


def fit_all(rows: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Fitted values per arch and class: ``{arch: {class: {param: value}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        values = fit_class(arch, cls, group)
        if values:
            out.setdefault(arch, {})[cls] = values
    return out


def _apes(rows: pd.DataFrame, values: dict[str, dict[str, dict[str, float]]]) -> pd.Series:
    """APE of every row under the fitted ``values``."""
    apes = pd.Series(index=rows.index, dtype=float)
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        with overridden(arch, cls, values.get(arch, {}).get(cls, {})):
            apes[group.index] = np.abs(_predict_all(list(group["cond"])) / group["measured"].to_numpy() - 1)
    return apes


def _stats(ape: pd.Series) -> dict[str, Any]:
    return {
        "covered": int(len(ape)),
        "median_ape": round(float(ape.median()), 4),
        "p90_ape": round(float(ape.quantile(0.9)), 4),
        "within_10pct": round(float((ape <= 0.1).mean()), 4),
        "within_25pct": round(float((ape <= 0.25).mean()), 4),
    }


def calibrate(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit on the shipped measured set, compute in-sample and leave-one-source-out errors,
    write ``<arch>_fitted.yaml`` for each arch, and return the record."""
    say = progress or (lambda _msg: None)
    with without_fitted():
        rows = covered_rows(load_measured())
        say(f"{len(rows)} covered rows from {rows['source'].nunique()} sources")
        values = fit_all(rows)
        in_sample = _apes(rows, values)
        loso = pd.Series(index=rows.index, dtype=float)
        for i, (src, held_out) in enumerate(rows.groupby("source")):
            say(f"leave out {i + 1}/{rows['source'].nunique()}: {src[:60]}")
            rest = rows.drop(held_out.index)
            loso[held_out.index] = _apes(held_out, fit_all(rest))
    by_class = {}
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        by_class[f"{arch}/{cls}"] = {
            "in_sample": _stats(in_sample[group.index]),
            "loso": _stats(loso[group.index]),
        }
    sources = sorted(rows["source"].unique())
    record = {
        "fitted_on": (
            f"{len(rows)} covered rows of hwmodels/validation/measured.csv from {len(sources)} sources; "
            f"least squares on log(predicted/measured) per device class, one parameter per "
            f"{ROWS_PER_PARAM} rows of the class (order {', '.join(FITTABLE)}); fewer keep the defaults"
        ),
        "fitted_at": datetime.date.today().isoformat(),
        "errors": {
            "in_sample": _stats(in_sample),
            "leave_one_source_out": _stats(loso),
            "by_class": by_class,
        },
        "loso_ape": {str(rows.loc[i, "id"]): round(float(loso[i]), 4) for i in rows.index},
    }
    for arch in ARCHES:
        arch_rows = rows.loc[rows["arch"] == arch]
        content = {
            "schema_version": 1,
            **record,
            "classes": {c: {k: round(v, 4) for k, v in p.items()} for c, p in values.get(arch, {}).items()},
        }
        if not arch_rows.empty:
            content["errors"] = {
                "in_sample": _stats(in_sample[arch_rows.index]),
                "leave_one_source_out": _stats(loso[arch_rows.index]),
                "by_class": {k: v for k, v in by_class.items() if k.startswith(f"{arch}/")},
            }
            content["loso_ape"] = {str(rows.loc[i, "id"]): round(float(loso[i]), 4) for i in arch_rows.index}
        fitted_path(arch).write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    fitted.cache_clear()
    return record | {"classes": values}
