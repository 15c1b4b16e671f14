"""Economics: what a device-second costs, and tokens per dollar and per joule.

Every comparison is priced on one stated basis (``--price-basis``):

- ``tco`` (the default): the purchase price spread over the lifetime plus the energy drawn
  (``power * PUE * price per kWh``);
- ``cloud``: the catalog's on-demand price per device-hour.

A device without a price on the chosen basis gets no dollar figures (NaN in arrays, null in
JSON, left out of charts with a note); it is never priced on the other basis instead.
``hwsim devices`` lists the bases each device has. Defaults (lifetime, PUE, electricity
price) live in ``roofline/economics.yaml`` with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np

from hwmodels.device_spec import DeviceSpec
from workloads.errors import ConfigError
from workloads.shipped import parse_yaml

SECONDS_PER_YEAR = 365.25 * 24 * 3600.0
J_PER_KWH = 3.6e6
PRICING_BASES = ("tco", "cloud")
BASIS_ALIASES = {"capex": "tco"}
"""Older names of a basis."""


@lru_cache(maxsize=1)
def economics_defaults() -> dict[str, tuple[float, str]]:
    """``{name: (value, source)}`` from ``roofline/economics.yaml``."""
    raw = parse_yaml(files("roofline").joinpath("economics.yaml").read_text())
    return {k: (float(v["value"]), v["source"]) for k, v in raw.items() if k != "schema_version"}


@dataclass(frozen=True, slots=True)
class Economics:
    """How a device-second is priced.

    Attributes
    ----------
    basis : ``tco`` (purchase over lifetime plus energy) or ``cloud`` (on-demand $/h).
    lifetime_years, pue, usd_per_kwh : the ownership assumptions (defaults in economics.yaml).
    """

    basis: str = "tco"
    lifetime_years: float | None = None
    pue: float | None = None
    usd_per_kwh: float | None = None

    def resolved(self) -> Economics:
        """A copy with every default filled in, checked."""
        d = economics_defaults()
        if not isinstance(self.basis, str):
            raise ConfigError(f"pricing basis is {self.basis!r}; expected one of {', '.join(PRICING_BASES)}")
        out = Economics(
            BASIS_ALIASES.get(self.basis, self.basis),
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


def has_price(device: DeviceSpec, basis: str) -> bool:
    """Whether the catalog prices ``device`` on ``basis``."""
    basis = BASIS_ALIASES.get(basis, basis)
    return bool(device.price_usd) if basis == "tco" else bool(device.cloud_usd_per_hour)


def bases_of(device: DeviceSpec) -> list[str]:
    """The bases ``device`` can be priced on."""
    return [b for b in PRICING_BASES if has_price(device, b)]


def basis_label(econ: Economics | None = None) -> str:
    """One line naming the basis of every $ figure of a comparison."""
    e = (econ or Economics()).resolved()
    if e.basis == "cloud":
        return "price basis: cloud on-demand $/device-hour (the catalog's dated prices)"
    return (
        f"price basis: TCO, purchase over {e.lifetime_years:g} years + energy at "
        f"${e.usd_per_kwh:g}/kWh, PUE {e.pue:g}"
    )


def pricing_basis(device: DeviceSpec, econ: Economics) -> str:
    """The basis ``device`` is priced on under ``econ``; ``NoPriceError`` when it has no price there."""
    basis = econ.resolved().basis
    if not has_price(device, basis):
        other = [b for b in PRICING_BASES if b != basis and has_price(device, b)]
        hint = f"; it has a {other[0]} price (--price-basis {other[0]})" if other else ""
        raise NoPriceError(f"device {device.name!r} has no {basis} price in the catalog{hint}")
    return basis


class NoPriceError(ConfigError):
    """A device has no price on the chosen basis (it is left out, never priced on another)."""


def usd_per_s(device: DeviceSpec, n_devices: Any, power_w: Any, econ: Economics | None = None) -> np.ndarray:
    """Cost of running ``n_devices`` devices drawing ``power_w`` watts in all, USD per second;
    NaN where the device has no price on the basis (see ``pricing_basis`` for the reason)."""
    econ = (econ or Economics()).resolved()
    n = np.asarray(n_devices, dtype=float)
    if not has_price(device, econ.basis):
        return np.full(np.broadcast_shapes(n.shape, np.shape(power_w)), np.nan)
    if econ.basis == "cloud":
        return n * device.cloud_usd_per_hour / 3600.0
    capex = n * device.price_usd / (econ.lifetime_years * SECONDS_PER_YEAR)
    energy = np.asarray(power_w, dtype=float) * econ.pue * econ.usd_per_kwh / J_PER_KWH
    return capex + energy
