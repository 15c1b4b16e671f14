"""Scheduling policies: how each engine forms the batch of its next step.

Each policy is named after the engine behaviour it follows; the replica
(``sim/serving/replica.py``) plays it step by step; the analytic paths (offline validation,
``sim/serving/capacity.py``) use ``running_tokens_per_seq`` for the KV a running request holds.

- ``static``: a batch of up to ``max_num_seqs`` waiting requests is prefilled together and
  decoded until its longest output ends; finished sequences keep their slot as padding and
  results return when the batch ends (HF Transformers ``generate``, FlexGen).
- ``vllm`` (vLLM V1, ``vllm/v1/core/sched/scheduler.py``): running requests first, each
  decode one token of the ``max_num_batched_tokens`` budget, partial prefills continue,
  then waiting requests are admitted in arrival order with the rest of the budget as
  prefill chunks (chunked prefill, mixed with decodes in one step). KV blocks are allocated
  on demand; when a running request needs a block and none is free, the most recently
  admitted request is preempted (recompute by default).
- ``vllm-v0`` (vLLM V0 default scheduler): waiting prompts are prefilled in steps of their
  own, ahead of decodes, up to the token budget (whole prompts); decodes run when no
  prompt can be admitted. Blocks on demand, preemption as vLLM.
- ``tensorrt-llm`` (in-flight batching, ``GUARANTEED_NO_EVICT`` capacity scheduler):
  context and generation requests share a step up to ``max_num_tokens``; a request is
  admitted only when the blocks for its prompt plus its whole output can be reserved, so
  nothing is ever evicted; contexts are not chunked unless longer than the budget.
- ``sglang`` (``python/sglang/srt/managers/scheduler.py``): a prefill batch (chunked at
  ``chunked_prefill_size``) runs whenever a waiting request can be admitted, decode
  batches otherwise (prefill and decode are not mixed by default); admission counts each
  running request's remaining output times ``new_token_ratio`` (0.7) as future use;
  blocks are taken on demand and a decode batch that finds the pool full retracts the
  most recent request (recompute).
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.errors import unknown_name


@dataclass(frozen=True)
class Policy:
    """The switches that tell the schedulers apart.

    mixed : prefill chunks and decodes share a step.
    chunked : prompts are split at the token budget (else only a prompt longer than the
        whole budget is split).
    admission : ``on_demand`` (blocks for the next chunk), ``reserve_full`` (prompt + whole
        output reserved at admission), ``reserve_ratio`` (prompt plus ``new_token_ratio`` of
        the remaining output of every running request must fit).
    new_token_ratio : share of a running request's remaining output counted as future use.
    """

    name: str
    mixed: bool
    chunked: bool
    admission: str
    new_token_ratio: float = 0.0
    static: bool = False


POLICIES = {
    "static": Policy("static", mixed=False, chunked=False, admission="reserve_full", static=True),
    "vllm": Policy("vllm", mixed=True, chunked=True, admission="on_demand"),
    "vllm-v0": Policy("vllm-v0", mixed=False, chunked=False, admission="on_demand"),
    "tensorrt-llm": Policy("tensorrt-llm", mixed=True, chunked=False, admission="reserve_full"),
    # TensorRT-LLM's MAX_UTILIZATION capacity policy: admitted on the blocks a step needs, the
    # newest paused (its KV freed, recomputed later) when the pool runs out
    "tensorrt-llm-max-util": Policy(
        "tensorrt-llm-max-util", mixed=True, chunked=False, admission="on_demand"
    ),
    "sglang": Policy("sglang", mixed=False, chunked=True, admission="reserve_ratio", new_token_ratio=0.7),
}


def policy(name: str) -> Policy:
    """A scheduling policy by name; an unknown name lists the known ones."""
    if name not in POLICIES:
        raise unknown_name("scheduler", name, POLICIES)
    return POLICIES[name]


def running_tokens_per_seq(scheduler: str, input_len: float, output_len: float) -> float:
    """KV tokens one running request holds at steady state under ``scheduler``: its prompt plus
    its whole output where admission reserves it (``reserve_full``), else plus half its output
    (decoding progresses uniformly, so a running request is on average half done)."""
    reserves = policy(scheduler).admission == "reserve_full"
    return input_len + (output_len if reserves else output_len / 2.0)
