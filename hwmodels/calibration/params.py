"""The per-class parameters of a cost model.

Defaults with their basis live in ``hwmodels/calibration/<arch>.yaml``; values fitted on
the measured set (``hwsim calibrate``) live in ``<arch>_fitted.yaml`` beside it, with what
they were fitted on and their in-sample and leave-one-source-out errors, and take
precedence. ``overridden`` substitutes values for the duration of a fit.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from workloads.errors import ConfigError, names_holding, unknown_name
from workloads.shipped import parse_yaml

if TYPE_CHECKING:
    from workloads.model_spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Param:
    """One calibration parameter: its value and the basis it came from."""

    value: float
    source: str


@lru_cache(maxsize=8)
def class_params(arch: str) -> Mapping[str, Mapping[str, Param]]:
    """``{device_class: {param: Param}}`` for one arch, validated."""
    where = f"hwmodels/calibration/{arch}.yaml"
    path = files("hwmodels.calibration").joinpath(f"{arch}.yaml")
    if not path.is_file():
        raise ConfigError(f"{where} is missing: no calibration parameters for arch {arch!r}")
    raw = parse_yaml(path.read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected 1")
    out: dict[str, dict[str, Param]] = {}
    for cls, params in raw["classes"].items():
        out[cls] = {}
        for name, entry in params.items():
            if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
                raise ConfigError(f"{where}: classes.{cls}.{name} needs a value and a source")
            out[cls][name] = Param(float(entry["value"]), str(entry["source"]))
    return out


FITTABLE = (
    "memory_efficiency",
    "compute_efficiency",
    "kernel_overhead_us",
    "issue_bound_gemm_macs_per_lane_cycle",
)
"""Parameters a fit may set, in the order they are added as a class's rows allow."""
ENERGY_FITTABLE = ("static_power_fraction", "onchip_pJ_per_byte")
"""Parameters the energy fit sets on measured device energy (``roofline.calibrate_energy``),
stored in ``<arch>_energy_fitted.yaml``."""

_OVERRIDES: dict[tuple[str, str], dict[str, float]] = {}
_USE_FITTED = [True]


_FITS_FOLDER: list[Path | None] = [None]


def fits_folder() -> Path:
    """The folder the fitted files (``*_fitted.yaml``) are read from and written to: the package's
    ``hwmodels/calibration/``, or inside ``fits_in`` the folder it names."""
    return _FITS_FOLDER[0] or _package_folder()


@lru_cache(maxsize=1)
def _package_folder() -> Path:
    """``hwmodels/calibration/`` of the installed package (resolved once: every cost-model call asks)."""
    return Path(str(files("hwmodels.calibration")))


def differing_fits(folder: Path) -> list[str]:
    """The fitted files ``folder`` already holds whose content differs from the package's: ``fits_in``
    keeps and reads them (a refit of one part then reads those fits of the others)."""
    return [
        shipped.name
        for shipped in sorted(_package_folder().glob("*_fitted.yaml"))
        if (folder / shipped.name).is_file() and (folder / shipped.name).read_bytes() != shipped.read_bytes()
    ]


@contextlib.contextmanager
def fits_in(folder: Path) -> Iterator[None]:
    """Read and write every fitted file in ``folder`` inside the block (``hwsim calibrate --out``),
    never the package's. The shipped fits are copied there first (those ``folder`` lacks), so a
    refit of one part reads the shipped fit of the others and the folder ends with a full set."""
    folder.mkdir(parents=True, exist_ok=True)
    for shipped in sorted(fits_folder().glob("*_fitted.yaml")):
        if not (folder / shipped.name).exists():
            shutil.copyfile(shipped, folder / shipped.name)
    previous = _FITS_FOLDER[0]
    _FITS_FOLDER[0] = folder
    _clear_fit_caches()
    try:
        yield
    finally:
        _FITS_FOLDER[0] = previous
        _clear_fit_caches()


def _clear_fit_caches() -> None:
    for cached in (fitted, _serving_fitted, _frameworks):
        cached.cache_clear()


def fitted_path(arch: str) -> Path:
    """Where the fitted parameters of ``arch`` are stored (``fits_folder``)."""
    return fits_folder() / f"{arch}_fitted.yaml"


@lru_cache(maxsize=16)
def fitted(arch: str) -> Mapping[str, Any]:
    """The fit record of ``arch`` (or of ``<arch>_energy``, the energy fit): ``classes``,
    ``fitted_on``, ``errors``; empty when never fitted."""
    path = fitted_path(arch)
    if not path.is_file():
        return {}
    raw = parse_yaml(path.read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{path.name}: schema_version {raw.get('schema_version')!r}; expected 1")
    allowed = ENERGY_FITTABLE if arch.endswith("_energy") else FITTABLE
    for cls, values in raw.get("classes", {}).items():
        for name in values:
            if name not in allowed:
                raise ConfigError(
                    f"{path.name}: classes.{cls}.{name} is not a fittable parameter ({allowed})"
                )
    return raw


def params_for(arch: str, device_class: str) -> Mapping[str, Param]:
    """The parameters of one device class (fitted over defaults); an unknown class lists the known ones."""
    table = class_params(arch)
    if device_class not in table:
        raise unknown_name(f"{arch} device class", device_class, table)
    out = dict(table[device_class])
    for record in (fitted(arch), fitted(f"{arch}_energy")) if _USE_FITTED[0] else ():
        for name, value in record.get("classes", {}).get(device_class, {}).items():
            out[name] = Param(float(value), f"fitted: {record.get('fitted_on', '')}")
    for name, value in _OVERRIDES.get((arch, device_class), {}).items():
        out[name] = Param(float(value), "override during a fit")
    return out


@contextlib.contextmanager
def overridden(arch: str, device_class: str, values: Mapping[str, float]) -> Iterator[None]:
    """Use ``values`` for one device class inside the ``with`` block (for fitting)."""
    key = (arch, device_class)
    previous = _OVERRIDES.get(key)
    _OVERRIDES[key] = {**(previous or {}), **values}
    try:
        yield
    finally:
        if previous is None:
            del _OVERRIDES[key]
        else:
            _OVERRIDES[key] = previous


@contextlib.contextmanager
def without_fitted() -> Iterator[None]:
    """Ignore the fitted files inside the ``with`` block: a refit starts from the defaults."""
    _USE_FITTED[0] = False
    try:
        yield
    finally:
        _USE_FITTED[0] = True


def fitted_on(arch: str) -> str:
    """What the parameters of ``arch`` were fitted on (or that they are the stated defaults)."""
    record = fitted(arch)
    if record:
        return str(record.get("fitted_on", ""))
    raw = parse_yaml(files("hwmodels.calibration").joinpath(f"{arch}.yaml").read_text())
    return str(raw.get("fitted_on", ""))


@dataclass(frozen=True, slots=True)
class BlockFp8Kernels:
    """How a framework's kernels run GEMMs over block-scaled FP8 weights (``OpTable.weight_block``,
    DeepSeek-V3/R1's checkpoint) where they fall short of the device class's GEMMs, from timed
    kernels: ``gemm_latency_us`` of device time per GEMM call besides its roofline time (a
    block-scaled kernel's scale loads and few thread blocks at decode sizes); its dense GEMMs
    compute at no more than ``gemm_math_efficiency`` of the FP8 tensor peak (a prefill's many
    rows); its fused MoE kernel's expert GEMMs stream their weights at ``moe_stream_efficiency``
    of the memory bandwidth and compute at ``moe_math_efficiency`` of the FP8 tensor peak. Those
    hold on the devices they were timed on; ``devices`` states where the same kernels ran at other
    rates (``BlockFp8DeviceRates``, ``on``)."""

    gemm_latency_us: float
    gemm_math_efficiency: float
    moe_stream_efficiency: float
    moe_math_efficiency: float
    source: str
    devices: tuple[BlockFp8DeviceRates, ...] = ()

    def on(self, device: str) -> BlockFp8Kernels:
        """The kernels as they ran on ``device`` (a catalog name): its ``devices`` entry's rates
        where one names it, else these."""
        for rates in self.devices:
            if device in rates.devices:
                return replace(
                    self,
                    gemm_math_efficiency=self.gemm_math_efficiency * rates.math_scale,
                    moe_math_efficiency=self.moe_math_efficiency * rates.math_scale,
                    moe_stream_efficiency=rates.moe_stream_efficiency,
                    devices=(),
                )
        return self


@dataclass(frozen=True, slots=True)
class BlockFp8DeviceRates:
    """Where a framework's block-FP8 kernels ran at other rates than where they were timed: on
    ``devices`` their math reaches ``math_scale`` of the timed fractions of the FP8 peak and their
    fused MoE streams its weights at ``moe_stream_efficiency`` of the bandwidth."""

    devices: tuple[str, ...]
    math_scale: float
    moe_stream_efficiency: float
    source: str


@dataclass(frozen=True, slots=True)
class AbsorbedMlaPrefill:
    """A framework that runs a multi-head latent attention model's prefill attention in the
    weight-absorbed form (every head over the cached 576-wide latent, as decode does; DeepSeek-V2
    Sec. 2.1.2), not over keys and values expanded per head (``workloads.graph`` ``mla_prefill``),
    on a kernel that computes at ``attention_efficiency`` of the attention format's tensor peak."""

    attention_efficiency: float
    source: str


@dataclass(frozen=True, slots=True)
class AwqGemmKernel:
    """A framework's AWQ GEMM kernel (MIT llm-awq's ``gemm_forward_4bit_cuda_m16n128k32``, which
    AutoAWQ called before v0.2.0): thread blocks of two warps own a ``tile_rows`` x 128 output
    tile, load their activations and 4-bit weights at every 32-deep K step without a software
    pipeline and dequantize the weights in each block, so every weight is fetched and
    dequantized again for each ``tile_rows`` rows. Such a kernel is bound by the latency of
    those loads, not by the tensor cores' width or the clock: an SM completes
    ``macs_per_sm_us`` multiply-adds (of the rows padded to the tile) per microsecond.
    ``max_rows``: the most rows it takes; above them the framework dequantizes the weights and
    runs a 16-bit GEMM (None: it takes every GEMM beyond the GEMV sizes)."""

    tile_rows: int
    macs_per_sm_us: float
    max_rows: int | None
    source: str


@dataclass(frozen=True, slots=True)
class MoeLaunches:
    """Kernels a framework launches in each MoE layer beyond those hwsim's op table counts, for
    experts stored at ``weight_bits`` bits a weight (MXFP4: 4.25; None: any) and, with
    ``block_scaled``, in block-scaled FP8 (DeepSeek's checkpoints), on ``devices`` (empty: any):
    routing metadata built by chains of small kernels, separate reductions, a module's own
    quantize and copy kernels."""

    extra_kernels: int
    source: str
    devices: tuple[str, ...] = ()
    weight_bits: float | None = None
    block_scaled: bool = False


@dataclass(frozen=True, slots=True)
class FrameworkTerms:
    """A serving framework's overheads: per kernel launch (None keeps the device class's)
    and per model step (scheduling, sampling, Python), plus per sequence in a step (input
    preparation, sampling and detokenization of each sequence), in seconds, and the share of device
    memory it lets weights and KV cache use, with their basis. ``tp_step_overhead_s``: host
    time added to a step that runs over more than one tensor-parallel worker (the engine's
    driver hands each step's inputs to the other workers before they start), s.
    ``request_latency_per_launch_s``: time a request takes to reach the engine's scheduler, per
    kernel launch of the model's forward pass (``request_latency_s``), s: it delays that request
    alone, not the engine's steps.
    ``kv_read_per_query_head``:
    its decode attention kernel reads a shared KV head once per query head (no GQA/MQA
    sharing); ``kernels`` names the framework whose kernels it runs (Ollama runs llama.cpp's); ``fuses_elementwise``:
    norms, RoPE and activations are fused into neighbouring kernels (no launch of their own);
    ``cpu_attention_flop_per_s``: the rate of its CPU attention kernel where it runs one;
    ``cpu_tiled_gemm``: its CPU GEMMs of several token rows use register-tiled micro-kernels,
    except in the math formats of ``cpu_untiled_formats``, which fall back to per-token dot kernels;
    ``issue_bound_quantized_gemm``: its quantized GPU GEMMs are bound by the SMs' instruction
    issue (``issue_bound_gemm_macs_per_lane_cycle``) as well as by the tensor peak;
    ``output_lag_steps``: engine steps between a token leaving the engine and reaching a
    streaming client (request intake and output processing pipelined behind the engine's
    steps), which delays the first and last token a client sees. ``multi_gpu``: how one
    model instance spans several devices, ``tensor_parallel`` (the stated tp, pp, ep) or
    ``sequential_layers`` (its layers split over the devices and run one device after
    another: a pipeline of one micro-batch). ``block_fp8``: its block-scaled FP8 kernels where
    they are slower than the class's GEMMs (``BlockFp8Kernels``; None: as the class's).
    ``hf_modules``: it runs the model as HF Transformers' eager modules, which launch more
    kernels per op than an engine's (``OpTable.module_kernels``). ``graph_limits``: the largest
    decode step it replays as a captured graph (``GraphLimits``; None: every step as priced).
    ``moe_launches``: the kernels its MoE layers launch beyond the priced ones (``MoeLaunches``).
    ``awq_gemm``: its AWQ GEMM kernel's own rate on 4-bit weight-only GEMMs (``AwqGemmKernel``;
    None: as the class's GEMMs). ``absorbed_mla_prefill``: an MLA model's prefill attention runs
    weight-absorbed at its own kernel's rate (``AbsorbedMlaPrefill``; None: expanded, as the
    class's prefill attention). ``mmha_decode_attention``: its decode attention is
    FasterTransformer's masked multi-head attention kernel, whose loops wait on their loads each
    iteration (``hwmodels.gpu.mmha_loop_s``). ``scalar_fp16_gemv``: its one-token GEMMs over FP16
    weights run ggml-cuda's mat-vec kernel with scalar loads, whose bytes in flight per SM bound
    its rate on a device that states its load latency (``hwmodels.gpu.scalar_gemv_s``).
    ``ignores_sliding_window``: it runs a model's sliding-window layers as full attention, caching
    every token (``model_as_run``), unless a run sets the window itself."""

    name: str
    kernel_overhead_us: float | None
    step_overhead_s: float
    seq_overhead_s: float
    memory_fraction: float
    kv_read_per_query_head: bool
    kernels: str
    fuses_elementwise: bool
    cpu_attention_flop_per_s: float | None
    cpu_tiled_gemm: bool
    cpu_untiled_formats: tuple[str, ...]
    issue_bound_quantized_gemm: bool
    source: str
    output_lag_steps: float = 0.0
    multi_gpu: str = "tensor_parallel"
    launch_overlaps_device: bool = False
    block_fp8: BlockFp8Kernels | None = None
    hf_modules: bool = False
    graph_limits: GraphLimits | None = None
    moe_launches: tuple[MoeLaunches, ...] = ()
    awq_gemm: AwqGemmKernel | None = None
    absorbed_mla_prefill: AbsorbedMlaPrefill | None = None
    tp_step_overhead_s: float = 0.0
    request_latency_per_launch_s: float = 0.0
    mmha_decode_attention: bool = False
    scalar_fp16_gemv: bool = False
    ignores_sliding_window: bool = False

    def model_as_run(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` as this framework runs it: with every layer attending its whole prefix where
        it ignores the config's sliding window (``ignores_sliding_window``), else ``spec``."""
        return spec.without_sliding_window() if self.ignores_sliding_window else spec

    @property
    def mla_prefill(self) -> str:
        """The form of an MLA model's prefill attention (``workloads.graph.build_ops``)."""
        return "expanded" if self.absorbed_mla_prefill is None else "absorbed"

    def host_step_s(self, n_seqs: Any, tp: int = 1) -> Any:
        """Host time of one model step over ``n_seqs`` sequences on ``tp`` tensor-parallel workers
        that does not overlap the device, s."""
        handoff = self.tp_step_overhead_s if tp > 1 else 0.0
        return self.step_overhead_s + handoff + self.seq_overhead_s * n_seqs

    def request_latency_s(self, launches: Any) -> Any:
        """Time from a request's sending to its engine's scheduler seeing it, for a model whose
        forward pass launches ``launches`` kernels (``RooflineCostModel.launch_count``), s. It
        delays the request's first token and its end, never another request's steps."""
        return self.request_latency_per_launch_s * launches

    def serving_terms(self) -> dict[str, float]:
        """The serving terms as ``frameworks.yaml`` and a serving fit name them (``SERVING_FITTABLE``):
        host times in microseconds, the output lag in steps (rounded to 1e-9: the seconds they
        are held in would otherwise come back as 59.999...)."""
        return {
            "step_overhead_us": round(self.step_overhead_s * 1e6, 9),
            "seq_overhead_us": round(self.seq_overhead_s * 1e6, 9),
            "tp_step_overhead_us": round(self.tp_step_overhead_s * 1e6, 9),
            "output_lag_steps": self.output_lag_steps,
            "request_latency_per_launch_us": round(self.request_latency_per_launch_s * 1e6, 9),
        }


@dataclass(frozen=True)
class GraphLimits:
    """The decode steps a framework replays as captured CUDA (HIP) graphs: up to ``max_batch``
    sequences, none longer than ``max_context`` tokens. A longer or larger step runs eagerly,
    priced with the terms of the framework ``beyond`` names."""

    max_context: int
    max_batch: int
    beyond: str


MULTI_GPU = ("tensor_parallel", "sequential_layers")
"""How a framework spreads one model instance over several devices (``FrameworkTerms.multi_gpu``)."""


@lru_cache(maxsize=1)
def _frameworks_file() -> Mapping[str, Any]:
    """``hwmodels/calibration/frameworks.yaml``, parsed once."""
    return parse_yaml(files("hwmodels.calibration").joinpath("frameworks.yaml").read_text())


@lru_cache(maxsize=1)
def _frameworks() -> Mapping[str, FrameworkTerms]:
    where = "hwmodels/calibration/frameworks.yaml"
    raw = _frameworks_file()
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected 1")
    out = {}
    for name, entry in raw["frameworks"].items():
        if not entry.get("source"):
            raise ConfigError(f"{where}: frameworks.{name} needs a source")
        kernels = entry.get("same_kernels_as", name)
        k = entry.get("kernel_overhead_us")
        fraction = float(entry.get("memory_fraction", 1.0))
        if not 0 < fraction <= 1:
            raise ConfigError(
                f"{where}: frameworks.{name}.memory_fraction is {fraction}; expected 0 < f <= 1"
            )
        rate = entry.get("cpu_attention_tflops")
        multi_gpu = entry.get("multi_gpu", "tensor_parallel")
        if multi_gpu not in MULTI_GPU:
            raise ConfigError(
                f"{where}: frameworks.{name}.multi_gpu is {multi_gpu!r}; expected one of {', '.join(MULTI_GPU)}"
            )
        out[name] = FrameworkTerms(
            name=name,
            kernel_overhead_us=None if k is None else float(k),
            step_overhead_s=float(entry.get("step_overhead_us", 0.0)) * 1e-6,
            seq_overhead_s=float(entry.get("seq_overhead_us", 0.0)) * 1e-6,
            tp_step_overhead_s=float(entry.get("tp_step_overhead_us", 0.0)) * 1e-6,
            request_latency_per_launch_s=float(entry.get("request_latency_per_launch_us", 0.0)) * 1e-6,
            memory_fraction=fraction,
            kv_read_per_query_head=bool(entry.get("kv_read_per_query_head", False)),
            kernels=kernels,
            fuses_elementwise=bool(entry.get("fuses_elementwise", False)),
            cpu_attention_flop_per_s=None if rate is None else float(rate) * 1e12,
            cpu_tiled_gemm=bool(entry.get("cpu_tiled_gemm", False)),
            cpu_untiled_formats=tuple(entry.get("cpu_untiled_formats", ())),
            issue_bound_quantized_gemm=bool(entry.get("issue_bound_quantized_gemm", False)),
            source=str(entry["source"]),
            output_lag_steps=float(entry.get("output_lag_steps", 0.0)),
            multi_gpu=multi_gpu,
            launch_overlaps_device=bool(entry.get("launch_overlaps_device", False)),
            hf_modules=bool(entry.get("hf_modules", False)),
            block_fp8=_block_fp8(entry.get("block_fp8"), f"{where}: frameworks.{name}.block_fp8"),
            graph_limits=_graph_limits(entry.get("graph_limits"), f"{where}: frameworks.{name}.graph_limits"),
            moe_launches=_moe_launches(
                entry.get("moe_launches", []), f"{where}: frameworks.{name}.moe_launches"
            ),
            awq_gemm=_awq_gemm(entry.get("awq_gemm"), f"{where}: frameworks.{name}.awq_gemm"),
            absorbed_mla_prefill=_absorbed_mla_prefill(
                entry.get("absorbed_mla_prefill"), f"{where}: frameworks.{name}.absorbed_mla_prefill"
            ),
            mmha_decode_attention=bool(entry.get("mmha_decode_attention", False)),
            scalar_fp16_gemv=bool(entry.get("scalar_fp16_gemv", False)),
            ignores_sliding_window=bool(entry.get("ignores_sliding_window", False)),
        )
    for name, values in _serving_fitted().get("frameworks", {}).items():
        if name in out:
            unknown = set(values) - set(SERVING_FITTABLE)
            if unknown:
                raise ConfigError(f"{SERVING_FITTED}: frameworks.{name}: {sorted(unknown)} are not fittable")
            out[name] = _with_terms(out[name], values)
    for name, entry in raw["frameworks"].items():
        if "serving_terms_from" in entry:
            out[name] = _with_terms(
                out[name], _inherited_terms(entry, out, f"{where}: frameworks.{name}", raw)
            )
    return out


def _inherited_terms(
    entry: Mapping[str, Any], table: Mapping[str, FrameworkTerms], where: str, raw: Mapping[str, Any]
) -> dict[str, float]:
    """A framework's ``serving_terms_from`` (a serving term -> the framework whose value, fitted
    where a fit exists, it takes), checked, as the values it takes (us and steps)."""
    rule = entry["serving_terms_from"]
    if not isinstance(rule, dict) or not rule or set(rule) - set(SERVING_FITTABLE):
        raise ConfigError(
            f"{where}.serving_terms_from is {rule!r}; expected a mapping of {', '.join(SERVING_FITTABLE)} to frameworks"
        )
    out = {}
    for term, other in rule.items():
        if other not in table:
            raise unknown_name(f"framework of {where}.serving_terms_from.{term}", str(other), table)
        if "serving_terms_from" in raw["frameworks"][other]:
            raise ConfigError(
                f"{where}.serving_terms_from.{term} is {other!r}, which takes its own terms from others"
            )
        out[term] = table[other].serving_terms()[term]
    return out


def _graph_limits(entry: Any, where: str) -> GraphLimits | None:
    """A framework's ``graph_limits`` entry, checked: positive whole limits and the framework
    that prices the steps beyond them."""
    if entry is None:
        return None
    fields = ("max_context", "max_batch", "beyond")
    if not isinstance(entry, Mapping) or set(entry) != set(fields):
        raise ConfigError(f"{where}: expected the keys {', '.join(fields)}")
    for key in fields[:2]:
        v = entry[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{where}.{key} is {v!r}; expected a positive whole number")
    if entry["beyond"] not in _frameworks_file()["frameworks"]:
        raise ConfigError(f"{where}.beyond is {entry['beyond']!r}; expected a framework of the same file")
    return GraphLimits(int(entry["max_context"]), int(entry["max_batch"]), str(entry["beyond"]))


def _moe_launches(entries: Any, where: str) -> tuple[MoeLaunches, ...]:
    """A framework's ``moe_launches`` list, checked: each entry with ``extra_kernels`` (a whole
    number >= 0) and ``source``, optionally ``devices`` (names), ``weight_bits`` (in (0, 16]) and
    ``block_scaled`` (true or false)."""
    if not isinstance(entries, list):
        raise ConfigError(f"{where} is {entries!r}; expected a list of entries")
    out = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        optional = {"devices", "weight_bits", "block_scaled"}
        if not isinstance(entry, Mapping) or not {"extra_kernels", "source"} <= set(entry) <= {
            "extra_kernels",
            "source",
            *optional,
        }:
            raise ConfigError(
                f"{at}: expected the keys extra_kernels and source, and any of {', '.join(sorted(optional))}"
            )
        devices = entry.get("devices", [])
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise ConfigError(f"{at}.devices is {devices!r}; expected a list of device names")
        bits, extra = entry.get("weight_bits"), entry["extra_kernels"]
        if bits is not None and (
            isinstance(bits, bool) or not isinstance(bits, (int, float)) or not 0 < bits <= 16
        ):
            raise ConfigError(f"{at}.weight_bits is {bits!r}; expected bits in (0, 16]")
        if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
            raise ConfigError(f"{at}.extra_kernels is {extra!r}; expected a whole number >= 0")
        block = entry.get("block_scaled", False)
        if not isinstance(block, bool):
            raise ConfigError(f"{at}.block_scaled is {block!r}; expected true or false")
        out.append(
            MoeLaunches(
                extra, str(entry["source"]), tuple(devices), None if bits is None else float(bits), block
            )
        )
    return tuple(out)


def _block_fp8(entry: Any, where: str) -> BlockFp8Kernels | None:
    """A framework's ``block_fp8`` entry, checked: a latency >= 0 us and efficiencies in (0, 1]."""
    if entry is None:
        return None
    fields = ("gemm_latency_us", "gemm_math_efficiency", "moe_stream_efficiency", "moe_math_efficiency")
    if not isinstance(entry, Mapping) or not {*fields, "source"} <= set(entry) <= {
        *fields,
        "source",
        "devices",
    }:
        raise ConfigError(
            f"{where}: expected the keys {', '.join(fields)} and source, and optionally devices"
        )
    values = {}
    for key in fields:
        v = entry[key]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = ok and (0 <= v < 1e4 if key == "gemm_latency_us" else 0 < v <= 1)
        if not ok:
            expected = "microseconds >= 0" if key == "gemm_latency_us" else "a fraction in (0, 1]"
            raise ConfigError(f"{where}.{key} is {v!r}; expected {expected}")
        values[key] = float(v)
    devices = _block_fp8_devices(entry.get("devices", []), f"{where}.devices")
    return BlockFp8Kernels(**values, source=str(entry["source"]), devices=devices)


def _block_fp8_devices(entries: Any, where: str) -> tuple[BlockFp8DeviceRates, ...]:
    """A ``block_fp8`` entry's ``devices`` list, checked: each with ``devices`` (names), a
    ``math_scale`` and a ``moe_stream_efficiency`` in (0, 1], and ``source``."""
    if not isinstance(entries, list):
        raise ConfigError(f"{where} is {entries!r}; expected a list of entries")
    out = []
    keys = {"devices", "math_scale", "moe_stream_efficiency", "source"}
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != keys:
            raise ConfigError(f"{at}: expected the keys {', '.join(sorted(keys))}")
        names = entry["devices"]
        if not isinstance(names, list) or not names or not all(isinstance(d, str) for d in names):
            raise ConfigError(f"{at}.devices is {names!r}; expected a list of device names")
        for key in ("math_scale", "moe_stream_efficiency"):
            v = entry[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
                raise ConfigError(f"{at}.{key} is {v!r}; expected a fraction in (0, 1]")
        out.append(
            BlockFp8DeviceRates(
                tuple(names),
                float(entry["math_scale"]),
                float(entry["moe_stream_efficiency"]),
                str(entry["source"]),
            )
        )
    return tuple(out)


def _absorbed_mla_prefill(entry: Any, where: str) -> AbsorbedMlaPrefill | None:
    """A framework's ``absorbed_mla_prefill`` entry, checked: an efficiency in (0, 1]."""
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or set(entry) != {"attention_efficiency", "source"}:
        raise ConfigError(f"{where}: expected the keys attention_efficiency and source")
    v = entry["attention_efficiency"]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
        raise ConfigError(f"{where}.attention_efficiency is {v!r}; expected a fraction in (0, 1]")
    return AbsorbedMlaPrefill(attention_efficiency=float(v), source=str(entry["source"]))


def _awq_gemm(entry: Any, where: str) -> AwqGemmKernel | None:
    """A framework's ``awq_gemm`` entry, checked: a positive tile and rate, ``max_rows`` a positive
    integer or null."""
    if entry is None:
        return None
    keys = {"tile_rows", "macs_per_sm_us", "max_rows", "source"}
    if not isinstance(entry, Mapping) or set(entry) != keys:
        raise ConfigError(f"{where}: expected the keys {', '.join(sorted(keys))}")
    tile, rate, top = entry["tile_rows"], entry["macs_per_sm_us"], entry["max_rows"]
    if not isinstance(tile, int) or isinstance(tile, bool) or tile < 1:
        raise ConfigError(f"{where}.tile_rows is {tile!r}; expected a positive integer")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < 1e9:
        raise ConfigError(f"{where}.macs_per_sm_us is {rate!r}; expected a positive rate")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise ConfigError(f"{where}.max_rows is {top!r}; expected a positive integer or null")
    return AwqGemmKernel(tile, float(rate), top, str(entry["source"]))


def _with_terms(terms: FrameworkTerms, values: Mapping[str, float]) -> FrameworkTerms:
    """``terms`` with fitted serving values (``step_overhead_us``, ``seq_overhead_us``,
    ``tp_step_overhead_us`` and ``request_latency_per_launch_us`` in microseconds)."""
    seconds = {
        "step_overhead_us": "step_overhead_s",
        "seq_overhead_us": "seq_overhead_s",
        "tp_step_overhead_us": "tp_step_overhead_s",
        "request_latency_per_launch_us": "request_latency_per_launch_s",
    }
    fields = {seconds.get(k, k): float(v) * (1e-6 if k in seconds else 1.0) for k, v in values.items()}
    return replace(terms, **fields)


SERVING_FITTABLE = (
    "step_overhead_us",
    "seq_overhead_us",
    "tp_step_overhead_us",
    "output_lag_steps",
    "request_latency_per_launch_us",
)
"""Framework terms a serving fit may set (``hwsim calibrate``, ``sim/serving/calibrate.py``)."""
SERVING_FITTED = "serving_fitted.yaml"


def serving_fitted_path() -> Path:
    """Where the serving fit of framework terms is stored (``fits_folder``)."""
    return fits_folder() / SERVING_FITTED


@lru_cache(maxsize=1)
def _serving_fitted() -> Mapping[str, Any]:
    """The serving fit record (``frameworks``, ``fitted_on``, ``errors``); empty when never fitted."""
    path = serving_fitted_path()
    if not path.is_file():
        return {}
    raw = parse_yaml(path.read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{SERVING_FITTED}: schema_version {raw.get('schema_version')!r}; expected 1")
    return raw


@contextlib.contextmanager
def framework_overridden(name: str, values: Mapping[str, float]) -> Iterator[None]:
    """Use other values of framework ``name``'s fittable serving terms inside the block."""
    table = _frameworks()
    previous = table[name]
    table[name] = _with_terms(previous, values)
    try:
        yield
    finally:
        table[name] = previous


@contextlib.contextmanager
def framework_replaced(name: str, **fields: Any) -> Iterator[None]:
    """Use framework ``name``'s terms with ``fields`` replaced inside the block (a kernel fit's
    trial values)."""
    table = _frameworks()
    previous = table[name]
    table[name] = replace(previous, **fields)
    try:
        yield
    finally:
        table[name] = previous


def framework_terms(name: str) -> FrameworkTerms:
    """The overhead terms of framework ``name``; an unknown name lists the closest."""
    table = _frameworks()
    if not isinstance(name, str):
        raise ConfigError(f"framework is {name!r}; expected a framework name ({', '.join(sorted(table))})")
    if name not in table:
        unmodelled = _frameworks_file().get("unmodelled") or {}
        keys = framework_keys(name)
        why = next(
            (unmodelled[k] for k in [*keys, *(k.split()[0] for k in keys if k)] if k in unmodelled), None
        )
        if why:
            advice = (
                ""
                if "--framework" in why
                else (
                    "; leave --framework out to price an engine that fuses its elementwise ops at the device "
                    "class's fitted launch cost"
                )
            )
            raise ConfigError(f"framework {name!r} is not modelled: {why}{advice}")
        raise unknown_name("framework", name, table, "hwsim frameworks")
    return table[name]


def fits_request_latency(name: str) -> bool:
    """Whether framework ``name``'s entry in frameworks.yaml states ``request_latency_per_launch_us``,
    so a serving fit fits that term."""
    return "request_latency_per_launch_us" in _frameworks_file()["frameworks"].get(name, {})


def inherits_serving_terms(name: str) -> bool:
    """Whether framework ``name`` takes its serving terms from others (``serving_terms_from`` in
    frameworks.yaml), so a serving fit leaves it alone."""
    return "serving_terms_from" in _frameworks_file()["frameworks"].get(name, {})


def framework_names() -> list[str]:
    return sorted(_frameworks())


@lru_cache(maxsize=1)
def _spellings() -> Mapping[str, str]:
    table = _frameworks_file().get("spellings", {})
    for other, name in table.items():
        if name not in _frameworks():
            raise unknown_name(
                f"framework of spelling {other!r} in hwmodels/calibration/frameworks.yaml",
                name,
                _frameworks(),
            )
    return MappingProxyType(table)


VERSION_IN_NAME = re.compile(
    r"(?:[\s_-]+|==|@|:)(?:v(?:ersion)?\s*)?(\d+(?:\.\d+)+\S*|b\d{2,6})\s*$"
    r"|(?:[\s_-]+|==|@|:)build[\s:#]*(\d{2,6})\s*$"
    r"|[\s_-]+commit\s+([0-9a-f]{7,40})\s*$",
    re.IGNORECASE,
)
"""A version at the end of a framework's name: a number (``vLLM 0.6.3``, ``SGLang v0.4.3.post2``,
a pip pin ``vllm==0.6.3``) or a build (llama.cpp's release tags ``llama.cpp b2800`` or ``build
2800``, both read as ``b2800``, or ``commit 1a2b3c4``)."""
QUALIFIER = re.compile(r"\s*\(([^()]*)\)\s*$")
"""A parenthesised qualifier at the end of a name (``vLLM 0.6.3 (CUDA graphs)``, ``llama.cpp (b2800)``)."""

VENDOR_WORDS = re.compile(r"^(nvidia|hugging\s*face|intel|amd|microsoft|rocm)[\s_-]+", re.IGNORECASE)
"""A maker's name before a framework's (``NVIDIA TensorRT-LLM``, ``Hugging Face TGI``)."""


def split_framework_version(text: str) -> tuple[str, str | None]:
    """(``text`` without a trailing version (``VERSION_IN_NAME``), that version or None): ``vLLM
    0.6.3`` -> (``vLLM``, ``0.6.3``), ``SGLang v0.4.3.post2`` -> (``SGLang``, ``0.4.3.post2``),
    ``llama.cpp b2800`` -> (``llama.cpp``, ``b2800``). A version in a qualifier at the end, or
    before one, is read too (``TensorRT-LLM (v0.17)``, ``vLLM 0.6.3 (CUDA graphs)``: the qualifier
    is then dropped); a name that is a frameworks.yaml entry as it stands (``sglang-0.4``,
    ``autoawq-0.1``) keeps its number."""
    text = text.strip()
    qualifier = QUALIFIER.search(text)
    if qualifier and text[: qualifier.start()].strip():
        # ``TensorRT-LLM (v0.17)``: the version is the qualifier; ``vLLM 0.6.3 (CUDA graphs)``: before it
        name, version = split_framework_version(f"{text[: qualifier.start()]} {qualifier.group(1)}")
        if version is None:
            name, version = split_framework_version(text[: qualifier.start()])
        if version is not None:
            return name, version
        return text, None
    if canonical_framework(text) in _frameworks():
        return text, None
    found = VERSION_IN_NAME.search(text)
    if not found or not text[: found.start()].strip():
        return text, None
    number, build, commit = found.groups()
    version = number if number is not None else f"b{build}" if build is not None else commit
    return text[: found.start()].strip(), version


def framework_keys(name: str) -> list[str]:
    """The keys ``name`` is looked up by, first to last: itself stripped and lowercased, with
    spaces and underscores as dashes (``HF Transformers``, ``tensorrt_llm``), then without a
    parenthesised qualifier (``lmdeploy (TurboMind)``) or a maker's name in front (``NVIDIA
    NIM``, ``HuggingFace Transformers``). A version in the name is not dropped here: which entry
    a version ran as is the version rules' call (``roofline.validation.framework_of``)."""
    keys: list[str] = []
    text = name.strip().lower()
    for step in (
        lambda t: t,
        lambda t: re.sub(r"\s*\([^)]*\)\s*", " ", t).strip(),
        lambda t: VENDOR_WORDS.sub("", t),
    ):
        text = step(text)
        for key in (text, re.sub(r"[\s_]+", "-", text)):
            if key and key not in keys:
                keys.append(key)
    return keys


def spellings_of(name: str) -> list[str]:
    """The other names ``spellings:`` in frameworks.yaml gives framework ``name`` (``trt-llm``)."""
    return [other for other, n in _spellings().items() if n == name]


def find_frameworks(query: str) -> list[str]:
    """Frameworks ``query`` shows (``hwsim frameworks QUERY``): the one it names (a frameworks.yaml
    name or a spelling of one: ``trt-llm``, ``trtllm-serve``); else every framework whose name or
    one of whose spellings holds it, ignoring case and punctuation (``tensorrt``), those whose
    name begins with it first. An engine with no entry is refused with the reason frameworks.yaml
    gives (``unmodelled:``), a query nothing holds with the closest names."""
    table = _frameworks()
    name = canonical_framework(query)
    if name in table:
        return [name]
    hits = names_holding(query, {n: spellings_of(n) for n in table})
    if not hits:
        framework_terms(query)  # refused: with its reason where it has one, else the closest names
    return hits


def canonical_framework(name: str) -> str:
    """The frameworks.yaml name of ``name``: the first of its ``framework_keys`` that is one, or
    that ``spellings:`` there maps to one (``trt-llm`` -> ``tensorrt-llm``, ``llamacpp`` ->
    ``llama.cpp``, ``NVIDIA TensorRT-LLM`` -> ``tensorrt-llm``); ``name`` unchanged when none
    is, for ``framework_terms`` to refuse with the closest names."""
    spellings = _spellings()
    for key in framework_keys(name):
        if key in _frameworks():
            return key
        if key in spellings:
            return spellings[key]
    return name
