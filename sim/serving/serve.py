"""``serve``: a request stream through replicas of a model on the SimPy engine.

Aggregated mode: ``replicas`` copies of the model (``tp * pp * ep`` devices each, ``dp`` of
them or ``n_devices / (tp * pp * ep)``) behind a router; each replica runs its engine's
scheduler over its own KV pool. A replica with ``pp > 1`` runs ``pp`` micro-batches in
flight (virtual engines, as vLLM's pipeline parallelism does), each with ``1/pp`` of the
KV pool and a step as long as the whole pipeline.

Disaggregated mode: ``prefill_workers`` replicas of ``prefill_tp`` devices prefill each
prompt and emit its first token; its KV cache then moves over the link between the pools
(a SimPy resource per prefill worker, so transfers queue) to one of ``decode_workers``
replicas of ``decode_tp`` devices, which decode the rest.

Energy: each step's dynamic energy (from the cost model's action counts) on every tensor-
and expert-parallel shard, plus every device's static power over the run, never above the
power cap. Cost: the devices' price per second (``roofline.economics``) over the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import simpy

from hwmodels.calibration.params import canonical_framework, framework_names, framework_terms
from hwmodels.device_spec import DeviceSpec
from hwmodels.engine_config import EngineConfig, KvCapacity, engine_for, kv_capacity
from hwmodels.placement import Placement
from hwmodels.schedulers import policy
from roofline.economics import Economics, usd_per_s
from roofline.estimate import check_device_count, compute_device, mtp_expected_tokens
from roofline.intervals import server_ranges
from sim.serving.metrics import request_metrics, weighted_percentiles
from sim.serving.replica import Replica
from sim.serving.requests import Requests
from sim.serving.step_cost import StepPricer
from workloads.errors import ConfigError, positive_count, positive_number
from workloads.graph import check_parallelism, kv_bytes_per_token, kv_state_bytes_per_seq
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant
from workloads.traces import Trace

ROUTERS = ("least-outstanding", "round-robin")


@dataclass(frozen=True)
class Pool:
    """Replicas of one shape: ``workers`` x (``tp * pp * ep``) devices. With ``attention_dp``
    the ``ep`` devices of a replica are also attention data-parallel ranks, each with its own
    sequences, KV cache and engine limits; they step together (the experts need every rank's
    tokens), so a replica is one engine ``ep`` times as large, priced per device."""

    workers: int
    tp: int = 1
    pp: int = 1
    ep: int = 1
    attention_dp: bool = False
    expert_imbalance: float = 1.0

    @property
    def devices(self) -> int:
        return self.workers * self.tp * self.pp * self.ep

    @property
    def dp_ranks(self) -> int:
        """Attention data-parallel ranks per replica."""
        return self.ep if self.attention_dp else 1


@dataclass
class ServeResult:
    """Metrics of a run (the flat JSON of ``hwsim serve --json``) and what produced them."""

    metrics: dict[str, Any]
    requests: Requests
    replicas: list[Replica]
    kv: dict[str, KvCapacity]
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.metrics)
        for k, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
        return out


MAX_DEVICES = 4096
"""Most devices, replicas or workers a serving run takes, and the largest parallel degree (each
replica is a process of the event loop; a larger deployment is its replicas' behaviour times their
number)."""


def _slo(value: float | None, field_name: str) -> float | None:
    return None if value is None else positive_number(value, field_name, "seconds")


class _Router:
    def __init__(self, replicas: list[Replica], rule: str) -> None:
        if rule not in ROUTERS:
            raise ConfigError(f"router is {rule!r}; expected one of {', '.join(ROUTERS)}")
        self.replicas, self.rule, self._next = replicas, rule, 0

    def pick(self) -> Replica:
        if self.rule == "round-robin" or len(self.replicas) == 1:
            r = self.replicas[self._next % len(self.replicas)]
            self._next += 1
            return r
        return min(self.replicas, key=lambda r: r.outstanding)


def _check_lengths(trace: Trace, kv_tokens: int, where: str) -> None:
    need = trace.input_len + trace.output_len
    worst = int(np.argmax(need))
    if need[worst] > kv_tokens:
        raise ConfigError(
            f"request {worst} needs {int(need[worst]):,} tokens of KV cache; the {where} pool holds "
            f"{kv_tokens:,} per engine (shorten the request, add devices or lower the KV precision)"
        )


@dataclass
class Setup:
    """Everything a run resolves before the first event: model, device, engine, pools, KV pools
    and step pricers (one per pool)."""

    spec: ModelSpec
    quant: Quant
    dev: DeviceSpec
    engine: EngineConfig
    """The engine's limits per data-parallel rank (``engines`` holds each pool's)."""
    pools: dict[str, Pool]
    kvs: dict[str, KvCapacity]
    engine_kv: dict[str, KvCapacity]
    pricers: dict[str, StepPricer]
    framework: str | None
    engines: dict[str, EngineConfig]
    """Each pool's engine: its replica's limits, ``dp_ranks`` times one rank's."""
    mtp_acceptance: float = 0.0

    @property
    def n_devices(self) -> int:
        return sum(p.devices for p in self.pools.values())


def prepare(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    *,
    max_context: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int | None = None,
    n_devices: int | None = None,
    precision: str | Quant = "fp16",
    framework: str | None = None,
    max_batch: int | None = None,
    max_batched_tokens: int | None = None,
    max_model_len: int | None = None,
    chunked_prefill: bool | None = None,
    preemption: str | None = None,
    prefix_caching: bool | None = None,
    scheduler_steps: int | None = None,
    scheduler: str | None = None,
    kv_fraction: float | None = None,
    max_kv_tokens: int | None = None,
    mode: str = "agg",
    prefill_workers: int = 1,
    prefill_tp: int = 1,
    decode_workers: int = 1,
    decode_tp: int = 1,
    prefill_ep: int = 1,
    decode_ep: int = 1,
    attention_dp: bool = False,
    expert_imbalance: float = 1.0,
    mtp_tokens: int = 0,
    mtp_acceptance: float = 0.0,
) -> Setup:
    """Resolve a serving configuration (see ``serve`` for the arguments)."""
    if isinstance(framework, str):  # other spellings (``trt-llm``, ``turbomind``), as the CLI takes them
        framework = canonical_framework(framework)
    spec = load_model(model)
    if framework in framework_names():  # as the engine runs it (a TensorRT engine: no sliding window)
        spec = framework_terms(framework).model_as_run(spec)
    dev = compute_device(device)
    quant = precision if isinstance(precision, Quant) else Quant.from_name(precision)
    # the engine's own limits for this device and model, then the run's (a stated budget wins)
    engine = (
        engine_for(framework)
        .for_device(dev)
        .sized_for(spec, max_model_len, chunked_prefill)
        .with_limits(
            max_batch, max_batched_tokens, preemption, prefix_caching, scheduler_steps, scheduler, kv_fraction
        )
    )
    if max_model_len is not None and spec.max_context and max_model_len > spec.max_context:
        raise ConfigError(
            f"max_model_len is {max_model_len:,}; {spec.name} takes at most {spec.max_context:,} tokens "
            "(its max_position_embeddings), as the engine would say"
        )
    if max_model_len is not None and max_model_len < max_context:
        raise ConfigError(
            f"max_model_len is {max_model_len:,}; the longest request of the trace needs {max_context:,} "
            "tokens (prompt plus output), which the engine would refuse"
        )
    mtp_expected_tokens(mtp_tokens, mtp_acceptance)  # checks both
    if mtp_tokens and not spec.n_mtp_layers:
        raise ConfigError(f"mtp_tokens {mtp_tokens}: {spec.name} has no multi-token-prediction module")
    if mtp_tokens and policy(engine.scheduler).static:
        raise ConfigError(
            f"mtp_tokens {mtp_tokens}: the {engine.name} engine serves static batches, without MTP"
        )
    if mode == "agg":
        for label, v in (("tp", tp), ("pp", pp), ("ep", ep)):
            positive_count(v, label, MAX_DEVICES)
        per_replica = tp * pp * ep
        if dp is not None:
            positive_count(dp, "dp", MAX_DEVICES)
        if n_devices is not None:
            positive_count(n_devices, "n_devices", MAX_DEVICES)
            check_device_count(n_devices, tp, pp, ep)
            if dp is not None and dp * per_replica != n_devices:
                raise ConfigError(
                    f"dp {dp} x tp*pp*ep {per_replica} = {dp * per_replica} != n_devices {n_devices}"
                )
        workers = dp or (n_devices // per_replica if n_devices else 1)
        pools = {"agg": Pool(workers, tp, pp, ep, attention_dp, expert_imbalance)}
    elif mode == "disagg":
        pools = {
            "prefill": Pool(
                positive_count(prefill_workers, "prefill_workers", MAX_DEVICES),
                positive_count(prefill_tp, "prefill_tp", MAX_DEVICES),
                ep=positive_count(prefill_ep, "prefill_ep", MAX_DEVICES),
                attention_dp=attention_dp,
                expert_imbalance=expert_imbalance,
            ),
            "decode": Pool(
                positive_count(decode_workers, "decode_workers", MAX_DEVICES),
                positive_count(decode_tp, "decode_tp", MAX_DEVICES),
                ep=positive_count(decode_ep, "decode_ep", MAX_DEVICES),
                attention_dp=attention_dp,
                expert_imbalance=expert_imbalance,
            ),
        }
        need = sum(p.devices for p in pools.values())
        if n_devices is not None and need > positive_count(n_devices, "n_devices", MAX_DEVICES):
            raise ConfigError(
                f"the disaggregated split needs {need} devices ({prefill_workers} x TP{prefill_tp} x EP{prefill_ep} "
                f"prefill + {decode_workers} x TP{decode_tp} x EP{decode_ep} decode); n_devices gives {n_devices}"
            )
    else:
        raise ConfigError(f"mode is {mode!r}; expected 'agg' or 'disagg'")
    terms = framework_terms(framework) if framework in framework_names() else None
    kvs, engine_kv, pricers, engines = {}, {}, {}, {}
    for role, pool in pools.items():
        check_parallelism(spec, pool.tp, pool.pp, pool.ep)
        ranks = pool.dp_ranks
        kvs[role] = _ranks_kv(kv_capacity(spec, quant, dev, engine, pool.tp, pool.pp, pool.ep), ranks)
        if max_kv_tokens is not None:
            kvs[role] = _capped(kvs[role], positive_count(max_kv_tokens, "max_kv_tokens"))
        engine_kv[role] = _virtual_engine_kv(kvs[role], pool.pp)
        engines[role] = replace(
            engine,
            max_num_seqs=engine.max_num_seqs * ranks,
            max_num_batched_tokens=engine.rank_token_budget(ranks) * ranks,
        )
        pricers[role] = StepPricer(
            spec,
            quant,
            dev,
            Placement(
                tp=pool.tp,
                pp=pool.pp,
                ep=pool.ep,
                framework=framework,
                attention_dp=pool.attention_dp,
                expert_imbalance=pool.expert_imbalance,
            ),
            max_tokens=min(engines[role].max_num_batched_tokens, engines[role].max_num_seqs * max_context),
            max_seqs=engines[role].max_num_seqs,
            max_context=max_context,
            host_step_s=partial(terms.host_step_s, tp=pool.tp) if terms else None,
            mtp_tokens=mtp_tokens,
            expanded_first_chunks=bool(
                terms and terms.absorbed_mla_prefill and spec.mla and not engines[role].prefix_caching
            ),
        )
    return Setup(spec, quant, dev, engine, pools, kvs, engine_kv, pricers, framework, engines, mtp_acceptance)


def serve(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    trace: Trace,
    *,
    kv_link_GBps: float | None = None,
    router: str = "least-outstanding",
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    economics: Economics | None = None,
    record: bool = True,
    progress: Callable[[int, int], None] | None = None,
    **config: Any,
) -> ServeResult:
    """Simulate serving ``trace``; see the module docstring for the modes.

    Parameters
    ----------
    model, device : as for ``roofline.estimate``.
    trace : the request stream (``workloads.traces.make_trace``).
    kv_link_GBps : bandwidth per GPU of the link that moves KV caches between the pools
        (default: the device's PCIe link, which a GPUDirect RDMA NIC sits behind).
    router : ``least-outstanding`` or ``round-robin`` between replicas.
    slo_ttft_s, slo_tpot_s : latency limits for SLO attainment and goodput, seconds.
    config : the configuration ``prepare`` resolves:
        ``tp, pp, ep, dp, n_devices`` (parallelism of each replica and the replica count,
        aggregated mode); ``precision``; ``framework`` (``vllm`` by default, ``vllm-v0``,
        ``tensorrt-llm``, ``sglang``, or a framework of ``frameworks.yaml``, which serves
        static batches); ``max_batch`` and ``max_batched_tokens`` (the engine's
        ``max_num_seqs`` and token budget per step); ``max_model_len`` (the engine's
        ``--max-model-len``, which sets vLLM V0's token budget: ``EngineConfig.sized_for``;
        default: the model's context); ``chunked_prefill`` (vLLM V0's ``--enable-chunked-prefill``;
        None: V0's own choice, on above a ``max_model_len`` of 32,768); ``preemption`` (``recompute`` or
        ``swap``, KV to host memory over the PCIe link); ``prefix_caching`` (default: the
        engine's; needs a trace with shared prefixes); ``scheduler_steps`` (vLLM V0's
        ``--num-scheduler-steps``: decode steps per scheduling pass, new prompts admitted only
        between them); ``scheduler`` (another scheduling policy of the engine: TensorRT-LLM's
        ``tensorrt-llm-max-util``, its MAX_UTILIZATION capacity policy); ``kv_fraction`` (the run's
        memory share in its engine's rule: vLLM's ``--gpu-memory-utilization``, SGLang's
        ``--mem-fraction-static``, TensorRT-LLM's ``free_gpu_memory_fraction``; default the
        engine's); ``max_kv_tokens`` (a smaller KV pool than
        the engine would get, for studies of memory pressure); ``mode`` (``agg`` or ``disagg``)
        with ``prefill_workers, prefill_tp, decode_workers, decode_tp``.
    """
    wall0 = time.perf_counter()
    slo_ttft_s, slo_tpot_s = _slo(slo_ttft_s, "slo_ttft"), _slo(slo_tpot_s, "slo_tpot")
    max_ctx = int((trace.input_len + trace.output_len).max())
    setup = prepare(model, device, max_context=max_ctx, **config)
    spec, quant, dev, engine = setup.spec, setup.quant, setup.dev, setup.engine
    pools, kvs, pricers = setup.pools, setup.kvs, setup.pricers
    pol = policy(engine.scheduler)
    mode = "disagg" if "prefill" in pools else "agg"
    total_devices = setup.n_devices
    env = simpy.Environment()
    req = Requests(trace)
    done_count = [0]
    finished_hook: list[Callable[[int], None]] = []

    def on_finish(rid: int) -> None:
        done_count[0] += 1
        if progress and (done_count[0] % max(1, req.n // 200) == 0 or done_count[0] == req.n):
            progress(done_count[0], req.n)
        for hook in finished_hook:
            hook(rid)

    replicas: dict[str, list[Replica]] = {}
    for role, pool in pools.items():
        kv, per_engine = kvs[role], setup.engine_kv[role]
        _check_lengths(trace, per_engine.tokens, role)
        host_bw = dev.links["pcie"].bw_bytes_per_s if "pcie" in dev.links else None
        if engine.preemption == "swap" and not host_bw:
            raise ConfigError(f"swap preemption needs a host link; {dev.name} has no 'pcie' link")
        swap_s = kv.bytes_per_token / host_bw if host_bw else 0.0
        replicas[role] = [
            Replica(
                env,
                f"{role}{w}" + (f".v{v}" if pool.pp > 1 else ""),
                pricers[role],
                setup.engines[role],
                per_engine,
                req,
                pol,
                on_finish,
                role={"agg": "both"}.get(role, role),
                swap_s_per_token=swap_s,
                record=record,
                mtp_acceptance=setup.mtp_acceptance,
            )
            for w in range(pool.workers)
            for v in range(pool.pp)
        ]

    entry = _Router(replicas.get("agg") or replicas["prefill"], router)
    if mode == "disagg":
        decode_router = _Router(replicas["decode"], router)
        if kv_link_GBps is not None and not (isinstance(kv_link_GBps, (int, float)) and kv_link_GBps > 0):
            raise ConfigError(f"kv_link_GBps is {kv_link_GBps!r}; expected a positive number")
        link_bw = (kv_link_GBps * 1e9 if kv_link_GBps else _default_kv_link_bw(dev)) * pools["prefill"].tp
        links = {id(r): simpy.Resource(env, capacity=1) for r in replicas["prefill"]}
        full_kv_bytes_per_token = kv_bytes_per_token(spec, quant)
        kv_state_bytes = kv_state_bytes_per_seq(spec, quant)  # linear-attention states, per request

        def move_kv(src: Replica, rid: int, n_blocks: int):
            with links[id(src)].request() as slot:
                yield slot
                yield env.timeout(
                    (int(req.input_len[rid]) * full_kv_bytes_per_token + kv_state_bytes) / link_bw
                )
            src.release(n_blocks)
            decode_router.pick().submit(rid, prefilled=True)

        for r in replicas["prefill"]:
            r.on_prefilled = lambda rid, n_blocks, src=r: env.process(move_kv(src, rid, n_blocks))

    # the request's path to the scheduler (FrameworkTerms.request_latency_s): it waits alone
    terms = framework_terms(setup.framework) if setup.framework in framework_names() else None
    entry_pricer = pricers["prefill" if "prefill" in pricers else next(iter(pricers))]
    latency = terms.request_latency_s(entry_pricer.forward_launches) if terms else 0.0

    def arrive(rid: int):
        yield env.timeout(latency)
        entry.pick().submit(rid)

    def submit(rid: int) -> None:
        req.arrival_s[rid] = env.now
        if latency > 0:
            env.process(arrive(rid))
        else:
            entry.pick().submit(rid)

    if trace.concurrency is not None:
        next_rid = [min(trace.concurrency, req.n)]
        for rid in range(next_rid[0]):
            submit(rid)

        def closed_loop(_rid: int) -> None:
            if next_rid[0] < req.n:
                submit(next_rid[0])
                next_rid[0] += 1

        finished_hook.append(closed_loop)
    else:
        arrivals = trace.arrival_s

        def open_loop():
            for rid in range(req.n):
                gap = arrivals[rid] - env.now
                if gap > 0:
                    yield env.timeout(gap)
                submit(rid)

        env.process(open_loop())

    env.run()
    all_replicas = [r for rs in replicas.values() for r in rs]
    if not req.completed.all():
        lost = int((~req.completed).sum())
        raise RuntimeError(f"serving simulation ended with {lost} requests unfinished (a scheduler bug)")
    metrics = request_metrics(
        req,
        total_devices,
        slo_ttft_s,
        slo_tpot_s,
        terms.output_lag_steps if terms else 0.0,
        open_loop=trace.concurrency is None,
    )
    metrics.update(_itl(all_replicas))
    metrics.update(_energy_and_cost(all_replicas, pools, pricers, dev, metrics, economics))
    metrics.update(
        server_ranges(
            metrics,
            dev,
            quant,
            setup.framework or "vllm",
            config.get("max_batch"),
            float(req.input_len.mean()),
            float(req.output_len.mean()),
            closed_loop=trace.concurrency is not None,
        )
    )
    metrics["kv_capacity_tokens"] = int(sum(kv.tokens * pools[role].workers for role, kv in kvs.items()))
    metrics["n_devices"] = total_devices
    metrics["sim_wall_s"] = time.perf_counter() - wall0
    config = {
        "model": spec.name,
        "device": dev.name,
        "precision": quant.name,
        "framework": setup.framework or "vllm",
        "scheduler": engine.scheduler,
        "max_num_seqs": engine.max_num_seqs,
        "max_num_batched_tokens": engine.max_num_batched_tokens,
        "mode": mode,
        "pools": {role: vars(p) for role, p in pools.items()},
        "trace": trace.description,
        "kv": {role: kv.to_dict() for role, kv in kvs.items()},
        "engine_source": engine.source,
    }
    return ServeResult(metrics, req, all_replicas, kvs, config)


def _ranks_kv(kv: KvCapacity, ranks: int) -> KvCapacity:
    """The KV pool of ``ranks`` attention data-parallel devices, each holding its own sequences'
    cache (one rank's pool otherwise); ``kv_bytes`` stays per device."""
    if ranks == 1:
        return kv
    return replace(kv, blocks=kv.blocks * ranks, tokens=kv.tokens * ranks)


def _capped(kv: KvCapacity, tokens: int) -> KvCapacity:
    """The pool limited to ``tokens`` (whole blocks; at least one)."""
    blocks = max(min(kv.blocks, tokens // kv.block_size), 1)
    return replace(
        kv, blocks=blocks, tokens=blocks * kv.block_size, kv_bytes=blocks * kv.block_size * kv.bytes_per_token
    )


def _virtual_engine_kv(kv: KvCapacity, pp: int) -> KvCapacity:
    """Each of ``pp`` virtual engines gets an equal share of the replica's blocks."""
    if pp == 1:
        return kv
    blocks = kv.blocks // pp
    return replace(kv, blocks=blocks, tokens=blocks * kv.block_size, kv_bytes=kv.kv_bytes / pp)


def _default_kv_link_bw(dev: DeviceSpec) -> float:
    """Bytes/s per GPU for KV transfers between pools: the device's PCIe link (where its
    RDMA NIC sits), else its first link."""
    if "pcie" in dev.links:
        return dev.links["pcie"].bw_bytes_per_s
    if dev.links:
        return next(iter(dev.links.values())).bw_bytes_per_s
    raise ConfigError(f"{dev.name} has no link to move KV caches over; give kv_link_GBps")


def _itl(replicas: list[Replica]) -> dict[str, float]:
    """Inter-token latency percentiles: step times weighted by the decode tokens they produced."""
    times, weights = [], []
    for r in replicas:
        if r.steps is not None:
            times += r.steps.time_s
            weights += r.steps.n_decode
    if not times:
        return {}
    t, w = np.asarray(times), np.asarray(weights, dtype=float)
    mean = float((t * w).sum() / w.sum()) if w.sum() else float("nan")
    p50, p90, p99 = weighted_percentiles(t, w, [50, 90, 99])
    return {"itl_s_mean": mean, "itl_s_p50": p50, "itl_s_p90": p90, "itl_s_p99": p99}


def _energy_and_cost(replicas, pools, pricers, dev, metrics, economics) -> dict[str, float]:
    duration = metrics["duration_s"]
    dynamic, static_w, cap_w = 0.0, 0.0, 0.0
    for role, pool in pools.items():
        p = pricers[role]
        shards = pool.tp * pool.ep
        dynamic += shards * sum(r.dynamic_energy_j for r in replicas if r in _of(replicas, role))
        static_w += p.static_power_w * pool.devices
        cap_w += p.power_cap_w * pool.devices
    energy = min(dynamic + static_w * duration, cap_w * duration)
    tokens = metrics["output_tokens"]
    n_dev = sum(p.devices for p in pools.values())
    usd = float(usd_per_s(dev, n_dev, energy / duration, economics)) * duration
    return {
        "j_per_token": energy / tokens,
        "usd_per_million_tokens": usd / tokens * 1e6,
        "price_basis": (economics or Economics()).resolved().basis,
        "energy_j": energy,
    }


def _of(replicas: list[Replica], role: str) -> list[Replica]:
    return [r for r in replicas if r.name.startswith(role)]
