"""Report sections of the validation: predicted against measured per device class, with the
leave-one-source-out and leave-one-family-out errors and the interval coverage, and the fitted
kernel-efficiency curves against their measured kernels."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from hwmodels.calibration.curves import fitted_curves
from hwmodels.calibration.params import fitted
from report.tables import SectionOutput, md_table, pct, write_csvs
from roofline import plots
from roofline.intervals import recorded_coverage
from roofline.kernel_fit import curve_frames
from roofline.source_agreement import source_pairs, spread_summary
from roofline.validation import load_measured, summarize, validate_frame


def validation_section(out: Path, quick: bool) -> SectionOutput:
    """Every measured row against its prediction (``validation.csv``, the chart), then the summary
    and how far sources that measured one configuration agree (``source-agreement.csv``)."""
    measured = load_measured()
    points = validate_frame(measured)
    pairs = source_pairs(measured.loc[measured["value"] > 0])
    files = write_csvs(out, {"validation.csv": points, "source-agreement.csv": pairs})
    files += plots.predicted_vs_measured(points, out / "predicted-vs-measured")
    return _summary_lines(points) + _agreement_lines(pairs, spread_summary(pairs)), files


def _agreement_lines(pairs: pd.DataFrame, summary: dict) -> list[str]:
    """The configurations two sources measured, their values and spread: a floor under any
    model's error on such rows."""
    if pairs.empty:
        return []
    shown = pairs.sort_values("spread", ascending=False).assign(
        source_a=lambda d: d["source_a"].str.slice(0, 60),
        source_b=lambda d: d["source_b"].str.slice(0, 60),
        spread=lambda d: d["spread"].map(pct),
    )
    return [
        "### How far the sources agree",
        "",
        f"{summary['pairs']} pairs of sources measured the same configuration, as hwsim resolves a row "
        f"({summary['configurations']} configurations): their values differ by a median "
        f"{pct(summary['median_spread'])} and a p90 {pct(summary['p90_spread'])} (larger over smaller), so one "
        f"prediction for both misses each by at least {pct(summary['median_floor'])} (median) and "
        f"{pct(summary['p90_floor'])} (p90). Versions, settings and machines the rows do not state make the "
        "difference (`source-agreement.csv`):",
        "",
        md_table(shown.drop(columns=["configuration"])),
        "",
    ]


def _summary_lines(points: pd.DataFrame) -> list[str]:
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
                "median APE": pct(v["median_ape"]),
                "p90 APE": pct(v["p90_ape"]),
                "within 25%": pct(v["within_25pct"]),
                "LOSO median (fit rows)": pct(lo.get("median_ape")),
                "LOSO p90 (fit rows)": pct(lo.get("p90_ape")),
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
        f"covered: median APE {pct(report['median_ape'])}, p90 {pct(report['p90_ape'])}, within 10% "
        f"{pct(report['within_10pct'])}, within 25% {pct(report['within_25pct'])}. The honest figure is the "
        "leave-one-source-out error of the calibration (refit without a source, predict it): on GPU fit rows, "
        f"median {pct(g.get('leave_one_source_out', {}).get('median_ape'))}, p90 "
        f"{pct(g.get('leave_one_source_out', {}).get('p90_ape'))} (in-sample "
        f"{pct(g.get('in_sample', {}).get('median_ape'))} / {pct(g.get('in_sample', {}).get('p90_ape'))}). "
        + (
            "Every prediction carries a 10th-90th percentile range from those leave-one-source-out errors (the "
            f"bars); with each source held out from the ranges' fit too, {pct(ranges['inside'])} of "
            f"{ranges['with_range']} fit rows fall inside theirs (median width high/low {ranges['median_width']:.2f}x)."
            if ranges
            else "No ranges yet: run `hwsim calibrate`."
        ),
        "",
        "![predicted vs measured](predicted-vs-measured.png)",
        "",
        md_table(pd.DataFrame(rows)),
        "",
        *_held_out_lines(fitted("validation").get("held_out") or {}),
        *_family_lines(g),
        "Rows furthest off (all rows with their errors in `validation.csv`):",
        "",
        md_table(worst),
        "",
        "Not covered, by reason:",
        "",
        "\n".join(f"- {n} rows: {r}" for r, n in reasons.items()),
        "",
    ]


def _held_out_lines(held: dict) -> list[str]:
    """The rows no fit has seen (sources added after the fit), as ``hwsim calibrate`` recorded them
    with the server rows simulated: their error, range coverage and error per device family."""
    if not held.get("covered"):
        return []
    ranges = held.get("ranges", {})
    families = ", ".join(
        f"{f} {pct(e['median_ape'])} ({e['covered']})" for f, e in sorted(held.get("by_family", {}).items())
    )
    return [
        f"Held-out rows (sources no fit has seen, server rows simulated; recorded by `hwsim calibrate`): "
        f"{held['covered']} of {held['rows']} covered, median APE {pct(held['median_ape'])}, p90 "
        f"{pct(held['p90_ape'])}"
        + (
            f", {pct(ranges['inside'])} of {ranges['with_range']} inside their 10th-90th percentile range "
            f"(median width {ranges['median_width']:.2f}x)"
            if ranges.get("with_range")
            else ""
        )
        + (f". By device family (median APE, rows): {families}." if families else "."),
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
                "LOFO median": pct(v["median_ape"]),
                "LOFO p90": pct(v["p90_ape"]),
                "without its kernel curves, median": pct(strict.get(family, {}).get("median_ape")),
            }
            for family, v in lofo["by_family"].items()
        ]
    )
    return [
        "Leave one device family out (`hwmodels/validation/families.yaml`: refit the calibration without every "
        "row of a GPU family, predict them; the honest figure for a GPU the fit has never seen): on GPU fit rows, "
        f"median {pct(lofo['median_ape'])}, p90 {pct(lofo['p90_ape'])}. The last column also prices the family "
        "without its measured kernel curves, as a GPU nobody has profiled.",
        "",
        md_table(table),
        "",
    ]


def kernel_curves_section(out: Path, quick: bool) -> SectionOutput:
    """Each fitted kernel-efficiency curve against its measured kernels, with its errors."""
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
        "`stream_efficiency`, takes `(math^k + memory^k)^(1/k)` of the two times (`k = overlap`: infinite is the "
        "roofline's max, 1 their sum) and costs `latency_us` besides; prefill attention reaches `e_max * keys / (keys + "
        "keys_half)`; decode attention under an engine whose kernels were timed (TensorRT-LLM, vLLM, SGLang; format "
        "`engine/KV format`) streams its KV cache at `stream_efficiency` and pays `stream_ns` per (sequence, KV head); "
        "an NVLink all-reduce moves its ring bytes at `bw_efficiency` of the link plus a base and a "
        f"per-step latency. Fitted on {record['fitted_at']} (`gpu_kernels_fitted.yaml`); checked on Vidur's FP16 "
        f"projections, a source never fitted: median error {pct(errors['vidur_check']['median_ape'])}; its routed "
        "experts (both GEMMs and the activation, at the dense curves' rates) on TensorRT-LLM's timed fused MoE "
        "(`roofline/moe_check.py`, never fitted): median error "
        f"{pct(errors['trtllm_moe_check']['median_ape'])}, p90 {pct(errors['trtllm_moe_check']['p90_ape'])}. On a GPU "
        "without curves, FP8 and FP4 GEMMs run at most the measured speed-up of those formats over BF16 ("
        + ", ".join(f"{f} {v:.2f}x" for f, v in record.get("format_speedup", {}).items())
        + ", medians over the architectures) where the datasheet promises more.",
        "",
    ]
    rows = []
    for kind in ("gemm", "attention_prefill", "attention_decode"):
        for arch, formats in record.get(kind, {}).items():
            for fmt, values in formats.items():
                err = errors[kind][arch][fmt]
                rows.append(
                    {
                        "kernel": kind,
                        "architecture": arch,
                        "format": fmt,
                        "values": ", ".join(f"{k} {v:g}" for k, v in values.items()),
                        "median error": pct(err["in_sample"]["median_ape"]),
                        "held-out device": pct(err.get("held_out_device", {}).get("median_ape")),
                    }
                )
    for link, values in record["allreduce"].items():
        rows.append(
            {
                "kernel": "allreduce",
                "architecture": link,
                "format": "bf16",
                "values": ", ".join(f"{k} {v:g}" for k, v in values.items()),
                "median error": pct(errors["allreduce"][link]["in_sample"]["median_ape"]),
                "held-out device": "-",
            }
        )
    lines += [md_table(pd.DataFrame(rows)), ""]
    labels = {
        "gemm": ("token rows m", "fraction of dense peak"),
        "attention_prefill": ("mean keys per query", "fraction of dense peak"),
        "attention_decode": ("cached tokens per sequence", "fraction of memory bandwidth"),
        "allreduce": ("message bytes", "latency (us)"),
        "fused_moe": ("tokens routed", "time per layer (us)"),
        "awq_gemm": ("prompt tokens", "prefill tokens/s"),
        "gemm_power": ("GFLOP per call", "TFLOP/s"),
        "block_fp8_runs": ("measured (s)", "seconds (crosses: hwsim)"),
        "mla_prefill": ("measured run (s)", "seconds (crosses: hwsim)"),
    }
    for (kind, group), frame in curve_frames().items():
        # a file name a Markdown image link keeps whole: no spaces, brackets or dots (``AutoAWQ 0.1``)
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", f"kernel-curve-{kind}-{group}").strip("-")
        files += plots.kernel_curve_chart(
            frame,
            out / name,
            *labels[kind],
            title=f"{kind} on {group}",
            log_y=kind in ("allreduce", "fused_moe", "awq_gemm", "block_fp8_runs", "mla_prefill"),
        )
        lines += [f"![{kind} {group}]({name}.png)", ""]
        if kind == "gemm_power":
            lines += [
                "hwsim's own GEMMs on one board (`benchmarks/measure_gemm_power.py`): ten calls in a burst, "
                "and the same replayed for 2 s at the power limit; where the fitted curve is slower than the "
                "sustained rate (FP8 here) the two pricings are one line.",
                "",
            ]
    return lines, files
