"""``styletransfer stylize-dataset``: a whole folder tree stylised, resumable, over many processes."""

from __future__ import annotations

import click

from ..dataset import DatasetConfig, stylize_dataset
from ..dataset.plan import MANIFEST_FORMATS, STYLE_SIZES
from ..dataset.styles import NO_CACHE, default_cache_dir
from ..imageio import DEFAULT_MAX_PIXELS, OUTPUT_FORMATS
from ..methods import METHODS, feedforward_methods
from ..precision import DEFAULT_PRECISION, precision_names
from . import options as O

PARTIAL_EXIT = 3  # finished, but some inputs could not be read (listed in the errors file)
DEFAULTS = DatasetConfig()
DECODER_USERS = tuple(name for name, method in METHODS.items() if method.needs_decoder)  # adain, wct


@click.command("stylize-dataset")
@click.argument("content_root", type=click.Path(file_okay=False))
@click.argument("style_root", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out_root", required=True, type=click.Path(file_okay=False),
              help="Output folder: the same relative paths as CONTENT_ROOT, NAME[_K].EXT.")
@click.option("--method", type=click.Choice(feedforward_methods()), default=DEFAULTS.method, show_default=True,
              help="Feed-forward method (adain and wct need --decoder).")
@click.option("--num-styles", type=click.IntRange(min=1), default=DEFAULTS.num_styles, show_default=True,
              help="Outputs per content image, each with another style.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=DEFAULTS.alpha, show_default=True,
              help="Degree of stylisation.")
@click.option("--content-size", type=click.IntRange(min=0), default=DEFAULTS.content_size, show_default=True,
              help="Content shorter side; 0 keeps each image's size.")
@click.option("--style-size", type=click.IntRange(min=0), default=None,
              help="Style shorter side; 0 keeps it [" + ", ".join(f"{m} {s}" for m, s in STYLE_SIZES.items()) + "].")
@click.option("--crop/--no-crop", default=DEFAULTS.crop, show_default=True,
              help="Centre crop contents and styles to squares after resizing.")
@click.option("--ext", type=click.Choice(sorted({s[1:] for s in OUTPUT_FORMATS})), default=None,
              help="Output format [each content's own].")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True,
              help="Seed of the style drawn for each (image, k), with the image's relative path.")
@O.option("--decoder", type=click.Path(dir_okay=False), default=None, methods=DECODER_USERS,
          help="Decoder: ours (.safetensors) or pytorch-AdaIN's decoder.pth.")
@O.encoder(DECODER_USERS)
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
def stylize_dataset_command(content_root, style_root, out_root, method, num_styles, alpha, content_size, style_size,
                            crop, ext, seed, decoder, weights, pooling, device, precision, batch_size, workers,
                            manifest_format, style_cache, max_pixels, progress) -> None:
    """Stylise every image below CONTENT_ROOT with styles drawn from STYLE_ROOT (Stylized-ImageNet's recipe).

    Resumable: rerun the same command after a stop and it continues; a finished run is a quick
    no-op. Unreadable inputs are logged in OUT/errors.* and skipped (exit code 3). Under
    torchrun (`torchrun --nproc-per-node N -m styletransfer stylize-dataset ...`) the processes
    share the work. See docs/DATASETS.md.
    """
    ctx = click.get_current_context()
    O.reject_other_method_options(ctx, method)
    config = DatasetConfig(method=method, num_styles=num_styles, alpha=alpha, content_size=content_size,
                           style_size=style_size, crop=crop, ext=ext, seed=seed, precision=precision,
                           batch_size=batch_size, workers=workers, manifest_format=manifest_format)
    try:
        run = stylize_dataset(content_root, style_root, out_root, config, decoder=decoder, weights=weights,
                              pooling=pooling, device=device, style_cache=style_cache, max_pixels=max_pixels,
                              progress=progress)
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
