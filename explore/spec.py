"""Sweep specs: a YAML file whose every key takes a list (numeric keys also a range).

```yaml
models: [llama-3.1-8b, llama-3.1-70b]
devices: gpu                 # a name, a list, ``all``, or an arch / device class
precision: [fp16, fp8]
tp: [1, 2, 4, 8]
batch: {start: 1, stop: 512, num: 128, log: true}
input_len: {start: 128, stop: 8192, num: 64, log: true}
output_len: [128, 1024]
sampling: {method: grid}     # or {method: random | lhs, n: 10000, seed: 0}
```

Keys: ``models, devices, systems, n_devices, tp, pp, ep, precision, framework, batch, input_len,
output_len, price_basis``, and the serving keys ``rate, concurrency, slo_ttft, slo_tpot,
lengths, num_requests`` (a spec with any of them runs each point on the event path).
``n_devices`` defaults to ``tp x pp x ep``. ``systems`` (system files, ``sim/systems/``) stand
in for ``devices``: each gives its GPU, GPU count, TP and PP degrees. Every problem is a
one-line ``ConfigError`` naming the key.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwmodels import registry
from hwmodels.calibration.params import canonical_framework
from hwmodels.device_spec import catalog, load_device
from roofline.estimate import MAX_DEVICES
from sim.system import System, load_system
from workloads.errors import ConfigError, HwsimError, unknown_name
from workloads.files import read_yaml
from workloads.model_spec import load_model
from workloads.traces import MAX_TOKENS

ANALYTIC_KEYS = (
    "models",
    "devices",
    "systems",
    "n_devices",
    "tp",
    "pp",
    "ep",
    "precision",
    "framework",
    "batch",
    "input_len",
    "output_len",
    "price_basis",
)
SERVING_KEYS = ("rate", "concurrency", "slo_ttft", "slo_tpot", "lengths", "num_requests")
NUMERIC_KEYS = {
    "n_devices": int,
    "tp": int,
    "pp": int,
    "ep": int,
    "batch": int,
    "input_len": int,
    "output_len": int,
    "rate": float,
    "concurrency": int,
    "slo_ttft": float,
    "slo_tpot": float,
    "num_requests": int,
}
INT_LIMITS = {
    "n_devices": MAX_DEVICES,
    "tp": MAX_DEVICES,
    "pp": MAX_DEVICES,
    "ep": MAX_DEVICES,
    "batch": MAX_TOKENS,
    "input_len": MAX_TOKENS,
    "output_len": MAX_TOKENS,
    "concurrency": 10_000_000,
    "num_requests": 100_000_000,
}
"""The largest value of each integer key: what ``hwsim estimate`` and ``hwsim serve`` take (device
counts and degrees up to 1,048,576, lengths and batches up to 10,000,000)."""
MAX_POINTS = 1_000_000_000
"""Most points a sweep may have (its grid, or its samples)."""
MAX_DESIGNS = 1_000_000
"""Most design groups (combinations of the keys other than the workload axes) a sweep may have:
each is at least one chunk, one file while the sweep runs."""
MAX_SAMPLES = 1_000_000
"""Most points ``random`` and ``lhs`` sampling draw (the draw is held in memory)."""
MAX_SEED = 2**63 - 1
SAMPLING_KEYS = ("method", "n", "seed")
DEFAULTS = {
    "tp": [1],
    "pp": [1],
    "ep": [1],
    "precision": ["fp16"],
    "framework": [None],
    "batch": [1],
    "input_len": [1024],
    "output_len": [128],
    "price_basis": ["tco"],
}
"""What a key takes when the spec does not give it (the CLI's defaults)."""
DESIGN_KEYS = ("model", "device", "precision", "framework", "tp", "pp", "ep", "n_devices", "price_basis")
"""The keys of a design group: every point of a group is priced in one vectorized call."""
SWEEP_AXES = ("batch", "input_len", "output_len")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: the values of each key, and how to sample the grid they span."""

    values: dict[str, list[Any]]
    sampling: str = "grid"
    n_samples: int = 0
    seed: int = 0
    where: str = "sweep spec"
    serving: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "serving", any(k in self.values for k in SERVING_KEYS))

    @property
    def size(self) -> int:
        """Points the sweep writes (the full grid's size, or the number of samples)."""
        if self.sampling != "grid":
            return self.n_samples
        return int(np.prod([len(v) for v in self.values.values()], dtype=object))


def _shown(v: Any) -> str:
    """``v`` as the user wrote it (an integer too long for ``repr`` by its size)."""
    try:
        return repr(v)
    except ValueError:  # an integer of more than 4300 digits
        return f"an integer of {v.bit_length():,} bits"


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None when it is not a finite number (bools are not numbers)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return None
    try:
        f = float(v)
    except OverflowError:  # an integer beyond float range
        return None
    return f if math.isfinite(f) else None


def _expected(key: str, kind: type) -> str:
    if kind is int:
        return f"a positive integer up to {INT_LIMITS[key]:,}"
    return "a positive number"


def _range(raw: dict, key: str, kind: type, where: str) -> list[Any]:
    unknown = set(raw) - {"start", "stop", "num", "log"}
    if unknown or not {"start", "stop"} <= set(raw):
        raise ConfigError(
            f"{where}: {key} range {raw!r}; expected {{start, stop, num, log}} (num and log optional)"
        )
    start, stop = raw["start"], raw["stop"]
    num, log = raw.get("num", 10), raw.get("log", False)
    for label, v in (("start", start), ("stop", stop)):
        f = _finite(v)
        if kind is int and (f is None or not 1 <= f <= INT_LIMITS[key]):
            raise ConfigError(
                f"{where}: {key}.{label} is {_shown(v)}; expected a number from 1 to {INT_LIMITS[key]:,} "
                f"({key} takes integers)"
            )
        if f is None or f <= 0:
            raise ConfigError(f"{where}: {key}.{label} is {_shown(v)}; expected a positive number")
    if stop < start:
        raise ConfigError(f"{where}: {key} range is reversed (start {start} > stop {stop})")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1 or num > 10**6:
        raise ConfigError(f"{where}: {key}.num is {_shown(num)}; expected an integer from 1 to 1,000,000")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {key}.log is {_shown(log)}; expected true or false")
    start, stop = float(start), float(stop)
    values = np.geomspace(start, stop, num) if log else np.linspace(start, stop, num)
    if kind is int:  # start and stop lie in [1, limit], so the rounded values do too
        values = np.unique(np.clip(np.round(values), 1, INT_LIMITS[key]).astype(np.int64))
    return [kind(v) for v in values]


def _values(raw: Any, key: str, where: str) -> list[Any]:
    kind = NUMERIC_KEYS.get(key)
    if isinstance(raw, dict):
        if kind is None:
            raise ConfigError(f"{where}: {key} takes a list, not a range")
        return _range(raw, key, kind, where)
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise ConfigError(f"{where}: {key} is an empty list; expected at least one value")
    if kind is None:
        return [_name(v, key, where) for v in values]
    out = []
    for v in values:
        f = _finite(v)
        ok = f is not None and f > 0
        if ok and kind is int:
            ok = f.is_integer() and f <= INT_LIMITS[key]
        if not ok:
            raise ConfigError(f"{where}: {key} value {_shown(v)}; expected {_expected(key, kind)}")
        out.append(kind(v))
    return out


def _name(v: Any, key: str, where: str) -> Any:
    """A value of a name key: a string (a number is read as its digits; ``framework`` also takes
    null); a list, a mapping, a bool or a null is refused."""
    if v is None and key == "framework":
        return None
    if isinstance(v, str):
        return canonical_framework(v) if key == "framework" else v
    if key in ("models", "devices", "systems") and not isinstance(v, bool) and isinstance(v, (int, float)):
        return str(v)  # a number where a name goes: the unknown-name error suggests names
    expected = "a name, or null for none" if key == "framework" else "a name"
    if key == "price_basis":
        expected = "tco or cloud"
    raise ConfigError(f"{where}: {key} value {_shown(v)}; expected {expected}")


def expand_devices(names: list[Any], where: str = "sweep spec") -> list[str]:
    """Catalog names from names, ``all``, an arch (``gpu``, ``cpu``, ``npu``...) or a device class."""
    devices = {n: d for n, d in catalog().items() if d.arch in registry.names()}
    devices = {n: d for n, d in devices.items() if not getattr(registry.get(d.arch), "standalone", None)}
    arches = {d.arch for d in devices.values()}
    classes = {d.device_class for d in devices.values()}
    out: list[str] = []
    for name in names:
        key = str(name).strip().lower()
        if key == "all":
            out += sorted(devices)
        elif key in arches:
            out += sorted(n for n, d in devices.items() if d.arch == key)
        elif key in classes:
            out += sorted(n for n, d in devices.items() if d.device_class == key)
        elif key in devices:
            out.append(key)
        else:
            try:  # a name users type: an alias of a catalog entry (hwmodels/catalog/aliases.yaml)
                out.append(load_device(str(name)).name)
            except HwsimError:
                known = {*devices, *arches, *classes, "all"}
                raise unknown_name(
                    f"device or device class in {where}", str(name), known, "hwsim devices"
                ) from None
    return list(dict.fromkeys(out))


def parse_spec(raw: Any, where: str = "sweep spec") -> SweepSpec:
    """Validate a spec mapping; expand ranges, device classes and defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to lists, got {type(raw).__name__}")
    raw = dict(raw)
    sampling = raw.pop("sampling", None)
    sampling = {"method": "grid"} if sampling is None else sampling
    known = set(ANALYTIC_KEYS) | set(SERVING_KEYS)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise unknown_name(f"sweep key in {where}", unknown[0], known)
    if "models" not in raw:
        raise ConfigError(f"{where}: 'models' is missing; expected a list")
    if ("devices" in raw) == ("systems" in raw):
        raise ConfigError(
            f"{where}: give 'devices' or 'systems' (system files), one of them; expected a list"
        )
    if "systems" in raw and {"tp", "pp", "n_devices"} & set(raw):
        raise ConfigError(
            f"{where}: {sorted({'tp', 'pp', 'n_devices'} & set(raw))[0]!r} is set by each system file; "
            "expected it left out with 'systems'"
        )
    values = {key: _values(raw[key], key, where) for key in raw}
    values["models"] = [load_model(str(m)).name for m in values["models"]]
    if "devices" in values:
        values["devices"] = expand_devices(values["devices"], where)
    else:
        values["systems"] = [load_system(str(s)).name for s in values["systems"]]
    if "price_basis" in values:
        bad = [b for b in values["price_basis"] if b not in ("tco", "cloud")]
        if bad:
            raise ConfigError(f"{where}: price_basis value {bad[0]!r}; expected tco or cloud")
    for key, default in DEFAULTS.items():
        values.setdefault(key, default)
    method, n, seed = _sampling(sampling, where)
    order = [k for k in (*ANALYTIC_KEYS, *SERVING_KEYS) if k in values]
    spec = SweepSpec({k: values[k] for k in order}, method, n, seed, where)
    designs = math.prod(
        len(v) for k, v in spec.values.items() if k not in SWEEP_AXES and k not in SERVING_KEYS
    )
    if spec.sampling == "grid" and designs > MAX_DESIGNS:
        raise ConfigError(
            f"{where}: the grid has {designs:,} designs (combinations of the keys other than batch, "
            f"input_len, output_len and the serving keys); expected at most {MAX_DESIGNS:,} "
            "(give fewer values, or sample it: sampling: {method: lhs, n: N})"
        )
    if spec.size > MAX_POINTS:
        raise ConfigError(
            f"{where}: the grid has {spec.size:,} points; expected at most {MAX_POINTS:,} "
            "(give fewer values, or sample it: sampling: {method: lhs, n: N})"
        )
    return spec


def _sampling(sampling: Any, where: str) -> tuple[str, int, int]:
    """(method, n, seed) of a spec's ``sampling`` mapping, checked."""
    expected = "{method: grid | random | lhs, n, seed}"
    if not isinstance(sampling, dict):
        raise ConfigError(f"{where}: sampling {_shown(sampling)}; expected {expected}")
    unknown = [k for k in sampling if k not in SAMPLING_KEYS]
    if unknown:
        raise ConfigError(f"{where}: sampling key {unknown[0]!r}; expected {expected}")
    method = sampling.get("method", "grid")
    if not isinstance(method, str) or method not in ("grid", "random", "lhs"):
        raise ConfigError(f"{where}: sampling.method is {_shown(method)}; expected grid, random or lhs")
    n = sampling.get("n", 0)
    if method != "grid" and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES):
        raise ConfigError(
            f"{where}: sampling.n is {_shown(n)}; expected a positive integer up to {MAX_SAMPLES:,} "
            f"for {method} sampling"
        )
    seed = sampling.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"{where}: sampling.seed is {_shown(seed)}; expected an integer from 0 to 2**63 - 1"
        )
    return method, (n if method != "grid" else 0), seed


def load_spec(path: str | Path) -> SweepSpec:
    """A spec from a YAML file (one-line errors for a missing, special or oversized file or bad YAML:
    ``workloads.files.read_yaml``)."""
    path = Path(path)
    return parse_spec(read_yaml(path, "sweep spec"), str(path))


def design_groups(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid's design groups (every combination of the non-sweep keys), in a fixed order."""
    keys = [k for k in spec.values if k not in SWEEP_AXES and k not in SERVING_KEYS]
    groups = []
    for combo in itertools.product(*(spec.values[k] for k in keys)):
        groups.append(design_of(dict(zip(keys, combo, strict=True))))
    return groups


def design_of(values: dict[str, Any]) -> dict[str, Any]:
    """A design from one value of each non-axis key: ``models``/``devices`` renamed ``model``/``device``;
    a ``systems`` value names the system and sets its GPU, GPU count, TP and PP degrees and the
    GPU link that carries its TP traffic."""
    d = dict(values)
    d["model"] = d.pop("models")
    if "systems" in d:
        system = load_system(d.pop("systems"))
        d.update(
            system=system.name,
            device=system.gpu.name,
            n_devices=system.devices["gpu"][1],
            tp=system.tp,
            pp=system.pp,
            link=device_link_of(system),
        )
    else:
        d["device"] = d.pop("devices")
    return d


def device_link_of(system: System) -> str | None:
    """The GPU's own link (catalog) that carries the system's tensor-parallel traffic: the one with
    the bandwidth of the system's TP link; None when the system has no TP or no such link."""
    if system.tp == 1:
        return None
    bw = system.gpu_link("tp").bw_bytes_per_s
    return next(
        (n for n, link in system.gpu.links.items() if abs(link.bw_bytes_per_s - bw) <= 1e-6 * bw), None
    )
