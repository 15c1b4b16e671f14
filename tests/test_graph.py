"""Op graphs: hand-computed FLOPs and bytes, sharding, MoE, broadcasting, GQA vs MHA."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.errors import ConfigError
from workloads.graph import build_ops, expected_distinct_experts, gemm_flops, kv_cache_bytes, weight_bytes
from workloads.model_spec import load_model, spec_from_config
from workloads.quant import Quant

FP16 = Quant.from_name("fp16")


def row(ops, name):
    (i,) = np.flatnonzero(ops.name == name)
    return {
        c: getattr(ops, c)[i]
        for c in (
            "flops",
            "weight_bytes",
            "kv_read_bytes",
            "kv_write_bytes",
            "act_in_bytes",
            "link_bytes",
            "count",
        )
    }


def test_gemm_flops_convention():
    assert gemm_flops(2, 3, 4) == 48.0  # 2 FLOPs per multiply-add


def test_llama2_7b_decode_hand_computed():
    """Llama-2-7B, batch 1, 1024 tokens cached, fp16:
    qkv_proj: 2 * 1 * (3*4096) * 4096 = 100,663,296 FLOPs; weights 3*4096*4096*2 B = 100,663,296 B.
    attention: 1025 keys (1024 cached + itself): 2 * 32 heads * 1025 * (128+128) = 16,793,600 FLOPs;
    KV read 1024 tokens * 32 heads * 256 * 2 B = 16,777,216 B; KV write 32 * 256 * 2 = 16,384 B.
    ffn_up (gate+up): 2 * 1 * 22016 * 4096 = 180,355,072 FLOPs."""
    ops = build_ops(load_model("llama-2-7b"), FP16, phase="decode", batch=1, context=1024)
    qkv, att, up = row(ops, "qkv_proj"), row(ops, "attention"), row(ops, "ffn_up")
    assert qkv["flops"] == 100_663_296 and qkv["weight_bytes"] == 100_663_296 and qkv["count"] == 32
    assert (
        att["flops"] == 16_793_600 and att["kv_read_bytes"] == 16_777_216 and att["kv_write_bytes"] == 16_384
    )
    assert up["flops"] == 180_355_072


def test_llama31_8b_gqa_kv_read_hand_computed():
    """Llama-3.1-8B has 8 KV heads: 1024 tokens * 8 * 256 * 2 B = 4,194,304 B per layer and sequence."""
    ops = build_ops(load_model("llama-3.1-8b"), FP16, phase="decode", batch=3, context=1024)
    assert row(ops, "attention")["kv_read_bytes"] == 3 * 4_194_304


def test_opt_6_7b_prefill_hand_computed():
    """OPT-6.7B, 2 prompts of 512 tokens: ffn_up is plain, 2 * 1024 * 16384 * 4096 = 137,438,953,472 FLOPs;
    causal attention averages 513/2 keys per query: 2 * (2*32*512) * 256.5 * 256 = 4,303,355,904 FLOPs."""
    ops = build_ops(load_model("opt-6.7b"), FP16, phase="prefill", batch=2, tokens=512)
    assert row(ops, "ffn_up")["flops"] == 137_438_953_472
    assert row(ops, "attention")["flops"] == 4_303_355_904
    assert row(ops, "attention")["kv_read_bytes"] == 0


def test_tensor_parallel_shards_and_adds_allreduce():
    """Llama-2-70B at TP 8: each device holds 64/8 query heads and 8/8 KV heads: qkv width (8+2)*128;
    each layer all-reduces twice 2*(8-1)/8 of the batch's hidden states."""
    spec = load_model("llama-2-70b")
    ops = build_ops(spec, FP16, phase="decode", batch=4, context=100, tp=8)
    assert row(ops, "qkv_proj")["weight_bytes"] == (8 + 2) * 128 * 8192 * 2
    assert row(ops, "allreduce_attn")["link_bytes"] == pytest.approx(2 * 7 / 8 * 4 * 8192 * 2)
    assert weight_bytes(spec, FP16, tp=8) == pytest.approx(weight_bytes(spec, FP16) / 8)


def test_moe_reads_distinct_experts_once():
    """Mixtral, one token: 2 of 8 experts touched, expert weights read for 2 experts, not 8."""
    spec = load_model("mixtral-8x7b")
    ops = build_ops(spec, FP16, phase="decode", batch=1, context=10)
    assert row(ops, "experts_up")["weight_bytes"] == pytest.approx(2 * 2 * 14336 * 4096 * 2)
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2.0)
    many = build_ops(spec, FP16, phase="decode", batch=256, context=10)
    assert row(many, "experts_up")["weight_bytes"] == pytest.approx(8 * 2 * 14336 * 4096 * 2, rel=1e-6)


def test_sweep_axes_broadcast_and_match_scalar_builds():
    spec = load_model("llama-3.1-8b")
    b = np.array([1, 8, 64])[:, None]
    ctx = np.array([128, 4096])[None, :]
    ops = build_ops(spec, FP16, phase="decode", batch=b, context=ctx)
    assert ops.sweep_shape == (3, 2)
    single = build_ops(spec, FP16, phase="decode", batch=8, context=4096)
    np.testing.assert_allclose(np.broadcast_to(ops.flops, (ops.n_ops, 3, 2))[:, 1, 1], single.flops)
    np.testing.assert_allclose(ops.total("kv_read_bytes")[1, 1], single.total("kv_read_bytes"))


@settings(max_examples=60, deadline=None)
@given(
    kv_heads=st.sampled_from([1, 2, 4, 8]),
    batch=st.integers(1, 256),
    ctx=st.integers(0, 32768),
    kv_bits=st.sampled_from([4, 8, 16]),
)
def test_gqa_never_reads_more_kv_than_mha(kv_heads, batch, ctx, kv_bits):
    base = {
        "model_type": "llama",
        "num_hidden_layers": 4,
        "hidden_size": 1024,
        "num_attention_heads": 8,
        "intermediate_size": 2048,
        "vocab_size": 1000,
    }
    gqa = spec_from_config(base | {"num_key_value_heads": kv_heads}, "gqa")
    mha = spec_from_config(base, "mha")
    q = FP16.with_kv(kv_bits)
    read = lambda s: build_ops(s, q, phase="decode", batch=batch, context=ctx).total("kv_read_bytes")  # noqa: E731
    assert read(gqa) <= read(mha)
    assert kv_cache_bytes(gqa, q, batch, ctx) <= kv_cache_bytes(mha, q, batch, ctx)


def test_mla_decode_reads_the_latent():
    """DeepSeek-V3 caches 512+64 latent elements per token and layer: at 1000 tokens, fp16,
    1000 * 576 * 2 B per layer and sequence."""
    ops = build_ops(load_model("deepseek-v3"), FP16, phase="decode", batch=1, context=1000)
    assert row(ops, "attention")["kv_read_bytes"] == 1000 * 576 * 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch=0), "batch"),
        (dict(batch=1, context=-1), "context"),
        (dict(batch=1, tp=3), "tp 3"),
        (dict(batch=1, ep=2), "ep 2"),
    ],
)
def test_bad_graph_inputs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_ops(load_model("llama-2-7b"), FP16, phase="decode", **kwargs)
