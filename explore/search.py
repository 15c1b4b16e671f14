"""The design search behind ``hwsim best`` and ``hwsim pareto``: devices, device counts,
tensor parallelism, precision and batch for one model and workload, priced analytically.

Every design is estimated; the ones that fit in memory, meet the latency limits and have a
price on the basis are kept, the others counted by reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explore.chunks import chunks
from explore.points import price
from explore.spec import parse_spec
from hwmodels.device_spec import load_device
from roofline.pareto import OBJECTIVES
from workloads.errors import ConfigError, positive_number

DEFAULT_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
DEFAULT_TP = [1, 2, 4, 8]
DEFAULT_PRECISIONS = ["fp16", "fp8", "int8", "int4"]
DESIGN_LABEL = ("device", "n_devices", "precision", "batch")
"""The columns that name a design in tables and on plots."""


@dataclass(frozen=True)
class SearchResult:
    """Every priced design, the ones kept, and why the others were dropped (row counts)."""

    all: pd.DataFrame
    kept: pd.DataFrame
    dropped: dict[str, int]


def search(
    model: str,
    devices: list[str] | None = None,
    *,
    tp: list[int] | None = None,
    precisions: list[str] | None = None,
    batches: list[int] | None = None,
    input_len: int = 1024,
    output_len: int = 128,
    framework: str | None = None,
    price_basis: str = "tco",
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    need_price: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Price the design grid and keep the feasible designs (with a price on the basis when
    ``need_price``: a $ objective never mixes in a design it cannot price); ``progress`` is
    called with (designs priced, designs in all) after each chunk."""
    for field, limit in (("slo_ttft_s", slo_ttft_s), ("slo_tpot_s", slo_tpot_s)):
        if limit is not None:
            positive_number(limit, field, "seconds")
    spec = parse_spec(
        {
            "models": [model],
            "devices": _axis(devices, "devices", ["all"]),
            "tp": _axis(tp, "tp", DEFAULT_TP),
            "precision": _axis(precisions, "precisions", DEFAULT_PRECISIONS),
            "framework": [framework],
            "batch": _axis(batches, "batches", DEFAULT_BATCHES),
            "input_len": [input_len],
            "output_len": [output_len],
            "price_basis": [price_basis],
        },
        "design search",
    )
    frames, done = [], 0
    for chunk in chunks(spec):
        frames.append(price(chunk))
        done += chunk.n
        if progress:
            progress(done, spec.size)
    frame = pd.concat(frames, ignore_index=True)
    reasons = {
        "cannot be priced (precision or parallelism the device or model does not take)": frame["error"] != "",
        "does not fit in memory": (frame["error"] == "") & ~frame["fits"],
    }
    if need_price:
        reasons[f"no price on the {price_basis} basis"] = frame["tokens_per_usd"].isna()
    if slo_ttft_s is not None:
        reasons[f"TTFT above {slo_ttft_s} s"] = frame["ttft_s"] > slo_ttft_s
    if slo_tpot_s is not None:
        reasons[f"TPOT above {slo_tpot_s} s"] = frame["tpot_s"] > slo_tpot_s
    keep = np.ones(len(frame), dtype=bool)
    dropped = {}
    for reason, mask in reasons.items():
        mask = mask.to_numpy() & keep
        dropped[reason] = int(mask.sum())
        keep &= ~mask
    return SearchResult(frame, frame.loc[keep].reset_index(drop=True), dropped)


def _axis(values: Any, field: str, default: list[Any]) -> list[Any]:
    """A search axis as a list: ``default`` for None, a single name or number as a list of one,
    a sequence or 1-D array as its items; an empty one is a one-line ``ConfigError``."""
    if values is None:
        return list(default)
    if isinstance(values, (str, bytes, int, float, np.generic)):
        return [values]
    if isinstance(values, np.ndarray):
        values = values.ravel().tolist() if values.ndim <= 1 else values
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{field} is {values!r}; expected a non-empty list (or None for the default)")
    return list(values)


def rank_best(result: SearchResult, objective: str, top: int, per_arch: bool = False) -> pd.DataFrame:
    """The ``top`` feasible designs by ``objective`` (the best batch of each device, device count
    and precision), best first, with an ``arch`` column; with ``per_arch``, the ``top`` of each
    architecture (GPU, CPU, wafer, NPU ...), architectures in the order of their best design."""
    ranked = result.kept.sort_values(objective, ascending=OBJECTIVES[objective] == "min", kind="stable")
    ranked = ranked.drop_duplicates(subset=["device", "n_devices", "precision"]).copy()
    ranked.insert(2, "arch", [load_device(d).arch for d in ranked["device"]])
    ranked = ranked.groupby("arch", sort=False).head(top) if per_arch else ranked.head(top)
    return ranked.reset_index(drop=True)
