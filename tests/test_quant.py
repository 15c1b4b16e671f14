"""Quantization: bits per tensor class, group scales, names, errors."""

import re

import pytest

from workloads.errors import ConfigError, HwsimNote
from workloads.quant import Quant


def test_named_precisions():
    assert Quant.from_name("fp16").weight_bytes_per_param() == 2.0
    fp8 = Quant.from_name("fp8")
    assert (fp8.weight_bits, fp8.act_bits, fp8.kv_bits, fp8.compute_format) == (8, 8, 8, "fp8")
    assert Quant.from_name("int8").compute_format == "int8"
    assert Quant.from_name("bf16").compute_format == "bf16"


def test_group_scales_are_counted():
    """W4 with group 128 and fp16 scales: 4 + 16/128 bits = 0.515625 bytes per weight."""
    q = Quant.from_name("int4")
    assert q.weight_bytes_per_param() == pytest.approx((4 + 16 / 128) / 8)
    assert q.compute_format == "fp16"  # weight-only quantization runs 16-bit math


def test_any_bit_width_and_overrides():
    q = Quant.make(3, 16, 8, group_size=64, zero_point=True, overrides={"lm_head": 16})
    assert q.weight_bytes_per_param() == pytest.approx((3 + 32 / 64) / 8)
    assert q.weight_bytes_per_param("lm_head") == 2.0
    assert q.kv_bytes == 1.0
    assert Quant.from_name("w3a16g64").weight_bytes_per_param() == pytest.approx((3 + 16 / 64) / 8)


@pytest.mark.parametrize("bad", ["fp7", "w4", 0, 17, -1, True])
def test_bad_bits_are_refused(bad):
    with pytest.raises(ConfigError):
        if isinstance(bad, str):
            Quant.from_name(bad)
        else:
            Quant.make(bad)


def test_other_precision_names_are_the_same_format():
    """PyTorch dtype names and quantization methods are the precision they name: AWQ and GPTQ are
    4-bit weights in groups of 128 with 16-bit activations, NVFP4 is fp4 (4.5 bits a weight)."""
    assert Quant.from_name("bfloat16") == Quant.from_name("bf16")
    assert Quant.from_name("Float16") == Quant.from_name("fp16")
    for method in ("awq", "GPTQ", "int4-awq"):
        q = Quant.from_name(method)
        assert (q.weight_bits, q.act_bits, q.group_size) == (4, 16, 128), method
    assert Quant.from_name("nvfp4") == Quant.from_name("fp4")
    with pytest.raises(ConfigError, match="closest"):
        Quant.from_name("awq8")


@pytest.mark.parametrize(
    "typed, same_as",
    [
        ("FP8_E4M3", "fp8"),  # underscores and spaces read as dashes, parentheses dropped
        ("FP8 (E4M3)", "fp8"),
        ("FP8_KV16", "fp8-kv16"),
        ("FP8-Dynamic", "fp8-kv16"),  # llm-compressor's checkpoints, served with a 16-bit KV cache
        ("awq_marlin", "int4"),  # the kernel vLLM runs AWQ and GPTQ checkpoints with
        ("Q4_K_M", "q4_k_m"),  # a GGUF type keeps its underscores
        ("Q4_K", "q4_k_m"),  # llama-quantize's aliases
        ("q5_k", "q5_k_m"),
        ("FP8 KV cache", "fp8"),  # FP8 weights with the KV cache in FP8 too
    ],
)
def test_precision_names_as_sources_write_them(typed, same_as):
    assert Quant.from_name(typed) == Quant.from_name(same_as)


@pytest.mark.parametrize(
    "typed, read_as",
    [
        ("GPTQ 4bit", "int4"),  # the first word that names a precision
        ("Q4_K_M (GGUF)", "q4_k_m"),
        ("GGUF Q4_K_M", "q4_k_m"),
        ("BF16 (default)", "bf16"),
        ("fp8_e4m3fn", "fp8"),
        ("4-bit", "int4"),  # a width alone: weight-only at 4 bits, W8A8 at 8
        ("8 bit", "int8"),
        ("float8", "fp8"),
    ],
)
def test_a_precision_in_several_words_is_its_first_named_one_with_a_note(typed, read_as):
    with pytest.warns(HwsimNote, match=f"precision {re.escape(repr(typed))} read as"):
        assert Quant.from_name(typed) == Quant.from_name(read_as)


def test_a_precision_of_no_known_word_is_still_refused():
    for typed in ("mixed", "auto", "q4", "foo bar"):
        with pytest.raises(ConfigError, match="is not known"):
            Quant.from_name(typed)


def test_weight_only_and_w8a8_spellings_carry_their_widths():
    """GPTQ's 8-bit checkpoints: 8-bit weights with an FP16 scale per group of 128, 1 + 2/128 =
    1.015625 bytes a weight, 16-bit activations; TensorRT-LLM's weight-only INT4 is per channel
    (0.5 bytes, no group scales); vLLM's W8A8-INT8 keeps a 16-bit KV cache, its W8A8-FP8 is fp8."""
    gptq8 = Quant.from_name("GPTQ-Int8")
    assert gptq8.weight_bytes_per_param() == pytest.approx(1.015625) and gptq8.act_bits == 16
    assert Quant.from_name("int4 weight only").weight_bytes_per_param() == pytest.approx(0.5)
    w8a8 = Quant.from_name("W8A8_INT8")
    assert (w8a8.weight_bits, w8a8.act_bits, w8a8.kv_bits) == (8, 8, 16)
    assert Quant.from_name("w8a8-fp8") == Quant.from_name("fp8")


def test_modelopt_qformat_names_resolve_to_their_widths():
    """TensorRT-LLM's quantize.py --qformat names: int4_wo is per-channel 4-bit weights (0.5 bytes)
    with 16-bit math, int8_wo 8-bit weights (1 byte), int8_sq SmoothQuant's 8-bit weights and
    activations."""
    int4_wo, int8_wo, int8_sq = (Quant.from_name(n) for n in ("int4_wo", "INT8_WO", "int8_sq"))
    assert int4_wo.weight_bytes_per_param() == pytest.approx(0.5) and int4_wo.act_bits == 16
    assert int8_wo.weight_bytes_per_param() == pytest.approx(1.0) and int8_wo.act_bits == 16
    assert (int8_sq.weight_bits, int8_sq.act_bits) == (8, 8)


def test_fp8_ffn_keeps_attention_embedding_and_head_in_16_bits():
    """Meta's FP8 Llama 3.1 recipe: hand-counted weight bytes of the 405B (126 layers, d 16384,
    FFN 53248, 128 query and 8 KV heads of 128, vocabulary 128256): FFN weights at 1 byte,
    attention projections, embedding and LM head at 2 (the norms' 4 MB at the base width, as for
    every format); the attention GEMMs run 16-bit math, the FFN GEMMs FP8."""
    from workloads.graph import build_ops, weight_bytes
    from workloads.model_spec import load_model

    spec, q = load_model("llama-3.1-405b"), Quant.from_name("fp8-ffn")
    assert Quant.from_name("fbgemm_fp8") == q and q.kv_bits == 16
    h, f, layers, vocab = 16384, 53248, 126, 128256
    attention = h * 128 * 128 + 2 * h * 8 * 128 + 128 * 128 * h
    ffn = 3 * h * f
    norms = (2 * layers + 1) * h
    want = layers * ffn + norms + 2 * (layers * attention + 2 * vocab * h)
    assert weight_bytes(spec, q) == pytest.approx(want, rel=1e-12)
    ops = build_ops(spec, q, phase="decode", batch=4, context=256)
    fmt = dict(zip(ops.name, ops.fmt, strict=True))
    assert (fmt["qkv_proj"], fmt["o_proj"], fmt["lm_head"]) == ("fp16",) * 3
    assert (fmt["ffn_up"], fmt["ffn_down"]) == ("fp8", "fp8")
    per_op = dict(zip(ops.name, ops.weight_bytes, strict=True))
    assert per_op["qkv_proj"] == pytest.approx(2 * (h * 128 * 128 + 2 * h * 8 * 128))
    assert per_op["ffn_down"] == pytest.approx(f * h)


@pytest.mark.parametrize("precision", ["fp8", "fp8-kv16", "fp4", "int8", "int4"])
def test_post_training_recipes_keep_embedding_and_head_in_16_bits(precision):
    """The named recipes quantize the decoder layers' linear layers only: Llama-3.1-8B's
    embedding and LM head (128,256 x 4,096 each) stay at 2 bytes a weight, the LM head runs
    16-bit math, and a decode step reads it at 2 bytes; a ``wXaY`` pattern states every width."""
    from workloads.graph import build_ops, weight_bytes
    from workloads.model_spec import load_model

    spec, q = load_model("llama-3.1-8b"), Quant.from_name(precision)
    heads = 2 * 128256 * 4096
    body = spec.n_params() - heads
    assert weight_bytes(spec, q) == pytest.approx(body * q.weight_bytes_per_param() + 2 * heads, rel=1e-12)
    ops = build_ops(spec, q, phase="decode", batch=4, context=256)
    per_op = dict(zip(ops.name, ops.weight_bytes, strict=True))
    fmt = dict(zip(ops.name, ops.fmt, strict=True))
    assert per_op["lm_head"] == pytest.approx(128256 * 4096 * 2)
    assert fmt["lm_head"] == "fp16" and fmt["ffn_down"] == q.compute_format
    literal = Quant.from_name("w8a8")
    assert weight_bytes(spec, literal) == pytest.approx(spec.n_params() * 1.0, rel=1e-12)


def test_fp8_weights_match_what_vllm_loads():
    """vLLM's start-up logs on an H100 (llm-d/llm-d-benchmark @25933486
    config_explorer/empirical-vllm-memory-results.md): RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic
    'Model loading took 67.72 GiB' at TP 1 and 33.88 GiB per GPU at TP 2. FP8 decoder weights with
    a BF16 embedding and LM head give 67.67 and 33.83 GiB (per-tensor scales not counted); the
    same checkpoint all in FP8 would be 65.71 GiB, 3% short."""
    from workloads.graph import weight_bytes
    from workloads.model_spec import load_model

    spec, q = load_model("llama-3.3-70b"), Quant.from_name("fp8-dynamic")
    gib = 2.0**30
    assert weight_bytes(spec, q) / gib == pytest.approx(67.72, rel=0.002)
    assert weight_bytes(spec, q, tp=2) / gib == pytest.approx(33.88, rel=0.002)


def test_gpt_oss_mxfp4_holds_only_the_experts_in_four_bits():
    """OpenAI's gpt-oss-20b checkpoint: the experts in MXFP4 (E2M1 in blocks of 32 with an 8-bit
    scale, 4.25 bits), the attention blocks, embedding and LM head in BF16. Hand-counted per
    decode step of one sequence: q, k, v 2,880 x (64 x 64 + 2 x 8 x 64) x 2 B; four active
    experts' gate and up projections 4 x 2 x 2,880 x 2,880 x 4.25 / 8 B; the LM head 201,088 x
    2,880 x 2 B."""
    from workloads.graph import build_ops
    from workloads.model_spec import load_model

    q = Quant.from_name("mxfp4")
    assert (q.kv_bits, Quant.from_name("mxfp4-kv8").kv_bits) == (16, 8)
    ops = build_ops(load_model("gpt-oss-20b"), q, phase="decode", batch=1, context=256)
    per_op = dict(zip(ops.name, ops.weight_bytes, strict=False))
    assert per_op["qkv_proj"] == pytest.approx(2880 * (64 * 64 + 2 * 8 * 64) * 2)
    assert per_op["experts_up"] == pytest.approx(4 * 2 * 2880 * 2880 * 4.25 / 8)
    assert per_op["lm_head"] == pytest.approx(201088 * 2880 * 2)
