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

For a cost model that prices each op at each point on its own (``elementwise``: the GPU model),
a sweep is priced in chunks of ``CHUNK_POINTS`` points cut along the grid's axes (on as many
threads as ``threads()`` gives, each chunk writing its own block of the result), each step op
group by op group (``workloads.graph.build_op_groups``: a decode step's GEMMs, which vary with
the batch alone, stay of the batch's size) with a group's costs summed before the next is priced,
and the first and last decode steps in one table. The numbers are those of the whole op table
priced at once over the whole sweep, within rounding (``tests/test_estimate_chunks.py``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache, partial
from typing import Any

import numpy as np

from hwmodels import registry
from hwmodels.calibration.params import FrameworkTerms, GraphLimits, canonical_framework, framework_terms
from hwmodels.cost_table import BOUNDS, CostTable
from hwmodels.device_spec import DeviceSpec, load_device
from hwmodels.placement import Placement
from hwmodels.step_mean import mean_step
from roofline.cpus import usable_cpus
from roofline.economics import Economics, usd_per_s
from roofline.intervals import range_factors
from workloads.errors import ConfigError, positive_count, refuse_huge_integers, shown_value
from workloads.graph import (
    OpTable,
    activation_peak_bytes,
    build_op_groups,
    build_ops,
    check_parallelism,
    kv_cache_bytes,
    running_sum,
    weight_bytes,
)
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


MAX_SWEEP_AXES = 16
"""Most axes a sweep's arrays may have (NumPy allows 64; pricing adds an op axis and an end axis)."""

MAX_DEVICES = 1_048_576
"""Most devices an estimate takes (``n_devices``, ``tp * pp * ep``): beyond any cluster built."""


def positive_ints(value: Any, field: str) -> np.ndarray:
    """``value`` (a number or an array of them) as a float array of positive integers up to
    ``MAX_COUNT``; a one-line ``ConfigError`` naming ``field`` and the first bad value otherwise."""
    try:
        given = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        raise ConfigError(
            f"{field} is {shown_value(value)}; expected a positive integer or a rectangular array of them"
        ) from None
    if given.dtype.kind not in "iuf" or given.size == 0:
        raise ConfigError(
            f"{field} is {shown_value(value)}; expected a positive integer (or an array of them)"
        )
    if given.ndim > MAX_SWEEP_AXES:
        raise ConfigError(f"{field} has {given.ndim} axes; expected at most {MAX_SWEEP_AXES}")
    arr = given.astype(float)
    bad = ~np.isfinite(arr) | (arr < 1) | (arr != np.round(arr)) | (arr > MAX_COUNT)
    if np.any(bad):
        first = given[bad].ravel()[0]
        value = float(first)  # an int64's abs() would overflow at -2**63
        exact = np.isfinite(value) and value == round(value) and abs(value) <= 2**53
        shown = f"{int(first):,}" if exact else f"{value:g}"
        raise ConfigError(f"{field} is {shown}; expected a positive integer up to {MAX_COUNT:,}")
    return arr


def _check_options(economics: Any, link: Any, framework: Any, attention_dp: Any, imbalance: Any) -> None:
    """Refuse arguments of the wrong type or range with a one-line ``ConfigError``."""
    if economics is not None and not isinstance(economics, Economics):
        raise ConfigError(
            f"economics is {economics!r}; expected an Economics (e.g. Economics('cloud')) or None"
        )
    for field, value in (("link", link), ("framework", framework)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{field} is {shown_value(value)}; expected a name or None")
    if not isinstance(attention_dp, (bool, np.bool_)):
        raise ConfigError(f"attention_dp is {attention_dp!r}; expected True or False")
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float, np.number)):
        raise ConfigError(f"expert_imbalance is {imbalance!r}; expected a number from 1 to ep")


def resolve_parallelism(spec: ModelSpec, n_devices: int | None, tp: int, pp: int, ep: int) -> tuple[int, int]:
    """(devices per replica, replicas); raises ``ConfigError`` when they do not divide."""
    tp, pp, ep = (positive_count(v, label, MAX_DEVICES) for label, v in (("tp", tp), ("pp", pp), ("ep", ep)))
    check_parallelism(spec, tp, pp, ep)
    per_replica = tp * pp * ep
    if per_replica > MAX_DEVICES:
        raise ConfigError(f"tp*pp*ep is {per_replica:,} devices; expected at most {MAX_DEVICES:,}")
    if n_devices is None:
        return per_replica, 1
    n_devices = positive_count(n_devices, "n_devices", MAX_DEVICES)
    check_device_count(n_devices, tp, pp, ep)
    return per_replica, n_devices // per_replica


def check_device_count(n_devices: int, tp: int, pp: int, ep: int) -> None:
    """Raise ``ConfigError`` unless ``n_devices`` holds whole replicas of tp x pp x ep devices; where
    the user seems to have meant experts split inside the tp group (tp x pp devices in all, ep
    dividing tp), the error says how hwsim prices that."""
    per_replica = tp * pp * ep
    if n_devices % per_replica == 0:
        return
    hint = ""
    if experts_within_tp(tp, pp, ep, n_devices, dp=1):
        hint = (
            f"; hwsim's ep counts devices of their own, beside tp: experts split {ep} ways inside "
            f"the tp group (TensorRT-LLM's --tp {tp} --ep {ep}, SGLang's --ep-size within --tp) cost "
            f"what tensor parallelism costs, so give --tp {tp} without --ep"
        )
    raise ConfigError(f"n_devices {n_devices} is not a multiple of tp*pp*ep = {per_replica}{hint}")


def experts_within_tp(tp: int, pp: int, ep: int, n_devices: int, dp: int) -> bool:
    """Whether a row's expert parallelism runs inside its tensor-parallel group, which hwsim prices
    as tensor parallelism over ``tp``: TensorRT-LLM's ``--tp N --ep M`` (and SGLang's ``--ep-size``
    within ``--tp``) split the experts M ways inside the tp group, each over tp / M of its devices.
    A device then holds E / M experts of width f M / tp, the expert bytes and FLOPs of tensor
    parallelism over tp, and sums them with the same all-reduce (the M-fold wider expert GEMMs and
    any expert-load imbalance across the M groups are not modelled)."""
    return ep > 1 and tp * pp * ep > n_devices and tp * pp == n_devices and tp % ep == 0 and dp == 1


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


MEMO_POINTS = 256
"""Largest step (points of batch, tokens and context together) whose op tables are memoized:
validation and fitting price the same points many times, and a design search (``hwsim best``)
prices the same few batches on every device."""


def _op_groups(
    spec: ModelSpec,
    quant: Quant,
    phase: str,
    batch: np.ndarray,
    tokens: Any,
    context: Any,
    par: tuple,
    elementwise: bool,
) -> Iterable[OpTable]:
    """The step's ``OpTable``: split into op groups (``build_op_groups``) for an ``elementwise``
    cost model, else whole, as a 1-tuple. ``par`` holds the placement's ``build_ops`` arguments
    as (name, value) pairs (``Placement.graph_kw``). Memoized for a small step (``MEMO_POINTS``; a decode step's context may
    hold both ends of its run); sweeps are built directly, each group stacked when it is priced."""
    size = np.size(batch) + np.size(tokens) + np.size(context)
    if size <= MEMO_POINTS:
        key = tuple((np.shape(x), tuple(float(v) for v in np.ravel(x))) for x in (batch, tokens, context))
        memo = _op_groups_point if size <= 4 else _op_groups_small
        return memo(spec, quant, phase, key, par, elementwise)
    return _build(spec, quant, phase, batch, tokens, context, par, elementwise)


def _build(spec, quant, phase, batch, tokens, context, par, elementwise) -> Iterable[OpTable]:
    kw = dict(par, tokens=tokens, context=context)
    if elementwise:
        return build_op_groups(spec, quant, phase=phase, batch=batch, **kw)
    return (build_ops(spec, quant, phase=phase, batch=batch, **kw),)


def _op_groups_of(
    spec: ModelSpec, quant: Quant, phase: str, key: tuple, par: tuple, elementwise: bool
) -> tuple[OpTable, ...]:
    """``_build`` of a small step: ``key`` holds (shape, values) of its batch, tokens and context."""
    batch, tokens, context = (np.reshape(np.array(values, dtype=float), shape) for shape, values in key)
    tokens = float(tokens) if tokens.ndim == 0 else tokens
    return tuple(_build(spec, quant, phase, batch, tokens, context, par, elementwise))


_op_groups_point = lru_cache(maxsize=8192)(_op_groups_of)
"""Single points (tables of a few KB): validation and fitting."""
_op_groups_small = lru_cache(maxsize=256)(_op_groups_of)
"""Steps of up to ``MEMO_POINTS`` points (a few MB at most each): a design search."""


def _cached_tokens(value: Any) -> int:
    """``estimate``'s ``cached_len`` checked: an integer from 0 to ``MAX_COUNT``."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
    if not ok:
        raise ConfigError(
            f"cached_len is {shown_value(value)}; expected an integer from 0 to {MAX_COUNT:,} (prompt tokens in the prefix cache)"
        )
    return int(value)


MAX_DRAFT_TOKENS = 64
"""Most tokens a multi-token-prediction step may draft (DeepSeek-V3 drafts 1; EAGLE-style trees
verify tens)."""


def mtp_expected_tokens(n_draft: int, acceptance: float) -> float:
    """Tokens one multi-token-prediction step emits per sequence: the verified token plus each
    drafted one while all before it were accepted, ``1 + a + a^2 + ... + a^n`` for a per-draft
    acceptance rate ``a`` (DeepSeek-V3 Sec. 5.4.3 reports 85-90% for the second token)."""
    ok_draft = isinstance(n_draft, (int, np.integer)) and not isinstance(n_draft, bool)
    ok_rate = isinstance(acceptance, (int, float, np.number)) and not isinstance(acceptance, bool)
    if not ok_draft or not ok_rate or not 0 <= n_draft <= MAX_DRAFT_TOKENS or not 0.0 <= acceptance <= 1.0:
        raise ConfigError(
            f"mtp draft tokens {n_draft!r} and acceptance {acceptance!r}; expected an integer "
            f"0..{MAX_DRAFT_TOKENS} and a rate in [0, 1]"
        )
    return float(sum(acceptance**i for i in range(n_draft + 1)))


@refuse_huge_integers
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
    cached_len: int = 0,
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
    cached_len : prompt tokens per sequence whose KV blocks the engine finds in its prefix cache
        (a shared system prompt, or a benchmark that repeats its prompts); the prefill computes
        the other ``input_len - cached_len`` tokens (at least one: an engine recomputes the last
        token to get its logits) over the cached ones. An integer >= 0, the same for every point.
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
    framework = canonical_framework(framework) if framework else framework  # ``trt-llm``, as the CLI
    if framework:
        spec = framework_terms(framework).model_as_run(spec)
    per_replica, replicas = resolve_parallelism(spec, n_devices, tp, pp, ep)
    tp, pp, ep = int(tp), int(pp), int(ep)  # checked there: NumPy integers become Python ones
    B = positive_ints(batch, "batch")
    L_in = positive_ints(input_len, "input_len")
    L_out = positive_ints(output_len, "output_len")
    cached = _cached_tokens(cached_len)
    if cached > L_in.min():
        raise ConfigError(
            f"cached_len {cached:,} exceeds input_len {int(L_in.min()):,}: a prompt holds no more "
            "cached tokens than it has"
        )
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
    terms = framework_terms(framework) if framework else None
    if terms and terms.multi_gpu == "sequential_layers" and tp * ep > 1:
        raise ConfigError(
            f"framework {framework!r} runs the layers one device after another (multi_gpu: sequential_layers in "
            f"hwmodels/calibration/frameworks.yaml): tp {tp} and ep {ep} must be 1; split the model with pp instead"
        )
    mtp_expected = mtp_expected_tokens(mtp_tokens, mtp_acceptance)  # 1 without drafts; checks both
    if mtp_tokens and not spec.n_mtp_layers:
        raise ConfigError(f"mtp_tokens {mtp_tokens}: {spec.name} has no multi-token-prediction module")
    design = _Design(
        spec=spec,
        quant=quant,
        device=dev,
        cost_model=model_cost,
        placement=place,
        par=tuple(place.graph_kw.items()),
        framework=terms,
        per_replica=per_replica,
        replicas=replicas,
        economics=economics,
        mtp_tokens=mtp_tokens,
        mtp_expected=mtp_expected,
        elementwise=bool(getattr(model_cost, "elementwise", False)),
        cached=cached,
    )
    shape = np.broadcast_shapes(B.shape, L_in.shape, L_out.shape)
    values = _price_in_chunks(design, B, L_in, L_out, shape)
    return Estimate(
        model=spec.name,
        device=dev.name,
        n_devices=per_replica * replicas,
        precision=quant.name,
        price_basis=(economics or Economics()).resolved().basis,
        **values,
    )


CHUNK_POINTS = 131_072
"""Most sweep points an elementwise cost model prices at once (``_chunks``). Each chunk costs
about 2 ms in Python (building and pricing its op tables) and its arithmetic runs over arrays of
(ops in a group) x (points): on a 2-core Xeon, 131,072 points priced a 10^6-point grid fastest of
8,192 to 524,288, alone and on two threads (0.28 s and 0.18 s; 65,536: 0.29 s and 0.22 s)."""

THREAD_MIN_POINTS = 16_384
"""Fewest points a thread is handed (``threads``): below it a chunk's fixed Python cost outweighs
a second core."""

THREADS_ENV = "HWSIM_THREADS"
"""Environment variable that caps the threads ``estimate`` prices chunks on (default: the cores
this process may run on, ``roofline.cpus.usable_cpus``)."""


_POOL: dict[int, ThreadPoolExecutor] = {}
"""The thread pool of each size in use, kept across calls: a new thread's first chunk pays ~10 ms
more for first touching its allocator's memory."""
os.register_at_fork(after_in_child=_POOL.clear)  # a forked child has none of the parent's threads


def _pool(n: int) -> ThreadPoolExecutor:
    """The process's pool of ``n`` threads."""
    if n not in _POOL:
        _POOL[n] = ThreadPoolExecutor(n, thread_name_prefix="hwsim-estimate")
    return _POOL[n]


def threads() -> int:
    """Threads that price a sweep's chunks: ``HWSIM_THREADS`` if set, else the cores this process
    may use (``roofline.cpus.usable_cpus``); one in a thread other than the main one (a Dask worker thread, a caller's pool), which
    already shares the cores."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    raw = os.environ.get(THREADS_ENV)
    if raw is None:
        return usable_cpus()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{THREADS_ENV}={raw!r}; expected an integer >= 1")
    return n


@dataclass(frozen=True)
class _Design:
    """What one ``estimate`` call holds fixed over its sweep points."""

    spec: ModelSpec
    quant: Quant
    device: DeviceSpec
    cost_model: Any
    placement: Placement
    par: tuple
    """The placement's ``build_ops`` arguments (``Placement.graph_kw``) as (name, value) pairs:
    ``_op_groups``'s key."""
    framework: FrameworkTerms | None
    per_replica: int
    replicas: int
    economics: Economics | None
    mtp_tokens: int
    mtp_expected: float
    """Tokens one decode step emits per sequence (1 without multi-token prediction)."""
    elementwise: bool
    """The cost model prices each op at each point from that op's values at that point alone
    (``RooflineCostModel.elementwise``): ops may be priced in groups, points in chunks."""
    cached: int
    """Prompt tokens per sequence found in the prefix cache (``estimate``'s ``cached_len``; 0 for none)."""

    def costs(
        self, phase: str, B: np.ndarray, tokens: Any, context: Any, spec: ModelSpec | None = None
    ) -> Iterator[CostTable]:
        """The ``CostTable`` of each op group of a step (one group unless ``elementwise``), each
        priced when the caller asks for it: a caller that sums one before the next keeps one
        group's arrays in memory, not the step's."""
        for group in _op_groups(
            spec or self.spec, self.quant, phase, B, tokens, context, self.par, self.elementwise
        ):
            yield self.cost_model.estimate(group, self.device, self.placement)
            del group  # before the next group's table is stacked

    def request_latency_s(self) -> float:
        """Time a request takes to reach the framework's scheduler (``FrameworkTerms.request_latency_s``
        over the launches of the model's forward pass), s; 0 without one."""
        count = getattr(self.cost_model, "launch_count", None)
        if not (self.framework and self.framework.request_latency_per_launch_s and count):
            return 0.0
        ops = _op_groups(self.spec, self.quant, "prefill", np.ones(1), 1.0, 0.0, self.par, False)[0]
        return float(self.framework.request_latency_s(np.max(count(ops, self.device, self.placement))))


_END_FIELDS = ("compute_s", "memory_s", "link_s", "overhead_s")
"""The per-op arrays of a ``CostTable`` (shape (n_ops, *sweep)) that step pricing reads; its
``DERIVED`` ones (``roofline_s``, ``flops``, ``bytes_by_level``, ``dynamic_energy_j``) are taken
at the end when first asked for."""

_SCALAR_FIELDS = ("op", "kind", "count", "static_power_w", "power_cap_w")


def _pick(a: np.ndarray, end: int) -> np.ndarray:
    return a[:, end if a.shape[1] > 1 else 0]


def _derived_at_end(cost: CostTable, end: int) -> dict[str, Any]:
    return {
        "roofline_s": _pick(cost.roofline_s, end),
        "flops": _pick(cost.flops, end),
        "bytes_by_level": {k: _pick(v, end) for k, v in cost.bytes_by_level.items()},
        "dynamic_energy_j": _pick(cost.dynamic_energy_j, end),
    }


def _at_end(cost: CostTable, end: int) -> CostTable:
    """One end (0: the first step, -1: the last) of a ``CostTable`` priced at both ends of a
    decode run (``_decode``): its first sweep axis taken at ``end``, or at its one index where
    the op does not read the context."""
    step_dynamic = cost.step_dynamic_energy_j()
    return type(cost).deferred(
        partial(_derived_at_end, cost, end),
        step_dynamic[end if step_dynamic.shape[0] > 1 else 0],
        **{f: getattr(cost, f) for f in _SCALAR_FIELDS},
        **{f: _pick(getattr(cost, f), end) for f in _END_FIELDS},
    )


def _chunks(shape: tuple[int, ...], target: int) -> Iterator[tuple[slice, ...]]:
    """Index tuples that cut ``shape`` into blocks of at most ``target`` points (one axis cut in
    runs, the axes before it one index at a time, those after it whole), keeping the grid's
    axes so a quantity that does not vary along one stays small in every block."""
    size = int(np.prod(shape))
    if size <= target:
        yield tuple(slice(None) for _ in shape)
        return
    k = next(i for i in range(len(shape)) if np.prod(shape[i + 1 :]) <= target)
    inner = int(np.prod(shape[k + 1 :]))
    run = max(1, target // inner)
    for outer in np.ndindex(*shape[:k]):
        for start in range(0, shape[k], run):
            yield (
                *(slice(i, i + 1) for i in outer),
                slice(start, start + run),
                *(slice(None) for _ in shape[k + 1 :]),
            )


_BOUND_NAMES = np.asarray(BOUNDS)
"""``BOUNDS`` as an array, whose ``take`` names each point's bound in its chunk (on its thread)."""

_SWEEP_WIDE = ("model", "device", "n_devices", "precision", "price_basis")
"""The ``Estimate`` fields that hold one value for the whole sweep."""


def _price_in_chunks(
    design: _Design, B: np.ndarray, L_in: np.ndarray, L_out: np.ndarray, shape: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Every ``Estimate`` field over the sweep (an array of its ``shape`` each): ``_price`` in
    chunks of ``CHUNK_POINTS`` points for an elementwise cost model (in one piece otherwise),
    each value written into its field as soon as it is priced."""
    names = [f.name for f in fields(Estimate) if f.name not in _SWEEP_WIDE]
    floats = [n for n in names if n not in ("bound", "fits")]
    block = np.empty((len(floats), *shape))  # one allocation: huge pages, not a page fault per 4 KiB
    out = {n: block[i, ...] for i, n in enumerate(floats)}
    out |= {"bound": np.empty(shape, dtype=_BOUND_NAMES.dtype), "fits": np.empty(shape, dtype=bool)}
    inputs = [x.reshape((1,) * (len(shape) - x.ndim) + x.shape) for x in (B, L_in, L_out)]

    def price_chunk(index: tuple[slice, ...]) -> None:
        chunk = [
            x[tuple(i if n > 1 else slice(None) for i, n in zip(index, x.shape, strict=True))] for x in inputs
        ]
        _price(design, *chunk, partial(_write, out, index))

    size = int(np.prod(shape))
    n_threads = max(1, min(threads(), size // THREAD_MIN_POINTS)) if design.elementwise else 1
    n_chunks = -(-size // CHUNK_POINTS) if design.elementwise else 1
    n_chunks = -(-n_chunks // n_threads) * n_threads  # every thread gets as many points
    index = list(_chunks(shape, -(-size // n_chunks)))
    if n_threads > 1 and len(index) > 1:  # NumPy's loops release the GIL: chunks run on the cores at once
        for _ in _pool(n_threads).map(price_chunk, index):  # each chunk writes its own block of ``out``
            pass
    else:
        for i in index:
            price_chunk(i)
    return out


def _write(
    out: dict[str, np.ndarray], index: tuple[slice, ...], name: str, value: Any, *operands: Any
) -> np.ndarray:
    """Store ``value`` (broadcast over the chunk) as field ``name`` of the chunk at ``index``; with
    ``operands``, ``value`` is a ufunc applied to them straight into the field (no temporary).
    Returns the chunk's block of the field, as stored."""
    stored = out[name][(*index, Ellipsis)]  # a view even of a 0-d field
    if operands:
        value(*operands, out=stored)
    else:
        stored[...] = value
    return stored


def _total(per_group: Iterable[np.ndarray]) -> np.ndarray:
    """The sum over op groups of a quantity each prices at its own shape."""
    return running_sum(per_group, np.zeros(()))


def _prefill(d: _Design, B: np.ndarray, L_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Time (s) and dynamic energy (J) of the prefill step, summed over op groups as each is
    priced, and the device's static and capped power (W). Prompt tokens in the prefix cache
    (``d.cached``, all but the last at most) are context, not computed."""
    time_s, dynamic_j = [], []
    cached = np.minimum(float(d.cached), L_in - 1.0) if d.cached else 0.0
    for cost in d.costs("prefill", B, L_in - cached if d.cached else L_in, cached):
        time_s.append(cost.total_time_s())
        dynamic_j.append(cost.step_dynamic_energy_j())
        power_w = cost.static_power_w, cost.power_cap_w
        del cost  # its arrays go before the next group's are made
    return _total(time_s), _total(dynamic_j), *power_w


def _decode(
    d: _Design,
    B: np.ndarray,
    tokens: float,
    context: tuple[np.ndarray, np.ndarray],
    n_steps: np.ndarray,
    spec: ModelSpec | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean step time (s) and dynamic energy (J) over a decode run whose context grows from
    ``context[0]`` to ``context[1]`` in ``n_steps`` steps (``mean_step``), and the first step's
    busy time per resource (``CostTable.busy_terms``), summed over op groups as each is priced.

    Both ends are priced in one table whose context gains a leading axis of the two: the ops
    that do not read the context are priced once for both."""
    ends = np.stack(np.broadcast_arrays(*context))
    time_s, dynamic_j, busy_s = [], [], []  # busy_s: per group, a time per resource
    for cost in d.costs("decode", B.reshape((1,) * (ends.ndim - B.ndim) + B.shape), tokens, ends, spec):
        first, last = _at_end(cost, 0), _at_end(cost, -1)
        t, e = mean_step(first, last, n_steps)
        time_s.append(t)
        dynamic_j.append(e)
        busy_s.append(first.busy_terms())
        del cost, first, last  # their arrays go before the next group's are made
    return _total(time_s), _total(dynamic_j), tuple(_total(terms) for terms in zip(*busy_s, strict=True))


def _eager_share(limits: GraphLimits, B: np.ndarray, L_in: np.ndarray, n_steps: np.ndarray) -> np.ndarray:
    """Share of a run's decode steps beyond a framework's graph limits: all of them for a batch
    above ``max_batch``, else those whose sequences (prompt, the token the prefill emitted and the
    decoded ones) are longer than ``max_context`` tokens."""
    longer = np.clip(L_in + n_steps - limits.max_context, 0.0, n_steps) / n_steps
    return np.where(B > limits.max_batch, 1.0, longer)


def _first_largest(terms: tuple[np.ndarray, ...]) -> np.ndarray:
    """Index of the largest of ``terms`` (arrays that broadcast together) at each point, the first
    on a tie (times: no NaN), as ``np.argmax`` over them stacked, without stacking them."""
    best, index = terms[0], np.zeros(np.broadcast_shapes(*(t.shape for t in terms)), dtype=np.intp)
    for i, term in enumerate(terms[1:], start=1):
        index[term > best] = i
        best = np.maximum(best, term)
    return index


def _price(
    d: _Design, B: np.ndarray, L_in: np.ndarray, L_out: np.ndarray, put: Callable[..., np.ndarray]
) -> None:
    """Every field of ``Estimate`` at points ``B``, ``L_in``, ``L_out`` (arrays that broadcast
    together), each handed to ``put`` (field name, value; or name, ufunc, operands: ``_write``,
    which returns the field as stored) when it is priced, so a chunk holds few of them at once."""
    put("batch", B)
    put("input_len", L_in)
    put("output_len", L_out)
    step_overhead_s = d.framework.host_step_s(B, d.placement.tp) if d.framework else None
    ttft, prefill_dynamic, static_w, cap_w = _prefill(d, B, L_in)
    n_steps = np.maximum(L_out - 1.0, 1.0)
    context = (L_in, L_in + n_steps - 1)
    if d.mtp_tokens:
        n_mtp_steps = np.maximum((L_out - 1.0) / d.mtp_expected, 1.0)
        step, step_dynamic, busy = _decode(d, B, 1.0 + d.mtp_tokens, context, n_mtp_steps)
        draft, draft_dynamic, _ = _decode(d, B, 1.0, context, n_mtp_steps, d.spec.mtp_module())
        step = step + d.mtp_tokens * draft
        decode_dynamic = (step_dynamic + d.mtp_tokens * draft_dynamic) / d.mtp_expected
    else:
        step, decode_dynamic, busy = _decode(d, B, 1.0, context, n_steps)
        limits = d.framework.graph_limits if d.framework else None
        share = _eager_share(limits, B, L_in, n_steps) if limits else 0.0
        # the steps past the graphs' limits run eagerly, at their framework's launch cost
        if np.any(share > 0):
            eager = replace(
                d,
                placement=replace(d.placement, framework=limits.beyond),
                framework=framework_terms(limits.beyond),
            )
            step = step + share * (_decode(eager, B, 1.0, context, n_steps)[0] - step)
    if step_overhead_s is not None:
        step, ttft = step + step_overhead_s, ttft + step_overhead_s + d.request_latency_s()
    tpot = step / d.mtp_expected if d.mtp_tokens else step
    if d.framework and d.framework.output_lag_steps:  # a client sees every token that many steps late
        ttft = ttft + d.framework.output_lag_steps * tpot
    factor = range_factors(d.device, d.quant, d.placement.framework, B, L_in, L_out)

    def ranged(name: str, *value: Any) -> np.ndarray:
        """``put`` the field and its 10-90% range; the stored field."""
        stored = put(name, *value)
        put(f"{name}_low", np.multiply, stored, factor[name][0])
        put(f"{name}_high", np.multiply, stored, factor[name][1])
        return stored

    ttft, tpot = ranged("ttft_s", ttft), ranged("tpot_s", tpot)
    e2e = ranged("e2e_s", np.add, ttft, (L_out - 1.0) * tpot)
    ranged("prefill_tokens_per_s", np.divide, d.replicas * B * L_in, ttft)
    ranged("decode_tokens_per_s", np.divide, d.replicas * B, tpot)

    # energy of one replica over the run: dynamic work of every tp/ep shard, static power of every device
    tp, pp, ep, attention_dp = (d.placement.tp, d.placement.pp, d.placement.ep, d.placement.attention_dp)
    static_w, cap_w = d.per_replica * static_w, d.per_replica * cap_w
    # the power cap holds at every moment, so the prefill and each decode step are capped on their
    # own: a prefill's draw above the TDP is never paid for by the slack of the decode after it
    prefill_j = np.minimum(tp * ep * prefill_dynamic + static_w * ttft, cap_w * ttft)
    decode_j = np.minimum(tp * ep * decode_dynamic + static_w * tpot, cap_w * tpot)
    replica_energy = prefill_j + (L_out - 1.0) * decode_j
    tokens = B * L_out
    energy_per_token = ranged("energy_j_per_token", np.divide, replica_energy, tokens)
    replica_usd = usd_per_s(d.device, d.per_replica, replica_energy / e2e, d.economics) * e2e
    put("tokens_per_j", np.divide, 1.0, energy_per_token)
    put("usd_per_million_tokens", np.multiply, replica_usd / tokens, 1e6)
    put("tokens_per_usd", np.divide, tokens, replica_usd)
    put("bound", _BOUND_NAMES.take(_first_largest(busy)))
    memory = memory_per_device(d.spec, d.quant, B, L_in, L_out, tp, pp, ep, attention_dp)
    put("memory_bytes", memory)
    put("fits", memory <= d.device.memory.capacity_bytes)
