"""The progress bar shown on long runs."""

import time

from hwsim.output import LazyBar


def test_lazy_bar_stays_hidden_for_a_second_then_shows_rate(capsys):
    with LazyBar("points", unit="points") as bar:
        bar(1, 10)
        assert bar.bar is None  # not shown before a second has passed
        bar.t0 = time.perf_counter() - 2.0
        bar(5, 10)  # the first update once shown has no measured speed yet: must not fail
        assert bar.bar is not None
        fields = bar.bar.tasks[0].fields
        assert fields["rate"].endswith("points/s") and float(fields["rate"].split()[0]) > 0
        bar(10, 10)
