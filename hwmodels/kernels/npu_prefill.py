"""Chunked INT8 prefill with shadow outlier execution (mllm-NPU, Xu et al., ASPLOS 2025).

The golden transformer's prompt is cut into fixed-size chunks (the NPU runs static graphs,
so every chunk has the same shape; the last one is padded). Each linear layer runs on the
NPU as an INT8 matmul with static per-tensor scales: activations are clipped to the range
profiled offline, weights are quantized per tensor. The few activation channels whose
values exceed that range ("outlier channels", found by profiling) are handled by the CPU in
float, in parallel: it multiplies the part of those channels beyond the clip range by the
matching weight rows and adds the result. Attention, norms and the LM head stay in float.

The function returns the last position's logits and the actions it performed: chunks,
padded tokens, NPU graph launches, outlier MACs on the CPU, NPU weight bytes read;
``hwmodels/npu.py`` predicts the same counts from the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workloads.reference import GoldenTransformer, KVCache, _rms_norm, _rope

LINEARS = ("qkv_proj", "o_proj", "ffn_up", "ffn_down")
"""The linear layers of a block, each one NPU graph per chunk."""


@dataclass
class NpuCounts:
    """Actions of a chunked NPU prefill."""

    chunks: int = 0
    padded_tokens: int = 0
    npu_launches: int = 0
    outlier_macs: int = 0
    npu_weight_bytes: int = 0
    npu_macs: int = 0


@dataclass
class Calibration:
    """Static per-tensor activation clip ranges and the outlier channels of every linear input."""

    clip: dict[tuple[int, str], float] = field(default_factory=dict)
    outliers: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)


def _linear_inputs(model: GoldenTransformer, tokens: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """Float inputs of every linear layer for a calibration prompt (one float forward)."""
    spec = model.spec
    nh, nkv, d = spec.n_heads, spec.n_kv_heads, spec.head_dim
    x = model.embedding[tokens]
    B, T, _ = x.shape
    pos = np.arange(T, dtype=float)
    seen = {}
    for i, layer in enumerate(model.layers):
        a = _rms_norm(x, layer["attn_norm"])
        seen[(i, "qkv_proj")] = a.reshape(-1, a.shape[-1])
        w = np.concatenate([layer["wq"], layer["wk"], layer["wv"]], axis=1)
        qkv = a @ w
        q = _rope(qkv[..., : nh * d].reshape(B, T, nh, d).transpose(0, 2, 1, 3), pos)
        k = _rope(qkv[..., nh * d : (nh + nkv) * d].reshape(B, T, nkv, d).transpose(0, 2, 1, 3), pos)
        v = qkv[..., (nh + nkv) * d :].reshape(B, T, nkv, d).transpose(0, 2, 1, 3)
        g = nh // nkv
        s = np.einsum("bhtd,bhsd->bhts", q, np.repeat(k, g, axis=1)) / np.sqrt(d)
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        attn = (
            np.einsum("bhts,bhsd->bhtd", p, np.repeat(v, g, axis=1))
            .transpose(0, 2, 1, 3)
            .reshape(B, T, nh * d)
        )
        seen[(i, "o_proj")] = attn.reshape(-1, attn.shape[-1])
        x = x + attn @ layer["wo"]
        a = _rms_norm(x, layer["ffn_norm"])
        seen[(i, "ffn_up")] = a.reshape(-1, a.shape[-1])
        gate, up = np.split(a @ layer["w_gate_up"], 2, axis=-1)
        act = gate / (1.0 + np.exp(-gate)) * up
        seen[(i, "ffn_down")] = act.reshape(-1, act.shape[-1])
        x = x + act @ layer["w_down"]
    return seen


def calibrate(model: GoldenTransformer, tokens: np.ndarray, max_outlier_share: float = 0.1) -> Calibration:
    """Profile a prompt: per linear input, the outlier channels (the ``max_outlier_share`` of
    channels with the largest magnitudes) and the static clip range (the largest magnitude of
    the other channels)."""
    cal = Calibration()
    for key, x in _linear_inputs(model, tokens).items():
        channel_max = np.abs(x).max(axis=0)
        n_keep = int(round(max_outlier_share * x.shape[1]))
        order = np.argsort(-channel_max)
        outliers = np.sort(order[:n_keep])
        rest = np.delete(channel_max, outliers)
        cal.clip[key] = float(rest.max()) if rest.size else float(channel_max.max())
        cal.outliers[key] = outliers
    return cal


def _npu_linear(
    x: np.ndarray, w: np.ndarray, clip: float, outliers: np.ndarray, counts: NpuCounts, real_rows: int
) -> np.ndarray:
    """INT8 matmul on the clipped activations (NPU) + float correction of the outlier channels (CPU)."""
    s_x = clip / 127.0
    s_w = np.abs(w).max() / 127.0
    xq = np.clip(np.round(x / s_x), -127, 127)
    wq = np.round(w / s_w)
    y = (xq @ wq) * (s_x * s_w)
    counts.npu_launches += 1
    counts.npu_macs += x.shape[0] * x.shape[1] * w.shape[1]
    counts.npu_weight_bytes += w.size  # int8 weights, one byte each
    if outliers.size:
        beyond = x[:, outliers] - np.clip(x[:, outliers], -clip, clip)
        y = y + beyond @ w[outliers]
        counts.outlier_macs += real_rows * outliers.size * w.shape[1]
    return y


def chunked_prefill(
    model: GoldenTransformer, tokens: np.ndarray, cal: Calibration, chunk: int
) -> tuple[np.ndarray, NpuCounts]:
    """Prefill ``tokens`` (1, N) in chunks of ``chunk``; return the last position's logits and the counts."""
    spec = model.spec
    nh, nkv, d = spec.n_heads, spec.n_kv_heads, spec.head_dim
    g = nh // nkv
    n = tokens.shape[1]
    counts = NpuCounts()
    cache = KVCache()
    last_hidden = None
    for start in range(0, n, chunk):
        real = min(chunk, n - start)
        ids = np.concatenate([tokens[0, start : start + real], np.zeros(chunk - real, dtype=tokens.dtype)])
        counts.chunks += 1
        counts.padded_tokens += chunk - real
        x = model.embedding[ids][None]  # (1, chunk, h): a static shape
        pos = np.arange(start, start + chunk, dtype=float)
        ctx = cache.length
        new_cache = KVCache()
        for i, layer in enumerate(model.layers):
            a = _rms_norm(x, layer["attn_norm"])[0]
            w = np.concatenate([layer["wq"], layer["wk"], layer["wv"]], axis=1)
            qkv = _npu_linear(a, w, cal.clip[(i, "qkv_proj")], cal.outliers[(i, "qkv_proj")], counts, real)[
                None
            ]
            q = _rope(qkv[..., : nh * d].reshape(1, chunk, nh, d).transpose(0, 2, 1, 3), pos)
            k = _rope(qkv[..., nh * d : (nh + nkv) * d].reshape(1, chunk, nkv, d).transpose(0, 2, 1, 3), pos)
            v = qkv[..., (nh + nkv) * d :].reshape(1, chunk, nkv, d).transpose(0, 2, 1, 3)
            k, v = k[:, :, :real], v[:, :, :real]  # padded rows never enter the KV cache
            if ctx:
                k = np.concatenate([cache.keys[i], k], axis=2)
                v = np.concatenate([cache.values[i], v], axis=2)
            new_cache.keys.append(k)
            new_cache.values.append(v)
            s = np.einsum("bhtd,bhsd->bhts", q, np.repeat(k, g, axis=1)) / np.sqrt(d)
            mask = np.arange(ctx + real)[None, :] <= (ctx + np.arange(chunk))[:, None]
            s = np.where(mask, s, -np.inf)
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            attn = np.einsum("bhts,bhsd->bhtd", p, np.repeat(v, g, axis=1)).transpose(0, 2, 1, 3)[0]
            attn = attn.reshape(chunk, nh * d)
            x = (
                x
                + _npu_linear(
                    attn, layer["wo"], cal.clip[(i, "o_proj")], cal.outliers[(i, "o_proj")], counts, real
                )[None]
            )
            a = _rms_norm(x, layer["ffn_norm"])[0]
            gu = _npu_linear(
                a, layer["w_gate_up"], cal.clip[(i, "ffn_up")], cal.outliers[(i, "ffn_up")], counts, real
            )
            gate, up = np.split(gu, 2, axis=-1)
            act = gate / (1.0 + np.exp(-gate)) * up
            x = (
                x
                + _npu_linear(
                    act,
                    layer["w_down"],
                    cal.clip[(i, "ffn_down")],
                    cal.outliers[(i, "ffn_down")],
                    counts,
                    real,
                )[None]
            )
        cache = new_cache
        last_hidden = x[0, real - 1]
    logits = _rms_norm(last_hidden, model.final_norm) @ model.lm_head
    return logits, counts
