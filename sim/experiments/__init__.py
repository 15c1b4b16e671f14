"""One module per modeled paper; each returns a tidy DataFrame
``[experiment, metric, condition, paper_value, hwsim_value, ratio, source]``."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

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
