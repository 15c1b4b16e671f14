"""Hard-wired LPU (HNLPU): the reference kernel against NumPy and the cost model's counts; time and
energy from the counts by hand; refusal of a model the chip was not built for; the experiment."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.device_spec import load_device
from hwmodels.hardwired import (
    Chip,
    Energies,
    HardwiredActions,
    action_counts,
    amortized_price_usd,
    dynamic_energy_j,
    gemv_actions,
    resource_times,
    step_time_from,
)
from hwmodels.kernels.hardwired_gemv import FP4_E2M1_CODES, hardwired_gemv
from workloads.errors import ConfigError
from workloads.graph import build_ops, gemm_table
from workloads.model_spec import load_model
from workloads.quant import Quant

DEV = load_device("hnlpu")
CHIP = Chip.of(DEV)
SPEC = load_model("gpt-oss-120b")
FP16 = Quant.from_name("fp16")
HBM_RATE = DEV.memory.bw_bytes_per_s


def _decode(batch=216, context=2048):
    return build_ops(SPEC, FP16, phase="decode", batch=batch, context=context)


def _step(a, field):
    """A field of ``a`` summed over the step (times each op's count)."""
    x = getattr(a, field)
    return float((a.count.reshape((-1,) + (1,) * (x.ndim - 1)) * x).sum())


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.integers(1, 12),
    tokens=st.integers(1, 3),
    act_bits=st.integers(2, 10),
    seed=st.integers(0, 10_000),
)
def test_hardwired_gemv_matches_numpy(n, k, tokens, act_bits, seed):
    """FP4 weights as wires, inputs bit-serial in two's complement: exactly ``W @ x``."""
    rng = np.random.default_rng(seed)
    w = FP4_E2M1_CODES[rng.integers(0, 16, size=(n, k))]
    x = rng.integers(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1), size=(k, tokens))
    y, _ = hardwired_gemv(w, x, act_bits=act_bits)
    np.testing.assert_array_equal(y, w @ x)
    y1, _ = hardwired_gemv(w, x[:, 0], act_bits=act_bits)
    np.testing.assert_array_equal(y1, w @ x[:, 0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(1, 12), tokens=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_kernel_counts_are_the_closed_form(n, k, tokens, seed):
    """The kernel's bit-serial cycles, popcount additions (zero weights have no wire), constant
    multiplies and adder-tree adds equal ``gemv_actions``."""
    rng = np.random.default_rng(seed)
    w = FP4_E2M1_CODES[rng.integers(0, 16, size=(n, k))]
    x = rng.integers(-128, 128, size=(k, tokens))
    _, c = hardwired_gemv(w, x, act_bits=CHIP.act_bits)
    a = gemv_actions(n, k, tokens, CHIP, nnz=np.count_nonzero(w))
    got = (a.tokens, a.bitserial_cycles, a.popcount_adds, a.const_mults, a.tree_adds)
    assert got == (c.tokens, c.bitserial_cycles, c.popcount_adds, c.const_mults, c.tree_adds)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(1, 10), tokens=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_action_counts_of_a_step_are_what_the_kernel_does(n, k, tokens, seed):
    """``action_counts`` (what ``estimate`` prices) on a one-GEMM step is the kernel's counts: every
    weight wired (no FP4 zero drawn, the catalog's nonzero fraction 1), ``act_bits`` cycles per token."""
    rng = np.random.default_rng(seed)
    nonzero = np.r_[1:8, 9:16]
    w = FP4_E2M1_CODES[rng.choice(nonzero, size=(n, k))]
    x = rng.integers(-128, 128, size=(k, tokens))
    _, c = hardwired_gemv(w, x, act_bits=CHIP.act_bits)
    a = action_counts(gemm_table(float(tokens), float(n), float(k), FP16, name="qkv_proj"), CHIP)
    got = tuple(
        float(getattr(a, f)[0]) for f in ("bitserial_cycles", "popcount_adds", "const_mults", "tree_adds")
    )
    assert got == (c.bitserial_cycles, c.popcount_adds, c.const_mults, c.tree_adds)


def test_no_weight_ever_crosses_a_memory():
    """A short decode step reads HBM only for the embedding rows (16 chips x 2880 x 2 B per token):
    the weights are wires. KV fits the buffers (16 x 320 MB), so none of it spills."""
    a = action_counts(_decode(batch=4, context=128), CHIP)
    assert _step(a, "hbm_bytes") == pytest.approx(4 * 16 * 2880 * 2)


def test_link_bound_step_time_by_hand():
    """216 sequences at 2K: the links carry per token and layer
    - Q all-reduce 4 x 6 x 1024 + K, V reduces 2 x 4 x 3 x 128 = 27,648 values;
    - softmax stats + partial outputs 4 x 6 x (1024 + 32) = 25,344;
    - O row all-reduce 4 x 6 x 720 + column all-gather 16 x 3 x 720 = 51,840;
    - experts all-reduce 2 x 15 x 2880 = 86,400;
    that is 191,232 per layer, x 36, plus the logits all-gather 15 x 201,088, at 2 bytes per value,
    over 16 chips x 6 links x 128 GB/s x 0.92."""
    per_token = (27_648 + 25_344 + 51_840 + 86_400) * 36 + 15 * 201_088
    expected = 216 * per_token * 2 / (16 * 6 * 128e9 * 0.92)
    a = action_counts(_decode(), CHIP)
    times = resource_times(a, CHIP, HBM_RATE)
    assert times["link"] == pytest.approx(expected, rel=1e-12)
    assert step_time_from(a, CHIP, HBM_RATE) == pytest.approx(expected, rel=1e-12)  # links bind
    assert max(times, key=lambda r: float(times[r])) == "link"


def test_latency_bound_step_time_by_hand():
    """One sequence at context 0 (each layer attends only to its new token) is latency-bound.
    - HN passes: 5 x 36 + lm_head = 181, each 8 input bits + 4 adder-tree levels at 1 GHz.
    - Collective steps: (2 + 4 + 3 + 4) x 36 + 2 = 470, each 100 ns.
    - The token's 19.8 MB over the links.
    - 8 KV heads x 2 vectors x 36 layers through the VEX (32 per cycle per chip)."""
    link_bytes = ((27_648 + 25_344 + 51_840 + 86_400) * 36 + 15 * 201_088) * 2
    expected = (
        181 * 12e-9 + 470 * 100e-9 + link_bytes / (16 * 6 * 128e9 * 0.92) + 8 * 2 * 36 / (16 * 32 * 1e9)
    )
    a = action_counts(_decode(batch=1, context=0), CHIP)
    times = resource_times(a, CHIP, HBM_RATE)
    assert times["latency"] == pytest.approx(expected, rel=1e-9)
    assert step_time_from(a, CHIP, HBM_RATE) == pytest.approx(expected, rel=1e-9)


def test_throughput_is_concurrency_over_token_latency_until_a_resource_saturates():
    """With few tokens in flight a step takes one token's trip (about 52 us at 2K), so tokens/s is
    the batch over it. Past about 30 tokens (52 us / 1.75 us per token) the links bind and
    tokens/s stays flat."""
    rate = {}
    for b in (1, 8, 216, 432):
        t = float(step_time_from(action_counts(_decode(batch=b), CHIP), CHIP, HBM_RATE))
        rate[b] = b / t
    assert rate[8] == pytest.approx(8 * rate[1], rel=0.05)
    assert rate[1] < rate[8] < rate[216] and rate[432] == pytest.approx(rate[216], rel=1e-9)


def test_long_context_moves_the_bound_to_attention():
    """The paper's Fig. 14: attention's share grows with context. At 64K the VEX (and the KV that
    spills to HBM) outweigh the links."""
    times = resource_times(action_counts(_decode(context=65536), CHIP), CHIP, HBM_RATE)
    assert times["vex"] > times["hbm"] > times["link"]


def test_energies_from_table_1_by_hand():
    """Per action: buffer 85.73 W / 80 TB/s; links 49.65 W / (6 x 128 GB/s); VEX 33.09 W / (32 x 1 GHz);
    HBM 8 pJ/bit + 63 W PHY / (153.6 TB/s / 16). At Table 2's 249,960 tokens/s, the HN actions draw
    16 x 76.92 W, and with the static power the system draws exactly its 6.9 kW."""
    e = Energies.of(DEV)
    assert e.sram_byte == pytest.approx(85.73 / 80e12)
    assert e.link_byte == pytest.approx(49.65 / (6 * 128e9))
    assert e.vex_kv_vector == pytest.approx(33.09 / 32e9)
    assert e.hbm_byte == pytest.approx(8e-12 * 8 + 63 / (153.6e12 / 16))
    a = action_counts(_decode(), CHIP)
    per_token = {f: _step(a, f) / 216 for f in HardwiredActions.action_fields()}
    hn = per_token["popcount_adds"] * e.popcount_add + per_token["const_mults"] * e.const_mult
    hn += per_token["tree_adds"] * e.tree_add
    assert hn * 249_960 == pytest.approx(16 * 76.92, rel=1e-9)
    dynamic = float(dynamic_energy_j(a, e).sum()) / 216
    assert dynamic * 249_960 + e.static_w == pytest.approx(6900, rel=1e-9)


def test_dynamic_energy_by_hand():
    """A 4 x 6 GEMV, 2 tokens: 2 x 24 x 8 popcount additions, 2 x 4 x 16 multiplies, 2 x 4 x 15 adds."""
    e = Energies.of(DEV)
    a = gemv_actions(4, 6, 2, CHIP)
    expected = 384 * e.popcount_add + 128 * e.const_mult + 120 * e.tree_add
    assert float(dynamic_energy_j(a, e).sum()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("field", HardwiredActions.action_fields())
def test_tripling_any_action_changes_time_or_energy(field):
    """Each count is priced: with the other actions made negligible (x 1e-9, so the field's own
    resource binds), tripling it changes the step's time or its energy."""
    e = Energies.of(DEV)
    base = action_counts(_decode(), CHIP)
    others = {
        f: getattr(base, f) * 1e-9 for f in HardwiredActions.action_fields() if f not in (field, "tokens")
    }
    a = replace(base, **others)
    tripled = replace(a, **{field: 3 * getattr(a, field)})
    t0, t3 = step_time_from(a, CHIP, HBM_RATE), step_time_from(tripled, CHIP, HBM_RATE)
    e0, e3 = dynamic_energy_j(a, e).sum(), dynamic_energy_j(tripled, e).sum()
    assert t3 != pytest.approx(t0, rel=1e-6) or e3 != pytest.approx(e0, rel=1e-6)


def test_estimate_runs_the_wired_model_and_refuses_any_other():
    from roofline.estimate import estimate

    e = estimate("gpt-oss-120b", "hnlpu", batch=216, input_len=1024, output_len=1024)
    assert float(e.decode_tokens_per_s) > 1e5 and str(e.bound) == "link"
    for other in ("llama-3.1-8b", "gpt-oss-20b"):
        with pytest.raises(ConfigError, match="hard-wired for gpt-oss-120b"):
            estimate(other, "hnlpu", batch=1, input_len=16, output_len=4)
    ops = _decode(batch=2)
    with pytest.raises(ConfigError, match="tp = pp = ep = 1"):
        from hwmodels.placement import Placement

        registry.get("hardwired").estimate(ops, DEV, Placement(ep=2))


def test_cli_estimate_works():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "hwsim", "estimate", "-m", "gpt-oss-120b", "-d", "hnlpu", "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads(r.stdout)["device"] == "hnlpu"


def test_catalog_price_is_the_amortized_nre():
    """The catalog price: pessimistic NRE 123.16 M$ + 2 re-spins x 36.92 M$, over 50 systems, plus
    3 builds of 16 chips x 8,454 $."""
    b = DEV.extra["hardwired"]
    assert DEV.price_usd == pytest.approx(amortized_price_usd(b, "high"), abs=1.0)
    hand = (27.6923e6 + 36.9231e6 + 58.54e6 + 2 * 36.9231e6) / 50 + 3 * 16 * 8454
    assert amortized_price_usd(b, "high") == pytest.approx(hand, rel=1e-5)
    assert amortized_price_usd(b, "high", systems=1) > 40 * amortized_price_usd(b, "high")


def test_tco_formulas_reproduce_table_3():
    """The paper's fleets give Table 3: H100 9,563 M$, HNLPU 118.9-229.4 M$ (annual updates); 1
    system 96.62-197.8 M$ against 2,000 H100s at 191.2 M$; so 41.7x and 80.4x."""
    from sim.experiments import hnlpu

    tot = lambda d: sum(d.values()) / 1e6  # noqa: E731
    assert tot(hnlpu.h100_cluster_tco(100_000)) == pytest.approx(9563, rel=1e-3)
    assert tot(hnlpu.h100_cluster_tco(2_000)) == pytest.approx(191.2, rel=1e-3)
    assert tot(hnlpu.hnlpu_fleet_tco(50, DEV, "high")) == pytest.approx(229.4, rel=1e-3)
    assert tot(hnlpu.hnlpu_fleet_tco(50, DEV, "low")) == pytest.approx(118.9, rel=1e-3)
    assert tot(hnlpu.hnlpu_fleet_tco(1, DEV, "high")) == pytest.approx(197.8, rel=1e-3)
    assert tot(hnlpu.hnlpu_fleet_tco(1, DEV, "low")) == pytest.approx(96.62, rel=1e-3)
    assert hnlpu.paper_tco_advantage("high") == pytest.approx(41.7, rel=2e-3)
    assert hnlpu.paper_tco_advantage("low") == pytest.approx(80.4, rel=2e-3)


def test_hnlpu_rows():
    from sim.experiments import hnlpu

    frame = hnlpu.run()
    assert list(frame["metric"]) == list(hnlpu.PAPER)
    assert (frame["ratio"] > 0).all() and frame["hwsim_value"].notna().all()
    assert set(hnlpu.MISS_CAUSES) <= set(hnlpu.PAPER)
    row = frame.set_index("metric")
    # the H100 side is hwsim's prediction, never the paper's 45 tokens/s
    assert row.loc["h100_tokens_per_s", "hwsim_value"] != pytest.approx(45.0)
    assert row.loc["throughput_vs_h100", "hwsim_value"] == pytest.approx(
        row.loc["throughput_tokens_per_s", "hwsim_value"] / row.loc["h100_tokens_per_s", "hwsim_value"]
    )


def test_tornado_moves_headlines_the_right_way():
    """More bytes per exchanged value or slower links lower the link-bound throughput; a slower VEX
    lowers it once attention binds; the tornado reports each end beside the unchanged baseline."""
    from sim.experiments import hnlpu

    t = hnlpu.sensitivity().set_index(["parameter", "end", "metric"])
    tps = "throughput_tokens_per_s"
    assert (
        t.loc[("link_value_bytes", "high", tps), "value"] < t.loc[("link_value_bytes", "low", tps), "value"]
    )
    assert t.loc[("link_GBps", "low", tps), "value"] < t.loc[("link_GBps", "high", tps), "value"]
    assert (
        t.loc[("vex_kv_vectors_per_cycle", "low", tps), "value"] < t.loc[("link_GBps", "high", tps), "value"]
    )
    assert t["baseline"].groupby(level="metric").nunique().eq(1).all()
