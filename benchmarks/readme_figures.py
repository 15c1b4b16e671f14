"""Write the README's generated figures: what ships (counts), how accurate it is, how fast it runs.

The README holds blocks between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
this script renders each from the tree (presets, catalog, measured rows, the fitted files'
recorded errors) and from the benchmarks' last recorded figures (``benchmarks/figures.json``),
so no number in them is typed by hand. Run:

- ``python benchmarks/readme_figures.py``: run the benchmarks (a few minutes), record their figures
  and rewrite the blocks;
- ``python benchmarks/readme_figures.py --no-bench``: rewrite the blocks with the recorded figures;
- ``python benchmarks/readme_figures.py --check``: exit 1 if a block differs from what would be
  written (tests/test_readme_figures.py runs this; it runs no benchmark).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hwmodels.device_spec import catalog
from roofline.validation import source_group
from sim.experiments import EXPERIMENTS
from workloads.model_spec import preset_names

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = Path(__file__).resolve().parent / "figures.json"
BENCHMARKS = {
    "estimate": ["benchmarks/bench_estimate.py", "--json"],
    "engine": ["benchmarks/bench_engine.py", "--json"],
    "serving": ["benchmarks/bench_serving.py", "--json"],
}
"""Each benchmark with the arguments that make it print one JSON object as its last line."""
ARCH_WORDS = {
    "gpu": "GPUs",
    "cpu": "CPUs",
    "npu": "NPUs",
    "sail": "CPU with SRAM PIM",
    "csd": "computational storage",
    "wafer": "wafer-scale",
    "fpga": "FPGAs",
    "hardwired": "hard-wired",
}
"""Compute architectures as the counts name them (links, host memory and SSDs are listed apart)."""
MIN_FAMILY_ROWS = 8
"""Device families listed by name in the accuracy block need this many rows."""


def _block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} -->\n)(.*?)(<!-- /generated:{name} -->)", re.S)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def counts_block() -> str:
    """What ships: presets, devices per architecture, systems, measured rows and sources, experiments."""
    devices = Counter(d.arch for d in catalog().values())
    compute = ", ".join(f"{devices[a]} {w}" for a, w in ARCH_WORDS.items() if devices[a])
    other = sum(n for a, n in devices.items() if a not in ARCH_WORDS)
    measured = pd.read_csv(ROOT / "hwmodels/validation/measured.csv", usecols=["source"])
    systems = len(list((ROOT / "sim/systems").glob("*.yaml")))
    return (
        f"hwsim ships {len(preset_names())} model presets, {sum(devices.values())} catalog devices "
        f"({compute}; and {other} links, host memories and SSDs), {systems} multi-device system files, "
        f"{len(measured)} measured rows from {measured['source'].map(source_group).nunique()} sources "
        f"(`hwmodels/validation/measured.csv`) and {len(EXPERIMENTS)} paper reproductions "
        f"({', '.join(EXPERIMENTS)}).\n"
    )


def _fitted(name: str) -> dict[str, Any]:
    """A shipped fit record (``hwmodels/calibration/<name>_fitted.yaml``)."""
    return yaml.safe_load((ROOT / "hwmodels/calibration" / f"{name}_fitted.yaml").read_text())


def accuracy_block() -> str:
    """The recorded errors of the last ``hwsim calibrate``: all rows, and the fit rows per
    architecture in sample, leaving a source out and leaving a device family out."""
    v = _fitted("validation")
    lines = [
        "| rows | covered | median error | p90 error |",
        "|---|---|---|---|",
        f"| all measured rows, `hwsim validate` | {v['covered']} of {v['rows']} | {_pct(v['median_ape'])} "
        f"| {_pct(v['p90_ape'])} |",
    ]
    labels = {
        "in_sample": "in sample",
        "leave_one_source_out": "leave one source out",
        "leave_one_family_out": "leave one device family out",
    }
    for arch in ("gpu", "cpu", "npu"):
        errors = _fitted(arch)["errors"]
        for key, label in labels.items():
            e = errors.get(key)
            if e and e.get("covered"):
                lines.append(
                    f"| {arch.upper()} fit rows, {label} | {e['covered']} | {_pct(e['median_ape'])} "
                    f"| {_pct(e['p90_ape'])} |"
                )
    held = v.get("held_out")
    if held and held.get("covered"):
        lines.append(
            f"| held-out rows (never fitted, sources added after the fit) | {held['covered']} of {held['rows']} "
            f"| {_pct(held['median_ape'])} | {_pct(held['p90_ape'])} |"
        )
    gpu_lofo = _fitted("gpu")["errors"].get("leave_one_family_out", {}).get("by_family", {})
    big = {f: e for f, e in gpu_lofo.items() if e["covered"] >= MIN_FAMILY_ROWS}
    cov = _fitted("intervals")["held_out_coverage"]
    energy = _fitted("gpu_energy")["errors"]["gpu/datacenter-gpu"]["leave_one_source_out"]
    lines += [
        "",
        f"10th-90th percentile ranges hold {_pct(cov['inside'])} of {cov['with_range']} held-out fit rows "
        f"(80% is the aim; median range {cov['median_width']:.2f}x from low to high)"
        + (
            f" and {_pct(held['ranges']['inside'])} of the {held['ranges']['with_range']} never-fitted held-out "
            f"rows that have a range (median {held['ranges']['median_width']:.2f}x)"
            if held and held.get("ranges", {}).get("with_range")
            else ""
        )
        + ". Datacenter-GPU "
        f"energy per token, leaving a source out: {_pct(energy['median_ape'])} median error on "
        f"{energy['rows']} rows. Recorded by `hwsim calibrate` on {v['recorded_at']}.",
    ]
    if big:
        lines += [
            "",
            f"GPU families with {MIN_FAMILY_ROWS}+ fit rows, each left out of the fit and predicted (median error): "
            + ", ".join(f"{f} {_pct(e['median_ape'])} ({e['covered']})" for f, e in sorted(big.items()))
            + ".",
        ]
    if held and held.get("by_batch"):
        lines += [
            "",
            "Held-out rows by the batch they were added in (median error, p90, rows; share of measured "
            "values inside their 10th-90th percentile range): "
            + ", ".join(
                f"`{b}` {_pct(e['median_ape'])}, {_pct(e['p90_ape'])} ({e['covered']}; "
                f"{_pct(e['ranges']['inside'])} of {e['ranges']['with_range']})"
                for b, e in sorted(held["by_batch"].items())
            )
            + ".",
        ]
    same = v.get("source_agreement")
    if same and same.get("pairs"):
        lines += [
            "",
            f"How far the data itself agrees: where two sources measured the same configuration (as hwsim "
            f"resolves it: {same['pairs']} pairs of sources over {same['configurations']} configurations), their "
            f"values differ by a median {_pct(same['median_spread'])} and a 90th percentile "
            f"{_pct(same['p90_spread'])} (larger over smaller). One prediction for both still misses each by "
            f"at least a median {_pct(same['median_floor'])} and a 90th percentile {_pct(same['p90_floor'])}: "
            "a floor under any model's error on rows whose sources state no more than these do "
            "(`roofline/source_agreement.py`).",
        ]
    if held and held.get("by_family"):
        lines += [
            "",
            "Held-out rows by device family (median error, rows): "
            + ", ".join(
                f"{f} {_pct(e['median_ape'])} ({e['covered']})" for f, e in sorted(held["by_family"].items())
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def serving_block() -> str:
    """The serving fit's recorded errors (``serving_fitted.yaml``): each framework fitted on its
    server rows (TTFT, TPOT and end-to-end means) in sample and leaving a source out, one left
    unfitted with its error, and a host time fitted on an engine's offline and end-to-end rows."""
    s = _fitted("serving")
    lines = [
        "| framework (terms) | rows | TTFT median error | TPOT median error | end-to-end median error |",
        "|---|---|---|---|---|",
    ]
    notes = []
    for name, e in s["errors"].items():
        terms = s["frameworks"].get(name, {})
        shown = ", ".join(f"{k} {v:g}" for k, v in terms.items())
        if "not_fitted" in e:
            lines.append(
                f"| {name}, not fitted ({e['not_fitted']}) | {e['rows']} | {_pct(e.get('ttft_s_median_ape'))} "
                f"| {_pct(e.get('tpot_s_median_ape'))} | {_pct(e.get('e2e_s_median_ape'))} |"
            )
            continue
        if "fitted_on" in e:
            others = [n for n in s["frameworks"] if n != name and n not in s["errors"]]
            whole = [n for n in others if s["frameworks"][n] == terms]
            part = {
                n: list(s["frameworks"][n])
                for n in others
                if n not in whole and all(terms.get(k) == v for k, v in s["frameworks"][n].items())
            }
            taken = [f"`{n}`" for n in whole] + [f"its {', '.join(k)} by `{n}`" for n, k in part.items()]
            also = f" (and taken by {'; '.join(taken)})" if taken else ""
            notes.append(
                f"`{name}` ({shown}){also} is fitted on its {e['fitted_on']} ({e['in_sample']['rows']} rows, "
                f"{e['sources']} sources): {_pct(e['in_sample']['median_ape'])} median error in sample, "
                f"{_pct(e['leave_one_source_out']['median_ape'])} leaving a source out"
            )
            continue
        sources = f"{e['sources']} source{'' if e['sources'] == 1 else 's'}"
        for key, label in (("in_sample", "in sample"), ("leave_one_source_out", "leave one source out")):
            r = e[key]
            if not r["rows"]:
                lines.append(
                    f"| {name} ({shown}; {sources}), {label}: no other source to fit on | 0 | - | - | - |"
                )
                continue
            lines.append(
                f"| {name} ({shown}; {sources}), {label} | {r['rows']} "
                f"| {_pct(r.get('ttft_s_median_ape'))} | {_pct(r.get('tpot_s_median_ape'))} "
                f"| {_pct(r.get('e2e_s_median_ape'))} |"
            )
    for name, e in s.get("request_latency", {}).items():
        us = s["frameworks"].get(name, {}).get("request_latency_per_launch_us")
        fitted = (
            f"{us:g} us per launch of the forward pass"
            if us is not None
            else f"not fitted ({e['not_fitted']})"
        )
        held = e["leave_one_source_out"]
        held = (
            f"{_pct(held['median_ape'])} leaving a source out"
            if held["rows"]
            else "no other source to leave out"
        )
        notes.append(
            f"`{name}`'s request latency ({fitted}) is fitted first, on its {e['rows']} TTFT rows alone: "
            f"{_pct(e['in_sample']['median_ape'])} median TTFT error in sample, {held}, "
            f"{_pct(e['leave_one_model_out']['median_ape'])} leaving a model out"
        )
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "; ".join(notes) + ".\n"
    return text


def performance_block(figures: dict[str, Any]) -> str:
    """The benchmarks' recorded figures, with the date and machine they were measured on."""
    if not figures:
        return "No benchmark figures recorded yet: run `python benchmarks/readme_figures.py`.\n"
    e, g, s = figures.get("estimate", {}), figures.get("engine", {}), figures.get("serving", {})
    cores = e.get("threads", 1)
    lines = [
        f"Measured {figures['date']} on {figures['machine']} with {cores} core(s): `hwsim.estimate` prices a "
        "sweep's chunks on every core (`HWSIM_THREADS` caps them), the other benchmarks run on one; "
        "figures vary about 2x with load:",
        "",
    ]
    for key, n in (("points_per_s_1e5", "100,000"), ("points_per_s_1e6", "1,000,000")):
        if key in e:
            alone = e.get(f"{key}_one_thread")
            lines.append(
                f"- `bench_estimate.py`: one `hwsim.estimate` call over {n} design points, {e[key]:,.0f} points/s"
                + (f" ({alone:,.0f} on one thread)" if alone else "")
            )
    if "llm_analysis_points_per_s" in e:
        lines.append(
            f"- llm-analysis 0.2.2 in the same run: {e['llm_analysis_points_per_s']:,.0f} points/s (one call per point, "
            f"one core); per design point hwsim is {e['ratio_vs_llm_analysis_1e5']:,.0f}x faster at 100,000 points and "
            f"{e['ratio_vs_llm_analysis_1e6']:,.0f}x at 1,000,000"
            + (
                f" ({e['ratio_vs_llm_analysis_1e5_one_thread']:,.0f}x and "
                f"{e['ratio_vs_llm_analysis_1e6_one_thread']:,.0f}x on one thread)"
                if "ratio_vs_llm_analysis_1e6_one_thread" in e
                else ""
            )
        )
    if g:
        lines.append(
            f"- `bench_engine.py`: {g['events_per_s']:,.0f} SimPy events/s; Llama-2-70B on 8 H100s (TP8), "
            f"128 decode steps in {g['llama2_70b_tp8_128_steps_s']:.2f} s"
        )
    if s:
        lines.append(
            f"- `bench_serving.py`: {s['requests']:,} requests (Llama-3.1-8B, one H100, vLLM's scheduler) "
            f"in {s['wall_s']:.2f} s; the same seed repeats: {s['repeats']}"
        )
    return "\n".join(lines) + "\n"


def run_benchmarks() -> dict[str, Any]:
    """Run each benchmark in its own process and keep its JSON line."""
    out: dict[str, Any] = {}
    for name, argv in BENCHMARKS.items():
        print(f"running {argv[0]} ...", file=sys.stderr)
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown CPU",
        )
        if Path("/proc/cpuinfo").exists()
        else "unknown CPU"
    )
    out["date"] = datetime.date.today().isoformat()
    out["machine"] = cpu
    return out


def render(text: str, figures: dict[str, Any]) -> str:
    """``text`` with every generated block rewritten; a block missing from ``text`` is an error."""
    blocks = {
        "counts": counts_block(),
        "accuracy": accuracy_block(),
        "serving": serving_block(),
        "performance": performance_block(figures),
    }
    for name, body in blocks.items():
        pattern = _block_pattern(name)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- generated:{name} --> block")
        text = pattern.sub(lambda m, b=body: m.group(1) + b + m.group(3), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-bench", action="store_true", help="keep the recorded benchmark figures")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is not up to date")
    args = parser.parse_args()
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    if args.check:
        text = README.read_text()
        stale = render(text, figures) != text
        print(
            "README.md figures are stale: run python benchmarks/readme_figures.py --no-bench"
            if stale
            else "ok"
        )
        raise SystemExit(1 if stale else 0)
    if not args.no_bench:
        figures = run_benchmarks()
        FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    README.write_text(render(README.read_text(), figures))  # read after the benchmarks' minutes


if __name__ == "__main__":
    main()
