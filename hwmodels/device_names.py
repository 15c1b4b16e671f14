"""Device names users type: normalization, aliases, variants assumed with a note, SoCs refused.

The table is ``hwmodels/catalog/aliases.yaml``. A typed name is normalized (lowercase, split at
every character other than a letter or a digit, vendor words dropped, joined) and looked up among
the normalized catalog names, their aliases and the ambiguous names. ``docs/device-names.md`` is
generated from the table and the catalog (``python -m hwmodels.device_names >
docs/device-names.md``); ``tests/test_names.py`` keeps the two in sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType

from hwmodels.device_spec import SCHEMA_VERSION, _check_keys, catalog
from workloads.errors import AmbiguousNameError, ConfigError, squashed, unknown_name
from workloads.model_spec import preset_index
from workloads.shipped import parse_yaml

WHERE = "hwmodels/catalog/aliases.yaml"


@dataclass(frozen=True)
class Ambiguous:
    """A name for several catalog parts (an ``ambiguous:`` entry of the alias table).

    ``assume`` is the variant the name resolves to (with a note), or None when the name is
    refused; ``soc`` marks a system-on-chip whose ``variants`` are its parts; ``others`` names
    real variants the catalog does not hold; ``why`` is the basis of the choice.
    """

    name: str
    variants: tuple[str, ...]
    assume: str | None
    soc: bool
    names: tuple[str, ...]
    others: str
    why: str

    def _listed(self) -> str:
        return ", ".join(self.variants) + (f"; {self.others}" if self.others else "")

    def note(self, typed: str) -> str:
        """The one line saying which variant ``typed`` was taken for."""
        choose = "; name a variant to choose another" if len(self.variants) > 1 else ""
        return f"device {typed!r}: assumed {self.assume} (variants: {self._listed()}){choose}"

    def refusal(self, typed: str) -> AmbiguousNameError:
        """The error for a name hwsim will not resolve, listing its parts or variants."""
        what = "is a SoC; its parts" if self.soc else "names several parts"
        return AmbiguousNameError(
            f"device {typed!r}: {self.name} {what}: {self._listed()}; name one "
            f"(`hwsim devices {self.name}` compares them)"
        )


@dataclass(frozen=True)
class NameTable:
    """The parsed alias table: vendor words, other names per catalog device, ambiguous names."""

    vendor_words: frozenset[str]
    aliases: Mapping[str, tuple[str, ...]]
    ambiguous: Mapping[str, Ambiguous]

    def key(self, name: str) -> str:
        """``name`` normalized: lowercase, split at non-alphanumerics, a device count in front
        (``8x``, ``8 x``, ``8×``) or behind (``x8``, ``× 8``) and a power (``700W``) dropped,
        vendor words dropped (unless nothing else is left), joined (``"NVIDIA H100 SXM"`` ->
        ``"h100sxm"``, ``"8x H100 SXM (700W)"`` and ``"H100 SXM x8"`` -> ``"h100sxm"``)."""
        text = re.sub(r"^\s*\d+\s*[x×](?=\s*[a-z])", "", name.lower())  # "8x H100", "8 x H200", "8×H100"
        text = re.sub(r"(?<![a-z0-9])[x×]\s*\d+\W*$", "", text)  # "H100 x8", "MI300X ×8", "(x8)"
        tokens = [t for t in re.split(r"[^a-z0-9]+", text) if t and not re.fullmatch(r"\d+w", t)]
        return "".join([t for t in tokens if t not in self.vendor_words] or tokens)


def _names(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(n, str) and n.strip() for n in raw):
        raise ConfigError(f"{where} is {raw!r}; expected a list of names")
    return tuple(raw)


@lru_cache(maxsize=1)
def name_table() -> NameTable:
    """The alias table, parsed and checked against the catalog (every name it points to exists,
    no two entries normalize to the same name)."""
    raw = parse_yaml(files("hwmodels.catalog").joinpath("aliases.yaml").read_text())
    _check_keys(raw, WHERE, {"schema_version", "vendor_words", "aliases", "ambiguous"}, {"instances"})
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"{WHERE}: schema_version {raw['schema_version']!r}; expected {SCHEMA_VERSION}")
    devices = catalog()
    aliases = {}
    for name, others in raw["aliases"].items():
        if name not in devices:
            raise unknown_name(f"device in {WHERE} aliases", name, devices)
        aliases[name] = _names(others, f"{WHERE}: aliases.{name}")
    for name, families in (raw.get("instances") or {}).items():
        if name not in devices:
            raise unknown_name(f"device in {WHERE} instances", name, devices)
        aliases[name] = aliases.get(name, ()) + _names(families, f"{WHERE}: instances.{name}")
    ambiguous = {}
    for name, entry in raw["ambiguous"].items():
        where = f"{WHERE}: ambiguous.{name}"
        _check_keys(entry, where, {"variants", "why"}, {"assume", "soc", "names", "others"})
        variants = _names(entry["variants"], f"{where}.variants")
        for v in variants:
            if v not in devices:
                raise unknown_name(f"device in {where}.variants", v, devices)
        assume = entry.get("assume")
        if assume is not None and assume not in variants:
            raise ConfigError(f"{where}.assume is {assume!r}; expected one of its variants {list(variants)}")
        if assume is None and len(variants) < 2 and not entry.get("soc"):
            raise ConfigError(f"{where}: a refused name needs two or more variants, or soc: true")
        ambiguous[name] = Ambiguous(
            name,
            variants,
            assume,
            bool(entry.get("soc", False)),
            _names(entry.get("names", []), f"{where}.names"),
            str(entry.get("others", "")),
            str(entry["why"]),
        )
    vendor = frozenset(_names(raw["vendor_words"], f"{WHERE}: vendor_words"))
    return NameTable(vendor, MappingProxyType(aliases), MappingProxyType(ambiguous))


@lru_cache(maxsize=1)
def _index() -> Mapping[str, str | Ambiguous]:
    """Normalized name -> the catalog name or the ambiguous entry it stands for."""
    table = name_table()
    spellings: list[tuple[str, str | Ambiguous]] = [(n, n) for n in catalog()]
    spellings += [(alias, n) for n, others in table.aliases.items() for alias in others]
    for entry in table.ambiguous.values():
        spellings += [(s, entry) for s in (entry.name, *entry.names)]
    out: dict[str, str | Ambiguous] = {}
    for spelling, target in spellings:
        key = table.key(spelling)
        if key in out and out[key] != target:
            first = out[key] if isinstance(out[key], str) else out[key].name
            raise ConfigError(
                f"{WHERE}: {spelling!r} normalizes to {key!r}, already the name of {first!r}; "
                "expected every name to stand for one thing"
            )
        out[key] = target
    return MappingProxyType(out)


MEMORY_WORDS = frozenset({"hbm", "hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6", "gddr6x", "gddr7", "lpddr5x"})
"""Memory-type words a typed name may carry beside its size (``H100 80GB HBM3``)."""


def _stated_memory(typed: str) -> tuple[str, float] | None:
    """(``typed`` without its memory size and type words, the size in GB) when it states one size
    (``RTX 4090 24GB``, ``H100 94 GB``), else None."""
    text = re.sub(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*(gb|gib|g)\b", r" \1gb ", typed.lower())
    tokens = [t for t in re.split(r"[^a-z0-9.]+", text) if t]
    sizes = [t for t in tokens if re.fullmatch(r"\d+(?:\.\d+)?gb", t)]
    if len(sizes) != 1:
        return None
    rest = [t for t in tokens if t != sizes[0] and t not in MEMORY_WORDS]
    return (" ".join(rest), float(sizes[0][:-2])) if rest else None


def _memory_gap(device: str, size_gb: float) -> float:
    """How far ``size_gb`` is from ``device``'s memory, as a fraction of it, in GB or GiB
    (whichever is closer)."""
    gib = catalog()[device].memory.capacity_bytes / 2**30
    return min(abs(size_gb - c) / c for c in (gib, gib * 2**30 / 1e9))


def _holds(device: str, size_gb: float) -> bool:
    """Whether ``device``'s memory is ``size_gb`` as vendors state it: GB or GiB, physical or
    usable (B200: 192 GB on the package, 180 GB usable), within 10%."""
    return _memory_gap(device, size_gb) <= 0.1


def _lookup(typed: str) -> str | Ambiguous | None:
    """What ``typed`` names in the index: as normalized, else without the word GPU (``NVIDIA
    H100 Tensor Core GPU``; a name known with it, the Snapdragon 8 Gen 3 GPU, keeps it), else
    without a remark in parentheses (``NVIDIA A10G (AWS g5)``), else without a cloud instance's size
    (``CLOUD_SIZE``: ``p4d.24xlarge`` is the p4d family's GPU), else two names of one part
    written together (``Gaudi2 HL-225H``: the product and its model number)."""
    index, text = _index(), typed.lower()
    for candidate in (
        text,
        re.sub(r"\bgpu\b", " ", text),
        re.sub(r"\([^)]*\)", " ", text),
        re.sub(CLOUD_SIZE, "", text.strip()),
    ):
        found = index.get(name_table().key(candidate))
        if found is not None:
            return found
    return _two_names(text)


CLOUD_SIZE = (
    r"(?<=[a-z0-9])\.(?:metal(?:-\d+xl)?|\d*xlarge|large|medium|small)$"  # AWS: p4d.24xlarge, g5.xlarge
    r"|(?<=gpu)-\d+g$"  # Google Cloud: a3-highgpu-8g, a2-ultragpu-1g
    r"|(?<=standard)-\d+$"  # Google Cloud: g2-standard-8
)
"""The size of a cloud instance type, dropped from a typed name when the name is not known with it:
the instance family (``instances:`` in the alias table) stands for its GPU at every size."""


def _two_names(text: str) -> str | None:
    """The catalog part both halves of ``text`` name, split between two of its words (``gaudi 3``
    and ``hl 325l``), when some split gives two halves that each name that same part; else None."""
    index, words = _index(), text.split()
    for cut in range(1, len(words)):
        left = index.get(name_table().key(" ".join(words[:cut])))
        if isinstance(left, str) and left == index.get(name_table().key(" ".join(words[cut:]))):
            return left
    return None


def resolve_device_name(typed: str) -> tuple[str, str | None] | None:
    """The catalog name ``typed`` stands for, with the note to show when a variant was assumed
    (else None); None when the name is unknown. Raises ``AmbiguousNameError`` for a name that
    stands for several parts and assumes none (a phone SoC). A name not known as typed that states
    a memory size (``RTX 4090 24GB``, ``H100 94GB``) is the part its other words name whose memory
    is that size: one variant of an ambiguous name picked by it, never a part of another size."""
    target = _lookup(typed)
    if target is None:
        return _by_memory(typed)
    if isinstance(target, str):
        return target, None
    if target.assume is None:
        raise target.refusal(typed)
    return target.assume, target.note(typed)


def _sized(typed: str) -> tuple[str | Ambiguous, list[str], float] | None:
    """(what the words of ``typed`` other than its memory size name, the parts that is, that
    size in GB), or None when it states no size or its other words name nothing."""
    stated = _stated_memory(typed)
    if stated is None:
        return None
    base, size = stated
    target = _lookup(base)
    if target is None:
        return None
    return target, ([target] if isinstance(target, str) else list(target.variants)), size


def memory_mismatch(typed: str) -> str | None:
    """Why a name that states a memory size names no part (``RTX 4090 48GB``: the catalog's
    rtx-4090 has 24 GB), or None."""
    sized = _sized(typed)
    if sized is None:
        return None
    _, candidates, size = sized
    if any(_holds(d, size) for d in candidates):
        return None
    have = ", ".join(f"{d} {catalog()[d].memory.capacity_bytes / 2**30:.4g} GiB" for d in candidates)
    return (
        f"device {typed!r}: no catalog part of {size:g} GB by that name ({have}); "
        "a device YAML (-d FILE.yaml) can describe another"
    )


def _by_memory(typed: str) -> tuple[str, str | None] | None:
    """``resolve_device_name`` of a name that states its memory size, or None."""
    sized = _sized(typed)
    if sized is None:
        return None
    target, candidates, size = sized
    fits = [d for d in candidates if _holds(d, size)]
    if fits:  # the closest sizes only: 94 GB is the H100 NVL, not the 80 GB parts
        best = min(_memory_gap(d, size) for d in fits)
        fits = [d for d in fits if _memory_gap(d, size) <= best + 0.01]
    if len(fits) == 1:
        return fits[0], None
    if isinstance(target, Ambiguous) and target.assume in fits:
        return target.assume, target.note(typed)
    return None


def find_devices(query: str) -> list[str]:
    """Catalog names ``query`` shows (``hwsim devices QUERY``): the device a name resolves to;
    every variant or part of an ambiguous name or SoC; else every device whose name or display
    name holds the query, ignoring case, spaces and punctuation (``snapdragon``, ``nvidia``); a name
    with a memory size shows the part of that size (``RTX 4090 24GB``, ``H100 94GB``), as
    ``resolve_device_name`` reads it."""
    target = _index().get(name_table().key(query))
    if target is not None:
        return [target] if isinstance(target, str) else list(target.variants)
    sized = _by_memory(query)
    if sized is not None:
        return [sized[0]]
    needle = squashed(query)
    hits = [
        n
        for n, d in catalog().items()
        if needle and (needle in squashed(n) or needle in squashed(d.display_name))
    ]
    if not hits:
        mismatch = memory_mismatch(query)
        if mismatch:
            raise ConfigError(mismatch)
        raise unknown_name("device", query, [*catalog(), *name_table().ambiguous], "hwsim devices")
    return hits


def names_markdown() -> str:
    """``docs/device-names.md``: the names that stand for several parts, the other names of
    catalog devices, and the HuggingFace repo ids of the model presets."""
    table = name_table()
    words = ", ".join(f"`{w}`" for w in sorted(table.vendor_words))
    lines = [
        "# Names users type",
        "",
        "<!-- Generated from hwmodels/catalog/aliases.yaml, the catalog and workloads/presets/index.yaml",
        "by `python -m hwmodels.device_names > docs/device-names.md`; tests/test_names.py checks it. -->",
        "",
        "## Devices",
        "",
        "`-d/--device` takes a catalog name, any other name below, or a path to a device YAML. A",
        "name is compared after normalizing: lowercase, split at every character other than a letter",
        f"or a digit, the vendor, brand and product-kind words {words} dropped, the rest joined. So",
        "`NVIDIA H100 SXM`, `h100_sxm` and `H100-SXM` are all `h100-sxm`; `Intel Gaudi 3` and",
        "`gaudi-3` are `gaudi3`; `GeForce RTX 4090` is `rtx-4090`. A count of devices in front or",
        "behind and a power are dropped (`8x H100 SXM (700W)` and `H100 SXM x8` are `h100-sxm`), and",
        "a name not known as typed is tried without the word GPU, without a remark in parentheses",
        "(`NVIDIA H100 Tensor Core GPU`, `NVIDIA A10G (AWS g5)`), without a cloud instance's size",
        "(`p4d.24xlarge`, `a3-highgpu-8g`: the instance families below stand for their GPU) and as",
        "two names of one part written together (`Gaudi2 HL-225H`). An unknown name is refused with",
        "the closest known names, those it begins first, then those with a word it begins.",
        "`hwsim devices NAME` lists what a name stands",
        "for, or every device whose name or description holds it (`hwsim devices snapdragon`).",
        "A name that also states a memory size (`RTX 4090 24GB`, `H100 94GB`, `B200 192GB`) is the",
        "part its other words name whose memory is that size (GB or GiB, physical or usable, within",
        "10%; the closest wins, so `H100 94GB` is `h100-nvl`); a size no such part has is refused,",
        "naming the sizes there are. A DGX or HGX server's name stands for its GPU.",
        "",
        "### Names for several parts",
        "",
        "A name with a variant assumed resolves to it and prints one line on stderr saying so",
        "(`hwsim: note: device 'a100': assumed a100-sxm-80gb (variants: ...)`; from Python, a",
        "`workloads.errors.HwsimNote` warning). A name without is refused with its variants or",
        "parts listed.",
        "",
        "| name | also spelled | resolves to | variants or parts | why |",
        "|---|---|---|---|---|",
    ]
    for name, e in sorted(table.ambiguous.items()):
        verdict = f"`{e.assume}`, with a note" if e.assume else ("refused: a SoC" if e.soc else "refused")
        parts = ", ".join(f"`{v}`" for v in e.variants) + (f" ({e.others})" if e.others else "")
        also = ", ".join(f"`{s}`" for s in e.names) or "-"
        lines.append(f"| `{name}` | {also} | {verdict} | {parts} | {e.why} |")
    lines += [
        "",
        "### Other names for one device",
        "",
        "Beyond the catalog names themselves (`hwsim devices` lists them all):",
        "",
        "| catalog name | device | also accepted |",
        "|---|---|---|",
    ]
    for name, others in sorted(table.aliases.items()):
        also = ", ".join(f"`{a}`" for a in others)
        lines.append(f"| `{name}` | {catalog()[name].display_name} | {also} |")
    lines += [
        "",
        "## Models",
        "",
        "`-m/--model` takes a preset name, a HuggingFace repo id below (in any case, with or without",
        "the organization, or as its `https://huggingface.co/` address), or a path to a",
        "`config.json` or to the folder holding it. Base, instruct and chat releases with the same",
        "shape map to one preset. A `config.json` is named by the repository of a HuggingFace cache",
        "folder (`.../models--meta-llama--Llama-3.1-8B/snapshots/<hash>/config.json` is",
        "`llama-3.1-8b`), else by the last part of its `_name_or_path` field, else by the file's",
        "own name when it is not `config.json` (`configs/my-model.json` is `my-model`), else by its",
        "folder, all lowercased.",
        "",
        "| preset | HuggingFace repo ids |",
        "|---|---|",
    ]
    for name, entry in sorted(preset_index().items()):
        if entry.get("hf_ids"):
            lines.append(f"| `{name}` | {', '.join(f'`{i}`' for i in entry['hf_ids'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(names_markdown(), end="")
