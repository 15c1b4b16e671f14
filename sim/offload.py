"""Offloaded inference in the FlexGen style: weights and KV cache in host DRAM or on SSD,
streamed over PCIe with the next pipeline unit's weights prefetched while the current one computes.

Dataflow of one step (Sheng et al., FlexGen, ICML 2023, Alg. 1, zig-zag block schedule, as
FlexLLMGen's ``generation_loop_overlap_multi_batch`` runs it): a block of ``n_gpu_batches`` GPU
batches walks the layers, each layer as two pipeline units (attention, MLP; ``--sep-layer``);
each unit's offloaded weights are loaded once per block (disk -> host over the SSD link, host ->
GPU over PCIe) into one of two GPU buffers, during the previous unit's first GPU batch, and reused
by every GPU batch; with the KV cache on the host, decode attention over the KV share off the GPU
runs on the CPU against host memory (the disk share read over the SSD link one batch ahead).
Every (unit, GPU batch) iteration ends in a synchronize, so the next starts when all its
transfers and its compute are done (``iterations``). Any split of weights and KV across GPU,
host and disk is played as such. Costs come from the cost models: GPU ops from the GPU's, CPU
attention from the host's memory bandwidth at the CPU class's fitted memory efficiency, or the
framework's CPU attention rate if slower.

``best_policy`` searches a grid of policies (GPU batch, batches per block, weight fractions
on GPU/host/disk, KV on GPU, host or disk) under the memory limits, ranks them with the
closed form of those iterations (``policy_time_s``), and plays the best few on the engine.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from hwmodels import registry
from hwmodels.calibration.params import framework_terms, params_for
from hwmodels.placement import Placement
from roofline.economics import Economics
from sim.engine import TaskGraph, check_size, run
from sim.system import System, check_roles, load_system
from workloads.errors import DoesNotFitError
from workloads.graph import build_ops, embedding_and_head_bytes, kv_cache_bytes, weight_bytes
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant

GPU_BATCHES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256)
BLOCK_SIZES = (1, 2, 3, 4, 6, 8, 12, 16)
WEIGHT_GPU = tuple(np.round(np.arange(0, 1.01, 0.1), 2))
WEIGHT_DISK_SHARE = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_BLOCK = 1024


@dataclass(frozen=True)
class Policy:
    """A FlexGen policy: GPU batch, GPU batches per block, and the shares of the weights and of
    the KV cache on GPU, host and disk (``((tier, fraction), ...)``; a tier name alone means
    all of it). Attention over the KV share off the GPU runs on the CPU (FlexGen's
    ``cpu_cache_compute``), the disk share read into host memory first."""

    gpu_batch: int
    n_gpu_batches: int
    weights: tuple[tuple[str, float], ...]
    kv: tuple[tuple[str, float], ...] | str = "gpu"

    def __post_init__(self) -> None:
        if isinstance(self.kv, str):
            object.__setattr__(self, "kv", ((self.kv, 1.0),))

    @property
    def block(self) -> int:
        return self.gpu_batch * self.n_gpu_batches

    def weight_frac(self, tier: str) -> float:
        return dict(self.weights).get(tier, 0.0)

    def kv_frac(self, tier: str) -> float:
        return dict(self.kv).get(tier, 0.0)

    @property
    def kv_off_gpu(self) -> float:
        """Share of the KV cache in host memory or on disk (its attention runs on the CPU)."""
        return self.kv_frac("host") + self.kv_frac("disk")

    def kv_label(self) -> str:
        return ", ".join(f"{t} {f:.0%}" for t, f in self.kv)


@dataclass(frozen=True)
class LayerCosts:
    """Per-layer durations (seconds) of one GPU batch, for prefill and for a decode step at the
    mean context, plus bytes that cross links."""

    gpu_prefill_s: float
    gpu_decode_s: float
    """Decode on the GPU without attention."""
    gpu_attention_s: float
    """Decode attention on the GPU over the whole KV cache."""
    cpu_attention_s: float
    """Decode attention on the CPU over the whole KV cache."""
    weight_bytes: float
    kv_prefill_bytes: float
    kv_decode_bytes: float
    attention_weight_frac: float = 1 / 3
    """Share of a layer's weight bytes in its attention sub-layer (norm, QKV and output projections)."""
    gpu_prefill_attention_s: float = 0.0
    """Prefill GPU time of the attention sub-layer (its part of ``gpu_prefill_s``)."""
    gpu_decode_projection_s: float = 0.0
    """Decode GPU time of the attention sub-layer without the attention op (its part of ``gpu_decode_s``)."""

    def sublayers(self, prefill: bool, kv_gpu: float) -> tuple[tuple[str, float, float], ...]:
        """FlexGen's pipeline units of one layer (``sep_layer``, on by default: the attention and the
        MLP are separate layers, FlexLLMGen ``flexllmgen/flex_opt.py``): (name, share of the layer's
        weights, GPU time of one GPU batch), the attention's GPU time with the KV share on the GPU."""
        if prefill:
            att = self.gpu_prefill_attention_s
            return ("attention", self.attention_weight_frac, att), (
                "mlp",
                1 - self.attention_weight_frac,
                self.gpu_prefill_s - att,
            )
        att = self.gpu_decode_projection_s + kv_gpu * self.gpu_attention_s
        return (
            ("attention", self.attention_weight_frac, att),
            ("mlp", 1 - self.attention_weight_frac, self.gpu_decode_s - self.gpu_decode_projection_s),
        )


ATTENTION_SUBLAYER = ("attn_norm", "qkv_proj", "q_norm", "k_norm", "rope", "attention", "o_proj")
"""Ops of a layer's attention sub-layer; the rest of the layer is its MLP sub-layer."""


def _layer_share(total: np.ndarray, ops, names: tuple[str, ...] | None = None) -> float:
    """Per-layer time of the layer rows (not embedding, final norm, LM head), optionally only ``names``."""
    mask = ~np.isin(ops.name, ("embedding", "final_norm", "lm_head"))
    if names is not None:
        mask &= np.isin(ops.name, names)
    return float(total[mask].sum())


def layer_costs(
    spec: ModelSpec,
    quant: Quant,
    system: System,
    gpu_batch: int,
    input_len: int,
    output_len: int,
    framework: str | None = None,
) -> LayerCosts:
    """Price one layer of one GPU batch with the GPU's cost model, and its decode attention both on
    the GPU and on the CPU (the KV read at the host's bandwidth, or the framework's CPU attention
    rate if slower); a policy takes the share of each its KV placement asks for."""
    check_roles(system)  # a System built in Python: a disk without storage, a host without memory
    dev, L = system.gpu, spec.n_layers
    model = registry.get(dev.arch)
    mid_ctx = input_len + max(output_len - 1, 0) / 2.0
    pre = build_ops(spec, quant, phase="prefill", batch=gpu_batch, tokens=input_len)
    dec = build_ops(spec, quant, phase="decode", batch=gpu_batch, context=mid_ctx)
    pre_t, dec_t = model.estimate(pre, dev).time_s, model.estimate(dec, dev).time_s
    gpu_att = _layer_share(dec_t, dec, ("attention",)) / L
    gpu_dec = _layer_share(dec_t, dec) / L - gpu_att
    cpu_att = 0.0
    kv_layer = float(kv_cache_bytes(spec, quant, gpu_batch, mid_ctx)) / L
    if "host" in system.devices:
        host = system.devices["host"][0]
        eff = params_for("cpu", "server-cpu")["memory_efficiency"].value
        cpu_att = kv_layer / (host.memory.bw_bytes_per_s * eff)
        rate = framework_terms(framework).cpu_attention_flop_per_s if framework else None
        if rate:
            att_flops = float((dec.flops * dec.count[:, None].reshape(-1))[dec.name == "attention"].sum()) / L
            cpu_att = max(cpu_att, att_flops / rate)
    w_layer = (weight_bytes(spec, quant) - embedding_and_head_bytes(spec, quant)) / L
    op_weights = dec.weight_bytes * dec.count
    att_weights = _layer_share(op_weights, dec, ATTENTION_SUBLAYER)
    projections = tuple(n for n in ATTENTION_SUBLAYER if n != "attention")
    return LayerCosts(
        _layer_share(pre_t, pre) / L,
        gpu_dec,
        gpu_att,
        cpu_att,
        w_layer,
        float(kv_cache_bytes(spec, quant, gpu_batch, input_len)) / L,
        kv_layer,
        att_weights / _layer_share(op_weights, dec),
        _layer_share(pre_t, pre, ATTENTION_SUBLAYER) / L,
        _layer_share(dec_t, dec, projections) / L,
    )


def gpu_bytes(
    spec: ModelSpec, quant: Quant, p: Policy, input_len: int, output_len: int, lc: LayerCosts
) -> float:
    """Peak GPU memory of a policy, accounted as FlexGen's policy search does (the larger of the
    prefill and decode peaks; FlexGen paper Appendix A.3, as FlexLLMGen
    ``experimental/cost_model.py`` lines 284-323 codes it): the resident shares of the weights and of the
    whole block's KV cache at the final length, two staging buffers of one layer's offloaded
    weights, the block's hidden states when the activations stay on the GPU (FlexGen's policies
    keep them there only when all the weights are), and the largest working set of one GPU
    batch (the paper's max over Q/K/V/O, the attention's fp16 scores, and the MLP's up
    projection)."""
    s, n, gbs = input_len, output_len, p.gpu_batch
    h1, h2, nh = spec.hidden_size, spec.ffn_size, spec.n_heads
    act = quant.act_bytes
    wg, cg = p.weight_frac("gpu"), p.kv_frac("gpu")
    hg = 1.0 if wg >= 1.0 else 0.0
    resident_w = wg * weight_bytes(spec, quant)
    staging_w = 2 * lc.weight_bytes * (1 - wg)
    kv_block = float(kv_cache_bytes(spec, quant, p.block, s + n))
    kv_batch_layer = float(kv_cache_bytes(spec, quant, gbs, s + n)) / spec.n_layers

    def peak(tokens: int, keys: int) -> float:
        hidden_home = tokens * h1 * act * p.block * hg
        staging_h = tokens * h1 * act * gbs * (1 - hg)
        qkv = 4 * gbs * tokens * h1 * act
        attention = gbs * (tokens * h1 + nh * tokens * keys) * act
        mlp = gbs * tokens * (2 * h1 + h2) * act
        working = max(qkv, attention, mlp)
        return resident_w + hidden_home + cg * kv_block + staging_w + staging_h + working

    return max(peak(s, s), peak(1, s + n) + 2 * cg * kv_batch_layer)


def _memory_ok(
    spec: ModelSpec,
    quant: Quant,
    system: System,
    p: Policy,
    input_len: int,
    output_len: int,
    lc: LayerCosts,
    framework: str | None,
) -> tuple[bool, str]:
    """Whether a policy fits GPU (the framework's share of it), host and disk; the reason when not."""
    gpu, host = system.gpu, system.devices.get("host", (None, 0))[0]
    disk = system.devices.get("disk", (None, 0))[0]
    w_total = weight_bytes(spec, quant)
    kv_total = float(kv_cache_bytes(spec, quant, p.block, input_len + output_len))
    need_gpu = gpu_bytes(spec, quant, p, input_len, output_len, lc)
    usable = (framework_terms(framework).memory_fraction if framework else 1.0) * gpu.memory.capacity_bytes
    if need_gpu > usable:
        hint = (
            "move more weights to host or disk (placement.weights), more of the KV cache to host or disk "
            "(placement.kv)"
        )
        return False, (
            f"GPU memory short by {(need_gpu - usable) / 1e9:.2f} GB (needs {need_gpu / 1e9:.2f} GB of "
            f"{usable / 1e9:.2f} GB usable); {hint}, or lower the batch"
        )
    need_host = p.weight_frac("host") * w_total + p.kv_frac("host") * kv_total
    host_cap = host.memory.capacity_bytes if host is not None else 0.0
    if need_host > host_cap:
        return False, (
            f"host memory short by {(need_host - host_cap) / 1e9:.2f} GB (needs {need_host / 1e9:.2f} GB); "
            "move weights to disk (placement.weights: {disk: ...}) or lower the batch"
        )
    need_disk = p.weight_frac("disk") * w_total + p.kv_frac("disk") * kv_total
    disk_cap = disk.extra["storage"]["capacity_bytes"] if disk is not None else 0.0
    if need_disk > disk_cap:
        return False, f"disk short by {(need_disk - disk_cap) / 1e9:.2f} GB (needs {need_disk / 1e9:.2f} GB)"
    return True, ""


def policy_time_s(system: System, p: Policy, lc: LayerCosts, n_layers: int, output_len: int) -> float:
    """Closed-form time of a block, iteration by iteration of FlexGen's loop (``iterations``): each
    iteration lasts as long as its slowest chain of transfers and compute, or its busiest resource
    (a link or the SSD carries its chains one after another)."""
    total = 0.0
    for step, count in ((0, 1), (1, max(output_len - 1, 0))):
        if count:
            per_layer = sum(
                max(max(sum(d for _, _, d in chain) for chain in it), *_resource_sums(it).values())
                for it in iterations(system, p, lc, prefill=step == 0)
            )
            total += count * n_layers * per_layer
    return total


def _resource_sums(iteration: list[list[tuple[str, str, float]]]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for chain in iteration:
        for resource, _, d in chain:
            sums[resource] = sums.get(resource, 0.0) + d
    return sums


def iterations(
    system: System, p: Policy, lc: LayerCosts, prefill: bool
) -> list[list[list[tuple[str, str, float]]]]:
    """One layer of FlexGen's generation loop (FlexLLMGen ``flexllmgen/flex_opt.py``,
    ``generation_loop_overlap_multi_batch``, ``sep_layer`` on): for each pipeline unit (the
    attention, then the MLP) and each GPU batch, an iteration issues the next unit's weight load
    (first batch only; disk -> host -> GPU), the next batch's KV-cache read from disk, and the
    previous batch's KV store (prefill), runs this batch's compute (GPU, then the CPU's attention over
    the KV share off the GPU), then synchronizes: the next iteration starts when every chain of this
    one has finished. Each chain is a list of (resource, task name, seconds)."""
    pcie = system.link_between("gpu", "host")
    disk_link = system.link_between("host", "disk") if "disk" in system.devices else None
    w_stream = lc.weight_bytes * (1 - p.weight_frac("gpu"))
    w_disk = lc.weight_bytes * p.weight_frac("disk")
    k = p.n_gpu_batches
    off, on_disk = p.kv_off_gpu, p.kv_frac("disk")
    units = lc.sublayers(prefill, p.kv_frac("gpu"))
    out = []
    for u, (name, _, gpu_s) in enumerate(units):
        next_share = units[(u + 1) % len(units)][1]
        for j in range(k):
            chains = [[("gpu", f"{name}/b{j}/gpu", gpu_s)]]
            if name == "attention" and off and not prefill:
                chains[0].append(("host", f"{name}/b{j}/cpu_attention", off * lc.cpu_attention_s))
            if j == 0 and w_stream:
                load = []
                if w_disk:
                    load.append(
                        (
                            "ssd",
                            f"{name}/next_weights_disk",
                            next_share * w_disk / disk_link.bw_from("disk", "host") + disk_link.latency_s,
                        )
                    )
                load.append(
                    (
                        "pcie",
                        f"{name}/next_weights",
                        next_share * w_stream / pcie.bw_from("host", "gpu") + pcie.latency_s,
                    )
                )
                chains.append(load)
            reads_next = (name == "attention" and j + 1 < k) or (name != "attention" and j == k - 1)
            if on_disk and not prefill and reads_next:
                chains.append(
                    [
                        (
                            "ssd",
                            f"{name}/b{j}/next_kv_disk_read",
                            on_disk * lc.kv_decode_bytes / disk_link.bw_from("disk", "host"),
                        )
                    ]
                )
            if prefill and off and name == "attention":
                store = [
                    ("pcie", f"{name}/b{j}/kv_store", off * lc.kv_prefill_bytes / pcie.bw_from("gpu", "host"))
                ]
                if on_disk:
                    store.append(
                        (
                            "ssd",
                            f"{name}/b{j}/kv_disk_write",
                            on_disk * lc.kv_prefill_bytes / disk_link.bw_from("host", "disk"),
                        )
                    )
                chains.append(store)
            out.append(chains)
    return out


KV_PLACEMENTS = ((("gpu", 1.0),), (("host", 1.0),), (("disk", 1.0),))
"""KV placements the policy search tries (FlexGen's cache percentages at their corners)."""


def candidates(
    system: System,
    spec: ModelSpec,
    quant: Quant,
    input_len: int,
    output_len: int,
    framework: str | None = None,
):
    """Every policy of the grid that fits, with its layer costs and closed-form time."""
    has_disk = "disk" in system.devices
    has_host = "host" in system.devices
    cache: dict[int, LayerCosts] = {}
    for gbs, k, w_gpu, disk_share, kv in itertools.product(
        GPU_BATCHES, BLOCK_SIZES, WEIGHT_GPU, WEIGHT_DISK_SHARE, KV_PLACEMENTS
    ):
        tier = kv[0][0]
        if gbs * k > MAX_BLOCK or (disk_share and not has_disk) or (tier != "gpu" and not has_host):
            continue
        if tier == "disk" and not has_disk:
            continue
        if not has_host and w_gpu < 1:
            continue
        w_disk = round((1 - w_gpu) * disk_share, 4)
        weights = tuple(
            (t, f)
            for t, f in (("gpu", w_gpu), ("host", round(1 - w_gpu - w_disk, 4)), ("disk", w_disk))
            if f > 0
        )
        p = Policy(gbs, k, weights, kv)
        if gbs not in cache:
            cache[gbs] = layer_costs(spec, quant, system, gbs, input_len, output_len, framework)
        lc = cache[gbs]
        ok, _ = _memory_ok(spec, quant, system, p, input_len, output_len, lc, framework)
        if ok:
            yield p, lc, policy_time_s(system, p, lc, spec.n_layers, output_len)


def build_offload_graph(
    system: System, spec: ModelSpec, p: Policy, lc: LayerCosts, output_len: int
) -> TaskGraph:
    """The task DAG of a block: prefill and decode steps, layer by layer, in FlexGen's loop
    (``iterations``: each iteration's chains run in parallel, and the next iteration waits for
    all of them)."""
    g = TaskGraph()
    sync: list[int] = []
    for step in range(max(output_len, 1)):
        for i in range(spec.n_layers):
            for it in iterations(system, p, lc, prefill=step == 0):
                ends = []
                for chain in it:
                    dep = sync
                    for resource, name, d in chain:
                        dep = [g.add(f"s{step}/L{i}/{name}", resource, d, dep)]
                    ends += dep
                sync = ends
    return g


def best_policy(
    system: str | System,
    model: str | ModelSpec,
    *,
    input_len: int,
    output_len: int,
    precision: str = "fp16",
    block: int | None = None,
    n_simulated: int = 3,
    framework: str | None = "flexgen",
) -> tuple[Policy, float]:
    """The policy with the highest throughput: closed-form ranking, then the engine on the top few.

    ``block`` restricts the search to blocks of exactly that many sequences. Returns the
    policy and its simulated throughput (generated tokens per second).
    """
    system, spec, quant = load_system(system), load_model(model), Quant.from_name(precision)
    ranked = [
        (p, lc, t)
        for p, lc, t in candidates(system, spec, quant, input_len, output_len, framework)
        if block is None or p.block == block
    ]
    if not ranked:
        w = weight_bytes(spec, quant)
        raise DoesNotFitError(
            f"{spec.name} ({w / 1e9:.1f} GB of weights) fits no offload policy on {system.name}"
            + (f" with a block of {block}" if block else "")
        )
    ranked.sort(key=lambda r: -r[0].block * output_len / r[2])
    best, best_rate = None, -1.0
    for p, lc, _ in ranked[:n_simulated]:
        makespan = run(build_offload_graph(system, spec, p, lc, output_len), record=False).makespan_s
        rate = p.block * output_len / makespan
        if rate > best_rate:
            best, best_rate = p, rate
    return best, best_rate


def simulate_offload(
    system: System,
    model: str | ModelSpec,
    *,
    batch: int,
    input_len: int,
    output_len: int,
    precision: str = "fp16",
    economics: Economics | None = None,
    record: bool = True,
    framework: str | None = "flexgen",
):
    """Simulate one block of ``batch`` sequences under the system's placement and offload policy."""
    from sim.simulate import SimResult, _result

    spec, quant = load_model(model), Quant.from_name(precision)
    gbs = system.gpu_batch or batch
    k = max(1, math.ceil(batch / gbs))
    # per step and layer: weight and KV loads, and per GPU batch its compute, stores and CPU attention
    check_size(
        output_len * spec.n_layers * (2 + 5 * k),
        f"simulating {output_len} output tokens of {spec.name} offloaded on {system.name}",
    )
    kv = tuple((t, f) for t, f in sorted(system.kv.items()) if f > 0)
    p = Policy(min(gbs, batch), k, tuple(sorted(system.weights.items())), kv)
    lc = layer_costs(spec, quant, system, p.gpu_batch, input_len, output_len, framework)
    ok, why = _memory_ok(spec, quant, system, p, input_len, output_len, lc, framework)
    if not ok:
        raise DoesNotFitError(f"{spec.name} with batch {batch} on {system.name}: {why}")
    timeline = run(build_offload_graph(system, spec, p, lc, output_len), record=True)
    prefill_end = float(
        timeline.intervals.loc[timeline.intervals["task"].str.startswith("s0/"), "end_s"].max()
    )
    e2e = timeline.makespan_s
    n_steps = max(output_len - 1, 0)
    dev = system.gpu
    place = Placement()
    pre_cost = registry.get(dev.arch).estimate(
        build_ops(spec, quant, phase="prefill", batch=batch, tokens=input_len), dev, place
    )
    dec_cost = registry.get(dev.arch).estimate(
        build_ops(spec, quant, phase="decode", batch=batch, context=input_len + n_steps / 2.0), dev, place
    )
    dec_cost = replace(dec_cost, dynamic_energy_j=dec_cost.dynamic_energy_j * n_steps)
    result = _result(
        system,
        spec,
        quant,
        batch,
        input_len,
        output_len,
        prefill_end,
        (e2e - prefill_end) / n_steps if n_steps else 0.0,
        e2e,
        pre_cost,
        dec_cost,
        n_steps,
        economics,
        timeline,
        groups={},  # no offloaded run is among the fitted rows: its ranges are unknown (NaN)
    )
    # the policy passed the memory check: report the GPU's share, not the whole model's
    estimate = replace(
        result.estimate,
        memory_bytes=np.asarray(gpu_bytes(spec, quant, p, input_len, output_len, lc)),
        fits=np.asarray(True),
    )
    return SimResult(estimate, timeline, result.utilization)
