"""Output helpers of the CLI: one JSON document with --json, a plain table otherwise."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click
import numpy as np


def emit(as_json: bool, payload: Any, text: str) -> None:
    click.echo(json.dumps(payload, indent=2, default=json_default) if as_json else text)


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain fixed-width table."""
    cells = [[fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=False))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


NONFINITE_WORD = re.compile(r"(?<![\w.])[-+]?(?:nan|inf|infinity)(?!\w)", re.IGNORECASE)
"""A word a reader takes for a non-finite number (``inf``, ``-inf``, ``NaN``, ``Infinity``)."""


def quoted_cells(text: str) -> str:
    """``text`` that quotes a measured row's cells (a row ``validate`` did not cover names its
    bad value) with a cell that reads as a non-finite number shown as ``<non-finite>``: hwsim's
    text output prints no NaN or inf, not even one echoed from its input."""
    return NONFINITE_WORD.sub("<non-finite>", str(text))


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def estimate_text(d: dict[str, Any]) -> str:
    """An estimate's fields one per line; a field with a range shows it beside the value."""
    lines, ranged = [], False
    for k, v in d.items():
        if k.endswith(("_low", "_high")) and k.rsplit("_", 1)[0] in d:
            continue
        low, high = d.get(f"{k}_low"), d.get(f"{k}_high")
        has_range = low is not None and high is not None
        ranged |= has_range
        lines.append(f"{k:>24}: {fmt(v)}" + (f"  [{fmt(low)} - {fmt(high)}]" if has_range else ""))
    note = ["[10th - 90th percentile range, from the leave-one-source-out error of measured rows]"]
    return "\n".join(lines + (note if ranged else []))


class LazyBar:
    """A progress bar on stderr (done of total, rate, time left) that appears only once a run
    has lasted a second; call it with ``(done, total)``."""

    def __init__(self, label: str, unit: str = "items") -> None:
        self.label, self.unit, self.t0 = label, unit, time.perf_counter()
        self.bar = None
        self.task = None

    def __enter__(self) -> LazyBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.perf_counter() - self.t0 < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, rate="")
        elapsed = time.perf_counter() - self.t0
        self.bar.update(self.task, completed=done, total=total, rate=f"{done / elapsed:.3g} {self.unit}/s")
