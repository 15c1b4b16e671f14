"""Report section of the serving path: latency against request rate with the SLO knee
(simulation beside the analytic approximation), a batch and KV-occupancy timeline,
aggregated against disaggregated serving, and the measured serving rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from report.tables import SectionOutput, write_csvs
from roofline import plots
from roofline.validation import load_measured, server_conditions, summarize, validate_frame
from sim.serving.capacity import ATTAINMENT_TARGET, approximate
from sim.serving.plots import serving_timeline
from sim.serving.serve import serve
from sim.serving.validation import predict_serving, simulate_rows
from workloads.traces import load_lengths, make_trace

MODEL, DEVICE, PRECISION, FRAMEWORK, LENGTHS = "llama-3.1-8b", "h100-sxm", "bf16", "vllm", "sharegpt"
SLO_TTFT_S, SLO_TPOT_S = 0.5, 0.05
"""Latency limits of the knee: interactive chat targets of the MLPerf Llama-2 interactive
scenario's order (TTFT 0.45 s, TPOT 40 ms) rounded."""
REQUESTS = 1500


def _rate_sweep(quick: bool) -> pd.DataFrame:
    hist = load_lengths(LENGTHS)
    mean_in, mean_out = hist.mean()
    kw = dict(precision=PRECISION, framework=FRAMEWORK)
    cap = approximate(MODEL, DEVICE, input_len=mean_in, output_len=mean_out, rate=1e-3, lengths=hist, **kw)
    rows = []
    for share in (0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1) if not quick else (0.3, 0.8):
        rate = share * cap.capacity_requests_per_s
        trace = make_trace(n_requests=REQUESTS, rate=rate, lengths=LENGTHS, seed=0)
        m = serve(
            MODEL, DEVICE, trace, slo_ttft_s=SLO_TTFT_S, slo_tpot_s=SLO_TPOT_S, record=False, **kw
        ).metrics
        rows.append({"rate": rate, "source": "simulation", "mean_output_len": mean_out, **m})
        a = approximate(MODEL, DEVICE, input_len=mean_in, output_len=mean_out, rate=rate, lengths=hist, **kw)
        rows.append(
            {
                "rate": rate,
                "source": "analytic",
                "mean_output_len": mean_out,
                "ttft_s_mean": a.ttft_s if a.stable else np.nan,
                "tpot_s_mean": a.tpot_s if a.stable else np.nan,
                "e2e_s_mean": a.e2e_s if a.stable else np.nan,
            }
        )
    frame = pd.DataFrame(rows)
    sim = frame[frame["source"] == "simulation"]
    ok = sim[sim["slo_attainment"] >= ATTAINMENT_TARGET]
    frame["knee_rate"] = float(ok["rate"].max()) if len(ok) else np.nan
    return frame


def _agg_vs_disagg(quick: bool) -> pd.DataFrame:
    """Two H100s: two aggregated replicas, or one prefill and one decode worker, on long prompts."""
    rows = []
    for rate in (1.0, 2.0, 3.0) if not quick else (1.0,):
        trace = make_trace(n_requests=300 if quick else 800, rate=rate, lengths="arxiv-summarization", seed=1)
        for label, cfg in (
            ("aggregated, 2 replicas", dict(dp=2)),
            ("disaggregated, 1 prefill + 1 decode", dict(mode="disagg", prefill_workers=1, decode_workers=1)),
        ):
            m = serve(
                MODEL, DEVICE, trace, precision=PRECISION, framework=FRAMEWORK, record=False, **cfg
            ).metrics
            rows.append({"rate": rate, "design": label, **m})
    return pd.DataFrame(rows)


def serving_section(out: Path, quick: bool) -> SectionOutput:
    """Latency curves, the timeline, aggregated vs disaggregated, and the measured serving rows."""
    sweep = _rate_sweep(quick)
    title = f"{MODEL} on one {DEVICE}, {FRAMEWORK} scheduler, {LENGTHS} lengths, Poisson arrivals"
    files = plots.latency_vs_rate_chart(sweep, out / "serving-latency-vs-rate", SLO_TTFT_S, SLO_TPOT_S, title)
    busy = sweep.loc[sweep["source"] == "simulation", "rate"].iloc[len(sweep) // 4]
    run = serve(
        MODEL, DEVICE, make_trace(n_requests=600, rate=busy, lengths=LENGTHS, seed=0), precision=PRECISION
    )
    files += serving_timeline(run, out / "serving-timeline", f"{title}, {busy:.1f} req/s")
    designs = _agg_vs_disagg(quick)
    files += plots.lines_chart(
        designs,
        "rate",
        ["ttft_s_p90", "tpot_s_p90"],
        "design",
        out / "serving-agg-vs-disagg",
        "request rate (requests/s)",
        ["TTFT p90 (s)", "TPOT p90 (s)"],
        f"{MODEL} on two {DEVICE}s, arXiv-summarization lengths (long prompts)",
    )
    frame = load_measured()
    frame = frame[frame["phase"] == "server"]
    simulate_rows(server_conditions(frame))  # the rows' simulations, one process per core
    points = validate_frame(frame, serving=predict_serving)
    summary = summarize(points)
    files += write_csvs(
        out,
        {
            "serving-rate-sweep.csv": sweep,
            "serving-agg-vs-disagg.csv": designs,
            "serving-validation.csv": points,
        },
    )
    knee = sweep["knee_rate"].iloc[0]
    lines = [
        "## Serving: request streams on the event engine",
        "",
        "![latency vs rate](serving-latency-vs-rate.png)",
        "",
        f"{title}. The simulation (solid) and the analytic queueing approximation (dashed) agree at "
        "moderate load and part near saturation, where queues build faster than a mean-value model "
        f"allows. SLO knee (TTFT {SLO_TTFT_S} s and TPOT {SLO_TPOT_S * 1e3:.0f} ms met by "
        f"{ATTAINMENT_TARGET:.0%} of requests): "
        + (f"{knee:.3g} requests/s." if np.isfinite(knee) else "not reached on this grid."),
        "",
        "![timeline](serving-timeline.png)",
        "",
        "![aggregated vs disaggregated](serving-agg-vs-disagg.png)",
        "",
        "Measured serving rows (`hwmodels/validation/measured.csv`, phase `server`), median error of the means:",
        "",
        "| phase/mode/metric | covered | median APE |",
        "|---|---|---|",
    ]
    lines += [
        f"| {key} | {v['covered']} of {v['rows']} | "
        + (f"{100 * v['median_ape']:.1f}% |" if v["median_ape"] is not None else "- |")
        for key, v in summary["by_phase_mode"].items()
        if key.startswith("server")
    ]
    lines.append("")
    return lines, files
