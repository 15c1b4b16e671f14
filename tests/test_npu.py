"""Phone NPU: chunked INT8 prefill with outlier correction against the float golden model; counts."""

import numpy as np
import pytest

from hwmodels.kernels.npu_prefill import LINEARS, calibrate, chunked_prefill
from hwmodels.npu import prefill_counts
from workloads.reference import GoldenTransformer, tiny_spec

TOLERANCE = 0.10
"""Relative L2 error of the last position's logits allowed for per-tensor INT8 with outlier correction
(2.6-9.2% on the random-weight golden model; chunking itself is exact, see below)."""


@pytest.fixture(scope="module")
def setup():
    model = GoldenTransformer(
        tiny_spec(n_layers=2, hidden=64, heads=4, kv_heads=2, ffn=160, vocab=97), seed=3
    )
    rng = np.random.default_rng(0)
    cal = calibrate(model, rng.integers(0, 97, size=(1, 64)))
    return model, cal, rng


@pytest.mark.parametrize("n_tokens,chunk", [(45, 16), (32, 16), (7, 8), (50, 64)])
def test_chunked_int8_prefill_matches_float_and_counts(setup, n_tokens, chunk):
    model, cal, rng = setup
    tokens = rng.integers(0, 97, size=(1, n_tokens))
    reference, _, _ = model.forward(tokens)
    logits, counts = chunked_prefill(model, tokens, cal, chunk)
    assert np.linalg.norm(logits - reference[0]) / np.linalg.norm(reference[0]) < TOLERANCE
    outliers = {key: len(ch) for key, ch in cal.outliers.items()}
    predicted = prefill_counts(model.spec, n_tokens, chunk, outliers)
    assert counts == predicted
    assert counts.npu_launches == -(-n_tokens // chunk) * model.spec.n_layers * len(LINEARS)


def test_outlier_correction_reduces_the_error(setup):
    model, cal, rng = setup
    tokens = rng.integers(0, 97, size=(1, 40))
    reference = model.forward(tokens)[0][0]
    with_shadow, _ = chunked_prefill(model, tokens, cal, 16)
    bare = type(cal)(dict(cal.clip), {k: np.array([], dtype=int) for k in cal.outliers})
    without, counts = chunked_prefill(model, tokens, bare, 16)
    err = lambda x: np.linalg.norm(x - reference) / np.linalg.norm(reference)  # noqa: E731
    assert err(with_shadow) < err(without) and counts.outlier_macs == 0


def test_chunking_is_exact_given_the_same_quantization(setup):
    """Causal chunks attending to earlier chunks' KV give the same logits as one chunk of the whole prompt."""
    model, cal, rng = setup
    tokens = rng.integers(0, 97, size=(1, 37))
    one, _ = chunked_prefill(model, tokens, cal, 37)
    many, counts = chunked_prefill(model, tokens, cal, 8)
    np.testing.assert_allclose(many, one, rtol=1e-9, atol=1e-9)
    assert counts.chunks == 5 and counts.padded_tokens == 3


def test_each_mechanism_off_lowers_prefill_speed():
    from sim.experiments import mllm_npu

    ab = mllm_npu.ablation(prompt=512).set_index("case")["tokens_per_s"]
    full = ab["all three"]
    assert all(ab[c] < full for c in ("no out-of-order", "no shadow outliers", "no chunking"))


def test_npu_schedule_overlaps_processors():
    from sim.experiments import mllm_npu

    r = mllm_npu.prefill("qwen1.5-1.8b", 256)
    u = r["utilization"]
    assert u["npu"] > 0.3 and u["cpu"] > 0.05 and "gpu" not in u  # float ops on the CPU, as mllm runs them
    assert u["npu"] + u["cpu"] > 1.0  # busy at once
    on_gpu = mllm_npu.prefill("qwen1.5-1.8b", 256, mllm_npu.Mechanisms(float_unit="gpu"))["utilization"]
    assert on_gpu["gpu"] > 0.01 and on_gpu["cpu"] < u["cpu"]


def test_paper_baseline_means_use_the_papers_own_cells():
    """The paper-side means are the Fig. 14/15 bar ratios of the same cells: by hand, the llama.cpp
    speedups of Qwen1.5-1.8B are 333/68, 564/65 and 1106/57."""
    from sim.experiments import mllm_npu

    qwen = [mllm_npu.PAPER_FIG14[("qwen1.5-1.8b", p)] for p in (64, 256, 1024)]
    assert [n / c for n, c, _ in qwen] == pytest.approx([4.897, 8.677, 19.404], abs=1e-3)
    assert all(k[0] in mllm_npu.MODELS and k[1] in mllm_npu.PROMPTS for k in mllm_npu.PAPER_FIG14)
    assert set(mllm_npu.PAPER_FIG14) == set(mllm_npu.PAPER_FIG15)


@pytest.mark.parametrize("n_tokens,chunk", [(45, 16), (7, 8), (50, 64)])
def test_graph_actions_sum_to_the_kernels_counts(setup, n_tokens, chunk):
    """The experiment prices one INT8 graph per chunk, layer and linear from ``action_counts``;
    summed over the prompt they are the launches, multiply-adds and weight bytes the reference
    kernel performs (``prefill_counts``, tested equal to the kernel above)."""
    from hwmodels.npu import action_counts, linear_shapes, total_actions

    model, cal, rng = setup
    spec = model.spec
    chunks = -(-n_tokens // chunk)
    total = total_actions(
        [
            action_counts(chunk, k, n)
            for _ in range(chunks * spec.n_layers)
            for k, n in linear_shapes(spec).values()
        ]
    )
    counts = prefill_counts(spec, n_tokens, chunk, {})
    assert (total.launches, total.int8_macs, total.weight_bytes) == (
        counts.npu_launches,
        counts.npu_macs,
        counts.npu_weight_bytes,
    )


def test_graph_time_from_actions_by_hand():
    """A 256-row chunk through a 2048 x 5632 INT8 linear on the Snapdragon 8 Gen 3 NPU: one launch
    at 200 us plus 2 x 256 x 2048 x 5632 FLOPs at the class's INT8 efficiency (fitted on AI Hub
    rows); 11.5 MB of weights and 1.97 MB of activations at 0.7 x the LPDDR5X bandwidth."""
    from hwmodels.calibration.params import params_for
    from hwmodels.device_spec import load_device
    from hwmodels.npu import action_counts, graph_time_s

    npu = load_device("sd8g3-npu")
    eff = params_for("npu", "mobile-npu")["compute_efficiency"].value
    busy, memory = graph_time_s(action_counts(256, 2048, 5632), npu)
    assert busy == pytest.approx(200e-6 + 2 * 256 * 2048 * 5632 / (npu.peak("int8") * eff))
    assert memory == pytest.approx((2048 * 5632 + 256 * (2048 + 5632)) / (npu.memory.bw_bytes_per_s * 0.7))


@pytest.mark.parametrize("field", ["launches", "int8_macs", "weight_bytes", "act_bytes"])
def test_tripling_any_npu_action_changes_the_graph_time(field):
    from dataclasses import replace

    from hwmodels.device_spec import load_device
    from hwmodels.npu import action_counts, graph_time_s

    npu = load_device("sd8g3-npu")
    a = action_counts(256, 2048, 5632)
    assert graph_time_s(replace(a, **{field: 3 * getattr(a, field)}), npu) != graph_time_s(a, npu)
