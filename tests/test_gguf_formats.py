"""llama.cpp GGUF weight formats: block bits, per-tensor mixtures, whole-file bytes, estimates."""

import numpy as np
import pytest

from roofline.estimate import estimate
from workloads.errors import ConfigError
from workloads.graph import build_ops, weight_bytes
from workloads.model_spec import load_model
from workloads.quant import Quant, _check_gguf, ggml_type_bits, named_formats

GGUF = [n for n, f in named_formats().items() if "layer_mix" in f]

# Whole-file bits per weight of meta-llama/Llama-3.1-8B per type, as measured by llama.cpp
# (ggml-org/llama.cpp tools/quantize/README.md, commit 311c2c9f0ebd6e08f5b20e8827c654cebb7a41d6).
README_LLAMA31_8B = {
    "iq1_s": 2.0042,
    "iq1_m": 2.1460,
    "iq2_xxs": 2.3824,
    "iq2_xs": 2.5882,
    "iq2_s": 2.7403,
    "iq2_m": 2.9294,
    "iq3_xxs": 3.2548,
    "iq3_xs": 3.4977,
    "iq3_s": 3.6606,
    "iq3_m": 3.7628,
    "iq4_xs": 4.4597,
    "iq4_nl": 4.6818,
    "q2_k_s": 2.9697,
    "q2_k": 3.1593,
    "q3_k_s": 3.6429,
    "q3_k_l": 4.2979,
    "q4_k_s": 4.6672,
    "q4_k_m": 4.8944,
    "q5_k_s": 5.5704,
    "q5_k_m": 5.7036,
    "q6_k": 6.5633,
    "q8_0": 8.5008,
    "f16": 16.0005,
}


def test_every_type_the_brief_lists_is_shipped():
    wanted = (
        "q2_k q3_k_s q3_k_m q3_k_l q4_0 q4_1 q4_k_s q4_k_m q5_0 q5_1 q5_k_s q5_k_m q6_k q8_0 f16 "
        "iq1_s iq1_m iq2_xxs iq2_xs iq2_s iq2_m iq3_xxs iq3_xs iq3_s iq3_m iq4_nl iq4_xs tq1_0 tq2_0"
    ).split()
    assert set(wanted) <= set(GGUF)


@pytest.mark.parametrize(
    "ggml_type, bits",
    [
        ("q6_K", 6.5625),  # ql 128 B + qh 64 B + 16 int8 scales + fp16 d = 210 B per 256
        ("iq2_xxs", 2.0625),  # fp16 d + 32 uint16 = 66 B per 256
        ("q4_0", 4.5),  # fp16 d + 16 B nibbles = 18 B per 32
        ("q4_K", 4.5),  # 2 fp16 + 12 B scales + 128 B = 144 B per 256
        ("q2_K", 2.625),  # 16 B scales + 64 B quants + 2 fp16 = 84 B per 256
        ("iq4_xs", 4.25),  # fp16 d + uint16 + 4 B + 128 B = 136 B per 256
        ("tq1_0", 1.6875),  # 48 B base-3 + 4 B + fp16 d = 54 B per 256
    ],
)
def test_block_bits_from_the_ggml_structs(ggml_type, bits):
    assert ggml_type_bits()[ggml_type] == bits


def test_q6_k_is_pure_q6_K():
    """Q6_K stores every tensor, output and embedding included, in Q6_K: 6.5625 bits."""
    q = Quant.from_name("q6_k")
    for op in (None, "qkv_proj", "lm_head", "embedding"):
        assert q.weight_bytes_per_param(op) == 6.5625 / 8


def test_q5_k_m_mixture():
    """Q5_K_M on Llama-3.1-8B's layers: attn_v (1 unit of 4096 x 1024) and ffn_down (14 units)
    in Q6_K on 16 of 32 layers = 16 x 15 = 240 of 1664 units, the rest Q5_K:
    (1424 x 5.5 + 240 x 6.5625) / 1664 = (7832 + 1575) / 1664 = 5.653245 bits; output Q6_K,
    token_embd Q5_K."""
    q = Quant.from_name("q5_k_m")
    assert q.weight_bytes_per_param("ffn_down") * 8 == pytest.approx(9407 / 1664, abs=1e-12)
    assert q.weight_bytes_per_param("lm_head") * 8 == 6.5625
    assert q.weight_bytes_per_param("embedding") * 8 == 5.5


def test_iq2_xxs_mixture():
    """IQ2_XXS: IQ2_XXS (2.0625) except attn_v in Q4_K (32 units), the first 4 layers' ffn_down
    in Q2_K (56 units): (1576 x 2.0625 + 56 x 2.625 + 32 x 4.5) / 1664 = 3541.5 / 1664 bits;
    output Q5_K (5.5), token_embd Q2_K (2.625)."""
    q = Quant.from_name("iq2_xxs")
    assert q.weight_bytes_per_param() * 8 == pytest.approx(3541.5 / 1664, abs=1e-12)
    assert (q.weight_bytes_per_param("lm_head") * 8, q.weight_bytes_per_param("embedding") * 8) == (
        5.5,
        2.625,
    )


@pytest.mark.parametrize("name", sorted(README_LLAMA31_8B))
def test_whole_file_bits_match_llama_cpp_measurement(name):
    """The layer mixture, output and embedding types reproduce llama.cpp's measured whole-file
    bits per weight on Llama-3.1-8B. hwsim stores the 266,240 norm weights at the layer width
    where llama.cpp keeps f32, so it sits up to 266240 x 30 / 8.03e9 = 0.001 bit below."""
    spec = load_model("llama-3.1-8b")
    bpw = weight_bytes(spec, Quant.from_name(name)) * 8 / spec.n_params()
    assert README_LLAMA31_8B[name] - 0.0012 <= bpw <= README_LLAMA31_8B[name]


def test_q4_k_m_on_another_shape():
    """Llama 2 7B (MHA, 32k vocabulary): llama.cpp's older table gives Q4_K_M 4.84 bits per weight
    (examples/quantize/README.md, 'Llama 2 7B'); the 8B-derived layer mix lands within 0.02."""
    spec = load_model("llama-2-7b")
    assert weight_bytes(spec, Quant.from_name("q4_k_m")) * 8 / spec.n_params() == pytest.approx(
        4.84, abs=0.02
    )


def test_decode_reads_the_output_tensor_at_its_own_width():
    """Q4_0 keeps output.weight in Q6_K: the decode step's lm_head reads 128256 x 4096 x 6.5625 / 8 B."""
    spec = load_model("llama-3.1-8b")
    ops = build_ops(spec, Quant.from_name("q4_0"), phase="decode", batch=1, context=100)
    head = ops.weight_bytes[list(ops.name).index("lm_head")]
    assert float(head) == pytest.approx(128256 * 4096 * 6.5625 / 8)


@pytest.mark.parametrize("name", GGUF)
def test_every_format_estimates_on_cpu_and_gpu(name):
    for device, framework in (("graviton3", None), ("h100-sxm", "llama.cpp"), ("rtx-4090", None)):
        e = estimate(
            "llama-3.1-8b",
            device,
            batch=1,
            input_len=256,
            output_len=32,
            precision=name,
            framework=framework,
        )
        assert np.isfinite(e.ttft_s) and np.isfinite(e.tpot_s) and e.tpot_s > 0, (name, device)


def test_fewer_bits_decode_faster_on_a_cpu():
    """Decode on a CPU is bound by weight bytes: IQ2_XXS < Q4_K_M < Q8_0 < F16 per token."""
    t = [
        float(
            estimate("llama-3.1-8b", "graviton3", batch=1, input_len=128, output_len=32, precision=p).tpot_s
        )
        for p in ("iq2_xxs", "q4_k_m", "q8_0", "f16")
    ]
    assert t == sorted(t)


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"layer_mix": {"q4_Z": 10}, "output_type": "q6_K", "token_embd_type": "q4_K"}, "q4_Z"),
        ({"layer_mix": {"q4_K": 0}, "output_type": "q6_K", "token_embd_type": "q4_K"}, "q4_K"),
        ({"layer_mix": {"q4_K": 1}, "output_type": "q7_K", "token_embd_type": "q4_K"}, "output_type"),
    ],
)
def test_a_bad_mixture_is_refused(entry, field):
    with pytest.raises(ConfigError, match=field):
        _check_gguf("bad", entry)


def test_unknown_precision_names_the_closest_formats():
    with pytest.raises(ConfigError, match="closest: q4_k_m"):
        Quant.from_name("q4_k_mm")
