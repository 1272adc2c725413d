"""``styletransfer losses``: the style-loss registry."""

from __future__ import annotations

import click

from ..losses import STYLE_LOSSES


@click.command("losses")
def losses_command() -> None:
    """List the registered style losses with their formulas."""
    width = max(len(name) for name in STYLE_LOSSES.names())
    for name, cls in STYLE_LOSSES.items():
        click.echo(f"{name:<{width}}  {cls.description}")
        click.echo(f"{'':<{width}}  formula: {cls.formula}  [{cls.reference}]")
