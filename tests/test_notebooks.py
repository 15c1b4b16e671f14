"""Every notebook runs top to bottom and shows its figures inline; each is committed without
outputs, imports only the public API (``hwsim``, plus NumPy, pandas and matplotlib), and every
paper reproduction has one."""

import ast
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from sim.experiments import EXPERIMENTS

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
ALLOWED_IMPORTS = {"hwsim", "numpy", "pandas", "matplotlib"}
"""Root packages a notebook may import: the public API and the plotting stack. ``hwsim``'s
submodules are internal and refused."""
CELL_TIMEOUT_S = 300


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS


def test_every_experiment_has_a_notebook():
    """``hwsim.experiment("<name>")`` or ``hwsim.reproduce(["<name>"])`` appears in some notebook
    for each experiment ``hwsim reproduce`` knows."""
    sources = "\n".join(s for p in NOTEBOOKS for s in _code(_read(p)))
    missing = [
        e
        for e in EXPERIMENTS
        if f'hwsim.experiment("{e}")' not in sources and f'hwsim.reproduce(["{e}"])' not in sources
    ]
    assert not missing, f"experiments without a notebook: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean(path):
    """No outputs and no execution counts in git (the test below executes a copy)."""
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} carry outputs or execution counts; commit notebooks cleared"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_titled_and_imports_only_the_public_api(path):
    nb = _read(path)
    assert nb.cells and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), (
        "a notebook opens with a markdown cell titled '# ...'"
    )
    for source in _code(nb):
        for node in ast.walk(ast.parse(source)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                root = name.split(".")[0]
                assert root in ALLOWED_IMPORTS and not (root == "hwsim" and name != "hwsim"), (
                    f"{path.name} imports {name!r}; notebooks use only `import hwsim` "
                    f"(and {', '.join(sorted(ALLOWED_IMPORTS - {'hwsim'}))})"
                )


DRAWS = ("plt.subplots(", "hwsim.plots.")
"""A code cell containing one of these draws a figure, and must show it inline."""


def _execute(path: Path) -> tuple[str, list[int]]:
    """Run a copy of the notebook in its own kernel: the failing cell's error (or ""), and the
    cells that draw a figure but show none."""
    nb = _read(path)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        return str(exc), []
    blank = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and any(d in c.source for d in DRAWS)
        and not any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    return "", blank


@pytest.fixture(scope="module")
def executed(request) -> dict[Path, tuple[str, list[int]]]:
    """Every selected notebook executed, as many at once as there are cores (each kernel is its
    own process; this thread only waits on it)."""
    wanted = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_runs_and_shows_its_figures"
    ]
    with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), os.cpu_count() or 1))) as pool:
        return dict(zip(wanted, pool.map(_execute, wanted), strict=True))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_and_shows_its_figures(path, executed):
    error, blank = executed[path]
    assert not error, error
    assert not blank, f"{path.name}: cells {blank} draw a figure but show none inline"
