"""trtllm-bench's own batch and token limits (hwmodels/trtllm_bench.py), hand-computed."""

from dataclasses import replace

import pytest

from hwmodels.device_spec import catalog
from hwmodels.engine_config import kv_capacity
from hwmodels.trtllm_bench import bench_limits
from roofline.validation import bench_tunes, load_measured, offline_engine, resolve
from workloads.model_spec import load_model
from workloads.quant import Quant


@pytest.mark.parametrize(
    ("model", "device", "lengths", "fraction", "expected"),
    [
        # 70.55e9 params at 1 byte = 65.71 GiB of 80 GiB; 14.29 x 0.95 = 13.58 GiB of KV; a request
        # is 2,500 tokens x 2 x 80 layers x 8 heads x 128 x 1 byte = 0.381 GiB: 35.6 requests,
        # raised to the floor of 64; 35.6 x 1.25 = 45 tokens, raised to 2,048
        ("llama-3.1-70b", "h100-sxm", (500, 2000), 0.95, (64, 2048)),
        # 8.03e9 params = 7.48 GiB of 141; 133.52 x 0.9 = 120.17 GiB; 2,176 tokens x 64 KiB =
        # 0.1328 GiB: 904.8 requests, up to 1,024 in steps of 128; 904.8 x 1.0625 = 961 tokens
        ("llama-3.1-8b", "h200", (128, 2048), 0.9, (1024, 2048)),
        # the same 904.8 requests; 904.8 x 17 = 15,382 tokens, up to 16,384 in steps of 1,024
        ("llama-3.1-8b", "h200", (2048, 128), 0.9, (1024, 16384)),
        # 22,000 tokens a request: 89.5 requests, 96 in steps of 32; 985 tokens would round to
        # 2,048, but without chunked prefill the budget holds a whole prompt beside the batch
        ("llama-3.1-8b", "h200", (20000, 2000), 0.9, (96, 20096)),
        # 133.52 x 0.95 = 126.85 GiB over 2,000 tokens x 64 KiB = 0.1221 GiB: 1,039 requests, up
        # to 1,280 in steps of 256; 2,078 tokens, up to 2,304 in steps of 256 (above 1,000 + 1,280)
        ("llama-3.1-8b", "h200", (1000, 1000), 0.95, (1280, 2304)),
        # 7,691 requests of 256 tokens, capped at 4,096; 8,192 tokens, a multiple of 1,024
        ("llama-3.1-8b", "h200", (128, 128), 0.9, (4096, 8192)),
    ],
)
def test_bench_limits_by_hand(model, device, lengths, fraction, expected):
    limits = bench_limits(
        load_model(model), Quant.from_name("fp8"), catalog()[device], 1, 1, *lengths, fraction
    )
    assert limits == expected


def test_bench_limits_split_over_ranks_and_untuned_formats():
    spec, h100 = load_model("llama-3.1-70b"), catalog()["h100-sxm"]
    # TP 2 doubles the memory and holds the same parameters: (160 - 65.71) x 0.9 = 84.86 GiB over
    # 0.332 GiB a request of 2,176 tokens (two ranks of four KV heads) = 255.6 requests, 256
    assert bench_limits(spec, Quant.from_name("fp8"), h100, 2, 1, 128, 2048, 0.9) == (256, 2048)
    # TP 16 keeps one KV head a rank, 16 in all where the model has eight: a request of 4,096
    # tokens is 1.25 GiB, and (1280 - 65.71) x 0.9 = 1092.9 GiB holds 874, 896 in steps of 128;
    # 1,748 tokens a step, but the budget holds a 2,048-token prompt beside 896 sequences
    assert bench_limits(spec, Quant.from_name("fp8"), h100, 16, 1, 2048, 2048, 0.9) == (896, 2944)
    # INT4 AWQ is not a tuned format: the engine's own defaults apply
    assert bench_limits(spec, Quant.from_name("w4a16g128"), h100, 1, 1, 128, 2048, 0.9) is None
    # 16-bit weights of 141 GB do not fit on one H100: no estimate
    assert bench_limits(spec, Quant.from_name("bf16"), h100, 1, 1, 128, 2048, 0.9) is None


def _condition(row_id):
    row = load_measured().set_index("id").loc[row_id].copy()
    row["id"] = row_id
    return resolve(row)


def test_trtllm_bench_rows_take_its_limits_and_a_larger_pool():
    # TensorRT-LLM 0.17's Llama-3.1-70B FP8 on one H100 at 128/2048 (perf-overview, trtllm-bench)
    tuned = _condition("vf105")
    assert tuned.bench_tuned
    engine = offline_engine(tuned)
    assert (engine.max_num_seqs, engine.max_num_batched_tokens) == (64, 2048)
    args = (load_model(tuned.model), Quant.from_name(tuned.precision), catalog()[tuned.device])
    pool = kv_capacity(*args, engine, 1, 1)
    default = kv_capacity(*args, offline_engine(replace(tuned, bench_tuned=False)), 1, 1)
    # a 2,048-token profiling pass reserves less than the default 8,192-token one
    assert pool.activation_bytes < default.activation_bytes
    assert pool.tokens > default.tokens
    # an MLPerf TensorRT-LLM Offline run (NVIDIA's harness sets its own limits) and a vLLM run
    # are not sized by the tool
    assert not _condition("vk001").bench_tuned
    assert not _condition("vj024").bench_tuned


def test_trtllm_bench_before_0_15_took_its_limits_from_a_table():
    """trtllm-bench sizes an engine from the dataset's lengths from v0.15 on; v0.13's and v0.14's
    build took max_batch_size and max_num_tokens from benchmark_config.yml, so a 0.14.0 table row
    that states none runs at the engine's defaults (2,048 sequences, 8,192 tokens), while the
    same configuration in 0.17's table takes the tool's 64 and 2,048."""
    old = _condition("vo196")
    assert load_measured().set_index("id").loc["vo196", "framework_version"] == "TensorRT-LLM 0.14.0"
    assert (old.model, old.tp) == ("llama-3.1-70b", 1)
    assert (old.input_len, old.output_len) == (128, 2048) and not old.bench_tuned
    engine = offline_engine(old)
    assert (engine.max_num_seqs, engine.max_num_batched_tokens) == (2048, 8192)
    assert _condition("vf105").bench_tuned
    versions = (
        "TensorRT-LLM 0.13.0",
        "0.14",
        "0.14.1",
        "0.15.0",
        "TensorRT-LLM 0.17",
        "1.0.0rc2",
        "main",
        None,
    )
    assert [bench_tunes(v) for v in versions] == [False, False, False, True, True, True, True, True]
