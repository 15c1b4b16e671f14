"""vLLM V0's per-sequence host time, fitted on its offline and end-to-end rows."""

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


def test_the_fit_recovers_a_planted_per_sequence_time(monkeypatch):
    """Rows 'measured' at hwsim's own prediction with 30 us per sequence are fitted at 30 us, with
    no error in sample or with each source held out; the enforce-eager engine and synchronous V1
    get the same."""
    rows = host_fit.batch_rows()
    planted = host_fit._predictions("vllm-v0", rows, lambda _m: None)[host_fit.BATCH_SEQ_GRID_US.index(30.0)]
    assert np.isfinite(planted).all()
    monkeypatch.setattr(host_fit, "batch_rows", lambda: rows.assign(measured=planted))
    terms, errors = host_fit.fit_batch_hosts(lambda _m: None)
    assert terms == {f: {"seq_overhead_us": 30.0} for f in ("vllm-v0", "vllm-eager", "vllm-sync")}
    assert errors["vllm-v0"]["in_sample"]["median_ape"] == pytest.approx(0.0, abs=1e-12)
    assert errors["vllm-v0"]["leave_one_source_out"]["median_ape"] == pytest.approx(0.0, abs=1e-12)


def test_an_optimum_at_the_grid_top_is_not_fitted(monkeypatch):
    """Rows four times slower than hwsim at no host time want more than the grid's top: not fitted."""
    rows = host_fit.batch_rows()
    base = host_fit._predictions("vllm-v0", rows, lambda _m: None)[0]
    slow = np.where(rows["cond"].map(lambda c: c.metric.endswith("per_s")), base / 4, base * 4)
    monkeypatch.setattr(host_fit, "batch_rows", lambda: rows.assign(measured=slow))
    terms, errors = host_fit.fit_batch_hosts(lambda _m: None)
    assert terms == {}
    assert errors["vllm-v0"]["not_fitted"]


def test_shipped_v0_host_time_reaches_the_priced_step():
    """The shipped fit charges both V0 frameworks the same time per running sequence, inside the
    grid (not its top), and an estimate's decode step carries it: 256 sequences of Llama-3.1-8B on
    an H100 decode 256 x that time slower per token under vllm-v0 than with none (45 us: 11.5 ms)."""
    v0, eager = framework_terms("vllm-v0"), framework_terms("vllm-eager")
    assert 0 < v0.seq_overhead_s * 1e6 < host_fit.BATCH_SEQ_GRID_US[-1]
    assert eager.seq_overhead_s == v0.seq_overhead_s
    kw = dict(batch=256, input_len=128, output_len=128, framework="vllm-v0")
    with_host = float(estimate("llama-3.1-8b", "h100-sxm", **kw).tpot_s)
    with framework_overridden("vllm-v0", {"seq_overhead_us": 0.0}):
        without = float(estimate("llama-3.1-8b", "h100-sxm", **kw).tpot_s)
    assert with_host - without == pytest.approx(256 * v0.seq_overhead_s, rel=0.01)


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
