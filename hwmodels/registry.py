"""The cost-model registry: each architecture registers itself under its ``arch`` name.

A new architecture is one module with one decorator; nothing else is edited.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from hwmodels.cost_table import CostTable
from hwmodels.device_spec import DeviceSpec
from workloads.errors import HwsimError, unknown_name
from workloads.graph import OpTable


class CostModel(Protocol):
    """``estimate(ops, device, placement) -> CostTable``: the whole contract."""

    arch: ClassVar[str]

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Any = None) -> CostTable: ...


_REGISTRY: dict[str, type] = {}


class RegistryError(HwsimError):
    """Two cost models claim the same arch."""


def register(cls: type) -> type:
    """Class decorator: register a cost model under ``cls.arch``; duplicates are an error."""
    arch = cls.arch
    if arch in _REGISTRY:
        raise RegistryError(f"cost model {arch!r} registered twice: {_REGISTRY[arch]} and {cls}")
    _REGISTRY[arch] = cls
    return cls


def get(arch: str) -> CostModel:
    """The cost model for ``arch``; an unknown arch lists the closest registered ones."""
    if arch not in _REGISTRY:
        raise unknown_name("cost model", arch, _REGISTRY)
    return _REGISTRY[arch]()


def names() -> list[str]:
    """Registered arch names."""
    return sorted(_REGISTRY)
