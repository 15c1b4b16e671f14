"""Load the per-class parameters of a cost model from ``hwmodels/calibration/<arch>.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import yaml

from workloads.errors import ConfigError, unknown_name


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
    raw = yaml.safe_load(path.read_text())
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


def params_for(arch: str, device_class: str) -> Mapping[str, Param]:
    """The parameters of one device class; an unknown class lists the known ones."""
    table = class_params(arch)
    if device_class not in table:
        raise unknown_name(f"{arch} device class", device_class, table)
    return table[device_class]


def fitted_on(arch: str) -> str:
    """What the parameters of ``arch`` were fitted on (or that they are defaults)."""
    raw = yaml.safe_load(files("hwmodels.calibration").joinpath(f"{arch}.yaml").read_text())
    return str(raw.get("fitted_on", ""))
