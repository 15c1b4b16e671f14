"""``Placement``: how a model is mapped onto devices for the analytic path."""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.device_spec import DeviceSpec, LinkSpec
from workloads.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Placement:
    """Parallel degrees, the link that carries collectives, and the serving framework.

    ``link`` names one of the device's links (``nvlink``, ``pcie``); ``None`` picks NVLink
    when the device has it, else PCIe. ``framework`` names an entry of
    ``hwmodels/calibration/frameworks.yaml`` (its launch and step overheads); ``None``
    keeps the device class defaults.
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    link: str | None = None
    framework: str | None = None

    def collective_link(self, device: DeviceSpec) -> LinkSpec:
        """The link collectives run over on ``device``."""
        name = self.link or ("nvlink" if "nvlink" in device.links else "pcie")
        if name not in device.links:
            raise ConfigError(
                f"device {device.name!r} has no link {name!r} (has {', '.join(device.links) or 'none'})"
            )
        return device.links[name]
