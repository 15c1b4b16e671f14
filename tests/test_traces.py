"""Request streams: arrival processes, length distributions, replay, seeds."""

import numpy as np
import pytest

from workloads.errors import ConfigError, UnknownNameError
from workloads.traces import (
    LengthHistogram,
    gamma_arrivals,
    lengths_index,
    load_lengths,
    lognormal_lengths,
    make_trace,
    poisson_arrivals,
    read_trace_csv,
    uniform_spread,
)


def test_poisson_gaps_have_the_rate_and_cv_one():
    t = poisson_arrivals(4.0, 200_000, np.random.default_rng(0))
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(0.25, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.5, 2.0, 4.0])
def test_gamma_gaps_have_the_rate_and_the_cv(cv):
    gaps = np.diff(gamma_arrivals(10.0, cv, 400_000, np.random.default_rng(1)))
    assert gaps.mean() == pytest.approx(0.1, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_lognormal_lengths_have_the_mean():
    x = lognormal_lengths(500, 0.8, 200_000, np.random.default_rng(2))
    assert x.min() >= 1 and x.mean() == pytest.approx(500, rel=0.02)


def test_a_spread_draws_the_clients_range_about_the_mean():
    """SGLang's bench_serving with --random-input-len 1024 --random-range-ratio 0.8 draws integers
    in [819, 1024], mean 921.5: spread (1 - 0.8) / (1 + 0.8) about 921.5 gives that range; every
    integer of it is drawn, none outside, and the mean is kept."""
    hist = uniform_spread(921.5, 7372.5, 0.2 / 1.8)
    lin, lout = hist.sample(200_000, np.random.default_rng(4))
    assert (lin.min(), lin.max()) == (819, 1024) and len(np.unique(lin)) == 206
    assert (lout.min(), lout.max()) == (6553, 8192)
    assert lin.mean() == pytest.approx(921.5, rel=0.002) and hist.mean() == pytest.approx(
        (921.5, 7372.5), abs=0.5
    )
    # the closed loop of a trace with that spread
    t = make_trace(n_requests=5000, concurrency=8, input_len=1000, output_len=100, length_spread=0.5, seed=5)
    assert (t.input_len.min(), t.input_len.max()) == (500, 1500) and t.output_len.max() == 150
    widest = make_trace(
        n_requests=5000, concurrency=8, input_len=500, output_len=100, length_spread=1.0, seed=5
    )
    assert (widest.input_len.min(), widest.input_len.max()) == (1, 1000)  # SGLang's default [1, L]
    fixed = make_trace(n_requests=10, concurrency=8, input_len=1000, output_len=100, length_spread=0, seed=5)
    assert np.ptp(fixed.input_len) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(length_spread=1.5), "length spread is 1.5; expected a number from 0 to 1"),
        (dict(length_spread=-0.1), "length spread is -0.1"),
        (dict(length_spread=float("nan")), "length spread is nan"),
        (dict(length_spread="wide"), "length spread is 'wide'"),
        (dict(length_spread=0.2, length_cv=0.5), "either length_cv or length_spread"),
    ],
)
def test_a_bad_spread_is_refused_by_name(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make_trace(n_requests=10, concurrency=2, input_len=100, output_len=10, **kwargs)
    with pytest.raises(ConfigError, match="draws its own lengths"):
        make_trace(n_requests=10, concurrency=2, lengths="sharegpt", length_spread=0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(rate=5.0, arrival="gamma", cv=1e300),
            "cv is 1e[+]300; expected a coefficient of variation from 0.001",
        ),
        (dict(rate=5.0, arrival="gamma", cv=1e-300), "cv is 1e-300"),
        (dict(rate=5.0, arrival="gamma", cv=0.0), "cv is 0.0; expected a positive number"),
        (dict(concurrency=2, length_cv=1e200), "length cv is 1e[+]200; expected a coefficient of variation"),
        (dict(concurrency=2, length_cv=1e-9), "length cv is 1e-09"),
    ],
)
def test_a_coefficient_of_variation_out_of_range_is_refused_by_name(kwargs, message):
    """Gamma gaps of shape 1 / cv^2 and lognormal lengths of sigma^2 = ln(1 + cv^2): a CV of 1e300
    overflowed (a traceback from the CLI's --cv), one of 1e-300 divided by zero."""
    with pytest.raises(ConfigError, match=message):
        make_trace(n_requests=10, input_len=100, output_len=10, **kwargs)


@pytest.mark.parametrize("cv", [1e-3, 1e3])
def test_the_ends_of_the_cv_range_draw_finite_arrivals(cv):
    t = make_trace(n_requests=50, rate=5.0, arrival="gamma", cv=cv, input_len=100, output_len=10, seed=3)
    assert np.isfinite(t.arrival_s).all() and (np.diff(t.arrival_s) >= 0).all()


@pytest.mark.parametrize("name", sorted(lengths_index()))
def test_shipped_histograms_load_with_a_source_and_sample_their_mean(name):
    hist = load_lengths(name)
    assert hist.source and abs(hist.weight.sum() - 1) < 1e-9
    lin, lout = hist.sample(100_000, np.random.default_rng(3))
    mean_in, mean_out = hist.mean()
    assert lin.mean() == pytest.approx(mean_in, rel=0.03) and lout.mean() == pytest.approx(mean_out, rel=0.03)


def test_sharegpt_is_short_prompts_long_answers_and_arxiv_the_reverse():
    """ShareGPT as today's serving benchmarks sample it averages 224 prompt tokens (the median
    of published runs' means, 215-230 in Llama-3 tokens) and ~250 reference output tokens, with
    SGLang's measured share of prompts above 500 tokens (16%); the vLLM paper's 2023 sample ~120
    and ~350 (first human turns only, OPT); arXiv summarization ~2,590 and ~290 (Vidur's table)."""
    sharegpt = load_lengths("sharegpt")
    assert sharegpt.mean() == pytest.approx((224, 252), rel=0.02)
    mid_in = (sharegpt.input_lo + sharegpt.input_hi - 1) / 2
    assert sharegpt.weight[mid_in > 500].sum() == pytest.approx(155 / 1003, abs=0.02)
    assert sharegpt.input_hi.max() <= 1025 and (sharegpt.input_lo + sharegpt.output_lo).max() <= 2048
    assert load_lengths("sharegpt-2023").mean() == pytest.approx((120, 350), rel=0.05)
    assert load_lengths("arxiv-summarization").mean() == pytest.approx((2588, 291), rel=0.05)


def test_same_seed_same_trace_and_another_seed_differs():
    a = make_trace(n_requests=50, rate=3.0, lengths="sharegpt", seed=1)
    b = make_trace(n_requests=50, rate=3.0, lengths="sharegpt", seed=1)
    c = make_trace(n_requests=50, rate=3.0, lengths="sharegpt", seed=2)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.input_len, b.input_len)
    assert not np.array_equal(a.input_len, c.input_len)


def test_replay_sorts_by_arrival(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_len,output_len\n2,10,1\n0,20,2\n1,30,3\n")
    t = read_trace_csv(p)
    assert list(t.arrival_s) == [0, 1, 2] and list(t.input_len) == [20, 30, 10]


def test_a_lengths_csv_needs_no_arrival_column(tmp_path):
    p = tmp_path / "lengths.csv"
    p.write_text("input_len,output_len\n10,1\n20,2\n")
    t = make_trace(n_requests=200, rate=1.0, lengths=str(p), seed=3)
    assert set(zip(t.input_len.tolist(), t.output_len.tolist(), strict=True)) == {(10, 1), (20, 2)}
    with pytest.raises(ConfigError, match="missing column.*arrival_s"):
        read_trace_csv(p)  # a replay does need the arrivals


def test_a_bad_csv_value_is_named_by_row_and_column_as_written(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_len,output_len\n0,10,1\n0,1e9,2\n")
    with pytest.raises(
        ConfigError, match=r"row 2: input_len is 1000000000.0; expected an integer 1\.\.10,000,000$"
    ):
        read_trace_csv(p)


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="exactly one"):
        make_trace(n_requests=5, input_len=4, output_len=4)
    with pytest.raises(ConfigError, match="rate"):
        make_trace(n_requests=5, rate=float("nan"), input_len=4, output_len=4)
    with pytest.raises(UnknownNameError, match="sharegpt"):
        make_trace(n_requests=5, rate=1.0, lengths="sharegtp")
    with pytest.raises(ConfigError, match="num_requests"):
        make_trace(n_requests=0, rate=1.0, input_len=4, output_len=4)


def _two_requests(n_short: int, n_long: int, prompt: int = 100) -> LengthHistogram:
    """Half the requests ``prompt`` + ``n_short`` tokens, half ``prompt`` + ``n_long`` (one-token cells)."""
    return LengthHistogram(
        name="two",
        input_lo=np.array([prompt, prompt]),
        input_hi=np.array([prompt + 1, prompt + 1]),
        output_lo=np.array([n_short, n_long]),
        output_hi=np.array([n_short + 1, n_long + 1]),
        weight=np.array([0.5, 0.5]),
        source="hand-made",
    )


def test_decode_context_weights_each_request_by_its_decode_steps():
    """Two requests of 100 prompt tokens and 11 or 101 output tokens decode 10 and 100 steps at
    contexts 100..109 and 100..199: (1,045 + 14,950) / 110 = 145.4 tokens per running sequence,
    not the 127 of the mean lengths; an engine reserving the whole output holds
    (10 x 111 + 100 x 201) / 110 = 192.8."""
    hist = _two_requests(11, 101)
    assert hist.mean() == (100.0, 56.0)
    assert hist.decode_context(100, 56) == pytest.approx(15_995 / 110)
    assert hist.decode_context(100, 56, reserved=True) == pytest.approx(21_210 / 110)
    same = _two_requests(56, 56)  # fixed lengths: the mean of the contexts 100 .. 154
    assert same.decode_context(100, 56) == pytest.approx(100 + 54 / 2)
    # scaled to other means: prompts of 200, outputs twice as long (22 and 202 tokens: 21 and 201 steps)
    assert hist.decode_context(200, 112) == pytest.approx((21 * 210 + 201 * 300) / 222)


@pytest.mark.parametrize("spread", [np.array([]), np.array([0.1, 0.2]), "0.1", True, [0.1]])
def test_a_length_spread_that_is_not_a_number_is_refused_by_name(spread):
    """An array, a string, a bool or a list as the spread is refused by name (an array's truth
    value would otherwise raise NumPy's ValueError, and a bool would read as a spread of 1)."""
    with pytest.raises(ConfigError, match="^length spread is .*; expected a number from 0 to 1$"):
        make_trace(n_requests=4, rate=1.0, input_len=64, output_len=4, length_spread=spread)
