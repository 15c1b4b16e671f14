"""Errors every hwsim layer raises for user mistakes.

A user mistake (an unknown name, a bad field, a model that does not fit) is one of
these; the CLI prints its message on one line and exits non-zero, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")


class HwsimError(Exception):
    """Base class of every error hwsim raises for bad input.

    The message is one line: a value shown in it by its ``repr`` (a 2-D array, a string with a
    newline) has its line breaks and the spaces around them folded into one space."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip(), *args)


class ConfigError(HwsimError):
    """A configuration file or argument has a missing, unknown or out-of-range field."""


class UnknownNameError(HwsimError):
    """A name (model, device, cost model, system) is not known; the message lists the closest."""


class UnknownArgumentError(UnknownNameError, TypeError):
    """A keyword argument a function does not take; the message lists the closest it does. A
    ``TypeError`` too, as Python's own for a wrong keyword."""


class DoesNotFitError(HwsimError):
    """A model does not fit in the memory it is given; the message says by how many bytes."""


class AmbiguousNameError(HwsimError):
    """A name stands for several parts (the variants of a GPU, the CPU, GPU and NPU of a phone
    SoC) and hwsim will not pick one; the message lists them."""


class HwsimNote(UserWarning):
    """An assumption hwsim made about what the user typed (the variant of a device name that
    has several), issued with ``warnings.warn``; the CLI prints each once on stderr."""


def squashed(name: str) -> str:
    """``name`` lowercased with every character other than a letter or a digit removed."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def names_holding(query: str, names: Mapping[str, Iterable[str]]) -> list[str]:
    """The names of ``names`` (each name's other names: spellings, repo ids) that hold ``query``, or
    one of whose other names does, ignoring case, spaces and punctuation; those whose name begins
    with it first (``hwsim models QUERY``, ``hwsim frameworks QUERY``)."""
    needle = squashed(query)
    hits = [n for n, others in names.items() if needle and any(needle in squashed(s) for s in [n, *others])]
    return sorted(hits, key=lambda n: (not squashed(n).startswith(needle), n))


def closest_names(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name``, best first.

    Names that ``name`` begins (ignoring case, spaces and punctuation: ``h100`` begins
    ``h100-sxm``) come first, shortest first; then names one of whose later words it begins
    (``3090`` begins a word of ``rtx-3090``); then the closest by ``difflib``'s ratio; then, if
    none of these found any, names that hold ``name`` or that it holds.
    """
    known = list(known)
    key = squashed(name)

    def begins_a_word(k: str) -> bool:
        return any(w.startswith(key) for w in re.split(r"[^a-z0-9]+", k.lower())[1:])

    prefixed = sorted(
        (k for k in known if key and squashed(k).startswith(key)), key=lambda k: (len(squashed(k)), k)
    )
    prefixed += sorted(
        (k for k in known if key and k not in prefixed and begins_a_word(k)),
        key=lambda k: (len(squashed(k)), k),
    )
    lowered = {k.lower(): k for k in known}
    near = [lowered[k] for k in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.4)]
    if not prefixed and not near:
        near = [k for low, k in lowered.items() if name.lower() in low or low in name.lower()]
    return list(dict.fromkeys(prefixed + near))[:n]


LISTED_NAMES = 20
"""Most known names an unknown-name error lists in full; a longer list shows its first 8."""


def _some(known: list[str]) -> str:
    """``known`` (sorted) for an error message: all of a short list, else the first 8 and a count."""
    if len(known) <= LISTED_NAMES:
        return ", ".join(known)
    return f"{', '.join(known[:8])} and {len(known) - 8} more"


def unknown_name(kind: str, name: str, known: Iterable[str], list_cmd: str | None = None) -> UnknownNameError:
    """An ``UnknownNameError`` whose message lists the closest known names.

    ``list_cmd`` is the CLI command that lists them all (``"hwsim models"``), if any.
    """
    known = sorted(known)
    more = f" (`{list_cmd}` lists all {len(known)})" if list_cmd else ""
    if not isinstance(name, str):  # a number or a list where a name belongs: no name is close
        return UnknownNameError(f"{kind} is {name!r}; expected a name, one of {_some(known)}{more}")
    near = closest_names(name, known)
    hint = f"; closest: {', '.join(near)}" if near else f"; known: {_some(known)}"
    return UnknownNameError(f"unknown {kind} {name!r}{hint}{more}")


def shown_value(value: Any) -> str:
    """``repr(value)``, shortened past 60 characters (an integer of hundreds of digits)."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to write an integer of more than 4,300 digits
        return "an integer of more than 4,300 digits"
    return text if len(text) <= 60 else f"{text[:12]}...{text[-4:]} ({len(text):,} characters)"


def positive_count(value: Any, field: str, limit: int | None = None) -> int:
    """``value`` as a Python ``int`` from 1 to ``limit`` (None: no limit); a NumPy integer is
    taken (its arithmetic would wrap in its own width), a bool or a float is not. Otherwise a
    one-line ``ConfigError`` naming ``field``, the value and what was expected."""
    top = float("inf") if limit is None else limit
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= top:
        most = "" if limit is None else f" up to {limit:,}"
        raise ConfigError(f"{field} is {shown_value(value)}; expected a positive integer{most}")
    return int(value)


def is_real_number(value: Any) -> bool:
    """Whether ``value`` is a real number: a Python or NumPy int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _finite(value: float | int | np.number) -> bool:
    """Whether a real number is finite; False for an integer too large for a float (10**400)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def positive_number(
    value: Any, field: str, unit: str = "", limit: float | None = None, minimum: float | None = None
) -> float:
    """``value`` as a Python ``float``: a real number (a NumPy one is taken, a bool is not), finite,
    above 0 (or at least ``minimum``) and at most ``limit``. Otherwise a one-line ``ConfigError``
    naming ``field``, the value and what was expected (``unit``: what the number counts)."""
    real = is_real_number(value)
    top = float("inf") if limit is None else limit
    if not (
        real and _finite(value) and (value > 0 if minimum is None else value >= minimum) and value <= top
    ):
        need = "a positive number" if minimum is None else f"a number >= {minimum:g}"
        need += f" of {unit}" if unit else ""
        need += "" if limit is None else f" up to {limit:,}"
        raise ConfigError(f"{field} is {shown_value(value)}; expected {need}")
    return float(value)


INT64_MAX = 2**63 - 1
"""Largest integer an argument may be: every count hwsim takes is far below it, and NumPy arrays
of counts are int64 (a larger Python integer would wrap or become an object array)."""


def refuse_huge_integers(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public function so that an integer argument beyond int64 (or one inside a list,
    tuple or dict argument) is a one-line ``ConfigError`` naming the argument, before any check
    converts it to a float (10**400 overflows) or writes it (Python refuses to write an integer
    of more than 4,300 digits); and so that a keyword the function does not take is a one-line
    ``UnknownArgumentError`` naming the closest it does."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            keywords = [
                n
                for n, p in signature.parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            wrong = [k for k in kwargs if k not in keywords]
            if wrong:  # a misspelt keyword: named with the closest spellings
                near = closest_names(wrong[0], keywords)
                hint = f"; closest: {', '.join(near)}" if near else f"; it takes {_some(sorted(keywords))}"
                raise UnknownArgumentError(f"{fn.__name__}() takes no argument {wrong[0]!r}{hint}") from None
            return fn(*args, **kwargs)  # let Python name the wrong positional count as it would
        named = dict(bound.arguments)
        for name, param in signature.parameters.items():
            if param.kind is param.VAR_KEYWORD:  # **options: each by its own name
                named.update(named.pop(name, {}))
        for name, value in named.items():
            huge = _huge_integer(value)
            if huge is not None:
                raise ConfigError(
                    f"{name} holds {shown_value(huge)}; expected integers within int64 (|n| < 9.2e18)"
                )
        return fn(*args, **kwargs)

    return checked


def _huge_integer(value: Any, depth: int = 0) -> int | None:
    """The first integer beyond int64 in ``value`` (looking three containers deep), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) > INT64_MAX else None
    if depth < 3 and isinstance(value, (list, tuple, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            huge = _huge_integer(item, depth + 1)
            if huge is not None:
                return huge
    return None
