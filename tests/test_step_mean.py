"""The exact mean of a decode run equals the step-by-step average."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.device_spec import load_device
from hwmodels.step_mean import mean_max_affine, mean_step
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

floats = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 200), c0=floats, c1=floats, m0=floats, m1=floats)
def test_mean_max_affine_equals_brute_force(n, c0, c1, m0, m1):
    if n == 1:
        c1, m1 = c0, m0
    x = np.arange(n) / max(n - 1, 1)
    brute = np.maximum(c0 + (c1 - c0) * x, m0 + (m1 - m0) * x).mean()
    got = mean_max_affine(np.array(c0), np.array(c1), np.array(m0), np.array(m1), np.array(n))
    assert abs(got - brute) <= 1e-9 * max(1.0, abs(brute))


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 1024),
    ctx=st.integers(1, 8192),
    steps=st.integers(1, 300),
    model=st.sampled_from(["llama-2-7b", "llama-3.1-8b", "mixtral-8x7b"]),
)
def test_mean_step_equals_step_by_step(batch, ctx, steps, model):
    spec, q, dev, gpu = (
        load_model(model),
        Quant.from_name("fp16"),
        load_device("h100-sxm"),
        registry.get("gpu"),
    )
    every = gpu.estimate(build_ops(spec, q, phase="decode", batch=batch, context=ctx + np.arange(steps)), dev)
    first = gpu.estimate(build_ops(spec, q, phase="decode", batch=batch, context=ctx), dev)
    last = gpu.estimate(build_ops(spec, q, phase="decode", batch=batch, context=ctx + steps - 1), dev)
    t, dyn = mean_step(first, last, np.array(steps))
    np.testing.assert_allclose(t, every.total_time_s().mean(), rtol=1e-9)
    np.testing.assert_allclose(dyn, every.dynamic_energy_j.sum(axis=0).mean(), rtol=1e-9)
