"""Report section: cross-architecture Pareto fronts of tokens per $ against TPOT.

For each model, ``explore.search`` prices every design (device, device count, tensor
parallelism, precision, batch) over the catalog's GPUs, CPUs, SAIL CPUs, wafer-scale engines
and mobile NPUs on one price basis; the designs that hold the model and have a price there
make the front. A device whose cost model cannot run a whole model (a computational storage
drive runs attention beside a GPU) is named with its cost model's reason; a device without a
price on the basis is left out of the chart and named in its caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from explore.search import DEFAULT_PRECISIONS, search
from hwmodels import registry
from hwmodels.device_spec import catalog
from report.pareto_text import arch_lines, regions_paragraph, winner_regions
from report.tables import SectionOutput, write_csvs
from report.workload import INPUT_LEN, OUTPUT_LEN
from roofline import plots
from roofline.economics import Economics, basis_label
from roofline.pareto import pareto_front

PARETO_MODELS = ("llama-3.1-70b", "llama-3.1-8b")
ARCH_NAMES = {
    "gpu": "GPU",
    "cpu": "CPU",
    "sail": "CPU with SAIL",
    "wafer": "wafer-scale",
    "npu": "mobile NPU",
    "csd": "computational storage",
}
"""The architectures compared (catalog ``arch``), with the name the chart and text give each."""
PRICE_BASIS = "tco"
"""The one basis every $ figure of the section is on (``roofline.economics``)."""
QUICK_DEVICES = ("h100-sxm", "mi300x", "rtx-4090", "epyc-9654", "grace", "sail-n1", "wse-3", "sd8g3-npu")
"""Quick mode's devices: a few of each architecture (computational storage is always named)."""
QUICK_BATCHES = [1, 8, 64, 256]
METRICS = ("tpot_s", "tokens_per_usd")
FRONT_COLUMNS = ("label", "arch", "device", "n_devices", "tp", "precision", "batch", *METRICS)


@dataclass(frozen=True)
class CrossArch:
    """Every searched design of one model, the front, and the devices that were not run."""

    rows: pd.DataFrame
    """One row per design point, with ``arch`` (readable) and ``label`` (the design's name)."""
    front: pd.DataFrame
    not_run: dict[str, str]
    """Device -> why its cost model cannot run a whole model."""
    arch_of: dict[str, str]
    """Device -> readable architecture, for every device compared."""

    @property
    def priced(self) -> pd.DataFrame:
        """The designs that hold the model and have a price on the basis."""
        return priced_designs(self.rows)

    @property
    def unpriced(self) -> list[str]:
        """Devices that hold the model but have no price on the basis (left out of the chart)."""
        r = self.rows
        runs = set(r.loc[(r["error"] == "") & r["fits"].astype(bool), "device"])
        return sorted(runs - set(self.priced["device"]))


def priced_designs(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that were priced, hold the model in memory and have a price on the basis."""
    return rows.loc[(rows["error"] == "") & rows["fits"].astype(bool) & np.isfinite(rows["tokens_per_usd"])]


def compared_devices(quick: bool) -> dict[str, str]:
    """Device -> readable architecture, in ``ARCH_NAMES`` order: every catalog device of the
    compared architectures (quick mode: ``QUICK_DEVICES`` and the computational storage drives)."""
    devices = catalog()
    return {
        name: ARCH_NAMES[arch]
        for arch in ARCH_NAMES
        for name, d in devices.items()
        if d.arch == arch and (not quick or name in QUICK_DEVICES or arch == "csd")
    }


def cross_arch_designs(model: str, quick: bool) -> CrossArch:
    """Search every design of ``model`` on the compared devices, priced on ``PRICE_BASIS``."""
    arch_of = compared_devices(quick)
    not_run = {
        name: reason
        for name in arch_of
        if (reason := getattr(registry.get(catalog()[name].arch), "standalone", None))
    }
    result = search(
        model,
        [d for d in arch_of if d not in not_run],
        batches=QUICK_BATCHES if quick else None,
        input_len=INPUT_LEN,
        output_len=OUTPUT_LEN,
        price_basis=PRICE_BASIS,
    )
    order = pd.CategoricalDtype(list(dict.fromkeys(ARCH_NAMES.values())), ordered=True)
    rows = result.all.assign(
        arch=lambda f: f["device"].map(arch_of).astype(order),
        label=lambda f: (
            f["n_devices"].astype(str)
            + "x "
            + f["device"]
            + " "
            + f["precision"]
            + " batch "
            + f["batch"].astype(str)
        ),
    ).sort_values("arch", kind="stable")
    return CrossArch(rows, pareto_front(priced_designs(rows), METRICS, ("label",)), not_run, arch_of)


def pareto_section(out: Path, quick: bool) -> SectionOutput:
    """A chart, the winners by TPOT limit and the place of each architecture, per model."""
    econ = Economics(basis=PRICE_BASIS)
    lines = [
        "## Cross-architecture Pareto fronts: tokens per $ against TPOT",
        "",
        f"Every design `hwsim best` searches (device, number of devices, tensor parallelism, precision "
        f"{'/'.join(DEFAULT_PRECISIONS)}, batch) on the catalog's {', '.join(dict.fromkeys(ARCH_NAMES.values()))} "
        f"devices, for requests of {INPUT_LEN} prompt and {OUTPUT_LEN} generated tokens, priced on one "
        f"basis ({basis_label(econ)}). A design is on the front when no other design has both a lower TPOT "
        "and more output tokens per $"
        + (f" (quick mode: a few devices of each architecture, batches {QUICK_BATCHES})." if quick else "."),
        "",
    ]
    files: list[Path] = []
    for model in PARETO_MODELS:
        c = cross_arch_designs(model, quick)
        name = f"pareto-{model.replace('.', '-')}"  # no dot: the plot writer sets the suffix
        winners = {r.best["label"] for r in winner_regions(c.front)}
        files += plots.pareto_chart(
            c.priced,
            c.front,
            *METRICS,
            out / name,
            title=f"{model}: output tokens per $ against TPOT (input {INPUT_LEN}, output {OUTPUT_LEN})\n"
            f"{basis_label(econ)}",
            hue="arch",
            named=[i for i, label in enumerate(c.front["label"]) if i == 0 or label in winners],
        )
        files += write_csvs(out, {f"{name}-front.csv": c.front[list(FRONT_COLUMNS)]})
        unpriced = c.unpriced
        lines += [
            f"### {model}",
            "",
            f"![{model}: tokens per $ against TPOT]({name}.png)",
            "",
            f"Dots: the {len(c.priced):,} priced designs that hold {model}, by architecture; line: the front "
            f"({len(c.front)} designs, `{name}-front.csv`), the fastest design and each TPOT range's winner "
            f"named ({basis_label(econ)}). "
            + (
                f"Left out, no price on the {PRICE_BASIS} basis: {', '.join(unpriced)}."
                if unpriced
                else f"Every device that holds the model has a {PRICE_BASIS} price."
            ),
            "",
            regions_paragraph(c.front, c.priced),
            "",
            *arch_lines(c.rows, c.front, c.not_run, c.arch_of, PRICE_BASIS),
            "",
        ]
    return lines, files
