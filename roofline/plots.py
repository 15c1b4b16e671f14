"""Plots for papers: roofline charts, per-op breakdowns, throughput and efficiency vs batch.

Each function writes a PNG and an SVG beside it and returns both paths. Matplotlib is
imported lazily with the Agg back end, so importing hwsim opens no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hwmodels.device_spec import DeviceSpec

PNG_DPI = 200
"""Resolution of every PNG (print quality); the SVG beside it is resolution-free."""
PHASE_MARKERS = {"decode": "o", "prefill": "^"}
KIND_COLORS = {
    "gemm": "#1f77b4",
    "router": "#17becf",
    "attention": "#d62728",
    "norm": "#7f7f7f",
    "elementwise": "#bcbd22",
    "embedding": "#9467bd",
    "collective": "#ff7f0e",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def _save(fig, out: Path) -> list[Path]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png, svg = out.with_suffix(".png"), out.with_suffix(".svg")
    fig.savefig(png, bbox_inches="tight", dpi=PNG_DPI)
    fig.savefig(svg, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return [png, svg]


def roofline_chart(
    tables: Mapping[str, pd.DataFrame], device: DeviceSpec, out: Path, title: str = "", fmt: str = "fp16"
) -> list[Path]:
    """Ops of each phase (``op_roofline`` frames) as points on the device's roof.

    x: arithmetic intensity (FLOP/byte), y: achieved FLOP/s; marker size is the op's
    share of its step time. The roof is drawn for math format ``fmt``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    peak, bw = device.peak(fmt), device.memory.bw_bytes_per_s
    finite = [t.loc[np.isfinite(t["intensity_flop_per_byte"]) & (t["flops"] > 0)] for t in tables.values()]
    lo = min([0.1] + [t["intensity_flop_per_byte"].min() / 3 for t in finite if len(t)])
    hi = max([10 * peak / bw] + [t["intensity_flop_per_byte"].max() * 3 for t in finite if len(t)])
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(x, np.minimum(peak, x * bw), color="black", lw=1.8, label=f"roof ({fmt}, {bw / 1e9:.0f} GB/s)")
    ax.axvline(peak / bw, color="black", ls=":", lw=0.8)
    ax.annotate(
        f"ridge {peak / bw:.0f} FLOP/B",
        (peak / bw, peak / 1e3),
        textcoords="offset points",
        xytext=(4, 0),
        rotation=90,
        fontsize=7,
    )
    for (phase, _table), pts in zip(tables.items(), finite, strict=False):
        for kind, group in pts.groupby("kind"):
            ax.scatter(
                group["intensity_flop_per_byte"],
                group["achieved_flop_per_s"],
                s=20 + 400 * group["share_of_step"],
                marker=PHASE_MARKERS.get(phase, "s"),
                color=KIND_COLORS.get(kind, "grey"),
                alpha=0.75,
                edgecolor="black",
                lw=0.4,
                label=f"{phase}: {kind}",
            )
        top = pts.nlargest(3, "share_of_step")
        for k, (_, row) in enumerate(top.iterrows()):
            ax.annotate(
                f"{row['op']}",
                (row["intensity_flop_per_byte"], row["achieved_flop_per_s"]),
                textcoords="offset points",
                xytext=(8, 10 - 9 * k),  # stacked: the heaviest ops often share a point
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of device memory)")
    ax.set_ylabel("achieved FLOP/s (predicted)")
    ax.set_title(title or f"roofline: {device.name}")
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    return _save(fig, out)


def breakdown_chart(tables: Mapping[str, pd.DataFrame], out: Path, title: str = "") -> list[Path]:
    """Stacked bars of each phase's step time by op kind (share of the step)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    phases = list(tables)
    left = np.zeros(len(phases))
    kinds = sorted({k for t in tables.values() for k in t["kind"]})
    for kind in kinds:
        shares = np.array([tables[p].loc[tables[p]["kind"] == kind, "share_of_step"].sum() for p in phases])
        ax.barh(phases, shares, left=left, color=KIND_COLORS.get(kind, "grey"), label=kind, edgecolor="white")
        left += shares
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of step time")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _save(fig, out)


def metric_vs_batch(
    frame: pd.DataFrame,
    metric: str,
    out: Path,
    ylabel: str,
    title: str = "",
    group: str = "device",
    logy: bool = True,
) -> list[Path]:
    """One line per ``group`` of ``metric`` against batch; points that do not fit are hollow.
    Where ``frame`` has ``<metric>_low`` and ``<metric>_high`` (an estimate's 10th-90th
    percentile range), a shaded band shows the range."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    banded = {f"{metric}_low", f"{metric}_high"} <= set(frame.columns)
    for name, g in frame.groupby(group, sort=False):
        g = g.sort_values("batch")
        (line,) = ax.plot(g["batch"], g[metric], marker="o", ms=3, label=str(name))
        if banded:
            ax.fill_between(
                g["batch"], g[f"{metric}_low"], g[f"{metric}_high"], color=line.get_color(), alpha=0.15, lw=0
            )
        over = g.loc[~g["fits"].astype(bool)]
        if len(over):
            ax.scatter(
                over["batch"], over[metric], facecolor="white", edgecolor=line.get_color(), zorder=3, s=25
            )
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("batch (sequences)")
    ax.set_ylabel(ylabel)
    notes = ["hollow: does not fit in device memory"] if (~frame["fits"].astype(bool)).any() else []
    if banded and frame[f"{metric}_low"].notna().any():
        notes.append("band: 10th-90th percentile range")
    ax.set_title("\n".join([title, *notes]))
    _legend_outside(ax)
    return _save(fig, out)


def grouped_bars(
    frame: pd.DataFrame,
    metric: str,
    out: Path,
    ylabel: str,
    title: str = "",
    x: str = "device",
    hue: str = "model",
    order: Sequence[str] | None = None,
    xlabel: str | None = None,
) -> list[Path]:
    """Bars of ``metric`` per ``x``, one bar per ``hue``, on a linear axis from zero with each
    bar's value written on it."""
    plt = _plt()
    xs = list(order) if order is not None else list(dict.fromkeys(frame[x]))
    hues = list(dict.fromkeys(frame[hue]))
    width = 0.8 / max(len(hues), 1)
    fig, ax = plt.subplots(figsize=(max(6.5, 0.45 * len(xs) * max(1, len(hues) / 2)), 3.8))
    for i, h in enumerate(hues):
        sub = frame.loc[frame[hue] == h].set_index(x).reindex(xs)
        bars = ax.bar(np.arange(len(xs)) + i * width - 0.4 + width / 2, sub[metric], width, label=str(h))
        ax.bar_label(bars, fmt="%.3g", fontsize=6, padding=1)
    ax.set_xticks(np.arange(len(xs)), xs, rotation=40, ha="right")
    ax.margins(y=0.1)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel if xlabel is not None else x)
    ax.set_title(title)
    _legend_outside(ax)
    return _save(fig, out)


def heatmap(
    frame: pd.DataFrame,
    metric: str,
    out: Path,
    label: str,
    title: str = "",
    row: str = "device",
    col: str = "model",
    scale: float = 1.0,
    note: str | None = None,
) -> list[Path]:
    """``metric * scale`` per (``row``, ``col``) as a log-coloured grid with each value written in
    its cell (followed by the ``note`` column's text where it is not empty); rows sorted by their
    median, missing cells (a model that does not fit) left white. Readable for dozens of devices
    where grouped bars are not."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    grid = frame.pivot_table(index=row, columns=col, values=metric, aggfunc="first", sort=False) * scale
    grid = grid.loc[grid.median(axis=1).sort_values().index]
    values = grid.to_numpy(dtype=float)
    notes = (
        frame.pivot_table(index=row, columns=col, values=note, aggfunc="first", sort=False).reindex_like(grid)
        if note
        else None
    )
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * grid.shape[1], 1.0 + 0.24 * grid.shape[0]))
    finite = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(finite.min(), finite.max()) if finite.size else None
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis_r", norm=norm)
    ax.grid(False)
    ax.set_xticks(np.arange(grid.shape[1]), grid.columns, rotation=30, ha="right")
    ax.set_yticks(np.arange(grid.shape[0]), grid.index)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = norm is not None and norm(v) < 0.5
            text = f"{v:.3g}" + (f" {notes.iat[i, j]}" if notes is not None and notes.iat[i, j] else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if dark else "white")
    fig.colorbar(image, ax=ax, label=label, fraction=0.04, pad=0.02)
    ax.set_title(title, pad=28)
    return _save(fig, out)


CLASS_COLORS = {
    "datacenter-gpu": "#1f77b4",
    "workstation-gpu": "#9467bd",
    "consumer-gpu": "#2ca02c",
    "integrated-gpu": "#ff7f0e",
    "server-cpu": "#d62728",
    "desktop-cpu": "#8c564b",
    "embedded-cpu": "#7f7f7f",
    "mobile-cpu": "#e377c2",
    "mobile-npu": "#17becf",
    "wafer": "#393b79",
    "csd": "#637939",
}
"""One colour per device class of the catalog (tab10/tab20), so a class never falls back to black."""


def predicted_vs_measured(points: pd.DataFrame, out: Path, title: str = "") -> list[Path]:
    """Covered rows of a validation: predicted against measured on log-log axes with y = x and
    the 10% and 25% bands (left), and the ratio predicted / measured per row (right), by class.
    A vertical bar spans each prediction's 10th-90th percentile range where it has one
    (``predicted_low``, ``predicted_high``).

    Each point is one measurement in its metric's own unit (tokens/s or s).
    """
    plt = _plt()
    cov = points.loc[points["covered"].astype(bool)]
    fig, (ax, rx) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [1, 1.2]})
    lo = min(cov["measured"].min(), cov["predicted"].min()) / 2
    hi = max(cov["measured"].max(), cov["predicted"].max()) * 2
    x = np.logspace(np.log10(lo), np.log10(hi), 50)
    ax.plot(x, x, color="black", lw=1)
    for band, alpha in ((0.25, 0.12), (0.10, 0.2)):
        ax.fill_between(x, x * (1 - band), x * (1 + band), color="grey", alpha=alpha, lw=0)
        rx.axhspan(1 - band, 1 + band, color="grey", alpha=alpha, lw=0, label=f"within {band:.0%}")
    rx.axhline(1.0, color="black", lw=1)
    for cls, group in cov.groupby("device_class"):
        color = CLASS_COLORS.get(cls, "black")
        ranged = group.dropna(subset=["predicted_low", "predicted_high"])
        for axis, scale in ((ax, 1.0), (rx, 1.0 / ranged["measured"])):
            axis.errorbar(
                ranged["measured"],
                ranged["predicted"] * scale,
                yerr=[
                    (ranged["predicted"] - ranged["predicted_low"]) * scale,
                    (ranged["predicted_high"] - ranged["predicted"]) * scale,
                ],
                fmt="none",
                ecolor=color,
                elinewidth=0.6,
                alpha=0.5,
            )
        ax.scatter(
            group["measured"],
            group["predicted"],
            s=18,
            color=color,
            edgecolor="black",
            lw=0.3,
            label=f"{cls} ({len(group)})",
        )
        rx.scatter(
            group["measured"],
            group["predicted"] / group["measured"],
            s=18,
            color=color,
            edgecolor="black",
            lw=0.3,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (metric's own unit: tokens/s or s)")
    ax.set_ylabel("predicted by hwsim")
    ax.legend(fontsize=7, loc="upper left")
    rx.set_xscale("log")
    rx.set_yscale("log", base=2)
    rx.set_xlabel("measured")
    rx.set_ylabel("predicted / measured")
    rx.legend(fontsize=7, loc="upper left")
    med = cov["ape"].median()
    fig.suptitle(
        title
        or f"predicted vs measured: {len(cov)} rows, median error {med:.1%}; bars: 10th-90th percentile range"
    )
    return _save(fig, out)


def timeline_chart(intervals: pd.DataFrame, out: Path, title: str = "", max_tasks: int = 20000) -> list[Path]:
    """Gantt chart: one row per resource, a bar per busy interval (the first ``max_tasks``),
    coloured by phase (the first part of the task name, e.g. ``prefill``, ``decode0``; digits
    dropped when there are more phases than colours), with a dashed mark where each phase starts."""
    plt = _plt()
    frame = intervals.loc[intervals["end_s"] > intervals["start_s"]].head(max_tasks)
    phase = frame["task"].str.split("/").str[0]
    if phase.nunique() > len(OKABE_ITO):
        phase = phase.str.rstrip("0123456789")
    resources = sorted(frame["resource"].unique())
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(resources)))
    span_s, marked_at = float(frame["end_s"].max() - frame["start_s"].min()), -np.inf
    for k, name in enumerate(dict.fromkeys(phase)):
        part = frame.loc[phase == name]
        colour = OKABE_ITO[k % len(OKABE_ITO)]
        for i, r in enumerate(resources):
            rows = part.loc[part["resource"] == r]
            ax.broken_barh(
                list(zip(rows["start_s"], rows["end_s"] - rows["start_s"], strict=True)),
                (i - 0.4, 0.8),
                color=colour,
                label=name if i == 0 else None,
            )
        start = float(part["start_s"].min())
        ax.axvline(start, color=colour, ls="--", lw=0.8)
        if start - marked_at > 0.04 * span_s:  # named only where it does not overprint the last name
            ax.annotate(
                name, (start, len(resources) - 0.5), xytext=(2, 2), textcoords="offset points", fontsize=7
            )
            marked_at = start
    ax.set_yticks(range(len(resources)), resources)
    ax.set_ylim(-0.6, len(resources) - 0.1)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0)
    _legend_outside(ax, title="phase")
    return _save(fig, out)


def tp_scaling_chart(frame: pd.DataFrame, out: Path, title: str = "") -> list[Path]:
    """Decode time per token (left) and the all-reduce share of busy time (right) against TP, one line per link."""
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
    for link, g in frame.groupby("link", sort=False):
        g = g.sort_values("tp")
        ax.plot(g["tp"], g["tpot_s"] * 1e3, marker="o", label=link)
        bx.plot(g["tp"], g["allreduce_share"] * 100, marker="o", label=link)
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_xlabel("tensor-parallel degree")
        a.legend(fontsize=8)
    ax.set_ylabel("time per output token (ms)")
    bx.set_ylabel("all-reduce share of decode busy time (%)")
    fig.suptitle(title)
    return _save(fig, out)


def tornado_chart(frame: pd.DataFrame, out: Path, title: str = "") -> list[Path]:
    """For each metric (a panel), the headline at the low and high end of each assumed parameter,
    as bars around the baseline (``sensitivity`` frames: parameter, end, metric, value, baseline)."""
    plt = _plt()
    metrics = list(dict.fromkeys(frame["metric"]))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 0.6 + 0.45 * frame["parameter"].nunique())
    )
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        part = frame.loc[frame["metric"] == metric]
        base = float(part["baseline"].iloc[0])
        params = list(dict.fromkeys(part["parameter"]))
        for i, p in enumerate(params):
            lo = float(part.loc[(part["parameter"] == p) & (part["end"] == "low"), "value"].iloc[0])
            hi = float(part.loc[(part["parameter"] == p) & (part["end"] == "high"), "value"].iloc[0])
            ax.barh(i, lo - base, left=base, color="#d62728", alpha=0.7)
            ax.barh(i, hi - base, left=base, color="#2ca02c", alpha=0.7)
        ax.axvline(base, color="black", lw=1)
        ax.set_yticks(range(len(params)), params if ax is np.atleast_1d(axes)[0] else [""] * len(params))
        ax.set_title(metric, fontsize=9)
    fig.suptitle(title or "sensitivity: red = low end, green = high end of each assumption")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return _save(fig, out)


def lines_chart(
    frame: pd.DataFrame,
    x: str,
    ys: Sequence[str],
    group: str,
    out: Path,
    xlabel: str,
    ylabels: Sequence[str],
    title: str = "",
) -> list[Path]:
    """One panel per column of ``ys`` against ``x`` (log-log), one line per ``group`` (a new line
    style after every ten colours), one legend right of the last panel."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(ys), figsize=(5 * len(ys), 3.8))
    n_colours = len(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for ax, y, label in zip(np.atleast_1d(axes), ys, ylabels, strict=True):
        for i, (name, g) in enumerate(frame.groupby(group, sort=False)):
            g = g.sort_values(x)
            ax.plot(
                g[x], g[y], marker="o", ms=3, ls=("-", "--", ":", "-.")[i // n_colours % 4], label=str(name)
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    _legend_outside(np.atleast_1d(axes)[-1])
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(fig, out)


SERIES_STYLES = {"simulation": ("#0072B2", "-", "o"), "analytic": ("#D55E00", "--", "s")}
"""Colour-blind-safe (Okabe-Ito) colour, line style and marker per source of a serving curve."""


def serving_timeline_chart(frame: pd.DataFrame, out: Path, title: str = "") -> list[Path]:
    """Batch size, waiting requests, preemptions and KV-pool occupancy of each replica over time.

    ``frame``: one row per engine step with ``replica, start_s, n_running, n_waiting,
    kv_fraction`` (share of the KV pool in use, 0-1) and, optionally, ``preempted`` (cumulative).
    """
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for name, g in frame.groupby("replica", sort=False):
        top.step(g["start_s"], g["n_running"], where="post", lw=1, label=f"{name}: running")
        top.step(g["start_s"], g["n_waiting"], where="post", lw=1, ls="--", label=f"{name}: waiting")
        if "preempted" in g and g["preempted"].max() > 0:
            top.step(
                g["start_s"], g["preempted"], where="post", lw=1, ls=":", label=f"{name}: preempted (total)"
            )
        bottom.step(g["start_s"], 100 * g["kv_fraction"], where="post", lw=1, label=str(name))
    top.set_ylabel("requests")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_ylabel("KV pool in use (%)")
    bottom.set_xlabel("simulated time (s)")
    bottom.set_ylim(0, 105)
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def latency_vs_rate_chart(
    frame: pd.DataFrame,
    out: Path,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    title: str = "",
) -> list[Path]:
    """TTFT and TPOT (mean, and p99 where simulated) against the request rate, simulation and
    analytic approximation, with the SLO limits and the knee (the highest rate meeting them).

    ``frame``: ``rate, source, ttft_s_mean, tpot_s_mean`` and, for the simulation,
    ``ttft_s_p99, tpot_s_p99, output_tokens_per_s``.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("ttft_s", "TTFT (s)", slo_ttft_s), ("tpot_s", "TPOT (s)", slo_tpot_s))
    for ax, (key, label, slo) in zip(axes[:2], panels, strict=True):
        for source, g in frame.groupby("source", sort=False):
            color, ls, marker = SERIES_STYLES.get(source, ("#000000", "-", "o"))
            g = g.sort_values("rate")
            ax.plot(
                g["rate"], g[f"{key}_mean"], color=color, ls=ls, marker=marker, ms=3, label=f"{source}, mean"
            )
            if f"{key}_p99" in g and g[f"{key}_p99"].notna().any():
                ax.plot(
                    g["rate"],
                    g[f"{key}_p99"],
                    color=color,
                    ls=":",
                    marker=marker,
                    ms=3,
                    label=f"{source}, p99",
                )
        if slo:
            ax.axhline(slo, color="#009E73", lw=1, label=f"SLO {slo:g} s")
        ax.set_yscale("log")
        ax.set_xlabel("request rate (requests/s)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    ax = axes[2]
    sim = frame[frame["source"] == "simulation"].sort_values("rate")
    ax.plot(sim["rate"], sim["output_tokens_per_s"], color=SERIES_STYLES["simulation"][0], marker="o", ms=3)
    ax.plot(
        sim["rate"],
        sim["rate"] * sim["mean_output_len"],
        color="#999999",
        ls="--",
        lw=1,
        label="offered load",
    )
    if "knee_rate" in frame and frame["knee_rate"].notna().any():
        knee = float(frame["knee_rate"].dropna().iloc[0])
        for a in axes:
            a.axvline(knee, color="#CC79A7", lw=1, ls="-.", label=f"SLO knee {knee:.3g} req/s")
    ax.set_xlabel("request rate (requests/s)")
    ax.set_ylabel("output tokens/s")
    ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return _save(fig, out)


def curve_with_marks(
    frame: pd.DataFrame,
    x: str,
    y: str,
    marks: Sequence[float],
    out: Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    mark_label: str = "the paper's sizes",
) -> list[Path]:
    """One curve of ``y`` against ``x`` (log-log), with vertical marks at ``marks`` and the curve's
    value printed at each."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    g = frame.sort_values(x)
    ax.plot(g[x], g[y], marker="o", ms=4, color="#0072B2", label=y.replace("_", " "))
    for i, m in enumerate(marks):
        ax.axvline(m, color="#D55E00", ls="--", lw=1, label=mark_label if i == 0 else None)
        value = float(np.interp(np.log(m), np.log(g[x]), g[y]))
        ax.annotate(f"{value:.3g}", (m, value), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""A colour-blind-safe palette (Okabe and Ito, 2008)."""
AXIS_LABELS = {
    "ttft_s": "TTFT (s)",
    "tpot_s": "TPOT (s per token)",
    "e2e_s": "end-to-end latency (s)",
    "tokens_per_usd": "tokens per USD",
    "tokens_per_j": "tokens per joule",
    "decode_tokens_per_s": "decode tokens/s",
    "prefill_tokens_per_s": "prefill tokens/s",
    "usd_per_million_tokens": "USD per 1M tokens",
    "energy_j_per_token": "J per token",
}


def pareto_chart(
    points: pd.DataFrame,
    front: pd.DataFrame,
    x: str,
    y: str,
    out: Path,
    title: str = "",
    hue: str = "arch",
    note: str = "",
    named: Sequence[int] | None = None,
) -> list[Path]:
    """Every feasible design as a dot (coloured by ``hue``), the front as a line with the designs
    at positions ``named`` of ``front`` named (default its first 12); log axes when a metric
    spans more than a decade."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.0, 5.0))
    groups = list(dict.fromkeys(points[hue])) if hue in points else ["designs"]
    for i, g in enumerate(groups):
        part = points[points[hue] == g] if hue in points else points
        ax.scatter(part[x], part[y], s=9, alpha=0.35, color=OKABE_ITO[i % len(OKABE_ITO)], label=str(g))
    ax.plot(front[x], front[y], "-o", color="black", ms=4, lw=1.2, label="Pareto front")
    for k, r in enumerate(front.iloc[list(named) if named is not None else slice(12)].itertuples()):
        ax.annotate(
            str(r.design),
            (getattr(r, x), getattr(r, y)),
            fontsize=6,
            xytext=(4, 2 if k % 2 else -8),  # alternately above and below: neighbours do not overprint
            textcoords="offset points",
        )
    for values, setter in ((points[x], ax.set_xscale), (points[y], ax.set_yscale)):
        positive = values[values > 0]
        if len(positive) and positive.max() / positive.min() > 10:
            setter("log")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    ax.set_title(title)
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, va="bottom", ha="left", alpha=0.8)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out)


def compare_chart(frame: pd.DataFrame, metrics: Sequence[str], out: Path, title: str = "") -> list[Path]:
    """One panel per metric, one bar per device, the value printed on each bar."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.4))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics, strict=True):
        values = frame[m].to_numpy(float)
        bars = ax.bar(frame["device"], np.nan_to_num(values), color=OKABE_ITO[: len(frame)])
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(
                "n/a" if not np.isfinite(v) else f"{v:.3g}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_title(AXIS_LABELS.get(m, m), fontsize=8)
        ax.set_xlabel("device")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def kernel_curve_chart(
    frame: pd.DataFrame, out: Path, xlabel: str, ylabel: str, title: str = "", log_y: bool = False
) -> list[Path]:
    """Measured kernels (dots) beside a fitted curve's predictions (lines with crosses), one panel per
    ``panel`` value, one colour per ``series``; x on a log-2 axis. ``frame``: columns ``panel``,
    ``x``, ``series``, ``measured``, ``predicted``."""
    plt = _plt()
    panels = sorted(frame["panel"].unique())
    every = sorted(frame["series"].unique())  # one colour per series in every panel
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        part = frame.loc[frame["panel"] == panel]
        for series, g in part.groupby("series"):
            g = g.sort_values("x")
            colour = OKABE_ITO[every.index(series) % len(OKABE_ITO)]
            ax.scatter(g["x"], g["measured"], s=10, color=colour)
            ax.plot(g["x"], g["predicted"], color=colour, lw=1.2, marker="x", ms=3)
        ax.set_xscale("log", base=2)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(str(panel), fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel(ylabel)
    handles = [
        plt.Line2D([], [], color=OKABE_ITO[i % len(OKABE_ITO)], marker="o", ms=3, lw=1.2, label=series)
        for i, series in enumerate(every)
    ]
    axes[0][-1].legend(handles=handles, fontsize=6, loc="best")
    fig.suptitle(f"{title} (dots: measured; lines and crosses: fitted curve)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)
