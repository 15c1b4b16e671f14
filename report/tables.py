"""Tables of the report: CSV files beside the page, and the markdown tables in it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SectionOutput = tuple[list[str], list[Path]]
"""What a section returns: its markdown lines and the files it wrote."""


def write_csvs(out: Path, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """Each frame to ``out/<name>`` without its index; the paths written."""
    paths = []
    for name, frame in frames.items():
        frame.to_csv(out / name, index=False)
        paths.append(out / name)
    return paths


def md_table(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown pipe table, floats to four significant digits."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; ``-`` for a missing value."""
    return "-" if x is None or x != x else f"{100 * x:.1f}%"
