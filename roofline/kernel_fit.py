"""``hwsim calibrate --part kernels``: fit the GPU kernel-efficiency curves on measured kernels.

Data: the extracts in ``hwmodels/calibration/kernels/`` (their README names each source
repository, path, commit and filter): TensorRT-LLM GEMMs, context attention and custom
all-reduce, and the decode attention of TensorRT-LLM, vLLM and SGLang, timed by NVIDIA's
aiconfigurator collectors on A100, H100, H200, B200, GB200, L40S and RTX PRO 6000 Blackwell,
and Vidur's PyTorch projections on A100 and H100.

Model: each measured kernel is priced by the GPU cost model itself (``gemm_table``,
``attention_table`` and ``allreduce_table`` through ``GpuCostModel`` under trial curve
values, ``hwmodels/calibration/curves.py``): ``max(compute, memory)`` plus the curve's fixed
latency per call for GEMMs and attention, the link time for all-reduce. The fixed latency holds
the collectors' own launch and timing around each call, so it is fitted here (to keep it out of
``e_max`` and the streaming efficiency) but not charged end to end, where launches cost the
``kernel_overhead_us`` fitted on measured end-to-end rows.

Fit: scipy's bounded least squares on ``log(predicted / measured)``, per architecture and
format, pooled over the architecture's measured devices (each at its own catalog peak and
bandwidth); the NVLink all-reduce terms are pooled over every device. Errors: in sample;
held out by device where an architecture has two measured chips (H100 and H200, B200 and
GB200: fit on one, predict the other); and Vidur's FP16 projections, a second source that is
never fitted.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from hwmodels.calibration.curves import (
    FORMAT_CURVE,
    architecture,
    architectures,
    attention_curve,
    curves_overridden,
    decode_attention_curve,
    decode_key,
    fitted_curves,
    fitted_curves_path,
    gemm_curve,
    reload,
)
from hwmodels.device_spec import catalog
from hwmodels.gpu import MOE_EXPERT_GEMMS, GpuCostModel
from hwmodels.placement import Placement
from roofline.awq_fit import awq_frames
from roofline.block_fp8_device_fit import frames as block_fp8_device_frames
from roofline.kernel_data import load_kernels
from roofline.mla_prefill_fit import frames as mla_prefill_frames
from roofline.moe_check import errors as trtllm_moe_errors
from roofline.moe_check import frames as trtllm_moe_frames
from roofline.moe_check import routed_experts_s
from workloads.graph import allreduce_table, attention_table, decode_attention_table, gemm_table
from workloads.quant import Quant

PARAMS = {
    "gemm": {
        "e_max": (0.7, 0.05, 1.0),
        "m_half": (32.0, 0.0, 4096.0),
        "stream_efficiency": (0.8, 0.05, 1.0),
        "latency_us": (5.0, 0.0, 50.0),
        "overlap": (4.0, 1.0, 64.0),
    },
    "attention_prefill": {
        "e_max": (0.5, 0.02, 1.0),
        "keys_half": (500.0, 0.0, 1e5),
        "latency_us": (10.0, 0.0, 100.0),
    },
    "attention_decode": {
        "stream_efficiency": (0.8, 0.05, 1.0),
        "stream_ns": (10.0, 0.0, 500.0),
        "latency_us": (10.0, 0.0, 100.0),
    },
    "allreduce": {
        "bw_efficiency": (0.7, 0.05, 1.0),
        "base_latency_us": (5.0, 0.0, 100.0),
        "step_latency_us": (0.5, 0.0, 20.0),
        "small_bw_efficiency": (0.3, 0.02, 1.0),
        "knee_MB": (1.0, 0.0, 1000.0),
    },
}
"""Start value and physical range of each curve parameter: a fraction of peak in (0, 1], a
half-saturation in rows or keys, a latency in microseconds, a message size in MB."""

MIN_GEMM_WEIGHTS = 4096 * 4096
"""GEMMs are fitted on weight matrices of at least this many elements (32 MB in BF16), the layers
of 7B-and-larger models on up to four devices; smaller ones are dominated by the collectors'
per-call time, which would bias the streaming efficiency (the A100's marginal rate between 128
and 512 MB of weights is 0.88 of its bandwidth, its 32 MB calls reach 0.63)."""


MIN_DECODE_KV_BYTES = 128e6
"""Decode attentions are fitted on calls that read at least this much KV cache (128 MB): about
the last-level cache of the largest fitted chip (B200, 126 MB), past which the keys and values
stream from HBM; smaller calls are dominated by the collectors' per-call time and hit in L2
(the L40S's 96 MB L2 serves them faster than its 864 GB/s GDDR6)."""


def _quant(dtype: str) -> Quant:
    return Quant.from_name({"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "fp4": "fp4"}[dtype])


def _kernel_time_s(
    ops, device: str, curve, placement: Placement | None = None, sustained: bool = False
) -> np.ndarray:
    """A measured kernel's time (s) as the collectors time it, in a burst of calls: the cost
    model's ``max(compute, memory)`` (under ``placement``'s framework, whose kernels a decode
    attention runs) plus the curve's fixed latency per call (none without a curve), without the
    device's sustained GEMM rate unless ``sustained`` (calls replayed for seconds)."""
    spec = catalog()[device] if sustained else replace(catalog()[device], sustained_gemm={})
    cost = GpuCostModel().estimate(ops, spec, placement)
    t = np.maximum(cost.compute_s, cost.memory_s) + (curve.latency_us * 1e-6 if curve else 0.0)
    return np.asarray(t).reshape(-1)


def predict_gemm(rows: pd.DataFrame, sustained: bool = False) -> np.ndarray:
    """Kernel time (s) of each GEMM row (``device``, ``dtype``, ``m``, ``n``, ``k``) under the curves
    in use, in a burst or ``sustained`` (``_kernel_time_s``)."""
    out = np.empty(len(rows))
    for (device, dtype), g in rows.groupby(["device", "dtype"]):
        ops = gemm_table(
            g["m"].to_numpy(float), g["n"].to_numpy(float), g["k"].to_numpy(float), _quant(dtype)
        )
        curve = gemm_curve(device, _quant(dtype).compute_format)
        out[rows.index.get_indexer(g.index)] = _kernel_time_s(ops, device, curve, sustained=sustained)
    return out


def predict_attention(rows: pd.DataFrame) -> np.ndarray:
    """Kernel time (s) of each prefill-attention row under the curves in use."""
    out = np.empty(len(rows))
    for (device, dtype, heads, kv_heads, head_dim), g in rows.groupby(
        ["device", "dtype", "heads", "kv_heads", "head_dim"]
    ):
        ops = attention_table(g["batch"], g["isl"], heads, kv_heads, head_dim, _quant(dtype))
        curve = attention_curve(device, _quant(dtype).attention_format)
        out[rows.index.get_indexer(g.index)] = _kernel_time_s(ops, device, curve)
    return out


def decode_kv_bytes(rows: pd.DataFrame) -> np.ndarray:
    """KV-cache bytes each decode-attention row (``batch``, ``context``, ``kv_heads``,
    ``head_dim``, ``kv_dtype``) reads: keys and values of every cached token."""
    width = rows["kv_dtype"].map(lambda dtype: _quant(dtype).kv_bits / 8.0)
    return (rows["batch"] * rows["context"] * rows["kv_heads"] * rows["head_dim"] * 2 * width).to_numpy(float)


def predict_decode_attention(rows: pd.DataFrame) -> np.ndarray:
    """Kernel time (s) of each decode-attention row (``device``, ``engine``, ``kv_dtype``, ``batch``,
    ``context``, ``heads``, ``kv_heads``, ``head_dim``) under the curves in use, priced with that
    engine's kernels (an ``fp8`` KV cache as FP8 attention, ``Quant.attention_format``)."""
    out = np.empty(len(rows))
    for (device, engine, dtype, heads, kv_heads, head_dim), g in rows.groupby(
        ["device", "engine", "kv_dtype", "heads", "kv_heads", "head_dim"]
    ):
        quant = _quant(dtype)
        ops = decode_attention_table(g["batch"], g["context"], heads, kv_heads, head_dim, quant)
        curve = decode_attention_curve(device, quant.attention_format, engine)
        out[rows.index.get_indexer(g.index)] = _kernel_time_s(ops, device, curve, Placement(framework=engine))
    return out


def predict_allreduce(rows: pd.DataFrame) -> np.ndarray:
    """Time (s) of each all-reduce row (``device``, ``n_gpus``, ``message_bytes``) under the curves in use."""
    out = np.empty(len(rows))
    model = GpuCostModel()
    for (device, n), g in rows.groupby(["device", "n_gpus"]):
        ops = allreduce_table(g["message_bytes"].to_numpy(float), int(n), _quant("bf16"))
        cost = model.estimate(ops, catalog()[device], Placement(tp=int(n)))
        out[rows.index.get_indexer(g.index)] = np.broadcast_to(cost.link_s, (1, len(g)))[0]
    return out


PREDICT: Mapping[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "gemm": predict_gemm,
    "attention_prefill": predict_attention,
    "attention_decode": predict_decode_attention,
    "allreduce": predict_allreduce,
}


def _record(kind: str, group: str, key: str | None, values: Mapping[str, float]) -> dict[str, Any]:
    """A fit record holding one curve (``key`` is the format; None for a link)."""
    entry = dict(values) if key is None else {key: dict(values)}
    return {kind: {group: entry}}


def fit_curve(kind: str, group: str, key: str | None, rows: pd.DataFrame) -> dict[str, float]:
    """Least-squares values of one curve (``kind`` in ``PARAMS``) on its measured rows."""
    names = list(PARAMS[kind])
    x0 = np.array([PARAMS[kind][n][0] for n in names])
    lo = np.array([PARAMS[kind][n][1] for n in names])
    hi = np.array([PARAMS[kind][n][2] for n in names])
    measured = rows["latency_us"].to_numpy() * 1e-6

    def residual(x):
        with curves_overridden(_record(kind, group, key, dict(zip(names, x, strict=True)))):
            return np.log(PREDICT[kind](rows) / measured)

    result = least_squares(residual, x0, bounds=(lo, hi), x_scale="jac", diff_step=1e-3)
    return {n: round(float(v), 4) for n, v in zip(names, result.x, strict=True)}


def _ape(kind: str, rows: pd.DataFrame, record: Mapping[str, Any]) -> np.ndarray:
    with curves_overridden(record):
        return np.abs(PREDICT[kind](rows) / (rows["latency_us"].to_numpy() * 1e-6) - 1)


def _stats(ape: np.ndarray) -> dict[str, Any]:
    return {
        "rows": int(len(ape)),
        "median_ape": round(float(np.median(ape)), 4),
        "p90_ape": round(float(np.quantile(ape, 0.9)), 4),
    }


def _curve_groups() -> list[tuple[str, str, str | None, pd.DataFrame]]:
    """Every curve to fit: (kind, architecture or link, format or None, its rows)."""
    groups = []
    for kind, name in (("gemm", "gemm"), ("attention_prefill", "attention_prefill")):
        frame = load_kernels(name)
        if kind == "gemm":
            frame = frame.loc[frame["n"] * frame["k"] >= MIN_GEMM_WEIGHTS]
        for arch, entry in architectures().items():
            mine = frame.loc[frame["device"].isin(entry["measured"])]
            # FP16 and BF16 kernels run the same matrix cores at the same rate: one 16-bit curve
            for fmt, rows in mine.groupby(mine["dtype"].map(FORMAT_CURVE)):
                groups.append((kind, arch, str(fmt), rows.reset_index(drop=True)))
    decode = load_kernels("attention_decode")
    decode = decode.loc[decode_kv_bytes(decode) >= MIN_DECODE_KV_BYTES]
    for arch, entry in architectures().items():
        mine = decode.loc[decode["device"].isin(entry["measured"])]
        for (engine, dtype), rows in mine.groupby(["engine", "kv_dtype"]):
            key = decode_key(str(engine), _quant(str(dtype)).attention_format)
            groups.append(("attention_decode", arch, key, rows.reset_index(drop=True)))
    allreduce = load_kernels("allreduce")
    arches = allreduce["device"].map(lambda d: architecture(d) or "")
    for link, rows in allreduce.groupby(allreduce_links(allreduce)):
        groups.append(("allreduce", str(link), None, rows.reset_index(drop=True)))
        mine = arches[rows.index]
        # each architecture its own curve where every row's device has one and they span several
        # (NVLink: each GPU generation's own link and latency); a link measured on devices outside
        # the measured architectures (PCIe between RTX 4090s) keeps one curve for the host
        if mine.nunique() > 1 and (mine != "").all():
            for arch, arch_rows in rows.groupby(mine):
                groups.append(("allreduce", f"{link}/{arch}", None, arch_rows.reset_index(drop=True)))
    return groups


def allreduce_links(rows: pd.DataFrame) -> pd.Series:
    """The link type each all-reduce row ran over: its device's scale-up fabric (NVLink,
    Infinity Fabric), as the cost model picks it (``Placement.collective_link``)."""
    return rows["device"].map(lambda d: Placement().collective_link(catalog()[d]).name)


def fit_all(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit every curve; return the record (values and errors) without writing it."""
    say = progress or (lambda _msg: None)
    record: dict[str, Any] = {"gemm": {}, "attention_prefill": {}, "attention_decode": {}, "allreduce": {}}
    errors: dict[str, Any] = {"gemm": {}, "attention_prefill": {}, "attention_decode": {}, "allreduce": {}}
    for kind, group, key, rows in _curve_groups():
        say(f"fitting {kind} {group} {key or ''} on {len(rows)} kernels")
        values = fit_curve(kind, group, key, rows)
        one = _record(kind, group, key, values)
        err = {"in_sample": _stats(_ape(kind, rows, one))}
        devices = sorted(rows["device"].unique())
        if kind != "allreduce" and len(devices) > 1:
            held = np.concatenate(
                [
                    _ape(
                        kind,
                        rows.loc[rows["device"] == d],
                        _record(kind, group, key, fit_curve(kind, group, key, rows.loc[rows["device"] != d])),
                    )
                    for d in devices
                ]
            )
            err["held_out_device"] = _stats(held)
        if key is None:
            record[kind][group] = values
            errors[kind][group] = err
        else:
            record[kind].setdefault(group, {})[key] = values
            errors[kind].setdefault(group, {})[key] = err
    speedups = format_speedups(record["gemm"])
    record["format_speedup"] = {f: round(float(np.median(list(v.values()))), 4) for f, v in speedups.items()}
    errors["format_speedup_by_architecture"] = speedups
    with curves_overridden(record):
        vidur = load_kernels("gemm_vidur")
        errors["vidur_check"] = _stats(
            np.abs(predict_gemm(vidur) / (vidur["latency_us"].to_numpy() * 1e-6) - 1)
        )
        errors["trtllm_moe_check"] = _stats(trtllm_moe_errors())
    return {**record, "errors": errors}


def format_speedups(gemm: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Large-GEMM speed of each narrow format over BF16 on the same chip, ``e_max * peak`` over
    ``e_max(bf16) * peak(bf16)``, per architecture that measured both: ``{format: {arch: ratio}}``."""
    out: dict[str, dict[str, float]] = {}
    for arch, formats in gemm.items():
        device = catalog()[architectures()[arch]["measured"][0]]
        if "bf16" not in formats:
            continue
        bf16_rate = formats["bf16"]["e_max"] * device.peak("bf16")
        for fmt, values in formats.items():
            if fmt != "bf16":
                out.setdefault(fmt, {})[arch] = round(values["e_max"] * device.peak(fmt) / bf16_rate, 4)
    return out


def calibrate_kernels(progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit every curve and write ``gpu_kernels_fitted.yaml``; return what was written."""
    fit = fit_all(progress)
    content = {
        "schema_version": 1,
        "fitted_on": (
            "hwmodels/calibration/kernels/: TensorRT-LLM GEMMs with 4096^2+ weights (gemm.csv), context attention "
            "(attention_prefill.csv), TensorRT-LLM's, vLLM's and SGLang's decode attention over 128 MB+ of KV "
            "cache (attention_decode.csv) and custom all-reduce (allreduce.csv) from ai-dynamo/aiconfigurator, MI300X FP8 "
            "GEMMs from ROCm/aiter's tuned table, RCCL all-reduce from AMD's rccl-tests run and NCCL all-reduce over "
            "PCIe from public nccl-tests runs on RTX 4090s and aiconfigurator's on two L40S; least squares on "
            "log(predicted/measured) per architecture and format (gpu_kernels.yaml), the all-reduce per link type "
            "over every device that measured it; checked on Vidur's FP16 projections (gemm_vidur.csv) and "
            "TensorRT-LLM's fused MoE from aiconfigurator (moe_trtllm.csv)"
        ),
        "fitted_at": datetime.date.today().isoformat(),
        **fit,
    }
    fitted_curves_path().write_text(yaml.safe_dump(content, sort_keys=False, width=120))
    reload()
    return content


def curve_frames() -> dict[tuple[str, str], pd.DataFrame]:
    """Measured kernels beside the fitted curves' predictions, per (kind, architecture or link),
    for the report's charts: columns ``panel`` (format, or GPUs of an all-reduce), ``x``
    (token rows, mean keys, message bytes), ``series`` (shape or device), ``measured``, ``predicted``
    (achieved fraction of peak for GEMM and attention; microseconds for all-reduce)."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    if not fitted_curves():
        return out
    gemm = load_kernels("gemm")
    gemm = gemm.loc[(gemm["n"] == gemm["k"]) & (gemm["n"] * gemm["k"] >= MIN_GEMM_WEIGHTS)].reset_index(
        drop=True
    )
    att = load_kernels("attention_prefill")
    att = att.loc[(att["batch"] == 4) & (att["heads"] == 32)].reset_index(drop=True)
    for arch, entry in architectures().items():
        for kind, rows, predict in (
            ("gemm", gemm, predict_gemm),
            ("attention_prefill", att, predict_attention),
        ):
            mine = rows.loc[rows["device"].isin(entry["measured"])].reset_index(drop=True)
            if mine.empty:
                continue
            flops = _flops(kind, mine)
            peak = np.array(
                [
                    catalog()[d].peak(_quant(f).compute_format)
                    for d, f in zip(mine["device"], mine["dtype"], strict=True)
                ]
            )
            predicted = predict(mine)
            out[(kind, arch)] = pd.DataFrame(
                {
                    "panel": mine["dtype"],
                    "x": mine["m"] if kind == "gemm" else (mine["isl"] + 1) / 2,
                    "series": (
                        mine["device"] + " N=K=" + mine["n"].astype(str) if kind == "gemm" else mine["device"]
                    ),
                    "measured": flops / (mine["latency_us"] * 1e-6) / peak,
                    "predicted": flops / predicted / peak,
                }
            )
    out.update(_decode_frames())
    out.update(_fused_moe_frames())
    out.update(trtllm_moe_frames())
    out.update(awq_frames())
    out.update(block_fp8_device_frames())
    out.update(mla_prefill_frames())
    out.update(_sustained_frames())
    allreduce = load_kernels("allreduce")
    for link, ar in allreduce.groupby(allreduce_links(allreduce)):
        ar = ar.reset_index(drop=True)
        out[("allreduce", str(link))] = pd.DataFrame(
            {
                "panel": ar["n_gpus"].astype(str) + " GPUs",
                "x": ar["message_bytes"],
                "series": ar["device"],
                "measured": ar["latency_us"],
                "predicted": predict_allreduce(ar) * 1e6,
            }
        )
    return out


DECODE_CHART = {"heads": 64, "kv_heads": 8, "batch": (16, 64, 256, 1024)}
"""The decode attentions the report charts: Llama-70B's heads on one device, four batches."""


def _decode_frames() -> dict[tuple[str, str], pd.DataFrame]:
    """Fitted decode attentions (``MIN_DECODE_KV_BYTES`` and up) of the charted shape, per
    architecture: achieved fraction of the memory bandwidth against the context, one panel per
    engine and format."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    rows = load_kernels("attention_decode")
    rows = rows.loc[
        (rows["heads"] == DECODE_CHART["heads"])
        & (rows["kv_heads"] == DECODE_CHART["kv_heads"])
        & rows["batch"].isin(DECODE_CHART["batch"])
        & (decode_kv_bytes(rows) >= MIN_DECODE_KV_BYTES)
    ]
    for arch, entry in architectures().items():
        mine = rows.loc[rows["device"].isin(entry["measured"])].reset_index(drop=True)
        if mine.empty:
            continue
        moved = decode_kv_bytes(mine) / np.array([catalog()[d].memory.bw_bytes_per_s for d in mine["device"]])
        out[("attention_decode", arch)] = pd.DataFrame(
            {
                "panel": [
                    decode_key(e, _quant(f).attention_format)
                    for e, f in zip(mine["engine"], mine["kv_dtype"], strict=True)
                ],
                "x": mine["context"],
                "series": mine["device"] + " batch " + mine["batch"].astype(str),
                "measured": moved / (mine["latency_us"] * 1e-6),
                "predicted": moved / predict_decode_attention(mine),
            }
        )
    return out


FUSED_MOE = {"model": "deepseek-v3", "tp": 8, "framework": "vllm-v0"}
"""The fused MoE timings of ``block_fp8.csv``: DeepSeek-V3's routed experts at TP 8 in vLLM V0."""


def predict_fused_moe(tokens: Any, device: str, framework: str = FUSED_MOE["framework"]) -> np.ndarray:
    """hwsim's time of one layer's routed experts (``experts_up`` and ``experts_down``, their fixed
    time per call included) for each count of ``tokens`` routed through DeepSeek-V3's fused MoE at
    TP 8 on ``device`` under ``framework``, s: what ``block_fp8.csv``'s fused-MoE rows timed."""
    return routed_experts_s(
        FUSED_MOE["model"], "fp8", device, FUSED_MOE["tp"], tokens, framework, MOE_EXPERT_GEMMS
    )


def _fused_moe_frames() -> dict[tuple[str, str], pd.DataFrame]:
    """The timed fused MoE of early block-FP8 engines beside hwsim's ``block_fp8`` pricing and the
    class's (vLLM V1, without those terms): microseconds a layer against the tokens routed."""
    rows = load_kernels("block_fp8")
    moe = rows.loc[rows["kernel"] == "fused_moe"].reset_index(drop=True)
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for device, mine in moe.groupby("device"):
        frames = [
            pd.DataFrame(
                {
                    "panel": f"{FUSED_MOE['model']}, TP {FUSED_MOE['tp']}",
                    "x": mine["tokens"],
                    "series": f"{device}, priced as {label}",
                    "measured": mine["latency_us"] if framework == FUSED_MOE["framework"] else np.nan,
                    "predicted": predict_fused_moe(mine["tokens"], str(device), framework) * 1e6,
                }
            )  # the timings dotted once, beside both pricings
            for label, framework in (
                ("vllm-v0 (block_fp8)", FUSED_MOE["framework"]),
                ("vllm (class)", "vllm"),
            )
        ]
        out[("fused_moe", f"{device} block-FP8")] = pd.concat(frames, ignore_index=True)
    return out


GEMM_POWER = ("h200_gemm_power",)
"""hwsim's own burst and sustained GEMM timings (``kernels/README.md``, [hwsim-h200])."""


def _sustained_frames() -> dict[tuple[str, str], pd.DataFrame]:
    """GEMMs timed in a burst and sustained for 2 s beside hwsim's pricing of each: the kernel
    curve alone, and bounded by the device's sustained rate (``DeviceSpec.sustained_rate``);
    TFLOP/s against GFLOP per call."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for name in GEMM_POWER:
        rows = load_kernels(name)
        shape = rows["case"].str.extract(r"^(?P<dtype>bf16|fp8) (?P<m>\d+)x(?P<n>\d+)x(?P<k>\d+)$")
        gemm = pd.concat([rows, shape], axis=1).dropna(subset=["m"]).astype({"m": int, "n": int, "k": int})
        for device, mine in gemm.groupby("device"):
            mine = mine.reset_index(drop=True)
            out[("gemm_power", str(device))] = pd.concat(
                [
                    pd.DataFrame(
                        {
                            "panel": mine["dtype"],
                            "x": mine["flops"] / 1e9,
                            "series": label,
                            "measured": mine["flops"] / (mine[column] * 1e-6) / 1e12,
                            "predicted": mine["flops"] / predict_gemm(mine, sustained=sustained) / 1e12,
                        }
                    )
                    for label, column, sustained in (
                        ("burst of 10 calls; curve alone", "burst_us", False),
                        ("sustained 2 s; curve and sustained rate", "sustained_us", True),
                    )
                ],
                ignore_index=True,
            )
    return out


def _flops(kind: str, rows: pd.DataFrame) -> np.ndarray:
    if kind == "gemm":
        return 2.0 * rows["m"] * rows["n"] * rows["k"]
    T = rows["isl"]
    return 2.0 * rows["batch"] * rows["heads"] * T * (T + 1) / 2 * 2 * rows["head_dim"]
