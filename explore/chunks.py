"""The chunks of a sweep, in a fixed order (so a resumed sweep finds the same chunks).

The full grid is enumerated design group by design group (``spec.design_groups``), each
group's batch x prompt x output grid flattened and cut into chunks of at most
``MAX_CHUNK`` points; random and Latin-hypercube sampling draw point indices with a seeded
generator and group the drawn points by design.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from explore.points import Chunk
from explore.spec import DESIGN_KEYS, SERVING_KEYS, SWEEP_AXES, SweepSpec, design_groups, design_of

MAX_CHUNK = 65_536
"""Most points priced in one call: large enough to amortize the op table, small enough for cache."""


def _with_devices(design: dict[str, Any]) -> dict[str, Any]:
    d = dict(design)
    if "n_devices" not in d:
        d["n_devices"] = int(d["tp"] * d["pp"] * d["ep"])
    return {k: d[k] for k in (*DESIGN_KEYS, "system", "link") if k in d}


def _axis_keys(spec: SweepSpec) -> list[str]:
    return [k for k in (*SWEEP_AXES, *SERVING_KEYS) if k in spec.values]


def _grid_chunks(spec: SweepSpec) -> Iterator[Chunk]:
    axis_keys = _axis_keys(spec)
    values = {k: _typed(k, np.asarray(spec.values[k], dtype=object)) for k in axis_keys}
    shape = tuple(len(v) for v in values.values())
    n = math.prod(shape)
    step = n if spec.serving else MAX_CHUNK  # a serving group is one task; analytic ones are cut
    index = 0
    for design in design_groups(spec):
        d = _with_devices(design)
        for start in range(0, n, step):
            # the points start..stop of the flattened grid (C order: the last key varies fastest),
            # without building the whole grid
            at = np.unravel_index(np.arange(start, min(start + step, n)), shape)
            axes = {k: values[k][i] for k, i in zip(axis_keys, at, strict=True)}
            yield Chunk(index, d, axes, {"seed": spec.seed} if spec.serving else None)
            index += 1


def _typed(key: str, values: np.ndarray) -> np.ndarray:
    if key in ("lengths",):
        return values.astype(str)
    if key in ("rate", "slo_ttft", "slo_tpot"):
        return values.astype(float)
    return values.astype(np.int64)


def _sampled_chunks(spec: SweepSpec) -> Iterator[Chunk]:
    keys = list(spec.values)
    sizes = [len(spec.values[k]) for k in keys]
    rng = np.random.default_rng(spec.seed)
    n = spec.n_samples
    if spec.sampling == "random":
        idx = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    else:  # Latin hypercube: each key's n strata visited once, in a random order
        u = (np.stack([rng.permutation(n) for _ in sizes], axis=1) + rng.random((n, len(sizes)))) / n
        idx = np.minimum((u * np.asarray(sizes)).astype(np.int64), np.asarray(sizes) - 1)
    axis_keys = _axis_keys(spec)
    design_keys = [k for k in keys if k not in axis_keys]
    groups: dict[tuple, list[int]] = {}
    for row in range(n):
        key = tuple(int(idx[row, keys.index(k)]) for k in design_keys)
        groups.setdefault(key, []).append(row)
    for index, (key, rows) in enumerate(sorted(groups.items())):
        design = design_of({k: spec.values[k][i] for k, i in zip(design_keys, key, strict=True)})
        axes = {
            k: _typed(k, np.asarray([spec.values[k][idx[r, keys.index(k)]] for r in rows], dtype=object))
            for k in axis_keys
        }
        yield Chunk(index, _with_devices(design), axes, {"seed": spec.seed} if spec.serving else None)


def chunks(spec: SweepSpec) -> Iterator[Chunk]:
    """Every chunk of the sweep, in order."""
    yield from (_grid_chunks(spec) if spec.sampling == "grid" else _sampled_chunks(spec))
