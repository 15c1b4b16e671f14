"""Reading the input files a user names (a model's ``config.json``, a device or system YAML).

A file that is missing, a folder, not a regular file (a FIFO, a device such as ``/dev/zero``),
larger than ``MAX_FILE_BYTES``, unreadable, not UTF-8, not valid JSON or YAML (a number of more
than 4,300 digits, nesting too deep to parse), or not a mapping of fields is a ``ConfigError``
naming the file and what was expected, never a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import ConfigError
from workloads.shipped import refusing_duplicate_keys

USER_LOADER: type = refusing_duplicate_keys(yaml.SafeLoader)
"""PyYAML's safe loader refusing a key given twice (a user's file: the pure-Python loader, whose
errors carry the line)."""
MAX_FILE_BYTES = 64 * 2**20
"""Largest input file read (64 MiB): a config, device, system or spec file is a few KB; a bigger
one is a wrong path (a model's weights, a disk image) and is refused before it is read."""


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a name the OS refuses (too long, a NUL byte, a file as a folder)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False for a name the OS refuses."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def exists(path: Path) -> bool:
    """Whether anything is at ``path``; False for a name the OS refuses."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    """What a non-regular, non-folder file is, in words."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _cap() -> str:
    """``MAX_FILE_BYTES`` in words (64 MiB)."""
    mib, rest = divmod(MAX_FILE_BYTES, 2**20)
    return f"{mib} MiB" if not rest else f"{MAX_FILE_BYTES:,} bytes"


def _too_big(path: Path, what: str, size: str) -> ConfigError:
    return ConfigError(f"{what} {str(path)!r} is {size}; expected at most {_cap()} (is it the right path?)")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the ``what`` file at ``path`` (``what``: "model config", "system file").

    Only a regular file of at most ``MAX_FILE_BYTES`` is read: a FIFO would block forever and
    ``/dev/zero`` never ends, so both are refused before a byte is read.
    """
    if "\x00" in str(path):
        raise ConfigError(f"{what} path {str(path)!r} holds a NUL byte; expected a file path")
    try:
        info = os.stat(path)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{what} {str(path)!r} is a folder; expected a file")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{what} {str(path)!r} is {_kind(mode)}; expected a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _too_big(path, what, f"{info.st_size:,} bytes")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # a file that grows past its stat is cut here
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {str(path)!r} is a folder; expected a file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{what} {str(path)!r} cannot be read ({reason})") from None
    except ValueError as exc:  # a name the OS refuses outright
        raise ConfigError(f"{what} path {str(path)!r} is not a valid file path ({exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(path, what, f"more than {_cap()}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})") from None


def _mapping(raw: Any, path: Path, kind: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{path}: expected a {kind} mapping of fields, got {got}")
    return raw


def _value_problem(exc: ValueError) -> str:
    """A parser's ``ValueError`` in words: Python's limit on integer digits, or its own first line."""
    text = str(exc)
    if "integer string conversion" in text:
        limit = sys.get_int_max_str_digits() or 4300
        return f"an integer of more than {limit:,} digits; expected at most {limit:,} digits"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def read_yaml(path: Path, what: str) -> Any:
    """The YAML file at ``path`` parsed, whatever its top-level value (a sweep spec's reader
    checks the shape itself); every failure a one-line ``ConfigError`` naming the file."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=USER_LOADER)  # safe: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({problem}{where})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    except ValueError as exc:  # int() past 4,300 digits, a date like 2024-13-01
        raise ConfigError(f"{path}: not valid YAML ({_value_problem(exc)})") from None


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The YAML file at ``path`` parsed, which must be a mapping of fields."""
    return _mapping(read_yaml(path, what), path, "YAML")


def read_json_mapping(path: Path, what: str) -> dict[str, Any]:
    """The JSON file at ``path`` parsed, which must be an object."""
    text = read_text(path, what)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # int() past 4,300 digits
        raise ConfigError(f"{path}: not valid JSON ({_value_problem(exc)})") from None
    return _mapping(raw, path, "JSON")
