"""Economics: hand-computed cost per second."""

import numpy as np
import pytest

from hwmodels.device_spec import load_device
from roofline.economics import SECONDS_PER_YEAR, Economics, NoPriceError, pricing_basis, usd_per_s
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


def test_default_basis_is_tco_and_never_falls_back_to_cloud():
    """One basis per comparison: the A10 has only a cloud price, so under TCO it has no $ figure
    (NaN, with a named reason), not its cloud price."""
    assert pricing_basis(load_device("h100-sxm"), Economics()) == "tco"
    with pytest.raises(NoPriceError, match="no tco price.*--price-basis cloud"):
        pricing_basis(load_device("a10"), Economics())
    assert np.isnan(usd_per_s(load_device("a10"), 1, 100.0, Economics()))
    assert pricing_basis(load_device("a10"), Economics("cloud")) == "cloud"


def test_a_comparison_never_mixes_bases():
    """Estimates over devices with purchase prices, cloud prices or both: on each basis every $
    figure is that basis' (equal to the hand price of a device-second on it) or absent."""
    from roofline.estimate import estimate

    for basis in ("tco", "cloud"):
        for name in ("h100-sxm", "a10", "a6000", "h200", "t4"):
            dev = load_device(name)
            e = estimate(
                "llama-3.1-8b", name, batch=1, input_len=128, output_len=16, economics=Economics(basis)
            )
            assert e.price_basis == basis
            priced = dev.price_usd if basis == "tco" else dev.cloud_usd_per_hour
            assert np.isfinite(e.usd_per_million_tokens) == bool(priced), (basis, name)
            if basis == "cloud" and priced:  # cloud: $/h x hours of the run over its tokens
                hand = dev.cloud_usd_per_hour / 3600 * float(e.e2e_s) / 16 * 1e6
                assert float(e.usd_per_million_tokens) == pytest.approx(hand)
            assert e.to_dict()["usd_per_million_tokens"] is None or priced


@pytest.mark.parametrize(
    "econ,match",
    [(Economics("leasing"), "basis"), (Economics(pue=0.9), "pue"), (Economics(lifetime_years=0), "lifetime")],
)
def test_bad_economics_refused(econ, match):
    with pytest.raises(ConfigError, match=match):
        econ.resolved()


def test_capex_is_the_old_name_of_tco():
    assert Economics("capex").resolved().basis == "tco"
