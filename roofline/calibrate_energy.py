"""``hwsim calibrate --part energy``: fit a device class's static power and on-chip data-movement
energy on measured energy.

What is fitted, on what:

- per arch and device class, two parameters (``PARAMS``): ``static_power_fraction`` (the share of
  the power cap a device draws while it runs, whatever its work: clocks, schedulers, leakage at
  operating temperature) and ``onchip_pJ_per_byte`` (the energy of carrying each byte of
  device-memory traffic across the chip, on top of the DRAM's own energy per bit). The first
  sets the power of a step that does little, the second how it grows with the bytes a step
  moves; rows from small batches (memory-bound, low power) and large ones (near the cap) pin
  down both;
- on the rows of the shipped measured set whose metric is the devices' own energy per output
  token (``ENERGY_METRICS``: NVML counters or power readings, never wall power), for a class
  with at least ``MIN_ROWS`` such rows from at least two sources (so that the
  leave-one-source-out error exists); other classes keep their stated defaults;
- by bounded least squares on ``log(predicted / measured)``, with the time parameters as
  fitted (``<arch>_fitted.yaml``): an energy row's time comes from the same estimate.

The honest figure is the leave-one-source-out error: refit without a source, predict it.
Values and both errors are written to ``hwmodels/calibration/<arch>_energy_fitted.yaml``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from hwmodels.calibration.params import ENERGY_FITTABLE, class_params, fitted, fitted_path, overridden
from hwmodels.device_spec import catalog
from roofline import intervals
from roofline.validation import (
    ENERGY_METRICS,
    HELD_OUT_PREFIXES,
    load_measured,
    operating_point,
    predict,
    resolve,
    source_key,
)
from workloads.errors import HwsimError

PARAMS = ENERGY_FITTABLE
BOUNDS = {"static_power_fraction": (0.05, 0.95), "onchip_pJ_per_byte": (0.0, 400.0)}
"""A device draws some power whenever it is on and never all of its cap regardless of work; a
byte's trip across the chip costs from nothing to several times the DRAM access (400 pJ/B)."""
SCALE = {"static_power_fraction": 0.1, "onchip_pJ_per_byte": 50.0}
"""The step each parameter's least squares takes as one unit."""
MIN_ROWS = 8
"""Energy rows a class needs before its parameters are fitted."""


def energy_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The measured device-energy rows that resolve and predict, with arch, class and source, of
    the device classes whose parameters state every one of ``PARAMS`` (held-out rows,
    ``HELD_OUT_PREFIXES``, are never fitted)."""
    out = []
    for _, row in frame.iterrows():
        if row["metric"] not in ENERGY_METRICS or not row["value"] > 0:
            continue
        if str(row["id"]).startswith(HELD_OUT_PREFIXES):
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
        if not set(PARAMS) <= set(class_params(dev.arch).get(dev.device_class, {})):
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


def _predict(rows: pd.DataFrame, arch: str, cls: str, values: Mapping[str, float]) -> np.ndarray:
    with overridden(arch, cls, values):
        return np.array([predict(c)[0] for c in rows["cond"]], dtype=float)


def fit_class(rows: pd.DataFrame, arch: str, cls: str, start: Mapping[str, float]) -> dict[str, float]:
    """The ``PARAMS`` of one class that best fit ``rows`` (least squares on log ratios, from ``start``)."""
    measured = rows["measured"].to_numpy()
    low, high = ([BOUNDS[p][i] for p in PARAMS] for i in (0, 1))
    result = least_squares(
        lambda x: np.log(_predict(rows, arch, cls, dict(zip(PARAMS, map(float, x), strict=True))) / measured),
        x0=[float(np.clip(start[p], *BOUNDS[p])) for p in PARAMS],
        bounds=(low, high),
        x_scale=[SCALE[p] for p in PARAMS],
    )
    return dict(zip(PARAMS, map(float, result.x), strict=True))


def _stats(ape: pd.Series) -> dict[str, Any]:
    ape = ape.dropna()
    return {
        "rows": int(len(ape)),
        "median_ape": float(ape.median()) if len(ape) else None,
        "p90_ape": float(ape.quantile(0.9)) if len(ape) else None,
        "within_25pct": float((ape <= 0.25).mean()) if len(ape) else None,
    }


def calibrate_energy(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit ``PARAMS`` per class on the shipped energy rows; write each arch's
    ``<arch>_energy_fitted.yaml``; return the values and their in-sample and leave-one-source-out errors."""
    say = progress or (lambda _msg: None)
    rows = energy_rows(load_measured())
    default: dict[tuple[str, str], dict[str, float]] = {}
    values: dict[tuple[str, str], dict[str, float]] = {}
    at_default = pd.Series(index=rows.index, dtype=float)
    in_sample = pd.Series(index=rows.index, dtype=float)
    loso = pd.Series(index=rows.index, dtype=float)
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        default[(arch, cls)] = {p: class_params(arch)[cls][p].value for p in PARAMS}
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
            "classes": {
                cls: {p: round(x, 4) for p, x in v.items()} for (a, cls), v in values.items() if a == arch
            },
            "errors": {k: v for k, v in by_class.items() if k.startswith(f"{arch}/")},
        }
        fitted_path(f"{arch}_energy").write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    fitted.cache_clear()
    ranged = rows.loc[loso.notna()]
    coverage = None
    if not ranged.empty:
        predicted = ((loso[ranged.index] + 1.0) * ranged["measured"]).to_numpy()
        coverage = intervals.write_phase(
            intervals.residual_rows(ranged, predicted),
            "energy",
            f"the leave-one-source-out predictions of {len(ranged)} energy rows from "
            f"{ranged['source'].nunique()} sources (roofline/calibrate_energy.py)",
        )
    return {"fitted_on": fitted_on, "date": today, "by_class": by_class, "intervals": coverage}
