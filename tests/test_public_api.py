"""The public API (``import hwsim``): every name resolves and is documented, ``import hwsim`` stays
light, and each function does what its docstring says on small cases."""

import inspect
import math
import subprocess
import sys
import textwrap

import matplotlib
import numpy as np
import pandas as pd
import pytest

import hwsim

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OWN = ("roofline", "sweep", "best", "pareto", "serve", "serve_estimate", "experiment", "kernel")
"""The functions ``hwsim/__init__.py`` defines (the rest are re-exports)."""
CHARTS = [n for n in hwsim.plots.__all__ if n != "Chart"]
SMALL_SWEEP = {
    "models": ["llama-3.1-8b"],
    "devices": ["h100-sxm", "l40s"],
    "precision": ["fp16"],
    "batch": [1, 64, 1024],
    "input_len": [1024],
    "output_len": [128],
}


@pytest.fixture(autouse=True)
def _agg_backend():
    """Charts in tests draw off screen, whatever the previous test selected."""
    yield
    matplotlib.use("Agg", force=True)


@pytest.mark.parametrize("name", hwsim.__all__)
def test_every_public_name_resolves_and_is_listed(name):
    assert getattr(hwsim, name) is not None
    assert name in dir(hwsim)


def test_dir_lists_the_public_names_only():
    """Tab completion offers the API, not the typing helpers and modules it imports."""
    assert dir(hwsim) == sorted(hwsim.__all__)
    assert not {"Any", "Mapping", "np", "importlib"} & set(dir(hwsim))


@pytest.mark.parametrize("name", [n for n in hwsim.__all__ if n != "__version__"])
def test_every_public_name_has_a_docstring(name):
    assert (inspect.getdoc(getattr(hwsim, name)) or "").strip(), f"hwsim.{name} has no docstring"


@pytest.mark.parametrize(
    "func",
    [getattr(hwsim, n) for n in OWN] + [getattr(hwsim.plots, n) for n in CHARTS],
    ids=lambda f: f"{f.__module__}.{f.__name__}",
)
def test_own_functions_document_every_parameter(func):
    """Each parameter of the functions written for the public API is named in its docstring."""
    doc = inspect.getdoc(func)
    params = [
        p
        for p in inspect.signature(func).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    undocumented = [p.name for p in params if p.name not in doc]
    assert not undocumented, f"{func.__name__}: {undocumented} not in the docstring"


def test_the_module_docstring_example_runs():
    """The example at the top of ``hwsim/__init__.py`` is code a user will paste: it must run."""
    example = hwsim.__doc__.split("::", 1)[1].split("\n\n``notebooks/``", 1)[0]
    exec(textwrap.dedent(example), {})  # noqa: S102


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        hwsim.nonesuch  # noqa: B018


def test_import_hwsim_leaves_the_heavy_parts_unimported():
    code = (
        "import sys, hwsim; "
        "print([m for m in ('simpy', 'explore.run', 'sim.experiments', 'hwsim.plots', 'matplotlib') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_roofline_places_decode_below_the_ridge_and_never_above_the_roof():
    """Batch-1 decode multiplies each weight by one token: about 1 FLOP per byte in fp16, far
    below an H100's ridge (989e12 / 3.35e12 = 295 FLOP/byte); a 2,048-token prefill is above it."""
    tables = hwsim.roofline("llama-3.1-8b", "h100-sxm", batch=1, input_len=2048)
    assert set(tables) == {"decode", "prefill"}
    for t in tables.values():
        assert (t["achieved_flop_per_s"] <= t["attainable_flop_per_s"] * (1 + 1e-9)).all()
    ffn = {ph: t.set_index("op").loc["ffn_up", "intensity_flop_per_byte"] for ph, t in tables.items()}
    assert ffn["decode"] == pytest.approx(1.0, rel=0.01)
    assert ffn["prefill"] > 295


def test_roofline_gives_an_op_without_math_intensity_zero():
    """A tensor-parallel step's all-reduces do no math and move link bytes only: intensity 0
    FLOP/byte (not 0/0), so the printed table holds no inf or NaN."""
    tables = hwsim.roofline("llama-3.1-8b", "h100-sxm", batch=1, input_len=512, tp=2)
    for t in tables.values():
        ops = t.set_index("op")
        assert ops.loc["allreduce_ffn", "intensity_flop_per_byte"] == 0.0
        assert np.isfinite(t["intensity_flop_per_byte"]).all()


def test_roofline_refuses_a_precision_the_device_cannot_compute():
    with pytest.raises(hwsim.HwsimError):
        hwsim.roofline("llama-3.1-8b", "a100-sxm-80gb", precision="fp4")


def test_sweep_of_a_dict_a_yaml_file_and_an_out_file_agree(tmp_path):
    frame = hwsim.sweep(SMALL_SWEEP)
    assert len(frame) == 2 * 3
    assert (~frame["fits"]).any(), "batch 1024 at 1152 tokens does not fit an L40S"
    spec = tmp_path / "small.yaml"
    spec.write_text("\n".join(f"{k}: {v}" for k, v in SMALL_SWEEP.items()).replace("'", ""), encoding="utf-8")
    out = tmp_path / "small.parquet"
    from_file = hwsim.sweep(spec, out=out)
    assert out.is_file() and not (tmp_path / "small.parquet.parts").exists()
    cols = ["device", "batch", "tpot_s", "fits"]
    pd.testing.assert_frame_equal(frame[cols], from_file[cols])
    pd.testing.assert_frame_equal(from_file, hwsim.sweep(spec, out=out))  # resumed: nothing new


def test_sweep_rejects_an_unknown_key():
    with pytest.raises(hwsim.UnknownNameError):
        hwsim.sweep({**SMALL_SWEEP, "batchsize": [1]})


def test_pareto_by_hand():
    """a (1 s, 10 tok/$) and b (2 s, 20 tok/$) trade off; c (2 s, 5 tok/$) is dominated by both;
    d would dominate everything but does not fit, so it takes no part."""
    frame = pd.DataFrame(
        {
            "device": ["a", "b", "c", "d"],
            "tpot_s": [1.0, 2.0, 2.0, 0.5],
            "tokens_per_usd": [10.0, 20.0, 5.0, 100.0],
            "fits": [True, True, True, False],
        }
    )
    front = hwsim.pareto(frame, "tpot_s", "tokens_per_usd")
    assert list(front["design"]) == ["a", "b"]
    assert list(hwsim.pareto(frame, feasible_only=False)["design"]) == ["d"]


def test_best_ranks_feasible_designs_by_the_objective():
    top = hwsim.best(
        "llama-3.1-8b",
        ["h100-sxm", "l40s"],
        objective="tpot_s",
        top=3,
        tp=[1],
        batches=[1, 8],
        precisions=["fp16"],
    )
    assert len(top) <= 3 and top["tpot_s"].is_monotonic_increasing
    assert not top.duplicated(["device", "n_devices", "precision"]).any()
    assert set(top["arch"]) == {"gpu"}


def test_search_reports_its_progress_design_by_design():
    calls = []
    result = hwsim.search(
        "llama-3.1-8b",
        ["h100-sxm", "l40s", "mi300x"],
        tp=[1, 2],
        batches=[1, 8, 64],
        precisions=["fp16", "fp8"],
        progress=lambda done, total: calls.append((done, total)),
    )
    designs = len(result.all)
    assert designs == 3 * 2 * 3 * 2
    assert calls and calls[-1] == (designs, designs)
    assert {total for _, total in calls} == {designs}
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})  # rising, no repeats


def test_a_misspelt_keyword_is_named_with_its_closest_spellings():
    with pytest.raises(
        hwsim.UnknownNameError, match=r"roofline\(\) takes no argument 'output_len'; closest: input_len"
    ):
        hwsim.roofline("llama-3.1-8b", "h100-sxm", output_len=128)
    with pytest.raises(TypeError, match="'precison'; closest: precision"):  # still a TypeError, as Python's
        hwsim.estimate("llama-3.1-8b", "h100-sxm", batch=1, input_len=8, output_len=8, precison="fp8")


def test_best_explains_an_empty_answer():
    with pytest.raises(hwsim.ConfigError, match="TPOT above"):
        hwsim.best("llama-3.1-8b", ["l40s"], tp=[1], batches=[1], precisions=["fp16"], slo_tpot_s=1e-6)
    with pytest.raises(hwsim.UnknownNameError):
        hwsim.best("llama-3.1-8b", ["l40s"], objective="speed")
    # a search option misspelt is named with the right spelling, not passed on to fail inside
    with pytest.raises(hwsim.UnknownNameError, match="'slo_ttft'; closest: slo_ttft_s"):
        hwsim.best("llama-3.1-8b", ["l40s"], slo_ttft=1.0)
    with pytest.raises(hwsim.UnknownNameError, match="closest: precisions"):
        hwsim.best("llama-3.1-8b", ["l40s"], precision="fp8")


def test_serve_completes_every_request_and_checks_its_inputs():
    run = hwsim.serve("llama-3.1-8b", "h100-sxm", rate=2.0, num_requests=40, input_len=256, output_len=32)
    assert run.metrics["completed"] == 40
    assert run.config["model"] == "llama-3.1-8b"
    with pytest.raises(hwsim.ConfigError, match="either a trace"):
        hwsim.serve("llama-3.1-8b", "h100-sxm", rate=1.0, trace=run.requests)
    with pytest.raises(hwsim.ConfigError, match="exactly one"):
        hwsim.serve("llama-3.1-8b", "h100-sxm", num_requests=5, input_len=8, output_len=8)


def test_serve_estimate_takes_fixed_lengths_or_a_distribution():
    fixed = hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", rate=1.0, input_len=256, output_len=32)
    assert fixed.stable and fixed.requests_per_s == pytest.approx(1.0)
    assert hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", rate=1.0, lengths="sharegpt").stable
    with pytest.raises(hwsim.ConfigError):
        hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", rate=1.0, lengths="sharegpt", input_len=8)


def test_serve_estimate_above_capacity_has_no_steady_latency_but_a_full_batch_tpot():
    """Past the capacity the queue grows without bound (TTFT and end-to-end time infinite, said by
    ``stable``), while the engine decodes full batches: the TPOT of a closed loop that keeps more
    requests in flight than the engine runs."""
    kw = dict(input_len=512, output_len=64, precision="bf16")
    cap = hwsim.serve_estimate("llama-2-13b", "a100-sxm-80gb", rate=0.1, **kw).capacity_requests_per_s
    over = hwsim.serve_estimate("llama-2-13b", "a100-sxm-80gb", rate=2.0 * cap, **kw)
    full = hwsim.serve_estimate("llama-2-13b", "a100-sxm-80gb", concurrency=100_000, **kw)
    assert not over.stable and math.isinf(over.ttft_s) and math.isinf(over.e2e_s)
    assert over.tpot_s == pytest.approx(full.tpot_s, rel=1e-6) and math.isfinite(over.tpot_s)
    assert over.requests_per_s == pytest.approx(cap)


def test_experiments_and_kernels_by_name():
    sail = hwsim.experiment("sail")
    assert callable(sail.run) and sail.PAPER_SETUP
    assert set(hwsim.paper_setup(["sail"])["experiment"]) == {"sail"}
    with pytest.raises(hwsim.UnknownNameError, match="closest: sail"):
        hwsim.experiment("sali")
    lut = hwsim.kernel("lut_gemv")
    w, x = np.arange(-4, 4).reshape(2, 4), np.array([1, -2, 3, 4])
    y, _ = lut.lut_gemv(w, x, act_bits=4, group=2)
    np.testing.assert_array_equal(y.ravel(), w @ x)
    with pytest.raises(hwsim.UnknownNameError, match="lut_gemv"):
        hwsim.kernel("lut")


def test_verdicts_add_the_verdict():
    rows = pd.DataFrame(
        [
            {
                "experiment": "sail",
                "metric": "speedup_vs_n1",
                "condition": "c",
                "paper_value": 10.0,
                "hwsim_value": 11.0,
                "ratio": 1.1,
                "source": "s",
            }
        ]
    )
    assert list(hwsim.verdicts(rows)["verdict"]) == ["pass"]


def _chart_inputs() -> dict[str, tuple[tuple, dict]]:
    est = hwsim.estimate(
        "llama-3.1-8b", "h100-sxm", batch=[1, 8, 64], input_len=512, output_len=64
    ).to_frame()
    two = pd.concat(
        [
            hwsim.estimate("llama-3.1-8b", d, batch=8, input_len=512, output_len=64).to_frame()
            for d in ("h100-sxm", "l40s")
        ]
    )
    tables = hwsim.roofline("llama-3.1-8b", "h100-sxm", batch=8, input_len=512)
    front = hwsim.pareto(est, "tpot_s", "tokens_per_usd")
    run = hwsim.serve("llama-3.1-8b", "h100-sxm", rate=2.0, num_requests=20, input_len=128, output_len=16)
    sim = hwsim.simulate("1xa100", "llama-3.1-8b", batch=2, input_len=64, output_len=4)
    tornado = pd.DataFrame(
        {
            "parameter": ["p", "p", "q", "q"],
            "end": ["low", "high", "low", "high"],
            "metric": "m",
            "value": [1.0, 3.0, 1.5, 2.5],
            "baseline": 2.0,
        }
    )
    curve = pd.DataFrame(
        {
            "rate": [1.0, 2.0, 1.0, 2.0],
            "source": ["simulation", "simulation", "analytic", "analytic"],
            "mean_output_len": 16.0,
            "ttft_s_mean": [0.1, 0.2, 0.1, 0.2],
            "tpot_s_mean": [0.01, 0.02, 0.01, 0.02],
            "ttft_s_p99": [0.2, 0.4, np.nan, np.nan],
            "tpot_s_p99": [0.02, 0.04, np.nan, np.nan],
            "output_tokens_per_s": [16.0, 32.0, np.nan, np.nan],
        }
    )
    return {
        "roofline": ((tables, "h100-sxm"), {}),
        "breakdown": ((tables,), {}),
        "metric_vs_batch": ((est, "decode_tokens_per_s"), {}),
        "compare": ((two,), {}),
        "pareto": ((est, front), {}),
        "heatmap": ((two, "tpot_s"), {}),
        "tornado": ((tornado,), {}),
        "timeline": ((sim.timeline,), {}),
        "serving_timeline": ((run,), {}),
        "latency_vs_rate": ((curve,), {"slo_ttft_s": 0.5}),
    }


def test_every_chart_draws_and_restores_the_backend_and_rcparams(tmp_path):
    """Each chart comes back as PNG and SVG; the back end selected before (here ``svg``, standing
    in for Jupyter's inline one) and the rcParams are as they were."""
    inputs = _chart_inputs()
    assert set(inputs) == set(CHARTS)
    matplotlib.use("svg", force=True)
    grid = matplotlib.rcParams["axes.grid"]
    for name, (args, kwargs) in inputs.items():
        chart = getattr(hwsim.plots, name)(*args, **kwargs)
        assert chart.png.startswith(PNG_MAGIC) and chart._repr_png_() == chart.png, name
        assert "<svg" in chart.svg, name
        assert matplotlib.get_backend() == "svg", f"{name} left the back end at {matplotlib.get_backend()}"
        assert matplotlib.rcParams["axes.grid"] == grid, name
    png, svg = chart.save(tmp_path / "chart")
    assert png.read_bytes() == chart.png and svg.suffix == ".svg"
    assert "kB" in repr(chart) and len(repr(chart)) < 100


def test_serve_estimate_of_a_distribution_keeps_its_length_bias():
    """Drawn from ShareGPT, the running sequences hold more context than the mean prompt plus
    half the mean output (a long answer stays in the batch longer): Llama-2-13B on one A100
    decodes slower and fits fewer sequences than at the same fixed mean lengths, as the
    simulation of that trace does (capacity about 8.4 requests/s)."""
    from workloads.traces import load_lengths

    mean_in, mean_out = load_lengths("sharegpt").mean()
    kw = dict(rate=4.0, precision="bf16", framework="vllm")
    drawn = hwsim.serve_estimate("llama-2-13b", "a100-sxm-80gb", lengths="sharegpt", **kw)
    fixed = hwsim.serve_estimate("llama-2-13b", "a100-sxm-80gb", input_len=mean_in, output_len=mean_out, **kw)
    assert drawn.tpot_s > fixed.tpot_s
    assert drawn.capacity_requests_per_s < 0.9 * fixed.capacity_requests_per_s


def test_serve_estimate_reads_a_trace_files_lengths(tmp_path):
    """A trace CSV's requests are the distribution: one repeated (prompt, output) pair prices as
    those fixed lengths; two pairs hold the length-biased context, more than their means do."""
    same = tmp_path / "same.csv"
    same.write_text("arrival_s,input_len,output_len\n" + "".join(f"{i * 0.1},300,80\n" for i in range(20)))
    kw = dict(rate=2.0, precision="bf16", framework="vllm")
    drawn = hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", lengths=str(same), **kw)
    fixed = hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", input_len=300, output_len=80, **kw)
    assert drawn.tpot_s == pytest.approx(fixed.tpot_s, rel=1e-9)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("arrival_s,input_len,output_len\n0,300,10\n0.1,300,150\n")
    biased = hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", lengths=str(mixed), **kw)
    at_means = hwsim.serve_estimate("llama-3.1-8b", "h100-sxm", input_len=300, output_len=80, **kw)
    assert biased.tpot_s > at_means.tpot_s
