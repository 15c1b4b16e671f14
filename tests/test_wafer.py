"""Wafer-scale meshes: reference kernels against NumPy and the cost model's counts; the PLMR orderings."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.device_spec import load_device
from hwmodels.kernels.mesh import mesh_gemm, mesh_gemv
from hwmodels.wafer import Mesh, check_fit, gemm_time_s, gemv_time_s, reduce_path
from workloads.errors import DoesNotFitError
from workloads.graph import weight_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant


@settings(max_examples=25, deadline=None)
@given(
    p_g=st.sampled_from([(2, 1), (2, 2), (4, 2), (6, 2), (6, 3), (8, 4), (9, 3)]),
    nt=st.integers(1, 3),
    kt=st.integers(1, 3),
    batch=st.integers(1, 3),
    naive=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_mesh_gemv_matches_numpy(p_g, nt, kt, batch, naive, seed):
    p, g = p_g
    rng = np.random.default_rng(seed)
    w, x = rng.normal(size=(p * nt, p * kt)), rng.normal(size=(p * kt, batch))
    y, _ = mesh_gemv(w, x, p, reduce="ring" if naive else "tree", group=g)
    np.testing.assert_allclose(y, w @ x, rtol=1e-6, atol=1e-9)
    # its counts against the model's closed form: test_gemv_actions_are_the_kernels


@settings(max_examples=20, deadline=None)
@given(
    p=st.integers(2, 6),
    mt=st.integers(1, 2),
    kt=st.integers(1, 2),
    nt=st.integers(1, 2),
    naive=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_mesh_gemm_matches_numpy(p, mt, kt, nt, naive, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(p * mt, p * kt)), rng.normal(size=(p * kt, p * nt))
    c, counts = mesh_gemm(a, b, p, layout="naive" if naive else "interleaved")
    np.testing.assert_allclose(c, a @ b, rtol=1e-6, atol=1e-9)
    # its counts against the model's closed form: test_gemm_actions_are_the_kernels
    if not naive:
        assert counts.critical_hops <= 2 * p  # interleaved ring: every compute-step shift at most 2 hops


@pytest.mark.parametrize("p", [4, 9, 16, 36, 100])
def test_timing_path_equals_kernel_critical_path(p):
    g = int(round(np.sqrt(p)))
    _, counts = mesh_gemv(np.ones((p, p)), np.ones(p), p, reduce="tree", group=g)
    stations, hops = reduce_path(p)
    assert (stations, hops) == (counts.critical_stations, counts.critical_hops)


def test_plmr_scaling_orderings():
    """Naive layouts stop scaling (hop latency), WaferLLM's keep scaling (or stay flat at the latency floor)."""
    dev = load_device("wse-2")
    t = {p: Mesh.of(dev, p, p) for p in (120, 240, 480, 720)}
    chain = {p: float(gemv_time_s(16384, 16384, 1, m, naive=True)) for p, m in t.items()}
    tree = {p: float(gemv_time_s(16384, 16384, 1, m)) for p, m in t.items()}
    assert chain[720] > chain[240] and tree[720] < chain[720] / 5
    cannon = [float(gemm_time_s(4096, 16384, 16384, t[p])) for p in sorted(t)]
    naive = [float(gemm_time_s(4096, 16384, 16384, t[p], naive=True)) for p in sorted(t)]
    assert all(a > b for a, b in zip(cannon, cannon[1:], strict=False))
    assert naive[-1] / naive[-2] > cannon[-1] / cannon[-2] and naive[-1] > 1.5 * cannon[-1]


def test_model_that_does_not_fit_the_cores_says_by_how_much():
    spec, q = load_model("llama-2-70b"), Quant.from_name("fp16")
    with pytest.raises(DoesNotFitError, match="short by .* KB per core"):
        check_fit(weight_bytes(spec, q), 0.0, load_device("wse-2"))
    assert check_fit(weight_bytes(load_model("llama-3-8b"), q), 0.0, load_device("wse-2")) <= 48 * 1024


def test_waferllm_rows():
    from sim.experiments import waferllm

    frame = waferllm.run()
    assert list(frame["metric"]) == [
        "gemv_speedup_vs_a100",
        "gemv_energy_efficiency_vs_a100",
        "a100_gemv_s",
        "decode_tokens_per_s",
        "decode_speedup_vs_8xa100",
    ]
    gemv = waferllm.gemv_compare().sort_values("size")
    # a bigger GEMV amortizes the mesh's fixed reduction latency: the speedup grows with size
    assert gemv["speedup"].is_monotonic_increasing and gemv["speedup"].iloc[-1] > 10 * gemv["speedup"].iloc[0]
    # the A100 side is bandwidth-bound: its time is at least the fp16 weights over 2,039 GB/s
    assert (gemv["gpu_s"] >= gemv["size"] ** 2 * 2 / 2039e9).all()
    headline = frame.set_index("metric").loc["gemv_speedup_vs_a100", "hwsim_value"]
    assert headline == pytest.approx(gemv["speedup"].iloc[-1])


def test_tornado_moves_headlines_the_right_way():
    """More hop latency on the mesh slows decode and the GEMV; a faster clock speeds both; the
    tornado reports each end beside the unchanged baseline."""
    from sim.experiments import waferllm

    t = waferllm.sensitivity().set_index(["parameter", "end", "metric"])
    decode, gemv = "decode_tokens_per_s", "gemv_speedup_vs_a100"
    for metric in (decode, gemv):
        assert t.loc[("hop_cycles", "high", metric), "value"] < t.loc[("hop_cycles", "low", metric), "value"]
        assert t.loc[("clock_GHz", "high", metric), "value"] > t.loc[("clock_GHz", "low", metric), "value"]
    assert t["baseline"].groupby(level="metric").nunique().eq(1).all()


def _square(p):
    return Mesh.of(load_device("wse-2"), p, p)


@settings(max_examples=25, deadline=None)
@given(
    p_g=st.sampled_from([(2, 1), (4, 2), (6, 2), (6, 3), (8, 4), (9, 3)]),
    nt=st.integers(1, 3),
    kt=st.integers(1, 3),
    batch=st.integers(1, 3),
    naive=st.booleans(),
)
def test_gemv_actions_are_the_kernels(p_g, nt, kt, batch, naive):
    """What MeshGEMV's timing and energy are computed from equals what the kernel does: multiply-
    adds and SRAM bytes per core, the critical path's stations, hops and link bytes, and the
    bytes x hops of every message."""
    from hwmodels.wafer import gemv_actions

    p, g = p_g
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(p * nt, p * kt)), rng.normal(size=(p * kt, batch))
    _, c = mesh_gemv(w, x, p, reduce="ring" if naive else "tree", group=g)
    a = gemv_actions(p * nt, p * kt, batch, _square(p), naive=naive, group=None if naive else g)
    assert (a.macs_per_core, a.sram_bytes_per_core, a.critical_link_bytes) == (
        c.macs_per_core,
        c.sram_bytes_per_core,
        c.critical_link_bytes,
    )
    assert (a.critical_stations, a.critical_hops, a.fabric_hop_bytes) == (
        c.critical_stations,
        c.critical_hops,
        c.hop_bytes,
    )


@settings(max_examples=20, deadline=None)
@given(
    p=st.integers(3, 6), mt=st.integers(1, 2), kt=st.integers(1, 2), nt=st.integers(1, 2), naive=st.booleans()
)
def test_gemm_actions_are_the_kernels(p, mt, kt, nt, naive):
    from hwmodels.wafer import gemm_actions

    rng = np.random.default_rng(1)
    a_, b_ = rng.normal(size=(p * mt, p * kt)), rng.normal(size=(p * kt, p * nt))
    _, c = mesh_gemm(a_, b_, p, layout="naive" if naive else "interleaved")
    a = gemm_actions(p * mt, p * kt, p * nt, _square(p), naive=naive)
    assert (a.macs_per_core, a.sram_bytes_per_core, a.critical_link_bytes, a.critical_hops) == (
        c.macs_per_core,
        c.sram_bytes_per_core,
        c.critical_link_bytes,
        c.critical_hops,
    )
    assert a.critical_stations == c.critical_stations and a.fabric_hop_bytes == c.hop_bytes


def test_gemv_time_from_actions_by_hand():
    """A 16k x 16k GEMV on a 128 x 128 patch: 128 x 128 MACs per core -> 2 x 16384 / 8 FLOP/cycle
    = 4096 cycles (the SRAM read, 32 KB / 21.4 B/cycle ~ 1531, is shorter); then the tree's
    stations and hops and the 256-byte vector over a 4 B/cycle link."""
    from hwmodels.wafer import gemv_actions, gemv_time_from

    mesh = _square(128)
    a = gemv_actions(16384, 16384, 1, mesh)
    core = max(2 * 128 * 128 / mesh.flop_per_cycle, 128 * 128 * 2 / mesh.sram_bytes_per_cycle)
    stations, hops = reduce_path(128)
    comm = stations * mesh.station_cycles + hops * mesh.hop_cycles + 128 * 2 / mesh.link_bytes_per_cycle
    assert gemv_time_from(a, mesh) == pytest.approx((core + comm) / mesh.clock_hz)


@pytest.mark.parametrize(
    "field",
    ["macs_per_core", "sram_bytes_per_core", "critical_stations", "critical_hops", "critical_link_bytes"],
)
def test_tripling_any_mesh_action_changes_the_gemv_time(field):
    from dataclasses import replace

    from hwmodels.wafer import gemv_actions, gemv_time_from

    mesh = _square(64)
    a = gemv_actions(8192, 8192, 1, mesh)
    if field == "sram_bytes_per_core":  # make the SRAM read the longer per-core term
        a = replace(a, sram_bytes_per_core=a.sram_bytes_per_core * 100)
    assert gemv_time_from(replace(a, **{field: 3 * getattr(a, field)}), mesh) > gemv_time_from(a, mesh)


@pytest.mark.parametrize("field", ["critical_link_bytes", "critical_hops", "skew_shifts", "macs_per_core"])
def test_tripling_any_gemm_action_changes_its_time_and_hop_bytes_its_energy(field):
    from dataclasses import replace

    from hwmodels.wafer import gemm_actions, gemm_time_from, mesh_energy_j

    mesh = _square(64)
    a = gemm_actions(4096, 4096, 4096, mesh)
    assert gemm_time_from(replace(a, **{field: 3 * getattr(a, field)}), mesh) > gemm_time_from(a, mesh)
    assert mesh_energy_j(replace(a, fabric_hop_bytes=3 * a.fabric_hop_bytes), mesh) > mesh_energy_j(a, mesh)


@pytest.mark.parametrize("p, batch", [(4, 1), (9, 3), (16, 2)])
def test_action_counts_is_what_the_gemv_kernel_does(p, batch):
    """``action_counts`` (what the cost model prices) on a decode-sized GEMM is MeshGEMV's kernel
    counts with the tree's default group (sqrt(p))."""
    from hwmodels.wafer import action_counts

    rng = np.random.default_rng(2)
    w, x = rng.normal(size=(2 * p, 3 * p)), rng.normal(size=(3 * p, batch))
    _, c = mesh_gemv(w, x, p, reduce="tree", group=int(round(np.sqrt(p))))
    a = action_counts(batch, 3 * p, 2 * p, _square(p))
    got = (a.macs_per_core, a.sram_bytes_per_core, a.critical_stations, a.critical_hops, a.fabric_hop_bytes)
    assert got == (c.macs_per_core, c.sram_bytes_per_core, c.critical_stations, c.critical_hops, c.hop_bytes)


def test_action_counts_is_what_the_gemm_kernel_does():
    from hwmodels.wafer import action_counts

    p = 5
    rng = np.random.default_rng(3)
    a_, b_ = rng.normal(size=(2 * p, p)), rng.normal(size=(p, 2 * p))  # 10 token rows: MeshGEMM
    _, c = mesh_gemm(a_, b_, p)
    a = action_counts(2 * p, p, 2 * p, _square(p))
    got = (a.macs_per_core, a.sram_bytes_per_core, a.critical_link_bytes, a.critical_hops, a.fabric_hop_bytes)
    assert got == (
        c.macs_per_core,
        c.sram_bytes_per_core,
        c.critical_link_bytes,
        c.critical_hops,
        c.hop_bytes,
    )
