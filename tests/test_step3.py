"""Step-3 AFD: hwsim's per-token work, the paper's cost model, the 2A2F deployment."""

from __future__ import annotations

import pytest

from sim.experiments import step3
from workloads.model_spec import load_model


def test_per_token_work_by_hand():
    """Qwen3-235B-A22B reads 94 layers x 4 KV heads x 128 x (K and V) x 1 byte per cached token;
    its attention does 2 x 2 x 64 heads x 128 x 8192 FLOPs per layer over 8,192 keys (+ the new one)."""
    w = step3.per_token(load_model("qwen3-235b-a22b"), 8192)
    assert w.kv_bytes == pytest.approx(94 * 4 * 128 * 2 * 8192)
    assert w.attn_flops == pytest.approx(94 * 2 * 2 * 64 * 128 * (8192 + 1), rel=1e-6)


def test_unit_costs_and_part_cost_by_hand():
    """H800 at $2/h: U_FLOP = 2 / 3600 / 1.9789e15 FP8 FLOP/s, U_byte = 2 / 3600 / 3.35e12 B/s."""
    u_flop, u_byte = step3.unit_costs("h800")
    assert u_flop == pytest.approx(2 / 3600 / 1.9789e15)
    assert u_byte == pytest.approx(2 / 3600 / 3.35e12)
    table = step3.cost_table().set_index(["model", "context", "device"])
    w = step3.per_token(load_model("step-3"), 8192)
    u_flop, u_byte = step3.unit_costs("h20")
    expected = (max(w.attn_flops * u_flop, w.kv_bytes * u_byte) + w.linear_flops * u_flop) * 1e6
    assert table.loc[("step-3", 8192, "h20"), "attention_usd_per_m"] == pytest.approx(expected)
    # MFA does 128 FLOP per KV byte, above the H20's 74 FLOP/B roofline: compute-bound even there
    assert w.attn_flops / w.kv_bytes > 74


def test_afd_puts_memory_bound_attention_on_the_bandwidth_device():
    """GQA attention (Qwen3, 32 FLOP/B) is cheapest on the H20 (most bytes per $), its FFN on the H800
    (most FLOPs per $): the paper's Observation 1."""
    best = step3.best_deployments().set_index(["model", "context"])
    assert best.loc[("qwen3-235b-a22b", 8192), "attention_on"] == "h20"
    assert best.loc[("qwen3-235b-a22b", 8192), "ffn_on"] == "h800"
    assert best.loc[("deepseek-v3", 8192), "attention_on"] == "h800"  # MLA: 512 FLOP/B, compute-bound


def test_deployment_engine_and_closed_form_agree():
    dep = step3.deployment()
    cycle = (dep["attention_ms_per_layer"] + dep["ffn_ms_per_layer"]) * 1e-3
    assert dep["tpot_closed_s"] <= dep["tpot_s"] <= dep["tpot_closed_s"] + cycle + 1e-4
    gpus = 2 * step3.DEPLOY_GPUS_PER_POOL
    assert dep["tokens_per_s_per_gpu"] == pytest.approx(3 * 2048 / dep["tpot_s"] / gpus)


@pytest.mark.parametrize("model", sorted(step3.PAPER_PER_TOKEN_8K))
def test_linear_and_ffn_work_match_the_papers_table_3(model):
    """The op graph's attention-side GEMMs and FFN FLOPs per token against the paper's Table 3
    (context-independent; the router and biases make the last percent)."""
    _, _, linear, ffn = step3.PAPER_PER_TOKEN_8K[model]
    w = step3.per_token(load_model(model), 8192)
    assert w.linear_flops == pytest.approx(linear, rel=0.02)
    assert w.ffn_flops == pytest.approx(ffn, rel=0.02)
