"""Output helpers of the CLI: one JSON document with --json, a plain table otherwise."""

from __future__ import annotations

import json
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


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
