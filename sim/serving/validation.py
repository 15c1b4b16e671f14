"""Predict measured ``server`` rows by simulating their request streams.

A row's conditions become a serving run: its framework's engine with the row's maximum
batch (``batch``) and token budget (``max_num_batched_tokens=`` in its notes), its
parallelism (``tp``, ``dp`` or ``n_devices / tp``, ``ep``; disaggregated pools), and a
seeded trace: Poisson arrivals at ``request_rate`` or a closed loop at ``concurrency``;
fixed lengths where the row states both, else lengths drawn from the row's dataset with
their means rescaled to the stated ones, or uniform about them where the notes state the
client's range (``stated_length_spread``: a closed loop of equal requests runs in lock step,
its prompts arriving in bursts; a spread of lengths staggers them). Metrics compare means: ``ttft_s``, ``tpot_s``,
``e2e_s``, ``output_tokens_per_s`` (whole system), ``requests_per_s`` (steady state).
Notes may state ``max_num_batched_tokens=N`` (the engine's token budget; else vLLM's
``--max-num-batched-tokens N`` as they quote it, ``roofline.validation._stated_token_budget``) and
``prefix_groups=N`` (the client cycles through N distinct prompts, which prefix caching
serves from the cache after their first use) and ``num_requests=N`` (the measured run's
requests: an overloaded run's queue, and so its TTFT, grows with its length).

The number of requests is enough for a steady state well past the ramp-up: a closed loop runs
``max(8 x concurrency, 400)`` requests (at most ``MAX_CLOSED_LOOP_REQUESTS``, and no more than
``DECODE_STEP_BUDGET`` decode steps), an open loop ``rate x 300 s`` of arrivals between 1,000
and ``MAX_OPEN_LOOP_REQUESTS`` (6,000) requests (benchmarks measure stages of 10 to 40 minutes;
the cap keeps a run near a second). An open loop whose notes state no request count is taken as
such a long run: its latencies compare the simulated run's steady state (``STEADY_LATENCY_KEYS``),
as its throughput does, and a run that keeps up (``keeps_up``) but is too short for a steady
window (an engine holding requests for tens of seconds) is run again with ``MAX_REQUESTS``. One
simulation serves every metric of a condition (cached).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hwmodels.calibration.params import framework_terms, params_for
from hwmodels.device_spec import catalog
from roofline.forked import forked_map, forked_workers
from roofline.validation import PERCENTILE_METRICS, Condition, row_lengths
from sim.serving.requests import Requests
from sim.serving.serve import serve
from workloads.errors import ConfigError, HwsimError
from workloads.traces import Trace

VALIDATION_SEED = 0
MAX_CLOSED_LOOP_REQUESTS = 60_000
"""Most requests a closed loop simulates: eight rounds of the largest shipped concurrency (7,168)."""

DECODE_STEP_BUDGET = 20_000
"""Most decode steps (requests x output tokens / concurrency) a closed loop simulates, under a
second: the fitted covered rows take at most 16,384 (a row of one request at a time with long
outputs reaches its steady state within a few requests); dstack's DeepSeek-R1 rows (500 requests
of 800 tokens at concurrency 4) would take 100,000."""
MIN_CLOSED_LOOP_REQUESTS = 16
"""Fewest requests a closed loop keeps under ``DECODE_STEP_BUDGET``."""

MAX_REQUESTS = 20_000
"""Most requests a validation run simulates (about two seconds)."""
METRIC_KEYS = {
    "ttft_s": "ttft_s_mean",
    "tpot_s": "tpot_s_mean",
    "e2e_s": "e2e_s_mean",
    "output_tokens_per_s": "steady_output_tokens_per_s",
    "output_tokens_per_s_per_device": "steady_output_tokens_per_s_per_device",
    "requests_per_s": "steady_requests_per_s",
    **{m: m for m in PERCENTILE_METRICS},
}
"""Throughput compares the steady state (``metrics.request_metrics``): a measured run lasts 10
to 20 minutes, so its ramp-up and drain weigh less than in a shorter simulated run. A percentile
(``ttft_s_p99``) is the whole simulated run's."""
STEADY_LATENCY_KEYS = {
    "ttft_s": "steady_ttft_s_mean",
    "tpot_s": "steady_tpot_s_mean",
    "e2e_s": "steady_e2e_s_mean",
}
"""Latencies of an open-loop row that states no request count compare the steady state too: such
a measured run (MLPerf's server scenario: at least 600 to 2,400 s and 24,576 queries) is almost
all steady, where a simulated one of 20,000 requests at a high rate still fills for a quarter of
its arrivals (an engine at MLPerf's target rate holds its requests 20-50 s)."""


def long_run(c: Condition) -> bool:
    """Whether a server row's measured run is taken as long (steady-state) rather than the
    simulated one as it is: an open loop whose notes state no request count."""
    return not c.closed_loop and not c.serving.get("num_requests")


def metric_key(c: Condition, result: dict) -> str:
    """The key of ``result`` (a run's metrics) that row ``c``'s metric compares with: the whole
    run's where it simulates as many requests as the measured run sent (its notes state them:
    the client's throughput and means count its ramp-up and drain too); else the steady
    throughput, and for a ``long_run`` row the steady latency means, where the run has them;
    otherwise the whole run's (a closed loop has no steady window)."""
    key = STEADY_LATENCY_KEYS.get(c.metric, METRIC_KEYS[c.metric]) if long_run(c) else METRIC_KEYS[c.metric]
    if c.serving.get("num_requests") == simulated_requests(c):
        # the simulated run is the measured one, ramp-up and drain included, as its client counted
        key = METRIC_KEYS[c.metric].removeprefix("steady_")
    if key not in result:
        key = METRIC_KEYS[c.metric].removeprefix("steady_")
    return key


MAX_OPEN_LOOP_REQUESTS = 6_000
"""Most requests an open loop simulates at first (about a second); a ``long_run`` row whose run
keeps up but has no steady window yet is run again with ``MAX_REQUESTS`` (``_simulate_result``)."""
QUEUE_GROWTH = 1.5
"""An open-loop run whose last fifth of arrivals waits this many times longer for its first token
than its middle fifth (40-60%) does not keep up: its queue grows with the run, so a longer run
has no steady state either (a kept-up one's TTFT is about the same throughout; a queue that grows
steadily gives 0.9 / 0.5 = 1.8)."""


def n_requests(concurrency: int | None, rate: float | None) -> int:
    """Requests simulated for a validation row (see the module docstring)."""
    if concurrency:
        return min(max(8 * concurrency, 400), MAX_CLOSED_LOOP_REQUESTS)
    return int(np.clip(rate * 300.0, 1000, MAX_OPEN_LOOP_REQUESTS))


def keeps_up(requests: Requests) -> bool:
    """Whether an open-loop run's engine keeps up with its arrivals (``QUEUE_GROWTH``)."""
    done = requests.completed
    arrival = requests.arrival_s[done]
    ttft = requests.first_token_s[done] - arrival
    rank = np.argsort(np.argsort(arrival)) / max(arrival.size, 1)
    middle, last = ttft[(rank >= 0.4) & (rank < 0.6)], ttft[rank >= 0.8]
    return bool(middle.size and last.size and last.mean() <= QUEUE_GROWTH * middle.mean())


def simulated_requests(c: Condition, n: int | None = None) -> int:
    """Requests a server row's run simulates: as many as the measured run sent, where its notes
    state ``num_requests=N``, up to ``MAX_REQUESTS``; else ``n``, by default ``n_requests``; a
    closed loop at most ``DECODE_STEP_BUDGET`` decode steps (its steady state comes early)."""
    s = c.serving
    n = (
        min(s["num_requests"], MAX_REQUESTS)
        if s.get("num_requests")
        else (n or n_requests(s["concurrency"], s["rate"]))
    )
    if s["concurrency"]:
        n = min(
            n,
            max(MIN_CLOSED_LOOP_REQUESTS, -(-DECODE_STEP_BUDGET * s["concurrency"] // max(c.output_len, 1))),
        )
    return n


def row_trace(c: Condition, n: int | None = None) -> Trace:
    """The seeded request stream of a server row, of ``simulated_requests`` requests."""
    s = c.serving
    n = simulated_requests(c, n)
    rng = np.random.default_rng(VALIDATION_SEED)
    hist = row_lengths(c)
    if hist:
        lin, lout = hist.sample(n, rng)
        mean_in, mean_out = hist.mean()
        lin = np.maximum(np.rint(lin * c.input_len / mean_in), 1).astype(np.int64)
        lout = np.maximum(np.rint(lout * c.output_len / mean_out), 1).astype(np.int64)
    else:
        lin = np.full(n, c.input_len, dtype=np.int64)
        lout = np.full(n, c.output_len, dtype=np.int64)
    arrival = None
    if not s["concurrency"]:
        gaps = rng.exponential(1.0 / s["rate"], size=n)
        arrival = np.concatenate([[0.0], np.cumsum(gaps[1:])])
    # a server started with --max-model-len refuses a request of more tokens (prompt plus output;
    # the benchmark client counts it failed, outside its latencies and throughput): the run is the
    # requests it served, arriving when they did
    kept = lin + lout <= c.max_model_len if c.max_model_len else np.ones(n, dtype=bool)
    if not kept.any():
        raise ConfigError(
            f"every request of the row's lengths is longer than its max_model_len {c.max_model_len:,}"
        )
    lin, lout = lin[kept], lout[kept]
    refused = f"; {int((~kept).sum())} of {n} requests over max_model_len refused" if not kept.all() else ""
    if s["concurrency"]:
        return Trace(lin, lout, concurrency=s["concurrency"], description=f"validation closed loop{refused}")
    return Trace(lin, lout, arrival_s=arrival[kept], description=f"validation Poisson{refused}")


def _key(c: Condition) -> tuple:
    return (
        c.model,
        c.device,
        c.precision,
        c.framework,
        c.batch,
        c.input_len,
        c.output_len,
        c.tp,
        c.pp,
        c.n_devices,
        c.lengths,
        c.length_spread,
        tuple(sorted(c.serving.items())),
        c.max_model_len,
        c.chunked_prefill,
        c.max_num_seqs,
        c.memory_fraction,
    )


def _parameters(c: Condition) -> tuple:
    """The calibration values a run depends on (so a fit that changes them misses the cache)."""
    device = catalog()[c.device]
    terms = framework_terms(c.framework) if c.framework else None
    return (terms, tuple(sorted(params_for(device.arch, device.device_class).items())))


_RUNS: dict[tuple, dict | str] = {}


def _run(key: tuple, c: Condition) -> dict | str:
    if key not in _RUNS:
        _RUNS[key] = _simulate(c)
    return _RUNS[key]


def _simulate(c: Condition) -> dict | str:
    result = _simulate_result(c)
    return result if isinstance(result, str) else result.metrics


def _simulate_result(c: Condition):
    """The ``ServeResult`` of a server row's run, or why it cannot run."""
    s = c.serving
    config = dict(
        precision=c.precision,
        framework=c.framework,
        max_batch=c.batch or c.max_num_seqs,  # the batch column, else the limit the notes state
        max_model_len=c.max_model_len,
        chunked_prefill=c.chunked_prefill,
        kv_fraction=c.memory_fraction,
    )
    if s.get("max_num_batched_tokens"):
        config["max_batched_tokens"] = s["max_num_batched_tokens"]
    if s.get("scheduler_steps"):
        config["scheduler_steps"] = s["scheduler_steps"]
    if s.get("scheduler"):
        config["scheduler"] = s["scheduler"]
    if s.get("prefix_caching") is False:
        config["prefix_caching"] = False
    if s["mode"] == "disagg":
        config.update(
            mode="disagg",
            prefill_workers=s["prefill_workers"],
            prefill_tp=s["prefill_tp"],
            decode_workers=s["decode_workers"],
            decode_tp=s["decode_tp"],
        )
    else:
        config.update(
            tp=c.tp,
            pp=c.pp,
            ep=s.get("ep", 1),
            attention_dp=s.get("attention_dp", False),
            n_devices=c.n_devices,
        )
    try:
        result = None
        for n in (None, MAX_REQUESTS):
            trace = row_trace(c, n)
            if s.get("prefix_groups"):
                trace = trace.with_prefixes(s["prefix_groups"])
            result = serve(c.model, c.device, trace, record=False, **config)
            # a long measured run that keeps up: run again, long enough for a steady window
            if not long_run(c) or "steady_tpot_s_mean" in result.metrics or not keeps_up(result.requests):
                break
        return result
    except HwsimError as exc:
        return str(exc)


def simulate_rows(conditions: Iterable[Condition]) -> None:
    """Simulate the server rows among ``conditions`` whose runs are not cached yet, on as many
    processes as ``roofline.estimate.threads()`` allows, and cache the results for
    ``predict_serving``: a whole measured set's server rows take about half as long on two
    cores. The processes are forked, so they run with this process's calibration as it stands
    in memory; with one core (or no fork) this does nothing and ``predict_serving`` runs each
    row when asked."""
    todo: dict[tuple, Condition] = {}
    for c in conditions:
        if c.serving is not None and c.metric in METRIC_KEYS:
            key = _key(c) + _parameters(c)
            if key not in _RUNS:
                todo.setdefault(key, c)
    if forked_workers(len(todo)) < 2:
        return
    for key, result in zip(todo, forked_map(_simulate, list(todo.values())), strict=True):
        _RUNS[key] = result


def predict_serving(c: Condition) -> tuple[float | None, str]:
    """The simulated value of a server row's metric, or None and why it is not covered."""
    if c.metric not in METRIC_KEYS:
        return None, f"metric {c.metric!r} is not predicted for server rows"
    result = _run(_key(c) + _parameters(c), c)
    if isinstance(result, str):
        return None, result
    return float(result[metric_key(c, result)]), ""


predict_serving.prepare = simulate_rows  # type: ignore[attr-defined]  # roofline.validation.validate runs it first
