"""``Placement``: how a model is mapped onto devices for the analytic path."""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import DeviceSpec, LinkSpec
from workloads.errors import ConfigError

SCALE_UP_LINKS = ("nvlink", "infinity_fabric", "roce", "hccs", "ici", "neuronlink")
"""Device-to-device fabrics that carry tensor- and expert-parallel collectives inside a node or pod,
as each vendor's collective library uses them: NVLink (NCCL), AMD Infinity Fabric (RCCL), Gaudi's
on-chip RoCE ports (HCCL), Huawei HCCS, TPU ICI, Trainium NeuronLink. A device with none of them
runs its collectives over PCIe."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Parallel degrees, the link that carries collectives, and the serving framework.

    ``link`` names one of the device's links (``nvlink``, ``pcie``); ``None`` picks its
    scale-up fabric (``SCALE_UP_LINKS``), else PCIe. ``framework`` names an entry of
    ``hwmodels/calibration/frameworks.yaml`` (its launch and step overheads); ``None``
    keeps the device class defaults.
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    link: str | None = None
    framework: str | None = None
    attention_dp: bool = False
    """Attention data parallel across the expert-parallel group (``workloads.graph.build_ops``)."""
    expert_imbalance: float = 1.0
    """Routed tokens on the busiest expert-parallel device over the mean (>= 1)."""

    @property
    def graph_kw(self) -> dict:
        """The keyword arguments ``build_ops`` takes from the placement (the framework's form of
        an MLA prefill among them)."""
        return dict(
            tp=self.tp,
            pp=self.pp,
            ep=self.ep,
            attention_dp=self.attention_dp,
            expert_imbalance=self.expert_imbalance,
            mla_prefill=framework_terms(self.framework).mla_prefill if self.framework else "expanded",
        )

    def collective_link(self, device: DeviceSpec) -> LinkSpec:
        """The link collectives run over on ``device``: the placement's, else the device's scale-up
        fabric (``SCALE_UP_LINKS``, first listed wins), else PCIe."""
        name = self.link or next((n for n in SCALE_UP_LINKS if n in device.links), "pcie")
        if name not in device.links:
            raise ConfigError(
                f"device {device.name!r} has no link {name!r} (has {', '.join(device.links) or 'none'})"
            )
        return device.links[name]


def scale_out_note(device: DeviceSpec, group: int) -> str | None:
    """A warning when a collective group of ``group`` devices (``tp * ep``) is larger than the
    device's NVLink domain (``domain_gpus`` of its ``nvlink`` link): past the domain, collectives
    cross the scale-out network (the analytic path still prices them over NVLink). None when the
    group fits, or the device has no NVLink (its collectives are priced over PCIe)."""
    link = device.links.get("nvlink")
    if link is None or link.domain_gpus is None or group <= link.domain_gpus:
        return None
    return (
        f"tp*ep = {group} devices exceed {device.name}'s NVLink domain of {link.domain_gpus} GPUs: "
        "their collectives cross the scale-out network"
    )
