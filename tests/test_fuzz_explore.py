"""Findings of a fuzz campaign on ``hwsim sweep``, ``best`` and ``pareto``, pinned.

Each bad input must stop before any work with one line, ``hwsim: error: ...``, on stderr naming
the key or option, the value as given and what is expected (exit status 2), never a traceback; a
sweep whose points partly fail must still write every point, the failed ones as error rows.
The CLI runs in process through ``hwsim.cli.main`` (the entry point that turns a user mistake
into that line).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import explore.run as run_module
from explore.spec import MAX_SAMPLES, parse_spec
from workloads.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # an int64 wrap is a finding

MIN = "models: [llama-3.2-1b]\ndevices: [h100-sxm]\n"
"""The smallest spec the campaign added one line to."""


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a chunk is priced: a refusal must come before any work."""

    def price(chunk):
        raise AssertionError("a chunk was priced before the refusal")

    monkeypatch.setattr(run_module, "price", price)


# ----- 1. a serving sweep mixing designs that run and designs that cannot -------------------
def test_serving_sweep_with_error_and_priced_designs_writes_every_point(run_cli, tmp_path):
    """Mixtral fp16 runs on the EPYC's 768 GB but leaves no KV cache on an 80 GB H100: the H100's
    chunk has no serving columns, and the table still has both points, the H100's metrics null."""
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "models: [mixtral-8x7b]\ndevices: [epyc-9654, h100-sxm]\nrate: [0.5]\nnum_requests: [1]\n"
    )
    out = tmp_path / "mixed.parquet"
    code, stdout, err = run_cli.hwsim("sweep", str(spec), "-o", str(out), "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["points"] == 2 and summary["errors"] == 1
    table = pd.read_parquet(out).set_index("device")
    assert list(table.columns)[-1] == "error"
    assert table.loc["epyc-9654", "error"] == "" and table.loc["epyc-9654", "ttft_s_mean"] > 0
    assert "KV cache" in table.loc["h100-sxm", "error"]
    assert table.loc["h100-sxm", ["ttft_s_mean", "tpot_s_mean", "completed"]].isna().all()
    assert not (out.parent / (out.name + ".parts")).exists()


# ----- 2 and 5. spec values refused up front, naming the key, the value and the limits ------
SPEC_CASES = [
    # out-of-range axis values: refused, not every point of the design an error row
    ("batch: [1, 8, 10000001]", "batch value 10000001; expected a positive integer up to 10,000,000"),
    ("input_len: [10000001]", "input_len value 10000001; expected a positive integer up to 10,000,000"),
    ("output_len: [0]", "output_len value 0; expected a positive integer up to 10,000,000"),
    ("batch: [1.0e+300]", "batch value 1e+300; expected a positive integer up to 10,000,000"),
    ("batch: [2.5]", "batch value 2.5; expected a positive integer"),
    ("batch: [true]", "batch value True; expected a positive integer"),
    ("tp: [1.0e+300]", "tp value 1e+300; expected a positive integer up to 1,048,576"),
    ("tp: [1180591620717411303424]", "tp value 1180591620717411303424; expected a positive integer up to"),
    ("n_devices: [1.0e+300]", "n_devices value 1e+300; expected a positive integer up to 1,048,576"),
    ("rate: [1]\nnum_requests: [1.0e+300]", "num_requests value 1e+300; expected a positive integer up to"),
    ("concurrency: [99999999999]", "concurrency value 99999999999; expected a positive integer up to"),
    ("rate: [-1]", "rate value -1; expected a positive number"),
    # ranges
    (
        "batch: {start: 1180591620717411303424, stop: 1180591620717411303425}",
        "batch.start is 1180591620717411303424",
    ),
    (
        "batch: {start: 1, stop: 1.0e+300, num: 3, log: true}",
        "batch.stop is 1e+300; expected a number from 1 to",
    ),
    ("batch: {start: 1.0e+19, stop: 2.0e+19, num: 3}", "batch.start is 1e+19; expected a number from 1 to"),
    ("batch: {start: 0.5, stop: 0.6, num: 3}", "batch.start is 0.5; expected a number from 1 to 10,000,000"),
    ("batch: {start: 1, stop: 8, log: maybe}", "batch.log is 'maybe'; expected true or false"),
    ("rate: {start: 1, stop: " + "9" * 400 + "}", "rate.stop is 999"),  # beyond float range
    # names
    ("price_basis: [[tco]]", "price_basis value ['tco']; expected tco or cloud"),
    ("price_basis: [{a: 1}]", "price_basis value {'a': 1}; expected tco or cloud"),
    ("precision: [[fp16]]", "precision value ['fp16']; expected a name"),
    ("framework: [{vllm: 1}]", "framework value {'vllm': 1}; expected a name"),
    # sampling
    ("sampling: {method: random, n: 3, seed: abc}", "sampling.seed is 'abc'; expected an integer from 0"),
    ("sampling: {method: random, n: 3, seed: -1}", "sampling.seed is -1; expected an integer from 0"),
    ("sampling: {method: random, n: 3, seed: [1]}", "sampling.seed is [1]; expected an integer from 0"),
    ("sampling: {method: lhs, n: 3, seed: 1.5}", "sampling.seed is 1.5; expected an integer from 0"),
    ("sampling: {method: random, n: 3, seed: 9223372036854775808}", "sampling.seed is 9223372036854775808"),
    (
        "sampling: {method: random, n: 100000000000}",
        f"sampling.n is 100000000000; expected a positive integer up to {MAX_SAMPLES:,}",
    ),
    (
        "sampling: {method: lhs, n: 100000000000}",
        "sampling.n is 100000000000; expected a positive integer up to",
    ),
    (
        "sampling: {method: random, n: 3, sed: 1}",
        "sampling key 'sed'; expected {method: grid | random | lhs, n, seed}",
    ),
    ("sampling: [random]", "sampling ['random']; expected {method"),
    # grids too large to enumerate
    (
        "batch: {start: 1, stop: 100000, num: 100000}\ninput_len: {start: 1, stop: 100000, num: 100000}",
        "the grid has 10,000,000,000 points; expected at most 1,000,000,000",
    ),
    (
        "tp: {start: 1, stop: 10000, num: 10000}\npp: {start: 1, stop: 1000, num: 1000}",
        "the grid has 10,000,000 designs",
    ),
]


@pytest.mark.parametrize("line,message", SPEC_CASES, ids=[c[0][:40] for c in SPEC_CASES])
def test_bad_spec_values_are_refused_before_any_work(run_cli, tmp_path, no_work, line, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(MIN + line + "\n")
    out = tmp_path / "out.parquet"
    err = run_cli.refused("sweep", str(spec), "-o", str(out))
    assert f"{spec}: {message}" in err, err
    assert "1e+07" not in err
    assert not out.exists() and not (tmp_path / "out.parquet.parts").exists()


def test_best_names_an_out_of_range_batch_not_a_pricing_failure(run_cli):
    err = run_cli.refused("best", "-m", "llama-2-7b", "-d", "h100-sxm", "-b", "10000001", "--json")
    assert "batch value 10000001; expected a positive integer up to 10,000,000" in err
    err = run_cli.refused("pareto", "-m", "llama-2-7b", "-d", "h100-sxm", "--tp", "4294967296")
    assert "tp value 4294967296; expected a positive integer up to 1,048,576" in err


def test_spec_values_within_the_limits_are_kept():
    """Integral floats are integers, the limits themselves are taken, a range stays inside them."""
    spec = parse_spec(
        {
            "models": ["llama-3.2-1b"],
            "devices": ["h100-sxm"],
            "batch": [1.0, 10_000_000],
            "tp": [1, 8.0],
            "input_len": {"start": 1, "stop": 10_000_000, "num": 3, "log": True},
            "sampling": {"method": "lhs", "n": MAX_SAMPLES, "seed": 2**63 - 1},
        }
    )
    assert spec.values["batch"] == [1, 10_000_000] and all(type(b) is int for b in spec.values["batch"])
    assert spec.values["tp"] == [1, 8]
    assert spec.values["input_len"][0] == 1 and spec.values["input_len"][-1] == 10_000_000
    assert spec.n_samples == MAX_SAMPLES and spec.seed == 2**63 - 1


def test_an_integer_too_long_to_print_is_described_by_its_size():
    with pytest.raises(ConfigError, match=r"batch value an integer of 16,610 bits"):
        parse_spec({"models": ["llama-3.2-1b"], "devices": ["h100-sxm"], "batch": [10**5000]})


@pytest.mark.parametrize(
    "text,message",
    [
        ("models: " + "[" * 3000 + "]" * 3000 + "\n", "not valid YAML (nested too deeply)"),
        ("batch: " + "9" * 5000 + "\n", "not valid YAML (an integer of more than 4,300 digits"),
    ],
    ids=["deep", "bigint"],
)
def test_spec_files_nested_too_deeply_or_with_huge_integers(run_cli, tmp_path, no_work, text, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    err = run_cli.refused("sweep", str(spec), "-o", str(tmp_path / "o.parquet"))
    assert message in err


# ----- 3. sweep -o paths that cannot be written: refused before any work --------------------
def test_sweep_out_paths_that_cannot_be_written(run_cli, tmp_path, no_work):
    spec = tmp_path / "min.yaml"
    spec.write_text(MIN)
    (tmp_path / "afile").write_text("")
    long = "z" * 300 + ".parquet"
    cases = [
        ("", "names a folder, not a file"),
        (str(tmp_path / "afile" / "x.parquet"), "afile' is a file, not a folder"),
        (str(tmp_path / "afile" / "sub" / "x.parquet"), "afile' is a file, not a folder"),
        (str(tmp_path / long), "its name is 308 bytes long; expected at most 249"),
        (str(tmp_path / ("z" * 250)), "its name is 250 bytes long"),  # its .parts folder would be 256
        (str(tmp_path / long / "x.parquet"), "a folder name in it is 308 bytes long"),
        (str(tmp_path), "is a directory"),
    ]
    if Path("/proc/self").is_dir():  # Linux: /proc takes no new files, even from root
        cases.append(("/proc/x.parquet", "cannot create its working directory"))
    for out, message in cases:
        err = run_cli.refused("sweep", str(spec), "-o", out)
        assert message in err and err.startswith("hwsim: error: out "), (out, err)
        assert len(err) < 400


# ----- 4. repeatable integer options get the 64-bit check ----------------------------------
@pytest.mark.parametrize(
    "args,option,value",
    [
        (["best", "-b", "9223372036854775808"], "--batch", "9223372036854775808"),
        (["best", "-b", "1", "-b", "-9223372036854775809"], "--batch", "-9223372036854775809"),
        (["best", "--tp", "99999999999999999999999"], "--tp", "99999999999999999999999"),
        (["pareto", "--tp", "1", "--tp", "99999999999999999999999"], "--tp", "99999999999999999999999"),
        (["pareto", "-b", "18446744073709551616"], "--batch", "18446744073709551616"),
    ],
)
def test_repeatable_integer_options_are_checked_value_by_value(run_cli, args, option, value):
    command, *rest = args
    err = run_cli.refused(command, "-m", "llama-2-7b", "-d", "h100-sxm", *rest, "--json")
    assert option in err and value in err and "64-bit integer range" in err


@pytest.mark.parametrize(
    "option,value,hint",
    [
        ("--x", "", ""),
        ("--z", "", ""),
        ("--y", "tokens_per", "closest: tokens_per_j, tokens_per_usd, decode_tokens_per_s; "),
    ],
)
def test_pareto_metrics_are_checked_before_the_search(run_cli, monkeypatch, option, value, hint):
    """An empty --x used to drop out of the front's metrics and crash the chart (KeyError '')."""
    import hwsim.cli_explore as cli_explore

    monkeypatch.setattr(cli_explore, "_run_search", lambda *a, **k: pytest.fail("searched before refusing"))
    err = run_cli.refused("pareto", "-m", "llama-2-7b", "-d", "h100-sxm", option, value)
    assert f"metric {value!r} has no direction; {hint}expected one of ttft_s" in err


@pytest.mark.parametrize("command", [["report", "--quick"], ["calibrate", "--part", "energy"]])
@pytest.mark.parametrize("folder", ["", " "])
def test_an_empty_output_folder_is_refused_not_read_as_the_current_one(
    run_cli, tmp_path, monkeypatch, command, folder
):
    """``--out ''`` was the current folder: the whole report (or a refit) written where the user stood."""
    monkeypatch.chdir(tmp_path)
    err = run_cli.refused(*command, "--out", folder)
    assert f"{folder!r}: an empty name; expected a folder ('.' for the current one)" in err
    assert not any(tmp_path.iterdir())
