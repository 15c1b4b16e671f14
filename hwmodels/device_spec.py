"""``DeviceSpec`` and the device catalog (``hwmodels/catalog/*.yaml``).

Each YAML file is parsed and validated once: exact key sets, numbers within their spans (``Span``), a
``source`` beside every block of numbers. YAML keys carry human units
(``bw_GBps``, ``tdp_W``); this module is the only place they become SI.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from workloads.errors import ConfigError, HwsimNote, unknown_name
from workloads.files import read_yaml_mapping
from workloads.shipped import parse_yaml

SCHEMA_VERSION = 1
ARCHES_WITH_COMPUTE = ("gpu", "cpu", "sail", "wafer", "csd", "npu", "hardwired")
"""Arches whose catalog entries carry compute peaks (more arrive with their issues). ``fpga``
entries may carry them too; their DSP count and design clock live in the ``fpga`` block."""

FPGA_FIELDS = frozenset(
    {
        "dsp_count",
        "clock_MHz",
        "luts_K",
        "onchip_sram_MB",
        "ddr_GB",
        "ddr_bw_GBps",
        "int8_ops_per_dsp_cycle",
        "mpe_dsp_fraction",
        "mpe_macs_per_cycle",
        "hbm_efficiency",
        "op_sync_cycles",
        "sfu_elements_per_cycle",
        "nm_group",
        "nm_index_bits",
        "nm_descriptor_bits",
        "nm_density",
        "dsp_mac_energy_pJ",
        "sram_energy_pJ_per_byte",
        "board_power_W",
    }
)
"""What an ``fpga`` block may hold, each a {value, source} pair, each optional and positive: the
device's DSP slices, the clock the design runs at, LUTs (thousands), on-chip block RAM plus
UltraRAM (MB), the card's DDR beside its HBM (GB and GB/s), and INT8 ops one DSP slice does per
cycle (a multiply-add counts 2). The rest describe a mapped design (``hwmodels/fpga.py``): the
share of DSPs in its matrix engine (or its INT8 multiply-adds per cycle outright), the share of
HBM bandwidth a stream reaches, cycles lost at each op boundary, the special-function unit's
elements per cycle, the N:M weight format (group M, index bits per kept weight, descriptor bits
per M x M block, mean kept share N/M), energies per INT8 multiply-add and per on-chip byte, and
the board's measured power. An FPGA cost model reads them by name from ``extra["fpga"]``."""

PEAK_FALLBACK: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "fp32": ("fp32",),
        "tf32": ("tf32", "fp32"),
        "fp16": ("fp16", "bf16", "fp32"),
        "bf16": ("bf16", "fp16", "fp32"),
        "fp8": ("fp8", "fp16", "bf16", "fp32"),
        "int8": ("int8", "fp8", "fp16", "fp32"),
        "int16": ("int16", "fp16", "bf16", "fp32"),
        "int4": ("int4", "int8", "fp16", "fp32"),
        "fp4": ("fp4", "fp8", "fp16", "fp32"),
    }
)
"""Math format actually used when a device lacks one: V100 runs bf16 models in fp16, A100
upcasts fp8 weights to 16-bit math, a device without int4 units runs int8, a CPU without
half-precision arithmetic computes in fp32."""


@dataclass(frozen=True, slots=True)
class MemoryLevel:
    """One memory a device reads from: capacity, bandwidth and energy per byte."""

    name: str
    type: str
    capacity_bytes: float
    bw_bytes_per_s: float
    energy_j_per_byte: float
    source: str
    visible_bytes: float | None = None
    """The total the driver reports to a process (CUDA's and HIP's ``MemGetInfo``, what
    ``torch.cuda.mem_get_info`` returns), less than the marketed capacity by what the driver and
    firmware keep; serving engines size their KV pools from it (``engine_config.kv_capacity``).
    None: not stated (``capacity_bytes`` is used)."""
    load_latency_s: float | None = None
    """Time one load that misses every cache waits for this memory (a dependent pointer chase
    over more than the last-level cache), s: what a kernel that keeps one load in flight per
    thread and waits for it each loop iteration pays per iteration (``gpu.mmha_loop_s``,
    ``gpu.scalar_gemv_s``). None: not stated (no such bound is priced)."""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A link out of a device, per direction."""

    name: str
    bw_bytes_per_s: float
    latency_s: float | None
    energy_j_per_byte: float | None
    source: str
    domain_gpus: int | None = None
    """GPUs this link joins all to all (an NVLink domain: 8 on an HGX board, 72 in an NVL72
    rack, 2 over a bridge); beyond it collectives cross the scale-out network. None: not stated."""
    mesh_peers: int | None = None
    """Point-to-point links ``bw_bytes_per_s`` is the sum of, one to each other device of a board
    wired all to all without a switch (7 on an 8-GPU MI300X or Gaudi board); None: a switched
    fabric or a single link, whose whole bandwidth any collective gets."""

    def group_bw(self, peers: Any) -> Any:
        """Bytes/s a device sends when its traffic goes to ``peers`` other devices at once (a
        collective's ``link_peers``): on a mesh, the links to those peers (at least one; at most
        all), ``bw * min(max(peers, 1), mesh_peers) / mesh_peers``; elsewhere the whole link."""
        if self.mesh_peers is None:
            return self.bw_bytes_per_s
        share = np.clip(peers, 1, self.mesh_peers) / self.mesh_peers
        return self.bw_bytes_per_s * share


@dataclass(frozen=True)
class DeviceSpec:
    """A device from the catalog, in SI units.

    ``peak_flop_per_s`` maps a math format (``fp16``, ``fp8``, ``int8``...) to the dense
    peak in FLOP/s (integer formats: op/s). ``peak_flop_per_s_sparse`` holds the vendor's
    structured-sparsity peaks (2:4 and the like) for the formats that have one, kept for
    reference and display only: no estimate reads them. ``extra`` holds arch-specific blocks
    (``storage`` of an SSD, ``link`` of a link part) as parsed SI values.
    """

    name: str
    display_name: str
    arch: str
    device_class: str
    year: int | None
    peak_flop_per_s: Mapping[str, float]
    compute_source: str
    memory: MemoryLevel | None
    l2_bytes: float | None
    links: Mapping[str, LinkSpec]
    tdp_w: float | None
    power_source: str
    sustained_gemm: Mapping[str, float] = field(default_factory=dict)
    price_usd: float | None = None
    price_source: str = ""
    cloud_usd_per_hour: float | None = None
    cloud_source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    file: str = ""
    peak_flop_per_s_sparse: Mapping[str, float] = field(default_factory=dict)

    def peak(self, fmt: str) -> float:
        """Dense peak FLOP/s for math format ``fmt``, falling back as ``PEAK_FALLBACK`` says."""
        for candidate in PEAK_FALLBACK.get(fmt, (fmt,)):
            if candidate in self.peak_flop_per_s:
                return self.peak_flop_per_s[candidate]
        raise ConfigError(
            f"device {self.name!r} has no compute peak for {str(fmt)!r} (has {', '.join(self.peak_flop_per_s)})"
        )

    def sustained_rate(self, fmt: str) -> float | None:
        """Measured FLOP/s of large GEMMs in ``fmt`` run for seconds (``sustained_gemm``: at the
        power limit, below the dense peak); fp16 and bf16 (the same tensor units) stand for each
        other. None where the device states no measurement."""
        math = self.math_format(fmt)
        for key in (math, *({"fp16": ("bf16",), "bf16": ("fp16",)}.get(math, ()))):
            if key in self.sustained_gemm:
                return self.sustained_gemm[key]
        return None

    def math_format(self, fmt: str) -> str:
        """The format the device actually computes ``fmt`` in."""
        for candidate in PEAK_FALLBACK.get(fmt, (fmt,)):
            if candidate in self.peak_flop_per_s:
                return candidate
        return fmt

    def scaled(self, *, bw: float = 1.0, compute: float = 1.0) -> DeviceSpec:
        """A copy with memory bandwidth and compute peaks (and a GPU's SM clock) multiplied (for what-if sweeps).

        Each factor must be a finite number > 0, and the scaled figures must stay in the spans a
        device file may give (``PEAK_TFLOPS``, ``BW_GBPS``, ``CLOCK_GHZ``); else a ``ConfigError``
        naming the argument.
        """
        call = f"{self.name}.scaled(bw={_shown(bw)}, compute={_shown(compute)})"
        bw, compute = _factor(bw, "bw"), _factor(compute, "compute")
        mem = replace(self.memory, bw_bytes_per_s=self.memory.bw_bytes_per_s * bw) if self.memory else None
        if mem is not None:
            _in_span(mem.bw_bytes_per_s / 1e9, f"{call}: memory.bw_GBps", BW_GBPS)
        peaks = MappingProxyType({k: v * compute for k, v in self.peak_flop_per_s.items()})
        sparse = MappingProxyType({k: v * compute for k, v in self.peak_flop_per_s_sparse.items()})
        sustained = MappingProxyType({k: v * compute for k, v in self.sustained_gemm.items()})
        for fmt, value in (*peaks.items(), *sparse.items()):
            _in_span(value / 1e12, f"{call}: compute.peak_TFLOPs.{fmt}", PEAK_TFLOPS)
        extra = dict(self.extra)
        if "gpu" in extra:
            gpu = extra["gpu"]
            clock = _in_span(gpu["boost_clock_GHz"] * compute, f"{call}: gpu.boost_clock_GHz", CLOCK_GHZ)
            extra["gpu"] = MappingProxyType({**gpu, "boost_clock_GHz": clock})
        return replace(
            self,
            memory=mem,
            peak_flop_per_s=peaks,
            peak_flop_per_s_sparse=sparse,
            sustained_gemm=sustained,
            extra=MappingProxyType(extra),
        )


def _sustained_gemm(raw: Any, where: str, peaks: Mapping[str, float]) -> dict[str, float]:
    """``power.sustained_gemm`` of a device file: format -> TFLOP/s measured on large GEMMs run
    for seconds (at the power limit), with a source; as format -> FLOP/s. A rate above the
    format's dense peak is refused."""
    if raw is None:
        return {}
    raw = _as_mapping(raw, where)
    _source(raw, where)
    out = {}
    for fmt, tflops in raw.items():
        if fmt == "source":
            continue
        if fmt not in peaks:
            raise ConfigError(f"{where}.{fmt}: no compute peak for {fmt!r} (has {', '.join(peaks)})")
        rate = _positive(tflops, f"{where}.{fmt}", PEAK_TFLOPS) * 1e12
        if rate > peaks[fmt]:
            raise ConfigError(
                f"{where}.{fmt} is {tflops!r} TFLOP/s; expected at most the dense peak {peaks[fmt] / 1e12:g}"
            )
        out[fmt] = rate
    return out


# ----- validation helpers -------------------------------------------------------------
def _check_keys(
    raw: Mapping[str, Any], where: str, required: set[str], optional: set[str] = frozenset()
) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    missing = required - set(raw)
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    unknown = set(raw) - required - optional
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(required | optional))}"
        )


@dataclass(frozen=True, slots=True)
class Span:
    """The values a number of a device file may take: ``lo`` to ``hi`` (``lo`` excluded when
    ``lo_open``), an integer when ``integer``, a multiple of ``step`` when given; ``words`` is what
    an error says was expected."""

    lo: float
    hi: float
    words: str
    integer: bool = False
    lo_open: bool = False
    step: int | None = None

    def holds(self, x: float) -> bool:
        """Whether ``x`` (finite) is one of the values."""
        if x > self.hi or x < self.lo or (self.lo_open and x == self.lo):
            return False
        if self.integer and not float(x).is_integer():
            return False
        return self.step is None or int(x) % self.step == 0


def _between(lo: float, hi: float, unit: str = "") -> Span:
    return Span(lo, hi, f"a positive number from {lo:g} to {hi:g}{unit}")


def _count(hi: int, lo: int = 1) -> Span:
    return Span(lo, hi, f"an integer from {lo} to {hi:,}", integer=True)


POSITIVE = _between(1e-9, 1e12)
"""Any number of a device file without a narrower span: positive and of a size no real part has
beyond (products of a few of them stay far from float overflow, never inf or NaN)."""
PEAK_TFLOPS = _between(1e-3, 1e9, " TFLOPS")
"""A compute peak: 1 GFLOPS to a zettaFLOPS (the catalog spans 0.09 to 3e7 TFLOPS)."""
BW_GBPS = _between(1e-3, 1e9, " GB/s")
"""A memory, link or storage bandwidth: 1 MB/s to an exabyte/s (the catalog: 0.5 to 2.1e7 GB/s)."""
CAPACITY_GB = _between(1e-6, 1e9, " GB")
LOAD_LATENCY_NS = _between(1.0, 1e6, " ns")
"""A memory's load latency: 1 ns to 1 ms (GPU DRAM: a few hundred ns)."""
TDP_W = _between(1e-3, 1e9, " W")
PRICE_USD = _between(1e-3, 1e12, " USD")
CLOCK_GHZ = _between(1e-3, 1e3, " GHz")
SHARE = Span(0.0, 1.0, "a share in (0, 1]", lo_open=True)
SHARE_OR_NONE = Span(0.0, 1.0, "a share in [0, 1]")
NON_NEGATIVE = Span(0.0, 1e12, "a number from 0 to 1e+12")
SIMD_BITS = Span(
    32, 2048, "a multiple of 32 from 32 to 2048 (bits of a vector register)", integer=True, step=32
)
"""A vector register holds whole fp32 lanes (the CPU model divides 32-bit math by it); SVE's
largest is 2048 bits."""


def _shown(value: Any) -> str:
    """``repr(value)``, cut short for a long one (an integer of hundreds of digits)."""
    text = repr(value)
    if len(text) <= 40:
        return text
    what = f"{len(text)} digits" if isinstance(value, int) else f"{len(text)} characters"
    return f"{text[:16]}... ({what})"


def _checked(value: Any, where: str, span: Span = POSITIVE) -> float:
    """``value`` as a float when it is a number (not a bool) that ``span`` holds; else a
    ``ConfigError`` naming the field, the value and the span."""
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:  # an integer past float range (2**1100)
        ok = False
    if not ok or not span.holds(float(value)):
        raise ConfigError(f"{where} is {_shown(value)}; expected {span.words}")
    return float(value)


def _factor(value: Any, name: str) -> float:
    """A ``DeviceSpec.scaled`` factor: a finite number > 0 (a NumPy scalar too)."""
    try:
        ok = not isinstance(value, (bool, np.bool_)) and isinstance(
            value, (int, float, np.integer, np.floating)
        )
        ok = ok and math.isfinite(float(value)) and float(value) > 0
    except OverflowError:
        ok = False
    if not ok:
        raise ConfigError(f"DeviceSpec.scaled: {name} is {_shown(value)}; expected a finite factor > 0")
    return float(value)


def _in_span(value: float, where: str, span: Span) -> float:
    """A figure computed from a device's (``DeviceSpec.scaled``), which ``span`` must hold."""
    if not math.isfinite(value) or not span.holds(value):
        raise ConfigError(f"{where} would be {value:g}; expected {span.words}")
    return value


def _positive(value: Any, where: str, span: Span = POSITIVE) -> float:
    """A positive number of a device file, within ``span`` (in the file's units)."""
    return _checked(value, where, span)


def _as_mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} is {raw!r}; expected a mapping")
    return raw


def _source(raw: Mapping[str, Any], where: str) -> str:
    src = raw.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ConfigError(f"{where}.source is missing; every number needs its source")
    return src


@lru_cache(maxsize=1)
def memory_energy_j_per_byte() -> Mapping[str, tuple[float, str]]:
    """Energy per byte of each memory type (``memory_types.yaml``): type -> (J/byte, source)."""
    where = "hwmodels/catalog/memory_types.yaml"
    raw = parse_yaml(files("hwmodels.catalog").joinpath("memory_types.yaml").read_text())
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema_version {raw.get('schema_version')!r}; expected {SCHEMA_VERSION}")
    out = {}
    for name, entry in raw["memory_types"].items():
        pj_bit = _positive(entry.get("energy_pJ_per_bit"), f"{where}: {name}.energy_pJ_per_bit")
        out[name] = (pj_bit * 8e-12, _source(entry, f"{where}: {name}"))
    return MappingProxyType(out)


def _memory(raw: Mapping[str, Any], where: str, name: str) -> MemoryLevel:
    """A memory block; capacity as ``capacity_GB`` (1e9 bytes) or ``capacity_GiB`` (2**30 bytes:
    HBM and GDDR parts marketed as "80 GB" hold 80 GiB, docs/hardware-sources.md conventions)."""
    unit_key = "capacity_GiB" if "capacity_GiB" in _as_mapping(raw, where) else "capacity_GB"
    _check_keys(
        raw,
        where,
        {"type", unit_key, "bw_GBps", "source"},
        {"visible_GiB", "visible_source", "load_latency_ns", "load_latency_source"},
    )
    energies = memory_energy_j_per_byte()
    if not isinstance(raw["type"], str) or raw["type"] not in energies:
        raise unknown_name("memory type", str(raw["type"]), energies)
    scale = 2.0**30 if unit_key == "capacity_GiB" else 1e9
    capacity = _positive(raw[unit_key], f"{where}.{unit_key}", CAPACITY_GB) * scale
    visible = None
    if "visible_GiB" in raw:
        visible = _positive(raw["visible_GiB"], f"{where}.visible_GiB", CAPACITY_GB) * 2.0**30
        if visible > capacity:
            raise ConfigError(
                f"{where}.visible_GiB is {raw['visible_GiB']!r}; expected at most the capacity, "
                f"{capacity / 2**30:.4g} GiB"
            )
        if not isinstance(raw.get("visible_source"), str) or not raw["visible_source"].strip():
            raise ConfigError(f"{where}.visible_GiB needs a visible_source (where the total was read)")
    latency = None
    if "load_latency_ns" in raw:
        latency = _positive(raw["load_latency_ns"], f"{where}.load_latency_ns", LOAD_LATENCY_NS) * 1e-9
        if not isinstance(raw.get("load_latency_source"), str) or not raw["load_latency_source"].strip():
            raise ConfigError(f"{where}.load_latency_ns needs a load_latency_source (where it was measured)")
    return MemoryLevel(
        name,
        raw["type"],
        capacity,
        _positive(raw["bw_GBps"], f"{where}.bw_GBps", BW_GBPS) * 1e9,
        energies[raw["type"]][0],
        _source(raw, where),
        visible,
        latency,
    )


def _link(name: str, raw: Mapping[str, Any], where: str) -> LinkSpec:
    _check_keys(
        raw,
        where,
        {"bw_GBps", "source"},
        {"gen", "latency_us", "energy_pJ_per_byte", "domain_gpus", "mesh_peers"},
    )
    lat = raw.get("latency_us")
    energy = raw.get("energy_pJ_per_byte")
    domain = raw.get("domain_gpus")
    if domain is not None and (isinstance(domain, bool) or not isinstance(domain, int) or domain < 1):
        raise ConfigError(f"{where}.domain_gpus is {domain!r}; expected a positive integer")
    mesh = raw.get("mesh_peers")
    if mesh is not None and (isinstance(mesh, bool) or not isinstance(mesh, int) or not 1 <= mesh <= 1024):
        raise ConfigError(f"{where}.mesh_peers is {mesh!r}; expected an integer from 1 to 1024")
    return LinkSpec(
        name,
        _positive(raw["bw_GBps"], f"{where}.bw_GBps", BW_GBPS) * 1e9,
        None if lat is None else _positive(lat, f"{where}.latency_us") * 1e-6,
        None if energy is None else _positive(energy, f"{where}.energy_pJ_per_byte") * 1e-12,
        _source(raw, where),
        domain,
        mesh,
    )


@dataclass(frozen=True, slots=True)
class CacheLevel:
    """One cache level of a CPU: capacity (per core or shared) and bandwidth per core."""

    name: str
    capacity_bytes: float
    per_core: bool
    bw_bytes_per_cycle: float
    source: str


@dataclass(frozen=True, slots=True)
class CpuMicroarch:
    """What the CPU cost model needs: cores, clock, vector units, int8 dot products, caches."""

    cores: int
    freq_hz: float
    simd_bits: int
    simd_units: int
    int8_dot: bool
    caches: tuple[CacheLevel, ...]
    source: str

    @property
    def llc_bytes(self) -> float:
        """Last-level capacity of the whole chip."""
        last = self.caches[-1]
        return last.capacity_bytes * (self.cores if last.per_core else 1)


def _cpu_block(raw: Mapping[str, Any], where: str) -> CpuMicroarch:
    _check_keys(raw, where, {"cores", "freq_GHz", "simd_bits", "simd_units", "int8_dot", "caches", "source"})
    caches = []
    if not isinstance(raw["caches"], list):
        raise ConfigError(f"{where}.caches is {raw['caches']!r}; expected a list of cache levels")
    for i, c in enumerate(raw["caches"]):
        w = f"{where}.caches[{i}]"
        _check_keys(c, w, {"name", "size_KB", "per_core", "bw_bytes_per_cycle"}, {"source"})
        caches.append(
            CacheLevel(
                c["name"],
                _positive(c["size_KB"], f"{w}.size_KB") * 1024.0,
                bool(c["per_core"]),
                _positive(c["bw_bytes_per_cycle"], f"{w}.bw_bytes_per_cycle"),
                str(c.get("source", raw["source"])),
            )
        )
    if not caches:
        raise ConfigError(f"{where}.caches is empty; expected at least the last-level cache")
    return CpuMicroarch(
        int(_checked(raw["cores"], f"{where}.cores", _count(10**6))),
        _positive(raw["freq_GHz"], f"{where}.freq_GHz", CLOCK_GHZ) * 1e9,
        int(_checked(raw["simd_bits"], f"{where}.simd_bits", SIMD_BITS)),
        int(_checked(raw["simd_units"], f"{where}.simd_units", _count(64))),
        bool(raw["int8_dot"]),
        tuple(caches),
        _source(raw, where),
    )


PARAM_SPANS: Mapping[str, Mapping[str, Span]] = MappingProxyType(
    {
        "wafer": {
            "mesh_height": _count(100_000),
            "mesh_width": _count(100_000),
            "clock_GHz": CLOCK_GHZ,
            "hop_cycles": NON_NEGATIVE,
            "station_cycles": NON_NEGATIVE,
            "reserved_KB": NON_NEGATIVE,
            "static_power_fraction": SHARE_OR_NONE,
        },
        "sail": {
            "lut_group": _count(16),
            "act_bits": _count(32),
            "quant_group": _count(2**20),
            "pim_freq_GHz": CLOCK_GHZ,
            "area_overhead": NON_NEGATIVE,
            "dram_efficiency": SHARE,
            "pattern_reuse_fraction": SHARE_OR_NONE,
        },
        "csd": {
            "channels": _count(2**20),
            "static_power_fraction": SHARE_OR_NONE,
            "math_power_fraction": SHARE_OR_NONE,
        },
        "npu": {"chunk_tokens": _count(10**7), "int8_efficiency": SHARE},
        "gpu": {
            "sm_count": _count(10**6),
            "issue_lanes_per_sm": _count(10**6),
            "boost_clock_GHz": CLOCK_GHZ,
            "max_resident_blocks_per_sm": _count(1024),
        },
        "hardwired": {
            "n_chips": _count(10**6),
            "grid_rows": _count(10**6),
            "grid_cols": _count(10**6),
            "act_bits": _count(32),
            "weight_values": _count(2**20),
            "clock_GHz": CLOCK_GHZ,
            "nonzero_weight_fraction": SHARE,
            "link_efficiency": SHARE,
            "respins_per_lifetime": NON_NEGATIVE,
        },
        "fpga": {
            "nm_group": _count(2**16),
            "clock_MHz": _between(1e-3, 1e6, " MHz"),
            "hbm_efficiency": SHARE,
            "mpe_dsp_fraction": SHARE,
            "nm_density": SHARE,
        },
    }
)
"""What each arch block's numbers may be, by field (``value`` of its {value, source} pair): a
count the cost model takes as an integer, a share, a clock; any other field is ``POSITIVE``."""


def _param_block(raw: Mapping[str, Any], where: str, block: str) -> Mapping[str, float]:
    """An arch's own parameters (``sail``, ``wafer``): every entry a {value, source} pair whose
    value ``PARAM_SPANS[block]`` holds (else ``POSITIVE``); the cost model reads them by name."""
    spans = PARAM_SPANS.get(block, {})
    out = {}
    for name, entry in _as_mapping(raw, where).items():
        if not isinstance(entry, Mapping) or "value" not in entry or not entry.get("source"):
            raise ConfigError(f"{where}.{name}: expected {{value, source}}")
        out[name] = _checked(entry["value"], f"{where}.{name}.value", spans.get(name, POSITIVE))
    return MappingProxyType(out)


def _sparse_peaks(raw: Any, dense: Mapping[str, float], where: str) -> dict[str, float]:
    """``compute.peak_TFLOPs_sparse`` as FLOP/s: the vendor's structured-sparsity peaks, each for a
    format that also has a dense peak and never below it (a sparse figure filed as dense, or the
    two swapped, is refused here)."""
    if raw is None:
        return {}
    field_name = "compute.peak_TFLOPs_sparse"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {field_name}: expected a mapping of format to TFLOPS")
    out = {}
    for fmt, tflops in raw.items():
        value = _positive(tflops, f"{where}: {field_name}.{fmt}", PEAK_TFLOPS) * 1e12
        if fmt not in dense:
            raise ConfigError(
                f"{where}: {field_name}.{fmt} has no dense compute.peak_TFLOPs.{fmt} beside it; "
                "every sparse peak needs its dense one"
            )
        if value < dense[fmt]:
            raise ConfigError(
                f"{where}: {field_name}.{fmt} is {tflops!r}, below the dense compute.peak_TFLOPs.{fmt} "
                f"{dense[fmt] / 1e12:g}; a sparse peak is never below the dense one (are the two swapped?)"
            )
        out[fmt] = value
    return out


_TOP_REQUIRED = {"schema_version", "name", "display_name", "arch", "device_class"}
_TOP_OPTIONAL = {
    "year",
    "compute",
    "memory",
    "l2_MB",
    "links",
    "power",
    "price",
    "cloud",
    "link",
    "storage",
    "cpu",
    "sail",
    "wafer",
    "csd",
    "npu",
    "gpu",
    "fpga",
    "hardwired",
}


def parse_device(raw: Mapping[str, Any], where: str) -> DeviceSpec:
    """Validate one catalog entry and convert it to a ``DeviceSpec`` (SI units)."""
    _check_keys(raw, where, _TOP_REQUIRED, _TOP_OPTIONAL)
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema_version {raw['schema_version']!r}; expected {SCHEMA_VERSION}")
    for key in ("name", "display_name", "arch", "device_class"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise ConfigError(f"{where}: {key} is {raw[key]!r}; expected a non-empty string")
    year = raw.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ConfigError(f"{where}: year is {year!r}; expected an integer")
    arch = raw["arch"]
    peaks: dict[str, float] = {}
    compute_source = ""
    if arch in ARCHES_WITH_COMPUTE:
        for block in ("compute", "memory", "power"):
            if block not in raw:
                raise ConfigError(f"{where}: arch {arch!r} needs a {block!r} block")
    sparse: dict[str, float] = {}
    if "compute" in raw:
        _check_keys(raw["compute"], f"{where}: compute", {"peak_TFLOPs", "source"}, {"peak_TFLOPs_sparse"})
        for fmt, tflops in _as_mapping(
            raw["compute"]["peak_TFLOPs"], f"{where}: compute.peak_TFLOPs"
        ).items():
            peaks[fmt] = _positive(tflops, f"{where}: compute.peak_TFLOPs.{fmt}", PEAK_TFLOPS) * 1e12
        if not peaks:
            raise ConfigError(
                f"{where}: compute.peak_TFLOPs is empty; expected a peak for each math format (bf16: ...)"
            )
        sparse = _sparse_peaks(raw["compute"].get("peak_TFLOPs_sparse"), peaks, where)
        compute_source = _source(raw["compute"], f"{where}: compute")
    memory = (
        _memory(raw["memory"], f"{where}: memory", "dram" if arch == "host" else "hbm")
        if "memory" in raw
        else None
    )
    links = {
        n: _link(n, v, f"{where}: links.{n}")
        for n, v in _as_mapping(raw.get("links") or {}, f"{where}: links").items()
    }
    extra: dict[str, Any] = {}
    if "link" in raw:
        links["self"] = _link("self", raw["link"], f"{where}: link")
    if "cpu" in raw:
        extra["cpu"] = _cpu_block(raw["cpu"], f"{where}: cpu")
    for block in ("sail", "wafer", "csd", "npu", "gpu"):
        if block in raw:
            extra[block] = _param_block(raw[block], f"{where}: {block}", block)
    if "gpu" in raw:
        _check_keys(
            raw["gpu"],
            f"{where}: gpu",
            {"sm_count", "issue_lanes_per_sm", "boost_clock_GHz"},
            {"max_resident_blocks_per_sm"},
        )
    if "hardwired" in raw:  # numbers, plus the preset name of the model wired into the chip
        wired = dict(_as_mapping(raw["hardwired"], f"{where}: hardwired"))
        model = wired.pop("model", None)
        name = model.get("value") if isinstance(model, Mapping) and model.get("source") else None
        if not isinstance(name, str):
            raise ConfigError(f"{where}: hardwired.model: expected {{value: <model preset name>, source}}")
        extra["hardwired"] = _param_block(wired, f"{where}: hardwired", "hardwired")
        extra["hardwired_model"] = name
    if "fpga" in raw:
        _check_keys(raw["fpga"], f"{where}: fpga", set(), FPGA_FIELDS)
        extra["fpga"] = _param_block(raw["fpga"], f"{where}: fpga", "fpga")
    if "storage" in raw:
        s = raw["storage"]
        _check_keys(s, f"{where}: storage", {"capacity_GB", "read_GBps", "write_GBps", "source"})
        extra["storage"] = MappingProxyType(
            {
                "capacity_bytes": _positive(s["capacity_GB"], f"{where}: storage.capacity_GB", CAPACITY_GB)
                * 1e9,
                "read_bytes_per_s": _positive(s["read_GBps"], f"{where}: storage.read_GBps", BW_GBPS) * 1e9,
                "write_bytes_per_s": _positive(s["write_GBps"], f"{where}: storage.write_GBps", BW_GBPS)
                * 1e9,
                "source": _source(s, f"{where}: storage"),
            }
        )
    tdp, power_source, sustained = None, "", {}
    if "power" in raw:
        _check_keys(raw["power"], f"{where}: power", {"tdp_W", "source"}, {"sustained_gemm"})
        tdp, power_source = (
            _positive(raw["power"]["tdp_W"], f"{where}: power.tdp_W", TDP_W),
            _source(raw["power"], f"{where}: power"),
        )
        sustained = _sustained_gemm(
            raw["power"].get("sustained_gemm"), f"{where}: power.sustained_gemm", peaks
        )
    price = price_src = None
    if "price" in raw:
        _check_keys(raw["price"], f"{where}: price", {"usd", "date", "source"})
        price, price_src = (
            _positive(raw["price"]["usd"], f"{where}: price.usd", PRICE_USD),
            _source(raw["price"], f"{where}: price"),
        )
    cloud = cloud_src = None
    if "cloud" in raw:
        _check_keys(raw["cloud"], f"{where}: cloud", {"usd_per_hour", "date", "source"}, {"provider"})
        cloud = _positive(raw["cloud"]["usd_per_hour"], f"{where}: cloud.usd_per_hour")
        cloud_src = _source(raw["cloud"], f"{where}: cloud")
    l2 = raw.get("l2_MB")
    return DeviceSpec(
        name=raw["name"],
        display_name=raw["display_name"],
        arch=arch,
        device_class=raw["device_class"],
        year=raw.get("year"),
        peak_flop_per_s=MappingProxyType(peaks),
        compute_source=compute_source,
        memory=memory,
        l2_bytes=None if l2 is None else _positive(l2, f"{where}: l2_MB") * 1e6,
        links=MappingProxyType(links),
        tdp_w=tdp,
        power_source=power_source,
        sustained_gemm=MappingProxyType(sustained),
        price_usd=price,
        price_source=price_src or "",
        cloud_usd_per_hour=cloud,
        cloud_source=cloud_src or "",
        extra=MappingProxyType(extra),
        file=where,
        peak_flop_per_s_sparse=MappingProxyType(sparse),
    )


@lru_cache(maxsize=1)
def catalog() -> Mapping[str, DeviceSpec]:
    """Every shipped device, by name. Files are listed explicitly: every ``*.yaml`` except
    ``memory_types.yaml`` and ``aliases.yaml`` is one device whose ``name`` must equal its file stem."""
    out: dict[str, DeviceSpec] = {}
    for path in sorted(files("hwmodels.catalog").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml") or path.name in ("memory_types.yaml", "aliases.yaml"):
            continue
        where = f"hwmodels/catalog/{path.name}"
        raw = parse_yaml(path.read_text())
        dev = parse_device(raw, where)
        if dev.name != Path(path.name).stem:
            raise ConfigError(f"{where}: name {dev.name!r} differs from the file name")
        out[dev.name] = dev
    if not out:
        raise ConfigError("hwmodels/catalog holds no device files")
    return MappingProxyType(out)


def device_names(arch: str | None = None) -> list[str]:
    """Catalog names, optionally only those of one arch."""
    return sorted(n for n, d in catalog().items() if arch is None or d.arch == arch)


def load_device(name_or_path: str | Path | DeviceSpec) -> DeviceSpec:
    """A device by catalog name, by a name of the alias table (``hwmodels/device_names.py``:
    case, spaces, punctuation and vendor words ignored), or from a YAML file path.

    A name with several variants resolves to the one the table assumes and says so with a
    ``HwsimNote`` warning; a name hwsim will not resolve (a phone SoC) raises
    ``AmbiguousNameError`` listing its parts.
    """
    from hwmodels.device_names import memory_mismatch, resolve_device_name  # they read the catalog

    if isinstance(name_or_path, DeviceSpec):
        return name_or_path
    key = str(name_or_path).strip().lower()
    if key in catalog():
        return catalog()[key]
    path = Path(str(name_or_path))
    if path.suffix not in (".yaml", ".yml") and any(ord(ch) < 32 for ch in str(name_or_path)):  # in no name
        raise ConfigError(
            f"device {str(name_or_path)!r} holds a control character; expected a name or a file path"
        )
    found = resolve_device_name(str(name_or_path))
    if found is not None:
        name, note = found
        if note:
            warnings.warn(note, HwsimNote, stacklevel=2)
        return catalog()[name]
    if path.suffix in (".yaml", ".yml"):
        return parse_device(read_yaml_mapping(path, "device file"), str(path))
    mismatch = memory_mismatch(str(name_or_path))
    if mismatch:
        raise ConfigError(mismatch)
    raise unknown_name("device", str(name_or_path), catalog(), "hwsim devices")
