"""Parsing the YAML data files hwsim ships (its catalog, calibration, presets and tables).

They are parsed with libyaml's safe loader where PyYAML was built with it: on the shipped files
it gives the same values as the pure-Python safe loader (every file was compared) about eight
times faster, which is most of a command's start-up. A file a user names goes through
``workloads.files.read_yaml`` instead, whose errors name the file.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's ``CSafeLoader`` where available, else PyYAML's own ``SafeLoader``."""


def parse_yaml(text: str) -> Any:
    """The value of a shipped YAML text (safe tags only)."""
    return yaml.load(text, Loader=SAFE_LOADER)  # a safe loader: no arbitrary objects
