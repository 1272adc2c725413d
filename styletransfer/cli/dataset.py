"""``styletransfer stylize-dataset``: a whole folder tree stylised, resumable, over many processes."""

from __future__ import annotations

import click

from ..dataset import DatasetConfig, stylize_dataset
from ..dataset.plan import MANIFEST_FORMATS
from ..dataset.styles import NO_CACHE, default_cache_dir
from ..imageio import DEFAULT_MAX_PIXELS, OUTPUT_FORMATS
from ..methods import METHODS
from ..precision import DEFAULT_PRECISION, precision_names
from . import options
from .options import style_files

PARTIAL_EXIT = 3  # finished, but some inputs could not be read (listed in the errors file)
DEFAULTS = DatasetConfig()
SETTINGS = ("method", "num_styles", "alpha", "content_size", "style_size", "crop", "ext", "seed", "precision",
            "batch_size", "workers", "manifest_format")  # the options that are DatasetConfig fields


def encoder_users(method) -> bool:
    return style_files(method) and method.needs_encoder


def decoder_users(method) -> bool:
    return style_files(method) and method.needs_decoder


def _style_sizes() -> str:
    return ", ".join(f"{name} {method.style_size}" for name, method in METHODS.items() if style_files(method))


@click.command("stylize-dataset")
@click.argument("content_root", type=click.Path(file_okay=False))
@click.argument("style_root", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out_root", required=True, type=click.Path(file_okay=False),
              help="Output folder: the same relative paths as CONTENT_ROOT, NAME[_K].EXT.")
@click.option("--method", type=options.method_choice(style_files), default=DEFAULTS.method, show_default=True,
              help="Feed-forward method (adain and wct need --decoder).")
@click.option("--num-styles", type=click.IntRange(min=1), default=DEFAULTS.num_styles, show_default=True,
              help="Outputs per content image, each with another style.")
@click.option("--alpha", type=float, default=DEFAULTS.alpha, show_default=True, help="Degree of stylisation, 0..1.")
@click.option("--content-size", type=click.IntRange(min=0), default=DEFAULTS.content_size, show_default=True,
              help="Content shorter side; 0 keeps each image's size.")
@click.option("--style-size", type=click.IntRange(min=0), default=None,
              help=f"Style shorter side; 0 keeps it [{_style_sizes()}].")
@click.option("--crop/--no-crop", default=DEFAULTS.crop, show_default=True,
              help="Centre crop contents and styles to squares after resizing.")
@click.option("--ext", type=click.Choice(sorted({s[1:] for s in OUTPUT_FORMATS})), default=None,
              help="Output format [each content's own].")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True,
              help="Seed of the style drawn for each (image, k), with the image's relative path.")
@options.option("--decoder", type=click.Path(dir_okay=False), default=None, methods=decoder_users,
                help="Decoder: ours (.safetensors) or pytorch-AdaIN's decoder.pth.")
@options.encoder(encoder_users)
@click.option("--precision", type=click.Choice(precision_names()), default=DEFAULT_PRECISION, show_default=True,
              help="Network precision (bf16 is fast only where the hardware has it).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULTS.batch_size, show_default=True,
              help="Images per pass through the networks.")
@click.option("--workers", type=click.IntRange(min=0), default=DEFAULTS.workers, show_default=True,
              help="Data-loader processes decoding and resizing (0: in the main process).")
@click.option("--manifest-format", type=click.Choice(MANIFEST_FORMATS), default=DEFAULTS.manifest_format,
              show_default=True, help="Format of OUT/manifest.* and OUT/errors.*.")
@click.option("--style-cache", default=None,
              help=f"Folder of the computed style representations [{default_cache_dir()}]; '{NO_CACHE}': memory only.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Inputs larger than this are logged as errors and skipped.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def stylize_dataset_command(content_root, style_root, out_root, **opts) -> None:
    """Stylise every image below CONTENT_ROOT with styles drawn from STYLE_ROOT (Stylized-ImageNet's recipe).

    Resumable: rerun the same command after a stop and it continues; a finished run is a quick
    no-op. Unreadable inputs are logged in OUT/errors.* and skipped (exit code 3). Under
    torchrun (`torchrun --nproc-per-node N -m styletransfer stylize-dataset ...`) the processes
    share the work. See docs/DATASETS.md.
    """
    ctx = click.get_current_context()
    options.reject_other_method_options(ctx, opts["method"])
    config = DatasetConfig(**{name: opts[name] for name in SETTINGS})
    try:
        run = stylize_dataset(content_root, style_root, out_root, config, decoder=opts["decoder"],
                              weights=opts["weights"], pooling=opts["pooling"], device=opts["device"],
                              style_cache=opts["style_cache"], max_pixels=opts["max_pixels"],
                              progress=opts["progress"])
    except KeyboardInterrupt:
        click.echo("stylize-dataset: interrupted; rerun the same command to continue", err=True)
        ctx.exit(130)
    if run.manifest is None:  # not rank 0: rank 0 reports for the run
        return
    click.echo(f"stylize-dataset: {run.written} written, {run.existing} already there, {run.failed} not made "
               f"in {run.seconds:.1f} s ({run.images_per_second:.2f} images/s over {run.world_size} "
               f"process{'es' * (run.world_size > 1)}); manifest: {run.manifest}")
    if run.errors is not None:
        click.echo(f"stylize-dataset: {run.bad_inputs} input(s) could not be read, listed in {run.errors}", err=True)
        ctx.exit(PARTIAL_EXIT)
