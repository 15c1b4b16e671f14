"""The README's counts, accuracy and speed figures are the ones the tree and the recorded
benchmarks give (``benchmarks/readme_figures.py``), not typed numbers that go stale."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_figures_are_generated_and_current():
    done = subprocess.run(
        [sys.executable, "benchmarks/readme_figures.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_stale_count_is_caught(tmp_path, monkeypatch):
    """Editing a generated number by hand makes the check fail."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import readme_figures
    finally:
        sys.path.pop(0)
    text = (ROOT / "README.md").read_text()
    current = readme_figures.render(text, {})
    tampered = current.replace("hwsim ships ", "hwsim ships 1", 1)
    assert tampered != current
    assert readme_figures.render(tampered, {}) == current
