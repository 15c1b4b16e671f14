"""Report sections of the paper studies: for each reproduced design its figure, and how each
headline moves at the ends of each stated assumption (sensitivity)."""

from __future__ import annotations

from pathlib import Path

from report.tables import SectionOutput, write_csvs
from roofline import plots
from sim.experiments import flightllm, hnlpu, instinfer, lamina, mllm_npu, sail, step3, waferllm


def sail_study(out: Path, quick: bool) -> SectionOutput:
    """SAIL's speedup by bit width and model, and how each headline moves with each assumption."""
    grid = sail.grid()
    best = grid.groupby(["model", "weight_bits"], as_index=False)["speedup_vs_n1"].max()
    best["bits"] = best["weight_bits"].astype(str) + "-bit"
    files = plots.grouped_bars(
        best,
        "speedup_vs_n1",
        out / "sail-speedup",
        "speedup over Neoverse-N1 (best batch)",
        "SAIL vs the N1 CPU, decode",
        x="bits",
        hue="model",
    )
    sens = sail.sensitivity()
    files += plots.tornado_chart(sens, out / "sail-sensitivity")
    files += write_csvs(out, {"sail-grid.csv": grid, "sail-sensitivity.csv": sens})
    lines = [
        "## SAIL: LUT-GEMV in the last-level cache",
        "",
        "![SAIL speedup](sail-speedup.png)",
        "",
        "The PIM parameters are stated assumptions (the paper's configuration was not retrievable); each headline "
        "at the ends of each assumption's range:",
        "",
        "![SAIL sensitivity](sail-sensitivity.png)",
        "",
    ]
    return lines, files


def wafer_study(out: Path, quick: bool) -> SectionOutput:
    """WaferLLM: time and utilization against core count, and the sensitivity of its headlines."""
    scaling = waferllm.scaling()
    files = plots.lines_chart(
        scaling,
        "cores",
        ["time_s", "utilization"],
        "kernel",
        out / "wafer-scaling",
        "cores used (square mesh)",
        ["time (s)", "utilization of peak FLOP/s"],
        "16k x 16k GEMV and 4096 x 16k x 16k GEMM on a WSE-2 mesh",
    )
    sens = waferllm.sensitivity()
    files += plots.tornado_chart(sens, out / "wafer-sensitivity")
    gemv = waferllm.gemv_compare()
    files += plots.curve_with_marks(
        gemv,
        "size",
        "speedup",
        waferllm.PAPER_GEMV_SIZES,
        out / "wafer-gemv-speedup",
        "GEMV size N (N x N fp16)",
        "speedup of the whole WSE-2 over one A100",
        "MeshGEMV vs one A100 against GEMV size",
    )
    files += write_csvs(
        out, {"wafer-scaling.csv": scaling, "wafer-sensitivity.csv": sens, "wafer-gemv.csv": gemv}
    )
    lines = [
        "## Wafer-scale: MeshGEMV and MeshGEMM against naive layouts",
        "",
        "![wafer scaling](wafer-scaling.png)",
        "",
        "With a chain reduction (GEMV) or a physical-order ring (GEMM) the time stops falling as cores are "
        "added: hop latency grows with the mesh. WaferLLM's two-level reduction and interleaved ring keep it "
        "down. Mesh parameters are stated assumptions; each headline at the ends of each one's range:",
        "",
        "![wafer sensitivity](wafer-sensitivity.png)",
        "",
        "The GEMV speedup grows with the GEMV's size (the mesh's fixed reduction latency is amortized); the "
        "paper's measured sizes are marked:",
        "",
        "![wafer GEMV speedup](wafer-gemv-speedup.png)",
        "",
    ]
    return lines, files


def instinfer_study(out: Path, quick: bool) -> SectionOutput:
    """InstInfer vs FlexGen-SSD: throughput against context, flash bandwidth and PCIe generation."""
    curves = instinfer.curves()
    sens = instinfer.sensitivity()
    files = plots.lines_chart(
        curves,
        "context",
        ["tokens_per_s"],
        "design",
        out / "instinfer-context",
        "context (tokens)",
        ["decode tokens/s"],
        f"{instinfer.MODEL} on an A6000, KV cache on a computational SSD",
    )
    for sweep, part in sens.groupby("sweep"):
        slug = "flash" if "flash" in sweep else "pcie"
        files += plots.lines_chart(
            part,
            "x",
            ["tokens_per_s"],
            "design",
            out / f"instinfer-{slug}",
            sweep,
            ["decode tokens/s"],
            f"{sweep}: where in-storage attention stops paying off",
        )
    files += write_csvs(out, {"instinfer-context.csv": curves, "instinfer-sensitivity.csv": sens})
    lines = [
        "## Computational storage: attention in the drive vs SSD offload",
        "",
        "![InstInfer context](instinfer-context.png)",
        "",
        "![flash bandwidth](instinfer-flash.png)",
        "",
        "![PCIe generation](instinfer-pcie.png)",
        "",
    ]
    return lines, files


def npu_study(out: Path, quick: bool) -> SectionOutput:
    """mllm-NPU: a timeline of NPU/CPU/GPU overlap, prefill speed vs prompt length, the ablation."""
    one = mllm_npu.prefill("qwen1.5-1.8b", 512)
    iv = one["timeline"].intervals
    iv = iv.loc[~iv["resource"].str.endswith("join") & (iv["resource"] != "join")].assign(
        task=lambda f: f["task"].str.replace(r"^c(\d+)/", r"prompt chunk \1/", regex=True)
    )
    files = plots.timeline_chart(
        iv,
        out / "npu-timeline",
        "Qwen1.5-1.8B, 512-token prompt on a Snapdragon 8 Gen 3: "
        "NPU INT8 graphs, CPU outlier corrections and attention, shared LPDDR",
    )
    grid = mllm_npu.grid()
    long = grid.melt(
        id_vars=["model", "prompt"],
        value_vars=["npu_tokens_per_s", "cpu_tokens_per_s", "gpu_tokens_per_s"],
        var_name="design",
        value_name="tokens_per_s",
    )
    long["series"] = long["model"] + " " + long["design"].str.replace("_tokens_per_s", "")
    files += plots.lines_chart(
        long,
        "prompt",
        ["tokens_per_s"],
        "series",
        out / "npu-prefill",
        "prompt tokens",
        ["prefill tokens/s"],
        "prefill speed: mllm-NPU schedule vs llama.cpp (CPU) and TFLite (GPU), INT8 weights",
    )
    ablation = mllm_npu.ablation()
    files += write_csvs(out, {"npu-grid.csv": grid, "npu-ablation.csv": ablation})
    lines = [
        "## Phone NPU: chunked INT8 prefill with shadow outliers and out-of-order scheduling",
        "",
        "![NPU timeline](npu-timeline.png)",
        "",
        "![NPU prefill](npu-prefill.png)",
        "",
        "Ablation (Qwen1.5-1.8B, 1024 tokens), prefill tokens/s:",
        "",
        "\n".join(f"- {r.case}: {r.tokens_per_s:,.0f}" for r in ablation.itertuples()),
        "",
    ]
    return lines, files


def disaggregation_study(out: Path, quick: bool) -> SectionOutput:
    """Step-3's decode cost by part and device, and Lamina against vLLM per trace."""
    cost = step3.cost_table()
    at8k = cost[cost["context"] == 8192]
    files = plots.grouped_bars(
        at8k,
        "attention_usd_per_m",
        out / "step3-cost",
        "USD per 1M tokens (the paper's $/h)",
        "Step-3 cost model: attention at 8K context, full utilization",
        x="model",
        hue="device",
    )
    sens = step3.sensitivity()
    grid = lamina.grid()
    long = grid[grid["model"] == "llama-3.1-70b"].melt(
        id_vars=["trace"],
        value_vars=["lamina_tokens_per_s", "vllm_tokens_per_s"],
        var_name="design",
        value_name="tokens_per_s",
    )
    long["design"] = long["design"].map(
        {"lamina_tokens_per_s": "Lamina 2xH100+4xH20", "vllm_tokens_per_s": "vLLM 4xH100"}
    )
    files += plots.grouped_bars(
        long,
        "tokens_per_s",
        out / "lamina-throughput",
        "decode tokens/s",
        "LLaMA3-70B at equal cost (USD 40.64/h vs 44.24/h, the paper's prices)",
        x="trace",
        hue="design",
    )
    files += write_csvs(
        out,
        {
            "step3-cost.csv": cost,
            "step3-best.csv": step3.best_deployments(),
            "step3-sensitivity.csv": sens,
            "lamina-grid.csv": grid,
        },
    )
    dep = step3.deployment()
    lines = [
        "## Disaggregated decode: attention apart from the FFN (Step-3) and from the rest (Lamina)",
        "",
        "![Step-3 cost](step3-cost.png)",
        "",
        f"Step-3 2A2F on 32 H800: TPOT {dep['tpot_s'] * 1e3:.1f} ms, {dep['tokens_per_s_per_gpu']:,.0f} tokens/s "
        f"per GPU, bound by pool {dep['bound_by']}; over the network's assumed range "
        f"{sens['hwsim'].min():,.0f}-{sens['hwsim'].max():,.0f} (`step3-sensitivity.csv`).",
        "",
        "![Lamina](lamina-throughput.png)",
        "",
    ]
    return lines, files


def specialized_study(out: Path, quick: bool) -> SectionOutput:
    """Hard-wired weights (HNLPU) and the FPGA (FlightLLM): each headline at the ends of each
    assumed parameter."""
    files = []
    lines = ["## Specialized designs: hard-wired weights (HNLPU) and an FPGA (FlightLLM)", ""]
    for name, module, title in (
        ("hnlpu", hnlpu, "HNLPU (gpt-oss-120b wired into 16 chips)"),
        ("flightllm", flightllm, "FlightLLM (LLaMA2-7B on an Alveo U280)"),
    ):
        sens = module.sensitivity()
        files += plots.tornado_chart(
            sens, out / f"{name}-sensitivity", f"{title}: headlines over the assumptions"
        )
        files += write_csvs(out, {f"{name}-sensitivity.csv": sens})
        lines += [f"![{name}]({name}-sensitivity.png)", ""]
    return lines, files
