"""Reading the input files a user names (a model's ``config.json``, a device or system YAML).

A file that is missing, a folder, unreadable, not UTF-8, not valid JSON or YAML, or not a
mapping of fields is a ``ConfigError`` naming the file and what was expected, never a
traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import ConfigError


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a name the OS refuses (too long, a file as a folder)."""
    try:
        return path.is_file()
    except OSError:
        return False


def is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False for a name the OS refuses."""
    try:
        return path.is_dir()
    except OSError:
        return False


def exists(path: Path) -> bool:
    """Whether anything is at ``path``; False for a name the OS refuses."""
    try:
        return path.exists()
    except OSError:
        return False


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the ``what`` file at ``path`` (``what``: "model config", "system file")."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {str(path)!r} is a folder; expected a file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read ({exc.strerror})") from None


def _mapping(raw: Any, path: Path, kind: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{path}: expected a {kind} mapping of fields, got {got}")
    return raw


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The YAML file at ``path`` parsed, which must be a mapping of fields."""
    text = read_text(path, what)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({problem}{where})") from None
    return _mapping(raw, path, "YAML")


def read_json_mapping(path: Path, what: str) -> dict[str, Any]:
    """The JSON file at ``path`` parsed, which must be an object."""
    text = read_text(path, what)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    return _mapping(raw, path, "JSON")
