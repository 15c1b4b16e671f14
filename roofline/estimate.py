"""The analytic path: ``estimate`` a model serving a batch on a device, vectorized.

One request batch on one model replica (``tp * pp * ep`` devices), ``n_devices / (tp *
pp * ep)`` replicas in all:

- the prompt of ``input_len`` tokens of every sequence is prefilled in one step, which
  also yields the first output token: ``ttft_s`` is that step's time;
- each further output token takes a decode step whose context grows from ``input_len``
  to ``input_len + output_len - 2``; ``tpot_s`` is the exact mean of those steps
  (``hwmodels.step_mean``); ``e2e_s = ttft_s + (output_len - 1) * tpot_s``;
- tokens are output tokens: ``decode_tokens_per_s = batch / tpot_s`` per replica times
  the replicas; energy and dollars are those of the whole run (prefill included) over
  its ``batch * output_len`` output tokens;
- energy of a replica: the dynamic energy of its work, plus static power of each of its
  devices over the whole time (pipeline stages wait for one another), never above TDP.

``batch`` is sequences per replica. ``memory_bytes`` is per device: weights, the KV
cache at the final context, and the activation workspace of the prefill step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np

from hwmodels import registry
from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import DeviceSpec, load_device
from hwmodels.placement import Placement
from hwmodels.step_mean import mean_step
from roofline.economics import Economics, usd_per_s
from roofline.intervals import estimate_ranges
from workloads.errors import ConfigError
from workloads.graph import activation_peak_bytes, build_ops, check_parallelism, kv_cache_bytes, weight_bytes
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant
from workloads.traces import MAX_TOKENS


@dataclass(frozen=True)
class Estimate:
    """Result of ``estimate``; the fields are the JSON keys of ``hwsim estimate --json``.

    Every numeric field is a NumPy array of the broadcast shape of the inputs (0-d for a
    single point). Units: seconds, tokens per second, joules, USD, bytes.

    ``<field>_low`` and ``<field>_high`` bound the 10th to 90th percentile range of the times,
    the two throughputs and the energy per token, from the leave-one-source-out errors of
    measured rows like this one (``roofline.intervals``); NaN (JSON ``null``) where no group of
    measured rows is large enough (energy, until J/token measurements are covered). The dollar
    figures and tokens per J carry no range.
    """

    model: str
    device: str
    n_devices: int
    batch: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    precision: str
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    prefill_tokens_per_s: np.ndarray
    decode_tokens_per_s: np.ndarray
    energy_j_per_token: np.ndarray
    tokens_per_j: np.ndarray
    usd_per_million_tokens: np.ndarray
    tokens_per_usd: np.ndarray
    price_basis: str
    bound: np.ndarray
    memory_bytes: np.ndarray
    fits: np.ndarray
    ttft_s_low: np.ndarray
    ttft_s_high: np.ndarray
    tpot_s_low: np.ndarray
    tpot_s_high: np.ndarray
    e2e_s_low: np.ndarray
    e2e_s_high: np.ndarray
    prefill_tokens_per_s_low: np.ndarray
    prefill_tokens_per_s_high: np.ndarray
    decode_tokens_per_s_low: np.ndarray
    decode_tokens_per_s_high: np.ndarray
    energy_j_per_token_low: np.ndarray
    energy_j_per_token_high: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: scalars for a single point, nested lists for a sweep."""
        out = {}
        for k, v in asdict(self).items():
            if k in ("batch", "input_len", "output_len"):
                v = np.asarray(v).astype(int)
            if isinstance(v, np.ndarray):
                v = (
                    v.item()
                    if v.ndim == 0
                    else np.where(np.isfinite(v), v, None).tolist()
                    if v.dtype.kind == "f"
                    else v.tolist()
                )
            elif isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not np.isfinite(v):
                v = None  # a $ figure on a basis the device has no price for: JSON null, never NaN
            out[k] = v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_frame(self):
        """A tidy DataFrame, one row per point of the broadcast grid."""
        import pandas as pd

        arrays = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        data = {k: np.broadcast_to(v, shape).ravel() for k, v in arrays.items()}
        frame = pd.DataFrame(data)
        for k in ("model", "device", "n_devices", "precision", "price_basis"):
            frame.insert(0, k, getattr(self, k))
        return frame


MAX_COUNT = MAX_TOKENS
"""Largest batch, prompt or output length an estimate takes: far beyond any deployment, small
enough that every product of them stays finite and exact in float64."""


def _positive_ints(value: Any, field: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise ConfigError(f"{field} is {value!r}; expected a positive integer (or an array of them)")
    arr = arr.astype(float)
    bad = ~np.isfinite(arr) | (arr < 1) | (arr != np.round(arr)) | (arr > MAX_COUNT)
    if np.any(bad):
        raise ConfigError(
            f"{field} is {arr[bad].ravel()[0]:g}; expected a positive integer up to {MAX_COUNT:,}"
        )
    return arr


def _check_options(economics: Any, link: Any, framework: Any, attention_dp: Any, imbalance: Any) -> None:
    """Refuse arguments of the wrong type or range with a one-line ``ConfigError``."""
    if economics is not None and not isinstance(economics, Economics):
        raise ConfigError(
            f"economics is {economics!r}; expected an Economics (e.g. Economics('cloud')) or None"
        )
    for field, value in (("link", link), ("framework", framework)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{field} is {value!r}; expected a name or None")
    if not isinstance(attention_dp, (bool, np.bool_)):
        raise ConfigError(f"attention_dp is {attention_dp!r}; expected True or False")
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float, np.number)):
        raise ConfigError(f"expert_imbalance is {imbalance!r}; expected a number from 1 to ep")


def resolve_parallelism(spec: ModelSpec, n_devices: int | None, tp: int, pp: int, ep: int) -> tuple[int, int]:
    """(devices per replica, replicas); raises ``ConfigError`` when they do not divide."""
    check_parallelism(spec, tp, pp, ep)
    per_replica = tp * pp * ep
    if n_devices is None:
        return per_replica, 1
    if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) or n_devices < 1:
        raise ConfigError(f"n_devices is {n_devices!r}; expected a positive integer")
    if n_devices % per_replica:
        raise ConfigError(f"n_devices {n_devices} is not a multiple of tp*pp*ep = {per_replica}")
    return per_replica, n_devices // per_replica


def compute_device(device: str | DeviceSpec) -> DeviceSpec:
    """A catalog device that has a cost model (not a host, link or storage part)."""
    dev = load_device(device)
    if dev.arch not in registry.names():
        raise ConfigError(
            f"device {dev.name!r} is a {dev.arch} part (no compute); "
            f"estimate needs one of arch {', '.join(registry.names())}"
        )
    companion = getattr(registry.get(dev.arch), "standalone", None)
    if companion:
        raise ConfigError(f"device {dev.name!r}: {companion}")
    return dev


def memory_per_device(
    spec: ModelSpec,
    quant: Quant,
    batch: Any,
    input_len: Any,
    output_len: Any,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    attention_dp: bool = False,
) -> np.ndarray:
    """Bytes each device holds: weights, KV cache at the final context, prefill workspace (with
    attention data parallel, those of its ``batch / ep`` sequences)."""
    weights = weight_bytes(spec, quant, tp, pp, ep)
    B = np.asarray(batch) / (ep if attention_dp and ep > 1 else 1)
    kv = kv_cache_bytes(spec, quant, B, np.asarray(input_len) + np.asarray(output_len), tp, pp)
    return weights + kv + activation_peak_bytes(spec, quant, B * np.asarray(input_len), B, tp)


def _ops(
    spec: ModelSpec,
    quant: Quant,
    phase: str,
    batch: np.ndarray,
    tokens: Any,
    context: Any,
    par: tuple,
):
    """``build_ops`` with ``par`` = (tp, pp, ep, attention_dp, expert_imbalance), memoized for
    single configurations (validation and fitting call the same points many times); sweeps are
    built directly."""
    if np.ndim(batch) == 0 and np.ndim(tokens) == 0 and np.ndim(context) == 0:
        return _ops_cached(spec, quant, phase, float(batch), float(tokens), float(context), par)
    return _build(spec, quant, phase, batch, tokens, context, par)


def _build(spec, quant, phase, batch, tokens, context, par):
    tp, pp, ep, attention_dp, imbalance = par
    return build_ops(
        spec,
        quant,
        phase=phase,
        batch=batch,
        tokens=tokens,
        context=context,
        tp=tp,
        pp=pp,
        ep=ep,
        attention_dp=attention_dp,
        expert_imbalance=imbalance,
    )


@lru_cache(maxsize=8192)
def _ops_cached(
    spec: ModelSpec,
    quant: Quant,
    phase: str,
    batch: float,
    tokens: float,
    context: float,
    par: tuple,
):
    return _build(spec, quant, phase, batch, tokens, context, par)


MAX_DRAFT_TOKENS = 64
"""Most tokens a multi-token-prediction step may draft (DeepSeek-V3 drafts 1; EAGLE-style trees
verify tens)."""


def mtp_expected_tokens(n_draft: int, acceptance: float) -> float:
    """Tokens one multi-token-prediction step emits per sequence: the verified token plus each
    drafted one while all before it were accepted, ``1 + a + a^2 + ... + a^n`` for a per-draft
    acceptance rate ``a`` (DeepSeek-V3 Sec. 5.4.3 reports 85-90% for the second token)."""
    ok_draft = isinstance(n_draft, (int, np.integer)) and not isinstance(n_draft, bool)
    if not ok_draft or not 0 <= n_draft <= MAX_DRAFT_TOKENS or not 0.0 <= acceptance <= 1.0:
        raise ConfigError(
            f"mtp draft tokens {n_draft!r} and acceptance {acceptance!r}; expected an integer "
            f"0..{MAX_DRAFT_TOKENS} and a rate in [0, 1]"
        )
    return float(sum(acceptance**i for i in range(n_draft + 1)))


def estimate(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    *,
    batch: Any,
    input_len: Any,
    output_len: Any,
    n_devices: int | None = None,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    precision: str | Quant = "fp16",
    economics: Economics | None = None,
    link: str | None = None,
    framework: str | None = None,
    attention_dp: bool = False,
    expert_imbalance: float = 1.0,
    mtp_tokens: int = 0,
    mtp_acceptance: float = 0.0,
) -> Estimate:
    """Analytic estimate of serving ``batch`` sequences; arrays broadcast into a sweep.

    Parameters
    ----------
    model : preset name, path to a ``config.json``, or a ``ModelSpec``.
    device : catalog name, path to a device YAML, or a ``DeviceSpec``.
    batch : sequences per replica, integer >= 1 (array allowed).
    input_len, output_len : prompt and generated tokens per sequence, integers >= 1.
    n_devices : devices in all; a multiple of ``tp * pp * ep`` (default exactly that).
    tp, pp, ep : tensor-, pipeline- and expert-parallel degrees.
    precision : a ``Quant`` or a name (``fp16``, ``bf16``, ``fp8``, ``int8``, ``int4``, ``w4a16``...).
    economics : price basis (``tco`` by default, or ``cloud``) and ownership assumptions (defaults
        in ``roofline/economics.yaml``); a device without a price on the basis gets NaN dollars.
    link : the device link collectives use (default NVLink if present, else PCIe).
    attention_dp : with ``ep > 1``, attention and dense layers data parallel across the
        expert-parallel group (``batch`` is then the whole group's; each device attends over
        ``batch / ep`` sequences and holds their KV cache).
    expert_imbalance : routed tokens on the busiest expert-parallel device over the mean (>= 1).
    mtp_tokens, mtp_acceptance : multi-token-prediction speculative decoding: each decode step
        verifies ``mtp_tokens`` drafted tokens per sequence (drafted by the model's MTP module,
        one pass each) and keeps each with probability ``mtp_acceptance`` while all before it
        were kept; TPOT is the step over the tokens it emits.
    framework : a serving framework of ``hwmodels/calibration/frameworks.yaml`` whose launch
        and per-step host overheads apply, and whose output lag delays the tokens a streaming
        client sees (default: the device class's launch overhead only). A framework with
        ``multi_gpu: sequential_layers`` (HF Accelerate's ``device_map``) spans devices only
        with ``pp``: its stages run one after another for the one batch.
    """
    spec = load_model(model)
    dev = compute_device(device)
    quant = precision if isinstance(precision, Quant) else Quant.from_name(precision)
    _check_options(economics, link, framework, attention_dp, expert_imbalance)
    per_replica, replicas = resolve_parallelism(spec, n_devices, tp, pp, ep)
    B = _positive_ints(batch, "batch")
    L_in = _positive_ints(input_len, "input_len")
    L_out = _positive_ints(output_len, "output_len")
    try:
        np.broadcast_shapes(B.shape, L_in.shape, L_out.shape)
    except ValueError:
        raise ConfigError(
            f"batch, input_len and output_len have shapes {B.shape}, {L_in.shape} and {L_out.shape}, "
            "which do not broadcast together (NumPy rules)"
        ) from None
    model_cost = registry.get(dev.arch)
    place = Placement(
        tp=tp,
        pp=pp,
        ep=ep,
        link=link,
        framework=framework,
        attention_dp=attention_dp,
        expert_imbalance=expert_imbalance,
    )
    par = (tp, pp, ep, bool(attention_dp), float(expert_imbalance))
    terms = framework_terms(framework) if framework else None
    if terms and terms.multi_gpu == "sequential_layers" and tp * ep > 1:
        raise ConfigError(
            f"framework {framework!r} runs the layers one device after another (multi_gpu: sequential_layers in "
            f"hwmodels/calibration/frameworks.yaml): tp {tp} and ep {ep} must be 1; split the model with pp instead"
        )
    step_overhead_s = terms.host_step_s(B) if terms else 0.0

    prefill = model_cost.estimate(_ops(spec, quant, "prefill", B, L_in, 0.0, par), dev, place)
    n_steps = np.maximum(L_out - 1.0, 1.0)
    ctx_last = L_in + n_steps - 1
    if mtp_tokens:
        if not spec.n_mtp_layers:
            raise ConfigError(f"mtp_tokens {mtp_tokens}: {spec.name} has no multi-token-prediction module")
        expected = mtp_expected_tokens(mtp_tokens, mtp_acceptance)
        n_mtp_steps = np.maximum((L_out - 1.0) / expected, 1.0)
        verify = 1.0 + mtp_tokens
        first = model_cost.estimate(_ops(spec, quant, "decode", B, verify, L_in, par), dev, place)
        last = model_cost.estimate(_ops(spec, quant, "decode", B, verify, ctx_last, par), dev, place)
        module = spec.mtp_module()
        d_first = model_cost.estimate(_ops(module, quant, "decode", B, 1.0, L_in, par), dev, place)
        d_last = model_cost.estimate(_ops(module, quant, "decode", B, 1.0, ctx_last, par), dev, place)
        step, step_dynamic = mean_step(first, last, n_mtp_steps)
        draft, draft_dynamic = mean_step(d_first, d_last, n_mtp_steps)
        tpot = (step + mtp_tokens * draft + step_overhead_s) / expected
        decode_dynamic = (step_dynamic + mtp_tokens * draft_dynamic) / expected
    else:
        first = model_cost.estimate(_ops(spec, quant, "decode", B, 1.0, L_in, par), dev, place)
        last = model_cost.estimate(_ops(spec, quant, "decode", B, 1.0, ctx_last, par), dev, place)
        tpot, decode_dynamic = mean_step(first, last, n_steps)
        tpot = tpot + step_overhead_s
    ttft = prefill.total_time_s() + step_overhead_s
    if terms and terms.output_lag_steps:  # a streaming client sees every token that many steps late
        ttft = ttft + terms.output_lag_steps * tpot
    e2e = ttft + (L_out - 1.0) * tpot

    # energy of one replica over the run: dynamic work of every tp/ep shard, static power of every device
    shards = tp * ep
    dynamic = shards * (prefill.dynamic_energy_j.sum(axis=0) + (L_out - 1.0) * decode_dynamic)
    replica_energy = np.minimum(
        dynamic + per_replica * prefill.static_power_w * e2e, per_replica * prefill.power_cap_w * e2e
    )
    tokens = B * L_out
    energy_per_token = replica_energy / tokens
    replica_usd = usd_per_s(dev, per_replica, replica_energy / e2e, economics) * e2e
    memory = memory_per_device(spec, quant, B, L_in, L_out, tp, pp, ep, attention_dp)
    shape = np.broadcast_shapes(B.shape, L_in.shape, L_out.shape)
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=float), shape).copy()  # noqa: E731
    ranged = {
        "ttft_s": full(ttft),
        "tpot_s": full(tpot),
        "e2e_s": full(e2e),
        "prefill_tokens_per_s": full(replicas * B * L_in / ttft),
        "decode_tokens_per_s": full(replicas * B / tpot),
        "energy_j_per_token": full(energy_per_token),
    }
    return Estimate(
        model=spec.name,
        device=dev.name,
        n_devices=per_replica * replicas,
        batch=full(B),
        input_len=full(L_in),
        output_len=full(L_out),
        precision=quant.name,
        **ranged,
        **estimate_ranges(dev, quant, framework, B, L_in, L_out, ranged),
        tokens_per_j=full(1.0 / energy_per_token),
        usd_per_million_tokens=full(replica_usd / tokens * 1e6),
        tokens_per_usd=full(tokens / replica_usd),
        price_basis=(economics or Economics()).resolved().basis,
        bound=np.broadcast_to(first.dominant_bound(), shape).copy(),
        memory_bytes=full(memory),
        fits=np.broadcast_to(memory <= dev.memory.capacity_bytes, shape).copy(),
    )
