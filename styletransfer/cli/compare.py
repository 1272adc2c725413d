"""``styletransfer compare``: one pair stylised under every formulation, with a report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from .. import optimize as S
from ..compare import GRID_NAME, REPORT_JSON, REPORT_MD, CompareConfig, compare_files, select_methods
from ..compare.pairs import SUMMARY_JSON, SUMMARY_MD, compare_folders
from ..errors import UsageError
from ..adain.decoder import default_decoder
from . import options as O
from .params import NAMES, parse_loss_params


def command_line() -> str:
    """The command as typed, quoted so that it can be pasted back into a shell."""
    program = Path(sys.argv[0]).name
    if program == "__main__.py":
        program = "python -m styletransfer"
    return " ".join([program, *(shlex.quote(a) for a in sys.argv[1:])])


@click.command("compare")
@click.argument("content", type=click.Path(), required=False)
@click.argument("style", type=click.Path(), required=False)
@click.option("--content-dir", type=click.Path(), default=None,
              help="Compare every content image of this folder with every style of --style-dir; a summary with "
                   "means and 95% intervals over the pairs.")
@click.option("--style-dir", type=click.Path(), default=None, help="The styles of a folder comparison.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(),
              help=f"Output folder: METHOD.png for each method, {GRID_NAME}, {REPORT_JSON}, {REPORT_MD}.")
@click.option("--only", type=NAMES, default=None, help="Run only these methods, e.g. gram,bn-stats.")
@click.option("--skip", type=NAMES, multiple=True, help="Leave out these methods, e.g. mmd-rbf (repeatable).")
@click.option("--decoder", type=click.Path(), default=None,
              help="AdaIN decoder (.safetensors or pytorch-AdaIN decoder.pth): adds the methods adain and wct.")
@O.encoder()
@O.optimizer()
@O.size()
@O.layers()
@O.weights_of_terms()
@O.loss_param()
@O.seed()
@click.option("--calibrate", type=click.IntRange(min=0), default=0, show_default=True,
              help="Up to N runs per optimisation method to find the style weight that gives the first method's "
                   "content loss, so rows differ by formulation, not strength (0: one shared weight).")
@click.option("--judge/--no-judge", default=True, show_default=True,
              help="Score every output with Magenta's style-embedding distance, a judge no method optimises.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier comparison in the folder.")
@O.INPUT_AND_PROGRESS
def compare_command(content, style, content_dir, style_dir, out_dir, only, skip, decoder, weights, pooling, device, optimizer, lr, steps,
                    size, style_layers, content_layers, style_weight, content_weight, tv_weight, loss_param, seed,
                    calibrate, judge, overwrite, max_pixels, progress) -> None:
    """Stylise CONTENT with STYLE under every style loss (and the feed-forward methods) and compare them
    in -o DIR; with --content-dir and --style-dir, every pair of the two folders."""
    folders = content_dir is not None or style_dir is not None
    if folders and (content_dir is None or style_dir is None or content is not None):
        raise UsageError("a folder comparison takes --content-dir and --style-dir, and no CONTENT or STYLE")
    if not folders and (content is None or style is None):
        raise UsageError("give CONTENT and STYLE images (or --content-dir and --style-dir)")
    if decoder is None:
        decoder = default_decoder(weights)  # the shipped decoder of the default encoder adds adain and wct
    methods = select_methods(only=only, skip=tuple(name for group in skip for name in group),
                             decoder=decoder is not None)
    stylize_config = S.StylizeConfig(
        loss_options=parse_loss_params(loss_param),
        style_layers=style_layers,
        content_layers=content_layers,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        scales=(size,),
        seed=seed,
    )
    config = CompareConfig(stylize=stylize_config, methods=methods, calibrate=calibrate, judge=judge)
    common = dict(weights=weights, pooling=pooling, decoder=decoder, device=device, overwrite=overwrite,
                  progress=progress, command=command_line(), max_pixels=max_pixels)
    if folders:
        summary = compare_folders(content_dir, style_dir, out_dir, config, **common)
        click.echo(f"compared {len(methods)} methods on {len(summary['pairs'])} pairs: wrote "
                   f"{Path(out_dir) / SUMMARY_MD}, {SUMMARY_JSON} and one folder per pair")
        return
    report = compare_files(content, style, out_dir, config, **common)
    total = sum(run["seconds"] for run in report["runs"].values())
    click.echo(f"compared {len(methods)} methods in {total:.1f}s: wrote {Path(out_dir) / REPORT_MD}, "
               f"{REPORT_JSON}, {GRID_NAME} and one image per method")
    for method, value in report["diagonal"].items():
        click.echo(f"  {method:<12} own loss {value:.3g} of the content image's")
