"""``hwsim calibrate``: fit the few efficiency parameters per device class on the measured set.

What is fitted, on what:

- per arch and device class, the parameters in ``FITTABLE`` that the class's rows can pin
  down (``identifiable``); the others keep their stated defaults;
- on every covered row of the shipped measured set, by
  scipy's bounded least squares on ``log(predicted / measured)``, class by class, each row's
  squared residual weighted by ``SOURCE_WEIGHT`` so that one vendor's large table does not set
  a class alone. Offline rows keep the operating point (batch) chosen with the default
  parameters.

The honest figure is the leave-one-source-out error: for every source, refit without its
rows and predict them. For hardware nobody has measured, the leave-one-family-out error
(``hwmodels/validation/families.yaml``: refit without every row of a device family, predict
them), and the same with the family's measured kernel curves set aside too. Both errors are written with the fitted values to
``hwmodels/calibration/<arch>_fitted.yaml``; ``validation_fitted.yaml`` records the
``hwsim validate`` summary right after the fit. The leave-one-source-out predictions also
give every prediction its 10th-90th percentile range (``roofline.intervals``,
``intervals_fitted.yaml``, with the range's own held-out coverage).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from hwmodels.calibration.curves import architecture, gemm_curve, without_curves
from hwmodels.calibration.params import (
    class_params,
    fitted,
    fitted_path,
    framework_terms,
    overridden,
    without_fitted,
)
from hwmodels.device_spec import catalog
from roofline import intervals
from roofline.forked import forked_map
from roofline.source_agreement import agreement
from roofline.validation import (
    ENERGY_METRICS,
    HELD_OUT_PREFIXES,
    Condition,
    ServingPredictor,
    hardware_device,
    load_measured,
    operating_point,
    predict,
    resolve,
    serving_source,
    source_group,
    validate,
)
from workloads.errors import ConfigError, HwsimError
from workloads.quant import Quant
from workloads.shipped import parse_yaml

ARCHES = ("gpu", "cpu", "npu")
ROWS_PER_PARAM = 4
SOURCE_WEIGHT = -0.5
"""Each row's squared residual weighs ``n ** SOURCE_WEIGHT``, ``n`` the rows its source has in the
class: a source of 100 rows counts 10x one row, not 100x. Chosen on the fit rows alone (2026-12-04,
leave-one-source-out, all classes): unweighted 15.1% median / 42.6% p90 / 21.5% median over
sources; ``-0.5`` 15.1% / 40.2% / 19.2%; ``-1`` (every source once) 15.4% / 39.0% / 19.2%. The
datacenter GPUs' two largest sources, NVIDIA's TensorRT-LLM performance tables (70 and 32 of 181
rows), run faster than most others, and with equal row weights they set the class's efficiencies."""
MIN_FAMILIES = {"gpu": 3, "cpu": 2, "npu": 2}
"""Device families (``families.yaml``) a class's rows must span before any of its parameters is
fitted, per arch, or every family the class has in the catalog if it has fewer: a value fitted on
too few families of a larger class describes those parts, not the class, and is not carried to
the class's other devices (they keep the stated defaults). GPU classes need three: leaving a GPU
family out, fits on two families gave 19% median error against 13% with three. CPU classes have
rows from two families each; their leave-one-source-out error is the same either way (25%), and
the fit on both is kept over the STREAM-based default, which puts llama.cpp's Graviton3 decode
77% off."""
BOUNDS = {
    "memory_efficiency": (0.05, 1.0),
    "compute_efficiency": (0.05, 1.0),
    "kernel_overhead_us": (0.0, 50.0),
    "issue_bound_gemm_macs_per_lane_cycle": (0.1, 32.0),
}
"""Physical ranges: an achievable fraction lies in [0.05, 1]; a launch overhead in [0, 50] us;
an issued instruction lane carries 0.1 to 32 multiply-adds per cycle (32: an int8 tensor
instruction's share at 4096 MACs per 128-lane SM-cycle)."""

Values = dict[tuple[str, str], dict[str, float]]
"""``{(arch, class): {param: value}}``."""


def covered_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Fit rows: time and rate rows that resolve and predict (energy rows are fitted apart,
    ``roofline.calibrate_energy``; ``HELD_OUT_PREFIXES`` rows are never fitted), with arch, class
    and source; offline rows get the batch chosen with the default parameters."""
    out = []
    for _, row in frame.iterrows():
        if str(row["id"]).startswith(HELD_OUT_PREFIXES):
            continue
        cond = resolve(row)
        if isinstance(cond, str) or not row["value"] > 0 or cond.metric in ENERGY_METRICS:
            continue  # energy rows pin no time parameter (roofline.calibrate_energy fits them)
        try:
            cond = operating_point(cond)
        except HwsimError:
            continue
        if predict(cond)[0] is None:
            continue
        dev = catalog()[cond.device]
        out.append(
            {
                "id": row["id"],
                "cond": cond,
                "measured": float(row["value"]),
                "arch": dev.arch,
                "device_class": dev.device_class,
                "source": source_group(row["source"]),
                "family": device_family(cond.device),
            }
        )
    return pd.DataFrame(out)


@lru_cache(maxsize=1)
def families() -> dict[str, list[str]]:
    """``{family: [devices]}`` of the leave-one-family-out error (``hwmodels/validation/families.yaml``)."""
    where = "hwmodels/validation/families.yaml"
    raw = parse_yaml(files("hwmodels.validation").joinpath("families.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected 1")
    unknown = sorted({d for devices in raw["families"].values() for d in devices} - set(catalog()))
    if unknown:
        raise ConfigError(f"{where}: {', '.join(unknown)} not in the catalog")
    return raw["families"]


def device_family(device: str) -> str:
    """The family of ``device`` for leave-one-family-out: its listed family, else itself."""
    return next((f for f, devices in families().items() if device in devices), device)


def leave_one_family_out(
    rows: pd.DataFrame, values: Values, say: Callable[[str], None]
) -> tuple[pd.Series, pd.Series]:
    """Refit without each device family's rows and predict them: the predictions, and the strict
    ones (NaN where the family has no kernel curve) that also price the family without its
    measured kernel curves, as a GPU nobody has profiled."""
    predicted = pd.Series(index=rows.index, dtype=float)
    strict = pd.Series(index=rows.index, dtype=float)
    names = sorted(rows["family"].unique())
    said = _counter(say, "leave out family", len(names))
    for family_predicted, family_strict in forked_map(partial(_without_family, rows, values), names, said):
        predicted[family_predicted.index] = family_predicted
        if family_strict is not None:
            strict[family_strict.index] = family_strict
    return predicted, strict


def _without_family(rows: pd.DataFrame, values: Values, family: str) -> tuple[pd.Series, pd.Series | None]:
    """One family's rows predicted by a refit without them, and (None where no device of the family
    has a kernel curve) the same without its curves."""
    held_out = rows[rows["family"] == family]
    refit = fit(rows.drop(held_out.index), start=values)
    devices = set(held_out["cond"].map(lambda c: c.device))
    strict = None
    if any(architecture(d) for d in devices):
        with without_curves(devices):
            strict = predictions(held_out, refit)
    return predictions(held_out, refit), strict


def _without_source(rows: pd.DataFrame, values: Values, source: str) -> pd.Series:
    """One source's rows predicted by a refit without them."""
    held_out = rows[rows["source"] == source]
    return predictions(held_out, fit(rows.drop(held_out.index), start=values))


def _counter(say: Callable[[str], None], what: str, n: int) -> Callable[[str], None]:
    """A ``forked_map`` progress call that says ``what i/n: name`` as each task is done."""
    done = itertools.count(1)
    return lambda name: say(f"{what} {next(done)}/{n}: {name[:70]}")


def _family_stats(rows: pd.DataFrame, ape: pd.Series) -> dict[str, Any]:
    """Overall and per-family error of held-out predictions (rows without one left out)."""
    ape = ape.dropna()
    if ape.empty:
        return {"covered": 0}
    return {
        **_stats(ape),
        "by_family": {
            f: _stats(ape[g.index.intersection(ape.index)]) for f, g in rows.loc[ape.index].groupby("family")
        },
    }


@contextlib.contextmanager
def applied(values: Values) -> Iterator[None]:
    """Use ``values`` for every class inside the block."""
    with contextlib.ExitStack() as stack:
        for (arch, cls), params in values.items():
            stack.enter_context(overridden(arch, cls, params))
        yield


def _predict_all(conds: list[Condition]) -> np.ndarray:
    return np.array([predict(c)[0] for c in conds], dtype=float)


def identifiable(group: pd.DataFrame) -> tuple[str, ...]:
    """The parameters a class's rows can pin down: memory efficiency with ``ROWS_PER_PARAM``
    rows outside prefill (prefill is compute-bound); compute efficiency with that many rows
    outside pure decode (batch-1 decode hardly depends on it) that are not issue-bound and whose GEMMs
    no measured kernel curve prices (``hwmodels/calibration/curves.py``); kernel overhead with
    ``3 * ROWS_PER_PARAM`` rows; the issue-bound GEMM rate with that many quantized prefill rows
    of an issue-bound framework on GPUs whose SM count and clock are known; none unless the rows
    span ``MIN_FAMILIES[arch]`` device families (or all the class has)."""
    arch, cls = group["arch"].iloc[0], group["device_class"].iloc[0]
    in_catalog = {
        device_family(d.name) for d in catalog().values() if (d.arch, d.device_class) == (arch, cls)
    }
    if group["family"].nunique() < min(MIN_FAMILIES[arch], len(in_catalog)):
        return ()
    n = len(group)
    phases = group["cond"].map(lambda c: c.phase)
    not_prefill = int((phases != "prefill").sum())
    issue_bound_rows = group["cond"].map(_issue_bound_gemm_row)
    issue_bound = int(issue_bound_rows.sum())
    # issue-bound rows time their GEMMs by the issue rate, and rows on a device with a measured GEMM
    # curve by that curve, so neither can pin compute efficiency
    curve_rows = group["cond"].map(_curve_row)
    not_decode = int(((phases != "decode") & ~issue_bound_rows & ~curve_rows).sum())
    names = []
    if not_prefill >= ROWS_PER_PARAM:
        names.append("memory_efficiency")
    if not_decode >= ROWS_PER_PARAM:
        names.append("compute_efficiency")
    if n >= 3 * ROWS_PER_PARAM:
        names.append("kernel_overhead_us")
    if issue_bound >= ROWS_PER_PARAM:
        names.append("issue_bound_gemm_macs_per_lane_cycle")
    return tuple(names)


def _curve_row(cond: Condition) -> bool:
    """A row whose GEMMs a measured kernel curve prices (its device and math format have one)."""
    return gemm_curve(cond.device, Quant.from_name(cond.precision).compute_format) is not None


def _issue_bound_gemm_row(cond: Condition) -> bool:
    """A quantized prefill row of a framework with issue-bound GEMMs on a GPU with SM data."""
    if cond.phase == "decode" or not cond.framework:
        return False
    kernels = framework_terms(framework_terms(cond.framework).kernels)
    device = catalog()[cond.device]
    integer_weights = Quant.from_name(cond.precision).weight_bits <= 8
    return kernels.issue_bound_quantized_gemm and "gpu" in device.extra and integer_weights


def fit(rows: pd.DataFrame, start: Values | None = None) -> Values:
    """Least-squares fit of each class's identifiable parameters on its rows."""
    values: Values = {}
    for (arch, cls), group in rows.groupby(["arch", "device_class"]):
        names = identifiable(group)
        if not names:
            continue
        defaults = class_params(arch)[cls]
        current = (start or {}).get((arch, cls), {})
        x0 = np.array([current.get(n, defaults[n].value) for n in names])
        lo = np.array([BOUNDS[n][0] for n in names])
        hi = np.array([BOUNDS[n][1] for n in names])
        conds, measured = list(group["cond"]), group["measured"].to_numpy()
        weight = np.sqrt(source_weights(group["source"]))

        def residual(x, arch=arch, cls=cls, names=names, conds=conds, measured=measured, weight=weight):
            with overridden(arch, cls, dict(zip(names, x, strict=True))):
                return weight * np.log(_predict_all(conds) / measured)

        result = least_squares(
            residual, np.clip(x0, lo, hi), bounds=(lo, hi), x_scale="jac", diff_step=1e-3, max_nfev=60
        )
        values[(arch, cls)] = dict(zip(names, map(float, result.x), strict=True))
    return values


def source_weights(sources: pd.Series) -> np.ndarray:
    """Each row's weight in the least squares, ``n ** SOURCE_WEIGHT`` for the ``n`` rows of its
    source among ``sources``, scaled to a mean of 1."""
    n = sources.map(sources.value_counts()).to_numpy(dtype=float)
    weight = n**SOURCE_WEIGHT
    return weight / weight.mean()


def predictions(rows: pd.DataFrame, values: Values) -> pd.Series:
    """The prediction of every row under ``values``."""
    with applied(values):
        return pd.Series(_predict_all(list(rows["cond"])), index=rows.index)


def apes(rows: pd.DataFrame, predicted: pd.Series) -> pd.Series:
    """APE of every row's prediction."""
    return (predicted / rows["measured"] - 1).abs()


def _stats(ape: pd.Series) -> dict[str, Any]:
    """Count, median and p90 APE, shares within 10% and 25% (None for no rows, not NaN)."""
    if ape.empty:
        return {"covered": 0, "median_ape": None, "p90_ape": None, "within_10pct": None, "within_25pct": None}
    return {
        "covered": int(len(ape)),
        "median_ape": round(float(ape.median()), 4),
        "p90_ape": round(float(ape.quantile(0.9)), 4),
        "within_10pct": round(float((ape <= 0.1).mean()), 4),
        "within_25pct": round(float((ape <= 0.25).mean()), 4),
    }


def held_out_errors(points: pd.DataFrame) -> dict[str, Any]:
    """Error of the rows no fit sees (``HELD_OUT_PREFIXES``), overall, per device family and per
    batch (the prefix: the rows added together), from ``hwsim validate``'s points (time and rate
    rows)."""
    mine = points.loc[points["id"].astype(str).str.startswith(HELD_OUT_PREFIXES)]
    mine = mine.loc[~mine["metric"].isin(ENERGY_METRICS)]
    covered = mine.loc[mine["covered"]]
    families = covered["hardware"].map(lambda h: device_family(hardware_device(h)))
    batches = covered["id"].astype(str).map(lambda i: next(p for p in HELD_OUT_PREFIXES if i.startswith(p)))
    return {
        "rows": int(len(mine)),
        **_stats(covered["ape"]),
        "ranges": _range_coverage(covered),
        "by_family": {f: _stats(g["ape"]) for f, g in covered.groupby(families)},
        "by_batch": {
            b: {**_stats(g["ape"]), "ranges": _range_coverage(g)} for b, g in covered.groupby(batches)
        },
    }


def _range_coverage(points: pd.DataFrame) -> dict[str, Any]:
    """Of ``points`` with a 10th-90th percentile range, how many, the share whose measured value
    lies inside it (80% is the aim) and the median width (high / low)."""
    ranged = points.loc[points["predicted_low"].notna() & points["predicted_high"].notna()]
    inside = (ranged["measured"] >= ranged["predicted_low"]) & (
        ranged["measured"] <= ranged["predicted_high"]
    )
    width = ranged["predicted_high"] / ranged["predicted_low"]
    return {
        "with_range": int(len(ranged)),
        "inside": round(float(inside.mean()), 4) if len(ranged) else None,
        "median_width": round(float(width.median()), 4) if len(ranged) else None,
    }


def server_residual_rows(serving: ServingPredictor, say: Callable[[str], None]) -> pd.DataFrame | None:
    """The interval residuals (``intervals.residual_rows``) of the shipped rows that no fit holds
    out and the simulation covers: ``server`` rows, and offline rows whose burst it runs
    (``validation.burst_outgrows_pool``); None if there are none."""
    measured = load_measured()
    served = measured.loc[
        measured["phase"].isin(("server", "offline"))
        & ~measured["id"].astype(str).str.startswith(HELD_OUT_PREFIXES)
        & ~measured["metric"].isin(ENERGY_METRICS)
    ]
    say(f"simulating the server rows among {len(served)} server and offline rows for their ranges")
    out = []
    for _, row in served.iterrows():
        cond = resolve(row)
        if isinstance(cond, str):
            continue
        try:
            cond = operating_point(cond)
            if cond.serving is None:
                continue  # priced on the analytic path, with the fit rows
            value, _ = predict(cond, serving)
        except HwsimError:
            continue
        if value is not None and np.isfinite(value) and row["value"] > 0:
            out.append(
                {
                    "cond": cond,
                    "measured": float(row["value"]),
                    "source": serving_source(row["source"]),
                    "p": value,
                }
            )
    if not out:
        return None
    frame = pd.DataFrame(out)
    return intervals.residual_rows(frame, frame["p"].to_numpy())


def record_validation(serving: ServingPredictor | None, today: str) -> dict[str, Any]:
    """Validate the shipped measured set under the shipped fits and record it, with the held-out
    rows' errors and the sources' agreement, in ``validation_fitted.yaml`` (the README's accuracy
    block reads it); the recorded figures. ``calibrate`` calls it after every fit; a new batch of
    held-out rows, which no fit sees, changes only what it records."""
    report = validate(serving=serving)
    recorded = {
        k: report[k] for k in ("rows", "covered", "median_ape", "p90_ape", "within_10pct", "within_25pct")
    }
    fitted_path("validation").write_text(
        yaml.safe_dump(
            {
                "schema_version": 1,
                "recorded_at": today,
                "note": "hwsim validate on the shipped measured set right after the last fit; a test keeps the median "
                "APE within 2 points of this figure",
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in recorded.items()},
                "held_out": held_out_errors(pd.DataFrame(report["points"])),
                "source_agreement": agreement(load_measured()),
            },
            sort_keys=False,
            width=120,
        )
    )
    return recorded


def calibrate(
    progress: Callable[[str], None] | None = None, serving: ServingPredictor | None = None
) -> dict[str, Any]:
    """Fit on the shipped measured set, compute in-sample and leave-one-source-out errors,
    write the fitted files and return the record. ``serving`` predicts the ``server`` rows of the
    validation record (``sim.serving.validation.predict_serving``, as ``hwsim validate`` does);
    without it they are recorded as not covered."""
    say = progress or (lambda _msg: None)
    with without_fitted():
        rows = covered_rows(load_measured())
        n_sources = rows["source"].nunique()
        say(f"{len(rows)} fit rows from {n_sources} sources; fitting")
        values = fit(rows)
        in_sample = apes(rows, predictions(rows, values))
        loso_predicted = pd.Series(index=rows.index, dtype=float)
        sources = sorted(rows["source"].unique())
        said = _counter(say, "leave out", n_sources)
        for held_out in forked_map(partial(_without_source, rows, values), sources, said):
            loso_predicted[held_out.index] = held_out
        loso = apes(rows, loso_predicted)
        lofo_predicted, strict_predicted = leave_one_family_out(rows, values, say)
        lofo, lofo_strict = apes(rows, lofo_predicted), apes(rows, strict_predicted)
    fitted_on = (
        f"{len(rows)} rows of hwmodels/validation/measured.csv from {n_sources} sources; least squares on "
        f"log(predicted/measured), each row weighted n^{SOURCE_WEIGHT} for the n rows of its source, per device "
        "class whose rows span 3+ device families on GPUs, 2+ on CPUs and NPUs (or all it has): "
        "memory_efficiency "
        f"with {ROWS_PER_PARAM}+ rows outside prefill, compute_efficiency with {ROWS_PER_PARAM}+ rows outside batch-1 "
        "decode on devices without a measured GEMM curve, kernel_overhead_us with "
        f"{3 * ROWS_PER_PARAM}+ rows, issue_bound_gemm_macs_per_lane_cycle with {ROWS_PER_PARAM}+ quantized prefill "
        "rows of llama.cpp on GPUs with known SM (CU) count, issue lanes and clock; other parameters keep their defaults"
    )
    today = datetime.date.today().isoformat()
    by_class = {
        f"{a}/{c}": {"in_sample": _stats(in_sample[g.index]), "leave_one_source_out": _stats(loso[g.index])}
        for (a, c), g in rows.groupby(["arch", "device_class"])
    }
    for arch in ARCHES:
        idx = rows.index[rows["arch"] == arch]
        content = {
            "schema_version": 1,
            "fitted_on": fitted_on,
            "fitted_at": today,
            "classes": {
                c: {k: round(v, 4) for k, v in p.items()} for (a, c), p in values.items() if a == arch
            },
            "errors": {
                "in_sample": _stats(in_sample[idx]),
                "leave_one_source_out": _stats(loso[idx]),
                "leave_one_family_out": _family_stats(rows.loc[idx], lofo[idx]),
                "leave_one_family_out_without_kernel_curves": _family_stats(rows.loc[idx], lofo_strict[idx]),
                "by_class": {k: v for k, v in by_class.items() if k.startswith(f"{arch}/")},
            },
            "loso_ape": {str(rows.loc[i, "id"]): round(float(loso[i]), 4) for i in idx},
        }
        fitted_path(arch).write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    fitted.cache_clear()
    say("interval table and its held-out coverage")
    residuals = intervals.residual_rows(rows, loso_predicted)
    served = server_residual_rows(serving, say) if serving else None
    coverage = intervals.write(
        residuals if served is None else pd.concat([residuals, served], ignore_index=True),
        f"the leave-one-source-out predictions of the {len(rows)} fit rows from {n_sources} sources"
        + ("" if served is None else f" and the simulated predictions of {len(served)} server rows"),
    )
    recorded = record_validation(serving, today)
    return {
        "fitted_on": fitted_on,
        "classes": {f"{a}/{c}": p for (a, c), p in values.items()},
        "errors": {
            "in_sample": _stats(in_sample),
            "leave_one_source_out": _stats(loso),
            "leave_one_family_out": _family_stats(rows, lofo),
            "leave_one_family_out_without_kernel_curves": _family_stats(rows, lofo_strict),
            "by_class": by_class,
        },
        "validation": recorded,
        "intervals": coverage,
    }
