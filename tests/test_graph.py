"""Op graphs: hand-computed FLOPs and bytes, sharding, MoE, broadcasting, GQA vs MHA."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.errors import ConfigError
from workloads.graph import (
    build_ops,
    expected_distinct_experts,
    gemm_flops,
    kv_bytes_per_token,
    kv_cache_bytes,
    kv_state_bytes_per_seq,
    weight_bytes,
)
from workloads.model_spec import load_model, preset_names, spec_from_config
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


def test_replicated_weights_are_stored_whole_on_every_tensor_parallel_rank():
    """DeepSeek-R1 at TP 8 in FP8: each rank keeps whole its 61 layers' latent down-projections,
    7168 x (1536 + 576) = 15,138,816 weights a layer (vLLM's q_a_proj, kv_a_proj_with_mqa), and its 58
    MoE routers, 7168 x 256 = 1,835,008 (plus 256 bias terms) a layer; the rest is split 8 ways. So
    a rank holds 7/8 of those 1-byte weights beyond an eighth of the model; the op graph reads them
    whole too."""
    spec = load_model("deepseek-r1")
    fp8 = Quant.from_name("fp8-kv16")
    replicated = 61 * 15_138_816 + 58 * (1_835_008 + 256)
    assert weight_bytes(spec, fp8, tp=8) - weight_bytes(spec, fp8) / 8 == pytest.approx(replicated * 7 / 8)
    ops = build_ops(spec, fp8, phase="decode", batch=1, context=10, tp=8)
    assert row(ops, "kv_down")["weight_bytes"] == 7168 * 576
    assert row(ops, "router")["weight_bytes"] == 7168 * 256


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


# ----- layer kinds: sliding windows, chunks, linear attention, sparse attention, MFA ----------
def attention_rows(ops):
    """The ``attention`` rows (one per layer kind), as dicts of per-occurrence values."""
    idx = np.flatnonzero(ops.name == "attention")
    cols = ("flops", "kv_read_bytes", "kv_write_bytes", "count")
    return [{c: float(np.ravel(getattr(ops, c)[i])[0]) for c in cols} for i in idx]


def test_gpt_oss_20b_kv_bytes_sliding_vs_full_hand_computed():
    """gpt-oss-20b, fp16: 8 KV heads x (64 + 64) x 2 B = 2,048 B per token and layer.
    Context 64 (inside the 128 window): all 24 layers keep 64 tokens: 24 x 64 x 2048 = 3,145,728 B.
    Context 4096: 12 full layers keep 4096 tokens, 12 sliding ones their 128-token window:
    12 x 4096 x 2048 + 12 x 128 x 2048 = 100,663,296 + 3,145,728 = 103,809,024 B."""
    spec = load_model("gpt-oss-20b")
    assert float(kv_cache_bytes(spec, FP16, 1, 64)) == 3_145_728
    assert float(kv_cache_bytes(spec, FP16, 1, 4096)) == 103_809_024
    assert float(kv_cache_bytes(spec, FP16, 3, 4096)) == 3 * 103_809_024
    assert kv_bytes_per_token(spec, FP16) == 24 * 2048  # a paged pool's slot per token and all layers


def test_gpt_oss_20b_decode_sliding_attention_hand_computed():
    """Decode at 4096 cached tokens: a sliding layer's query attends its own token and the 127
    before it, 2 x 64 heads x 128 keys x (64 + 64) = 2,097,152 FLOPs, reading 127 cached tokens
    (127 x 2048 B); a full layer attends 4097 keys, 2 x 64 x 4097 x 128 = 67,125,248 FLOPs."""
    rows = attention_rows(build_ops(load_model("gpt-oss-20b"), FP16, phase="decode", batch=1, context=4096))
    sliding, full = sorted(rows, key=lambda r: r["flops"])
    assert sliding["count"] == full["count"] == 12
    assert sliding["flops"] == 2_097_152 and sliding["kv_read_bytes"] == 127 * 2048
    assert full["flops"] == 67_125_248 and full["kv_read_bytes"] == 4096 * 2048
    assert sliding["kv_write_bytes"] == full["kv_write_bytes"] == 2048


def test_sliding_window_prefill_mean_keys_hand_computed():
    """Window 4, 6 new tokens after none cached: positions attend 1, 2, 3, 4, 4, 4 keys, 18 in all
    (3 per query on average); after 2 cached: positions 2..7 attend 3, 4, 4, 4, 4, 4 = 23 keys.
    One layer, 2 heads of 8 dims: FLOPs = 2 x 2 heads x keys x (8 + 8)."""
    cfg = {
        "model_type": "mistral",
        "num_hidden_layers": 1,
        "hidden_size": 16,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "vocab_size": 10,
        "sliding_window": 4,
    }
    spec = spec_from_config(cfg, "tiny-swa")
    (att,) = attention_rows(build_ops(spec, FP16, phase="prefill", batch=1, tokens=6))
    assert att["flops"] == 2 * 2 * 18 * 16
    (att,) = attention_rows(build_ops(spec, FP16, phase="prefill", batch=1, tokens=6, context=2))
    assert att["flops"] == 2 * 2 * 23 * 16 and att["kv_read_bytes"] == 2 * 2 * 16 * 2  # 2 cached tokens


def test_llama4_chunked_attention_hand_computed():
    """Llama-4 Scout, fp16, 8 KV heads x 256 x 2 B = 4,096 B per token and layer. At 10,000 cached
    tokens a chunked layer's query sits at offset 10000 - 8192 = 1808 of its chunk: it attends
    1809 keys and reads 1808 cached tokens; a NoPE full layer reads all 10,000. The cache keeps
    min(10000, 8192) tokens in the 36 chunked layers (the chunk an engine reserves) and 10,000
    in the 12 full ones: (36 x 8192 + 12 x 10000) x 4096 B = 1,699,479,552 B."""
    spec = load_model("llama-4-scout-17b-16e")
    rows = attention_rows(build_ops(spec, FP16, phase="decode", batch=1, context=10_000))
    chunked = next(r for r in rows if r["count"] == 36)
    full = next(r for r in rows if r["count"] == 12)
    assert chunked["flops"] == gemm_flops(40, 1809, 256) and chunked["kv_read_bytes"] == 1808 * 4096
    assert full["flops"] == gemm_flops(40, 10_001, 256) and full["kv_read_bytes"] == 10_000 * 4096
    assert float(kv_cache_bytes(spec, FP16, 1, 10_000)) == (36 * 8192 + 12 * 10_000) * 4096 == 1_699_479_552


def test_chunked_prefill_keys_match_a_brute_force_count():
    """Mean keys per query, closed form vs counting position by position (chunk 8192)."""
    spec = load_model("llama-4-scout-17b-16e")
    L, T = 7000, 3000
    brute = sum(p % 8192 + 1 for p in range(L, L + T))
    rows = attention_rows(build_ops(spec, FP16, phase="prefill", batch=1, tokens=T, context=L))
    chunked = next(r for r in rows if r["count"] == 36)
    assert chunked["flops"] == pytest.approx(gemm_flops(40 * T, brute / T, 256), rel=1e-12)


def test_linear_attention_state_is_independent_of_context():
    """Qwen3.5-397B-A17B, fp16 activations: a Gated DeltaNet layer keeps 64 value heads x 128 x 128
    recurrent state in fp32 (mamba_ssm_dtype) = 4,194,304 B and a conv state of 12,288 channels x 3
    taps x 2 B = 73,728 B per sequence, whatever the context. 45 such layers: 192,061,440 B.
    The 15 full-attention layers add 2 KV heads x 512 x 2 B = 2,048 B per token each."""
    spec = load_model("qwen3.5-397b-a17b")
    state = 45 * (64 * 128 * 128 * 4 + 12_288 * 3 * 2)
    assert state == 192_061_440 == kv_state_bytes_per_seq(spec, FP16)
    for ctx in (0, 1, 1000, 100_000):
        assert float(kv_cache_bytes(spec, FP16, 2, ctx)) == 2 * (state + ctx * 15 * 2048)
    assert kv_bytes_per_token(spec, FP16) == 15 * 2048


def test_linear_attention_flops_are_linear_in_tokens():
    """Per token a DeltaNet value head does three k x v matrix-vector products over its state:
    3 x 2 x 128 x 128 FLOPs; its state is read and written once per sequence and step."""
    spec = load_model("qwen3.5-397b-a17b")
    state_layer = kv_state_bytes_per_seq(spec, FP16) / 45
    for ctx in (10, 50_000):
        rows = attention_rows(build_ops(spec, FP16, phase="decode", batch=4, context=ctx))
        lin = next(r for r in rows if r["count"] == 45)
        assert lin["flops"] == 4 * 64 * 3 * 2 * 128 * 128
        assert lin["kv_read_bytes"] == lin["kv_write_bytes"] == pytest.approx(4 * state_layer)
    pre = attention_rows(build_ops(spec, FP16, phase="prefill", batch=1, tokens=1000))
    assert next(r for r in pre if r["count"] == 45)["flops"] == 1000 * 64 * 3 * 2 * 128 * 128


def test_linear_attention_heads_must_divide_tp():
    with pytest.raises(ConfigError, match="linear attention"):
        build_ops(load_model("qwen3.5-397b-a17b"), FP16, phase="decode", batch=1, tp=32)


def test_glm5_sparse_attention_decode_hand_computed():
    """GLM-5 at 10,000 cached tokens, fp16: the indexer's 32 heads of 128 score all 10,000 cached keys
    and the new one (2 x 32 x 10001 x 128 FLOPs) reading 10,000 index keys of 128 x 2 B; the MLA
    attention (absorbed) covers only the top 2048: 2 x 64 x 2048 x (576 + 512) FLOPs over 2048
    cached latents of 576 x 2 B. The cache still keeps every token: 78 x 10000 x (576 + 128) x 2 B."""
    spec = load_model("glm-5")
    (att,) = attention_rows(build_ops(spec, FP16, phase="decode", batch=1, context=10_000))
    assert att["flops"] == gemm_flops(64, 2048, 576 + 512) + gemm_flops(32, 10_001, 128)
    assert att["kv_read_bytes"] == 2048 * 576 * 2 + 10_000 * 128 * 2
    assert att["kv_write_bytes"] == (576 + 128) * 2
    assert float(kv_cache_bytes(spec, FP16, 1, 10_000)) == 78 * 10_000 * 704 * 2
    (short,) = attention_rows(build_ops(spec, FP16, phase="decode", batch=1, context=100))
    assert short["flops"] == gemm_flops(64, 101, 1088) + gemm_flops(32, 101, 128)  # dense below top-k


def test_step3_matches_the_step3_report_table2():
    """Step-3 report (arXiv 2507.19427) Table 2, per decoded token with 8-bit KV: KV 2.56e8 B at 8K and
    1.02e9 at 32K (61 layers x 512 B x context), attention 3.27e10 FLOPs at 8K (4 x 64 x 256 x ctx x 61),
    linear (attention projections) 2.07e10, FFN 5.33e10."""
    spec, q8 = load_model("step-3"), FP16.with_kv(8)
    assert float(kv_cache_bytes(spec, q8, 1, 8192)) == 61 * 512 * 8192
    assert float(kv_cache_bytes(spec, q8, 1, 32768)) == pytest.approx(1.02e9, rel=0.01)
    ops = build_ops(spec, q8, phase="decode", batch=1, context=8191)
    f = ops.per_step("flops").ravel()
    assert f[ops.name == "attention"].sum() == 4 * 64 * 256 * 8192 * 61
    assert f[np.isin(ops.name, ["qkv_proj", "q_up", "o_proj"])].sum() == pytest.approx(2.07e10, rel=0.01)
    ffn = ["ffn_up", "ffn_down", "experts_up", "experts_down", "shared_expert_up", "shared_expert_down"]
    assert f[np.isin(ops.name, ffn)].sum() == pytest.approx(5.33e10, rel=0.01)


def test_qwen3_32b_matches_the_step3_report_table2():
    """The same table's Qwen3 32B row: KV 1.07e9 B at 8K (64 layers x 8 heads x 256 x 8192 x 1 B),
    attention 1.72e10 FLOPs, linear 1.21e10."""
    spec, q8 = load_model("qwen3-32b"), FP16.with_kv(8)
    assert float(kv_cache_bytes(spec, q8, 1, 8192)) == pytest.approx(1.07e9, rel=0.01)
    ops = build_ops(spec, q8, phase="decode", batch=1, context=8191)
    f = ops.per_step("flops").ravel()
    assert f[ops.name == "attention"].sum() == pytest.approx(1.72e10, rel=0.01)
    assert f[np.isin(ops.name, ["qkv_proj", "o_proj"])].sum() == pytest.approx(1.21e10, rel=0.01)


@pytest.mark.parametrize("name", preset_names())
def test_per_token_kv_is_kv_of_one_token_without_linear_states(name):
    """For every preset, one cached token costs kv_bytes_per_token; linear states are apart."""
    spec = load_model(name)
    for tp, pp in ((1, 1), (2, 3)):
        if spec.n_heads % tp:
            continue
        one = float(kv_cache_bytes(spec, FP16, 1, 1, tp, pp)) - kv_state_bytes_per_seq(spec, FP16, tp, pp)
        assert one == pytest.approx(kv_bytes_per_token(spec, FP16, tp, pp), rel=1e-12)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_both_phases_over_a_sweep(name):
    spec = load_model(name)
    ctx = np.array([0, 100, 20_000])[None, :]
    dec = build_ops(spec, FP16, phase="decode", batch=np.array([1, 16])[:, None], context=ctx)
    pre = build_ops(
        spec, FP16, phase="prefill", batch=1, tokens=np.array([1, 300, 9000])[:, None], context=ctx
    )
    for ops in (dec, pre):
        assert np.all(np.isfinite(ops.total("flops"))) and np.all(ops.total("flops") > 0)
        assert np.all(ops.total("kv_read_bytes") >= 0)


def test_fp8_collectives_carry_the_16_bit_residual_stream():
    """A W8A8 FP8 model quantizes GEMM inputs but keeps its hidden states in BF16: Llama-3.1-8B at
    TP 2, 4 decode rows, all-reduces 2 x (2-1)/2 x 4 x 4096 x 2 bytes per layer, as in BF16."""
    spec = load_model("llama-3.1-8b")
    kw = dict(phase="decode", batch=4, tokens=1, context=100, tp=2)
    fp8 = build_ops(spec, Quant.from_name("fp8"), **kw)
    bf16 = build_ops(spec, Quant.from_name("bf16"), **kw)
    i = list(fp8.name).index("allreduce_attn")
    assert float(np.ravel(fp8.link_bytes[i])[0]) == pytest.approx(2 * 0.5 * 4 * 4096 * 2)
    assert float(np.ravel(fp8.link_bytes[i])[0]) == float(
        np.ravel(bf16.link_bytes[list(bf16.name).index("allreduce_attn")])[0]
    )
