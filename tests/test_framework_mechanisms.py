"""Framework mechanisms: HF Accelerate's layer-by-layer multi-GPU runs and engine versions as named terms."""

import dataclasses

import numpy as np
import pytest

from hwmodels.calibration.params import FrameworkTerms, canonical_framework, framework_terms
from hwmodels.device_spec import load_device
from hwmodels.gpu import mmha_loop_s, scalar_gemv_s
from roofline.estimate import estimate
from roofline.validation import framework_of, load_measured, offline_batch, predict, resolve
from workloads.errors import ConfigError
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant


def _row(row_id):
    frame = load_measured()
    return frame.loc[frame["id"] == row_id].iloc[0]


def test_accelerate_splits_layers_over_the_devices_of_the_run():
    """An 8-GPU HF Accelerate row resolves to one replica with pp = 8, tp = 1, whether the
    source leaves tp empty or names tp = 8 (device_map cannot run tensor parallel)."""
    row = _row("bl002")
    assert framework_terms("hf-accelerate").multi_gpu == "sequential_layers"
    for stated_tp in (np.nan, 8):
        r = row.copy()
        r["tp"] = stated_tp
        cond = resolve(r)
        assert (cond.tp, cond.pp, cond.n_devices, cond.framework) == (1, 8, 8, "hf-accelerate")


def test_sequential_layers_add_the_stage_times():
    """One micro-batch through 8 stages: the step takes what the whole model takes on one device
    (the same layers, one after another) plus the 7 activation hops, never 1/8 of it."""
    kw = dict(batch=8, input_len=10, output_len=100, precision="bf16", framework="hf-accelerate")
    one = estimate("bloom-176b", "a100-sxm-80gb", pp=1, **kw)
    eight = estimate("bloom-176b", "a100-sxm-80gb", pp=8, **kw)
    assert not bool(one.fits) and bool(eight.fits)
    assert float(one.tpot_s) <= float(eight.tpot_s) <= 1.05 * float(one.tpot_s)
    # the 8 devices draw static power over the whole run, so the energy per token is higher
    assert float(eight.energy_j_per_token) > float(one.energy_j_per_token)


def test_sequential_layers_refuse_tensor_parallelism():
    with pytest.raises(ConfigError, match="sequential_layers.*pp"):
        estimate(
            "llama-2-70b",
            "a100-sxm-80gb",
            batch=1,
            input_len=8,
            output_len=8,
            tp=8,
            framework="hf-accelerate",
        )


def test_hf_accelerate_bloom_rows_are_priced_near_their_measurement():
    """BLOOM-176B with Accelerate on 8 A100s (transformers-bloom-inference): priced as a
    pipeline of one micro-batch the four rows are within 55% (median about 10-20%, as the time
    parameters are fitted); priced as TP 8 they were 5-8x too fast, and with the stated empty tp
    they did not fit (8 replicas of 352 GB)."""
    frame = load_measured()
    rows = frame.loc[(frame["framework"] == "hf-accelerate") & (frame["n_devices"] > 1)]
    assert len(rows) >= 4
    ratios = []
    for _, row in rows.iterrows():
        value, reason = predict(resolve(row))
        assert value is not None, reason
        ratios.append(value / row["value"])
    ape = np.abs(np.array(ratios) - 1)
    assert np.median(ape) < 0.3 and ape.max() < 0.55


def test_vllm_versions_resolve_to_their_engine_terms():
    """CUDA graphs came with vLLM v0.2.6 (PR #1926); V1 became the default in v0.8, and ran its host
    work between the GPU's steps until async scheduling became the default in v0.14.0."""
    cases = {"0.1.7": "vllm-eager", "0.2.5": "vllm-eager", "v0.2.1": "vllm-eager", "0.2.6": "vllm-v0"}
    cases |= {"0.2.7": "vllm-v0", "0.5.4": "vllm-v0", "0.10.0": "vllm-sync", "0.11.1": "vllm-sync"}
    cases |= {"0.14.0": "vllm", "0.19.1": "vllm"}
    for version, framework in cases.items():
        assert framework_of("vllm", f"notes version={version}") == framework, version
    assert framework_of("vllm", "ran with --enforce-eager version=0.6.4") == "vllm-eager"
    assert framework_of("vllm", "enforce_eager=True version=0.10.0") == "vllm-eager"
    assert framework_of("vllm", "CUDA graphs on (no --enforce-eager) version=0.6.3") == "vllm-v0"
    for name in ("hf-transformers", "transformers"):
        assert framework_of(name, "notes version=") == "hf-accelerate"


def test_tensorrt_llm_pytorch_backend_without_graphs_resolves_to_its_eager_terms():
    """TensorRT-LLM's PyTorch backend decoded without CUDA graphs unless a run turned them on, until
    PR #5480 (July 2025): v0.17-v0.21 runs of ``--backend pytorch`` without graph options are
    priced as eager launches, others on the PyTorch backend as ``tensorrt-llm-pytorch``."""
    eager = "trtllm-serve --backend pytorch --tp_size 8"
    assert framework_of("tensorrt-llm", f"TensorRT-LLM 0.17.post1.dev; '{eager}' version=") == (
        "tensorrt-llm-pytorch-eager"
    )
    assert framework_of("trt-llm", f"{eager} version=0.19.0") == "tensorrt-llm-pytorch-eager"
    assert (
        framework_of("tensorrt-llm", f"{eager}, use_cuda_graph: true version=0.19.0")
        == "tensorrt-llm-pytorch"
    )
    assert framework_of("tensorrt-llm", f"{eager} version=1.0.0") == "tensorrt-llm-pytorch"
    assert framework_of("tensorrt-llm", "trtllm-build engine version=0.17.0") == "tensorrt-llm"
    terms = framework_terms("tensorrt-llm-pytorch-eager")
    assert terms.launch_overlaps_device and terms.kernel_overhead_us == 20


def test_tensorrt_llm_pytorch_backend_serves_from_python_with_sglangs_request_latency():
    """Runs on TensorRT-LLM's PyTorch backend (``--backend pytorch``, trtllm-bench's PyTorch
    workflow, any v1.x release) keep TensorRT-LLM's kernels and overheads but take SGLang's fitted
    time per launch on a request's path to the scheduler; MLPerf's and NIM's compiled engines
    (whose version cells read "4.1 NVIDIA harness", "1.8.0" for NIM) do not."""
    assert framework_of("tensorrt-llm", "trtllm-serve; version=1.2.0rc6.post2") == "tensorrt-llm-pytorch"
    assert framework_of("tensorrt-llm", "trtllm-bench, PyTorch workflow version=") == "tensorrt-llm-pytorch"
    assert (
        canonical_framework("trtllm-serve") == canonical_framework("trtllm-bench") == "tensorrt-llm-pytorch"
    )
    assert framework_of(
        "tensorrt-llm", "trtllm-serve --backend pytorch, cuda_graph_config: {} version=0.20.0"
    ) == ("tensorrt-llm-pytorch")
    assert (
        framework_of("tensorrt-llm", "MLPerf harness version=4.1 NVIDIA harness; TensorRT 10.2")
        == "tensorrt-llm"
    )
    assert framework_of("nim", "NIM container version 1.8.0 'fp8 TP2' version=1.8.0") == "tensorrt-llm"
    pytorch, compiled, sglang = (
        framework_terms(n) for n in ("tensorrt-llm-pytorch", "tensorrt-llm", "sglang")
    )
    assert sglang.request_latency_per_launch_s > 0
    for terms in (pytorch, framework_terms("tensorrt-llm-pytorch-eager")):
        assert terms.request_latency_per_launch_s == sglang.request_latency_per_launch_s
    assert compiled.request_latency_per_launch_s == 0
    assert (pytorch.kernels, pytorch.kernel_overhead_us, pytorch.step_overhead_s) == (
        compiled.kernels,
        compiled.kernel_overhead_us,
        compiled.step_overhead_s,
    )
    # priced: Llama-3.1-8B's 162 launches (32 layers of 5, the embedding and the head) delay the
    # first token by 162 x SGLang's time per launch; the decode steps are the compiled engine's
    kw = dict(batch=1, input_len=500, output_len=50, precision="fp8")
    on_pytorch = estimate("llama-3.1-8b", "h100-sxm", framework="tensorrt-llm-pytorch", **kw)
    on_engine = estimate("llama-3.1-8b", "h100-sxm", framework="tensorrt-llm", **kw)
    delay = 162 * sglang.request_latency_per_launch_s
    assert float(on_pytorch.ttft_s) - float(on_engine.ttft_s) == pytest.approx(delay, rel=1e-6)
    assert float(on_pytorch.tpot_s) == float(on_engine.tpot_s)


def test_autoawq_runs_eager_fused_modules():
    """AutoAWQ and llm-awq's TinyChat: eager PyTorch launches (no CUDA graphs) of fused modules, so
    a batch-1 decode step costs more than under a graph-replaying engine but launches no norm,
    RoPE or activation kernels of their own."""
    assert framework_of("llm-awq", "version=") == framework_of("autoawq", "version=") == "autoawq"
    terms = framework_terms("autoawq")
    assert terms.launch_overlaps_device and terms.fuses_elementwise and terms.kernel_overhead_us == 20
    from hwmodels.roofline_model import _launches
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    kw = dict(batch=1, input_len=64, output_len=2, precision="w4a16g128")
    eager = float(estimate("mistral-7b", "rtx-4090", framework="autoawq", **kw).tpot_s)
    unfused = float(estimate("mistral-7b", "rtx-4090", framework="hf-accelerate", **kw).tpot_s)
    # an eager op costs at least its launches: the step at least every fused kernel's 20 us
    ops = build_ops(
        load_model("mistral-7b"), Quant.from_name("w4a16g128"), phase="decode", batch=1, context=65
    )
    launched = float(ops.count @ _launches(ops, fused=True)) * 20e-6
    assert eager >= launched
    # HF Transformers' own modules launch every norm, RoPE and activation kernel besides
    assert eager < unfused


def test_eager_launches_hide_behind_the_device_work_before_them():
    """An eager engine launches each kernel from the host while the device runs the earlier ones:
    an op costs the larger of its device time and its launch (20 us a kernel), not their sum. A
    graph-replaying engine pays its 2 us a node on top of every kernel. Hand-summed per op over a
    batch-1 decode step of Llama-2-7B (both engines launch norms, RoPE and activations alike)."""
    from hwmodels import registry
    from hwmodels.device_spec import load_device
    from hwmodels.placement import Placement
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    ops = build_ops(load_model("llama-2-7b"), Quant.from_name("fp16"), phase="decode", batch=1, context=128)
    gpu, a100 = registry.get("gpu"), load_device("a100-sxm-80gb")
    graphs = gpu.estimate(ops, a100, Placement(framework="vllm-v0"))
    eager = gpu.estimate(ops, a100, Placement(framework="vllm-eager"))
    device_s = (np.maximum(graphs.compute_s, graphs.memory_s) + graphs.link_s).reshape(-1)
    launches = ops.n_kernels
    eager_us, graph_us = (framework_terms(f).kernel_overhead_us for f in ("vllm-eager", "vllm-v0"))
    assert framework_terms("vllm-eager").launch_overlaps_device
    assert not framework_terms("vllm-v0").launch_overlaps_device
    want_eager = float(ops.count @ np.maximum(device_s, launches * eager_us * 1e-6))
    want_graphs = float(ops.count @ (device_s + launches * graph_us * 1e-6))
    assert float(eager.total_time_s()) == pytest.approx(want_eager, rel=1e-9)
    assert float(graphs.total_time_s()) == pytest.approx(want_graphs, rel=1e-9)
    # the weight GEMMs hide their launch, the norms and RoPE do not: between the two bounds
    hidden = device_s >= launches * eager_us * 1e-6
    assert hidden.any() and (~hidden).any()
    summed = float(ops.count @ (device_s + launches * eager_us * 1e-6))
    assert float(ops.count @ device_s) < float(eager.total_time_s()) < summed


def test_frameworks_multi_gpu_values_are_known():
    from hwmodels.calibration.params import MULTI_GPU, framework_names

    assert {framework_terms(n).multi_gpu for n in framework_names()} <= set(MULTI_GPU)


@pytest.mark.parametrize(
    "typed, name",
    [
        ("HF Transformers", "hf-accelerate"),  # spaces read as hyphens
        ("tensorrt_llm", "tensorrt-llm"),
        ("TRT LLM", "tensorrt-llm"),
        ("Aphrodite", "vllm"),  # engines built on another, by their own READMEs
        ("llamafile", "llama.cpp"),
        ("KoboldCpp", "llama.cpp"),
        ("exllamav2", "exllamav2"),  # unknown: left as typed, for framework_terms to refuse
        ("NVIDIA TensorRT-LLM", "tensorrt-llm"),  # a maker in front, a remark in parentheses
        ("HuggingFace Transformers", "hf-accelerate"),
        ("Hugging Face TGI", "tgi"),
        ("lmdeploy (TurboMind)", "lmdeploy"),
        ("vllm-v0", "vllm-v0"),  # a framework's own name is never read as name + version
        ("tensorrt-llm-0.6", "tensorrt-llm-0.6"),
        ("ExLlamaV2 0.2.1", "ExLlamaV2 0.2.1"),
        ("vLLM 0.6.3", "vLLM 0.6.3"),  # a version picks an entry by the version rules, not here
    ],
)
def test_framework_names_users_type(typed, name):
    from hwmodels.calibration.params import canonical_framework

    assert canonical_framework(typed) == name


def test_tgi_and_lmdeploy_are_named_engines_with_their_spellings():
    """TGI's Python server adds host time to every step where TurboMind's C++ engine adds none, so
    under one stream TGI decodes slower than LMDeploy and than no named framework by about that
    time; both serve every request, and the names their users type resolve."""
    import hwsim
    from hwmodels.calibration.params import canonical_framework

    assert canonical_framework("Text-Generation-Inference") == "tgi"
    assert canonical_framework("TurboMind") == "lmdeploy"
    kw = dict(batch=1, input_len=512, output_len=128)
    bare = float(estimate("llama-3.1-8b", "h100-sxm", **kw).tpot_s)
    tgi = float(estimate("llama-3.1-8b", "h100-sxm", framework="tgi", **kw).tpot_s)
    assert tgi - bare == pytest.approx(framework_terms("tgi").step_overhead_s, rel=0.2)
    runs = {
        fw: hwsim.serve(
            "llama-3.1-8b", "h100-sxm", rate=5, num_requests=100, lengths="sharegpt", framework=fw
        )
        for fw in ("tgi", "lmdeploy")
    }
    assert all(r.metrics["completed"] == 100 for r in runs.values())
    assert runs["tgi"].metrics["tpot_s_mean"] > runs["lmdeploy"].metrics["tpot_s_mean"]


def test_the_api_takes_the_spellings_the_cli_takes():
    """``trt-llm`` prices as ``tensorrt-llm`` in the API as on the command line, and a serving run
    under ``turbomind`` runs LMDeploy's engine (its 64-token KV blocks)."""
    import hwsim

    kw = dict(batch=4, input_len=512, output_len=64)
    spelled = hwsim.estimate("llama-3.1-8b", "h100-sxm", framework="TRT-LLM", **kw)
    named = hwsim.estimate("llama-3.1-8b", "h100-sxm", framework="tensorrt-llm", **kw)
    assert float(spelled.tpot_s) == float(named.tpot_s)
    run = hwsim.serve(
        "llama-3.1-8b",
        "h100-sxm",
        rate=2,
        num_requests=10,
        input_len=256,
        output_len=16,
        framework="turbomind",
    )
    assert run.kv["agg"].block_size == 64 and run.metrics["completed"] == 10


def test_hf_modules_launch_what_transformers_launches():
    """HF Transformers' eager modules launch 43 kernels per Llama layer (RMSNorm upcast to FP32
    8 and the residual add 1, twice; q, k, v 3; rotary 10; attention 6; o 1; gate and up 2;
    SiLU-and-multiply 2; down 1), which the profiler counted (1,462 in a Llama-3.1-8B decode step,
    2,774 in a Qwen2.5-32B one, sampling included); Phi-3 fuses qkv and gate/up, BLOOM's LayerNorm
    is one kernel. Under hf-accelerate each op's launches are those (20 us each, hidden behind
    the device work before them), under vllm-eager the engine's one per op."""
    from hwmodels import registry
    from hwmodels.device_spec import load_device
    from hwmodels.placement import Placement
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    fp16 = Quant.from_name("fp16")
    per_step = {"llama-3.1-8b": 32 * 43 + 11, "qwen2.5-32b": 64 * 43 + 11, "phi-3-mini": 32 * 40 + 11}
    per_step["bloom-176b"] = 70 * (2 + 1 + 10 + 6 + 1 + 2 + 1 + 1 + 1) + 1 + 2 + 1
    for model, want in per_step.items():
        ops = build_ops(load_model(model), fp16, phase="decode", batch=1, context=100)
        assert float(ops.count @ ops.module_kernels) == want, model
    ops = build_ops(load_model("llama-2-7b"), fp16, phase="decode", batch=1, context=128)
    gpu, a100 = registry.get("gpu"), load_device("a100-sxm-80gb")
    hf = gpu.estimate(ops, a100, Placement(framework="hf-accelerate"))
    engine = gpu.estimate(ops, a100, Placement(framework="vllm-eager"))
    device_s = (np.maximum(hf.compute_s, hf.memory_s) + hf.link_s).reshape(-1)
    for cost, launches, framework in (
        (hf, ops.module_kernels, "hf-accelerate"),
        (engine, ops.n_kernels, "vllm-eager"),
    ):
        step = float(
            ops.count @ np.maximum(device_s, launches * framework_terms(framework).kernel_overhead_us * 1e-6)
        )
        assert float(cost.total_time_s()) == pytest.approx(step, rel=1e-9), framework
    assert float(hf.total_time_s()) > 2 * float(engine.total_time_s())


def test_vllm_v0_decodes_past_its_graph_limits_eagerly(monkeypatch):
    """vLLM V0 replays a CUDA graph only for decode steps of at most 256 sequences none longer
    than 8,192 tokens, and runs the others eagerly (priced as vllm-eager). Llama-3.1-8B on an
    A100: a 16,000-token prompt decodes every step eagerly; a 7,000-token prompt with 2,001
    output tokens (2,000 decode steps, sequences of 7,002 to 9,001 tokens) the last
    7,000 + 2,000 - 8,192 = 808 of them; a 4,000-token one none; batch 300 every step."""
    import roofline.estimate as est

    def tpot(framework, batch=1, input_len=7000, output_len=2001):
        e = estimate(
            "llama-3.1-8b",
            "a100-sxm-80gb",
            batch=batch,
            input_len=input_len,
            output_len=output_len,
            framework=framework,
        )
        return float(e.tpot_s)

    limits = framework_terms("vllm-v0").graph_limits
    assert (limits.max_context, limits.max_batch, limits.beyond) == (8192, 256, "vllm-eager")
    assert framework_terms("vllm-v0").host_step_s(1) == framework_terms("vllm-eager").host_step_s(1)
    eager = {n: tpot("vllm-eager", input_len=n) for n in (16000, 7000, 4000)}
    eager_b300 = tpot("vllm-eager", batch=300, input_len=100, output_len=101)
    v0 = {n: tpot("vllm-v0", input_len=n) for n in (16000, 7000, 4000)}
    v0_b300 = tpot("vllm-v0", batch=300, input_len=100, output_len=101)
    terms = est.framework_terms
    monkeypatch.setattr(
        est, "framework_terms", lambda name: dataclasses.replace(terms(name), graph_limits=None)
    )
    graphs = {n: tpot("vllm-v0", input_len=n) for n in (16000, 7000, 4000)}
    assert v0[16000] == pytest.approx(eager[16000], rel=1e-12)
    assert v0[4000] == pytest.approx(graphs[4000], rel=1e-12) and graphs[4000] < eager[4000]
    assert v0[7000] == pytest.approx(graphs[7000] + 808 / 2000 * (eager[7000] - graphs[7000]), rel=1e-9)
    assert v0_b300 == pytest.approx(eager_b300, rel=1e-12)


@pytest.mark.parametrize(
    "framework, version, expected",
    [
        ("vLLM 0.6.3", "", "vllm-v0"),  # the version in the name picks the engine that version ran
        ("vllm v0.11.0", "", "vllm-sync"),
        ("SGLang 0.4.3", "", "sglang-0.4"),
        ("vLLM 0.6.3", "0.14.0", "vllm"),  # the version column, where stated, wins
        ("Hugging Face Transformers", "", "hf-accelerate"),
        ("vllm==0.6.3", "", "vllm-v0"),  # a pip pin
        ("vLLM 0.6.3 (CUDA graphs)", "", "vllm-v0"),  # a version before a qualifier
        ("TensorRT-LLM (v1.0.0)", "", "tensorrt-llm-pytorch"),  # a version as the qualifier
        ("lmdeploy (TurboMind)", "", "lmdeploy"),  # a qualifier without one
        ("llama.cpp b2800", "", "llama.cpp-dmmv"),  # llama.cpp's release tags; was no framework
        ("llama.cpp build 2800", "", "llama.cpp-dmmv"),  # before b3700: the scalar-load FP16 mat-vec
        ("llama.cpp (b2800)", "", "llama.cpp-dmmv"),
        ("llama.cpp b4000", "", "llama.cpp"),
        # one framework named among other words (these were no framework, priced without terms)
        ("Triton + TensorRT-LLM", "", "tensorrt-llm"),
        ("vllm/vllm-openai:v0.6.3", "", "vllm-v0"),  # a container image and its tag
        ("sglang.launch_server", "", "sglang"),
        ("llama.cpp CUDA", "", "llama.cpp"),
        ("llama-bench", "", "llama.cpp"),
        ("TensorRT-LLM (PyTorch backend)", "", "tensorrt-llm-pytorch"),  # the alias rules read the name too
        ("vLLM vs SGLang", "", None),  # two frameworks: neither
        ("NVIDIA NIM (TensorRT-LLM)", "", "tensorrt-llm"),  # the engine a wrapper says it ran
        ("NVIDIA NIM", "", None),  # a wrapper alone, when no rule of its own matches
    ],
)
def test_a_rows_framework_cell_may_carry_its_version(framework, version, expected):
    row = load_measured().iloc[0].copy()
    row[["hardware", "model", "precision", "phase", "metric", "batch", "input_len", "output_len"]] = [
        "h100-sxm",
        "llama-3.1-8b",
        "bf16",
        "decode",
        "decode_tokens_per_s",
        1,
        128,
        128,
    ]
    row[["framework", "framework_version", "notes"]] = [framework, version, ""]
    assert resolve(row).framework == expected


def test_a_build_or_pin_in_a_framework_name_is_its_version():
    """llama.cpp's builds read as ``bNNNN`` whichever way they are written; a pip pin and a
    parenthesised version are versions; a qualifier without one stays in the name."""
    from hwmodels.calibration.params import split_framework_version

    for text in ("llama.cpp b2800", "llama.cpp build 2800", "llama.cpp-b2800", "llama.cpp (b2800)"):
        assert split_framework_version(text) == ("llama.cpp", "b2800"), text
    assert split_framework_version("tensorrt_llm==0.17.0") == ("tensorrt_llm", "0.17.0")
    assert split_framework_version("SGLang 0.4.1 (FlashInfer)") == ("SGLang", "0.4.1")
    assert split_framework_version("lmdeploy (TurboMind)") == ("lmdeploy (TurboMind)", None)
    assert split_framework_version("sglang-0.4") == ("sglang-0.4", None)


def test_cli_framework_with_a_version_names_the_engine_it_ran(capsys):
    """``--framework "vllm 0.6.3"`` prices V0's engine and says so on stderr."""
    from hwsim.options import framework_name

    assert framework_name("vLLM 0.6.3") == "vllm-v0"
    assert "read as vllm-v0" in capsys.readouterr().err
    assert framework_name("trt-llm") == "tensorrt-llm"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("entry", ["sglang-0.4", "SGLang-0.4", "autoawq-0.1", "tensorrt-llm-0.6", "vllm-v0"])
def test_an_entry_whose_name_ends_in_a_number_is_that_entry(entry, capsys):
    """``--framework sglang-0.4`` names the frameworks.yaml entry, not SGLang at version 0.4 (it
    was read as ``sglang`` before), and says nothing on stderr; rows read it the same way."""
    from hwsim.options import framework_name

    assert framework_name(entry) == entry.lower()
    assert capsys.readouterr().err == ""
    assert framework_of(entry, "") == entry.lower()


def test_a_requests_path_to_the_scheduler_delays_it_alone():
    """SGLang's per-request latency is its term times the launches of the model's forward pass
    (Llama-3.1-8B: 32 layers of an engine's 5 launches, QKV, attention, O, gate-up and down, plus
    the embedding and the head: 162). Requests one at a time each see their first token and their
    end that much later and decode at the same pace; in the analytic estimate TTFT takes it and
    TPOT does not."""
    import hwmodels.calibration.params as params
    from hwmodels import registry
    from hwmodels.device_spec import catalog
    from hwmodels.placement import Placement
    from sim.serving.serve import serve
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant
    from workloads.traces import make_trace

    spec, quant, dev = load_model("llama-3.1-8b"), Quant.from_name("bf16"), catalog()["h100-sxm"]
    place = Placement(framework="sglang")
    ops = build_ops(spec, quant, phase="prefill", batch=1, tokens=100, **place.graph_kw)
    launches = float(registry.get(dev.arch).launch_count(ops, dev, place))
    assert launches == 32 * 5 + 2

    terms = params._frameworks()["sglang"]
    trace = make_trace(n_requests=5, concurrency=1, input_len=500, output_len=50, seed=1)
    args = dict(batch=1, input_len=500, output_len=50, framework="sglang", precision="bf16")
    runs, estimates = {}, {}
    try:
        for us in (0.0, 50.0):
            params._frameworks()["sglang"] = dataclasses.replace(
                terms, request_latency_per_launch_s=us * 1e-6
            )
            runs[us] = serve(spec, dev, trace, precision="bf16", framework="sglang").metrics
            estimates[us] = estimate("llama-3.1-8b", "h100-sxm", **args)
    finally:
        params._frameworks()["sglang"] = terms
    delay = 50e-6 * launches
    for key in ("ttft_s_mean", "e2e_s_mean"):
        assert runs[50.0][key] - runs[0.0][key] == pytest.approx(delay, rel=1e-6)
    assert runs[50.0]["tpot_s_mean"] == pytest.approx(runs[0.0]["tpot_s_mean"], rel=1e-9)
    assert float(estimates[50.0].ttft_s) - float(estimates[0.0].ttft_s) == pytest.approx(delay, rel=1e-6)
    assert float(estimates[50.0].tpot_s) == float(estimates[0.0].tpot_s)


def test_the_request_latency_is_fitted_on_ttft_rows_with_held_out_errors(monkeypatch):
    """fit_request_latency picks the grid point whose simulated TTFTs fit the rows best: rows measured
    at 20 ms + 1,000 launches x 60 us give 60 us; rows that ask for more than the grid's top are
    not fitted; one source leaves no source out, but each model is left out in turn."""
    import pandas as pd

    import sim.serving.calibrate as cal
    import sim.serving.validation as sv
    from hwmodels.calibration.params import framework_terms as terms_of

    class Result:
        def __init__(self):
            self.metrics = {"ttft_s_mean": 0.02 + 1000 * terms_of("sglang").request_latency_per_launch_s}

    monkeypatch.setattr(sv, "_simulate_result", lambda cond: Result())
    rows = _row("s300"), _row("s318"), _row("s301")
    conds = [resolve(r) for r in rows]

    def frame(ttft):
        return pd.DataFrame(
            {
                "id": [r["id"] for r in rows],
                "cond": conds,
                "framework": "sglang",
                "metric": [r["metric"] for r in rows],
                "measured": [ttft, ttft, 0.01],
                "source": "cookbook",
            }
        )

    us, errors = cal.fit_request_latency(frame(0.02 + 0.06), lambda _m: None)
    assert us == 60.0 and errors["in_sample"]["median_ape"] == pytest.approx(0.0, abs=1e-12)
    assert errors["leave_one_source_out"]["rows"] == 0 and errors["leave_one_model_out"]["rows"] == 2
    us, errors = cal.fit_request_latency(frame(1.0), lambda _m: None)
    assert us is None and errors["not_fitted"].startswith("optimum at the edge")


def test_forked_tasks_come_back_in_order(monkeypatch):
    """The fits' grid points and refits run on forked processes where two cores are allowed: the
    results and the progress calls come in the tasks' order, as they do one after another."""
    import math

    from roofline.estimate import THREADS_ENV
    from roofline.forked import forked_map, forked_workers

    for threads in ("1", "2"):
        monkeypatch.setenv(THREADS_ENV, threads)
        said: list[float] = []
        assert forked_map(math.sqrt, [9.0, 1.0, 4.0], said.append) == [3.0, 1.0, 2.0]
        assert said == [9.0, 1.0, 4.0] and forked_workers(3) == int(threads)
    assert forked_workers(1) == 1


def test_calibrate_prints_the_request_latency_fit(monkeypatch):
    """``hwsim calibrate --part serving`` says the request latency it fitted, on how many rows, and
    its errors in sample and leaving a model out (the shipped record, without refitting)."""
    import yaml
    from click.testing import CliRunner

    import sim.serving.calibrate as cal
    from hwmodels.calibration.params import serving_fitted_path
    from hwsim.cli import cli

    record = yaml.safe_load(serving_fitted_path().read_text())
    monkeypatch.setattr(cal, "calibrate_serving", lambda progress=None: record)
    out = CliRunner().invoke(cli, ["calibrate", "--part", "serving"])
    assert out.exit_code == 0, out.output
    fitted = record["frameworks"]["sglang"]["request_latency_per_launch_us"]
    rows = record["request_latency"]["sglang"]["rows"]
    assert f"sglang request latency {fitted:g} us per launch on {rows} TTFT rows" in out.output
    assert "leave-one-model-out" in out.output


def _mistral_awq_decode(context: int):
    """The op table of one decode step of Mistral-7B in AWQ's 4-bit format at ``context`` cached tokens."""
    return build_ops(
        load_model("mistral-7b"), Quant.from_name("w4a16g128"), phase="decode", batch=1, context=context
    )


def test_mmha_decode_attention_waits_one_load_latency_per_loop_iteration():
    """AutoAWQ's decode attention (FasterTransformer's masked multi-head attention) on an RTX 4090
    (255.7 ns a load): at 2,001 cached keys of Mistral-7B's 128 FP16 values, each of its 128-thread
    blocks takes ceil(2001 / 64) = 32 key and ceil(2001 / 8) = 251 value iterations, 72.4 us a layer,
    where the layer's 8 MB of K and V stream in 10 us. The step grows by that less the 20 us launch
    the attention paid before, on each of the 32 layers; without the catalog's latency, or under an
    engine with split-KV decode kernels, nothing changes."""
    from dataclasses import replace

    rtx = load_device("rtx-4090")
    ops = _mistral_awq_decode(context=2000)
    attention = ops.kind == "attention"
    loop = mmha_loop_s(ops, rtx, "autoawq-0.1")
    assert loop[attention] == pytest.approx((32 + 251) * 255.7e-9)
    assert not loop[~attention].any()
    no_latency = replace(rtx, memory=replace(rtx.memory, load_latency_s=None))
    assert mmha_loop_s(ops, no_latency, "autoawq-0.1") is None and mmha_loop_s(ops, rtx, "vllm") is None
    kw = dict(batch=1, input_len=2000, output_len=2, precision="w4a16g128", framework="autoawq-0.1")
    step = float(estimate("mistral-7b", rtx, **kw).tpot_s)
    before = float(estimate("mistral-7b", no_latency, **kw).tpot_s)
    assert step - before == pytest.approx(32 * ((32 + 251) * 255.7e-9 - 20e-6), rel=1e-6)


def test_mmha_launch_switches_block_width_at_2048_keys():
    """From 2,048 cached keys the kernel runs 256 threads a block, one a key: 12 key and 192 value
    iterations at 3,071 keys rather than twice the 2,000-key count, so a longer context can take
    fewer iterations (AutoAWQ's Mixtral table: 77.1 and 77.6 tokens/s at 2,048 and 4,096)."""
    ops = _mistral_awq_decode(context=3070)
    loop = mmha_loop_s(ops, load_device("rtx-4090"), "autoawq")
    assert loop[ops.kind == "attention"] == pytest.approx((12 + 192) * 255.7e-9)


def _llama3_8b_fp16_decode(batch: int = 1):
    """The op table of one decode step of Llama-3-8B over FP16 weights at 512 cached tokens."""
    return build_ops(
        load_model("llama-3-8b"), Quant.from_name("fp16"), phase="decode", batch=batch, context=512
    )


def test_scalar_fp16_gemv_streams_at_most_the_bytes_in_flight_per_load_latency():
    """llama.cpp's mat-vec over FP16 weights before its vector loads (``llama.cpp-dmmv``): on an A100
    PCIe each of 108 SMs holds 32 one-warp blocks, each thread with 4 B in flight, so the kernel
    streams at most 108 x 32 x 32 x 4 B = 442,368 B per 406.0 ns, 1.0896 TB/s: the 8B model's
    15.0 GB of GEMM weights (all but the embedding) take at least 13.8 ms a token, and the step
    grows by 4.1 ms over a later build's. Two tokens a step go through cuBLAS, an RTX 4090 (128 x 24 x
    128 B per 255.7 ns = 1.54 TB/s) is bound by its own 1,008 GB/s first, and later builds
    (``llama.cpp``) load vectors: no bound there."""
    from dataclasses import replace

    a100 = load_device("a100-pcie-80gb")
    ops = _llama3_8b_fp16_decode()
    least = scalar_gemv_s(ops, a100, "llama.cpp-dmmv")
    gemm = np.isin(ops.kind, ("gemm",)) & (ops.weight_bits == 16)
    per_byte = 406.0e-9 / (108 * 32 * 32 * 4)
    assert least[gemm] == pytest.approx(ops.weight_bytes[gemm] * per_byte)
    assert not least[~gemm].any()
    bound_s = float((least * ops.count).sum())
    assert bound_s == pytest.approx(float((ops.weight_bytes * ops.count)[gemm].sum()) * per_byte)
    assert 13.7e-3 < bound_s < 13.9e-3
    kw = dict(batch=1, input_len=512, output_len=2, precision="fp16")
    dmmv = float(estimate("llama-3-8b", a100, framework="llama.cpp-dmmv", **kw).tpot_s)
    later = float(estimate("llama-3-8b", a100, framework="llama.cpp", **kw).tpot_s)
    assert dmmv >= bound_s and 4.0e-3 < dmmv - later < 4.3e-3
    assert scalar_gemv_s(ops, a100, "llama.cpp") is None
    assert scalar_gemv_s(_llama3_8b_fp16_decode(batch=2), a100, "llama.cpp-dmmv") is None
    sweep = {**kw, "batch": np.array([1, 2, 4])}  # over a sweep's batch axis, batch 1 alone is bound
    swept = np.asarray(estimate("llama-3-8b", a100, framework="llama.cpp-dmmv", **sweep).tpot_s)
    unbound = np.asarray(estimate("llama-3-8b", a100, framework="llama.cpp", **sweep).tpot_s)
    assert swept[0] == pytest.approx(dmmv) and np.allclose(swept[1:], unbound[1:])
    no_latency = replace(a100, memory=replace(a100.memory, load_latency_s=None))
    assert scalar_gemv_s(ops, no_latency, "llama.cpp-dmmv") is None
    rtx = load_device("rtx-4090")
    on_rtx = dict(framework="llama.cpp-dmmv", **kw)
    assert float(estimate("llama-3-8b", rtx, **on_rtx).tpot_s) == pytest.approx(
        float(estimate("llama-3-8b", rtx, **{**on_rtx, "framework": "llama.cpp"}).tpot_s)
    )


@pytest.mark.parametrize(
    "version, framework",
    [
        ("b2824 (4426e298)", "llama.cpp-dmmv"),
        ("b3699", "llama.cpp-dmmv"),
        ("b3700", "llama.cpp"),
        ("b4200", "llama.cpp"),
    ],
)
def test_llama_cpp_builds_before_b3700_run_the_scalar_load_mat_vec(version, framework):
    """A measured llama.cpp row's build picks its FP16 mat-vec kernel: scalar loads before b3700."""
    row = _row("vn089").copy()
    row["framework_version"] = version
    assert resolve(row).framework == framework


def test_a_tensorrt_engine_caches_and_attends_a_sliding_windows_whole_prefix():
    """Mistral-7B v0.1 slides a 4,096-token window in every layer. A TensorRT engine attends
    max_attention_window tokens, by default its max sequence length, so a decode step at 16,384
    cached tokens reads all of them: 16,384 x 4,096 B a layer (8 KV heads x 128 x K and V x 2 B)
    against the window's 4,095. vLLM and TensorRT-LLM's PyTorch backend keep the config's window."""
    spec, quant = load_model("mistral-7b"), Quant.from_name("fp16")

    def kv_read(framework):
        ops = build_ops(
            framework_terms(framework).model_as_run(spec), quant, phase="decode", batch=1, context=16384
        )
        return float(ops.kv_read_bytes[list(ops.name).index("attention")])

    assert kv_read("tensorrt-llm") == 16384 * 4096
    assert kv_read("tensorrt-llm-0.6") == 16384 * 4096
    assert kv_read("vllm") == kv_read("tensorrt-llm-pytorch") == 4095 * 4096
    kw = dict(batch=8, input_len=16384, output_len=256, precision="fp16")
    trt = estimate("mistral-7b", "h100-sxm", framework="trt-llm", **kw)
    vllm = estimate("mistral-7b", "h100-sxm", framework="vllm", **kw)
    assert trt.tpot_s > vllm.tpot_s and trt.memory_bytes > vllm.memory_bytes


@pytest.mark.parametrize(
    ("model", "before", "after"),
    [
        ("mistral-7b", "sliding(4096) x32", "full x32"),
        ("gemma-2-9b", "sliding(4096) x21 + full x21", "full x42"),
        ("gpt-oss-20b", "sliding(128) x12 + full x12", "full x24"),
        ("llama-4-scout-17b-16e", "chunked(8192) x36 + full x12", "chunked(8192) x36 + full x12"),
        ("qwen3-next-80b-a3b", "linear x36 + full x12", "linear x36 + full x12"),
        ("llama-3.1-8b", "full x32", "full x32"),
    ],
)
def test_without_sliding_window_turns_only_sliding_layers_full(model, before, after):
    spec = load_model(model)
    plain = spec.without_sliding_window()
    assert (spec.layer_pattern, plain.layer_pattern) == (before, after)
    assert (plain is spec) == (before == after)
    assert plain.n_layers == spec.n_layers


def test_a_tensorrt_engines_mistral_row_reads_its_whole_prefix(monkeypatch):
    """A TensorRT-LLM 0.14 throughput row of Mistral-7B at 20,000 prompt and 2,000 output tokens
    on one H200: the paged pool and the batch are the same with or without the window (a paged
    pool gives every layer a slot per token either way), but each decode step reads the ~21,000
    cached keys of every sequence, not 4,095, so the predicted throughput is about halved (with the
    window it was 2.15x the measured 1,676 tokens/s)."""
    frame = load_measured()
    rows = frame[
        (frame["model"] == "mistral-7b") & (frame["input_len"] == 20000) & (frame["hardware"] == "h200")
    ]
    cond = resolve(rows.loc[rows["id"].str.startswith("vo")].iloc[0])
    assert (cond.framework, cond.tp) == ("tensorrt-llm", 1)
    batch, plain = offline_batch(cond), predict(cond)[0]
    monkeypatch.setattr(FrameworkTerms, "model_as_run", lambda self, spec: spec)
    assert offline_batch(cond) == batch
    assert plain < 0.6 * predict(cond)[0]


def test_the_roofline_of_a_tensorrt_engine_reads_the_whole_prefix():
    """hwsim.roofline prices a framework's ops on the model as that framework runs it: the decode
    attention of Mistral-7B at 16,384 tokens moves 4x the window's bytes under TensorRT-LLM."""
    import hwsim

    def attention_bytes(framework):
        decode = hwsim.roofline("mistral-7b", "h100-sxm", input_len=16384, framework=framework)["decode"]
        return float(decode.loc[decode["op"] == "attention", "bytes"].iloc[0])

    assert attention_bytes("trt-llm") / attention_bytes("vllm") == pytest.approx(16384 / 4095, rel=0.01)
