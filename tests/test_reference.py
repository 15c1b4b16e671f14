"""The golden transformer: prefill + decode equals the full forward pass; its FLOPs equal the OpTable's."""

import numpy as np
import pytest

from workloads.graph import build_ops
from workloads.quant import Quant
from workloads.reference import GoldenTransformer, tiny_spec


@pytest.fixture(scope="module")
def model():
    return GoldenTransformer(tiny_spec(), seed=7)


def test_prefill_then_decode_equals_full_forward(model):
    rng = np.random.default_rng(1)
    seq = rng.integers(0, model.spec.vocab_size, size=(3, 12))
    full, _, _ = model.forward(seq, all_logits=True)
    incremental = model.generate_logits(seq[:, :8], seq[:, 8:])  # prefill 8, then 4 decode steps
    np.testing.assert_allclose(incremental[:, 1:], full[:, 8:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(incremental[:, 0], full[:, 7], rtol=1e-5, atol=1e-5)


def test_same_seed_same_weights():
    a, b = GoldenTransformer(tiny_spec(), seed=3), GoldenTransformer(tiny_spec(), seed=3)
    tokens = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(a.forward(tokens)[0], b.forward(tokens)[0])


@pytest.mark.parametrize("batch,prompt,ctx", [(1, 5, 0), (2, 9, 0), (3, 1, 11)])
def test_flop_count_equals_optable(model, batch, prompt, ctx):
    spec = model.spec
    rng = np.random.default_rng(0)
    cache = None
    if ctx:
        _, cache, _ = model.forward(rng.integers(0, spec.vocab_size, size=(batch, ctx)))
    _, _, counter = model.forward(rng.integers(0, spec.vocab_size, size=(batch, prompt)), cache)
    phase = "decode" if prompt == 1 and ctx else "prefill"
    ops = build_ops(spec, Quant.from_name("fp32"), phase=phase, batch=batch, tokens=prompt, context=ctx)
    for op, flops in counter.by_op.items():
        assert ops.per_step("flops")[ops.name == op].sum() == pytest.approx(flops, rel=1e-12), op
    assert ops.total("flops") == pytest.approx(counter.total, rel=1e-12)
