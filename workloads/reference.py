"""A small NumPy transformer with a KV cache: the golden output for every kernel.

Llama-style: GQA attention with RoPE, RMSNorm, SwiGLU FFN, random weights from a fixed
seed. ``forward`` runs new tokens after whatever the cache holds, so prefill followed by
decode steps must equal one forward pass over the whole sequence (a test checks it to
1e-5).

It also counts the matrix-multiply FLOPs it performs, from the shapes of the products it
actually computes (2 per multiply-add; causal attention computes only the key positions
each query may see). A test checks these counts against ``workloads.graph.build_ops``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workloads.errors import ConfigError
from workloads.model_spec import ModelSpec, spec_from_config

ROPE_THETA = 10000.0
"""RoPE base frequency (Su et al. 2021; Llama 2 uses 10000)."""

NORM_EPS = 1e-5


def tiny_spec(
    n_layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, ffn: int = 160, vocab: int = 97
) -> ModelSpec:
    """A Llama-family ``ModelSpec`` small enough for the golden model."""
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": n_layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "tie_word_embeddings": False,
    }
    return spec_from_config(cfg, "tiny-llama", source="workloads.reference.tiny_spec")


@dataclass
class KVCache:
    """Keys and values per layer, shape (batch, kv_heads, tokens, head_dim)."""

    keys: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)

    @property
    def length(self) -> int:
        return 0 if not self.keys else self.keys[0].shape[2]


@dataclass
class FlopCounter:
    """Matrix-multiply FLOPs performed, by op name."""

    by_op: dict[str, float] = field(default_factory=dict)

    def add(self, op: str, flops: float) -> None:
        self.by_op[op] = self.by_op.get(op, 0.0) + flops

    @property
    def total(self) -> float:
        return sum(self.by_op.values())


def _matmul(a: np.ndarray, b: np.ndarray, op: str, counter: FlopCounter) -> np.ndarray:
    """``a @ b`` for a (..., k) and b (k, n), counting 2 FLOPs per multiply-add from the shapes."""
    rows = int(np.prod(a.shape[:-1]))
    counter.add(op, 2.0 * rows * a.shape[-1] * b.shape[-1])
    return a @ b


def _rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + NORM_EPS) * weight


def _rope(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rotary embedding on (batch, heads, tokens, dim), rotating the two halves (Llama/GPT-NeoX layout)."""
    half = x.shape[-1] // 2
    freqs = ROPE_THETA ** (-np.arange(half) / half)
    angle = positions[:, None] * freqs[None, :]
    cos, sin = np.cos(angle), np.sin(angle)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class GoldenTransformer:
    """Random-weight Llama-style decoder in float64.

    Parameters
    ----------
    spec : a dense, gated, GQA/MHA ``ModelSpec`` (no MoE, no MLA).
    seed : weights are drawn from ``np.random.default_rng(seed)``.
    """

    def __init__(self, spec: ModelSpec, seed: int = 0) -> None:
        if spec.moe or spec.mla or not spec.ffn_gated or spec.head_dim % 2:
            raise ConfigError(
                f"GoldenTransformer needs a dense gated GQA model with an even head_dim; got {spec.name}"
            )
        self.spec = spec
        rng = np.random.default_rng(seed)
        h, d, f = spec.hidden_size, spec.head_dim, spec.ffn_size
        w = lambda *shape: rng.normal(0.0, 1.0 / np.sqrt(shape[0]), size=shape)  # noqa: E731
        self.embedding = rng.normal(0.0, 1.0, size=(spec.vocab_size, h))
        self.layers = [
            {
                "attn_norm": 1.0 + 0.1 * rng.normal(size=h),
                "wq": w(h, spec.n_heads * d),
                "wk": w(h, spec.n_kv_heads * d),
                "wv": w(h, spec.n_kv_heads * d),
                "wo": w(spec.n_heads * d, h),
                "ffn_norm": 1.0 + 0.1 * rng.normal(size=h),
                "w_gate_up": w(h, 2 * f),
                "w_down": w(f, h),
            }
            for _ in range(spec.n_layers)
        ]
        self.final_norm = 1.0 + 0.1 * rng.normal(size=h)
        self.lm_head = self.embedding.T if spec.tied_embeddings else w(h, spec.vocab_size)

    def forward(
        self,
        tokens: np.ndarray,
        cache: KVCache | None = None,
        all_logits: bool = False,
        counter: FlopCounter | None = None,
    ) -> tuple[np.ndarray, KVCache, FlopCounter]:
        """Run ``tokens`` (batch, new_tokens) after the cache; return logits, the cache, the FLOPs.

        Logits are for the last position of each sequence (batch, vocab), or for every new
        position (batch, new_tokens, vocab) with ``all_logits``.
        """
        spec, counter = self.spec, counter or FlopCounter()
        cache = cache if cache is not None else KVCache()
        tokens = np.asarray(tokens)
        B, T = tokens.shape
        ctx = cache.length
        nh, nkv, d = spec.n_heads, spec.n_kv_heads, spec.head_dim
        group = nh // nkv
        positions = np.arange(ctx, ctx + T, dtype=float)
        x = self.embedding[tokens]  # (B, T, h)
        new_cache = KVCache()
        for i, layer in enumerate(self.layers):
            a = _rms_norm(x, layer["attn_norm"])
            qkv_w = np.concatenate([layer["wq"], layer["wk"], layer["wv"]], axis=1)
            qkv = _matmul(a, qkv_w, "qkv_proj", counter)
            q = qkv[..., : nh * d].reshape(B, T, nh, d).transpose(0, 2, 1, 3)
            k = qkv[..., nh * d : (nh + nkv) * d].reshape(B, T, nkv, d).transpose(0, 2, 1, 3)
            v = qkv[..., (nh + nkv) * d :].reshape(B, T, nkv, d).transpose(0, 2, 1, 3)
            q, k = _rope(q, positions), _rope(k, positions)
            if ctx:
                k = np.concatenate([cache.keys[i], k], axis=2)
                v = np.concatenate([cache.values[i], v], axis=2)
            new_cache.keys.append(k)
            new_cache.values.append(v)
            out = np.empty((B, nh, T, d))
            for t in range(T):  # causal: query t sees ctx + t + 1 keys
                n_keys = ctx + t + 1
                kk = np.repeat(k[:, :, :n_keys], group, axis=1)  # (B, nh, n_keys, d)
                vv = np.repeat(v[:, :, :n_keys], group, axis=1)
                scores = np.einsum("bhd,bhkd->bhk", q[:, :, t], kk) / np.sqrt(d)
                counter.add("attention", 2.0 * B * nh * n_keys * d)
                p = np.exp(scores - scores.max(axis=-1, keepdims=True))
                p /= p.sum(axis=-1, keepdims=True)
                out[:, :, t] = np.einsum("bhk,bhkd->bhd", p, vv)
                counter.add("attention", 2.0 * B * nh * n_keys * d)
            attn = out.transpose(0, 2, 1, 3).reshape(B, T, nh * d)
            x = x + _matmul(attn, layer["wo"], "o_proj", counter)
            a = _rms_norm(x, layer["ffn_norm"])
            gate_up = _matmul(a, layer["w_gate_up"], "ffn_up", counter)
            gate, up = np.split(gate_up, 2, axis=-1)
            act = gate / (1.0 + np.exp(-gate)) * up  # SwiGLU
            x = x + _matmul(act, layer["w_down"], "ffn_down", counter)
        x = _rms_norm(x, self.final_norm)
        head_in = x if all_logits else x[:, -1]
        logits = _matmul(head_in, self.lm_head, "lm_head", counter)
        return logits, new_cache, counter

    def generate_logits(self, prompt: np.ndarray, next_tokens: np.ndarray) -> np.ndarray:
        """Logits of prefill on ``prompt`` then one decode step per column of ``next_tokens``.

        Returns (batch, 1 + steps, vocab): the prefill's last-position logits, then each step's.
        """
        logits, cache, _ = self.forward(prompt)
        out = [logits]
        for t in range(next_tokens.shape[1]):
            logits, cache, _ = self.forward(next_tokens[:, t : t + 1], cache)
            out.append(logits)
        return np.stack(out, axis=1)
