"""The split decode step (Step-3 AFD, Lamina): reference schedule, counts, closed form, engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.kernels.microbatch_pipeline import split_pipeline
from hwmodels.split import (
    StageDurations,
    action_counts,
    bottleneck,
    resource_busy_s,
    step_energy_j,
    step_time_s,
)
from sim.split_pipeline import play_split_step

durations = st.floats(min_value=1e-6, max_value=1e-2)


def test_hand_case_three_micro_batches():
    """Step-3's shape: 3 micro-batches, A = B = 1 ms, free wires, 2 layers. A serves mb0, mb1, mb2
    of layer 0 at 0-3 ms; B at 1-4 ms; mb0 is back at 2 ms but waits for A until 3 ms; layer 1 runs
    on A at 3-6 ms and on B at 4-7 ms: the step ends at 7 ms, and each resource ran 6 times."""
    r = split_pipeline(1e-3, 0.0, 1e-3, 0.0, n_layers=2, n_micro=3)
    assert r.makespan_s == pytest.approx(7e-3)
    assert r.runs == {"a": 6, "ab": 6, "b": 6, "ba": 6}
    counts = action_counts(2, 3, 100.0, 50.0)
    d = StageDurations(*(np.asarray(v) for v in (1e-3, 1e-3, 0.0, 0.0)))
    d = dataclasses.replace(
        d, a_s=np.asarray(1e-3), b_s=np.asarray(1e-3), ab_s=np.asarray(0.0), ba_s=np.asarray(0.0)
    )
    # steady state: A busy 6 ms, one micro-batch's path 2 x 2 ms; the schedule adds one layer's fill
    assert step_time_s(counts, d) == pytest.approx(6e-3)
    assert float(counts.ab_bytes) == 600.0 and float(counts.ba_bytes) == 300.0


@settings(max_examples=60, deadline=None)
@given(
    t=st.tuples(durations, durations, durations, durations),
    n_layers=st.integers(1, 6),
    n_micro=st.integers(1, 5),
)
def test_engine_plays_the_reference_schedule_and_counts_match(t, n_layers, n_micro):
    ref = split_pipeline(*t, n_layers=n_layers, n_micro=n_micro)
    d = StageDurations(
        a_s=np.asarray(t[0]), ab_s=np.asarray(t[1]), b_s=np.asarray(t[2]), ba_s=np.asarray(t[3])
    )
    timeline = play_split_step(d, n_layers, n_micro)
    assert timeline.makespan_s == pytest.approx(ref.makespan_s, rel=1e-12)
    counts = action_counts(n_layers, n_micro, 1.0, 1.0)
    assert ref.runs == {
        "a": counts.a_runs,
        "ab": counts.ab_transfers,
        "b": counts.b_runs,
        "ba": counts.ba_transfers,
    }
    busy = resource_busy_s(counts, d)
    for stage, seconds in ref.busy_s.items():
        assert busy[stage] == pytest.approx(seconds)
    # the closed form is the steady state: never above the schedule, below it by at most one layer's fill
    closed = float(step_time_s(counts, d))
    assert closed <= ref.makespan_s * (1 + 1e-12)
    assert ref.makespan_s <= closed + sum(t) * (1 + 1e-12)


@pytest.mark.parametrize("field", ["a_runs", "b_runs", "ab_transfers", "ba_transfers", "path_layers"])
def test_tripling_a_count_changes_the_step_where_it_binds(field):
    """Each count bounds the step when its resource is the slowest: tripling it there triples the time."""
    stage = {"a_runs": "a_s", "b_runs": "b_s", "ab_transfers": "ab_s", "ba_transfers": "ba_s"}.get(field)
    base = dict(a_s=1e-4, b_s=1e-4, ab_s=1e-4, ba_s=1e-4)
    if stage:
        base[stage] = 1e-2  # this resource binds: its busy time is the step
    d = StageDurations(**{k: np.asarray(v) for k, v in base.items()})
    counts = action_counts(10, 1 if field == "path_layers" else 4, 1.0, 1.0)
    tripled = dataclasses.replace(counts, **{field: getattr(counts, field) * 3})
    assert float(step_time_s(tripled, d)) == pytest.approx(3 * float(step_time_s(counts, d)))


def test_energy_and_bottleneck_from_counts():
    counts = action_counts(61, 3, 7168 * 2048.0, 2 * 7168 * 2048.0)
    d = StageDurations(
        *(np.asarray(v) for v in (2e-4, 3e-4, 1e-5, 1e-5)), a_j=np.asarray(0.5), b_j=np.asarray(0.25)
    )
    # 183 executions on each pool; bytes 183 x (1 + 2) x 7168 x 2048 at 10 pJ/B
    expected = 183 * 0.5 + 183 * 0.25 + 183 * 3 * 7168 * 2048 * 10e-12
    assert float(step_energy_j(counts, d, 10e-12)) == pytest.approx(expected)
    assert bottleneck(counts, d) == "b"
