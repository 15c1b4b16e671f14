"""A one-term calibration by grid search: each candidate value's predictions of the measured rows
side by side, the value of least mean squared log error chosen, and each row's error when its
own source is left out of that choice (the leave-one-source-out error a fit reports)."""

from __future__ import annotations

from typing import Any

import numpy as np


def best_index(preds: np.ndarray, measured: np.ndarray, mask: np.ndarray) -> int:
    """The grid index (first axis of ``preds``, shape (points, rows)) of the least mean squared log
    error over the rows in ``mask``; rows a point did not price (NaN) are left out of its mean."""
    return int(np.nanargmin(np.nanmean(np.log(preds[:, mask] / measured[mask]) ** 2, axis=1)))


def held_out_errors(preds: np.ndarray, measured: np.ndarray, sources: Any) -> np.ndarray:
    """Each row's absolute relative error at the grid point chosen on the other sources' rows."""
    sources = np.asarray(sources)
    out = np.full(len(measured), np.nan)
    for source in np.unique(sources):
        held = sources == source
        j = best_index(preds, measured, ~held)
        out[held] = np.abs(preds[j, held] / measured[held] - 1.0)
    return out
