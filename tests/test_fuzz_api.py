"""Findings of an independent fuzz campaign at the API and a few CLI commands, each a case that
raised a bare Python exception, printed NaN or accepted a value that cannot happen: now a
one-line ``ConfigError`` naming the argument and the value, or the right result."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import hwsim
from hwsim.cli import cli, main
from workloads.errors import ConfigError, HwsimError
from workloads.model_spec import load_model

ROOT = Path(__file__).resolve().parents[1]


def validated_point(tmp_path: Path, row_id: str, change: dict) -> dict:
    """The one point of ``hwsim validate --json`` on shipped row ``row_id`` with ``change`` made
    to its cells (the JSON must hold no bare NaN or Infinity)."""
    rows = pd.read_csv(ROOT / "hwmodels/validation/measured.csv")
    row = rows.loc[rows["id"] == row_id].copy()
    for key, value in change.items():
        row[key] = value
    data = tmp_path / "one.csv"
    row.to_csv(data, index=False)
    result = CliRunner().invoke(cli, ["validate", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in validate --json"))
    (point,) = report["points"]
    return point


def test_numpy_unsigned_degrees_are_counted_as_python_integers():
    """A uint8 degree's arithmetic would wrap (16 * 16 = 0 in uint8): the devices are 256."""
    est = hwsim.estimate(
        "llama-3.1-405b", "h100-sxm", batch=4, input_len=64, output_len=8, tp=np.uint8(16), pp=np.uint8(16)
    )
    assert est.n_devices == 256
    moe = hwsim.estimate("mixtral-8x7b", "h100-sxm", batch=4, input_len=64, output_len=8, ep=np.uint8(8))
    assert moe.n_devices == 8


def test_roofline_takes_narrow_numpy_integers_as_python_ones():
    """An int8 expert-parallel degree (a fuzzer's case) gives the tables of the plain integers: no
    NumPy overflow in the experts' ceiling division (256 experts would wrap an int8)."""
    narrow = hwsim.roofline(
        "deepseek-v3", "h100-sxm", ep=np.int8(3), batch=np.int8(100), input_len=np.int16(2000)
    )
    plain = hwsim.roofline("deepseek-v3", "h100-sxm", ep=3, batch=100, input_len=2000)
    for phase, table in plain.items():
        pd.testing.assert_frame_equal(narrow[phase], table)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hwsim.best("llama-2-7b", ["h100-sxm"], objective=5), "objective is 5; expected a name"),
        (lambda: hwsim.best("llama-2-7b", ["h100-sxm"], objective=["x"]), "objective is ['x']"),
        (
            lambda: hwsim.estimate("llama-2-7b", "h100-sxm", batch=[[1], [2, 3]], input_len=64, output_len=8),
            "batch is [[1], [2, 3]]; expected a positive integer or a rectangular array",
        ),
        (
            lambda: hwsim.estimate(
                "llama-2-7b", "h100-sxm", batch=np.ones((1,) * 32), input_len=64, output_len=8
            ),
            "batch has 32 axes; expected at most 16",
        ),
        (
            lambda: hwsim.roofline("llama-2-7b", "h100-sxm", batch=[1, 2]),
            "batch is [1, 2]; expected one positive integer",
        ),
        (
            lambda: hwsim.estimate("llama-2-7b", "h100-sxm", batch=10_000_001, input_len=64, output_len=8),
            "batch is 10,000,001; expected a positive integer up to 10,000,000",
        ),
        (
            lambda: hwsim.estimate(
                "llama-2-7b", "h100-sxm", batch=1, input_len=64, output_len=8, n_devices=2**63 - 1
            ),
            "n_devices is 9223372036854775807; expected a positive integer up to 1,048,576",
        ),
        (
            lambda: hwsim.estimate(
                "llama-2-7b", "h100-sxm", batch=1, input_len=64, output_len=8, mtp_acceptance=1e300
            ),
            "acceptance 1e+300",
        ),
        (
            lambda: hwsim.estimate(
                "llama-2-7b", "h100-sxm", batch=1, input_len=[16, 64], output_len=8, cached_len=20
            ),
            "cached_len 20 exceeds input_len 16",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(HwsimError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_device_name_is_not_split_into_letters():
    """``best(model, "h100-sxm")``: one device, not the devices 'h', '1', ..."""
    assert set(hwsim.best("llama-2-7b", "h100-sxm", batches=[1, 8])["device"]) == {"h100-sxm"}


@pytest.mark.parametrize("value", [[1.5], [True]])
def test_a_layer_index_that_is_no_integer_is_refused(tmp_path, value):
    config = json.loads((ROOT / "workloads/presets/qwen3-235b-a22b.json").read_text())
    config["mlp_only_layers"] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="mlp_only_layers"):
        load_model(str(path))


def test_a_row_without_a_finite_prediction_is_not_covered(tmp_path):
    """A server TPOT row of one output token has no decode step: reported as not covered with the
    reason, and ``validate --json`` stays valid JSON (no bare NaN)."""
    point = validated_point(tmp_path, "s122-tpot", {"output_len": 1})
    assert not point["covered"] and "undefined" in point["reason"]


def test_compare_names_a_missing_price_and_prints_no_nan(tmp_path):
    result = CliRunner().invoke(
        cli, ["compare", "-m", "llama-2-7b", "-d", "h100-sxm", "-d", "sail-n1", "-o", str(tmp_path / "c.png")]
    )
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout
    assert "hwsim: note: no $ figures: device 'sail-n1' has no tco price" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "-m", "llama-2-7b", "-d", "h100-sxm", "-d", "l40s", "-o", "{file}/x.png"],
        ["pareto", "-m", "llama-3.1-8b", "-d", "h100-sxm", "-o", "/proc/x.png"],
        ["pareto", "-m", "llama-3.1-8b", "-d", "h100-sxm", "-o", "z" * 300 + ".png"],
        ["roofline", "-m", "llama-2-7b", "-d", "h100-sxm", "-o", "/proc/x.png"],
        ["simulate", "-s", "1xa100", "-m", "llama-2-7b", "--output-len", "4", "--timeline", "/proc/x.png"],
    ],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_work(tmp_path, monkeypatch, capsys, args):
    """A parent that is a file, a folder nothing can be made in (/proc), a name too long: one
    line naming the option, exit 2, and no chart drawn."""
    import roofline.plots

    monkeypatch.setattr(roofline.plots, "_save", lambda *a, **k: pytest.fail("a chart was drawn"))
    (tmp_path / "afile").write_text("")
    args = [a.replace("{file}", str(tmp_path / "afile")) for a in args]
    monkeypatch.setattr(sys, "argv", ["hwsim", *args, "--json"])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("hwsim: error: Invalid value for"), err


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"phase": "decode"}, "metric 'kernel_s' does not go with phase 'decode'"),
        ({"metric": "decode_tokens_per_s"}, "metric 'decode_tokens_per_s' does not go with phase 'kernel'"),
        ({"value": 1e-320}, "measured value 1e-320 is too small to compare with"),
    ],
)
def test_a_row_that_cannot_be_compared_is_not_covered(tmp_path, change, reason):
    """A kernel time on a decode row, a throughput on a kernel row, a subnormal measurement: each
    reported as not covered with its reason (no KeyError, no Infinity in the JSON)."""
    point = validated_point(tmp_path, "c072", change)
    assert not point["covered"] and reason in point["reason"]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("bw_GBps", 1e-300, "links.nvlink.bw_GBps is 1e-300; expected a number from 0.001 to 1e+09"),
        ("latency_us", 1e308, "links.nvlink.latency_us is 1e+308; expected a number from 0 to 1e+06"),
    ],
)
def test_a_system_link_outside_its_span_is_refused(tmp_path, field, value, message):
    import yaml

    from sim.system import load_system

    raw = yaml.safe_load((ROOT / "sim/systems/8xh100-nvlink.yaml").read_text())
    raw["links"]["nvlink"][field] = value
    path = tmp_path / "sys.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_system(str(path))


def test_a_device_without_peaks_is_refused_when_loaded(tmp_path):
    import yaml

    from hwmodels.device_spec import load_device

    raw = yaml.safe_load((ROOT / "hwmodels/catalog/l40s.yaml").read_text())
    raw["compute"]["peak_TFLOPs"] = {}
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="compute.peak_TFLOPs is empty"):
        load_device(str(path))


def test_the_smallest_int64_is_refused_without_an_overflow_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="batch is -9.22337e"):
            hwsim.estimate("llama-2-7b", "h100-sxm", batch=np.int64(-(2**63)), input_len=8, output_len=8)


def test_a_serving_deployment_beyond_the_event_loop_is_refused_at_once():
    with pytest.raises(ConfigError, match="n_devices is 10000000; expected a positive integer up to 4,096"):
        hwsim.serve(
            "llama-3.1-8b", "h100-sxm", n_devices=10_000_000, concurrency=4, input_len=128, output_len=16
        )


@pytest.mark.parametrize(
    "row_id, change, reason",
    [
        (
            "s272",
            {"concurrency": 0, "request_rate": None},
            "states neither a concurrency nor a request_rate",
        ),
        (
            "s272",
            {"notes": "num_requests=abc"},
            "notes field num_requests=abc is not a positive whole number",
        ),
        ("c069", {"batch": None}, "kernel row states no batch"),
    ],
)
def test_a_server_or_kernel_row_missing_its_conditions_is_not_covered(tmp_path, row_id, change, reason):
    point = validated_point(tmp_path, row_id, change)
    assert not point["covered"] and reason in point["reason"]


def test_a_fractional_count_in_measured_data_is_refused(tmp_path):
    from roofline.validation import load_measured

    rows = pd.read_csv(ROOT / "hwmodels/validation/measured.csv")
    row = rows.loc[rows["id"] == "c069"].copy()
    row["batch"] = 1.5
    data = tmp_path / "one.csv"
    row.to_csv(data, index=False)
    with pytest.raises(ConfigError, match="batch"):
        load_measured(data)


def test_a_direction_bandwidth_outside_its_span_is_refused(tmp_path):
    import yaml

    from sim.system import load_system

    raw = yaml.safe_load((ROOT / "sim/systems/t4-flexgen.yaml").read_text())
    link = next(v for v in raw["links"].values() if "bw_GBps_by_direction" in v)
    link["bw_GBps_by_direction"]["host->gpu"] = 1e-9
    path = tmp_path / "sys.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=re.escape("expected a number from 0.001 to 1e+09")):
        load_system(str(path))


def test_simulate_refuses_a_request_past_the_models_context():
    with pytest.raises(ConfigError, match="max context of 2,048 tokens"):
        hwsim.simulate("1xa100", "gpt-j-6b", batch=1, input_len=3000, output_len=8)


def test_a_long_closed_loop_at_low_concurrency_is_cut_to_the_step_budget():
    """Two requests at a time, 6,000 requests of 247 tokens would be 741,000 decode steps (a minute
    of event loop); the trace keeps ``DECODE_STEP_BUDGET`` of them."""
    from roofline.validation import load_measured, operating_point, resolve
    from sim.serving.validation import DECODE_STEP_BUDGET, row_trace

    rows = load_measured(ROOT / "hwmodels/validation/measured.csv")
    row = rows.loc[rows["id"] == "s122-tpot"].iloc[0].copy()
    row["concurrency"], row["request_rate"], row["notes"] = 2, float("nan"), "num_requests=6000"
    trace = row_trace(operating_point(resolve(row)))
    assert len(trace.input_len) * 247 / 2 == pytest.approx(DECODE_STEP_BUDGET, rel=0.01)


@pytest.mark.parametrize("name", ["h100\x00", "h100\nsxm"])
def test_a_device_name_with_a_control_character_is_refused(name):
    from hwmodels.device_spec import load_device

    with pytest.raises(ConfigError, match="holds a control character"):
        load_device(name)
