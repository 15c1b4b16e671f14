"""Kernel-efficiency curves of the GPU cost model, fitted on public per-kernel measurements.

Per GPU architecture and math format, where measured kernels exist (``gpu_kernels.yaml``
names the measured chips and the catalog devices that share them):

- **GEMM**: a GEMM of ``m`` token rows reaches ``e_max * m / (m + m_half)`` of the dense
  peak of its format, streams its bytes at ``stream_efficiency`` of the memory bandwidth,
  overlaps the two to degree ``overlap`` (``(math^k + memory^k)^(1/k)``: near the ridge a
  kernel pays part of both), and costs ``latency_us`` besides (its prologue and epilogue, and for FP8 and NVFP4 the
  kernel that quantizes the activations and their scale factors); that latency is charged
  end to end only where the kernels were timed on the device alone
  (``latency_is_device_time``), since a collector's per-call time also holds its launch;
- **prefill attention**: a softmax attention whose queries attend ``keys`` keys on average
  reaches ``e_max * keys / (keys + keys_half)`` of the peak of its format (FlashAttention
  tiles are idle at short sequences), plus ``latency_us``;
- **decode attention**, per serving engine whose kernels were timed (``tensorrt-llm``, ``vllm``,
  ``sglang``: a framework's ``kernels`` name in ``frameworks.yaml``) and KV-cache format: the
  cached keys and values stream at ``stream_efficiency`` of the memory bandwidth, each
  (sequence, KV head) the kernel walks costs ``stream_ns`` besides (its block-table walk and
  split-KV reduction), plus ``latency_us`` per call (not charged end to end, as for prefill);
- **all-reduce over NVLink**: the first ``knee_MB`` of link bytes at ``small_bw_efficiency`` of the
  link bandwidth and the rest at ``bw_efficiency``, plus a base latency and a latency per ring step.

``hwsim calibrate --part kernels`` (``roofline/kernel_fit.py``) fits them on the extracts in
``hwmodels/calibration/kernels/`` and writes ``gpu_kernels_fitted.yaml``, with each curve's
error. A device outside every listed architecture, or a format without a curve, keeps its
device class's single ``compute_efficiency`` and ``memory_efficiency``, except that its FP8 and
FP4 GEMMs run no faster than the measured speed-up of those formats over BF16
(``format_speedup``, the median over the measured architectures) where its datasheet promises more;
an architecture whose public GEMM tables hold only compute-bound shapes states the share of the
peak its large GEMMs reach instead (``gemm_peak_fraction``, Gaudi 2).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from hwmodels.calibration.params import fits_folder
from workloads.errors import ConfigError
from workloads.shipped import parse_yaml

FORMAT_CURVE = {"fp16": "bf16", "bf16": "bf16", "fp8": "fp8", "fp4": "fp4"}
"""The measured GEMM and attention format that prices each op math format (FP16 and BF16
tensor cores run at one rate)."""

FITTED_FILE = "gpu_kernels_fitted.yaml"


@dataclass(frozen=True, slots=True)
class GemmCurve:
    """Achievable GEMM rate of one architecture and format."""

    e_max: float
    m_half: float
    stream_efficiency: float
    latency_us: float
    overlap: float = math.inf
    """How fully the kernel overlaps its weight streaming with its math: the GEMM takes
    ``(compute^k + memory^k)^(1/k)`` for ``k = overlap``; infinite is the roofline's ``max``
    (perfect overlap), 1 their sum (none). Near the ridge, where neither dominates, a kernel with
    few pipeline stages in flight pays part of both."""

    def efficiency(self, m: Any) -> Any:
        """Fraction of the dense peak at ``m`` token rows."""
        return self.e_max * m / (m + self.m_half)


def overlapped_s(compute_s: Any, memory_s: Any, overlap: Any) -> Any:
    """An op's time from its math and memory times when they overlap to degree ``overlap``
    (``GemmCurve.overlap``; arrays broadcast): ``(compute^k + memory^k)^(1/k)``, s.

    Worked as ``hi * (1 + (lo / hi)^k)^(1/k)``, the factor (1 to 2) in single precision: its
    two powers are most of a sweep's GEMM pricing and take 2.5x as long in double; the factor's
    relative error stays below 3e-7."""
    hi = np.maximum(compute_s, memory_s)
    ratio = np.asarray(np.minimum(compute_s, memory_s), dtype=float)
    np.divide(ratio, hi, out=ratio, where=hi > 0)
    x = np.asarray(ratio, dtype=np.float32)  # worked in place: its k-th power, 1 + it, ...
    k = np.asarray(overlap, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):
        np.power(x, k, out=x)
        x += np.float32(1.0)
        np.power(x, np.float32(1.0) / k, out=x)
    return hi * x


@dataclass(frozen=True, slots=True)
class AttentionCurve:
    """Achievable prefill-attention rate of one architecture and format."""

    e_max: float
    keys_half: float
    latency_us: float

    def efficiency(self, keys: Any) -> Any:
        """Fraction of the dense peak when each query attends ``keys`` keys."""
        return self.e_max * keys / (keys + self.keys_half)


@dataclass(frozen=True, slots=True)
class DecodeAttentionCurve:
    """Achievable decode attention of one architecture, engine and KV-cache format."""

    stream_efficiency: float
    stream_ns: float
    latency_us: float


@dataclass(frozen=True, slots=True)
class LinkCurve:
    """Achievable all-reduce over one link type: the first ``knee_MB`` of a collective's link bytes
    at ``small_bw_efficiency`` of the link bandwidth, the rest at ``bw_efficiency``, plus a base
    latency and a latency per ring step. Collective libraries move small and mid-sized messages with
    low-latency protocols (NCCL's and RCCL's LL and LL128, whose flag words halve or trim the
    payload per transfer; TensorRT-LLM's one-shot all-reduce, which reads every peer's whole buffer)
    and large ones with the bandwidth-efficient one: the measured time rises steeply to a few MB and
    at the large-message rate beyond."""

    bw_efficiency: float
    base_latency_us: float
    step_latency_us: float
    small_bw_efficiency: float
    knee_MB: float


@lru_cache(maxsize=1)
def architectures() -> Mapping[str, Mapping[str, Any]]:
    """``{architecture: {measured, devices, basis}}`` from ``gpu_kernels.yaml``, validated."""
    where = "hwmodels/calibration/gpu_kernels.yaml"
    raw = parse_yaml(files("hwmodels.calibration").joinpath("gpu_kernels.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected 1")
    seen: dict[str, str] = {}
    for name, entry in raw["architectures"].items():
        if not entry.get("basis") or not set(entry["measured"]) <= set(entry["devices"]):
            raise ConfigError(
                f"{where}: architectures.{name} needs a basis and its measured devices among devices"
            )
        for device in entry["devices"]:
            if device in seen:
                raise ConfigError(f"{where}: {device} is in both {seen[device]} and {name}")
            seen[device] = name
    return raw["architectures"]


_PATH: list[tuple[Path | None, Path | None]] = [(None, None)]
"""The last (``fits_folder()``, its fitted-curves path): every cost-model call asks for the path."""


def fitted_curves_path() -> Path:
    """Where the fitted curves are read from and written to (``fits_folder``, as every fit)."""
    folder = fits_folder()
    last, path = _PATH[0]
    if folder is not last or path is None:
        path = folder / FITTED_FILE
        _PATH[0] = (folder, path)
    return path


@lru_cache(maxsize=4)
def _stored(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    raw = parse_yaml(path.read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{FITTED_FILE}: schema_version {raw.get('schema_version')!r}; expected 1")
    return raw


_RECORD: list[Mapping[str, Any] | None] = [None]
_HIDDEN: set[str] = set()


def fitted_curves() -> Mapping[str, Any]:
    """The fit record in use: ``gemm``, ``attention_prefill``, ``attention_decode``, ``allreduce``, ``errors``; empty
    when never fitted."""
    return _RECORD[0] if _RECORD[0] is not None else _stored(fitted_curves_path())


def reload() -> None:
    """Forget the cached fit (after ``hwsim calibrate`` rewrote it)."""
    _stored.cache_clear()


@contextlib.contextmanager
def curves_overridden(record: Mapping[str, Any]) -> Iterator[None]:
    """Use ``record`` (same keys as the fitted file) instead of the shipped fit inside the block."""
    previous = _RECORD[0]
    _RECORD[0] = record
    try:
        yield
    finally:
        _RECORD[0] = previous


@contextlib.contextmanager
def without_curves(devices: Iterable[str]) -> Iterator[None]:
    """Price ``devices`` as if no kernel of theirs had been measured (their class's single
    efficiencies) inside the block: the strict leave-one-family-out check."""
    added = set(devices) - _HIDDEN
    _HIDDEN.update(added)
    try:
        yield
    finally:
        _HIDDEN.difference_update(added)


def architecture(device: str) -> str | None:
    """The measured architecture whose curves price ``device``, or None."""
    if device in _HIDDEN:
        return None
    for name, entry in architectures().items():
        if device in entry["devices"]:
            return name
    return None


def device_time_latency(arch: str) -> bool:
    """Whether ``arch``'s kernels were timed on the device alone, so a GEMM curve's
    ``latency_us`` is the kernel's own fill and drain and is charged end to end."""
    return bool(architectures()[arch].get("latency_is_device_time", False))


def gemm_curve(device: str, fmt: str) -> GemmCurve | None:
    """The GEMM curve of ``device`` in op math format ``fmt``, or None."""
    entry = _entry("gemm", device, fmt)
    if entry is None:
        return None
    return GemmCurve(**{k: float(entry[k]) for k in GemmCurve.__slots__ if k in entry})


def attention_curve(device: str, fmt: str) -> AttentionCurve | None:
    """The prefill-attention curve of ``device`` in op math format ``fmt``, or None."""
    entry = _entry("attention_prefill", device, fmt)
    return None if entry is None else AttentionCurve(**{k: float(entry[k]) for k in AttentionCurve.__slots__})


def decode_attention_curve(device: str, fmt: str, engine: str) -> DecodeAttentionCurve | None:
    """The decode-attention curve of ``engine``'s kernels on ``device`` for an attention op of math
    format ``fmt`` (the wider of activations and KV cache: ``Quant.attention_format``), or None."""
    arch = architecture(device)
    curve_fmt = FORMAT_CURVE.get(fmt)
    if arch is None or curve_fmt is None:
        return None
    entry = fitted_curves().get("attention_decode", {}).get(arch, {}).get(decode_key(engine, curve_fmt))
    if entry is None:
        return None
    return DecodeAttentionCurve(**{k: float(entry[k]) for k in DecodeAttentionCurve.__slots__})


def decode_key(engine: str, fmt: str) -> str:
    """The key of an engine's decode-attention curve in a format, under its architecture: ``vllm/bf16``."""
    return f"{engine}/{fmt}"


def format_speedup(fmt: str, device: str | None = None) -> float | None:
    """Measured speed of ``fmt`` GEMMs over BF16 ones on the same chip, for devices without curves:
    the one stated for ``device``'s architecture (``format_speedup`` in ``gpu_kernels.yaml``, from
    that chip's own GEMM tables), else the median over the measured architectures of ``e_max *
    peak`` ratios; None for 16-bit formats."""
    curve_fmt = FORMAT_CURVE.get(fmt, "")
    if curve_fmt == "bf16" or not curve_fmt:
        return None
    arch = architecture(device) if device else None
    stated = architectures()[arch].get("format_speedup", {}).get(curve_fmt) if arch else None
    value = stated if stated is not None else fitted_curves().get("format_speedup", {}).get(curve_fmt)
    return None if value is None else float(value)


def gemm_peak_fraction(fmt: str, device: str) -> float | None:
    """The share of ``fmt``'s dense peak that large GEMMs reach on ``device``'s architecture,
    where its entry of ``gpu_kernels.yaml`` states one measured on compute-bound shapes only
    (``gemm_peak_fraction``: too few shapes for a curve); None elsewhere."""
    arch = architecture(device)
    curve_fmt = FORMAT_CURVE.get(fmt)
    if arch is None or curve_fmt is None:
        return None
    value = architectures()[arch].get("gemm_peak_fraction", {}).get(curve_fmt)
    return None if value is None else float(value)


def link_curve(link: str, device: str | None = None) -> LinkCurve | None:
    """The all-reduce terms fitted for link type ``link`` (``nvlink``) on ``device``'s
    architecture (``<link>/<architecture>``, where the link's measured rows span several), else on
    the link's rows of every device, or None."""
    curves = fitted_curves().get("allreduce", {})
    arch = architecture(device) if device else None
    entry = curves.get(f"{link}/{arch}") if arch else None
    if entry is None:
        entry = curves.get(link)
    if entry is None:
        return None
    missing = [k for k in LinkCurve.__slots__ if k not in entry]
    if missing:
        raise ConfigError(
            f"{FITTED_FILE}: an allreduce curve for {link} lacks {', '.join(missing)}; refit with hwsim calibrate "
            "--part kernels"
        )
    return LinkCurve(**{k: float(entry[k]) for k in LinkCurve.__slots__})


def _entry(kind: str, device: str, fmt: str) -> Mapping[str, Any] | None:
    arch = architecture(device)
    curve_fmt = FORMAT_CURVE.get(fmt)
    if arch is None or curve_fmt is None:
        return None
    return fitted_curves().get(kind, {}).get(arch, {}).get(curve_fmt)
