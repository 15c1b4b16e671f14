"""vLLM V0's host time per step, per sequence and per tensor-parallel step, fitted on its offline
and end-to-end rows."""

import numpy as np
import pytest
import yaml

from hwmodels.calibration.params import framework_overridden, framework_terms, serving_fitted_path
from roofline.estimate import estimate
from roofline.validation import HELD_OUT_PREFIXES, operating_point, predict
from sim.serving import host_fit


def test_batch_rows_are_v0_fit_rows_only():
    """The fit sees the batch rows of V0's host engine (vllm-v0, and vllm-sync, V1 run
    synchronously, which shares it), none held out, none of another engine or a server run."""
    rows = host_fit.batch_rows()
    assert len(rows) >= host_fit.MIN_BATCH_ROWS
    assert set(rows["host"]) == {"vllm-v0"}
    assert not rows["id"].str.startswith(HELD_OUT_PREFIXES).any()
    assert all(c.serving is None and host_fit.host_of(c.framework) == "vllm-v0" for c in rows["cond"])


PLANTED = {"step_overhead_us": 1500.0, "seq_overhead_us": 30.0, "tp_step_overhead_us": 750.0}


def test_a_row_is_priced_affine_in_the_three_terms():
    """The fit's premise: four pricings of a row give its prediction at any terms. At a point off
    the probes and the grid, the affine form meets a direct pricing of every row."""
    rows = host_fit.batch_rows()
    affine = host_fit.affine_terms("vllm-v0", rows, lambda _m: None)
    point = {"step_overhead_us": 1234.0, "seq_overhead_us": 56.0, "tp_step_overhead_us": 789.0}
    direct = host_fit._priced("vllm-v0", rows, point)
    assert np.isfinite(direct).all()
    assert affine.at(*point.values()) == pytest.approx(direct, rel=1e-9)
    tp = rows["cond"].map(lambda c: c.tp).to_numpy()
    v0 = rows["cond"].map(lambda c: c.framework != "vllm-sync").to_numpy()  # V1's step terms are its own
    assert (affine.slope[1] > 0).all()
    assert (affine.slope[0][v0] > 0).all() and (affine.slope[0][~v0] == 0).all()
    assert (affine.slope[2][v0 & (tp > 1)] > 0).all() and (affine.slope[2][~v0 | (tp == 1)] == 0).all()


def test_a_rate_per_device_is_priced_affine_as_a_rate():
    """A rate per device (``output_tokens_per_s_per_device``) is the inverse of an affine time, as
    tokens/s is: the affine form meets a direct pricing of the rows restated in it."""
    from dataclasses import replace

    rows = host_fit.batch_rows()
    per_device = [
        replace(c, metric="output_tokens_per_s_per_device") if c.metric == "output_tokens_per_s" else c
        for c in rows["cond"]
    ]
    rows = rows.assign(cond=per_device)
    assert sum(c.metric == "output_tokens_per_s_per_device" for c in per_device) >= 3
    affine = host_fit.affine_terms("vllm-v0", rows, lambda _m: None)
    point = {"step_overhead_us": 1234.0, "seq_overhead_us": 56.0, "tp_step_overhead_us": 789.0}
    assert affine.at(*point.values()) == pytest.approx(host_fit._priced("vllm-v0", rows, point), rel=1e-9)


def test_the_fit_recovers_planted_terms(monkeypatch):
    """Rows 'measured' at hwsim's own prediction with 1.5 ms a step, 30 us a sequence and 0.75 ms a
    tensor-parallel step are fitted at those values, with no error in sample or with each source
    held out; the enforce-eager engine takes all three, synchronous V1 the per-sequence time only."""
    rows = host_fit.batch_rows()
    planted = host_fit._priced("vllm-v0", rows, PLANTED)
    assert np.isfinite(planted).all()
    monkeypatch.setattr(host_fit, "batch_rows", lambda: rows.assign(measured=planted))
    terms, errors = host_fit.fit_batch_hosts(lambda _m: None)
    assert terms == {"vllm-v0": PLANTED, "vllm-eager": PLANTED, "vllm-sync": {"seq_overhead_us": 30.0}}
    assert errors["vllm-v0"]["in_sample"]["median_ape"] == pytest.approx(0.0, abs=1e-12)
    assert errors["vllm-v0"]["leave_one_source_out"]["median_ape"] == pytest.approx(0.0, abs=1e-12)


def test_an_optimum_at_the_grid_top_is_not_fitted(monkeypatch):
    """Rows four times slower than hwsim at no host time want more than the grid's top: not fitted."""
    rows = host_fit.batch_rows()
    base = host_fit._priced("vllm-v0", rows, {})
    slow = np.where(rows["cond"].map(lambda c: c.metric.endswith("per_s")), base / 4, base * 4)
    monkeypatch.setattr(host_fit, "batch_rows", lambda: rows.assign(measured=slow))
    terms, errors = host_fit.fit_batch_hosts(lambda _m: None)
    assert terms == {}
    assert errors["vllm-v0"]["not_fitted"]


def test_shipped_v0_host_time_reaches_the_priced_step():
    """The shipped fit charges both V0 frameworks the same host times, inside the grids (not their
    tops), and an estimate's decode step carries them: 256 sequences of Llama-3.1-8B on an H100
    decode 256 x the per-sequence time plus the per-step time slower per token under vllm-v0
    than with none, and at TP 2 the tensor-parallel step time on top (none at TP 1)."""
    v0, eager = framework_terms("vllm-v0"), framework_terms("vllm-eager")
    terms = v0.serving_terms()
    for term, grid in zip(host_fit.GRID_TERMS, host_fit.GRIDS, strict=True):
        assert 0 < terms[term] < grid[-1], term
        assert eager.serving_terms()[term] == terms[term]
    none = dict.fromkeys(host_fit.GRID_TERMS, 0.0)
    for tp, handoff in ((1, 0.0), (2, v0.tp_step_overhead_s)):
        kw = dict(batch=256, input_len=128, output_len=128, framework="vllm-v0", tp=tp)
        with_host = float(estimate("llama-3.1-8b", "h100-sxm", **kw).tpot_s)
        with framework_overridden("vllm-v0", none):
            without = float(estimate("llama-3.1-8b", "h100-sxm", **kw).tpot_s)
        expected = v0.step_overhead_s + 256 * v0.seq_overhead_s + handoff
        assert with_host - without == pytest.approx(expected, rel=0.01)


def test_shipped_v0_fit_still_holds_its_recorded_error():
    """Priced with the shipped terms, the V0 batch rows' median error stays within 2 points of the
    in-sample figure the last ``hwsim calibrate`` recorded (a model change that moves them calls
    for a refit)."""
    record = yaml.safe_load(serving_fitted_path().read_text())["errors"]["vllm-v0"]
    rows = host_fit.batch_rows()
    ape = [
        abs(predict(operating_point(c))[0] / m - 1.0)
        for c, m in zip(rows["cond"], rows["measured"], strict=True)
    ]
    assert np.median(ape) <= record["in_sample"]["median_ape"] + 0.02


def test_a_served_replica_pays_the_tensor_parallel_step_time_by_its_own_tp():
    """The serving path charges each pool's steps by that pool's TP: a TP-2 replica of vllm-v0
    pays the tensor-parallel step time on every step, a TP-1 one does not, and a disaggregated
    split charges its TP-2 decode pool, not its TP-1 prefill pool."""
    from sim.serving.serve import prepare

    v0 = framework_terms("vllm-v0")
    assert v0.tp_step_overhead_s > 0
    one = prepare("llama-3.1-8b", "h100-sxm", max_context=2048, framework="vllm-v0").pricers["agg"]
    two = prepare("llama-3.1-8b", "h100-sxm", max_context=2048, tp=2, framework="vllm-v0").pricers["agg"]
    assert one.host_step_s(8) == pytest.approx(v0.host_step_s(8))
    assert two.host_step_s(8) - one.host_step_s(8) == pytest.approx(v0.tp_step_overhead_s)
    split = prepare(
        "llama-3.1-8b", "h100-sxm", max_context=2048, framework="vllm-v0", mode="disagg", decode_tp=2
    ).pricers
    assert split["decode"].host_step_s(8) - split["prefill"].host_step_s(8) == pytest.approx(
        v0.tp_step_overhead_s
    )


def test_the_event_path_pays_the_tensor_parallel_step_time_on_every_step():
    """simulate on 8 H100s at TP 2 under vllm-v0 takes the tensor-parallel step time longer per
    step (the prefill and each of the 16 decode steps) than with that term at zero; at TP 1, the
    same."""
    from sim.simulate import simulate

    v0 = framework_terms("vllm-v0")
    kw = dict(batch=4, input_len=256, output_len=17, framework="vllm-v0")
    for tp, extra in ((1, 0.0), (2, 17 * v0.tp_step_overhead_s)):
        with_term = float(simulate("8xh100-nvlink", "llama-3.1-8b", tp=tp, **kw).estimate.e2e_s)
        with framework_overridden("vllm-v0", {"tp_step_overhead_us": 0.0}):
            without = float(simulate("8xh100-nvlink", "llama-3.1-8b", tp=tp, **kw).estimate.e2e_s)
        assert with_term - without == pytest.approx(extra, rel=1e-6, abs=1e-12)
