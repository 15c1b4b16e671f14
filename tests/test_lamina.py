"""Lamina: attention offloaded to H20s, the rest of each layer on H100s, against vLLM."""

from __future__ import annotations

from sim.experiments import lamina


def test_batch_is_what_the_h20_pool_holds():
    """LLaMA3-70B keeps 80 layers x 8 KV heads x 128 x (K, V) x 2 bytes = 327,680 B per token (the
    paper's Sec. 2.2.2 arithmetic); four 96 GiB H20s at 90% hold 371.1 GB, so at 12,206.4 tokens of
    context 92 sequences fit, as two batches of 46."""
    point = lamina.lamina_point("llama-3.1-70b", 12206.4)
    assert int(4 * 0.9 * 96 * 2**30 // (327_680 * 12206.4)) == 92
    assert point["batch"] == 92


def test_gain_grows_with_context():
    """The paper's mechanism: longer contexts shrink the baseline's batch (KV-bound) while the H20
    pool's capacity keeps Lamina's larger, so the gain rises from Azure-Conv to Kimi-Conv."""
    g = lamina.grid()
    g = g[g["model"] == "llama-3.1-70b"].set_index("trace")
    assert g.loc["kimi-conv", "gain"] > g.loc["azure-conv", "gain"]
    assert (g["lamina_batch"] > g["vllm_batch"]).all()
    assert (g["vllm_batch"] <= 256).all()
