"""One model replica serving requests step by step on the SimPy engine.

A replica holds a waiting queue and the running requests (compact NumPy arrays: request
id, tokens in the KV cache, prompt tokens still to prefill, admission order, KV blocks
held). Each engine step is one SimPy timeout: the policy (``schedulers.py``) forms the
batch, ``StepPricer`` prices it, and when the step ends the tokens it produced are
credited. Events are per step and per arrival, never per token.

With attention data parallelism (``pricer.ranks > 1``) each request is dispatched to one rank
in turn as it arrives (SGLang's round-robin ``DataParallelController``) and keeps it; a step is
priced from each rank's own sequences (``StepPricer.step_ranks``).

Roles: ``both`` (aggregated serving), ``prefill`` (hands each request to ``on_prefilled``
once its first token exists, keeping its KV blocks until ``release`` is called) and
``decode`` (admits requests whose KV cache arrived, ``prefilled=True``).
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from hwmodels.engine_config import EngineConfig, KvCapacity
from hwmodels.schedulers import Policy
from sim.serving.requests import Requests
from sim.serving.step_cost import RankWork, StepPricer


@dataclass
class StepRecord:
    """What the replica did in each step (lists, one entry per step), for timelines and checks."""

    start_s: list[float]
    time_s: list[float]
    n_decode: list[int]
    prefill_tokens: list[int]
    kv_tokens: list[int]
    n_running: list[int]
    n_waiting: list[int]
    preempted: list[int]
    """Preemptions of this replica so far, at each step's start."""

    @classmethod
    def empty(cls) -> StepRecord:
        return cls([], [], [], [], [], [], [], [])

    def add(
        self,
        start_s: float,
        time_s: float,
        n_decode: int,
        prefill_tokens: int,
        kv_tokens: int,
        n_running: int,
        n_waiting: int,
        preempted: int,
    ) -> None:
        """One step's entries."""
        self.start_s.append(start_s)
        self.time_s.append(time_s)
        self.n_decode.append(n_decode)
        self.prefill_tokens.append(prefill_tokens)
        self.kv_tokens.append(kv_tokens)
        self.n_running.append(n_running)
        self.n_waiting.append(n_waiting)
        self.preempted.append(preempted)


class Replica:
    """A replica of the model (``tp * pp * ep`` devices) with one engine's scheduler and KV pool.

    Parameters
    ----------
    env : the SimPy environment.
    name : for timelines.
    pricer : prices this replica's steps.
    engine, kv : batching limits and the KV pool (per device of the replica).
    requests : the run's request arrays.
    policy : the scheduling policy.
    on_finish : called with a request id when it completes.
    role : ``both``, ``prefill`` or ``decode``.
    on_prefilled : (prefill role) called with a request id and the KV blocks it holds when its
        first token exists; the caller moves the KV cache and then calls ``release``.
    swap_s_per_token : seconds to move one token's KV cache to or from host memory (swap
        preemption), from the host link's bandwidth.
    mtp_acceptance : with a pricer that verifies drafted tokens (``pricer.verify > 1``), the
        chance each drafted token is accepted while all before it were; each decoding sequence
        then emits 1 + the accepted drafts per step, drawn from a generator seeded by ``name``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        pricer: StepPricer,
        engine: EngineConfig,
        kv: KvCapacity,
        requests: Requests,
        policy: Policy,
        on_finish: Callable[[int], None],
        role: str = "both",
        on_prefilled: Callable[[int, int], None] | None = None,
        swap_s_per_token: float = 0.0,
        record: bool = True,
        mtp_acceptance: float = 0.0,
    ) -> None:
        self.env, self.name, self.pricer = env, name, pricer
        self.engine, self.kv, self.req, self.policy = engine, kv, requests, policy
        self.on_finish, self.on_prefilled, self.role = on_finish, on_prefilled, role
        self.swap_s_per_token = swap_s_per_token
        self.lookahead = pricer.verify
        """KV slots a decoding sequence needs in a step: its token and the drafts it verifies."""
        self.mtp_acceptance = mtp_acceptance
        self._rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.bs = engine.block_size
        self.free_blocks = kv.blocks
        self.waiting: deque[int] = deque()
        self.prefilled_arrivals: set[int] = set()
        self.rid = np.zeros(0, dtype=np.int64)
        self.ctx = np.zeros(0, dtype=np.int64)
        self.pre_left = np.zeros(0, dtype=np.int64)
        self.order = np.zeros(0, dtype=np.int64)
        self.blocks = np.zeros(0, dtype=np.int64)
        self.shared = np.zeros(0, dtype=np.int64)
        """Leading tokens of each running request whose KV blocks belong to the prefix cache."""
        self.ref = np.zeros(0, dtype=bool)
        """Whether each running request holds a reference to its cached prefix."""
        self.prefix_cache: OrderedDict[int, int] = OrderedDict()
        """Prefix id -> KV blocks it holds, least recently used first (prefix caching)."""
        self.prefix_users: dict[int, int] = {}
        self.rank = np.zeros(0, dtype=np.int64)
        """Attention data-parallel rank of each running request."""
        self._rank_of: dict[int, int] = {}
        self._arrived = 0
        self._admitted = 0
        self._lagging: list[tuple[int, bool]] = []
        self.busy_s = 0.0
        self.dynamic_energy_j = 0.0
        self.preempted = 0
        self.steps = StepRecord.empty() if record else None
        self._group_left = 0
        """Decode steps left in the current multi-step run (``EngineConfig.scheduler_steps``)."""
        self._steady = False
        """Whether the step just planned is a steady one (``_plan_steady``)."""
        self._wake: simpy.Event | None = None
        self.process = env.process(self._run())

    # ---- queue ---------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Requests waiting or running here (for least-outstanding routing)."""
        return len(self.waiting) + len(self.rid)

    def submit(self, rid: int, prefilled: bool = False) -> None:
        """A request arrives (with its KV cache already computed when ``prefilled``)."""
        if prefilled:
            self.prefilled_arrivals.add(rid)
        if self.pricer.ranks > 1:
            self._rank_of[rid] = self._arrived % self.pricer.ranks
        self._arrived += 1
        self.waiting.append(rid)
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def release(self, n_blocks: int) -> None:
        """Blocks held for a finished transfer return to the pool."""
        self.free_blocks += n_blocks
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    # ---- the loop ----------------------------------------------------------------------
    def _run(self):
        env = self.env
        while True:
            plan = self._plan() if (len(self.rid) or self.waiting) else None
            if plan is None and len(self.rid) > 1:
                # running prefills hold every block and none can grow: evict the newest, as vLLM does
                self._preempt(int(np.argmax(self.order)))
                continue
            if plan is None:
                self._wake = env.event()
                yield self._wake
                self._wake = None
                continue
            dec_idx, chunks, extra_s = plan
            n_dec = len(dec_idx)
            n_logits = n_dec * self.lookahead + sum(1 for i, t, _ in chunks if t == self.pre_left[i])
            cost = self._price(dec_idx, chunks, n_logits)
            dt = cost.time_s + extra_s
            for rid, first in self._lagging:  # tokens of the last step reach clients during this one
                (self.req.first_step_s if first else self.req.last_step_s)[rid] = dt
            self._lagging.clear()
            if self.steps is not None:
                self.steps.add(
                    env.now,
                    dt,
                    n_dec,
                    sum(t for _, t, _ in chunks),
                    int(self.ctx.sum()),
                    len(self.rid),
                    len(self.waiting),
                    self.preempted,
                )
            self.busy_s += dt
            self.dynamic_energy_j += cost.energy_j
            ahead = self._steady_ahead(dt) if self._steady else []
            if not ahead:
                yield env.timeout(dt)
                self._apply(dec_idx, chunks, dt)
                continue
            # steps that nothing can interrupt, run as one wait: credited when it ends
            end = env.now + dt
            for more in ahead:
                end += more
            if end <= 2.0 * env.now:  # the difference is exact (Sterbenz), so the wait ends at `end`
                yield env.timeout(end - env.now)
            else:
                for more in (dt, *ahead):
                    yield env.timeout(more)
            self.ctx += len(ahead)
            self.req.generated[self.rid] += len(ahead)
            if not self._credit_decodes(ahead[-1]):  # a static batch: its own crediting
                self._apply(np.arange(len(self.rid)), [], ahead[-1])

    def _price(self, dec_idx: np.ndarray, chunks: list[tuple[int, int, int]], n_logits: int):
        """The step's cost, split by attention rank when there are several."""
        if self.pricer.ranks == 1:
            dec_ctx = float(self.ctx[dec_idx].sum()) if len(dec_idx) else 0.0
            return self.pricer.step(len(dec_idx), dec_ctx, [(t, c) for _, t, c in chunks], n_logits)
        n = self.pricer.ranks
        ranks = self.rank[dec_idx]
        n_dec = np.bincount(ranks, minlength=n)
        dec_ctx = np.bincount(ranks, weights=self.ctx[dec_idx], minlength=n)
        work = [[] for _ in range(n)]
        logits = n_dec * self.lookahead
        for i, t, c in chunks:
            work[self.rank[i]].append((t, c))
            logits[self.rank[i]] += t == self.pre_left[i]
        return self.pricer.step_ranks(
            [RankWork(int(n_dec[k]), float(dec_ctx[k]), tuple(work[k]), int(logits[k])) for k in range(n)]
        )

    def _steady_ahead(self, dt: float) -> list[float]:
        """The steps after a steady one (``_plan_steady``, or a static batch's decode step) of time
        ``dt`` that are as surely steady and that nothing can interrupt, planned, priced and
        recorded as the loop would; their times, s (none where the loop must run step by step).
        They run while no request finishes (the last of them may finish some; none while a
        static batch holds a finished sequence as padding), no event of the run falls before a
        step's start (no arrival, transfer or other replica's step could change the plan), and
        the pool holds the blocks their decodes need. One token a sequence, one attention rank."""
        if self.lookahead != 1 or self.pricer.ranks != 1 or not self.env.now + dt < self.env.peek():
            return []  # (the last: an event falls before the second step would start)
        req, n = self.req, len(self.rid)
        left = int((req.output_len[self.rid] - req.generated[self.rid]).min())  # this step's token included
        last = self._steps_with_blocks(left)
        if last < 2:
            return []
        next_event = self.env.peek()
        start = self.env.now + dt  # the second step's
        ctx0 = int(self.ctx.sum())
        times: list[float] = []
        for j in range(2, last + 1):
            if not start < next_event:
                break
            cost = self.pricer.step(n, float(ctx0 + (j - 1) * n), [], n)
            if self.steps is not None:
                self.steps.add(
                    start, cost.time_s, n, 0, ctx0 + (j - 1) * n, n, len(self.waiting), self.preempted
                )
            self.busy_s += cost.time_s
            self.dynamic_energy_j += cost.energy_j
            self._next_in_group()
            times.append(cost.time_s)
            start += cost.time_s
        if times and self.policy.admission != "reserve_full":
            grown = np.maximum(self._blocks_for(self.ctx + len(times) + 1 - self.shared), self.blocks)
            self.free_blocks -= int((grown - self.blocks).sum())
            self.blocks = grown
        return times

    def _steps_with_blocks(self, most: int) -> int:
        """The most steps, up to ``most``, counting the one just planned (whose blocks it holds),
        whose decodes the free blocks can grow into."""
        if self.policy.admission == "reserve_full":
            return most

        def fits(k: int) -> bool:
            need = np.maximum(self._blocks_for(self.ctx + k - self.shared) - self.blocks, 0)
            return int(need.sum()) <= self.free_blocks

        lo, hi = 1, most  # fits(1): the planned step's blocks are held
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
        return lo

    def _blocks_for(self, tokens):
        return -(-tokens // self.bs)

    def _more_blocks(self, slots, tokens):
        """Blocks slots ``slots`` need beyond those they hold to add ``tokens`` each: their own
        context (less the prefix whose blocks the prefix cache holds) plus ``tokens``."""
        return self._blocks_for(self.ctx[slots] - self.shared[slots] + tokens) - self.blocks[slots]

    # ---- forming a step -------------------------------------------------------------------
    def _plan(self):
        """(decode slots, [(slot, tokens, cached)], extra seconds) of the next step, or None."""
        self._steady = False
        if self.policy.static:
            plan = self._plan_static()
            # a running static batch decodes in lockstep and nothing joins it until it ends: as
            # steady as a continuous batch with none waiting, until a sequence finishes
            # (``_steady_ahead`` runs no step past a finished sequence's padding row)
            self._steady = plan is not None and not plan[1]
            return plan
        steady = self._plan_steady()
        if steady is not None:
            self._steady = True
            return steady
        extra_s = 0.0
        decoding = bool((self.pre_left == 0).any())
        if self._group_left and decoding:  # inside a multi-step run: its decode steps go on
            self._group_left -= 1
        elif not self.policy.mixed and (bool((self.pre_left > 0).any()) or self._admissible()):
            chunks, extra_s = self._plan_prefill(self.engine.max_num_batched_tokens)
            if chunks:  # a prefill-first engine runs prompts while any can go
                self._group_left = 0
                return np.zeros(0, dtype=np.int64), chunks, extra_s
            self._group_left = self.engine.scheduler_steps - 1 if decoding else 0
        else:
            self._group_left = self.engine.scheduler_steps - 1 if decoding else 0
        if self.policy.admission == "reserve_full":
            dec_idx = np.flatnonzero(self.pre_left == 0)
        else:
            more_s, dec_idx, grow, need = self._make_room_for_decodes()
            extra_s += more_s
            if need:
                self.blocks[dec_idx] += grow
                self.free_blocks -= need
        chunks = []
        if self.policy.mixed:
            running = len(self.rid)
            chunks, more_s = self._plan_prefill(self.engine.max_num_batched_tokens - len(dec_idx))
            extra_s += more_s
            if not len(dec_idx) and not chunks and len(self.rid) > running:
                return self._plan()  # only swapped-in or transferred requests joined: they decode next
        if not len(dec_idx) and not chunks:
            return None
        return dec_idx, chunks, extra_s

    def _plan_steady(self):
        """The plan of a step in which every running sequence decodes and nothing else can
        happen: no request waits, none is mid-prompt, and the blocks its decodes need are free.
        It is what ``_plan`` would form then (no admission, no prefill chunk, no preemption;
        the multi-step count goes on), found with a few array operations instead of the whole
        plan; None when the step needs the whole plan."""
        if self.waiting or not len(self.rid) or (self.pre_left != 0).any():
            return None
        dec_idx = np.arange(len(self.rid))
        if self.policy.admission != "reserve_full":
            grow = self._decode_growth(dec_idx)
            need = int(grow.sum())
            if need > self.free_blocks:
                return None  # the whole plan reclaims cached prefixes or preempts
            if need:
                self.blocks += grow
                self.free_blocks -= need
        self._next_in_group()
        return dec_idx, [], 0.0

    def _next_in_group(self) -> None:
        """A decode-only step goes on the multi-step run, or starts the next one."""
        self._group_left = self._group_left - 1 if self._group_left else self.engine.scheduler_steps - 1

    def _plan_prefill(self, budget: int) -> tuple[list[tuple[int, int, int]], float]:
        """Prompt chunks within ``budget`` tokens: running partial prefills in admission order,
        then admissions; and the seconds of swap-in transfers the admissions add."""
        chunks: list[tuple[int, int, int]] = []
        partial = self.pre_left > 0
        if not self.waiting and not partial.any():
            return chunks, 0.0
        for i in np.flatnonzero(partial)[np.argsort(self.order[partial])]:
            if budget <= 0:
                break
            t = self._chunk(int(self.pre_left[i]), budget, started=True)
            if t == 0 or not self._grow(i, t):
                break
            chunks.append((int(i), t, int(self.ctx[i])))
            budget -= t
        extra_s = self._admit(budget, chunks)
        return chunks, extra_s

    def _chunk(self, left: int, budget: int, started: bool = False) -> int:
        """Prompt tokens of one request that go into this step (``left`` of its prompt to go).

        An unchunked engine takes a prompt whole or waits for a step with room for it. One longer
        than its whole token budget it can only run in chunks: an engine that mixes prompts with
        decodes chunks it into whatever budget each step leaves, beside the decodes, and so the
        rest of a prompt ``started`` that way (TensorRT-LLM refuses such a prompt unless chunked
        context is on, so a run that served it had it on); one that prefills in steps of its own
        gives it a whole step."""
        if self.policy.chunked or left <= budget:
            return min(left, budget)
        if self.policy.mixed and (started or left > self.engine.max_num_batched_tokens):
            return budget
        return budget if budget == self.engine.max_num_batched_tokens else 0

    def _grow(self, i: int, tokens: int) -> bool:
        """Allocate the blocks slot ``i`` needs for ``tokens`` more (on-demand policies)."""
        if self.policy.admission == "reserve_full":
            return True
        need = int(self._more_blocks(i, tokens))
        if need > self.free_blocks and not self._reclaim(need):
            return False
        self.blocks[i] += need
        self.free_blocks -= need
        return True

    def _admissible(self) -> bool:
        """Whether the head of the queue could be admitted now (prefill-first policies)."""
        if not self.waiting or len(self.rid) >= self.engine.max_num_seqs:
            return False
        return self._fits_admission(self.waiting[0], self.engine.max_num_batched_tokens)

    def _prompt_tokens(self, rid: int) -> int:
        """Tokens to prefill on admission: the prompt plus what a recompute must redo, less the
        prefix already cached."""
        if rid in self.prefilled_arrivals or self.req.swapped_tokens[rid]:
            return 0
        return int(self.req.input_len[rid] + self.req.generated[rid]) - self._cache_hit(rid)

    def _cache_hit(self, rid: int) -> int:
        """Prompt tokens of ``rid`` whose KV blocks the prefix cache holds (whole blocks; the
        last prompt token is always computed, as vLLM does to produce logits)."""
        p = int(self.req.prefix_id[rid])
        if not self.engine.prefix_caching or p < 0 or p not in self.prefix_cache:
            return 0
        usable = min(int(self.req.prefix_len[rid]), int(self.req.input_len[rid]) - 1)
        return min(self.prefix_cache[p] * self.bs, usable // self.bs * self.bs)

    def _reclaim(self, need: int) -> bool:
        """Evict cached prefixes no running request uses (least recently used first) until
        ``need`` blocks are free; whether that succeeded."""
        for p in list(self.prefix_cache):
            if self.free_blocks >= need:
                break
            if self.prefix_users.get(p, 0) == 0:
                self.free_blocks += self.prefix_cache.pop(p)
        return self.free_blocks >= need

    def _cache_prefix(self, i: int) -> None:
        """Slot ``i`` finished its prompt: hand its prefix's whole blocks to the cache."""
        rid = int(self.rid[i])
        p = int(self.req.prefix_id[rid])
        if not self.engine.prefix_caching or p < 0 or self.policy.admission == "reserve_full":
            return
        if p in self.prefix_cache:
            self.prefix_cache.move_to_end(p)
            return
        k = int(self.req.prefix_len[rid]) // self.bs - int(self.shared[i]) // self.bs
        k = min(k, int(self.blocks[i]))
        if k <= 0:
            return
        self.prefix_cache[p] = k + int(self.shared[i]) // self.bs
        self.blocks[i] -= k
        self.shared[i] += k * self.bs
        if not self.ref[i]:
            self.prefix_users[p] = self.prefix_users.get(p, 0) + 1
            self.ref[i] = True

    def _fits_admission(self, rid: int, budget: int) -> bool:
        req, pol = self.req, self.policy
        prompt = self._prompt_tokens(rid)
        held = int(self.req.swapped_tokens[rid]) or (
            int(req.input_len[rid]) + 1 if rid in self.prefilled_arrivals else 0
        )
        if pol.admission == "reserve_full":
            need = int(self._blocks_for(int(req.input_len[rid] + req.output_len[rid])))
            return need <= self.free_blocks or self._reclaim(need)
        first = held + min(prompt, budget) if pol.chunked else held + prompt
        need = float(self._blocks_for(max(first, 1)))
        if pol.admission == "reserve_ratio":
            future = pol.new_token_ratio * float(
                (req.output_len[self.rid] - req.generated[self.rid]).sum() + req.remaining(rid)
            )
            need += future / self.bs
        return need <= self.free_blocks or self._reclaim(math.ceil(need))

    def _admit(self, budget: int, chunks: list) -> float:
        """Admit waiting requests in arrival order while slots, budget and blocks allow; returns
        the seconds of swap-in transfers it adds to the step."""
        extra_s = 0.0
        req = self.req
        while self.waiting and len(self.rid) < self.engine.max_num_seqs:
            rid = self.waiting[0]
            prompt = self._prompt_tokens(rid)
            if prompt and budget <= 0:
                break
            if not self._fits_admission(rid, budget):
                break
            self.waiting.popleft()
            swapped = int(req.swapped_tokens[rid])
            hit = 0
            if rid in self.prefilled_arrivals:
                self.prefilled_arrivals.discard(rid)
                ctx = int(req.input_len[rid]) + int(req.generated[rid]) - 1
            elif swapped:
                ctx = swapped
            else:
                hit = self._cache_hit(rid)
                ctx = hit
                if hit:
                    p = int(req.prefix_id[rid])
                    self.prefix_cache.move_to_end(p)
                    self.prefix_users[p] = self.prefix_users.get(p, 0) + 1
                req.cached_tokens[rid] = hit
            if swapped:
                extra_s += swapped * self.swap_s_per_token
                req.swapped_tokens[rid] = 0
            if self.policy.admission == "reserve_full":
                n_blocks = int(self._blocks_for(req.input_len[rid] + req.output_len[rid]))
            else:
                n_blocks = int(self._blocks_for(ctx - hit))
            self.free_blocks -= n_blocks
            i = self._add_slot(rid, ctx, prompt, n_blocks, hit)
            if prompt:
                t = self._chunk(prompt, budget)
                if t == 0 or not self._grow(i, t):
                    break
                chunks.append((i, t, ctx))
                budget -= t
        return extra_s

    def _add_slot(self, rid: int, ctx: int, prompt: int, n_blocks: int, shared: int = 0) -> int:
        self.shared = np.append(self.shared, shared)
        self.ref = np.append(self.ref, shared > 0)
        self.rid = np.append(self.rid, rid)
        self.ctx = np.append(self.ctx, ctx)
        self.pre_left = np.append(self.pre_left, prompt)
        self.order = np.append(self.order, self._admitted)
        self.blocks = np.append(self.blocks, n_blocks)
        self.rank = np.append(self.rank, self._rank_of.get(rid, 0))
        self._admitted += 1
        return len(self.rid) - 1

    def _make_room_for_decodes(self) -> tuple[float, np.ndarray, np.ndarray, int]:
        """Preempt the most recently admitted requests until every decode gets its next block,
        once cached prefixes no running request uses are evicted (their blocks are free to
        vLLM's allocator, reused least recently used first). Returns the seconds of swap-out
        transfers, the decoding slots left, the new blocks each needs and their sum."""
        extra_s = 0.0
        while True:
            dec_idx = np.flatnonzero(self.pre_left == 0)
            grow = self._decode_growth(dec_idx)
            need = int(grow.sum())
            if need <= self.free_blocks or self._reclaim(need) or len(self.rid) <= 1:
                return extra_s, dec_idx, grow, need
            extra_s += self._preempt(int(np.argmax(self.order)))

    def _decode_growth(self, dec_idx: np.ndarray) -> np.ndarray:
        """New blocks each decoding slot needs for its next step's ``lookahead`` tokens."""
        return np.maximum(self._more_blocks(dec_idx, self.lookahead), 0)

    def _preempt(self, i: int) -> float:
        """Evict slot ``i``: free its blocks and queue it first (recompute) or swap its KV out."""
        rid = int(self.rid[i])
        self.req.preemptions[rid] += 1
        self.preempted += 1
        self.free_blocks += int(self.blocks[i])
        extra_s = 0.0
        if self.engine.preemption == "swap" and self.pre_left[i] == 0:
            self.req.swapped_tokens[rid] = int(self.ctx[i])
            extra_s = int(self.ctx[i]) * self.swap_s_per_token
        self.waiting.appendleft(rid)
        self._remove(np.arange(len(self.rid)) == i)
        return extra_s

    def _remove(self, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask & self.ref):
            self.prefix_users[int(self.req.prefix_id[self.rid[i]])] -= 1
        keep = ~mask
        self.rid, self.ctx, self.pre_left = self.rid[keep], self.ctx[keep], self.pre_left[keep]
        self.order, self.blocks, self.shared = self.order[keep], self.blocks[keep], self.shared[keep]
        self.ref, self.rank = self.ref[keep], self.rank[keep]

    # ---- static batches ---------------------------------------------------------------------
    def _plan_static(self):
        if len(self.rid):  # the running batch decodes, finished sequences as padding
            return np.arange(len(self.rid)), [], 0.0
        chunks = []
        while self.waiting and len(self.rid) < self.engine.max_num_seqs:
            rid = self.waiting[0]
            if not self._fits_admission(rid, 0):
                break
            self.waiting.popleft()
            n_blocks = int(self._blocks_for(self.req.input_len[rid] + self.req.output_len[rid]))
            self.free_blocks -= n_blocks
            prompt = int(self.req.input_len[rid])
            chunks.append((self._add_slot(rid, 0, prompt, n_blocks), prompt, 0))
        return (np.zeros(0, dtype=np.int64), chunks, 0.0) if chunks else None

    # ---- crediting a finished step ------------------------------------------------------------
    def _emitted(self, n: int) -> np.ndarray:
        """Tokens each of ``n`` decoding sequences emits this step: 1, plus its leading accepted
        drafts when the step verifies drafted tokens."""
        if self.lookahead == 1:
            return np.ones(n, dtype=np.int64)
        accepted = self._rng.random((n, self.lookahead - 1)) < self.mtp_acceptance
        return 1 + np.cumprod(accepted, axis=1).sum(axis=1)

    def _apply(self, dec_idx: np.ndarray, chunks: list[tuple[int, int, int]], dt: float) -> None:
        if not chunks and len(dec_idx) == len(self.rid) and self._credit_decodes(dt):
            return
        now, req = self.env.now, self.req
        if len(dec_idx):
            rids = self.rid[dec_idx]
            if self.lookahead == 1:  # one token each, none for static padding rows
                self.ctx[dec_idx] += 1
                req.generated[rids] += req.generated[rids] < req.output_len[rids]
            else:
                left = np.maximum(req.output_len[rids] - req.generated[rids], 0)  # static padding: 0
                emitted = np.minimum(self._emitted(len(dec_idx)), left)
                self.ctx[dec_idx] += np.maximum(emitted, 1)
                req.generated[rids] += emitted
        first_tokens = []
        for i, t, _ in chunks:
            self.ctx[i] += t
            self.pre_left[i] -= t
            if self.pre_left[i] == 0:
                first_tokens.append(i)
        handed = []
        for i in first_tokens:
            self._cache_prefix(i)
            rid = int(self.rid[i])
            req.generated[rid] += 1
            if np.isnan(req.first_token_s[rid]):
                req.first_token_s[rid] = now
                req.first_step_s[rid] = dt
                self._lagging.append((rid, True))
            if self.role == "prefill" and req.generated[rid] < req.output_len[rid]:
                handed.append(i)
        done = req.generated[self.rid] >= req.output_len[self.rid]
        if self.policy.static:
            if not done.all():
                return
            done[:] = True
        if handed or done.any():
            self._leave(done, handed, now, dt)

    def _credit_decodes(self, dt: float) -> bool:
        """Credit the common step, every running sequence decoding one token (its slots are the
        running arrays in order), with fewer array operations than the general crediting; False
        where that is needed (drafted tokens, static batches' padding rows)."""
        if self.lookahead != 1 or self.policy.static:
            return False
        req = self.req
        out = req.output_len[self.rid]
        gen = req.generated[self.rid]
        gen += gen < out
        req.generated[self.rid] = gen
        self.ctx += 1
        done = gen >= out
        if done.any():
            self._leave(done, [], self.env.now, dt)
        return True

    def _leave(self, done: np.ndarray, handed: list[int], now: float, dt: float) -> None:
        """Slots ``done`` (a mask) finished and slots ``handed`` go to the decode pool: credit
        their times, free or hand over their blocks, and drop them from the running arrays."""
        req = self.req
        finished = done
        finished[handed] = False
        for i in np.flatnonzero(finished):
            rid = int(self.rid[i])
            req.finish_s[rid] = now
            req.last_step_s[rid] = dt
            self._lagging.append((rid, False))
            self.on_finish(rid)
        self.free_blocks += int(self.blocks[finished].sum())
        for i in sorted(handed):  # in slot order
            self.on_prefilled(int(self.rid[i]), int(self.blocks[i]))
        leaving = finished
        leaving[handed] = True
        for rid in self.rid[leaving]:
            self._rank_of.pop(int(rid), None)
        self._remove(leaving)
