"""Names users type: device aliases and normalization, variants assumed with a note, SoCs refused
with their parts, prefix-first suggestions, HuggingFace repo ids and config.json paths."""

import json
import subprocess
import sys
import warnings
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.device_names import find_devices, name_table, names_markdown, resolve_device_name
from hwmodels.device_spec import catalog, load_device
from workloads.errors import AmbiguousNameError, ConfigError, HwsimNote, UnknownNameError, closest_names
from workloads.model_spec import find_models, hf_id_index, load_model, preset_index

ROOT = Path(__file__).parent.parent


def hwsim(*args):
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def load_quietly(name):
    """``load_device`` that fails the test if it issues a note."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", HwsimNote)
        return load_device(name)


# ----- the issue's commands ----------------------------------------------------------------
@pytest.mark.parametrize(
    "model,device,want_model,want_device",
    [
        ("llama-3.3-70b", "h200-sxm", "llama-3.3-70b", "h200"),
        ("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", "llama-3.1-8b", "h100-sxm"),
        ("vicuna-13b", "rtx-a6000", "vicuna-13b", "a6000"),
        ("llama-3.1-8b", "gaudi3", "llama-3.1-8b", "gaudi3"),
        ("llama-3.1-8b", "gh200", "llama-3.1-8b", "gh200"),
    ],
)
def test_estimate_takes_the_names_users_type(model, device, want_model, want_device):
    r = hwsim("estimate", "-m", model, "-d", device, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["model"], out["device"]) == (want_model, want_device)
    assert "note: device" not in r.stderr  # an exact alias assumes nothing


@pytest.mark.parametrize(
    "typed,preset,note",
    [
        ("llama3.1:8b", "llama-3.1-8b", None),  # an Ollama tag
        ("gemma2:9b", "gemma-2-9b", None),
        ("amd/Llama-3.1-70B-Instruct-FP8-KV", "llama-3.1-70b", "FP8-KV"),
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "llama-3.1-8b", "AWQ-INT4"),
        ("TheBloke/Llama-2-7B-GPTQ", "llama-2-7b", "GPTQ"),
        ("RedHatAI/Meta-Llama-3.1-70B-Instruct-quantized.w4a16", "llama-3.1-70b", "QUANTIZED.W4A16"),
        ("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF", "llama-3.1-8b", "GGUF"),
        # a GGUF file and an Ollama tag that close with a llama.cpp weight type, a bracketed format
        ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", "llama-3.1-8b", "Q4_K_M"),
        ("Mistral-7B-Instruct-v0.3.IQ4_XS.gguf", "mistral-7b-v0.3", "IQ4_XS"),
        ("llama3:70b-instruct-q4_K_M", "llama-3-70b", "Q4_K_M"),
        ("Llama-3.1-8B-Instruct (FP8)", "llama-3.1-8b", "FP8"),
        ("deepseek-ai/DeepSeek-V3-BF16", "deepseek-v3", "BF16"),
    ],
)
def test_quantized_checkpoints_and_ollama_tags_name_their_preset(typed, preset, note):
    """A quantized checkpoint is its preset's shape in another format: it resolves, and a note says
    that the format words in its name are not read as the precision; an Ollama tag resolves quietly."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_model(typed).name == preset
    notes = [str(w.message) for w in caught if issubclass(w.category, HwsimNote)]
    if note is None:
        assert notes == []
    else:
        assert len(notes) == 1 and note in notes[0] and "--precision" in notes[0]


def test_cli_names_the_variant_it_assumed_once():
    r = hwsim("estimate", "-m", "llama-2-7b", "-d", "a100", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["device"] == "a100-sxm-80gb"
    notes = [line for line in r.stderr.splitlines() if line.startswith("hwsim: note: device")]
    assert len(notes) == 1, r.stderr
    assert "assumed a100-sxm-80gb (variants: a100-sxm-40gb, a100-sxm-80gb" in notes[0]


def test_api_issues_the_note_as_a_warning():
    with pytest.warns(
        HwsimNote, match=r"'h100': assumed h100-sxm \(variants: h100-sxm, h100-pcie, h100-nvl\)"
    ):
        assert load_device("h100").name == "h100-sxm"
    with pytest.warns(HwsimNote, match="assumed v100-sxm2-32gb"):
        assert load_device("V100").name == "v100-sxm2-32gb"
    assert load_quietly("h100-sxm").name == "h100-sxm"


# ----- aliases and normalization -----------------------------------------------------------
@pytest.mark.parametrize(
    "typed,name",
    [
        ("h200-sxm", "h200"),
        ("H200 SXM 141GB", "h200"),
        ("rtx-a6000", "a6000"),
        ("NVIDIA RTX A6000", "a6000"),
        ("a100-sxm4-80gb", "a100-sxm-80gb"),
        ("NVIDIA A100 SXM4 80GB", "a100-sxm-80gb"),
        ("h100-sxm5", "h100-sxm"),
        ("h100_sxm", "h100-sxm"),
        ("gaudi-3", "gaudi3"),
        ("Intel Gaudi 3", "gaudi3"),
        ("AMD Instinct MI300X", "mi300x"),
        ("L40S", "l40s"),
        ("geforce rtx 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("Tesla T4", "t4"),
        ("Snapdragon 8 Gen 3 GPU", "sd8g3-gpu"),
        ("DGX H100", "h100-sxm"),
        ("HGX H200", "h200"),
        ("NVIDIA H200 Tensor Core GPU", "h200"),  # product words; GPU when unknown with it
        ("NVIDIA GH200 Grace Hopper Superchip", "gh200"),
        ("AMD Instinct MI300X Accelerator", "mi300x"),
        ("Intel Gaudi 2 AI accelerator", "gaudi2"),
        ("8x NVIDIA H200 SXM5", "h200"),  # a count in front and a power are dropped
        ("8 x H100 SXM5 80GB", "h100-sxm"),
        ("B200 (1000W)", "b200"),
        ("H100 SXM x8", "h100-sxm"),  # or behind
        ("MI300X ×8", "mi300x"),
        ("Gaudi2 HL-225H", "gaudi2"),  # two names of one part: product and model number
        ("Intel Gaudi 3 HL-325L", "gaudi3"),
        ("AMD Instinct MI300X VF", "mi300x"),  # the SR-IOV function an Azure VM sees
        ("Tesla V100-PCIE-32GB", "v100-pcie-32gb"),
        ("p4d.24xlarge", "a100-sxm-40gb"),  # a cloud instance type, at any size, is its GPU
        ("AWS EC2 p5.48xlarge", "h100-sxm"),
        ("g6e.xlarge", "l40s"),
        ("a3-ultragpu-8g", "h200"),
        ("g2-standard-8", "l4"),
        ("Standard_ND96isr_MI300X_v5", "mi300x"),
        ("Standard_NC24ads_A100_v4", "a100-pcie-80gb"),
        ("NVIDIA GeForce RTX 4090 D", "rtx-4090d"),
        ("RTX 4080 SUPER", "rtx-4080-super"),
        ("A4000", "rtx-a4000"),
        ("AMD Instinct MI250", "mi250"),
        ("NVIDIA L20", "l20"),
        ("NVIDIA A10G (AWS g5)", "a10g"),  # a remark in parentheses, when unknown with it
        ("Intel Xeon Platinum 8488C", "xeon-8488c"),  # server CPUs as cloud users name them
        ("Alibaba Yitian 710", "yitian-710"),
        ("Microsoft Azure Cobalt 100", "azure-cobalt-100"),
    ],
)
def test_alias_resolves_without_a_note(typed, name):
    assert load_quietly(typed).name == name


@pytest.mark.parametrize(
    "typed, name",
    [
        ("RTX 4090 24GB", "rtx-4090"),  # GiB stated as GB
        ("A10G 24 GB", "a10g"),  # the G of A10G is not a size
        ("H100 94GB", "h100-nvl"),  # the size picks the variant of an ambiguous name
        ("H100 96GB", "h100-nvl"),
        ("B200 192GB", "b200"),  # physical 192 GB, 180 GB usable: within 10%
        ("MI325X 256GB HBM3E", "mi325x"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
    ],
)
def test_a_stated_memory_size_names_the_part_of_that_size(typed, name):
    assert load_quietly(typed).name == name


def test_a_size_two_variants_share_takes_the_assumed_one_with_a_note():
    with pytest.warns(HwsimNote, match="assumed h100-sxm"):
        assert load_device("H100 80GB").name == "h100-sxm"


@pytest.mark.parametrize("typed", ["RTX 4090 48GB", "V100 PCIe 16GB"])
def test_a_size_no_part_has_is_refused_naming_the_sizes_there_are(typed):
    with pytest.raises(ConfigError, match=r"no catalog part of \d+ GB by that name \(.* GiB\)"):
        load_device(typed)


@pytest.mark.parametrize("typed", ["Gaudi2 H100", "H100 A100", "RTX x8", "a100-40", "p9.24xlarge", "a3-8g"])
def test_two_names_of_different_parts_a_count_or_a_size_alone_name_nothing(typed):
    assert resolve_device_name(typed) is None


def test_normalization_drops_vendor_words_only_when_something_is_left():
    key = name_table().key
    assert key("NVIDIA GeForce RTX-4090") == key("rtx_4090") == "rtx4090"
    assert key("AMD") == "amd"


def _respell(draw, name: str) -> str:
    """``name`` with its parts in random case, joined by random separators, maybe behind a
    vendor word."""
    parts = [p for p in name.replace(".", "-").split("-") if p]
    seps = st.sampled_from(["-", "_", " ", ".", "/", "  ", " - "])
    out = draw(st.sampled_from(["", "NVIDIA ", "amd_", "Intel-"]))
    for i, part in enumerate(parts):
        out += "".join(c.upper() if draw(st.booleans()) else c for c in part)
        if i < len(parts) - 1:
            out += draw(seps)
    return out


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_case_and_separators_of_a_catalog_name_resolve_to_it(data):
    name = data.draw(st.sampled_from(sorted(catalog())))
    typed = _respell(data.draw, name)
    assert load_quietly(typed).name == name, typed


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_spelling_of_an_alias_resolves_to_its_device(data):
    pairs = sorted((alias, name) for name, others in name_table().aliases.items() for alias in others)
    alias, name = data.draw(st.sampled_from(pairs))
    assert load_quietly(_respell(data.draw, alias)).name == name


def test_every_ambiguous_name_is_resolved_with_a_note_or_refused():
    for entry in name_table().ambiguous.values():
        for spelling in (entry.name, *entry.names):
            if entry.assume:
                with pytest.warns(HwsimNote, match=f"assumed {entry.assume}"):
                    assert load_device(spelling).name == entry.assume
            else:
                with pytest.raises(AmbiguousNameError, match=", ".join(entry.variants)):
                    load_device(spelling)


def test_an_arm_core_names_the_cpus_built_of_it():
    with pytest.raises(
        AmbiguousNameError, match="neoverse-n2 names several parts: azure-cobalt-100, yitian-710"
    ):
        load_device("Arm Neoverse N2")


# ----- SoCs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("typed", ["snapdragon-8-gen-3", "sd8g3", "Qualcomm Snapdragon 8 Gen 3"])
def test_a_soc_is_refused_with_its_parts(typed):
    with pytest.raises(
        AmbiguousNameError, match="snapdragon-8-gen-3 is a SoC; its parts: sd8g3-cpu, sd8g3-gpu, sd8g3-npu"
    ):
        load_device(typed)


def test_snapdragon_8_gen_2_lists_the_parts_the_catalog_has():
    with pytest.raises(AmbiguousNameError, match="its parts: sd8g2-cpu, sd8g2-npu; its Adreno 740"):
        load_device("snapdragon 8 gen 2")


def test_cli_refuses_a_soc_in_one_line_and_devices_shows_its_parts():
    r = hwsim("estimate", "-m", "llama-2-7b", "-d", "snapdragon-8-gen-3", "--json")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "is a SoC; its parts: sd8g3-cpu" in r.stderr
    r = hwsim("devices", "snapdragon-8-gen-3", "--json")
    assert r.returncode == 0, r.stderr
    assert [d["name"] for d in json.loads(r.stdout)] == ["sd8g3-cpu", "sd8g3-gpu", "sd8g3-npu"]


def test_devices_query_by_word_in_the_description():
    assert set(find_devices("snapdragon")) == {
        "sd8g2-cpu",
        "sd8g2-npu",
        "sd8g3-cpu",
        "sd8g3-gpu",
        "sd8g3-npu",
    }
    assert find_devices("a100") == ["a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-40gb", "a100-pcie-80gb"]
    assert find_devices("h200 sxm") == ["h200"]
    with pytest.raises(UnknownNameError, match="unknown device 'quantum-gpu'"):
        find_devices("quantum-gpu")


def test_devices_query_with_a_memory_size_shows_the_part_of_that_size():
    """``hwsim devices`` reads a name with its memory size as an estimate does: the part of that size
    (the B200's 180 GB usable of 192), the closest of a name's variants (94 GB: the H100 NVL), and
    a size no part by that name has is refused with the sizes there are."""
    assert find_devices("RTX 4090 24GB") == ["rtx-4090"]
    assert find_devices("B200 180GB") == ["b200"]
    assert find_devices("H100 94GB") == ["h100-nvl"]
    with pytest.raises(ConfigError, match="no catalog part of 48 GB by that name"):
        find_devices("RTX 4090 48GB")


# ----- suggestions ----------------------------------------------------------------------------
def test_names_the_query_begins_come_first():
    """difflib alone ranks p100 first for 'h100' (one letter off, same length); the variants
    it begins rank ahead, shortest first."""
    known = ["p100", "h800", "h100-sxm", "h100-pcie", "h100-nvl", "a100-sxm-80gb"]
    assert closest_names("h100", known) == ["h100-nvl", "h100-sxm", "h100-pcie"]
    assert closest_names("H100 SXM", known)[0] == "h100-sxm"  # case and separators ignored


def test_names_one_of_whose_words_the_query_begins_come_next():
    """difflib ranks b300 above rtx-3090 for '3090' (three of four characters); a name with a word
    the query begins ranks ahead of it, after the names the query begins."""
    known = ["b300", "gb300", "rtx-3090", "rtx-3090-ti", "rtx-4090", "3090x"]
    assert closest_names("3090", known) == ["3090x", "rtx-3090", "rtx-3090-ti"]


def test_unknown_device_suggests_the_variants_first():
    with pytest.raises(UnknownNameError, match="closest: h100-nvl, h100-sxm, h100-pcie"):
        load_device("h10")


# ----- models ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "repo,preset",
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("Qwen/Qwen3-235B-A22B", "qwen3-235b-a22b"),
        ("deepseek-ai/DeepSeek-R1", "deepseek-r1"),
        ("mistralai/Mistral-7B-v0.1", "mistral-7b"),
        ("lmsys/vicuna-13b-v1.5", "vicuna-13b"),
        ("LMSYS/Vicuna-7B-v1.5", "vicuna-7b"),
        ("meta-llama/Llama-3.2-1B", "llama-3.2-1b"),
        ("https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
        ("Llama-3.1-70B-Instruct", "llama-3.1-70b"),
        ("microsoft/Phi-3-mini-128k-instruct", "phi-3-mini-128k"),  # not the 4k preset: 131,072 positions
        ("HuggingFaceH4/zephyr-7b-beta", "mistral-7b"),
        ("lmsys/vicuna-33b-v1.3", "llama-30b"),
        ("mistralai/Mistral-Small-3.2-24B-Instruct-2506", "mistral-small-3.1-24b"),
        ("codellama/CodeLlama-70b-Instruct-hf", "codellama-70b"),
        ("deepseek-ai/deepseek-llm-67b-chat", "deepseek-llm-67b"),
        ("mistralai/Ministral-8B-Instruct-2410", "ministral-8b"),
        ("tiiuae/Falcon3-10B-Instruct", "falcon3-10b"),
        ("Qwen/QwQ-32B-Preview", "qwq-32b-preview"),  # 32,768 positions, not qwen2.5-32b's 131,072
        ("Qwen/Qwen2.5-Coder-14B-Instruct", "qwen2.5-coder-14b"),
        ("internlm/internlm2-chat-20b", "internlm2-20b"),
        ("internlm/internlm-20b", "internlm-20b"),
        ("baichuan-inc/Baichuan2-13B-Chat", "baichuan2-13b"),
        ("baichuan-inc/Baichuan2-7B-Chat", "baichuan2-7b"),
        ("Qwen/Qwen-7B-Chat", "qwen-7b"),  # Qwen v1, not Qwen2's qwen2-7b
        ("THUDM/chatglm3-6b", "chatglm3-6b"),
    ],
)
def test_huggingface_repo_id_names_its_preset(repo, preset):
    assert load_model(repo).name == preset


def test_every_listed_repo_id_maps_to_its_preset():
    for name, entry in preset_index().items():
        for repo in entry.get("hf_ids", []):
            assert hf_id_index()[repo.lower()] == name


def test_unknown_repo_id_suggests_repo_ids():
    with pytest.raises(UnknownNameError, match="closest: meta-llama/Llama-3.1-8B"):
        load_model("meta-llama/Llama-3.1-8B-Vision")


def _write_config(path: Path, **fields) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(files("workloads.presets").joinpath("llama-2-7b.json").read_text()) | fields
    path.write_text(json.dumps(cfg))
    return path


def test_config_in_a_huggingface_cache_is_named_by_its_repo(tmp_path):
    """The snapshot's config.json is a link into blobs/; the name comes from the repo folder."""
    repo = tmp_path / "hub" / "models--lmsys--vicuna-7b-v1.5"
    blob = _write_config(repo / "blobs" / "9f3c", _name_or_path="/checkpoints/run-12")
    link = repo / "snapshots" / "3321f76e3f527bd14065daf69dad9344000a201d" / "config.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(blob)
    assert load_model(link).name == "vicuna-7b-v1.5"
    assert load_model(link.parent).name == "vicuna-7b-v1.5"  # the folder holding it


def test_config_is_named_by_its_name_or_path_else_its_folder(tmp_path):
    named = _write_config(tmp_path / "ckpt" / "config.json", _name_or_path="meta-llama/Llama-2-7b-HF")
    assert load_model(named).name == "llama-2-7b-hf"
    windows = _write_config(tmp_path / "w" / "config.json", _name_or_path="C:\\models\\My-Llama")
    assert load_model(windows).name == "my-llama"
    plain = _write_config(tmp_path / "MyModel" / "config.json")
    assert load_model(plain).name == "mymodel"
    own = _write_config(tmp_path / "configs" / "My-Model.json")  # a file of its own name
    assert load_model(own).name == "my-model"


def test_a_local_folder_wins_over_a_repo_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_config(tmp_path / "meta-llama" / "Llama-3.1-8B-Instruct" / "config.json")
    spec = load_model("meta-llama/Llama-3.1-8B-Instruct")
    assert spec.name == "llama-3.1-8b-instruct" and spec.n_params() == load_model("llama-2-7b").n_params()


def test_models_query_shows_the_preset_a_name_stands_for_else_those_that_hold_it():
    """``hwsim models QUERY``: a HuggingFace id or a loosely written name is its one preset; a
    fragment shows every preset whose name or repo id holds it, those it begins first; nothing
    close is refused with the closest names."""
    assert find_models("meta-llama/Llama-3.1-8B-Instruct") == ["llama-3.1-8b"]
    assert find_models("Qwen1.5 7B Chat") == ["qwen1.5-7b"]
    shown = find_models("qwen1.5")
    assert shown[-1] == "deepseek-r1-distill-qwen-1.5b"  # its name holds qwen1.5 but does not begin with it
    assert {"qwen1.5-0.5b", "qwen1.5-7b", "qwen1.5-110b"} <= set(shown[:-1])
    assert all(n.startswith("qwen1.5") for n in shown[:-1])
    by_org = find_models("deepseek-ai")  # its repo ids: the distills of Llama 3 and Qwen2.5 too
    assert {"deepseek-coder-33b", "llama-3.1-8b", "qwen2.5-32b"} <= set(by_org) and "llama-2-7b" not in by_org
    with pytest.raises(UnknownNameError, match="unknown model 'qwn9'"):
        find_models("qwn9")
    r = hwsim("models", "Qwen2-0.5B-Instruct", "--json")
    assert r.returncode == 0 and [m["name"] for m in json.loads(r.stdout)] == ["qwen2-0.5b"]


def test_llama_3_2_1b_hand_count():
    """16 layers x (q 2048^2 + k, v 2 x 2048 x 512 + o 2048^2 + FFN 3 x 2048 x 8192 + 2 norms of
    2048) + tied embedding 128256 x 2048 + final norm 2048 = 16 x 60,821,504 + 262,668,288 + 2048
    = 1,235,814,400."""
    assert load_model("llama-3.2-1b").n_params() == 1_235_814_400


def test_vicuna_has_its_llama_2_base_shape():
    for vicuna, base in (("vicuna-7b", "llama-2-7b"), ("vicuna-13b", "llama-2-13b")):
        assert load_model(vicuna).n_params() == load_model(base).n_params()


# ----- the documented table -----------------------------------------------------------------
def test_docs_table_is_in_sync():
    doc = (ROOT / "docs" / "device-names.md").read_text()
    assert doc == names_markdown(), "regenerate: python -m hwmodels.device_names > docs/device-names.md"


def test_help_of_devices_names_the_query():
    r = hwsim("devices", "--help")
    assert r.returncode == 0 and "QUERY" in r.stdout


def test_an_unknown_name_with_nothing_close_lists_a_short_list_whole():
    """With no close name, a list of up to 20 known names is given whole (the frameworks), a
    longer one as its first 8 and how many more."""
    from workloads.errors import unknown_name

    short = [f"engine-{i:02d}" for i in range(15)]
    assert str(unknown_name("framework", "tgi", short)).endswith(", ".join(short))
    long = [f"part-{i:02d}" for i in range(30)]
    message = str(unknown_name("device", "zzz", long))
    assert message.endswith(f"{', '.join(long[:8])} and 22 more")
