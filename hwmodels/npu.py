"""The mobile NPU cost model (``arch: npu``) and the action counts of chunked INT8 prefill.

An NPU runs static graphs: each linear layer of each prompt chunk is one graph launch
(``kernel_overhead_us`` in ``calibration/npu.yaml``, a stated estimate), its INT8 math at a
fraction of the INT8 peak and its weights streamed from the LPDDR it shares with the CPU
and GPU; float math runs at the NPU's (very low) FP16 rate, which is why mllm-NPU keeps
attention, norms and outlier corrections off it. The roofline form of the GPU model
applies with these parameters. ``prefill_counts`` gives the actions of
``hwmodels/kernels/npu_prefill.py`` in closed form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

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
