"""``simulate``: play prefill and decode of a batch on a ``System`` with the event engine.

The op costs are the analytic path's (the device's cost model prices every op); the
engine adds what the sum cannot show: collectives on a shared link, pipeline stages that
wait for one another, micro-batches that overlap across stages, and (``sim.offload``)
weight and KV transfers that overlap compute.

Per step, each pipeline stage's tensor-parallel group is one resource (its devices run
identical shards in lockstep) and each gpu-gpu link domain is one resource. A layer is
one or more compute segments separated by its collectives; rows that occur in fewer
layers than the model has (MoE or dense-only rows) are spread evenly over the layers,
which keeps the total exact. Invariant (tested): one device, no overlap, no contention,
the event time equals the analytic sum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwmodels import registry
from hwmodels.calibration.params import framework_terms, params_for
from hwmodels.cost_table import CostTable
from hwmodels.placement import Placement
from roofline.economics import Economics, usd_per_s
from roofline.estimate import Estimate, memory_per_device
from roofline.intervals import Table, estimate_ranges
from sim.engine import TaskGraph, Timeline, check_size, run
from sim.system import Link, System, load_system
from workloads.errors import ConfigError, shown_value
from workloads.graph import OpTable, build_ops
from workloads.model_spec import ModelSpec, check_lengths, load_model
from workloads.quant import Quant
from workloads.traces import MAX_TOKENS


@dataclass(frozen=True)
class SimResult:
    """An ``Estimate`` (the same keys as ``hwsim estimate``) plus the timeline and utilization."""

    estimate: Estimate
    timeline: Timeline
    utilization: dict[str, float]

    def to_dict(self) -> dict:
        return self.estimate.to_dict() | {"utilization": self.utilization}


@dataclass(frozen=True)
class StepPlan:
    """Per-occurrence durations of one step, arranged for the engine (seconds)."""

    pre_s: float
    segments_s: list[float]
    collectives_s: list[float]
    post_s: float
    pp_send_s: float


def collective_s(ops: OpTable, row: int, link: Link, base_latency_s: float, step: int | None = None) -> float:
    """Duration of one occurrence of a collective row over a system link: bytes over bandwidth,
    NCCL's base latency, one link latency per ring step (the cost model's formula)."""
    nbytes = _at(ops.link_bytes[row], step)
    steps = _at(ops.link_steps[row], step)
    return nbytes / link.bw_bytes_per_s + (base_latency_s if steps > 0 else 0.0) + steps * link.latency_s


def _at(values: np.ndarray, step: int | None) -> float:
    arr = np.asarray(values)
    return float(arr.reshape(-1)[step] if (step is not None and arr.size > 1) else arr.reshape(-1)[0])


def plan_step(
    ops: OpTable, cost: CostTable, spec: ModelSpec, system: System, step: int | None = None
) -> StepPlan:
    """Arrange one step's op costs into pre, per-layer segments and collectives, and post."""
    base = params_for(system.gpu.arch, system.gpu.device_class).get("collective_base_latency_us")
    base_s = base.value * 1e-6 if base else 0.0
    per_op = np.maximum(cost.compute_s, cost.memory_s) + cost.overhead_s
    L = spec.n_layers
    pre = post = pp_send = 0.0
    segments, collectives = [0.0], []
    seen_layer = False
    for i, name in enumerate(ops.name):
        kind, count = ops.kind[i], ops.count[i]
        if name == "pp_send":
            pp_send = collective_s(ops, i, system.gpu_link("pp"), base_s, step)
        elif kind == "collective":
            collectives.append(collective_s(ops, i, system.gpu_link("tp"), base_s, step) * count / L)
            segments.append(0.0)
        elif name in ("final_norm", "lm_head"):
            post += _at(per_op[i], step) * count
        elif not seen_layer and count == 1:
            pre += _at(per_op[i], step) * count
        else:
            seen_layer = True
            segments[-1] += _at(per_op[i], step) * count / L
    return StepPlan(pre, segments, collectives, post, pp_send)


def add_step(
    graph: TaskGraph, plans: list[StepPlan], system: System, n_layers: int, after: list[int], label: str
) -> list[int]:
    """Add one step for every micro-batch (``plans[m]``); return each micro-batch's last task."""
    pp = system.pp
    bounds = np.linspace(0, n_layers, pp + 1).round().astype(int)
    last: list[int] = []
    stage_prev = [None] * pp  # last task of the previous micro-batch on each stage
    for m, plan in enumerate(plans):
        prev = after[m] if m < len(after) else (after[-1] if after else None)
        for s in range(pp):
            stage, tp_link = f"stage{s}", f"tp_link{s}"
            deps = [d for d in (prev, stage_prev[s]) if d is not None]
            if s == 0 and plan.pre_s:
                prev = graph.add(f"{label}/mb{m}/pre", stage, plan.pre_s, deps)
                deps = [prev]
            for layer in range(bounds[s], bounds[s + 1]):
                for k, seg in enumerate(plan.segments_s):
                    prev = graph.add(f"{label}/mb{m}/L{layer}/seg{k}", stage, seg, deps)
                    deps = [prev]
                    if k < len(plan.collectives_s):
                        prev = graph.add(
                            f"{label}/mb{m}/L{layer}/allreduce{k}", tp_link, plan.collectives_s[k], deps
                        )
                        deps = [prev]
            if s == pp - 1 and plan.post_s:
                prev = graph.add(f"{label}/mb{m}/post", stage, plan.post_s, deps)
            elif s < pp - 1:
                prev = graph.add(f"{label}/mb{m}/send{s}", "pp_link", plan.pp_send_s, [prev])
            stage_prev[s] = prev
        last.append(prev)
    return last


def simulate(
    system: str | System,
    model: str | ModelSpec,
    *,
    batch: int,
    input_len: int,
    output_len: int,
    precision: str = "fp16",
    framework: str | None = None,
    tp: int | None = None,
    pp: int | None = None,
    economics: Economics | None = None,
    record: bool = True,
) -> SimResult:
    """Simulate one batch: a prefill, then ``output_len - 1`` decode steps, on the event engine.

    With ``output_len`` 1 nothing is decoded: ``tpot_s`` and ``decode_tokens_per_s`` are NaN
    (JSON null). A run that would build more than ``sim.engine.MAX_TASKS`` tasks is refused.

    With ``pp > 1`` and a batch of at least ``pp`` sequences, the batch is split into ``pp``
    micro-batches that pipeline across stages. Offloaded systems go to ``sim.offload``.
    """
    system = load_system(system)
    if tp is not None or pp is not None:
        system = system.with_parallelism(tp, pp)
    if system.gpu.arch == "wafer" and system.pp > 1:
        raise ConfigError(
            f"system {system.name!r}: pipeline stages across wafers (pp {system.pp}) are not modelled: "
            "the inter-wafer links and stage balance are unknown, so it would price one wafer's latency at "
            f"{system.pp}x the cost; use pp 1"
        )
    for value, field in ((batch, "batch"), (input_len, "input_len"), (output_len, "output_len")):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not 1 <= value <= MAX_TOKENS
        ):
            raise _bad(field, value)
    check_lengths(load_model(model), input_len, output_len)
    if system.offloaded:
        from sim.offload import simulate_offload

        return simulate_offload(
            system,
            model,
            batch=batch,
            input_len=input_len,
            output_len=output_len,
            precision=precision,
            economics=economics,
            record=record,
        )
    spec, quant, dev = load_model(model), Quant.from_name(precision), system.gpu
    if framework:
        spec = framework_terms(framework).model_as_run(spec)
    n_micro = system.pp if system.pp > 1 and batch >= system.pp else 1
    micro = batch / n_micro
    place = Placement(tp=system.tp, pp=system.pp, ep=system.ep, framework=framework)
    model_cost = registry.get(dev.arch)
    kw = dict(tp=system.tp, pp=system.pp, ep=system.ep)
    graph = TaskGraph()
    pre_ops = build_ops(spec, quant, phase="prefill", batch=micro, tokens=input_len, **kw)
    pre_cost = model_cost.estimate(pre_ops, dev, place)
    step_over = framework_terms(framework).host_step_s(micro, system.tp) if framework else 0.0
    pre_plan = plan_step(pre_ops, pre_cost, spec, system)
    latency = 0.0  # the requests' path to the scheduler (FrameworkTerms.request_latency_s)
    if framework and hasattr(model_cost, "launch_count"):
        latency = framework_terms(framework).request_latency_s(
            float(np.max(model_cost.launch_count(pre_ops, dev, place)))
        )
    pre_plan = replace(pre_plan, pre_s=pre_plan.pre_s + step_over + latency)
    per_step = n_micro * (
        spec.n_layers * (len(pre_plan.segments_s) + len(pre_plan.collectives_s)) + system.pp + 1
    )
    check_size(
        output_len * per_step, f"simulating {output_len} output tokens of {spec.name} on {system.name}"
    )
    last = add_step(graph, [pre_plan] * n_micro, system, spec.n_layers, [], "prefill")
    prefill_end = list(last)
    n_steps = max(output_len - 1, 0)
    if n_steps:
        ctx = input_len + np.arange(n_steps, dtype=float)
        dec_ops = build_ops(spec, quant, phase="decode", batch=micro, context=ctx, **kw)
        dec_cost = model_cost.estimate(dec_ops, dev, place)
        for k in range(n_steps):
            plan = plan_step(dec_ops, dec_cost, spec, system, step=k)
            plan = replace(plan, pre_s=plan.pre_s + step_over)
            last = add_step(graph, [plan] * n_micro, system, spec.n_layers, last, f"decode{k}")
    timeline = run(graph, record=record)
    ttft = float(timeline.task_end_s[prefill_end].max())
    e2e = timeline.makespan_s
    tpot = (e2e - ttft) / n_steps if n_steps else float("nan")
    return _result(
        system,
        spec,
        quant,
        batch,
        input_len,
        output_len,
        ttft,
        tpot,
        e2e,
        pre_cost,
        dec_cost if n_steps else None,
        n_steps,
        economics,
        timeline,
        framework,
    )


def _bad(field: str, value):
    return ConfigError(f"{field} is {shown_value(value)}; expected a positive integer up to {MAX_TOKENS:,}")


def _result(
    system: System,
    spec: ModelSpec,
    quant: Quant,
    batch: int,
    input_len: int,
    output_len: int,
    ttft: float,
    tpot: float,
    e2e: float,
    pre_cost: CostTable,
    dec_cost: CostTable | None,
    n_steps: int,
    economics: Economics | None,
    timeline: Timeline,
    framework: str | None = None,
    groups: Table | None = None,
) -> SimResult:
    """Metrics with the same definitions as the analytic estimate, with their ranges from the
    interval table ``groups`` (default the shipped one; ``roofline.intervals``)."""
    dev = system.gpu
    per_replica = system.tp * system.pp * system.ep
    shards = system.tp * system.ep
    dyn = pre_cost.dynamic_energy_j.sum()
    if dec_cost is not None:
        dyn = dyn + dec_cost.dynamic_energy_j.sum()
    dyn *= shards
    energy = min(dyn + per_replica * pre_cost.static_power_w * e2e, per_replica * pre_cost.power_cap_w * e2e)
    tokens = batch * output_len
    usd = float(usd_per_s(dev, per_replica, energy / e2e, economics)) * e2e
    memory = memory_per_device(spec, quant, batch, input_len, output_len, system.tp, system.pp, system.ep)
    tpot_value = tpot if n_steps else np.nan  # no decode step: no TPOT (JSON null)
    ranged = {
        "ttft_s": np.asarray(ttft),
        "tpot_s": np.asarray(tpot_value),
        "e2e_s": np.asarray(e2e),
        "prefill_tokens_per_s": np.asarray(batch * input_len / ttft),
        "decode_tokens_per_s": np.asarray(batch / tpot_value if n_steps else np.nan),
        "energy_j_per_token": np.asarray(energy / tokens),
    }
    est = Estimate(
        model=spec.name,
        device=dev.name,
        n_devices=per_replica,
        batch=np.asarray(float(batch)),
        input_len=np.asarray(float(input_len)),
        output_len=np.asarray(float(output_len)),
        precision=quant.name,
        **ranged,
        **estimate_ranges(
            dev,
            quant,
            framework,
            np.asarray(batch),
            np.asarray(input_len),
            np.asarray(output_len),
            ranged,
            groups,
        ),
        tokens_per_j=np.asarray(tokens / energy),
        usd_per_million_tokens=np.asarray(usd / tokens * 1e6),
        tokens_per_usd=np.asarray(tokens / usd),
        price_basis=(economics or Economics()).resolved().basis,
        bound=np.asarray(_step_bound(dec_cost if dec_cost is not None else pre_cost)),
        memory_bytes=np.asarray(float(memory)),
        fits=np.asarray(bool(memory <= dev.memory.capacity_bytes)),
    )
    return SimResult(est, timeline, timeline.utilization() if len(timeline.intervals) else {})


def _step_bound(cost: CostTable) -> str:
    """The resource with the most busy time over the simulated steps (as the estimate's ``bound``)."""
    from hwmodels.cost_table import BOUNDS

    busy = cost.busy_s().reshape(len(BOUNDS), -1).sum(axis=1)
    return str(BOUNDS[int(np.argmax(busy))])
