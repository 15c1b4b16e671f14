"""SGLang v0.4's weight-absorbed MLA prefill (``absorbed_mla_prefill`` in frameworks.yaml)."""

from dataclasses import replace

import numpy as np
import pytest

from hwmodels import registry
from hwmodels.calibration import params
from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import load_device
from hwmodels.placement import Placement
from roofline.estimate import estimate
from workloads.errors import ConfigError
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

FP8 = Quant.from_name("fp8-kv16")


@pytest.fixture(scope="module")
def deepseek():
    return load_model("deepseek-r1")


def _prefill(spec, form, tokens=3200.0, context=0.0):
    return build_ops(
        spec, FP8, phase="prefill", batch=2, tokens=tokens, context=context, tp=8, mla_prefill=form
    )


def test_an_absorbed_prefill_attends_over_the_latent_by_hand(deepseek):
    """DeepSeek-R1 (128 heads, 16 a device at TP 8; qk 128 + 64, v 128; latent 512 + 64): two
    prompts of 3,200 tokens after 800 cached ones attend 800 + 3,201 / 2 = 2,400.5 keys a query;
    expanded, 2 x 16 x 3,200 x 2,400.5 x (192 + 128) x 2 FLOPs a layer; absorbed, the same pairs
    over 576 + 512 dims, 3.4x as many, with the queries and outputs projected through the latent
    (q_absorb, v_absorb) instead of the cache up-projected (kv_up)."""
    expanded = _prefill(deepseek, "expanded", context=800.0)
    absorbed = _prefill(deepseek, "absorbed", context=800.0)
    pairs = 2 * 16 * 3200 * 2400.5
    (att,) = np.flatnonzero(expanded.name == "attention")
    (lat,) = np.flatnonzero(absorbed.name == "latent_attention")
    assert float(expanded.flops[att]) == pytest.approx(pairs * (192 + 128) * 2)
    assert float(absorbed.flops[lat]) == pytest.approx(pairs * (576 + 512) * 2)
    assert absorbed.kind[lat] == "attention" and absorbed.count[lat] == 61
    assert "kv_up" in expanded.name and "kv_up" not in absorbed.name
    assert {"q_absorb", "v_absorb"} <= set(absorbed.name) and "q_absorb" not in expanded.name
    (qa,) = np.flatnonzero(absorbed.name == "q_absorb")
    assert float(absorbed.flops[qa]) == pytest.approx(2 * 3200 * 16 * 512 * 128 * 2)
    # decode is absorbed whatever the prefill form, and a model without MLA has no latent form
    decode = [
        build_ops(deepseek, FP8, phase="decode", batch=2, context=800, tp=8, mla_prefill=f)
        for f in ("expanded", "absorbed")
    ]
    assert np.array_equal(decode[0].flops, decode[1].flops) and "latent_attention" not in decode[0].name
    llama = load_model("llama-3.1-8b")
    a, b = (
        build_ops(llama, FP8, phase="prefill", batch=1, tokens=512, mla_prefill=f)
        for f in ("expanded", "absorbed")
    )
    assert list(a.name) == list(b.name) and np.array_equal(a.flops, b.flops)


def test_an_unknown_prefill_form_is_named(deepseek):
    with pytest.raises(ConfigError, match="mla_prefill is 'latent'; expected one of expanded, absorbed"):
        _prefill(deepseek, "latent")


def _time(spec, framework, device="h200", form=None):
    dev = load_device(device)
    placement = Placement(tp=8, framework=framework)
    ops = build_ops(spec, FP8, phase="prefill", batch=4, tokens=3200.0, **placement.graph_kw)
    return ops, registry.get(dev.arch).estimate(ops, dev, placement)


def test_sglang_0_4_prices_the_latent_attention_at_its_kernels_rate_by_hand(deepseek, monkeypatch):
    """Under sglang-0.4 the placement builds the prefill absorbed, and its latent attention takes
    its FLOPs over 0.066 of the H200's BF16 tensor peak (989.4 TFLOP/s): 4 prompts of 3,200 tokens
    at 16 heads a device, 61 layers, about 0.67 s. Doubling the efficiency halves that op's time;
    the later SGLang (sglang) and vLLM V0 keep the expanded form."""
    terms = framework_terms("sglang-0.4").absorbed_mla_prefill
    assert terms.attention_efficiency == 0.066
    assert Placement(tp=8, framework="sglang-0.4").graph_kw["mla_prefill"] == "absorbed"
    assert Placement(tp=8, framework="sglang").graph_kw["mla_prefill"] == "expanded"
    assert Placement(tp=8, framework="vllm-v0").graph_kw["mla_prefill"] == "expanded"
    ops, cost = _time(deepseek, "sglang-0.4")
    (lat,) = np.flatnonzero(ops.name == "latent_attention")
    flops = 4 * 16 * 3200 * 1600.5 * (576 + 512) * 2 * 61
    peak = load_device("h200").peak("bf16")
    assert peak == pytest.approx(989.4e12, rel=0.01)
    assert float(cost.compute_s.reshape(ops.n_ops, -1)[lat, 0] * 61) == pytest.approx(flops / (0.066 * peak))
    assert float(cost.compute_s.reshape(ops.n_ops, -1)[lat, 0] * 61) == pytest.approx(0.666, rel=0.02)
    table = params._frameworks()
    faster = replace(table["sglang-0.4"], absorbed_mla_prefill=replace(terms, attention_efficiency=0.132))
    monkeypatch.setitem(table, "sglang-0.4", faster)
    _, doubled = _time(deepseek, "sglang-0.4")
    ratio = cost.compute_s.reshape(ops.n_ops, -1)[lat, 0] / doubled.compute_s.reshape(ops.n_ops, -1)[lat, 0]
    assert float(ratio) == pytest.approx(2.0)
    others = np.arange(ops.n_ops) != lat
    assert np.allclose(
        cost.compute_s.reshape(ops.n_ops, -1)[others], doubled.compute_s.reshape(ops.n_ops, -1)[others]
    )


def test_the_absorbed_prefill_reaches_the_analytic_path(monkeypatch):
    """``estimate`` prices sglang-0.4's prefill absorbed: without the term its TTFT falls by the
    latent attention's ~0.67 s less the expanded attention and kv_up it replaces, its decode the
    same; a model without MLA prices alike either way."""
    kw = dict(
        model="deepseek-r1", device="h200", precision="fp8-kv16", batch=4, input_len=3200, output_len=64, tp=8
    )
    table = params._frameworks()
    absorbed = estimate(framework="sglang-0.4", **kw)
    llama = dict(kw, model="llama-3.1-70b", precision="fp8")
    llama_absorbed = estimate(framework="sglang-0.4", **llama)
    monkeypatch.setitem(table, "sglang-0.4", replace(table["sglang-0.4"], absorbed_mla_prefill=None))
    expanded = estimate(framework="sglang-0.4", **kw)
    assert 0.5 < float(absorbed.ttft_s) - float(expanded.ttft_s) < 0.67
    assert float(absorbed.tpot_s) == pytest.approx(float(expanded.tpot_s))
    assert float(estimate(framework="sglang-0.4", **llama).ttft_s) == pytest.approx(
        float(llama_absorbed.ttft_s)
    )


def test_the_kernels_rate_is_the_one_derived_from_the_two_runs():
    """``roofline.mla_prefill_fit`` reads the rate off SGLang PR #3550's run pair: hwsim prices
    the FlashInfer run's prefills (linear layers and expanded attention) within 10% of its
    89.3 s, the rest of the Triton run's ~351 s is attention at 0.066 of the BF16 peak, the value
    frameworks.yaml carries."""
    from roofline.mla_prefill_fit import derive

    d = derive()
    assert d.flashinfer_s == pytest.approx(89.26, abs=0.05) and d.triton_s == pytest.approx(350.7, abs=0.1)
    assert d.linear_s + d.expanded_attention_s == pytest.approx(d.flashinfer_s, rel=0.10)
    assert round(d.efficiency, 3) == framework_terms("sglang-0.4").absorbed_mla_prefill.attention_efficiency
    from roofline.mla_prefill_fit import frames

    (frame,) = frames().values()  # the report's chart: both runs at the shipped rate
    ratio = (frame["predicted"] / frame["measured"]).to_numpy()
    assert 0.9 < ratio[0] < 1.1 and ratio[1] == pytest.approx(1.0, abs=0.01)


def test_without_the_radix_cache_a_prompts_first_chunk_attends_expanded(deepseek):
    """SGLang v0.4 absorbs only over a cached prefix: with --disable-radix-cache a prompt's first
    chunk (nothing cached) attends expanded and its later chunks absorbed over its own earlier
    ones. The step pricer prices a first chunk of 2,000 tokens at the expanded form's time (less
    than the absorbed, by the latent attention's time less the expanded's), a later chunk as
    before; serving four such prompts without the cache reaches first tokens sooner (a model
    without MLA does not change); a row's notes stating the flag turn the cache off."""
    from hwmodels.device_spec import catalog
    from sim.serving.serve import serve
    from sim.serving.step_cost import StepPricer
    from workloads.traces import Trace

    dev = catalog()["h200"]
    kw = dict(max_tokens=8192, max_seqs=8, max_context=8192)
    placement = Placement(tp=8, framework="sglang-0.4")
    cached = StepPricer(deepseek, FP8, dev, placement, **kw)
    uncached = StepPricer(deepseek, FP8, dev, placement, expanded_first_chunks=True, **kw)
    first = [p.step(0, 0.0, [(2000, 0)], 1).time_s for p in (cached, uncached)]
    later = [p.step(0, 0.0, [(2000, 4000)], 1).time_s for p in (cached, uncached)]
    # absorbed: 2 x 2,000 x 16 heads x 1,000.5 keys x (576 + 512) x 61 layers = 4.2 TFLOP at 0.066 of
    # the BF16 peak, 65 ms; expanded it is a few ms (and kv_up a few more)
    assert 0.045 < first[0] - first[1] < 0.065
    assert later[0] == pytest.approx(later[1], rel=1e-12)
    trace = Trace(np.full(4, 2000), np.full(4, 8), concurrency=4)
    runs = [
        serve(
            "deepseek-r1", "h200", trace, tp=8, framework="sglang-0.4", precision="fp8-kv16", prefix_caching=c
        )
        for c in (None, False)
    ]
    assert runs[1].metrics["ttft_s_mean"] < runs[0].metrics["ttft_s_mean"] - 0.15  # four such prompts
    llama = [
        serve("llama-3.1-8b", "h200", trace, framework="sglang-0.4", precision="bf16", prefix_caching=c)
        for c in (None, False)
    ]
    assert llama[0].metrics["ttft_s_mean"] == pytest.approx(llama[1].metrics["ttft_s_mean"])
    from roofline.validation import load_measured, resolve

    row = load_measured().set_index("id").loc["vg113"].copy()  # dstack's SGLang 0.4.3 run
    assert "prefix_caching" not in resolve(row.rename("vg113")).serving
    row["notes"] += " Server: sglang.launch_server --disable-radix-cache."
    assert resolve(row.rename("vg113")).serving["prefix_caching"] is False
