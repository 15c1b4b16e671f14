"""CLI commands of the event path: ``hwsim systems``, ``hwsim simulate``, ``hwsim reproduce``."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim.options import PathType, StrictCommand, output_file
from hwsim.output import emit, estimate_text, table


@click.command(cls=StrictCommand)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def systems(as_json):
    """List the shipped system files (use a name or a path with --system)."""
    from sim.system import load_system, system_names

    rows = []
    for name in system_names():
        s = load_system(name)
        rows.append(
            {
                "name": name,
                "gpu": s.gpu.name,
                "gpus": s.devices["gpu"][1],
                "tp": s.tp,
                "pp": s.pp,
                "links": ", ".join(s.links),
                "weights": dict(s.weights),
                "kv": dict(s.kv),
                "source": s.source,
            }
        )
    emit(as_json, rows, table(rows, ["name", "gpu", "gpus", "tp", "pp", "links", "weights", "kv"]))


@click.command(cls=StrictCommand)
@click.option(
    "--system", "-s", "system_name", required=True, help="Shipped system name or path to a system YAML."
)
@click.option("--model", "-m", required=True, help="Preset name or path to a config.json.")
@click.option(
    "--batch", "-b", type=int, default=1, show_default=True, help="Sequences (a block when offloaded)."
)
@click.option("--input-len", type=int, default=1024, show_default=True, help="Prompt tokens per sequence.")
@click.option("--output-len", type=int, default=128, show_default=True, help="Generated tokens per sequence.")
@click.option("--precision", "-p", default="fp16", show_default=True, help="As for estimate.")
@click.option("--framework", default=None, help="Serving framework whose overheads apply (as for estimate).")
@click.option("--tp", type=int, default=None, help="Override the file's tensor-parallel degree.")
@click.option("--pp", type=int, default=None, help="Override the file's pipeline-parallel degree.")
@click.option(
    "--timeline",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    callback=output_file,
    help="Write a Gantt chart of the busy intervals (.png and .svg).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate(
    system_name, model, batch, input_len, output_len, precision, framework, tp, pp, timeline, as_json
):
    """Event-driven simulation on a system: overlap, contention, pipelines, offload.

    Checks as estimate's: FP8 or FP4 without those tensor cores and a prompt plus output beyond
    the model's context are refused; tp x ep beyond the GPU's NVLink domain is warned of."""
    from hwsim.checks import precision_for, warn_scale_out
    from sim.simulate import simulate as run
    from sim.system import load_system
    from workloads.model_spec import check_lengths, load_model

    system, spec = load_system(system_name), load_model(model)
    precision_for(precision, system.gpu)
    check_lengths(spec, input_len, output_len)
    result = run(
        system,
        spec,
        batch=batch,
        input_len=input_len,
        output_len=output_len,
        precision=precision,
        framework=framework,
        tp=tp,
        pp=pp,
    )
    group = (system.tp if tp is None else tp) * system.ep
    if group > 1:
        link = system.gpu_link("tp")
        where = f"the system prices them on its {link.name} link ({link.bw_bytes_per_s / 1e9:g} GB/s)"
        warn_scale_out(system.gpu, group, where)
    if timeline:
        from roofline.plots import timeline_chart

        timeline_chart(result.timeline.intervals, timeline, title=f"{model} on {system_name}, batch {batch}")
    d = result.to_dict()
    text = estimate_text({k: v for k, v in d.items() if k != "utilization"})
    text += "\n" + "\n".join(f"{'utilization ' + r:>24}: {u:.1%}" for r, u in d["utilization"].items())
    emit(as_json, d, text)


def _experiment_names() -> str:
    from sim.experiments import EXPERIMENTS

    return ", ".join(EXPERIMENTS)


@click.command(
    cls=StrictCommand,
    help="Reproduce papers' comparisons: each headline with the paper's value, hwsim's, their ratio "
    f"and a verdict (pass within the tolerance, else miss with its cause). NAMES: any of {_experiment_names()} "
    "(default: all).",
)
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def reproduce(names, as_json):
    from sim.experiments import reproduce as run
    from sim.experiments import verdict_text

    frame = run(list(names))
    emit(as_json, frame.to_dict(orient="records"), verdict_text(frame))
