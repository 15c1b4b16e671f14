"""The ``OpTable`` of one inference phase: FLOPs and bytes per tensor class, per op.

One row per distinct op; identical layers are folded into ``count``. Columns are
NumPy arrays of shape ``(n_ops, *sweep_shape)``: batch, prompt length and context may
be arrays and every formula broadcasts over them.

Conventions (pinned by tests):

- FLOPs are matrix-multiply FLOPs, 2 per multiply-add (``gemm_flops``), in GEMMs and in
  attention (QK^T and PV). Elementwise work (norms, activations, RoPE, softmax) is counted
  by its bytes only: it is memory-bound on every device hwsim models.
- Bytes come from bits (``numel * bits / 8``); weight bytes include group scales.
- Values are per device after tensor (``tp``) and expert (``ep``) sharding, and per
  occurrence; ``count`` says how many times the op runs in the step.
- Causal attention over ``T`` new tokens after ``ctx`` cached ones attends on average
  ``ctx + (T + 1) / 2`` keys per query. Other layer kinds (``AttentionLayer``) attend fewer:
  a sliding window of ``W`` keys ``min(p + 1, W)`` at position ``p``, a chunk of ``C``
  tokens ``p mod C + 1``, and DeepSeek sparse attention ``min(p + 1, top-k)``; the mean
  over the ``T`` new positions is exact (``_mean_keys``). Each kind is its own
  ``attention`` row, with the cached tokens it reads (``_cached_read``).
- Linear attention (Gated DeltaNet) keeps a fixed state per sequence: each token costs
  ``3 x 2 x key_dim x value_dim`` FLOPs per value head (read-out, delta and update, each a
  matrix-vector product over the state), and each step reads and writes the whole state
  once per sequence, whatever the context.
- The KV cache (``kv_cache_bytes``) holds ``min(ctx, W)`` tokens in a sliding layer,
  ``min(ctx, C)`` in a chunked one (the chunk an engine must reserve), every token in a
  full or sparse one (sparse: the latent and the indexer's key), and the fixed state in a
  linear one.
- Collectives: a ring all-reduce of ``D`` bytes over ``tp`` devices sends
  ``2 (tp - 1) / tp * D`` bytes per device in ``2 (tp - 1)`` latency steps (Patarasuk and
  Yuan, JPDC 2009); an expert-parallel all-to-all sends ``(ep - 1) / ep`` of the routed
  activations, once to dispatch and once to combine.
- MoE: a batch of ``m`` tokens routed uniformly to ``k`` of ``E`` experts touches
  ``E (1 - (1 - k/E)^m)`` distinct experts in expectation; each touched expert's weights
  are read once, not once per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from workloads.errors import ConfigError, positive_number
from workloads.model_spec import FULL, AttentionLayer, ModelSpec
from workloads.quant import Quant

OP_KINDS = ("embedding", "norm", "gemm", "attention", "elementwise", "router", "collective")
"""The kinds an op can have."""

BYTE_CLASSES = ("weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes")
"""Tensor classes whose bytes cross the device's memory."""

INT8_MAX_BITS_PER_WEIGHT = 8.6
"""Stored bits per weight up to which weights are 8-bit or narrower integers (Q8_0 stores
8.5 with its block scales) and run through integer kernels."""

_NUMERIC = ("m", "n", "k", "keys", "kv_streams", "flops", *BYTE_CLASSES, "link_bytes", "link_steps")


def gemm_flops(m: Any, n: Any, k: Any) -> Any:
    """FLOPs of an (m x k) @ (k x n) product: 2 per multiply-add (the one place this lives)."""
    return product(2.0, m, n, k)


def product(*factors: Any) -> Any:
    """The product of ``factors`` (numbers or arrays that broadcast together), smallest first:
    over a sweep, the scalars and single-axis arrays meet before the full-size one, which is then
    touched once."""
    out = 1.0
    for factor in sorted(factors, key=np.size):
        out = out * factor
    return out


def bytes_of(numel: Any, bits: float) -> Any:
    """Bytes of ``numel`` elements of ``bits`` bits each (any width, 3-bit included)."""
    return numel * (bits / 8.0)


def is_blank(column: np.ndarray) -> bool:
    """Whether ``column`` is all zero and holds at most one value per op (size 1 along every sweep
    axis), told without a pass over the sweep: a term no op of a table fills."""
    return column.size <= column.shape[0] and not column.any()


def running_sum(terms: Iterable[np.ndarray], empty: np.ndarray, fresh: bool = False) -> np.ndarray:
    """The sum of ``terms`` (arrays that broadcast together) in their order, or ``empty`` when
    there are none; accumulated in place once the running sum has the full broadcast shape, so a
    sum of k full-size terms allocates one array, not k - 1 (none when the terms are ``fresh``:
    new arrays the sum may write into)."""
    out, owned = None, False
    for term in terms:
        if out is None:
            out, owned = term, fresh
        elif owned and np.broadcast_shapes(out.shape, term.shape) == out.shape:
            out += term
        else:
            out, owned = out + term, True
    return empty if out is None else out


@dataclass(frozen=True)
class OpTable:
    """Struct of arrays: one row per op, sweep axes after the op axis.

    Attributes
    ----------
    name, kind : np.ndarray of str, shape (n_ops,)
    count : np.ndarray, shape (n_ops,)
        Occurrences per step (layers).
    n_kernels : np.ndarray, shape (n_ops,)
        Kernel launches per occurrence.
    module_kernels : np.ndarray, shape (n_ops,)
        Kernel launches per occurrence when the model runs as HF Transformers' eager PyTorch
        modules (``HF_MODULE_KERNELS``): an RMSNorm upcast to FP32 is eight kernels, q, k and v
        three GEMMs, rotary embedding ten elementwise kernels.
    m, n, k : np.ndarray, shape (n_ops, *sweep)
        GEMM shape per occurrence (``m`` rows of activations); 0 for non-GEMM ops.
    keys : np.ndarray, shape (n_ops, *sweep)
        Mean keys each query attends in a softmax ``attention`` op (``ctx + (T + 1) / 2`` for
        full causal attention); 0 for every other op.
    kv_streams : np.ndarray, shape (n_ops, *sweep)
        (sequence, KV head) pairs whose cache a softmax ``attention`` op walks per occurrence
        (``batch x kv_heads`` on the device): a decode kernel's unit of work, each with its own
        block table and split-KV reduction; 0 for every other op.
    flops : np.ndarray
        FLOPs per occurrence.
    weight_bytes, act_in_bytes, act_out_bytes, kv_read_bytes, kv_write_bytes : np.ndarray
        Bytes per occurrence of each tensor class, bytes.
    link_bytes : np.ndarray
        Bytes each device sends over its link per occurrence (collectives).
    link_steps : np.ndarray
        Latency-bound steps of the collective per occurrence.
    fmt : np.ndarray of str, shape (n_ops,)
        Math format of the op's FLOPs (``fp16``, ``fp8``, ``int8``...).
    kv_group : np.ndarray, shape (n_ops,)
        Query heads that share each cached KV head in an attention op (1 elsewhere): a
        kernel that does not exploit the sharing reads the KV cache this many times.
    weight_block : np.ndarray, shape (n_ops,)
        Edge of the square weight blocks that share one FP8 scale in a GEMM over block-scaled
        FP8 weights (128 for DeepSeek-V3/R1's checkpoint, ``ModelSpec.fp8_weight_block``): its
        kernels dequantize per block (``FrameworkTerms.block_fp8``); 0 for every other op.
    weight_bits : np.ndarray, shape (n_ops,)
        Bits each weight parameter of the op takes as stored, scales included (16 for BF16,
        4.25 for MXFP4's 4-bit values with an 8-bit scale per 32); 0 for an op without weights.
        An engine may run a format on kernels of its own (``FrameworkTerms.moe_launches``).
    link_peers : np.ndarray, shape (n_ops,)
        Other devices a collective op's traffic goes to at once (``tp - 1`` for a tensor-parallel
        all-reduce, ``ep - 1`` for the experts' all-to-all, 1 for a pipeline send; 0 elsewhere):
        on a board whose devices are wired all to all (``LinkSpec.mesh_peers``) it crosses that
        many of each device's point-to-point links.

    In a table of ``build_op_groups``, a sweep column that is the same array for every op has
    size 1 along the op axis too (it broadcasts to ``(n_ops, *sweep_shape)`` all the same).
    """

    name: np.ndarray
    kind: np.ndarray
    count: np.ndarray
    n_kernels: np.ndarray
    module_kernels: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    keys: np.ndarray
    kv_streams: np.ndarray
    flops: np.ndarray
    weight_bytes: np.ndarray
    act_in_bytes: np.ndarray
    act_out_bytes: np.ndarray
    kv_read_bytes: np.ndarray
    kv_write_bytes: np.ndarray
    link_bytes: np.ndarray
    link_steps: np.ndarray
    fmt: np.ndarray
    kv_group: np.ndarray
    link_peers: np.ndarray
    weight_block: np.ndarray
    weight_bits: np.ndarray
    phase: str = "decode"

    @property
    def sweep_shape(self) -> tuple[int, ...]:
        """Shape of the sweep axes (empty for a single configuration). Columns broadcast to
        ``(n_ops, *sweep_shape)``; a column constant along an axis has size 1 there."""
        return np.broadcast_shapes(*(getattr(self, c).shape for c in _NUMERIC))[1:]

    @property
    def n_ops(self) -> int:
        return len(self.name)

    def per_step(self, column: str) -> np.ndarray:
        """A column times ``count``: the op's total per step, shape (n_ops, *sweep)."""
        values = getattr(self, column)
        return values * self.count.reshape((-1,) + (1,) * (values.ndim - 1))

    def total(self, column: str) -> np.ndarray:
        """Sum over ops of a column times ``count``, shape ``sweep_shape``."""
        return self.per_step(column).sum(axis=0)

    @property
    def memory_bytes(self) -> np.ndarray:
        """Bytes crossing device memory per occurrence (all tensor classes)."""
        columns = [getattr(self, c) for c in BYTE_CLASSES]
        return running_sum((c for c in columns if not is_blank(c)), np.zeros_like(self.weight_bytes))

    @property
    def bits_per_weight(self) -> np.ndarray:
        """Stored bits per weight of each op, scales included (``weight_bits``; 16 for ops
        without weights), shape (n_ops, 1, ...) with the sweep's axes."""
        bits = np.where(self.weight_bits > 0, self.weight_bits, 16.0)
        return bits.reshape((-1,) + (1,) * (np.ndim(self.flops) - 1))

    def select(self, mask: np.ndarray) -> OpTable:
        """The rows where ``mask`` (shape (n_ops,)) is true."""
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            shared = f.name != "phase" and len(value) == 1 and self.n_ops > 1  # one column for every op
            picked[f.name] = value if f.name == "phase" or shared else value[mask]
        return OpTable(**picked)

    def to_frame(self):
        """A pandas DataFrame with one row per op (sweep axes must be scalar)."""
        import pandas as pd

        if self.sweep_shape:
            raise ValueError("to_frame needs a single configuration; index the sweep first")
        cols = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "phase"}
        return pd.DataFrame(cols)


class _Rows:
    """Collects op rows as scalars or arrays, then broadcasts them into an ``OpTable``."""

    def __init__(self, quant: Quant, fp8_weight_block: int = 0) -> None:
        self.rows: list[dict[str, Any]] = []
        self.quant = quant
        self.fp8_weight_block = fp8_weight_block
        """The model's FP8 weight-scale block edge (``ModelSpec.fp8_weight_block``), 0 if none."""

    def weight_block(self, weight_bytes_per_param: float, fmt: str) -> float:
        """The ``weight_block`` of a GEMM whose weight takes ``weight_bytes_per_param`` bytes
        and runs ``fmt`` math: the model's FP8 block edge where the checkpoint is block-scaled
        FP8 and this weight is stored in it (one byte a weight, FP8 math), else 0."""
        if self.fp8_weight_block and weight_bytes_per_param == 1.0 and fmt == "fp8":
            return float(self.fp8_weight_block)
        return 0.0

    def add(
        self,
        name: str,
        kind: str,
        count: float,
        *,
        flops: Any = 0.0,
        weight: Any = 0.0,
        act_in: Any = 0.0,
        act_out: Any = 0.0,
        kv_read: Any = 0.0,
        kv_write: Any = 0.0,
        link_bytes: Any = 0.0,
        link_steps: Any = 0.0,
        link_peers: int = 0,
        m: Any = 0.0,
        n: Any = 0.0,
        k: Any = 0.0,
        keys: Any = 0.0,
        kv_streams: Any = 0.0,
        n_kernels: int = 1,
        fmt: str | None = None,
        weight_block: float = 0.0,
        weight_bits: float = 0.0,
    ) -> None:
        if count <= 0:
            return
        if fmt is None:
            fmt = self.quant.act
            if kind in ("gemm", "router"):
                fmt = self.quant.compute_format
            elif kind == "attention":
                fmt = self.quant.attention_format
        self.rows.append(
            dict(
                name=name,
                kind=kind,
                count=float(count),
                n_kernels=float(n_kernels),
                fmt=fmt,
                flops=flops,
                weight_bytes=weight,
                act_in_bytes=act_in,
                act_out_bytes=act_out,
                kv_read_bytes=kv_read,
                kv_write_bytes=kv_write,
                link_bytes=link_bytes,
                link_steps=link_steps,
                link_peers=float(link_peers),
                m=m,
                n=n,
                k=k,
                keys=keys,
                kv_streams=kv_streams,
                weight_block=float(weight_block),
                weight_bits=float(weight_bits),
            )
        )

    def gemm(
        self,
        name: str,
        count: float,
        m: Any,
        n: float,
        k: float,
        quant: Quant,
        weight_op: str | None = None,
        n_weights: Any | None = None,
        block_scaled: bool = True,
    ) -> None:
        """A GEMM of m tokens by an (k x n) weight; ``n_weights`` overrides the weight elements
        read; ``weight_op`` names the weight for ``quant``'s overrides (default ``name``).
        ``block_scaled=False``: a weight that a block-scaled FP8 checkpoint keeps otherwise (its
        router and LM head in BF16) or that engines re-lay at load (MLA's absorbed products)."""
        wbytes = quant.weight_bytes_per_param(weight_op or name)
        fmt, act_bits = quant.gemm_format(weight_op or name)
        self.add(
            name,
            "gemm",
            count,
            flops=_times_rows(m, gemm_flops(1.0, n, k)),
            weight=(n * k if n_weights is None else n_weights) * wbytes,
            act_in=_times_rows(m, bytes_of(k, act_bits)),
            act_out=_times_rows(m, bytes_of(n, act_bits)),
            m=m,
            n=n,
            k=k,
            fmt=fmt,
            weight_block=self.weight_block(wbytes, fmt) if block_scaled else 0.0,
            weight_bits=8.0 * wbytes,
        )

    def table(self, phase: str) -> OpTable:
        """Stack the rows; each column keeps the broadcast shape of its own values only, so a
        column that does not depend on a sweep axis stays small (size 1 along it)."""
        return _stack(self.rows, self._shapes(), phase)

    def groups(self, phase: str) -> Iterator[OpTable]:
        """The rows split by the sweep axes each of their columns varies along: rows whose
        columns have the same shapes form one table, in order of first appearance, rows in their
        order within it. Every column of a table is then either of its rows' full shape or small
        (a decode step's GEMMs, which vary with the batch alone, stay of the batch's size beside
        an attention row that also varies with the context; a norm's FLOPs stay a scalar beside
        a GEMM's), and every table has the same number of sweep axes. Rows more than
        ``SMALL_ROW_RATIO`` times smaller than the step's largest are grouped by their own shape
        alone: their arrays cost little, a table more costs its fixed overhead. Within a table,
        rows that only move memory in proportion to the same token rows are one row
        (``_merge_traffic``). Each table is stacked when asked for, so a caller that prices one
        before the next holds one at a time."""
        shapes = self._shapes()
        sizes = [math.prod(_broadcast(row_shapes)) for row_shapes in shapes]
        largest = max(sizes)
        by_key: dict[tuple, tuple[list[dict[str, Any]], list[tuple]]] = {}
        for row, row_shapes, size in zip(self.rows, shapes, sizes, strict=True):
            key = _broadcast(row_shapes) if size * SMALL_ROW_RATIO <= largest else row_shapes
            rows, group_shapes = by_key.setdefault(key, ([], []))
            rows.append(row)
            group_shapes.append(row_shapes)
        return (
            _stack(*_merge_traffic(rows, group_shapes), phase, share=True)
            for rows, group_shapes in by_key.values()
        )

    def _shapes(self) -> list[tuple[tuple[int, ...], ...]]:
        """Each row's value shapes (``_NUMERIC`` order), all with the widest value's axes."""
        ndim = self._ndim()
        return [tuple(_padded_shape(row[c], ndim) for c in _NUMERIC) for row in self.rows]

    def _ndim(self) -> int:
        """Sweep axes of the widest value of any row."""
        return max(len(_shape(r[c])) for r in self.rows for c in _NUMERIC)


SMALL_ROW_RATIO = 16
"""A row whose values span this many times fewer points than the step's largest row's is priced
with the rows of its own shape, whatever the shapes of its columns (``_Rows.groups``)."""


_COMPUTE_COLUMNS = ("m", "n", "k", "keys", "kv_streams", "flops", "link_bytes", "link_steps")
"""The columns of a row that computes or communicates; all zero in a row that only moves memory."""


def _traffic_key(row: dict[str, Any]) -> tuple | None:
    """The key under which rows merge (``_merge_traffic``): kind, format, the token-rows array
    and which byte columns are proportional to it; None for a row that computes, communicates,
    reads a KV cache per query head, or has a sweep value not proportional to one rows array."""
    if "kv_group" in row or row["link_peers"] or any(_shape(row[c]) or row[c] for c in _COMPUTE_COLUMNS):
        return None
    values = [row[c] for c in BYTE_CLASSES]
    per_row = [v for v in values if isinstance(v, _PerRow)]
    if not per_row or any(_shape(v) and not isinstance(v, _PerRow) for v in values):
        return None
    if any(v.rows is not per_row[0].rows for v in per_row):
        return None
    return row["kind"], row["fmt"], id(per_row[0].rows), tuple(isinstance(v, _PerRow) for v in values)


def _merge_traffic(
    rows: list[dict[str, Any]], shapes: list[tuple]
) -> tuple[list[dict[str, Any]], list[tuple]]:
    """``rows`` (and their ``shapes``) with the rows of one ``_traffic_key`` summed into one row
    (occurrences 1, launches and bytes times each row's occurrences), at the first's place.

    Such a row's time is its bytes over a bandwidth plus its launches, its energy its bytes and
    launches times constants: the sum of rows is priced as the rows summed, at one row's cost
    over a sweep (a layer's norms, RoPE and activation)."""
    merged: list[dict[str, Any]] = []
    kept: list[tuple] = []
    at: dict[tuple, int] = {}
    for row, row_shapes in zip(rows, shapes, strict=True):
        key = _traffic_key(row)
        if key is None or key not in at:
            if key is not None:
                at[key] = len(merged)
            merged.append(row)
            kept.append(row_shapes)
            continue
        first = merged[at[key]]
        total = dict(first, name=f"{first['name']}+{row['name']}", count=1.0)
        for c in ("n_kernels", "module_kernels"):
            total[c] = first["count"] * first.get(c, first["n_kernels"]) + row["count"] * row.get(
                c, row["n_kernels"]
            )
        for c in BYTE_CLASSES:
            a, b = first[c], row[c]
            if isinstance(a, _PerRow):
                total[c] = _PerRow(a.rows, first["count"] * a.per_row + row["count"] * b.per_row)
            else:
                total[c] = first["count"] * a + row["count"] * b
        merged[at[key]] = total
    return merged, kept


def _broadcast(shapes: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """The broadcast of shapes of one length that broadcast together (each axis 1 or one size)."""
    return tuple(max(sizes) for sizes in zip(*shapes, strict=True))


@dataclass(frozen=True, slots=True)
class _PerRow:
    """``rows * per_row``: a quantity proportional to a step's token rows (a GEMM's FLOPs and
    bytes), multiplied out only when the table is stacked, straight into its column: over a
    sweep, no full-size temporary per op."""

    rows: np.ndarray
    per_row: float

    @property
    def shape(self) -> tuple[int, ...]:
        return self.rows.shape

    def value(self) -> np.ndarray:
        return self.rows * self.per_row


def _times_rows(rows: Any, per_row: Any) -> Any:
    """``rows * per_row``, left as a ``_PerRow`` when ``rows`` is a sweep's array and ``per_row``
    one number."""
    return _PerRow(rows, per_row) if np.ndim(rows) and not np.ndim(per_row) else rows * per_row


def _row_bytes(rows: Any, numel_per_row: Any, bits: float) -> Any:
    """Bytes of ``numel_per_row`` elements of ``bits`` bits in each of ``rows`` token rows
    (``_times_rows``: deferred over a sweep)."""
    return _times_rows(rows, bytes_of(numel_per_row, bits))


def _evaluated(value: Any) -> Any:
    """A row's value as a number or an array (a ``_PerRow`` multiplied out)."""
    return value.value() if isinstance(value, _PerRow) else value


def _shape(value: Any) -> tuple[int, ...]:
    """The shape of an array, or () for a Python or NumPy scalar."""
    return getattr(value, "shape", ())


def _padded_shape(value: Any, ndim: int) -> tuple[int, ...]:
    """The shape of ``value`` with leading 1s up to ``ndim`` axes."""
    shape = _shape(value)
    return (1,) * (ndim - len(shape)) + shape


def _stack(
    rows: list[dict[str, Any]], shapes: list[tuple[tuple[int, ...], ...]], phase: str, share: bool = False
) -> OpTable:
    """An ``OpTable`` of ``rows``, whose values have ``shapes`` (``_Rows._shapes``); each column
    (``_NUMERIC``) takes the broadcast shape of its values over the rows. With ``share``, a
    column whose rows all hold the one array (a single row's, or every GEMM's ``m`` in a step)
    is a view of that array, of size 1 along the op axis."""
    arrays = [i for i, c in enumerate(_NUMERIC) if any(_shape(r[c]) for r in rows)]
    scalars = [c for i, c in enumerate(_NUMERIC) if i not in arrays]  # one number per row: stacked at once
    table = np.array([[r[c] for c in scalars] for r in rows], dtype=float).reshape(len(rows), len(scalars))
    sweep_axes = (1,) * len(shapes[0][0])
    cols = {c: table[:, j].reshape((-1, *sweep_axes)) for j, c in enumerate(scalars)}
    for i in arrays:
        c = _NUMERIC[i]
        raw = [r[c] for r in rows]
        shape = _broadcast(row_shapes[i] for row_shapes in shapes)
        first = raw[0]
        if share and all(v is first for v in raw):  # its shape is the column's
            cols[c] = np.asarray(_evaluated(first), dtype=float).reshape((1, *shape))  # no copy
            continue
        column = np.empty((len(raw), *shape))
        for j, v in enumerate(raw):  # each broadcast over the column's axes
            if isinstance(v, _PerRow):
                np.multiply(v.rows, v.per_row, out=column[j])
            else:
                column[j] = v
        cols[c] = column
    return OpTable(
        name=np.array([r["name"] for r in rows]),
        kind=np.array([r["kind"] for r in rows]),
        count=np.array([r["count"] for r in rows]),
        n_kernels=np.array([r["n_kernels"] for r in rows]),
        module_kernels=np.array([r.get("module_kernels", r["n_kernels"]) for r in rows]),
        fmt=np.array([r["fmt"] for r in rows]),
        kv_group=np.array([r.get("kv_group", 1.0) for r in rows]),
        link_peers=np.array([r.get("link_peers", 0.0) for r in rows]),
        weight_block=np.array([r.get("weight_block", 0.0) for r in rows]),
        weight_bits=np.array([r.get("weight_bits", 0.0) for r in rows]),
        phase=phase,
        **cols,
    )


def gemm_table(m: Any, n: float, k: float, quant: Quant, name: str = "gemm") -> OpTable:
    """An ``OpTable`` of one GEMM: ``m`` token rows through a ``k x n`` weight (for kernel studies)."""
    r = _Rows(quant)
    r.gemm(name, 1, m, n, k, quant)
    return r.table("kernel")


def _as_positive(value: Any, field: str, allow_zero: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = (arr < 0) if allow_zero else (arr <= 0)
    if np.any(bad) or not np.all(np.isfinite(arr)):
        first = arr[bad | ~np.isfinite(arr)].ravel()[0]
        need = "a non-negative number" if allow_zero else "a positive number"
        raise ConfigError(f"{field} is {first:g}; expected {need}")
    return arr


def check_parallelism(spec: ModelSpec, tp: int, pp: int, ep: int) -> None:
    """Raise ``ConfigError`` unless tp, pp and ep are positive and divide the model."""
    for label, v in (("tp", tp), ("pp", pp), ("ep", ep)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{label} is {v!r}; expected a positive integer")
    if spec.n_heads % tp:
        raise ConfigError(f"tp {tp} does not divide {spec.name}'s {spec.n_heads} attention heads")
    la = spec.linear_attn
    if la and (la.n_key_heads % tp or la.n_value_heads % tp):
        raise ConfigError(
            f"tp {tp} does not divide {spec.name}'s {la.n_key_heads} key / {la.n_value_heads} value "
            "heads of linear attention"
        )
    if pp > spec.n_layers:
        raise ConfigError(f"pp {pp} exceeds {spec.name}'s {spec.n_layers} layers")
    if ep > 1:
        if not spec.moe:
            raise ConfigError(f"ep {ep} given, but {spec.name} has no experts; expected ep 1")
        if ep > spec.moe.n_routed_experts:
            raise ConfigError(
                f"ep {ep} exceeds {spec.name}'s {spec.moe.n_routed_experts} experts; expected at most that"
            )


def experts_per_device(spec: ModelSpec, ep: int) -> int:
    """Routed experts each expert-parallel device holds: ``E / ep``, rounded up when ``ep`` does
    not divide ``E`` (the spare slots hold redundant copies of the busiest experts, as DeepSeek's
    EPLB places them, e.g. 256 experts on 72 GPUs: 4 slots each, 32 redundant)."""
    assert spec.moe is not None
    return -(-spec.moe.n_routed_experts // ep)


def expected_distinct_experts(n_experts: int, k_active: int, n_tokens: Any) -> np.ndarray:
    """Expected number of distinct experts a batch of ``n_tokens`` touches (uniform routing).

    Each token picks ``k_active`` of ``n_experts``; an expert is missed by one token with
    probability ``1 - k/E``, so ``E (1 - (1 - k/E)^tokens)`` are touched.
    """
    return n_experts * (1.0 - (1.0 - k_active / n_experts) ** np.asarray(n_tokens, dtype=float))


def build_ops(spec: ModelSpec, quant: Quant, *, phase: str, batch: Any, **step: Any) -> OpTable:
    """The ``OpTable`` of one step.

    Parameters
    ----------
    spec, quant : the model and its precision.
    phase : ``"prefill"`` (``tokens`` new tokens per sequence, after ``context`` cached ones)
        or ``"decode"`` (one new token per sequence after ``context`` cached ones; ``tokens``
        > 1 when a speculative step verifies ``tokens - 1`` drafted tokens with decode
        kernels, computing logits at every position).
    batch : sequences in the step, >= 1 (array allowed).
    tokens : new tokens per sequence (prefill prompt length), >= 1 (array allowed).
    context : tokens already in the KV cache per sequence, >= 0 (array allowed).
    tp, pp, ep : tensor-, pipeline- and expert-parallel degrees. Rows are per device of
        one pipeline stage; with ``pp > 1`` the rows still cover all layers (the stages run
        one after another for one batch) plus the stage-to-stage sends.
    attention_dp : with ``ep > 1``, attention and the dense layers run data parallel across
        the expert-parallel group (the DeepSeek deployment: each device attends over its
        ``batch / ep`` sequences with a full copy of the attention weights, and the group's
        tokens meet at the experts); otherwise every device of the group runs the whole batch's
        attention.
    expert_imbalance : routed tokens on the busiest device over the mean (>= 1; a stated
        parameter: expert load balancing keeps it near 1, skewed routing raises it); the step
        waits for that device's experts and its all-to-all.
    mla_prefill : how a multi-head latent attention model's prefill attends: ``"expanded"``
        (the default: the new and cached latents up-projected to per-head keys and values,
        ``kv_up``, then attention over ``qk_nope + qk_rope`` and ``v_head`` dims) or
        ``"absorbed"`` (as decode: the queries projected into the latent, ``q_absorb``, every
        head attending over the ``kv_lora_rank + qk_rope``-wide latent, ``latent_attention``, and
        the output projected back, ``v_absorb``), which some engines run whenever a prompt has a
        cached prefix (``hwmodels/calibration/frameworks.yaml`` ``absorbed_mla_prefill``).
    """
    return _step_rows(spec, quant, phase=phase, batch=batch, **step).table(phase)


def build_op_groups(
    spec: ModelSpec, quant: Quant, *, phase: str, batch: Any, **step: Any
) -> Iterator[OpTable]:
    """The rows of ``build_ops`` (same arguments) split by the sweep axes they vary along
    (``_Rows.groups``). For a cost model that prices each op at each point on its own, the
    groups' costs sum to the whole table's at a fraction of the work. A column that is the same
    array for every op of a group (the GEMMs' ``m``) has size 1 along the op axis."""
    return _step_rows(spec, quant, phase=phase, batch=batch, **step).groups(phase)


def _step_rows(
    spec: ModelSpec,
    quant: Quant,
    *,
    phase: str,
    batch: Any,
    tokens: Any = 1,
    context: Any = 0,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    attention_dp: bool = False,
    expert_imbalance: float = 1.0,
    mla_prefill: str = "expanded",
) -> _Rows:
    """The op rows of ``build_ops``, before they are stacked."""
    if phase not in ("prefill", "decode"):
        raise ConfigError(f"phase is {phase!r}; expected 'prefill' or 'decode'")
    if mla_prefill not in MLA_PREFILL_FORMS:
        raise ConfigError(f"mla_prefill is {mla_prefill!r}; expected one of {', '.join(MLA_PREFILL_FORMS)}")
    check_parallelism(spec, tp, pp, ep)
    expert_imbalance = positive_number(expert_imbalance, "expert_imbalance", minimum=1.0)  # 1: balanced
    if expert_imbalance > max(ep, 1):  # the busiest device takes at most every routed token
        raise ConfigError(f"expert_imbalance is {expert_imbalance!r}; expected at most ep = {ep}")
    group = ep if attention_dp and ep > 1 else 1
    B = _as_positive(batch, "batch") / group  # sequences this device attends over
    T = _as_positive(tokens, "input length" if phase == "prefill" else "tokens verified per decode step")
    L = _as_positive(context, "context", allow_zero=True)
    q = quant
    h, L_layers = spec.hidden_size, spec.n_layers
    m = B * T  # token rows through every GEMM outside the experts
    keys = L + (T + 1.0) / 2.0  # mean keys attended per query (causal)
    heads = spec.n_heads / tp
    kv_heads = np.ceil(spec.n_kv_heads / tp)  # KV heads are replicated when tp exceeds them
    rb = q.residual_bits  # the residual stream, its norms and its collectives
    r = _Rows(q, spec.fp8_weight_block)

    emb_wbytes = q.weight_bytes_per_param("embedding")
    hidden_bytes = _times_rows(m, bytes_of(h, rb))  # the hidden states: every norm's input and output
    r.add("embedding", "embedding", 1, weight=_times_rows(m, h * emb_wbytes), act_out=hidden_bytes)
    norm_weight = bytes_of(h, rb)
    r.add("attn_norm", "norm", L_layers, weight=norm_weight, act_in=hidden_bytes, act_out=hidden_bytes)

    # ---- attention block -------------------------------------------------------------
    if spec.mla:
        _mla_block(r, spec, q, phase, mla_prefill, B, T, L, m, keys, heads, tp)
    else:
        _attention_block(r, spec, q, B, T, L, m, heads, kv_heads)
    if spec.n_linear_layers:
        _linear_attention_block(r, spec, q, B, m, tp)
    if tp > 1:
        _allreduce(r, "allreduce_attn", L_layers, m * h * rb / 8.0, tp)
    sandwich = spec.norms_per_layer == 4  # each sublayer's output normed before the residual add
    if sandwich:
        r.add(
            "attn_post_norm", "norm", L_layers, weight=norm_weight, act_in=hidden_bytes, act_out=hidden_bytes
        )

    # ---- FFN block --------------------------------------------------------------------
    if spec.norms_per_layer >= 2:
        r.add("ffn_norm", "norm", L_layers, weight=norm_weight, act_in=hidden_bytes, act_out=hidden_bytes)
    n_dense = spec.n_dense_layers
    _ffn(r, "ffn", n_dense, m, spec.ffn_size / tp, h, spec.ffn_gated, q)
    if spec.moe:
        _moe_block(r, spec, q, m, tp, ep, m * group, expert_imbalance)
    if tp > 1:
        _allreduce(r, "allreduce_ffn", L_layers, m * h * rb / 8.0, tp)
    if sandwich:
        r.add(
            "ffn_post_norm", "norm", L_layers, weight=norm_weight, act_in=hidden_bytes, act_out=hidden_bytes
        )

    # ---- head ---------------------------------------------------------------------------
    rows_out = B if phase == "prefill" else m  # prefill: the last position; decode: every new one
    r.add(
        "final_norm",
        "norm",
        1,
        weight=norm_weight,
        act_in=_row_bytes(rows_out, h, rb),
        act_out=_row_bytes(rows_out, h, rb),
    )
    r.gemm("lm_head", 1, rows_out, spec.vocab_size / tp, h, q, block_scaled=False)
    if pp > 1:
        r.add("pp_send", "collective", pp - 1, link_bytes=m * h * rb / 8.0, link_steps=1.0, link_peers=1)
    for row in r.rows:
        row["module_kernels"] = module_kernels(spec, row["name"], row["n_kernels"])
    return r


HF_MODULE_KERNELS = {
    "rmsnorm": 8.0,
    "layernorm": 1.0,
    "residual": 1.0,
    "q_k_v": 3.0,
    "rope": 10.0,
    "attention": 6.0,
    "gate_up": 2.0,
    "gated_act": 2.0,
}
"""Kernels HF Transformers' eager modules launch (Llama's modeling code: ``LlamaRMSNorm`` casts to
FP32, squares, takes the mean, adds epsilon, takes rsqrt, multiplies, casts back and multiplies
by its weight; the residual add before each norm; separate q, k and v ``Linear`` layers;
``apply_rotary_pos_emb`` multiplies, rotates (negation and concatenation) and adds for q and for
k; the attention writes K and V into the cache, makes its operands contiguous and runs SDPA; a
gated MLP's separate gate and up layers and ``act(gate) * up``; ``nn.LayerNorm`` is one kernel).
Counted on one H200 with the PyTorch profiler (``benchmarks/measure_hf_decode.py``, Transformers
5.17): 1,462 kernels in a Llama-3.1-8B decode step and 2,774 in a Qwen2.5-32B one, 43 per layer
as these counts give, the rest in the embedding, head and sampling. Other families are assumed
to launch as Llama's, except where their modules fuse projections (``HF_FUSED_QKV``,
``HF_FUSED_GATE_UP``)."""
HF_FUSED_QKV = frozenset({"bloom", "falcon", "gpt_neox", "phi3", "gpt_bigcode", "gpt2"})
"""Model families whose HF attention computes q, k and v in one ``Linear`` (``query_key_value``,
``qkv_proj``, ``c_attn``)."""
HF_FUSED_GATE_UP = frozenset({"phi3"})
"""Model families whose HF MLP computes gate and up in one ``Linear`` (``gate_up_proj``)."""


def module_kernels(spec: ModelSpec, name: str, n_kernels: float) -> float:
    """Kernels per occurrence of op ``name`` when ``spec`` runs as HF Transformers' eager
    modules (``HF_MODULE_KERNELS``); ``n_kernels`` (an engine's) for ops counted alike."""
    k = HF_MODULE_KERNELS
    if name in ("attn_norm", "ffn_norm", "final_norm", "attn_post_norm", "ffn_post_norm"):
        residual = 0.0 if name.endswith("post_norm") else k["residual"]  # the add before a pre-norm
        return k["rmsnorm" if spec.norm == "rmsnorm" else "layernorm"] + residual
    if name == "qkv_proj" and not spec.mla and not spec.q_low_rank:
        return 1.0 if spec.family in HF_FUSED_QKV else k["q_k_v"]
    if name in ("rope", "attention"):
        return k[name]
    if name == "ffn_up" and spec.ffn_gated:
        return 1.0 if spec.family in HF_FUSED_GATE_UP else k["gate_up"]
    if name == "ffn_act" and spec.ffn_gated:
        return k["gated_act"]
    return n_kernels


def _prefix_keys(n: Any, kind: AttentionLayer) -> Any:
    """Keys attended by the first ``n`` positions together (causal, ``kind``'s reach)."""
    if kind.kind == "chunked":
        c = float(kind.window)
        full_chunks = np.floor(n / c)
        rest = n - full_chunks * c
        return full_chunks * c * (c + 1.0) / 2.0 + rest * (rest + 1.0) / 2.0
    w = float(kind.window)  # sliding window, or sparse top-k
    return np.where(n <= w, n * (n + 1.0) / 2.0, w * (w + 1.0) / 2.0 + (n - w) * w)


def _mean_keys(kind: AttentionLayer, T: Any, L: Any) -> Any:
    """Mean keys per query for ``T`` new tokens after ``L`` cached ones."""
    if kind.kind == "full":
        return L + (T + 1.0) / 2.0
    return (_prefix_keys(L + T, kind) - _prefix_keys(L, kind)) / T


def _cached_read(kind: AttentionLayer, L: Any) -> Any:
    """Cached tokens (of ``L``) the new queries of a step reach, each read once."""
    if kind.kind == "full":
        return L
    if kind.kind == "chunked":
        return L - np.floor(L / kind.window) * kind.window
    if kind.kind == "sparse":  # the indexer's top-k of the cached tokens
        return np.minimum(L, float(kind.window))
    return np.minimum(L, kind.window - 1.0)  # sliding: the window holds the new token too


def _cached_kept(kind: AttentionLayer, L: Any) -> Any:
    """Tokens (of ``L``) a sequence keeps in the cache of one layer of ``kind``."""
    if kind.kind == "full":
        return L
    return np.minimum(L, float(kind.window))


def _attention_block(
    r: _Rows, spec: ModelSpec, q: Quant, B: Any, T: Any, L: Any, m: Any, heads: float, kv_heads: Any
) -> None:
    """Softmax attention layers (GQA/MQA/MHA, MFA's low-rank query, gated output): one
    ``attention`` row per layer kind, the projections over all of them."""
    n = spec.n_attention_layers
    if not n:
        return
    h, dq, dv, ab = spec.hidden_size, spec.head_dim, spec.head_dim, q.act_bits
    q_heads = 2 * heads if spec.attn_output_gate else heads  # the gate rides on q_proj
    if spec.q_low_rank:  # MFA (Step-3): the rank-r query and the one KV head are replicated
        r.gemm("qkv_proj", n, m, spec.q_low_rank + 2 * kv_heads * dq, h, q, weight_op="attention")
        r.gemm("q_up", n, m, q_heads * dq, spec.q_low_rank, q, weight_op="attention")
    else:
        r.gemm("qkv_proj", n, m, (q_heads + 2 * kv_heads) * dq, h, q, weight_op="attention")
    r.add(
        "rope",
        "elementwise",
        n,
        act_in=_row_bytes(m, (heads + kv_heads) * dq, ab),
        act_out=_row_bytes(m, (heads + kv_heads) * dq, ab),
    )
    for kind, count in spec.layer_kind_counts:
        if kind.kind != "linear":
            _softmax_attention(r, count, B, T, L, heads, kv_heads, dq, q, kind)
    if spec.attn_output_gate:
        r.add(
            "attn_gate",
            "elementwise",
            n,
            act_in=_row_bytes(m, 2 * heads * dv, ab),
            act_out=_row_bytes(m, heads * dv, ab),
        )
    r.gemm("o_proj", n, m, h, heads * dv, q, weight_op="attention")


def _softmax_attention(
    r: _Rows,
    count: float,
    B: Any,
    T: Any,
    L: Any,
    heads: Any,
    kv_heads: Any,
    head_dim: float,
    q: Quant,
    kind: AttentionLayer = FULL,
) -> None:
    """One softmax ``attention`` row: ``T`` new tokens of ``B`` sequences after ``L`` cached
    ones, ``heads`` query heads sharing ``kv_heads`` cached heads of ``head_dim``."""
    m = B * T
    kv_per_token = kv_heads * 2 * head_dim
    keys = _mean_keys(kind, T, L)
    r.add(
        "attention",
        "attention",
        count,
        flops=gemm_flops(B * heads * T, keys, 2 * head_dim),
        keys=keys,
        kv_streams=B * kv_heads,
        act_in=_row_bytes(m, heads * head_dim + kv_per_token, q.act_bits),
        act_out=_row_bytes(m, heads * head_dim, q.act_bits),
        kv_read=bytes_of(B * _cached_read(kind, L) * kv_per_token, q.kv_bits),
        kv_write=_row_bytes(m, kv_per_token, q.kv_bits),
    )
    r.rows[-1]["kv_group"] = heads / kv_heads


def attention_table(
    batch: Any, tokens: Any, heads: int, kv_heads: int, head_dim: int, quant: Quant
) -> OpTable:
    """An ``OpTable`` of one causal prefill attention (for kernel studies): ``batch`` prompts
    of ``tokens`` tokens, the row ``build_ops`` gives a full-attention layer."""
    r = _Rows(quant)
    _softmax_attention(
        r, 1, np.asarray(batch, float), np.asarray(tokens, float), 0.0, heads, kv_heads, head_dim, quant
    )
    return r.table("prefill")


def decode_attention_table(
    batch: Any, context: Any, heads: int, kv_heads: int, head_dim: int, quant: Quant
) -> OpTable:
    """An ``OpTable`` of one decode attention (for kernel studies): one new token in each of
    ``batch`` sequences after ``context`` cached ones, the row ``build_ops`` gives a
    full-attention layer."""
    r = _Rows(quant)
    _softmax_attention(
        r, 1, np.asarray(batch, float), 1.0, np.asarray(context, float), heads, kv_heads, head_dim, quant
    )
    return r.table("decode")


def allreduce_table(data_bytes: Any, tp: int, quant: Quant) -> OpTable:
    """An ``OpTable`` of one ring all-reduce of ``data_bytes`` over ``tp`` devices (for kernel studies)."""
    r = _Rows(quant)
    _allreduce(r, "allreduce", 1, np.asarray(data_bytes, float), tp)
    return r.table("kernel")


def _linear_attention_block(r: _Rows, spec: ModelSpec, q: Quant, B: Any, m: Any, tp: int) -> None:
    """Gated DeltaNet layers: in-projections, the short convolution, the recurrence over a
    fixed per-sequence state (an ``attention`` row: its state is read and written once per
    sequence and step), the gated norm and the out-projection."""
    la = spec.linear_attn
    assert la is not None
    n, h, ab = spec.n_linear_layers, spec.hidden_size, q.act_bits
    nv, dk, dv = la.n_value_heads / tp, la.key_head_dim, la.value_head_dim
    conv = la.conv_dim / tp
    r.gemm("linear_in_proj", n, m, conv + nv * dv + 2 * nv, h, q)  # q, k, v, z, b, a
    r.add("linear_conv", "elementwise", n, act_in=_row_bytes(m, conv, ab), act_out=_row_bytes(m, conv, ab))
    state = _linear_state_bytes(spec, q, tp)
    r.add(
        "attention",
        "attention",
        n,
        flops=3.0 * gemm_flops(m * nv, dv, dk),
        act_in=bytes_of(m * (conv + 2 * nv), ab),
        act_out=bytes_of(m * nv * dv, ab),
        kv_read=B * state,
        kv_write=B * state,
    )
    r.add(
        "linear_gate_norm",
        "elementwise",
        n,
        act_in=_row_bytes(m, 2 * nv * dv, ab),
        act_out=_row_bytes(m, nv * dv, ab),
    )
    r.gemm("linear_out_proj", n, m, h, nv * dv, q)


def _linear_state_bytes(spec: ModelSpec, q: Quant, tp: int = 1) -> float:
    """Bytes of one sequence's fixed state in one linear-attention layer on one device: the
    recurrent state (``state_bits`` from the config, else the activation width) and the
    convolution's last inputs (activation width)."""
    la = spec.linear_attn
    if not la:
        return 0.0
    bits = la.state_bits or q.act_bits
    return bytes_of(la.recurrent_state_elems(tp), bits) + bytes_of(la.conv_state_elems(tp), q.act_bits)


def _allreduce(r: _Rows, name: str, count: float, data_bytes: Any, tp: int) -> None:
    r.add(
        name,
        "collective",
        count,
        link_bytes=2.0 * (tp - 1) / tp * data_bytes,
        link_steps=2.0 * (tp - 1),
        link_peers=tp - 1,
    )


def _ffn(
    r: _Rows,
    prefix: str,
    count: float,
    m: Any,
    f: float,
    h: float,
    gated: bool,
    q: Quant,
    n_weights_scale: Any = None,
) -> None:
    """Up (gate+up fused when gated), activation, down."""
    up_n = 2 * f if gated else f
    scale = 1.0 if n_weights_scale is None else n_weights_scale
    r.gemm(f"{prefix}_up", count, m, up_n, h, q, weight_op="ffn_up", n_weights=up_n * h * scale)
    r.add(
        f"{prefix}_act",
        "elementwise",
        count,
        act_in=_row_bytes(m, up_n, q.act_bits),
        act_out=_row_bytes(m, f, q.act_bits),
    )
    r.gemm(f"{prefix}_down", count, m, h, f, q, weight_op="ffn_down", n_weights=h * f * scale)


ROUTED_EXPERT_OPS = ("experts_up", "experts_act", "experts_down", "all_to_all_moe")
"""The rows of a MoE block that run over the tokens of the whole expert-parallel group (the routed
experts and their all-to-all); the router and shared experts run over a device's own tokens."""


def _moe_block(
    r: _Rows, spec: ModelSpec, q: Quant, m: Any, tp: int, ep: int, m_group: Any, imbalance: float
) -> None:
    """Router and shared experts over this device's ``m`` tokens; the routed experts over the
    ``m_group`` tokens the expert-parallel group routes (``m`` itself unless attention is data
    parallel), the busiest device taking ``imbalance`` times the mean."""
    moe = spec.moe
    assert moe is not None
    h, E, k, f = spec.hidden_size, moe.n_routed_experts, moe.n_active_experts, moe.expert_ffn_size
    n = moe.n_moe_layers
    r.gemm("router", n, m, E, h, q, weight_op="router", block_scaled=False)
    r.rows[-1]["kind"] = "router"  # a GEMM, kept apart so reports can show routing cost
    touched = expected_distinct_experts(E, k, m_group)  # over all devices
    touched_dev = touched / E * experts_per_device(spec, ep)  # its slots' share
    routed_rows = m_group * k / touched  # tokens per touched expert
    rows_dev = m_group * k / ep * imbalance  # routed token rows on the busiest device
    # FLOPs of all routed tokens on this device, weights of the distinct experts on it:
    up_n = (2 if spec.ffn_gated else 1) * f / tp
    wb = q.weight_bytes_per_param("experts")
    r.add(
        "experts_up",
        "gemm",
        n,
        flops=gemm_flops(rows_dev, up_n, h),
        weight=touched_dev * up_n * h * wb,
        act_in=bytes_of(rows_dev * h, q.act_bits),
        act_out=bytes_of(rows_dev * up_n, q.act_bits),
        m=routed_rows * imbalance,
        n=up_n,
        k=h,
        n_kernels=1,
        weight_block=r.weight_block(wb, q.compute_format),
        weight_bits=8.0 * wb,
    )
    r.add(
        "experts_act",
        "elementwise",
        n,
        act_in=bytes_of(rows_dev * up_n, q.act_bits),
        act_out=bytes_of(rows_dev * f / tp, q.act_bits),
    )
    r.add(
        "experts_down",
        "gemm",
        n,
        flops=gemm_flops(rows_dev, h, f / tp),
        weight=touched_dev * h * f / tp * wb,
        act_in=bytes_of(rows_dev * f / tp, q.act_bits),
        act_out=bytes_of(rows_dev * h, q.act_bits),
        m=routed_rows * imbalance,
        n=h,
        k=f / tp,
        n_kernels=1,
        weight_block=r.weight_block(wb, q.compute_format),
        weight_bits=8.0 * wb,
    )
    if moe.n_shared_experts:
        _ffn(r, "shared_expert", n, m, moe.n_shared_experts * moe.shared_ffn_size / tp, h, spec.ffn_gated, q)
        if moe.shared_expert_gate:
            r.gemm("shared_expert_gate", n, m, 1, h, q, weight_op="router")
            r.rows[-1]["kind"] = "router"
    if ep > 1:
        # each device dispatches its share of the group's tokens to the other (ep - 1)/ep of the
        # experts and takes the results back; the busiest device receives imbalance x the mean
        sent = m_group / ep * k * h * q.act_bits / 8.0 * (ep - 1) / ep
        r.add(
            "all_to_all_moe",
            "collective",
            n,
            link_bytes=2.0 * sent * imbalance,
            link_steps=2.0,
            link_peers=ep - 1,
        )


MLA_PREFILL_FORMS = ("expanded", "absorbed")
"""The forms of an MLA model's prefill attention ``build_ops`` prices (its ``mla_prefill``)."""


def _mla_block(
    r: _Rows,
    spec: ModelSpec,
    q: Quant,
    phase: str,
    mla_prefill: str,
    B: Any,
    T: Any,
    L: Any,
    m: Any,
    keys: Any,
    heads: float,
    tp: int,
) -> None:
    """Multi-head latent attention. Decode uses the weight-absorbed form (DeepSeek-V2 Sec. 2.1.2),
    and so does a prefill when ``mla_prefill`` is ``"absorbed"`` (its attention row then named
    ``latent_attention``, the form whose kernel an engine may run at its own rate); an expanded
    prefill up-projects the new and cached latents to per-head keys and values (``kv_up``).

    With DeepSeek Sparse Attention (``spec.indexer``) each query attends only the
    indexer's top-k tokens (``min(p + 1, k)`` at position ``p``, the selected latents read
    from the cache), and the ``attention`` row adds the indexer's own cost: its heads score
    every cached token (``2 x heads x head_dim`` FLOPs per query and key) against cached
    index keys, read whole. The indexer's projections are replicated across TP ranks
    (vLLM ``Indexer``: ``ReplicatedLinear``).
    """
    mla = spec.mla
    assert mla is not None
    h, n = spec.hidden_size, spec.n_layers
    qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim
    ix = spec.indexer
    kind = AttentionLayer("sparse", ix.topk) if ix else FULL
    att_keys = _mean_keys(kind, T, L) if ix else keys
    if mla.q_lora_rank:
        r.gemm("q_down", n, m, mla.q_lora_rank, h, q, weight_op="attention")
        r.gemm("q_up", n, m, heads * qk, mla.q_lora_rank, q, weight_op="attention")
    else:
        r.gemm("q_proj", n, m, heads * qk, h, q, weight_op="attention")
    r.gemm("kv_down", n, m, latent, h, q, weight_op="attention")
    kv_write = bytes_of(m * latent, q.kv_bits)
    kv_read = bytes_of(B * _cached_read(kind, L) * latent, q.kv_bits)
    ix_flops, ix_read, ix_write, ix_act = 0.0, 0.0, 0.0, 0.0
    if ix:
        r.gemm("indexer_q", n, m, ix.n_heads * ix.head_dim, mla.q_lora_rank or h, q, weight_op="attention")
        r.gemm("indexer_k", n, m, ix.head_dim + ix.n_heads, h, q, weight_op="attention")  # key, head weights
        ix_flops = gemm_flops(B * T * ix.n_heads, keys, ix.head_dim)
        ix_read = bytes_of(B * L * ix.head_dim, q.kv_bits)
        ix_write = bytes_of(m * ix.head_dim, q.kv_bits)
        ix_act = bytes_of(m * ix.n_heads * ix.head_dim, q.act_bits)
    if phase == "decode" or mla_prefill == "absorbed":
        r.gemm(
            "q_absorb",
            n,
            m,
            heads * mla.kv_lora_rank,
            mla.qk_nope_head_dim,
            q,
            weight_op="attention",
            n_weights=heads * mla.qk_nope_head_dim * mla.kv_lora_rank,
            block_scaled=False,
        )
        r.rows[-1]["flops"] = gemm_flops(m * heads, mla.kv_lora_rank, mla.qk_nope_head_dim)
        r.add(
            "attention" if phase == "decode" else "latent_attention",
            "attention",
            n,
            flops=gemm_flops(B * heads * T, att_keys, latent + mla.kv_lora_rank) + ix_flops,
            keys=att_keys,
            act_in=bytes_of(m * heads * latent + m * latent, q.act_bits) + ix_act,
            act_out=bytes_of(m * heads * mla.kv_lora_rank, q.act_bits),
            kv_read=kv_read + ix_read,
            kv_write=kv_write + ix_write,
        )
        r.rows[-1]["kv_group"] = heads  # every head reads the one shared latent
        r.gemm(
            "v_absorb",
            n,
            m,
            heads * mla.v_head_dim,
            mla.kv_lora_rank,
            q,
            weight_op="attention",
            n_weights=heads * mla.kv_lora_rank * mla.v_head_dim,
            block_scaled=False,
        )
        r.rows[-1]["flops"] = gemm_flops(m * heads, mla.v_head_dim, mla.kv_lora_rank)
    else:
        rows_kv = B * (L + T)
        r.gemm(
            "kv_up",
            n,
            rows_kv,
            heads * (mla.qk_nope_head_dim + mla.v_head_dim),
            mla.kv_lora_rank,
            q,
            weight_op="attention",
        )
        r.add(
            "attention",
            "attention",
            n,
            flops=gemm_flops(B * heads * T, att_keys, qk + mla.v_head_dim) + ix_flops,
            keys=att_keys,
            act_in=bytes_of(m * heads * qk + rows_kv * heads * (qk + mla.v_head_dim), q.act_bits) + ix_act,
            act_out=bytes_of(m * heads * mla.v_head_dim, q.act_bits),
            kv_read=kv_read + ix_read,
            kv_write=kv_write + ix_write,
        )
    r.gemm("o_proj", n, m, h, heads * mla.v_head_dim, q, weight_op="attention")


def _kv_per_token_layer(spec: ModelSpec, tp: int) -> Any:
    """KV elements per token and attention layer on one of ``tp`` devices."""
    if spec.mla:
        return spec.kv_elems_per_token_layer  # the latent (and index key) is replicated across TP ranks
    return np.ceil(spec.n_kv_heads / tp) * 2 * spec.head_dim


def kv_cache_bytes(
    spec: ModelSpec, quant: Quant, batch: Any, context: Any, tp: int = 1, pp: int = 1
) -> np.ndarray:
    """KV-cache bytes per device for ``batch`` sequences of ``context`` tokens.

    Each layer kind keeps its own share (see the module notes): every token in a full (or
    sparse) layer, ``min(context, window)`` in a sliding or chunked one, and a fixed state in
    a linear-attention one. With ``pp`` stages a device holds ``ceil(n_layers / pp)`` layers,
    each kind in proportion.
    """
    B, L = np.asarray(batch, float), np.asarray(context, float)
    per_token_layer = _kv_per_token_layer(spec, tp)
    stage_layers = float(np.ceil(spec.n_layers / pp))
    terms = []
    for kind, count in spec.layer_kind_counts:
        layers = count * stage_layers / spec.n_layers
        if kind.kind == "linear":
            terms.append(product(B, _linear_state_bytes(spec, quant, tp), layers))
        else:
            terms.append(bytes_of(product(B, _cached_kept(kind, L), per_token_layer, layers), quant.kv_bits))
    shape = np.broadcast_shapes(B.shape, L.shape)
    total = running_sum(terms, np.zeros(shape))
    return total if total.shape == shape else total + np.zeros(shape)  # linear layers alone: per sequence


def kv_bytes_per_token(spec: ModelSpec, quant: Quant, tp: int = 1, pp: int = 1) -> float:
    """KV-cache bytes one more cached token adds per device, counting every attention layer
    (windows and chunks not capped; linear-attention states are per sequence, not per token):
    the size of a token in a paged KV pool that gives every layer a slot per token."""
    per_token_layer = _kv_per_token_layer(spec, tp)
    layers = spec.n_attention_layers * float(np.ceil(spec.n_layers / pp)) / spec.n_layers
    return float(bytes_of(per_token_layer * layers, quant.kv_bits))


def kv_state_bytes_per_seq(spec: ModelSpec, quant: Quant, tp: int = 1, pp: int = 1) -> float:
    """Fixed bytes per sequence and device that do not grow with context: the
    linear-attention layers' states (0 for a model without them)."""
    layers = spec.n_linear_layers * float(np.ceil(spec.n_layers / pp)) / spec.n_layers
    return _linear_state_bytes(spec, quant, tp) * layers


FUSED_MOE_CHUNK_TOKENS = 32768
"""Tokens a fused-MoE kernel call takes at once; a longer batch runs in chunks of this many, so its
intermediate buffers are sized for at most this many (vLLM ``VLLM_FUSED_MOE_CHUNK_SIZE``, default
32,768, vllm/envs.py)."""


def activation_peak_bytes(spec: ModelSpec, quant: Quant, tokens: Any, seqs: Any, tp: int = 1) -> Any:
    """Bytes of a forward pass's activation peak per device, at the down projection of the widest
    feed-forward block, with ``tokens`` token rows: the residual stream, the block's input and its
    output (three hidden-wide rows, at the stream's width, ``Quant.residual_bits``: 16-bit even
    where GEMMs take FP8 activations), the gate-up projection's output and the activated half it
    feeds the down projection (both ``ffn / tp`` wide, at the stream's width), and that half's
    quantized copy where the GEMMs take narrower activations; plus the fp32 logits of ``seqs``
    sequences' last positions.

    An MoE block holds a fourth hidden-wide row where shared experts add their output to the
    routed one, and the fused-MoE kernel's buffers for at most ``FUSED_MOE_CHUNK_TOKENS`` tokens:
    per token and active expert, its gate-up output, the activated half and the down output
    (``fused_experts``' intermediate caches 1-3, vllm/model_executor/layers/fused_moe).

    Checked against vLLM's own profiling: Llama-3.1-8B on one GPU, V0 v0.6.4 at 20,000 and
    29,000 budget tokens, peak torch memory less weights 2.10 and 3.02 GiB (vllm-project/vllm
    issue #10517), 110 kB a token between them, where this gives 3 x 4,096 x 2 + 1.5 x 28,672
    x 2 = 110.6 kB."""
    stream = quant.residual_bits / 8.0
    copy = quant.act_bytes if quant.act_bytes < stream else 0.0
    up_rows = 2 if spec.ffn_gated else 1  # the gate and up projections' outputs, or the up's alone

    def block(ffn: float) -> float:
        """Bytes per token of a feed-forward block ``ffn`` wide per device: the up projection's
        output, the activation it feeds the down GEMM, and that activation's quantized copy."""
        return (up_rows + 1) * ffn * stream + ffn * copy

    hidden = spec.hidden_size
    tokens = np.asarray(tokens, dtype=float)
    has_dense = spec.moe is None or spec.moe.n_moe_layers < spec.n_layers
    peak = tokens * (3 * hidden * stream + (block(spec.ffn_size / tp) if has_dense else 0.0))
    if spec.moe is not None:
        moe = spec.moe
        shared = hidden * stream if moe.n_shared_experts else 0.0
        chunk = np.minimum(tokens, FUSED_MOE_CHUNK_TOKENS)
        routed = chunk * moe.n_active_experts * (block(moe.expert_ffn_size / tp) + hidden * stream)
        peak = np.maximum(peak, tokens * (3 * hidden * stream + shared) + routed)
    logits = np.asarray(seqs) * spec.vocab_size / tp * 4.0
    return peak + logits


def embedding_and_head_bytes(spec: ModelSpec, quant: Quant) -> float:
    """Bytes of the token embedding and the LM head, whole, each at its own width where ``quant``
    overrides it; a tied embedding is stored once, at the LM head's width."""
    head = quant.weight_bytes_per_param("lm_head")
    emb = head if spec.tied_embeddings else quant.weight_bytes_per_param("embedding")
    return spec.embedding_params() * emb + spec.lm_head_params() * head


def weight_bytes(spec: ModelSpec, quant: Quant, tp: int = 1, pp: int = 1, ep: int = 1) -> float:
    """Weight bytes stored per device: experts split by ``ep``, the weights every tensor-parallel
    rank keeps whole (an MLA layer's latent down-projections, MoE routers:
    ``ModelSpec.replicated_attention_params``, ``replicated_router_params``) by ``pp``, the rest by
    ``tp * pp``.

    Embedding and LM head are split by ``tp`` (vocabulary-parallel) and counted on the
    first and last stage; with ``pp > 1`` a device holds ``1/pp`` of the layers. They take
    their own widths where ``quant`` overrides ``embedding`` or ``lm_head`` (a llama.cpp GGUF
    keeps output.weight in Q6_K, for one), and so do the attention blocks' projections where it
    overrides ``attention`` (``fp8-ffn``); a tied embedding is stored once, at the LM head's.
    """
    per = quant.weight_bytes_per_param()
    attention = spec.n_attention_layers * spec.attention_params()
    total = (
        (spec.n_params() - spec.embedding_params() - spec.lm_head_params()) * per
        + embedding_and_head_bytes(spec, quant)
        + attention * (quant.weight_bytes_per_param("attention") - per)
    )
    # every tensor-parallel rank keeps these whole (the op graph reads them whole on each)
    replicated = (
        spec.n_attention_layers
        * spec.replicated_attention_params()
        * quant.weight_bytes_per_param("attention")
    )
    if spec.moe:
        replicated += (
            spec.moe.n_moe_layers * spec.replicated_router_params() * quant.weight_bytes_per_param("router")
        )
    split = total - replicated
    if spec.moe and ep > 1:
        per_expert = (
            spec.moe.n_moe_layers * spec.ffn_params_expert() * quant.weight_bytes_per_param("experts")
        )
        expert_bytes = spec.moe.n_routed_experts * per_expert
        split -= expert_bytes
        return split / (tp * pp) + replicated / pp + experts_per_device(spec, ep) * per_expert / (tp * pp)
    return split / (tp * pp) + replicated / pp
