"""Run a sweep on a backend and stream its rows to a Parquet dataset, resumably.

The output is a directory (``sweep.parquet/``) of one Parquet file per chunk; a chunk's
file is written to a temporary name and renamed when complete, so a sweep stopped at any
moment leaves only whole chunks, and a rerun skips the chunks whose file exists: every
point ends up written exactly once. ``pandas.read_parquet(out)`` reads the whole table.

Backends: ``local`` (in this process), ``processes`` (the local cores), ``dask`` (a Dask
distributed cluster at ``scheduler``, or a ``LocalCluster`` when none is given; the
``cluster`` extra installs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from explore.chunks import chunks
from explore.points import Chunk, price
from explore.spec import SweepSpec
from workloads.errors import ConfigError

BACKENDS = ("local", "processes", "dask")
SCHEDULER_TIMEOUT_S = 7
"""How long a Dask scheduler address may take to answer before the sweep gives up (the client's
connection retries add a little, so the sweep fails within 10 s)."""


def _out_dir(out: str | Path) -> Path:
    path = Path(out)
    if str(out).strip() == "":
        raise ConfigError("out is an empty path; expected a directory name such as sweep.parquet")
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"out {str(path)!r} exists and is not a directory (a sweep writes a Parquet dataset)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out {str(path)!r}: cannot create it ({exc.strerror})") from None
    return path


def _write(out: Path, chunk: Chunk, frame: pd.DataFrame) -> None:
    tmp = out / f".{chunk.name}.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out / f"{chunk.name}.parquet")


def pending(spec: SweepSpec, out: Path) -> tuple[list[Chunk], int]:
    """The chunks not yet written, and the points already done."""
    todo, done = [], 0
    for c in chunks(spec):
        if (out / f"{c.name}.parquet").exists():
            done += c.n
        else:
            todo.append(c)
    return todo, done


def _local(todo: Iterable[Chunk]):
    for c in todo:
        yield c, price(c)


def _processes(todo: list[Chunk]):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {pool.submit(price, c): c for c in todo}
        for f in as_completed(futures):
            yield futures[f], f.result()


def _dask(todo: list[Chunk], scheduler: str | None):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("the dask backend needs dask.distributed: pip install -e '.[cluster]'") from None
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
            except Exception as exc:  # refused, timed out, or not a Dask scheduler at all
                raise ConfigError(
                    f"scheduler {scheduler!r} could not be reached as a Dask scheduler within "
                    f"{SCHEDULER_TIMEOUT_S} s ({type(exc).__name__}); check the address and that it is running"
                ) from None
        else:
            cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=False)
            client = Client(cluster)
        with client:
            futures = client.map(price, todo, pure=False)
            by_key = {f.key: c for f, c in zip(futures, todo, strict=True)}
            for f in as_completed(futures):
                yield by_key[f.key], f.result()
    finally:
        if cluster is not None:
            cluster.close()


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    backend: str = "local",
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Price every pending chunk of ``spec`` on ``backend`` and write it under ``out``."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise ConfigError(f"scheduler {scheduler!r} given with backend {backend!r}; it needs --backend dask")
    path = _out_dir(out)
    todo, done = pending(spec, path)
    total = done + sum(c.n for c in todo)
    if progress:
        progress(done, total)
    runs = {"local": lambda: _local(todo), "processes": lambda: _processes(todo)}
    results = runs[backend]() if backend != "dask" else _dask(todo, scheduler)
    for chunk, frame in results:
        _write(path, chunk, frame)
        done += chunk.n
        if progress:
            progress(done, total)
    return path


def read_sweep(out: str | Path) -> pd.DataFrame:
    """The sweep's rows in chunk order."""
    path = Path(out)
    parts = sorted(path.glob("part-*.parquet"))
    if not parts:
        raise ConfigError(f"{str(path)!r} holds no sweep results (part-*.parquet)")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
