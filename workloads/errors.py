"""Errors every hwsim layer raises for user mistakes.

A user mistake (an unknown name, a bad field, a model that does not fit) is one of
these; the CLI prints its message on one line and exits non-zero, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HwsimError(Exception):
    """Base class of every error hwsim raises for bad input."""


class ConfigError(HwsimError):
    """A configuration file or argument has a missing, unknown or out-of-range field."""


class UnknownNameError(HwsimError):
    """A name (model, device, cost model, system) is not known; the message lists the closest."""


class DoesNotFitError(HwsimError):
    """A model does not fit in the memory it is given; the message says by how many bytes."""


def closest_names(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name`` (case-insensitive), best first."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.4)
    if not near:
        near = [k for k in lowered if name.lower() in k or k in name.lower()][:n]
    return [lowered[k] for k in near]


def unknown_name(kind: str, name: str, known: Iterable[str], list_cmd: str | None = None) -> UnknownNameError:
    """An ``UnknownNameError`` whose message lists the closest known names.

    ``list_cmd`` is the CLI command that lists them all (``"hwsim models"``), if any.
    """
    known = sorted(known)
    near = closest_names(name, known)
    hint = f"; closest: {', '.join(near)}" if near else f"; known: {', '.join(known[:8])}"
    more = f" (`{list_cmd}` lists all {len(known)})" if list_cmd else ""
    return UnknownNameError(f"unknown {kind} {name!r}{hint}{more}")
