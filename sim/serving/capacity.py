"""Capacity under latency limits: the analytic approximation for a configuration, and the
highest Poisson rate whose simulated SLO attainment stays at or above a target (bisection)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from hwmodels.calibration.params import framework_names, framework_terms
from hwmodels.engine_config import steady_batch
from hwmodels.schedulers import policy
from sim.serving.queueing import QueueEstimate, ServingQueue
from sim.serving.serve import prepare, serve
from workloads.errors import ConfigError, HwsimNote
from workloads.traces import LengthHistogram, make_trace

ATTAINMENT_TARGET = 0.9
"""SLO attainment a rate must reach to count as served (``--find-capacity``)."""

FIRST_PROBE_RATE = 1.0
"""Requests/s: the first probe of a disaggregated search, which doubles the rate until the SLOs
fail (the analytic approximation prices aggregated pools only)."""


def approximate(
    model: str,
    device: str,
    *,
    input_len: float,
    output_len: float,
    rate: float | None = None,
    concurrency: int | None = None,
    lengths: LengthHistogram | None = None,
    **config: Any,
) -> QueueEstimate:
    """The analytic approximation (``queueing.ServingQueue``) of an aggregated configuration with
    mean lengths (drawn from ``lengths``, whose shape sets the running sequences' length-biased
    context and KV footprint); ``rate`` (open loop, requests/s) or ``concurrency`` (closed loop) is
    shared evenly by the engines (replicas times pipeline stages)."""
    if (rate is None) == (concurrency is None):
        raise ConfigError("give exactly one of rate and concurrency")
    setup = prepare(model, device, max_context=int(input_len + output_len), **config)
    pool = setup.pools["agg"]
    engines = pool.workers * pool.pp
    kv = setup.engine_kv["agg"]
    context, held = None, input_len  # held: the prompt tokens of steady_batch's footprint
    if lengths is not None:
        context = lengths.decode_context(input_len, output_len) + 1.0  # the step's new token too
        reserved = policy(setup.engine.scheduler).admission == "reserve_full"
        held = lengths.held_prompt_len(input_len, output_len, reserved)
    n_max = steady_batch(setup.engine, kv.tokens, held, output_len)
    lag = framework_terms(setup.framework).output_lag_steps if setup.framework in framework_names() else 0.0
    queue = ServingQueue(
        setup.pricers["agg"], input_len, output_len, setup.engine.max_num_batched_tokens, n_max, lag, context
    )
    est = (
        queue.open(rate / engines) if rate is not None else queue.closed(max(1, round(concurrency / engines)))
    )
    return QueueEstimate(
        est.ttft_s,
        est.tpot_s,
        est.e2e_s,
        est.requests_per_s * engines,
        est.running * engines,
        est.capacity_requests_per_s * engines,
        est.stable,
    )


def find_capacity(
    model: str,
    device: str,
    *,
    slo_ttft_s: float | None,
    slo_tpot_s: float | None,
    trace_args: dict[str, Any],
    iterations: int = 10,
    progress: Callable[[int, int], None] | None = None,
    sim_args: dict[str, Any] | None = None,
    **config: Any,
) -> float:
    """The highest Poisson rate (requests/s) whose simulated SLO attainment is at least 0.9.

    Bisection between 0 and 1.5x the analytic capacity at the trace's mean lengths (aggregated),
    or between the last rate that met the SLOs and the first that failed when the rate doubles
    from ``FIRST_PROBE_RATE`` (disaggregated); each probe simulates the same seeded trace shape at
    the probed rate. ``sim_args`` (the KV link, the router) go to the simulation only.
    """
    if slo_ttft_s is None and slo_tpot_s is None:
        raise ConfigError("find-capacity needs --slo-ttft or --slo-tpot")
    lo = 0.0

    def attained(rate: float) -> bool:
        return simulated(rate)["slo_attainment"] >= ATTAINMENT_TARGET

    def simulated(rate: float) -> dict[str, Any]:
        return serve(
            model,
            device,
            make_trace(rate=rate, **trace_args),
            slo_ttft_s=slo_ttft_s,
            slo_tpot_s=slo_tpot_s,
            record=False,
            **(sim_args or {}),
            **config,
        ).metrics

    if config.get("mode", "agg") == "agg":
        probe = make_trace(rate=1.0, **trace_args)
        mean_in, mean_out = float(probe.input_len.mean()), float(probe.output_len.mean())
        hi = (
            1.5
            * approximate(
                model, device, input_len=mean_in, output_len=mean_out, rate=1e-6, **config
            ).capacity_requests_per_s
        )
        if attained(hi):
            warnings.warn(
                f"capacity search: the SLOs held at its upper bound, 1.5x the analytic capacity "
                f"({hi:.3g} requests/s); the capacity is at least that",
                HwsimNote,
                stacklevel=2,
            )
            return hi
    else:
        first = simulated(FIRST_PROBE_RATE)
        if first["slo_attainment"] < ATTAINMENT_TARGET:
            hi = FIRST_PROBE_RATE
        else:
            # Past the rate at which the whole trace arrives within one request's latency, the
            # trace is a burst: a faster rate tells nothing more.
            lo, hi = FIRST_PROBE_RATE, 2.0 * FIRST_PROBE_RATE
            burst = max(trace_args["n_requests"] / first["e2e_s_mean"], lo)
            while hi < burst and attained(hi):
                lo, hi = hi, 2.0 * hi
            if hi >= burst:
                if burst == lo or attained(burst):
                    warnings.warn(
                        f"capacity search: all {trace_args['n_requests']} requests met the SLOs "
                        f"arriving at {burst:.3g} requests/s, within one request's latency; the "
                        "capacity is at least that: give more requests (--num-requests) to find it",
                        HwsimNote,
                        stacklevel=2,
                    )
                    return burst
                hi = burst
    for k in range(iterations):
        mid = 0.5 * (lo + hi)
        if attained(mid):
            lo = mid
        else:
            hi = mid
        if progress:
            progress(k + 1, iterations)
    return lo
