"""Report section of the event engine: tensor-parallel scaling over NVLink and PCIe, and a
two-node pipeline timeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from report.tables import SectionOutput, write_csvs
from roofline import plots
from sim.simulate import simulate

TP_MODEL, TP_SYSTEMS = (
    "llama-2-70b",
    {"NVLink (8xh100-nvlink)": "8xh100-nvlink", "PCIe Gen5 (8xh100-pcie)": "8xh100-pcie"},
)


def tp_scaling_section(out: Path, quick: bool) -> SectionOutput:
    """Llama-2-70B decode on 1-8 H100s over NVLink and over PCIe, on the event engine."""
    rows = []
    for label, system in TP_SYSTEMS.items():
        for tp in (1, 2, 4, 8):
            r = simulate(system, TP_MODEL, batch=1, input_len=512, output_len=8, tp=tp)
            if not bool(np.all(r.estimate.fits)):
                continue  # the weights need more than tp devices' memory
            iv = r.timeline.intervals
            iv = iv.loc[iv["task"].str.startswith("decode")]  # the chart is about decode steps
            busy = (iv["end_s"] - iv["start_s"]).groupby(iv["task"].str.contains("allreduce")).sum()
            rows.append(
                {
                    "link": label,
                    "tp": tp,
                    "tpot_s": float(r.estimate.tpot_s),
                    "allreduce_share": float(busy.get(True, 0.0) / busy.sum()),
                }
            )
    frame = pd.DataFrame(rows)
    files = write_csvs(out, {"tp-scaling.csv": frame})
    files += plots.tp_scaling_chart(frame, out / "tp-scaling", f"{TP_MODEL} decode, batch 1 (event engine)")
    timeline = simulate("2x8xh100-ib", TP_MODEL, batch=8, input_len=256, output_len=3)
    files += plots.timeline_chart(
        timeline.timeline.intervals,
        out / "timeline-2-nodes",
        f"{TP_MODEL} on 2 nodes of 8 H100 (TP 8 x PP 2), batch 8 in 2 micro-batches",
    )
    lines = [
        "## Tensor and pipeline parallelism on the event engine",
        "",
        "![TP scaling](tp-scaling.png)",
        "",
        "Decode time falls with TP (from the fewest GPUs that hold the weights) while the all-reduce share of decode time grows; over PCIe the share is larger "
        "and the gain smaller. Below, two micro-batches pipelined over two nodes (stage and link resources):",
        "",
        "![timeline](timeline-2-nodes.png)",
        "",
    ]
    return lines, files
