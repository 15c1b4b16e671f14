"""A 10th-90th percentile range on every prediction, from leave-one-source-out residuals.

``hwsim calibrate`` predicts every fit row of the measured set with the parameters fitted
without the row's source; the residual of a row is ``r = log(measured / predicted)``. Per
group of rows, ``hwmodels/calibration/intervals_fitted.yaml`` keeps the row count, the 10th and
90th percentiles of ``r``, the group's shift ``s``, ``BIAS_SHARE`` of its median (none for a
group from one source), and its half-width ``h``, the 80th percentile of ``|r - s|``; each
percentile counts every source once (``source_weights``), except in the server phases. A prediction's range is its value
times ``exp(s - h)`` to ``exp(s + h)`` (in the orientation of a time: a rate's is inverted),
stretched to hold the prediction itself, with ``s`` and ``h`` from the first group of its own
that holds at least ``MIN_ROWS`` rows, no more than ``MAX_SOURCE_SHARE`` of them from one source
(``LEVELS``; the coarsest level takes any source mix):

1. (device class, phase, framework, weight format),
2. (device class, phase),
3. (phase).

A ``server`` row (a simulated request stream) takes the groups of ``server-ttft``,
``server-tpot``, ``server-e2e`` or ``server-rate`` by its metric; their residuals are those of
the shipped server rows that no fit holds out, predicted by the simulation (not left out of the
serving fit, whose three vLLM terms see them: the one exception to leave-one-source-out).

With no such group the range is NaN (``null`` in JSON), never a guess. ``phase`` is the
measured row's phase (prefill, decode, e2e, offline, kernel), or ``energy`` for a J/token
row; an estimate's TTFT and prefill tokens/s take the prefill groups, its TPOT and decode
tokens/s the decode groups, its end-to-end time the e2e groups and its J/token the energy
groups. Residuals are taken in the orientation of a time (or an energy): a rate's ratio is
inverted, so one group serves TTFT and prefill tokens/s alike.

Why half the bias, not all or none: a group's bias comes mostly from its largest sources, and a
new source shares some of it, not all. On the 2026-12-02 fit, with each source held out, the
10th-90th percentile ranges (all of the bias; stretched to contain the prediction) held 59-70% of
the held-out rows at a median width of 1.9x. On the 2026-12-05 fit (444 fit rows and 152 server
rows), ranges about the prediction (no shift) held 79% at 2.06x, shifted by the whole median
74% at 1.79x, by half of it (``BIAS_SHARE``) 78% at 1.84x: the server groups, whose bias is
largest, narrow most (TTFT 47x -> 17x at the same 79%).

Why every source counts once: a range says how far a new source may fall from the prediction,
and a group that is mostly one large source that agrees with itself (70 of the 93 offline fit
rows are one TensorRT-LLM table) measured mostly that agreement. Counted by rows, on the
2026-12-07 fit, the table held 81.0% of the fit rows with each source left out at a median
width of 1.78x, but only 70.0% of the 1,282 held-out rows (vf-vn) at 2.06x, and 39% of their 315
offline rows at 1.22x. Counted by source it holds 80.0% of the fit rows at 1.96x, and 79.2% of
the held-out rows at 2.05x (offline 70% at 1.39x; the 746 rows outside the server phases 80% at
1.62x, from 65% at 1.49x). This was chosen after seeing those held-out rows, so they are no
longer a blind test of the choice. The server phases keep counting rows: their residuals are
the simulation's at each row's operating point, not left out by source, and counted by source
their 12 MLPerf TTFT rows, near saturation, whose residuals reach a factor of 20-40, would set the
range of every stream (TTFT 3.9x -> 9.0x wide, with coverage already 71%).

For each decade by which the batch, the context (prompt tokens for prefill; prompt plus half
the output otherwise, the mean context of decode steps), the device's peak FLOP/s in the math
format or its memory bandwidth lies outside the span of the group's rows (the farthest of the
four counts), both ends move out by a further factor of ``WIDEN_PER_DECADE``.

The table is fitted on leave-one-source-out residuals, never in-sample ones, and its own
coverage is measured the same way (``held_out_coverage``): for each source, the table of the
other sources' rows is applied to that source's rows. (The other rows' residuals come from
parameter fits that did include the held-out source; refitting the parameters twice per pair
of sources would cost 26 times more for a second-order effect.)
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from hwmodels.calibration.params import fitted_path
from hwmodels.device_spec import DeviceSpec, catalog
from workloads.errors import ConfigError
from workloads.quant import Quant
from workloads.shipped import parse_yaml

if TYPE_CHECKING:
    import pandas as pd

    from roofline.validation import Condition

MIN_ROWS = 12
"""A group gives a range only with at least this many rows (fewer: the next coarser group)."""
MAX_SOURCE_SHARE = 0.8
"""A group below the coarsest level gives a range only when its largest source holds at most
this share of its rows (more: the next coarser group): a group that is mostly one source
measures how tightly that source agrees with itself, not how far a new source may fall."""
LEVELS = (("device_class", "phase", "framework", "format"), ("device_class", "phase"), ("phase",))
"""Group keys, finest first."""
KEYS = LEVELS[0]
COVERAGE = 0.8
"""The share of residuals a range holds: 80%, the 10th to the 90th percentile."""
BIAS_SHARE = 0.5
"""The share of a group's median residual a range is shifted by (a stated prior: a new source
shares about half a group's bias; see the module docstring for the held-out comparison)."""
MIN_SOURCES_FOR_SHIFT = 2
"""A group of rows from fewer sources is not shifted: its median is one source's bias, which
another source need not share at all (held out, the two energy sources' shifted ranges held 64%
of the other's rows, unshifted 94%)."""
WIDEN_PER_DECADE = 1.2
"""Each decade outside a group's fitted span of batch, context, peak FLOP/s or memory
bandwidth moves both ends of the range out by this factor (a stated prior; held out, it
raises the coverage of sources outside the others' span, ``held_out_coverage``)."""
SPAN = ("batch", "context", "peak_flop_per_s", "mem_bw_bytes_per_s")
"""The operating-point dimensions a group records the span of."""
_SPAN_YAML = {"batch": 1.0, "context": 1.0, "peak_tflops": 1e12, "mem_bw_GBps": 1e9}
"""The same dimensions in the YAML file, in its human units (value x factor = SI)."""
ESTIMATE_RANGES = {
    "ttft_s": "prefill",
    "tpot_s": "decode",
    "e2e_s": "e2e",
    "prefill_tokens_per_s": "prefill",
    "decode_tokens_per_s": "decode",
    "energy_j_per_token": "energy",
}
"""The ``Estimate`` fields that carry ``<field>_low`` and ``<field>_high``, and the phase whose groups they use."""


def path() -> Path:
    """``intervals_fitted.yaml`` in the folder of the fitted files (``fitted_path``)."""
    return fitted_path("intervals")


@dataclass(frozen=True)
class Group:
    """The residuals ``r = log(measured / predicted)`` (time orientation) of one group of fit
    rows: the row count, the 10th and 90th percentiles of ``r`` (its spread and bias, for the
    record), the shift of the range (``BIAS_SHARE`` of the median of ``r``), its half-width (80th
    percentile of ``|r - shift|``) and the span (min, max) of the rows' ``SPAN``, SI units."""

    rows: int
    q10: float
    q90: float
    half_width: float
    span_min: np.ndarray
    span_max: np.ndarray
    shift: float = 0.0


Table = Mapping[tuple, Group]
"""Groups by key: a tuple over ``KEYS`` with None where the level does not split."""


def weight_format(quant: Quant) -> str:
    """The weight-width bucket of a precision: ``w4`` (4 bits or fewer), ``w8`` or ``w16`` (wider)."""
    bits = quant.weight_bits
    return "w4" if bits <= 4 else "w8" if bits <= 8 else "w16"


SERVER_KINDS = {"ttft_s": "ttft", "tpot_s": "tpot", "e2e_s": "e2e"}
"""The metric kinds of a served stream's rows, each its own interval phase (``server-ttft`` ...;
any rate is ``server-rate``): queueing widens a TTFT's error far more than a TPOT's."""


def phase_of(phase: str, metric: str, closed_loop: bool = False) -> str:
    """The interval phase of a measured row: ``energy`` for an energy (J/token, or J of a step:
    ``decode_step_j``, ``prefill_j``); for a ``server`` row ``server-`` and its metric's kind
    (``SERVER_KINDS``; a percentile, ``ttft_s_p99``, takes its mean's group), where a ``closed_loop``'s rate takes the end-to-end kind: with N requests
    always in flight its rate is N over their mean end-to-end latency (Little's law), so it errs
    as that latency does, while an open loop that keeps up serves its offered load whatever its
    engine; else its phase."""
    if metric == "j_per_token" or metric.endswith("_j"):
        return "energy"
    if phase == "server":
        return f"server-{SERVER_KINDS.get(mean_metric(metric), 'e2e' if closed_loop else 'rate')}"
    return phase


def mean_metric(metric: str) -> str:
    """The metric a percentile over requests is of (``ttft_s_p99`` -> ``ttft_s``); any other
    metric itself."""
    return metric.rsplit("_p", 1)[0] if re.fullmatch(r".+_p\d+", metric) else metric


def is_rate(metric: str) -> bool:
    """Whether a metric is a rate (per second, also per device: ``output_tokens_per_s_per_device``),
    whose residual is inverted into time orientation."""
    return re.search(r"_per_s(_per_\w+)?$", metric) is not None


def context_of(phase: str, input_len: Any, output_len: Any) -> Any:
    """Tokens of context, for the span: the prompt for prefill, else prompt plus half the output."""
    return input_len if phase == "prefill" else input_len + np.asarray(output_len) / 2.0


def device_point(device: DeviceSpec, quant: Quant) -> tuple[float, float]:
    """(peak FLOP/s in the precision's math format, memory bandwidth in bytes/s); NaN where the
    catalog has no such peak (that dimension then never widens a range)."""
    peak = device.peak_flop_per_s.get(device.math_format(quant.compute_format), np.nan)
    return float(peak), float(device.memory.bw_bytes_per_s)


def source_weights(sources: pd.Series, phase: str) -> np.ndarray:
    """Each row's weight in its group's percentiles: ``1 / n`` for the ``n`` rows of its source in
    the group, so every source counts once, in a phase whose residuals are leave-one-source-out
    (a range answers how far a new source may fall, which a source of 70 rows that agree with
    each other does not measure 70 times); 1 for a ``server-`` phase, whose residuals are the
    simulation's at each row's own operating point, not left out by source."""
    if phase.startswith("server-"):
        return np.ones(len(sources))
    return 1.0 / sources.map(sources.value_counts()).to_numpy(dtype=float)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: Any) -> Any:
    """The ``q`` quantile(s) of ``values`` with ``weights``: linear between the sorted values
    placed at ``(S_i - w_i) / (S_n - w_n)`` (``S_i`` the cumulative weight), which for equal
    weights is ``np.quantile``'s default (value ``i`` of ``n`` at ``(i - 1) / (n - 1)``)."""
    order = np.argsort(values, kind="stable")
    x, w = np.asarray(values, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    if len(x) == 1:
        return np.full(np.shape(q), x[0]) if np.ndim(q) else x[0]
    cum = np.cumsum(w)
    at = (cum - w) / (cum[-1] - w[-1])
    return np.interp(q, at, x)


def fit_table(rows: pd.DataFrame) -> dict[tuple, Group]:
    """The groups of ``rows`` with at least ``MIN_ROWS`` rows, at every level, and below the
    coarsest level no more than ``MAX_SOURCE_SHARE`` of them from one source.

    ``rows`` has the columns of ``KEYS`` (framework ``none`` where a row names none), ``SPAN``
    (SI units), ``source`` and ``log_ratio``, the time-oriented ``log(measured / predicted)``."""
    table: dict[tuple, Group] = {}
    for level in LEVELS:
        for values, group in rows.groupby(list(level)):
            if len(group) < MIN_ROWS:
                continue
            if level != LEVELS[-1] and group["source"].value_counts().iloc[0] > MAX_SOURCE_SHARE * len(group):
                continue
            named = dict(zip(level, values, strict=True))
            r = group["log_ratio"].to_numpy()
            w = source_weights(group["source"], named["phase"])
            q10, q90 = weighted_quantile(r, w, [(1 - COVERAGE) / 2, (1 + COVERAGE) / 2])
            several = group["source"].nunique() >= MIN_SOURCES_FOR_SHIFT
            shift = BIAS_SHARE * float(weighted_quantile(r, w, 0.5)) if several else 0.0
            span = group[list(SPAN)].to_numpy(dtype=float)
            table[tuple(named.get(k) for k in KEYS)] = Group(
                len(group),
                float(q10),
                float(q90),
                float(weighted_quantile(np.abs(r - shift), w, COVERAGE)),
                np.nanmin(span, axis=0),
                np.nanmax(span, axis=0),
                shift,
            )
    return table


def choose(table: Table, key: Mapping[str, str]) -> Group | None:
    """The finest group of ``table`` that ``key`` (a value per ``KEYS``) falls in, or None."""
    for level in LEVELS:
        found = table.get(tuple(key[k] if k in level else None for k in KEYS))
        if found is not None:
            return found
    return None


def half_width(group: Group | None, point: Mapping[str, Any]) -> np.ndarray:
    """The range's half-width in ``log(true / predicted)`` at ``point`` (a value or array per
    ``SPAN``, SI units, broadcast together): the group's, plus ``log(WIDEN_PER_DECADE)`` per
    decade outside its span along the farthest dimension. NaN without a group."""
    if group is None:
        return np.full(np.broadcast_shapes(*(np.shape(point[k]) for k in SPAN)), np.nan)
    dims = sorted(
        (
            (np.asarray(point[k], dtype=float), lo, hi)
            for k, lo, hi in zip(SPAN, group.span_min, group.span_max, strict=True)
        ),
        key=lambda d: d[0].size,  # the smallest first: a sweep's axes meet in one full-size step
    )
    decades = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for x, lo, hi in dims:
            # fmax skips NaN: a dimension the row or the group does not know never widens
            decades = np.fmax(decades, np.fmax(np.log10(lo / x), np.log10(x / hi)))
    return group.half_width + decades * np.log(WIDEN_PER_DECADE)


def log_range(group: Group | None, point: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of ``log(true / predicted)`` for a time at ``point``: the group's shift minus
    and plus its widened half-width (``half_width``), stretched to hold 0 (the prediction). NaN
    without a group."""
    h = half_width(group, point)
    shift = group.shift if group is not None else np.nan
    return np.minimum(shift - h, 0.0), np.maximum(shift + h, 0.0)


def factors(lo: np.ndarray, hi: np.ndarray, rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) factors a prediction is multiplied by for its range, from a time-oriented
    ``log_range``: ``exp(lo)`` and ``exp(hi)`` for a time or an energy, inverted for a rate."""
    return (np.exp(-hi), np.exp(-lo)) if rate else (np.exp(lo), np.exp(hi))


def bounds(
    predicted: Any, lo: np.ndarray, hi: np.ndarray, rate: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of a predicted value (a time or an energy; a rate with ``rate``) from a
    time-oriented ``log_range``."""
    low, high = factors(lo, hi, rate)
    return predicted * low, predicted * high


def estimate_ranges(
    device: DeviceSpec,
    quant: Quant,
    framework: str | None,
    batch: np.ndarray,
    input_len: np.ndarray,
    output_len: np.ndarray,
    values: Mapping[str, np.ndarray],
    groups: Table | None = None,
) -> dict[str, np.ndarray]:
    """``<field>_low`` and ``<field>_high`` of each field of ``ESTIMATE_RANGES`` (``values`` holds
    their predictions, arrays of the broadcast shape of ``batch``, ``input_len`` and
    ``output_len``, in sequences and tokens): the predictions times ``range_factors``."""
    factor = range_factors(device, quant, framework, batch, input_len, output_len, groups)
    out = {}
    for name in ESTIMATE_RANGES:
        value = np.asarray(values[name], dtype=float)
        out[f"{name}_low"], out[f"{name}_high"] = value * factor[name][0], value * factor[name][1]
    return out


def range_factors(
    device: DeviceSpec,
    quant: Quant,
    framework: str | None,
    batch: np.ndarray,
    input_len: np.ndarray,
    output_len: np.ndarray,
    groups: Table | None = None,
) -> dict[str, np.ndarray]:
    """The (low, high) factors (``factors``: low <= 1 <= high) that each field of
    ``ESTIMATE_RANGES`` is multiplied by for the ends of its range, over the broadcast shape of
    ``batch``, ``input_len`` and ``output_len`` (or smaller): one lookup per phase in ``groups``
    (default: the shipped table), then a few vectorized operations."""
    groups = table() if groups is None else groups
    peak, bw = device_point(device, quant)
    key = {
        "device_class": device.device_class,
        "framework": framework or "none",
        "format": weight_format(quant),
    }
    ranges = {}  # the time-oriented log range per phase, each taken once over the sweep
    for phase in set(ESTIMATE_RANGES.values()):
        point = {
            "batch": batch,
            "context": context_of(phase, input_len, output_len),
            "peak_flop_per_s": peak,
            "mem_bw_bytes_per_s": bw,
        }
        ranges[phase] = log_range(choose(groups, {**key, "phase": phase}), point)
    return {name: factors(*ranges[phase], is_rate(name)) for name, phase in ESTIMATE_RANGES.items()}


def row_features(cond: Condition) -> dict[str, Any]:
    """A resolved measured row's group key and operating point (``KEYS`` and ``SPAN``)."""
    return features(
        catalog()[cond.device],
        Quant.from_name(cond.precision),
        phase_of(cond.phase, cond.metric, cond.closed_loop),
        cond.framework,
        cond.batch,
        cond.input_len,
        cond.output_len,
    )


def features(
    device: DeviceSpec,
    quant: Quant,
    phase: str,
    framework: str | None,
    batch: float | None,
    input_len: float,
    output_len: float,
) -> dict[str, Any]:
    """A group key and operating point (``KEYS`` and ``SPAN``) of a prediction in ``phase``."""
    peak, bw = device_point(device, quant)
    return {
        "device_class": device.device_class,
        "phase": phase,
        "framework": framework or "none",
        "format": weight_format(quant),
        "batch": np.nan if batch is None else float(batch),
        "context": float(context_of(phase, input_len, output_len)),
        "peak_flop_per_s": peak,
        "mem_bw_bytes_per_s": bw,
    }


SERVER_RANGES = {
    "ttft_s_mean": "ttft_s",
    "tpot_s_mean": "tpot_s",
    "e2e_s_mean": "e2e_s",
    "output_tokens_per_s": "output_tokens_per_s",
}
"""The metrics of a served stream (``hwsim serve``) that carry a range, each with the measured
metric whose ``server-`` group gives it."""


def server_ranges(
    metrics: Mapping[str, Any],
    device: DeviceSpec,
    quant: Quant,
    framework: str | None,
    max_batch: float | None,
    input_len: float,
    output_len: float,
    closed_loop: bool = False,
) -> dict[str, float | None]:
    """``<metric>_low`` and ``<metric>_high`` of each of ``SERVER_RANGES`` in a served stream's
    metrics, from the ``server-`` groups (a ``closed_loop``'s rate from the end-to-end group,
    ``phase_of``; None where no group gives one or the value is not a positive number)."""
    out: dict[str, float | None] = {}
    for key, metric in SERVER_RANGES.items():
        value = metrics.get(key)
        low = high = None
        if isinstance(value, (int, float)) and np.isfinite(value) and value > 0:
            point = features(
                device,
                quant,
                phase_of("server", metric, closed_loop),
                framework,
                max_batch,
                input_len,
                output_len,
            )
            lo, hi = bounds(value, *log_range(choose(table(), point), point), rate=is_rate(metric))
            if np.isfinite(lo) and np.isfinite(hi):
                low, high = float(lo), float(hi)
        out[f"{key}_low"], out[f"{key}_high"] = low, high
    return out


def residual_rows(rows: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """The frame ``fit_table`` and ``held_out_coverage`` take, from fit rows (``cond``,
    ``measured``, ``source``) and their predictions."""
    import pandas as pd

    features = pd.DataFrame([row_features(c) for c in rows["cond"]], index=rows.index)
    sign = np.where([is_rate(c.metric) for c in rows["cond"]], -1.0, 1.0)
    log_ratio = sign * np.log(rows["measured"].to_numpy() / np.asarray(predicted, dtype=float))
    return features.assign(source=rows["source"], log_ratio=log_ratio)


def row_range(features: Mapping[str, Any], predicted: float, metric: str) -> tuple[float, float]:
    """(low, high) of one measured row's prediction of ``metric`` from the shipped table (NaN
    without a group)."""
    low, high = bounds(predicted, *log_range(choose(table(), features), features), rate=is_rate(metric))
    return float(low), float(high)


def held_out_coverage(rows: pd.DataFrame) -> dict[str, Any]:
    """Coverage of the ranges on held-out sources: for each ``source``, the table fitted on the
    other sources' rows applied to its rows. ``rows`` as for ``fit_table`` plus ``source``.

    Returns ``rows``, ``with_range`` (rows whose groups gave a range), ``inside`` (fraction of
    those whose measurement lies in it), ``median_width`` (median high / low) and the same per
    phase under ``by_phase``."""
    rows = rows.reset_index(drop=True)
    import pandas as pd

    lo, hi = pd.Series(np.nan, index=rows.index), pd.Series(np.nan, index=rows.index)
    for _source, held in rows.groupby("source"):
        others = fit_table(rows.drop(held.index))
        for i, row in held.iterrows():
            lo[i], hi[i] = log_range(choose(others, row), row)
    frame = pd.DataFrame({"phase": rows["phase"], "r": rows["log_ratio"], "lo": lo, "hi": hi})
    return {**_coverage(frame), "by_phase": {p: _coverage(g) for p, g in frame.groupby("phase")}}


def _coverage(frame: pd.DataFrame) -> dict[str, Any]:
    ranged = frame.dropna(subset=["lo", "hi"])
    if ranged.empty:
        return {"rows": int(len(frame)), "with_range": 0, "inside": None, "median_width": None}
    inside = (ranged["lo"] <= ranged["r"]) & (ranged["r"] <= ranged["hi"])
    return {
        "rows": int(len(frame)),
        "with_range": int(len(ranged)),
        "inside": round(float(inside.mean()), 4),
        "median_width": round(float(np.exp(ranged["hi"] - ranged["lo"]).median()), 4),
    }


def _entries(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The YAML entries of the groups ``fit_table`` fits on ``rows``."""
    groups = []
    for key, g in fit_table(rows).items():
        entry: dict[str, Any] = {k: v for k, v in zip(KEYS, key, strict=True) if v is not None}
        entry |= {
            "rows": g.rows,
            "q10": round(g.q10, 4),
            "q90": round(g.q90, 4),
            "shift": round(g.shift, 4),
            "half_width": round(g.half_width, 4),
        }
        for (name, unit), lo, hi in zip(_SPAN_YAML.items(), g.span_min, g.span_max, strict=True):
            entry[name] = [float(f"{lo / unit:.4g}"), float(f"{hi / unit:.4g}")]
        groups.append(entry)
    return groups


def _shipped() -> dict[str, Any]:
    """The table file as written, or {} before the first fit."""
    return parse_yaml(path().read_text()) if path().is_file() else {}


def write(rows: pd.DataFrame, fitted_on: str) -> dict[str, Any]:
    """Fit the table on ``rows`` (all sources), measure its held-out coverage, write both to
    ``intervals_fitted.yaml`` and return the coverage. The groups and coverage of a phase that
    ``rows`` do not hold (``energy``, written by ``write_phase`` from the energy fit) are kept."""
    coverage = held_out_coverage(rows)
    old = _shipped()
    phases = set(rows["phase"])
    kept = [g for g in old.get("groups", []) if g["phase"] not in phases]
    for phase, cov in old.get("held_out_coverage", {}).get("by_phase", {}).items():
        if phase not in phases:
            coverage["by_phase"][phase] = cov
    content = {
        "schema_version": 1,
        "fitted_on": fitted_on,
        "fitted_at": datetime.date.today().isoformat(),
        "residual": "r = log(measured / predicted) of leave-one-source-out predictions, in time orientation (a "
        "rate's ratio inverted); q10, q90: its 10th and 90th percentiles; shift: bias_share x its median; "
        "every percentile counting each source once (a row weighing 1/n for the n rows of its source in the "
        "group), except in the server- phases, which count rows; "
        "half_width: the 80th percentile of |r - shift|, the range being prediction x exp(shift +- half_width), "
        "stretched to hold the prediction (roofline/intervals.py)",
        "bias_share": BIAS_SHARE,
        "min_rows": MIN_ROWS,
        "widen_per_decade": WIDEN_PER_DECADE,
        "levels": [list(level) for level in LEVELS],
        **({"fitted_on_by_phase": old["fitted_on_by_phase"]} if "fitted_on_by_phase" in old else {}),
        "held_out_coverage": coverage,
        "groups": _entries(rows) + kept,
    }
    path().write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    table.cache_clear()
    return coverage


def write_phase(rows: pd.DataFrame, phase: str, fitted_on: str) -> dict[str, Any]:
    """Replace the groups of one ``phase`` in ``intervals_fitted.yaml`` with those fitted on
    ``rows`` (that phase's residuals, as ``residual_rows`` gives them: the energy fit's
    leave-one-source-out predictions for ``energy``), record their held-out coverage under
    ``held_out_coverage.by_phase`` and what they were fitted on under ``fitted_on_by_phase``; the
    other phases' groups stay. Returns the phase's coverage."""
    if set(rows["phase"]) != {phase}:
        raise ConfigError(
            f"write_phase: rows of phases {sorted(set(rows['phase']))}; expected only {phase!r}"
        )
    content = _shipped()
    if not content:
        raise ConfigError(
            f"{path().name} is missing: fit the time ranges first (hwsim calibrate --part devices)"
        )
    coverage = held_out_coverage(rows)
    del coverage["by_phase"]
    content["groups"] = [g for g in content["groups"] if g["phase"] != phase] + _entries(rows)
    content.setdefault("held_out_coverage", {}).setdefault("by_phase", {})[phase] = coverage
    content.setdefault("fitted_on_by_phase", {})[phase] = fitted_on
    path().write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    table.cache_clear()
    return coverage


@lru_cache(maxsize=1)
def table() -> dict[tuple, Group]:
    """The shipped table; empty (every range NaN) before the first ``hwsim calibrate``."""
    where = path()
    if not where.is_file():
        return {}
    raw = parse_yaml(where.read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where.name}: schema_version {raw.get('schema_version')!r}; expected 1")
    out = {}
    for i, entry in enumerate(raw["groups"]):
        missing = [
            k for k in ("phase", "rows", "q10", "q90", "shift", "half_width", *_SPAN_YAML) if k not in entry
        ]
        if missing:
            raise ConfigError(f"{where.name}: groups[{i}] lacks {', '.join(missing)}")
        span = (
            np.array([entry[k] for k in _SPAN_YAML], dtype=float) * np.array([*_SPAN_YAML.values()])[:, None]
        )
        out[tuple(entry.get(k) for k in KEYS)] = Group(
            int(entry["rows"]),
            float(entry["q10"]),
            float(entry["q90"]),
            float(entry["half_width"]),
            span[:, 0],
            span[:, 1],
            float(entry["shift"]),
        )
    return out


def recorded_coverage() -> dict[str, Any]:
    """The held-out coverage recorded with the shipped table (empty before the first fit)."""
    return _shipped().get("held_out_coverage", {})
