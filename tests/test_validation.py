"""Validation against measured hardware and the calibration it feeds."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from hwmodels.calibration.params import canonical_framework, class_params, fitted, fitted_path, params_for
from hwmodels.device_spec import catalog
from roofline.validation import (
    COLUMNS,
    SERVING_COLUMNS,
    cached_prompt_tokens,
    load_measured,
    offline_kv_tokens,
    operating_point,
    resolve,
    stated_batch_limit,
    stated_length_spread,
    stated_memory_fraction,
    stated_version,
    summarize,
    validate,
    validate_frame,
)
from workloads.errors import ConfigError
from workloads.graph import kv_cache_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant
from workloads.traces import load_lengths

KEYS = [
    "rows",
    "covered",
    "median_ape",
    "p90_ape",
    "within_10pct",
    "within_25pct",
    "by_class",
    "by_phase_mode",
    "energy",
    "points",
]
POINT_KEYS = [
    "id",
    "hardware",
    "model",
    "metric",
    "measured",
    "predicted",
    "predicted_low",
    "predicted_high",
    "ape",
    "covered",
    "reason",
]


@pytest.fixture(scope="module")
def report():
    from sim.serving.validation import predict_serving

    return validate(serving=predict_serving)  # as hwsim validate and the record of hwsim calibrate


def test_report_keys_and_coverage(report):
    assert list(report) == KEYS
    assert report["rows"] >= 80 and report["covered"] >= 80
    assert list(report["points"][0]) == POINT_KEYS
    covered = [p for p in report["points"] if p["covered"]]
    rows = load_measured().set_index("id")
    devices = {resolve(rows.loc[p["id"]].rename(None).pipe(_with_id, p["id"])).device for p in covered}
    arches = {catalog()[d].arch for d in devices}
    gpus = {
        d for d in devices if catalog()[d].arch == "gpu" and catalog()[d].device_class != "integrated-gpu"
    }
    assert len(gpus) >= 6 and "cpu" in arches
    assert any(catalog()[d].device_class == "integrated-gpu" for d in devices)  # Apple


def _with_id(row, row_id):
    return pd.concat([pd.Series({"id": row_id}), row])


def test_every_row_is_reported_and_uncovered_ones_say_why(report):
    assert len(report["points"]) == report["rows"]
    for p in report["points"]:
        assert p["covered"] or p["reason"], p["id"]
        if p["covered"]:
            assert p["predicted"] > 0 and p["ape"] == pytest.approx(abs(p["predicted"] / p["measured"] - 1))


def test_median_error_not_above_recorded(report):
    """The shipped set's median APE may not rise more than 2 points above the figure recorded at the last fit."""
    recorded = fitted("validation")
    assert recorded, "hwmodels/calibration/validation_fitted.yaml is missing: run hwsim calibrate"
    assert report["median_ape"] <= recorded["median_ape"] + 0.02


def test_fitted_parameters_stay_physical():
    from roofline.calibrate import BOUNDS

    for arch in ("gpu", "cpu"):
        record = fitted(arch)
        assert record["fitted_on"] and record["errors"]["leave_one_source_out"]["covered"] > 0
        for cls, values in record["classes"].items():
            for name, value in values.items():
                lo, hi = BOUNDS[name]
                assert lo <= value <= hi, (arch, cls, name, value)
            resolved = params_for(arch, cls)
            assert all(resolved[n].value == pytest.approx(v) for n, v in values.items())
            assert set(resolved) == set(class_params(arch)[cls])


def test_leave_one_source_out_is_reported_beside_in_sample():
    errors = fitted("gpu")["errors"]
    assert errors["leave_one_source_out"]["median_ape"] >= errors["in_sample"]["median_ape"] - 1e-9
    assert set(fitted("gpu")["loso_ape"]) <= set(load_measured()["id"])


def test_other_file_reports_unmatched_rows(tmp_path):
    shipped = load_measured()
    rows = shipped.loc[shipped["id"].isin(["c017", "c069"])].copy()
    odd = rows.iloc[[0]].copy()
    odd["id"], odd["hardware"], odd["model"] = "x1", "tpu-v9", "llama-9"
    path = tmp_path / "other.csv"
    pd.concat([rows, odd]).to_csv(path, index=False)
    r = validate(path)
    assert r["rows"] == 3 and r["covered"] == 2
    (miss,) = [p for p in r["points"] if p["id"] == "x1"]
    assert not miss["covered"] and "tpu-v9" in miss["reason"]


def test_missing_column_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["a"], "value": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="missing column.*hardware"):
        load_measured(path)


def test_optional_columns_read_as_empty(tmp_path):
    """A CSV with only the required columns is priced: tp, pp and n_devices default to 1 and an
    id is the row's line in the file."""
    path = tmp_path / "few.csv"
    row = {"hardware": "H100 SXM", "model": "Llama-2-7b-hf", "precision": "fp16", "phase": "decode"}
    pd.DataFrame(
        [row | {"metric": "tpot_s", "value": 0.01, "batch": 1, "input_len": 128, "output_len": 128}]
    ).to_csv(path, index=False)
    r = validate(path)
    (point,) = r["points"]
    assert point["id"] == "row2" and point["covered"] and point["predicted"] > 0


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_spreadsheet_export_with_semicolons_or_tabs_reads_as_the_comma_file(tmp_path, sep):
    rows = load_measured().head(4)
    comma, other = tmp_path / "comma.csv", tmp_path / "other.csv"
    rows.to_csv(comma, index=False)
    rows.to_csv(other, index=False, sep=sep)
    assert validate(other)["points"] == validate(comma)["points"]
    assert validate(other)["covered"] == 4


def test_benchmark_result_names_and_milliseconds_read_as_the_metric_in_seconds(tmp_path):
    """vLLM's serving-benchmark keys (``mean_ttft_ms``, ``output_throughput``), a mean written
    before or after the name in ms or s (``avg_tpot_ms``, ``tpot_ms_mean``, ``mean_tpot_s``) and a
    time metric stated in ms are the metric in its own unit: the same prediction, the value / 1000;
    a time metric in a unit that is not a time is refused, naming it."""
    path = tmp_path / "bench.csv"
    row = {"hardware": "H100 SXM", "model": "Llama-3.1-8B", "precision": "bf16", "phase": "decode"}
    row |= {"batch": 1, "input_len": 128, "output_len": 128}
    cells = [
        ("tpot_s", 0.012, "s"),
        ("tpot_ms", 12.0, ""),
        ("tpot_s", 12.0, "ms"),
        ("mean_itl_ms", 12.0, "ms"),
        ("avg_tpot_ms", 12.0, "ms"),
        ("tpot_ms_mean", 12.0, ""),
        ("mean_tpot_s", 0.012, "s"),
        ("tpot_s", 12.0, "tokens/s"),
    ]
    pd.DataFrame([row | {"metric": m, "value": v, "unit": u} for m, v, u in cells]).to_csv(path, index=False)
    *same, wrong_unit = validate(path)["points"]
    assert [p["metric"] for p in same] == ["tpot_s"] * 7
    assert [p["measured"] for p in same] == pytest.approx([0.012] * 7)
    assert len({p["predicted"] for p in same}) == 1
    assert not wrong_unit["covered"] and "unit 'tokens/s'" in wrong_unit["reason"]


def test_prompt_token_rates_and_a_median_spelled_out(tmp_path):
    """An offline run of 8 x (1,000 prompt + 250 output) tokens: its prompt-token rate is 4x its
    output rate and its total rate 5x; per device (tp 2) half of each, InferenceX's
    ``tput_per_gpu`` being the total per device. ``ttft_s_median`` is ``ttft_s_p50``."""
    path = tmp_path / "rates.csv"
    row = {"hardware": "H100 SXM", "model": "Llama-3.1-8B", "precision": "bf16", "phase": "e2e", "batch": 8}
    row |= {"input_len": 1000, "output_len": 250, "tp": 2, "unit": "tokens/s", "value": 100.0}
    rates = ["output_tokens_per_s", "input_tokens_per_s", "total_tokens_per_s"]
    rates += ["output_tput_per_gpu", "total_tokens_per_s_per_device", "tput_per_gpu"]
    frame = [row | {"metric": m} for m in rates]
    frame.append(row | {"phase": "server", "metric": "ttft_s_median", "value": 0.1, "unit": "s"})
    pd.DataFrame(frame).to_csv(path, index=False)
    *rate, median = validate(path)["points"]
    out, prompt, total, out_dev, total_dev, tput = (p["predicted"] for p in rate)
    assert [prompt / out, total / out, out_dev / out, total_dev / out, tput / out] == pytest.approx(
        [4, 5, 0.5, 2.5, 2.5]
    )
    assert (
        rate[3]["metric"] == "output_tokens_per_s_per_device"
        and rate[5]["metric"] == "total_tokens_per_s_per_device"
    )
    assert median["metric"] == "ttft_s_p50"


def test_percentiles_of_a_served_stream_are_its_requests_percentiles(tmp_path):
    """A server row's median and tail (``median_ttft_ms``, ``ttft_s_p99``: vLLM's benchmark keys
    and hwsim's) are the simulated requests' percentiles, in seconds. One request at a time, all
    alike: every request's TTFT is the same, so each percentile is the mean. 96 requests sent at
    once to an engine that runs 32: a third of them wait for two batches ahead of them, so the
    percentiles rise and the tail exceeds the median. A percentile of a static batch is refused,
    naming the metric it should state."""
    from sim.serving.validation import predict_serving

    path = tmp_path / "pct.csv"
    row = {"hardware": "H100 SXM", "model": "Llama-3.1-8B", "precision": "bf16", "phase": "server"}
    row |= {"input_len": 1024, "output_len": 128, "framework": "vllm", "value": 1.0, "unit": "s"}
    alone = row | {"concurrency": 1, "notes": "num_requests=8"}
    burst = row | {"request_rate": "inf", "notes": "num_requests=96; max_num_seqs=32"}
    frame = [alone | {"metric": m} for m in ("ttft_s", "ttft_s_p50", "ttft_s_p99", "tpot_s", "tpot_s_p99")]
    frame.append(alone | {"metric": "median_ttft_ms", "value": 1000.0, "unit": "ms"})
    frame += [burst | {"metric": m} for m in ("ttft_s_p50", "ttft_s_p90", "ttft_s_p99")]
    frame.append(row | {"phase": "decode", "batch": 8, "metric": "ttft_s_p50"})
    pd.DataFrame(frame).to_csv(path, index=False)
    points = validate(path, serving=predict_serving)["points"]
    ttft, p50, p99, tpot, tpot99, median, b50, b90, b99, static = points
    assert all(p["covered"] for p in points[:-1])
    assert median["metric"] == "ttft_s_p50" and median["measured"] == pytest.approx(1.0)
    assert p50["predicted"] == p99["predicted"] == median["predicted"] == pytest.approx(ttft["predicted"])
    assert tpot99["predicted"] == pytest.approx(tpot["predicted"], rel=0.01)
    assert b50["predicted"] < b90["predicted"] < b99["predicted"]
    assert b99["predicted"] > 1.2 * b50["predicted"] > 10 * ttft["predicted"]
    assert b50["predicted_low"] < b50["predicted"] < b50["predicted_high"]
    assert not static["covered"] and "server rows only" in static["reason"] and "ttft_s)" in static["reason"]


def test_offline_and_total_token_rates_read_as_the_output_rate(tmp_path):
    """``offline_tokens_per_s`` (the contract's name) is the output rate itself; a rate of prompt
    and output tokens together (``total_tokens_per_s``, vLLM's ``total_token_throughput``) is the
    output rate times (prompt + output) / output: 5x for a 512-token prompt and 128 outputs. An
    unknown rate name is not covered and names the closest known ones."""
    path = tmp_path / "rates.csv"
    row = {"hardware": "H100 SXM", "model": "Llama-3.1-8B", "precision": "bf16", "phase": "offline"}
    row |= {"batch": 8, "input_len": 512, "output_len": 128, "framework": "vllm"}
    names = ["output_tokens_per_s", "offline_tokens_per_s", "total_tokens_per_s", "total_token_throughput"]
    pd.DataFrame([row | {"metric": m, "value": 1000.0} for m in [*names, "tokens_per_s"]]).to_csv(
        path, index=False
    )
    points = validate(path)["points"]
    output = points[0]["predicted"]
    assert output > 0 and points[1]["predicted"] == pytest.approx(output)
    assert [p["predicted"] for p in points[2:4]] == pytest.approx([5 * output] * 2)
    assert not points[4]["covered"]
    closest = points[4]["reason"].split("closest: ")[1].split(", ")
    assert {"total_tokens_per_s", "output_tokens_per_s"} <= set(closest)


def _framework_with(row_id: str, column: str, value: str) -> str | None:
    """The framework a shipped row resolves to with one of its cells changed."""
    row = load_measured().set_index("id").loc[row_id].copy()
    row[column] = value
    return resolve(_with_id(row, row_id)).framework


def test_other_framework_spellings_are_the_framework():
    """A source's trt-llm, llamacpp or transformers is the frameworks.yaml entry (its version rules
    still apply after: an HF Transformers row is hf-accelerate's)."""
    for spelling, framework in (
        ("trt-llm", "tensorrt-llm-0.6"),
        ("TRTLLM", "tensorrt-llm-0.6"),
        ("transformers", "hf-accelerate"),
    ):
        assert _framework_with("c017", "framework", spelling) == framework, spelling
    assert canonical_framework("llamacpp") == "llama.cpp" and canonical_framework("tgi") == "tgi"


def test_alias_maps_source_names():
    row = load_measured().set_index("id").loc["c017"]
    cond = resolve(_with_id(row, "c017"))
    assert (
        cond.device == "a100-sxm-80gb" and cond.model == "llama-2-7b" and cond.framework == "tensorrt-llm-0.6"
    )


def test_measured_rows_keep_their_sources():
    frame = load_measured()
    assert list(frame.columns) == COLUMNS + SERVING_COLUMNS and frame["id"].is_unique
    assert frame["source"].str.len().min() > 10


def test_server_rows_without_the_serving_predictor_say_so():
    """The analytic layer cannot simulate request streams: without ``sim.serving``'s predictor a
    server row is reported as not covered, naming the serving simulation."""
    frame = load_measured()
    server = frame.loc[frame["phase"] == "server"].head(2)
    points = validate_frame(server)
    assert not points["covered"].any() and points["reason"].str.contains("serving").all()


def test_cli_validate_json(tmp_path):
    """The command over a slice of the shipped set (analytic rows and a simulated server row;
    the whole set goes through the same ``validate`` in the ``report`` fixture)."""
    frame = load_measured()
    server = frame[frame["id"].str.match(r"s1\d\d-")].head(1)
    part = pd.concat([frame.head(12), server])
    data_path, out = tmp_path / "part.csv", tmp_path / "pv.png"
    part.to_csv(data_path, index=False)
    r = subprocess.run(
        [sys.executable, "-m", "hwsim", "validate", "--data", str(data_path), "--json", "--plot", str(out)],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert list(data) == [*KEYS, "held_out", "source_agreement"] and out.exists()
    assert data["rows"] == 13 and [p["id"] for p in data["points"]] == list(part["id"])
    assert next(p for p in data["points"] if p["id"] == server["id"].iloc[0])["covered"]


def test_cli_validate_text_names_a_non_finite_cell_without_printing_it(tmp_path):
    """A row whose precision cell reads ``inf`` is not covered, and the text report says why,
    its value shown as ``<non-finite>``: the text output prints no NaN or inf, not even one from
    its input (the JSON keeps the cell in its reason string)."""
    from click.testing import CliRunner

    from hwsim.cli import cli

    frame = load_measured().head(2).copy()
    frame.loc[frame.index[1], "precision"] = "inf"
    data_path = tmp_path / "bad.csv"
    frame.to_csv(data_path, index=False)
    text = CliRunner().invoke(cli, ["validate", "--data", str(data_path)])
    assert text.exit_code == 0, text.output
    assert "precision '<non-finite>' is not modeled" in text.output
    assert not re.search(r"(?<![\w.])[-+]?(nan|inf|infinity)(?!\w)", text.output, re.IGNORECASE)
    doc = CliRunner().invoke(cli, ["validate", "--data", str(data_path), "--json"])
    assert "precision 'inf' is not modeled" in json.loads(doc.output)["points"][1]["reason"]


def test_summarize_hand_case():
    points = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "hardware": ["x"] * 3,
            "model": ["m"] * 3,
            "metric": ["t"] * 3,
            "measured": [1.0, 1.0, 1.0],
            "predicted": [1.05, 1.2, None],
            "ape": [0.05, 0.2, None],
            "covered": [True, True, False],
            "reason": ["", "", "no"],
            "device_class": ["g", "g", ""],
        }
    )
    s = summarize(points)
    assert s["covered"] == 2 and s["median_ape"] == pytest.approx(0.125)
    assert s["within_10pct"] == 0.5 and s["within_25pct"] == 1.0 and s["by_class"]["g"]["rows"] == 2


def test_fitted_files_are_valid_yaml():
    for arch in ("gpu", "cpu", "npu", "validation"):
        assert yaml.safe_load(fitted_path(arch).read_text())["schema_version"] == 1


def test_every_class_of_a_validated_device_has_its_own_colour(report):
    """The predicted-vs-measured chart tells classes apart: no class falls back to a shared colour."""
    from roofline.plots import CLASS_COLORS

    classes = {
        catalog()[resolve(r).device].device_class
        for _, r in load_measured().iterrows()
        if not isinstance(resolve(r), str)
    }
    assert classes <= set(CLASS_COLORS), sorted(classes - set(CLASS_COLORS))
    assert len(set(CLASS_COLORS.values())) == len(CLASS_COLORS)


def test_issue_bound_gemm_rate_is_below_every_tensor_width():
    """An issue-bound GEMM cannot multiply-add faster than the SM's int8 units: the fitted rate
    per issue lane and cycle stays below each device's dense int8 peak per lane and cycle."""
    from hwmodels.gpu import issue_lane_cycles_per_s

    for dev in catalog().values():
        sm_rate = issue_lane_cycles_per_s(dev)
        if sm_rate is None or "int8" not in dev.peak_flop_per_s:
            continue
        rate = params_for("gpu", dev.device_class)["issue_bound_gemm_macs_per_lane_cycle"].value
        assert rate <= dev.peak("int8") / 2 / sm_rate, (dev.name, rate)


def _offline(framework: str, notes: str = "") -> pd.Series:
    return pd.Series(
        {
            "id": "t1",
            "hardware": "h100-sxm",
            "n_devices": 1,
            "interconnect": "none",
            "model": "llama-3.1-70b",
            "precision": "fp8",
            "framework": framework,
            "phase": "offline",
            "batch": float("nan"),
            "input_len": 128,
            "output_len": 2048,
            "tp": 1,
            "pp": 1,
            "metric": "output_tokens_per_s",
            "value": 1000.0,
            "unit": "tokens/s",
            "source": "test",
            "notes": notes,
            "framework_version": "",
            "dataset": float("nan"),
        }
    )


def test_offline_batch_follows_the_engine_rules():
    """Llama-3.1-70B FP8 (72.7 GB with its BF16 embedding and LM head) on one H100 SXM (85.9 GB):
    TensorRT-LLM takes 0.9 of the memory the loaded engine leaves free, vLLM 0.9 of all memory less
    the weights and its profiling peak, so TensorRT-LLM's pool is the larger. Left to itself, vLLM
    V1 runs 1024 sequences there, whose sampling pass (1024 x 128,256 x 38.9 B = 5.1 GB) leaves no
    KV cache, as vLLM left Llama-3.3-70B FP8 (67.7 GiB of weights) on one H100 none at all
    (llm-d-benchmark's start-up logs: -1.44 GiB); at a utilization of 0.95 it has some.
    TensorRT-LLM reserves each request's whole output (128 + 2048 tokens), vLLM holds half on
    average (128 + 1024) and runs at most the sequences a row states with ``--max-num-seqs``."""
    from roofline.validation import offline_kv_tokens, offline_max_batch

    trt, vllm = resolve(_offline("tensorrt-llm")), resolve(_offline("vllm"))
    assert offline_kv_tokens(vllm) == 0 and offline_max_batch(vllm) == 0
    assert offline_max_batch(trt) == offline_kv_tokens(trt) // 2176
    more = " --gpu-memory-utilization 0.95"
    r256 = resolve(_offline("vllm", "benchmark_throughput.py --max-num-seqs 256 --num-prompts 1000" + more))
    assert offline_kv_tokens(trt) > offline_kv_tokens(r256) > 0
    assert offline_max_batch(r256) == min(256, offline_kv_tokens(r256) // 1152)
    stated = resolve(_offline("vllm", "benchmark_throughput.py --max-num-seqs 1 --num-prompts 100" + more))
    assert stated.max_num_seqs == 1 and offline_max_batch(stated) == 1 < offline_max_batch(r256)
    # a run of 8 prompts never has more than 8 running, whatever the engine would allow
    few = resolve(_offline("tensorrt-llm", "trtllm-bench --num-prompts 8"))
    assert few.num_prompts == 8 and offline_max_batch(few) == 8 < offline_max_batch(trt)


@pytest.mark.parametrize(
    "framework, notes, share",
    [
        ("vllm", "vllm serve ... --gpu-memory-utilization 0.95 --max-num-seqs 256", 0.95),
        ("vllm-v0", "engine args: gpu_memory_utilization=0.8", 0.8),
        ("sglang", "python3 -m sglang.launch_server --tp 8 --mem-fraction-static 0.82", 0.82),
        ("tensorrt-llm", "kv_cache_config{dtype: fp8, free_gpu_memory_fraction: 0.75}", 0.75),
        ("tensorrt-llm", "trtllm-bench throughput --kv_cache_free_gpu_mem_fraction 0.95", 0.95),
        (
            "vllm",
            "--gpu-memory-utilization 0.9 at first, --gpu-memory-utilization 0.95 later",
            None,
        ),  # two values
        ("vllm", "--mem-fraction-static 0.82", None),  # another engine's argument
        ("vllm", "--gpu-memory-utilization 95", None),  # not a share
        ("lmdeploy", "lmdeploy serve api_server --cache-max-entry-count 0.9", 0.9),
        (
            "lmdeploy",
            "benchmark_70b.sh (max_batch_size 256, cache_max_entry_count 4000)",
            None,
        ),  # v0.1 blocks
        (
            "tensorrt-llm",
            "kv_cache_free_gpu_mem_fraction 0.95 in many cases, else 0.90. Batch 64.",
            None,
        ),  # hedged
        ("vllm", "--gpu-memory-utilization 0.95 --max-model-len 4096. Accuracy 0.8 on MMLU.", 0.95),
    ],
)
def test_a_rows_stated_memory_share_is_its_frameworks_own_argument(framework, notes, share):
    assert stated_memory_fraction(notes, framework) == share


def test_a_memory_share_stated_for_the_other_scenario_is_not_read():
    """An MLPerf row's notes quote both scenarios' configs: a Server row does not take the share its
    Offline config states, nor an Offline row the Server one."""
    notes = "Server: vllm serve --max-num-seqs 512. Offline config: run.py --gpu-memory-utilization 0.95."
    assert stated_memory_fraction(notes, "vllm", "server") is None
    assert stated_memory_fraction(notes, "vllm", "offline") == 0.95


def test_a_stated_memory_share_sizes_the_offline_kv_pool():
    """Llama-3.1-70B FP8 on one H100 SXM under vLLM V1 capped at 256 sequences: the pool is what
    the stated utilization leaves after the weights and the profiling peak, so 0.98 of the
    memory holds more tokens than 0.95, by 0.03 of the memory (the total CUDA reports) in 16-bit KV
    tokens (the default 0.9 leaves none)."""
    from roofline.validation import offline_kv_tokens

    notes = "benchmark_throughput.py --max-num-seqs 256 --num-prompts 1000"
    less = resolve(_offline("vllm", notes + " --gpu-memory-utilization 0.95"))
    more = resolve(_offline("vllm", notes + " --gpu-memory-utilization 0.98"))
    assert less.memory_fraction == 0.95 and more.memory_fraction == 0.98
    spec, quant = load_model("llama-3.1-70b"), Quant.from_name(less.precision)  # vLLM: a 16-bit KV cache
    per_token = kv_cache_bytes(spec, quant, 1, 1, 1, 1)
    gained = 0.03 * catalog()["h100-sxm"].memory.visible_bytes / per_token
    assert offline_kv_tokens(more) - offline_kv_tokens(less) == pytest.approx(gained, rel=0.02)


def test_an_offline_rows_stated_token_budget_wins_and_reserves_its_activations():
    """vLLM V0 at ``--max-model-len 8192`` without chunked prefill takes max(8192, 2048) tokens a
    step by itself; an offline run that states ``--max-num-batched-tokens`` (AMD's MI300X runs:
    131,072) runs at that budget, and its start-up profiling pass over that many tokens reserves
    a larger activation peak before the KV pool, so the pool holds fewer tokens."""
    from roofline.validation import offline_engine, offline_kv_tokens

    notes = "benchmark_throughput.py --max-num-seqs 256 --gpu-memory-utilization 0.95 --max-model-len 8192"
    own = resolve(_offline("vllm-v0", notes))
    stated = resolve(_offline("vllm-v0", notes + " --max-num-batched-tokens 16384"))
    assert own.max_num_batched_tokens is None and offline_engine(own).max_num_batched_tokens == 8192
    assert stated.max_num_batched_tokens == 16384 == offline_engine(stated).max_num_batched_tokens
    assert 0 < offline_kv_tokens(stated) < offline_kv_tokens(own)


def test_a_batch_beyond_the_engines_pool_runs_in_waves():
    """64 requests of 1024 + 1024 tokens of Llama-2-7B FP16 (0.5 MiB of KV per token) on an A100
    40 GB under vLLM: the pool is 0.9 x 42.95 GB less 13.48 GB of weights, 0.53 GB of activations
    and 1.5 GB of reserve = 23.14 GB, 44,144 tokens, so 21 sequences of 2048 tokens at once: three
    waves of 21 and one of 1. The batch's end-to-end time is their sum."""
    from roofline.validation import engine_waves, predict

    row = {
        **_offline("vllm-v0").to_dict(),
        **{"hardware": "a100-sxm-40gb", "model": "llama-2-7b", "precision": "fp16", "phase": "e2e"},
        **{"input_len": 1024, "output_len": 1024, "metric": "e2e_s", "unit": "s"},
    }

    def at(**change):
        return resolve(pd.Series({**row, **change}))

    assert engine_waves(at(batch=64.0), 64) == [(21, 3), (1, 1)]
    wave, last = predict(at(batch=21.0))[0], predict(at(batch=1.0))[0]
    assert predict(at(batch=64.0))[0] == pytest.approx(3 * wave + last, rel=1e-9)
    # a framework without a paged pool cannot run it
    assert engine_waves(at(batch=64.0, framework="hf-accelerate"), 64) == []


def test_vllms_pool_bounds_a_batch_that_fits_the_device():
    """64 sequences of 1,024 + 1,024 tokens of Llama-2-7B FP16 on an A100 80 GB: 13.48 GB of
    weights and 68.72 GB of KV cache (0.5 MiB a token) fit the device's 85.9 GB, but not vLLM's
    pool, 0.9 x 84.99 GB (the 79.15 GiB CUDA reports) less the weights, 0.40 GB of activations
    (the forward of V0's 4,096-token budget, 4,096 x (3 x 4,096 + 1.5 x 22,016) x 2 B plus fp32
    logits of 256 sequences, above its sampling pass over them, 256 x 32,000 x 38.9 B = 0.32 GB)
    and 1.5 GB of reserve = 61.1 GB, 116,544 tokens: 56 sequences of 2,048. vLLM runs 56 and then 8
    (30 at once); TensorRT-LLM's tables, whose batch is the largest the engine built for it ran,
    keep the device's bound."""
    from roofline.validation import engine_waves, offline_kv_tokens, predict

    row = {
        **_offline("vllm-v0").to_dict(),
        **{"hardware": "a100-sxm-80gb", "model": "llama-2-7b", "precision": "fp16", "phase": "e2e"},
        **{"input_len": 1024, "output_len": 1024, "metric": "e2e_s", "unit": "s", "batch": 64.0},
    }
    vllm = resolve(pd.Series(row))
    trt = resolve(pd.Series({**row, "framework": "tensorrt-llm"}))
    assert offline_kv_tokens(vllm) // 2048 == 56
    assert engine_waves(vllm, 64) == [(56, 1), (8, 1)]
    assert engine_waves(vllm, 30) == [(30, 1)]
    assert engine_waves(trt, 64) == [(64, 1)]
    # on a T4 (15.8 GB) the 13.5 GB of weights fit, but vLLM's 0.9 share leaves no pool
    t4 = resolve(pd.Series({**row, "hardware": "t4", "batch": 1.0}))
    assert predict(t4) == (None, "vllm-v0's KV pool on t4 holds 144 tokens, not one sequence of 2,048")


def test_a_benchmark_that_repeats_its_prompts_hits_the_prefix_cache():
    """vLLM's latency benchmark reruns the same prompts: V1 (prefix caching on) finds all full
    16-token blocks below the last token; V0 and unrelated rows compute the whole prompt."""
    notes = "vLLM benchmark_latency.py, one static batch of random prompts"
    assert cached_prompt_tokens(notes, "vllm", "e2e", 2048) == 2032
    assert cached_prompt_tokens(notes, "vllm", "e2e", 128) == 112
    assert cached_prompt_tokens(notes, "vllm", "e2e", 17) == 16
    assert cached_prompt_tokens(notes, "vllm", "e2e", 16) == 0
    assert cached_prompt_tokens(notes, "vllm-v0", "e2e", 2048) == 0
    assert cached_prompt_tokens("benchmark_throughput.py", "vllm", "offline", 2048) == 0
    assert cached_prompt_tokens(notes, None, "e2e", 2048) == 0


def test_a_stated_pcie_link_carries_the_collectives():
    """Two H100 PCIe cards at tp 2: a row that says PCIe runs its all-reduces over PCIe (slower than
    over the NVLink bridge the catalog also lists); an L40S, which has PCIe only, is the same either way."""
    base = {"id": "x", "n_devices": 2, "model": "llama-3.1-70b", "precision": "fp8", "framework": "vllm"}
    base |= {"phase": "decode", "batch": 8, "input_len": 1024, "output_len": 256, "tp": 2, "pp": 1}
    base |= {"metric": "tpot_s", "value": 0.03, "unit": "s", "source": "s", "notes": ""}
    rows = [
        base | {"id": id_, "hardware": hw, "interconnect": link}
        for id_, hw, link in (
            ("h-pcie", "h100-pcie", "pcie-gen5"),
            ("h-nvl", "h100-pcie", "nvlink4"),
            ("h-none", "h100-pcie", None),
            ("l-pcie", "l40s", "PCIe"),
            ("l-none", "l40s", None),
        )
    ]
    t = validate_frame(pd.DataFrame(rows)).set_index("id")["predicted"]
    assert t["h-pcie"] > 1.02 * t["h-nvl"] and t["h-nvl"] == t["h-none"]
    assert t["l-pcie"] == t["l-none"]


def test_a_stated_version_is_read_past_the_engine_name():
    """'vLLM 0.4.3+rocm614 (AMD fork)' is a V0-engine vLLM, as '0.4.3' is; 'vLLM v0.10.0' is V1
    before async scheduling was its default, 'vLLM v0.15.1' after."""
    for version, framework in (
        ("vLLM 0.4.3+rocm614 (AMD fork)", "vllm-v0"),
        ("v0.6.3", "vllm-v0"),
        ("vLLM v0.10.0", "vllm-sync"),
        ("vLLM v0.15.1", "vllm"),
    ):
        assert _framework_with("s225", "framework_version", version) == framework, version
    assert stated_version("SGLang (May 2025 main)") == "SGLang (May 2025 main)"


def test_an_offline_row_drawn_from_a_length_distribution_decodes_at_its_length_biased_context():
    """Under continuous batching a long answer stays in the batch longer, so the running
    sequences of a ShareGPT run hold more context than the mean prompt plus half the mean output:
    the decode is priced at that context, the KV pool holds fewer of them, and the predicted
    throughput is below that of the same row at fixed mean lengths."""
    from roofline.validation import decode_input_len, offline_max_batch, predict

    row = _offline("vllm", "--gpu-memory-utilization 0.95")
    row["input_len"], row["output_len"] = float("nan"), 194.0
    fixed_row = row.copy()
    row["dataset"] = "sharegpt"
    drawn = resolve(row)
    fixed_row["input_len"] = drawn.input_len
    fixed = resolve(fixed_row)
    assert drawn.lengths == "sharegpt" and fixed.lengths is None and fixed.input_len == drawn.input_len
    context = load_lengths("sharegpt").decode_context(drawn.input_len, 194)
    assert decode_input_len(drawn) == round(context - 96) > drawn.input_len == decode_input_len(fixed)
    assert offline_max_batch(drawn) <= offline_max_batch(fixed)
    assert predict(drawn)[0] < predict(fixed)[0]


def test_an_offline_row_with_expert_parallelism_is_not_priced_as_tensor_parallel():
    """An offline row that states ep 8 (DeepSeek-R1 over 8 ranks with attention data parallelism)
    is reported as not covered, naming ep, rather than priced as tp 8 with an eighth of its batch."""
    row = _offline("tensorrt-llm")
    row["model"], row["n_devices"], row["tp"], row["ep"], row["dp"] = "deepseek-r1", 8, 8, 8, 8
    reason = resolve(row)
    assert isinstance(reason, str) and reason.startswith("ep 8:")
    row["ep"] = float("nan")  # the same row without it is priced
    assert not isinstance(resolve(row), str)


def test_a_large_source_weighs_the_square_root_of_its_rows():
    """Four rows of one source and one of another: each of the four weighs 1/2 of the lone row,
    together 2x it (not 4x); the weights average 1."""
    import pandas as pd

    from roofline.calibrate import source_weights

    weight = source_weights(pd.Series(["a", "a", "a", "a", "b"]))
    assert weight == pytest.approx([5 / 6] * 4 + [5 / 3])
    assert weight[:4].sum() == pytest.approx(2 * weight[4])


def test_held_out_rows_enter_no_fit():
    """A row whose id starts with a held-out prefix is priced by ``hwsim validate`` but left out of
    the device, energy and serving fits; the same row under another id is fitted."""
    from roofline.calibrate import covered_rows
    from roofline.calibrate_energy import energy_rows
    from roofline.validation import HELD_OUT_PREFIXES, load_measured
    from sim.serving.calibrate import serving_rows

    measured = load_measured()
    fitted_ids = set(covered_rows(measured)["id"])
    for metric, fit in (("tpot_s", serving_rows), ("j_per_token", energy_rows)):
        phase = "server" if metric == "tpot_s" else None
        pick = measured[(measured["metric"] == metric) & ((measured["phase"] == phase) if phase else True)]
        row = pick[~pick["id"].astype(str).str.startswith(HELD_OUT_PREFIXES)].iloc[[0]]
        assert row["id"].iloc[0] in set(fit(row)["id"])
        held = row.assign(id=HELD_OUT_PREFIXES[-1] + "999")
        assert fit(held).empty
    assert not any(str(i).startswith(HELD_OUT_PREFIXES) for i in fitted_ids)


def test_meta_fp8_checkpoint_rows_take_its_recipe():
    """A row of Meta's FP8 405B checkpoint (named in its model or notes) is priced as that
    checkpoint stores it (fp8-ffn: FP8 feed-forward only); AMD's all-linear FP8-KV checkpoint
    and a plain fp8 row keep their precisions."""
    frame = load_measured().set_index("id")
    for row_id, precision in (
        ("vg266", "fp8-ffn"),
        ("en103", "fp8-ffn"),
        ("vg285", "fp8-kv16"),
        ("a300", "fp8"),
    ):
        assert resolve(_with_id(frame.loc[row_id], row_id)).precision == precision, row_id


def test_rows_that_asked_for_an_fp8_kv_cache_are_priced_with_one():
    """vLLM keeps an FP8 checkpoint's 16-bit KV cache unless told otherwise, so its plain ``fp8``
    rows are priced as fp8-kv16; every vLLM or SGLang row whose notes state ``--kv-cache-dtype
    fp8`` says fp8-kv8 and is priced with an 8-bit cache (MLPerf's H100 and L40S runs, the ROCm
    dev-docker throughput table). Red Hat's H100 notes give both of its MLPerf configurations: its
    Offline run asked for the FP8 cache, its Server run kept 'auto', a 16-bit one."""
    frame = load_measured().set_index("id")
    stated = frame["notes"].str.contains(r"--kv-cache-dtype fp8\b", regex=True) & frame["framework"].isin(
        ["vllm", "sglang"]
    )
    auto_server = (frame["phase"] == "server") & frame["notes"].str.contains("KV dtype 'auto'", regex=False)
    assert (stated & auto_server).sum() >= 5
    for row_id in frame.index[stated & auto_server]:
        assert Quant.from_name(resolve(_with_id(frame.loc[row_id], row_id)).precision).kv_bits == 16, row_id
    stated &= ~auto_server
    assert stated.sum() >= 24
    for row_id in frame.index[stated]:
        cond = resolve(_with_id(frame.loc[row_id], row_id))
        assert Quant.from_name(cond.precision).kv_bits == 8, row_id
    assert resolve(_with_id(frame.loc["vf049"], "vf049")).precision == "fp8-kv16"


def test_empty_hardware_or_model_cells_say_so():
    """An empty cell reads as NaN: its row is not covered, and the reason names the empty field
    (never 'nan')."""
    row = load_measured().iloc[0].copy()
    for field, needle in (("hardware", "hardware is empty"), ("model", "model is empty")):
        bad = row.copy()
        bad[field] = float("nan")
        reason = resolve(bad)
        assert isinstance(reason, str) and needle in reason and "nan" not in reason


@pytest.mark.parametrize(
    "column, reason",
    [
        ("metric", "metric is empty; expected one of"),
        ("phase", "phase is empty; expected one of prefill, decode"),
        ("precision", "precision is empty; expected a precision name"),
        ("framework", None),
        ("unit", None),
        ("notes", None),
    ],
)
def test_a_text_column_left_empty_in_every_row_is_read_not_a_traceback(tmp_path, column, reason):
    """pandas reads a column with no text as floats; the file is still read. A row whose metric,
    phase or precision is empty is not covered, with a reason naming the field; one without a
    framework, unit or notes is priced."""
    rows = load_measured().head(3).copy()
    rows[column] = ""
    path = tmp_path / "blank.csv"
    rows.to_csv(path, index=False)
    r = validate(path)
    assert r["rows"] == 3
    if reason is None:
        assert r["covered"] == 3
    else:
        assert not any(p["covered"] for p in r["points"])
        assert all(p["reason"].startswith(reason) for p in r["points"])


def test_a_phase_is_read_whatever_its_case_and_an_unknown_one_is_named():
    row = _with_id(load_measured().set_index("id").loc["c001"].copy(), "c001")
    assert resolve(row).phase == "e2e"
    row["phase"] = " E2E "
    assert resolve(row).phase == "e2e"
    row["phase"] = "Servr"
    reason = resolve(row)
    assert (
        isinstance(reason, str)
        and reason.startswith("phase 'servr' is not one of")
        and "closest: server" in reason
    )


@pytest.mark.parametrize("notes, width", [("num_requests=250", 250), ("", 1000)])
def test_a_server_row_that_sends_every_request_at_once_is_one_burst(notes, width):
    """``request_rate`` inf with no concurrency: every request at t = 0, a closed loop as wide as
    the run, its stated request count or the serving benchmarks' default 1,000 prompts."""
    row = load_measured().set_index("id").loc["s272"].copy()
    row[["concurrency", "request_rate", "notes"]] = [float("nan"), float("inf"), notes]
    c = resolve(_with_id(row, "s272"))
    assert c.serving["concurrency"] == width and c.serving["rate"] is None
    assert c.serving["num_requests"] == width  # one burst: the run sends no more


def _server_settings(framework: str, notes: str) -> dict:
    """The serving settings a shipped server row (s272) resolves to under another framework
    name and notes."""
    row = load_measured().set_index("id").loc["s272"].copy()
    row[["framework", "notes"]] = [framework, notes]
    return resolve(_with_id(row, "s272")).serving


@pytest.mark.parametrize(
    "framework, notes, budget",
    [
        ("vllm", "vllm serve ... --max-num-batched-tokens 512 --max-num-seqs 512", 512),
        (
            "vllm",
            "engine args: max_num_batched_tokens=2048; --max-num-batched-tokens 512",
            2048,
        ),  # field first
        ("vllm", "(CSV: enable-chunked-prefill TRUE, max-num-batched-tokens=512)", 512),
        (
            "vllm",
            "Server: vllm serve. Offline config: run.py --max_num_batched_tokens 16384",
            None,
        ),  # other scenario
        (
            "vllm",
            "--max-num-batched-tokens 512 at first, --max-num-batched-tokens 1024 later",
            None,
        ),  # two values
        ("tensorrt-llm", "trtllm-serve --backend pytorch --max_batch_size 512 --max_num_tokens 16384", 16384),
        ("tensorrt-llm", "gpu_batch_size 512, max_num_tokens 256, chunked context", 256),
        ("vllm", "--max_num_tokens 16384", None),  # another engine's argument
        ("tensorrt-llm", "--max-num-batched-tokens 512", None),
        (
            "sglang",
            "sglang.launch_server --tp 8 --chunked-prefill-size 32768 --max-prefill-tokens 32768",
            32768,
        ),
        ("sglang", "--chunked-prefill-size=131072", 131072),
        ("sglang", "--chunked-prefill-size -1 (no chunking)", None),  # not a budget
        ("vllm", "--chunked-prefill-size 4096", None),
        ("lmdeploy", "lmdeploy serve api_server --max-prefill-token-num 4096", 4096),
        ("tgi", "text-generation-launcher --max-batch-prefill-tokens 16384", 16384),
    ],
)
def test_a_server_rows_stated_token_budget_is_its_frameworks_own_argument(framework, notes, budget):
    assert _server_settings(framework, notes).get("max_num_batched_tokens") == budget


@pytest.mark.parametrize(
    "framework, notes, steps",
    [
        ("vllm", "vllm serve -tp 8 --num-scheduler-steps 10", 10),
        ("vllm", "(CSV columns: num-scheduler-step 15, enable-chunked-prefill False)", 15),
        ("vllm", "--num-scheduler-steps 1", None),
        ("sglang", "--num-scheduler-steps 10", None),  # vLLM's argument only
        ("sglang", "sglang.launch_server --num-continuous-decode-steps=4 --attention-backend aiter", 4),
        ("sglang", "--num-continuous-decode-steps 8", 8),
        ("vllm", "--num-continuous-decode-steps 8", None),  # SGLang's argument only
    ],
)
def test_a_server_rows_stated_multi_step_scheduling_is_read(framework, notes, steps):
    assert _server_settings(framework, notes).get("scheduler_steps") == steps


@pytest.mark.parametrize(
    "framework, notes, scheduler",
    [
        ("tensorrt-llm", "MLPerf Inference v4.1, closed division, submitter NVIDIA", "tensorrt-llm-max-util"),
        (
            "tensorrt-llm",
            "trtllm-serve ... capacity_scheduler_policy: MAX_UTILIZATION",
            "tensorrt-llm-max-util",
        ),
        ("tensorrt-llm", "MLPerf run with batch_scheduler_policy no_evict", "tensorrt-llm"),  # stated wins
        ("tensorrt-llm", "trtllm-bench throughput", None),  # the engine's own, GUARANTEED_NO_EVICT
        ("vllm", "MLPerf Inference v5.1, submitter RedHat", None),  # TensorRT-LLM's policies only
    ],
)
def test_tensorrt_llms_capacity_policy_is_read_from_its_notes(framework, notes, scheduler):
    assert _server_settings(framework, notes).get("scheduler") == scheduler


@pytest.mark.parametrize(
    "notes, batch, limit",
    [
        ("batch 2048 = gpu_batch_size per engine (maximum in-flight), not a measured occupancy", 2048, True),
        ("batch = gpu_batch_size per engine (Server 896, Offline 806), a maximum", 806, True),
        ("batch = vLLM max_num_seqs from the harness defaults", 2048, True),
        ("batch = max-num-seqs", 1024, True),
        ("batch 1024 = gpu_batch_size per engine", 2048, False),  # another number: not this batch
        ("batch 512 (the sequences generated together)", 512, False),
        ("batch = gpu_batch_size per engine", None, False),
    ],
)
def test_an_offline_rows_batch_stated_as_its_engines_limit_is_read_as_one(notes, batch, limit):
    assert stated_batch_limit(notes, batch) is limit


def test_an_offline_row_whose_batch_is_a_limit_runs_what_its_kv_pool_holds():
    """vk012: MLPerf's gpu_batch_size 1024 on a TP2 pair of L40S, whose KV pool (16-bit KV beside
    70 GB of FP8 weights) holds about 128k tokens: 1024 sequences of the OpenOrca lengths (about
    230 prompt and 290 output tokens) would need four times that, so the engine runs fewer, and
    under the harness's MAX_UTILIZATION policy (a running request holds its prompt and half its
    output on average)."""
    row = load_measured().set_index("id").loc["vk012"]
    c = resolve(_with_id(row, "vk012"))
    assert (c.batch, c.max_num_seqs, c.scheduler) == (None, 1024, "tensorrt-llm-max-util")
    running = operating_point(c).batch
    assert 64 <= running < 1024
    assert running * (c.input_len + c.output_len / 2) <= offline_kv_tokens(c) * 1.1
    assert resolve(_with_id(row.replace(row["notes"], "batch 1024 sequences at once"), "vk012")).batch == 1024


def test_an_unknown_scheduling_policy_is_refused_with_the_known_ones():
    from hwmodels.engine_config import engine_for
    from workloads.errors import HwsimError

    with pytest.raises(
        HwsimError, match="unknown scheduler 'tensorrt-llm-max-utils'; closest: tensorrt-llm-max-util"
    ):
        engine_for("tensorrt-llm").with_limits(scheduler="tensorrt-llm-max-utils")


@pytest.mark.parametrize(
    "notes, spread",
    [
        ("Lengths: uniform integers in [int(0.8*L), L] (benchmark_serving.py sample_uniform)", 0.2 / 1.8),
        ("python3 -m sglang.bench_serving --dataset-name random --random-range-ratio 0.5", 0.5 / 1.5),
        ("SGLang's bench_serving.py (dstack copy) --random-range-ratio 1 (fixed lengths)", None),
        ("uniform integers in [L*(1-0.1), L*(1+0.1)] (vllm bench serve)", 0.1),
        ("vllm bench serve --random-range-ratio 0.5", None),  # which client's rule: not stated
        ("--random-input-len 1024 --random-output-len 1024", None),
    ],
)
def test_a_rows_stated_length_range_is_its_clients_spread(notes, spread):
    """SGLang's bench_serving draws [int(R L), L] (spread (1 - R) / (1 + R) about the mean), vLLM's
    bench serve [L (1 - R), L (1 + R)] (spread R); a bare range ratio without its client is not read."""
    got = stated_length_spread(notes)
    assert got == (None if spread is None else pytest.approx(spread))


def test_held_out_errors_hand_case_and_none_without_rows():
    """The held-out summary ``hwsim validate`` prints: only rows with a held-out id count (median
    of 10% and 30% APE = 20%), energy rows never; with none, None rather than NaN (valid JSON)."""
    from roofline.calibrate import held_out_errors

    points = pd.DataFrame(
        {
            "id": ["vf001", "vg002", "a001", "vf003"],
            "hardware": ["h100-sxm"] * 4,
            "metric": ["tpot_s", "ttft_s", "tpot_s", "j_per_token"],
            "measured": [1.0, 1.0, 1.0, 1.0],
            "predicted": [1.1, 0.7, 5.0, 9.0],
            "predicted_low": [1.0, 0.5, None, None],
            "predicted_high": [1.2, 0.9, None, None],
            "ape": [0.1, 0.3, 4.0, 8.0],
            "covered": [True, True, True, True],
        }
    )
    held = held_out_errors(points)
    assert held["rows"] == 2 and held["covered"] == 2
    assert held["median_ape"] == pytest.approx(0.2)
    assert held["ranges"] == {"with_range": 2, "inside": 0.5, "median_width": pytest.approx(1.5)}
    empty = held_out_errors(points.loc[points["id"] == "a001"])
    assert empty["covered"] == 0 and empty["median_ape"] is None and empty["p90_ape"] is None
    json.dumps(empty, allow_nan=False)


def test_an_offline_row_with_experts_inside_its_tp_group_is_priced_as_tensor_parallel(tmp_path):
    """TensorRT-LLM's ``--tp 8 --ep 4`` on 8 GPUs splits the experts inside the tp group, whose
    bytes and FLOPs per GPU are tensor parallelism's (``test_expert_parallel``): an offline row
    so stated is priced as the same row at tp 8 without ep. Expert parallelism over devices of its
    own (ep 8 beside tp 8, 64 GPUs named but 8 in the row, or attention data parallelism) is not
    priced analytically and says so."""
    path = tmp_path / "ep.csv"
    row = {"hardware": "H200", "n_devices": 8, "model": "deepseek-r1", "precision": "fp8", "tp": 8}
    row |= {"framework": "tensorrt-llm", "phase": "offline", "batch": 64, "input_len": 1024}
    row |= {"output_len": 1024, "metric": "output_tokens_per_s", "value": 1000.0, "unit": "tokens/s"}
    frame = [row | {"ep": 4}, row | {"ep": 1}, row | {"ep": 3}, row | {"ep": 8, "tp": 1, "dp": 8}]
    pd.DataFrame(frame).to_csv(path, index=False)
    inside, plain, uneven, dp = validate(path)["points"]
    assert inside["covered"] and plain["covered"]
    assert inside["predicted"] == plain["predicted"]
    for p in (uneven, dp):
        assert not p["covered"] and "server rows only" in p["reason"]


def test_an_offline_pipeline_keeps_one_batch_per_stage_in_flight(tmp_path):
    """TensorRT-LLM runs as many micro-batches as pipeline stages, each up to its max batch (MLPerf's
    H100 llama2-70b engines: pp 2, gpu_batch_size 1024): every stage works on one batch while the
    other waits, so a pp-2 replica's offline rate is twice one batch's, whose step is as long as
    the whole pipeline (the estimate at pp 2). By hand from that estimate: 2 x batch x output / (its
    end-to-end time). A static batch (HF Transformers) runs its stages one after another: one
    batch's rate (its two GPUs, one replica). And each in-flight batch holds half the KV pool."""
    from roofline.estimate import estimate
    from roofline.validation import offline_max_batch

    path = tmp_path / "pp.csv"
    row = {
        "hardware": "H100 SXM",
        "n_devices": 8,
        "model": "llama-2-70b",
        "precision": "fp8",
        "tp": 1,
        "pp": 2,
    }
    row |= {"phase": "offline", "batch": 256, "input_len": 1024, "output_len": 256}
    row |= {"metric": "output_tokens_per_s", "value": 1000.0, "unit": "tokens/s"}
    pd.DataFrame(
        [
            row | {"framework": "tensorrt-llm"},
            row | {"framework": "hf-accelerate", "batch": 8, "n_devices": 2},
        ]
    ).to_csv(path, index=False)
    trt, hf = validate(path)["points"]
    shape = dict(input_len=1024, output_len=256, pp=2, precision="fp8")
    one = estimate("llama-2-70b", "h100-sxm", batch=256, framework="tensorrt-llm", **shape)
    assert trt["predicted"] == pytest.approx(4 * 2 * 256 * 256 / float(one.e2e_s), rel=1e-9)
    slow = estimate("llama-2-70b", "h100-sxm", batch=8, framework="hf-accelerate", **shape)
    assert hf["predicted"] == pytest.approx(8 * 256 / float(slow.e2e_s), rel=1e-9)
    # TensorRT-LLM reserves each request's prompt and whole output: 1,280 tokens of half the pool
    piped = resolve(load_measured(path).iloc[0])
    assert offline_max_batch(piped) == offline_kv_tokens(piped) // 2 // 1280


def test_a_pipelines_batches_share_the_prompts_a_run_sent(tmp_path):
    """A pp-2 offline run that sent 100 prompts runs at most 50 in each of its two batches (the
    pool holds far more): its rate is 2 x b sequences' over a b-sequence run, b the most
    productive batch up to 50, not up to 100."""
    from roofline.estimate import estimate
    from roofline.validation import offline_batch, offline_max_batch

    path = tmp_path / "prompts.csv"
    row = {"hardware": "H200", "n_devices": 2, "model": "llama-3.1-8b", "precision": "bf16", "tp": 1, "pp": 2}
    row |= {"framework": "tensorrt-llm", "phase": "offline", "input_len": 512, "output_len": 256}
    row |= {"metric": "output_tokens_per_s", "value": 1.0, "unit": "tokens/s", "notes": "--num-prompts 100"}
    pd.DataFrame([row]).to_csv(path, index=False)
    c = resolve(load_measured(path).iloc[0])
    assert c.num_prompts == 100 and offline_max_batch(c) == 50
    b = offline_batch(c)
    (point,) = validate(path)["points"]
    shape = dict(input_len=512, output_len=256, pp=2, framework="tensorrt-llm")
    run = estimate("llama-3.1-8b", "h200", batch=b, **shape)
    assert 32 <= b <= 50 and point["predicted"] == pytest.approx(2 * b * 256 / float(run.e2e_s), rel=1e-9)
