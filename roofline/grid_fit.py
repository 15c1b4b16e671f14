"""A calibration by grid search: each candidate value's predictions of the measured rows
side by side, the value of least mean squared log error chosen, and each row's error when its
own source is left out of that choice (the leave-one-source-out error a fit reports)."""

from __future__ import annotations

from typing import Any

import numpy as np


def best_index(
    preds: np.ndarray, measured: np.ndarray, mask: np.ndarray, weight: np.ndarray | None = None
) -> int:
    """The grid index (first axis of ``preds``, shape (points, rows)) of the least mean squared log
    error over the rows in ``mask``, each row counted ``weight`` times (default once); rows a point
    did not price (NaN) are left out of its mean."""
    err = np.log(preds[:, mask] / measured[mask]) ** 2
    w = np.broadcast_to(np.ones(mask.sum()) if weight is None else np.asarray(weight, float)[mask], err.shape)
    w = np.where(np.isfinite(err), w, 0.0)
    return int(np.nanargmin(np.nansum(err * w, axis=1) / np.where(w.sum(axis=1) > 0, w.sum(axis=1), np.nan)))


def source_weights(sources: Any) -> np.ndarray:
    """A weight per row that gives each source's rows the same total (1 / the source's row count)."""
    sources = np.asarray(sources)
    _, inverse, counts = np.unique(sources, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def held_out_errors(
    preds: np.ndarray, measured: np.ndarray, sources: Any, weight: np.ndarray | None = None
) -> np.ndarray:
    """Each row's absolute relative error at the grid point chosen on the other sources' rows (each
    row counted ``weight`` times in that choice)."""
    sources = np.asarray(sources)
    out = np.full(len(measured), np.nan)
    for source in np.unique(sources):
        held = sources == source
        j = best_index(preds, measured, ~held, weight)
        out[held] = np.abs(preds[j, held] / measured[held] - 1.0)
    return out
