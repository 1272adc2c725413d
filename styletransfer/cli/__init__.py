"""The ``styletransfer`` command line: a thin layer of flag parsing over the Python API."""

from __future__ import annotations

import warnings

import click

from .. import DISTRIBUTION, __version__
from ..errors import StyleTransferError


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


class Group(click.Group):
    """Turns the library's user-facing errors into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StyleTransferError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, package_name=DISTRIBUTION)
def main() -> None:
    """Neural style transfer: Gram, MMD and BN-statistic losses, and AdaIN."""
    warnings.showwarning = _show_warning


def _register() -> None:
    from .ablate import ablate_group
    from .compare import compare_command
    from .dataset import stylize_dataset_command
    from .info import losses_command
    from .serve import serve_command
    from .stylize import stylize_command
    from .train import train_command
    from .weights import weights_group

    main.add_command(stylize_command)
    main.add_command(stylize_dataset_command)
    main.add_command(losses_command)
    main.add_command(train_command)
    main.add_command(compare_command)
    main.add_command(weights_group)
    main.add_command(ablate_group)
    main.add_command(serve_command)


_register()
