"""``hwsim report --quick`` (run as a user runs it, in a process of its own): the files it lists,
index.html and index.md hold the same sections, every file the page references exists and decodes, and the cross-architecture Pareto section names its winners
from the data; the page writer and the region text on small hand-made inputs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from report.html import page_body
from report.pareto_text import regions_paragraph, winner_regions
from report.sections_pareto import PARETO_MODELS


class _Refs(HTMLParser):
    """The local files a page references (``img src``, ``a href``), and its headings."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        link = a.get("src") if tag == "img" else a.get("href") if tag == "a" else None
        if link and not link.startswith(("#", "http://", "https://", "mailto:")):
            self.refs.append(link)
        if tag in ("h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h2", "h3"):
            self._in_heading = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """The folder ``hwsim report --quick --json`` wrote, and the files its JSON lists."""
    out = tmp_path_factory.mktemp("report") / "res"
    cmd = [sys.executable, "-m", "hwsim", "report", "--quick", "--out", str(out), "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return out, json.loads(run.stdout)["files"]


@pytest.fixture(scope="module")
def quick_report(quick_run) -> Path:
    return quick_run[0]


def test_cli_lists_the_files_it_wrote(quick_run):
    out, files = quick_run
    names = {p.rsplit("/", 1)[-1] for p in files}
    assert {"index.md", "estimates.csv", "roofline-h100.png", "roofline-h100.svg", "tpot-batch1.png"} <= names
    assert all(Path(p).is_file() for p in files)
    index = (out / "index.md").read_text()
    assert "roofline-h100.png" in index and "| model |" in index


def test_every_reference_exists_and_every_image_decodes(quick_report):
    page = _Refs()
    page.feed((quick_report / "index.html").read_text())
    images = [r for r in page.refs if r.endswith((".png", ".svg"))]
    assert len(images) >= 10 and any(r.endswith(".svg") for r in images)
    for ref in page.refs:
        path = quick_report / ref
        assert path.is_file(), ref
        if ref.endswith(".png"):
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                assert min(im.info.get("dpi", (150, 150))) >= 149, f"{ref} below print resolution"
        elif ref.endswith(".svg"):
            assert ET.parse(path).getroot().tag.endswith("svg"), ref


def test_every_chart_written_is_shown(quick_report):
    """A chart whose file name a Markdown image link cannot hold (a space, a bracket, a dot before
    the suffix) would be written but not shown: every PNG the report writes is on its page."""
    page = _Refs()
    page.feed((quick_report / "index.html").read_text())
    written = {p.name for p in quick_report.glob("*.png")}
    assert written and written <= set(page.refs), sorted(written - set(page.refs))


def test_html_and_markdown_hold_the_same_sections(quick_report):
    page = _Refs()
    page.feed((quick_report / "index.html").read_text())
    markdown = (quick_report / "index.md").read_text()
    md_headings = [
        line.lstrip("#").strip().replace("`", "")
        for line in markdown.splitlines()
        if line.startswith(("## ", "### "))
    ]
    assert page.headings == md_headings
    for needle in ("Roofline", "Validation", "Cross-architecture Pareto fronts", "Assumptions"):
        assert any(needle in h for h in md_headings), needle
    html = (quick_report / "index.html").read_text()
    assert "<nav>" in html and "<table>" in html and "<style>" in html


def test_pareto_section_names_a_winner_for_each_model(quick_report):
    markdown = (quick_report / "index.md").read_text()
    section = markdown.split("## Cross-architecture Pareto fronts")[1].split("\n## ")[0]
    for model in PARETO_MODELS:
        part = section.split(f"### {model}")[1].split("\n### ")[0]
        name = f"pareto-{model.replace('.', '-')}"
        assert f"{name}.png" in part
        assert "gives the most tokens per $" in part and "only" in part
        front = pd.read_csv(quick_report / f"{name}-front.csv")
        assert front["label"].iloc[-1] in part, "the cheapest design of the front is named"
        assert "price basis: TCO" in part
        assert "computational storage" in part and "not run" in part, (
            "an architecture that cannot run says why"
        )


def test_winner_regions_merge_limits_won_by_one_device():
    front = pd.DataFrame(
        {
            "device": ["wafer", "gpu-a", "gpu-a", "gpu-b"],
            "arch": ["wafer-scale", "GPU", "GPU", "GPU"],
            "label": ["w1", "a1", "a2", "b1"],
            "tpot_s": [0.0011, 0.008, 0.012, 0.03],
            "tokens_per_usd": [1e4, 1e5, 2e5, 1e6],
        }
    )
    regions = winner_regions(front)
    assert [r.device for r in regions] == ["wafer", "gpu-a", "gpu-b"]
    assert regions[0].low_s == pytest.approx(0.002) and regions[0].high_s == pytest.approx(0.005)
    assert regions[1].low_s == pytest.approx(0.01) and regions[1].best["label"] == "a2"
    assert regions[-1].high_s is None and regions[-1].best["label"] == "b1"
    text = regions_paragraph(front, front)
    assert text.startswith("Below 8 ms TPOT only wafer-scale designs meet the limit")
    assert "gpu-b (GPU) gives the most tokens per $ (b1, 1,000,000 tokens per $ at 30 ms)" in text


def test_page_body_renders_tables_lists_links_and_a_contents(tmp_path):
    (tmp_path / "a.svg").write_text("<svg/>")
    markdown = "\n".join(
        [
            "# t",
            "intro with `x<y` and [a link](b.csv)",
            "## One",
            "![chart](a.png)",
            "| k | v |",
            "|---|---|",
            "| **1** | 2 |",
            "### Sub",
            "- item",
            "- other",
        ]
    )
    title, body = page_body(markdown, tmp_path)
    assert title == "t"
    assert body.index("<nav>") < body.index('<h2 id="one">')
    assert '<a href="#sub">Sub</a>' in body
    assert "<code>x&lt;y</code>" in body and '<a href="b.csv">a link</a>' in body
    assert '<a href="a.svg"><img src="a.png"' in body
    assert "<td><strong>1</strong></td><td>2</td>" in body
    assert body.count("<li>") == 4  # two contents entries, two list items
