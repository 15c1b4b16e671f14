"""The roofline cost model: the form shared by GPUs and (until their dataflow model) CPUs.

Per op and occurrence:

- ``compute_s`` = FLOPs, with GEMM rows padded up to the tensor-core tile
  (``gemm_tile_m``) unless the GEMM is thin enough for a matrix-vector kernel
  (``gemv_max_rows`` rows or fewer), over ``peak(format) * compute_efficiency``;
- ``memory_s`` = bytes of every tensor class over ``HBM bandwidth * memory_efficiency``
  (weights, activations and KV cache all live in device memory);
- ``link_s`` = collective bytes over the link's bandwidth, plus NCCL's latency model:
  a base latency per collective and a per-step latency of the link (NVLink or PCIe)
  for each ring step;
- ``overhead_s`` = kernel launches times ``kernel_overhead``; an engine that fuses
  elementwise ops (the default when no framework is named) launches none for norms,
  RoPE and activations; plus a kernel's own fixed device time where a subclass measured
  one (``kernel_latency_s``);

Time is ``max(compute_s, memory_s) + link_s + overhead_s`` (math and memory overlap
inside a kernel; collectives and launches are on the critical path). Energy counts
actions: FLOPs at ``math_power_fraction * (TDP - static) / peak(format)`` J each, bytes
at the memory type's J/byte, link bytes at ``link_energy``; static power
(``static_power_fraction * TDP``) over the time is added, and the total never exceeds
TDP times time. Parameters live in ``hwmodels/calibration/<arch>.yaml``, one set per
device class, with their basis. A subclass may price ops finer (``memory_efficiency`` per op,
its own ``collective_terms``): the GPU model does so with the kernel curves fitted on measured
kernels. A framework (``Placement.framework``) may replace the
per-kernel overhead with its own (``hwmodels/calibration/frameworks.yaml``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np

from hwmodels.calibration.params import framework_terms, params_for
from hwmodels.cost_table import CostTable, count_sum
from hwmodels.device_spec import DeviceSpec, LinkSpec
from hwmodels.placement import Placement
from workloads.errors import ConfigError
from workloads.graph import OpTable, is_blank, running_sum


def _per_op(values: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a per-op vector (n_ops,) to broadcast against (n_ops, *sweep)."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


FUSABLE_KINDS = ("norm", "elementwise")
"""Op kinds an optimized engine fuses into neighbouring kernels (RMSNorm with the residual
add, RoPE into attention, SwiGLU into the up projection), so they launch no kernel."""


def _launches(ops: OpTable, fused: bool, hf_modules: bool = False) -> np.ndarray:
    """Kernel launches per occurrence of each op: HF Transformers' eager modules' where the
    framework runs them (``OpTable.module_kernels``), else the engine's; a GEMM over block-scaled
    FP8 weights (``OpTable.weight_block``) launches one more, which quantizes its activations in
    groups of the block's width before it (vLLM's and SGLang's ``per_token_group_quant_fp8``,
    TensorRT-LLM's ``fp8_quantize_1x128``; TensorRT-LLM's PyTorch modules call it before every
    ``fp8_block_scaling_gemm``, tensorrt_llm/_torch/modules/linear.py, early 2025)."""
    if hf_modules:
        launches = ops.module_kernels
    elif not fused:
        launches = ops.n_kernels
    else:
        launches = np.array(
            [0.0 if k in FUSABLE_KINDS else n for k, n in zip(ops.kind, ops.n_kernels, strict=True)]
        )
    return launches + ((ops.kind == "gemm") & (ops.weight_block > 0))


class RooflineCostModel:
    """Roofline per op with achievable fractions, tile padding and launch overhead.

    Subclasses set ``arch``; their parameters are read from ``calibration/<arch>.yaml``.
    """

    arch: ClassVar[str]
    params_arch: ClassVar[str | None] = None
    """The calibration file to read (``calibration/<params_arch>.yaml``); default ``arch``."""
    elementwise: ClassVar[bool] = False
    """Whether each op's cost at each sweep point follows from that op's values at that point
    alone (no sum over the step's ops or the sweep's points, as a subclass's hook may take):
    ``roofline.estimate`` then prices ops in groups and the sweep in chunks."""

    def compute_s(
        self,
        ops: OpTable,
        device: DeviceSpec,
        p: dict[str, float],
        peaks: np.ndarray,
        compute_eff: float,
        placement: Placement,
    ) -> np.ndarray:
        """Math time per occurrence: FLOPs, GEMM rows padded to the tile, over the achievable peak."""
        tile = p["gemm_tile_m"]
        m = ops.m
        tiled = m > p["gemv_max_rows"]
        if not tiled.any():  # nothing to pad (every op but a GEMM has m = 0)
            return ops.flops / (peaks * compute_eff)
        with np.errstate(divide="ignore", invalid="ignore"):  # m = 0 (no GEMM) is never tiled
            padded = np.ceil(m / tile)
            padded *= tile
            padded /= m
        # the padding over the efficiency first: both often one array for every op (the GEMMs' m)
        return ops.flops / peaks * (np.where(tiled, padded, 1.0) / compute_eff)

    def kernel_latency_s(self, ops: OpTable, device: DeviceSpec, placement: Placement) -> Any:
        """Fixed device time per occurrence of each op besides its roofline time (its kernels'
        fill and drain), s: none in the roofline form."""
        return 0.0

    def launch_count(self, ops: OpTable, device: DeviceSpec, placement: Placement) -> Any:
        """Kernel launches of one pass over ``ops`` on ``device`` under ``placement``'s framework:
        each op's launches per occurrence (its kernels, fused away or HF's modules', plus the
        framework's extra ones) times its count, at every point of the sweep axes."""
        terms = framework_terms(placement.framework) if placement.framework else None
        fused = terms.fuses_elementwise if terms else True
        launches = _launches(ops, fused, bool(terms) and terms.hf_modules) + self.extra_launches(
            ops, device, placement
        )
        launches = np.asarray(launches, dtype=float)
        return np.sum(_per_op(np.asarray(ops.count, dtype=float), max(launches.ndim, 1)) * launches, axis=0)

    def extra_launches(self, ops: OpTable, device: DeviceSpec, placement: Placement) -> Any:
        """Kernel launches per occurrence of each op beyond its own (``OpTable.n_kernels``) that
        the framework's kernels for it add on ``device``: none in the roofline form."""
        return 0.0

    def overlap(self, ops: OpTable, device: DeviceSpec, compute_s: Any, memory_s: Any) -> tuple[Any, Any]:
        """(math time, memory time), the larger raised where an op's math and memory traffic do
        not overlap fully (an op takes the larger of the two): unchanged in the roofline form."""
        return compute_s, memory_s

    def memory_bw(self, ops: OpTable, device: DeviceSpec) -> float:
        """Bandwidth of the memory the op's bytes cross: device memory (HBM, GDDR, unified DRAM)."""
        return device.memory.bw_bytes_per_s

    def memory_efficiency(self, ops: OpTable, device: DeviceSpec, p: dict[str, float]) -> Any:
        """Achievable fraction of the memory bandwidth, per op or for all: the class's value."""
        return p["memory_efficiency"]

    def memory_time_s(
        self, ops: OpTable, device: DeviceSpec, p: dict[str, float], mem_bytes: Any, placement: Placement
    ) -> Any:
        """Time of each op's memory traffic (``mem_bytes`` per occurrence), s: the bytes over the
        bandwidth at the achievable fraction (``memory_efficiency``)."""
        return mem_bytes / (self.memory_bw(ops, device) * self.memory_efficiency(ops, device, p))

    def collective_terms(
        self, link_name: str, p: dict[str, float], device: DeviceSpec
    ) -> tuple[float, float, float | None, float, float]:
        """(achievable fraction of the link bandwidth, base latency s, latency per ring step s
        or None to use the link's own, the fraction for a collective's first link bytes, how many
        bytes that is) of a collective: NCCL's model at full bandwidth, no slower first bytes."""
        step = p.get(f"{link_name}_step_latency_us")
        return 1.0, p["collective_base_latency_us"] * 1e-6, None if step is None else step * 1e-6, 1.0, 0.0

    def step_latency_s(self, link: LinkSpec, step_s: float | None, p: dict[str, float]) -> float:
        """Latency per ring step: the collective terms', else the link's own, else the class's
        stand-in for a scale-up fabric that states none (``fabric_step_latency_us``)."""
        if step_s is not None:
            return step_s
        if link.latency_s is not None:
            return link.latency_s
        if "fabric_step_latency_us" not in p:
            raise ConfigError(
                f"link {link.name!r} states no latency_us and arch {self.arch!r} has no stand-in"
            )
        return p["fabric_step_latency_us"] * 1e-6

    def estimate(self, ops: OpTable, device: DeviceSpec, placement: Placement | None = None) -> CostTable:
        """Price every op of ``ops`` on ``device``; vectorized over the sweep axes."""
        placement = placement or Placement()
        p = {k: v.value for k, v in params_for(self.params_arch or self.arch, device.device_class).items()}
        nd = ops.flops.ndim
        kernel_overhead_us = p["kernel_overhead_us"]
        kv_repeat = 1.0
        compute_eff = p["compute_efficiency"]
        fused = True  # no framework named: an optimized engine that fuses elementwise ops
        if placement.framework:
            terms = framework_terms(placement.framework)
            fused = terms.fuses_elementwise
            kernel_overhead_us = (
                kernel_overhead_us if terms.kernel_overhead_us is None else terms.kernel_overhead_us
            )
            if terms.kv_read_per_query_head:
                kv_repeat = _per_op(ops.kv_group, nd)
        peak_of = {f: device.peak(f) for f in set(ops.fmt)}
        peaks = _per_op(np.array([peak_of[f] for f in ops.fmt]), nd)
        compute_s = self.compute_s(ops, device, p, peaks, compute_eff, placement)
        mem_bytes = (
            ops.memory_bytes
            if np.isscalar(kv_repeat)
            else ops.memory_bytes + (kv_repeat - 1) * ops.kv_read_bytes
        )
        bw = self.memory_bw(ops, device)
        memory_s = self.memory_time_s(ops, device, p, mem_bytes, placement)
        compute_s, memory_s = self.overlap(ops, device, compute_s, memory_s)

        has_link = bool(np.any(ops.link_bytes > 0))
        if has_link:
            if "collective_base_latency_us" not in p:
                raise ConfigError(
                    f"arch {self.arch!r} ({device.name}) models no collectives between devices; "
                    "use tp = pp = ep = 1"
                )
            link = placement.collective_link(device)
            link_bw = _per_op(np.asarray(link.group_bw(ops.link_peers), dtype=float), nd)
            bw_eff, base_s, step_s, small_eff, knee_bytes = self.collective_terms(link.name, p, device)
            step_s = self.step_latency_s(link, step_s, p)
            link_s = (
                ops.link_bytes / (link_bw * bw_eff)
                + np.minimum(ops.link_bytes, knee_bytes) / link_bw * (1.0 / small_eff - 1.0 / bw_eff)
                + np.where(ops.link_steps > 0, base_s, 0.0)
                + ops.link_steps * step_s
            )
            link_e = link.energy_j_per_byte or p["link_energy_pJ_per_byte"] * 1e-12
        else:
            link_s = np.zeros((ops.n_ops,) + (1,) * (nd - 1))
            link_e = 0.0
        hf_modules = bool(placement.framework) and framework_terms(placement.framework).hf_modules
        launches = _launches(ops, fused, hf_modules) + self.extra_launches(ops, device, placement)
        launch_s = _per_op(launches * kernel_overhead_us * 1e-6, nd)
        overhead_s = _per_op(np.asarray(self.kernel_latency_s(ops, device, placement), dtype=float), nd)
        if placement.framework and framework_terms(placement.framework).launch_overlaps_device:
            # launched from the host one by one while the device runs the ones before: only
            # the launch time beyond the op's own device time delays the step
            launch_s = np.maximum(launch_s - (np.maximum(compute_s, memory_s) + link_s + overhead_s), 0.0)
        overhead_s = overhead_s + launch_s

        tdp = device.tdp_w
        static_w = p["static_power_fraction"] * tdp
        j_per_flop = p["math_power_fraction"] * (tdp - static_w) / peaks
        # a byte of device-memory traffic also crosses the chip (L2, network, SRAM); an arch
        # whose parameters state no such energy counts none
        onchip_j_per_byte = p.get("onchip_pJ_per_byte", 0.0) * 1e-12
        count = _per_op(ops.count, nd)
        # dynamic energy: each action's count times its energy per action and occurrences per
        # step (J per unit, one per op), summed over the ops as it is priced (no per-op array)
        per_unit = (
            ops.count * j_per_flop.reshape(-1),
            ops.count * (device.memory.energy_j_per_byte + onchip_j_per_byte),
            ops.count * link_e,
        )
        actions = [
            (a, e)
            for a, e in zip((ops.flops, mem_bytes, ops.link_bytes), per_unit, strict=True)
            if e.any() and not is_blank(a)
        ]
        step_dynamic = running_sum(
            (count_sum(e, a) for a, e in actions), np.zeros((1,) * (nd - 1)), fresh=True
        )
        return CostTable.deferred(
            partial(_derived, ops, peaks, mem_bytes, bw, link_bw if has_link else None, count, actions),
            step_dynamic,
            op=ops.name,
            kind=ops.kind,
            count=ops.count,
            compute_s=compute_s,
            memory_s=memory_s,
            link_s=link_s,
            overhead_s=overhead_s,
            static_power_w=static_w,
            power_cap_w=tdp,
        )


def _derived(
    ops: OpTable,
    peaks: np.ndarray,
    mem_bytes: np.ndarray,
    bw: float,
    link_bw: np.ndarray | None,
    count: np.ndarray,
    actions: list[tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """A ``CostTable``'s fields that step pricing never reads, computed when first asked for:
    ``roofline_s`` (100% of peak compute and bandwidth, plus the link at its full bandwidth),
    ``flops`` and ``bytes_by_level`` per step, and ``dynamic_energy_j`` per op (``actions``:
    each priced action's count per occurrence and its J per unit and step, one per op)."""
    nd = count.ndim
    dynamic = running_sum(
        (a * e.reshape((-1,) + (1,) * (nd - 1)) for a, e in actions), np.zeros_like(count), fresh=True
    )
    roofline_s = np.maximum(ops.flops / peaks, mem_bytes / bw)
    if link_bw is not None:
        roofline_s = roofline_s + ops.link_bytes / link_bw
    return {
        "roofline_s": roofline_s,
        "flops": ops.per_step("flops"),
        "bytes_by_level": {"hbm": count * mem_bytes, "link": count * ops.link_bytes},
        "dynamic_energy_j": dynamic,
    }
