"""Report sections of the analytic path: the catalog tables, an op roofline of one decode step
and one prefill, throughput, tokens per $ and per joule against batch, and the estimates table.

Every number comes from ``roofline.estimate`` over shipped presets and catalog devices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwmodels.device_spec import catalog, device_names
from report.tables import SectionOutput, md_table, write_csvs
from report.workload import INPUT_LEN, OUTPUT_LEN, PRECISION
from roofline import plots
from roofline.economics import bases_of, basis_label
from roofline.estimate import compute_device, estimate, memory_per_device
from roofline.roofline import op_roofline
from workloads.graph import build_ops
from workloads.model_spec import load_model, preset_index
from workloads.quant import Quant

REPORT_MODELS = ("llama-3.1-8b", "llama-2-7b", "qwen2.5-7b", "mixtral-8x7b", "llama-3.1-70b")
FOCUS_MODEL, FOCUS_DEVICE = "llama-3.1-8b", "h100-sxm"
FOCUS_DEVICES = ("v100-sxm2-32gb", "a100-sxm-80gb", "h100-sxm", "h200", "b200", "l40s", "rtx-4090")
BATCHES = 2 ** np.arange(0, 10)
SUMMARY_COLUMNS = (
    "model",
    "device",
    "tp",
    "batch",
    "ttft_ms",
    "tpot_ms",
    "decode_tokens_per_s",
    "tokens_per_j",
    "usd_per_million_tokens",
    "bound",
    "fits",
)


def report_devices(quick: bool) -> list[str]:
    """The GPUs of the estimates table: three in quick mode, every catalog GPU otherwise."""
    return list(FOCUS_DEVICES[:3]) if quick else device_names("gpu")


def smallest_tp(model: str, device: str, precision: str = PRECISION, batch: int = 1) -> int:
    """The smallest power-of-two TP (up to 8) at which ``model`` fits on ``device``; 0 if none."""
    spec, dev, quant = load_model(model), compute_device(device), Quant.from_name(precision)
    degrees = (1, 2, 4, 8) if {"nvlink", "pcie"} & set(dev.links) else (1,)
    for tp in degrees:
        if spec.n_heads % tp:
            break
        if memory_per_device(spec, quant, batch, INPUT_LEN, OUTPUT_LEN, tp=tp) <= dev.memory.capacity_bytes:
            return tp
    return 0


def estimate_table(models: tuple[str, ...], devices: list[str], batches: np.ndarray) -> pd.DataFrame:
    """One vectorized ``estimate`` per (model, device) over all batches, with the TP that fits;
    a model that needs more than eight such devices is left out."""
    frames = []
    for model in models:
        for device in devices:
            tp = smallest_tp(model, device)
            if not tp:
                continue
            e = estimate(model, device, batch=batches, input_len=INPUT_LEN, output_len=OUTPUT_LEN, tp=tp)
            frame = e.to_frame()
            frame.insert(3, "tp", tp)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def catalog_tables(out: Path) -> list[Path]:
    """``devices.csv`` (every GPU with its numbers and sources) and ``models.csv`` (every preset)."""
    rows = []
    for name in device_names("gpu"):
        d = catalog()[name]
        rows.append(
            {
                "device": name,
                "display_name": d.display_name,
                "class": d.device_class,
                "fp16_tflops": d.peak("fp16") / 1e12,
                "memory_gb": d.memory.capacity_bytes / 1e9,
                "memory_bw_gbps": d.memory.bw_bytes_per_s / 1e9,
                "tdp_w": d.tdp_w,
                "price_usd": d.price_usd,
                "cloud_usd_per_hour": d.cloud_usd_per_hour,
                "price_bases": ", ".join(bases_of(d)),
                "compute_source": d.compute_source,
                "memory_source": d.memory.source,
                "price_source": d.price_source or d.cloud_source,
            }
        )
    models = []
    for name, entry in sorted(preset_index().items()):
        s = load_model(name)
        models.append(
            {
                "model": name,
                "params": s.n_params(),
                "published_params": float(entry["published_params"]),
                "active_params": s.n_active_params(),
                "attention": s.attention_kind,
                "source": entry["source"],
            }
        )
    return write_csvs(out, {"devices.csv": pd.DataFrame(rows), "models.csv": pd.DataFrame(models)})


def roofline_section(out: Path, quick: bool) -> SectionOutput:
    """The catalog tables, and the ops of a decode step and a prefill on the focus device."""
    files = catalog_tables(out)
    device, spec, quant = compute_device(FOCUS_DEVICE), load_model(FOCUS_MODEL), Quant.from_name(PRECISION)
    tables = {
        f"decode b={b}": op_roofline(
            build_ops(spec, quant, phase="decode", batch=b, context=INPUT_LEN), device
        )
        for b in (1, 64)
    }
    tables["prefill b=1"] = op_roofline(
        build_ops(spec, quant, phase="prefill", batch=1, tokens=INPUT_LEN), device
    )
    files += plots.roofline_chart(
        {"decode": tables["decode b=1"], "prefill": tables["prefill b=1"]},
        device,
        out / "roofline-h100",
        title=f"{FOCUS_MODEL} on {FOCUS_DEVICE}, {PRECISION}, context {INPUT_LEN}",
    )
    files += plots.breakdown_chart(
        tables, out / "breakdown-h100", title=f"{FOCUS_MODEL} on {FOCUS_DEVICE}: where the step time goes"
    )
    files += write_csvs(
        out, {f"ops-h100-{name.replace(' ', '-').replace('=', '')}.csv": t for name, t in tables.items()}
    )
    lines = [
        "## Roofline: the ops of a decode step and a prefill on an H100",
        "",
        "![roofline](roofline-h100.png)",
        "",
        "Decode GEMMs sit far left of the ridge (memory-bound); prefill GEMMs reach the compute roof. "
        "Marker size is the op's share of its step.",
        "",
        "![breakdown](breakdown-h100.png)",
        "",
    ]
    return lines, files


def efficiency_section(out: Path, quick: bool) -> SectionOutput:
    """Throughput, tokens per $ and per joule against batch, TPOT at batch 1, the estimates table."""
    models = REPORT_MODELS[:2] if quick else REPORT_MODELS
    est = estimate_table(models, report_devices(quick), BATCHES[:5] if quick else BATCHES)
    files = write_csvs(out, {"estimates.csv": est})
    focus = est.loc[(est["model"] == FOCUS_MODEL) & est["device"].isin(FOCUS_DEVICES)]
    workload = f"{FOCUS_MODEL}, {PRECISION}, input {INPUT_LEN}, output {OUTPUT_LEN}"
    files += plots.metric_vs_batch(
        focus, "decode_tokens_per_s", out / "throughput-vs-batch", "decode tokens/s", workload
    )
    priced = focus[np.isfinite(focus["tokens_per_usd"])]
    unpriced = sorted(set(focus["device"]) - set(priced["device"]))
    files += plots.metric_vs_batch(
        priced,
        "tokens_per_usd",
        out / "tokens-per-usd-vs-batch",
        "output tokens per $",
        f"{FOCUS_MODEL}: tokens per dollar\n{basis_label()}"
        + (f"; left out (no price on this basis): {', '.join(unpriced)}" if unpriced else ""),
    )
    files += plots.metric_vs_batch(
        focus,
        "tokens_per_j",
        out / "tokens-per-joule-vs-batch",
        "output tokens per J",
        f"{FOCUS_MODEL}: tokens per joule",
    )
    b1 = est.loc[est["batch"] == 1].assign(
        tp_note=lambda f: np.where(f["tp"] > 1, "TP" + f["tp"].astype(str), "")
    )
    files += plots.heatmap(
        b1,
        "tpot_s",
        out / "tpot-batch1",
        "TPOT (ms)",
        "time per output token at batch 1, ms, on the fewest devices that hold the model "
        "(TPn: n-way tensor parallel; blank: needs more than 8)",
        scale=1e3,
        note="tp_note",
    )
    summary = est.loc[est["batch"].isin([1, 64])].assign(
        ttft_ms=lambda f: f["ttft_s"] * 1e3, tpot_ms=lambda f: f["tpot_s"] * 1e3
    )[list(SUMMARY_COLUMNS)]
    lines = [
        "## Throughput, tokens per dollar and per joule against batch",
        "",
        "![throughput](throughput-vs-batch.png)",
        "",
        "![tokens per dollar](tokens-per-usd-vs-batch.png)",
        "",
        "![tokens per joule](tokens-per-joule-vs-batch.png)",
        "",
        "![tpot](tpot-batch1.png)",
        "",
        "## Estimates at batch 1 and 64 (all rows in `estimates.csv`)",
        "",
        md_table(summary),
        "",
    ]
    return lines, files
