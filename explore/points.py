"""Chunks of sweep points and how each is priced.

A chunk is one design group (model, device, precision, framework, parallelism, price basis)
with aligned 1-D arrays of batch, prompt and output lengths: the analytic path prices the
whole chunk in one vectorized ``roofline.estimate`` call; a serving chunk simulates each of
its points on the event engine. A point that cannot be priced (a TP degree that does not
divide the heads, a precision the device lacks) is still a row: its metrics are empty and
``error`` says why, so a table always has the grid's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hwmodels.device_spec import load_device
from hwmodels.precision import check_math_units
from roofline.economics import Economics
from roofline.estimate import estimate
from sim.system import load_system
from workloads.errors import ConfigError, HwsimError
from workloads.model_spec import load_model
from workloads.quant import Quant

METRICS = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "energy_j_per_token",
    "tokens_per_j",
    "usd_per_million_tokens",
    "tokens_per_usd",
    "memory_bytes",
)
"""The metric columns of an analytic sweep row (besides ``fits``, ``shortfall_bytes``, ``bound``)."""


@dataclass(frozen=True)
class Chunk:
    """Points that share a design: ``design`` plus aligned per-point values (``axes``)."""

    index: int
    design: dict[str, Any]
    axes: dict[str, np.ndarray]
    serving: dict[str, Any] | None = None

    @property
    def n(self) -> int:
        return len(next(iter(self.axes.values())))

    @property
    def name(self) -> str:
        return f"part-{self.index:07d}"


def _frame(chunk: Chunk, columns: dict[str, Any]) -> pd.DataFrame:
    """The chunk's rows: its design (one value each, repeated over the rows), its axes and
    ``columns`` (arrays of one value per point), built in one piece."""
    n = chunk.n
    design = {
        k: np.full(n, v, dtype=object if isinstance(v, str) or v is None else None)
        for k, v in chunk.design.items()
    }
    return pd.DataFrame({**design, **{k: np.asarray(v) for k, v in chunk.axes.items()}, **columns})


def _unpriced(n: int, error: str) -> dict[str, np.ndarray]:
    """The metric columns of ``n`` points that cannot be priced, with the reason."""
    return {
        **{m: np.full(n, np.nan) for m in METRICS},
        "bound": np.full(n, "", dtype=object),
        "fits": np.zeros(n, dtype=bool),
        "shortfall_bytes": np.full(n, np.nan),
        "error": np.full(n, error, dtype=object),
    }


def price_analytic(chunk: Chunk) -> pd.DataFrame:
    """Every point of an analytic chunk, in one vectorized estimate."""
    d = chunk.design
    try:
        if d.get("system"):
            system = load_system(d["system"])
            if system.offloaded:
                raise ConfigError(
                    f"system {d['system']!r} offloads weights or KV cache: the analytic path does not price "
                    "offload; run it with hwsim simulate"
                )
            if system.tp > 1 and d["link"] is None:
                raise ConfigError(
                    f"system {d['system']!r}: its TP link is none of {d['device']}'s own links; "
                    "run it with hwsim simulate"
                )
        check_math_units(Quant.from_name(d["precision"]), load_device(d["device"]))
        est = estimate(
            d["model"],
            d["device"],
            batch=chunk.axes["batch"],
            input_len=chunk.axes["input_len"],
            output_len=chunk.axes["output_len"],
            n_devices=d["n_devices"],
            tp=d["tp"],
            pp=d["pp"],
            ep=d["ep"],
            precision=d["precision"],
            framework=d["framework"],
            link=d.get("link"),
            economics=Economics(basis=d["price_basis"]),
        )
    except HwsimError as exc:
        return _frame(chunk, _unpriced(chunk.n, str(exc).splitlines()[0]))
    cols = {m: np.asarray(getattr(est, m), dtype=float).reshape(-1) for m in METRICS}
    cols["bound"] = np.asarray(est.bound).reshape(-1).astype(object)
    cols["fits"] = np.asarray(est.fits).reshape(-1).astype(bool)
    cols["shortfall_bytes"] = np.maximum(
        cols["memory_bytes"] - load_device(d["device"]).memory.capacity_bytes, 0.0
    )
    cols["error"] = np.full(chunk.n, "", dtype=object)
    max_context = load_model(d["model"]).max_context
    if max_context is not None:  # an engine refuses requests longer than the model's context
        over = (np.asarray(chunk.axes["input_len"]) + np.asarray(chunk.axes["output_len"])) > max_context
        if over.any():
            refused = _unpriced(
                int(over.sum()),
                f"input_len + output_len exceeds the model's max context of {max_context:,} tokens",
            )
            for k, v in refused.items():
                if k != "shortfall_bytes":
                    cols[k][over] = v
    return _frame(chunk, cols)


def price_serving(chunk: Chunk) -> pd.DataFrame:
    """Each point of a serving chunk simulated on the event engine (its own seeded trace)."""
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    d, s = chunk.design, chunk.serving or {}
    rows = []
    for i in range(chunk.n):
        row = {k: v[i] for k, v in chunk.axes.items()}
        point = {**d, **row}
        try:
            trace = make_trace(
                n_requests=int(point.get("num_requests", 200)),
                seed=int(s.get("seed", 0)),
                rate=point.get("rate"),
                concurrency=point.get("concurrency"),
                input_len=None if point.get("lengths") else int(point["input_len"]),
                output_len=None if point.get("lengths") else int(point["output_len"]),
                lengths=point.get("lengths"),
            )
            result = serve(
                d["model"],
                d["device"],
                trace,
                tp=d["tp"],
                pp=d["pp"],
                ep=d["ep"],
                n_devices=d["n_devices"],
                precision=d["precision"],
                framework=d["framework"] or "vllm",
                slo_ttft_s=point.get("slo_ttft"),
                slo_tpot_s=point.get("slo_tpot"),
                economics=Economics(basis=d["price_basis"]),
                record=False,
            )
            # the design's own columns (n_devices, price_basis) are written once, from the design
            metrics = {k: v for k, v in result.metrics.items() if np.isscalar(v) and k not in d}
            rows.append({**row, **metrics, "error": ""})
        except HwsimError as exc:
            rows.append({**row, "error": str(exc).splitlines()[0]})
    frame = pd.DataFrame(rows)
    for k, v in d.items():
        frame.insert(0, k, [v] * len(frame))
    return frame


def price(chunk: Chunk) -> pd.DataFrame:
    """A chunk's rows (analytic or event path)."""
    return price_serving(chunk) if chunk.serving is not None else price_analytic(chunk)
