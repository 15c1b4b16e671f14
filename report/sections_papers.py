"""Report section of the paper reproductions: each headline's verdict against its paper,
linked to the chart of how it moves with its assumptions, and the papers' setups beside
hwsim's."""

from __future__ import annotations

from pathlib import Path

from report.tables import SectionOutput, write_csvs
from sim.experiments import reproduce, setup_table

SENSITIVITY_CHARTS = {
    "sail": "sail-sensitivity.png",
    "waferllm": "wafer-gemv-speedup.png",
    "instinfer": "instinfer-flash.png",
    "mllm-npu": "npu-prefill.png",
    "step3": "step3-cost.png",
    "lamina": "lamina-throughput.png",
    "hnlpu": "hnlpu-sensitivity.png",
    "flightllm": "flightllm-sensitivity.png",
}
"""Each experiment's chart of how its headlines move with its assumptions (written by its section)."""


def reproductions_section(out: Path, quick: bool) -> SectionOutput:
    """The paper experiments (``hwsim reproduce``) as a verdict table, linked to their charts."""
    frame = reproduce()
    files = write_csvs(out, {"reproduce.csv": frame})
    lines = [
        "## Papers reproduced (`hwsim reproduce`)",
        "",
        "Each headline with the paper's value, hwsim's, their ratio and the verdict against the tolerance "
        "(pass within 1/1.33 to 1.33x), and for a miss its cause.",
        "",
        "| experiment | metric | condition | paper | hwsim | ratio | verdict | cause of a miss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| [{r.experiment}]({SENSITIVITY_CHARTS.get(r.experiment, 'reproduce.csv')}) | {r.metric} | {r.condition} | "
        f"{r.paper_value:.4g} | {r.hwsim_value:.4g} | {r.ratio:.2f} | {r.verdict} | {r.cause} |"
        for r in frame.itertuples()
    ]
    setups = setup_table()
    files += write_csvs(out, {"paper-setups.csv": setups})
    lines += [
        "",
        "The papers' setups beside hwsim's (`paper-setups.csv`; sources in `docs/paper-setups.md`):",
        "",
        "| experiment | setting | paper | hwsim | source |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.experiment} | {r.setting} | {r.paper} | {r.hwsim} | {r.source} |" for r in setups.itertuples()
    ]
    lines += [""]
    return lines, files
