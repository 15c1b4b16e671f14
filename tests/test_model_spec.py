"""Model presets: parameter counts against published figures, parsing errors, name lookup."""

import json

import pytest

from workloads.errors import ConfigError, UnknownNameError
from workloads.model_spec import load_model, preset_index, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_preset_param_count_matches_published_within_1pct(name):
    published = float(preset_index()[name]["published_params"])
    counted = load_model(name).n_params()
    assert abs(counted / published - 1) < 0.01, f"{name}: {counted:.4g} vs published {published:.4g}"


def test_required_presets_are_shipped():
    required = {
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "opt-6.7b",
        "opt-13b",
        "opt-30b",
        "opt-66b",
        "opt-175b",
        "qwen1.5-1.8b",
        "qwen2.5-7b",
        "gemma-2b",
        "mixtral-8x7b",
        "deepseek-v3",
        "qwen3-235b-a22b",
        "gpt-oss-120b",
    }
    assert required <= set(preset_names())


def test_every_preset_has_a_source():
    for name, entry in preset_index().items():
        assert entry["source"].strip() and entry["params_source"].strip(), name


def test_llama2_7b_hand_count():
    """Llama-2-7B: 32 layers of (4*4096^2 attention + 3*4096*11008 FFN + 2*4096 norms),
    embeddings and LM head 2*32000*4096, final norm 4096 = 6,738,415,616."""
    per_layer = 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096
    assert load_model("llama-2-7b").n_params() == 32 * per_layer + 2 * 32000 * 4096 + 4096 == 6_738_415_616


def test_attention_kinds_and_moe_shapes():
    assert load_model("llama-2-7b").attention_kind == "mha"
    assert load_model("llama-3.1-8b").attention_kind == "gqa"
    assert load_model("gemma-2b").attention_kind == "mqa"
    ds = load_model("deepseek-v3")
    assert ds.attention_kind == "mla" and ds.kv_elems_per_token_layer == 512 + 64
    assert ds.moe.n_moe_layers == 58 and ds.n_dense_layers == 3 and ds.moe.n_shared_experts == 1
    # DeepSeek-V3 activates about 37B parameters per token (DeepSeek-V3 report, abstract)
    assert abs(ds.n_active_params() / 37e9 - 1) < 0.03
    mixtral = load_model("mixtral-8x7b")
    assert abs(mixtral.n_active_params() / 12.9e9 - 1) < 0.02  # Mistral AI: 12.9B active of 46.7B


def test_lookup_ignores_case():
    assert load_model("Llama-2-7B").name == "llama-2-7b"


def test_unknown_model_lists_closest():
    with pytest.raises(UnknownNameError, match="llama-2-7b"):
        load_model("llama2-7b")


def test_config_missing_field_names_it(tmp_path):
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "vocab_size": 100,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="intermediate_size"):
        load_model(str(path))


def test_config_bad_value_names_field_and_value(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": -2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "intermediate_size": 128,
                "vocab_size": 100,
            }
        )
    )
    with pytest.raises(ConfigError, match="num_hidden_layers.*-2"):
        load_model(str(path))


def test_config_from_path_loads(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "intermediate_size": 128,
                "vocab_size": 100,
            }
        )
    )
    spec = load_model(str(path))
    assert spec.n_params() == 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 2 * 100 * 64 + 64
