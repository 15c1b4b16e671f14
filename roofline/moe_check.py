"""hwsim's routed experts against TensorRT-LLM's timed fused MoE: a check on kernels never fitted.

``hwmodels/calibration/kernels/moe_trtllm.csv`` holds NVIDIA aiconfigurator's timings of
TensorRT-LLM's fused MoE (its PyTorch-flow ``fused_moe`` over CUTLASS grouped GEMMs, version
1.3.0rc20, one H100 SXM) for the routed-expert shapes of six shipped presets, with every token
routed evenly ("balanced"), the experts split over 1-8 GPUs by tensor parallelism and none by
expert parallelism. The timed call expands each token to its experts, runs both grouped GEMMs with
the gated activation between them and sums the experts' outputs back per token; the router's GEMM
and its top-k come before it and are not in the time. hwsim prices the same layer as its
``experts_up``, ``experts_act`` and ``experts_down`` ops of one decode step of that many tokens,
under TensorRT-LLM's terms: their math and memory times at the dense GEMM curves' rates and their
launches. hwsim routes tokens uniformly at random (``workloads.graph.expected_distinct_experts``:
E (1 - (1 - k/E)^T) of E experts touched by T tokens of k each), where the timed calls route them
evenly and so touch min(E, T k): at 4-32 tokens hwsim streams up to a quarter fewer experts' weights
than were timed (Mixtral at 4 tokens: 5.5 of 8). Nothing is fitted on these rows; their error is reported beside the fitted curves'
(``hwsim calibrate``'s ``trtllm_moe_check``) and charted in the report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwmodels.device_spec import catalog
from hwmodels.gpu import MOE_EXPERT_GEMMS, GpuCostModel
from hwmodels.placement import Placement
from roofline.kernel_data import load_kernels
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

MOE_OPS = (*MOE_EXPERT_GEMMS, "experts_act")
"""The ops of a step that the timed fused MoE runs: both routed-expert GEMMs and the activation."""
PRECISION = {"bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8"}
"""hwsim's precision of each timed format: ``fp8`` is per-tensor FP8; ``fp8_block`` is the FP8
of a checkpoint that scales its weights in 128 x 128 blocks (DeepSeek-V3's), which the preset
states (``ModelSpec.fp8_weight_block``)."""
FRAMEWORK = "tensorrt-llm"


def moe_shape(model: str) -> tuple[int, int, int, int]:
    """(hidden size, expert FFN size, experts per token, routed experts) of a preset."""
    spec = load_model(model)
    moe = spec.moe
    return spec.hidden_size, moe.expert_ffn_size, moe.n_active_experts, moe.n_routed_experts


def routed_experts_s(
    model: str,
    precision: str,
    device: str,
    tp: int,
    tokens: Any,
    framework: str,
    names: tuple[str, ...] = MOE_OPS,
) -> np.ndarray:
    """hwsim's time (s) of one layer's routed-expert ops ``names`` for each count of ``tokens``
    routed through ``model`` at ``precision`` and TP ``tp`` on ``device`` under ``framework``: the
    ops of a decode step of that many sequences, each op's larger of math and memory time plus its
    launches and fixed time per call, summed."""
    batch = np.asarray(tokens, dtype=float).reshape(-1)  # one sweep point per count
    ops = build_ops(
        load_model(model), Quant.from_name(precision), phase="decode", batch=batch, context=1, tp=tp
    )
    experts = ops.select(np.isin(ops.name, names))
    cost = GpuCostModel().estimate(experts, catalog()[device], Placement(tp=tp, framework=framework))
    per_op = np.maximum(cost.compute_s, cost.memory_s) + cost.overhead_s
    return np.broadcast_to(per_op, (experts.n_ops, len(batch))).sum(axis=0)


def predict_moe_layers(rows: pd.DataFrame) -> np.ndarray:
    """hwsim's time (s) of one layer's routed experts (``MOE_OPS``, ``routed_experts_s``) for each
    row (``device``, ``model``, ``dtype``, ``tp``, ``tokens``) under TensorRT-LLM's terms."""
    out = np.empty(len(rows))
    for (device, model, dtype, tp), group in rows.groupby(["device", "model", "dtype", "tp"]):
        out[rows.index.get_indexer(group.index)] = routed_experts_s(
            str(model), PRECISION[str(dtype)], str(device), int(tp), group["tokens"], FRAMEWORK
        )
    return out


def errors(rows: pd.DataFrame | None = None) -> np.ndarray:
    """Each row's error, |predicted / measured - 1|."""
    rows = load_kernels("moe_trtllm") if rows is None else rows
    return np.abs(predict_moe_layers(rows) / (rows["latency_us"].to_numpy() * 1e-6) - 1)


def frames() -> dict[tuple[str, str], pd.DataFrame]:
    """The timed layers beside hwsim's pricing, one chart per device and preset: panels by
    format, one colour per TP degree; microseconds a layer against the tokens routed."""
    rows = load_kernels("moe_trtllm")
    predicted = predict_moe_layers(rows) * 1e6
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for (device, model), mine in rows.groupby(["device", "model"]):
        at: Any = rows.index.get_indexer(mine.index)
        out[("fused_moe", f"{device} {model} TensorRT-LLM kernels")] = pd.DataFrame(
            {
                "panel": mine["dtype"].to_numpy(),
                "x": mine["tokens"].to_numpy(),
                "series": ("TP " + mine["tp"].astype(str)).to_numpy(),
                "measured": mine["latency_us"].to_numpy(),
                "predicted": predicted[at],
            }
        )
    return out
