"""A CSV the measurement scripts of ``benchmarks/`` write row by row as they measure."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class RowLog:
    """Appends each measured row (a dict; the first row's keys are the header) to a CSV, flushed
    at once, and prints it: a run cut short keeps every row it finished."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "w", newline="")  # noqa: SIM115 - closed by __exit__
        self._writer: csv.DictWriter | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        print(row, flush=True)

    def __enter__(self) -> RowLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
