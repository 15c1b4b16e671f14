"""``hwsim report``: run every section into one folder, then write ``index.md``, the
self-contained ``index.html`` with the same content, and ``report_config.json``.

A section is a function ``(out, quick) -> (markdown lines, files written)``; each lower layer
provides the data and charts, the sections here arrange them. The sections are independent
(each writes its own files), so they run in parallel, one process per core; the page keeps
their order.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from hwmodels.placement import Placement
from report.html import write_html
from report.sections_assumptions import assumptions_section
from report.sections_engine import tp_scaling_section
from report.sections_papers import reproductions_section
from report.sections_pareto import pareto_section
from report.sections_roofline import efficiency_section, report_devices, roofline_section
from report.sections_serving import serving_section
from report.sections_studies import (
    disaggregation_study,
    instinfer_study,
    npu_study,
    sail_study,
    specialized_study,
    wafer_study,
)
from report.sections_validation import kernel_curves_section, validation_section
from report.tables import SectionOutput
from report.workload import INPUT_LEN, OUTPUT_LEN, PRECISION

Section = Callable[[Path, bool], SectionOutput]
SECTIONS: tuple[Section, ...] = (
    roofline_section,
    efficiency_section,
    validation_section,
    kernel_curves_section,
    reproductions_section,
    sail_study,
    wafer_study,
    instinfer_study,
    npu_study,
    disaggregation_study,
    specialized_study,
    tp_scaling_section,
    serving_section,
    pareto_section,
    assumptions_section,
)
"""Every section of the full report, in page order."""
QUICK_SECTIONS: tuple[Section, ...] = (
    roofline_section,
    efficiency_section,
    validation_section,
    kernel_curves_section,
    pareto_section,
    assumptions_section,
)
"""The sections of ``--quick`` (each on its reduced grid): the analytic path and the Pareto fronts."""
SLOWEST_FIRST = (serving_section, reproductions_section, pareto_section, kernel_curves_section)
"""Started before the others, so the longest sections overlap the rest (about 110, 26, 24 and 11 s
of one core in the full report, 2026-12-02)."""


def build_report(out: Path, quick: bool = False, progress: bool = True) -> list[Path]:
    """Write the report into ``out``; return the paths written."""
    from rich.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = QUICK_SECTIONS if quick else SECTIONS
    lines = [
        "# hwsim report",
        "",
        f"hwsim {_version()} (git {_git_hash()}){' — quick mode' if quick else ''}. Analytic path unless a "
        "section says otherwise; every device number comes from `hwmodels/catalog` with its source "
        "(`devices.csv`), every model from `workloads/presets` (`models.csv`). Output tokens count; prompt of "
        f"{INPUT_LEN} tokens, {OUTPUT_LEN} generated, {PRECISION}. The same page as markdown: `index.md`.",
        "",
    ]
    starts = sorted(
        sections, key=lambda s: SLOWEST_FIRST.index(s) if s in SLOWEST_FIRST else len(SLOWEST_FIRST)
    )
    with ProcessPoolExecutor(max_workers=min(len(sections), os.cpu_count() or 1)) as pool:
        # every worker forks at the first submit, before the progress bar starts its thread
        running = {pool.submit(section, out, quick): section for section in starts}
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("hwsim report", total=len(sections))
            for future in as_completed(running):
                future.result()  # a section's error stops the report here
                bar.update(task, advance=1, description=f"hwsim report: {running[future].__name__} done")
    results = {section: future.result() for future, section in running.items()}
    written: list[Path] = []
    for section in sections:
        lines += results[section][0]
        written += results[section][1]
    markdown = "\n".join(lines)
    (out / "index.md").write_text(markdown)
    return [
        *written,
        out / "index.md",
        write_html(out / "index.html", markdown),
        _config(out, quick, sections),
    ]


def _config(out: Path, quick: bool, sections: tuple[Section, ...]) -> Path:
    """``report_config.json``: the version, the settings and the sections of this report."""
    path = out / "report_config.json"
    config = {
        "hwsim_version": _version(),
        "git": _git_hash(),
        "quick": quick,
        "devices": report_devices(quick),
        "input_len": INPUT_LEN,
        "output_len": OUTPUT_LEN,
        "placement": str(Placement()),
        "sections": [s.__name__ for s in sections],
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def _git_hash() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwsim")
    except PackageNotFoundError:
        return "dev"
