"""Computational storage: split attention against NumPy and the model's counts; InstInfer's mechanisms."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.csd import (
    CsdActions,
    Flash,
    action_counts,
    attention_time_s,
    check_capacity,
    flash_time_s,
)
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
def test_split_attention_matches_numpy_and_the_action_counts(
    batch, kv_heads, group, ctx, d, channels, page, seed
):
    """The kernel's output equals plain attention, and the actions it performed (busiest
    channel's page reads and bytes, all bytes, multiply-adds, merges) are ``action_counts``'."""
    rng = np.random.default_rng(seed)
    heads = kv_heads * group
    q = rng.normal(size=(batch, heads, d))
    k, v = rng.normal(size=(batch, kv_heads, ctx, d)), rng.normal(size=(batch, kv_heads, ctx, d))
    out, counts = split_attention(q, k, v, channels, page_bytes=page)
    np.testing.assert_allclose(out, reference_attention(q, k, v), rtol=1e-6, atol=1e-9)
    a = action_counts(batch, kv_heads, heads, ctx, d, 2.0, page, channels)
    busiest = int(np.argmax(counts.page_reads))
    assert a.critical_page_reads == counts.page_reads.max()
    assert a.critical_bytes == counts.bytes_read.max() == counts.bytes_read[busiest]
    assert a.total_bytes == counts.bytes_read.sum()
    assert a.engine_macs == counts.macs
    assert a.merges == counts.merges


def _actions(**change):
    base = dict(
        critical_page_reads=np.asarray(1000.0),
        critical_bytes=np.asarray(16.384e6),
        total_bytes=np.asarray(131.072e6),
        engine_macs=np.asarray(2e9),
        merges=np.asarray(5e4),
        merge_dim=np.asarray(128.0),
    )
    return CsdActions(**{**base, **change})


def test_time_from_counts_by_hand():
    """SmartSSD: 8 channels at 0.8 GB/s, tR 60 us on 4 dies, 6.4 GB/s internal path, FPGA fp16 peak.

    Busiest channel: 16.384 MB / 0.8 GB/s = 20.48 ms on the bus; 1000 pages x 60 us / 4 dies = 15 ms
    on the dies; the path: 131.072 MB / 6.4 GB/s = 20.48 ms. Flash time 20.48 ms. Engine:
    2 x 2e9 + 5e4 x (2 x 128 + 6) FLOPs over the peak.
    """
    dev = load_device("smartssd")
    flash = Flash.of(dev)
    a = _actions()
    c = dev.extra["csd"]
    bus = 16.384e6 / (c["channel_GBps"] * 1e9)
    dies = 1000 * c["page_read_us"] * 1e-6 / c["dies_per_channel"]
    path = 131.072e6 / (c["internal_path_GBps"] * 1e9)
    assert flash_time_s(a, flash) == pytest.approx(max(bus, dies, path))
    flops = 4e9 + 5e4 * (2 * 128 + 6)
    assert attention_time_s(a, flash, dev) == pytest.approx(max(bus, dies, path, flops / dev.peak("fp16")))


@pytest.mark.parametrize(
    "field", ["critical_page_reads", "critical_bytes", "total_bytes", "engine_macs", "merges", "merge_dim"]
)
def test_tripling_any_count_changes_the_time_or_the_energy(field):
    """Every action enters the prediction: with each made the binding one, tripling it moves
    the time (flash or engine), and it always moves the energy or the time."""
    dev = load_device("smartssd")
    flash = Flash.of(dev)
    binding = {
        "critical_page_reads": dict(critical_page_reads=np.asarray(1e6)),
        "critical_bytes": dict(critical_bytes=np.asarray(1e10)),
        "total_bytes": dict(total_bytes=np.asarray(1e12)),
        "engine_macs": dict(engine_macs=np.asarray(1e15)),
        "merges": dict(merges=np.asarray(1e13)),
        "merge_dim": dict(merges=np.asarray(1e13)),
    }[field]
    a = _actions(**binding)
    tripled = _actions(**{**binding, field: 3 * getattr(a, field)})
    assert attention_time_s(tripled, flash, dev) > attention_time_s(a, flash, dev)


def test_cost_model_prices_an_op_table_as_its_actions():
    """On a context that fills whole pages on every channel, the cost model's attention time on
    the op table equals the time of ``action_counts`` for the same shape."""
    from hwmodels import registry
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    dev = load_device("smartssd")
    flash = Flash.of(dev)
    spec, q = load_model("opt-13b"), Quant.from_name("fp16")
    tpp = int(flash.page_bytes // (2 * spec.head_dim * 2))
    ctx = tpp * flash.channels * 8
    ops = build_ops(spec, q, phase="decode", batch=4, context=ctx)
    cost = registry.get("csd").estimate(ops, dev)
    row = int(np.flatnonzero(ops.name == "attention")[0])
    a = action_counts(
        4, spec.n_kv_heads, spec.n_heads, ctx, spec.head_dim, 2.0, flash.page_bytes, flash.channels
    )
    assert float(cost.memory_s[row]) == pytest.approx(
        float(flash_time_s(a, flash))
        + float(ops.act_in_bytes[row] + ops.act_out_bytes[row] + ops.kv_write_bytes[row])
        / dev.memory.bw_bytes_per_s,
        rel=1e-9,
    )


@settings(max_examples=30, deadline=None)
@given(
    channels=st.integers(1, 32), extra=st.integers(1, 16), ctx=st.integers(1, 20000), batch=st.integers(1, 64)
)
def test_more_flash_channels_never_slower(channels, extra, ctx, batch):
    dev = load_device("smartssd")
    flash = Flash.of(dev)
    times = []
    for c in (channels, channels + extra):
        f = Flash.of(replace(dev, extra={**dev.extra, "csd": dict(dev.extra["csd"], channels=c)}))
        times.append(float(flash_time_s(action_counts(batch, 40, 40, ctx, 128, 2.0, flash.page_bytes, c), f)))
    assert times[1] <= times[0] * (1 + 1e-12)


def test_kv_cache_larger_than_the_drive_says_by_how_much():
    with pytest.raises(DoesNotFitError, match="short by 160.0 GB"):
        check_capacity(4.0e12, load_device("smartssd"))


def test_instinfer_beats_ssd_offload_more_at_long_context():
    from sim.experiments import instinfer

    curves = instinfer.curves().pivot(index="context", columns="design", values="tokens_per_s")
    gap = curves["instinfer"] / curves["flexgen-ssd"]
    assert (gap > 1).all() and gap.iloc[-1] >= gap.iloc[0]
    assert (curves["instinfer"] >= curves["instinfer-dense"]).all()
