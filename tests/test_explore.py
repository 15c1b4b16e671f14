"""Sweeps, backends, resuming, Pareto fronts, and the best / compare / pareto commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import explore.run as run_module
from explore.run import read_sweep, run_sweep
from explore.spec import load_spec, parse_spec
from roofline.pareto import pareto_front, pareto_mask
from workloads.errors import ConfigError, UnknownNameError

SMALL = {
    "models": ["llama-3.1-8b"],
    "devices": ["h100-sxm", "a100-sxm-80gb"],
    "precision": ["fp16", "fp8"],
    "tp": [1, 2],
    "batch": {"start": 1, "stop": 64, "num": 4, "log": True},
    "input_len": [512, 2048],
    "output_len": [128],
}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"bogus": [1]}, "unknown sweep key .*'bogus'"),
        ({"tp": []}, "tp is an empty list"),
        ({"batch": {"start": 64, "stop": 1}}, "batch range is reversed"),
        ({"devices": ["gpuz"]}, "unknown device or device class .*'gpuz'"),
        ({"tp": [0]}, "tp value 0; expected a positive int"),
        ({"sampling": {"method": "lhs"}}, "sampling.n is 0"),
    ],
)
def test_bad_specs_get_one_line_errors_naming_the_key(change, message):
    with pytest.raises((ConfigError, UnknownNameError), match=message):
        parse_spec({**SMALL, **change})


def test_every_grid_point_is_written_including_those_that_do_not_fit(tmp_path):
    """2 devices x 2 precisions x 2 TP x 4 batches x 2 prompts = 64 rows; Llama-3.1-70B does not fit one
    A100 in fp16, and those rows say so with the shortfall."""
    spec = parse_spec({**SMALL, "models": ["llama-3.1-70b"]})
    assert spec.size == 64
    table = read_sweep(run_sweep(spec, tmp_path / "s.parquet"))
    assert len(table) == 64
    a100 = table[(table["device"] == "a100-sxm-80gb") & (table["precision"] == "fp16") & (table["tp"] == 1)]
    assert (~a100["fits"]).all() and (a100["shortfall_bytes"] > 50e9).all()  # 141 GB of weights on 80 GB
    assert (table["n_devices"] == table["tp"]).all()  # n_devices defaults to tp x pp x ep


def test_serving_points_are_simulated_one_row_each(tmp_path):
    """A spec with a request rate runs the event path: one row per rate, the design's columns once,
    two replicas when n_devices is twice tp, and the higher rate never lowers the mean TTFT."""
    spec = parse_spec(
        {
            "models": ["llama-3.1-8b"],
            "devices": ["h100-sxm"],
            "precision": ["bf16"],
            "n_devices": [2],
            "rate": [2, 8],
            "input_len": [256],
            "output_len": [16],
        }
    )
    table = read_sweep(run_sweep(spec, tmp_path / "s.parquet")).sort_values("rate")
    assert len(table) == 2 and (table["error"] == "").all()
    assert (table["n_devices"] == 2).all() and table.columns.is_unique
    assert table["ttft_s_mean"].iloc[1] >= table["ttft_s_mean"].iloc[0] * (1 - 1e-9)


def test_dask_backend_gives_the_local_table(tmp_path):
    spec = parse_spec(SMALL)
    local = read_sweep(run_sweep(spec, tmp_path / "local.parquet"))
    dask = read_sweep(run_sweep(spec, tmp_path / "dask.parquet", backend="dask"))
    pd.testing.assert_frame_equal(local, dask)


def test_a_stopped_sweep_resumes_without_losing_or_repeating_a_point(tmp_path, monkeypatch):
    """Stop after the first chunks are written, rerun: every point once, finished chunks untouched."""
    spec = parse_spec(SMALL)  # 8 design groups, one chunk each
    out = tmp_path / "s.parquet"

    class Stop(Exception):
        pass

    def stop_after_three(done: int, total: int) -> None:
        if done >= 3 * 8:  # 8 points per chunk
            raise Stop

    with pytest.raises(Stop):
        run_sweep(spec, out, progress=stop_after_three)
    parts = tmp_path / "s.parquet.parts"
    assert not out.exists()  # the table is written only when every chunk is
    first = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*.parquet")}
    assert len(first) == 3
    written = []
    real_write = run_module._write
    with monkeypatch.context() as m:
        m.setattr(run_module, "_write", lambda p, c, f: (written.append(c.name), real_write(p, c, f)))
        run_sweep(spec, out)
    assert len(written) == 5 and not set(written) & set(first)  # finished chunks are not recomputed
    assert not parts.exists()
    table = read_sweep(out)
    keys = ["device", "precision", "tp", "batch", "input_len"]
    assert len(table) == spec.size and not table.duplicated(keys).any()
    pd.testing.assert_frame_equal(table, read_sweep(run_sweep(spec, tmp_path / "fresh.parquet")))


def test_a_finished_sweep_is_one_file_that_a_rerun_keeps_and_another_spec_does_not_overwrite(tmp_path):
    """The table is one Parquet file (a column null in some chunks keeps the others' type); the same
    spec again leaves it as it is; another spec at that path, or a directory, is refused."""
    spec = parse_spec({**SMALL, "framework": [None, "vllm"]})
    out = run_sweep(spec, tmp_path / "s.parquet")
    assert out.is_file() and pq.ParquetFile(out).metadata.num_rows == spec.size
    stamp = out.stat().st_mtime_ns
    run_sweep(spec, out)
    assert out.stat().st_mtime_ns == stamp
    assert set(read_sweep(out)["framework"].dropna()) == {"vllm"}
    with pytest.raises(ConfigError, match="another sweep"):
        run_sweep(parse_spec(SMALL), out)
    with pytest.raises(ConfigError, match="is a directory"):
        run_sweep(spec, tmp_path)


def test_random_and_lhs_sampling_draw_the_stated_number_of_points(tmp_path):
    for method in ("random", "lhs"):
        spec = parse_spec({**SMALL, "sampling": {"method": method, "n": 20, "seed": 3}})
        table = read_sweep(run_sweep(spec, tmp_path / f"{method}.parquet"))
        assert len(table) == 20
    # LHS visits each of the 4 batch values 5 times in 20 draws
    assert sorted(table["batch"].value_counts().tolist()) == [5, 5, 5, 5]


def test_pareto_front_by_hand():
    """Lower TPOT and higher tokens/$ are better: (1, 10) and (2, 20) and (4, 30) are on the front;
    (3, 15) is beaten by (2, 20); (2, 20) duplicated counts once; NaN takes no part."""
    frame = pd.DataFrame(
        {
            "device": list("abcdef"),
            "tpot_s": [1, 2, 3, 4, 2, np.nan],
            "tokens_per_usd": [10, 20, 15, 30, 20, 99],
        }
    )
    mask = pareto_mask(frame, ["tpot_s", "tokens_per_usd"])
    assert list(frame["device"][mask]) == ["a", "b", "d"]
    assert list(pareto_front(frame, ["tpot_s", "tokens_per_usd"])["design"]) == ["a", "b", "d"]
    with pytest.raises(ConfigError, match="two or three different metrics"):
        pareto_mask(frame, ["tpot_s"])


def test_spec_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [llama-3.1-8b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)


def test_best_compare_and_pareto_commands(tmp_path):
    from hwsim.cli import cli

    runner = CliRunner()
    r = runner.invoke(
        cli,
        ["best", "--model", "llama-3.1-8b", "-d", "gpu", "--slo-tpot", "0.05", "--top", "3", "--json"],
        catch_exceptions=False,
    )
    designs = json.loads(r.output)
    assert len(designs) == 3 and all(d["tpot_s"] <= 0.05 and d["fits"] for d in designs)
    usd = [d["tokens_per_usd"] for d in designs]
    assert usd == sorted(usd, reverse=True)
    r = runner.invoke(
        cli,
        [
            "compare",
            "-m",
            "llama-3.1-8b",
            "-d",
            "h100-sxm",
            "-d",
            "a100-sxm-80gb",
            "--json",
            "-o",
            str(tmp_path / "c.png"),
        ],
        catch_exceptions=False,
    )
    assert [d["device"] for d in json.loads(r.output)] == ["h100-sxm", "a100-sxm-80gb"]
    r = runner.invoke(
        cli,
        [
            "pareto",
            "-m",
            "llama-3.1-8b",
            "-d",
            "gpu",
            "-b",
            "1",
            "-b",
            "64",
            "--json",
            "-o",
            str(tmp_path / "p.png"),
        ],
        catch_exceptions=False,
    )
    payload = json.loads(r.output)
    assert payload["front"] and (tmp_path / "p.png").exists()


def test_best_per_architecture_lists_each_architectures_own_best():
    """Overall, the two best designs may all be GPUs; per architecture, the wafer's best is listed
    too, each architecture's designs in objective order."""
    import hwsim

    kw = dict(devices=["h100-sxm", "a100-sxm-80gb", "wse-3"], objective="tpot_s", top=2, batches=[1, 8])
    overall = hwsim.best("llama-3.1-8b", **kw)
    per_arch = hwsim.best("llama-3.1-8b", per_arch=True, **kw)
    assert len(overall) == 2
    assert set(per_arch["arch"]) == {"gpu", "wafer"} and (per_arch.groupby("arch").size() <= 2).all()
    for _, group in per_arch.groupby("arch"):
        assert group["tpot_s"].is_monotonic_increasing


def test_sweep_refuses_what_estimate_refuses_row_by_row(tmp_path):
    """FP8 on an A100 (no FP8 tensor cores) and a prompt past Llama-2's 4,096-token context are rows
    with an error and no metrics, as `hwsim estimate` refuses them; the other rows are priced."""
    spec = parse_spec(
        {
            "models": ["llama-2-7b"],
            "devices": ["a100-sxm-80gb"],
            "precision": ["fp16", "fp8"],
            "batch": [1],
            "input_len": [1024, 4000],
            "output_len": [128],
        }
    )
    table = read_sweep(run_sweep(spec, tmp_path / "s.parquet"))
    ok = (table["precision"] == "fp16") & (table["input_len"] == 1024)
    assert len(table) == 4 and (table.loc[ok, "error"] == "").all() and table.loc[ok, "tpot_s"].notna().all()
    assert table.loc[~ok, "tpot_s"].isna().all() and (~table.loc[~ok, "fits"]).all()
    assert table.loc[table["precision"] == "fp8", "error"].str.contains("no FP8").all()
    assert table.loc[(table["precision"] == "fp16") & ~ok, "error"].str.contains("max context").all()


def test_systems_stand_in_for_devices(tmp_path):
    """A system file gives the GPU, its count, TP and the link TP runs over: 8 H100s over PCIe decode
    slower than over NVLink, an offloaded system is a row that says to simulate it, and TP cannot be
    given beside systems."""
    spec = parse_spec(
        {"models": ["llama-2-70b"], "systems": ["8xh100-nvlink", "8xh100-pcie", "t4-flexgen"], "batch": [1]}
    )
    table = read_sweep(run_sweep(spec, tmp_path / "s.parquet")).set_index("system")
    assert table.loc["8xh100-nvlink", "tp"] == 8 and table.loc["8xh100-pcie", "link"] == "pcie"
    assert table.loc["8xh100-pcie", "tpot_s"] > table.loc["8xh100-nvlink", "tpot_s"]
    assert "hwsim simulate" in table.loc["t4-flexgen", "error"]
    with pytest.raises(ConfigError, match="'tp' is set by each system file"):
        parse_spec({"models": ["llama-2-70b"], "systems": ["8xh100-nvlink"], "tp": [2]})
    with pytest.raises(ConfigError, match="'devices' or 'systems'"):
        parse_spec({"models": ["llama-2-70b"], "systems": ["8xh100-nvlink"], "devices": ["h100-sxm"]})
