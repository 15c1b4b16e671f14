"""One module per modeled paper; each returns a tidy DataFrame
``[experiment, metric, condition, paper_value, hwsim_value, ratio, source]``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pandas as pd

from hwmodels.device_spec import DeviceSpec
from workloads.errors import unknown_name

COLUMNS = ["experiment", "metric", "condition", "paper_value", "hwsim_value", "ratio", "source"]


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
    from sim.experiments import flexgen, instinfer, mllm_npu, sail, waferllm

    return {
        "flexgen": flexgen.run,
        "instinfer": instinfer.run,
        "mllm-npu": mllm_npu.run,
        "sail": sail.run,
        "waferllm": waferllm.run,
    }


def reproduce(names: list[str] | None = None) -> pd.DataFrame:
    """Run the named experiments (all when ``names`` is empty)."""
    table = registry()
    names = names or sorted(table)
    for n in names:
        if n not in table:
            raise unknown_name("experiment", n, table, "hwsim reproduce --help")
    return pd.concat([table[n]() for n in names], ignore_index=True)
