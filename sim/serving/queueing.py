"""A fast analytic approximation of continuous-batching serving (no events).

Steady state of one replica with mean prompt ``I`` and output ``O`` tokens:

- ``n`` sequences run at once; each step decodes ``n`` tokens at the mean context
  ``I + O / 2`` (for a length distribution, the length-biased mean of the running sequences: a
  long answer stays in the batch longer) and prefills the prompts that arrive meanwhile, ``X * I * tau`` tokens for a
  throughput of ``X`` requests/s and a step of ``tau`` seconds; ``tau`` is priced by the same
  ``StepPricer`` as the simulation and found by fixed-point iteration;
- a share of the steps carries a prompt chunk (``X`` requests/s times ``ceil(I / budget)``
  chunks each, per step time): the mean step ``tau`` mixes steps with and without a chunk;
- a request waits half a step, is prefilled in ``ceil(I / budget)`` steps that carry its
  chunks, then decodes for ``O - 1`` steps of ``tau``; its client sees every token the
  framework's ``output_lag_steps`` steps later;
- closed loop at concurrency ``C``: ``n = min(C, n_max)``, ``X = n / S``, and the ``C - n``
  clients beyond the engine's limit wait ``(C - n) / X`` (Little's law);
- open loop at rate ``lambda``: ``n = lambda * S`` while below ``n_max``; admission queueing as
  an M/M/c queue with ``c = n_max`` servers of mean service ``S`` (Erlang C); at or above the
  capacity ``n_max / S(n_max)`` the queue grows without bound.

``n_max`` is the engine's ``max_num_seqs`` or the sequences whose mean KV footprint fits the
pool, whichever is smaller. Beyond that length bias the approximation ignores the variance of
lengths and the burstiness of steps, so it parts from the simulation near saturation (the
report plots both against the rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.serving.step_cost import StepPricer


@dataclass(frozen=True)
class QueueEstimate:
    """Mean latencies (s) and throughput of the approximation. Above capacity (``stable`` False)
    the queue grows without bound: ``ttft_s`` and ``e2e_s`` are ``math.inf`` (no steady state),
    while the engine runs full batches, whose ``tpot_s`` and throughput (the capacity) are given."""

    ttft_s: float
    tpot_s: float
    e2e_s: float
    requests_per_s: float
    running: float
    capacity_requests_per_s: float
    stable: bool


def _erlang_c_wait_s(c: int, offered: float, service_s: float) -> float:
    """Mean wait in queue of an M/M/c queue with ``offered = lambda * S`` Erlangs."""
    if offered >= c:
        return math.inf
    # Erlang B by the stable recurrence, then Erlang C
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    rho = offered / c
    p_wait = b / (1.0 - rho + rho * b)
    lam = offered / service_s
    return p_wait / (c / service_s - lam)


class ServingQueue:
    """The approximation for one replica: ``pricer`` prices its steps, ``n_max`` bounds its batch."""

    def __init__(
        self,
        pricer: StepPricer,
        input_len: float,
        output_len: float,
        budget: int,
        n_max: int,
        output_lag_steps: float = 0.0,
        context: float | None = None,
    ) -> None:
        self.pricer, self.I, self.O = pricer, float(input_len), float(output_len)
        self.context = self.I + self.O / 2.0 if context is None else float(context)
        """Mean KV tokens of a running sequence in a decode step: ``I + O / 2``, or the
        length-biased one of a length distribution (``LengthHistogram.decode_context``)."""
        self.lag = float(output_lag_steps)
        self.budget, self.n_max = budget, max(int(n_max), 1)
        self.prefill_steps = math.ceil(self.I / budget)

    def _tau(self, n: float, chunk: float) -> float:
        k = max(round(n), 1)
        chunks = [(max(round(chunk), 1), 0)] if chunk >= 0.5 else []
        return self.pricer.step(k, k * self.context, chunks, k).time_s

    def step_s(self, n: float, throughput: float) -> tuple[float, float]:
        """(mean step time, time of a step that carries a prompt chunk) with ``n`` running
        sequences and ``throughput`` requests/s arriving: a share ``q = X * prefill_steps * tau``
        of the steps carries a chunk of ``I / prefill_steps`` tokens."""
        chunk = self.I / self.prefill_steps
        plain, loaded = self._tau(n, 0.0), self._tau(n, chunk)
        tau = plain
        for _ in range(100):
            q = min(1.0, throughput * self.prefill_steps * tau)
            new = q * loaded + (1.0 - q) * plain
            if abs(new - tau) <= 1e-12 + 1e-9 * tau:
                break
            tau = 0.5 * (tau + new)
        return tau, loaded

    def service_s(self, n: float, throughput: float) -> tuple[float, float, float]:
        """(service time, mean step time, prefill time) at ``n`` running and ``throughput``
        requests/s: half a step of wait, the prompt's steps, then ``O - 1`` decode steps."""
        tau, loaded = self.step_s(n, throughput)
        prefill = (0.5 + self.lag) * tau + self.prefill_steps * loaded
        return prefill + max(self.O - 1.0, 0.0) * tau, tau, prefill

    def capacity(self) -> float:
        """Largest sustainable rate, requests/s: ``n_max`` sequences in service."""
        x = 0.0
        for _ in range(60):
            s, _, _ = self.service_s(self.n_max, x)
            new = self.n_max / s
            if abs(new - x) <= 1e-9 * new:
                break
            x = 0.5 * (x + new)
        return x

    def closed(self, concurrency: int) -> QueueEstimate:
        n = min(concurrency, self.n_max)
        x = 0.0
        for _ in range(200):
            s, tau, _ = self.service_s(n, x)
            new = n / s
            if abs(new - x) <= 1e-10 * new:
                break
            x = 0.5 * (x + new)
        s, tau, prefill = self.service_s(n, x)
        wait = (concurrency - n) / x if concurrency > n else 0.0
        ttft = wait + prefill
        return QueueEstimate(ttft, tau, wait + s, x, n, self.capacity(), True)

    def open(self, rate: float) -> QueueEstimate:
        cap = self.capacity()
        if rate >= cap:
            tau_full = self.service_s(self.n_max, cap)[1]
            return QueueEstimate(math.inf, tau_full, math.inf, cap, self.n_max, cap, False)
        n = 1.0
        for _ in range(200):
            s, tau, _ = self.service_s(n, rate)
            new = min(rate * s, self.n_max)
            if abs(new - n) <= 1e-9 * new:
                break
            n = 0.5 * (n + new)
        s, tau, prefill = self.service_s(n, rate)
        wait = _erlang_c_wait_s(self.n_max, rate * s, s)
        return QueueEstimate(wait + prefill, tau, wait + s, rate, n, cap, True)
