"""Run a sweep on a backend and stream its rows to one Parquet file, resumably.

While it runs, each chunk is written to its own file in a working directory beside the output
(``sweep.parquet.parts/``), under a temporary name renamed when complete, so a sweep stopped at
any moment leaves only whole chunks, and a rerun skips the chunks whose file exists: every point
ends up written exactly once. When every chunk is written they are streamed, in chunk order, into
the output file (``sweep.parquet``, written under a temporary name and renamed), and the working
directory is removed. ``pandas.read_parquet(out)`` reads the whole table.

Backends: ``local`` (in this process), ``processes`` (the local cores), ``dask`` (a Dask
distributed cluster at ``scheduler``, or a ``LocalCluster`` when none is given; the
``cluster`` extra installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from explore.chunks import chunks
from explore.points import Chunk, price
from explore.spec import SweepSpec
from roofline.estimate import THREADS_ENV
from workloads.errors import ConfigError

BACKENDS = ("local", "processes", "dask")
SCHEDULER_TIMEOUT_S = 7
"""How long a Dask scheduler address may take to answer before the sweep gives up (the client's
connection retries add a little, so the sweep fails within 10 s)."""


PARTS_SUFFIX = ".parts"
"""The working directory of a running sweep: the output's name plus this suffix."""

SPEC_KEY = b"hwsim.sweep.chunks"
"""Parquet metadata key of a finished sweep: its chunks (name and points), to tell a rerun of the
same sweep (nothing left to do) from another sweep aimed at the same file."""


NAME_MAX_BYTES = 255
"""Longest file or folder name Linux and macOS file systems take."""


def _paths(out: str | Path) -> tuple[Path, Path]:
    """(the output file, its working directory), checked before any work: a file name short
    enough for its working directory's name, not a folder, in a folder that can be made and
    written to."""
    if str(out).strip() == "":
        raise ConfigError("out is an empty path; expected a file name such as results/sweep.parquet")
    path = Path(out)
    if path.name in ("", ".", ".."):
        raise ConfigError(
            f"out {str(out)!r} names a folder, not a file; expected a file name such as results/sweep.parquet"
        )
    longest = NAME_MAX_BYTES - len(PARTS_SUFFIX)  # the working directory is OUT.parts
    size = len(os.fsencode(path.name))
    if size > longest:
        raise ConfigError(
            f"out {_clipped(path)}: its name is {size} bytes long; expected at most {longest} "
            f"(file systems take {NAME_MAX_BYTES}, and the working directory adds {PARTS_SUFFIX!r})"
        )
    for part in path.parent.parts:
        if len(os.fsencode(part)) > NAME_MAX_BYTES:
            raise ConfigError(
                f"out {_clipped(path)}: a folder name in it is {len(os.fsencode(part))} bytes long; "
                f"file systems take {NAME_MAX_BYTES}"
            )
    try:
        if path.is_dir():
            raise ConfigError(
                f"out {str(path)!r} is a directory; a sweep writes one Parquet file (e.g. {path}.parquet)"
            )
        file = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if file is not None:
            raise ConfigError(f"out {str(path)!r}: {str(file)!r} is a file, not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out {str(path)!r}: cannot create its folder ({exc.strerror or exc})") from None
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"out {str(path)!r}: its folder {str(folder)!r} cannot be written to")
    return path, path.with_name(path.name + PARTS_SUFFIX)


def _clipped(path: Path, most: int = 80) -> str:
    """``path`` quoted, its middle cut out when it is long (a message stays one readable line)."""
    text = str(path)
    return repr(text) if len(text) <= most else repr(f"{text[: most // 2]}...{text[-most // 2 :]}")


def _make_parts(parts: Path) -> None:
    """Create the working directory (refused, one line, when the file system will not)."""
    try:
        parts.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"out {str(parts)[: -len(PARTS_SUFFIX)]!r}: cannot create its working directory {parts.name!r} "
            f"({exc.strerror or exc})"
        ) from None
    if not parts.is_dir():
        raise ConfigError(f"out: {str(parts)!r} is a file; remove it or choose another --out")


def _fingerprint(spec: SweepSpec) -> bytes:
    return ",".join(f"{c.name}:{c.n}" for c in chunks(spec)).encode()


def _write(parts: Path, chunk: Chunk, frame: pd.DataFrame) -> None:
    tmp = parts / f".{chunk.name}.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, parts / f"{chunk.name}.parquet")


def _finish(spec: SweepSpec, out: Path, parts: Path) -> None:
    """Stream the chunk files, in chunk order, into ``out`` (one schema, the union of the chunks'
    columns with ``error`` last: a column that is null in one chunk takes its type from the others,
    and a column a chunk lacks, such as the metrics of a serving design that could not run, is null
    there) and remove the working directory."""
    files = [parts / f"{c.name}.parquet" for c in chunks(spec)]
    schema = pa.unify_schemas(
        [pq.read_schema(f).remove_metadata() for f in files], promote_options="permissive"
    )
    if "error" in schema.names:
        error = schema.field("error")
        schema = schema.remove(schema.get_field_index("error")).append(error)
    schema = schema.with_metadata({SPEC_KEY: _fingerprint(spec)})
    tmp = out.with_name(f".{out.name}.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for f in files:
            table = pq.read_table(f).replace_schema_metadata(None)
            for field in schema:
                if field.name not in table.column_names:
                    table = table.append_column(field.name, pa.nulls(len(table), field.type))
            writer.write_table(table.select(schema.names).cast(schema))
    os.replace(tmp, out)
    shutil.rmtree(parts)


def pending(spec: SweepSpec, parts: Path) -> tuple[list[Chunk], int]:
    """The chunks not yet written to the working directory ``parts``, and the points already done."""
    todo, done = [], 0
    for c in chunks(spec):
        if (parts / f"{c.name}.parquet").exists():
            done += c.n
        else:
            todo.append(c)
    return todo, done


def _local(todo: Iterable[Chunk]):
    for c in todo:
        yield c, price(c)


def _one_thread() -> None:
    """A worker process prices its chunks on one thread: the processes already share the cores."""
    os.environ[THREADS_ENV] = "1"


def _processes(todo: list[Chunk]):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, initializer=_one_thread) as pool:
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
    """Price every pending chunk of ``spec`` on ``backend`` and write the table to ``out`` (a
    Parquet file); a finished sweep of the same spec at ``out`` is left as it is."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise ConfigError(f"scheduler {scheduler!r} given with backend {backend!r}; it needs --backend dask")
    path, parts = _paths(out)
    if path.exists() and not parts.exists():
        if _finished_with(path) == _fingerprint(spec):
            if progress:
                progress(spec.size, spec.size)
            return path
        raise ConfigError(
            f"out {str(path)!r} already holds another sweep's table; remove it or choose another --out"
        )
    _make_parts(parts)
    todo, done = pending(spec, parts)
    total = done + sum(c.n for c in todo)
    if progress:
        progress(done, total)
    runs = {"local": lambda: _local(todo), "processes": lambda: _processes(todo)}
    results = runs[backend]() if backend != "dask" else _dask(todo, scheduler)
    for chunk, frame in results:
        _write(parts, chunk, frame)
        done += chunk.n
        if progress:
            progress(done, total)
    _finish(spec, path, parts)
    return path


def _finished_with(path: Path) -> bytes | None:
    """The chunk fingerprint a finished sweep file records, or None (not a sweep's file)."""
    try:
        return (pq.read_schema(path).metadata or {}).get(SPEC_KEY)
    except (OSError, pa.ArrowInvalid):
        return None


def read_sweep(out: str | Path) -> pd.DataFrame:
    """The sweep's rows in chunk order."""
    path = Path(out)
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} holds no finished sweep (run hwsim sweep with --out {path})")
    return pd.read_parquet(path)
