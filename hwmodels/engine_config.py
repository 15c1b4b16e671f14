"""An engine's batching limits and the KV-cache capacity it really gets.

``hwmodels/calibration/engines.yaml`` holds each serving engine's defaults with their source.
``kv_capacity`` resolves the KV pool per device the way the engine does: from the
device's memory, the engine's memory fraction, the weights on the device, the activation
peak of its profiling pass at the token budget, and its runtime reserve. Most serving
simulators' largest errors came from getting this number wrong, so it is reported with
every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from typing import Any

from hwmodels.device_spec import DeviceSpec
from hwmodels.schedulers import policy, running_tokens_per_seq
from workloads.errors import ConfigError, DoesNotFitError, unknown_name
from workloads.graph import activation_peak_bytes, kv_bytes_per_token, kv_state_bytes_per_seq, weight_bytes
from workloads.model_spec import ModelSpec
from workloads.quant import Quant
from workloads.shipped import parse_yaml

KV_RULES = ("utilization", "free_fraction", "static_fraction", "whole")
SCHEDULERS = ("static", "vllm", "vllm-v0", "tensorrt-llm", "sglang")
DP_ATTENTION_BUDGETS = ("whole", "half", "shared")
"""How an engine sizes each attention data-parallel rank's token budget from its own
(``dp_attention_budget`` in ``engines.yaml``): ``whole``, each rank the whole budget; ``half``,
each rank half of it (SGLang v0.4.0-v0.4.3's ``--enable-dp-attention``: chunked_prefill_size // 2);
``shared``, the ranks split it (later SGLang: chunked_prefill_size // dp_size)."""
BUDGET_RULES = ("fixed", "max_model_len")
"""How an engine sets its token budget per step when the run does not (``token_budget`` in
``engines.yaml``): ``fixed``, its ``max_num_batched_tokens``; ``max_model_len``, vLLM V0's rule
(``EngineConfig.sized_for``)."""
V0_MIN_BUDGET = 2048
"""vLLM V0's floor on a budget taken from ``max_model_len`` (vllm/config.py ``SchedulerConfig``:
``max(max_model_len, 2048)`` with chunked prefill off)."""
V0_LONG_CONTEXT = 32768
"""Above this ``max_model_len`` vLLM V0 turns chunked prefill on by itself (vllm/engine/arg_utils.py
``use_long_context``), except for an MLA model, whose chunked prefill V0 forces off."""


@dataclass(frozen=True)
class DeviceDefaults:
    """An engine's limits on the devices a rule matches (``device_defaults`` in ``engines.yaml``):
    at least ``min_memory_bytes`` of memory and no name containing one of ``not_named``; a budget
    for its server and one for its offline (Python ``LLM`` class) runs."""

    min_memory_bytes: float
    not_named: tuple[str, ...]
    max_num_seqs: int
    server_tokens: int
    offline_tokens: int

    def matches(self, device: DeviceSpec) -> bool:
        return device.memory.capacity_bytes >= self.min_memory_bytes and not any(
            part in device.name for part in self.not_named
        )


@dataclass(frozen=True)
class EngineConfig:
    """Batching limits and memory rule of one engine (defaults from ``engines.yaml``)."""

    name: str
    scheduler: str
    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int
    kv_rule: str
    kv_fraction: float
    runtime_reserve_bytes: float
    source: str
    preemption: str = "recompute"
    prefix_caching: bool = False
    budget_rule: str = "fixed"
    device_defaults: tuple[DeviceDefaults, ...] = ()
    dp_attention_budget: str = "whole"
    """Each attention data-parallel rank's token budget from the engine's (``DP_ATTENTION_BUDGETS``)."""
    chunked_prefill_tokens: int = 0
    """The token budget a V0-style engine (``budget_rule: max_model_len``) takes when it runs with
    chunked prefill, whose steps then mix decodes and prompt chunks as the ``vllm`` policy does
    (0: the engine has no chunked prefill)."""
    sampler_bytes_per_logit: float = 0.0
    """Bytes per (sequence x vocabulary entry) its start-up profiling pass holds while sampling
    ``max_num_seqs`` dummy sequences (0: no such pass); the pass's peak is the larger of the
    forward's activations and the sampler's (``kv_capacity``)."""
    nccl_reserve_devices: tuple[str, ...] = ()
    """Devices on whose NVSwitch boards the engine's non-torch memory grows with its tensor-parallel
    group: there the runtime reserve is ``nccl_reserve_bytes x (1 + log2 tp)`` (see
    ``runtime_reserve``), elsewhere ``runtime_reserve_bytes + tp_reserve_bytes x log2 tp``."""
    nccl_reserve_bytes: float = 0.0
    tp_reserve_bytes: float = 0.0
    """Bytes the runtime reserve grows by per doubling of the tensor-parallel group elsewhere (the
    communicators' buffers: ``runtime_reserve_bytes + tp_reserve_bytes x log2 tp``)."""
    mla_decode_copies: bool = False
    """The engine keeps MLA's absorbed decode matrices beside the raw projections (``mla_extra_bytes``)."""
    mla_kv_align_bytes: int = 0
    """An MLA layer's KV entry per token is padded to a multiple of this many bytes (0: none)."""
    kv_fraction_by_tp: tuple[tuple[int, float], ...] = ()
    """(smallest tensor-parallel size, memory share) pairs that replace ``kv_fraction`` for a
    replica of at least that many ranks, the largest such size ruling (SGLang before v0.4.6
    lowers ``mem_fraction_static`` as the group grows); a run's own share overrides them."""
    scheduler_steps: int = 1
    """Decode steps the engine runs per scheduling pass (vLLM V0's ``--num-scheduler-steps``,
    multi-step scheduling, v0.6.0 to v0.7): a prefill-first engine admits new prompts only
    between such runs of decode steps (``sim.serving.replica``)."""

    def rank_token_budget(self, ranks: int) -> int:
        """One attention data-parallel rank's token budget among ``ranks`` (``dp_attention_budget``)."""
        if ranks <= 1 or self.dp_attention_budget == "whole":
            return self.max_num_batched_tokens
        return max(1, self.max_num_batched_tokens // (2 if self.dp_attention_budget == "half" else ranks))

    def with_limits(
        self,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        preemption: str | None = None,
        prefix_caching: bool | None = None,
        scheduler_steps: int | None = None,
        scheduler: str | None = None,
        kv_fraction: float | None = None,
    ) -> EngineConfig:
        """A copy with the run's own limits (``--max-batch``, ``--max-batched-tokens``,
        ``--num-scheduler-steps``), with ``scheduler`` another of its engine's scheduling
        policies (``hwmodels.schedulers``: TensorRT-LLM's ``tensorrt-llm-max-util``), and with
        ``kv_fraction`` the run's memory share in the engine's own rule (``kv_rule``: vLLM's
        ``--gpu-memory-utilization``, SGLang's ``--mem-fraction-static``, TensorRT-LLM's
        ``free_gpu_memory_fraction``)."""
        if scheduler is not None:
            policy(scheduler)  # an unknown name lists the known ones
        if kv_fraction is not None and (
            isinstance(kv_fraction, bool)
            or not isinstance(kv_fraction, (int, float))
            or not 0.0 < float(kv_fraction) <= 1.0
        ):
            raise ConfigError(f"kv_fraction is {kv_fraction!r}; expected a share of memory in (0, 1]")
        for label, value in (
            ("max_batch", max_num_seqs),
            ("max_batched_tokens", max_num_batched_tokens),
            ("scheduler_steps", scheduler_steps),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{label} is {value!r}; expected a positive integer")
        if preemption is not None and preemption not in ("recompute", "swap"):
            raise ConfigError(f"preemption is {preemption!r}; expected 'recompute' or 'swap'")
        return replace(
            self,
            max_num_seqs=max_num_seqs or self.max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens or self.max_num_batched_tokens,
            preemption=preemption or self.preemption,
            prefix_caching=self.prefix_caching if prefix_caching is None else bool(prefix_caching),
            scheduler_steps=scheduler_steps or self.scheduler_steps,
            scheduler=scheduler or self.scheduler,
            kv_fraction=self.kv_fraction if kv_fraction is None else float(kv_fraction),
            kv_fraction_by_tp=self.kv_fraction_by_tp if kv_fraction is None else (),
        )

    def memory_fraction(self, tp: int) -> float:
        """The memory share of the engine's ``kv_rule`` for a replica of ``tp`` tensor-parallel
        ranks: the ``kv_fraction_by_tp`` entry of the largest size at most ``tp``, else ``kv_fraction``."""
        ruling = [f for size, f in self.kv_fraction_by_tp if size <= tp]
        return ruling[-1] if ruling else self.kv_fraction

    def for_device(self, device: DeviceSpec, offline: bool = False) -> EngineConfig:
        """A copy with the limits the engine picks for ``device`` by itself (the first of its
        ``device_defaults`` that matches; none: its own), for a server run or, with ``offline``,
        a run of its offline Python API."""
        for rule in self.device_defaults:
            if rule.matches(device):
                return replace(
                    self,
                    max_num_seqs=rule.max_num_seqs,
                    max_num_batched_tokens=rule.offline_tokens if offline else rule.server_tokens,
                )
        return self

    def sized_for(
        self, spec: ModelSpec, max_model_len: int | None = None, chunked_prefill: bool | None = None
    ) -> EngineConfig:
        """A copy with the token budget and scheduling the engine itself sets for ``spec`` served
        at ``max_model_len`` tokens (the run's ``--max-model-len``; None: the model's context).

        vLLM V0 (``budget_rule: max_model_len``) without chunked prefill makes its budget
        ``max(max_model_len, 2048)``: it prefills any whole prompt the model takes in one step,
        and its start-up profiling pass runs that many tokens, so the activation peak it reserves,
        and with it the KV pool, follows. ``chunked_prefill`` is the run's own setting; left
        unset (None) V0 turns chunked prefill on above a ``max_model_len`` of 32,768 only
        (vllm/engine/arg_utils.py: ``if self.enable_chunked_prefill is None: ... use_long_context``),
        and always off for an MLA model (v0.7: "MLA is enabled; forcing chunked prefill and
        prefix caching to be disabled"). With chunked prefill on, V0 schedules with
        ``_schedule_chunked_prefill`` (vllm/core/scheduler.py): running decodes first, then
        prompt chunks in the rest of the budget, the ``vllm`` policy, at its chunked budget
        (``chunked_prefill_tokens``). A context the model does not state, or an engine without
        chunked prefill, keeps the engine as it is. Other engines keep their budget."""
        if max_model_len is not None and (
            isinstance(max_model_len, bool) or not isinstance(max_model_len, int) or max_model_len < 1
        ):
            raise ConfigError(f"max_model_len is {max_model_len!r}; expected a positive integer")
        if chunked_prefill is not None and not isinstance(chunked_prefill, bool):
            raise ConfigError(f"chunked_prefill is {chunked_prefill!r}; expected true, false or none")
        length = max_model_len or spec.max_context
        if self.budget_rule != "max_model_len" or length is None:
            return self
        chunked = (length > V0_LONG_CONTEXT) if chunked_prefill is None else chunked_prefill
        if chunked and spec.mla is None:
            if not self.chunked_prefill_tokens:
                return self
            return replace(self, scheduler="vllm", max_num_batched_tokens=self.chunked_prefill_tokens)
        return replace(self, max_num_batched_tokens=max(length, V0_MIN_BUDGET))


@lru_cache(maxsize=1)
def _engines() -> dict[str, EngineConfig]:
    where = "hwmodels/calibration/engines.yaml"
    raw = parse_yaml(files("hwmodels.calibration").joinpath("engines.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected 1")
    out = {}
    for name, e in raw["engines"].items():
        mem = e["kv_memory"]
        budget = e.get("token_budget", "fixed")
        dp_budget = e.get("dp_attention_budget", "whole")
        if (
            e["scheduler"] not in SCHEDULERS
            or mem["rule"] not in KV_RULES
            or budget not in BUDGET_RULES
            or dp_budget not in DP_ATTENTION_BUDGETS
            or not e.get("source")
        ):
            raise ConfigError(
                f"{where}: engines.{name} needs a known scheduler, kv rule, token budget "
                "(and attention data-parallel budget) and a source"
            )
        out[name] = EngineConfig(
            name=name,
            scheduler=e["scheduler"],
            max_num_seqs=int(e["max_num_seqs"]),
            max_num_batched_tokens=int(e["max_num_batched_tokens"]),
            block_size=int(e["block_size"]),
            kv_rule=mem["rule"],
            kv_fraction=float(mem["fraction"]),
            kv_fraction_by_tp=_fraction_by_tp(
                mem.get("fraction_by_tp"), f"{where}: engines.{name}.kv_memory"
            ),
            runtime_reserve_bytes=float(mem["runtime_reserve_GB"]) * 1e9,
            tp_reserve_bytes=_tp_reserve_gb(
                mem.get("tp_reserve_GB", 0.0), f"{where}: engines.{name}.kv_memory"
            )
            * 1e9,
            source=str(e["source"]).strip(),
            prefix_caching=bool(e.get("prefix_caching", False)),
            budget_rule=budget,
            dp_attention_budget=dp_budget,
            device_defaults=tuple(
                _device_defaults(r, f"{where}: engines.{name}") for r in e.get("device_defaults", ())
            ),
            sampler_bytes_per_logit=float(e.get("profile_sampler_bytes_per_logit", 0.0)),
            chunked_prefill_tokens=int(e.get("chunked_prefill_tokens", 0)),
            **_nccl_reserve(mem.get("nccl_reserve"), f"{where}: engines.{name}.kv_memory.nccl_reserve"),
            **_mla_memory(e.get("mla_memory"), f"{where}: engines.{name}.mla_memory"),
        )
    return out


def _fraction_by_tp(table: Any, where: str) -> tuple[tuple[int, float], ...]:
    """An engine's ``fraction_by_tp`` mapping (tensor-parallel size: memory share), checked and
    sorted by size."""
    if table is None:
        return ()
    if not isinstance(table, dict) or not all(
        isinstance(k, int) and k >= 1 and isinstance(v, float) and 0.0 < v <= 1.0 for k, v in table.items()
    ):
        raise ConfigError(
            f"{where}.fraction_by_tp: expected a mapping of tensor-parallel sizes to shares in (0, 1]"
        )
    return tuple(sorted(table.items()))


def _tp_reserve_gb(value: Any, where: str) -> float:
    """An engine's ``tp_reserve_GB`` (GB per doubling of the tensor-parallel group), checked."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 100.0:
        raise ConfigError(f"{where}.tp_reserve_GB is {value!r}; expected GB from 0 to 100")
    return float(value)


def _nccl_reserve(rule: Any, where: str) -> dict[str, Any]:
    """An engine's ``nccl_reserve`` entry (``devices``, ``GB``), checked, as ``EngineConfig`` fields."""
    if rule is None:
        return {}
    devices, gb = (rule.get("devices"), rule.get("GB")) if isinstance(rule, dict) else (None, None)
    if (
        set(rule if isinstance(rule, dict) else ()) != {"devices", "GB", "source"}
        or not isinstance(devices, list)
        or not all(isinstance(d, str) for d in devices)
        or isinstance(gb, bool)
        or not isinstance(gb, (int, float))
        or not gb > 0
    ):
        raise ConfigError(f"{where} is {rule!r}; expected devices (a list of names), GB (> 0) and a source")
    return {"nccl_reserve_devices": tuple(devices), "nccl_reserve_bytes": float(gb) * 1e9}


def _mla_memory(rule: Any, where: str) -> dict[str, Any]:
    """An engine's ``mla_memory`` entry (``decode_copies``, ``kv_align_bytes``), checked."""
    if rule is None:
        return {}
    copies, align = (
        (rule.get("decode_copies"), rule.get("kv_align_bytes")) if isinstance(rule, dict) else (None, None)
    )
    if (
        set(rule if isinstance(rule, dict) else ()) != {"decode_copies", "kv_align_bytes", "source"}
        or not isinstance(copies, bool)
        or isinstance(align, bool)
        or not isinstance(align, int)
        or align < 0
    ):
        raise ConfigError(
            f"{where} is {rule!r}; expected decode_copies (true or false), kv_align_bytes (an integer >= 0) "
            "and a source"
        )
    return {"mla_decode_copies": copies, "mla_kv_align_bytes": align}


def mla_extra_bytes(spec: ModelSpec, quant: Quant, tp: int = 1, pp: int = 1) -> float:
    """Bytes per device an engine with ``mla_decode_copies`` holds beyond the checkpoint's weights
    for an MLA model (0 for another): per attention layer of its stage and its ``n_heads / tp``
    heads h, the absorbed decode matrices W_Q_UK (q_in x h x kv_lora_rank, q_in the Q latent
    rank, or the hidden size where Q is not compressed) and W_UV_O (h x kv_lora_rank x hidden),
    requantized at the weights' width where those are FP8, else at 16 bits; the Q projection's
    RoPE part W_QR (q_in x h x qk_rope_head_dim) copied at 16 bits; and, where the weights are
    quantized, kv_b_proj dequantized to 16 bits (kv_lora_rank x h x (qk_nope + v head dims)), which
    the engine keeps as W_UK and W_UV (vLLM V0 from v0.7.1, ``MLACommonImpl.process_weights_after_loading``
    in vllm/attention/backends/mla/utils.py, until vllm-project/vllm PR #14770 of 2025-03-13
    stopped materializing them)."""
    m = spec.mla
    if m is None:
        return 0.0
    h = spec.n_heads / tp
    q_in = m.q_lora_rank or spec.hidden_size
    width = quant.weight_bytes_per_param("attention")
    fp8 = quant.weight.startswith("fp8") and width < 2.0  # an 8-bit float attention (no 16-bit override)
    absorbed = (q_in * h * m.kv_lora_rank + h * m.kv_lora_rank * spec.hidden_size) * (width if fp8 else 2.0)
    kept = q_in * h * m.qk_rope_head_dim * 2.0
    if width < 2.0:
        kept += m.kv_lora_rank * h * (m.qk_nope_head_dim + m.v_head_dim) * 2.0
    layers = spec.n_attention_layers * float(math.ceil(spec.n_layers / pp)) / spec.n_layers
    return (absorbed + kept) * layers


def padded_mla_token_bytes(spec: ModelSpec, quant: Quant, per_token: float, align: int) -> float:
    """A token's KV bytes per device in a pool that pads each MLA layer's entry (the latent and the
    RoPE key, ``kv_elems_per_token_layer`` at the KV width) to a multiple of ``align`` bytes."""
    entry = spec.kv_elems_per_token_layer * quant.kv_bits / 8.0
    return per_token * math.ceil(entry / align) * align / entry


def runtime_reserve(engine: EngineConfig, device: DeviceSpec, tp: int) -> float:
    """Bytes per device the engine's memory check sets aside beside weights and activations (its
    non-torch memory: CUDA context, communication buffers), which grows with the tensor-parallel
    group the engine's NCCL communicators span: on a device of ``nccl_reserve_devices``
    ``nccl_reserve_bytes x (1 + log2 tp)``, elsewhere ``runtime_reserve_bytes + tp_reserve_bytes
    x log2 tp``."""
    doublings = math.log2(max(tp, 1))
    if device.name in engine.nccl_reserve_devices:
        return engine.nccl_reserve_bytes * (1.0 + doublings)
    return engine.runtime_reserve_bytes + engine.tp_reserve_bytes * doublings


def _device_defaults(rule: Any, where: str) -> DeviceDefaults:
    """One ``device_defaults`` rule of an engine, checked."""
    keys = {"min_memory_GiB", "not_named", "max_num_seqs", "max_num_batched_tokens"}
    tokens = rule.get("max_num_batched_tokens") if isinstance(rule, dict) else None
    if (
        not isinstance(rule, dict)
        or set(rule) - keys
        or "max_num_seqs" not in rule
        or not isinstance(tokens, dict)
        or set(tokens) != {"server", "offline"}
    ):
        raise ConfigError(
            f"{where}.device_defaults: expected a mapping of {', '.join(sorted(keys))}, "
            "max_num_batched_tokens with a server and an offline budget"
        )
    return DeviceDefaults(
        min_memory_bytes=float(rule.get("min_memory_GiB", 0)) * 2**30,
        not_named=tuple(rule.get("not_named", ())),
        max_num_seqs=int(rule["max_num_seqs"]),
        server_tokens=int(tokens["server"]),
        offline_tokens=int(tokens["offline"]),
    )


def engine_names() -> list[str]:
    return sorted(_engines())


def engine_for(framework: str | None) -> EngineConfig:
    """The engine defaults of ``framework`` (None: vLLM). A framework without a batching
    engine of its own (llama.cpp, HF Transformers, FlexGen) serves static batches within its
    ``memory_fraction``."""
    from hwmodels.calibration.params import framework_names, framework_terms

    table = _engines()
    if framework is not None and not isinstance(framework, str):
        raise ConfigError(f"framework is {framework!r}; expected a name or None")
    name = framework or "vllm"
    if name in table:
        return table[name]
    if name not in framework_names():
        raise unknown_name("framework", name, sorted(set(framework_names()) | set(table)))
    static = table["static"]
    return replace(static, name=name, kv_fraction=framework_terms(name).memory_fraction)


@dataclass(frozen=True)
class KvCapacity:
    """The KV pool of one replica, per device, and how it was resolved (bytes)."""

    tokens: int
    blocks: int
    block_size: int
    bytes_per_token: float
    device_bytes: float
    weight_bytes: float
    activation_bytes: float
    reserve_bytes: float
    kv_bytes: float
    rule: str
    fraction: float
    """The memory share ``rule`` took (``EngineConfig.memory_fraction`` at the replica's TP size)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kv_capacity_tokens": self.tokens,
            "kv_blocks": self.blocks,
            "kv_block_size": self.block_size,
            "kv_bytes_per_device": self.kv_bytes,
            "weight_bytes_per_device": self.weight_bytes,
            "activation_peak_bytes": self.activation_bytes,
            "runtime_reserve_bytes": self.reserve_bytes,
            "device_memory_bytes": self.device_bytes,
            "kv_rule": self.rule,
            "kv_memory_fraction": self.fraction,
        }


def kv_capacity(
    spec: ModelSpec,
    quant: Quant,
    device: DeviceSpec,
    engine: EngineConfig,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
) -> KvCapacity:
    """Resolve the KV pool as ``engine`` does; ``DoesNotFitError`` says how much memory is short."""
    total = device.memory.visible_bytes or device.memory.capacity_bytes
    weights = weight_bytes(spec, quant, tp, pp, ep)
    if engine.mla_decode_copies:
        weights += mla_extra_bytes(spec, quant, tp, pp)
    act = float(
        activation_peak_bytes(spec, quant, engine.max_num_batched_tokens, engine.max_num_seqs, tp)
        if engine.kv_rule != "static_fraction"
        else 0.0
    )
    if engine.sampler_bytes_per_logit:
        act = max(act, engine.max_num_seqs * spec.vocab_size * engine.sampler_bytes_per_logit)
    reserve = runtime_reserve(engine, device, tp)
    f = engine.memory_fraction(tp)
    rule = engine.kv_rule
    if rule == "utilization":
        kv = f * total - weights - act - reserve
    elif rule == "free_fraction":
        kv = f * (total - weights - act - reserve)
    else:  # static_fraction, whole
        kv = f * total - weights
    # linear-attention states are per sequence, not per token: held for max_num_seqs sequences
    kv -= engine.max_num_seqs * kv_state_bytes_per_seq(spec, quant, tp, pp)
    per_token = kv_bytes_per_token(spec, quant, tp, pp)
    if spec.mla is not None and engine.mla_kv_align_bytes:
        per_token = padded_mla_token_bytes(spec, quant, per_token, engine.mla_kv_align_bytes)
    block_bytes = per_token * engine.block_size
    blocks = int(kv // block_bytes) if kv > 0 else 0
    if blocks < 1:
        short = block_bytes - kv
        raise DoesNotFitError(
            f"{spec.name} leaves no KV cache on {device.name} under {engine.name}: "
            f"{total / 1e9:.1f} GB x {f:g} holds {weights / 1e9:.1f} GB of weights per device"
            + (
                f", {act / 1e9:.2f} GB of activations and {reserve / 1e9:.1f} GB reserve"
                if act or reserve
                else ""
            )
            + f"; short by {short / 1e9:.2f} GB for one KV block (add devices with --tp/--pp or lower --precision)"
        )
    return KvCapacity(
        tokens=blocks * engine.block_size,
        blocks=blocks,
        block_size=engine.block_size,
        bytes_per_token=per_token,
        device_bytes=total,
        weight_bytes=weights,
        activation_bytes=act,
        reserve_bytes=reserve,
        kv_bytes=blocks * block_bytes,
        rule=rule,
        fraction=f,
    )


def steady_batch(
    engine: EngineConfig,
    kv_tokens: float,
    input_len: float,
    output_len: float,
    max_num_seqs: int | None = None,
) -> int:
    """The most requests ``engine`` runs at once at steady state: its KV pool (``kv_tokens`` per
    replica) over the tokens one running request holds (``running_tokens_per_seq``: TensorRT-LLM
    reserves the whole output at admission, others hold half on average), capped by
    ``max_num_seqs`` (default: the engine's)."""
    per_seq = running_tokens_per_seq(engine.scheduler, input_len, output_len)
    return min(max_num_seqs or engine.max_num_seqs, int(kv_tokens // per_seq))
