"""The 10th-90th percentile range on every prediction (``roofline.intervals``)."""

import dataclasses
import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.device_spec import load_device
from roofline import intervals
from roofline.estimate import estimate
from roofline.intervals import (
    ESTIMATE_RANGES,
    MIN_ROWS,
    SPAN,
    WIDEN_PER_DECADE,
    choose,
    estimate_ranges,
    fit_table,
    half_width,
    held_out_coverage,
    log_range,
    weighted_quantile,
)
from roofline.validation import POINT_KEYS, load_measured, validate_frame
from workloads.quant import Quant

RANGE_KEYS = [f"{k}_{end}" for k in ESTIMATE_RANGES for end in ("low", "high")]


_SOURCE_IDS = itertools.count()
"""Source names no two ``_rows`` share."""


def _rows(n, log_ratio, **fields):
    """``n`` fit rows of one group: the given key fields, a fixed operating point, ``log_ratio``,
    each from its own source (unless ``source`` is given), so that every row weighs the same."""
    base = {
        "device_class": "datacenter-gpu",
        "phase": "decode",
        "framework": "vllm",
        "format": "w16",
        "batch": 8.0,
        "context": 1024.0,
        "peak_flop_per_s": 1e15,
        "mem_bw_bytes_per_s": 3e12,
    }
    return pd.DataFrame(
        [
            {**base, "source": f"s{next(_SOURCE_IDS)}", **fields, "log_ratio": r}
            for i, r in enumerate(np.broadcast_to(log_ratio, n))
        ]
    )


@settings(max_examples=25, deadline=None)
@given(
    device=st.sampled_from(["h100-sxm", "a100-sxm-80gb", "rtx-4090", "m2-ultra", "l4"]),
    precision=st.sampled_from(["fp16", "fp8", "int4", "q4_0"]),
    framework=st.sampled_from([None, "vllm", "llama.cpp", "tensorrt-llm"]),
    batch=st.lists(st.integers(1, 4096), min_size=1, max_size=4),
    input_len=st.integers(1, 32768),
)
def test_every_range_contains_its_prediction(device, precision, framework, batch, input_len):
    """For any estimate, low <= predicted <= high wherever a range exists; TTFT and TPOT on a
    GPU always get one (the phase-level groups exist); a range is never inverted."""
    e = estimate(
        "llama-3.1-8b",
        device,
        batch=np.array(batch),
        input_len=input_len,
        output_len=64,
        precision=precision,
        framework=framework,
    )
    for key in ESTIMATE_RANGES:
        value, low, high = getattr(e, key), getattr(e, f"{key}_low"), getattr(e, f"{key}_high")
        assert low.shape == value.shape == high.shape
        ranged = np.isfinite(low)
        assert np.array_equal(ranged, np.isfinite(high)), key
        assert np.all(low[ranged] <= value[ranged] * (1 + 1e-12)), key
        assert np.all(value[ranged] <= high[ranged] * (1 + 1e-12)), key
    assert np.isfinite(e.ttft_s_low).all() and np.isfinite(e.tpot_s_high).all()


def test_a_rate_range_is_the_inverted_time_range():
    """Prefill tokens/s is batch x prompt / TTFT, so its low end is at TTFT's high end (and
    decode tokens/s's at TPOT's): the product of the two stays that of the predictions."""
    e = estimate("llama-2-7b", "h100-sxm", batch=np.array([1, 16]), input_len=512, output_len=32)
    assert e.ttft_s_high * e.prefill_tokens_per_s_low == pytest.approx(e.ttft_s * e.prefill_tokens_per_s)
    assert e.tpot_s_low * e.decode_tokens_per_s_high == pytest.approx(e.tpot_s * e.decode_tokens_per_s)


def test_a_rate_per_device_is_a_rate(monkeypatch):
    """Tokens/s per device is a rate like tokens/s: a biased group (shift 0.025, half-width 0.275
    in time orientation) gives both the same inverted range, not the time's (``is_rate``, which
    also orients a fit row's residual in ``residual_rows``, says so of every per-device rate)."""
    rows = pd.concat([_rows(6, -0.2, batch=1.0), _rows(6, 0.3, batch=64.0)])
    monkeypatch.setattr(intervals, "table", lambda: fit_table(rows))
    point = {"device_class": "datacenter-gpu", "phase": "decode", "framework": "none", "format": "w16"}
    point |= {"batch": 8.0, "context": 1024.0, "peak_flop_per_s": np.nan, "mem_bw_bytes_per_s": 3e12}
    per_device = intervals.row_range(point, 100.0, "output_tokens_per_s_per_device")
    assert per_device == pytest.approx(intervals.row_range(point, 100.0, "output_tokens_per_s"))
    assert per_device == pytest.approx((100.0 * np.exp(-0.3), 100.0 * np.exp(0.25)))
    assert intervals.row_range(point, 100.0, "tpot_s") == pytest.approx(
        (100.0 * np.exp(-0.25), 100.0 * np.exp(0.3))
    )
    assert intervals.is_rate("total_tokens_per_s_per_device") and not intervals.is_rate("ttft_s_p99")


def test_group_fallback_on_a_hand_built_table():
    """Fifteen datacenter decode rows: 5 of vLLM fp16 (too few alone, ``MIN_ROWS`` = 12) and 10 of
    TensorRT-LLM fp8. A vLLM fp16 query falls back to (datacenter-gpu, decode), whose 15 residuals
    0.0, 0.1, ..., 1.4 have 10th percentile 0.14 (position 0.1 x 14 = 1.4, between 0.1 and 0.2),
    90th 1.26 (position 12.6), median 0.7, so shift 0.35 (``BIAS_SHARE`` 0.5), and half-width 0.77
    (80th percentile of |r - 0.35|: position 11.2 of 0.05, 0.05, 0.15, 0.15, ..., 0.75, 0.85, ...,
    1.05). A consumer-GPU decode query falls back to (decode): the same 15 plus 3 consumer rows at
    -1.0, median 0.55, shift 0.275, and |r - 0.275| puts the 80th percentile at position 13.6 of
    0.025, 0.075, ..., 1.025, 1.125, 1.275 x 3: 1.085. No group has prefill rows: no range."""
    assert MIN_ROWS == 12
    r = np.arange(15) / 10
    rows = pd.concat(
        [
            _rows(5, r[:5]),
            _rows(10, r[5:], framework="tensorrt-llm", format="w8"),
            _rows(3, -1.0, device_class="consumer-gpu"),
        ]
    )
    table = fit_table(rows)
    assert ("datacenter-gpu", "decode", "vllm", "w16") not in table
    key = {"device_class": "datacenter-gpu", "phase": "decode", "framework": "vllm", "format": "w16"}
    group = choose(table, key)
    assert group is table[("datacenter-gpu", "decode", None, None)]
    assert (group.rows, group.q10, group.q90) == (15, pytest.approx(0.14), pytest.approx(1.26))
    assert (group.shift, group.half_width) == (pytest.approx(0.35), pytest.approx(0.77))
    coarse = choose(table, {**key, "device_class": "consumer-gpu"})
    assert coarse.rows == 18 and (coarse.shift, coarse.half_width) == (
        pytest.approx(0.275),
        pytest.approx(1.085),
    )
    assert choose(table, {**key, "phase": "prefill"}) is None
    # the same table through the estimate's lookup: a consumer GPU's TPOT gets (decode)'s range,
    # widened by the farthest of: context 1024 + 16 / 2 = 1032 against the rows' 1024, the 4090's
    # peak against the rows' 1e15 FLOP/s, its bandwidth against their 3e12 B/s
    e = estimate("llama-2-7b", "rtx-4090", batch=8, input_len=1024, output_len=16, precision="q4_0")
    values = {k: getattr(e, k) for k in ESTIMATE_RANGES}
    device, quant = load_device("rtx-4090"), Quant.from_name("q4_0")
    out = estimate_ranges(device, quant, None, 8, 1024, 16, values, table)
    peak, bw = device.peak(quant.compute_format), device.memory.bw_bytes_per_s
    decades = max(np.log10(1032 / 1024), np.log10(1e15 / peak), np.log10(3e12 / bw))
    h = 1.085 + decades * np.log(WIDEN_PER_DECADE)
    assert out["tpot_s_low"] == pytest.approx(e.tpot_s * np.exp(0.275 - h))
    assert out["tpot_s_high"] == pytest.approx(e.tpot_s * np.exp(0.275 + h))
    assert out["decode_tokens_per_s_low"] == pytest.approx(e.decode_tokens_per_s * np.exp(-0.275 - h))
    assert out["decode_tokens_per_s_high"] == pytest.approx(e.decode_tokens_per_s * np.exp(h - 0.275))
    assert np.isnan(out["ttft_s_low"]) and np.isnan(out["energy_j_per_token_high"])


def test_a_group_that_is_mostly_one_source_defers_to_a_coarser_one():
    """Twenty vLLM decode rows, 17 from one source (85% > ``MAX_SOURCE_SHARE`` = 0.8): neither the
    fine group nor (datacenter-gpu, decode) gives a range; (decode), the coarsest level, does, from
    all twenty. With 16 from that source (80%) the fine group gives its own."""
    from roofline.intervals import MAX_SOURCE_SHARE

    assert MAX_SOURCE_SHARE == 0.8
    rows = pd.concat([_rows(17, 0.1, source="big"), _rows(3, 0.5, source="small")])
    table = fit_table(rows)
    key = {"device_class": "datacenter-gpu", "phase": "decode", "framework": "vllm", "format": "w16"}
    assert set(table) == {(None, "decode", None, None)}
    assert choose(table, key).rows == 20
    table = fit_table(pd.concat([_rows(16, 0.1, source="big"), _rows(4, 0.5, source="small")]))
    assert choose(table, key) is table[("datacenter-gpu", "decode", "vllm", "w16")]


def test_every_source_counts_once_outside_the_server_phases():
    """Forty decode rows of one source at r = 0 and two rows each of three other sources at 0.5.
    Each source weighs 1 (a row 1/40 or 1/2), so 3 of the 4 units of weight sit at 0.5: the
    median is 0.5 (the first 0.5 is placed at (1.5 - 0.5) / (4 - 0.5) = 0.29 of the way), the
    shift 0.25 and |r - 0.25| = 0.25 for every row, so the range is 0 to 0.5. Counted by rows, as
    in a ``server-`` phase, 40 of the 46 sit at 0: median 0, no shift, and the 80th percentile of
    |r| (position 36 of 45) is 0."""
    rows = pd.concat([_rows(40, 0.0, source="big"), *(_rows(2, 0.5, source=s) for s in "BCD")])
    group = fit_table(rows)[(None, "decode", None, None)]  # 87% one source: the coarsest level
    assert (group.q10, group.q90) == (0.0, 0.5)
    assert (group.shift, group.half_width) == (pytest.approx(0.25), pytest.approx(0.25))
    served = fit_table(rows.assign(phase="server-tpot"))[(None, "server-tpot", None, None)]
    assert (served.shift, served.half_width, served.q90) == (0.0, 0.0, 0.5)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5), min_size=2, max_size=30),
    q=st.floats(0, 1),
)
def test_equal_weights_give_numpys_quantile(values, q):
    """With every weight equal, ``weighted_quantile`` is ``np.quantile``'s linear default."""
    x = np.array(values)
    assert weighted_quantile(x, np.full(len(x), 0.3), q) == pytest.approx(np.quantile(x, q), abs=1e-9)


def test_a_biased_group_still_contains_the_prediction():
    """Residuals all positive (hwsim too fast, 0.1 to 0.3, median 0.2): the range is shifted by
    half the median, 0.1, +-the 80th percentile of |r - 0.1| (0.16), so it runs from -0.06 to
    0.26 and holds the prediction. A range shifted past its half-width is stretched to start at
    the prediction. From one source, a group is not shifted at all."""
    r = np.linspace(0.1, 0.3, 12)
    group = fit_table(_rows(12, r))[(None, "decode", None, None)]
    assert group.q10 > 0 and group.shift == pytest.approx(0.1)
    assert group.half_width == pytest.approx(np.quantile(r - 0.1, 0.8)) == pytest.approx(0.16)
    point = _rows(1, 0.0).iloc[0]
    assert log_range(group, point) == (pytest.approx(-0.06), pytest.approx(0.26))
    far = dataclasses.replace(group, shift=0.5, half_width=0.1)
    assert log_range(far, point) == (0.0, pytest.approx(0.6))
    alone = fit_table(_rows(12, r, source="one"))[(None, "decode", None, None)]
    assert alone.shift == 0.0 and alone.half_width == pytest.approx(np.quantile(r, 0.8))


def test_widening_outside_the_fitted_span():
    """Rows at batch 1..64 and context 1024. At batch 6400 (2 decades above the span) and
    context 10.24 (2 below) the farthest dimension is 2 decades out: the half-width grows by
    2 x log(1.2). At batch 640 and context 1024, 1 decade: log(1.2). Inside the span nothing
    moves; an unknown device peak (NaN) never widens."""
    assert WIDEN_PER_DECADE == 1.2
    rows = pd.concat([_rows(6, -0.2, batch=1.0), _rows(6, 0.3, batch=64.0)])
    group = fit_table(rows)[(None, "decode", None, None)]
    assert group.shift == pytest.approx(0.025)  # half the median, 0.05
    assert group.half_width == pytest.approx(0.275)  # |r - 0.025| is 0.225 or 0.275
    point = {"batch": 8.0, "context": 1024.0, "peak_flop_per_s": np.nan, "mem_bw_bytes_per_s": 3e12}
    h = half_width(
        group,
        {**point, "batch": np.array([8.0, 6400.0, 640.0]), "context": np.array([1024.0, 10.24, 1024.0])},
    )
    assert h == pytest.approx([0.275, 0.275 + 2 * np.log(1.2), 0.275 + np.log(1.2)])


def test_widening_reaches_the_estimate():
    """The shipped table widens a sweep's range as the batch leaves its groups' span."""
    e = estimate("llama-2-7b", "h100-sxm", batch=np.array([1, 10**6]), input_len=1024, output_len=8)
    width = e.tpot_s_high / e.tpot_s_low
    assert width[1] > width[0]


def test_coverage_of_lognormal_residuals_is_eighty_percent():
    """Residuals drawn from N(0, 0.3) in 40 sources of 50 rows: the 10th-90th percentile range
    fitted on the other 39 sources covers 80% of the held-out rows (+-3 points for 2,000 draws),
    and its width high/low is exp(2 x 1.2816 x 0.3) = 2.16."""
    rng = np.random.default_rng(7)
    rows = pd.concat(
        [_rows(50, rng.normal(0.0, 0.3, 50), source=f"s{i}") for i in range(40)], ignore_index=True
    )
    cov = held_out_coverage(rows)
    assert cov["rows"] == cov["with_range"] == 2000
    assert cov["inside"] == pytest.approx(0.80, abs=0.03)
    assert cov["median_width"] == pytest.approx(np.exp(2 * 1.2816 * 0.3), rel=0.05)
    assert cov["by_phase"]["decode"]["inside"] == cov["inside"]


def test_a_source_with_no_group_left_has_no_range():
    """Held out, a source whose phase no other source measures gets no range (counted apart)."""
    rows = pd.concat(
        [_rows(12, 0.1, source="a"), _rows(12, -0.1, source="b"), _rows(12, 0.0, phase="e2e", source="c")]
    )
    cov = held_out_coverage(rows)
    assert cov["rows"] == 36 and cov["with_range"] == 24
    assert cov["by_phase"]["e2e"]["inside"] is None


def test_shipped_table_is_calibrated_on_held_out_sources():
    """The coverage recorded by the last ``hwsim calibrate``: 70-95% of held-out rows inside
    their 10th-90th percentile range (80% nominal). The median width high/low is what the
    leave-one-source-out errors allow, about 2.1 (the aim was 1.8: a third of held-out rows
    are off by more than a factor sqrt(1.8) = 1.34, so no 80% range that narrow exists); it
    may not pass 2.5."""
    cov = intervals.recorded_coverage()
    assert cov, "hwmodels/calibration/intervals_fitted.yaml is missing: run hwsim calibrate"
    assert 0.70 <= cov["inside"] <= 0.95 and cov["median_width"] <= 2.5
    assert cov["with_range"] >= 0.85 * cov["rows"]
    groups = intervals.table()
    assert groups and all(g.rows >= MIN_ROWS and g.q10 <= g.q90 for g in groups.values())
    assert all(g.half_width > 0 and np.all(g.span_min <= g.span_max) for g in groups.values())
    assert set(SPAN) == {"batch", "context", "peak_flop_per_s", "mem_bw_bytes_per_s"}


def test_validate_points_carry_ranges():
    """Covered analytic rows carry a range around their prediction; rows without one say null."""
    frame = load_measured()
    points = validate_frame(frame.loc[frame["phase"].isin(["decode", "prefill", "offline"])].head(40))
    cov = points.loc[points["covered"]]
    assert len(cov) >= 20 and cov["predicted_low"].notna().all()
    assert (cov["predicted_low"] <= cov["predicted"]).all() and (
        cov["predicted"] <= cov["predicted_high"]
    ).all()
    assert {"predicted_low", "predicted_high"} <= set(POINT_KEYS)


def test_cli_estimate_json_and_table_show_ranges():
    args = [sys.executable, "-m", "hwsim", "estimate", "-m", "llama-2-7b", "-d", "a100-sxm-80gb"]
    r = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(RANGE_KEYS) <= set(data)
    assert data["tpot_s_low"] <= data["tpot_s"] <= data["tpot_s_high"]
    # the energy fit's leave-one-source-out residuals give J/token its range (datacenter GPUs)
    assert data["energy_j_per_token_low"] < data["energy_j_per_token"] < data["energy_j_per_token_high"]
    text = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    assert "tpot_s_low" not in text and "10th - 90th percentile" in text
    (line,) = [x for x in text.splitlines() if x.strip().startswith("tpot_s:")]
    assert "[" in line


def test_a_served_stream_takes_the_range_of_its_metrics_server_group(monkeypatch):
    """A server row's interval phase is its metric's kind; a served stream's TPOT takes the
    ``server-tpot`` group: 12 rows with r 0.0, 0.1, ..., 1.1 (median 0.55, shift 0.275) put the
    80th percentile of |r - 0.275| at position 8.8 of 0.025, 0.075, ..., 0.525, 0.625, ...: 0.605;
    the H100's point lies inside the rows' span (peak and bandwidth set to its own), so no
    widening: low = TPOT x exp(0.275 - 0.605), high = TPOT x exp(0.275 + 0.605). Its TTFT has no
    group: no range."""
    from hwmodels.device_spec import load_device

    assert intervals.phase_of("server", "tpot_s") == "server-tpot"
    assert intervals.phase_of("server", "requests_per_s") == "server-rate"
    assert intervals.phase_of("server", "output_tokens_per_s", closed_loop=True) == "server-e2e"
    assert intervals.phase_of("server", "tpot_s", closed_loop=True) == "server-tpot"
    assert intervals.phase_of("decode", "tpot_s") == "decode"
    device, quant = load_device("h100-sxm"), Quant.from_name("bf16")
    peak, bw = intervals.device_point(device, quant)
    rows = _rows(
        12, np.arange(12) / 10, phase="server-tpot", batch=256.0, context=1100.0, peak_flop_per_s=peak,
        mem_bw_bytes_per_s=bw,
    )  # fmt: skip
    monkeypatch.setattr(intervals, "table", lambda: fit_table(rows))
    metrics = {"tpot_s_mean": 0.02, "ttft_s_mean": 0.1, "e2e_s_mean": float("nan")}
    out = intervals.server_ranges(metrics, device, quant, "vllm", 256, 1000.0, 200.0)
    assert out["tpot_s_mean_low"] == pytest.approx(0.02 * np.exp(0.275 - 0.605))
    assert out["tpot_s_mean_high"] == pytest.approx(0.02 * np.exp(0.275 + 0.605))
    assert out["ttft_s_mean_low"] is None and out["e2e_s_mean_high"] is None
    assert out["output_tokens_per_s_low"] is None  # absent from the metrics
    # a closed loop's throughput, N in flight over their mean end-to-end latency (Little's law),
    # takes the end-to-end group's range (inverted, a rate); an open loop's has no server-rate group
    e2e_rows = rows.assign(phase="server-e2e")
    monkeypatch.setattr(intervals, "table", lambda: fit_table(e2e_rows))
    rate = {"output_tokens_per_s": 500.0}
    closed = intervals.server_ranges(rate, device, quant, "vllm", 256, 1000.0, 200.0, closed_loop=True)
    assert closed["output_tokens_per_s_low"] == pytest.approx(500.0 * np.exp(-0.275 - 0.605))
    assert closed["output_tokens_per_s_high"] == pytest.approx(500.0 * np.exp(-0.275 + 0.605))
    assert (
        intervals.server_ranges(rate, device, quant, "vllm", 256, 1000.0, 200.0)["output_tokens_per_s_low"]
        is None
    )


def test_the_energy_groups_are_written_apart_and_survive_a_time_refit(tmp_path):
    """``write_phase`` puts the energy fit's groups beside the time groups; a later ``write`` of
    time residuals keeps them (and their coverage); rows of another phase are refused."""
    from hwmodels.calibration.params import fits_in
    from workloads.errors import ConfigError

    energy = _rows(24, np.linspace(-0.2, 0.2, 24), phase="energy", framework="none")
    time_rows = _rows(24, np.linspace(-0.1, 0.1, 24))
    with fits_in(tmp_path):
        intervals.write(time_rows, "time")
        cov = intervals.write_phase(energy, "energy", "energy rows")
        key = ("datacenter-gpu", "energy", None, None)
        assert intervals.table()[key].half_width == pytest.approx(
            np.quantile(np.abs(energy["log_ratio"]), 0.8), abs=1e-4
        )
        assert cov["rows"] == 24
        intervals.write(time_rows, "time again")
        assert key in intervals.table() and ("datacenter-gpu", "decode", None, None) in intervals.table()
        assert intervals.recorded_coverage()["by_phase"]["energy"] == cov
        with pytest.raises(ConfigError, match="expected only 'energy'"):
            intervals.write_phase(time_rows, "energy", "wrong rows")
    intervals.table.cache_clear()
