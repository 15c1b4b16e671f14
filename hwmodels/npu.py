"""The mobile NPU cost model (``arch: npu``) and the action counts of chunked INT8 prefill.

An NPU runs static graphs: each linear layer of each prompt chunk is one graph launch
(``kernel_overhead_us`` in ``calibration/npu.yaml``, a stated estimate), its INT8 math at a
fraction of the INT8 peak and its weights streamed from the LPDDR it shares with the CPU
and GPU; float math runs at the NPU's (very low) FP16 rate, which is why mllm-NPU keeps
attention, norms and outlier corrections off it. The roofline form of the GPU model
applies with these parameters. ``prefill_counts`` gives the actions of
``hwmodels/kernels/npu_prefill.py`` in closed form; ``action_counts`` gives those of one
linear layer's graph on one chunk (their sum over chunks, layers and linears is
``prefill_counts``), and ``graph_time_s`` / ``graph_energy_j`` price a graph from its actions
only (the mllm-NPU experiment uses them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwmodels.calibration.params import params_for
from hwmodels.device_spec import DeviceSpec
from hwmodels.kernels.npu_prefill import LINEARS, NpuCounts
from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel
from workloads.model_spec import ModelSpec


@register
class NpuCostModel(RooflineCostModel):
    """Phone NPUs (Qualcomm Hexagon HTP and the like) running static INT8 graphs."""

    arch: ClassVar[str] = "npu"


def linear_shapes(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """(k, n) of the four linear layers of a dense gated block."""
    h, f, d = spec.hidden_size, spec.ffn_size, spec.head_dim
    qkv = (spec.n_heads + 2 * spec.n_kv_heads) * d
    return {"qkv_proj": (h, qkv), "o_proj": (spec.n_heads * d, h), "ffn_up": (h, 2 * f), "ffn_down": (f, h)}


def prefill_counts(
    spec: ModelSpec, n_tokens: int, chunk: int, outliers: Mapping[tuple[int, str], int]
) -> NpuCounts:
    """Actions of a chunked prefill of ``n_tokens`` with ``outliers[(layer, linear)]`` outlier channels."""
    chunks = -(-n_tokens // chunk)
    shapes = linear_shapes(spec)
    per_layer_weights = sum(k * n for k, n in shapes.values())
    return NpuCounts(
        chunks=chunks,
        padded_tokens=chunks * chunk - n_tokens,
        npu_launches=chunks * spec.n_layers * len(LINEARS),
        outlier_macs=n_tokens
        * sum(outliers.get((i, lin), 0) * shapes[lin][1] for i in range(spec.n_layers) for lin in LINEARS),
        npu_weight_bytes=chunks * spec.n_layers * per_layer_weights,
        npu_macs=chunks * chunk * spec.n_layers * per_layer_weights,
    )


@dataclass(frozen=True)
class NpuActions:
    """Actions of static INT8 graphs on the NPU: launches, multiply-adds (padded chunk rows
    included), weight bytes streamed and activation bytes in and out (INT8)."""

    launches: float
    int8_macs: float
    weight_bytes: float
    act_bytes: float


def action_counts(chunk: int, k: int, n: int) -> NpuActions:
    """One linear layer (``k`` inputs, ``n`` outputs) of one prompt chunk of ``chunk`` rows as one
    static INT8 graph: one launch, ``chunk k n`` multiply-adds, the INT8 weights read once, the
    chunk's INT8 input and output."""
    return NpuActions(1.0, float(chunk * k * n), float(k * n), float(chunk * (k + n)))


def _params(device: DeviceSpec) -> dict[str, float]:
    """The NPU class's parameters (``calibration/npu.yaml``, fitted where fitted)."""
    return {k: v.value for k, v in params_for("npu", device.device_class).items()}


def graph_time_s(a: NpuActions, device: DeviceSpec) -> tuple[float, float]:
    """(NPU busy seconds, LPDDR seconds) of graphs with actions ``a``: launches at the graph
    overhead plus INT8 math at the achievable share of the INT8 peak; the bytes at the achievable
    share of the shared LPDDR's bandwidth (the two overlap; the engine holds both resources)."""
    p = _params(device)
    busy = a.launches * p["kernel_overhead_us"] * 1e-6 + 2.0 * a.int8_macs / (
        device.peak("int8") * p["compute_efficiency"]
    )
    memory = (a.weight_bytes + a.act_bytes) / (device.memory.bw_bytes_per_s * p["memory_efficiency"])
    return float(busy), float(memory)


def graph_energy_j(a: NpuActions, device: DeviceSpec) -> float:
    """Dynamic energy: the INT8 FLOPs at the NPU's joules per FLOP, the bytes at the LPDDR's."""
    p = _params(device)
    static_w = p["static_power_fraction"] * device.tdp_w
    j_per_flop = p["math_power_fraction"] * (device.tdp_w - static_w) / device.peak("int8")
    return float(
        2.0 * a.int8_macs * j_per_flop + (a.weight_bytes + a.act_bytes) * device.memory.energy_j_per_byte
    )


def total_actions(actions: list[NpuActions]) -> NpuActions:
    """The sum of several graphs' actions."""
    return NpuActions(
        *np.sum([[a.launches, a.int8_macs, a.weight_bytes, a.act_bytes] for a in actions], axis=0)
    )
