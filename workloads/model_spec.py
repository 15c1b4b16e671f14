"""``ModelSpec``: the shape of a transformer, built from a HuggingFace ``config.json``.

A spec is read once (from a file path or the name of a preset shipped in
``workloads/presets/``), validated, and frozen. Nothing here knows hardware or bits.
Parameter counts follow the published architectures; a test checks every preset
against its published total within 1%.

Layers need not all attend alike. ``ModelSpec.layer_kinds`` lists each layer's
``AttentionLayer``: full causal attention, a sliding window (gpt-oss, Mistral), chunked
local attention (Llama 4's RoPE layers), or a linear-attention recurrence with a fixed
state per sequence (Qwen3-Next/Qwen3.5 Gated DeltaNet). DeepSeek Sparse Attention (an
indexer that picks the top-k cached tokens for each query) is an ``IndexerSpec`` on an
MLA model. Configs whose attention hwsim does not model are refused with a
``ConfigError`` naming the field.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from workloads.errors import ConfigError, HwsimNote, names_holding, shown_value, unknown_name
from workloads.files import exists, is_dir, is_file, read_json_mapping
from workloads.shipped import parse_yaml

GATED_FAMILIES = frozenset(
    {
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "phi3",
        "mixtral",
        "qwen2_moe",
        "qwen3_moe",
        "deepseek_v2",
        "deepseek_v3",
        "deepseek_v32",
        "kimi_k2",
        "gpt_oss",
        "llama4_text",
        "minimax_m2",
        "qwen3_next",
        "qwen3_5_text",
        "qwen3_5_moe_text",
        "glm_moe_dsa",
        "step3_text",
        "cohere",
        "cohere2",
        "granite",
        "granitemoe",
        "granitemoeshared",
        "olmo",
        "olmo2",
        "olmoe",
        "exaone",
        "internlm",
        "internlm2",
        "internlm3",
        "qwen",
        "chatglm",
        "baichuan",
        "gemma3",
        "gemma3_text",
        "phimoe",
        "glm4",
        "glm4_moe",
        "deepseek",
        "dbrx",
        "qwen2_vl",
        "qwen2_5_vl",
        "stablelm",
        "stablelm_epoch",
    }
)
"""Model families whose FFN is gated (SwiGLU/GeGLU: gate, up and down matrices; HF transformers'
modeling files: GraniteMLP, OlmoMLP, Gemma3MLP, PhimoeBlockSparseTop2MLP, Glm4MoeMLP, DbrxExpertGLU
(w1, v1, w2) ... have ``gate_proj`` or ``w1``/``w3`` beside the down projection; DeepSeek-MoE's
``modeling_deepseek.py`` DeepseekMLP likewise, InternLM v1's InternLMMLP and InternLM3's InternLM3MLP
(gate_proj, up_proj, down_proj; transformers' models/internlm3/modeling_internlm3.py); Qwen v1's QWenMLP
(w1, w2, c_proj) and ChatGLM's MLP (dense_h_to_4h of twice the width, SwiGLU, dense_4h_to_h); Qwen2-VL's and Qwen2.5-VL's language model is
Qwen2's, its fields at the top level of their configs; StableLM's, 2 and the earlier ``stablelm_epoch``
configs alike: transformers' StableLmMLP and vLLM's StablelmMLP, gate_up_proj of twice the width and
down_proj)."""

TIED_BY_DEFAULT = frozenset(
    {
        "gemma",
        "gemma2",
        "gemma3_text",
        "opt",
        "falcon",
        "cohere",
        "cohere2",
        "gpt2",
        "gpt_bigcode",
        "mpt",
        "starcoder2",
    }
)
"""Families whose HF config class ties the LM head to the embedding unless ``tie_word_embeddings``
says otherwise (GemmaConfig, Gemma2Config, CohereConfig, Cohere2Config, OPTConfig, FalconConfig:
``tie_word_embeddings=True`` in their signatures; GPT2Config, GPTBigCodeConfig and Starcoder2Config
leave it at ``PretrainedConfig``'s true; MPT reads its output through the token embedding)."""

UNGATED_FAMILIES = frozenset(
    {
        "opt",
        "gptj",
        "gpt2",
        "gpt_neox",
        "falcon",
        "bloom",
        "starcoder2",
        "nemotron",
        "phi",
        "mpt",
        "gpt_bigcode",
    }
)
"""Model families whose FFN is two matrices (up, activation, down)."""

LAYERNORM_FAMILIES = frozenset(
    {
        "opt",
        "gptj",
        "gpt2",
        "gpt_neox",
        "falcon",
        "bloom",
        "gpt_bigcode",
        "phi",
        "starcoder2",
        "stablelm",
        "stablelm_epoch",
    }
)
"""Families that use LayerNorm (weight and bias) rather than RMSNorm (weight only); StableLM's
decoder layers hold ``nn.LayerNorm`` (transformers' StableLmDecoderLayer, vLLM's stablelm.py)."""

BIASED_FAMILIES = frozenset({"opt", "gpt2", "gpt_bigcode", "phi", "bloom"})
"""Families whose attention and FFN projections all carry a bias by their HF modules
(``OPTAttention`` under ``enable_bias``, GPT-2's and GPTBigCode's ``Conv1D``/``Linear`` c_attn,
c_proj and c_fc, ``PhiAttention``'s q, k, v and dense with ``PhiMLP``'s fc1 and fc2, Bloom's
query_key_value, dense and MLP); GPT-NeoX's follow its ``attention_bias`` (default true)."""

LEARNED_POSITION_FAMILIES = frozenset({"gpt2", "gpt_bigcode"})
"""Families with a learned position embedding of ``n_positions`` rows (HF ``wpe``)."""

LAYER_TYPES = {
    "full_attention": "full",
    "sliding_attention": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "linear",
}
"""``layer_types`` values of HF configs and the ``AttentionLayer.kind`` each maps to."""

INTERVAL_LINEAR_FAMILIES = frozenset({"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"})
"""Families whose linear/full interleave, when ``layer_types`` is absent, is every
``full_attention_interval``-th layer full and the rest Gated DeltaNet (HF ``Qwen3NextConfig``:
``"linear_attention" if bool((i + 1) % full_attention_interval) else "full_attention"``, interval 4
by default; the Qwen3-Next-80B config.json states only the interval)."""
INTERLEAVED_SLIDING_FAMILIES = frozenset({"gemma2", "gemma3", "gemma3_text", "cohere2"})
"""Families whose sliding/full interleave is a code default when ``layer_types`` is absent."""
SANDWICH_NORM_FAMILIES = frozenset({"gemma2", "gemma3", "gemma3_text"})
"""Families whose blocks norm each sublayer's input and its output before the residual add: four
RMSNorms per layer (HF ``Gemma2DecoderLayer``: input, post-attention, pre- and post-feedforward)."""
PARALLEL_BLOCK_FAMILIES = frozenset({"gptj", "cohere", "cohere2", "phi"})
"""Families whose attention and FFN read the same normed input and add to the residual together:
one norm per layer (HF ``GPTJBlock``, ``CohereDecoderLayer``, ``PhiDecoderLayer``). Cohere's LayerNorm has no bias
(``CohereLayerNorm``), so its weights and traffic are an RMSNorm's, as which it is priced."""

UNMODELLED_FIELDS = {
    "compress_ratios": "compressed (DeepSeek-V4 style) attention layers are not modelled",
    "hc_mult": "hyper-connections (several residual streams per layer) are not modelled",
    "indexer_types": "indexers shared across layers (some layers reuse another layer's top-k) are not modelled",
    "index_topk_freq": "indexers shared across layers (some layers reuse another layer's top-k) are not modelled",
    "attention_other_setting": "per-layer-kind attention head counts are not modelled",
    "block_types": "per-layer block types (Mamba/attention hybrids in this spelling) are not modelled",
    "hybrid_override_pattern": "Mamba/attention hybrid layers are not modelled",
}
"""Config fields that declare an attention or layer structure hwsim does not model; a config
carrying one (with a value other than null/empty) is refused, the reason in the message."""


@dataclass(frozen=True, slots=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and a compressed KV latent.

    Ranks and head dims as in the DeepSeek-V3 config (``q_lora_rank`` 0 means Q is not compressed).
    """

    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True, slots=True)
class MoESpec:
    """Mixture of experts: routed experts, experts active per token, shared experts, dense layers."""

    n_routed_experts: int
    n_active_experts: int
    expert_ffn_size: int
    n_shared_experts: int
    n_moe_layers: int
    router_bias: bool
    expert_bias: bool
    shared_expert_ffn_size: int = 0
    """Intermediate size of each shared expert; 0 means ``expert_ffn_size``."""
    shared_expert_gate: bool = False
    """A sigmoid gate (hidden -> 1) scales the shared expert's output (Qwen2/3-MoE style)."""

    @property
    def shared_ffn_size(self) -> int:
        """Intermediate size of one shared expert."""
        return self.shared_expert_ffn_size or self.expert_ffn_size


@dataclass(frozen=True, slots=True)
class AttentionLayer:
    """How one layer mixes tokens.

    ``kind`` is ``full`` (causal attention over the whole prefix), ``sliding`` (each query
    attends its own token and the ``window - 1`` before it, HF ``sliding_window``
    semantics), ``chunked`` (each query attends the tokens of its own ``window``-token
    chunk, Llama 4 ``attention_chunk_size``) or ``linear`` (a recurrence with a fixed state
    per sequence, ``LinearAttnSpec``; ``window`` is 0). The op graph also uses ``sparse``
    (``window`` = the indexer's top-k) for DeepSeek sparse attention's key count.
    """

    kind: str
    window: int = 0


FULL = AttentionLayer("full")


@dataclass(frozen=True, slots=True)
class LinearAttnSpec:
    """Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5).

    Queries and keys have ``n_key_heads`` heads of ``key_head_dim``; values and the output
    have ``n_value_heads`` heads of ``value_head_dim`` (keys are shared by
    ``n_value_heads / n_key_heads`` value heads). Each value head keeps a
    ``key_head_dim x value_head_dim`` recurrent state, and a causal depthwise convolution of
    ``conv_kernel`` taps over q, k and v keeps its last ``conv_kernel - 1`` inputs.
    ``state_bits`` is the recurrent state's width when the config fixes it
    (``mamba_ssm_dtype``), else 0 (the activation width).
    """

    n_key_heads: int
    n_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int
    state_bits: int = 0

    @property
    def conv_dim(self) -> int:
        """Channels through the short convolution: q, k and v."""
        return 2 * self.n_key_heads * self.key_head_dim + self.n_value_heads * self.value_head_dim

    def recurrent_state_elems(self, tp: int = 1) -> float:
        """Recurrent-state elements per sequence and layer on one of ``tp`` devices."""
        return (self.n_value_heads / tp) * self.key_head_dim * self.value_head_dim

    def conv_state_elems(self, tp: int = 1) -> float:
        """Convolution-state elements per sequence and layer on one of ``tp`` devices."""
        return self.conv_dim / tp * (self.conv_kernel - 1)


@dataclass(frozen=True, slots=True)
class IndexerSpec:
    """DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2, GLM-5).

    Per query, ``n_heads`` heads of ``head_dim`` score every cached token against a cached
    ``head_dim`` index key; the MLA attention then runs over the ``topk`` best tokens only.
    """

    n_heads: int
    head_dim: int
    topk: int


@lru_cache(maxsize=256)
def _kind_counts(
    layer_kinds: tuple[AttentionLayer, ...], n_layers: int
) -> tuple[tuple[AttentionLayer, int], ...]:
    """``ModelSpec.layer_kind_counts`` of ``layer_kinds`` (empty: ``n_layers`` full-attention
    layers), memoized: step building asks for it many times per op table."""
    counts: dict[AttentionLayer, int] = {}
    for kind in layer_kinds or (FULL,) * n_layers:
        counts[kind] = counts.get(kind, 0) + 1
    return tuple(counts.items())


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A decoder-only transformer's shape. Sizes are element counts, not bytes.

    ``layer_kinds`` gives each layer's ``AttentionLayer`` (empty: every layer is full
    attention). ``n_mtp_layers`` records multi-token-prediction layers
    (``num_nextn_predict_layers`` and its spellings); they are not part of the main
    forward pass and are not counted in ``n_params``.
    """

    name: str
    family: str
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_size: int
    ffn_gated: bool
    vocab_size: int
    tied_embeddings: bool
    norm: str
    norms_per_layer: int
    qk_norm: bool
    qkv_bias: bool
    out_bias: bool
    ffn_bias: bool
    n_learned_positions: int
    attn_sinks: bool
    lm_head_bias: bool = False
    mla: MLASpec | None = None
    moe: MoESpec | None = None
    source: str = ""
    layer_kinds: tuple[AttentionLayer, ...] = ()
    linear_attn: LinearAttnSpec | None = None
    indexer: IndexerSpec | None = None
    q_low_rank: int = 0
    """Low-rank query (Step-3 MFA ``share_q_dim``): hidden -> q_low_rank -> RMSNorm -> heads."""
    attn_output_gate: bool = False
    """Gated attention (Qwen3-Next): q_proj also emits a per-channel sigmoid gate on the output."""
    qk_norm_scope: str = "head"
    """``head``: q/k RMSNorm weights of ``head_dim``; ``layer``: over all q and all k channels."""
    n_mtp_layers: int = 0
    text_config_of: str = ""
    """``model_type`` of the multimodal wrapper whose ``text_config`` this spec was read from."""
    max_context: int | None = None
    """Longest sequence (prompt plus output tokens) the model takes, ``max_position_embeddings``
    (or ``n_positions``...); None when the config does not say. The CLI refuses longer requests."""
    fp8_weight_block: int = 0
    """Edge of the square blocks of weights that share one scale in the checkpoint's own FP8
    weights (``quantization_config.weight_block_size``: 128 for DeepSeek-V3/R1, whose kernels
    then run block-scaled FP8 GEMMs); 0 when its weights are not block-scaled FP8."""

    # ----- derived shapes -------------------------------------------------------------
    @property
    def attention_kind(self) -> str:
        """``mla``, ``mha``, ``mqa`` or ``gqa`` (the attention layers' head sharing)."""
        if self.mla is not None:
            return "mla"
        if self.n_kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.n_kv_heads == 1 else "gqa"

    def mtp_module(self) -> ModelSpec:
        """One multi-token-prediction module as a one-layer model: the last layer's attention
        kind and FFN (an MoE block when the model has experts), with the embedding and LM head it
        shares with the main model (DeepSeek-V3 report, Sec. 2.2). Its 2h x h input projection
        is left out (0.05 B parameters for DeepSeek-V3)."""
        if not self.n_mtp_layers:
            raise ConfigError(f"{self.name} has no multi-token-prediction module (num_nextn_predict_layers)")
        kinds = self.attention_layers[-1:] if self.layer_kinds else ()
        moe = replace(self.moe, n_moe_layers=1) if self.moe and self.moe.n_moe_layers else None
        return replace(self, name=f"{self.name}-mtp", n_layers=1, moe=moe, layer_kinds=kinds, n_mtp_layers=0)

    def without_sliding_window(self) -> ModelSpec:
        """This model with each sliding-window layer attending its whole prefix (and caching it):
        how an engine that does not read the config's ``sliding_window`` runs it. Other layer
        kinds (chunked, linear) are kept; the model itself when no layer slides."""
        if not any(k.kind == "sliding" for k in self.layer_kinds):
            return self
        kinds = tuple(FULL if k.kind == "sliding" else k for k in self.layer_kinds)
        return replace(self, layer_kinds=() if all(k == FULL for k in kinds) else kinds)

    @property
    def attention_layers(self) -> tuple[AttentionLayer, ...]:
        """Each layer's ``AttentionLayer``, ``n_layers`` long."""
        return self.layer_kinds or (FULL,) * self.n_layers

    @property
    def layer_kind_counts(self) -> tuple[tuple[AttentionLayer, int], ...]:
        """``(kind, layers)`` pairs in order of first appearance."""
        return _kind_counts(self.layer_kinds, self.n_layers)

    @property
    def layer_pattern(self) -> str:
        """A short description of the layer kinds, e.g. ``sliding(128) x18 + full x18``."""
        parts = []
        for kind, n in self.layer_kind_counts:
            label = f"{kind.kind}({kind.window})" if kind.window else kind.kind
            parts.append(f"{label} x{n}")
        if self.indexer:
            parts.append(f"sparse top-{self.indexer.topk}")
        return " + ".join(parts)

    @property
    def n_linear_layers(self) -> int:
        """Layers whose token mixer is a linear-attention recurrence."""
        return sum(n for kind, n in self.layer_kind_counts if kind.kind == "linear")

    @property
    def n_attention_layers(self) -> int:
        """Layers with softmax attention over cached keys and values (all but linear ones)."""
        return self.n_layers - self.n_linear_layers

    @property
    def qk_head_dim(self) -> int:
        """Dimension of one head's query/key dot product."""
        return self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim if self.mla else self.head_dim

    @property
    def v_head_dim(self) -> int:
        """Dimension of one head's value vector."""
        return self.mla.v_head_dim if self.mla else self.head_dim

    @property
    def kv_elems_per_token_layer(self) -> int:
        """KV-cache elements stored per token and attention layer (MLA: the latent plus the
        RoPE key, plus the indexer's key under sparse attention)."""
        if self.mla:
            n = self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
            return n + (self.indexer.head_dim if self.indexer else 0)
        return self.n_kv_heads * (self.head_dim + self.head_dim)

    def linear_state_elems(self, tp: int = 1) -> float:
        """Fixed state elements per sequence and linear-attention layer (recurrent + conv)."""
        la = self.linear_attn
        return la.recurrent_state_elems(tp) + la.conv_state_elems(tp) if la else 0.0

    @property
    def n_dense_layers(self) -> int:
        """Layers with a dense FFN (all of them for a dense model)."""
        return self.n_layers - (self.moe.n_moe_layers if self.moe else 0)

    # ----- parameter counts (elements) -----------------------------------------------
    def attention_params(self) -> int:
        """Weights (and biases) of one softmax-attention layer's attention block."""
        h, nh = self.hidden_size, self.n_heads
        if self.mla:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * nh * qk if m.q_lora_rank else h * nh * qk
            kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
            kv += m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim)
            return q + kv + nh * m.v_head_dim * h + self.indexer_params()
        q_out, kv_out = nh * self.head_dim, self.n_kv_heads * self.head_dim
        q_proj_out = 2 * q_out if self.attn_output_gate else q_out
        if self.q_low_rank:  # hidden -> rank, RMSNorm(rank), rank -> heads
            n = h * self.q_low_rank + self.q_low_rank + self.q_low_rank * q_proj_out
        else:
            n = h * q_proj_out
        n += h * 2 * kv_out + q_out * h
        n += (q_proj_out + 2 * kv_out) if self.qkv_bias else 0
        n += h if self.out_bias else 0
        if self.qk_norm:
            n += q_out + kv_out if self.qk_norm_scope == "layer" else 2 * self.head_dim
        n += nh if self.attn_sinks else 0
        return n

    def indexer_params(self) -> int:
        """Weights of one sparse-attention indexer (DeepSeek-V3.2 ``Indexer``): the query
        up-projection from the query latent, the key projection and its LayerNorm, and the
        per-head weights projection."""
        ix, m = self.indexer, self.mla
        if not ix or not m:
            return 0
        q_in = m.q_lora_rank or self.hidden_size
        h = self.hidden_size
        return q_in * ix.n_heads * ix.head_dim + h * ix.head_dim + 2 * ix.head_dim + h * ix.n_heads

    def replicated_attention_params(self) -> int:
        """Weights of one attention layer that every tensor-parallel rank stores whole: an MLA
        layer's down-projections to the query and key-value latents and its indexer's projections,
        which engines replicate rather than split by heads (vLLM and SGLang ``DeepseekV2Attention``:
        ``q_a_proj`` and ``kv_a_proj_with_mqa`` are ``ReplicatedLinear``, and so are the ``Indexer``'s
        projections); the op graph reads them whole on every rank (``q_down``, ``kv_down``)."""
        m = self.mla
        if not m:
            return 0
        h = self.hidden_size
        indexer = self.indexer_params() - 2 * self.indexer.head_dim if self.indexer else 0
        return h * m.q_lora_rank + h * (m.kv_lora_rank + m.qk_rope_head_dim) + indexer

    def replicated_router_params(self) -> int:
        """Weights of one MoE layer's router (and shared-expert gate) that every tensor-parallel
        rank stores whole (vLLM's MoE blocks build ``gate`` as a ``ReplicatedLinear``); the op graph
        reads them whole on every rank (``router``, ``shared_expert_gate``)."""
        m = self.moe
        if not m:
            return 0
        router = self.hidden_size * m.n_routed_experts + (m.n_routed_experts if m.router_bias else 0)
        return router + (self.hidden_size if m.shared_expert_gate else 0)

    def linear_attention_params(self) -> int:
        """Weights of one Gated DeltaNet layer (HF ``Qwen3NextGatedDeltaNet``): q/k/v/z and
        b/a input projections, the depthwise convolution, per-head ``A_log`` and ``dt_bias``,
        the gated RMSNorm over a value head, and the output projection."""
        la = self.linear_attn
        if not la:
            return 0
        h, nv, dv = self.hidden_size, la.n_value_heads, la.value_head_dim
        in_proj = h * (la.conv_dim + nv * dv + 2 * nv)
        return in_proj + la.conv_dim * la.conv_kernel + 2 * nv + dv + nv * dv * h

    def ffn_params(self, ffn_size: int) -> int:
        """Weights (and biases) of one FFN of intermediate size ``ffn_size``."""
        h = self.hidden_size
        mats = 3 if self.ffn_gated else 2
        n = mats * h * ffn_size
        if self.ffn_bias:
            n += (mats - 1) * ffn_size + h
        return n

    def moe_layer_params(self) -> int:
        """Weights of one MoE FFN: routed experts, shared experts and the router."""
        m = self.moe
        assert m is not None
        routed = m.n_routed_experts * self.ffn_params_expert()
        shared = m.n_shared_experts * self.ffn_params_expert(m.shared_ffn_size)
        return routed + shared + self.replicated_router_params()

    def ffn_params_expert(self, ffn_size: int | None = None) -> int:
        """Weights of one expert of intermediate size ``ffn_size`` (default ``expert_ffn_size``)."""
        m = self.moe
        assert m is not None
        h, f = self.hidden_size, ffn_size or m.expert_ffn_size
        n = (3 if self.ffn_gated else 2) * h * f
        if m.expert_bias:
            n += (2 * f if self.ffn_gated else f) + h
        return n

    def norm_params(self) -> int:
        """Parameters of one norm over the hidden size (LayerNorm has a bias)."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def embedding_params(self) -> int:
        """Token (and learned position) embeddings."""
        return (self.vocab_size + self.n_learned_positions) * self.hidden_size

    def lm_head_params(self) -> int:
        """The output projection; zero when tied to the embedding."""
        head = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        return head + (self.vocab_size if self.lm_head_bias else 0)

    def n_params(self) -> int:
        """Total parameters (elements) of the main model (MTP layers not counted)."""
        mixers = self.n_attention_layers * self.attention_params()
        mixers += self.n_linear_layers * self.linear_attention_params()
        n = mixers + self.n_layers * self.norms_per_layer * self.norm_params()
        n += self.n_dense_layers * self.ffn_params(self.ffn_size)
        if self.moe:
            n += self.moe.n_moe_layers * self.moe_layer_params()
        return n + self.embedding_params() + self.lm_head_params() + self.norm_params()

    def n_active_params(self) -> int:
        """Parameters touched per token (MoE: only the active and shared experts)."""
        if not self.moe:
            return self.n_params()
        m = self.moe
        inactive = (m.n_routed_experts - m.n_active_experts) * self.ffn_params_expert()
        return self.n_params() - m.n_moe_layers * inactive


# ----- parsing -----------------------------------------------------------------------
def _get(cfg: dict[str, Any], where: str, *keys: str, default: Any = ConfigError) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    if default is ConfigError:
        raise ConfigError(f"{where}: missing field {keys[0]!r} (expected a positive integer)")
    return default


MAX_LAYERS = 10_000
"""Most layers a config may declare (the deepest published models have a few hundred); more is
a typo, and every per-layer tuple would be built in a Python loop."""
MAX_SIZE = 2**24
"""Largest width, head count, expert count, vocabulary or context a config field may hold
(16,777,216: far above any published model, small enough that the op graph's products of
sizes stay finite and exact in float64)."""


def _positive_int(value: Any, where: str, field: str, limit: int = MAX_SIZE) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ConfigError(
            f"{where}: field {field!r} is {value!r}; expected a positive integer up to {limit:,}"
        )
    return value


def _count(value: Any, where: str, field: str, default: int = 0, limit: int = MAX_SIZE) -> int:
    """An optional integer field >= 0; absent, ``null``, 0 and ``false`` all mean ``default``."""
    if value is None or value is False or value == 0:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ConfigError(f"{where}: field {field!r} is {value!r}; expected an integer 0..{limit:,}")
    return value


def _fp8_weight_block(cfg: dict[str, Any], where: str) -> int:
    """The edge of the checkpoint's FP8 weight-scale blocks (``quantization_config`` with
    ``quant_method: fp8`` and a square ``weight_block_size``), else 0."""
    qc = cfg.get("quantization_config")
    if not isinstance(qc, dict) or qc.get("quant_method") != "fp8" or qc.get("weight_block_size") is None:
        return 0
    size = qc["weight_block_size"]
    if not (isinstance(size, list) and len(size) == 2 and size[0] == size[1]):
        raise ConfigError(
            f"{where}: field 'quantization_config.weight_block_size' is {size!r}; "
            "expected two equal positive integers ([128, 128])"
        )
    return _positive_int(size[0], where, "quantization_config.weight_block_size", 65536)


def _int_list(value: Any, where: str, field: str) -> list[int]:
    """A list of layer indices from a JSON list or a comma-separated string (Step-3)."""
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    try:
        out = [int(v) for v in value]
        if any(isinstance(v, (bool, float)) and v != int(v) or isinstance(v, bool) for v in value):
            raise ValueError  # 1.5 or true is no layer index
        return out
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"{where}: field {field!r} is {value!r}; expected a list of layer indices"
        ) from None


def _moe_layer_set(cfg: dict[str, Any], family: str, n_layers: int, where: str) -> set[int]:
    """Which layers carry an MoE FFN, from the family's own fields.

    An explicit list wins (``moe_layers``, Llama 4; ``moe_layers_enum``, Step-3); else
    Llama 4's ``interleave_moe_layer_step`` (every step-th layer, HF ``Llama4TextConfig``
    default); else DeepSeek's ``first_k_dense_replace`` / ``moe_layer_freq`` and Qwen's
    ``decoder_sparse_step`` / ``mlp_only_layers``.
    """
    for field in ("moe_layers", "moe_layers_enum"):
        if cfg.get(field) is not None:
            layers = set(_int_list(cfg[field], where, field))
            if not layers <= set(range(n_layers)):
                raise ConfigError(f"{where}: field {field!r} names layers outside 0..{n_layers - 1}")
            return layers
    if family == "llama4_text":
        step = _positive_int(cfg.get("interleave_moe_layer_step", 1), where, "interleave_moe_layer_step")
        return set(range(step - 1, n_layers, step))
    first_dense = _count(cfg.get("first_k_dense_replace"), where, "first_k_dense_replace")
    freq = _count(cfg.get("moe_layer_freq"), where, "moe_layer_freq", default=1)
    step = _count(cfg.get("decoder_sparse_step"), where, "decoder_sparse_step", default=1)
    mlp_only = set(_int_list(cfg.get("mlp_only_layers") or [], where, "mlp_only_layers"))
    return {
        i
        for i in range(n_layers)
        if i >= first_dense and i % freq == 0 and (i + 1) % step == 0 and i not in mlp_only
    }


def _falcon_norms_per_layer(cfg: dict[str, Any]) -> int:
    """LayerNorms per Falcon block, as HF ``FalconDecoderLayer`` builds them.

    Sequential blocks (``parallel_attn`` false) have two. Parallel blocks have two
    (``ln_attn``, ``ln_mlp``) when ``num_ln_in_parallel_attn`` is 2, which it is by default
    with ``new_decoder_architecture`` (Falcon-40B/180B), else one (Falcon-7B).
    """
    if not cfg.get("parallel_attn", True):
        return 2
    n_ln = cfg.get("num_ln_in_parallel_attn") or (2 if cfg.get("new_decoder_architecture") else 1)
    return 2 if n_ln == 2 else 1


def _refuse_unmodelled(cfg: dict[str, Any], where: str) -> None:
    """Raise ``ConfigError`` for a config whose attention or layer structure is not modelled."""
    for field, reason in UNMODELLED_FIELDS.items():
        if cfg.get(field) not in (None, [], {}, ""):
            raise ConfigError(f"{where}: field {field!r} is set: {reason}")
    attn_types = cfg.get("attn_type_list")
    if attn_types is not None and any(t != 1 for t in _int_list(attn_types, where, "attn_type_list")):
        raise ConfigError(
            f"{where}: field 'attn_type_list' has 0 entries: MiniMax lightning (linear) attention layers "
            "are not modelled (only 1 = softmax attention is)"
        )


def _layer_kinds(cfg: dict[str, Any], family: str, n_layers: int, where: str) -> tuple[AttentionLayer, ...]:
    """Each layer's ``AttentionLayer`` from ``layer_types`` or the family's own fields.

    Empty when every layer is full attention. ``sliding_window`` and
    ``attention_chunk_size`` give the window and chunk sizes. Without ``layer_types``:
    Llama 4 chunks its RoPE layers and keeps every ``no_rope_layer_interval``-th (NoPE) layer
    full (HF ``Llama4TextConfig``: an empty ``no_rope_layers`` means that default); Qwen2's
    ``use_sliding_window`` slides layers from ``max_window_layers`` on; any other config with
    a ``sliding_window`` slides every layer (HF Mistral semantics) unless
    ``use_sliding_window`` is false.
    """

    def window(field: str) -> int:
        return _positive_int(cfg.get(field), where, field)

    raw = cfg.get("layer_types")
    if raw:
        if not isinstance(raw, list):
            raise ConfigError(f"{where}: field 'layer_types' is {raw!r}; expected a list of layer kinds")
        if len(raw) != n_layers:
            raise ConfigError(f"{where}: field 'layer_types' has {len(raw)} entries for {n_layers} layers")
        kinds = []
        for i, t in enumerate(raw):
            if not isinstance(t, str) or t not in LAYER_TYPES:
                raise ConfigError(
                    f"{where}: field 'layer_types'[{i}] is {t!r}; modelled kinds are {sorted(LAYER_TYPES)}"
                )
            kind = LAYER_TYPES[t]
            size = {"sliding": "sliding_window", "chunked": "attention_chunk_size"}.get(kind)
            kinds.append(AttentionLayer(kind, window(size) if size else 0))
        return tuple(kinds) if any(k != FULL for k in kinds) else ()
    if family in INTERVAL_LINEAR_FAMILIES:
        interval = _positive_int(cfg.get("full_attention_interval", 4), where, "full_attention_interval")
        return tuple(AttentionLayer("linear", 0) if (i + 1) % interval else FULL for i in range(n_layers))
    if family == "llama4_text":
        if not cfg.get("attention_chunk_size"):
            return ()
        chunk = window("attention_chunk_size")
        interval = _positive_int(cfg.get("no_rope_layer_interval", 4), where, "no_rope_layer_interval")
        rope = _int_list(cfg.get("no_rope_layers") or [], where, "no_rope_layers") or [
            int((i + 1) % interval != 0) for i in range(n_layers)
        ]
        if len(rope) != n_layers:
            raise ConfigError(
                f"{where}: field 'no_rope_layers' has {len(rope)} entries for {n_layers} layers"
            )
        return tuple(AttentionLayer("chunked", chunk) if r else FULL for r in rope)
    if cfg.get("sliding_window") is None or cfg.get("use_sliding_window") is False:
        return ()
    if family in INTERLEAVED_SLIDING_FAMILIES:
        raise ConfigError(
            f"{where}: field 'sliding_window' is set but 'layer_types' is missing: {family}'s "
            "sliding/full interleave is a code default hwsim does not guess; add layer_types"
        )
    w = AttentionLayer("sliding", window("sliding_window"))
    if cfg.get("use_sliding_window"):  # Qwen2 family: layers from max_window_layers on slide
        first = _count(cfg.get("max_window_layers"), where, "max_window_layers")
        kinds = tuple(w if i >= first else FULL for i in range(n_layers))
        return kinds if w in kinds else ()
    return (w,) * n_layers


def _linear_attn(cfg: dict[str, Any], where: str) -> LinearAttnSpec:
    """Gated DeltaNet shape from the ``linear_*`` fields (Qwen3-Next, Qwen3.5)."""
    g = lambda f: _positive_int(cfg.get(f), where, f)  # noqa: E731
    state_dtype = str(cfg.get("mamba_ssm_dtype") or "")
    bits = {"float32": 32, "bfloat16": 16, "float16": 16}.get(state_dtype, 0)
    if state_dtype and not bits:
        raise ConfigError(
            f"{where}: field 'mamba_ssm_dtype' is {state_dtype!r}; expected float32 or bfloat16"
        )
    la = LinearAttnSpec(
        n_key_heads=g("linear_num_key_heads"),
        n_value_heads=g("linear_num_value_heads"),
        key_head_dim=g("linear_key_head_dim"),
        value_head_dim=g("linear_value_head_dim"),
        conv_kernel=g("linear_conv_kernel_dim"),
        state_bits=bits,
    )
    if la.n_value_heads % la.n_key_heads:
        raise ConfigError(
            f"{where}: linear_num_value_heads {la.n_value_heads} is not a multiple of "
            f"linear_num_key_heads {la.n_key_heads}"
        )
    return la


def _unwrap_text_config(cfg: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    """The language model's fields of a multimodal wrapper (``text_config``), and the
    wrapper's ``model_type`` ("" for a plain text config). ``tie_word_embeddings`` falls back
    to the wrapper's value when the text config does not set it."""
    text = cfg.get("text_config")
    if text is None:
        return cfg, ""
    if not isinstance(text, dict):
        raise ConfigError(f"{where}: field 'text_config' is not a JSON object")
    merged = dict(text)
    if "tie_word_embeddings" not in merged and "tie_word_embeddings" in cfg:
        merged["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    return merged, str(cfg.get("model_type", ""))


def _dbrx_fields(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """A DBRX config (``model_type`` dbrx: its shape in ``n_layers``, ``n_heads``,
    ``attn_config`` and ``ffn_config``, HF transformers' DbrxConfig) with the field names the
    other families use; any other config as it is."""
    if cfg.get("model_type") != "dbrx":
        return cfg
    attn, ffn = cfg.get("attn_config", {}), cfg.get("ffn_config", {})
    if not isinstance(attn, dict) or not isinstance(ffn, dict):
        raise ConfigError(
            f"{where}: fields 'attn_config' and 'ffn_config' of a DBRX config must be JSON objects"
        )
    renamed = {
        "num_hidden_layers": cfg.get("n_layers"),
        "num_attention_heads": cfg.get("n_heads"),
        "num_key_value_heads": attn.get("kv_n_heads"),
        "intermediate_size": ffn.get("ffn_hidden_size"),
        "num_local_experts": ffn.get("moe_num_experts"),
        "num_experts_per_tok": ffn.get("moe_top_k"),
        "max_position_embeddings": cfg.get("max_seq_len"),
    }
    return {**cfg, **{k: v for k, v in renamed.items() if v is not None}}


def spec_from_config(cfg: dict[str, Any], name: str, source: str = "", where: str | None = None) -> ModelSpec:
    """Build a ``ModelSpec`` from a parsed HuggingFace ``config.json`` dictionary.

    A multimodal wrapper's ``text_config`` is read (its vision tower is not modelled).
    Raises ``ConfigError`` naming ``where`` (the file) and the field when one is missing,
    not a positive integer, or declares attention hwsim does not model.
    """
    where = where or name
    for fields in (cfg, cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}):
        kind = fields.get("model_type")
        if kind is not None and not (isinstance(kind, str) and kind.strip()):
            raise ConfigError(
                f"{where}: field 'model_type' is {shown_value(kind)}; expected the architecture's name as text "
                "(llama, qwen2, deepseek_v3, ...)"
            )
    block = _fp8_weight_block(cfg, where)
    cfg, wrapper = _unwrap_text_config(cfg, where)
    cfg = _dbrx_fields(cfg, where)
    family = str(cfg.get("model_type", "llama"))
    if family not in GATED_FAMILIES | UNGATED_FAMILIES:
        warnings.warn(
            f"{where}: model_type {family!r} is not one hwsim knows; its FFN is taken as two matrices "
            "(up and down, no gate) and its other layers as Llama's",
            HwsimNote,
            stacklevel=3,
        )
    _refuse_unmodelled(cfg, where)
    g = lambda *k, **kw: _get(cfg, where, *k, **kw)  # noqa: E731
    n_layers = _positive_int(
        g("num_hidden_layers", "n_layer", "n_layers", "num_layers"), where, "num_hidden_layers", MAX_LAYERS
    )
    hidden = _positive_int(g("hidden_size", "n_embd", "d_model"), where, "hidden_size")
    n_heads = _positive_int(g("num_attention_heads", "n_head", "n_heads"), where, "num_attention_heads")
    n_kv = _positive_int(
        g("num_key_value_heads", "num_kv_heads", "n_head_kv", "num_attention_groups", default=n_heads),
        where,
        "num_key_value_heads",
    )
    if family == "falcon" and cfg.get("multi_query", True) and not cfg.get("new_decoder_architecture"):
        n_kv = 1  # Falcon-7B: multi-query; num_kv_heads is used only with the new decoder architecture
    if family == "chatglm" and cfg.get("multi_query_attention"):  # ChatGLM2/3: grouped K and V
        n_kv = _positive_int(g("multi_query_group_num"), where, "multi_query_group_num")
    if family == "gpt_bigcode" and cfg.get("multi_query", True):
        n_kv = 1  # StarCoder: one K and V head (GPTBigCodeConfig multi_query, default true)
    if n_heads % n_kv:
        raise ConfigError(
            f"{where}: num_attention_heads {n_heads} is not a multiple of num_key_value_heads {n_kv}"
        )
    if cfg.get("head_dim") is None and hidden % n_heads:
        raise ConfigError(
            f"{where}: hidden_size {hidden} is not a multiple of num_attention_heads {n_heads} "
            "and no head_dim is given; expected a multiple, or a head_dim field"
        )
    head_dim = _positive_int(g("head_dim", default=hidden // n_heads), where, "head_dim")
    vocab = _positive_int(g("vocab_size", "padded_vocab_size"), where, "vocab_size")
    default_ffn = 4 * hidden if family in LAYERNORM_FAMILIES else None
    if family == "mpt":  # MPTConfig: the FFN is expansion_ratio (default 4) times d_model
        default_ffn = _positive_int(cfg.get("expansion_ratio", 4), where, "expansion_ratio") * hidden
    # Llama 4: intermediate_size is the experts' width, intermediate_size_mlp the dense layers'
    ffn_keys = ("intermediate_size_mlp",) if family == "llama4_text" else ()
    ffn_field = ffn_keys[0] if ffn_keys else "intermediate_size"
    ffn = g(*ffn_keys, "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", default=default_ffn)
    ffn = None if ffn is None else _positive_int(ffn, where, ffn_field)
    if family == "qwen" and ffn is not None:  # QWenMLP: w1 and w2 of intermediate_size // 2 each
        ffn = max(ffn // 2, 1)
    layer_kinds = _layer_kinds(cfg, family, n_layers, where)
    linear_attn = _linear_attn(cfg, where) if any(k.kind == "linear" for k in layer_kinds) else None

    mla = None
    if "kv_lora_rank" in cfg and cfg["kv_lora_rank"]:
        mla = MLASpec(
            q_lora_rank=_count(cfg.get("q_lora_rank"), where, "q_lora_rank"),
            kv_lora_rank=_positive_int(cfg["kv_lora_rank"], where, "kv_lora_rank"),
            qk_nope_head_dim=_positive_int(g("qk_nope_head_dim"), where, "qk_nope_head_dim"),
            qk_rope_head_dim=_positive_int(g("qk_rope_head_dim"), where, "qk_rope_head_dim"),
            v_head_dim=_positive_int(g("v_head_dim"), where, "v_head_dim"),
        )
        if layer_kinds:
            raise ConfigError(f"{where}: field 'layer_types' mixes kinds in an MLA model; not modelled")
    indexer = None
    if cfg.get("index_topk"):
        if not mla:
            raise ConfigError(f"{where}: field 'index_topk' (sparse attention) without MLA is not modelled")
        indexer = IndexerSpec(
            n_heads=_positive_int(g("index_n_heads"), where, "index_n_heads"),
            head_dim=_positive_int(g("index_head_dim"), where, "index_head_dim"),
            topk=_positive_int(cfg["index_topk"], where, "index_topk"),
        )

    n_experts = g("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts", default=0) or 0
    moe = None
    if n_experts:
        moe_layers = _moe_layer_set(cfg, family, n_layers, where)
        expert_ffn = g("moe_intermediate_size", default=cfg.get("intermediate_size") or ffn)
        if ffn is None and len(moe_layers) == n_layers:  # no dense layer: no dense width needed
            ffn = _positive_int(expert_ffn, where, "moe_intermediate_size")
        shared_ffn = _count(
            cfg.get("shared_expert_intermediate_size")
            or cfg.get("share_expert_dim")
            or (cfg.get("intermediate_size") if family == "llama4_text" else 0),
            where,
            "shared_expert_intermediate_size",
        )
        n_shared = _count(cfg.get("n_shared_experts"), where, "n_shared_experts") or (1 if shared_ffn else 0)
        router_bias = (
            family == "gpt_oss"
            or cfg.get("topk_method") == "noaux_tc"  # DeepSeek-V3 e_score_correction_bias
            or bool(cfg.get("use_routing_bias"))  # MiniMax-M2
        )
        moe = MoESpec(
            n_routed_experts=_positive_int(n_experts, where, "num_experts"),
            n_active_experts=_positive_int(
                g("num_experts_per_tok", "experts_per_token", "moe_top_k"), where, "num_experts_per_tok"
            ),
            expert_ffn_size=_positive_int(expert_ffn, where, "moe_intermediate_size"),
            n_shared_experts=n_shared,
            n_moe_layers=len(moe_layers),
            router_bias=router_bias,
            expert_bias=family == "gpt_oss",
            shared_expert_ffn_size=shared_ffn if shared_ffn and shared_ffn != expert_ffn else 0,
            shared_expert_gate=family in {"qwen2_moe", "qwen3_next", "qwen3_5_moe_text"} and n_shared > 0,
        )
        if moe.n_active_experts > moe.n_routed_experts:
            raise ConfigError(
                f"{where}: num_experts_per_tok {moe.n_active_experts} exceeds the {moe.n_routed_experts} "
                "routed experts; expected at most that"
            )

    if ffn is None:
        raise ConfigError(f"{where}: missing field {ffn_field!r} (expected a positive integer)")
    layernorm = family in LAYERNORM_FAMILIES
    bias_all = bool(
        cfg.get("bias", False) if family == "falcon" else cfg.get("enable_bias", family in BIASED_FAMILIES)
    )
    if family == "mpt":
        bias_all = not cfg.get("no_bias", True)  # MPTConfig no_bias, default true
    if family == "starcoder2":  # q, k, v, o, c_fc and c_proj take bias=config.use_bias (default true)
        bias_all = bool(cfg.get("use_bias", True))
    attention_bias = bool(cfg.get("attention_bias", family == "gpt_neox"))
    if family == "internlm":  # InternLM v1: q, k, v and o_proj take bias=config.bias (modeling_internlm.py)
        attention_bias = bool(cfg.get("bias", True))
    norms_per_layer = 1 if family in PARALLEL_BLOCK_FAMILIES else 4 if family in SANDWICH_NORM_FAMILIES else 2
    if family == "falcon":
        norms_per_layer = _falcon_norms_per_layer(cfg)
    max_context = None
    for field in (
        "max_position_embeddings",
        "n_positions",
        "max_sequence_length",
        "seq_length",
        "model_max_length",
    ):
        if cfg.get(field) is not None:
            max_context = _positive_int(cfg[field], where, field)
            break
    learned_pos = 0
    if family == "opt":
        learned_pos = (max_context or 2048) + 2  # OPT offsets positions by 2
    elif family in LEARNED_POSITION_FAMILIES:
        learned_pos = max_context or 1024
    # q/k RMSNorm with weights: Qwen3 family per head; MiniMax-M2 over all q and all k channels.
    # Llama 4's use_qk_norm is a weightless L2 norm (no parameters).
    qk_norm = family in {
        "qwen3",
        "qwen3_moe",
        "qwen3_next",
        "qwen3_5_text",
        "qwen3_5_moe_text",
        "gemma3",
        "gemma3_text",
    }
    qk_norm = qk_norm or (family == "minimax_m2" and bool(cfg.get("use_qk_norm")))
    n_mtp = cfg.get("num_nextn_predict_layers") or cfg.get("mtp_num_hidden_layers") or 0
    if cfg.get("use_mtp"):
        n_mtp = cfg.get("num_mtp_modules") or n_mtp
    n_mtp = _count(n_mtp, where, "num_nextn_predict_layers", limit=MAX_LAYERS)
    return ModelSpec(
        name=name,
        family=family,
        n_layers=n_layers,
        hidden_size=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        ffn_size=ffn,
        ffn_gated=family in GATED_FAMILIES,
        vocab_size=vocab,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", family in TIED_BY_DEFAULT)),
        norm="layernorm" if layernorm else "rmsnorm",
        norms_per_layer=norms_per_layer,
        qk_norm=qk_norm,
        qkv_bias=bias_all
        or attention_bias
        or family in ("qwen2", "qwen")  # Qwen v1's fused c_attn keeps its bias whatever no_bias says
        or (family == "chatglm" and bool(cfg.get("add_qkv_bias")))
        or (family in ("stablelm", "stablelm_epoch") and bool(cfg.get("use_qkv_bias"))),
        out_bias=bias_all or attention_bias,
        ffn_bias=bias_all or family in {"gptj", "gpt_neox"},
        n_learned_positions=learned_pos,
        attn_sinks=family == "gpt_oss",
        lm_head_bias=family in {"gptj", "phi"},
        mla=mla,
        moe=moe,
        source=source,
        layer_kinds=layer_kinds,
        linear_attn=linear_attn,
        indexer=indexer,
        q_low_rank=_count(cfg.get("share_q_dim"), where, "share_q_dim"),
        attn_output_gate=bool(cfg.get("attn_output_gate", family == "qwen3_next")),
        qk_norm_scope="layer" if cfg.get("qk_norm_type") == "per_layer" else "head",
        n_mtp_layers=n_mtp,
        text_config_of=wrapper,
        max_context=max_context,
        fp8_weight_block=block,
    )


# ----- presets ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def preset_index() -> dict[str, dict[str, Any]]:
    """The shipped presets: name -> {file, source, published_params, params_source}."""
    raw = parse_yaml(files("workloads.presets").joinpath("index.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(
            f"workloads/presets/index.yaml: schema_version {raw.get('schema_version')!r}; expected 1"
        )
    return raw["presets"]


def preset_names() -> list[str]:
    """Names of the shipped model presets, sorted."""
    return sorted(preset_index())


@lru_cache(maxsize=64)
def _load_preset(name: str) -> ModelSpec:
    entry = preset_index()[name]
    text = files("workloads.presets").joinpath(entry["file"]).read_text()
    return spec_from_config(
        json.loads(text), name, entry["source"], where=f"workloads/presets/{entry['file']}"
    )


@lru_cache(maxsize=1)
def hf_id_index() -> dict[str, str]:
    """HuggingFace repo ids of the presets (``hf_ids:`` in index.yaml), lowercased -> preset
    name; each repo's bare name (without the organization) too, where no other preset shares it."""
    full: dict[str, str] = {}
    for name, entry in preset_index().items():
        ids = entry.get("hf_ids", [])
        where = f"workloads/presets/index.yaml: {name}.hf_ids"
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.count("/") == 1 for i in ids):
            raise ConfigError(f"{where} is {ids!r}; expected a list of 'organization/name' repo ids")
        for repo in ids:
            if full.setdefault(repo.lower(), name) != name:
                raise ConfigError(f"{where}: {repo!r} is already an id of {full[repo.lower()]!r}")
    bare: dict[str, set[str]] = {}
    for repo, name in full.items():
        bare.setdefault(repo.split("/")[1], set()).add(name)
    return full | {b: names.pop() for b, names in bare.items() if len(names) == 1 and b not in full}


VARIANT_WORDS = ("instruct", "chat", "hf", "it", "base")
"""Trailing words of a model's name that mark a fine-tune or a repackaging of the same shape
(``Llama-3.1-70B-Instruct``, ``Llama-2-7b-chat-hf``, ``gemma-2b-it``): dropped when a name is
matched loosely (``preset_for``)."""
FORMAT_WORDS = (
    "fp8", "fp4", "nvfp4", "mxfp4", "kv", "dynamic", "awq", "gptq", "int4", "int8",
    "w4a16", "w8a8", "w8a16", "4bit", "8bit", "bnb", "quantized", "gguf", "bf16", "fp16", "f16",
)  # fmt: skip
"""Trailing words of a quantized checkpoint's name (``Llama-3.1-70B-Instruct-FP8-KV``,
``Meta-Llama-3.1-8B-Instruct-AWQ-INT4``, ``Meta-Llama-3.1-8B-Instruct-GGUF``): the same shape in
another storage format, which ``--precision`` sets, not the name; dropped when a name is matched
loosely, with a note. Any ``wXaY`` width pattern counts too, also as Red Hat (Neural Magic) names
its checkpoints (``Meta-Llama-3.1-70B-Instruct-quantized.w4a16``)."""


def _is_format_word(word: str) -> bool:
    """Whether ``word`` is one of ``FORMAT_WORDS`` or a width pattern (``w4a16``,
    ``quantized.w8a8``)."""
    return (
        word in FORMAT_WORDS
        or re.fullmatch(r"(quantized\.)?w\d+a\d+(kv\d+)?", word) is not None
        or re.fullmatch(r"i?q\d+(_[a-z0-9]+)*", word) is not None  # a GGUF weight type, q4_k_m
    )


GGUF_TYPE_AT_END = re.compile(r"[-_.](i?q\d+(?:_[a-z0-9]+)*)$")
"""A llama.cpp weight type closing a GGUF file's or an Ollama tag's name (``-Q4_K_M``,
``.IQ4_XS``, ``-q8_0``), lowercased."""


def _stem(name: str) -> tuple[list[str], list[str]]:
    """(the words of ``name`` without its trailing ``VARIANT_WORDS`` and ``FORMAT_WORDS``, those
    trailing words in order): lowercased, its organization dropped, a ``.gguf`` file extension and
    a GGUF weight type at its end (``GGUF_TYPE_AT_END``, a format word) dropped, split at spaces,
    underscores, hyphens, brackets (``Llama-3.1-8B-Instruct (FP8)``) and the colon of an Ollama
    tag (``llama3.1:8b``, ``llama3:70b-instruct-q4_K_M``)."""
    text = name.strip().lower().rsplit("/", 1)[-1].removesuffix(".gguf")
    gguf = GGUF_TYPE_AT_END.search(text)
    tail = [gguf.group(1)] if gguf and gguf.start() > 0 else []
    text = text[: gguf.start()] if tail else text
    words = re.sub(r"[\s_:()\[\]]+", "-", text).strip("-").split("-")
    cut = len(words)
    while cut > 1 and (words[cut - 1] in VARIANT_WORDS or _is_format_word(words[cut - 1])):
        cut -= 1
    return words[:cut], words[cut:] + tail


def _loose_key(name: str) -> str:
    """``name`` as ``preset_for`` compares it: its ``_stem`` rejoined with hyphens, a hyphen
    between a letter and a digit dropped (``Llama 3.1 70B Instruct`` -> ``llama3.1-70b``; dots
    kept, so ``qwen2-57b`` stays apart from ``qwen2.5-7b``)."""
    return re.sub(r"(?<=[a-z])-(?=\d)", "", "-".join(_stem(name)[0]))


def format_words(name: str) -> list[str]:
    """The ``FORMAT_WORDS`` among the trailing words ``_loose_key`` drops from ``name``."""
    return [w for w in _stem(name)[1] if _is_format_word(w)]


@lru_cache(maxsize=1)
def _loose_index() -> dict[str, str]:
    """``_loose_key`` of every preset name and HuggingFace repo id -> its preset; a key two presets
    share is left out (it names neither)."""
    keys: dict[str, set[str]] = {}
    for spelling, name in [*((n, n) for n in preset_index()), *hf_id_index().items()]:
        keys.setdefault(_loose_key(spelling), set()).add(name)
    return {k: names.pop() for k, names in keys.items() if len(names) == 1}


def _repo_id(key: str) -> str:
    """A lowercased name without a leading ``https://``, ``huggingface.co/`` or ``hf.co/``."""
    return key.removeprefix("https://").removeprefix("huggingface.co/").removeprefix("hf.co/").strip("/")


def preset_for(name: str) -> str | None:
    """The preset a typed model name stands for: a preset name, a HuggingFace repo id of one
    (with or without its organization or ``https://huggingface.co/``), or either written loosely
    (case, spaces, ``-Instruct``/``-chat``/``-hf`` suffixes: ``_loose_key``); None when none."""
    key = str(name).strip().lower()
    if key in preset_index():
        return key
    repo = _repo_id(key)
    if repo in hf_id_index():
        return hf_id_index()[repo]
    return _loose_index().get(_loose_key(repo)) if repo else None


def find_models(query: str) -> list[str]:
    """Presets ``query`` shows (``hwsim models QUERY``): the one a typed name or HuggingFace id
    stands for (``preset_for``, without its note); else every preset whose name or one of whose
    repo ids holds the query, ignoring case, spaces and punctuation (``qwen1.5``, ``deepseek-ai``),
    those whose name begins with it first.
    Raises ``UnknownNameError`` with the closest preset names when none does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimNote)
        found = preset_for(query)
    if found is not None:
        return [found]
    hits = names_holding(
        str(query), {name: entry.get("hf_ids", []) for name, entry in preset_index().items()}
    )
    if not hits:
        raise unknown_name("model", str(query), preset_index(), "hwsim models")
    return hits


def _config_name(path: Path, cfg: dict[str, Any]) -> str:
    """The name a ``config.json`` goes by, lowercased: the repository of a HuggingFace cache
    folder (``.../models--org--name/snapshots/<hash>/config.json`` -> ``name``), else the last
    part of its ``_name_or_path``, else the file's own name when it is not ``config.json``
    (``configs/my-model.json`` -> ``my-model``), else its folder's name."""
    parts = path.absolute().parts
    for folder, below in zip(parts, parts[1:], strict=False):
        if folder.startswith("models--") and below == "snapshots" and folder.count("--") >= 2:
            return folder.split("--", 2)[2].lower()
    named = str(cfg.get("_name_or_path") or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if not named and path.name.lower() != "config.json":
        named = path.stem
    return (named or path.absolute().parent.name or path.stem).lower()


def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A ``ModelSpec`` from a preset name, a HuggingFace repo id of one (``hf_ids:`` in
    ``workloads/presets/index.yaml``; case-insensitive, with or without the organization or
    ``https://huggingface.co/``), or a path to a ``config.json`` or the folder holding it
    (named as ``_config_name`` says). A path that exists wins over a repo id.

    Raises ``UnknownNameError`` with the closest preset names (or repo ids, for a name with a
    ``/``), or ``ConfigError`` naming the file and the field.
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).strip().lower()
    if key in preset_index():
        return _load_preset(key)
    path = Path(str(name_or_path))
    if is_dir(path) and is_file(path / "config.json"):
        path = path / "config.json"
    repo = _repo_id(key)
    preset = None if exists(path) or path.suffix == ".json" else preset_for(key)
    if preset is not None:
        dropped = [] if repo in hf_id_index() else format_words(repo)
        if dropped:
            warnings.warn(
                f"model {name_or_path!r}: priced as preset {preset}; the {'-'.join(dropped).upper()} in its name "
                "is not read: the precision is the one --precision (precision=) names"
                + (
                    " (Meta's own FP8 checkpoints keep attention in BF16: fp8-ffn)"
                    if "fp8" in dropped and repo.startswith("meta-llama/")
                    else ""
                ),
                HwsimNote,
                stacklevel=2,
            )
        return _load_preset(preset)
    if path.suffix == ".json" or exists(path):
        cfg = read_json_mapping(path, "model config")
        return spec_from_config(cfg, _config_name(path, cfg), source=str(path), where=str(path))
    if "/" in repo:
        ids = [i for entry in preset_index().values() for i in entry.get("hf_ids", [])]
        raise unknown_name("model (HuggingFace repo id)", str(name_or_path), ids, "hwsim models --json")
    raise unknown_name("model", str(name_or_path), preset_index(), "hwsim models")


def check_lengths(spec: ModelSpec, input_len: object, output_len: object) -> None:
    """Refuse requests (one, or arrays of them) longer than the model's context."""
    if spec.max_context is None:
        return
    lin = np.atleast_1d(np.asarray(input_len, dtype=float))
    lout = np.atleast_1d(np.asarray(output_len, dtype=float))
    total = lin + lout
    over = total > spec.max_context
    if not over.any():
        return
    i = int(np.argmax(total))
    which = f"{int(over.sum())} of {total.size} requests are" if total.size > 1 else "the request is"
    raise ConfigError(
        f"{which} longer than {spec.name}'s max context of {spec.max_context:,} tokens "
        f"(max_position_embeddings): input_len {lin[i]:.0f} + output_len {lout[i]:.0f} = {total[i]:.0f}; "
        "expected at most that (an engine refuses longer requests)"
    )
