"""Request streams: when requests arrive and how long their prompts and outputs are.

Every draw takes a seed (a ``np.random.Generator`` built from it); the same arguments give
the same trace.

Arrivals
- ``poisson(rate)``: exponential gaps, mean ``1 / rate`` seconds;
- ``gamma(rate, cv)``: gamma gaps with the same mean and coefficient of variation ``cv``
  (``cv = 1`` is Poisson, ``cv > 1`` bursty);
- closed loop (``Trace.concurrency``): no arrival times; a client keeps ``concurrency``
  requests in flight and sends the next when one ends, as a benchmark client at a fixed
  concurrency does (``vllm bench serve --max-concurrency``, ``trtllm-bench``'s concurrency);
- ``read_trace_csv(path)``: replay of a CSV with ``arrival_s, input_len, output_len``.

Lengths
- ``fixed``: every request the same;
- ``lognormal(mean, cv)``: lognormal with that mean and coefficient of variation;
- ``uniform_spread(mean_in, mean_out, spread)``: integers uniform within ``spread`` of each
  mean, the serving benchmarks' random dataset with a range ratio;
- ``empirical(name)``: a joint histogram of (input, output) tokens shipped in
  ``workloads/lengths/`` with its source (``lengths_index()``); a draw picks a cell by its
  weight, then an integer uniformly inside the cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from workloads.errors import ConfigError, is_real_number, positive_count, shown_value, unknown_name
from workloads.files import is_file
from workloads.shipped import parse_yaml

MAX_TOKENS = 10_000_000
"""Largest prompt or output length a trace accepts (tokens): far beyond any model's context,
small enough that token arithmetic stays exact in float64."""


@dataclass(frozen=True)
class Trace:
    """A request stream. Arrays have one entry per request, in arrival order.

    Attributes
    ----------
    input_len, output_len : np.ndarray of int, tokens per request (>= 1).
    arrival_s : np.ndarray of float or None; seconds from the start, non-decreasing; None
        for a closed loop.
    concurrency : requests kept in flight by a closed-loop client; None for open loop.
    description : how it was made (for the run's provenance).
    prefix_id, prefix_len : requests with the same ``prefix_id`` (>= 0) share their first
        ``prefix_len`` prompt tokens (a system prompt, or a whole prompt sent again), which an
        engine with prefix caching need not prefill twice; -1 and 0 for none. None: no sharing.
    """

    input_len: np.ndarray
    output_len: np.ndarray
    arrival_s: np.ndarray | None = None
    concurrency: int | None = None
    description: str = ""
    prefix_id: np.ndarray | None = None
    prefix_len: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.input_len)
        if n == 0:
            raise ConfigError("trace has no requests; expected at least one")
        if len(self.output_len) != n or (self.arrival_s is not None and len(self.arrival_s) != n):
            raise ConfigError("trace columns differ in length")
        if (self.arrival_s is None) == (self.concurrency is None):
            raise ConfigError("a trace has either arrival times (open loop) or a concurrency (closed loop)")
        if (self.prefix_id is None) != (self.prefix_len is None):
            raise ConfigError("a trace gives both prefix_id and prefix_len, or neither")
        if self.prefix_len is not None and np.any(self.prefix_len > self.input_len):
            raise ConfigError("a shared prefix is longer than its request's prompt")

    def with_prefixes(self, groups: int, prefix_len: int | None = None) -> Trace:
        """Request ``i`` shares its first ``prefix_len`` prompt tokens (default: the whole prompt)
        with every request of group ``i % groups``: a client cycling through ``groups`` distinct
        prompts or system prompts."""
        from dataclasses import replace

        groups = positive_count(groups, "prefix groups", 10_000_000)
        n = self.n_requests
        shared = (
            self.input_len
            if prefix_len is None
            else np.minimum(positive_count(prefix_len, "prefix_len", MAX_TOKENS), self.input_len)
        )
        return replace(
            self,
            prefix_id=np.arange(n, dtype=np.int64) % groups,
            prefix_len=np.asarray(shared, dtype=np.int64) * np.ones(n, dtype=np.int64),
            description=self.description + f", {groups} shared prefixes",
        )

    @property
    def n_requests(self) -> int:
        return len(self.input_len)


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{field} is {shown_value(value)}; expected a positive number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field} is {shown_value(value)}; expected a positive number")
    return float(value)


CV_RANGE = (1e-3, 1e3)
"""Coefficients of variation a trace draws with: a gamma gap of shape ``1 / cv^2`` (or a lognormal
length of ``sigma^2 = ln(1 + cv^2)``) outside them overflows or divides by zero in floating point
and is no distribution to speak of (near-regular arrivals at the one end, all at once at the
other; a bursty production trace has a CV of a few)."""


def _cv(value: Any, field: str) -> float:
    """A coefficient of variation within ``CV_RANGE``."""
    cv = _positive(value, field)
    low, high = CV_RANGE
    if not low <= cv <= high:
        raise ConfigError(
            f"{field} is {shown_value(value)}; expected a coefficient of variation from {low:g} to {high:g}"
        )
    return cv


# ---- arrivals ------------------------------------------------------------------------------
def poisson_arrivals(rate_per_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of ``n`` requests of a Poisson process at ``rate_per_s``; the first at 0."""
    rate = _positive(rate_per_s, "rate")
    gaps = rng.exponential(1.0 / rate, size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[1:])])


def gamma_arrivals(rate_per_s: float, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) with gamma-distributed gaps: mean ``1 / rate``, coefficient of variation ``cv``.

    A gamma of shape ``1 / cv^2`` and scale ``cv^2 / rate`` has that mean and CV.
    """
    rate, cv = _positive(rate_per_s, "rate"), _cv(cv, "cv")
    shape = 1.0 / cv**2
    gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[1:])])


# ---- lengths --------------------------------------------------------------------------------
def lognormal_lengths(mean: float, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` integer lengths >= 1 from a lognormal of the given mean and coefficient of variation."""
    mean, cv = _positive(mean, "mean length"), _cv(cv, "length cv")
    sigma2 = math.log1p(cv**2)
    mu = math.log(mean) - sigma2 / 2.0
    return np.clip(np.rint(rng.lognormal(mu, math.sqrt(sigma2), size=n)), 1, MAX_TOKENS).astype(np.int64)


def uniform_spread(input_len: float, output_len: float, spread: float) -> LengthHistogram:
    """Integer lengths uniform over ``[round(m (1 - spread)), round(m (1 + spread))]`` about each
    mean ``m`` (at least 1), input and output independent: the random dataset of the serving
    benchmarks with a range ratio ``r``. SGLang's ``bench_serving.py`` (``--random-range-ratio``)
    and the InferenceX client draw ``[int(r L), L]``: spread ``(1 - r) / (1 + r)`` about the mean
    ``(1 + r) L / 2``; vLLM's ``vllm bench serve`` draws ``[L (1 - r), L (1 + r)]``: spread ``r``
    about ``L``. One cell of a ``LengthHistogram``; ``spread`` 0 is fixed lengths, 1 lengths from 1
    to twice the mean (SGLang's default range ratio 0, ``[1, L]``)."""
    if isinstance(spread, bool) or not isinstance(spread, (int, float, np.integer, np.floating)):
        raise ConfigError(f"length spread is {spread!r}; expected a number from 0 to 1")
    if not 0.0 <= spread <= 1.0:
        raise ConfigError(f"length spread is {spread!r}; expected a number from 0 to 1")
    bounds = []
    for mean, field in ((input_len, "input_len"), (output_len, "output_len")):
        _positive(mean, field)
        lo = max(1, round(mean * (1.0 - spread)))
        bounds.append((lo, max(lo, round(mean * (1.0 + spread))) + 1))
    (in_lo, in_hi), (out_lo, out_hi) = bounds
    one = np.ones(1, dtype=np.int64)
    return LengthHistogram(
        f"uniform +-{spread:.3g}",
        in_lo * one,
        in_hi * one,
        out_lo * one,
        out_hi * one,
        np.ones(1),
        f"integers uniform within {spread:.3g} of the means {input_len:g}/{output_len:g}",
    )


@dataclass(frozen=True)
class LengthHistogram:
    """A joint histogram of (input, output) tokens: cell bounds ``[lo, hi)`` and weights summing to 1."""

    name: str
    input_lo: np.ndarray
    input_hi: np.ndarray
    output_lo: np.ndarray
    output_hi: np.ndarray
    weight: np.ndarray
    source: str

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (input, output) pairs: a cell by weight, then integers uniform inside it."""
        cell = rng.choice(len(self.weight), size=n, p=self.weight)
        lin = rng.integers(self.input_lo[cell], self.input_hi[cell])
        lout = rng.integers(self.output_lo[cell], self.output_hi[cell])
        return lin.astype(np.int64), lout.astype(np.int64)

    def _midpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's mean (input, output) tokens: integers uniform over ``[lo, hi)``."""
        return (self.input_lo + self.input_hi - 1) / 2.0, (self.output_lo + self.output_hi - 1) / 2.0

    def mean(self) -> tuple[float, float]:
        """Mean (input, output) tokens of the histogram (integers uniform inside each cell)."""
        mid_in, mid_out = self._midpoints()
        return float(self.weight @ mid_in), float(self.weight @ mid_out)

    def held_prompt_len(self, input_len: float, output_len: float, reserved: bool = False) -> float:
        """The prompt length of the fixed-length request that holds, at steady state, the KV of a
        request drawn from the histogram (``decode_context``): its prompt plus half its output
        (``L_in + (n - 2) / 2`` over its decode steps, plus the new token), or plus the whole
        output where the engine ``reserved`` it at admission."""
        context = self.decode_context(input_len, output_len, reserved)
        return context - output_len if reserved else context - (output_len - 2.0) / 2.0

    def decode_context(self, input_len: float, output_len: float, reserved: bool = False) -> float:
        """Mean KV tokens (the context) of a sequence in a decode step of continuous batching at
        steady state, with the histogram's lengths scaled to mean ``input_len`` and ``output_len``.

        A request of ``n`` output tokens takes ``n - 1`` decode steps (the prefill gives the
        first), at contexts ``L_in .. L_in + n - 2``: a long answer stays in the batch longer, so
        the running population is weighted by its steps, ``E[(n-1) L_in + (n-1)(n-2)/2] / E[n-1]``
        (``L_in + (n - 2) / 2`` for fixed lengths). With ``reserved``, the tokens an engine that
        reserves the whole output at admission holds instead: ``E[(n-1)(L_in + n)] / E[n-1]``.
        Integers are uniform inside each cell, input and output independent within a cell."""
        mid_in, mid_out = self._midpoints()
        s_in, s_out = input_len / float(self.weight @ mid_in), output_len / float(self.weight @ mid_out)
        width = (self.output_hi - self.output_lo).astype(float)
        m_in, m_out = s_in * mid_in, s_out * mid_out
        sq_out = s_out**2 * ((width**2 - 1) / 12.0 + mid_out**2)  # E[n^2] per cell
        steps = np.maximum(m_out - 1.0, 0.0)  # a cell scaled below one output token decodes nothing
        held = (
            sq_out - m_out if reserved else (sq_out - 3.0 * m_out + 2.0) / 2.0
        )  # E[(n-1) n], E[(n-1)(n-2)/2]
        held = np.where(steps > 0, np.maximum(held, 0.0), 0.0)
        total = self.weight @ steps
        if total <= 1e-9:  # every request ends at its first token: no decode step
            return float(input_len + (output_len if reserved else 0.0))
        return float(self.weight @ (steps * m_in + held) / total)


@lru_cache(maxsize=1)
def lengths_index() -> dict[str, dict[str, str]]:
    """The shipped length histograms: ``{name: {file, source, ...}}`` from ``workloads/lengths/index.yaml``."""

    raw = parse_yaml(files("workloads.lengths").joinpath("index.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError("workloads/lengths/index.yaml: schema_version must be 1")
    for name, entry in raw["datasets"].items():
        if not entry.get("source") or not entry.get("file"):
            raise ConfigError(f"workloads/lengths/index.yaml: datasets.{name} needs a file and a source")
    return raw["datasets"]


@lru_cache(maxsize=8)
def load_lengths(name: str) -> LengthHistogram:
    """A shipped histogram by dataset name (``sharegpt``, ``openorca``, ``cnn-dailymail``, ...)."""
    import pandas as pd

    index = lengths_index()
    key = name.strip().lower()
    if key not in index:
        raise unknown_name("length distribution", name, index)
    entry = index[key]
    path = files("workloads.lengths").joinpath(entry["file"])
    frame = pd.read_csv(str(path))
    return _histogram(frame, key, str(entry["source"]), f"workloads/lengths/{entry['file']}")


def _named(name: Any) -> str | Path:
    """``name`` if it is a name or a path, else the unknown-name error of a length distribution."""
    if not isinstance(name, (str, Path)):
        raise unknown_name("length distribution", name, lengths_index())
    return name


def lengths_of(name: str) -> LengthHistogram:
    """A shipped length distribution by name (``load_lengths``), or the requests of a CSV with
    ``input_len, output_len`` columns (``read_lengths_csv``; a trace CSV serves): each distinct (input, output) pair a one-token cell weighted by its count."""
    if not str(_named(name)).endswith(".csv"):
        return load_lengths(str(name))
    lin, lout = read_lengths_csv(name)
    pairs, counts = np.unique(np.stack([lin, lout], axis=1), axis=0, return_counts=True)
    return LengthHistogram(
        Path(name).name,
        pairs[:, 0],
        pairs[:, 0] + 1,
        pairs[:, 1],
        pairs[:, 1] + 1,
        counts / counts.sum(),
        f"the {lin.size} requests of {name}",
    )


def _histogram(frame, name: str, source: str, where: str) -> LengthHistogram:
    cols = ["input_lo", "input_hi", "output_lo", "output_hi", "weight"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(cols)}")
    arr = {c: frame[c].to_numpy(dtype=float) for c in cols}
    if not np.all(np.isfinite(np.stack(list(arr.values())))):
        raise ConfigError(f"{where}: a value is not a finite number")
    for lo, hi in (("input_lo", "input_hi"), ("output_lo", "output_hi")):
        if np.any(arr[lo] < 1) or np.any(arr[hi] <= arr[lo]):
            raise ConfigError(f"{where}: {lo} must be >= 1 and below {hi} in every row")
    w = arr["weight"]
    if np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"{where}: weights must be non-negative with a positive sum")
    return LengthHistogram(
        name,
        arr["input_lo"].astype(np.int64),
        arr["input_hi"].astype(np.int64),
        arr["output_lo"].astype(np.int64),
        arr["output_hi"].astype(np.int64),
        w / w.sum(),
        source,
    )


# ---- whole traces -----------------------------------------------------------------------------
def _request_columns(path: str | Path, cols: list[str], what: str) -> dict[str, np.ndarray]:
    """The named columns of a CSV with one row per request, each value checked: ``arrival_s`` a
    time 0..MAX_TOKENS s, token counts integers 1..MAX_TOKENS; other columns are ignored."""
    import pandas as pd

    path = Path(path)
    if not is_file(path):
        raise ConfigError(f"{what} file {str(path)!r} does not exist or is not a file")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} file {str(path)!r} is not a readable CSV ({exc})") from None
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(cols)}")
    if frame.empty:
        raise ConfigError(f"{path}: no requests")
    values = {}
    for c in cols:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < 0 if c == "arrival_s" else v < 1) | (v > MAX_TOKENS)
        if c != "arrival_s":
            bad |= v != np.round(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            need = f"a time 0..{MAX_TOKENS:,} s" if c == "arrival_s" else f"an integer 1..{MAX_TOKENS:,}"
            shown = frame[c].iloc[row]
            shown = shown.item() if isinstance(shown, np.generic) else shown
            raise ConfigError(f"{path}: row {row + 1}: {c} is {shown!r}; expected {need}")
        values[c] = v
    return values


def read_lengths_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The ``input_len, output_len`` columns of a CSV with one row per request (an
    ``arrival_s`` column, as in a trace, is allowed and not read)."""
    values = _request_columns(path, ["input_len", "output_len"], "lengths")
    return values["input_len"].astype(np.int64), values["output_len"].astype(np.int64)


def read_trace_csv(path: str | Path) -> Trace:
    """Replay a CSV with columns ``arrival_s, input_len, output_len`` (one row per request)."""
    values = _request_columns(path, ["arrival_s", "input_len", "output_len"], "trace")
    order = np.argsort(values["arrival_s"], kind="stable")
    return Trace(
        values["input_len"][order].astype(np.int64),
        values["output_len"][order].astype(np.int64),
        arrival_s=values["arrival_s"][order],
        description=f"replay of {Path(path).name}",
    )


def make_trace(
    *,
    n_requests: int,
    seed: int = 0,
    rate: float | None = None,
    concurrency: int | None = None,
    arrival: str = "poisson",
    cv: float = 1.0,
    input_len: int | None = None,
    output_len: int | None = None,
    lengths: str | None = None,
    length_cv: float | None = None,
    length_spread: float | None = None,
) -> Trace:
    """A seeded request stream.

    Exactly one of ``rate`` (open loop, requests/s; ``arrival`` ``poisson`` or ``gamma``
    with ``cv``) and ``concurrency`` (closed loop). Lengths: fixed ``input_len`` and
    ``output_len``; or those as means of lognormals with ``length_cv``, or of integers uniform
    within ``length_spread`` of them (``uniform_spread``); or ``lengths``, a shipped dataset name
    or a CSV of requests whose ``input_len, output_len`` columns are resampled.
    """
    n = positive_count(n_requests, "num_requests", 100_000_000)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed is {seed!r}; expected an integer from 0 to 2**63 - 1")
    rng = np.random.default_rng(seed)
    if (rate is None) == (concurrency is None):
        raise ConfigError("give exactly one of a rate (open loop) and a concurrency (closed loop)")
    for field, value, need in (
        ("length spread", length_spread, "a number from 0 to 1"),
        ("length cv", length_cv, "a coefficient of variation (a number)"),
    ):  # before their truth values are asked: an array's would raise, a bool's would count
        if value is not None and not is_real_number(value):
            raise ConfigError(f"{field} is {shown_value(value)}; expected {need}")
    if lengths is not None:
        if input_len is not None or output_len is not None:
            raise ConfigError("give either lengths or input_len/output_len, not both")
        if length_cv or length_spread:
            raise ConfigError("a lengths distribution draws its own lengths; give it no length spread or cv")
        lin, lout, what = _dataset_lengths(lengths, n, rng)
    else:
        if input_len is None or output_len is None:
            raise ConfigError("give input_len and output_len, or a lengths distribution")
        positive_count(input_len, "input_len", MAX_TOKENS)
        positive_count(output_len, "output_len", MAX_TOKENS)
        if length_cv and length_spread:
            raise ConfigError("give either length_cv or length_spread, not both")
        if length_spread:
            hist = uniform_spread(input_len, output_len, length_spread)
            lin, lout = hist.sample(n, rng)
            what = f"lengths {hist.source}"
        elif length_cv:
            lin = lognormal_lengths(input_len, length_cv, n, rng)
            lout = lognormal_lengths(output_len, length_cv, n, rng)
            what = f"lognormal lengths, means {input_len}/{output_len}, cv {length_cv:g}"
        else:
            lin = np.full(n, input_len, dtype=np.int64)
            lout = np.full(n, output_len, dtype=np.int64)
            what = f"fixed lengths {input_len}/{output_len}"
    if concurrency is not None:
        c = positive_count(concurrency, "concurrency", 10_000_000)
        return Trace(
            lin, lout, concurrency=c, description=f"closed loop, concurrency {c}, {what}, seed {seed}"
        )
    if not isinstance(arrival, str) or arrival not in ("poisson", "gamma"):
        raise ConfigError(f"arrival is {arrival!r}; expected 'poisson' or 'gamma'")
    times = poisson_arrivals(rate, n, rng) if arrival == "poisson" else gamma_arrivals(rate, cv, n, rng)
    return Trace(lin, lout, arrival_s=times, description=f"{arrival} at {rate:g} req/s, {what}, seed {seed}")


def _dataset_lengths(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    if str(_named(name)).endswith(".csv"):
        lin, lout = read_lengths_csv(name)
        pick = rng.integers(0, lin.size, size=n)
        return lin[pick], lout[pick], f"lengths resampled from {Path(name).name}"
    hist = load_lengths(str(name))
    lin, lout = hist.sample(n, rng)
    return lin, lout, f"{hist.name} lengths"
