"""``Quant``: bits of weights, activations and the KV cache, group scales, per-op overrides.

Bits are any integer 1..16 or the names fp32, bf16, fp16, fp8, int8, int4. Bytes always
come from bits (``bits / 8`` per element), so 3-bit weights are allowed. A weight group of
``group_size`` elements carries one fp16 scale (and one fp16 zero point when
``zero_point``), counted in the weight bytes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType

from workloads.errors import ConfigError, HwsimNote, closest_names
from workloads.shipped import parse_yaml

FORMAT_BITS: Mapping[str, int] = MappingProxyType(
    {"fp32": 32, "tf32": 32, "bf16": 16, "fp16": 16, "int16": 16, "fp8": 8, "int8": 8, "int4": 4, "fp4": 4}
)
"""Bits per element of the named formats."""


_FORMATS_FILE = "workloads/quant_formats.yaml"


@lru_cache(maxsize=1)
def _formats_file() -> dict:
    raw = parse_yaml(files("workloads").joinpath("quant_formats.yaml").read_text())
    if raw.get("schema_version") != 1:
        raise ConfigError(f"{_FORMATS_FILE}: schema_version {raw.get('schema_version')!r}; expected 1")
    return raw


@lru_cache(maxsize=1)
def ggml_type_bits() -> Mapping[str, float]:
    """Bits per weight of each llama.cpp ggml block type (``q4_0``, ``q6_K``, ``iq2_xxs``...):
    block bytes x 8 / weights per block, from the ``block_<type>`` structs of ggml-common.h
    (``ggml_types`` in ``workloads/quant_formats.yaml``); q6_K is 210 B per 256 = 6.5625."""
    out = {}
    for name, t in _formats_file()["ggml_types"].items():
        where = f"{_FORMATS_FILE}: ggml_types.{name}"
        if not isinstance(t, Mapping) or set(t) - {"layout"} != {"block_weights", "block_bytes"}:
            raise ConfigError(f"{where}: expected {{block_weights, block_bytes, layout}}")
        if not all(isinstance(t[k], int) and t[k] > 0 for k in ("block_weights", "block_bytes")):
            raise ConfigError(f"{where}: block_weights and block_bytes must be positive integers")
        out[name] = t["block_bytes"] * 8.0 / t["block_weights"]
    return MappingProxyType(out)


def _check_gguf(name: str, entry: Mapping) -> None:
    """A GGUF format names known ggml types for its layers (positive weight counts), its output
    tensor and its token embedding."""
    where = f"{_FORMATS_FILE}: formats.{name}"
    types = ggml_type_bits()
    mix = entry["layer_mix"]
    if not isinstance(mix, Mapping) or not mix:
        raise ConfigError(f"{where}.layer_mix: expected a mapping of ggml type to weight count")
    for t, count in mix.items():
        if t not in types:
            raise ConfigError(f"{where}.layer_mix: unknown ggml type {t!r}; known: {', '.join(types)}")
        if isinstance(count, bool) or not isinstance(count, (int, float)) or count <= 0:
            raise ConfigError(f"{where}.layer_mix.{t} is {count!r}; expected a positive weight count")
    for key in ("output_type", "token_embd_type"):
        if entry.get(key) not in types:
            raise ConfigError(f"{where}.{key} is {entry.get(key)!r}; expected one of {', '.join(types)}")


def gguf_layer_bits(entry: Mapping) -> float:
    """Mean bits per weight of a GGUF format's transformer-layer weights: its ``layer_mix``
    (weight counts per ggml type) averaged over the types' block bits."""
    types = ggml_type_bits()
    mix = entry["layer_mix"]
    return sum(n * types[t] for t, n in mix.items()) / sum(mix.values())


@lru_cache(maxsize=1)
def named_formats() -> Mapping[str, dict]:
    """Named quantization formats of inference engines (llama.cpp GGUF types, Qualcomm QNN),
    from ``workloads/quant_formats.yaml`` with their sources."""
    raw = _formats_file()
    for name, entry in raw["formats"].items():
        if not entry.get("source"):
            raise ConfigError(f"{_FORMATS_FILE}: {name} needs a source")
        if "layer_mix" in entry:
            _check_gguf(name, entry)
    return MappingProxyType(raw["formats"])


WIDE_HEADS = {"embedding": 16, "lm_head": 16}
"""The stored bits of the token embedding and the LM head under the named post-training
recipes (``fp8``, ``fp8-kv16``, ``fp4``, ``int8``, ``int4``): those recipes quantize the decoder
layers' linear layers and leave both in 16 bits. TensorRT Model Optimizer, which makes
TensorRT-LLM's FP8, NVFP4, INT8 SmoothQuant and INT4 AWQ checkpoints, disables the ``*lm_head*``
quantizer in every preset and quantizes linear layers only, not the embedding
(NVIDIA/TensorRT-Model-Optimizer @0991404 modelopt/torch/quantization/config.py,
``_default_disabled_quantizer_cfg``); the FP8-dynamic checkpoints vLLM serves (llm-compressor
recipes ``ignore: ["lm_head"]``), AWQ and GPTQ checkpoints and DeepSeek's block-scaled FP8
checkpoints keep them in BF16 too. The LM head then runs 16-bit math (``gemm_format``), and a
decode step reads it at 2 bytes a weight. ``wXaY`` patterns state every weight's width and keep
no such exception."""

SCALE_BITS = 16
"""Bits of one group scale or zero point (fp16), as in GPTQ/AWQ and FlexGen's group quantization."""


def _format(value: int | str, field_name: str) -> tuple[int, str]:
    """(bits, format name) from an integer width or a format name."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in FORMAT_BITS:
            return FORMAT_BITS[key], key
        if key.isdigit():
            value = int(key)
        else:
            raise ConfigError(
                f"quant field {field_name!r} is {value!r}; expected an integer 1..16 or one of "
                f"{', '.join(FORMAT_BITS)}"
            )
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ConfigError(
            f"quant field {field_name!r} is {value!r}; expected an integer 1..16 or a format name"
        )
    if value > 16 and value != 32:
        raise ConfigError(f"quant field {field_name!r} is {value}; expected 1..16 bits or 32 (fp32)")
    name = {32: "fp32", 16: "fp16", 8: "int8", 4: "int4"}.get(value, f"int{value}")
    return value, name


NAMED_PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "fp8-kv16", "fp8-ffn", "mxfp4", "fp4", "int8", "int4")
"""The recipes ``Quant.from_name`` names itself (beside the named formats and the ``wXaY`` patterns)."""

PRECISION_WORDS = {"4bit": "int4", "8bit": "int8", "16bit": "fp16", "float8": "fp8", "e4m3fn": "fp8"}
"""Single words of a precision written in several (``GPTQ 4-bit``, ``fp8_e4m3fn``): a 4-bit
quantization named by its width alone is weight-only (bitsandbytes, AWQ, GPTQ), an 8-bit one
W8A8."""


def _first_precision_word(name: str) -> str | None:
    """The first word of a precision written in several that names a precision by itself
    (``GPTQ 4bit`` -> ``gptq``, ``Q4_K_M (GGUF)`` -> ``q4_k_m``, ``BF16 (default)`` -> ``bf16``,
    ``fp8_e4m3fn`` -> ``fp8``), or a width word alone (``4-bit``; ``PRECISION_WORDS``); None
    where no word is one. Words split at spaces, punctuation and dashes, and at underscores
    unless the word is a named format (``q4_k_m``)."""
    text = re.sub(r"(\d+)[\s_-]?bits?\b", r"\1bit", name.strip().lower())
    words = [w for w in re.split(r"[\s,/+&()\[\]-]+", text) if w]
    words = [p for w in words for p in ([w] if w in named_formats() else w.split("_")) if p]
    if len(words) < 2 and not (words and words[0] in PRECISION_WORDS):
        return None
    for word in words:
        word = PRECISION_WORDS.get(word, word)
        if word in PRECISION_ALIASES or word in named_formats() or word in NAMED_PRECISIONS:
            return word
        if re.fullmatch(r"w\d+a\d+(?:kv\d+)?(?:g\d+)?", word):
            return word
    return None


PRECISION_ALIASES = {
    "float32": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "awq": "int4",
    "gptq": "int4",
    "int4-awq": "int4",
    "int4-gptq": "int4",
    "w4a16-awq": "int4",
    "awq-int4": "int4",
    "gptq-int4": "int4",
    "nvfp4": "fp4",
    "e4m3": "fp8",
    "fp8-e4m3": "fp8",
    "fp8-kv8": "fp8",
    "fp8-kv": "fp8",
    "fp8-kv-cache": "fp8",
    "fbgemm-fp8": "fp8-ffn",
    "fbgemm_fp8": "fp8-ffn",
    "smoothquant": "int8",
    "int8-smoothquant": "int8",
    "w8a8-int8": "int8",
    "w8a8-fp8": "fp8",
    "int8-sq": "int8",
    "int8-weight-only": "w8a16",
    "int4-weight-only": "w4a16",
    "int8-wo": "w8a16",
    "int4-wo": "w4a16",
    "gptq-int8": "w8a16g128",
    "fp8-dynamic": "fp8-kv16",
    "marlin": "int4",
    "awq-marlin": "int4",
    "gptq-marlin": "int4",
    "q3_k": "q3_k_m",
    "q4_k": "q4_k_m",
    "q5_k": "q5_k_m",
}
"""Other names of ``Quant.from_name``'s precisions: PyTorch dtype names, and the quantization
methods whose weight and activation widths the named precision states (AWQ and GPTQ checkpoints
are 4-bit weights in groups of 128 with 16-bit activations, also under the Marlin kernels vLLM runs
them with; NVFP4 is ``fp4``; FP8 is E4M3 for inference, with its KV cache in FP8; the FP8-dynamic
checkpoints of llm-compressor, which vLLM serves with the model's 16-bit KV cache, ``fp8-kv16``;
SmoothQuant is W8A8, ``int8``, as are vLLM's ``w8a8-int8`` checkpoints, its ``w8a8-fp8`` ones ``fp8``;
TensorRT-LLM's weight-only INT8 and INT4 are per-channel ``w8a16`` and ``w4a16``, under ModelOpt's
``--qformat`` names too (``int8_wo``, ``int4_wo``; ``int8_sq`` is SmoothQuant; NVIDIA/TensorRT-LLM
tensorrt_llm/models/modeling_utils.py ``QuantizationConfig.quant_algo_to_ammo_qformat``, 2024); GPTQ's 8-bit
checkpoints groups of 128, ``w8a16g128``; llama.cpp's ``llama-quantize`` takes Q3_K, Q4_K and Q5_K as
aliases of Q3_K_M, Q4_K_M and Q5_K_M, ggml-org/llama.cpp tools/quantize/quantize.cpp QUANT_OPTIONS).
A name is looked up lowercased, with spaces (and underscores,
unless a named format has them: ``q4_k_m``) read as dashes and parentheses dropped (``FP8_E4M3``,
``FP8 (E4M3)``)."""


@dataclass(frozen=True, slots=True)
class Quant:
    """Precision of each tensor class.

    Attributes
    ----------
    weight, act, kv : str
        Format names (``fp16``, ``fp8``, ``int4``, ``int3``...).
    weight_bits, act_bits, kv_bits : int
        Bits per element, 1..16 or 32.
    group_size : int
        Weights per scale group; 0 means per-channel scales (negligible bytes, not counted).
    zero_point : bool
        Whether each group also stores a zero point.
    overrides : tuple of (op, bits)
        Stored bits per weight of named ops (``(("lm_head", 16),)``) that differ from the
        rest, scales included; fractional for GGUF block types (``("lm_head", 6.5625)``, Q6_K).
    """

    weight: str = "fp16"
    act: str = "fp16"
    kv: str = "fp16"
    weight_bits: int = 16
    act_bits: int = 16
    kv_bits: int = 16
    group_size: int = 0
    zero_point: bool = False
    overrides: tuple[tuple[str, float], ...] = ()
    label: str = ""
    extra_bits: float | None = None

    @classmethod
    def make(
        cls,
        weight: int | str = "fp16",
        act: int | str = "fp16",
        kv: int | str | None = None,
        group_size: int = 0,
        zero_point: bool = False,
        overrides: Mapping[str, int] | None = None,
    ) -> Quant:
        """A validated ``Quant``; ``kv`` defaults to the activation format."""
        wb, wn = _format(weight, "weight")
        ab, an = _format(act, "act")
        kb, kn = _format(kv if kv is not None else act, "kv")
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 0:
            raise ConfigError(f"quant field 'group_size' is {group_size!r}; expected an integer >= 0")
        checked = tuple(
            sorted((op, _format(bits, f"overrides.{op}")[0]) for op, bits in (overrides or {}).items())
        )
        return cls(wn, an, kn, wb, ab, kb, group_size, zero_point, checked)

    @classmethod
    def from_name(cls, name: str) -> Quant:
        """A ``Quant`` from a precision name.

        ``fp32``, ``fp16``, ``bf16``: everything in that format. ``fp8``: FP8 weights,
        activations and KV cache (TensorRT-LLM's FP8 recipe, ``--enable_fp8 --fp8_kv_cache``).
        ``fp8-kv16``: FP8 weights and activations with a 16-bit KV cache (vLLM and SGLang serve
        FP8 checkpoints so unless told ``--kv-cache-dtype fp8``).
        ``fp8-ffn``: FP8 weights and activations in the FFNs only, attention projections,
        embedding and LM head in 16 bits, 16-bit KV cache: Meta's FP8 checkpoints of Llama 3.1
        (``fbgemm_fp8``, FBGEMM rowwise scales; Llama 3 paper, arXiv 2407.21783, Sec. 6.2: the
        self-attention parameters stay in BF16; meta-llama/llama-stack @c05fbf14
        ``llama_stack/providers/impls/meta_reference/inference/quantization/loader.py``
        quantizes the feed-forward w1, w3, w2 of every layer but the first and the last; those
        two layers' FFNs, under 2% of the FFN weights of the 405B, are priced in FP8 here).
        ``mxfp4``: OpenAI's gpt-oss checkpoints (``quantization_config`` quant_method mxfp4,
        ``modules_to_not_convert`` the attention blocks, router, embedding and LM head): the
        experts' weights in MXFP4, E2M1 values in blocks of 32 sharing an 8-bit E8M0 scale (OCP
        Microscaling Formats spec v1.0), 4.25 bits; the rest BF16; 16-bit activations and KV
        cache (``mxfp4-kv8``: an 8-bit KV cache).
        ``fp4``: FP4 weights and activations with an FP8 KV cache (the usual NVFP4 recipe). ``int8``: W8A8 (SmoothQuant style), 16-bit KV.
        ``int4``: W4A16 with group 128 (AWQ/GPTQ style). These named recipes keep the embedding
        and LM head in 16 bits (``WIDE_HEADS``). ``wXaY[kvZ][gG]``: any widths, every weight,
        e.g. ``w3a16g64``, ``w4a8kv8``. Other spellings: ``PRECISION_ALIASES``.
        """
        if not isinstance(name, str):
            raise ConfigError(
                f"precision is {name!r}; expected a name such as fp16, bf16, fp8, int8, int4 or w4a16"
            )
        key = re.sub(r"\s+", "-", re.sub(r"[()]", " ", name.strip().lower()).strip())  # "FP8 (E4M3)"
        if key not in PRECISION_ALIASES and key not in named_formats():  # q4_k_m keeps its underscores
            key = key.replace("_", "-")  # "FP8_E4M3"
        key = PRECISION_ALIASES.get(key, key)
        if key in named_formats():
            f = named_formats()[key]
            q = cls.make(
                f["weight_bits"],
                f.get("act_format", f["act_bits"]),
                f["kv_bits"],
                group_size=f.get("group_size", 0),
            )
            if "layer_mix" in f:  # a llama.cpp GGUF type: layer mixture, own output and embedding types
                types = ggml_type_bits()
                heads = (("embedding", types[f["token_embd_type"]]), ("lm_head", types[f["output_type"]]))
                extra = gguf_layer_bits(f) - q.weight_bits
                return replace(q, label=key, extra_bits=extra, overrides=heads)
            extra = f["bits_per_weight"] - f["weight_bits"] if "bits_per_weight" in f else None
            return replace(q, label=key, extra_bits=extra)
        if key in ("fp32", "fp16", "bf16"):
            return cls.make(key, key, key)
        if key == "fp8":
            return cls.make("fp8", "fp8", "fp8", overrides=WIDE_HEADS)
        if key == "fp8-kv16":  # FP8 checkpoint served with the model's 16-bit KV cache
            return replace(cls.make("fp8", "fp8", "fp16", overrides=WIDE_HEADS), label="fp8-kv16")
        if key == "fp8-ffn":  # Meta's FBGEMM FP8 Llama 3.1 checkpoints: FP8 FFNs, 16-bit elsewhere
            wide = {**WIDE_HEADS, "attention": 16}
            return replace(cls.make("fp8", "fp8", "fp16", overrides=wide), label="fp8-ffn")
        if key in ("mxfp4", "mxfp4-kv8"):  # OpenAI's gpt-oss checkpoints: MXFP4 experts, BF16 elsewhere
            wide = {**WIDE_HEADS, "attention": 16, "router": 16}
            q = cls.make(4, 16, 8 if key == "mxfp4-kv8" else 16, overrides=wide)
            return replace(q, extra_bits=0.25, label=key)
        if key == "fp4":  # NVFP4: E2M1 values, one FP8 scale per 16 (NVIDIA Blackwell docs): 4.5 bits
            return replace(cls.make("fp4", "fp4", "fp8", overrides=WIDE_HEADS), extra_bits=0.5, label="fp4")
        if key == "int8":
            return cls.make("int8", "int8", "fp16", overrides=WIDE_HEADS)
        if key == "int4":
            return cls.make("int4", "fp16", "fp16", group_size=128, overrides=WIDE_HEADS)
        m = re.fullmatch(r"w(\d+)a(\d+)(?:kv(\d+))?(?:g(\d+))?", key)
        if m:
            w, a, kv, g = m.groups()
            return cls.make(int(w), int(a), int(kv) if kv else int(a), group_size=int(g) if g else 0)
        word = _first_precision_word(name)
        if word is not None:
            warnings.warn(
                f"precision {name!r} read as {word} (its first word that names a precision); name one "
                "alone to be sure (docs/cli.md lists them under Precision)",
                HwsimNote,
                stacklevel=2,
            )
            return cls.from_name(word)
        near = closest_names(key, [*named_formats(), *NAMED_PRECISIONS])
        raise ConfigError(
            f"precision {name!r} is not known; expected fp32, bf16, fp16, fp8, fp8-kv16, fp8-ffn, fp4, int8, int4, "
            f"a named format of {_FORMATS_FILE} (llama.cpp GGUF types q4_0, q4_k_m, iq2_xxs..., qnn_w4a16) "
            f"or a pattern like w4a16, w4a8kv8, w3a16g64; closest: {', '.join(near) or 'none'}"
        )

    @property
    def name(self) -> str:
        """A short label (``fp16``, ``w4a16g128``, ``q4_k_m``)."""
        if self.label:
            return self.label
        if self.weight == self.act == self.kv and not self.group_size:
            return self.weight
        g = f"g{self.group_size}" if self.group_size else ""
        return f"w{self.weight_bits}a{self.act_bits}kv{self.kv_bits}{g}"

    def weight_bytes_per_param(self, op: str | None = None) -> float:
        """Bytes per weight element of ``op``, group scales (and zero points) included."""
        override = dict(self.overrides).get(op) if op else None
        if override is not None:
            return override / 8.0
        bits = self.weight_bits
        extra = 0.0
        if self.extra_bits is not None:
            extra = self.extra_bits
        elif self.group_size and bits < 16:
            extra = SCALE_BITS * (2 if self.zero_point else 1) / self.group_size
        return (bits + extra) / 8.0

    @property
    def act_bytes(self) -> float:
        """Bytes per activation element."""
        return self.act_bits / 8.0

    @property
    def residual_bits(self) -> int:
        """Bits per element of the residual stream (the hidden states between layers, the norms'
        inputs and outputs, and the tensor- and pipeline-parallel transfers). With narrow float
        activations (FP8, FP4) engines quantize a GEMM's input just before or inside the GEMM and
        write its output in BF16 (vLLM's and TensorRT-LLM's FP8 and NVFP4 linear layers), so the
        stream and the all-reduce after a row-parallel GEMM stay 16-bit. Integer activations keep
        their width: the accelerators hwsim runs them on (FlightLLM's FPGA, mllm-NPU) keep the
        hidden states in INT8."""
        if self.act.startswith("fp") and self.act_bits < 16:
            return 16
        return int(self.act_bits)

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV-cache element."""
        return self.kv_bits / 8.0

    @property
    def compute_format(self) -> str:
        """The math format of a GEMM: the wider of the weight and activation formats.

        Weight-only quantization (W4A16) dequantizes to the activation format and runs
        16-bit math; W8A8 runs 8-bit math.
        """
        if self.act_bits >= 16 or self.weight_bits > 8:
            return self.act if self.act_bits >= 16 else "fp16"
        if self.weight_bits <= 4 and self.act_bits <= 4:
            return "fp4" if "fp4" in (self.weight, self.act) else "int4"
        return "fp8" if "fp8" in (self.weight, self.act) else "int8"

    def gemm_format(self, op: str) -> tuple[str, int]:
        """(math format, activation bits) of the GEMMs of weight ``op``: a weight kept in 16 bits
        or more by an override (``fp8-ffn``'s attention projections) runs 16-bit math on 16-bit
        activations; every other GEMM runs ``compute_format`` on ``act_bits``."""
        bits = dict(self.overrides).get(op)
        if bits is not None and bits >= 16 and self.act_bits < 16:
            return "fp16", 16
        return self.compute_format, self.act_bits

    @property
    def attention_format(self) -> str:
        """The math format of attention (Q K^T and P V): the wider of the activation and KV-cache
        formats, since a kernel multiplies queries (activations) by cached keys and values and
        up-converts the narrower operand. NVFP4 recipes keep an FP8 KV cache and run FP8
        attention (TensorRT-LLM's FP8 context FMHA; it has no FP4 attention kernel); a W8A8 model
        with a 16-bit cache runs 16-bit attention; llama.cpp's int8 activations meet an f16 cache
        in its f16 FlashAttention kernels."""
        return self.kv if self.kv_bits > self.act_bits else self.act

    def with_kv(self, kv: int | str) -> Quant:
        """The same quantization with another KV-cache format."""
        kb, kn = _format(kv, "kv")
        return replace(self, kv=kn, kv_bits=kb)
