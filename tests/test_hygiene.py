"""House rules the test command enforces: ruff lint and format, the one-way import layers."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_ruff_lint():
    r = run(sys.executable, "-m", "ruff", "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format():
    r = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_layers():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not installed: pip install -e '.[test]'")
    r = run(exe)
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_hwsim_is_light():
    code = "import sys, hwsim; bad = [m for m in ('matplotlib', 'torch', 'pandas', 'scipy') if m in sys.modules]; print(bad)"
    r = run(sys.executable, "-c", code)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
