"""Computational storage: split attention against NumPy and the model's counts; InstInfer's mechanisms."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.csd import Flash, attention_counts, check_capacity, flash_read_s
from hwmodels.device_spec import load_device
from hwmodels.kernels.flash_attention_split import reference_attention, split_attention
from workloads.errors import DoesNotFitError


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    kv_heads=st.integers(1, 3),
    group=st.integers(1, 3),
    ctx=st.integers(1, 90),
    d=st.sampled_from([4, 8, 16]),
    channels=st.integers(1, 6),
    page=st.sampled_from([64, 256, 1024]),
    seed=st.integers(0, 1000),
)
def test_split_attention_matches_numpy_and_counts(batch, kv_heads, group, ctx, d, channels, page, seed):
    rng = np.random.default_rng(seed)
    heads = kv_heads * group
    q = rng.normal(size=(batch, heads, d))
    k, v = rng.normal(size=(batch, kv_heads, ctx, d)), rng.normal(size=(batch, kv_heads, ctx, d))
    out, counts = split_attention(q, k, v, channels, page_bytes=page)
    np.testing.assert_allclose(out, reference_attention(q, k, v), rtol=1e-6, atol=1e-9)
    closed = attention_counts(batch, kv_heads, heads, ctx, d, 2.0, page, channels)
    np.testing.assert_array_equal(counts.page_reads, closed.page_reads)
    np.testing.assert_array_equal(counts.bytes_read, closed.bytes_read)
    assert counts.merges == closed.merges


@settings(max_examples=30, deadline=None)
@given(channels=st.integers(1, 32), extra=st.integers(1, 16), nbytes=st.floats(1e6, 1e11))
def test_more_flash_channels_never_slower(channels, extra, nbytes):
    dev = load_device("smartssd")
    slow = dict(dev.extra["csd"], channels=channels)
    fast = dict(dev.extra["csd"], channels=channels + extra)
    t_slow = flash_read_s(np.asarray(nbytes), Flash.of(replace(dev, extra={**dev.extra, "csd": slow})))
    t_fast = flash_read_s(np.asarray(nbytes), Flash.of(replace(dev, extra={**dev.extra, "csd": fast})))
    assert t_fast <= t_slow * (1 + 1e-12)


def test_kv_cache_larger_than_the_drive_says_by_how_much():
    with pytest.raises(DoesNotFitError, match="short by 160.0 GB"):
        check_capacity(4.0e12, load_device("smartssd"))


def test_instinfer_beats_ssd_offload_more_at_long_context():
    from sim.experiments import instinfer

    curves = instinfer.curves().pivot(index="context", columns="design", values="tokens_per_s")
    gap = curves["instinfer"] / curves["flexgen-ssd"]
    assert (gap > 1).all() and gap.iloc[-1] >= gap.iloc[0]
    assert (curves["instinfer"] >= curves["instinfer-dense"]).all()
