"""Economics: what a device-second costs, and tokens per dollar and per joule.

Cost per second of a device is either its purchase price spread over its lifetime plus
the energy it draws (``power * PUE * price per kWh``), or its cloud price per hour. The
default basis, ``auto``, uses the purchase price where the catalog has one and the cloud
price otherwise; ``hwsim devices`` shows which. Defaults (lifetime, PUE, electricity
price) live in ``roofline/economics.yaml`` with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np
import yaml

from hwmodels.device_spec import DeviceSpec
from workloads.errors import ConfigError

SECONDS_PER_YEAR = 365.25 * 24 * 3600.0
J_PER_KWH = 3.6e6
PRICING_BASES = ("auto", "capex", "cloud")


@lru_cache(maxsize=1)
def economics_defaults() -> dict[str, tuple[float, str]]:
    """``{name: (value, source)}`` from ``roofline/economics.yaml``."""
    raw = yaml.safe_load(files("roofline").joinpath("economics.yaml").read_text())
    return {k: (float(v["value"]), v["source"]) for k, v in raw.items() if k != "schema_version"}


@dataclass(frozen=True, slots=True)
class Economics:
    """How a device-second is priced.

    Attributes
    ----------
    basis : ``auto``, ``capex`` or ``cloud``.
    lifetime_years, pue, usd_per_kwh : the ownership assumptions (defaults in economics.yaml).
    """

    basis: str = "auto"
    lifetime_years: float | None = None
    pue: float | None = None
    usd_per_kwh: float | None = None

    def resolved(self) -> Economics:
        """A copy with every default filled in, checked."""
        d = economics_defaults()
        out = Economics(
            self.basis,
            d["lifetime_years"][0] if self.lifetime_years is None else self.lifetime_years,
            d["pue"][0] if self.pue is None else self.pue,
            d["usd_per_kwh"][0] if self.usd_per_kwh is None else self.usd_per_kwh,
        )
        if out.basis not in PRICING_BASES:
            raise ConfigError(f"pricing basis {out.basis!r}; expected one of {', '.join(PRICING_BASES)}")
        for field, v in (
            ("lifetime_years", out.lifetime_years),
            ("pue", out.pue),
            ("usd_per_kwh", out.usd_per_kwh),
        ):
            if not v > 0:
                raise ConfigError(f"{field} is {v!r}; expected a positive number")
        if out.pue < 1:
            raise ConfigError(f"pue is {out.pue}; expected >= 1 (facility power over IT power)")
        return out


def pricing_basis(device: DeviceSpec, econ: Economics) -> str:
    """``capex`` or ``cloud``: how ``device`` is priced under ``econ``."""
    basis = econ.basis
    if basis == "auto":
        basis = "capex" if device.price_usd else "cloud"
    if basis == "capex" and not device.price_usd:
        raise ConfigError(f"device {device.name!r} has no purchase price in the catalog; use pricing 'cloud'")
    if basis == "cloud" and not device.cloud_usd_per_hour:
        if device.price_usd:
            return "capex"
        raise ConfigError(f"device {device.name!r} has neither a purchase nor a cloud price in the catalog")
    return basis


def usd_per_s(device: DeviceSpec, n_devices: Any, power_w: Any, econ: Economics | None = None) -> np.ndarray:
    """Cost of running ``n_devices`` devices drawing ``power_w`` watts in all, USD per second."""
    econ = (econ or Economics()).resolved()
    n = np.asarray(n_devices, dtype=float)
    if pricing_basis(device, econ) == "cloud":
        return n * device.cloud_usd_per_hour / 3600.0
    capex = n * device.price_usd / (econ.lifetime_years * SECONDS_PER_YEAR)
    energy = np.asarray(power_w, dtype=float) * econ.pue * econ.usd_per_kwh / J_PER_KWH
    return capex + energy
