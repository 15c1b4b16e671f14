"""The batch and token limits ``trtllm-bench`` picks for a TensorRT-LLM run that sets neither.

``trtllm-bench build`` (the TensorRT engine) and ``trtllm-bench throughput`` (the PyTorch backend)
size ``max_batch_size`` and ``max_num_tokens`` from the dataset's mean prompt and output lengths
when the user gives neither (NVIDIA/TensorRT-LLM tensorrt_llm/bench/build/tuning.py
``calc_engine_setting`` and ``finetune_setting``, read at commit 04cba882; the same rule since the
v0.15-v0.16 releases, where FP8 and unquantized checkpoints took it and others a table):

- the memory left for KV cache is all the replica's device memory less every parameter at
  the checkpoint's width (1 byte for FP8, 0.5 for NVFP4, 2 otherwise), times the KV share;
- the requests that memory holds are that over the KV bytes of one request of prompt plus output
  tokens (each tensor-parallel rank keeps at least one KV head);
- ``max_batch_size`` rounds that (at most 4,096, over the pipeline stages) up, in steps of 32 below
  256 with at least 64, of 128 below 1,024, of 256 above;
- ``max_num_tokens`` rounds the batch's tokens of one step, batch x (1 + prompt / output), at most
  32,768, up: to at least 2,048 in steps of 256 below 4,096, of 512 below 8,192, of 1,024 above;
  without chunked prefill it is raised to hold the longest prompt beside the batch
  (tensorrt_llm/bench/benchmark/utils/general.py ``get_settings``).

The token budget sets the activation peak the engine reserves before its KV pool
(``engine_config.kv_capacity``), so a smaller budget leaves a larger pool.
"""

from __future__ import annotations

import math

from hwmodels.device_spec import DeviceSpec
from workloads.graph import kv_bytes_per_token
from workloads.model_spec import ModelSpec
from workloads.quant import Quant

MAX_REQUESTS = 4096
"""The cap on the requests the KV estimate counts (``finetune_setting``: decoder buffers)."""
MAX_STEP_TOKENS = 32768
"""The cap on the tokens of one step (``finetune_setting``: activation buffers)."""
TUNED_WEIGHT_BYTES = {"fp8": 1.0, "fp4": 0.5, "bf16": 2.0, "fp16": 2.0, "fp32": 2.0}
"""Bytes per parameter the estimate takes for a checkpoint whose weights are in each format
(``BYTES_PER_ELEM``: FP8 1, NVFP4 0.5, unquantized 2); other formats (INT8, INT4 AWQ) get the
engine's defaults instead (``TUNED_QUANTS``)."""


BATCH_STEPS = ((256.0, 32), (1024.0, 128), (math.inf, 256))
"""(below this many requests, round up in steps of this many) for ``max_batch_size``."""
TOKEN_STEPS = ((4096.0, 256), (8192.0, 512), (math.inf, 1024))
"""(below this many tokens, round up in steps of this many) for ``max_num_tokens``."""


def _round_up(value: float, steps: tuple[tuple[float, int], ...], floor: int) -> int:
    """``value`` rounded up to a multiple of the step of the first of ``steps`` it is below, at
    least ``floor`` (``finetune_setting``'s optimistic rounding)."""
    step = next(size for limit, size in steps if value < limit)
    return max(floor, step * math.ceil(value / step))


def bench_limits(
    spec: ModelSpec,
    quant: Quant,
    device: DeviceSpec,
    tp: int,
    pp: int,
    input_len: float,
    output_len: float,
    kv_fraction: float,
    chunked_prefill: bool = False,
) -> tuple[int, int] | None:
    """(``max_batch_size``, ``max_num_tokens``) trtllm-bench sets for ``spec`` in ``quant`` on
    ``tp`` x ``pp`` of ``device`` for requests of ``input_len`` prompt and ``output_len`` output
    tokens (the dataset's means; its longest prompt is taken as ``input_len``, exact for the
    fixed-length datasets of the rows that use this) at ``kv_fraction`` of the free memory for KV
    cache; None for a weight format it does not tune, or where the weights leave no memory (the
    run fails there)."""
    per_param = TUNED_WEIGHT_BYTES.get(quant.weight)
    if per_param is None:
        return None
    ranks = tp * pp
    # the tool works in GiB; the count of requests is the same in bytes
    free = device.memory.capacity_bytes * ranks - spec.n_params() * per_param
    request = kv_bytes_per_token(spec, quant, tp, pp) * ranks * (input_len + output_len)
    if free <= 0 or request <= 0:
        return None
    batch = min(free * kv_fraction / request, MAX_REQUESTS) / pp
    tokens = _round_up(min(batch * (1 + input_len / output_len), MAX_STEP_TOKENS), TOKEN_STEPS, 2048)
    max_batch = _round_up(batch, BATCH_STEPS, 64)
    if not chunked_prefill:
        tokens = max(tokens, math.ceil(input_len) + max_batch)
    return max_batch, tokens
