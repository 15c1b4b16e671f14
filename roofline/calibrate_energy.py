"""``hwsim calibrate --part energy``: fit the static power fraction per device class on measured energy.

What is fitted, on what:

- per arch and device class, ``static_power_fraction`` (the share of the power cap a device
  draws while it runs, whatever its FLOPs and memory bytes: clocks, schedulers, caches and
  on-chip data movement that the per-action energies do not count, leakage at operating
  temperature), the one energy parameter the class's measured energy pins down;
- on the rows of the shipped measured set whose metric is the devices' own energy per output
  token (``ENERGY_METRICS``: NVML counters or power readings, never wall power), for a class
  with at least ``MIN_ROWS`` such rows from at least two sources (so that the
  leave-one-source-out error exists); other classes keep their stated default;
- by bounded least squares on ``log(predicted / measured)``, with the time parameters as
  fitted (``<arch>_fitted.yaml``): an energy row's time comes from the same estimate.

The honest figure is the leave-one-source-out error: refit without a source, predict it.
Values and both errors are written to ``hwmodels/calibration/<arch>_energy_fitted.yaml``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from hwmodels.calibration.params import class_params, fitted, fitted_path, overridden
from hwmodels.device_spec import catalog
from roofline.validation import ENERGY_METRICS, load_measured, operating_point, predict, resolve, source_key
from workloads.errors import HwsimError

PARAM = "static_power_fraction"
BOUNDS = (0.05, 0.95)
"""A device draws some power whenever it is on and never all of its cap regardless of work."""
MIN_ROWS = 8
"""Energy rows a class needs before its static power fraction is fitted."""


def energy_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The measured device-energy rows that resolve and predict, with arch, class and source."""
    out = []
    for _, row in frame.iterrows():
        if row["metric"] not in ENERGY_METRICS or not row["value"] > 0:
            continue
        cond = resolve(row)
        if isinstance(cond, str):
            continue
        try:
            cond = operating_point(cond)
        except HwsimError:
            continue
        if predict(cond)[0] is None:
            continue
        dev = catalog()[cond.device]
        if PARAM not in class_params(dev.arch).get(dev.device_class, {}):
            continue
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
    return pd.DataFrame(out, columns=["id", "cond", "measured", "arch", "device_class", "source"])


def _predict(rows: pd.DataFrame, arch: str, cls: str, value: float) -> np.ndarray:
    with overridden(arch, cls, {PARAM: value}):
        return np.array([predict(c)[0] for c in rows["cond"]], dtype=float)


def fit_class(rows: pd.DataFrame, arch: str, cls: str, start: float) -> float:
    """The static power fraction of one class that best fits ``rows`` (least squares on log ratios)."""
    measured = rows["measured"].to_numpy()
    result = least_squares(
        lambda x: np.log(_predict(rows, arch, cls, float(x[0])) / measured),
        x0=[float(np.clip(start, *BOUNDS))],
        bounds=([BOUNDS[0]], [BOUNDS[1]]),
        x_scale=[0.1],
    )
    return float(result.x[0])


def _stats(ape: pd.Series) -> dict[str, Any]:
    ape = ape.dropna()
    return {
        "rows": int(len(ape)),
        "median_ape": float(ape.median()) if len(ape) else None,
        "p90_ape": float(ape.quantile(0.9)) if len(ape) else None,
        "within_25pct": float((ape <= 0.25).mean()) if len(ape) else None,
    }


def calibrate_energy(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit ``static_power_fraction`` per class on the shipped energy rows; write each arch's
    ``<arch>_energy_fitted.yaml``; return the values and their in-sample and leave-one-source-out errors."""
    say = progress or (lambda _msg: None)
    rows = energy_rows(load_measured())
    default: dict[tuple[str, str], float] = {}
    values: dict[tuple[str, str], float] = {}
    at_default = pd.Series(index=rows.index, dtype=float)
    in_sample = pd.Series(index=rows.index, dtype=float)
    loso = pd.Series(index=rows.index, dtype=float)
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        default[(arch, cls)] = class_params(arch)[cls][PARAM].value
        at_default[group.index] = _predict(group, arch, cls, default[(arch, cls)]) / group["measured"] - 1
        sources = group["source"].nunique()
        if len(group) < MIN_ROWS or sources < 2:
            say(f"{arch}/{cls}: {len(group)} energy rows from {sources} source(s): not fitted")
            continue
        say(f"{arch}/{cls}: {len(group)} energy rows from {sources} sources; fitting")
        value = fit_class(group, arch, cls, default[(arch, cls)])
        values[(arch, cls)] = value
        in_sample[group.index] = _predict(group, arch, cls, value) / group["measured"] - 1
        for src, held_out in group.groupby("source"):
            say(f"  leave out {src[:70]}")
            refit = fit_class(group.drop(held_out.index), arch, cls, value)
            loso[held_out.index] = _predict(held_out, arch, cls, refit) / held_out["measured"] - 1
    fitted_on = (
        f"{len(rows)} rows of hwmodels/validation/measured.csv whose metric is the devices' own energy per output "
        f"token ({', '.join(ENERGY_METRICS)}) from {rows['source'].nunique()} sources; least squares on "
        f"log(predicted/measured) per device class with {MIN_ROWS}+ rows from 2+ sources, time parameters as fitted"
    )
    by_class = {
        f"{arch}/{cls}": {
            "fitted": values.get((arch, cls)),
            "default": default[(arch, cls)],
            "sources": sorted(group["source"].unique()),
            "at_default": _stats(at_default[group.index].abs()),
            "in_sample": _stats(in_sample[group.index].abs()),
            "leave_one_source_out": _stats(loso[group.index].abs()),
            "leave_one_source_out_by_source": {
                src: _stats(loso[held_out.index].abs()) for src, held_out in group.groupby("source")
            },
        }
        for (arch, cls), group in rows.groupby(["arch", "device_class"])
    }
    today = datetime.date.today().isoformat()
    for arch in sorted({a for a, _ in default}):
        content = {
            "schema_version": 1,
            "fitted_on": fitted_on,
            "date": today,
            "classes": {cls: {PARAM: round(v, 4)} for (a, cls), v in values.items() if a == arch},
            "errors": {k: v for k, v in by_class.items() if k.startswith(f"{arch}/")},
        }
        fitted_path(f"{arch}_energy").write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    fitted.cache_clear()
    return {"fitted_on": fitted_on, "date": today, "by_class": by_class}
