"""``hwsim validate``: predict every measured row with the estimate's code path and report the error.

Rows come from ``hwmodels/validation/measured.csv`` (or any file in the same schema).
Names are matched to catalog devices and presets directly or through
``hwmodels/validation/aliases.yaml``. A row that cannot be matched, or whose conditions
hwsim cannot model yet, is reported as not covered with the reason, never dropped.

Operating points:

- a row with a batch is predicted at that batch;
- an ``offline`` row without a batch is predicted at the maximum-throughput point of
  continuous batching at steady state: among batches of 1 to 16384 sequences (about 8 per
  doubling), the highest throughput whose paged KV cache fits the engine's KV pool
  (``hwmodels/calibration/engines.yaml``, resolved as the engine does: vLLM and SGLang take
  a share of all memory, TensorRT-LLM a share of what the loaded engine leaves free); at
  steady state a running sequence holds its prompt and half its output on average, and for a
  row drawn from a length distribution (its ``dataset``) the decode steps run at the
  length-biased mean context of continuous batching (a long answer stays in the batch longer:
  ``LengthHistogram.decode_context``);
- ``server`` rows are simulated as request streams by the serving simulator, which a layer
  above passes in (``ServingPredictor``);
- ``kernel`` rows price one operator of the op graph (``kernel_ops`` in the alias table).

Metrics: ``output_tokens_per_s`` = batch x output_len / e2e for the system;
``..._per_device`` divides by its devices; ``decode_tokens_per_s`` is one stream's rate,
1 / TPOT; ``prefill_tokens_per_s`` = batch x input_len / TTFT; ``requests_per_s`` = output
tokens per second / output_len; ``j_per_token`` = the devices' energy per output token
(``ENERGY_METRICS``; wall energy, ``j_per_token_wall``, is reported but not predicted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.calibration.params import (
    canonical_framework,
    framework_keys,
    framework_names,
    framework_terms,
    split_framework_version,
)
from hwmodels.device_names import resolve_device_name
from hwmodels.device_spec import catalog
from hwmodels.engine_config import EngineConfig, engine_for, kv_capacity, steady_batch
from hwmodels.placement import Placement
from hwmodels.schedulers import policy
from hwmodels.trtllm_bench import bench_limits
from roofline.estimate import estimate, experts_within_tp, kv_cache_bytes, weight_bytes
from roofline.intervals import mean_metric, row_features, row_range
from workloads.errors import AmbiguousNameError, ConfigError, DoesNotFitError, HwsimError, closest_names
from workloads.files import is_file
from workloads.graph import build_ops
from workloads.model_spec import ModelSpec, load_model, preset_for
from workloads.quant import Quant
from workloads.shipped import parse_yaml
from workloads.traces import LengthHistogram, load_lengths, uniform_spread

HELD_OUT_PREFIXES = ("vf", "vg", "vh", "vi", "vj", "vk", "vl", "vm", "vn", "vo", "vp", "vq", "vr", "vs")
"""Ids of measured rows kept out of every fit (devices, energy, serving), an unseen-source check
that ``hwsim validate`` reports like any row: ``vf`` rows (added 2026-12-02 from sources the fit
had never seen: Intel's optimum-habana reference runs on Gaudi 2 and 3, AMD's and Oracle's vLLM
runs on 8x MI300X, TensorRT-LLM 0.17 tables on GH200, L40S, H100 and H200) and ``vg`` rows
(added 2026-12-03, read by a helper from sources hwsim had not used, none of them fitted: the
TensorRT-LLM v0.5 H200 and H100-vs-A100 blogs, AMD's ROCm blog of MI300X vLLM against H100
TensorRT-LLM 0.16 on Llama-3.1-70B/405B, NVIDIA NIM's Llama-3.3-70B benchmark on 2x H100, and
dstack's DeepSeek-R1 serving on 8x MI300X and 8x H200 and Llama-3.1-405B on 8x H100 and MI300X)
and ``vh`` rows (added 2026-12-04, hwsim's own measurement on one H200, ``benchmarks/
measure_graph_decode.py``: decode steps and prefills replayed as CUDA graphs, time and the
board's energy counter) and ``vi`` rows (added 2026-12-04, read by a helper from sources hwsim had
not used, none fitted: LMDeploy's A100, RTX 4090 and H200 benchmark docs, GPUStack's
performance-lab runs of vLLM, SGLang and TensorRT-LLM on H100, A100 and 8x H200, AutoAWQ's RTX
4090 tables, Intel's Gaudi 2 and 3 model-performance pages for SynapseAI 1.18, the TensorRT-LLM
Falcon-180B/H200 blog and vLLM's FP8 KV-cache blog on H100) and ``vj`` rows (added 2026-12-05,
read by a helper from sources hwsim had not used, none fitted: Lambda's vLLM 0.5.4 ShareGPT bursts
on 1-8 H100 and A100, Azure's TensorRT-LLM static batches on A100 and a ROCm vLLM fork's offline
throughput on MI300X from a fork of Azure's benchmarking guide) and ``vk`` rows (added 2026-12-05,
read by helpers from MLPerf Inference v5.0, a round hwsim had not used, none fitted: TensorRT-LLM
on GH200, 8x L40S, 8x H200 NVL and 4x H100 NVL, each with its submitter's engine configuration)
and ``vl`` rows (added 2026-12-06, read by a helper from SemiAnalysis's InferenceX dashboard data
as captured in SemiAnalysisAI/InferenceX-app's test fixture, none fitted: DeepSeek-R1 served by
SGLang 0.5.9 and TensorRT-LLM 1.2-1.3 on 8x H200, B200, MI300X, MI325X and MI355X, each run's
engine flags read from the launch script of its sweep) and ``vm`` rows (added 2026-12-06, read from
the pages of sgl-project/sgl-cookbook whose models and GPUs the fitted ``s300``-``s345`` rows of the
same source do not cover, none fitted: SGLang 0.5.7-0.5.9 serving MiniMax-M2.5 on 8 B200 and 8
H100, DeepSeek-V3.1, Llama-4 Scout and Maverick and Qwen3-Coder-480B on 8 MI300X; a check of the
request latency fitted on the others, leaving their models and GPUs out) and ``vn`` rows (added
2026-12-07, read by helpers and first predicted blind, none fitted: llama.cpp builds of May 2024
on 1-8 consumer, workstation and datacenter GPUs and three Apple M chips from
XiongjieDai/GPU-Benchmarks-on-LLM-Inference, the TensorRT-LLM 0.13.0 throughput tables of
perf-overview.md, an older release of the document whose v0.17 and v1.0 tables the ``vf`` and
fitted rows hold, and MLPerf Inference v5.0 llama2-70b and mixtral-8x7b runs of submitters the
``vk`` rows do not hold, on H100, H200, GH200, MI300X and MI325X) and ``vo`` rows (added
2026-12-07, read by a helper and first predicted blind, none fitted: the TensorRT-LLM 0.14.0 and
0.21 throughput tables of perf-overview.md, the first from TensorRT engines on H100, H200, A100 SXM
and PCIe and L40S, the second from the PyTorch backend on H100, H200, GH200, B200 and GB200) and
``vp`` and ``vq`` rows (added 2026-12-07, read by helpers and first predicted blind, none fitted:
AMD's vLLM 0.6.6, 0.8.5 and 0.9.1 throughput and latency tables for 8 MI300X from the git history
of ROCm/vllm's dev-docker README, and Intel's Gaudi 2 and 3 FP8 reference numbers of Intel Gaudi
software 1.19 (Gaudi-tutorials) and 1.18 (intel.com) that the ``vf`` and ``vi`` rows do not hold) and
``vr`` rows (added 2026-12-07, read by a helper and first predicted blind, none fitted: Qwen's own
Speed Benchmark pages for Qwen2 and Qwen2.5 on A100 80GB, HF Transformers 4.38 and 4.46 and vLLM
0.4.2, 0.6.2 and 0.6.3 at batch 1 from 1 to 129,024 prompt tokens, in BF16, GPTQ and AWQ) and
``vs`` rows (added 2026-12-08, read by a helper and first predicted blind, none fitted: MLPerf
Inference v4.0 and v4.1 closed-division llama2-70b, gptj and mixtral-8x7b runs of 18 submitters
on H100, H200, GH200, L40S, MI300X and Gaudi 2 that the ``s2``, ``vk`` and ``vn`` rows do not hold)."""

COLUMNS = [
    "id",
    "hardware",
    "n_devices",
    "interconnect",
    "model",
    "precision",
    "framework",
    "phase",
    "batch",
    "input_len",
    "output_len",
    "tp",
    "pp",
    "metric",
    "value",
    "unit",
    "source",
    "notes",
]
REQUIRED_COLUMNS = ("hardware", "model", "precision", "phase", "metric", "value")
"""The columns a measured-data CSV must have; the rest of ``COLUMNS`` read as empty where absent
(an ``id`` as the row's line in the file)."""
PHASES = ("prefill", "decode", "e2e", "offline", "server", "kernel")
"""The phases a measured row may state (docs/data-formats.md), case ignored."""
SERVING_COLUMNS = [
    "framework_version",
    "dataset",
    "concurrency",
    "request_rate",
    "mode",
    "dp",
    "ep",
    "prefill_workers",
    "prefill_tp",
    "prefill_dp",
    "prefill_ep",
    "prefill_batch",
    "decode_workers",
    "decode_tp",
    "decode_dp",
    "decode_ep",
    "decode_batch",
]
"""Optional columns of serving measurements (absent columns read as empty)."""
METRICS = (
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "decode_tokens_per_s",
    "prefill_tokens_per_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "kernel_s",
    "j_per_token",
    "decode_step_j",
    "prefill_j",
    "requests_per_s",
    "total_tokens_per_s",
    "total_tokens_per_s_per_device",
    "input_tokens_per_s",
)
PERCENTILES = (50, 90, 99)
PERCENTILE_METRICS = tuple(f"{m}_p{q}" for m in ("ttft_s", "tpot_s", "e2e_s") for q in PERCENTILES)
"""Percentiles over a served stream's requests (``ttft_s_p50`` is the median TTFT): predicted for
``server`` rows, whose simulated run gives each request's latencies; a static batch's requests
all take the same time, so other phases state the metric itself (``ttft_s``)."""
METRICS += PERCENTILE_METRICS
ENERGY_METRICS = ("j_per_token", "decode_step_j", "prefill_j")
"""Energy the devices themselves drew (their own counters or power readings, such as NVML):
per output token (``j_per_token``, what ``Estimate.energy_j_per_token`` prices), per decode step
of the whole batch (``decode_step_j``: the run's energy with one more output token, less the
run's) or per prefill of the whole batch (``prefill_j``: the energy of a run that emits one
token)."""
BURST_REQUESTS = 1000
"""Requests of a server row sent all at once (``request_rate`` inf) that does not state how many
(``num_requests=N`` in its notes): the default ``--num-prompts`` of vLLM's
``benchmarks/benchmark_serving.py`` and SGLang's ``bench_serving.py``."""
METRIC_SPELLINGS: dict[str, tuple[str, float]] = {
    # the result keys of vLLM's and SGLang's serving benchmarks (means, in ms and tokens/s)
    "mean_ttft_ms": ("ttft_s", 1e-3),
    "mean_tpot_ms": ("tpot_s", 1e-3),
    "mean_itl_ms": ("tpot_s", 1e-3),
    "mean_e2el_ms": ("e2e_s", 1e-3),
    "output_throughput": ("output_tokens_per_s", 1.0),
    "request_throughput": ("requests_per_s", 1.0),
    "total_token_throughput": ("total_tokens_per_s", 1.0),
    # their medians and tails (vLLM's benchmark_serving result keys; ITL percentiles are not
    # TPOT's: a stream's slowest gaps are the steps a prefill joined)
    **{
        f"{stat}_{name}_ms": (f"{metric}_p{q}", 1e-3)
        for name, metric in (("ttft", "ttft_s"), ("tpot", "tpot_s"), ("e2el", "e2e_s"))
        for stat, q in (("median", 50), ("p90", 90), ("p99", 99))
    },
    # an offline run's generated tokens per second (the measured-data contract's example name)
    "offline_tokens_per_s": ("output_tokens_per_s", 1.0),
    # the same quantities under a millisecond name
    "ttft_ms": ("ttft_s", 1e-3),
    "tpot_ms": ("tpot_s", 1e-3),
    "itl_ms": ("tpot_s", 1e-3),
    "itl_s": ("tpot_s", 1.0),
    "e2e_ms": ("e2e_s", 1e-3),
    "latency_s": ("e2e_s", 1.0),
    "latency_ms": ("e2e_s", 1e-3),
    # a latency's mean or percentile written before or after its name, in s or ms (mean_ttft_s,
    # ttft_ms_mean, avg_tpot_ms, ttft_s_median, p99_e2el_s, tpot_ms_p90); ITL's mean only
    **{
        spelling: (metric if q is None else f"{metric}_p{q}", factor)
        for name, metric in (
            ("ttft", "ttft_s"),
            ("tpot", "tpot_s"),
            ("e2e", "e2e_s"),
            ("e2el", "e2e_s"),
            ("itl", "tpot_s"),
        )
        for unit, factor in (("s", 1.0), ("ms", 1e-3))
        for stat, q in (("mean", None), ("avg", None), ("median", 50), ("p50", 50), ("p90", 90), ("p99", 99))
        if q is None or name != "itl"
        for spelling in (f"{stat}_{name}_{unit}", f"{name}_{unit}_{stat}")
        if spelling not in (metric, f"{metric}_p{q}")
    },
    # the result keys of SemiAnalysis InferenceX (utils/process_result.py): rates per GPU
    "output_tput_per_gpu": ("output_tokens_per_s_per_device", 1.0),
    "tput_per_gpu": ("total_tokens_per_s_per_device", 1.0),
}
"""Other names of ``METRICS`` a measured-data file may use, with the factor that takes their value
to the metric's unit. Inter-token latency (ITL) is read as the time per output token: the mean
gap between a stream's tokens, which for a request's tokens after its first is its TPOT.
``offline_tokens_per_s`` is read as generated (output) tokens per second of the whole run; a rate
of prompt and output tokens together is ``total_tokens_per_s`` (vLLM's ``total_token_throughput``,
``benchmark_throughput.py``'s "total tokens/s"), priced as the output rate times (prompt + output)
/ output at the row's mean lengths."""
TIME_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "msec": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
}
"""Units a time metric's value may be stated in (the ``unit`` column), with their factor to s."""
TIME_METRICS = ("ttft_s", "tpot_s", "e2e_s", "kernel_s", *PERCENTILE_METRICS)
WALL_ENERGY_METRICS = ("j_per_token_wall",)
"""Energy at the wall (whole system, a power meter): reported apart and not predicted, since
hwsim prices the devices' energy only, not the host's CPUs, memory, fans or power supply."""
OFFLINE_BATCHES = np.unique(np.round(np.geomspace(1, 16384, 113)))
"""Candidate batches for a maximum-throughput row: about 8 per doubling."""


@lru_cache(maxsize=1)
def aliases() -> dict[str, Any]:
    """The alias table (``hwmodels/validation/aliases.yaml``)."""
    raw = parse_yaml(files("hwmodels.validation").joinpath("aliases.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError("hwmodels/validation/aliases.yaml: schema_version must be 1")
    return raw


def shipped_measured_path() -> Path:
    """The shipped measured set."""
    return Path(str(files("hwmodels.validation").joinpath("measured.csv")))


def field_separator(path: Path) -> str:
    """The separator of a measured-data file's fields: a comma, or, where its header line holds
    none, the semicolon or tab a spreadsheet's export uses."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        header = f.readline()
    return next((sep for sep in (",", ";", "\t") if sep in header), ",")


def load_measured(path: str | Path | None = None) -> pd.DataFrame:
    """Read a measured-data CSV (or a file of semicolon- or tab-separated fields) and check its
    columns."""
    path = Path(path) if path is not None else shipped_measured_path()
    if not is_file(path):
        raise ConfigError(f"measured data file {str(path)!r} does not exist or is not a file")
    try:
        frame = pd.read_csv(path, sep=field_separator(path))
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # pandas' parser errors are ValueErrors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: not a readable CSV ({reason})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{path}: missing column(s) {', '.join(missing)}; expected at least {', '.join(REQUIRED_COLUMNS)} "
            f"(and, read as empty where absent, {', '.join(c for c in COLUMNS if c not in REQUIRED_COLUMNS)})"
        )
    if frame.empty:
        raise ConfigError(f"{path}: no rows")
    if "id" not in frame.columns:
        frame["id"] = [f"row{i + 2}" for i in range(len(frame))]  # its line in the file
    for c in (*COLUMNS, *SERVING_COLUMNS):
        if c not in frame.columns:
            frame[c] = np.nan
    for c in frame.columns.difference(list(NUMERIC_COLUMNS)):
        frame[c] = frame[c].astype(object)  # a text column left empty is read as floats: NaN cells
    frame["phase"] = frame["phase"].map(lambda p: p.strip().lower() if isinstance(p, str) else p)
    for c, need in NUMERIC_COLUMNS.items():
        frame[c] = _numeric_column(frame, c, need, path)
    return _in_metric_units(frame)


def _in_metric_units(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with other metric names (``METRIC_SPELLINGS``: ``mean_ttft_ms``) as ``METRICS``
    names and a time metric stated in another unit (``ttft_s`` in ms) in seconds, its ``unit``
    then ``s``. A time metric whose unit is not a time stays as it is, for ``resolve`` to refuse."""
    frame = frame.copy()
    frame["value"] = frame["value"].astype(float)
    metric = frame["metric"].astype(str).str.strip().str.lower()
    unit = frame["unit"].where(frame["unit"].notna(), "").astype(str).str.strip()
    frame["unit"] = frame["unit"].astype(object)
    for name, (to, factor) in METRIC_SPELLINGS.items():
        hit = metric == name
        frame.loc[hit, "metric"] = to
        frame.loc[hit, "value"] = frame.loc[hit, "value"] * factor
        frame.loc[hit, "unit"] = "s" if to in TIME_METRICS else unit[hit]
        unit[hit] = frame.loc[hit, "unit"]
    time = frame["metric"].isin(TIME_METRICS) & unit.str.lower().isin(TIME_UNITS.keys())
    factor = np.array([TIME_UNITS[u.lower()] for u in unit[time]], dtype=float)
    frame.loc[time, "value"] = frame.loc[time, "value"].to_numpy() * factor
    frame.loc[time, "unit"] = "s"
    return frame


NUMERIC_COLUMNS = {
    "value": "a positive number",
    "request_rate": "empty, inf (every request at once) or a positive number",
    **{
        c: "empty or a count from 0 to 10,000,000 (a whole number but for input_len and output_len)"
        for c in ("n_devices", "batch", "input_len", "output_len", "tp", "pp", "concurrency", "dp", "ep")
        + tuple(f"{p}_{k}" for p in ("prefill", "decode") for k in ("workers", "tp", "dp", "ep", "batch"))
    },
}
"""Numeric columns and what each cell must hold; a cell that does not is an error naming its row."""


def _numeric_column(frame: pd.DataFrame, column: str, need: str, path: Path) -> pd.Series:
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    present = num.notna() | (raw.notna() & (raw.astype(str).str.strip() != ""))
    count = need.startswith("empty or a count")
    ok = num.notna() & (np.isfinite(num) | (column == "request_rate"))
    whole = column not in ("input_len", "output_len")  # lengths may be a trace's means
    if count:
        ok &= (num >= 0) & (num <= 10_000_000)
        if whole:
            ok &= num == np.round(num)
    else:
        ok &= num > 0
    bad = present & ~ok if need.startswith("empty") else ~ok
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        cell = raw.iloc[i] if isinstance(raw.iloc[i], str) else float(raw.iloc[i])
        raise ConfigError(
            f"{path}: line {i + 2} (id {frame['id'].iloc[i]!r}): {column} is {cell!r}; expected {need}"
        )
    return raw if raw.dtype.kind in "iuf" else num  # a column read as numbers keeps its dtype


@dataclass(frozen=True)
class Condition:
    """A measured row resolved to hwsim's names and an operating point."""

    model: str
    device: str
    precision: str
    framework: str | None
    phase: str
    metric: str
    batch: int | None
    input_len: int
    output_len: int
    tp: int
    pp: int
    n_devices: int
    kernel_op: str | None = None
    lengths: str | None = None
    """A length distribution of ``workloads/lengths`` (the row's dataset), or None for fixed lengths."""
    serving: dict[str, Any] | None = None
    """For a ``server`` row: the serving run's settings (``concurrency`` or ``request_rate``,
    ``ep``, ``attention_dp``, ``mode`` and the disaggregated pools, ``max_batched_tokens``,
    ``scheduler_steps``: vLLM's ``--num-scheduler-steps`` where the notes state it;
    ``prefix_caching`` False where an SGLang run's notes state ``--disable-radix-cache``;
    ``scheduler``: another scheduling policy of its engine, by the ``capacity_policy`` rules of
    the alias table)."""
    max_num_seqs: int | None = None
    """The engine's limit on running sequences when the row states it (``--max-num-seqs N``,
    ``--max_batch_size N`` or ``--max-running-requests N`` in its notes); None keeps the engine's
    default (a server row's ``batch``, where given, is that limit)."""
    cached_len: int = 0
    """Prompt tokens per sequence the engine finds in its prefix cache (``cached_prompt_tokens``)."""
    link: str | None = None
    """The device link collectives run over when the row names one the device has besides its
    default (``stated_link``: a PCIe run of cards that also take an NVLink bridge); None: the default."""
    max_model_len: int | None = None
    """The engine's ``--max-model-len`` when the row states it (it sets vLLM V0's token budget,
    ``EngineConfig.sized_for``); None: the model's context."""
    chunked_prefill: bool | None = None
    """Whether the run turned vLLM's chunked prefill on or off (``stated_chunked_prefill``);
    None: the engine decides."""
    num_prompts: int | None = None
    """The prompts an offline run sent, where its notes state them (``--num-prompts N``): no more
    sequences than that run at once; None: not stated."""
    memory_fraction: float | None = None
    """The run's memory share for weights and KV cache in its engine's own rule, where the notes
    state it (``stated_memory_fraction``); None: the engine's default."""
    length_spread: float | None = None
    """Lengths drawn uniformly within this share of the row's means, where the notes state the
    benchmark client's range (``stated_length_spread``); None: fixed lengths or ``lengths``."""
    bench_tuned: bool = False
    """Whether a TensorRT-LLM offline run's batch and token limits were set by ``trtllm-bench``
    from the row's lengths (its notes name the tool; ``hwmodels.trtllm_bench``)."""
    max_num_batched_tokens: int | None = None
    """An offline run's token budget per step where its notes state it (``_stated_token_budget``:
    ``--max-num-batched-tokens N``, ``--max_num_tokens N``); it wins over the engine's own and
    sets the activation peak reserved before the KV pool. None: the engine's (a server row's
    stated budget is in ``serving``)."""
    scheduler: str | None = None
    """An offline run's scheduling policy where its notes state another than its engine's default
    (``stated_scheduler``: TensorRT-LLM's MAX_UTILIZATION in MLPerf's harness); a server row's is
    in ``serving``."""

    @property
    def closed_loop(self) -> bool:
        """Whether the row is a served stream with a fixed number of requests in flight (its
        client's concurrency) rather than arrivals on their own schedule."""
        return bool(self.serving and self.serving.get("concurrency"))


def row_lengths(c: Condition) -> LengthHistogram | None:
    """The length distribution a row's requests are drawn from: its dataset's histogram, the
    uniform spread its client drew (``uniform_spread``), or None for fixed lengths."""
    if c.lengths:
        return load_lengths(c.lengths)
    if c.length_spread:
        return uniform_spread(c.input_len, c.output_len, c.length_spread)
    return None


def stated_link(interconnect: Any, device: str) -> str | None:
    """The catalog link a row's ``interconnect`` names when it is PCIe (``pcie-gen4``,
    ``pcie3-x16``, ``PCIe``) and ``device`` has one; None otherwise (NVLink, Infinity Fabric and
    RoCE names are the device's default scale-up link, which collectives use anyway)."""
    text = _text(interconnect)
    return "pcie" if text.strip().lower().startswith("pcie") and "pcie" in catalog()[device].links else None


def _text(cell: Any) -> str:
    """A CSV cell as text: "" for an empty one (None or NaN)."""
    return "" if cell is None or (isinstance(cell, float) and math.isnan(cell)) else str(cell)


def _int_or_none(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def hardware_device(hardware: str) -> str:
    """The catalog name of a measured row's ``hardware``: its entry in the alias table, else the
    part the name users type stands for (``resolve_device_name``: ``H100 SXM``, ``HL-225``,
    ``AMD Instinct MI300X``; an ambiguous name takes the variant that table assumes), else the
    name itself, lowercased."""
    hw = str(hardware).strip().lower()
    if hw in aliases()["hardware"]:
        return aliases()["hardware"][hw]["device"]
    try:
        resolved = resolve_device_name(hw)
    except AmbiguousNameError:  # a SoC: no one part to price
        resolved = None
    return hw if resolved is None else resolved[0]


def checkpoint_precision(text: str, precision: str) -> str | None:
    """The precision a checkpoint named in ``text`` (a row's model, source and notes) fixes for
    rows of ``precision`` (``checkpoints:`` in aliases.yaml), or None."""
    for rule in aliases().get("checkpoints", []):
        if rule["of"] == precision and re.search(rule["match"], text.lower()):
            return str(rule["precision"])
    return None


def resolve(row: pd.Series) -> Condition | str:
    """Map a row to a ``Condition``, or return why it is not covered."""
    al = aliases()
    hw = _text(row["hardware"]).strip().lower()
    if not hw:
        return "hardware is empty; expected a device of the catalog (hwsim devices lists them)"
    device = hardware_device(hw)
    if device not in catalog():
        return f"hardware {hw!r} is not in the catalog"
    if catalog()[device].arch not in registry.names():
        return f"hardware {hw!r} is a {catalog()[device].arch} part with no cost model yet"
    name = _text(row["model"]).strip().lower()
    if not name:
        return "model is empty; expected a preset name (hwsim models lists them)"
    model = al["model"].get(name, {}).get("preset") or preset_for(name)
    if model is None:
        return f"model {name!r} has no preset"
    precision = _text(row["precision"]).strip().lower()
    precision = checkpoint_precision(f"{row['model']} {row['source']} {row['notes']}", precision) or (
        al.get("precision", {})
        .get(canonical_framework(_text(row["framework"])), {})
        .get(precision, precision)
    )
    if not precision:
        return "precision is empty; expected a precision name as -p takes it (fp16, bf16, fp8, int4, q4_k_m, ...)"
    try:
        Quant.from_name(precision)
    except ConfigError:
        return f"precision {precision!r} is not modeled"
    # a version in the framework's own cell ("vLLM 0.6.3") when its version cell states none
    version = stated_version(
        _text(row.get("framework_version")) or split_framework_version(_text(row["framework"]))[1] or ""
    )
    framework = framework_of(_text(row["framework"]).strip().lower(), f"{row['notes']} version={version}")
    phase, metric = _text(row["phase"]).strip().lower(), _text(row["metric"])
    if phase not in PHASES:
        if not phase:
            return f"phase is empty; expected one of {', '.join(PHASES)}"
        near = closest_names(phase, PHASES)
        return f"phase {phase!r} is not one of {', '.join(PHASES)}" + (
            f"; closest: {', '.join(near)}" if near else ""
        )
    if metric in WALL_ENERGY_METRICS:
        return (
            f"metric {metric!r} is wall (system) energy: hwsim prices the devices' energy only, "
            "not the host's CPUs, memory, fans or power supply"
        )
    if not metric.strip():
        return f"metric is empty; expected one of {', '.join(sorted(METRICS))}"
    if metric not in METRICS:
        near = closest_names(metric, [*METRICS, *METRIC_SPELLINGS])
        return f"metric {metric!r} is not predicted" + (f"; closest: {', '.join(near)}" if near else "")
    if metric in PERCENTILE_METRICS and phase != "server":
        return (
            f"metric {metric!r} is a percentile over a served stream's requests: predicted for server rows "
            f"only (a {phase!r} row states the time itself: {mean_metric(metric)})"
        )
    unit = _text(row.get("unit")).strip()
    if metric in TIME_METRICS and unit and unit != "s":
        return f"unit {unit!r} does not go with metric {metric!r}; expected a time ({', '.join(TIME_UNITS)})"
    tp, pp = _int_or_none(row["tp"]) or 1, _int_or_none(row["pp"]) or 1
    n_devices = _int_or_none(row["n_devices"]) or tp * pp
    if framework and framework_terms(framework).multi_gpu == "sequential_layers":
        # one process spreads the layers over all the run's devices, whatever tp the source names
        tp, pp = 1, n_devices
    if n_devices % (tp * pp):
        return f"n_devices {n_devices} is not a multiple of tp*pp = {tp * pp}"
    beams = stated_beam_width(row["notes"])
    if beams > 1:
        return (
            f"beam search (beam width {beams}) is not modelled: hwsim runs one sequence per request, "
            f"where each request decoded {beams} beams"
        )
    zero = al["phase_defaults"]["zero_length"]["value"]
    lin, lout = _int_or_none(row["input_len"]), _int_or_none(row["output_len"])
    lengths = _dataset_lengths(row.get("dataset"))
    serving = None
    ep = _int_or_none(row.get("ep")) or 1
    if (
        phase != "server"
        and ep > 1
        and not experts_within_tp(tp, pp, ep, n_devices, _int_or_none(row.get("dp")) or 1)
    ):
        # the analytic rows here carry tp and pp only: pricing an expert-parallel run over devices
        # of its own (or the per-rank batch of attention data parallelism) as tensor parallel
        # would misstate it
        return f"ep {ep}: expert parallelism is validated on server rows only (the simulated engine)"
    if phase == "server":
        serving = _serving_settings(row, n_devices, tp, pp, framework)
        if isinstance(serving, str):
            return serving
        tp = serving.pop("tp", tp)
    if lengths and (lin is None or lout is None) and phase in ("offline", "server"):
        mean_in, mean_out = load_lengths(lengths).mean()
        lin = round(mean_in) if lin is None else lin
        lout = round(mean_out) if lout is None else lout
    if phase == "decode" and (lin is None or lout is None):
        d = al["phase_defaults"]["decode"]
        lin = d["input_len"] if lin is None else lin
        lout = d["output_len"] if lout is None else lout
    kernel_op = None
    if (phase == "kernel") != (metric == "kernel_s"):
        return f"metric {metric!r} does not go with phase {phase!r}: kernel rows measure kernel_s, and only they do"
    if phase == "kernel":
        op = _note_field(row["notes"], "op")
        kernel_op = al["kernel_ops"].get(op or "")
        if kernel_op is None:
            return f"kernel op {op!r} has no hwsim op"
        tokens = _int_or_none(row["batch"])
        if not tokens:
            return "kernel row states no batch (the tokens the operator ran on)"
        lin, lout = tokens, 1
    if lin is None or lout is None:
        return "input_len or output_len is not stated"
    lin, lout = max(lin, zero), max(lout, zero)
    batch, max_num_seqs = _int_or_none(row["batch"]), _stated_max_num_seqs(row["notes"])
    if phase == "offline" and stated_batch_limit(row["notes"], batch):
        batch, max_num_seqs = None, batch  # the engine fills its pool up to that limit
    return Condition(
        model,
        device,
        precision,
        framework,
        phase,
        metric,
        batch,
        lin,
        lout,
        tp,
        pp,
        n_devices,
        kernel_op,
        lengths,
        serving,
        max_num_seqs,
        cached_prompt_tokens(row["notes"], framework, phase, lin),
        stated_link(row["interconnect"], device),
        _stated_max_model_len(row["notes"]),
        stated_chunked_prefill(row["notes"], row.get("framework_version")),
        _stated_num_requests(row["notes"]) if phase == "offline" else None,
        stated_memory_fraction(row["notes"], framework, phase),
        None if lengths else stated_length_spread(row["notes"]),
        phase == "offline"
        and str(framework).startswith("tensorrt-llm")
        and "trtllm-bench" in str(row["notes"])
        and bench_tunes(row.get("framework_version")),
        _stated_token_budget(row["notes"], phase, framework) if phase == "offline" else None,
        stated_scheduler(row["notes"], framework) if phase == "offline" else None,
    )


def cached_prompt_tokens(notes: Any, framework: str | None, phase: str, input_len: int) -> int:
    """Prompt tokens per sequence a timed run finds in its engine's prefix cache: for a benchmark
    that repeats its prompts (``repeated_prompts`` in the alias table) on an engine that caches
    prefixes, every full KV block of the prompt but the last token (vLLM V1's
    ``kv_cache_manager`` caps a hit at ``num_tokens - 1`` so the last token's logits are
    computed); 0 otherwise."""
    if (
        phase == "server"
        or not framework
        or not any(re.search(rule["match"], str(notes)) for rule in aliases().get("repeated_prompts", []))
    ):
        return 0
    engine = engine_for(framework)
    if not engine.prefix_caching:
        return 0
    return (input_len - 1) // engine.block_size * engine.block_size


BATCH_LIMIT = re.compile(
    r"\bbatch(?: (\d+))? = (?:vLLM )?(?:gpu_batch_size|max[-_]num[-_]seqs|max[-_]batch[-_]size)\b",
    re.IGNORECASE,
)
"""How a row's notes say its ``batch`` is the engine's limit on sequences in flight (MLPerf's
``gpu_batch_size``, an engine's ``max_num_seqs``), not the batch that ran: ``batch 2048 =
gpu_batch_size per engine``."""


def stated_batch_limit(notes: Any, batch: int | None) -> bool:
    """Whether an offline row's ``batch`` is its engine's limit on running sequences
    (``BATCH_LIMIT``; the number, where the sentence gives one, is the row's batch): the engine
    then runs as many sequences as its KV pool holds, up to that limit (``offline_max_batch``)."""
    if batch is None:
        return False
    return any(m.group(1) in (None, str(batch)) for m in BATCH_LIMIT.finditer(str(notes)))


BEAM_WIDTH = re.compile(r"\b(?:runtime_beam_width|num_beams|beam width)\b\D{0,3}(\d+)", re.IGNORECASE)
"""How a row's notes state the beam search its run decoded with: MLPerf's GPT-J benchmark runs four
beams a request (``runtime_beam_width 4`` in NVIDIA's harness, ``num_beams`` in the reference)."""


def stated_beam_width(notes: Any) -> int:
    """The widest beam a row's notes state its run decoded with (``BEAM_WIDTH``), 1 if none."""
    return max((int(m.group(1)) for m in BEAM_WIDTH.finditer(str(notes))), default=1)


def stated_scheduler(notes: Any, framework: str | None) -> str | None:
    """The scheduling policy of a row's engine by the first ``capacity_policy`` rule of the alias
    table that holds for its framework and notes, or None: the engine's default."""
    for rule in aliases().get("capacity_policy", []):
        if str(framework) in rule["frameworks"] and re.search(rule["match"], str(notes)):
            return rule["scheduler"]
    return None


def _stated_max_num_seqs(notes: Any) -> int | None:
    """``N`` of a ``--max-num-seqs N`` (vLLM), ``--max_batch_size N`` (TensorRT-LLM) or
    ``--max-running-requests N`` (SGLang) flag in a row's notes, or None."""
    match = re.search(r"--max[-_](?:num[-_]seqs|batch[-_]size|running[-_]requests)[ =](\d+)", str(notes))
    return int(match.group(1)) if match else None


BUDGET_ARGUMENTS = {
    "vllm": "max[-_]num[-_]batched[-_]tokens",
    "tensorrt-llm": "max[-_]num[-_]tokens",
    "sglang": "chunked[-_]prefill[-_]size",
    "lmdeploy": "max[-_]prefill[-_]token[-_]num",
    "tgi": "max[-_]batch[-_]prefill[-_]tokens",
}
"""The engine argument that sets a framework family's token budget per step: vLLM's
``--max-num-batched-tokens``, TensorRT-LLM's ``--max_num_tokens`` (trtllm-serve, trtllm-bench,
its build and its MLPerf configs), SGLang's ``--chunked-prefill-size`` (the prompt tokens one
prefill batch takes, ``server_args.py``; -1, no chunking, is not read), LMDeploy's
``--max-prefill-token-num``, TGI's ``--max-batch-prefill-tokens``; a family is the
frameworks.yaml names that begin with it."""


DECODE_RUN_ARGUMENTS = {
    "vllm": "num[-_]scheduler[-_]steps?",
    "sglang": "num[-_]continuous[-_]decode[-_]steps",
}
"""The engine argument that runs N decode steps back to back, taking no new prompt between them:
vLLM V0's ``--num-scheduler-steps`` (multi-step scheduling) and SGLang's
``--num-continuous-decode-steps`` ("Run multiple continuous decoding steps to reduce scheduling
overhead ... may also increase time-to-first-token latency", sgl-project/sglang
python/sglang/srt/server_args.py); ``scheduler_steps`` of the serve configuration."""


def _argument_of(arguments: Mapping[str, str], framework: str | None) -> str | None:
    """The pattern of ``framework``'s family's argument in ``arguments`` (a family is the
    frameworks.yaml names that begin with its key), or None."""
    return next((v for k, v in arguments.items() if str(framework).startswith(k)), None)


def _about_other_scenario(text: str, at: int, phase: str) -> bool:
    """Whether the sentence of ``text`` that leads to position ``at`` is about the other
    scenario than ``phase``'s (an MLPerf row's notes quoting its Offline config in a Server row)."""
    other = "offline" if phase == "server" else "server"
    return other in re.split(r"[.;]\s", text[:at])[-1].lower()


def _stated_token_budget(notes: Any, phase: str, framework: str | None) -> int | None:
    """``N`` of the token-budget argument of ``framework``'s family (``BUDGET_ARGUMENTS``) as a
    row's notes give it (``--max-num-batched-tokens N``, ``max-num-batched-tokens=N``,
    ``--max_num_tokens N``, ``max_num_tokens N``), or None: also when the notes give two values,
    or give it in a sentence about the other scenario (an MLPerf row's notes quoting its Offline
    config). A ``max_num_batched_tokens=N`` notes field is read first (``_serving_settings``)."""
    argument = _argument_of(BUDGET_ARGUMENTS, framework)
    if argument is None:
        return None
    text = str(notes)
    found = list(re.finditer(argument + r"(?:\s*=\s*|\s+)(\d+)", text))
    if not found or len({m.group(1) for m in found}) > 1:
        return None
    if _about_other_scenario(text, found[0].start(), phase):
        return None
    return int(found[0].group(1)) or None


MEMORY_ARGUMENTS = {
    "vllm": "gpu[-_]memory[-_]utilization",
    "sglang": "mem[-_]fraction[-_]static",
    "tensorrt-llm": "free[-_]gpu[-_]mem(?:ory)?[-_]fraction",
    "lmdeploy": "cache[-_]max[-_]entry[-_]count",
}
"""The engine argument that sets a framework family's memory share for weights and KV cache, in
the family's own rule (``engines.yaml`` ``kv_memory``): vLLM's ``--gpu-memory-utilization`` (of
all memory), SGLang's ``--mem-fraction-static`` (of all memory), TensorRT-LLM's
``free_gpu_memory_fraction`` (of the memory the loaded model leaves free; also trtllm-bench's
``--kv_cache_free_gpu_mem_fraction``), LMDeploy's ``--cache-max-entry-count`` (of the memory free
after the weights from v0.2.2; TurboMind v0.1.0-v0.2.1 read a value below 1 as a share of all the
device's memory and one of 1 or more as a count of cache blocks, src/turbomind/models/llama/
BlockManager.cc at v0.2.0 @b319dce6: a stated share of those versions is priced by the later
rule, which no shipped row needs)."""


def stated_memory_fraction(notes: Any, framework: str | None, phase: str = "server") -> float | None:
    """The share ``framework``'s family's memory argument (``MEMORY_ARGUMENTS``) takes in a row's
    notes (``--gpu-memory-utilization 0.95``, ``mem_fraction_static=0.8``,
    ``free_gpu_memory_fraction: 0.85``), or None: also when the notes give two values, hedge (the
    sentence that states it names another share), give it in a sentence about the other scenario
    (an MLPerf row's notes quoting its Offline config, as for the token budget), or give a value
    outside (0, 1]."""
    argument = _argument_of(MEMORY_ARGUMENTS, framework)
    if argument is None:
        return None
    text = str(notes)
    found = list(re.finditer(argument + r"(?:\s*[=:]\s*|\s+)(\d*\.?\d+)", text))
    values = {float(m.group(1)) for m in found}
    if len(values) != 1:
        return None
    for m in found:  # a sentence that also names another share hedges ("0.95 in many cases, else 0.90")
        start = max(text.rfind(". ", 0, m.start()), text.rfind("; ", 0, m.start())) + 1
        ends = [i for i in (text.find(". ", m.end()), text.find("; ", m.end())) if i >= 0]
        sentence = text[start : min(ends, default=len(text))]
        if len({float(v) for v in re.findall(r"(?<![\d.])(0?\.\d+|1\.0+)(?![\d.])", sentence)}) > 1:
            return None
        if _about_other_scenario(text, m.start(), phase):
            return None
    value = values.pop()
    return value if 0.0 < value <= 1.0 else None


def _stated_num_requests(notes: Any) -> int | None:
    """The requests a serving or throughput benchmark sent, where the notes state them:
    ``num_requests=N``, or the client's own flag, ``--num-prompts N`` (vLLM's
    ``benchmark_serving.py`` / ``vllm bench serve`` and ``benchmark_throughput.py``, SGLang's
    ``bench_serving.py``; also ``num_prompts=N``). None otherwise."""
    match = re.search(r"\bnum_requests=(\d+)|--num[-_]prompts[ =](\d+)|\bnum_prompts=(\d+)", str(notes))
    value = next((int(g) for g in match.groups() if g), 0) if match else 0
    return value or None


def stated_length_spread(notes: Any) -> float | None:
    """The spread about the mean lengths (``uniform_spread``) of a random-dataset client whose
    range the notes state: ``uniform integers in [int(R*L), L]`` (SGLang's ``bench_serving.py``
    and the InferenceX client with ``--random-range-ratio R``: spread ``(1 - R) / (1 + R)``), or
    ``uniform integers in [L*(1-R), L*(1+R)]`` (vLLM's ``vllm bench serve``: spread ``R``), or
    SGLang's ``bench_serving`` named beside ``--random-range-ratio R``. None where no range is
    stated or it is a single length."""
    text = str(notes)
    number = r"(\d*\.?\d+)"
    top = re.search(r"uniform integers in \[int\(" + number + r"\s*\*\s*L\),\s*L\]", text)
    if top is None and re.search(r"sglang\.bench_serving|SGLang's bench_serving", text):
        top = re.search(r"--random[-_]range[-_]ratio[ =]" + number, text)
    if top is not None:
        ratio = float(top.group(1))
        return (1.0 - ratio) / (1.0 + ratio) if 0.0 <= ratio < 1.0 else None
    about = re.search(r"uniform integers in \[L\s*\*\s*\(1\s*-\s*" + number + r"\)", text)
    if about is not None:
        ratio = float(about.group(1))
        return ratio if 0.0 < ratio < 1.0 else None
    return None


def _stated_max_model_len(notes: Any) -> int | None:
    """``N`` of a ``--max-model-len N`` (vLLM's engine argument, also ``max_model_len=N``) in a
    row's notes, or None."""
    match = re.search(r"--max[-_]model[-_]len[ =](\d+)|max_model_len=(\d+)", str(notes))
    return int(match.group(1) or match.group(2)) if match else None


ENGINE_ARGS_BENCHMARKS = (0, 6, 3, 2)
"""First vLLM version (``0.6.3.post2`` dev builds, after the v0.6.3.post1 tag, and v0.6.4 on)
whose ``benchmarks/benchmark_throughput.py`` takes the engine's own arguments (vllm-project/vllm
PR #9529 'Make benchmarks use EngineArgs', opened 2024-10-19, in v0.6.4): its
``enable_chunked_prefill`` then defaults to None, V0's own choice, instead of the script's
``store_true`` False."""


def _version_tuple(text: Any) -> tuple[int, int, int, int] | None:
    """(major, minor, patch, post) of a version cell such as ``0.6.3.post2.dev308`` or ``vLLM
    v0.6.4.dev4``; None where it names no three-part number."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)(?:\.post(\d+))?", str(text))
    return tuple(int(g or 0) for g in found.groups()) if found else None  # type: ignore[return-value]


BENCH_TUNED_SINCE = (0, 15)
"""The first TensorRT-LLM release whose ``trtllm-bench`` sizes an engine's batch and token limits
from the dataset's lengths (``hwmodels.trtllm_bench``); before, ``trtllm-bench build`` took them
from ``tensorrt_llm/bench/build/benchmark_config.yml`` by model and parallel mapping
(``get_benchmark_engine_settings`` in build.py at v0.13 and v0.14)."""


def bench_tunes(version: Any) -> bool:
    """Whether the ``trtllm-bench`` of a row's TensorRT-LLM ``version`` (``0.14``, ``TensorRT-LLM
    0.14.0``) sized its limits from the lengths: ``BENCH_TUNED_SINCE`` on, or a version that names no
    number (``main``, not stated), which is taken as a later one."""
    found = re.search(r"(\d+)\.(\d+)", str(version)) if version is not None else None
    return found is None or (int(found[1]), int(found[2])) >= BENCH_TUNED_SINCE


def stated_chunked_prefill(notes: Any, version: Any = None) -> bool | None:
    """Whether a row's run set vLLM's chunked prefill: on for ``--enable-chunked-prefill`` (or
    ``enable_chunked_prefill=True``), off for ``--enable-chunked-prefill=False``,
    ``--no-enable-chunked-prefill`` or ``enable_chunked_prefill=False``, and off for a run of vLLM's
    ``benchmarks/benchmark_throughput.py`` that names no such flag, unless its ``version`` is
    ``ENGINE_ARGS_BENCHMARKS`` or later: before, the script declared the flag ``store_true`` and
    handed the parsed ``False`` to ``LLM(enable_chunked_prefill=...)`` (vllm-project/vllm
    @018efffd), so V0 never turned it on by itself there, whatever the ``--max-model-len``; after,
    V0 chose (on above a max_model_len of 32,768). None otherwise."""
    text = str(notes)
    if re.search(
        r"--enable[-_]chunked[-_]prefill[ =](?:False|false|0)\b|--no-enable-chunked-prefill|"
        r"enable_chunked_prefill=False",
        text,
    ):
        return False
    if re.search(r"(?<!no )--enable[-_]chunked[-_]prefill\b|enable_chunked_prefill=True", text):
        return True
    if "benchmark_throughput" in text:
        v = _version_tuple(version)
        return None if v is not None and v >= ENGINE_ARGS_BENCHMARKS else False
    return None


def _dataset_lengths(dataset: Any) -> str | None:
    """The shipped length distribution a row's ``dataset`` names (alias rules), or None."""
    if dataset is None or (isinstance(dataset, float) and math.isnan(dataset)):
        return None
    for rule in aliases().get("dataset", []):
        if re.search(rule["match"], str(dataset)):
            return rule["lengths"]
    return None


def _serving_settings(
    row: pd.Series, n_devices: int, tp: int, pp: int, framework: str | None
) -> dict[str, Any] | str:
    """The serving run a ``server`` row describes, under its resolved ``framework``, or why it
    is not covered."""
    concurrency = _int_or_none(row.get("concurrency")) or None  # 0: no closed loop stated
    rate = row.get("request_rate")
    rate = None if rate is None or (isinstance(rate, float) and math.isnan(rate)) else float(rate)
    if concurrency is None and rate is None:
        return "server row states neither a concurrency nor a request_rate"
    stated_requests = _stated_num_requests(row["notes"])
    if concurrency is None and not math.isfinite(rate):
        # every request sent at once: a closed loop as wide as the run (its stated num_requests,
        # else the serving benchmarks' default --num-prompts)
        concurrency = stated_requests or BURST_REQUESTS
    mode = str(row.get("mode") or "agg").strip().lower()
    mode = "agg" if mode in ("nan", "") else mode
    ep = _int_or_none(row.get("ep")) or 1
    settings: dict[str, Any] = {
        "concurrency": concurrency,
        "rate": None if concurrency else rate,
        "mode": mode,
    }
    for key in ("max_num_batched_tokens", "prefix_groups", "num_requests"):
        value = _note_field(row["notes"], key)
        if value:
            if not value.isdigit() or int(value) < 1:
                return f"notes field {key}={value} is not a positive whole number"
            settings[key] = int(value)
    if "num_requests" not in settings and stated_requests:
        settings["num_requests"] = stated_requests
    if rate is not None and not math.isfinite(rate) and not _int_or_none(row.get("concurrency")):
        settings["num_requests"] = concurrency  # the burst is the whole run
    budget = _stated_token_budget(row["notes"], "server", framework)
    if "max_num_batched_tokens" not in settings and budget:
        settings["max_num_batched_tokens"] = budget
    argument = _argument_of(DECODE_RUN_ARGUMENTS, framework)
    steps = re.search(rf"{argument}(?:\s*=\s*|\s+)(\d+)", str(row["notes"])) if argument else None
    if steps and int(steps.group(1)) > 1:
        settings["scheduler_steps"] = int(steps.group(1))  # decode steps run back to back
    if str(framework).startswith("sglang") and re.search(r"--disable-radix-cache\b", str(row["notes"])):
        settings["prefix_caching"] = False  # SGLang's prefix (radix) cache turned off
    scheduler = stated_scheduler(row["notes"], framework)
    if scheduler:
        settings["scheduler"] = scheduler
    if mode == "disagg":
        pools = {}
        for key in ("prefill_workers", "prefill_tp", "decode_workers", "decode_tp"):
            value = _int_or_none(row.get(key))
            if value is None:
                return f"disaggregated row without {key}"
            pools[key] = value
        settings.update(pools)
        return settings
    dp = _int_or_none(row.get("dp")) or 1
    if tp * pp * ep > n_devices and ep == tp == dp and pp == 1:
        # TensorRT-LLM's and SGLang's attention data parallelism: every rank runs attention for
        # its own requests and the experts are split over the same ranks (hwsim: tp 1, ep n)
        settings.update(ep=ep, tp=1, attention_dp=True)
        return settings
    if ep == dp == 1 and tp == n_devices > 1 and re.search(r"--enable-dp-attention\b", str(row["notes"])):
        # SGLang's DP attention: each rank runs attention for its own requests and keeps their KV
        # cache (not every rank the whole latent cache); its MoE then runs over the same ranks
        # (tensor-parallel in v0.4), priced as expert parallelism over them: the same expert
        # FLOPs and weight bytes per device, other collectives
        settings.update(ep=tp, tp=1, attention_dp=True)
        return settings
    drafts = re.search(r"num_nextn_predict_layers (\d+)", str(row["notes"]))
    if drafts:
        return (
            f"speculative decoding (MTP, {drafts.group(1)} drafted tokens a step) with no stated "
            "acceptance rate: hwsim prices drafts at a stated acceptance only (--mtp-acceptance)"
        )
    if experts_within_tp(tp, pp, ep, n_devices, dp):
        settings["ep"] = 1
        return settings
    if tp * pp * ep > n_devices:
        return (
            f"tp {tp} x ep {ep} exceeds the row's {n_devices} devices: attention data parallelism with "
            "expert parallelism over the same devices is not modelled yet"
        )
    settings["ep"] = ep
    return settings


def stated_version(text: Any) -> str:
    """A ``framework_version`` cell from its first version number on (``vLLM 0.4.3+rocm614 (AMD
    fork)`` -> ``0.4.3+rocm614 (AMD fork)``, ``v0.6.3`` -> ``0.6.3``), so the alias rules'
    ``version=`` patterns read the number whatever precedes it; the cell as it is when it holds none."""
    found = re.search(r"\d+\.\d", str(text))
    return str(text)[found.start() :] if found else str(text)


def framework_of(name: str, notes: str) -> str | None:
    """The frameworks.yaml entry of a row: its name, without a version at its end, read as
    ``canonical_framework`` reads it (``trt-llm``, ``transformers``), or else the one framework
    it names among other words (``named_within``: ``Triton + TensorRT-LLM``,
    ``vllm/vllm-openai:v0.6.3``), then by alias rules on its notes (which carry the version as
    ``version=``) and the name itself (``TensorRT-LLM (PyTorch backend)``), else by name, else
    none."""
    rules = aliases().get("framework", {})
    base = split_framework_version(name)[0]  # "vLLM 0.6.3": its version is in the notes' version=
    found = canonical_framework(base)
    key = next((k for k in (found, *framework_keys(base)) if k in rules), found)  # "NVIDIA NIM"
    if found not in framework_names() and key not in rules:
        found = key = named_within(base) or found
    for rule in rules.get(key, []):
        if re.search(rule["match"], f"{notes} {name}"):
            return rule["framework"]
    if found in framework_names():
        return found
    within = named_within(base)  # "NVIDIA NIM (TensorRT-LLM)": the engine a wrapper's rules did not name
    return framework_of(within, f"{notes} {name}") if within and within != key else None


def named_within(text: str) -> str | None:
    """The one frameworks.yaml entry that the words of ``text`` name (split at spaces and at
    ``/ : + , ( ) @ =``; a word also by its part before a dot, ``sglang.launch_server``), or
    None where they name none or several: a row's ``Triton + TensorRT-LLM``, ``llama.cpp CUDA``
    or a container image ``lmsysorg/sglang:v0.4.1`` is that framework."""
    named = set()
    for word in re.split(r"[\s/:+,()@=]+", text.strip().lower()):
        for candidate in (word, word.split(".")[0]):
            found = canonical_framework(candidate) if candidate else ""
            if found in framework_names():
                named.add(found)
                break
    return named.pop() if len(named) == 1 else None


def _note_field(notes: Any, key: str) -> str | None:
    text = str(notes)
    marker = f"{key}="
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split(";")[0].split()[0].strip(".,)]")


def row_model(c: Condition) -> ModelSpec:
    """The row's model as its framework runs it (``FrameworkTerms.model_as_run``: a TensorRT
    engine attends a sliding-window layer's whole prefix)."""
    spec = load_model(c.model)
    return framework_terms(c.framework).model_as_run(spec) if c.framework in framework_names() else spec


def _kernel_time_s(c: Condition) -> float:
    spec, quant = row_model(c), Quant.from_name(c.precision)
    ops = build_ops(spec, quant, phase="prefill", batch=1, tokens=c.input_len, tp=c.tp)
    device = catalog()[c.device]
    cost = registry.get(device.arch).estimate(ops, device, Placement(tp=c.tp, framework=c.framework))
    (i,) = np.flatnonzero(ops.name == c.kernel_op)
    return float(cost.time_s[i] / ops.count[i])


def offline_engine(c: Condition) -> EngineConfig:
    """The engine a row's offline run is batched by: its framework's (``engines.yaml``) with the
    limits it picks for the row's device in its offline API (``EngineConfig.for_device``), or
    those ``trtllm-bench`` sizes from the row's lengths (``bench_limits``), or the row's stated
    ``--max-num-seqs``, and its token budget set for the row's model and stated
    ``--max-model-len`` (``EngineConfig.sized_for``), or a static batch in all of the device's
    memory for a row without one."""
    if c.framework:
        engine = engine_for(c.framework).for_device(catalog()[c.device], offline=True)
        engine = engine.with_limits(c.max_num_seqs, kv_fraction=c.memory_fraction, scheduler=c.scheduler)
        tuned = (
            bench_limits(
                row_model(c),
                Quant.from_name(c.precision),
                catalog()[c.device],
                c.tp,
                c.pp,
                c.input_len,
                c.output_len,
                engine.memory_fraction(c.tp),
                bool(c.chunked_prefill),
            )
            if c.bench_tuned
            else None
        )
        if tuned:
            engine = engine.with_limits(c.max_num_seqs or tuned[0], tuned[1])
        engine = engine.sized_for(row_model(c), c.max_model_len, c.chunked_prefill)
        return engine.with_limits(max_num_batched_tokens=c.max_num_batched_tokens)
    return replace(engine_for("static"), kv_fraction=1.0, max_num_seqs=max(OFFLINE_BATCHES))


def offline_kv_tokens(c: Condition) -> int:
    """Tokens the KV pool of one replica holds, resolved as the row's engine does
    (``hwmodels.engine_config.kv_capacity``: vLLM's share of all memory, TensorRT-LLM's share
    of the memory the loaded engine leaves free); 0 when not one block fits."""
    try:
        return kv_capacity(
            row_model(c),
            Quant.from_name(c.precision),
            catalog()[c.device],
            offline_engine(c),
            c.tp,
            c.pp,
        ).tokens
    except DoesNotFitError:
        return 0


def offline_max_batch(c: Condition) -> int:
    """The most sequences the row's engine runs at once at steady state (``steady_batch``), capped
    by its ``max_num_seqs`` or the row's stated one, and by the prompts the run sent where stated
    (``num_prompts``); a pipeline's batches (``micro_batches``) share the KV pool and the prompts,
    each up to the engine's limit. A running request holds its prompt and half its output (the
    whole output where the engine reserves it), length-biased for a row drawn from a length
    distribution (``decode_input_len``)."""
    engine = offline_engine(c)
    held, hist = c.input_len, row_lengths(c)
    if c.phase == "offline" and hist:
        reserved = policy(engine.scheduler).admission == "reserve_full"
        held = hist.held_prompt_len(c.input_len, c.output_len, reserved)
    micro = micro_batches(c)
    batch = steady_batch(engine, offline_kv_tokens(c) // micro, held, c.output_len, c.max_num_seqs)
    return min(batch, -(-c.num_prompts // micro)) if c.num_prompts else batch


def micro_batches(c: Condition) -> int:
    """Batches one replica keeps in flight in an offline run: ``pp`` where the engine batches
    requests over a pipeline, one per stage, each up to the engine's batch limit, so every stage
    works on one of them while the others wait (TensorRT-LLM's in-flight batching runs as many
    micro-batches as pipeline stages and admits max_batch_size times that many requests:
    ``mNumMicroBatches`` and the ``CapacityScheduler`` in
    cpp/tensorrt_llm/batch_manager/trtGptModelInflightBatching.cpp; vLLM runs one virtual engine,
    with a scheduler of its own, per stage; ``sim.serving`` runs such a replica so); 1 for a row
    that is not an offline run, a replica of one stage, or an engine that serves one static batch
    (llama.cpp, HF Transformers), whose stages take the batch one after another. Each batch
    holds its share of the KV pool (``offline_max_batch``), and the replica's rate is this many
    times one batch's, whose step is as long as the whole pipeline (``predict``); its energy per
    token stays one batch's, whose idle stages' static power a full pipeline shares (no measured
    row prices energy over an offline pipeline)."""
    if c.phase != "offline" or c.pp == 1 or not c.framework or offline_engine(c).scheduler == "static":
        return 1
    return c.pp


def decode_input_len(c: Condition) -> int:
    """The prompt length whose equal-length decode run has the row's mean decode context: for an
    offline row drawn from a length distribution (``row_lengths``), continuous batching keeps a
    long answer in the batch longer, so the running sequences' mean context is length-biased
    (``LengthHistogram.decode_context``), above the mean prompt plus half the mean output; the
    row's ``input_len`` otherwise."""
    hist = row_lengths(c)
    if c.phase != "offline" or not hist:
        return c.input_len
    return max(1, round(hist.held_prompt_len(c.input_len, c.output_len)))


def offline_run(c: Condition, batch: Any) -> tuple[Any, Any, Any]:
    """(prompt estimate, decode estimate, time of one batch's run in s) of an offline row at
    ``batch``: the prefill at the mean prompt, the decode steps at the mean decode context
    (``decode_input_len``; the one estimate for fixed lengths)."""
    prompt = _estimate(c, batch)
    lin = decode_input_len(c)
    decode = prompt if lin == c.input_len else _estimate(c, batch, input_len=lin)
    return prompt, decode, prompt.ttft_s + (c.output_len - 1) * decode.tpot_s


def _estimate(c: Condition, batch: Any, input_len: int | None = None):
    """The estimate of a row's conditions at ``batch`` (the one call every metric comes from;
    ``input_len`` replaces the row's)."""
    return estimate(
        c.model,
        c.device,
        batch=batch,
        input_len=c.input_len if input_len is None else input_len,
        output_len=c.output_len,
        tp=c.tp,
        pp=c.pp,
        n_devices=c.n_devices,
        precision=c.precision,
        framework=c.framework,
        cached_len=c.cached_len,
        link=c.link,
    )


TOKEN_RATES = {
    "total_tokens_per_s": ("output_tokens_per_s", 1, 1),
    "total_tokens_per_s_per_device": ("output_tokens_per_s_per_device", 1, 1),
    "input_tokens_per_s": ("output_tokens_per_s", 1, 0),
}
"""Rates of prompt tokens (and output tokens) a run processes, with the output rate they scale and
whether they count prompt and output tokens: a run that emits ``output_len`` tokens per request
has read ``input_len`` prompt tokens for each, so at the row's mean lengths the prompt rate is
the output rate times ``input_len / output_len``."""
BURST_METRICS = (
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "requests_per_s",
    *TOKEN_RATES,
)
"""Metrics of an offline run that its simulated burst prices (``burst_outgrows_pool``): its
whole-run rates."""


def burst_outgrows_pool(c: Condition) -> bool:
    """Whether an offline row's prompts, all sent at once (its stated ``num_prompts``), outgrow
    the KV pool of an engine that admits requests on their prompts (vLLM's blocks on demand,
    SGLang's reserved share of the output; not TensorRT-LLM's whole-output reservation): the
    admitted sequences grow in lock step until the pool is full, then the engine preempts some
    and recomputes them later. The steady-state batch of ``offline_max_batch`` (each sequence
    holding half its output) does not describe such a run; its engine's scheduler does
    (``sim.serving``, through ``operating_point``)."""
    if c.phase != "offline" or c.batch is not None or not c.num_prompts or c.metric not in BURST_METRICS:
        return False
    engine = offline_engine(c)
    if policy(engine.scheduler).admission == "reserve_full":
        return False
    admitted = min(c.num_prompts, c.max_num_seqs or engine.max_num_seqs)
    return admitted * (c.input_len + c.output_len) > offline_kv_tokens(c)


def operating_point(c: Condition) -> Condition:
    """``c`` with its batch: an offline row that states none gets ``offline_batch`` (raises
    ``HwsimError`` when not even batch 1 fits), or, where its burst outgrows the engine's KV pool
    (``burst_outgrows_pool``), the serving run of its prompts sent at once under the engine's
    limits (a closed loop as wide as the run; ``predict`` simulates it); other rows are returned
    as they are."""
    if c.batch is None and c.phase == "offline":
        if burst_outgrows_pool(c):
            engine = offline_engine(c)
            burst = {
                "concurrency": c.num_prompts,
                "rate": None,
                "mode": "agg",
                "ep": 1,
                "num_requests": c.num_prompts,
                "max_num_batched_tokens": engine.max_num_batched_tokens,
            }
            if c.scheduler:
                burst["scheduler"] = c.scheduler
            return replace(c, serving=burst, max_num_seqs=c.max_num_seqs or engine.max_num_seqs)
        return replace(c, batch=offline_batch(c))
    return c


def offline_batch(c: Condition) -> int:
    """The maximum-throughput batch within the engine's limits (``offline_max_batch``)."""
    e, _, e2e = offline_run(c, OFFLINE_BATCHES)
    fits = e.batch <= offline_max_batch(c)
    if not fits.any():
        raise HwsimError("does not fit at batch 1")
    rate = np.where(fits, e.batch * e.output_len / e2e, -np.inf)
    return int(e.batch[int(np.argmax(rate))])


ServingPredictor = Callable[[Condition], tuple[float | None, str]]
"""Predicts a ``server`` row by simulating its request stream (``sim.serving.validation``, a
layer above this one, passes it in)."""


def predict(c: Condition, serving: ServingPredictor | None = None) -> tuple[float | None, str]:
    """The predicted value of a resolved row, or None and the reason it is not covered."""
    if c.metric in TOKEN_RATES:  # prompt tokens, or prompt and output: the output rate, scaled
        output_metric, prompt, output = TOKEN_RATES[c.metric]
        value, reason = predict(replace(c, metric=output_metric), serving)
        share = (prompt * c.input_len + output * c.output_len) / c.output_len
        return (None if value is None else value * share), reason
    if c.serving is not None:
        if serving is None:
            return None, "server rows are predicted by the serving simulation (hwsim validate runs it)"
        return serving(c)
    if c.kernel_op:
        return _kernel_time_s(c), ""
    batch = c.batch
    if batch is None:
        if c.phase != "offline":
            return None, "batch is not stated"
        try:
            batch = offline_batch(c)
        except HwsimError as exc:
            return None, str(exc)
    if c.metric in ("decode_step_j", "prefill_j"):
        return _step_energy_j(c, batch), ""
    waves = engine_waves(c, batch)
    if not waves:
        short = static_batch_bytes(c, batch) - catalog()[c.device].memory.capacity_bytes
        if short <= 0:  # it fits the device, but not the pool the engine sized at start-up
            return None, (
                f"{c.framework}'s KV pool on {c.device} holds {offline_kv_tokens(c):,} tokens, not one sequence "
                f"of {c.input_len + c.output_len:,}"
            )
        return (
            None,
            f"does not fit in device memory (short by {short / 1e9:.1f} GB): needs offload (event path)",
        )
    runs = [(n, offline_run(c, size)) for size, n in waves]
    e, d, _ = runs[0][1]
    e2e = sum(n * float(run[2]) for n, run in runs)
    replicas = c.n_devices // (c.tp * c.pp)
    system_rate = replicas * micro_batches(c) * batch * c.output_len / e2e
    value = {
        "output_tokens_per_s": system_rate,
        "output_tokens_per_s_per_device": system_rate / c.n_devices,
        "decode_tokens_per_s": 1.0 / float(d.tpot_s),
        "prefill_tokens_per_s": float(e.prefill_tokens_per_s),
        "ttft_s": float(e.ttft_s),
        "tpot_s": float(d.tpot_s),
        "e2e_s": e2e,
        "j_per_token": float(d.energy_j_per_token),
        "requests_per_s": system_rate / c.output_len,
    }[c.metric]
    return value, ""


def _step_energy_j(c: Condition, batch: int) -> float:
    """Devices' energy (J) of one decode step of ``batch`` sequences at the row's context (the
    run's energy with one output token more, less the run's), or of the prefill of ``batch``
    prompts (a run that emits one token: the prefill and its static power)."""

    def run_j(output_len: int) -> float:
        e = _estimate(replace(c, output_len=output_len), batch)
        return float(e.energy_j_per_token) * batch * output_len * (c.n_devices // (c.tp * c.pp))

    if c.metric == "prefill_j":
        return run_j(1)
    return run_j(c.output_len + 1) - run_j(c.output_len)


def static_batch_bytes(c: Condition, batch: int) -> float:
    """Bytes per device of a measured static batch: weights and the KV cache at the final
    context. The prefill workspace is left out: the run was measured, so the framework fitted
    it (chunked or recomputed prefill); the estimate itself still counts it."""
    spec, quant = row_model(c), Quant.from_name(c.precision)
    kv = kv_cache_bytes(spec, quant, batch, c.input_len + c.output_len, c.tp, c.pp)
    return float(weight_bytes(spec, quant, c.tp, c.pp) + kv)


POOL_AT_START = ("utilization", "static_fraction")
"""KV-pool rules (``engines.yaml``) of engines that size their pool at start-up from the device's
memory, whatever the run (vLLM's ``gpu_memory_utilization``, SGLang's ``mem_fraction_static``):
a static batch whose final KV cache exceeds that pool cannot run at once there, even where it
would fit the device. TensorRT-LLM's tables state the largest batch the engine they built for it
ran at once, so its rows keep the device's memory as the bound."""


def engine_waves(c: Condition, batch: int) -> list[tuple[int, int]]:
    """How a row's batch runs, as (sequences, times): at once when it holds (in the KV pool of an
    engine that sizes it at start-up, ``POOL_AT_START``; else in the device's memory); an engine with a
    paged KV pool (vLLM, TensorRT-LLM, SGLang) given more equal requests than its pool holds
    runs them in waves of as many as fit, each to its end; [] when not one sequence fits.

    Offline rows are within their engine's pool (chosen so, or stated: the engine ran them)
    once the weights leave room for KV blocks."""
    if c.phase == "offline":
        return [(batch, 1)] if offline_kv_tokens(c) > 0 else []
    engine = offline_engine(c)
    if (
        engine.kv_rule not in POOL_AT_START
        and static_batch_bytes(c, batch) <= catalog()[c.device].memory.capacity_bytes
    ):
        return [(batch, 1)]
    if not c.framework or engine.scheduler == "static":
        return []
    size = min(c.max_num_seqs or engine.max_num_seqs, offline_kv_tokens(c) // (c.input_len + c.output_len))
    if size < 1:
        return []
    if batch <= size:
        return [(batch, 1)]
    full, rest = divmod(batch, size)
    return [(size, full)] + ([(rest, 1)] if rest else [])


def validate_frame(frame: pd.DataFrame, serving: ServingPredictor | None = None) -> pd.DataFrame:
    """One row per measurement: prediction, measurement, signed error, APE, covered, reason.
    ``serving`` predicts ``server`` rows (without it they are reported as not covered)."""
    out = []
    for _, row in frame.iterrows():
        cond = resolve(row)
        predicted, reason, device_class = None, "", ""
        if isinstance(cond, str):
            reason = cond
        else:
            device_class = catalog()[cond.device].device_class
            try:
                cond = operating_point(cond)
                predicted, reason = predict(cond, serving)
            except HwsimError as exc:
                predicted, reason = None, str(exc)
            if predicted is not None and not np.isfinite(predicted):  # a TPOT of one output token
                predicted, reason = None, f"{row['metric']} is undefined at this row's conditions"
        measured = float(row["value"])
        if predicted is not None and not np.isfinite(predicted / measured):
            predicted, reason = None, f"measured value {measured!r} is too small to compare with"
        covered = predicted is not None and measured > 0
        low, high = row_range(row_features(cond), predicted, cond.metric) if covered else (np.nan, np.nan)
        out.append(
            {
                "id": row["id"],
                "hardware": row["hardware"],
                "model": row["model"],
                "metric": row["metric"],
                "measured": measured,
                "predicted": predicted,
                "predicted_low": low if np.isfinite(low) else None,
                "predicted_high": high if np.isfinite(high) else None,
                "error": (predicted / measured - 1) if covered else None,
                "ape": abs(predicted / measured - 1) if covered else None,
                "covered": covered,
                "reason": reason,
                "device_class": device_class,
                "source": source_key(row["source"]),
                "phase": row["phase"],
                "mode": "disagg" if str(row.get("mode")).strip().lower() == "disagg" else "agg",
            }
        )
    return pd.DataFrame(out)


def source_key(source: str) -> str:
    """The source a row comes from, for leave-one-source-out: the text before the first comma,
    without a trailing table or section name."""
    return str(source).split(",")[0].split(" @")[0].strip()


def source_group(source: str) -> str:
    """A source for leave-one-source-out: MLPerf result logs of one round count as one source."""
    key = source_key(source)
    return key.split(" closed/")[0] if key.startswith("mlcommons/") else key


def serving_source(source: str) -> str:
    """The independent source of a serving row, for leave-one-source-out: a repository (all of
    ``inference-sim/training``'s runs are one campaign), or an MLPerf round's submitter."""
    words = str(source).split()
    if not words:
        return ""
    if words[0].startswith("mlcommons/") and len(words) > 1:
        return f"{words[0]} {'/'.join(words[1].split('/')[:2])}"
    return words[0]


POINT_KEYS = [
    "id",
    "hardware",
    "model",
    "metric",
    "measured",
    "predicted",
    "predicted_low",
    "predicted_high",
    "ape",
    "covered",
    "reason",
]
"""The keys of each of ``hwsim validate --json``'s points; ``predicted_low`` and
``predicted_high`` bound the prediction's 10th-90th percentile range (``roofline.intervals``;
null where no group of fitted rows gives one, as for server rows)."""


def summarize(points: pd.DataFrame) -> dict[str, Any]:
    """The report of ``hwsim validate --json``: keys rows, covered, median_ape, p90_ape,
    within_10pct, within_25pct, by_class, by_phase_mode (serving and offline rows per phase,
    mode and metric), energy, points (``POINT_KEYS``; a column ``points`` lacks reads as null).

    ``rows`` counts every row; the error figures and ``by_class`` are those of time and rate
    rows. Energy rows are reported apart in ``energy``: ``gpu`` (``ENERGY_METRICS``: the
    error overall and per device class) and ``wall`` (``WALL_ENERGY_METRICS``: counted, not
    predicted)."""
    is_energy = points["metric"].isin(ENERGY_METRICS + WALL_ENERGY_METRICS)
    energy_points, points_all, points = points.loc[is_energy], points, points.loc[~is_energy]
    cov = points.loc[points["covered"]]

    def stats(ape: pd.Series) -> dict[str, Any]:
        if ape.empty:
            return {
                "covered": 0,
                "median_ape": None,
                "p90_ape": None,
                "within_10pct": None,
                "within_25pct": None,
            }
        return {
            "covered": int(len(ape)),
            "median_ape": float(ape.median()),
            "p90_ape": float(ape.quantile(0.9)),
            "within_10pct": float((ape <= 0.10).mean()),
            "within_25pct": float((ape <= 0.25).mean()),
        }

    by_class = {}
    for cls, group in points.groupby("device_class"):
        if cls:
            by_class[cls] = {"rows": int(len(group)), **stats(group.loc[group["covered"], "ape"])}
    overall = stats(cov["ape"])
    by_phase_mode = {}
    keyed = points if {"phase", "mode"} <= set(points.columns) else points.iloc[:0].assign(phase="", mode="")
    for (phase, mode, metric), group in keyed.groupby(["phase", "mode", "metric"]):
        if phase in ("server", "offline"):
            key = f"{phase}/{mode}/{metric}"
            by_phase_mode[key] = {"rows": int(len(group)), **stats(group.loc[group["covered"], "ape"])}
    gpu = energy_points.loc[energy_points["metric"].isin(ENERGY_METRICS)]
    wall = energy_points.loc[energy_points["metric"].isin(WALL_ENERGY_METRICS)]
    energy = {
        "gpu": {
            "rows": int(len(gpu)),
            **stats(gpu.loc[gpu["covered"], "ape"]),
            "by_class": {
                cls: {"rows": int(len(group)), **stats(group.loc[group["covered"], "ape"])}
                for cls, group in gpu.groupby("device_class")
                if cls
            },
        },
        "wall": {
            "rows": int(len(wall)),
            "note": "not predicted: hwsim prices the devices' energy, not the host's (CPUs, memory, fans, power supply)",
        },
    }
    records = points_all.reindex(columns=POINT_KEYS)
    return {
        "rows": int(len(points_all)),
        "covered": overall["covered"],
        "median_ape": overall["median_ape"],
        "p90_ape": overall["p90_ape"],
        "within_10pct": overall["within_10pct"],
        "within_25pct": overall["within_25pct"],
        "by_class": by_class,
        "by_phase_mode": by_phase_mode,
        "energy": energy,
        "points": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in records.to_dict(orient="records")
        ],
    }


def validate(path: str | Path | None = None, serving: ServingPredictor | None = None) -> dict[str, Any]:
    """Predict every row of a measured file and summarize the error. A ``serving`` predictor
    with a ``prepare`` attribute (``sim.serving.validation.predict_serving``) is first given the
    server rows' conditions all at once, to run their simulations in parallel."""
    frame = load_measured(path)
    prepare = getattr(serving, "prepare", None)
    if prepare is not None:
        prepare(server_conditions(frame))
    return summarize(validate_frame(frame, serving))


def server_conditions(frame: pd.DataFrame) -> list[Condition]:
    """The conditions of the rows of ``frame`` that a serving simulation predicts, at their
    operating points (as ``validate_frame`` predicts them): server rows, and offline rows whose
    burst outgrows their engine's KV pool (``burst_outgrows_pool``); rows that do not resolve are
    left to ``validate_frame`` to report."""
    out = []
    for _, row in frame[frame["phase"].isin(("server", "offline"))].iterrows():
        cond = resolve(row)
        if isinstance(cond, str) or (cond.serving is None and not burst_outgrows_pool(cond)):
            continue
        try:
            out.append(operating_point(cond))
        except HwsimError:
            continue
    return out
