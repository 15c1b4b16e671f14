"""``hwsim sweep``, ``best``, ``compare`` and ``pareto``: design-space exploration from the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from hwsim.options import PathType, StrictCommand, output_file
from hwsim.output import LazyBar, emit, fmt
from workloads.errors import ConfigError

OBJECTIVE_DIRECTION = {"tokens_per_usd": "max", "tokens_per_j": "max", "tpot_s": "min", "ttft_s": "min"}


@click.command(cls=StrictCommand)
@click.argument("spec_path", metavar="SPEC.yaml", type=PathType(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=PathType(path_type=Path),
    default=None,
    help="Parquet file to write (default results/<spec>.parquet). A rerun resumes a stopped sweep.",
)
@click.option(
    "--backend", type=click.Choice(["local", "processes", "dask"]), default="local", show_default=True
)
@click.option("--scheduler", default=None, help="Dask scheduler address (default: a local cluster).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def sweep(spec_path, out, backend, scheduler, as_json):
    """Price every point of a sweep spec and stream the rows to Parquet (resumable)."""
    from explore.run import read_sweep, run_sweep
    from explore.spec import load_spec

    spec = load_spec(spec_path)
    out = out or Path("results") / f"{spec_path.stem}.parquet"
    t0 = time.perf_counter()
    with LazyBar("sweep", "points") as bar:
        path = run_sweep(spec, out, backend=backend, scheduler=scheduler, progress=bar)
    seconds = time.perf_counter() - t0
    table = read_sweep(path)
    summary = {
        "out": str(path),
        "points": len(table),
        "grid_size": spec.size,
        "seconds": seconds,
        "points_per_s": len(table) / seconds if seconds > 0 else None,
        "fits": int(table["fits"].sum()) if "fits" in table else None,
        "errors": int((table["error"] != "").sum()),
        "backend": backend,
    }
    text = "\n".join(f"{k:>14}: {fmt(v)}" for k, v in summary.items())
    emit(as_json, summary, text)


def _search_options(f):
    for opt in reversed(
        [
            click.option("--model", "-m", required=True, help="Preset name, HF id or config.json path."),
            click.option(
                "--devices",
                "-d",
                multiple=True,
                help="Device names, arches (gpu, cpu, npu, wafer, ...) or classes; default all.",
            ),
            click.option("--tp", "tp_values", multiple=True, type=int, help="TP degrees (default 1 2 4 8)."),
            click.option(
                "--precision",
                "-p",
                "precisions",
                multiple=True,
                help="Precisions (default fp16 fp8 int8 int4).",
            ),
            click.option(
                "--batch", "-b", "batches", multiple=True, type=int, help="Batches (default 1..512)."
            ),
            click.option("--input-len", type=int, default=1024, show_default=True),
            click.option("--output-len", type=int, default=128, show_default=True),
            click.option("--framework", default=None, help="Serving framework whose overheads apply."),
            click.option(
                "--price-basis", type=click.Choice(["tco", "cloud"]), default="tco", show_default=True
            ),
            click.option("--slo-ttft", type=float, default=None, help="TTFT limit, seconds."),
            click.option("--slo-tpot", type=float, default=None, help="TPOT limit, seconds."),
        ]
    ):
        f = opt(f)
    return f


def _run_search(o, need_price: bool):
    from explore.search import search

    for key in ("slo_ttft", "slo_tpot"):
        if o[key] is not None and not o[key] > 0:
            raise ConfigError(f"{key.replace('_', '-')} is {o[key]!r}; expected a positive number of seconds")
    with LazyBar("designs", "designs") as bar:
        return search(
            o["model"],
            list(o["devices"]) or None,
            tp=list(o["tp_values"]) or None,
            precisions=list(o["precisions"]) or None,
            batches=list(o["batches"]) or None,
            input_len=o["input_len"],
            output_len=o["output_len"],
            framework=o["framework"],
            price_basis=o["price_basis"],
            slo_ttft_s=o["slo_ttft"],
            slo_tpot_s=o["slo_tpot"],
            need_price=need_price,
            progress=bar,
        )


def _records(frame) -> list[dict]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not np.isfinite(v)
                    else v.item()
                    if hasattr(v, "item")
                    else v
                )
                for k, v in row.items()
            }
        )
    return out


@click.command(cls=StrictCommand)
@_search_options
@click.option(
    "--objective",
    type=click.Choice(sorted(OBJECTIVE_DIRECTION)),
    default="tokens_per_usd",
    show_default=True,
)
@click.option("--top", "top_k", type=int, default=5, show_default=True, help="Designs to list.")
@click.option("--per-arch", is_flag=True, help="List the best --top designs of each architecture.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of designs.")
def best(objective, top_k, per_arch, as_json, **o):
    """The best designs for a model that meet the latency limits, searched across architectures."""
    from explore.search import rank_best

    if top_k < 1:
        raise ConfigError(f"top is {top_k}; expected a positive integer")
    result = _run_search(o, need_price=objective == "tokens_per_usd")
    kept = result.kept
    if kept.empty:
        reasons = "; ".join(f"{n:,} {r}" for r, n in result.dropped.items() if n)
        raise ConfigError(f"no design of {o['model']} meets the limits ({reasons})")
    records = _records(rank_best(result, objective, top_k, per_arch))
    columns = ["device", "arch", "n_devices", "tp", "precision", "batch", "ttft_s", "tpot_s", objective]
    lines = [
        f"best {len(records)} of {len(kept):,} feasible designs by {objective} "
        f"({', '.join(f'{n:,} {r}' for r, n in result.dropped.items() if n) or 'none dropped'}):"
    ]
    lines += [" ".join(f"{k}={fmt(r[k])}" for k in dict.fromkeys(columns)) for r in records]
    emit(as_json, records, "\n".join(lines))


_chart_out = click.option(
    "--out",
    "-o",
    type=PathType(path_type=Path),
    default=None,
    callback=output_file,
    help="Chart path (a .png; an .svg is written beside it).",
)
"""The chart path option of ``pareto`` and ``compare``, checked before any work."""


@click.command(cls=StrictCommand)
@_search_options
@click.option("--x", "x_metric", default="tpot_s", show_default=True, help="Metric on the x axis.")
@click.option("--y", "y_metric", default="tokens_per_usd", show_default=True, help="Metric on the y axis.")
@click.option(
    "--z", "z_metric", default=None, help="A third metric (the front is then 3-D; the plot shows x-y)."
)
@_chart_out
@click.option("--json", "as_json", is_flag=True, help="Print the front as JSON.")
def pareto(x_metric, y_metric, z_metric, out, as_json, **o):
    """The Pareto front of a model's designs over two or three metrics, as a table and a plot."""
    from hwmodels.device_spec import load_device
    from roofline.pareto import check_metrics, pareto_front
    from roofline.plots import pareto_chart

    metrics = [x_metric, y_metric] + ([] if z_metric is None else [z_metric])
    check_metrics(metrics)  # before the search
    needs_price = any("usd" in m for m in metrics)
    result = _run_search(o, need_price=needs_price)
    kept = result.kept.copy()
    if kept.empty:
        raise ConfigError(f"no design of {o['model']} meets the limits")
    kept.insert(2, "arch", [load_device(d).arch for d in kept["device"]])
    front = pareto_front(kept, metrics, ("device", "n_devices", "precision", "batch"))
    out = out or Path("results") / f"pareto-{front['model'].iloc[0]}-{x_metric}-{y_metric}.png"
    note = f"price basis: {o['price_basis']}" if needs_price else ""
    paths = pareto_chart(
        kept,
        front,
        x_metric,
        y_metric,
        out,
        f"{front['model'].iloc[0]}: {len(front)} designs on the front",
        note=note,
    )
    payload = {"front": _records(front), "chart": [str(p) for p in paths], "designs": len(kept)}
    cols = ["design", *metrics]
    text = front[cols].to_string(index=False) + f"\n\nchart: {', '.join(map(str, paths))}"
    emit(as_json, payload, text)


@click.command(cls=StrictCommand)
@click.option("--model", "-m", required=True, help="Preset name, HF id or config.json path.")
@click.option("--device", "-d", "devices", multiple=True, required=True, help="Two or more devices.")
@click.option("--batch", "-b", type=int, default=1, show_default=True)
@click.option("--input-len", type=int, default=1024, show_default=True)
@click.option("--output-len", type=int, default=128, show_default=True)
@click.option("--precision", "-p", default="fp16", show_default=True)
@click.option("--tp", type=int, default=1, show_default=True)
@click.option("--pp", type=int, default=1, show_default=True)
@click.option("--ep", type=int, default=1, show_default=True)
@click.option("--framework", default=None)
@click.option("--price-basis", type=click.Choice(["tco", "cloud"]), default="tco", show_default=True)
@_chart_out
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per device.")
def compare(
    model, devices, batch, input_len, output_len, precision, tp, pp, ep, framework, price_basis, out, as_json
):
    """Two or more devices side by side under the same workload: a table and a chart."""
    import pandas as pd

    from hwsim.checks import note_missing_price
    from roofline.economics import Economics
    from roofline.estimate import estimate
    from roofline.plots import compare_chart

    if len(devices) < 2:
        raise ConfigError("compare needs two or more devices (-d A -d B ...)")
    rows = []
    for device in dict.fromkeys(devices):
        est = estimate(
            model,
            device,
            batch=batch,
            input_len=input_len,
            output_len=output_len,
            tp=tp,
            pp=pp,
            ep=ep,
            precision=precision,
            framework=framework,
            economics=Economics(basis=price_basis),
        )
        rows.append(est.to_dict())
        if rows[-1]["usd_per_million_tokens"] is None:
            note_missing_price(device, price_basis)
    frame = pd.DataFrame(rows)
    metrics = ["ttft_s", "tpot_s", "tokens_per_j", "tokens_per_usd"]
    out = out or Path("results") / f"compare-{frame['model'].iloc[0]}.png"
    paths = compare_chart(
        frame,
        metrics,
        out,
        f"{frame['model'].iloc[0]}, batch {batch}, {precision}; price basis {price_basis}",
    )
    shown = [
        "ttft_s",
        "tpot_s",
        "decode_tokens_per_s",
        "tokens_per_j",
        "tokens_per_usd",
        "memory_bytes",
        "fits",
    ]
    table = frame.set_index("device")[shown].T.to_string(na_rep="-")  # "-": no figure (no price on the basis)
    text = table + f"\n\nchart: {', '.join(map(str, paths))}"
    emit(as_json, rows, text)
