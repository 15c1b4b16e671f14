"""Lamina (Chen et al., arXiv 2405.01814v2): decode attention offloaded to memory-optimized GPUs.

The paper's equal-cost comparison (v2 Sec. 6.1, Table 5): LLaMA3-70B on 2 H100 "model
workers" and 4 H20 "attention workers" (DOP (2, 4), $40.64/h at its prices) against vLLM on
4 H100 with tensor parallelism ($44.24/h), decode only, on four traces. In Lamina every layer's
attention runs on the H20 pool over the KV cache it holds (heads split across the H20s), the
rest of the layer on the H100s (tensor parallel), and the activations cross a 400 Gb/s RoCE
network every layer; two batches alternate so each pool works while the other does (rotational
staggered pipelining with one model replica). The step is ``hwmodels.split`` (pool A =
attention, pool B = the rest), its durations from hwsim's own GPU cost models; the batch is
what the H20 pool's memory holds at the trace's mean context; vLLM's batch is what its KV pool
holds, capped at its 256 sequences. The paper's per-trace throughputs are plotted, not
tabulated: its range (16.1% to 90.1% higher than vLLM over 3 models and 4 traces) and mean
batch ratio (2.39x) are the ground truth here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.device_spec import load_device
from hwmodels.engine_config import engine_for, kv_capacity
from hwmodels.placement import Placement
from hwmodels.split import StageDurations, action_counts, bottleneck, step_time_s
from roofline.estimate import estimate
from sim.experiments import comparison
from workloads.graph import build_ops, kv_cache_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant

SOURCE = "Lamina v2 (arXiv 2405.01814v2), Sec. 6.1, Tables 1, 3-5"
PAPER_SETUP = [
    (
        "model",
        "LLaMA-33B, LLaMA-65B, LLaMA3-70B, FP16",
        "LLaMA3-70B (llama-3.1-70b: the same shape)",
        "Table 3",
    ),
    (
        "Lamina",
        "DOP (1, 2) for 33B ($20.32/h), (2, 4) for 65B and 70B ($40.64/h): H100 model workers, H20 attention workers",
        "the same counts: h100-sxm (TP over the model workers) + h20 (heads split), two alternating batches",
        "Table 5; Sec. 4.2.2",
    ),
    (
        "baseline",
        "vLLM, 4 x H100 TP 4, prefill removed, $44.24/h",
        "vLLM engine defaults, 4 x h100-sxm",
        "Table 5",
    ),
    (
        "network",
        "400 Gb/s RoCE per GPU; FHBN stack: 33 us round trip",
        "50 GB/s per model GPU, 16.5 us a way",
        "Sec. 6, 6.3",
    ),
    (
        "traces",
        "Azure-Conv, Azure-Code, Kimi-Conv, Kimi-TA (mean prompt / output tokens)",
        "each trace's mean live context (prompt + half the output)",
        "Table 4",
    ),
    (
        "price basis",
        "cloud $/h: H100 $11.06 (Google Cloud), H20 $4.63 (estimated from system cost)",
        "the paper's, for every $ figure here",
        "Table 1",
    ),
    (
        "v1 claim",
        "1.48x-12.1x throughput per dollar (v1 abstract; its tables were not retrievable)",
        "not reproduced",
        "v1",
    ),
]
"""The paper's setup beside hwsim's, with sources (docs/paper-setups.md)."""
MISS_CAUSES = {
    "throughput_gain_vs_vllm_min": (
        "LLaMA3-70B on Azure-Conv: Lamina's two H100s are compute-bound at its batch (898 sequences, 1.08 ms a "
        "layer per batch of 449 at the H100's fitted GEMM efficiency, 42% of peak) while vLLM's four run 256 "
        "sequences in 35 ms steps; the H100 side would need 1.64x that speed for a 16% gain"
    ),
    "throughput_gain_vs_vllm_max": (
        "each of the two alternating batches reads all the weights on the H100s (LLaMA-33B: ~19 ms a batch on "
        "one H100), so the model side bounds every step; the largest gain is LLaMA-33B's 1.25x on Azure-Code"
    ),
}
"""One-line cause of each headline that misses its tolerance (``hwsim reproduce``)."""

MODELS = {"llama-30b": (1, 2, 2), "llama-65b": (2, 4, 4), "llama-3.1-70b": (2, 4, 4)}
"""Per model: H100 model workers, H20 attention workers, H100s of the vLLM baseline (Table 5)."""
COMPUTE, MEMORY = "h100-sxm", "h20"
PRICE_PER_HOUR = {"h100-sxm": 11.06, "h20": 4.63}
"""The paper's Table 1 prices (its one basis for this comparison)."""
TRACES = {
    "azure-conv": (1154.7, 211.1),
    "azure-code": (2047.8, 27.9),
    "kimi-conv": (12035.1, 342.6),
    "kimi-ta": (8560.0, 182.1),
}
"""Mean prompt and generated tokens of each trace (Table 4)."""
NIC_BYTES_PER_S = 400e9 / 8
NETWORK_ONE_WAY_S = 33.0e-6 / 2
"""Half of FHBN's measured small-message round trip on the 400 Gb/s RoCE network (Sec. 6.3, Fig. 13)."""
ATTENTION_MEMORY_FRACTION = 0.9
"""(est.) Share of an H20's memory its KV cache may use (the rest: the attention kernel's workspace
and the runtime), as vLLM's default gpu_memory_utilization."""
PAPER_GAIN_RANGE = (1.161, 1.901)
PAPER_BATCH_RATIO = 2.39


def _layer_time(device: str, ops, mask: np.ndarray, tp: int, n_layers: int) -> float:
    dev = load_device(device)
    cost = registry.get(dev.arch).estimate(ops, dev, Placement(tp=tp))
    return float(cost.time_s.reshape(len(ops.name), -1)[:, 0][mask].sum()) / n_layers


def lamina_point(model: str, context: float) -> dict[str, float | str]:
    """Lamina's decode throughput at one mean context: the largest two batches the H20 pool holds."""
    spec, quant = load_model(model), Quant.from_name("fp16")
    n_compute, n_memory, _ = MODELS[model]
    h20 = load_device(MEMORY)
    kv_pool = n_memory * ATTENTION_MEMORY_FRACTION * h20.memory.capacity_bytes
    per_seq = float(kv_cache_bytes(spec, quant, 1, context))
    batch = int(kv_pool // per_seq) // 2  # two alternating batches share the pool
    att_ops = build_ops(spec, quant, phase="decode", batch=batch, context=context, tp=n_memory)
    a_s = _layer_time(MEMORY, att_ops, np.asarray(att_ops.name) == "attention", 1, spec.n_layers)
    rest_ops = build_ops(spec, quant, phase="decode", batch=batch, context=context, tp=n_compute)
    rest = ~np.isin(np.asarray(rest_ops.name), ("attention", "embedding", "final_norm", "lm_head"))
    b_s = _layer_time(COMPUTE, rest_ops, rest, n_compute, spec.n_layers)
    head = _layer_time(COMPUTE, rest_ops, ~rest & (np.asarray(rest_ops.name) != "attention"), n_compute, 1)
    qkv = batch * (spec.n_heads + 2 * spec.n_kv_heads) * spec.head_dim * quant.act_bytes
    out = batch * spec.n_heads * spec.head_dim * quant.act_bytes
    d = StageDurations(
        a_s=np.asarray(a_s),
        ab_s=np.asarray(out / (n_compute * NIC_BYTES_PER_S) + NETWORK_ONE_WAY_S),
        b_s=np.asarray(b_s),
        ba_s=np.asarray(qkv / (n_compute * NIC_BYTES_PER_S) + NETWORK_ONE_WAY_S),
    )
    counts = action_counts(spec.n_layers, 2, out, qkv)
    step = float(step_time_s(counts, d)) + 2 * head
    return {
        "batch": 2 * batch,
        "tokens_per_s": 2 * batch / step,
        "tbt_s": step,
        "bound_by": str(bottleneck(counts, d)),
    }


def vllm_point(model: str, context: float) -> dict[str, float]:
    """vLLM on the baseline's H100s (TP): the batch its KV pool holds at the mean context, up to 256."""
    spec, quant = load_model(model), Quant.from_name("fp16")
    tp = MODELS[model][2]
    engine = engine_for("vllm")
    cap = kv_capacity(spec, quant, load_device(COMPUTE), engine, tp=tp)
    batch = int(min(engine.max_num_seqs, cap.tokens // context))
    e = estimate(model, COMPUTE, batch=batch, input_len=int(context), output_len=2, tp=tp, framework="vllm")
    return {"batch": batch, "tokens_per_s": float(e.decode_tokens_per_s), "tbt_s": float(e.tpot_s)}


def grid() -> pd.DataFrame:
    """Lamina against vLLM per model and trace, with throughput per dollar at the paper's prices."""
    rows = []
    for model, (n_compute, n_memory, n_baseline) in MODELS.items():
        lamina_usd = n_compute * PRICE_PER_HOUR[COMPUTE] + n_memory * PRICE_PER_HOUR[MEMORY]
        vllm_usd = n_baseline * PRICE_PER_HOUR[COMPUTE]
        for trace, (prompt, output) in TRACES.items():
            context = prompt + output / 2.0
            lam, base = lamina_point(model, context), vllm_point(model, context)
            rows.append(
                {
                    "model": model,
                    "trace": trace,
                    "context": context,
                    "lamina_batch": lam["batch"],
                    "vllm_batch": base["batch"],
                    "lamina_tokens_per_s": lam["tokens_per_s"],
                    "vllm_tokens_per_s": base["tokens_per_s"],
                    "lamina_tbt_s": lam["tbt_s"],
                    "vllm_tbt_s": base["tbt_s"],
                    "lamina_bound_by": lam["bound_by"],
                    "gain": lam["tokens_per_s"] / base["tokens_per_s"],
                    "gain_per_usd": (lam["tokens_per_s"] / lamina_usd) / (base["tokens_per_s"] / vllm_usd),
                }
            )
    return pd.DataFrame(rows)


def run() -> pd.DataFrame:
    """The headlines beside the paper's: the lowest and highest throughput gain over vLLM, and the
    mean batch ratio."""
    g = grid()
    traces = f"{len(MODELS)} models x {len(TRACES)} traces"
    rows = [
        (
            "throughput_gain_vs_vllm_min",
            f"lowest over {traces}",
            PAPER_GAIN_RANGE[0],
            float(g["gain"].min()),
        ),
        (
            "throughput_gain_vs_vllm_max",
            f"highest over {traces}",
            PAPER_GAIN_RANGE[1],
            float(g["gain"].max()),
        ),
        (
            "batch_ratio_vs_vllm",
            f"mean over {traces}",
            PAPER_BATCH_RATIO,
            float((g["lamina_batch"] / g["vllm_batch"]).mean()),
        ),
    ]
    return comparison("lamina", rows, SOURCE)
