"""Findings of a fuzz campaign on the files hwsim reads and the devices it builds, pinned.

Model configs, device and system YAML: huge integer literals, deep nesting, a FIFO, ``/dev/zero``,
a file past the size cap and a NUL byte in a path; device numbers that pass a type check but break
a cost model (beyond float range, zero clocks, a fractional SIMD width, a peak of 1e-300); the
factors of ``DeviceSpec.scaled``; and system roles that name a device of the wrong kind. Each must
stop with one line, ``hwsim: error: ...``, naming the file or field, the value and what is expected
(exit status 2), never a traceback, a hang, or NaN in a result. The CLI runs in process through
``hwsim.cli.main``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

import workloads.files as files_module
from hwmodels.device_spec import load_device
from sim.offload import simulate_offload
from sim.system import load_system
from workloads.errors import ConfigError
from workloads.shipped import parse_yaml

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a 0/0 or an overflow is a finding


@contextlib.contextmanager
def memory_capped(extra_bytes: int) -> Iterator[None]:
    """Cap this process's address space at its present size plus ``extra_bytes`` while the block
    runs (where the OS allows it), so that reading an endless file is a MemoryError."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = pages * os.sysconf("SC_PAGE_SIZE") + extra_bytes
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def catalog_raw(name: str) -> dict:
    return yaml.safe_load(files("hwmodels.catalog").joinpath(f"{name}.yaml").read_text())


def device_file(tmp_path: Path, base: str, path: str, value) -> Path:
    """A copy of catalog device ``base`` with the field at dotted ``path`` set to ``value``."""
    raw = copy.deepcopy(catalog_raw(base))
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    out = tmp_path / f"{base}-edited.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


# ----- 1. the files themselves -----------------------------------------------------------------
def test_json_integer_past_the_digit_limit(run_cli, tmp_path):
    path = tmp_path / "bigint.json"
    path.write_text('{"num_hidden_layers": ' + "9" * 5000 + "}")
    err = run_cli.refused("estimate", "-m", str(path), "-d", "h100-sxm", "--json")
    assert "bigint.json: not valid JSON (an integer of more than 4,300 digits" in err


@pytest.mark.parametrize("command", ["simulate", "device"])
def test_yaml_integer_past_the_digit_limit(run_cli, tmp_path, command):
    path = tmp_path / "bigint.yaml"
    path.write_text("schema_version: " + "9" * 5000 + "\n")
    if command == "simulate":
        err = run_cli.refused("simulate", "-s", str(path), "-m", "llama-2-7b", "--json")
    else:
        err = run_cli.refused("estimate", "-m", "llama-2-7b", "-d", str(path), "--json")
    assert "bigint.yaml: not valid YAML (an integer of more than 4,300 digits" in err


def test_deep_nesting(run_cli, tmp_path):
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    err = run_cli.refused("simulate", "-s", str(deep_yaml), "-m", "llama-2-7b", "--json")
    assert "deep.yaml: not valid YAML (nested too deeply)" in err
    err = run_cli.refused("estimate", "-m", "llama-2-7b", "-d", str(deep_yaml), "--json")
    assert "deep.yaml: not valid YAML (nested too deeply)" in err
    err = run_cli.refused("estimate", "-m", str(deep_json), "-d", "h100-sxm", "--json")
    assert "deep.json: not valid JSON (nested too deeply)" in err


def test_a_key_given_twice_is_refused_not_read_as_the_last(run_cli, tmp_path):
    """YAML forbids a mapping key twice and PyYAML silently keeps the last: a system file with
    ``tp`` twice, a device file with two ``name``s, and a shipped table all say which key, where."""
    system = tmp_path / "twice.yaml"
    system.write_text("name: twice\ndevices:\n  - device: h100-sxm\n    tp: 8\n    tp: 4\n")
    err = run_cli.refused("simulate", "-s", str(system), "-m", "llama-2-7b", "--json")
    assert "twice.yaml: not valid YAML (key 'tp' given twice (first at line 4) at line 5)" in err
    device = tmp_path / "device.yaml"
    device.write_text(files("hwmodels.catalog").joinpath("h100-sxm.yaml").read_text() + "name: h100-copy\n")
    err = run_cli.refused("estimate", "-m", "llama-2-7b", "-d", str(device), "--json")
    assert "device.yaml: not valid YAML (key 'name' given twice" in err
    with pytest.raises(yaml.YAMLError, match="key 'b' given twice"):
        parse_yaml("a: 1\nb: 2\nb: 3\n")
    with pytest.raises(yaml.YAMLError, match="key 'a' given twice"):
        parse_yaml("{a: 1, a: 2}")
    # a merge key is still overridden by the mapping that merges it: what it is for
    assert parse_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")["use"] == {"x": 1, "y": 3}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_not_waited_on(run_cli, tmp_path):
    for name in ("fifo.json", "fifo.yaml"):
        os.mkfifo(tmp_path / name)
    fifo_json, fifo_yaml = str(tmp_path / "fifo.json"), str(tmp_path / "fifo.yaml")
    err = run_cli.refused("estimate", "-m", fifo_json, "-d", "h100-sxm")
    assert f"model config {fifo_json!r} is a FIFO (named pipe); expected a regular file" in err
    err = run_cli.refused("estimate", "-m", "llama-2-7b", "-d", fifo_yaml)
    assert f"device file {fifo_yaml!r} is a FIFO" in err
    err = run_cli.refused("simulate", "-s", fifo_yaml, "-m", "llama-2-7b")
    assert f"system file {fifo_yaml!r} is a FIFO" in err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_endless_device_file_is_refused_before_reading(run_cli):
    with memory_capped(2 * 2**30):  # a reader that reads /dev/zero fails here, not the machine
        err = run_cli.refused("estimate", "-m", "/dev/zero", "-d", "h100-sxm")
    assert "model config '/dev/zero' is a character device; expected a regular file" in err


def test_file_past_the_size_cap(run_cli, tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as handle:  # sparse: 65 MiB on paper, nothing on disk
        handle.truncate(65 * 2**20)
    err = run_cli.refused("estimate", "-m", str(big), "-d", "h100-sxm")
    assert f"model config {str(big)!r} is 68,157,440 bytes; expected at most 64 MiB" in err


def test_file_that_grows_past_its_size_is_cut_at_the_cap(monkeypatch, tmp_path):
    """A file whose size the OS does not report (``/proc``) is read up to the cap and refused past it."""
    big = tmp_path / "grown.yaml"
    big.write_text("a: " + "x" * 2000 + "\n")
    real_stat = os.stat
    monkeypatch.setattr(files_module, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(
        files_module.os, "stat", lambda p: os.stat_result((*real_stat(p)[:6], 0, *real_stat(p)[7:]))
    )
    with pytest.raises(
        ConfigError, match=r"grown.yaml' is more than 1,000 bytes; expected at most 1,000 bytes"
    ):
        files_module.read_yaml_mapping(big, "device file")


def test_nul_byte_in_a_path():
    from hwsim import load_model

    with pytest.raises(ConfigError, match=r"model config path 'x\\x00.json' holds a NUL byte"):
        load_model("x\x00.json")
    with pytest.raises(ConfigError, match=r"system file path 'x\\x00.yaml' holds a NUL byte"):
        load_system("x\x00.yaml")
    with pytest.raises(ConfigError, match=r"device file path 'x\\x00.yaml' holds a NUL byte"):
        load_device("x\x00.yaml")


def test_nul_byte_in_a_path_on_the_command_line(run_cli):
    err = run_cli.refused("estimate", "-m", "x\x00.json", "-d", "h100-sxm")
    assert "holds a NUL byte" in err


# ----- 2. device numbers that pass a type check but break a model ---------------------------------
DEVICE_CASES = [
    # (base device, field, value, model, expected in the message)
    ("h100-sxm", "memory.bw_GBps", 2**1100, "llama-2-7b", "memory.bw_GBps is 1358298529049385... (332 digits)"),
    ("sd8g3-npu", "npu.chunk_tokens.value", 2**1100, "llama-2-7b", "npu.chunk_tokens.value is 13582985"),
    ("epyc-9654", "cpu.simd_bits", 0.5, "llama-2-7b", "cpu.simd_bits is 0.5; expected a multiple of 32"),
    ("epyc-9654", "cpu.simd_bits", 100, "llama-2-7b", "cpu.simd_bits is 100; expected a multiple of 32"),
    ("epyc-9654", "cpu.cores", 0.5, "llama-2-7b", "cpu.cores is 0.5; expected an integer from 1"),
    ("wse-3", "wafer.flop_per_cycle.value", 0, "llama-3.2-1b", "wafer.flop_per_cycle.value is 0; expected a positive"),
    ("wse-3", "wafer.clock_GHz.value", -1.0, "llama-3.2-1b", "wafer.clock_GHz.value is -1.0; expected a positive"),
    ("wse-3", "wafer.static_power_fraction.value", 2.0, "llama-3.2-1b", "expected a share in [0, 1]"),
    ("h100-sxm", "gpu.boost_clock_GHz.value", 0, "llama-2-7b", "gpu.boost_clock_GHz.value is 0; expected a positive"),
    ("h100-sxm", "gpu.sm_count.value", 0.5, "llama-2-7b", "gpu.sm_count.value is 0.5; expected an integer from 1"),
    ("sail-n1", "sail.dram_efficiency.value", 0, "llama-2-7b", "sail.dram_efficiency.value is 0; expected a share in (0, 1]"),
    ("h100-sxm", "compute.peak_TFLOPs.fp16", 1e-300, "llama-2-7b", "peak_TFLOPs.fp16 is 1e-300; expected a positive number from 0.001 to 1e+09 TFLOPS"),
    ("h100-sxm", "memory.bw_GBps", 1e-300, "llama-2-7b", "memory.bw_GBps is 1e-300; expected a positive number from 0.001 to 1e+09 GB/s"),
    ("h100-sxm", "memory.bw_GBps", 1e308, "llama-2-7b", "memory.bw_GBps is 1e+308"),
    ("h100-sxm", "power.tdp_W", 1e308, "llama-2-7b", "power.tdp_W is 1e+308"),
    ("h100-sxm", "price.usd", 5e-324, "llama-2-7b", "price.usd is 5e-324"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("base", "field", "value", "model", "needle"),
    DEVICE_CASES,
    ids=[f"{c[0]}:{c[1]}={c[2] if len(repr(c[2])) < 20 else 'huge'}" for c in DEVICE_CASES],
)
def test_device_number_out_of_span(run_cli, tmp_path, base, field, value, model, needle):
    path = device_file(tmp_path, base, field, value)
    err = run_cli.refused("estimate", "-m", model, "-d", str(path), "--json")
    assert str(path) in err and needle in err, err


def test_edited_device_inside_its_spans_still_estimates(run_cli, tmp_path):
    """The spans refuse nothing real: the smallest peak and bandwidth they take give finite results."""
    path = device_file(tmp_path, "h100-sxm", "memory.bw_GBps", 0.001)
    raw = yaml.safe_load(path.read_text())
    raw["compute"]["peak_TFLOPs"] = {"fp16": 0.001}
    del raw["power"][
        "sustained_gemm"
    ]  # its measured rates name formats, and exceed peaks, the edit took away
    path.write_text(yaml.safe_dump(raw))
    code, out, err = run_cli.hwsim("estimate", "-m", "llama-3.2-1b", "-d", str(path), "--json")
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out


# ----- 3. DeviceSpec.scaled ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"bw": 0}, "DeviceSpec.scaled: bw is 0; expected a finite factor > 0"),
        ({"bw": -1}, "DeviceSpec.scaled: bw is -1; expected a finite factor > 0"),
        ({"bw": math.nan}, "DeviceSpec.scaled: bw is nan; expected a finite factor > 0"),
        ({"compute": -1}, "DeviceSpec.scaled: compute is -1; expected a finite factor > 0"),
        ({"compute": True}, "DeviceSpec.scaled: compute is True"),
        ({"compute": 1e-320}, "h100-sxm.scaled(bw=1.0, compute=1e-320): compute.peak_TFLOPs."),
        ({"bw": 1e308, "compute": 1e308}, "memory.bw_GBps would be inf; expected a positive number"),
    ],
)
def test_scaled_factors_are_checked(kw, needle):
    with pytest.raises(ConfigError) as info:
        load_device("h100-sxm").scaled(**kw)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_scaled_within_spans_still_works():
    dev = load_device("h100-sxm")
    assert dev.scaled(bw=2.0).memory.bw_bytes_per_s == 2.0 * dev.memory.bw_bytes_per_s
    assert dev.scaled(compute=0.5).peak("fp16") == 0.5 * dev.peak("fp16")


# ----- 4. system roles ----------------------------------------------------------------------------------
def system_file(tmp_path: Path, base: str, role: str, device: str) -> Path:
    raw = yaml.safe_load(files("sim.systems").joinpath(f"{base}.yaml").read_text())
    raw["devices"][role]["device"] = device
    out = tmp_path / f"{base}-{role}.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


@pytest.mark.parametrize(
    ("base", "role", "device", "needle"),
    [
        ("t4-flexgen", "disk", "host-ddr5", "devices.disk.device is 'host-ddr5' (arch host); the disk role needs storage"),
        ("a6000-offload", "host", "nvme-ssd", "devices.host.device is 'nvme-ssd' (arch ssd); the host role needs host memory"),
        ("1xa100", "gpu", "pcie-gen4-x16", "devices.gpu.device is 'pcie-gen4-x16' (arch link); the gpu role needs"),
    ],
)  # fmt: skip
def test_system_role_of_the_wrong_kind(run_cli, tmp_path, base, role, device, needle):
    path = system_file(tmp_path, base, role, device)
    args = (
        "simulate",
        "-s",
        str(path),
        "-m",
        "opt-6.7b",
        "-b",
        "8",
        "--input-len",
        "16",
        "--output-len",
        "3",
    )
    err = run_cli.refused(*args, "--json")
    assert str(path) in err and needle in err, err


def test_system_built_in_python_is_checked_before_an_offloaded_run():
    system = load_system("t4-flexgen")
    wrong = replace(system, devices={**system.devices, "disk": (load_device("host-ddr5"), 1)})
    with pytest.raises(ConfigError, match=r"devices.disk.device is 'host-ddr5' \(arch host\); the disk role"):
        simulate_offload(wrong, "opt-6.7b", batch=8, input_len=16, output_len=3)


def test_shipped_systems_pass_the_role_checks():
    from sim.system import system_names

    for name in system_names():
        load_system(name)  # grace (a cpu) as host, nvme-ssd as disk
