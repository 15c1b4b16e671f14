"""Click options shared by several commands, the command class the CLI's commands use, and the
checks of output paths."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from hwmodels.calibration.params import canonical_framework, split_framework_version

INT64 = (-(2**63), 2**63 - 1)
"""The range an integer option must lie in: NumPy holds counts as int64, and beyond it they wrap."""

NAME_MAX_BYTES = 255
"""Longest file or folder name Linux and macOS file systems take."""


class PathType(click.Path):
    """``click.Path`` that names a path with a NUL byte as a bad parameter (click's own checks
    stat the path first, and the OS refuses it with a ValueError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, bytes)) and "\x00" in os.fsdecode(value):
            self.fail(f"{str(value)!r}: a path cannot hold a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


class StrictCommand(click.Command):
    """A command that refuses what click would otherwise accept silently: an option given twice
    (click keeps the last), an integer beyond the 64-bit range, and a NaN or infinite number."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _refuse_repeats(self, ctx, args)
        rest = super().parse_args(ctx, args)
        if isinstance(ctx.params.get("framework"), str):  # trt-llm, llamacpp: the frameworks.yaml name
            ctx.params["framework"] = framework_name(ctx.params["framework"])
        for param in self.params:
            value = ctx.params.get(param.name)
            # a repeatable option (multiple=True) holds a tuple: every value is checked
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                if isinstance(v, int) and not INT64[0] <= v <= INT64[1]:
                    raise click.BadParameter(f"{v} is beyond the 64-bit integer range", ctx, param)
                if isinstance(v, float) and not math.isfinite(v):
                    raise click.BadParameter(f"{v} is not a finite number", ctx, param)
        return rest


def framework_name(text: str) -> str:
    """The frameworks.yaml entry a ``--framework`` value names: with a version (``vllm 0.6.3``),
    the one that version ran as (``vllm-v0``, by the version rules of
    ``hwmodels/validation/aliases.yaml`` that measured rows are read by), with a note on stderr;
    else its ``canonical_framework`` name (``trt-llm`` -> ``tensorrt-llm``)."""
    base, version = split_framework_version(text)
    if version is None:
        return canonical_framework(text)
    from roofline.validation import framework_of  # the version rules; imported only when needed

    name, by_version = canonical_framework(base), framework_of(base, f"version={version}")
    if by_version is None:  # not a framework: refused later with the closest names
        return text
    if by_version != name:
        click.echo(
            f"hwsim: note: framework {text!r} read as {by_version} (the engine {name} {version} ran)",
            err=True,
        )
    return by_version


class StrictGroup(click.Group):
    """A group whose commands are ``StrictCommand``s."""

    command_class = StrictCommand


REPEAT_HINTS = {("estimate", "device"): "to set devices side by side, use `hwsim compare -m M -d A -d B`"}
"""What to do instead, for an option a user may repeat on purpose."""


def _refuse_repeats(command: click.Command, ctx: click.Context, args: list[str]) -> None:
    """Raise ``UsageError`` when an option that takes one value is given more than once."""
    options = {
        o: p for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)
    }
    given: dict[str, list[str | None]] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        arg, value = args[i], None
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        param = options.get(name)
        if param is None or not arg.startswith("-"):
            i += 1
            continue
        takes_value = not (param.is_flag or param.count)
        if arg != name:  # --opt=value or -ovalue
            value = arg[len(name) :].removeprefix("=")
        elif takes_value and i + 1 < len(args):
            i += 1
            value = args[i]
        if takes_value and not param.multiple:  # a repeated flag loses nothing
            given.setdefault(param.name, []).append(value)
        i += 1
    for param_name, values in given.items():
        if len(values) > 1:
            param = next(p for p in command.params if p.name == param_name)
            hint = REPEAT_HINTS.get((command.name, param_name), "give it once")
            raise click.UsageError(
                f"option {'/'.join(param.opts)} is given {len(values)} times ({', '.join(map(repr, values))}); "
                f"it takes one value: {hint}",
                ctx,
            )


def check_output_path(path: Path, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written as an output file (or folder), or None: an empty name, a
    folder where a file goes (or a file where a folder goes), a name longer than the file system
    takes, or a parent that is a file."""
    if not folder and path.name in ("", ".", ".."):
        return "expected a file name"
    long = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX_BYTES]
    if long:
        return f"a name in it is {len(os.fsencode(long[0]))} bytes long; file systems take {NAME_MAX_BYTES}"
    try:
        if not folder and path.is_dir():
            return "it is a folder; expected a file name"
        if folder and path.exists() and not path.is_dir():
            return "it is a file; expected a folder"
        for parent in path.absolute().parents:
            if parent.exists():
                return _unwritable(parent) if parent.is_dir() else f"{str(parent)!r} is a file, not a folder"
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        return f"it cannot be used ({getattr(exc, 'strerror', None) or exc})"
    return None


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be made in ``folder`` (tried: a folder made and removed at once; a
    permission check passes for root on a read-only or virtual file system such as /proc), or None."""
    try:
        probe = tempfile.mkdtemp(prefix=".hwsim-probe-", dir=folder)
    except OSError as exc:
        return f"nothing can be written in {str(folder)!r} ({exc.strerror or exc})"
    os.rmdir(probe)
    return None


def output_file(ctx: click.Context, param: click.Parameter, value: Any) -> Path | None:
    """Click callback of an output-file option: refuse a path that cannot be written before any
    work is done."""
    if value is None:
        return None
    why = check_output_path(Path(value))
    if why:
        raise click.BadParameter(f"{str(value)!r}: {why}", ctx, param)
    return Path(value)


def output_folder(ctx: click.Context, param: click.Parameter, value: Any) -> Path | None:
    """Click callback of an output-folder option (as ``output_file``)."""
    if value is None:
        return None
    if not str(value).strip():  # Path("") is the current folder: writing there must be asked for
        raise click.BadParameter(
            f"{str(value)!r}: an empty name; expected a folder ('.' for the current one)", ctx, param
        )
    why = check_output_path(Path(value), folder=True)
    if why:
        raise click.BadParameter(f"{str(value)!r}: {why}", ctx, param)
    return Path(value)


def moe_options(f):
    """Expert-parallel deployment and multi-token prediction options (estimate, serve)."""
    for opt in reversed(
        [
            click.option(
                "--attention-dp",
                is_flag=True,
                help="Attention data parallel across the --ep group (each device its batch/ep sequences).",
            ),
            click.option(
                "--expert-imbalance",
                type=float,
                default=1.0,
                show_default=True,
                help="Routed tokens on the busiest expert-parallel device over the mean (>= 1).",
            ),
            click.option(
                "--mtp",
                "mtp_tokens",
                type=int,
                default=0,
                show_default=True,
                help="Tokens drafted per step by the model's multi-token-prediction module.",
            ),
            click.option(
                "--mtp-acceptance",
                type=float,
                default=0.0,
                show_default=True,
                help="Chance each drafted token is accepted (DeepSeek-V3 reports 0.85-0.9).",
            ),
        ]
    ):
        f = opt(f)
    return f
