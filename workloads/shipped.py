"""Parsing the YAML data files hwsim ships (its catalog, calibration, presets and tables).

They are parsed with libyaml's safe loader where PyYAML was built with it: on the shipped files
it gives the same values as the pure-Python safe loader (every file was compared) about eight
times faster, which is most of a command's start-up. A file a user names goes through
``workloads.files.read_yaml`` instead, whose errors name the file.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


def refusing_duplicate_keys(base: type) -> type:
    """``base`` (a PyYAML loader class) refusing a mapping that names a key twice, which YAML
    forbids and PyYAML reads silently as the last value (a ``<<`` merge key may still be
    overridden: that is what it is for). The error names the key and the line of its first use."""

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == MERGE_TAG:
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.get(key)
                    except TypeError:  # an unhashable key: the base constructor says so
                        continue
                    if first is not None:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"key {key!r} given twice (first at line {first})",
                            key_node.start_mark,
                        )
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    Loader.__name__ = f"Unique{base.__name__}"
    return Loader


SAFE_LOADER: type = refusing_duplicate_keys(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
"""libyaml's ``CSafeLoader`` where available, else PyYAML's own ``SafeLoader``, refusing a key
given twice in one mapping."""


def parse_yaml(text: str) -> Any:
    """The value of a shipped YAML text (safe tags only)."""
    return yaml.load(text, Loader=SAFE_LOADER)  # a safe loader: no arbitrary objects
