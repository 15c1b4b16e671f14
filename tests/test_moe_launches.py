"""MoE layers whose engine launches more kernels than the op table counts: MXFP4 experts
(gpt-oss) under vLLM on Hopper, DeepSeek's block-scaled FP8 experts under TensorRT-LLM's early
PyTorch modules."""

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
    monkeypatch.setitem(table, "vllm", replace(table["vllm"], moe_launches=()))
    _, plain = _step("h100-sxm")
    extra = (hopper.overhead_s - plain.overhead_s).reshape(-1)
    up = ops.name == "experts_up"
    assert np.allclose(extra[up], 15 * 2e-6) and np.allclose(extra[~up], 0.0)
    step = float(hopper.total_time_s() - plain.total_time_s())
    assert step == pytest.approx(24 * 15 * 2e-6, rel=1e-9)


def test_the_routing_chain_is_vllm_on_hopper_with_mxfp4_experts_only():
    """An A100 (vLLM runs MXFP4 experts on Marlin there), another engine, or experts of another
    format launch no more than the priced kernels."""
    assert [e.extra_kernels for e in framework_terms("vllm").moe_launches] == [15]
    for device, precision, framework in [
        ("a100-sxm-80gb", "mxfp4", "vllm"),
        ("h100-sxm", "mxfp4", "tensorrt-llm"),
        ("h100-sxm", "fp8", "vllm"),
    ]:
        ops, _ = _step(device, precision, framework)
        model = registry.get("gpu")
        assert not np.any(model.extra_launches(ops, load_device(device), Placement(framework=framework)))


def test_early_trtllm_deepseek_layers_launch_37_kernels(monkeypatch):
    """TensorRT-LLM's early PyTorch modules launch about 37 kernels in a DeepSeek-R1 MoE layer
    (read from its code); hwsim's op table counts 22 there, so 15 more are charged, at the eager
    framework's 20 us launch; a BF16 run of the same model (no block-scaled experts) pays none."""
    from hwmodels.roofline_model import _launches
    from workloads.quant import Quant

    spec = load_model("deepseek-r1")
    ops = build_ops(spec, Quant.from_name("fp8-kv16"), phase="decode", batch=4, context=3600, tp=8)
    per_layer = sum(k for k, c in zip(_launches(ops, True), ops.count, strict=True) if c in (61, 58))
    assert per_layer == 22
    dev, place = load_device("h200"), Placement(tp=8, framework="tensorrt-llm-pytorch-eager")
    extra = registry.get("gpu").extra_launches(ops, dev, place)
    assert extra[list(ops.name).index("experts_up")] == 15 and extra.sum() == 15
    bf16 = build_ops(spec, Quant.from_name("bf16"), phase="decode", batch=4, context=3600, tp=8)
    assert not registry.get("gpu").extra_launches(bf16, dev, place).any()


@pytest.mark.parametrize(
    "entry, field",
    [
        ([{"devices": "h100-sxm", "weight_bits": 4.25, "extra_kernels": 15, "source": "s"}], "devices"),
        ([{"devices": ["h100-sxm"], "weight_bits": 0, "extra_kernels": 15, "source": "s"}], "weight_bits"),
        ([{"extra_kernels": 1.5, "source": "s"}], "extra_kernels"),
        ([{"block_scaled": "yes", "extra_kernels": 1, "source": "s"}], "block_scaled"),
        ([{"weight_bits": 4.25, "extra_kernels": 15}], "expected the keys"),
        ({"extra_kernels": 15, "source": "s"}, "expected a list"),
    ],
)
def test_a_malformed_moe_launches_entry_is_named(entry, field):
    with pytest.raises(ConfigError, match=field):
        params._moe_launches(entry, "frameworks.yaml: frameworks.x.moe_launches")
