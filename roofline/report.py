"""``hwsim report``: plots, CSV tables and an ``index.md`` that shows them, into ``results/``.

Every number comes from the analytic path (``roofline.estimate``) over shipped presets
and catalog devices; the assumptions (calibration parameters, economics defaults) are
written beside the results with their sources.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from hwmodels.calibration.params import fitted, fitted_on, params_for
from hwmodels.device_spec import catalog, device_names
from hwmodels.placement import Placement
from roofline import plots
from roofline.economics import bases_of, basis_label, economics_defaults
from roofline.estimate import compute_device, estimate, memory_per_device
from roofline.intervals import recorded_coverage
from roofline.roofline import op_roofline
from roofline.validation import load_measured, summarize, validate_frame
from workloads.graph import build_ops
from workloads.model_spec import load_model, preset_index
from workloads.quant import Quant

REPORT_MODELS = ("llama-3.1-8b", "llama-2-7b", "qwen2.5-7b", "mixtral-8x7b", "llama-3.1-70b")
FOCUS_MODEL = "llama-3.1-8b"
FOCUS_DEVICES = ("v100-sxm2-32gb", "a100-sxm-80gb", "h100-sxm", "h200", "b200", "l40s", "rtx-4090")
BATCHES = 2 ** np.arange(0, 10)
INPUT_LEN, OUTPUT_LEN = 1024, 256


def smallest_tp(model: str, device: str, precision: str = "fp16", batch: int = 1) -> int:
    """The smallest power-of-two TP (up to 8) at which ``model`` fits on ``device``; 0 if none."""
    spec, dev, quant = load_model(model), compute_device(device), Quant.from_name(precision)
    degrees = (1, 2, 4, 8) if {"nvlink", "pcie"} & set(dev.links) else (1,)
    for tp in degrees:
        if spec.n_heads % tp:
            break
        if memory_per_device(spec, quant, batch, INPUT_LEN, OUTPUT_LEN, tp=tp) <= dev.memory.capacity_bytes:
            return tp
    return 0


def _git_hash() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_report(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    sections: tuple[Callable[[Path], tuple[list[str], list[Path]]], ...] = (),
) -> list[Path]:
    """Write the report into ``out``; return the paths written.

    ``sections`` are made by higher layers (the event path, the paper experiments): each
    takes the folder and returns markdown lines and the files it wrote.
    """
    from rich.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gpus = device_names("gpu")
    devices = list(FOCUS_DEVICES[:3]) if quick else gpus
    models = REPORT_MODELS[:2] if quick else REPORT_MODELS
    batches = BATCHES[:5] if quick else BATCHES
    written: list[Path] = []
    steps = [
        "tables",
        "estimates",
        "roofline",
        "breakdown",
        "scaling",
        "efficiency",
        "validation",
        *(f.__name__ for f in sections),
        "index",
    ]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("hwsim report", total=len(steps))

        def done(name: str) -> None:
            bar.update(task, advance=1, description=f"hwsim report: {name}")

        written += _catalog_tables(out, gpus)
        done("tables")
        est = _estimate_table(models, devices, batches)
        written += write_csvs(out, {"estimates.csv": est})
        done("estimates")
        focus_dev = compute_device("h100-sxm")
        spec = load_model(FOCUS_MODEL)
        quant = Quant.from_name("fp16")
        tables = {}
        for b in (1, 64):
            tables[f"decode b={b}"] = op_roofline(
                build_ops(spec, quant, phase="decode", batch=b, context=INPUT_LEN), focus_dev
            )
        tables["prefill b=1"] = op_roofline(
            build_ops(spec, quant, phase="prefill", batch=1, tokens=INPUT_LEN), focus_dev
        )
        written += plots.roofline_chart(
            {"decode": tables["decode b=1"], "prefill": tables["prefill b=1"]},
            focus_dev,
            out / "roofline-h100",
            title=f"{FOCUS_MODEL} on h100-sxm, fp16, context {INPUT_LEN}",
        )
        done("roofline")
        written += plots.breakdown_chart(
            tables, out / "breakdown-h100", title=f"{FOCUS_MODEL} on h100-sxm: where the step time goes"
        )
        written += write_csvs(
            out, {f"ops-h100-{name.replace(' ', '-').replace('=', '')}.csv": t for name, t in tables.items()}
        )
        done("breakdown")
        focus = est.loc[(est["model"] == FOCUS_MODEL) & est["device"].isin(FOCUS_DEVICES)]
        written += plots.metric_vs_batch(
            focus,
            "decode_tokens_per_s",
            out / "throughput-vs-batch",
            "decode tokens/s",
            f"{FOCUS_MODEL}, fp16, input {INPUT_LEN}, output {OUTPUT_LEN}",
        )
        done("scaling")
        priced = focus[np.isfinite(focus["tokens_per_usd"])]
        unpriced = sorted(set(focus["device"]) - set(priced["device"]))
        written += plots.metric_vs_batch(
            priced,
            "tokens_per_usd",
            out / "tokens-per-usd-vs-batch",
            "output tokens per $",
            f"{FOCUS_MODEL}: tokens per dollar\n{basis_label()}"
            + (f"; left out (no price on this basis): {', '.join(unpriced)}" if unpriced else ""),
        )
        written += plots.metric_vs_batch(
            focus,
            "tokens_per_j",
            out / "tokens-per-joule-vs-batch",
            "output tokens per J",
            f"{FOCUS_MODEL}: tokens per joule",
        )
        b1 = est.loc[est["batch"] == 1].assign(
            tp_note=lambda f: np.where(f["tp"] > 1, "TP" + f["tp"].astype(str), "")
        )
        written += plots.heatmap(
            b1,
            "tpot_s",
            out / "tpot-batch1",
            "TPOT (ms)",
            "time per output token at batch 1, ms, on the fewest devices that hold the model "
            "(TPn: n-way tensor parallel; blank: needs more than 8)",
            scale=1e3,
            note="tp_note",
        )
        done("efficiency")
        points = validate_frame(load_measured())
        written += write_csvs(out, {"validation.csv": points})
        written += plots.predicted_vs_measured(points, out / "predicted-vs-measured")
        extra, curve_files = _kernel_curves_section(out)
        written += curve_files
        done("validation")
        for section in sections:
            lines, files = section(out)
            extra += lines
            written += files
            done(section.__name__)
        written += _index(out, est, devices, quick, points, extra)
        done("index")
    return written


def write_csvs(out: Path, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """Each frame to ``out/<name>`` without its index; the paths written."""
    paths = []
    for name, frame in frames.items():
        frame.to_csv(out / name, index=False)
        paths.append(out / name)
    return paths


def _estimate_table(models: tuple[str, ...], devices: list[str], batches: np.ndarray) -> pd.DataFrame:
    """One vectorized ``estimate`` per (model, device) over all batches, with the TP that fits."""
    frames = []
    for model in models:
        for device in devices:
            tp = smallest_tp(model, device)
            if not tp:
                continue  # does not fit on up to 8 such devices: left out of the table
            e = estimate(model, device, batch=batches, input_len=INPUT_LEN, output_len=OUTPUT_LEN, tp=tp)
            frame = e.to_frame()
            frame.insert(3, "tp", tp)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _catalog_tables(out: Path, gpus: list[str]) -> list[Path]:
    rows = []
    for name in gpus:
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


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def _validation_section(points: pd.DataFrame) -> list[str]:
    """The validation summary: overall, per class (in-sample on all covered rows here, and
    the leave-one-source-out figure of the fit), the rows furthest off, what is not covered."""
    report = summarize(points)
    rows = []
    loso = {
        **fitted("gpu").get("errors", {}).get("by_class", {}),
        **fitted("cpu").get("errors", {}).get("by_class", {}),
    }
    for cls, v in report["by_class"].items():
        arch_cls = next((k for k in loso if k.endswith(f"/{cls}")), None)
        lo = loso.get(arch_cls, {}).get("leave_one_source_out", {}) if arch_cls else {}
        rows.append(
            {
                "device class": cls,
                "rows": v["rows"],
                "covered": v["covered"],
                "median APE": _pct(v["median_ape"]),
                "p90 APE": _pct(v["p90_ape"]),
                "within 25%": _pct(v["within_25pct"]),
                "LOSO median (fit rows)": _pct(lo.get("median_ape")),
                "LOSO p90 (fit rows)": _pct(lo.get("p90_ape")),
            }
        )
    cov = points.loc[points["covered"]].copy()
    cov["ratio"] = cov["predicted"] / cov["measured"]
    worst = cov.reindex(cov["ape"].sort_values(ascending=False).index).head(12)
    worst = worst[["id", "hardware", "model", "metric", "measured", "predicted", "ratio"]]
    reasons = (
        points.loc[~points["covered"], "reason"]
        .str.replace(r"'[^']*'", "'…'", regex=True)
        .str.replace(r"\d+(\.\d+)?", "N", regex=True)
        .value_counts()
    )
    g = fitted("gpu").get("errors", {})
    ranges = recorded_coverage()
    return [
        "## Validation: predicted against measured",
        "",
        f"{report['rows']} measured rows (`hwmodels/validation/measured.csv`, each with its source), {report['covered']} "
        f"covered: median APE {_pct(report['median_ape'])}, p90 {_pct(report['p90_ape'])}, within 10% "
        f"{_pct(report['within_10pct'])}, within 25% {_pct(report['within_25pct'])}. The honest figure is the "
        "leave-one-source-out error of the calibration (refit without a source, predict it): on GPU fit rows, "
        f"median {_pct(g.get('leave_one_source_out', {}).get('median_ape'))}, p90 "
        f"{_pct(g.get('leave_one_source_out', {}).get('p90_ape'))} (in-sample "
        f"{_pct(g.get('in_sample', {}).get('median_ape'))} / {_pct(g.get('in_sample', {}).get('p90_ape'))}). "
        + (
            "Every prediction carries a 10th-90th percentile range from those leave-one-source-out errors (the "
            f"bars); with each source held out from the ranges' fit too, {_pct(ranges['inside'])} of "
            f"{ranges['with_range']} fit rows fall inside theirs (median width high/low {ranges['median_width']:.2f}x)."
            if ranges
            else "No ranges yet: run `hwsim calibrate`."
        ),
        "",
        "![predicted vs measured](predicted-vs-measured.png)",
        "",
        _md_table(pd.DataFrame(rows)),
        "",
        *_family_lines(g),
        "Rows furthest off (all rows with their errors in `validation.csv`):",
        "",
        _md_table(worst),
        "",
        "Not covered, by reason:",
        "",
        "\n".join(f"- {n} rows: {r}" for r, n in reasons.items()),
        "",
    ]


def _family_lines(errors: dict) -> list[str]:
    """The leave-one-family-out error of the GPU fit, overall and per device family."""
    lofo = errors.get("leave_one_family_out")
    if not lofo:
        return ["No leave-one-family-out figures yet: run `hwsim calibrate`.", ""]
    strict = errors.get("leave_one_family_out_without_kernel_curves", {}).get("by_family", {})
    table = pd.DataFrame(
        [
            {
                "family": family,
                "rows": v["covered"],
                "LOFO median": _pct(v["median_ape"]),
                "LOFO p90": _pct(v["p90_ape"]),
                "without its kernel curves, median": _pct(strict.get(family, {}).get("median_ape")),
            }
            for family, v in lofo["by_family"].items()
        ]
    )
    return [
        "Leave one device family out (`hwmodels/validation/families.yaml`: refit the calibration without every "
        "row of a GPU family, predict them; the honest figure for a GPU the fit has never seen): on GPU fit rows, "
        f"median {_pct(lofo['median_ape'])}, p90 {_pct(lofo['p90_ape'])}. The last column also prices the family "
        "without its measured kernel curves, as a GPU nobody has profiled.",
        "",
        _md_table(table),
        "",
    ]


def _kernel_curves_section(out: Path) -> tuple[list[str], list[Path]]:
    """Each fitted kernel-efficiency curve against its measured kernels, with its errors."""
    from hwmodels.calibration.curves import fitted_curves
    from roofline.kernel_fit import curve_frames

    record = fitted_curves()
    if not record:
        return [
            "## Kernel-efficiency curves",
            "",
            "Not fitted yet: run `hwsim calibrate --part kernels`.",
            "",
        ], []
    errors, files = record["errors"], []
    lines = [
        "## Kernel-efficiency curves",
        "",
        "On the GPU architectures with public per-kernel measurements (`hwmodels/calibration/kernels/README.md`), "
        "a GEMM of m token rows reaches `e_max * m / (m + m_half)` of its format's dense peak, streams its bytes at "
        "`stream_efficiency` and costs `latency_us` besides; prefill attention reaches `e_max * keys / (keys + "
        "keys_half)`; an NVLink all-reduce moves its ring bytes at `bw_efficiency` of the link plus a base and a "
        f"per-step latency. Fitted on {record['fitted_at']} (`gpu_kernels_fitted.yaml`); checked on Vidur's FP16 "
        f"projections, a source never fitted: median error {_pct(errors['vidur_check']['median_ape'])}. On a GPU "
        "without curves, FP8 and FP4 GEMMs run at most the measured speed-up of those formats over BF16 ("
        + ", ".join(f"{f} {v:.2f}x" for f, v in record.get("format_speedup", {}).items())
        + ", medians over the architectures) where the datasheet promises more.",
        "",
    ]
    rows = []
    for kind in ("gemm", "attention_prefill"):
        for arch, formats in record[kind].items():
            for fmt, values in formats.items():
                err = errors[kind][arch][fmt]
                rows.append(
                    {
                        "kernel": kind,
                        "architecture": arch,
                        "format": fmt,
                        "values": ", ".join(f"{k} {v:g}" for k, v in values.items()),
                        "median error": _pct(err["in_sample"]["median_ape"]),
                        "held-out device": _pct(err.get("held_out_device", {}).get("median_ape")),
                    }
                )
    for link, values in record["allreduce"].items():
        rows.append(
            {
                "kernel": "allreduce",
                "architecture": link,
                "format": "bf16",
                "values": ", ".join(f"{k} {v:g}" for k, v in values.items()),
                "median error": _pct(errors["allreduce"][link]["in_sample"]["median_ape"]),
                "held-out device": "-",
            }
        )
    lines += [_md_table(pd.DataFrame(rows)), ""]
    labels = {
        "gemm": ("token rows m", "fraction of dense peak"),
        "attention_prefill": ("mean keys per query", "fraction of dense peak"),
        "allreduce": ("message bytes", "latency (us)"),
    }
    for (kind, group), frame in curve_frames().items():
        name = f"kernel-curve-{kind}-{group}"
        files += plots.kernel_curve_chart(
            frame, out / name, *labels[kind], title=f"{kind} on {group}", log_y=kind == "allreduce"
        )
        lines += [f"![{kind} {group}]({name}.png)", ""]
    return lines, files


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


def _index(
    out: Path, est: pd.DataFrame, devices: list[str], quick: bool, points: pd.DataFrame, extra: list[str]
) -> list[Path]:
    gpu_params = params_for("gpu", "datacenter-gpu")
    econ = economics_defaults()
    pick = est.loc[est["batch"].isin([1, 64])]
    summary = pick[
        [
            "model",
            "device",
            "tp",
            "batch",
            "ttft_s",
            "tpot_s",
            "decode_tokens_per_s",
            "tokens_per_j",
            "usd_per_million_tokens",
            "bound",
            "fits",
        ]
    ].copy()
    summary["ttft_ms"] = summary.pop("ttft_s") * 1e3
    summary["tpot_ms"] = summary.pop("tpot_s") * 1e3
    summary = summary[
        [
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
        ]
    ]
    lines = [
        "# hwsim report",
        "",
        f"hwsim {_version()} (git {_git_hash()}){' — quick mode' if quick else ''}. Analytic path; every device number "
        "comes from `hwmodels/catalog` with its source (`devices.csv`), every model from `workloads/presets` "
        "(`models.csv`). Output tokens count; prompt of "
        f"{INPUT_LEN} tokens, {OUTPUT_LEN} generated, fp16.",
        "",
        "## Roofline: the ops of a decode step and a prefill on an H100",
        "",
        "![roofline](roofline-h100.png)",
        "",
        "Decode GEMMs sit far left of the ridge (memory-bound); prefill GEMMs reach the compute roof. "
        "Marker size is the op's share of its step.",
        "",
        "![breakdown](breakdown-h100.png)",
        "",
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
        _md_table(summary),
        "",
        *_validation_section(points),
        *extra,
        "## Assumptions",
        "",
        f"GPU efficiency parameters of the datacenter class ({fitted_on('gpu')}):",
        "",
        "\n".join(f"- `{k}` = {p.value:g}: {p.source}" for k, p in gpu_params.items()),
        "",
        f"Economics: every $ figure of this report is on one basis ({basis_label()}); a device without a "
        "purchase price is left out of $ comparisons, never priced by the cloud hour instead (`devices.csv`, "
        "column `price_bases`, lists the bases each device has):",
        "",
        "\n".join(f"- `{k}` = {v:g}: {src}" for k, (v, src) in econ.items()),
        "",
    ]
    path = out / "index.md"
    path.write_text("\n".join(lines))
    config = out / "report_config.json"
    config.write_text(
        json.dumps(
            {
                "hwsim_version": _version(),
                "git": _git_hash(),
                "quick": quick,
                "devices": devices,
                "input_len": INPUT_LEN,
                "output_len": OUTPUT_LEN,
                "placement": str(Placement()),
            },
            indent=2,
        )
    )
    return [path, config]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwsim")
    except PackageNotFoundError:
        return "dev"
