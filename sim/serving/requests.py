"""Per-request state and timestamps of a serving run, as arrays over request ids."""

from __future__ import annotations

import numpy as np

from workloads.traces import Trace


class Requests:
    """Everything known about each request of a run, indexed by request id (trace order).

    Times are seconds of simulated time; NaN until the event happens.
    """

    def __init__(self, trace: Trace) -> None:
        n = trace.n_requests
        self.n = n
        self.input_len = trace.input_len.astype(np.int64)
        self.output_len = trace.output_len.astype(np.int64)
        self.arrival_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.generated = np.zeros(n, dtype=np.int64)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.swapped_tokens = np.zeros(n, dtype=np.int64)
        """KV tokens of a request swapped out to host memory (0 when none)."""
        shared = trace.prefix_id is not None
        self.prefix_id = trace.prefix_id.astype(np.int64) if shared else np.full(n, -1, dtype=np.int64)
        self.prefix_len = trace.prefix_len.astype(np.int64) if shared else np.zeros(n, dtype=np.int64)
        self.first_step_s = np.zeros(n)
        """Duration of the engine step after the one that produced the request's first token (the
        producing step's when the engine then idles), s: the unit of the client-side output lag."""
        self.last_step_s = np.zeros(n)
        """The same for its last token, s."""
        self.cached_tokens = np.zeros(n, dtype=np.int64)
        """Prompt tokens served from the prefix cache at the request's (last) admission."""

    def remaining(self, rid: int) -> int:
        """Tokens the request has still to generate."""
        return int(self.output_len[rid] - self.generated[rid])

    @property
    def completed(self) -> np.ndarray:
        return ~np.isnan(self.finish_s)
