"""MXFP4 experts (gpt-oss) under an engine whose MoE kernels for them launch more kernels."""

from dataclasses import replace

import numpy as np
import pytest

from hwmodels import registry
from hwmodels.calibration import params
from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import load_device
from hwmodels.placement import Placement
from workloads.errors import ConfigError
from workloads.graph import build_ops
from workloads.model_spec import load_model


def _step(device: str, precision: str = "mxfp4", framework: str = "vllm", model: str = "gpt-oss-20b"):
    from workloads.quant import Quant

    spec = load_model(model)
    ops = build_ops(spec, Quant.from_name(precision), phase="decode", batch=1, context=1000)
    dev = load_device(device)
    return ops, registry.get(dev.arch).estimate(ops, dev, Placement(framework=framework))


def test_the_experts_carry_their_stored_bits():
    """gpt-oss's MXFP4 checkpoint: 4-bit expert weights with an 8-bit scale per 32 (4.25 bits);
    its attention, router and LM head BF16 (16); norms hold no weights (0)."""
    ops, _ = _step("h100-sxm")
    bits = dict(zip(ops.name, ops.weight_bits, strict=True))
    assert bits["experts_up"] == bits["experts_down"] == 4.25
    assert bits["qkv_proj"] == bits["router"] == bits["lm_head"] == 16.0
    assert bits["attn_norm"] == 0.0


def test_vllm_on_hopper_launches_its_routing_chain_once_per_moe_layer(monkeypatch):
    """On an H100, vLLM's matmul_ogs MoE adds 15 launches per MoE layer (14 routing-metadata
    kernels and a top-k reduction) at its 2 us graph-node cost: 24 layers x 15 x 2 us = 0.72 ms
    more a decode step than the same step without the term; the other ops are unchanged."""
    ops, hopper = _step("h100-sxm")
    table = params._frameworks()
    monkeypatch.setitem(table, "vllm", replace(table["vllm"], mx4_moe=None))
    _, plain = _step("h100-sxm")
    extra = (hopper.overhead_s - plain.overhead_s).reshape(-1)
    up = ops.name == "experts_up"
    assert np.allclose(extra[up], 15 * 2e-6) and np.allclose(extra[~up], 0.0)
    step = float(hopper.total_time_s() - plain.total_time_s())
    assert step == pytest.approx(24 * 15 * 2e-6, rel=1e-9)


def test_the_routing_chain_is_vllm_on_hopper_with_mxfp4_experts_only():
    """An A100 (vLLM runs MXFP4 experts on Marlin there), another engine, or experts of another
    format launch no more than the priced kernels."""
    assert framework_terms("vllm").mx4_moe.extra_kernels == 15
    for device, precision, framework in [
        ("a100-sxm-80gb", "mxfp4", "vllm"),
        ("h100-sxm", "mxfp4", "tensorrt-llm"),
        ("h100-sxm", "fp8", "vllm"),
    ]:
        ops, _ = _step(device, precision, framework)
        model = registry.get("gpu")
        assert not np.any(model.extra_launches(ops, load_device(device), Placement(framework=framework)))


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"devices": "h100-sxm", "weight_bits": 4.25, "extra_kernels": 15, "source": "s"}, "devices"),
        ({"devices": ["h100-sxm"], "weight_bits": 0, "extra_kernels": 15, "source": "s"}, "weight_bits"),
        (
            {"devices": ["h100-sxm"], "weight_bits": 4.25, "extra_kernels": 1.5, "source": "s"},
            "extra_kernels",
        ),
        ({"devices": ["h100-sxm"], "weight_bits": 4.25}, "expected the keys"),
    ],
)
def test_a_malformed_mx4_moe_entry_is_named(entry, field):
    with pytest.raises(ConfigError, match=field):
        params._mx4_moe(entry, "frameworks.yaml: frameworks.x.mx4_moe")
