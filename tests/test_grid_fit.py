"""The grid search a one-term calibration runs (``roofline.grid_fit``), on hand-made numbers."""

import numpy as np

from roofline.grid_fit import best_index, held_out_errors

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
