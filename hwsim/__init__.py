"""hwsim: simulator and cost modeler for LLM inference hardware.

The public API, re-exported from the packages that implement it::

    import hwsim
    est = hwsim.estimate("llama-2-7b", "h100-sxm", batch=[1, 8, 64], input_len=1024, output_len=128)
    est.to_frame()                                       # one row per batch

    tables = hwsim.roofline("llama-2-7b", "h100-sxm", batch=8)   # ops on the device's roof
    points = hwsim.sweep({"models": ["llama-2-7b"], "devices": ["h100-sxm", "l40s"],
                          "batch": [1, 8, 64]})          # a sweep spec, as a DataFrame
    front = hwsim.pareto(points, "tpot_s", "tokens_per_usd")
    hwsim.best("llama-2-7b", ["h100-sxm", "l40s", "mi300x"], objective="tokens_per_usd")
    run = hwsim.serve("llama-2-7b", "h100-sxm", rate=5, num_requests=200, lengths="sharegpt")
    hwsim.reproduce(["sail"])                            # a paper's headlines with their verdicts
    hwsim.plots.roofline(tables, "h100-sxm")             # charts, shown inline in Jupyter

``notebooks/`` teaches it: a tutorial, one notebook per paper reproduction, serving and
design-space exploration (``docs/notebooks.md``).

Everything beyond the analytic path (the event engine, sweeps, serving, the paper experiments,
charts) is imported on first use, so ``import hwsim`` stays light.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwmodels.device_spec import DeviceSpec, load_device
from roofline.economics import Economics
from roofline.estimate import Estimate, estimate
from workloads.errors import (
    AmbiguousNameError,
    ConfigError,
    DoesNotFitError,
    HwsimError,
    HwsimNote,
    UnknownNameError,
    positive_count,
    positive_number,
    refuse_huge_integers,
    shown_value,
    unknown_name,
)
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant
from workloads.traces import MAX_TOKENS

if TYPE_CHECKING:
    from types import ModuleType

    import pandas as pd

    from explore.spec import SweepSpec
    from sim.serving.queueing import QueueEstimate
    from sim.serving.serve import ServeResult
    from workloads.traces import Trace

__version__ = "0.1.0"

_LAZY = {
    "simulate": ("sim.simulate", "simulate"),
    "load_system": ("sim.system", "load_system"),
    "reproduce": ("sim.experiments", "reproduce"),
    "paper_setup": ("sim.experiments", "setup_table"),
    "verdicts": ("sim.experiments", "with_verdicts"),
    "search": ("explore.search", "search"),
}
"""Re-exports whose modules bring SimPy, the experiments or the sweep machinery: name -> (module,
attribute), imported on first access."""


def __getattr__(name: str) -> Any:
    """The heavy re-exports (``_LAZY``) and the ``plots`` module, imported on first use."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name == "plots":
        return importlib.import_module("hwsim.plots")
    raise AttributeError(f"module 'hwsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the lazy ones included (for tab completion); not the helpers the
    module imports for itself (``np``, ``Any``, ``Mapping``...)."""
    return sorted(__all__)


@refuse_huge_integers
def roofline(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    *,
    batch: int = 1,
    input_len: int = 1024,
    precision: str | Quant = "fp16",
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    framework: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Where each op of a decode step and of a prefill sits on the device's roofline.

    The tables of ``hwsim roofline``: one row per op with ``flops``, ``bytes``,
    ``intensity_flop_per_byte`` (FLOP per byte of device memory), ``attainable_flop_per_s``
    (the roof, ``min(peak, intensity x bandwidth)``), ``achieved_flop_per_s`` (the op's FLOPs over
    the cost model's predicted time; never above the roof), ``share_of_step`` and ``bound``.

    Parameters
    ----------
    model, device : as for ``estimate``.
    batch : sequences, integer >= 1.
    input_len : tokens, integer >= 1: the prompt the prefill processes, and the context each
        sequence of the decode step attends over.
    precision : a ``Quant`` or a name (``fp16``, ``fp8``, ``w4a16``...); refused where the device
        has no math units for it.
    tp, pp, ep : parallel degrees; the tables are one device's shard.
    framework : a serving framework whose per-op overheads apply (default: the device class's).

    Returns
    -------
    ``{"decode": frame, "prefill": frame}``, the input of ``hwsim.plots.roofline``.
    """
    from hwmodels.calibration.params import canonical_framework, framework_terms
    from hwmodels.placement import Placement
    from hwsim.checks import precision_for
    from roofline.estimate import compute_device, positive_ints, resolve_parallelism
    from roofline.roofline import op_roofline
    from workloads.graph import build_ops
    from workloads.model_spec import check_lengths

    spec, dev = load_model(model), compute_device(device)
    quant = precision if isinstance(precision, Quant) else precision_for(precision, dev)
    if framework is not None and not isinstance(framework, str):
        raise ConfigError(f"framework is {framework!r}; expected a name or None")
    resolve_parallelism(spec, None, tp, pp, ep)
    tp, pp, ep = int(tp), int(pp), int(ep)  # checked there: NumPy integers (int8 too) become Python ones
    for label, value in (("batch", batch), ("input_len", input_len)):
        if positive_ints(value, label).ndim:
            raise ConfigError(
                f"{label} is {shown_value(value)}; expected one positive integer (a roofline is of one configuration; "
                "hwsim.estimate prices arrays)"
            )
    batch, input_len = int(batch), int(input_len)
    check_lengths(spec, input_len, 1)
    if framework:
        framework = canonical_framework(framework)
        spec = framework_terms(framework).model_as_run(spec)  # a TensorRT engine: no sliding window
    place = Placement(tp=tp, pp=pp, ep=ep, framework=framework)
    kw = dict(tp=tp, pp=pp, ep=ep)
    return {
        "decode": op_roofline(
            build_ops(spec, quant, phase="decode", batch=batch, context=input_len, **kw), dev, place
        ),
        "prefill": op_roofline(
            build_ops(spec, quant, phase="prefill", batch=batch, tokens=input_len, **kw), dev, place
        ),
    }


@refuse_huge_integers
def sweep(
    spec: Mapping[str, Any] | str | Path | SweepSpec,
    *,
    out: str | Path | None = None,
    backend: str = "local",
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Price every point of a sweep spec (``hwsim sweep``): one row per point.

    Parameters
    ----------
    spec : a mapping with the keys of a sweep YAML (``models``, ``devices``, ``precision``,
        ``tp``, ``batch``, ``input_len``, ``output_len``, ...; each a list, numeric keys also
        ``{start, stop, num, log}``; see ``explore.spec``), the path of such a YAML file, or a
        parsed ``SweepSpec``.
    out : a Parquet dataset directory to write (and resume) as ``hwsim sweep --out`` does;
        default: a temporary directory, removed once the rows are read.
    backend : ``local`` (this process), ``processes`` (the local cores) or ``dask``.
    scheduler : a Dask scheduler address (``backend="dask"`` only).

    Returns
    -------
    The estimate's columns (``ttft_s``, ``tpot_s``, ``decode_tokens_per_s``, ``tokens_per_j``,
    ``tokens_per_usd``, ``memory_bytes``, ``bound``, ``fits``...) beside each point's design
    (``model``, ``device``, ``precision``, ``tp``, ``n_devices``, ``batch``...). A point that
    does not fit is a row with ``fits`` False and its ``shortfall_bytes``; one that cannot be
    priced (a precision the device lacks) has its reason in ``error``.
    """
    import tempfile

    from explore.run import read_sweep, run_sweep
    from explore.spec import SweepSpec, load_spec, parse_spec

    if isinstance(spec, SweepSpec):
        parsed = spec
    elif isinstance(spec, Mapping):
        parsed = parse_spec(dict(spec), "hwsim.sweep spec")
    else:
        parsed = load_spec(spec)
    if out is not None:
        return read_sweep(run_sweep(parsed, out, backend=backend, scheduler=scheduler))
    with tempfile.TemporaryDirectory(prefix="hwsim-sweep-") as tmp:
        return read_sweep(
            run_sweep(parsed, Path(tmp) / "sweep.parquet", backend=backend, scheduler=scheduler)
        )


@refuse_huge_integers
def best(
    model: str,
    devices: Sequence[str] | None = None,
    *,
    objective: str = "tokens_per_usd",
    top: int = 5,
    per_arch: bool = False,
    **search_options: Any,
) -> pd.DataFrame:
    """The best designs for ``model`` that fit and meet the latency limits (``hwsim best``).

    Every combination of device, tensor parallelism, precision and batch is priced (``search``);
    the feasible designs are ranked by ``objective`` and the best batch of each (device, device
    count, precision) is kept.

    Parameters
    ----------
    model : preset name, HF id or ``config.json`` path.
    devices : device names, arches (``gpu``, ``cpu``, ``npu``, ``wafer``...) or device classes;
        default every device.
    objective : a metric of ``roofline.pareto.OBJECTIVES`` (``tokens_per_usd``, ``tokens_per_j``,
        ``tpot_s``, ``ttft_s``...); lower is better for times, higher for the rest.
    top : designs to return, >= 1.
    per_arch : the ``top`` designs of each architecture instead of overall.
    search_options : ``tp``, ``precisions``, ``batches`` (lists), ``input_len``, ``output_len``
        (tokens), ``framework``, ``price_basis`` (``tco`` or ``cloud``), ``slo_ttft_s``,
        ``slo_tpot_s`` (seconds), as for ``search``.

    Returns
    -------
    The ``top`` designs, best first, with an ``arch`` column. Raises ``ConfigError`` naming
    why each design was dropped when none is feasible.
    """
    from explore.search import rank_best, search
    from roofline.pareto import OBJECTIVES

    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise unknown_name("objective", objective, OBJECTIVES)
    if isinstance(devices, str):  # one name, not its characters
        devices = [devices]
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top is {top!r}; expected a positive integer")
    if not isinstance(per_arch, (bool, np.bool_)):
        raise ConfigError(f"per_arch is {per_arch!r}; expected True or False")
    options = [p.name for p in inspect.signature(search).parameters.values() if p.kind is p.KEYWORD_ONLY]
    for key in search_options:
        if key not in options or key == "need_price":
            raise unknown_name("option of best", key, [o for o in options if o != "need_price"])
    result = search(model, devices, need_price="usd" in objective, **search_options)
    if result.kept.empty:
        reasons = "; ".join(f"{n:,} {r}" for r, n in result.dropped.items() if n)
        raise ConfigError(f"no design of {model} meets the limits ({reasons})")
    return rank_best(result, objective, top, per_arch)


@refuse_huge_integers
def pareto(
    frame: pd.DataFrame,
    x: str = "tpot_s",
    y: str = "tokens_per_usd",
    z: str | None = None,
    *,
    label_columns: Sequence[str] | None = None,
    feasible_only: bool = True,
) -> pd.DataFrame:
    """The rows of ``frame`` on the Pareto front of two or three metrics, sorted by ``x``.

    A row is on the front when no other row is at least as good in every metric and better in
    one; times are better low, throughputs and tokens per $ or J high
    (``roofline.pareto.OBJECTIVES``). Rows with a NaN metric (no price on the basis) take no part.

    Parameters
    ----------
    frame : designs, e.g. ``sweep``'s rows or ``search(...).kept``.
    x, y, z : the metrics (``z`` optional: a 3-D front).
    label_columns : the columns joined into the ``design`` label of each row (default those of
        ``device, n_devices, precision, batch`` present).
    feasible_only : drop rows that do not fit in memory (``fits`` False) or could not be priced
        (``error`` set) first.
    """
    import pandas as pd

    from explore.search import DESIGN_LABEL
    from roofline.pareto import pareto_front

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"frame is a {type(frame).__name__}; expected a pandas DataFrame of designs")
    for field, value in (("x", x), ("y", y), ("z", z)):
        if not (value is None and field == "z") and not isinstance(value, str):
            raise ConfigError(f"{field} is {shown_value(value)}; expected a metric name")
    if not isinstance(feasible_only, (bool, np.bool_)):
        raise ConfigError(f"feasible_only is {feasible_only!r}; expected True or False")
    if label_columns is not None and (
        isinstance(label_columns, str) or not all(isinstance(c, str) and c in frame for c in label_columns)
    ):
        raise ConfigError(f"label_columns is {label_columns!r}; expected a list of the frame's column names")
    missing = [m for m in (x, y, z) if m and m not in frame]
    if missing:
        raise ConfigError(
            f"the frame has no column {missing[0]!r}; it has {', '.join(map(str, frame.columns))}"
        )
    points = frame
    if feasible_only and "fits" in points:
        points = points.loc[points["fits"].astype(bool)]
    if feasible_only and "error" in points:
        points = points.loc[points["error"].fillna("") == ""]
    labels = label_columns or [c for c in DESIGN_LABEL if c in frame]
    return pareto_front(points, [m for m in (x, y, z) if m], labels)


def _trace(
    trace: Trace | None,
    rate: float | None,
    concurrency: int | None,
    num_requests: int,
    input_len: int | None,
    output_len: int | None,
    lengths: str | None,
    arrival: str,
    cv: float,
    seed: int,
    length_spread: float | None = None,
) -> Trace:
    from workloads.traces import Trace, make_trace

    if trace is not None:
        if rate is not None or concurrency is not None or lengths is not None or length_spread is not None:
            raise ConfigError("give either a trace or rate/concurrency and lengths, not both")
        if not isinstance(trace, Trace):
            raise ConfigError(
                f"trace is a {type(trace).__name__}; expected a Trace (workloads.traces.make_trace or read_trace_csv)"
            )
        return trace
    return make_trace(
        n_requests=num_requests,
        seed=seed,
        rate=rate,
        concurrency=concurrency,
        arrival=arrival,
        cv=cv,
        input_len=input_len,
        output_len=output_len,
        lengths=lengths,
        length_spread=length_spread,
    )


@refuse_huge_integers
def serve(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    *,
    rate: float | None = None,
    concurrency: int | None = None,
    num_requests: int = 1000,
    input_len: int | None = None,
    output_len: int | None = None,
    lengths: str | None = None,
    length_spread: float | None = None,
    arrival: str = "poisson",
    cv: float = 1.0,
    seed: int = 0,
    trace: Trace | None = None,
    precision: str = "fp16",
    framework: str = "vllm",
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    price_basis: str = "tco",
    record: bool = True,
    **config: Any,
) -> ServeResult:
    """Serve a seeded request stream on the event engine (``hwsim serve``).

    Parameters
    ----------
    model, device : as for ``estimate``.
    rate : open loop, requests per second (Poisson, or gamma gaps with ``arrival="gamma"`` and
        coefficient of variation ``cv``); or ``concurrency``: closed loop, requests in flight.
    num_requests : requests in the stream.
    input_len, output_len : fixed prompt and output tokens; or ``lengths``: a shipped length
        distribution (``sharegpt``, ``openorca``, ``cnn-dailymail``, ``arxiv-summarization``) or a
        CSV path.
    length_spread : draw each length uniformly within this share of ``input_len`` and
        ``output_len`` (``workloads.traces.uniform_spread``: a benchmark client's random range).
    seed : the stream's seed (same seed, same stream).
    trace : a ready ``workloads.traces.Trace`` instead of the arguments above.
    precision : as for ``estimate``; refused where the device has no math units for it.
    framework : ``vllm``, ``vllm-sync``, ``vllm-v0``, ``tensorrt-llm``, ``sglang``... (its scheduler, KV pool
        sizing and host overheads).
    slo_ttft_s, slo_tpot_s : latency limits (s) for SLO attainment and goodput.
    price_basis : ``tco`` or ``cloud``, for ``usd_per_million_tokens``.
    record : keep each engine step (for ``hwsim.plots.serving_timeline``).
    config : ``tp, pp, ep, dp, n_devices, max_batch, max_batched_tokens, max_model_len, kv_fraction, preemption, mode``
        (``agg`` or ``disagg``) ``, prefill_workers, prefill_tp, decode_workers, decode_tp``...,
        as ``sim.serving.serve.serve`` takes them.

    Returns
    -------
    A ``ServeResult``: ``.metrics`` (TTFT, TPOT, end-to-end latency percentiles in s, throughput,
    SLO attainment, $ per million tokens, J per token, the KV pool in tokens; the mean TTFT, TPOT
    and end-to-end time and the output tokens/s with a 10th-90th percentile range,
    ``<key>_low`` and ``<key>_high``, None where no group of the interval table gives one), ``.config`` (what
    was resolved: engine limits, KV pool breakdown, trace) and the per-request ``.requests``.
    """
    from hwsim.checks import precision_for
    from roofline.estimate import compute_device
    from sim.serving.serve import serve as run
    from workloads.model_spec import check_lengths

    stream = _trace(
        trace,
        rate,
        concurrency,
        num_requests,
        input_len,
        output_len,
        lengths,
        arrival,
        cv,
        seed,
        length_spread,
    )
    spec, dev = load_model(model), compute_device(device)
    check_lengths(spec, stream.input_len, stream.output_len)
    return run(
        spec,
        dev,
        stream,
        precision=precision_for(precision, dev),
        framework=framework,
        slo_ttft_s=slo_ttft_s,
        slo_tpot_s=slo_tpot_s,
        economics=Economics(basis=price_basis),
        record=record,
        **config,
    )


@refuse_huge_integers
def serve_estimate(
    model: str,
    device: str,
    *,
    rate: float | None = None,
    concurrency: int | None = None,
    input_len: float | None = None,
    output_len: float | None = None,
    lengths: str | None = None,
    precision: str = "fp16",
    framework: str = "vllm",
    **config: Any,
) -> QueueEstimate:
    """The closed-form steady state of ``serve`` (no events): microseconds instead of seconds.

    Mean TTFT, TPOT and end-to-end latency (s), throughput (requests/s) and the capacity
    (``capacity_requests_per_s``, the rate at which the queue stops being ``stable``) of an
    aggregated configuration, from the same step pricer as the simulation
    (``sim.serving.queueing``). Of the variance of lengths it keeps the length bias of the
    running sequences (a long answer stays in the batch longer); it ignores the rest and bursts
    of steps, so it parts from ``serve`` near saturation.

    Parameters
    ----------
    model, device : preset and catalog names, as for ``serve``.
    rate, concurrency : one of them, as for ``serve``.
    input_len, output_len : mean prompt and output tokens; or ``lengths``, a shipped length
        distribution or a trace CSV (``arrival_s, input_len, output_len``, as ``serve`` replays)
        whose means are taken and whose shape sets the running sequences' context.
    precision, framework, config : as for ``serve`` (aggregated mode only).
    """
    from sim.serving.capacity import approximate
    from workloads.traces import lengths_of

    hist = None
    if lengths is not None:
        if input_len is not None or output_len is not None:
            raise ConfigError("give either lengths or input_len/output_len, not both")
        hist = lengths_of(lengths)
        input_len, output_len = hist.mean()
    if input_len is None or output_len is None:
        raise ConfigError("give input_len and output_len, or a lengths distribution")
    positive_number(input_len, "input_len", "tokens", MAX_TOKENS, minimum=1.0)
    positive_number(output_len, "output_len", "tokens", MAX_TOKENS, minimum=1.0)
    if rate is not None:
        positive_number(rate, "rate", "requests per second", MAX_TOKENS)
    if concurrency is not None:
        positive_count(concurrency, "concurrency", MAX_TOKENS)
    return approximate(
        model,
        device,
        input_len=input_len,
        output_len=output_len,
        lengths=hist,
        rate=rate,
        concurrency=concurrency,
        precision=precision,
        framework=framework,
        **config,
    )


def experiment(name: str) -> ModuleType:
    """The module of the paper reproduction ``name`` (``flexgen``, ``sail``, ``waferllm``,
    ``mllm-npu``...; ``hwsim reproduce --help`` lists them).

    Each has ``run()`` (its headline rows, as ``reproduce`` returns them without the verdict),
    ``PAPER_SETUP`` (the paper's setup beside hwsim's, with sources), ``MISS_CAUSES`` (the
    quantified cause of each headline that misses) and its own studies (``grid``, ``curves``,
    ``sensitivity``...; see the module's docstring).
    """
    from sim.experiments import EXPERIMENTS

    if name not in EXPERIMENTS:
        raise unknown_name("experiment", name, EXPERIMENTS, "hwsim reproduce --help")
    return importlib.import_module(f"sim.experiments.{name.replace('-', '_')}")


def kernel(name: str) -> ModuleType:
    """The reference kernel module ``name`` of ``hwmodels/kernels`` (``lut_gemv``,
    ``hardwired_gemv``, ``mesh``...): a readable loop nest that returns its result and the action
    counts the cost model prices."""
    from importlib.resources import files

    known = sorted(
        p.name.removesuffix(".py")
        for p in files("hwmodels.kernels").iterdir()
        if p.name.endswith(".py") and p.name != "__init__.py"
    )
    if name not in known:
        raise unknown_name("reference kernel", name, known)
    return importlib.import_module(f"hwmodels.kernels.{name}")


__all__ = [
    "AmbiguousNameError",
    "ConfigError",
    "DeviceSpec",
    "DoesNotFitError",
    "Economics",
    "Estimate",
    "HwsimError",
    "HwsimNote",
    "ModelSpec",
    "Quant",
    "UnknownNameError",
    "best",
    "estimate",
    "experiment",
    "kernel",
    "load_device",
    "load_model",
    "load_system",
    "paper_setup",
    "pareto",
    "plots",
    "reproduce",
    "roofline",
    "search",
    "serve",
    "serve_estimate",
    "simulate",
    "sweep",
    "verdicts",
    "__version__",
]
