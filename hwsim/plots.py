"""The standard charts of ``roofline.plots``, returned as ``Chart`` objects that Jupyter shows inline.

Each function draws one chart from the frames the public API returns, exactly as the CLI and
``hwsim report`` draw it, and returns a ``Chart`` holding its PNG and SVG; ``chart.save(path)``
writes both. The matplotlib back end in use (Jupyter's inline one, say) and the rcParams are
restored after each chart, so the caller's own figures keep showing.

    import hwsim
    hwsim.plots.roofline(hwsim.roofline("llama-3.1-8b", "h100-sxm", batch=8), "h100-sxm")
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hwmodels.device_spec import DeviceSpec

if TYPE_CHECKING:
    from sim.engine import Timeline
    from sim.serving.serve import ServeResult


@dataclass(frozen=True, repr=False)
class Chart:
    """A drawn chart: ``png`` bytes and ``svg`` text; Jupyter displays the PNG."""

    png: bytes
    svg: str

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<hwsim Chart: PNG {len(self.png) / 1e3:.0f} kB; .save(path) writes PNG and SVG>"

    def save(self, out: str | Path) -> list[Path]:
        """Write ``out`` with suffix ``.png`` and ``.svg``; return both paths."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        png, svg = out.with_suffix(".png"), out.with_suffix(".svg")
        png.write_bytes(self.png)
        svg.write_text(self.svg, encoding="utf-8")
        return [png, svg]


def _draw(chart: Callable[..., list[Path]], *args: Any, **kwargs: Any) -> Chart:
    """Run a ``roofline.plots`` function into a temporary file and read the chart back.

    Those functions select the Agg back end (so a script opens no window); the back end in use
    before, and every rcParam, are put back afterwards. The back end is loaded first, as a first
    figure would load it: Jupyter's inline back end sets itself up (interactive mode, the hook
    that shows figures) only when loaded while it is the selected one."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    plt.switch_backend(backend)
    with matplotlib.rc_context(), tempfile.TemporaryDirectory(prefix="hwsim-chart-") as tmp:
        png, svg = chart(*args, out=Path(tmp) / "chart.png", **kwargs)
        drawn = Chart(png.read_bytes(), svg.read_text(encoding="utf-8"))
    if matplotlib.get_backend() != backend:
        plt.switch_backend(backend)
    return drawn


def _device(device: str | DeviceSpec) -> DeviceSpec:
    from roofline.estimate import compute_device

    return compute_device(device)


def roofline(
    tables: Mapping[str, pd.DataFrame], device: str | DeviceSpec, *, title: str = "", fmt: str = "fp16"
) -> Chart:
    """Each op as a point on the device's roof: x arithmetic intensity (FLOP/byte), y achieved
    FLOP/s, marker size its share of the step.

    Parameters
    ----------
    tables : phase -> ``op_roofline`` frame, as ``hwsim.roofline`` returns them.
    device : catalog name or ``DeviceSpec`` whose roof is drawn.
    title : chart title (default: the device's name).
    fmt : math format of the roof (``fp16``, ``fp8``, ``int8``...).
    """
    from roofline.plots import roofline_chart

    return _draw(roofline_chart, tables, _device(device), title=title, fmt=fmt)


def breakdown(tables: Mapping[str, pd.DataFrame], *, title: str = "") -> Chart:
    """Stacked bars of each phase's step time by op kind (attention, GEMM, collective...).

    Parameters
    ----------
    tables : phase -> ``op_roofline`` frame, as ``hwsim.roofline`` returns them.
    title : chart title.
    """
    from roofline.plots import breakdown_chart

    return _draw(breakdown_chart, tables, title=title)


def metric_vs_batch(
    frame: pd.DataFrame,
    metric: str,
    *,
    ylabel: str | None = None,
    title: str = "",
    group: str = "device",
    logy: bool = True,
) -> Chart:
    """One line per ``group`` of ``metric`` against batch; points that do not fit are hollow, the
    10th-90th percentile range (where the frame has ``<metric>_low`` and ``_high``) a band.

    Parameters
    ----------
    frame : rows with ``batch``, ``fits``, ``metric`` and ``group`` (``Estimate.to_frame()`` or
        ``hwsim.sweep``'s).
    metric : the column to plot.
    ylabel : y-axis label (default: the metric's name with its unit).
    title : chart title.
    group : the column whose values are the lines.
    logy : log-scale y axis.
    """
    from roofline.plots import AXIS_LABELS
    from roofline.plots import metric_vs_batch as chart

    label = ylabel or AXIS_LABELS.get(metric, metric)
    return _draw(chart, frame, metric, ylabel=label, title=title, group=group, logy=logy)


def compare(
    frame: pd.DataFrame,
    metrics: Sequence[str] = ("ttft_s", "tpot_s", "tokens_per_j", "tokens_per_usd"),
    *,
    title: str = "",
) -> Chart:
    """One panel per metric, one bar per device, the value printed on each bar.

    Parameters
    ----------
    frame : one row per device (``Estimate.to_frame()`` rows concatenated).
    metrics : the columns, one panel each.
    title : chart title.
    """
    from roofline.plots import compare_chart

    return _draw(compare_chart, frame, list(metrics), title=title)


def pareto(
    points: pd.DataFrame,
    front: pd.DataFrame,
    x: str = "tpot_s",
    y: str = "tokens_per_usd",
    *,
    title: str = "",
    hue: str = "arch",
    note: str = "",
) -> Chart:
    """Every design as a dot coloured by ``hue``, the front as a line with its designs named; log
    axes where a metric spans more than a decade.

    Parameters
    ----------
    points : every design (the rows ``hwsim.pareto`` was given, feasible ones).
    front : ``hwsim.pareto``'s result over the same metrics.
    x, y : the metrics on the axes.
    title : chart title.
    hue : the column that colours the dots (``arch``, from the device, when the frame lacks it).
    note : a line of small print in the corner (the price basis, say).
    """
    from hwmodels.device_spec import load_device
    from roofline.plots import pareto_chart

    if hue == "arch" and "arch" not in points and "device" in points:
        points = points.assign(arch=[load_device(d).arch for d in points["device"]])
    return _draw(pareto_chart, points, front, x, y, title=title, hue=hue, note=note)


def heatmap(
    frame: pd.DataFrame,
    metric: str,
    *,
    row: str = "device",
    col: str = "model",
    label: str | None = None,
    title: str = "",
) -> Chart:
    """``metric`` per (``row``, ``col``) as a log-coloured grid, each value written in its cell.

    Parameters
    ----------
    frame : one row per cell (the first row of a duplicated cell is shown).
    metric : the column coloured and written.
    row, col : the columns along the grid's rows and columns.
    label : the colour bar's label (default: the metric's name with its unit).
    title : chart title.
    """
    from roofline.plots import AXIS_LABELS
    from roofline.plots import heatmap as chart

    return _draw(
        chart, frame, metric, label=label or AXIS_LABELS.get(metric, metric), title=title, row=row, col=col
    )


def tornado(frame: pd.DataFrame, *, title: str = "") -> Chart:
    """Each headline at the low (red) and high (green) end of each assumed parameter, one panel
    per metric.

    Parameters
    ----------
    frame : an experiment's ``sensitivity()`` rows: ``parameter, end, metric, value, baseline``.
    title : chart title.
    """
    from roofline.plots import tornado_chart

    return _draw(tornado_chart, frame, title=title)


def timeline(run: Timeline | pd.DataFrame, *, title: str = "", max_tasks: int = 20000) -> Chart:
    """Gantt chart of an event-engine run: one row per resource, a bar per busy interval.

    Parameters
    ----------
    run : a ``Timeline`` (``hwsim.simulate(...).timeline``) or its ``intervals`` frame.
    title : chart title.
    max_tasks : intervals drawn at most (the first ones).
    """
    from roofline.plots import timeline_chart

    intervals = run if isinstance(run, pd.DataFrame) else run.intervals
    return _draw(timeline_chart, intervals, title=title, max_tasks=max_tasks)


def serving_timeline(result: ServeResult, *, title: str = "") -> Chart:
    """Running and waiting requests, preemptions and KV-pool occupancy of each replica over the
    simulated time.

    Parameters
    ----------
    result : a ``hwsim.serve`` run made with ``record=True``.
    title : chart title.
    """
    from roofline.plots import serving_timeline_chart
    from sim.serving.plots import step_frame

    return _draw(serving_timeline_chart, step_frame(result), title=title)


def latency_vs_rate(
    frame: pd.DataFrame,
    *,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    title: str = "",
) -> Chart:
    """TTFT and TPOT against the request rate, and output tokens/s against the offered load.

    Parameters
    ----------
    frame : one row per rate and ``source``: ``simulation`` rows with ``hwsim.serve``'s metrics
        (``ttft_s_mean, ttft_s_p99, tpot_s_mean, tpot_s_p99, output_tokens_per_s``), ``analytic``
        rows with ``hwsim.serve_estimate``'s means as ``ttft_s_mean, tpot_s_mean``; every row
        with ``rate`` (requests/s) and ``mean_output_len`` (tokens), optionally ``knee_rate``
        (requests/s, drawn as a line).
    slo_ttft_s, slo_tpot_s : latency limits drawn as lines, seconds.
    title : chart title.
    """
    from roofline.plots import latency_vs_rate_chart

    return _draw(latency_vs_rate_chart, frame, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s, title=title)


__all__ = [
    "Chart",
    "breakdown",
    "compare",
    "heatmap",
    "latency_vs_rate",
    "metric_vs_batch",
    "pareto",
    "roofline",
    "serving_timeline",
    "timeline",
    "tornado",
]
