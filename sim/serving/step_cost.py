"""Price one engine step of a mixed batch from precomputed grids of the cost model.

An engine step runs some sequences' decode tokens (one each, at their own context) and
some prefill chunks (``T`` new tokens after ``L`` cached), all in one forward pass. Its
op table splits into parts that depend on different quantities:

- **dense**: every op whose shape depends only on the token rows ``m`` of the step
  (projections, FFN or experts, norms, RoPE, embedding, collectives): priced at ``m`` =
  decode tokens + prefill tokens;
- **decode attention**: attention of ``B`` decoding sequences with summed context ``S``
  (and, for MLA, the absorbed projections that only decode runs): priced at ``B`` and the
  mean context ``S / B``;
- **prefill attention**: attention of each chunk (``T``, ``L``) (MLA: its ``kv_up``);
- **head**: final norm and LM head for the sequences that emit a token this step.

Each part is evaluated by the architecture's own cost model (``hwmodels.registry``) once,
vectorized over a grid: exact integers for small token and sequence counts, then
geometric points with linear interpolation. A step is then a few interpolations, never a
cost-model call. On one sequence the parts add up to ``roofline.estimate``'s prefill and
decode steps exactly (a test keeps it, to interpolation error).

One attention kernel runs per layer for the whole mixed batch (vLLM V1's unified
FlashAttention varlen call, TensorRT-LLM's attention plugin, FlashInfer in SGLang), so a
step with several attention groups pays the attention launches once: the launch overhead
of the extra groups is taken off.

With attention data parallelism (``Placement.attention_dp``, ``ep`` ranks) each rank runs
attention, the dense layers, router and shared experts for its own sequences only, and the
ranks meet at the routed experts, which run over all their tokens. A step is then as long as
its busiest rank's own work plus the routed experts over the group's tokens: one request's
prompt is not spread over the ranks (SGLang's ``--enable-dp-attention`` dispatches each
request to one rank, ``DataParallelController``; TensorRT-LLM's attention DP likewise).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwmodels import registry
from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from workloads.graph import ROUTED_EXPERT_OPS, OpTable, build_ops
from workloads.model_spec import ModelSpec
from workloads.quant import Quant

HEAD_OPS = ("final_norm", "lm_head")
EXACT_UP_TO = 1024
"""Token and sequence counts up to this are priced exactly (tile padding, GEMV thresholds)."""


def count_grid(max_value: float, exact_up_to: int = EXACT_UP_TO, n_geometric: int = 96) -> np.ndarray:
    """Integers 1..min(max, exact_up_to), then geometric points up to ``max_value``."""
    top = max(int(np.ceil(max_value)), 1)
    exact = np.arange(1, min(top, exact_up_to) + 1, dtype=float)
    if top <= exact_up_to:
        return exact
    geo = np.unique(np.round(np.geomspace(exact_up_to, top, n_geometric)))
    return np.unique(np.concatenate([exact, geo]))


def context_grid(max_context: float, n: int = 48) -> np.ndarray:
    """0, then geometric points from 1 to ``max_context`` tokens."""
    top = max(float(max_context), 2.0)
    return np.unique(np.concatenate([[0.0], np.round(np.geomspace(1.0, top, n))]))


class _Curve:
    """Piecewise-linear time and energy of x on sorted knots, evaluated one scalar at a time
    (one bisect for both, no NumPy)."""

    __slots__ = ("x", "t", "e")

    def __init__(self, x: np.ndarray, t: np.ndarray, e: np.ndarray) -> None:
        self.x = [float(v) for v in x]
        self.t = [float(v) for v in t]
        self.e = [float(v) for v in e]

    def __call__(self, v: float) -> tuple[float, float]:
        """(time s, energy J) at ``v``."""
        x, t, e = self.x, self.t, self.e
        i = bisect_right(x, v) - 1
        if i < 0:
            return t[0], e[0]
        if i >= len(x) - 1:
            if len(x) == 1:
                return t[0], e[0]
            i = len(x) - 2  # extrapolate linearly past the last knot
        d, w = v - x[i], x[i + 1] - x[i]
        return t[i] + (t[i + 1] - t[i]) * d / w, e[i] + (e[i + 1] - e[i]) * d / w


class _Surface:
    """Bilinear time and energy of (u, v) on a grid: a ``_Curve`` over ``v`` for every knot of ``u``."""

    __slots__ = ("u", "rows")

    def __init__(self, u: np.ndarray, v: np.ndarray, t: np.ndarray, e: np.ndarray) -> None:
        self.u = [float(x) for x in u]
        self.rows = [_Curve(v, t[i], e[i]) for i in range(len(u))]

    def __call__(self, a: float, b: float) -> tuple[float, float]:
        """(time s, energy J) at ``(a, b)``."""
        u = self.u
        i = bisect_right(u, a) - 1
        if i < 0:
            return self.rows[0](b)
        if u[i] == a or i >= len(u) - 1:
            return self.rows[min(i, len(u) - 1)](b)
        w = (a - u[i]) / (u[i + 1] - u[i])
        (t0, e0), (t1, e1) = self.rows[i](b), self.rows[i + 1](b)
        return (1.0 - w) * t0 + w * t1, (1.0 - w) * e0 + w * e1


@dataclass(frozen=True)
class RankWork:
    """One attention rank's share of a step: ``n_decode`` decoding sequences with summed
    context ``decode_context`` (tokens), prefill ``chunks`` of (new tokens, cached tokens) and
    ``n_logits`` positions whose logits it computes."""

    n_decode: int = 0
    decode_context: float = 0.0
    chunks: tuple[tuple[int, int], ...] = ()
    n_logits: int = 0


@dataclass(frozen=True)
class StepParts:
    """Time (s) and dynamic energy (J) of one step, split by part."""

    time_s: float
    energy_j: float


def _time_energy(cost: CostTable, rows: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Summed time and dynamic energy of the selected op rows, broadcast to the sweep ``shape``."""
    per_occ = np.maximum(cost.compute_s, cost.memory_s) + cost.link_s + cost.overhead_s
    count = cost.count.reshape((-1,) + (1,) * (per_occ.ndim - 1))
    t = (per_occ * count)[rows].sum(axis=0)
    e = cost.dynamic_energy_j[rows].sum(axis=0)
    return np.broadcast_to(t, shape), np.broadcast_to(e, shape)


class StepPricer:
    """Prices engine steps of one model replica (``tp * pp * ep`` devices) on one device type.

    Parameters
    ----------
    spec, quant, device, placement : what runs, on what, how it is split.
    max_tokens : most token rows in one step (the scheduler's token budget), >= 1.
    max_seqs : most sequences in one step, >= 1.
    max_context : longest context a sequence reaches, tokens.
    host_step_s : host time of a step over n sequences that does not overlap the device
        (``FrameworkTerms.host_step_s``), or None for none; with attention ranks, each rank's
        scheduler over its own sequences.
    mtp_tokens : tokens drafted per decoding sequence and step by the model's multi-token-
        prediction module (one pass each); the step verifies ``1 + mtp_tokens`` tokens per
        decoding sequence (0: plain decoding).
    expanded_first_chunks : a prompt's first chunk (nothing cached) attends expanded though the
        placement's framework runs its MLA prefill absorbed (``absorbed_mla_prefill``): SGLang
        v0.4 without its radix cache absorbs only over a prompt's own earlier chunks. Its
        absorbed projections stay in the dense part (a sliver of its tokens' work).
    """

    def __init__(
        self,
        spec: ModelSpec,
        quant: Quant,
        device: DeviceSpec,
        placement: Placement,
        *,
        max_tokens: int,
        max_seqs: int,
        max_context: int,
        host_step_s: Callable[[int], float] | None = None,
        mtp_tokens: int = 0,
        expanded_first_chunks: bool = False,
    ) -> None:
        self.host_step_s = host_step_s or (lambda _n: 0.0)
        self.verify = 1 + int(mtp_tokens)
        model = registry.get(device.arch)
        self.ranks = placement.ep if placement.attention_dp and placement.ep > 1 else 1
        """Attention data-parallel ranks: each prices its own sequences' work."""
        # one rank's work with its own sequences as the whole batch; the routed experts over
        # the group's tokens (at the same total, ``build_ops`` prices them alike either way)
        placement = replace(placement, attention_dp=False)
        kw = placement.graph_kw

        def price(ops: OpTable) -> CostTable:
            return model.estimate(ops, device, placement)

        m = count_grid(max(max_tokens, max_seqs * self.verify))
        pre = build_ops(spec, quant, phase="prefill", batch=1, tokens=m, context=0.0, **kw)
        one_dec = build_ops(spec, quant, phase="decode", batch=1, context=1.0, **kw)
        shared = set(pre.name) & set(one_dec.name)
        dense_rows = np.array([n in shared and n != "attention" and n not in HEAD_OPS for n in pre.name])
        group_rows = np.isin(pre.name, ROUTED_EXPERT_OPS)
        pre_cost = price(pre)
        # an architecture without host-launched kernels (a wafer, an FPGA) has no launch count
        count = getattr(model, "launch_count", None)
        self.forward_launches = float(np.max(count(pre, device, placement))) if count else 0.0
        """Kernel launches of one forward pass of the replica's model (a prefill's)."""
        self.static_power_w, self.power_cap_w = pre_cost.static_power_w, pre_cost.power_cap_w
        t, e = _time_energy(pre_cost, dense_rows & ~group_rows, m.shape)
        self._dense = _Curve(m, t, e)
        t, e = _time_energy(pre_cost, group_rows, m.shape)
        self._group = _Curve(m, t, e)

        seqs = count_grid(max_seqs)
        ctx = context_grid(max_context)
        dec = build_ops(
            spec, quant, phase="decode", batch=seqs[:, None], tokens=self.verify, context=ctx[None, :], **kw
        )
        dec_cost = price(dec)
        dec_rows = np.array([(n == "attention" or n not in shared) and n not in HEAD_OPS for n in dec.name])
        t, e = _time_energy(dec_cost, dec_rows, (len(seqs), len(ctx)))
        if mtp_tokens:  # the drafting passes of the MTP module, one after another
            module = spec.mtp_module()
            draft = build_ops(module, quant, phase="decode", batch=seqs[:, None], context=ctx[None, :], **kw)
            t_d, e_d = _time_energy(price(draft), np.ones(len(draft.name), bool), (len(seqs), len(ctx)))
            t, e = t + mtp_tokens * t_d, e + mtp_tokens * e_d
        self._dec = _Surface(seqs, ctx, t, e)
        logits = build_ops(spec, quant, phase="decode", batch=seqs, context=1.0, **kw)
        head_rows = np.isin(logits.name, HEAD_OPS)
        t, e = _time_energy(price(logits), head_rows, (len(seqs),))
        self._head = _Curve(seqs, t, e)
        attn = dec.name == "attention"
        self.attention_launch_s = float(
            (
                np.broadcast_to(dec_cost.overhead_s, dec_cost.compute_s.shape)[attn].reshape(
                    int(attn.sum()), -1
                )[:, 0]
                * dec_cost.count[attn]
            ).sum()
        )

        chunk = count_grid(max_tokens, exact_up_to=64, n_geometric=48)
        pre2 = build_ops(
            spec, quant, phase="prefill", batch=1, tokens=chunk[:, None], context=ctx[None, :], **kw
        )
        pre_rows = np.array([n == "attention" or n not in shared for n in pre2.name])
        t, e = _time_energy(price(pre2), pre_rows, (len(chunk), len(ctx)))
        self._pre = _Surface(chunk, ctx, t, e)
        self._first: _Curve | None = None
        if expanded_first_chunks:
            expanded = {**kw, "mla_prefill": "expanded"}
            first = build_ops(spec, quant, phase="prefill", batch=1, tokens=chunk, context=0.0, **expanded)
            rows = np.array([n == "attention" or n not in shared for n in first.name])
            t, e = _time_energy(price(first), rows, (len(chunk),))
            self._first = _Curve(chunk, t, e)

    def step(
        self,
        n_decode: int,
        decode_context: float,
        chunks: list[tuple[int, int]],
        n_logits: int,
    ) -> StepParts:
        """One step: ``n_decode`` decoding sequences with summed context ``decode_context``
        (tokens), prefill ``chunks`` of (new tokens, cached tokens), ``n_logits`` positions
        whose logits it computes (``verify`` per decoding sequence, one per finished prompt).
        With attention ranks, the decodes are spread evenly over them and each chunk goes to
        the next rank (``step_ranks`` takes a stated split)."""
        if self.ranks == 1:
            return self.step_ranks([RankWork(n_decode, decode_context, tuple(chunks), n_logits)])
        r = self.ranks
        dec = [n_decode // r + (k < n_decode % r) for k in range(r)]
        head = [n_logits // r + (k < n_logits % r) for k in range(r)]
        return self.step_ranks(
            [
                RankWork(dec[k], decode_context * dec[k] / max(n_decode, 1), tuple(chunks[k::r]), head[k])
                for k in range(r)
            ]
        )

    def step_ranks(self, ranks: Sequence[RankWork]) -> StepParts:
        """One step from each attention rank's work (at most ``self.ranks`` entries; a missing
        rank is idle): the busiest rank's time plus the routed experts over all their tokens.
        Energy is per device: the ranks' mean plus the experts'."""
        if len(ranks) > self.ranks:
            raise ValueError(f"{len(ranks)} ranks of work for a pricer of {self.ranks}")
        t_max, e_sum, m = 0.0, 0.0, 0
        for w in ranks:
            t, e, rows = self._rank(w)
            t_max, e_sum, m = max(t_max, t), e_sum + e, m + rows
        group_t, group_e = self._group(m)
        return StepParts(t_max + group_t, e_sum / self.ranks + group_e)

    def _rank(self, w: RankWork) -> tuple[float, float, int]:
        """(time s, dynamic energy J, token rows) of one rank's own work in a step."""
        m = w.n_decode * self.verify + sum(c[0] for c in w.chunks)
        if m == 0 and w.n_logits == 0:
            return 0.0, 0.0, 0
        t, e = self._dense(m)
        groups = len(w.chunks)
        if w.n_decode:
            dt, de = self._dec(w.n_decode, w.decode_context / w.n_decode)
            t += dt
            e += de
            groups += 1
        for tokens, cached in w.chunks:
            dt, de = (
                self._first(tokens) if cached == 0 and self._first is not None else self._pre(tokens, cached)
            )
            t += dt
            e += de
        if w.n_logits:
            dt, de = self._head(w.n_logits)
            t += dt
            e += de
        t -= max(groups - 1, 0) * self.attention_launch_s
        t += self.host_step_s(w.n_decode + len(w.chunks))
        return t, e, m
