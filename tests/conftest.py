"""Shared fixtures."""

import os
import signal
import sys
from types import SimpleNamespace

import pytest

import hwmodels  # noqa: F401  (registers the cost models)
from hwmodels.device_spec import load_device
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

SERVER_ROWS_GROUP = "server-rows"
SERVER_ROW_MODULES = {"test_serving_validation.py", "test_validation.py"}
"""Modules that read the simulated server rows: one worker runs them all, so the rows (about four
minutes of simulation) are simulated once and stay cached for the second module."""


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Workers for ``-n auto``: the CPUs this process may use (``roofline.cpus.usable_cpus``: its
    affinity within its cgroup's quota), where pytest-xdist would count every CPU of the host;
    pytest-xdist's own ``PYTEST_XDIST_AUTO_NUM_WORKERS``, where set, decides instead."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from roofline.cpus import usable_cpus

    return usable_cpus()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (pytest-xdist), a module's tests run on one worker, so
    its module fixtures are built once; the server-row modules share one worker and run first, being
    the longest. Without xdist this only moves those modules to the front."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            name = item.path.name
            group = SERVER_ROWS_GROUP if name in SERVER_ROW_MODULES else name
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.path.name not in SERVER_ROW_MODULES)


@pytest.fixture(scope="session")
def small_ops():
    """A decode step and a prefill of Llama-3.1-8B, fp16."""
    spec = load_model("llama-3.1-8b")
    q = Quant.from_name("fp16")
    return {
        "decode": build_ops(spec, q, phase="decode", batch=8, context=2048),
        "prefill": build_ops(spec, q, phase="prefill", batch=2, tokens=1024),
    }


@pytest.fixture(scope="session")
def a100():
    return load_device("a100-sxm-80gb")


CLI_LIMIT_S = 10
"""A command that runs longer in a test hangs."""


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli.hwsim(*args)``: (exit status, stdout, stderr) of ``hwsim ARGS`` run in process,
    stopped after ``CLI_LIMIT_S``; ``run_cli.refused(*args)``: the one ``hwsim: error:`` line of a
    command that must be refused (exit 2, no traceback)."""
    from hwsim.cli import main

    def hwsim(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["hwsim", *args])

        def hang(_signum, _frame):
            raise AssertionError(f"hwsim {' '.join(args)} ran past {CLI_LIMIT_S} s (a hang)")

        previous = signal.signal(signal.SIGALRM, hang)
        signal.alarm(CLI_LIMIT_S)
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        out, err = capsys.readouterr()
        return code, out, err

    def refused(*args: str) -> str:
        code, out, err = hwsim(*args)
        assert code == 2, (code, out, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert err.startswith("hwsim: error: "), err
        return err.strip()

    return SimpleNamespace(hwsim=hwsim, refused=refused)
