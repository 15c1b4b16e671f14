"""Shared fixtures."""

import pytest

import hwmodels  # noqa: F401  (registers the cost models)
from hwmodels.device_spec import load_device
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant


@pytest.fixture(scope="session")
def small_ops():
    """A decode step and a prefill of Llama-3.1-8B, fp16."""
    spec = load_model("llama-3.1-8b")
    q = Quant.from_name("fp16")
    return {
        "decode": build_ops(spec, q, phase="decode", batch=8, context=2048),
        "prefill": build_ops(spec, q, phase="prefill", batch=2, tokens=1024),
    }


@pytest.fixture(scope="session")
def a100():
    return load_device("a100-sxm-80gb")
