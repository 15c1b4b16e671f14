"""``System``: devices, links, parallelism and placement, from ``sim/systems/*.yaml`` or Python.

A system file names catalog devices by role, the links between roles (bandwidth per
direction, latency, energy per byte, with a source), the parallel degrees, and where
weights and the KV cache live (a tier name, or fractions over ``gpu``, ``host`` and
``disk``). An optional ``offload`` block gives a FlexGen policy's GPU batch and number of
GPU batches per block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from hwmodels import registry
from hwmodels.device_spec import DeviceSpec, load_device
from workloads.errors import ConfigError, positive_count, unknown_name
from workloads.files import read_yaml_mapping
from workloads.shipped import parse_yaml

TIERS = ("gpu", "host", "disk")


@dataclass(frozen=True)
class Link:
    """A link between two roles, per direction."""

    name: str
    between: tuple[str, str]
    bw_bytes_per_s: float
    latency_s: float
    energy_j_per_byte: float
    source: str
    by_direction: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """Bytes/s from one role to the other where the two directions differ (e.g. an effective
    copy rate measured on the machine); a direction not listed runs at ``bw_bytes_per_s``."""

    def bw_from(self, src: str, dst: str) -> float:
        """Bytes/s from role ``src`` to role ``dst``."""
        return self.by_direction.get((src, dst), self.bw_bytes_per_s)


@dataclass(frozen=True)
class System:
    """A whole inference system. ``devices`` maps a role to (catalog device, count)."""

    name: str
    devices: Mapping[str, tuple[DeviceSpec, int]]
    links: Mapping[str, Link]
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    weights: Mapping[str, float] = field(default_factory=lambda: {"gpu": 1.0})
    kv: Mapping[str, float] = field(default_factory=lambda: {"gpu": 1.0})
    gpu_batch: int | None = None
    n_gpu_batches: int = 1
    tp_link: str | None = None
    pp_link: str | None = None
    source: str = ""

    @property
    def gpu(self) -> DeviceSpec:
        """The accelerator that runs the model."""
        return self.devices["gpu"][0]

    @property
    def offloaded(self) -> bool:
        """Whether any weights or KV cache live off the GPU."""
        return self.weights.get("gpu", 0.0) < 1.0 or self.kv.get("gpu", 0.0) < 1.0

    def gpu_link(self, purpose: str) -> Link:
        """The gpu-gpu link that carries ``purpose`` (``tp`` or ``pp``) traffic: the one the
        parallelism block names, else the first gpu-gpu link."""
        name = self.tp_link if purpose == "tp" else self.pp_link
        if name:
            return self.links[name]
        for link in self.links.values():
            if link.between == ("gpu", "gpu"):
                return link
        raise ConfigError(f"system {self.name!r} has no gpu-gpu link for {purpose} traffic")

    def link_between(self, a: str, b: str) -> Link:
        """The link joining roles ``a`` and ``b``."""
        for link in self.links.values():
            if set(link.between) == {a, b}:
                return link
        raise ConfigError(
            f"system {self.name!r} has no link between {a!r} and {b!r} "
            f"(links: {', '.join(self.links) or 'none'})"
        )

    def with_parallelism(self, tp: int | None = None, pp: int | None = None) -> System:
        """A copy with other TP/PP degrees (the CLI's ``--tp/--pp``); must fit the GPU count."""
        out = replace(
            self,
            tp=self.tp if tp is None else positive_count(tp, "tp", MAX_DEVICES),
            pp=self.pp if pp is None else positive_count(pp, "pp", MAX_DEVICES),
        )
        _check_parallelism(out, f"system {self.name!r}")
        return out


MAX_DEVICES = 1_000_000
"""Largest device count or parallel degree a system file may give (a typo beyond it)."""


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} is {raw!r}; expected a mapping")
    return raw


def _keys(raw: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    """``raw`` as a mapping whose keys are all in ``allowed``."""
    raw = _mapping(raw, where)
    unknown = set(map(str, raw)) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(allowed))}"
        )
    return raw


LINK_GBPS = (1e-3, 1e9)
"""A link's bandwidth, GB/s: as a device file's links (1 MB/s to an exabyte/s)."""
LINK_LATENCY_US = (0.0, 1e6)
"""A link's latency, us: up to a second."""
LINK_PJ_PER_BYTE = (0.0, 1e6)
"""A link's energy, pJ per byte: up to a microjoule."""


def _number(value: Any, where: str, positive: bool, span: tuple[float, float] | None = None) -> float:
    """A finite number, positive or non-negative, within ``span`` (low, high) when given."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        ok = ok and math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        ok = False
    if not ok or value < 0 or (positive and value == 0):
        raise ConfigError(
            f"{where} is {_shown(value)}; expected a {'positive' if positive else 'non-negative'} number"
        )
    if span is not None and not span[0] <= value <= span[1]:
        raise ConfigError(f"{where} is {_shown(value)}; expected a number from {span[0]:g} to {span[1]:g}")
    return float(value)


def _shown(value: Any) -> str:
    """``value`` for a message, a very long one cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"


def _by_direction(raw: Any, between: tuple[str, str], where: str) -> dict[tuple[str, str], float]:
    """``{"gpu->host": GB/s, ...}`` as bytes/s keyed by (source role, destination role)."""
    out = {}
    allowed = {f"{between[0]}->{between[1]}", f"{between[1]}->{between[0]}"}
    for key, bw in _mapping(raw, f"{where}.bw_GBps_by_direction").items():
        if key not in allowed:
            raise ConfigError(
                f"{where}.bw_GBps_by_direction has {key!r}; expected {' or '.join(sorted(allowed))}"
            )
        src, dst = key.split("->")
        out[(src, dst)] = (
            _number(bw, f"{where}.bw_GBps_by_direction.{key}", positive=True, span=LINK_GBPS) * 1e9
        )
    return out


def _tier_fractions(raw: Any, where: str) -> dict[str, float]:
    if isinstance(raw, str):
        if raw not in TIERS:
            raise ConfigError(f"{where} is {raw!r}; expected one of {', '.join(TIERS)} or fractions")
        return {raw: 1.0}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a tier name or a mapping of tier fractions")
    out = {}
    for tier, frac in raw.items():
        if tier not in TIERS:
            raise ConfigError(f"{where}.{tier}: unknown tier; expected {', '.join(TIERS)}")
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise ConfigError(f"{where}.{tier} is {frac!r}; expected a fraction in [0, 1]")
        out[tier] = float(frac)
    if abs(sum(out.values()) - 1.0) > 1e-9:
        raise ConfigError(f"{where}: fractions sum to {sum(out.values()):g}; expected 1")
    return out


HOST_ARCHES = ("host", "cpu")
"""Arches a ``host`` role may name: host memory (``host-ddr5``) or a CPU with its DRAM; the
offload path reads its memory's capacity and bandwidth (CPU attention over the KV cache)."""


def _check_role(role: str, device: DeviceSpec, where: str) -> None:
    """A device of the kind its role needs: ``gpu`` one with a cost model and memory, ``host``
    host memory, ``disk`` storage; other roles are free."""
    name = f"{device.name!r} (arch {device.arch})"
    if role == "gpu":
        if device.arch not in registry.names() or device.memory is None:
            raise ConfigError(
                f"{where} is {name}; the gpu role needs a device with a cost model and memory "
                f"(arch {', '.join(a for a in registry.names())})"
            )
    elif role == "host":
        if device.arch not in HOST_ARCHES or device.memory is None:
            raise ConfigError(
                f"{where} is {name}; the host role needs host memory (arch host, such as host-ddr5, or a cpu)"
            )
    elif role == "disk" and "storage" not in device.extra:
        raise ConfigError(
            f"{where} is {name}; the disk role needs storage (a device with a storage block, such as nvme-ssd)"
        )


def check_roles(system: System) -> None:
    """Every role of ``system`` holds a device of its kind (``_check_role``): a system built in
    Python, not read from a file, is checked here before an offloaded run reads its host or disk."""
    for role, (device, _) in system.devices.items():
        _check_role(role, device, f"system {system.name!r}: devices.{role}.device")


def _check_parallelism(system: System, where: str) -> None:
    n_gpu = system.devices["gpu"][1]
    need = system.tp * system.pp * system.ep * system.dp
    if need > n_gpu:
        raise ConfigError(f"{where}: tp*pp*ep*dp = {need} exceeds the {n_gpu} GPUs of the system")
    if system.tp > 1 and not any(link.between == ("gpu", "gpu") for link in system.links.values()):
        raise ConfigError(f"{where}: tp {system.tp} needs a gpu-gpu link")


def parse_system(raw: Mapping[str, Any], where: str) -> System:
    """Validate a system file and build the ``System``."""
    raw = _mapping(raw, where)
    required = {"schema_version", "name", "devices", "links", "parallelism", "placement"}
    missing = required - set(raw)
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    unknown = set(raw) - required - {"offload", "source"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if raw["schema_version"] != 1:
        raise ConfigError(f"{where}: schema_version {raw['schema_version']!r}; expected 1")
    if not isinstance(raw["name"], str) or not raw["name"].strip():
        raise ConfigError(f"{where}: name is {raw['name']!r}; expected a non-empty string")
    devices = {}
    for role, entry in _mapping(raw["devices"], f"{where}: devices").items():
        entry = _keys(entry, f"{where}: devices.{role}", {"device", "count"})
        if not isinstance(entry.get("device"), str):
            raise ConfigError(
                f"{where}: devices.{role}.device is {entry.get('device')!r}; expected a catalog device name"
            )
        count = positive_count(entry.get("count", 1), f"{where}: devices.{role}.count", MAX_DEVICES)
        device = load_device(entry["device"])
        _check_role(str(role), device, f"{where}: devices.{role}.device")
        devices[str(role)] = (device, count)
    if "gpu" not in devices:
        raise ConfigError(f"{where}: devices needs a 'gpu' role (the accelerator that runs the model)")
    links = {}
    link_keys = {"between", "bw_GBps", "bw_GBps_by_direction", "latency_us", "energy_pJ_per_byte", "source"}
    for name, entry in _mapping(raw["links"], f"{where}: links").items():
        at = f"{where}: links.{name}"
        entry = _keys(entry, at, link_keys)
        between = entry.get("between")
        if (
            not isinstance(between, (list, tuple))
            or len(between) != 2
            or any(not isinstance(r, str) or r not in devices for r in between)
        ):
            raise ConfigError(f"{at}.between is {between!r}; expected two roles of devices")
        for key in ("bw_GBps", "source"):
            if key not in entry:
                raise ConfigError(f"{at} is missing {key!r}")
        links[str(name)] = Link(
            str(name),
            (between[0], between[1]),
            _number(entry["bw_GBps"], f"{at}.bw_GBps", positive=True, span=LINK_GBPS) * 1e9,
            _number(entry.get("latency_us", 0.0), f"{at}.latency_us", positive=False, span=LINK_LATENCY_US)
            * 1e-6,
            _number(
                entry.get("energy_pJ_per_byte", 0.0),
                f"{at}.energy_pJ_per_byte",
                positive=False,
                span=LINK_PJ_PER_BYTE,
            )
            * 1e-12,
            str(entry["source"]),
            _by_direction(entry.get("bw_GBps_by_direction") or {}, (between[0], between[1]), at),
        )
    par = _keys(raw["parallelism"], f"{where}: parallelism", {"tp", "pp", "ep", "dp", "tp_link", "pp_link"})
    place = _keys(raw["placement"], f"{where}: placement", {"weights", "kv"})
    offload = _keys(raw.get("offload") or {}, f"{where}: offload", {"gpu_batch", "n_gpu_batches"})
    for key in ("tp_link", "pp_link"):
        name = par.get(key)
        if name is not None and (
            not isinstance(name, str) or name not in links or links[name].between != ("gpu", "gpu")
        ):
            raise ConfigError(f"{where}: parallelism.{key} is {name!r}; expected a gpu-gpu link of links")
    degree = {
        k: positive_count(par.get(k, 1), f"{where}: parallelism.{k}", MAX_DEVICES)
        for k in ("tp", "pp", "ep", "dp")
    }
    gpu_batch = offload.get("gpu_batch")
    system = System(
        name=raw["name"],
        devices=devices,
        links=links,
        **degree,
        weights=_tier_fractions(place.get("weights", "gpu"), f"{where}: placement.weights"),
        kv=_tier_fractions(place.get("kv", "gpu"), f"{where}: placement.kv"),
        gpu_batch=None
        if gpu_batch is None
        else positive_count(gpu_batch, f"{where}: offload.gpu_batch", MAX_DEVICES),
        n_gpu_batches=positive_count(
            offload.get("n_gpu_batches", 1), f"{where}: offload.n_gpu_batches", MAX_DEVICES
        ),
        tp_link=par.get("tp_link"),
        pp_link=par.get("pp_link"),
        source=str(raw.get("source", "")),
    )
    for tier in ("host", "disk"):
        if (system.weights.get(tier) or system.kv.get(tier)) and tier not in devices:
            raise ConfigError(f"{where}: placement uses tier {tier!r} but devices has no {tier!r} role")
    _check_parallelism(system, where)
    return system


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Path]:
    folder = files("sim.systems")
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def system_names() -> list[str]:
    """Names of the shipped system files."""
    return sorted(_shipped())


def load_system(name_or_path: str | Path | System) -> System:
    """A system by shipped name (case-insensitive) or from a YAML path."""
    if isinstance(name_or_path, System):
        return name_or_path
    key = str(name_or_path).strip().lower()
    if key in _shipped():
        path = _shipped()[key]
        return parse_system(parse_yaml(path.read_text()), f"sim/systems/{path.name}")
    path = Path(str(name_or_path))
    if path.suffix in (".yaml", ".yml"):
        return parse_system(read_yaml_mapping(path, "system file"), str(path))
    raise unknown_name("system", str(name_or_path), _shipped(), "hwsim systems")
