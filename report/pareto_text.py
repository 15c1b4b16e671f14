"""The words under a cross-architecture Pareto chart, generated from the designs: which
design wins in which range of TPOT limits, and why an architecture is not on the front.

Every frame here has one row per design with ``device``, ``arch`` (a readable architecture
name), ``label`` (the design's name), ``tpot_s`` (s per output token) and ``tokens_per_usd``;
a front is sorted by ``tpot_s``, so along it tokens per $ rise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_NAMED = 8
"""Most devices an architecture's line names; more are counted."""
TPOT_LIMITS_S = tuple(m * 10.0**e for e in range(-4, 2) for m in (1.0, 2.0, 5.0))
"""TPOT limits (s) at which the winner is read: a 1-2-5 series from 0.1 ms to 50 s."""


def tpot_text(tpot_s: float) -> str:
    """A TPOT in ms below one second, else in s, to three significant digits."""
    return f"{tpot_s * 1e3:.3g} ms" if tpot_s < 1 else f"{tpot_s:.3g} s"


def usd_text(tokens_per_usd: float) -> str:
    """Tokens per $ rounded to three significant digits, with thousands separators."""
    return f"{float(f'{tokens_per_usd:.3g}'):,.0f}"


@dataclass(frozen=True)
class Region:
    """A range of TPOT limits over which one device's designs give the most tokens per $."""

    device: str
    arch: str
    low_s: float
    high_s: float | None
    best: pd.Series
    """The winning design at the region's highest limit (at the slowest front point if open)."""


def winner_regions(front: pd.DataFrame, limits: tuple[float, ...] = TPOT_LIMITS_S) -> list[Region]:
    """For each TPOT limit, the front's design with the most tokens per $ within it; consecutive
    limits won by the same device merged into one region. The last region is open above."""
    reach = [lim for lim in limits if lim >= front["tpot_s"].iloc[0]]
    winners = [front.loc[front["tpot_s"] <= lim].iloc[-1] for lim in reach]
    regions: list[Region] = []
    for lim, best in zip(reach, winners, strict=True):
        if regions and regions[-1].device == best["device"]:
            regions[-1] = Region(best["device"], best["arch"], regions[-1].low_s, lim, best)
        else:
            regions.append(Region(best["device"], best["arch"], lim, lim, best))
    top = front.iloc[-1]
    if regions and regions[-1].device == top["device"]:
        regions[-1] = Region(top["device"], top["arch"], regions[-1].low_s, None, top)
    else:
        regions.append(Region(top["device"], top["arch"], float(top["tpot_s"]), None, top))
    return regions


def regions_paragraph(front: pd.DataFrame, priced: pd.DataFrame) -> str:
    """Who alone meets the tightest limits, then who gives the most tokens per $ at each limit."""
    fastest = priced.groupby("arch", observed=True)["tpot_s"].min().sort_values()
    quickest = front.iloc[0]
    first = (
        f"Below {tpot_text(fastest.iloc[1])} TPOT only {fastest.index[0]} designs meet the limit (the next "
        f"architecture, {fastest.index[1]}, starts there)"
        if len(fastest) > 1
        else f"Only {fastest.index[0]} designs are priced"
    )
    sentences = [f"{first}; the fastest is {quickest['label']} at {tpot_text(quickest['tpot_s'])}."]
    parts = []
    for r in winner_regions(front):
        at = f"{r.best['label']}, {usd_text(r.best['tokens_per_usd'])} tokens per $ at {tpot_text(r.best['tpot_s'])}"
        if r.high_s is None:
            span = f"with a limit of {tpot_text(r.low_s)} or looser"
        elif r.low_s == r.high_s:
            span = f"at a limit of {tpot_text(r.low_s)}"
        else:
            span = f"with limits from {tpot_text(r.low_s)} to {tpot_text(r.high_s)}"
        parts.append(f"{span}, {r.device} ({r.arch}) gives the most tokens per $ ({at})")
    sentences.append(
        "Reading the front at TPOT limits of 1, 2 and 5 times a power of ten: " + "; ".join(parts) + "."
    )
    return " ".join(sentences)


def arch_lines(
    rows: pd.DataFrame, front: pd.DataFrame, not_run: dict[str, str], arch_of: dict[str, str], basis: str
) -> list[str]:
    """One markdown bullet per architecture: its place on the front, or why it is not there.

    ``rows``: every searched design (``error`` empty when it was priced, ``fits``,
    ``memory_bytes`` and ``shortfall_bytes`` per device); ``not_run``: devices the search cannot run, with
    the reason; ``arch_of``: each device's readable architecture.
    """
    lines = []
    for arch in dict.fromkeys(arch_of.values()):
        devices = sorted(d for d, a in arch_of.items() if a == arch)
        part = rows.loc[rows["arch"] == arch]
        runs = part.loc[(part["error"] == "") & part["fits"].astype(bool)]
        priced = runs.loc[np.isfinite(runs["tokens_per_usd"])]
        on_front = front.loc[front["arch"] == arch]
        head = f"- **{arch}** ({', '.join(devices) if len(devices) <= MAX_NAMED else f'{len(devices)} devices'}): "
        if not len(part):
            reasons = sorted({not_run[d] for d in devices})
            lines.append(head + f"not run: {'; '.join(reasons)}.")
        elif not len(runs):
            lines.append(head + _why_none(part))
        elif not len(priced):
            best = runs.nsmallest(1, "tpot_s").iloc[0]
            lines.append(
                head
                + f"runs (fastest: {best['label']}, {tpot_text(best['tpot_s'])} TPOT) but has no price on "
                f"the {basis} basis, so it is left out of the front."
            )
        else:
            head += (
                f"{runs['device'].nunique()} of {len(devices)} devices hold the model, "
                f"{priced['device'].nunique()} of them with a {basis} price; "
            )
            if len(on_front):
                lines.append(
                    head
                    + f"{len(on_front)} designs on the front, from {tpot_text(on_front['tpot_s'].min())} "
                    f"to {tpot_text(on_front['tpot_s'].max())} TPOT ({', '.join(sorted(set(on_front['device'])))})."
                )
            else:
                best = priced.nlargest(1, "tokens_per_usd").iloc[0]
                lines.append(
                    head + f"none is on the front (most tokens per $: {best['label']}, "
                    f"{usd_text(best['tokens_per_usd'])} at {tpot_text(best['tpot_s'])}, beaten there by a "
                    "design of the front)."
                )
    return lines


def _why_none(part: pd.DataFrame) -> str:
    """Why no design of an architecture runs: none fits (the closest one's need), or every one fails."""
    priced = part.loc[part["error"] == ""]
    if len(priced):
        closest = priced.loc[priced["shortfall_bytes"].idxmin()]
        need = closest["memory_bytes"]
        return (
            f"no design fits in memory; the closest, {closest['label']}, needs {need / 1e9:.1f} GB per "
            f"device against {(need - closest['shortfall_bytes']) / 1e9:.0f} GB."
        )
    return f"cannot run it: {part['error'].value_counts().index[0]}."
