"""FPGA (FlightLLM): the sparse mixed-precision GEMV kernel against NumPy and the cost model's
counts, time and energy from counts by hand, and the experiment's rows."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.device_spec import load_device
from hwmodels.fpga import (
    FpgaActions,
    FpgaDesign,
    NmFormat,
    action_counts,
    dynamic_energy_j,
    gemv_counts,
    op_time_s,
    static_power_w,
    time_terms,
)
from hwmodels.kernels.sparse_gemv import ALLOWED_N, random_nm_matrix, sparse_gemv
from workloads.errors import ConfigError
from workloads.graph import build_ops, gemm_table
from workloads.model_spec import load_model
from workloads.quant import Quant

U280 = load_device("alveo-u280")
DESIGN = FpgaDesign.of(U280)
BW = U280.memory.bw_bytes_per_s
E_HBM = U280.memory.energy_j_per_byte


def _maps(draw_n, draw_bits, rows, cols, rng):
    return rng.choice(draw_n, size=(rows, cols)), rng.choice(draw_bits, size=(rows, cols))


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 3),
    cols=st.integers(1, 3),
    tokens=st.integers(1, 3),
    ns=st.lists(st.sampled_from(ALLOWED_N), min_size=1, max_size=3),
    bits=st.lists(st.sampled_from([4, 8]), min_size=1, max_size=2),
    seed=st.integers(0, 10_000),
)
def test_sparse_gemv_matches_numpy_and_its_closed_form(rows, cols, tokens, ns, bits, seed):
    """The kernel's result is the dense product; its counts are ``gemv_counts`` at the pattern's
    kept share, mean kept width and share of kept weights carrying an index."""
    rng = np.random.default_rng(seed)
    block_n, block_bits = _maps(ns, bits, rows, cols, rng)
    w = random_nm_matrix(block_n, block_bits, rng)
    x = rng.integers(-128, 128, size=(16 * cols, tokens))
    y, c = sparse_gemv(w, x, block_n, block_bits)
    np.testing.assert_array_equal(y, w @ x)
    n, k = w.shape
    assert c.kept == 16 * int(block_n.sum()) and c.dsp_macs == c.kept * tokens
    density = c.kept / (n * k)
    value_bits = c.value_bits / c.kept if c.kept else 4.0
    indexed = c.kept_in_sparse_blocks / c.kept if c.kept else 0.0
    nm = NmFormat(16, density, 4, 8)
    a = gemv_counts(n, k, tokens, value_bits, nm, 1.0, indexed_share=indexed)
    got = (a.dsp_macs, a.hbm_bytes, a.sram_bytes, a.syncs)
    want = (c.dsp_macs, c.hbm_bytes, c.sram_bytes, c.syncs)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("n_keep, bits8_rows", [(2, 0), (4, 1), (8, 2), (16, 1), (8, 4)])
def test_action_counts_is_what_the_kernel_does(n_keep, bits8_rows):
    """What the cost model prices for a decode GEMM row of an ``OpTable`` equals the kernel's counts:
    the catalog's N:M format at density N/16, the precision's mean width (4-bit, with ``bits8_rows``
    of 4 block rows at 8 bits, carried by the precision's extra bits)."""
    rows, cols = 4, 3
    block_n = np.full((rows, cols), n_keep)
    block_bits = np.where(np.arange(rows)[:, None] < bits8_rows, 8, 4) * np.ones((1, cols), dtype=int)
    rng = np.random.default_rng(n_keep)
    w = random_nm_matrix(block_n, block_bits, rng)
    _, c = sparse_gemv(w, rng.integers(-128, 128, size=16 * cols), block_n, block_bits)
    quant = replace(Quant.make(4, 8, 8), extra_bits=4.0 * bits8_rows / rows)
    ops = replace(gemm_table(1.0, 16.0 * rows, 16.0 * cols, quant), phase="decode")
    design = replace(DESIGN, nm=replace(DESIGN.nm, density=n_keep / 16))
    a = action_counts(ops, design)
    got = (a.dsp_macs.item(), a.hbm_bytes.item(), a.sram_bytes.item(), a.syncs.item())
    assert got == pytest.approx((c.dsp_macs, c.hbm_bytes, c.sram_bytes, c.syncs), rel=1e-12)


def test_kernel_refuses_a_matrix_that_is_not_nm_sparse():
    w = np.zeros((16, 16), dtype=int)
    w[0, :3] = 1  # three nonzeros in a 2:16 block
    with pytest.raises(ConfigError, match="nonzeros"):
        sparse_gemv(w, np.ones(16, dtype=int), np.array([[2]]), np.array([[4]]))
    with pytest.raises(ConfigError, match="outside"):
        sparse_gemv(np.full((16, 16), 9), np.ones(16, dtype=int), np.array([[16]]), np.array([[4]]))


def test_gemv_time_and_energy_by_hand():
    """A 4096 x 4096 decode GEMV on the U280, 8:16, 4-bit values (w4a8):

    HBM bytes = 4096^2 x (0.5 x (4 + 4) + 8 / 256) / 8 = 8,454,144; at 460 GB/s x 0.7 that is 26.25 us.
    MACs = 4096^2 x 0.5 = 8,388,608 over 9,024 x 0.702 x 2 = 12,669.7 lanes at 225 MHz = 2.94 us.
    One op boundary: 128 / 225 MHz = 0.569 us. Time = max(26.25, 2.94) + 0.569 us.
    On-chip bytes = 8,454,144 + (4096 / 16) x 4096 (input segments) + 4096 (outputs) = 9,506,816.
    Energy = 8,388,608 x 1 pJ + 8,454,144 x 48 pJ (HBM2 6 pJ/bit) + 9,506,816 x 2 pJ."""
    ops = replace(gemm_table(1.0, 4096.0, 4096.0, Quant.from_name("w4a8")), phase="decode")
    a = action_counts(ops, DESIGN)
    assert a.hbm_bytes.item() == 8_454_144 and a.dsp_macs.item() == 8_388_608
    assert a.sram_bytes.item() == 9_506_816
    lanes = 9024 * 0.702 * 2
    expected_s = max(8_454_144 / (460e9 * 0.7), 8_388_608 / (lanes * 225e6)) + 128 / 225e6
    assert op_time_s(a, DESIGN, BW).item() == pytest.approx(expected_s, rel=1e-12)
    expected_j = 8_388_608 * 1e-12 + 8_454_144 * 48e-12 + 9_506_816 * 2e-12
    assert dynamic_energy_j(a, DESIGN, E_HBM).item() == pytest.approx(expected_j, rel=1e-12)
    # the registered model returns the same terms
    cost = registry.get("fpga").estimate(ops, U280)
    assert cost.total_time_s() == pytest.approx(expected_s, rel=1e-12)


def _actions(**kw) -> FpgaActions:
    base = dict(dsp_macs=0.0, sfu_passes=0.0, hbm_bytes=0.0, sram_bytes=0.0, syncs=1.0)
    return FpgaActions(**{k: np.asarray(v, dtype=float) for k, v in {**base, **kw}.items()})


BINDING = {
    "dsp_macs": _actions(dsp_macs=1e9, hbm_bytes=1e6),  # a prefill GEMM: the DSPs bind
    "hbm_bytes": _actions(dsp_macs=1e6, hbm_bytes=1e8),  # a decode GEMV: HBM binds
    "sfu_passes": _actions(sfu_passes=1e6),  # a norm on the SFU
    "syncs": _actions(dsp_macs=1e6, hbm_bytes=1e6),
}


@pytest.mark.parametrize("field", sorted(BINDING))
def test_tripling_any_count_changes_the_time(field):
    a = BINDING[field]
    tripled = replace(a, **{field: 3 * getattr(a, field)})
    assert op_time_s(tripled, DESIGN, BW) > op_time_s(a, DESIGN, BW)


@pytest.mark.parametrize("field", ["dsp_macs", "hbm_bytes", "sram_bytes"])
def test_tripling_any_priced_count_changes_the_energy(field):
    a = _actions(dsp_macs=1e6, hbm_bytes=1e6, sram_bytes=1e6)
    tripled = replace(a, **{field: 3 * getattr(a, field)})
    assert dynamic_energy_j(tripled, DESIGN, E_HBM) > dynamic_energy_j(a, DESIGN, E_HBM)


def test_time_terms_by_hand():
    a = _actions(dsp_macs=2e6, sfu_passes=3200.0, hbm_bytes=1e6, syncs=2.0)
    compute_s, memory_s, overhead_s = time_terms(a, DESIGN, BW)
    assert compute_s == pytest.approx((2e6 / (9024 * 0.702 * 2) + 3200 / 16) / 225e6)
    assert memory_s == pytest.approx(1e6 / (460e9 * 0.7))
    assert overhead_s == pytest.approx(2 * 128 / 225e6)


def test_static_power_is_the_board_less_the_hbm_stream():
    """45 W measured on the board less the HBM stream at 70% of 460 GB/s and 48 pJ/B (15.5 W)."""
    assert static_power_w(DESIGN, U280) == pytest.approx(45.0 - 48e-12 * 460e9 * 0.7)


SPEC = load_model("llama-2-7b")
W4A8 = Quant.from_name("w4a8")


def _step_s(device, ops, **kw):
    design = FpgaDesign.of(device)
    a = action_counts(ops, design, **kw)
    per_op = op_time_s(a, design, device.memory.bw_bytes_per_s)
    return float((ops.count[:, None] * per_op.reshape(len(ops.count), -1)).sum()), a


def test_always_on_chip_decode_keeps_activations_off_hbm():
    """With activations on chip a decode step's HBM bytes are its weights and KV cache only."""
    ops = build_ops(SPEC, W4A8, phase="decode", batch=1, context=512)
    on_s, on = _step_s(U280, ops)
    off_s, off = _step_s(U280, ops, always_on_chip=False)
    extra = float((ops.count[:, None] * (off.hbm_bytes - on.hbm_bytes).reshape(len(ops.count), -1)).sum())
    acts = float((ops.count * (ops.act_in_bytes + ops.act_out_bytes).ravel()).sum())
    assert extra == pytest.approx(acts) and off_s > on_s


def test_sparser_or_narrower_weights_decode_faster():
    """Decode is HBM-bound: fewer kept weights or narrower values mean fewer bytes and less time. At
    4-bit values 8:16 saves nothing: half the values plus a 4-bit index each is the dense 4 bits."""
    ops4 = build_ops(SPEC, W4A8, phase="decode", batch=1, context=512)
    ops8 = build_ops(SPEC, Quant.from_name("w8a8"), phase="decode", batch=1, context=512)
    dense = replace(U280, extra={**U280.extra, "fpga": {**U280.extra["fpga"], "nm_density": 1.0}})
    t4, t8 = _step_s(U280, ops4)[0], _step_s(U280, ops8)[0]
    assert t4 < t8 < _step_s(dense, ops8)[0]
    assert _step_s(dense, ops4)[0] == pytest.approx(t4, rel=1e-9)
    cost = registry.get("fpga").estimate(ops4, U280)
    assert cost.dominant_bound() == "memory"


def test_decode_actions_of_the_other_ops_by_hand():
    """LLaMA2-7B decode at 512 cached tokens, INT8 activations and KV: a norm is 4,096 elements in
    two SFU passes; SiLU-and-multiply one pass over its 2 x 11,008 inputs; attention multiply-adds
    are its FLOPs / 2 on the DSPs and its HBM bytes the KV cache read and appended; the embedding
    reads one 4-bit row (2,048 B). Activations stay on chip."""
    ops = build_ops(SPEC, W4A8, phase="decode", batch=1, context=512)
    a = action_counts(ops, DESIGN)
    row = {name: i for i, name in enumerate(ops.name)}
    at = lambda field, op: float(getattr(a, field)[row[op]].item())  # noqa: E731
    assert at("sfu_passes", "attn_norm") == 2 * 4096 and at("sfu_passes", "ffn_act") == 22016
    assert at("dsp_macs", "attention") == float(ops.flops[row["attention"]].item()) / 2
    kv = 2 * 4096 * 513  # K and V of 512 cached tokens read, plus the new token's appended
    assert at("hbm_bytes", "attention") == pytest.approx(kv)
    assert at("hbm_bytes", "embedding") == 2048 and at("hbm_bytes", "attn_norm") == 4096  # its weights
    assert a.syncs.sum() == len(ops.name)


def test_prefill_is_compute_bound_and_sparsity_skips_macs():
    ops = build_ops(SPEC, W4A8, phase="prefill", batch=1, tokens=512)
    cost = registry.get("fpga").estimate(ops, U280)
    assert cost.dominant_bound() == "compute"
    gemm = ops.kind == "gemm"
    a = action_counts(ops, DESIGN)
    np.testing.assert_allclose(a.dsp_macs[gemm], 0.5 * ops.flops[gemm] / 2)


def test_design_from_the_catalog():
    vhk = FpgaDesign.of(load_device("versal-vhk158"))
    assert vhk.mac_lanes == 13107 and DESIGN.mac_lanes == pytest.approx(9024 * 0.702 * 2)
    assert DESIGN.peak_mac_lanes == 9024 * 2 and vhk.peak_mac_lanes == vhk.mac_lanes
    bare = replace(U280, extra={})
    with pytest.raises(ConfigError, match="no 'fpga' block"):
        FpgaDesign.of(bare)
    no_power = replace(
        U280, extra={"fpga": {k: v for k, v in U280.extra["fpga"].items() if k != "board_power_W"}}
    )
    with pytest.raises(ConfigError, match="board_power_W"):
        FpgaDesign.of(no_power)


def test_estimate_runs_on_both_boards():
    from roofline.estimate import estimate

    for name in ("alveo-u280", "versal-vhk158"):
        e = estimate("llama-2-7b", name, batch=1, input_len=128, output_len=64, precision="w4a8")
        assert e.decode_tokens_per_s > 0 and np.isfinite(e.tokens_per_j) and e.bound == "memory"


def test_flightllm_rows_and_setup():
    from sim.experiments import EXPERIMENTS, flightllm

    assert "flightllm" in EXPERIMENTS
    frame = flightllm.run()
    assert list(frame["metric"]) == list(flightllm.PAPER)
    assert np.isfinite(frame["hwsim_value"]).all() and (frame["hwsim_value"] > 0).all()
    assert all(len(row) == 4 for row in flightllm.PAPER_SETUP)
    assert set(flightllm.MISS_CAUSES) <= set(flightllm.PAPER)
    h = frame.set_index("metric")["hwsim_value"]
    # the U280 decode rate and its HBM utilisation are the same prediction seen two ways
    assert 0.3 < h["u280_decode_hbm_utilisation"] < 0.7


def test_flight_quant_is_the_stated_mix():
    from sim.experiments.flightllm import flight_quant

    q = flight_quant(3.5, 0.5)
    assert q.weight_bytes_per_param() == pytest.approx(7 / 8)  # kept weights: 75% 8-bit, 25% 4-bit
    with pytest.raises(ConfigError, match="4 to 8"):
        flight_quant(3.5, 0.25)


def test_sensitivity_moves_the_headlines_the_right_way():
    from sim.experiments import flightllm

    t = flightllm.sensitivity().set_index(["parameter", "end", "metric"])
    rate = "u280_decode_tokens_per_s"
    assert t.loc[("hbm_efficiency", "high", rate), "value"] > t.loc[("hbm_efficiency", "low", rate), "value"]
    assert t.loc[("nm_density", "high", rate), "value"] < t.loc[("nm_density", "low", rate), "value"]
    assert (
        t.loc[("avg_weight_bits", "high", rate), "value"] < t.loc[("avg_weight_bits", "low", rate), "value"]
    )
    assert t.loc[("op_sync_cycles", "high", rate), "value"] < t.loc[("op_sync_cycles", "low", rate), "value"]
    assert t["baseline"].groupby(level="metric").nunique().eq(1).all()
