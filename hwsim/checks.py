"""What every command that prices a workload checks, and warns of, before it runs.

- a precision whose math the device lacks (FP8 or FP4 on a GPU without those tensor cores) is
  refused, naming the weight-only precision engines run instead (``hwmodels.precision``);
- a prompt plus its output longer than the model's context (``max_position_embeddings``) is
  refused: an engine refuses such a request;
- a tensor- or expert-parallel group larger than the device's NVLink domain is priced, with a
  warning on stderr that its collectives cross the scale-out network.
"""

from __future__ import annotations

import click

from hwmodels.device_spec import DeviceSpec
from hwmodels.placement import scale_out_note
from hwmodels.precision import check_math_units
from workloads.quant import Quant


def precision_for(precision: str, device: DeviceSpec) -> Quant:
    """The ``Quant`` of ``precision``, refused when ``device`` cannot compute it."""
    quant = Quant.from_name(precision)
    check_math_units(quant, device)
    return quant


def warn_scale_out(device: DeviceSpec, group: int, priced_over: str) -> None:
    """Warn on stderr when ``group`` devices share collectives beyond the NVLink domain."""
    note = scale_out_note(device, group)
    if note:
        click.echo(f"hwsim: warning: {note}; {priced_over}", err=True)


def note_missing_price(device: str, price_basis: str) -> None:
    """On stderr, why ``device`` has no $ figures on ``price_basis`` (no price of that kind)."""
    from hwmodels.device_spec import load_device
    from roofline.economics import Economics, NoPriceError, pricing_basis

    try:
        pricing_basis(load_device(device), Economics(basis=price_basis))
    except NoPriceError as exc:
        click.echo(f"hwsim: note: no $ figures: {exc}", err=True)
