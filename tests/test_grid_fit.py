"""The grid search a calibration runs (``roofline.grid_fit``), on hand-made numbers."""

import numpy as np

from roofline.grid_fit import best_index, held_out_errors, source_weights

MEASURED = np.array([100.0, 100.0, 200.0, 200.0])
PREDS = np.array(
    [
        [100.0, 100.0, 100.0, 100.0],  # source a exact, source b half
        [150.0, 150.0, 150.0, 150.0],
        [200.0, 200.0, 200.0, 200.0],  # source b exact, source a double
    ]
)
SOURCES = ["a", "a", "b", "b"]


def test_the_least_squared_log_error_wins_and_ties_go_to_the_first():
    """Points 0 and 2 each miss two rows by a factor of 2 (log 2 squared); point 1 misses all four
    by 1.5 and 4/3, less in the log: it wins. On one source alone the exact point wins. Without
    point 1, points 0 and 2 tie (each misses two rows by 2x): the first is taken."""
    everything = np.ones(4, dtype=bool)
    assert best_index(PREDS, MEASURED, everything) == 1
    assert best_index(PREDS, MEASURED, np.array([True, True, False, False])) == 0
    assert best_index(PREDS, MEASURED, np.array([False, False, True, True])) == 2
    assert best_index(PREDS[[0, 2]], MEASURED, everything) == 0


def test_a_source_is_priced_at_the_point_the_others_choose():
    """Leaving a out chooses point 2 (exact for b): a's rows then miss by 100%; leaving b out
    chooses point 0: b's rows miss by 50%."""
    np.testing.assert_allclose(held_out_errors(PREDS, MEASURED, SOURCES), [1.0, 1.0, 0.5, 0.5])


def test_an_unpriced_row_is_left_out_of_a_points_mean():
    preds = PREDS.copy()
    preds[1, 0] = np.nan
    assert best_index(preds, MEASURED, np.ones(4, dtype=bool)) == 1
    preds[0, 2:] = np.nan  # point 0 prices only source a's rows, exactly: its mean is 0
    assert best_index(preds, MEASURED, np.ones(4, dtype=bool)) == 0


def test_weights_tip_the_choice_toward_the_heavier_rows():
    """Rows of source a weighing 10 each and b's 1: point 0 (exact for a) costs 2 x log(2)^2, point 1
    costs 20 x log(1.5)^2 + 2 x log(4/3)^2, more: point 0 wins. Source weights of a source with
    three rows and one with one row are 1/3 each and 1: each source sums to one."""
    weight = np.array([10.0, 10.0, 1.0, 1.0])
    assert best_index(PREDS, MEASURED, np.ones(4, dtype=bool), weight) == 0
    np.testing.assert_allclose(source_weights(["x", "y", "x", "x"]), [1 / 3, 1.0, 1 / 3, 1 / 3])


def test_balanced_sources_outweigh_a_crowded_one():
    """Source a has three rows, exact at point 0 and 1.5x at point 1; source b one row, 1.8x at
    point 0 and exact at point 1. Counting rows, point 0 costs log(1.8)^2 = 0.35 and point 1
    3 x log(1.5)^2 = 0.49: point 0. Each source weighing the same, point 1 costs log(1.5)^2 = 0.16
    against 0.35: point 1. Leaving b out picks point 0, where b's 100 against 180 is 44% off;
    leaving a out picks point 1, where a's rows are 50% off."""
    measured = np.array([100.0, 100.0, 100.0, 180.0])
    preds = np.array([[100.0, 100.0, 100.0, 100.0], [150.0, 150.0, 150.0, 180.0]])
    sources = np.array(["a", "a", "a", "b"])
    everything = np.ones(4, dtype=bool)
    balanced = source_weights(sources)
    assert best_index(preds, measured, everything) == 0
    assert best_index(preds, measured, everything, balanced) == 1
    np.testing.assert_allclose(
        held_out_errors(preds, measured, sources, balanced), [0.5, 0.5, 0.5, 1 - 100 / 180]
    )
