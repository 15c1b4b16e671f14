"""mllm-NPU (Xu et al., ASPLOS 2025): chunked INT8 prefill on a phone NPU, outliers on the CPU,
out-of-order scheduling across NPU, CPU and GPU, against CPU-only and GPU-only prefill.

The phone is a Snapdragon 8 Gen 3 (``sd8g3-npu``, ``sd8g3-cpu``, ``sd8g3-gpu``: three
processors sharing one LPDDR5X). Per prompt chunk and layer the four linear layers are NPU
graphs (INT8), each shadowed by the CPU's float correction of the outlier channels; attention,
norms and activations run in float on the GPU. Every task occupies its processor for its
compute time and the shared LPDDR for its memory time (both must finish), so processors
contend for bandwidth. Three mechanisms, each of which ``ablation`` turns off:

- chunking: without it the prompt is one graph of its own length, built and optimized at
  run time (mllm-NPU's measured graph build and optimize costs, catalog ``npu`` block);
- shadow outliers: without it, linear layers whose inputs have outliers run in FP16 on the
  GPU (per-tensor INT8 alone loses accuracy); every layer is taken to have some;
- out-of-order: without it, the subgraphs run in program order (no overlap across
  processors beyond the shadow correction).

Assumptions (stated, fixed): outlier channels are ``OUTLIER_SHARE`` of each input's
channels; the models and prompt lengths below (the paper's exact grid was not retrieved).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.calibration.params import params_for
from hwmodels.device_spec import DeviceSpec, load_device
from hwmodels.npu import action_counts, graph_energy_j, graph_time_s, linear_shapes
from roofline.estimate import estimate
from sim import engine
from sim.engine import TaskGraph
from sim.experiments import comparison
from workloads.graph import build_ops, gemm_table
from workloads.model_spec import load_model
from workloads.quant import Quant

SOURCE = "mllm-NPU, arXiv 2407.05858 abstract"
PAPER_SETUP = [
    (
        "SoC",
        "Snapdragon 8 Gen 3 phone (NPU, CPU, GPU sharing LPDDR5X)",
        "sd8g3-npu, sd8g3-cpu, sd8g3-gpu",
        "mllm-NPU abstract",
    ),
    ("models", "Qwen1.5-1.8B, Gemma-2B, Llama-2-7B among others", "the same three", "mllm-NPU abstract"),
    ("prompts", "grid not retrieved", "64, 256, 512, 1024 tokens", "-"),
    ("chunk", "256-token static graphs", "256", "mllm-NPU slides"),
    (
        "baselines",
        "llama.cpp (CPU), TFLite and MLC (GPU) and others",
        "hwsim's CPU-only and Adreno GPU-only prefill",
        "mllm-NPU abstract",
    ),
    ("price basis", "none (speed and energy only)", "none", "-"),
]
"""The paper's setup beside hwsim's, with sources (the paper's tables were not retrievable)."""
MISS_CAUSES = {
    "qwen1.5-1.8b_prefill_tokens_per_s": (
        "hwsim's NPU runs W8A8 at the INT8 rate calibrated on Qualcomm AI Hub's QNN exports; mllm-NPU's own "
        "graphs imply ~2.4 TOPS end to end, an efficiency hwsim cannot derive"
    ),
    "prefill_speedup_vs_best_baseline": (
        "the best baseline here is the Adreno GPU at the integrated-GPU class efficiency (1,439 tok/s at 1,024 "
        "tokens), far faster than the TFLite/MLC prefill the paper measured; no measured phone prefill row "
        "calibrates it"
    ),
    "energy_saving_vs_best_baseline": "the same fast Adreno baseline as the speedup (joules follow its time)",
}
"""One-line cause of each headline that misses its tolerance (``hwsim reproduce``)."""
NPU, CPU, GPU = "sd8g3-npu", "sd8g3-cpu", "sd8g3-gpu"
MODELS = ("qwen1.5-1.8b", "gemma-2b", "llama-2-7b")
PROMPTS = (64, 256, 512, 1024)
OUTLIER_SHARE = 0.0015
"""(est.) Share of activation channels with outliers: LLM.int8 (Dettmers et al., 2022) finds
systematic outliers in about 6 of 4096 hidden dimensions (0.15%)."""
LINEAR_OPS = {"qkv_proj": "qkv_proj", "o_proj": "o_proj", "ffn_up": "ffn_up", "ffn_down": "ffn_down"}


@dataclass(frozen=True)
class Mechanisms:
    chunking: bool = True
    shadow_outliers: bool = True
    out_of_order: bool = True


def _op_cost(device: DeviceSpec, ops) -> tuple[float, float, float]:
    """(compute-or-occupancy seconds, memory seconds, dynamic joules) of an op table on a device."""
    cost = registry.get(device.arch).estimate(ops, device)
    busy = float((np.maximum(cost.compute_s, 0.0) + cost.overhead_s + cost.link_s).reshape(-1) @ cost.count)
    mem = float(cost.memory_s.reshape(-1) @ cost.count)
    return busy, mem, float(cost.dynamic_energy_j.sum())


def prefill(model: str, prompt: int, mech: Mechanisms = Mechanisms()) -> dict[str, float]:
    """mllm-NPU prefill of one prompt on the event engine: seconds and joules."""
    spec = load_model(model)
    npu, cpu, gpu = load_device(NPU), load_device(CPU), load_device(GPU)
    fp16, fp32 = Quant.from_name("fp16"), Quant.from_name("fp32")
    chunk = int(npu.extra["npu"]["chunk_tokens"]) if mech.chunking else prompt
    n_chunks = -(-prompt // chunk)
    shapes = linear_shapes(spec)
    linear_cost = {}
    for name, (k, n) in shapes.items():
        if mech.shadow_outliers:
            a = action_counts(chunk, k, n)
            linear_cost[name] = ("npu", (*graph_time_s(a, npu), graph_energy_j(a, npu)))
        else:
            linear_cost[name] = (
                "gpu",
                _op_cost(gpu, gemm_table(float(chunk), float(n), float(k), fp16, name)),
            )
        outlier_k = max(1.0, round(OUTLIER_SHARE * k))
        linear_cost[name + "/outliers"] = (
            "cpu",
            _op_cost(cpu, gemm_table(float(chunk), float(n), outlier_k, fp32)),
        )
    g = TaskGraph()
    energy = 0.0
    build = 0.0
    if not mech.chunking:
        b = npu.extra["npu"]
        build = (b["graph_build_ms"] + b["graph_optimize_ms"]) * 1e-3
        g.add("graph_build", "cpu", build)
    prev_program: list[int] = [0] if not mech.chunking else []
    kv_ready: dict[int, list[int]] = {}
    layer_out: dict[int, int] = {}

    def op(name: str, unit: str, cost: tuple[float, float, float], deps: list[int]) -> int:
        nonlocal energy
        if not mech.out_of_order and prev_program:
            deps = deps + [prev_program[-1]]
        busy = g.add(name, unit, cost[0], deps)
        mem = g.add(name + "/mem", "lpddr", cost[1], deps)
        done = g.add(name + "/done", unit + "_join", 0.0, [busy, mem])
        energy += cost[2]
        prev_program.append(done)
        return done

    for c in range(n_chunks):
        ctx = c * chunk
        rest_ops = build_ops(spec, fp16, phase="prefill", batch=1, tokens=chunk, context=ctx)
        keep = ~np.isin(rest_ops.name, tuple(LINEAR_OPS) + ("embedding", "lm_head", "final_norm"))
        gpu_rest = _op_cost(gpu, rest_ops.select(keep))
        per_layer_rest = tuple(v / spec.n_layers for v in gpu_rest)
        for layer in range(spec.n_layers):
            prev = [layer_out[layer - 1]] if layer else ([prev_program[0]] if not mech.chunking else [])
            if c and layer == 0:
                prev = []
            deps = list(prev)
            outs = []
            for name in ("qkv_proj",):
                unit, cost = linear_cost[name]
                outs.append(op(f"c{c}/L{layer}/{name}", unit, cost, deps))
                if mech.shadow_outliers:
                    outs.append(
                        op(f"c{c}/L{layer}/{name}/outliers", "cpu", linear_cost[name + "/outliers"][1], deps)
                    )
            kv_ready.setdefault(layer, []).append(outs[0])
            att = op(f"c{c}/L{layer}/attention", "gpu", per_layer_rest, outs + kv_ready[layer][:-1])
            nxt = [att]
            for name in ("o_proj", "ffn_up", "ffn_down"):
                unit, cost = linear_cost[name]
                outs = [op(f"c{c}/L{layer}/{name}", unit, cost, nxt)]
                if mech.shadow_outliers:
                    outs.append(
                        op(f"c{c}/L{layer}/{name}/outliers", "cpu", linear_cost[name + "/outliers"][1], nxt)
                    )
                nxt = outs
            layer_out[layer] = g.add(f"c{c}/L{layer}/out", "join", 0.0, nxt)
    timeline = engine.run(g)
    t = timeline.makespan_s
    static = sum(
        d.tdp_w * params_for(d.arch, d.device_class)["static_power_fraction"].value for d in (npu, cpu, gpu)
    )
    return {
        "seconds": t,
        "tokens_per_s": prompt / t,
        "joules": energy + static * t,
        "graph_build_s": build,
        "utilization": timeline.utilization(),
        "timeline": timeline,
    }


def baseline(model: str, prompt: int, device: str, precision: str) -> dict[str, float]:
    """CPU-only or GPU-only prefill (the estimate's code path): seconds and joules."""
    e = estimate(model, device, batch=1, input_len=prompt, output_len=1, precision=precision)
    return {
        "seconds": float(e.ttft_s),
        "tokens_per_s": float(e.prefill_tokens_per_s),
        "joules": float(e.energy_j_per_token),
    }


def grid() -> pd.DataFrame:
    rows = []
    for model in MODELS:
        for prompt in PROMPTS:
            ours = prefill(model, prompt)
            cpu = baseline(model, prompt, CPU, "q4_0")
            gpu = baseline(model, prompt, GPU, "fp16")
            best = max(cpu["tokens_per_s"], gpu["tokens_per_s"])
            best_j = cpu["joules"] if cpu["tokens_per_s"] >= gpu["tokens_per_s"] else gpu["joules"]
            rows.append(
                {
                    "model": model,
                    "prompt": prompt,
                    "npu_tokens_per_s": ours["tokens_per_s"],
                    "cpu_tokens_per_s": cpu["tokens_per_s"],
                    "gpu_tokens_per_s": gpu["tokens_per_s"],
                    "speedup": ours["tokens_per_s"] / best,
                    "energy_saving": best_j / ours["joules"],
                }
            )
    return pd.DataFrame(rows)


def ablation(model: str = "qwen1.5-1.8b", prompt: int = 1024) -> pd.DataFrame:
    cases = {
        "all three": Mechanisms(),
        "no out-of-order": Mechanisms(out_of_order=False),
        "no shadow outliers": Mechanisms(shadow_outliers=False),
        "no chunking": Mechanisms(chunking=False),
    }
    return pd.DataFrame(
        [{"case": k, "tokens_per_s": prefill(model, prompt, m)["tokens_per_s"]} for k, m in cases.items()]
    )


def run() -> pd.DataFrame:
    """The headlines beside the paper's."""
    g = grid()
    qwen = float(g.loc[(g["model"] == "qwen1.5-1.8b") & (g["prompt"] == 1024), "npu_tokens_per_s"].iloc[0])
    rows = [
        (
            "qwen1.5-1.8b_prefill_tokens_per_s",
            "Qwen1.5-1.8B, 1024-token prompt, Snapdragon 8 Gen 3",
            1000.0,
            qwen,
        ),
        (
            "prefill_speedup_vs_best_baseline",
            f"mean over {MODELS} x prompts {PROMPTS}",
            22.4,
            float(g["speedup"].mean()),
        ),
        (
            "energy_saving_vs_best_baseline",
            "same grid, joules per prompt",
            30.7,
            float(g["energy_saving"].mean()),
        ),
    ]
    return comparison("mllm-npu", rows, SOURCE)
