"""The GPU cost model (``arch: gpu``): the roofline form with GPU parameters.

Tensor-core peaks per math format, HBM/GDDR bandwidth, tile padding of skinny GEMMs,
NCCL's collective latencies and CUDA launch overhead; parameters per device class in
``hwmodels/calibration/gpu.yaml``.

A framework whose quantized GEMM kernels are bound by instruction issue rather than by
tensor-core width (``issue_bound_quantized_gemm`` in ``calibration/frameworks.yaml``:
llama.cpp's MMQ) is also held to ``issue_bound_gemm_macs_per_lane_cycle`` multiply-adds per
issued instruction lane and clock (an NVIDIA SM issues 4 warps x 32 lanes per cycle, an AMD
CU 64 lanes) on devices whose catalog entry gives SM (CU) count, issue lanes and boost clock
(``gpu`` block).

On the architectures with measured kernels (``hwmodels/calibration/curves.py``), GEMMs take
their format's fitted curve (``e_max * m / (m + m_half)`` of peak, their own
weight-streaming efficiency, and a partial overlap of the two: ``GemmCurve.overlap``) and prefill attention its own (``e_max * keys / (keys +
keys_half)``) instead of the class's single ``compute_efficiency`` (the curves' fixed latency per
call is not added: it holds the collectors' launch, which ``kernel_overhead_us`` charges), and an
all-reduce over NVLink takes the fitted bandwidth fraction and latencies instead of NCCL's
nominal model; under a framework whose decode-attention kernels were timed there
(``kernels``: ``tensorrt-llm``, ``vllm``, ``sglang``), a decode attention streams its KV cache at
that engine's fitted efficiency and pays its time per (sequence, KV head) walked. Elsewhere an
FP8 or FP4 GEMM runs at most the measured speed-up of its format over BF16
(``format_speedup``: the chip's own where its architecture states one, else the median of the
architectures with curves). Under a framework whose block-scaled FP8 kernels were slower than
that (``block_fp8`` in ``calibration/frameworks.yaml``: vLLM V0, SGLang before v0.4.6), a GEMM
over block-scaled FP8 weights (``OpTable.weight_block``, DeepSeek-V3/R1) pays their fixed time per
call, and the routed experts' fused MoE kernel streams and computes at its own timed efficiencies.
Under a framework that runs llm-awq's first AWQ GEMM kernel (``awq_gemm``: AutoAWQ before v0.2.0),
a 4-bit weight-only GEMM beyond the GEMV sizes takes at least its multiply-adds (rows padded to
the kernel's tile) at that kernel's fitted rate per SM (``awq_gemm_s``).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, ClassVar

import numpy as np

from hwmodels.calibration.curves import (
    architecture,
    attention_curve,
    decode_attention_curve,
    device_time_latency,
    fitted_curves,
    format_speedup,
    gemm_curve,
    gemm_peak_fraction,
    link_curve,
    overlapped_s,
)
from hwmodels.calibration.params import AwqGemmKernel, BlockFp8Kernels, framework_terms
from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import Placement
from hwmodels.registry import register
from hwmodels.roofline_model import RooflineCostModel
from workloads.errors import HwsimNote
from workloads.graph import INT8_MAX_BITS_PER_WEIGHT, OpTable


def issue_lane_cycles_per_s(device: DeviceSpec) -> float | None:
    """Instruction lanes the device issues per second: SMs (or CUs) x lanes each issues per
    cycle x boost clock; None without a ``gpu`` block."""
    block = device.extra.get("gpu")
    if block is None:
        return None
    return block["sm_count"] * block["issue_lanes_per_sm"] * block["boost_clock_GHz"] * 1e9


def awq_gemm_s(ops: OpTable, device: DeviceSpec, kernel: AwqGemmKernel, gemv_max_rows: float) -> Any:
    """Time per occurrence of the 4-bit weight-only GEMMs that ``kernel`` (a framework's AWQ GEMM)
    takes, more than ``gemv_max_rows`` rows and at most its ``max_rows``: their multiply-adds over
    the rows padded to its tile, at its rate per SM (``AwqGemmKernel``); 0 for every other op, and
    on a device whose catalog entry gives no SM count (``gpu`` block), with a ``HwsimNote``."""
    shape = (-1,) + (1,) * (ops.flops.ndim - 1)
    sixteen_bit_math = np.isin(ops.fmt, ("fp16", "bf16")) & np.isin(ops.kind, GEMM_KINDS)
    hit = sixteen_bit_math.reshape(shape) & (ops.bits_per_weight <= AWQ_MAX_BITS_PER_WEIGHT)
    top = np.inf if kernel.max_rows is None else kernel.max_rows
    hit = hit & (ops.m > gemv_max_rows) & (ops.m <= top)
    block = device.extra.get("gpu")
    if block is None:
        if np.any(hit):
            warnings.warn(
                f"{device.name}'s catalog entry gives no SM count (gpu.sm_count): its 4-bit GEMMs are "
                "priced at the class's 16-bit rate, not at the AWQ GEMM kernel's rate per SM",
                HwsimNote,
                stacklevel=2,
            )
        return 0.0
    rows = np.maximum(ops.m, 1.0)
    padded_macs = ops.flops / 2.0 * np.ceil(rows / kernel.tile_rows) * kernel.tile_rows / rows
    return np.where(hit, padded_macs / (block["sm_count"] * kernel.macs_per_sm_us * 1e6), 0.0)


AWQ_MAX_BITS_PER_WEIGHT = 4.6
"""Stored bits per weight up to which a weight-only GEMM is a 4-bit one (INT4 with its group
scales and zeros: 4.25 at groups of 128) that an AWQ GEMM kernel runs."""


def issue_bound_gemm_s(ops: OpTable, rate_macs_per_s: float, gemv_max_rows: float) -> np.ndarray:
    """Time per occurrence of the quantized GEMMs (more than ``gemv_max_rows`` rows) at an
    issue-bound rate of multiply-adds per second; 0 for every other op."""
    kind = ops.kind.reshape((-1,) + (1,) * (ops.flops.ndim - 1))
    quantized = ops.bits_per_weight <= INT8_MAX_BITS_PER_WEIGHT
    hit = np.isin(kind, ("gemm", "router")) & quantized & (ops.m > gemv_max_rows)
    return np.where(hit, ops.flops / 2.0 / rate_macs_per_s, 0.0)


GEMM_KINDS = ("gemm", "router")


_LAST = threading.local()
"""``terms``: this thread's last (ops, device, curve record, architecture, terms): one estimate asks
for its terms three times (threads price chunks at once: ``roofline.estimate.threads``)."""

_FORMATS: dict[tuple[str, str], tuple[Any, ...]] = {}
"""(device, format) -> (curve record, architecture, (GEMM curve, attention curve, format speed-up)):
the lookups each op group's estimate makes, redone only when the fit in use changes."""


def _fitted_state(device: DeviceSpec) -> tuple[Any, str | None]:
    """(the curve fit record in use, the architecture whose curves price ``device``)."""
    return fitted_curves(), architecture(device.name)


def _format_curves(device: DeviceSpec, fmt: str, state: tuple[Any, str | None]) -> tuple[Any, Any, Any]:
    """(GEMM curve, prefill-attention curve, ``format_speedup``) of ``fmt`` on ``device`` under
    ``state`` (``_fitted_state``)."""
    found = _FORMATS.get((device.name, fmt))
    if found is None or found[0] is not state[0] or found[1] != state[1]:
        curves = (
            gemm_curve(device.name, fmt),
            attention_curve(device.name, fmt),
            format_speedup(fmt, device.name),
        )
        found = _FORMATS[(device.name, fmt)] = (*state, curves)
    return found[2]


def _is_gemm(ops: OpTable) -> np.ndarray:
    """Whether each op is a GEMM (``GEMM_KINDS``), shape (n_ops,)."""
    return np.array([k in GEMM_KINDS for k in ops.kind], dtype=bool)


def _curve_terms(ops: OpTable, device: DeviceSpec) -> dict[str, Any] | None:
    """Curve values where a fitted curve prices an op: ``hit`` (bool, shape (n_ops, *sweep); None
    when every op at every point is), ``efficiency`` and ``stream`` (GEMM weight-streaming
    efficiency, NaN elsewhere; a scalar with ``hit`` None); None when no op of ``ops`` has a curve
    on ``device``."""
    state = _fitted_state(device)
    last = getattr(_LAST, "terms", ())
    if last and last[0] is ops and last[1] == device.name and last[2] is state[0] and last[3] == state[1]:
        return last[4]
    terms = _new_curve_terms(ops, device, state)
    _LAST.terms = (ops, device.name, *state, terms)
    return terms


def _new_curve_terms(
    ops: OpTable, device: DeviceSpec, state: tuple[Any, str | None]
) -> dict[str, Any] | None:
    nd = ops.flops.ndim
    gemm = _is_gemm(ops)
    attention = (ops.kind == "attention") & (ops.phase != "decode")  # fitted on context attention
    priced = []  # (ops it prices (n_ops,), curve, its argument, its streaming efficiency, its overlap)
    for f in set(ops.fmt):
        g, a, _ = _format_curves(device, f, state)
        if g is not None and (gemm & (ops.fmt == f)).any():
            priced.append((gemm & (ops.fmt == f), g, ops.m, g.stream_efficiency, g.overlap))
        if a is not None and (attention & (ops.fmt == f)).any():
            priced.append((attention & (ops.fmt == f), a, ops.keys, np.nan, np.inf))
    if not priced:
        return None
    rows, curve, x, stream, overlap = priced[0]
    if len(priced) == 1 and rows.all() and (x > 0).all():  # one curve prices everything: no masks
        return {
            "hit": None,
            "efficiency": curve.efficiency(np.maximum(x, 1.0)),
            "stream": stream,
            "overlap": overlap,
        }
    shape = np.broadcast_shapes(ops.flops.shape, ops.m.shape, ops.keys.shape)
    out = {
        "hit": np.zeros(shape, dtype=bool),
        "efficiency": np.ones(shape),
        "stream": np.full(shape, np.nan),
        "overlap": np.full(shape, np.inf),
    }
    for rows, curve, x, stream, overlap in priced:
        hit = rows.reshape((-1,) + (1,) * (nd - 1)) & (x > 0)
        out["efficiency"] = np.where(hit, curve.efficiency(np.maximum(x, 1.0)), out["efficiency"])
        out["stream"] = np.where(hit, stream, out["stream"])
        out["overlap"] = np.where(hit, overlap, out["overlap"])
        out["hit"] = out["hit"] | hit
    return out if out["hit"].any() else None


def _uncurved_gemm_efficiency(ops: OpTable, device: DeviceSpec, class_eff: float) -> Any:
    """Per-op compute efficiency where no fitted curve prices a GEMM: the architecture's measured
    ``gemm_peak_fraction`` of the format where stated; else the class's efficiency, for an FP8 or
    FP4 GEMM shrunk where the datasheet peak promises more over BF16 (``peak(fmt) / peak(bf16)``)
    than the measured ``format_speedup``; the class's efficiency for every other op."""
    state = _fitted_state(device)
    gemm = _is_gemm(ops)
    eff = np.full(ops.n_ops, class_eff)
    for f in set(ops.fmt):
        g, _, speedup = _format_curves(device, f, state)
        if g is not None:
            continue
        stated = gemm_peak_fraction(f, device.name)
        if stated is not None:
            eff = np.where(gemm & (ops.fmt == f), stated, eff)
        elif speedup is not None:
            promised = device.peak(f) / device.peak("bf16")
            eff = np.where(gemm & (ops.fmt == f), class_eff * min(1.0, speedup / promised), eff)
    return eff.reshape((-1,) + (1,) * (ops.flops.ndim - 1))


MOE_EXPERT_GEMMS = ("experts_up", "experts_down")
"""The routed experts' GEMMs of a step (``workloads.graph``), which engines run as one fused MoE kernel."""


def block_fp8_terms(
    ops: OpTable, framework: str | None, device: DeviceSpec
) -> tuple[BlockFp8Kernels, np.ndarray, np.ndarray] | None:
    """(``framework``'s ``BlockFp8Kernels`` as they ran on ``device``, which ops are GEMMs over
    block-scaled FP8 weights, which of those are routed-expert GEMMs), masks of shape (n_ops,);
    None when the framework states no such kernels or no op is one."""
    if not framework:
        return None
    kernels = framework_terms(framework).block_fp8
    if kernels is None:
        return None
    kernels = kernels.on(device.name)
    block = _is_gemm(ops) & (ops.weight_block > 0)
    if not block.any():
        return None
    return kernels, block, block & np.isin(ops.name, MOE_EXPERT_GEMMS)


def decode_attention_terms(
    ops: OpTable, device: DeviceSpec, framework: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(which ops take a decode-attention curve, its streaming efficiency, its time per stream in s),
    each shape (n_ops,), for the decode softmax attentions of ``ops`` under ``framework``'s kernels
    (``FrameworkTerms.kernels``) on ``device``; None when no op takes one."""
    if not framework or ops.phase != "decode":
        return None
    engine = framework_terms(framework).kernels
    attention = ops.kind == "attention"
    if not attention.any():
        return None
    hit = np.zeros(ops.n_ops, dtype=bool)
    efficiency, stream_s = np.ones(ops.n_ops), np.zeros(ops.n_ops)
    for f in set(ops.fmt[attention]):
        curve = decode_attention_curve(device.name, f, engine)
        if curve is None:
            continue
        rows = (
            attention & (ops.fmt == f) & np.any(ops.kv_streams > 0, axis=tuple(range(1, ops.kv_streams.ndim)))
        )
        hit |= rows
        efficiency = np.where(rows, curve.stream_efficiency, efficiency)
        stream_s = np.where(rows, curve.stream_ns * 1e-9, stream_s)
    return (hit, efficiency, stream_s) if hit.any() else None


MMHA_LAUNCH = ((32, 64, 4), (2048, 128, 2), (np.inf, 256, 1))
"""FasterTransformer's masked multi-head attention launch by the keys already cached
(``mmha_launch_kernel`` in AutoAWQ's awq_cuda/attention/decoder_masked_multihead_attention.cu
@5c7e3682): (below this many keys, threads a block, threads a key)."""
MMHA_LOAD_BYTES = 16
"""Bytes each thread of the kernel's value loop loads an iteration (a 16-byte vector)."""


def mmha_loop_s(ops: OpTable, device: DeviceSpec, framework: str | None) -> np.ndarray | None:
    """Least time (s) per occurrence of each decode attention of ``ops`` under a framework whose
    decode attention is FasterTransformer's masked multi-head attention kernel
    (``FrameworkTerms.mmha_decode_attention``), on a device whose memory states its load latency;
    0 for other ops; None where neither holds.

    The kernel runs one thread block per (sequence, query head), side by side, each walking its
    sequence's whole cache (decoder_masked_multihead_attention_template.hpp): its key loop takes
    threads / threads-per-key keys an iteration (``MMHA_LAUNCH``), its value loop threads x 16 B /
    (a value row's bytes, padded to a power of two) keys, and every thread waits for its load before
    the next iteration. A block so takes (key iterations + value iterations) load latencies, however
    little it reads: at 2,000 cached keys of 128 FP16 values, 128 threads walk 32 + 250 iterations,
    72 us at an RTX 4090's 256 ns, where Mistral-7B's 8 MB of K and V a layer would stream in 10 us."""
    if not framework or ops.phase != "decode" or not framework_terms(framework).mmha_decode_attention:
        return None
    latency = device.memory.load_latency_s if device.memory is not None else None
    if latency is None:
        return None
    shape = (-1,) + (1,) * (ops.flops.ndim - 1)
    attention = (ops.kind == "attention").reshape(shape)
    keys = np.broadcast_to(ops.keys, ops.flops.shape).astype(float)
    streams = np.broadcast_to(ops.kv_streams, ops.flops.shape).astype(float)
    walked = attention & (keys > 0) & (streams > 0)
    if not walked.any():
        return None
    row = np.where(walked, ops.kv_read_bytes / (2.0 * np.where(walked, streams * keys, 1.0)), 1.0)
    padded = 2.0 ** np.ceil(np.log2(np.maximum(row, 1.0)))
    below = [keys < limit for limit, _, _ in MMHA_LAUNCH[:-1]]
    widest = MMHA_LAUNCH[-1]
    threads = np.select(below, [t for _, t, _ in MMHA_LAUNCH[:-1]], widest[1])
    per_key = np.select(below, [k for _, _, k in MMHA_LAUNCH[:-1]], widest[2])
    values_per_iter = np.maximum(threads * MMHA_LOAD_BYTES // padded, 1.0)
    iterations = np.ceil(keys / (threads / per_key)) + np.ceil(keys / values_per_iter)
    return np.where(walked, iterations * latency, 0.0)


SCALAR_GEMV_THREADS = 32
"""Threads of a block of ggml-cuda's ``dequantize_mul_mat_vec`` over FP16 weights: one warp,
``block_dims(WARP_SIZE, GGML_CUDA_MMV_Y = 1)``, one block per output row (ggml-cuda dmmv.cu of
2024, ``convert_mul_mat_vec_f16_cuda``)."""
SCALAR_GEMV_LOAD_BYTES = 4
"""Weight bytes each of its threads has in flight an iteration: two FP16 values read as two
scalar 2-byte loads (``convert_f16``: ``x[ib + iqs + 0]``, ``x[ib + iqs + 1]``), used before
the next iteration's loads; llama.cpp PR #9816 (October 2024) made them vector loads."""


def scalar_gemv_s(ops: OpTable, device: DeviceSpec, framework: str | None) -> np.ndarray | None:
    """Least time (s) per occurrence of each one-token GEMM over 16-bit weights of ``ops`` under
    a framework whose such GEMMs run ggml-cuda's scalar-load mat-vec kernel
    (``FrameworkTerms.scalar_fp16_gemv``), on a device whose catalog states its memory's load
    latency, its SM count and its resident blocks per SM; 0 for other ops; None where that does
    not hold.

    Each SM holds at most ``max_resident_blocks_per_sm`` one-warp blocks, each thread with
    ``SCALAR_GEMV_LOAD_BYTES`` of weights in flight, so the kernel streams at most SMs x blocks x
    32 x 4 B per load latency (Little's law): on an A100 PCIe 108 x 32 x 128 B / 406 ns =
    1.09 TB/s, 56% of its 1.94 TB/s, where an RTX 4090's 128 x 24 x 128 B / 256 ns = 1.54 TB/s
    exceeds its 1.01 TB/s, so there the bound never binds (llama.cpp issue #9817: the mat-vec
    kernels reach a high share of peak on GDDR GPUs, far less on HBM GPUs)."""
    if not framework or ops.phase != "decode" or not framework_terms(framework).scalar_fp16_gemv:
        return None
    latency = device.memory.load_latency_s if device.memory is not None else None
    gpu = device.extra.get("gpu", {})
    if latency is None or "max_resident_blocks_per_sm" not in gpu:
        return None
    in_flight = (
        gpu["sm_count"] * gpu["max_resident_blocks_per_sm"] * SCALAR_GEMV_THREADS * SCALAR_GEMV_LOAD_BYTES
    )
    shape = (-1,) + (1,) * (ops.flops.ndim - 1)
    # one token a step (ggml's mat-vec path; more rows go through cuBLAS) over FP16 weights
    hit = (_is_gemm(ops) & (ops.weight_bits == 16)).reshape(shape) & (ops.m == 1)
    if not np.any(hit):
        return None
    return np.where(hit, ops.weight_bytes / in_flight * latency, 0.0)


@register
class GpuCostModel(RooflineCostModel):
    """GPUs and accelerators that run kernels on a device memory (HBM, GDDR, unified LPDDR)."""

    arch: ClassVar[str] = "gpu"
    elementwise: ClassVar[bool] = True

    def memory_efficiency(self, ops: OpTable, device: DeviceSpec, p: dict[str, float]) -> Any:
        """The class's memory efficiency, or a fitted GEMM curve's weight-streaming efficiency."""
        terms = _curve_terms(ops, device)
        if terms is None:
            return p["memory_efficiency"]
        return np.where(np.isnan(terms["stream"]), p["memory_efficiency"], terms["stream"])

    def memory_time_s(
        self, ops: OpTable, device: DeviceSpec, p: dict[str, float], mem_bytes: Any, placement: Placement
    ) -> Any:
        """The roofline memory time, but for a decode attention under an engine with a fitted
        decode-attention curve (``decode_attention_terms``): its bytes at the curve's streaming
        efficiency plus ``stream_ns`` per (sequence, KV head) it walks; and for the routed experts'
        GEMMs over block-scaled FP8 weights under a framework with ``block_fp8`` kernels, their
        bytes at its fused MoE's ``moe_stream_efficiency``; never below the least times of
        kernels bound by their loads' latency (``mmha_loop_s``, ``scalar_gemv_s``)."""
        memory_s = super().memory_time_s(ops, device, p, mem_bytes, placement)
        nd = ops.flops.ndim
        shape = (-1,) + (1,) * (nd - 1)
        block = block_fp8_terms(ops, placement.framework, device)
        if block is not None and block[2].any():
            kernels, _, moe = block
            fused = mem_bytes / (device.memory.bw_bytes_per_s * kernels.moe_stream_efficiency)
            memory_s = np.where(moe.reshape(shape), fused, memory_s)
        terms = decode_attention_terms(ops, device, placement.framework)
        if terms is not None:
            hit, efficiency, stream_s = terms
            curved = mem_bytes / (device.memory.bw_bytes_per_s * efficiency.reshape(shape))
            memory_s = np.where(
                hit.reshape(shape), curved + ops.kv_streams * stream_s.reshape(shape), memory_s
            )
        for least in (
            mmha_loop_s(ops, device, placement.framework),
            scalar_gemv_s(ops, device, placement.framework),
        ):
            if least is not None:
                memory_s = np.maximum(memory_s, least)
        return memory_s

    def overlap(self, ops: OpTable, device: DeviceSpec, compute_s: Any, memory_s: Any) -> tuple[Any, Any]:
        """Where a fitted GEMM curve prices an op, the larger of its math and memory times becomes
        the curve's partly overlapped time (``curves.overlapped_s`` at ``GemmCurve.overlap``); unchanged elsewhere."""
        terms = _curve_terms(ops, device)
        if terms is None or np.all(np.isinf(terms["overlap"])):
            return compute_s, memory_s
        joint = overlapped_s(compute_s, memory_s, terms["overlap"])
        math_bound = compute_s >= memory_s
        return np.where(math_bound, joint, compute_s), np.where(math_bound, memory_s, joint)

    def kernel_latency_s(self, ops: OpTable, device: DeviceSpec, placement: Placement) -> Any:
        """The fitted GEMM curve's ``latency_us`` per GEMM occurrence, where the architecture's
        kernels were timed on the device alone (``latency_is_device_time`` in
        ``gpu_kernels.yaml``), 0 elsewhere (a collector's per-call time includes its launch,
        which ``kernel_overhead_us`` prices); for a GEMM over block-scaled FP8 weights under a
        framework with ``block_fp8`` kernels, theirs (``BlockFp8Kernels.gemm_latency_us``)."""
        out = np.zeros(ops.n_ops)
        state = _fitted_state(device)
        if state[1] is not None and device_time_latency(state[1]):
            gemm = _is_gemm(ops)
            for f in set(ops.fmt):
                g = _format_curves(device, f, state)[0]
                if g is not None:
                    out = np.where(gemm & (ops.fmt == f), g.latency_us * 1e-6, out)
        block = block_fp8_terms(ops, placement.framework, device)
        if block is not None:
            out = np.where(block[1], block[0].gemm_latency_us * 1e-6, out)
        return out

    def extra_launches(self, ops: OpTable, device: DeviceSpec, placement: Placement) -> Any:
        """The launches a framework's MoE layers add on ``device`` beyond the priced ones
        (``FrameworkTerms.moe_launches``), charged once per MoE layer on its up-projection GEMM."""
        if not placement.framework:
            return 0.0
        out = np.zeros(ops.n_ops)
        up = ops.name == MOE_EXPERT_GEMMS[0]
        for entry in framework_terms(placement.framework).moe_launches:
            if entry.devices and device.name not in entry.devices:
                continue
            hit = up & (
                np.isclose(ops.weight_bits, entry.weight_bits) if entry.weight_bits is not None else True
            )
            hit = hit & (ops.weight_block > 0) if entry.block_scaled else hit
            out += np.where(hit, float(entry.extra_kernels), 0.0)
        return out

    def collective_terms(
        self, link_name: str, p: dict[str, float], device: DeviceSpec
    ) -> tuple[float, float, float | None, float, float]:
        """The all-reduce terms fitted on measured collectives for this link type (on the device's
        architecture where measured), else NCCL's model."""
        curve = link_curve(link_name, device.name)
        if curve is None:
            return super().collective_terms(link_name, p, device)
        return (
            curve.bw_efficiency,
            curve.base_latency_us * 1e-6,
            curve.step_latency_us * 1e-6,
            curve.small_bw_efficiency,
            curve.knee_MB * 1e6,
        )

    def compute_s(
        self,
        ops: OpTable,
        device: DeviceSpec,
        p: dict[str, float],
        peaks: np.ndarray,
        compute_eff: float,
        placement: Placement,
    ) -> np.ndarray:
        """The roofline math time at the fitted curves' efficiencies where they price the op,
        never faster than the device's measured sustained GEMM rate of the op's format
        (``DeviceSpec.sustained_rate``: kernel timings are bursts, while a prefill runs its math
        for long enough that the power limit lowers the clocks); under a framework with
        ``block_fp8`` kernels, its dense block-FP8 GEMMs at no more than their
        ``gemm_math_efficiency`` and its fused MoE's routed FLOPs at its ``moe_math_efficiency``
        (its tiling included); under a framework that runs an MLA prefill absorbed
        (``absorbed_mla_prefill``), that attention at its kernel's efficiency; or the issue-bound
        time of a framework's quantized GEMMs where longer."""
        terms = _curve_terms(ops, device)
        if terms is not None and terms["hit"] is None:
            compute_eff = terms["efficiency"]
        else:
            compute_eff = _uncurved_gemm_efficiency(ops, device, compute_eff)
            if terms is not None:
                compute_eff = np.where(terms["hit"], terms["efficiency"], compute_eff)
        tensor_s = super().compute_s(ops, device, p, peaks, compute_eff, placement)
        if device.sustained_gemm:  # the board's power limit holds long math below the kernels' burst rate
            rate_of = {f: device.sustained_rate(f) or np.inf for f in set(ops.fmt)}
            sustained = np.array([rate_of[f] for f in ops.fmt]).reshape((-1,) + (1,) * (ops.flops.ndim - 1))
            tensor_s = np.maximum(tensor_s, ops.flops / sustained)
        block = block_fp8_terms(ops, placement.framework, device)
        if block is not None:
            kernels, gemms, experts = block
            axes = (-1,) + (1,) * (ops.flops.ndim - 1)
            slow = np.maximum(tensor_s, ops.flops / (peaks * kernels.gemm_math_efficiency))
            tensor_s = np.where((gemms & ~experts).reshape(axes), slow, tensor_s)
            # the fused MoE's routed FLOPs, its tiling in its efficiency
            moe = ops.flops / (peaks * kernels.moe_math_efficiency)
            tensor_s = np.where(experts.reshape(axes), moe, tensor_s)
        if not placement.framework:
            return tensor_s
        absorbed = framework_terms(placement.framework).absorbed_mla_prefill
        if absorbed is not None:  # an MLA prefill's attention over the latent, on the engine's own kernel
            latent = (ops.name == "latent_attention").reshape((-1,) + (1,) * (ops.flops.ndim - 1))
            tensor_s = np.where(latent, ops.flops / (peaks * absorbed.attention_efficiency), tensor_s)
        awq = framework_terms(placement.framework).awq_gemm
        if awq is not None:
            tensor_s = np.maximum(tensor_s, awq_gemm_s(ops, device, awq, p["gemv_max_rows"]))
        lane_rate = issue_lane_cycles_per_s(device)
        if lane_rate is None:
            return tensor_s
        kernels = framework_terms(framework_terms(placement.framework).kernels)
        if not kernels.issue_bound_quantized_gemm:
            return tensor_s
        rate = lane_rate * p["issue_bound_gemm_macs_per_lane_cycle"]
        return np.maximum(tensor_s, issue_bound_gemm_s(ops, rate, p["gemv_max_rows"]))
