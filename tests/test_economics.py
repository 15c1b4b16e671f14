"""Economics: hand-computed cost per second."""

import pytest

from hwmodels.device_spec import load_device
from roofline.economics import SECONDS_PER_YEAR, Economics, pricing_basis, usd_per_s
from workloads.errors import ConfigError


def test_capex_plus_energy_hand_case():
    """H100 at $25,000 over 3 years plus 500 W * PUE 1.2 at $0.10/kWh."""
    dev = load_device("h100-sxm")
    econ = Economics("capex", lifetime_years=3, pue=1.2, usd_per_kwh=0.10)
    expected = 25000 / (3 * SECONDS_PER_YEAR) + 500 * 1.2 * 0.10 / 3.6e6
    assert usd_per_s(dev, 1, 500.0, econ) == pytest.approx(expected)
    assert usd_per_s(dev, 4, 2000.0, econ) == pytest.approx(4 * expected)


def test_cloud_hand_case():
    assert usd_per_s(load_device("h200"), 2, 0.0, Economics("cloud")) == pytest.approx(2 * 5.408 / 3600)


def test_auto_basis_prefers_purchase_price():
    assert pricing_basis(load_device("h100-sxm"), Economics().resolved()) == "capex"
    assert pricing_basis(load_device("a10"), Economics().resolved()) == "cloud"


@pytest.mark.parametrize(
    "econ,match",
    [(Economics("leasing"), "basis"), (Economics(pue=0.9), "pue"), (Economics(lifetime_years=0), "lifetime")],
)
def test_bad_economics_refused(econ, match):
    with pytest.raises(ConfigError, match=match):
        econ.resolved()


def test_capex_without_price_is_refused():
    with pytest.raises(ConfigError, match="no purchase price"):
        usd_per_s(load_device("a10"), 1, 100.0, Economics("capex"))
