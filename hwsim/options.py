"""Click options shared by several commands."""

from __future__ import annotations

import click


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
