"""Server rows of the measured set, predicted by simulating their request streams."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from hwmodels.calibration.params import serving_fitted_path
from roofline.validation import (
    burst_outgrows_pool,
    load_measured,
    offline_batch,
    offline_kv_tokens,
    operating_point,
    predict,
    resolve,
    server_conditions,
    summarize,
    validate_frame,
)
from sim.serving.calibrate import serving_rows, serving_source
from sim.serving.validation import _simulate_result, keeps_up, metric_key, predict_serving, row_trace
from workloads.errors import ConfigError


@pytest.fixture(scope="module")
def server_points():
    """The server rows, simulated on as many processes as the machine allows (as ``hwsim
    validate`` runs them; the runs stay cached for the report of ``test_validation``)."""
    frame = load_measured()
    server = frame[frame["phase"] == "server"]
    predict_serving.prepare(server_conditions(server))
    return validate_frame(server, serving=predict_serving)


def test_vllm_server_rows_are_covered_and_uncovered_ones_say_why(server_points):
    vllm = server_points[server_points["id"].str.match(r"s1\d\d-")]
    covered = vllm[vllm["covered"]]
    assert len(covered) >= 40
    assert (server_points["covered"] | (server_points["reason"].str.len() > 0)).all()


def test_serving_error_not_above_recorded(server_points):
    """TPOT and TTFT median errors of the fitted frameworks' rows stay within 2 points of the
    in-sample figures recorded by the last ``hwsim calibrate`` (a host time fitted on an engine's
    offline rows, ``sim/serving/host_fit.py``, is checked in ``test_host_fit``)."""
    record = yaml.safe_load(serving_fitted_path().read_text())
    rows = serving_rows()
    for framework, errors in record["errors"].items():
        if "not_fitted" in errors or "fitted_on" in errors:
            continue
        ids = set(rows.loc[rows["framework"] == framework, "id"])
        mine = server_points[server_points["id"].isin(ids) & server_points["covered"]]
        for metric in ("ttft_s", "tpot_s"):
            ape = mine.loc[mine["metric"] == metric, "ape"]
            recorded = record["errors"][framework]["in_sample"][f"{metric}_median_ape"]
            assert ape.median() <= recorded + 0.02, (framework, metric, ape.median(), recorded)
    for framework, errors in record.get("request_latency", {}).items():
        if "not_fitted" in errors or "in_sample" in record["errors"].get(framework, {}):
            continue  # a framework whose other terms were fitted after it is checked above
        ids = set(rows.loc[(rows["framework"] == framework) & (rows["metric"] == "ttft_s"), "id"])
        ape = server_points.loc[server_points["id"].isin(ids) & server_points["covered"], "ape"]
        recorded = errors["in_sample"]["ttft_s_median_ape"]
        assert ape.median() <= recorded + 0.02, (framework, "request latency", ape.median(), recorded)


def test_summary_reports_server_rows_per_phase_mode_and_metric(server_points):
    summary = summarize(server_points)
    assert {"server/agg/tpot_s", "server/agg/ttft_s"} <= set(summary["by_phase_mode"])


def test_row_trace_uses_the_dataset_shape_at_the_stated_means():
    frame = load_measured()
    row = frame[frame["id"] == "s210"].iloc[0]  # MLPerf OpenOrca, output mean 291 stated
    cond = resolve(row)
    trace = row_trace(cond)
    assert cond.lengths == "openorca" and cond.serving["rate"] == pytest.approx(101.0)
    assert trace.output_len.mean() == pytest.approx(291, rel=0.05)
    assert np.ptp(trace.input_len) > 100  # a distribution, not one length


def _burst_row(notes: str, max_model_len: str = "") -> pd.Series:
    """A ShareGPT burst row of vLLM on one H100 (``vj001``'s conditions) with the notes given."""
    row = load_measured().set_index("id").loc["vj001"].copy()
    row["id"] = "x001"
    row["notes"] = notes + (f" --max-model-len {max_model_len}" if max_model_len else "")
    return row


def test_a_long_open_loop_compares_its_steady_latencies():
    """An MLPerf server row (Poisson arrivals, no request count: a run of 2,400 s or more) compares
    the simulated run's steady latency means and throughput; the same row stating the 1,000
    requests its client sent is simulated with those 1,000 and compares the whole run's, as its
    client counted them, ramp-up and drain included; a closed loop compares the whole run's
    latencies; a run with no steady window falls back to its whole-run mean."""
    frame = load_measured().set_index("id")
    row = frame.loc["s211"].copy()  # MLPerf v4.1, H200, Llama-2-70B server TPOT
    row["id"] = "s211"
    c = operating_point(resolve(row))
    both = {"tpot_s_mean": 1.0, "steady_tpot_s_mean": 2.0}
    assert metric_key(c, both) == "steady_tpot_s_mean"
    assert metric_key(c, {"tpot_s_mean": 1.0}) == "tpot_s_mean"
    rates = {"output_tokens_per_s": 1.0, "steady_output_tokens_per_s": 2.0}
    assert metric_key(replace(c, metric="output_tokens_per_s"), rates) == "steady_output_tokens_per_s"
    stated = replace(c, serving={**c.serving, "num_requests": 1_000})
    assert metric_key(stated, both) == "tpot_s_mean"
    assert metric_key(replace(stated, metric="output_tokens_per_s"), rates) == "output_tokens_per_s"
    closed = replace(c, serving={**c.serving, "concurrency": 64, "rate": None})
    assert metric_key(closed, both) == "tpot_s_mean"


def test_a_run_whose_queue_grows_does_not_keep_up():
    """100 arrivals a second apart: a first token 0.2 s after each keeps up; one that waits ever
    longer (the queue growing 0.5 s per arrival: 40-60% wait 20-29.5 s, the last fifth 40-49.5 s,
    1.8 times as long) does not, so no longer run would find a steady state."""
    from sim.serving.requests import Requests
    from workloads.traces import Trace

    def run(wait: np.ndarray) -> Requests:
        req = Requests(Trace(np.full(100, 64), np.full(100, 10), arrival_s=np.arange(100.0)))
        req.arrival_s = np.arange(100.0)
        req.first_token_s = req.arrival_s + wait
        req.finish_s = req.first_token_s + 1.0
        return req

    assert keeps_up(run(np.full(100, 0.2)))
    assert not keeps_up(run(0.5 * np.arange(100.0)))


def test_a_burst_runs_the_prompts_its_client_flag_states():
    """A burst (request rate inf) runs the requests the notes state, as ``num_requests=N`` or as the
    benchmark client's own ``--num-prompts N``; without either, the clients' default 1,000. A field
    read from the notes ends at a closing bracket as at a space."""
    cases = (
        ("--num-prompts 320", 320),
        ("num_requests=64", 64),
        ("(num_requests=32)", 32),  # a field closing a parenthesis
        ("num_prompts=48", 48),
        ("", 1000),
    )
    for notes, n in cases:
        trace = row_trace(operating_point(resolve(_burst_row(notes))))
        assert trace.concurrency == n and len(trace.input_len) == n, notes


def test_requests_over_a_stated_max_model_len_are_refused_not_the_row():
    """ShareGPT draws of more than 2,000 tokens (prompt plus output) are refused by a server started
    with --max-model-len 2000, as vLLM's is, and the run is the rest; at 8 tokens every request is
    refused and the row says so."""
    full = row_trace(operating_point(resolve(_burst_row("--num-prompts 320"))))
    capped = row_trace(operating_point(resolve(_burst_row("--num-prompts 320", "2000"))))
    over = (full.input_len + full.output_len > 2000).sum()
    assert over > 0 and len(capped.input_len) == 320 - over
    assert (capped.input_len + capped.output_len <= 2000).all()
    assert f"{over} of 320 requests over max_model_len refused" in capped.description
    with pytest.raises(ConfigError, match="longer than its max_model_len 8"):
        row_trace(operating_point(resolve(_burst_row("--num-prompts 320", "8"))))


def test_a_server_rows_stated_sequence_limit_bounds_its_batch():
    """A server row with no batch column runs at most the sequences its notes state
    (``--max-num-seqs N``; SGLang's ``--max-running-requests N`` too): a burst of 64 requests on an
    engine held to 4 running waits in line, so its mean TTFT is longer and its throughput lower
    than at the engine's own limit; rows that differ only in the stated limit are simulated apart."""
    base = resolve(_burst_row("--num-prompts 64"))
    held = resolve(_burst_row("--num-prompts 64 --max-num-seqs 4"))
    assert base.batch is None and held.max_num_seqs == 4
    assert resolve(_burst_row("sglang.launch_server --max-running-requests 4")).max_num_seqs == 4
    free = {m: predict_serving(replace(base, metric=m))[0] for m in ("ttft_s", "output_tokens_per_s")}
    four = {m: predict_serving(replace(held, metric=m))[0] for m in ("ttft_s", "output_tokens_per_s")}
    assert four["ttft_s"] > 2 * free["ttft_s"] and four["output_tokens_per_s"] < free["output_tokens_per_s"]


def test_a_closed_loop_of_spread_lengths_staggers_its_prompts():
    """InferenceX's client draws lengths uniformly in [int(0.8 L), L]: the row's trace spans that
    range about its stated means. With equal lengths the 64 requests of a closed loop end together
    and their successors arrive as a burst, each waiting for the others' prefills; spread lengths
    stagger them, so the mean TTFT falls while the decode steps stay as they were."""
    row = load_measured().set_index("id").loc["vl008"].copy()
    row["id"] = "vl008"
    spread = operating_point(resolve(row))
    assert spread.length_spread == pytest.approx(0.2 / 1.8)
    trace = row_trace(spread)
    assert trace.input_len.min() == 819 and trace.input_len.max() in (1023, 1024)  # mean 921.5 read as 921
    lockstep = replace(spread, length_spread=None)
    assert np.ptp(row_trace(lockstep).input_len) == 0
    ttft = {k: predict_serving(c)[0] for k, c in (("spread", spread), ("lockstep", lockstep))}
    assert ttft["spread"] < 0.5 * ttft["lockstep"]
    tpot = [predict_serving(replace(c, metric="tpot_s"))[0] for c in (spread, lockstep)]
    assert tpot[0] == pytest.approx(tpot[1], rel=0.15)


def test_sources_group_campaigns_and_mlperf_submitters():
    assert serving_source("inference-sim/training default_args/x/y.json") == "inference-sim/training"
    assert (
        serving_source("mlcommons/inference_results_v5.1 closed/RedHat/results/XE8640/llama3.1-8b")
        == "mlcommons/inference_results_v5.1 closed/RedHat"
    )


def test_per_sequence_host_time_adds_per_running_sequence():
    """``seq_overhead_us`` is host time per running sequence per step: 30 us over 64 sequences adds
    1.92 ms to a 0.25 ms step; the serving fit searches it for Python-scheduled engines only."""
    from hwmodels.calibration.params import framework_overridden, framework_terms
    from sim.serving.calibrate import SEQ_OVERHEAD_GRID_US, host_grid

    with framework_overridden("vllm", {"step_overhead_us": 250.0, "seq_overhead_us": 30.0}):
        assert framework_terms("vllm").host_step_s(64) == pytest.approx(250e-6 + 64 * 30e-6)
    assert {seq for _, seq in host_grid("tensorrt-llm")} == {0.0}
    assert {seq for _, seq in host_grid("vllm")} == set(SEQ_OVERHEAD_GRID_US)


def test_attention_data_parallel_rows_run_experts_over_the_same_ranks():
    """TensorRT-LLM's tp 8, ep 8 with attention DP 8 on 8 GPUs is hwsim's tp 1, ep 8 with
    attention data parallelism (every rank attends its own requests, experts split over the same
    ranks); tp 8, ep 4 without it (MoE tensor x expert parallel inside the tp group) is priced as
    tp 8 (the same expert bytes and FLOPs per device: ``test_expert_parallel``), and with a data
    parallel degree besides it is refused."""
    frame = load_measured().set_index("id")
    dp_row = resolve(frame.loc["s275"].rename("s275").to_frame().T.reset_index(names="id").iloc[0])
    assert (dp_row.tp, dp_row.n_devices, dp_row.serving["ep"], dp_row.serving["attention_dp"]) == (
        1,
        8,
        8,
        True,
    )
    row = frame.loc["vg166"].rename("vg166").to_frame().T.reset_index(names="id").iloc[0]  # dstack, TRT
    mixed = resolve(row)
    assert (row["tp"], row["ep"], mixed.tp, mixed.serving["ep"], mixed.n_devices) == (8, 4, 8, 1, 8)
    row["dp"] = 2
    assert "not modelled" in resolve(row)


def test_sglang_dp_attention_runs_keep_each_ranks_kv_cache():
    """SGLang's ``--enable-dp-attention`` over ``--tp 8`` on 8 GPUs (dstack's DeepSeek-R1 runs):
    every rank attends its own requests and keeps their KV cache, so hwsim prices tp 1 with
    attention data parallelism over 8 ranks and the experts over the same ranks; without the flag
    the same row is tp 8, every rank holding the whole latent cache (a pool 8x smaller per
    request, which queued the 6,400-token answers for minutes where the run took 32 s)."""
    frame = load_measured().set_index("id")
    row = frame.loc["vg218"].rename("vg218").to_frame().T.reset_index(names="id").iloc[0]
    dp = resolve(row)
    assert (dp.tp, dp.n_devices, dp.serving["ep"], dp.serving["attention_dp"]) == (1, 8, 8, True)
    row["notes"] = str(row["notes"]).replace("--enable-dp-attention", "")
    plain = resolve(row)
    assert (plain.tp, plain.serving["ep"], plain.serving.get("attention_dp", False)) == (8, 1, False)


def test_speculative_runs_without_an_acceptance_rate_are_not_priced():
    """TensorRT-LLM's min-latency DeepSeek-R1 runs draft 3 tokens a step with MTP and state no
    acceptance rate: priced without drafts they came out 0.34-0.55x of the measured rate, so they
    are not covered, and say why."""
    frame = load_measured().set_index("id")
    row = frame.loc["s281"].rename("s281").to_frame().T.reset_index(names="id").iloc[0]
    reason = resolve(row)
    assert isinstance(reason, str) and "MTP, 3 drafted tokens" in reason and "acceptance" in reason


def test_runs_that_decoded_with_beams_are_not_priced_and_say_why():
    """MLPerf's GPT-J runs decode four beams a request (NVIDIA's harness: runtime_beam_width 4);
    hwsim runs one sequence per request, so those rows are not covered and say why, while the same
    row with one beam is priced."""
    frame = load_measured().set_index("id")
    row = frame.loc["vk022"].rename("vk022").to_frame().T.reset_index(names="id").iloc[0]
    reason = resolve(row)
    assert isinstance(reason, str) and "beam search (beam width 4)" in reason
    one = row.copy()
    one["notes"] = str(row["notes"]).replace("runtime_beam_width 4", "runtime_beam_width 1")
    assert not isinstance(resolve(one), str)
    gptj = frame[(frame["model"] == "gpt-j-6b") & frame.index.str.startswith("vs")]
    assert len(gptj) > 0
    assert all(isinstance(resolve(r), str) for _, r in gptj.reset_index(names="id").iterrows())


def test_parallel_simulation_gives_the_serial_predictions(monkeypatch):
    """``simulate_rows`` runs server rows on forked processes and caches what each would have
    given one by one: the same predictions, every run cached, whatever order they come in."""
    from roofline.estimate import THREADS_ENV
    from sim.serving import validation as sv

    frame = load_measured()
    runs = {}
    nim = frame["source"].str.startswith("docs.nvidia.com/nim")  # short runs: about a second each
    for c in server_conditions(frame[nim]):
        runs.setdefault(sv._key(c), c)  # one row of each of three simulated runs
    conds = list(runs.values())[:3]
    assert len(conds) == 3
    monkeypatch.setattr(sv, "_RUNS", {})
    serial = [sv.predict_serving(c) for c in conds]
    monkeypatch.setattr(sv, "_RUNS", {})
    monkeypatch.setenv(THREADS_ENV, "2")
    sv.simulate_rows(reversed(conds))
    assert len(sv._RUNS) == len({sv._key(c) for c in conds})
    assert [sv.predict_serving(c) for c in conds] == serial
    assert all(p[0] is not None for p in serial)


def test_a_fit_error_with_no_rows_is_none_not_nan():
    """A framework of one source has no leave-one-source-out error: its record says 0 rows and a
    median of None (null in YAML and JSON), never NaN, which JSON cannot carry."""
    from sim.serving.calibrate import _summary

    metrics = np.array(["ttft_s", "tpot_s", "ttft_s"])
    assert _summary(np.full(3, np.nan), metrics) == {"rows": 0, "median_ape": None}
    assert _summary(np.array([0.1, np.nan, 0.3]), metrics) == pytest.approx(
        {"rows": 2, "median_ape": 0.2, "ttft_s_median_ape": 0.2}
    )
    shipped = yaml.safe_load(serving_fitted_path().read_text())["errors"]
    for record in shipped.values():
        for part in ("in_sample", "leave_one_source_out"):
            if part in record:
                value = record[part]["median_ape"]
                assert value is None or np.isfinite(value)


def _resolved(row_id: str):
    """The resolved conditions of a shipped row."""
    frame = load_measured()
    return resolve(frame.loc[frame["id"] == row_id].iloc[0])


def test_an_offline_burst_that_outgrows_the_kv_pool_is_simulated():
    """ROCm's 1,500 prompts of 128 + 4,096 tokens on 8 MI300X (vf046) outgrow vLLM's KV pool: the
    row runs as the burst its client sent, where vLLM preempts what the pool cannot hold. Its
    128 + 2,048 run (vf045) fits and stays on the analytic path, and so would the first under
    TensorRT-LLM, which reserves each request's whole output before admitting it."""
    over, fits = operating_point(_resolved("vf046")), operating_point(_resolved("vf045"))
    assert over.batch is None and over.serving["concurrency"] == over.serving["num_requests"] == 1500
    assert over.max_num_seqs == 1500 and fits.serving is None and fits.batch > 0
    assert burst_outgrows_pool(_resolved("vf046"))
    assert not burst_outgrows_pool(replace(_resolved("vf046"), framework="tensorrt-llm"))


def test_a_burst_preempts_the_requests_its_pool_cannot_finish():
    """Equal requests sent at once grow in lock step: when the pool (P tokens) is full, vLLM
    preempts, and the first pass finishes the P // (prompt + output) that fit; the others
    (1,500 - 3,537,248 // 4,224 = 663 here) are recomputed later, so the run is slower than the
    steady-state batch that ignores this (the row's analytic price, 4,155 tokens/s)."""
    cond = operating_point(_resolved("vf046"))
    result = _simulate_result(cond)
    pool = result.metrics["kv_capacity_tokens"]
    assert pool == offline_kv_tokens(cond)
    assert result.metrics["preempted"] == 1500 - pool // (128 + 4096)
    steady = predict(replace(cond, serving=None, batch=offline_batch(replace(cond, serving=None))))[0]
    simulated = predict_serving(cond)[0]
    assert simulated == pytest.approx(result.metrics["output_tokens_per_s"])
    assert simulated < 0.9 * steady
