"""``System``: devices, links, parallelism and placement, from ``sim/systems/*.yaml`` or Python.

A system file names catalog devices by role, the links between roles (bandwidth per
direction, latency, energy per byte, with a source), the parallel degrees, and where
weights and the KV cache live (a tier name, or fractions over ``gpu``, ``host`` and
``disk``). An optional ``offload`` block gives a FlexGen policy's GPU batch and number of
GPU batches per block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from hwmodels.device_spec import DeviceSpec, load_device
from workloads.errors import ConfigError, unknown_name

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
        out = replace(self, tp=tp or self.tp, pp=pp or self.pp)
        _check_parallelism(out, f"system {self.name!r}")
        return out


def _by_direction(raw: Any, between: tuple[str, str], where: str) -> dict[tuple[str, str], float]:
    """``{"gpu->host": GB/s, ...}`` as bytes/s keyed by (source role, destination role)."""
    out = {}
    allowed = {f"{between[0]}->{between[1]}", f"{between[1]}->{between[0]}"}
    for key, bw in raw.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}.bw_GBps_by_direction has {key!r}; expected {' or '.join(sorted(allowed))}"
            )
        if not isinstance(bw, (int, float)) or bw <= 0:
            raise ConfigError(f"{where}.bw_GBps_by_direction.{key} is {bw!r}; expected a positive number")
        src, dst = key.split("->")
        out[(src, dst)] = bw * 1e9
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
        if not isinstance(frac, (int, float)) or not 0 <= frac <= 1:
            raise ConfigError(f"{where}.{tier} is {frac!r}; expected a fraction in [0, 1]")
        out[tier] = float(frac)
    if abs(sum(out.values()) - 1.0) > 1e-9:
        raise ConfigError(f"{where}: fractions sum to {sum(out.values()):g}; expected 1")
    return out


def _check_parallelism(system: System, where: str) -> None:
    n_gpu = system.devices["gpu"][1]
    need = system.tp * system.pp * system.ep * system.dp
    if need > n_gpu:
        raise ConfigError(f"{where}: tp*pp*ep*dp = {need} exceeds the {n_gpu} GPUs of the system")
    if system.tp > 1 and not any(link.between == ("gpu", "gpu") for link in system.links.values()):
        raise ConfigError(f"{where}: tp {system.tp} needs a gpu-gpu link")


def parse_system(raw: Mapping[str, Any], where: str) -> System:
    """Validate a system file and build the ``System``."""
    required = {"schema_version", "name", "devices", "links", "parallelism", "placement"}
    missing = required - set(raw)
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    unknown = set(raw) - required - {"offload", "source"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if raw["schema_version"] != 1:
        raise ConfigError(f"{where}: schema_version {raw['schema_version']!r}; expected 1")
    devices = {}
    for role, entry in raw["devices"].items():
        count = entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"{where}: devices.{role}.count is {count!r}; expected a positive integer")
        devices[role] = (load_device(entry["device"]), count)
    if "gpu" not in devices:
        raise ConfigError(f"{where}: devices needs a 'gpu' role (the accelerator that runs the model)")
    links = {}
    for name, entry in raw["links"].items():
        between = tuple(entry.get("between", ()))
        if len(between) != 2 or any(r not in devices for r in between):
            raise ConfigError(f"{where}: links.{name}.between is {between!r}; expected two roles of devices")
        for key in ("bw_GBps", "source"):
            if key not in entry:
                raise ConfigError(f"{where}: links.{name} is missing {key!r}")
        bw = entry["bw_GBps"]
        if not isinstance(bw, (int, float)) or bw <= 0:
            raise ConfigError(f"{where}: links.{name}.bw_GBps is {bw!r}; expected a positive number")
        links[name] = Link(
            name,
            between,
            bw * 1e9,
            float(entry.get("latency_us", 0.0)) * 1e-6,
            float(entry.get("energy_pJ_per_byte", 0.0)) * 1e-12,
            str(entry["source"]),
            _by_direction(entry.get("bw_GBps_by_direction") or {}, between, f"{where}: links.{name}"),
        )
    par = raw["parallelism"]
    place = raw["placement"]
    offload = raw.get("offload") or {}
    system = System(
        name=raw["name"],
        devices=devices,
        links=links,
        tp=int(par.get("tp", 1)),
        pp=int(par.get("pp", 1)),
        ep=int(par.get("ep", 1)),
        dp=int(par.get("dp", 1)),
        weights=_tier_fractions(place.get("weights", "gpu"), f"{where}: placement.weights"),
        kv=_tier_fractions(place.get("kv", "gpu"), f"{where}: placement.kv"),
        gpu_batch=offload.get("gpu_batch"),
        n_gpu_batches=int(offload.get("n_gpu_batches", 1)),
        tp_link=par.get("tp_link"),
        pp_link=par.get("pp_link"),
        source=str(raw.get("source", "")),
    )
    for key in ("tp_link", "pp_link"):
        name = par.get(key)
        if name is not None and (name not in links or links[name].between != ("gpu", "gpu")):
            raise ConfigError(f"{where}: parallelism.{key} is {name!r}; expected a gpu-gpu link of links")
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
        return parse_system(yaml.safe_load(path.read_text()), f"sim/systems/{path.name}")
    path = Path(str(name_or_path))
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"system file {str(path)!r} does not exist")
        return parse_system(yaml.safe_load(path.read_text()), str(path))
    raise unknown_name("system", str(name_or_path), _shipped(), "hwsim systems")
