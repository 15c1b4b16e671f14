"""Two sources that measured one configuration: their spread and the floor it puts under any
model's error, hand-computed on copies of a shipped row."""

import pandas as pd
import pytest

from roofline.source_agreement import agreement, source_pairs
from roofline.validation import load_measured


@pytest.fixture(scope="module")
def row() -> pd.Series:
    measured = load_measured()
    return measured.loc[measured["id"] == "a303"].iloc[0]  # Llama-3.1-405B FP8, 8 H100, 128/2048


def _frame(*rows: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(list(rows)).reset_index(drop=True)


def _copy(row: pd.Series, **changes) -> pd.Series:
    out = row.copy()
    for k, v in changes.items():
        out[k] = v
    return out


def test_two_sources_of_one_configuration_make_one_pair(row):
    other = _copy(row, id="x1", source="example.org/other-bench, table 1", value=row["value"] * 1.5)
    pairs = source_pairs(_frame(row, other))
    assert len(pairs) == 1
    assert pairs["spread"].iloc[0] == pytest.approx(0.5)
    summary = agreement(_frame(row, other))
    assert summary["pairs"] == 1 and summary["configurations"] == 1
    # the best single prediction, 2ab/(a+b) = 1.2a, misses a by 20% and 1.5a by 20%
    assert summary["median_floor"] == pytest.approx(0.2)


def test_a_source_s_rows_are_its_median_and_other_configurations_do_not_pair(row):
    same_source = _copy(row, id="x2", value=row["value"] * 3.0)  # one source: median of 1x and 3x = 2x
    other = _copy(row, id="x3", source="example.org/other-bench", value=row["value"])
    elsewhere = _copy(row, id="x4", source="example.org/third", output_len=4096.0, value=row["value"] * 9)
    pairs = source_pairs(_frame(row, same_source, other, elsewhere))
    assert len(pairs) == 1 and pairs["spread"].iloc[0] == pytest.approx(1.0)


def test_logs_of_one_mlperf_round_are_one_source(row):
    a = _copy(row, source="mlcommons/inference_results_v4.1 closed/NVIDIA/results/x/summary.txt")
    b = _copy(
        row, id="x5", source="mlcommons/inference_results_v4.1 closed/Dell/results/y/summary.txt", value=2.0
    )
    assert source_pairs(_frame(a, b)).empty
    assert agreement(_frame(a, b)) == {
        "pairs": 0,
        "configurations": 0,
        "median_spread": None,
        "p90_spread": None,
        "median_floor": None,
        "p90_floor": None,
    }
