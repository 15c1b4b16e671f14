"""Report section: the assumptions every analytic number rests on, with their sources."""

from __future__ import annotations

from pathlib import Path

from hwmodels.calibration.params import fitted_on, params_for
from report.tables import SectionOutput
from roofline.economics import basis_label, economics_defaults


def assumptions_section(out: Path, quick: bool) -> SectionOutput:
    """The datacenter GPU class's efficiency parameters and the economics defaults."""
    lines = [
        "## Assumptions",
        "",
        f"GPU efficiency parameters of the datacenter class ({fitted_on('gpu')}):",
        "",
        "\n".join(
            f"- `{k}` = {p.value:g}: {p.source}" for k, p in params_for("gpu", "datacenter-gpu").items()
        ),
        "",
        f"Economics: every $ figure of this report is on one basis ({basis_label()}); a device without a "
        "purchase price is left out of $ comparisons, never priced by the cloud hour instead (`devices.csv`, "
        "column `price_bases`, lists the bases each device has):",
        "",
        "\n".join(f"- `{k}` = {v:g}: {src}" for k, (v, src) in economics_defaults().items()),
        "",
    ]
    return lines, []
