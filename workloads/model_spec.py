"""``ModelSpec``: the shape of a transformer, built from a HuggingFace ``config.json``.

A spec is read once (from a file path or the name of a preset shipped in
``workloads/presets/``), validated, and frozen. Nothing here knows hardware or bits.
Parameter counts follow the published architectures; a test checks every preset
against its published total within 1%.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import ConfigError, unknown_name

GATED_FAMILIES = frozenset(
    {
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "mixtral",
        "qwen2_moe",
        "qwen3_moe",
        "deepseek_v2",
        "deepseek_v3",
        "gpt_oss",
    }
)
"""Model families whose FFN is gated (SwiGLU/GeGLU: gate, up and down matrices)."""

LAYERNORM_FAMILIES = frozenset({"opt", "gptj", "gpt2", "gpt_neox", "falcon"})
"""Families that use LayerNorm (weight and bias) rather than RMSNorm (weight only)."""


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


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A decoder-only transformer's shape. Sizes are element counts, not bytes."""

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

    # ----- derived shapes -------------------------------------------------------------
    @property
    def attention_kind(self) -> str:
        """``mla``, ``mha``, ``mqa`` or ``gqa``."""
        if self.mla is not None:
            return "mla"
        if self.n_kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.n_kv_heads == 1 else "gqa"

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
        """KV-cache elements stored per token and layer (MLA: the latent plus the RoPE key)."""
        if self.mla:
            return self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        return self.n_kv_heads * (self.head_dim + self.head_dim)

    @property
    def n_dense_layers(self) -> int:
        """Layers with a dense FFN (all of them for a dense model)."""
        return self.n_layers - (self.moe.n_moe_layers if self.moe else 0)

    # ----- parameter counts (elements) -----------------------------------------------
    def attention_params(self) -> int:
        """Weights (and biases) of one layer's attention block."""
        h, nh = self.hidden_size, self.n_heads
        if self.mla:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * nh * qk if m.q_lora_rank else h * nh * qk
            kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
            kv += m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim)
            return q + kv + nh * m.v_head_dim * h
        q_out, kv_out = nh * self.head_dim, self.n_kv_heads * self.head_dim
        n = h * (q_out + 2 * kv_out) + q_out * h
        n += (q_out + 2 * kv_out) if self.qkv_bias else 0
        n += h if self.out_bias else 0
        n += 2 * self.head_dim if self.qk_norm else 0
        n += nh if self.attn_sinks else 0
        return n

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
        shared = m.n_shared_experts * self.ffn_params_expert()
        router = self.hidden_size * m.n_routed_experts + (m.n_routed_experts if m.router_bias else 0)
        return routed + shared + router

    def ffn_params_expert(self) -> int:
        """Weights of one expert (routed or shared; all have ``expert_ffn_size``)."""
        m = self.moe
        assert m is not None
        h, f = self.hidden_size, m.expert_ffn_size
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
        """Total parameters (elements)."""
        per_layer = self.attention_params() + self.norms_per_layer * self.norm_params()
        n = self.n_layers * per_layer + self.n_dense_layers * self.ffn_params(self.ffn_size)
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


def _positive_int(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: field {field!r} is {value!r}; expected a positive integer")
    return value


def _moe_layers(cfg: dict[str, Any], n_layers: int) -> int:
    """How many layers carry an MoE FFN, from the family's own fields."""
    first_dense = int(cfg.get("first_k_dense_replace", 0) or 0)
    freq = int(cfg.get("moe_layer_freq", 1) or 1)
    step = int(cfg.get("decoder_sparse_step", 1) or 1)
    mlp_only = set(cfg.get("mlp_only_layers", []) or [])
    return sum(
        1
        for i in range(n_layers)
        if i >= first_dense and i % freq == 0 and (i + 1) % step == 0 and i not in mlp_only
    )


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


def spec_from_config(cfg: dict[str, Any], name: str, source: str = "", where: str | None = None) -> ModelSpec:
    """Build a ``ModelSpec`` from a parsed HuggingFace ``config.json`` dictionary.

    Raises ``ConfigError`` naming ``where`` (the file) and the field when one is missing
    or not a positive integer.
    """
    where = where or name
    family = str(cfg.get("model_type", "llama"))
    g = lambda *k, **kw: _get(cfg, where, *k, **kw)  # noqa: E731
    n_layers = _positive_int(g("num_hidden_layers", "n_layer"), where, "num_hidden_layers")
    hidden = _positive_int(g("hidden_size", "n_embd", "d_model"), where, "hidden_size")
    n_heads = _positive_int(g("num_attention_heads", "n_head"), where, "num_attention_heads")
    n_kv = _positive_int(
        g("num_key_value_heads", "num_kv_heads", "n_head_kv", default=n_heads), where, "num_key_value_heads"
    )
    if family == "falcon" and cfg.get("multi_query", True) and not cfg.get("new_decoder_architecture"):
        n_kv = 1  # Falcon-7B: multi-query; num_kv_heads is used only with the new decoder architecture
    if n_heads % n_kv:
        raise ConfigError(
            f"{where}: num_attention_heads {n_heads} is not a multiple of num_key_value_heads {n_kv}"
        )
    head_dim = _positive_int(g("head_dim", default=hidden // n_heads), where, "head_dim")
    vocab = _positive_int(g("vocab_size"), where, "vocab_size")
    default_ffn = 4 * hidden if family in LAYERNORM_FAMILIES else ConfigError
    ffn = _positive_int(
        g("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", default=default_ffn),
        where,
        "intermediate_size",
    )

    mla = None
    if "kv_lora_rank" in cfg and cfg["kv_lora_rank"]:
        mla = MLASpec(
            q_lora_rank=int(cfg.get("q_lora_rank") or 0),
            kv_lora_rank=_positive_int(cfg["kv_lora_rank"], where, "kv_lora_rank"),
            qk_nope_head_dim=_positive_int(g("qk_nope_head_dim"), where, "qk_nope_head_dim"),
            qk_rope_head_dim=_positive_int(g("qk_rope_head_dim"), where, "qk_rope_head_dim"),
            v_head_dim=_positive_int(g("v_head_dim"), where, "v_head_dim"),
        )

    n_experts = g("num_local_experts", "n_routed_experts", "num_experts", default=0) or 0
    moe = None
    if n_experts:
        n_moe_layers = _moe_layers(cfg, n_layers)
        expert_ffn = g("moe_intermediate_size", default=ffn)
        moe = MoESpec(
            n_routed_experts=_positive_int(n_experts, where, "num_experts"),
            n_active_experts=_positive_int(
                g("num_experts_per_tok", "experts_per_token"), where, "num_experts_per_tok"
            ),
            expert_ffn_size=_positive_int(expert_ffn, where, "moe_intermediate_size"),
            n_shared_experts=int(cfg.get("n_shared_experts", 0) or 0),
            n_moe_layers=n_moe_layers,
            router_bias=family in {"gpt_oss", "deepseek_v3"},
            expert_bias=family == "gpt_oss",
        )

    layernorm = family in LAYERNORM_FAMILIES
    bias_all = bool(cfg.get("bias", False) if family == "falcon" else cfg.get("enable_bias", family == "opt"))
    attention_bias = bool(cfg.get("attention_bias", False))
    norms_per_layer = 1 if family == "gptj" else 2
    if family == "falcon":
        norms_per_layer = _falcon_norms_per_layer(cfg)
    learned_pos = 0
    if family == "opt":
        learned_pos = int(cfg.get("max_position_embeddings", 2048)) + 2  # OPT offsets positions by 2
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
        tied_embeddings=bool(cfg.get("tie_word_embeddings", family in {"gemma", "opt", "falcon"})),
        norm="layernorm" if layernorm else "rmsnorm",
        norms_per_layer=norms_per_layer,
        qk_norm=family in {"qwen3", "qwen3_moe"},
        qkv_bias=bias_all or attention_bias or family == "qwen2",
        out_bias=bias_all or attention_bias,
        ffn_bias=bias_all or family == "gptj",
        n_learned_positions=learned_pos,
        attn_sinks=family == "gpt_oss",
        lm_head_bias=family == "gptj",
        mla=mla,
        moe=moe,
        source=source,
    )


# ----- presets ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def preset_index() -> dict[str, dict[str, Any]]:
    """The shipped presets: name -> {file, source, published_params, params_source}."""
    raw = yaml.safe_load(files("workloads.presets").joinpath("index.yaml").read_text())
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


def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A ``ModelSpec`` from a preset name (case-insensitive) or a path to a ``config.json``.

    Raises ``UnknownNameError`` with the closest preset names, or ``ConfigError`` naming
    the file and the field.
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).strip().lower()
    if key in preset_index():
        return _load_preset(key)
    path = Path(str(name_or_path))
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise ConfigError(f"model config {str(path)!r} does not exist")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(cfg, dict):
            raise ConfigError(f"{path}: expected a JSON object with the model's fields")
        return spec_from_config(cfg, path.parent.name or path.stem, source=str(path), where=str(path))
    raise unknown_name("model", str(name_or_path), preset_index(), "hwsim models")
