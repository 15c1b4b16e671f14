"""Questionable and impossible inputs get a clear one-line answer (issue 15): each case the fuzz
test (``test_fuzz.py``) only checks does not crash is pinned here to its message."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from hwsim.cli import cli
from roofline.estimate import estimate
from workloads.errors import ConfigError, UnknownNameError
from workloads.model_spec import load_model, preset_index


def run(*args):
    return CliRunner().invoke(cli, list(args))


def error_of(result) -> str:
    """The one-line message of a refused command (a hwsim error or a click usage error)."""
    assert result.exit_code != 0, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return str(result.exception)
    return result.stderr


# ----- questionable inputs on the command line ---------------------------------------------
def test_fp8_on_a_gpu_without_fp8_units_is_refused_naming_weight_only():
    msg = error_of(run("estimate", "-m", "llama-2-7b", "-d", "a100-sxm-80gb", "-p", "fp8"))
    assert "no FP8 tensor cores" in msg and "--precision w8a16kv8" in msg
    msg = error_of(
        run(
            "serve",
            "-m",
            "llama-2-7b",
            "-d",
            "v100-sxm2-32gb",
            "-p",
            "fp8-kv16",
            "--rate",
            "1",
            "--input-len",
            "8",
            "--output-len",
            "8",
        )
    )
    assert "--precision w8a16" in msg
    assert run("estimate", "-m", "llama-2-7b", "-d", "a100-sxm-80gb", "-p", "w8a16kv8").exit_code == 0
    assert run("estimate", "-m", "llama-2-7b", "-d", "h100-sxm", "-p", "fp8").exit_code == 0


def test_prompt_beyond_the_model_context_is_refused():
    """Llama-2's config.json says max_position_embeddings 4096: 4000 + 200 tokens do not fit."""
    assert load_model("llama-2-7b").max_context == 4096
    msg = error_of(
        run("estimate", "-m", "llama-2-7b", "-d", "h100-sxm", "--input-len", "4000", "--output-len", "200")
    )
    assert "max context of 4,096" in msg and "4200" in msg
    msg = error_of(
        run("simulate", "-s", "1xa100", "-m", "opt-6.7b", "--input-len", "2048", "--output-len", "1")
    )
    assert "max context of 2,048" in msg
    ok = run("estimate", "-m", "llama-2-7b", "-d", "h100-sxm", "--input-len", "4000", "--output-len", "96")
    assert ok.exit_code == 0


def test_tp_beyond_the_nvlink_domain_warns():
    r = run("estimate", "-m", "llama-2-70b", "-d", "h100-sxm", "--tp", "16", "--json")
    assert r.exit_code == 0 and "NVLink domain of 8" in r.stderr and "scale-out network" in r.stderr
    assert "NVLink domain" not in run("estimate", "-m", "llama-2-70b", "-d", "h100-sxm", "--tp", "8").stderr
    assert "NVLink domain" not in run("estimate", "-m", "llama-2-70b", "-d", "gb200", "--tp", "64").stderr
    r = run("estimate", "-m", "llama-2-70b", "-d", "h100-pcie", "--tp", "4")
    assert "NVLink domain of 2" in r.stderr


def test_two_devices_to_estimate_are_refused_not_the_last_kept():
    msg = error_of(run("estimate", "-m", "llama-2-7b", "-d", "a100-sxm-80gb", "-d", "h100-sxm"))
    assert "given 2 times" in msg and "hwsim compare" in msg
    msg = error_of(run("simulate", "-s", "1xa100", "-m", "llama-2-7b", "--batch", "1", "--batch=8"))
    assert "--batch" in msg and "given 2 times" in msg


def test_usage_errors_are_one_line():
    r = subprocess.run(
        [sys.executable, "-m", "hwsim", "estimate", "-m", "llama-2-7b", "-d", "h100-sxm", "--batch", "eight"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--batch" in r.stderr


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809"])
def test_integers_past_int64_are_refused(value):
    assert "64-bit" in error_of(run("estimate", "-m", "llama-2-7b", "-d", "h100-sxm", "--batch", value))


def test_calibrate_writes_only_where_told(tmp_path):
    assert "not both" in error_of(run("calibrate", "--out", str(tmp_path), "--write"))
    (tmp_path / "afile").write_text("")
    assert "is a file" in error_of(run("calibrate", "--out", str(tmp_path / "afile" / "fits")))


def test_fits_in_reads_and_writes_another_folder(tmp_path):
    """``hwsim calibrate --out DIR`` runs inside ``fits_in(DIR)``: the package's files are never
    written, and the shipped fits are there to read."""
    from hwmodels.calibration.params import fits_folder, fits_in, fitted, fitted_path

    shipped = fitted_path("gpu").read_text()
    with fits_in(tmp_path):
        assert fitted_path("gpu") == tmp_path / "gpu_fitted.yaml" and fitted("gpu")
        fitted_path("gpu").write_text(yaml.safe_dump({"schema_version": 1, "classes": {}}))
        fitted.cache_clear()
        assert fitted("gpu")["classes"] == {}
    assert fitted_path("gpu").read_text() == shipped and fits_folder() != tmp_path
    assert fitted("gpu")["classes"]


def test_a_folder_with_older_fits_is_named_before_the_fit_reads_them(tmp_path):
    """A refit into a folder that already holds fitted files reads those, not the package's: the
    files that differ are listed (and the CLI says so), those equal to the package's are not."""
    from hwmodels.calibration.params import differing_fits, fits_in

    with fits_in(tmp_path):
        pass
    assert differing_fits(tmp_path) == []
    (tmp_path / "serving_fitted.yaml").write_text("schema_version: 1\nframeworks: {}\n")
    assert differing_fits(tmp_path) == ["serving_fitted.yaml"]


@pytest.mark.parametrize("path", ["", "afile/x.png", "y" * 300 + ".png", "."])
def test_bad_output_paths_are_refused_before_any_work(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    msg = error_of(
        run("simulate", "-s", "1xa100", "-m", "llama-2-7b", "--output-len", "2", "--timeline", path)
    )
    assert "--timeline" in msg


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "spec\x00.yaml"],
        ["sweep", "spec.yaml", "--out", "a\x00b.csv"],
        ["report", "--out", "r\x00"],
    ],
)
def test_a_path_with_a_nul_byte_is_a_bad_parameter(args):
    assert "NUL byte" in error_of(run(*args))


# ----- simulate ----------------------------------------------------------------------------
def test_simulate_one_output_token_has_no_tpot_and_valid_json():
    r = run("simulate", "-s", "1xa100", "-m", "llama-2-7b", "--output-len", "1", "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert d["tpot_s"] is None and d["decode_tokens_per_s"] is None and d["ttft_s"] > 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--tp", "0"], "tp is 0"),
        (["--pp", "-7"], "pp is -7"),
        (["-s", "t4-flexgen", "-m", "opt-6.7b", "--output-len", "0"], "output_len is 0"),
        (["-s", "t4-flexgen", "-m", "opt-6.7b", "--output-len", "-1"], "output_len is -1"),
        (["--output-len", "100000"], "engine tasks"),
    ],
)
def test_simulate_refuses_bad_degrees_and_lengths(args, needle):
    base = {"-s": "8xh100-nvlink", "-m": "llama-3.1-8b"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    assert needle in error_of(run("simulate", *[a for kv in base.items() for a in kv]))


# ----- system files ------------------------------------------------------------------------
def system_yaml(tmp_path, **changes):
    from importlib.resources import files

    raw = yaml.safe_load(files("sim.systems").joinpath("8xh100-nvlink.yaml").read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"devices": 1}, "devices is 1; expected a mapping"),
        ({"parallelism__tp": float("nan")}, "parallelism.tp is nan"),
        ({"parallelism__tp": "eight"}, "parallelism.tp is 'eight'"),
        ({"devices__gpu__device": KeyError}, "devices.gpu.device is None"),
        ({"links__nvlink__energy_pJ_per_byte": -1}, "energy_pJ_per_byte is -1; expected a non-negative"),
        ({"parallelism__tpp": 8}, "unknown field(s) tpp"),
    ],
)
def test_system_yaml_with_wrong_types_is_one_line(tmp_path, changes, needle):
    from sim.system import load_system

    with pytest.raises(ConfigError) as info:
        load_system(system_yaml(tmp_path, **changes))
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"devices: [gpu\n", b"name: caf\xe9\n", b"42\n"])
def test_empty_malformed_or_non_utf8_system_file(tmp_path, content):
    from sim.system import load_system

    (tmp_path / "s.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match="s.yaml"):
        load_system(tmp_path / "s.yaml")


# ----- model configs -----------------------------------------------------------------------
def config(tmp_path, name="llama-2-7b", **changes):
    from importlib.resources import files

    raw = json.loads(files("workloads.presets").joinpath(preset_index()[name]["file"]).read_text())
    raw.update(changes)
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    "name,changes,needle",
    [
        ("mixtral-8x7b", {"num_experts_per_tok": 9}, "num_experts_per_tok 9 exceeds the 8 routed experts"),
        ("llama-2-7b", {"num_hidden_layers": 10**12}, "expected a positive integer up to 10,000"),
        ("llama-2-7b", {"hidden_size": 4097}, "not a multiple of num_attention_heads"),
        ("deepseek-v3", {"q_lora_rank": -1536}, "'q_lora_rank' is -1536"),
        ("deepseek-v3", {"qk_rope_head_dim": -64}, "'qk_rope_head_dim' is -64"),
        ("llama-2-7b", {"max_position_embeddings": 2**70}, "max_position_embeddings"),
        ("gpt-oss-20b", {"layer_types": [[]] * 24}, "'layer_types'[0]"),
        (
            "llama-2-7b",
            {"model_type": False},
            "field 'model_type' is False; expected the architecture's name",
        ),
        ("llama-2-7b", {"model_type": ""}, "field 'model_type' is ''"),
    ],
)
def test_impossible_configs_are_refused(tmp_path, name, changes, needle):
    with pytest.raises(ConfigError) as info:
        load_model(config(tmp_path, name, **changes))
    assert needle in str(info.value)


def test_unreadable_config_files(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "caf\xe9"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_model(path)
    with pytest.raises(UnknownNameError):
        load_model("x" * 300)


# ----- the Python API ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"precision": None}, "precision is None"),
        ({"economics": "capex"}, "economics is 'capex'"),
        ({"framework": 3}, "framework is 3"),
        ({"input_len": 1e300}, "input_len is 1e+300"),
        ({"batch": np.array([1, 2]), "input_len": np.array([[1, 2, 3]]), "output_len": np.ones(4)}, "shapes"),
        ({"expert_imbalance": 1e300}, "expert_imbalance"),
        ({"mtp_tokens": 2**40}, "mtp draft tokens"),
    ],
)
def test_api_arguments_are_checked(kw, needle):
    args = {"batch": 1, "input_len": 8, "output_len": 8} | kw
    with pytest.raises(ConfigError) as info:
        estimate("deepseek-v3", "h100-sxm", tp=8, **args)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"rate": float("inf")}, "rate is inf"),
        ({"rate": object()}, "rate is <object"),
        ({"rate": 2.0, "output_len": float("nan")}, "output_len is nan"),
        ({"rate": 2.0, "input_len": ""}, "input_len is ''"),
        ({"concurrency": []}, "concurrency is []"),
        (
            {"rate": 2.0, "input_len": None, "output_len": None, "lengths": [1, 2]},
            "length distribution is [1, 2]",
        ),
        ({"rate": 2.0, "framework": []}, "framework is []"),
    ],
)
def test_serve_estimate_arguments_are_checked(kw, needle):
    from hwsim import serve_estimate

    args = {"input_len": 512, "output_len": 64} | kw
    with pytest.raises((ConfigError, UnknownNameError)) as info:
        serve_estimate("llama-2-7b", "h100-sxm", **args)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"batches": []}, "batches is []"),
        ({"tp": np.array([[1, 2], [4, 8]])}, "tp is array([[1, 2], [4, 8]])"),  # one line
        ({"slo_tpot_s": b"0.1"}, "slo_tpot_s is b'0.1'"),
        ({"per_arch": []}, "per_arch is []"),
    ],
)
def test_best_arguments_are_checked(kw, needle):
    from hwsim import best

    with pytest.raises(ConfigError) as info:
        best("llama-2-7b", ["h100-sxm"], **({"precisions": ["fp16"]} | kw))
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda h: h.pareto([1, 2, 3]), "frame is a list"),
        (lambda h: h.pareto(_designs(), y=("tpot_s",)), "y is ('tpot_s',)"),
        (lambda h: h.pareto(_designs(), y="tokens_per_j"), "no column 'tokens_per_j'"),
        (lambda h: h.pareto(_designs(), feasible_only=[1]), "feasible_only is [1]"),
        (lambda h: h.pareto(_designs(), label_columns=["nope"]), "label_columns is ['nope']"),
        (lambda h: h.serve("llama-2-7b", "h100-sxm", trace=[1, 2]), "trace is a list"),
        (lambda h: h.roofline("llama-2-7b", "h100-sxm", framework=[1]), "framework is [1]"),
    ],
)
def test_pareto_serve_and_roofline_arguments_are_checked(call, needle):
    import hwsim

    with pytest.raises(ConfigError) as info:
        call(hwsim)
    assert needle in str(info.value)


def _designs():
    import pandas as pd

    return pd.DataFrame({"device": ["a", "b"], "ttft_s": [1.0, 2.0], "tpot_s": [2.0, 1.0]})


def test_best_takes_an_array_of_batches_and_one_precision_name():
    from hwsim import best

    top = best("llama-2-7b", "h100-sxm", tp=1, precisions="fp16", batches=np.array([1, 8]), top=5)
    assert set(top["batch"]) <= {1, 8} and set(top["precision"]) == {"fp16"}


@pytest.mark.parametrize("arrival", [[1, 2], np.array([]), None])
def test_serve_refuses_an_arrival_that_is_not_a_name(arrival):
    from hwsim import serve

    with pytest.raises(ConfigError, match="arrival is"):
        serve("llama-2-7b", "h100-sxm", rate=2.0, num_requests=5, input_len=8, output_len=8, arrival=arrival)


def test_positive_number_takes_numpy_reals_and_names_what_it_expected():
    from workloads.errors import positive_number

    assert positive_number(np.float32(2.5), "rate") == 2.5 and positive_number(3, "x", limit=3) == 3.0
    for bad, needle in (
        (True, "expected a positive number"),
        (float("nan"), "x is nan"),
        (0, "x is 0"),
        ("1", "x is '1'"),
        (4, "up to 3"),
    ):
        with pytest.raises(ConfigError, match=needle):
            positive_number(bad, "x", limit=3)
    with pytest.raises(ConfigError, match=r"input_len is 0.5; expected a number >= 1 of tokens"):
        positive_number(0.5, "input_len", "tokens", minimum=1.0)


def test_integers_beyond_int64_are_refused_by_argument_in_one_short_line():
    """An integer beyond int64 given to the API (10**20, past a float's range at 10**400, past
    Python's 4,300-digit limit on writing one, or inside a list argument) is a ConfigError naming
    the argument, not an OverflowError from float(), a ValueError from repr or a NumPy TypeError
    (such an int is an object to ``np.isfinite``)."""
    import hwsim

    base = dict(batch=1, input_len=8, output_len=2)
    with pytest.raises(
        ConfigError, match=r"^expert_imbalance holds 100000000000000000000; expected integers"
    ):
        estimate("mixtral-8x7b", "h100-sxm", ep=2, expert_imbalance=10**20, **base)
    with pytest.raises(ConfigError, match=r"^batch holds an integer of more than 4,300 digits; expected"):
        estimate("llama-2-7b", "h100-sxm", **{**base, "batch": 10**5000})
    with pytest.raises(ConfigError, match=r"^kv_fraction holds 100000000000\.\.\.0000 \(401 characters\)"):
        hwsim.serve(
            "llama-2-7b", "h100-sxm", rate=1.0, num_requests=2, input_len=8, output_len=2, kv_fraction=10**400
        )
    with pytest.raises(ConfigError, match=r"^batches holds -9223372036854775809; expected integers"):
        hwsim.best("llama-2-7b", ["h100-sxm"], batches=[1, -(2**63) - 1])
    # the layer below takes such an imbalance as the float it is (not through NumPy) and bounds it
    from workloads.graph import build_ops
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    with pytest.raises(ConfigError, match=r"^expert_imbalance is 1e\+20; expected at most ep = 1$"):
        build_ops(
            load_model("mixtral-8x7b"),
            Quant.from_name("bf16"),
            phase="decode",
            batch=1,
            expert_imbalance=10**20,
        )
