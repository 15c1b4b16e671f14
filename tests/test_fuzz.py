"""Fuzz: a few thousand seeded bad inputs at every door hwsim has.

CLI arguments (click's ``CliRunner``, in process) for estimate, simulate, serve, roofline,
validate, devices and models; HuggingFace configs with random field mutations; system and
device YAML with wrong types, missing keys, NaN, huge integers and non-UTF-8 bytes; and
arrays with NaN, inf, negative, empty and mismatched shapes for ``roofline.estimate.estimate``.

Every case must end in a result or in one of hwsim's errors (or a click usage error), with a
one-line message; a traceback of any other exception, a NaN or inf in the output, or a case
that runs past ``CASE_LIMIT_S`` fails the test. Cases are seeded, so a failure repeats: the
message names the case. The whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import signal
import traceback
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from hwsim.cli import cli
from workloads.errors import HwsimError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow or a 0/0 is a finding

SEED = 20261203
CASE_LIMIT_S = 10.0
"""A case that takes longer hangs (a normal one takes milliseconds; a roofline chart about 2 s)."""

N_ESTIMATE, N_SIMULATE, N_SERVE, N_ROOFLINE, N_VALIDATE, N_LISTINGS = 900, 300, 250, 12, 40, 40
N_COMPARE, N_DESIGNS, N_SWEEPS = 60, 30, 60
N_CONFIGS, N_SYSTEMS, N_DEVICES, N_API = 700, 450, 250, 700
SHOW = 10
"""Failing cases a failure message lists."""


class Hang(BaseException):
    """A case ran past ``CASE_LIMIT_S`` (a BaseException, so that no ``except Exception`` in the
    code under test, nor CliRunner, swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` after ``seconds``, and every second after that until the block ends."""

    def on_alarm(_signum, _frame):
        raise Hang(f"ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


NONFINITE_WORD = re.compile(r"(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])", re.IGNORECASE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} in JSON output")


def nonfinite_in(obj: Any) -> bool:
    """Whether a parsed result holds a NaN or an infinity anywhere."""
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind in "fc" and not np.all(np.isfinite(obj))
    if isinstance(obj, np.generic):
        return nonfinite_in(obj.item())
    if isinstance(obj, dict):
        return any(nonfinite_in(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(nonfinite_in(v) for v in obj)
    return False


def check_error(exc: BaseException) -> str | None:
    """None for an accepted user error (one line), else what is wrong."""
    if isinstance(exc, HwsimError):
        msg = str(exc)
        if not msg.strip() or "\n" in msg.strip():
            return f"error message is not one line: {msg!r}"
        return None
    return "traceback:\n" + "".join(traceback.format_exception(exc)[-6:])


# ----- files the cases point at ------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """Bad files: empty, malformed, not UTF-8, a file where a folder should be."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "empty.json").write_text("")
    (d / "empty.yaml").write_text("")
    (d / "malformed.json").write_text('{"hidden_size": 4096,')
    (d / "malformed.yaml").write_text("devices: [gpu\n  - : :\n")
    (d / "latin1.json").write_bytes(b'{"model_type": "llama", "name": "caf\xe9"}')
    (d / "latin1.yaml").write_bytes(b"schema_version: 1\nname: caf\xe9\n")
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "scalar.yaml").write_text("42\n")
    (d / "afile").write_text("not a folder")
    (d / "folder.json").mkdir()
    (d / "trace.csv").write_text("arrival_s,input_len,output_len\n0,nan,4\n")
    (d / "lengths.csv").write_text("input_len,output_len\n-3,0\n")
    return d


BAD_INTS = [
    "0",
    "-1",
    "-7",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e300",
    "",
    "eight",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551617",
    "-9223372036854775809",
    str(10**30),
]
EDGE_INTS = ["1", "2", "3", "4", "8", "16", "64", "128", "100000", "2147483647"]
BAD_FLOATS = ["0", "-1", "nan", "inf", "-inf", "1e-300", "1e300", "", "abc", "1e309", "-0"]
EDGE_FLOATS = ["0.5", "1", "2", "10", "1000"]
MODELS = ["llama-2-7b", "qwen1.5-1.8b", "mixtral-8x7b", "opt-6.7b", "deepseek-v3", "gpt-oss-20b"]
DEVICES = [
    "h100-sxm",
    "a100-sxm-80gb",
    "v100-sxm2-32gb",
    "h100-pcie",
    "gb200",
    "t4",
    "epyc-9654",
    "host-ddr5",
    "nvme-ssd",
    "wse-3",
    "sail-n1",
    "sd8g3-npu",
]
PRECISIONS = [
    "fp16",
    "bf16",
    "fp8",
    "fp8-kv16",
    "int8",
    "int4",
    "fp4",
    "w3a16g64",
    "q4_k_m",
    "w0a16",
    "w99a4",
]
FRAMEWORKS = ["vllm", "sglang", "tensorrt-llm", "llama.cpp", "nope"]


def bad_names(scratch: Path) -> list[str]:
    return [
        "",
        " ",
        "x" * 300,
        "h100",
        "llama",
        "é",
        "nonexistent.json",
        "nonexistent.yaml",
        str(scratch / "empty.json"),
        str(scratch / "malformed.json"),
        str(scratch / "latin1.json"),
        str(scratch / "list.json"),
        str(scratch / "folder.json"),
        str(scratch / "afile" / "config.json"),
        str(scratch / "empty.yaml"),
        str(scratch / "malformed.yaml"),
        str(scratch / "latin1.yaml"),
        str(scratch / "scalar.yaml"),
        str(scratch / "afile" / "x.yaml"),
        "x" * 300 + ".json",
        "x" * 300 + ".yaml",
    ]


def bad_out_paths(scratch: Path, suffix: str) -> list[str]:
    return [
        "",
        ".",
        str(scratch),
        str(scratch / "afile" / f"x{suffix}"),
        str(scratch / ("y" * 300 + suffix)),
        str(scratch / "folder.json"),
    ]


# ----- CLI ---------------------------------------------------------------------------------
def run_cli(args: list[str]) -> str | None:
    """Invoke the CLI in process; None when it ends well, else what went wrong."""
    runner = CliRunner()
    with time_limit(CASE_LIMIT_S):
        try:
            result = runner.invoke(cli, args, catch_exceptions=True)
        except Hang as exc:
            return f"hang: {exc}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return check_error(result.exception)
    if "Traceback" in result.stderr:
        return "traceback on stderr:\n" + result.stderr[-2000:]
    if result.exit_code != 0:
        return None if result.stderr.strip() else f"exit {result.exit_code} without a message"
    out = result.stdout
    if "-h" in args or "--help" in args:
        return None if "Usage" in out else "help without a usage line"
    if "--json" in args:
        try:
            doc = json.loads(out, parse_constant=_reject_constant)
        except ValueError as exc:
            return f"invalid JSON on stdout ({exc}): {out[:300]!r}"
        if nonfinite_in(doc):
            return "non-finite number in JSON"
    elif NONFINITE_WORD.search(out):
        return f"non-finite number in text output: {NONFINITE_WORD.search(out).group(0)!r}"
    return None


def mutate_args(
    rng: np.random.Generator,
    base: dict[str, str],
    pools: dict[str, list[str]],
    flags: list[str],
    keep: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """One or two mutations of a valid argument set: mostly a bad or edge value, else a dropped
    option (never one of ``keep``), a repeated option, an unknown option or a flag."""
    opts = dict(base)
    extra: list[str] = []
    for _ in range(int(rng.integers(1, 3))):
        op = rng.choice(["value", "drop", "repeat", "unknown", "flag"], p=[0.74, 0.08, 0.06, 0.02, 0.1])
        key = str(rng.choice(list(pools)))
        if op == "value":
            opts[key] = str(rng.choice(pools[key]))
        elif op == "drop" and key in opts and key not in keep:
            del opts[key]
        elif op == "repeat":
            extra += [key, str(rng.choice(pools[key]))]
        elif op == "unknown":
            extra += ["--no-such-option", "1"]
        elif op == "flag" and flags:
            extra.append(str(rng.choice(flags)))
    args = [a for k, v in opts.items() for a in (k, v)] + extra
    if rng.random() < 0.8:
        args.append("--json")
    return args


def ints(*good: str) -> list[str]:
    return [*BAD_INTS, *EDGE_INTS, *good]


def floats(*good: str) -> list[str]:
    return [*BAD_FLOATS, *EDGE_FLOATS, *good]


def cli_cases(scratch: Path) -> Iterator[tuple[str, list[str]]]:
    rng = np.random.default_rng(SEED)
    names = bad_names(scratch)
    workload = {
        "--model": MODELS + names,
        "--device": DEVICES + names,
        "--batch": ints(),
        "--input-len": ints("4096", "131072"),
        "--output-len": ints("4096"),
        "--precision": PRECISIONS + ["", "nan", "x" * 300],
        "--tp": ints(),
        "--pp": ints(),
        "--ep": ints(),
        "--n-devices": ints(),
        "--framework": FRAMEWORKS + [""],
    }
    est_pools = dict(
        workload,
        **{
            "--expert-imbalance": floats(),
            "--mtp": ints(),
            "--mtp-acceptance": floats("0.9"),
            "--price-basis": ["tco", "cloud", "capex", ""],
        },
    )
    est_base = {"--model": "llama-2-7b", "--device": "h100-sxm", "--input-len": "128", "--output-len": "16"}
    for i in range(N_ESTIMATE):
        base = dict(est_base, **{"--model": MODELS[i % len(MODELS)], "--device": DEVICES[i % 4]})
        yield f"estimate#{i}", ["estimate", *mutate_args(rng, base, est_pools, ["--attention-dp"])]

    systems = ["1xa100", "8xh100-nvlink", "t4-flexgen", "2x8xh100-ib", "gb200-nvl72", "a6000-offload"]
    sim_pools = {
        "--system": systems + names + ["nope"],
        "--model": ["qwen1.5-1.8b", "opt-6.7b", "llama-2-7b"] + names,
        "--batch": ints(),
        "--input-len": ints(),
        "--output-len": ints(),
        "--precision": PRECISIONS,
        "--framework": FRAMEWORKS,
        "--tp": ints(),
        "--pp": ints(),
        "--timeline": bad_out_paths(scratch, ".png"),
    }
    for i in range(N_SIMULATE):
        base = {
            "--system": systems[i % len(systems)],
            "--model": "opt-6.7b" if "offload" in systems[i % len(systems)] else "qwen1.5-1.8b",
            "--batch": "2",
            "--input-len": "32",
            "--output-len": "3",
        }
        yield f"simulate#{i}", ["simulate", *mutate_args(rng, base, sim_pools, [])]

    serve_pools = {
        "--model": ["qwen1.5-1.8b", "llama-3.1-8b"] + names,
        "--device": DEVICES[:6] + names,
        "--n-devices": ints(),
        "--tp": ints(),
        "--pp": ints(),
        "--ep": ints(),
        "--dp": ints(),
        "--precision": PRECISIONS,
        "--framework": FRAMEWORKS + ["vllm-v0"],
        "--concurrency": ints(),
        "--rate": floats(),
        "--arrival": ["poisson", "gamma", "x"],
        "--cv": floats(),
        "--input-len": [*BAD_INTS, "1", "2", "64", "512"],  # small: a long run is no finding
        "--output-len": [*BAD_INTS, "1", "2", "16"],
        "--lengths": ["sharegpt", "arxiv-summarization", "nope", str(scratch / "lengths.csv")] + names,
        "--trace": [str(scratch / "trace.csv"), str(scratch / "afile")] + names,
        "--num-requests": [*BAD_INTS, "1", "2", "3"],
        "--seed": ints(),
        "--max-batch": ints(),
        "--max-batched-tokens": ints(),
        "--mode": ["agg", "disagg", "x"],
        "--prefill-workers": ints(),
        "--decode-tp": ints(),
        "--kv-link-gbps": floats(),
        "--slo-ttft": floats(),
        "--slo-tpot": floats(),
        "--expert-imbalance": floats(),
        "--timeline": bad_out_paths(scratch, ".png"),
    }
    for i in range(N_SERVE):
        base = {
            "--model": "qwen1.5-1.8b",
            "--device": "h100-sxm",
            "--rate": "20",
            "--input-len": "64",
            "--output-len": "8",
            "--num-requests": "6",
        }
        args = mutate_args(rng, base, serve_pools, ["--find-capacity"], keep={"--num-requests"})
        yield f"serve#{i}", ["serve", *args]

    roof_pools = {
        "--out": bad_out_paths(scratch, ".png"),
        "--batch": BAD_INTS,
        "--input-len": BAD_INTS,
        "--tp": BAD_INTS,
        "--model": names,
        "--device": names + ["host-ddr5", "nvme-ssd"],
        "--precision": ["w0a16", "", "x" * 300],
    }
    for i in range(N_ROOFLINE):
        base = {
            "--model": "qwen1.5-1.8b",
            "--device": "h100-sxm",
            "--out": str(scratch / "new" / f"r{i}.png"),
        }
        args = mutate_args(rng, base, roof_pools, []) if i else [a for kv in base.items() for a in kv]
        yield f"roofline#{i}", ["roofline", *args]  # one chart drawn (2 s), the rest refused early

    measured = files("hwmodels.validation").joinpath("measured.csv").read_text().splitlines()
    quick = [r for r in measured[1:] if ",server," not in r and ",offline," not in r]  # no simulation
    for i in range(N_VALIDATE):
        rows = [measured[0]] + [quick[int(j)] for j in rng.integers(0, len(quick), size=3)]
        rows = [mutate_csv_row(rng, r) if k and rng.random() < 0.7 else r for k, r in enumerate(rows)]
        if rng.random() < 0.2:
            rows[0] = rows[0].replace("value", "valu")
        path = scratch / f"measured{i}.csv"
        path.write_text("\n".join(rows) + "\n")
        args = ["validate", "--data", str(path)]
        if rng.random() < 0.3:
            args = ["validate", "--data", str(rng.choice(names + [str(scratch / "folder.json")]))]
        if rng.random() < 0.2:
            args += ["--plot", str(rng.choice(bad_out_paths(scratch, ".png")))]
        yield f"validate#{i}", args + (["--json"] if rng.random() < 0.7 else [])

    compare_pools = dict(workload, **{"-o": bad_out_paths(scratch, ".png")})
    del compare_pools["--device"], compare_pools["--n-devices"]
    for i in range(N_COMPARE):
        devices = [str(d) for d in rng.choice(DEVICES + names, size=int(rng.integers(0, 4)))]
        args = mutate_args(rng, {"--model": "llama-2-7b", "--batch": "4"}, compare_pools, [])
        yield f"compare#{i}", ["compare", *[a for d in devices for a in ("-d", d)], *args]

    design_pools = dict(
        compare_pools,
        **{
            "--devices": DEVICES + names + ["gpu", "datacenter-gpu", "all", ""],
            "--slo-ttft": floats(),
            "--slo-tpot": floats(),
            "--objective": ["tokens_per_j", "tpot_s", "x", ""],
            "--top": ints(),
            "--x": ["ttft_s", "nope", ""],
            "--z": ["tokens_per_j", "x"],
        },
    )
    for i in range(2 * N_DESIGNS):
        cmd = ("best", "pareto")[i % 2]
        pools = {k: v for k, v in design_pools.items() if cmd == "pareto" or k not in ("--x", "--z", "-o")}
        base = {
            "--model": "llama-2-7b",
            "--devices": "h100-sxm",
            "--batch": "8",
            "--tp": "1",
            "--precision": "fp16",
        }
        args = mutate_args(rng, base, pools, ["--per-arch"] if cmd == "best" else [])
        yield f"{cmd}#{i}", [cmd, *args]

    for i in range(N_SWEEPS):
        spec: dict[str, Any] = {"models": ["llama-2-7b"], "devices": ["h100-sxm"], "batch": [1, 8]}
        for _ in range(int(rng.integers(1, 4))):
            key = str(rng.choice(list(SPEC_VALUES)))
            spec[key] = SPEC_VALUES[key][int(rng.integers(0, len(SPEC_VALUES[key])))]
        path = scratch / f"spec{i}.yaml"
        path.write_text(yaml.safe_dump(spec))
        out = (
            str(scratch / f"sweep{i}.parquet")
            if rng.random() < 0.8
            else str(rng.choice(bad_out_paths(scratch, ".pq")))
        )
        yield f"sweep#{i}", ["sweep", str(path), "--out", out, "--json"]
    for path in [*names, str(scratch / "folder.json")]:
        yield f"sweep-spec {path[-40:]!r}", ["sweep", path]

    bad_folders = ["", " ", str(scratch / "afile"), str(scratch / "afile" / "x"), "y" * 300]
    for folder in bad_folders:  # refused before any work: a good folder would run the whole job
        yield f"report --out {folder!r}", ["report", "--out", folder, "--quick"]
        yield f"calibrate --out {folder!r}", ["calibrate", "--part", "energy", "--out", folder]

    for i in range(N_LISTINGS):
        cmd = ["models", "devices", "frameworks"][i % 3]
        junk = [
            str(rng.choice(["--json", "--x", "extra", "-h", "--json=1", ""]))
            for _ in range(int(rng.integers(0, 3)))
        ]
        yield f"{cmd}#{i}", [cmd, *junk]


SPEC_VALUES: dict[str, list[Any]] = {
    "models": ["llama-2-7b", [], [""], "x" * 300, [1], None, {"a": 1}],
    "devices": ["all", "gpu", [], ["nope"], 3, None],
    "precision": ["int4", [None], ["x"], 5],
    "tp": [
        0,
        -1,
        "two",
        [1.5],
        float("nan"),
        2**70,
        {"start": 8, "stop": 1},
        {"start": 1, "stop": 8, "num": 0},
    ],
    "batch": [{"start": 0, "stop": 10, "num": 3, "log": True}, {"start": 1, "stop": 1e30, "num": 3}, -5, []],
    "input_len": [0, 1e300, "x", {"start": 1, "stop": 10, "num": -3}],
    "output_len": [1, 0, [2**63]],
    "rate": [0, -1, float("inf"), "x"],
    "concurrency": [0, -2],
    "sampling": [{"method": "lhs", "n": 0}, {"method": "x"}, "grid", {"method": "random", "n": 10**12}],
    "lengths": [["nope"], ["sharegpt"]],
    "systems": [["nope"], ["1xa100"]],
    "price_basis": ["x"],
    "slo_ttft": [-1, "x"],
    "num_requests": [0, -1, 10**12],
    "n_devices": [0, 3, "x"],
    "framework": ["nope", None],
    "unknown_key": [1],
}
"""Bad or edge values of sweep-spec keys; a spec takes one to three of them."""


def mutate_csv_row(rng: np.random.Generator, row: str) -> str:
    cells = row.split(",")
    k = int(rng.integers(0, len(cells)))
    cells[k] = str(rng.choice(["", "nan", "-1", "0", "inf", "1e300", "x" * 50, "h100", "9" * 30]))
    return ",".join(cells)


def test_cli_fuzz(scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    failures = []
    for name, args in cli_cases(scratch):
        why = run_cli(args)
        if why:
            failures.append(
                f"{name}: hwsim {' '.join(repr(a) if ' ' in a or not a else a for a in args)}\n  {why}"
            )
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:SHOW])


# ----- model configs -----------------------------------------------------------------------
CONFIG_VALUES: list[Any] = [
    None,
    0,
    -1,
    -64,
    1,
    3,
    1.5,
    float("nan"),
    float("inf"),
    10**12,
    2**63,
    2**70,
    "abc",
    "",
    [],
    {},
    [1, 2],
    True,
    False,
]
PRESET_FILES = ["llama-2-7b", "mixtral-8x7b", "deepseek-v3", "gpt-oss-20b", "qwen3.5-397b-a17b", "opt-6.7b"]


def preset_config(name: str) -> dict[str, Any]:
    from workloads.model_spec import preset_index

    entry = preset_index()[name]
    return json.loads(files("workloads.presets").joinpath(entry["file"]).read_text())


def mutate_tree(rng: np.random.Generator, tree: Any, values: list[Any]) -> Any:
    """A copy of a parsed JSON/YAML tree with one to three leaves or keys changed."""
    tree = copy.deepcopy(tree)
    for _ in range(int(rng.integers(1, 4))):
        paths = list(_paths(tree))
        if not paths:
            break
        path = paths[int(rng.integers(0, len(paths)))]
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if isinstance(parent, dict) and rng.random() < 0.25:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(values[int(rng.integers(0, len(values)))])
    return tree


def _paths(tree: Any, prefix: tuple = ()) -> Iterator[tuple]:
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k))


def check_call(fn: Callable[[], Any]) -> str | None:
    """Run one API case under the time limit; None when it ends well or with a user error."""
    try:
        with time_limit(CASE_LIMIT_S):
            out = fn()
    except Hang as exc:
        return f"hang: {exc}"
    except Exception as exc:  # noqa: BLE001 - classifying is the point
        return check_error(exc)
    if out is not None and nonfinite_in(out):
        return "non-finite number in the result"
    return None


def finite_estimate(est) -> dict[str, Any]:
    """The numbers of an ``Estimate`` that must be finite. NaN is allowed where it means "none" by
    design: the $ figures of a device with no price on the basis (all of them), and a range
    (``_low``, ``_high``) without measured rows behind it; an infinity never is."""
    out = {}
    for k, v in vars(est).items():
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            continue
        if np.any(np.isinf(v)):
            out[k] = v
        elif k.endswith(("_low", "_high")) or ("usd" in k and np.all(np.isnan(v))):
            continue
        else:
            out[k] = v
    return out


def test_config_fuzz(tmp_path):
    from roofline.estimate import estimate
    from workloads.model_spec import load_model

    rng = np.random.default_rng(SEED + 1)
    bases = {n: preset_config(n) for n in PRESET_FILES}
    failures = []
    for i in range(N_CONFIGS):
        name = PRESET_FILES[i % len(PRESET_FILES)]
        path = tmp_path / f"m{i}" / "config.json"
        path.parent.mkdir()
        if i % 50 == 7:
            path.write_bytes(json.dumps(bases[name]).encode()[:-40] + b"\xff\xfe")
        else:
            path.write_text(json.dumps(mutate_tree(rng, bases[name], CONFIG_VALUES)))

        def case(path=path):
            spec = load_model(path)
            spec.n_params()
            est = estimate(spec, "h100-sxm", batch=2, input_len=64, output_len=4, precision="fp8")
            return finite_estimate(est)

        why = check_call(case)
        if why:
            failures.append(f"config#{i} ({name}): {path.read_bytes()[:2000]!r}\n  {why}")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:SHOW])


# ----- system and device YAML --------------------------------------------------------------
YAML_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    2**63,
    2**70,
    "eight",
    "",
    [],
    {},
    [1, 2],
    True,
    "gpu",
    "h100-sxm",
]


def test_system_fuzz(tmp_path):
    from sim.simulate import simulate
    from sim.system import load_system

    rng = np.random.default_rng(SEED + 2)
    folder = files("sim.systems")
    bases = {
        n: yaml.safe_load(folder.joinpath(f"{n}.yaml").read_text())
        for n in ("1xa100", "8xh100-nvlink", "t4-flexgen", "2x8xh100-ib")
    }
    names = list(bases)
    failures = []
    for i in range(N_SYSTEMS):
        name = names[i % len(names)]
        path = tmp_path / f"s{i}.yaml"
        text = yaml.safe_dump(mutate_tree(rng, bases[name], YAML_VALUES))
        if i % 40 == 3:
            path.write_bytes(text.encode()[: len(text) // 2] + b"\xff\xfe\x00")
        elif i % 40 == 5:
            path.write_text(text[: int(rng.integers(0, len(text)))])
        else:
            path.write_text(text)

        def case(path=path, name=name):
            system = load_system(path)
            model = "opt-6.7b" if name == "t4-flexgen" else "qwen1.5-1.8b"
            res = simulate(system, model, batch=2, input_len=16, output_len=3)
            return res.to_dict()

        why = check_call(case)
        if why:
            failures.append(f"system#{i} ({name}): {path.read_bytes()[:1500]!r}\n  {why}")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:SHOW])


def test_device_fuzz(tmp_path):
    from hwmodels.device_spec import load_device
    from roofline.estimate import estimate

    rng = np.random.default_rng(SEED + 3)
    catalog = files("hwmodels.catalog")
    bases = {
        n: yaml.safe_load(catalog.joinpath(f"{n}.yaml").read_text())
        for n in ("h100-sxm", "a100-sxm-80gb", "epyc-9654")
    }
    names = list(bases)
    failures = []
    for i in range(N_DEVICES):
        name = names[i % len(names)]
        path = tmp_path / f"d{i}.yaml"
        text = yaml.safe_dump(mutate_tree(rng, bases[name], YAML_VALUES))
        if i % 40 == 3:
            path.write_bytes(text.encode()[:100] + b"\xff\xfe\x00")
        else:
            path.write_text(text)

        def case(path=path):
            dev = load_device(path)
            return finite_estimate(estimate("llama-2-7b", dev, batch=2, input_len=64, output_len=4))

        why = check_call(case)
        if why:
            failures.append(f"device#{i} ({name}): {path.read_text(errors='replace')[:1500]!r}\n  {why}")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:SHOW])


# ----- the Python API ----------------------------------------------------------------------
API_ARRAYS: list[Any] = [
    np.nan,
    np.inf,
    -np.inf,
    -1,
    0,
    1e300,
    2**63,
    1.5,
    np.array([]),
    np.array([1, np.nan]),
    np.array([[1, 2, 3]]),
    np.array([1, 2]),
    np.array([[1], [2], [3], [4]]),
    np.ones((2, 2, 2)),
    np.array(["8"]),
    [1, -2],
    [],
    "8",
    None,
    True,
    np.array([1, 2**40]),
]
API_OTHER: dict[str, list[Any]] = {
    "tp": [0, -1, 1.5, None, "2", 3, 2**40, np.nan, True],
    "pp": [0, -3, 2.0, None, 1000],
    "ep": [0, 3, 2**31],
    "n_devices": [0, -8, 1.5, "8", 3, 2**63],
    "precision": [None, "", 8, "fp99", "w0a16", np.nan, "fp8"],
    "economics": ["capex", 3, None, "cloud"],
    "framework": [3, "", "nope", None, ["vllm"]],
    "expert_imbalance": [0.5, np.nan, -1, np.inf, "x"],
    "mtp_tokens": [-1, 2**40, 1.5],
    "mtp_acceptance": [np.nan, 2.0, -0.1],
    "link": ["nvlink", "x", 3],
    "attention_dp": [1, "yes"],
}


def test_api_fuzz():
    from roofline.estimate import estimate

    rng = np.random.default_rng(SEED + 4)
    failures = []
    models = ["llama-2-7b", "mixtral-8x7b", "qwen1.5-1.8b"]
    devices = ["h100-sxm", "a100-sxm-80gb", "epyc-9654", "gb200"]
    for i in range(N_API):
        kw: dict[str, Any] = {"batch": 4, "input_len": 128, "output_len": 16}
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.6:
                key = str(rng.choice(["batch", "input_len", "output_len"]))
                kw[key] = copy.deepcopy(API_ARRAYS[int(rng.integers(0, len(API_ARRAYS)))])
            else:
                key = str(rng.choice(list(API_OTHER)))
                kw[key] = API_OTHER[key][int(rng.integers(0, len(API_OTHER[key])))]
        model, device = models[i % len(models)], devices[i % len(devices)]

        def case(kw=kw, model=model, device=device):
            return finite_estimate(estimate(model, device, **kw))

        why = check_call(case)
        if why:
            failures.append(f"api#{i}: estimate({model!r}, {device!r}, **{kw!r})\n  {why}")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures[:SHOW])
