"""Decode attention split across the flash channels of a computational storage drive.

InstInfer (Pan et al., arXiv 2409.04992) keeps the KV cache in flash and computes decode
attention on the drive. Layout: for every sequence and KV head, the cached tokens are cut
into page-sized chunks (K and V of a token together), and chunk ``j`` lives on channel
``j mod C``. Each channel computes a partial softmax over its chunks (running max, sum of
exponentials, exp-weighted sum of values); the partials are merged by the online-softmax
rule. The kernel returns the attention output and the page reads and bytes per channel and
the merges and multiply-adds; ``hwmodels/csd.action_counts`` predicts the same counts in
closed form, and the drive's timing is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SplitCounts:
    """Page reads and bytes per channel, the engine's multiply-adds (QK^T and PV), and the
    partial-softmax merges performed."""

    page_reads: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bytes_read: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    merges: int = 0
    macs: int = 0


def tokens_per_page(page_bytes: int, head_dim: int, kv_bytes: float) -> int:
    """Tokens of one KV head whose K and V fill a page."""
    return max(1, int(page_bytes // (2 * head_dim * kv_bytes)))


def split_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, channels: int, page_bytes: int = 16384, kv_bytes: float = 2.0
) -> tuple[np.ndarray, SplitCounts]:
    """Attention of one new token per sequence over its cached K, V.

    q: (batch, heads, d); k, v: (batch, kv_heads, ctx, d); heads must be a multiple of kv_heads.
    Returns the output (batch, heads, d) and the counts.
    """
    batch, heads, d = q.shape
    kv_heads, ctx = k.shape[1], k.shape[2]
    group = heads // kv_heads
    tpp = tokens_per_page(page_bytes, d, kv_bytes)
    n_chunks = -(-ctx // tpp)
    counts = SplitCounts(np.zeros(channels, dtype=np.int64), np.zeros(channels, dtype=np.int64), 0)
    out = np.zeros((batch, heads, d))
    scale = 1.0 / np.sqrt(d)
    for b in range(batch):
        for kh in range(kv_heads):
            partial: dict[int, list] = {}
            for j in range(n_chunks):  # read each page once per KV head
                c = j % channels
                lo, hi = j * tpp, min(ctx, (j + 1) * tpp)
                counts.page_reads[c] += 1
                counts.bytes_read[c] += int((hi - lo) * 2 * d * kv_bytes)
                qs = q[b, kh * group : (kh + 1) * group]  # the query heads sharing this KV head
                counts.macs += 2 * group * (hi - lo) * d  # scores, then the weighted sum of values
                s = qs @ k[b, kh, lo:hi].T * scale  # (group, tokens)
                m = s.max(axis=1)
                e = np.exp(s - m[:, None])
                if c not in partial:
                    partial[c] = [m, e.sum(axis=1), e @ v[b, kh, lo:hi]]
                else:  # fold into the channel's running partial
                    pm, ps, po = partial[c]
                    new_m = np.maximum(pm, m)
                    a, bb = np.exp(pm - new_m), np.exp(m - new_m)
                    partial[c] = [
                        new_m,
                        ps * a + e.sum(axis=1) * bb,
                        po * a[:, None] + (e @ v[b, kh, lo:hi]) * bb[:, None],
                    ]
            parts = list(partial.values())  # merge the channels' partials
            m_all = np.max([p[0] for p in parts], axis=0)
            s_all = sum(p[1] * np.exp(p[0] - m_all) for p in parts)
            o_all = sum(p[2] * np.exp(p[0] - m_all)[:, None] for p in parts)
            out[b, kh * group : (kh + 1) * group] = o_all / s_all[:, None]
            counts.merges += group * (len(parts) - 1)
    return out, counts


def reference_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Plain softmax attention (the check)."""
    batch, heads, d = q.shape
    group = heads // k.shape[1]
    kk, vv = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = np.einsum("bhd,bhtd->bht", q, kk) / np.sqrt(d)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("bht,bhtd->bhd", p, vv)
