"""``styletransfer compare``: one pair stylised under every formulation, with a report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..adain.decoder import default_decoder
from ..compare import GRID_NAME, REPORT_JSON, REPORT_MD, CompareConfig, compare_files, select_methods
from ..compare.pairs import SUMMARY_JSON, SUMMARY_MD, compare_folders
from ..errors import UsageError
from . import options
from .params import NAMES


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
@options.encoder()
@options.optimizer()
@options.size()
@options.layers()
@options.weights_of_terms()
@options.loss_param()
@options.seed()
@click.option("--calibrate", type=click.IntRange(min=0), default=0, show_default=True,
              help="Up to N runs per optimisation method to find the style weight that gives the first method's "
                   "content loss, so rows differ by formulation, not strength (0: one shared weight).")
@click.option("--judge/--no-judge", default=True, show_default=True,
              help="Score every output with Magenta's style-embedding distance, a judge no method optimises.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier comparison in the folder.")
@options.INPUT_AND_PROGRESS
def compare_command(content, style, out_dir, **opts) -> None:
    """Stylise CONTENT with STYLE under every style loss (and the feed-forward methods) and compare them
    in -o DIR; with --content-dir and --style-dir, every pair of the two folders."""
    content_dir, style_dir = opts["content_dir"], opts["style_dir"]
    folders = content_dir is not None or style_dir is not None
    if folders and (content_dir is None or style_dir is None or content is not None):
        raise UsageError("a folder comparison takes --content-dir and --style-dir, and no CONTENT or STYLE")
    if not folders and (content is None or style is None):
        raise UsageError("give CONTENT and STYLE images (or --content-dir and --style-dir)")
    decoder = opts["decoder"] if opts["decoder"] is not None else default_decoder(opts["weights"])
    config = _compare_config(opts, decoder is not None)  # the shipped decoder of the default encoder adds adain, wct
    common = dict(weights=opts["weights"], pooling=opts["pooling"], decoder=decoder, device=opts["device"],
                  overwrite=opts["overwrite"], progress=opts["progress"], command=command_line(),
                  max_pixels=opts["max_pixels"])
    if folders:
        summary = compare_folders(content_dir, style_dir, out_dir, config, **common)
        click.echo(f"compared {len(config.methods)} methods on {len(summary['pairs'])} pairs: wrote "
                   f"{Path(out_dir) / SUMMARY_MD}, {SUMMARY_JSON} and one folder per pair")
        return
    report = compare_files(content, style, out_dir, config, **common)
    total = sum(run["seconds"] for run in report["runs"].values())
    click.echo(f"compared {len(config.methods)} methods in {total:.1f}s: wrote {Path(out_dir) / REPORT_MD}, "
               f"{REPORT_JSON}, {GRID_NAME} and one image per method")
    for method, value in report["diagonal"].items():
        click.echo(f"  {method:<12} own loss {value:.3g} of the content image's")


def _compare_config(opts, decoder: bool) -> CompareConfig:
    """The methods ``--only``/``--skip`` select (those needing a decoder only with one) and their settings."""
    methods = select_methods(only=opts["only"], skip=tuple(name for group in opts["skip"] for name in group),
                             decoder=decoder)
    return CompareConfig(stylize=options.stylize_config(opts), methods=methods, calibrate=opts["calibrate"],
                         judge=opts["judge"])
