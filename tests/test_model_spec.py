"""Model presets: parameter counts against published figures, parsing errors, name lookup."""

import json
from importlib.resources import files
from pathlib import Path

import pytest

from workloads.errors import ConfigError, UnknownNameError
from workloads.model_spec import (
    FULL,
    AttentionLayer,
    load_model,
    preset_for,
    preset_index,
    preset_names,
    spec_from_config,
)


@pytest.mark.parametrize("name", preset_names())
def test_preset_param_count_matches_published_within_1pct(name):
    published = float(preset_index()[name]["published_params"])
    counted = load_model(name).n_params()
    assert abs(counted / published - 1) < 0.01, f"{name}: {counted:.4g} vs published {published:.4g}"


def test_required_presets_are_shipped():
    required = {
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "opt-6.7b",
        "opt-13b",
        "opt-30b",
        "opt-66b",
        "opt-175b",
        "qwen1.5-1.8b",
        "qwen2.5-7b",
        "gemma-2b",
        "mixtral-8x7b",
        "deepseek-v3",
        "qwen3-235b-a22b",
        "gpt-oss-120b",
        "deepseek-r1",
        "deepseek-v3.1",
        "kimi-k2.5",
        "qwen3-32b",
        "qwen3.5-397b-a17b",
        "minimax-m2.5",
        "glm-5",
        "gpt-oss-20b",
        "step-3",
        "llama-3.3-70b",
        "llama-4-scout-17b-16e",
        "llama-4-maverick-17b-128e",
    }
    assert required <= set(preset_names())


def test_every_preset_has_a_source():
    for name, entry in preset_index().items():
        assert entry["source"].strip() and entry["params_source"].strip(), name


def test_llama2_7b_hand_count():
    """Llama-2-7B: 32 layers of (4*4096^2 attention + 3*4096*11008 FFN + 2*4096 norms),
    embeddings and LM head 2*32000*4096, final norm 4096 = 6,738,415,616."""
    per_layer = 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096
    assert load_model("llama-2-7b").n_params() == 32 * per_layer + 2 * 32000 * 4096 + 4096 == 6_738_415_616


def test_internlm_and_baichuan2_hand_counts():
    """InternLM v1 is Llama's layer (a gated FFN: gate, up and down) whose q, k, v and o take a
    bias when its config's ``bias`` says so; Baichuan2-13B states its 4,096-token context only as
    ``model_max_length`` (ALiBi, no ``max_position_embeddings``)."""
    layer = 4 * 5120**2 + 3 * 5120 * 13824 + 2 * 5120  # InternLM-20B: bias false
    assert load_model("internlm-20b").n_params() == 60 * layer + 2 * 103168 * 5120 + 5120 == 20_088_714_240
    cfg = json.loads((files("workloads.presets") / "internlm-20b.json").read_text())
    biased = spec_from_config({**cfg, "bias": True}, "internlm-20b-biased")
    assert biased.n_params() == 20_088_714_240 + 60 * 4 * 5120
    baichuan = load_model("baichuan2-13b")
    layer = 4 * 5120**2 + 3 * 5120 * 13696 + 2 * 5120
    assert baichuan.n_params() == 40 * layer + 2 * 125696 * 5120 + 5120 and baichuan.max_context == 4096


def test_stablelm_hand_count():
    """StableLM 2 1.6B's config (model_type stablelm): a gated FFN (StableLmMLP's gate, up and
    down), LayerNorm with bias, and q, k, v biases under ``use_qkv_bias``: 24 layers of
    (4 x 2048^2 + 3 x 2048 (biases) + 3 x 2048 x 5632 + 2 x 2 x 2048), untied embeddings and LM
    head 2 x 100352 x 2048, final norm 2 x 2048."""
    cfg = {"model_type": "stablelm", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24}
    cfg |= {"num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 100352, "use_qkv_bias": True}
    cfg |= {"layer_norm_eps": 1e-05, "tie_word_embeddings": False, "partial_rotary_factor": 0.25}
    spec = spec_from_config(cfg, "stablelm-2-1_6b")
    layer = 4 * 2048**2 + 3 * 2048 + 3 * 2048 * 5632 + 4 * 2048
    assert spec.ffn_gated and spec.norm == "layernorm" and spec.qkv_bias
    assert spec.n_params() == 24 * layer + 2 * 100352 * 2048 + 2 * 2048 == 1_644_515_328
    assert not spec_from_config({**cfg, "use_qkv_bias": False}, "no-bias").qkv_bias


def test_qwen_v1_and_chatglm3_hand_counts():
    """Qwen v1's intermediate_size is both FFN branches (w1 and w2 take half each) and its fused
    QKV keeps a bias although no_bias is true; ChatGLM3's num_layers, ffn_hidden_size,
    padded_vocab_size and multi_query_group_num (2 K and V groups) are its shape fields."""
    qwen = load_model("qwen-7b")
    layer = 4 * 4096**2 + 3 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    assert qwen.n_params() == 32 * layer + 2 * 151936 * 4096 + 4096 == 7_721_324_544
    glm = load_model("chatglm3-6b")
    assert (glm.n_layers, glm.n_kv_heads, glm.max_context) == (28, 2, 8192)
    layer = 2 * 4096**2 + 2 * 4096 * 256 + (4096 + 512) + 3 * 4096 * 13696 + 2 * 4096
    assert glm.n_params() == 28 * layer + 2 * 65024 * 4096 + 4096 == 6_243_584_000


def test_starcoder2_ties_its_head_unless_told_and_qwen1_5_32b_is_gqa():
    """Starcoder2Config leaves ``tie_word_embeddings`` at PretrainedConfig's true: the 3B config
    states no such key and stores one embedding; the 15B states false. Its LayerNorms and every
    projection carry a bias (``use_bias``, default true). Qwen1.5-32B is the one
    Qwen1.5 below 110B with grouped KV heads (8 of 40)."""
    sc = load_model("starcoder2-3b")
    layer = (3072 * 3072 + 3072) * 2 + 2 * (3072 * 256 + 256) + 2 * (3072 * 12288) + 12288 + 3072 + 4 * 3072
    assert sc.tied_embeddings and not load_model("starcoder2-15b").tied_embeddings
    assert sc.n_params() == 30 * layer + 49152 * 3072 + 2 * 3072 == 3_030_371_328
    qwen = load_model("qwen1.5-32b")
    assert (qwen.n_heads, qwen.n_kv_heads) == (40, 8)
    layer = 5120 * 5120 * 2 + 2 * 5120 * 1024 + 5120 + 2 * 1024 + 3 * 5120 * 27392 + 2 * 5120
    assert qwen.n_params() == 64 * layer + 2 * 152064 * 5120 + 5120 == 32_512_218_112


def test_deepseek_v3_2_is_v3_with_a_lightning_indexer_in_every_layer():
    """DeepSeek-V3.2 adds to each of V3's 61 layers the indexer of its sparse attention: a query
    projection from the 1,536-wide q latent to 64 heads of 128, one 128-wide key projection, a
    per-head weight projection from the hidden state and the key's LayerNorm."""
    indexer = 1536 * 64 * 128 + 7168 * 128 + 7168 * 64 + 2 * 128
    v3, v32 = load_model("deepseek-v3"), load_model("deepseek-v3.2")
    assert v32.n_params() - v3.n_params() == 61 * indexer == 851_524_864


def test_gemma2_has_four_norms_per_layer():
    """Gemma 2 norms each sublayer's input and output (HF Gemma2DecoderLayer): its count equals
    the published one (keras-hub gemma2_9b_en: 9,241,705,984), and a step moves a hidden state
    through four norms per layer where Llama moves it through two."""
    assert load_model("gemma-2-9b").n_params() == 9_241_705_984
    from workloads.graph import build_ops
    from workloads.quant import Quant

    def norm_bytes(name: str) -> float:
        ops = build_ops(load_model(name), Quant.from_name("bf16"), phase="prefill", batch=1, tokens=100)
        norms = ops.kind == "norm"
        return float((ops.count[norms] * ops.memory_bytes[norms].ravel()).sum())

    spec = load_model("gemma-2-9b")
    per_norm = (
        2 * 100 * spec.hidden_size * 2 + spec.hidden_size * 2
    )  # the hidden state in and out, its weight
    final = 2 * spec.hidden_size * 2 + spec.hidden_size * 2  # the last position only
    assert norm_bytes("gemma-2-9b") == pytest.approx(4 * spec.n_layers * per_norm + final)


def test_attention_kinds_and_moe_shapes():
    assert load_model("llama-2-7b").attention_kind == "mha"
    assert load_model("llama-3.1-8b").attention_kind == "gqa"
    assert load_model("gemma-2b").attention_kind == "mqa"
    ds = load_model("deepseek-v3")
    assert ds.attention_kind == "mla" and ds.kv_elems_per_token_layer == 512 + 64
    assert ds.moe.n_moe_layers == 58 and ds.n_dense_layers == 3 and ds.moe.n_shared_experts == 1
    # DeepSeek-V3 activates about 37B parameters per token (DeepSeek-V3 report, abstract)
    assert abs(ds.n_active_params() / 37e9 - 1) < 0.03
    mixtral = load_model("mixtral-8x7b")
    assert abs(mixtral.n_active_params() / 12.9e9 - 1) < 0.02  # Mistral AI: 12.9B active of 46.7B


def test_lookup_ignores_case():
    assert load_model("Llama-2-7B").name == "llama-2-7b"


def test_unknown_model_lists_closest():
    with pytest.raises(UnknownNameError, match="llama-2-7b"):
        load_model("llama2-7")


def test_loose_names_find_the_preset():
    """Case, spaces, a missing hyphen after the family, -Instruct/-chat/-hf suffixes and a
    quantized checkpoint's format words (with a note: ``test_names``) are the same preset; a dot
    stays significant (Qwen2-57B is not Qwen2.5-7B)."""
    assert load_model("llama2-7b").name == "llama-2-7b"
    assert load_model("Llama 3.1 70B Instruct").name == "llama-3.1-70b"
    assert load_model("llama-2-70b-chat").name == "llama-2-70b"
    assert load_model("some-org/Llama-3.1-8B-Instruct").name == "llama-3.1-8b"
    assert preset_for("qwen2-57b") is None
    assert preset_for("llama-3.1-8b-fp8") == "llama-3.1-8b"
    assert preset_for("fp8") is None  # a format word alone names nothing


def test_config_missing_field_names_it(tmp_path):
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "vocab_size": 100,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="intermediate_size"):
        load_model(str(path))


def test_config_bad_value_names_field_and_value(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": -2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "intermediate_size": 128,
                "vocab_size": 100,
            }
        )
    )
    with pytest.raises(ConfigError, match="num_hidden_layers.*-2"):
        load_model(str(path))


def test_config_from_path_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "intermediate_size": 128,
                "vocab_size": 100,
            }
        )
    )
    spec = load_model(str(path))
    assert spec.n_params() == 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 2 * 100 * 64 + 64


# ----- layer kinds, multimodal wrappers, MTP ------------------------------------------------
def test_gpt_oss_alternates_sliding_and_full_layers():
    """gpt-oss-20b's layer_types: 24 layers, sliding (window 128) at even indices, full at odd."""
    spec = load_model("gpt-oss-20b")
    slide = AttentionLayer("sliding", 128)
    assert spec.attention_layers == tuple(slide if i % 2 == 0 else FULL for i in range(24))
    assert dict(spec.layer_kind_counts) == {slide: 12, FULL: 12}
    assert spec.attn_sinks and spec.n_attention_layers == 24


def test_llama4_chunks_rope_layers_and_keeps_every_fourth_full():
    """Llama 4 (no no_rope_layers in the file: HF default interval 4): layers 3, 7, ... are NoPE
    and full; the other 36 attend within 8192-token chunks. Maverick's MoE is on odd layers."""
    scout, maverick = load_model("llama-4-scout-17b-16e"), load_model("llama-4-maverick-17b-128e")
    chunk = AttentionLayer("chunked", 8192)
    assert scout.attention_layers == tuple(FULL if i % 4 == 3 else chunk for i in range(48))
    assert scout.text_config_of == "llama4" and scout.moe.n_moe_layers == 48
    assert maverick.moe.n_moe_layers == 24 and maverick.n_dense_layers == 24 and maverick.ffn_size == 16384
    assert maverick.moe.expert_ffn_size == 8192 and maverick.moe.n_shared_experts == 1


def test_mistral_slides_every_layer_and_qwen_window_is_off():
    assert set(load_model("mistral-7b").attention_layers) == {AttentionLayer("sliding", 4096)}
    assert load_model("qwen1.5-1.8b").layer_kinds == ()  # use_sliding_window false


def test_qwen35_hybrid_layers_and_linear_attention_hand_count():
    """Qwen3.5-397B-A17B: 3 Gated DeltaNet layers then 1 gated full-attention layer, x15.
    One DeltaNet layer (hidden 4096; 16 key heads and 64 value heads of 128; conv kernel 4):
    in-projections 4096 x (conv 12288 + z 8192 + b, a 128) = 84,410,368; conv 12288 x 4 = 49,152;
    A_log and dt_bias 128; norm 128; out 8192 x 4096 = 33,554,432; total 118,014,208.
    The full layers: q_proj 4096 x (32 x 256 x 2, with the gate) = 67,108,864, k and v 2 x 4096 x 512,
    o 8192 x 4096, q/k norms 2 x 256 = 104,858,112."""
    spec = load_model("qwen3.5-397b-a17b")
    assert spec.text_config_of == "qwen3_5_moe"
    assert spec.n_linear_layers == 45 and spec.n_attention_layers == 15
    assert spec.attention_layers[:4] == (AttentionLayer("linear"),) * 3 + (FULL,)
    assert spec.linear_attention_params() == 118_014_208
    assert spec.attention_params() == 104_858_112
    assert spec.linear_attn.state_bits == 32  # mamba_ssm_dtype float32
    assert spec.n_mtp_layers == 1 and spec.moe.shared_expert_gate
    assert abs(spec.n_active_params() / 17e9 - 1) < 0.03  # A17B


def test_qwen3_next_without_layer_types_takes_the_interval():
    """Qwen3-Next-80B-A3B's config.json states full_attention_interval 4 and no layer_types: layers
    3, 7, ..., 47 are full attention and the other 36 Gated DeltaNet (HF Qwen3NextConfig). Stated
    layer_types win over the interval."""
    spec = load_model("qwen3-next-80b-a3b")
    assert spec.n_attention_layers == 12 and spec.n_linear_layers == 36
    assert spec.attention_layers[:4] == (AttentionLayer("linear"),) * 3 + (FULL,)
    assert (
        spec.n_params() == 79_674_391_296
    )  # the safetensors' 81,324,862,720 less the 1,650,471,424 MTP weights
    cfg = json.loads(
        (Path(__file__).parent.parent / "workloads" / "presets" / "qwen3-next-80b-a3b.json").read_text()
    )
    cfg["layer_types"] = ["full_attention"] * 48
    assert spec_from_config(cfg, name="all-full").n_linear_layers == 0


def test_kimi_k25_reads_its_text_config():
    spec = load_model("kimi-k2.5")
    assert spec.text_config_of == "kimi_k25" and spec.family == "kimi_k2"
    assert spec.attention_kind == "mla" and spec.moe.n_routed_experts == 384 and spec.n_dense_layers == 1


def test_mtp_layers_are_recorded_not_counted():
    """DeepSeek-V3: num_nextn_predict_layers 1 is recorded; n_params is the 671B main model."""
    assert load_model("deepseek-v3").n_mtp_layers == 1
    assert load_model("glm-5").n_mtp_layers == 1
    assert load_model("minimax-m2.5").n_mtp_layers == 3  # use_mtp, num_mtp_modules 3
    assert load_model("llama-3.3-70b").n_mtp_layers == 0
    assert abs(load_model("deepseek-v3").n_params() / 671e9 - 1) < 0.001


def test_glm5_sparse_attention_indexer_hand_count():
    """GLM-5: MLA plus a DSA indexer per layer: wq_b 2048 x (32 x 128) = 8,388,608, wk 6144 x 128 = 786,432,
    k_norm LayerNorm 2 x 128, weights_proj 6144 x 32 = 196,608: 9,371,904. Cache per token and layer:
    latent 512 + RoPE key 64 + index key 128."""
    spec = load_model("glm-5")
    assert spec.indexer.topk == 2048 and spec.indexer_params() == 9_371_904
    assert spec.kv_elems_per_token_layer == 512 + 64 + 128
    assert spec.layer_pattern == "full x78 + sparse top-2048"


def test_step3_mfa_hand_count():
    """Step-3 MFA per layer: 7168 x (2048 + 2 x 256) fused qkv, RMSNorm 2048, 2048 x 64 x 256 query up,
    64 x 256 x 7168 out = 169,347,072. 61 layers, 5 dense (18432), 56 MoE (48 experts + 1 shared of 5120);
    the Step-3 report's 316B LLM and 38B active."""
    spec = load_model("step-3")
    assert spec.n_kv_heads == 1 and spec.q_low_rank == 2048 and spec.attention_kind == "mqa"
    assert (
        spec.attention_params()
        == 7168 * (2048 + 512) + 2048 + 2048 * 64 * 256 + 64 * 256 * 7168
        == 169_347_072
    )
    assert spec.n_dense_layers == 5 and spec.moe.n_moe_layers == 56
    assert abs(spec.n_active_params() / 38e9 - 1) < 0.03


def test_minimax_m2_per_layer_qk_norm():
    """MiniMax-M2 qk_norm_type per_layer: q norm over 48 x 128 and k norm over 8 x 128 channels."""
    spec = load_model("minimax-m2.5")
    h, q, kv = 3072, 48 * 128, 8 * 128
    assert spec.qk_norm_scope == "layer"
    assert spec.attention_params() == h * q + 2 * h * kv + q * h + q + kv
    assert spec.moe.router_bias and spec.moe.n_shared_experts == 0 and spec.n_dense_layers == 0


def _tiny(**extra):
    base = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "vocab_size": 100,
    }
    return base | extra


@pytest.mark.parametrize(
    "extra,match",
    [
        (dict(model_type="minimax_m2", attn_type_list=[0, 1]), "attn_type_list.*lightning"),
        (dict(layer_types=["full_attention", "mamba"]), r"layer_types'\[1\] is 'mamba'"),
        (dict(layer_types=["full_attention"]), "layer_types' has 1 entries for 2 layers"),
        (dict(compress_ratios=[0, 4]), "compress_ratios.*compressed"),
        (dict(indexer_types=["full", "shared"]), "indexer_types.*shared"),
        (dict(model_type="gemma2", sliding_window=4096), "sliding_window.*layer_types"),
        (dict(layer_types=["linear_attention", "full_attention"]), "linear_num_key_heads"),
        (dict(index_topk=2048), "index_topk.*without MLA"),
    ],
)
def test_unmodelled_attention_is_refused_naming_the_field(extra, match):
    with pytest.raises(ConfigError, match=match):
        spec_from_config(_tiny(**extra), "tiny")


def test_sliding_layer_types_need_a_window(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_tiny(layer_types=["sliding_attention", "full_attention"])))
    with pytest.raises(ConfigError, match="sliding_window"):
        load_model(str(path))


def test_dbrx_nested_config_reads_as_its_shape():
    """DBRX keeps its shape in n_layers, n_heads, attn_config and ffn_config (HF DbrxConfig): 40
    layers of 6144, 8 KV heads, 16 GLU experts of 10752 with 4 per token, so 36.5B of its 131.6B
    act per token (Databricks: 132B total, 36B active)."""
    spec = load_model("dbrx")
    assert (spec.n_layers, spec.hidden_size, spec.n_kv_heads, spec.ffn_gated) == (40, 6144, 8, True)
    assert (spec.moe.n_routed_experts, spec.moe.n_active_experts, spec.moe.expert_ffn_size) == (16, 4, 10752)
    assert spec.n_active_params() == pytest.approx(36.47e9, rel=1e-3)
    cfg = json.loads((Path(__file__).parent.parent / "workloads" / "presets" / "dbrx.json").read_text())
    with pytest.raises(ConfigError, match="attn_config"):
        spec_from_config(cfg | {"attn_config": 8}, "dbrx")


def test_older_families_read_as_their_hf_modules():
    """StarCoder (gpt_bigcode) is multi-query: one K and one V head of 128 over 40 layers, so a
    16-bit cached token is 2 x 40 x 128 x 2 = 20,480 bytes, not 48 heads' 983,040; Phi-2 runs
    attention and MLP on one LayerNorm per layer; MPT-7B reads its widths from d_model, n_layers,
    n_heads and expansion_ratio (FFN 4 x 4,096) and has no biases; GPT-NeoX-20B's projections
    carry biases."""
    from workloads.graph import kv_bytes_per_token
    from workloads.quant import Quant

    starcoder = load_model("starcoder")
    assert (starcoder.n_heads, starcoder.n_kv_heads, starcoder.tied_embeddings) == (48, 1, True)
    assert kv_bytes_per_token(starcoder, Quant.from_name("fp16")) == 2 * 40 * 128 * 2
    phi = load_model("phi-2")
    assert (phi.norm, phi.norms_per_layer, phi.qkv_bias, phi.lm_head_bias) == ("layernorm", 1, True, True)
    mpt = load_model("mpt-7b")
    assert (mpt.n_layers, mpt.hidden_size, mpt.n_heads, mpt.ffn_size) == (32, 4096, 32, 16384)
    assert not (mpt.qkv_bias or mpt.ffn_bias) and mpt.tied_embeddings
    neox = load_model("gpt-neox-20b")
    assert neox.qkv_bias and neox.ffn_bias and not neox.tied_embeddings
