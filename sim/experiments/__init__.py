"""One module per modeled paper; each returns a tidy DataFrame
``[experiment, metric, condition, paper_value, hwsim_value, ratio, source]``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pandas as pd

from hwmodels.device_spec import DeviceSpec
from workloads.errors import unknown_name

COLUMNS = ["experiment", "metric", "condition", "paper_value", "hwsim_value", "ratio", "source"]
VERDICT_COLUMNS = ["tolerance", "verdict", "cause"]
"""Added by ``reproduce``: the ratio's tolerance, ``pass`` or ``miss``, and for a miss its cause."""
TOLERANCE = 1.33
"""A headline passes when hwsim / paper lies within [1/1.33, 1.33] unless its experiment says otherwise."""
EXPERIMENTS = (
    "flexgen",
    "flightllm",
    "hnlpu",
    "instinfer",
    "lamina",
    "mllm-npu",
    "sail",
    "step3",
    "waferllm",
)
"""The experiments ``hwsim reproduce`` knows (one module each)."""


def comparison(experiment: str, rows: list[tuple[str, str, float, float]], source: str) -> pd.DataFrame:
    """The reproduce rows of an experiment from (metric, condition, paper value, hwsim value) tuples."""
    return pd.DataFrame(
        [
            {
                "experiment": experiment,
                "metric": m,
                "condition": c,
                "paper_value": p,
                "hwsim_value": v,
                "ratio": v / p,
                "source": source,
            }
            for m, c, p, v in rows
        ],
        columns=COLUMNS,
    )


def tornado(
    base: DeviceSpec,
    block: str,
    ranges: Mapping[str, tuple[float, float]],
    headlines: Callable[[DeviceSpec], Mapping[str, float]],
    caps: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Each headline at the low and high end of each assumed parameter of the device's ``block``
    (a multiplier per end, a parameter capped at ``caps`` where given), beside its baseline:
    rows ``[parameter, end, multiplier, metric, value, baseline]`` for a tornado chart."""
    reference = headlines(base)
    rows = []
    for param, ends in ranges.items():
        for end, mult in zip(("low", "high"), ends, strict=True):
            values = dict(base.extra[block])
            values[param] = min(values[param] * mult, (caps or {}).get(param, float("inf")))
            varied = headlines(replace(base, extra={**base.extra, block: values}))
            rows += [
                {
                    "parameter": param,
                    "end": end,
                    "multiplier": mult,
                    "metric": metric,
                    "value": value,
                    "baseline": reference[metric],
                }
                for metric, value in varied.items()
            ]
    return pd.DataFrame(rows)


def registry() -> dict[str, Callable[[], pd.DataFrame]]:
    """Experiment name -> function (imported lazily: each may take seconds)."""
    import importlib

    return {
        name: importlib.import_module(f"sim.experiments.{name.replace('-', '_')}").run for name in EXPERIMENTS
    }


def reproduce(names: list[str] | None = None) -> pd.DataFrame:
    """Run the named experiments (all when ``names`` is empty); each row with its verdict."""
    table = registry()
    names = names or sorted(table)
    for n in names:
        if n not in table:
            raise unknown_name("experiment", n, table, "hwsim reproduce --help")
    return with_verdicts(pd.concat([table[n]() for n in names], ignore_index=True))


def setup_table(names: list[str] | None = None) -> pd.DataFrame:
    """Each experiment's ``PAPER_SETUP``: rows ``[experiment, setting, paper, hwsim, source]``."""
    import importlib

    rows = []
    for name in names or EXPERIMENTS:
        module = importlib.import_module(f"sim.experiments.{name.replace('-', '_')}")
        rows += [
            {"experiment": name, "setting": a, "paper": b, "hwsim": c, "source": d}
            for a, b, c, d in module.PAPER_SETUP
        ]
    return pd.DataFrame(rows)


def with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``tolerance``, ``verdict`` (pass when the ratio is within the tolerance either way) and,
    for a miss, the experiment module's one-line ``MISS_CAUSES`` entry for that metric."""
    import importlib

    causes: dict[str, dict[str, str]] = {}
    for name in frame["experiment"].unique():
        module = importlib.import_module(f"sim.experiments.{name.replace('-', '_')}")
        causes[name] = getattr(module, "MISS_CAUSES", {})
    tol = frame.get("tolerance", pd.Series(TOLERANCE, index=frame.index)).fillna(TOLERANCE)
    ratio = frame["ratio"].astype(float)
    passed = (ratio <= tol) & (ratio >= 1.0 / tol)
    out = frame.assign(tolerance=tol, verdict=passed.map({True: "pass", False: "miss"}))
    out["cause"] = [
        "" if ok else causes[e].get(m, "cause not yet quantified")
        for ok, e, m in zip(passed, out["experiment"], out["metric"], strict=True)
    ]
    return out[COLUMNS + VERDICT_COLUMNS]


def verdict_text(frame: pd.DataFrame, width: int = 120) -> str:
    """The verdict table in plain text no wider than ``width``: one line per headline, then
    the cause of each miss, wrapped."""
    import textwrap

    lines = [f"{'experiment':<10} {'metric':<36} {'paper':>10} {'hwsim':>10} {'ratio':>7} {'verdict':<7}"]
    lines.append("-" * len(lines[0]))
    for r in frame.itertuples():
        lines.append(
            f"{r.experiment:<10.10} {r.metric:<36.36} {r.paper_value:>10.4g} {r.hwsim_value:>10.4g} "
            f"{r.ratio:>7.3g} {r.verdict:<7}"
        )
    misses = frame[frame["verdict"] == "miss"]
    if len(misses):
        lines += ["", "misses and their causes:"]
        for r in misses.itertuples():
            lines += textwrap.wrap(
                f"{r.experiment} {r.metric} ({r.ratio:.3g}x): {r.cause}",
                width=width,
                initial_indent="  ",
                subsequent_indent="    ",
            )
    return "\n".join(lines)
