"""Step-3 (StepFun, arXiv 2507.19427): attention-FFN disaggregation (AFD) for cheap decoding.

Two parts, each against the paper's own numbers:

- **The decode cost model** (Sec. 4.2, Tables 2-6): per token, attention costs
  ``max(FLOP_attn x U_FLOP, Byte_KV x U_byte) + FLOP_linear x U_FLOP`` and the FFN
  ``FLOP_FFN x U_FLOP``, with ``U = ($/h / 3600) / (peak FLOP/s or bytes/s)`` at full
  utilization; AFD puts each part on its cheapest device. The FLOPs and KV bytes per token
  come from hwsim's op graph of each model (MLA absorbed in decode, Step-3's MFA, Qwen3's
  GQA), the peaks and bandwidths from the catalog, the prices from the paper's Table 4 (its
  own basis: $/h per accelerator, the only basis of this comparison).
- **The deployment** (Sec. 7.3, Table 8): Step-3 on 2 attention + 2 FFN instances of 8 Hopper
  GPUs each ("2A2F"), 3 micro-batches of 2,048 sequences at 4K context, FP8 attention and
  GEMMs: the split step played on hwsim's H800 cost model and the event engine; tokens per
  second per GPU against the paper's 4,039.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.device_spec import load_device
from hwmodels.split import StageDurations, action_counts, bottleneck, step_time_s
from roofline.estimate import estimate
from sim.experiments import comparison
from sim.split_pipeline import play_split_step
from workloads.graph import OpTable, build_ops
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant

SOURCE = "Step-3 system report, arXiv 2507.19427, Tables 2-8 (Sec. 4.2, 7.3)"
PAPER_SETUP = [
    ("models", "DeepSeek-V3 (MLA), Qwen3-235B-A22B (GQA), Step-3 (MFA)", "same presets", "Tables 2, 3"),
    ("precision", "8-bit weights and KV; FP8 FLOPs on H800/H20, BF16 on A800/910B", "same", "Sec. 4.2"),
    (
        "devices",
        "H800, H20, A800, Ascend 910B at $2.00, $0.80, $0.75, $0.67 an hour (910B estimated)",
        "catalog peaks and bandwidths; the paper's prices",
        "Tables 4, 5",
    ),
    (
        "utilization",
        "100% of peak FLOP/s and memory bandwidth (theoretical)",
        "same (cost model part)",
        "Sec. 4.2",
    ),
    ("contexts", "8K and 32K", "same", "Table 6"),
    (
        "deployment",
        "2A2F: 2 attention + 2 FFN instances x 8 Hopper GPUs, 3 micro-batches x 2,048, 4K context, FP8, "
        "TPOT SLA 50 ms, no MTP",
        "H800 (the paper says 'latest Hopper GPUs'), same split, hwsim's cost model",
        "Sec. 7.3, Table 8",
    ),
    (
        "network",
        "8 x 400 Gb/s per node; 3 H B bytes per token per layer (FP8 out, BF16 back)",
        "same",
        "Sec. 5.4",
    ),
    ("price basis", "the paper's $/h per accelerator", "same, for every $ figure here", "Table 4"),
]
"""The paper's setup beside hwsim's, with sources (docs/paper-setups.md)."""
MISS_CAUSES: dict[str, str] = {}
"""One-line cause of each headline that misses its tolerance (``hwsim reproduce``)."""

PAPER_PRICES_PER_HOUR = {"h800": 2.00, "h20": 0.80, "a800": 0.75, "ascend-910b": 0.67}
"""$/h per accelerator, the paper's Table 4 (910B: A800's price scaled by FLOPs, the paper's estimate)."""
COMPUTE_FORMAT = {"h800": "fp8", "h20": "fp8", "a800": "bf16", "ascend-910b": "bf16"}
"""The FLOP rate each device is priced at (Sec. 4.2: FP8 where the hardware has it, else BF16)."""
MODELS = {"deepseek-v3": "dsv3", "qwen3-235b-a22b": "qwen3moe", "step-3": "step3"}
"""The paper's models and the short names of their headline metrics."""
CONTEXTS = (8192, 32768)
PAPER_BEST_USD_PER_M = {
    ("step-3", 8192): 0.055,
    ("deepseek-v3", 8192): 0.068,
    ("qwen3-235b-a22b", 8192): 0.062,
    ("step-3", 32768): 0.129,
    ("deepseek-v3", 32768): 0.211,
    ("qwen3-235b-a22b", 32768): 0.193,
}
"""Cheapest decode cost, USD per 1M tokens, the paper's Sec. 4.2 Observation 1 (from Table 6)."""
PAPER_PER_TOKEN_8K = {
    "deepseek-v3": (2.88e8, 1.47e11, 2.28e10, 4.84e10),
    "qwen3-235b-a22b": (7.89e8, 2.52e10, 1.34e10, 2.84e10),
    "step-3": (2.56e8, 3.27e10, 2.07e10, 5.33e10),
}
"""(KV bytes, attention FLOPs, linear FLOPs, FFN FLOPs) per token at 8K context, Tables 2 and 3."""

FFN_PREFIXES = ("ffn", "experts", "shared_expert", "router", "all_to_all")
HEAD_OPS = ("embedding", "final_norm", "lm_head")


@dataclass(frozen=True)
class PerToken:
    """Decode work of one token: KV bytes read, attention FLOPs, attention-side linear FLOPs, FFN FLOPs."""

    kv_bytes: float
    attn_flops: float
    linear_flops: float
    ffn_flops: float


def _parts(ops: OpTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of the attention op, the attention side's GEMMs and the FFN side's ops."""
    names = np.asarray(ops.name)
    ffn = np.array([n.startswith(FFN_PREFIXES) for n in names])
    head = np.isin(names, HEAD_OPS)
    return np.asarray(ops.kind) == "attention", (np.asarray(ops.kind) == "gemm") & ~ffn & ~head, ffn


def per_token(spec: ModelSpec, context: int) -> PerToken:
    """hwsim's op-graph count of one decode token at ``context`` (8-bit weights and KV)."""
    ops = build_ops(spec, Quant.from_name("fp8"), phase="decode", batch=1, context=context)
    att, lin, ffn = _parts(ops)

    def total(mask: np.ndarray, column: str) -> float:
        return float((getattr(ops, column).reshape(len(ops.name), -1)[:, 0] * ops.count)[mask].sum())

    return PerToken(
        total(att, "kv_read_bytes"), total(att, "flops"), total(lin, "flops"), total(ffn, "flops")
    )


def unit_costs(device: str) -> tuple[float, float]:
    """(USD per FLOP, USD per byte) at full utilization: the paper's U_FLOP and U_byte."""
    dev = load_device(device)
    usd_per_s = PAPER_PRICES_PER_HOUR[device] / 3600.0
    return usd_per_s / dev.peak(COMPUTE_FORMAT[device]), usd_per_s / dev.memory.bw_bytes_per_s


def cost_table() -> pd.DataFrame:
    """USD per 1M tokens of each part on each device, per model and context (the paper's Table 6)."""
    rows = []
    for model in MODELS:
        spec = load_model(model)
        for context in CONTEXTS:
            w = per_token(spec, context)
            for device in PAPER_PRICES_PER_HOUR:
                u_flop, u_byte = unit_costs(device)
                attention = max(w.attn_flops * u_flop, w.kv_bytes * u_byte) + w.linear_flops * u_flop
                rows.append(
                    {
                        "model": model,
                        "context": context,
                        "device": device,
                        "attention_usd_per_m": attention * 1e6,
                        "ffn_usd_per_m": w.ffn_flops * u_flop * 1e6,
                    }
                )
    return pd.DataFrame(rows)


def best_deployments() -> pd.DataFrame:
    """Per model and context: the cheapest attention device plus the cheapest FFN device (AFD)."""
    table = cost_table()
    rows = []
    for (model, context), part in table.groupby(["model", "context"], sort=False):
        a = part.loc[part["attention_usd_per_m"].idxmin()]
        f = part.loc[part["ffn_usd_per_m"].idxmin()]
        rows.append(
            {
                "model": model,
                "context": context,
                "attention_on": a["device"],
                "ffn_on": f["device"],
                "usd_per_m": a["attention_usd_per_m"] + f["ffn_usd_per_m"],
            }
        )
    return pd.DataFrame(rows)


# ----- the 2A2F deployment -------------------------------------------------------------------
DEPLOY_DEVICE = "h800"
DEPLOY_GPUS_PER_POOL = 16
"""2 instances x 8 GPUs on each side (Table 8, 2A2F)."""
DEPLOY_MICRO, DEPLOY_MICRO_BATCH, DEPLOY_CONTEXT = 3, 2048, 4096
NIC_BYTES_PER_S = 400e9 / 8
"""One 400 Gb/s NIC per GPU (Sec. 5.4: 8 x 400 Gb/s per node)."""
NETWORK_LATENCY_S = 10e-6
"""(est.) one RDMA transfer's fixed cost per layer and direction (StepMesh over RoCE; not stated)."""
DSV3_GPUS, DSV3_BATCH_PER_GPU, DSV3_CONTEXT = 128, 128, 4096
"""DeepSeek's decode profile: EP128, TP1, 4K prompts, 128 requests per GPU (deepseek-ai/profile-data README)."""
PAPER_DSV3_TGS = 2324.0
"""Tokens/s per GPU the Step-3 report takes from DeepSeek's profile data (Table 8)."""
PAPER_TGS = 4039.0
"""Peak-minute tokens/s per GPU of Step-3 2A2F with FP8 attention (Table 8; 3,910 long-term average)."""


def _time_on(device, ops: OpTable, mask: np.ndarray) -> float:
    cost = registry.get(device.arch).estimate(ops, device)
    return float(cost.time_s.reshape(len(ops.name), -1)[:, 0][mask].sum())


def deployment_stages(
    model: str = "step-3", nic_bytes_per_s: float = NIC_BYTES_PER_S, latency_s: float = NETWORK_LATENCY_S
) -> StageDurations:
    """Per-layer seconds of one micro-batch: attention on one GPU of the attention pool (its share of
    the micro-batch's sequences, data parallel), the experts and shared expert on one GPU of the FFN
    pool (experts spread over the pool), and the activations over each GPU's NIC."""
    spec, quant, dev = load_model(model), Quant.from_name("fp8"), load_device(DEPLOY_DEVICE)
    per_gpu = DEPLOY_MICRO_BATCH // DEPLOY_GPUS_PER_POOL
    att_ops = build_ops(spec, quant, phase="decode", batch=per_gpu, context=DEPLOY_CONTEXT)
    att, lin, _ = _parts(att_ops)
    norms = np.isin(np.asarray(att_ops.name), ("attn_norm", "rope", "q_norm"))
    a_s = _time_on(dev, att_ops, att | lin | norms) / spec.n_layers
    # experts: the whole micro-batch routed over the pool; shared expert and dense FFN: a GPU's share
    moe_ops = build_ops(
        spec, quant, phase="decode", batch=DEPLOY_MICRO_BATCH, context=0, ep=DEPLOY_GPUS_PER_POOL
    )
    routed = np.array([n.startswith(("experts", "router")) for n in moe_ops.name])
    share_ops = build_ops(spec, quant, phase="decode", batch=per_gpu, context=0)
    shared = np.array([n.startswith(("shared_expert", "ffn")) for n in share_ops.name])
    b_s = (_time_on(dev, moe_ops, routed) + _time_on(dev, share_ops, shared)) / spec.n_layers
    # 3 H B bytes per layer and micro-batch (FP8 out, BF16 back), over the pool's NICs
    out_bytes = spec.hidden_size * DEPLOY_MICRO_BATCH * 1.0
    ab = out_bytes / (DEPLOY_GPUS_PER_POOL * nic_bytes_per_s) + latency_s
    ba = 2 * out_bytes / (DEPLOY_GPUS_PER_POOL * nic_bytes_per_s) + latency_s
    return StageDurations(a_s=np.asarray(a_s), ab_s=np.asarray(ab), b_s=np.asarray(b_s), ba_s=np.asarray(ba))


def deployment(model: str = "step-3", **network) -> dict[str, float | str]:
    """TPOT and tokens/s per GPU of the 2A2F deployment, closed form and on the event engine
    (``network``: ``nic_bytes_per_s``, ``latency_s`` of ``deployment_stages``)."""
    spec = load_model(model)
    d = deployment_stages(model, **network)
    counts = action_counts(spec.n_layers, DEPLOY_MICRO, 0.0, 0.0)
    closed = float(step_time_s(counts, d))
    played = play_split_step(d, spec.n_layers, DEPLOY_MICRO, record=False).makespan_s
    gpus = 2 * DEPLOY_GPUS_PER_POOL
    tokens = DEPLOY_MICRO * DEPLOY_MICRO_BATCH
    return {
        "tpot_s": played,
        "tpot_closed_s": closed,
        "tokens_per_s_per_gpu": tokens / played / gpus,
        "attention_ms_per_layer": float(d.a_s) * 1e3,
        "ffn_ms_per_layer": float(d.b_s) * 1e3,
        "bound_by": str(bottleneck(counts, d)),
    }


SENSITIVITY = {
    "nic_bytes_per_s": (40e9, NIC_BYTES_PER_S),
    "latency_s": (5e-6, 30e-6),
}
"""Each assumed network parameter's plausible range: DeepEP's measured 40 GB/s per NIC (the paper,
Sec. 5.4) up to the 400 Gb/s line rate; one transfer's fixed cost from 5 to 30 us (est.)."""


def sensitivity() -> pd.DataFrame:
    """The 2A2F tokens/s per GPU at each end of each assumed network parameter."""
    base = deployment()["tokens_per_s_per_gpu"]
    rows = []
    for param, ends in SENSITIVITY.items():
        for end, value in zip(("low", "high"), ends, strict=True):
            rows.append(
                {
                    "parameter": param,
                    "end": end,
                    "value": value,
                    "metric": "step3_2a2f_tokens_per_s_per_gpu",
                    "hwsim": deployment(**{param: value})["tokens_per_s_per_gpu"],
                    "baseline": base,
                }
            )
    return pd.DataFrame(rows)


def run() -> pd.DataFrame:
    """The headlines beside the paper's: the hwsim-counted work per token, the cheapest decode
    deployments, and the 2A2F deployment's tokens/s per GPU."""
    rows = []
    for model, (kv, attn, _linear, _ffn) in PAPER_PER_TOKEN_8K.items():
        w = per_token(load_model(model), 8192)
        name = MODELS[model]
        rows.append((f"{name}_kv_bytes_per_token_8k", f"{model}, 8-bit KV (Table 2)", kv, w.kv_bytes))
        rows.append((f"{name}_attn_flops_per_token_8k", f"{model} (Table 2)", attn, w.attn_flops))
    best = best_deployments()
    for r in best.itertuples():
        rows.append(
            (
                f"{MODELS[r.model]}_decode_usd_per_m_tokens_{r.context // 1024}k",
                f"attention on {r.attention_on}, FFN on {r.ffn_on}, full utilization, the paper's prices",
                PAPER_BEST_USD_PER_M[(r.model, r.context)],
                r.usd_per_m,
            )
        )
    dep = deployment()
    rows.append(
        (
            "step3_2a2f_tokens_per_s_per_gpu",
            f"32 x {DEPLOY_DEVICE}, 3 x 2,048 sequences at 4K, FP8; hwsim TPOT {dep['tpot_s'] * 1e3:.1f} ms, "
            f"bound by pool {dep['bound_by']}",
            PAPER_TGS,
            dep["tokens_per_s_per_gpu"],
        )
    )
    ds = estimate(
        "deepseek-v3",
        DEPLOY_DEVICE,
        batch=DSV3_GPUS * DSV3_BATCH_PER_GPU,
        input_len=DSV3_CONTEXT,
        output_len=2,
        ep=DSV3_GPUS,
        attention_dp=True,
        precision="fp8",
        link="network",
    )
    rows.append(
        (
            "dsv3_ep128_tokens_per_s_per_gpu",
            f"DeepSeek-V3 on {DSV3_GPUS} x {DEPLOY_DEVICE}, EP{DSV3_GPUS} attention DP, {DSV3_BATCH_PER_GPU} requests "
            f"per GPU at 4K, FP8; hwsim TPOT {float(ds.tpot_s) * 1e3:.1f} ms",
            PAPER_DSV3_TGS,
            float(ds.decode_tokens_per_s) / DSV3_GPUS,
        )
    )
    return comparison("step3", rows, SOURCE)
