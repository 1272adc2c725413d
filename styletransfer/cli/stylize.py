"""``styletransfer stylize``: optimisation-based (default) or feed-forward AdaIN stylisation."""

from __future__ import annotations

import click

from .. import color
from .. import feedforward as FF
from .. import optimize as S
from ..api import adain_files, magenta_files, stylize_files
from ..magenta.stylizer import CONTENT_SIZE, STYLE_SIZE, MagentaConfig
from ..errors import UsageError
from ..imageio import OUTPUT_FORMATS
from ..losses import STYLE_LOSSES
from ..adain import ADAIN_LAYER, DECODER_PLAN
from ..precision import DEFAULT_PRECISION, PRECISIONS
from ..tiling import exact_halo
from . import options as O
from .params import FLOATS, SIZES, STEPS, parse_loss_list, parse_loss_params

EXISTING = click.Path(exists=False, dir_okay=True)
METHODS = ("optimize", "adain", "magenta")
# Flags that only some methods read; giving one to another method is a usage error.
OPTIMIZE_ONLY = ("losses", "loss_param", "optimizer", "lr", "steps", "steps_per_scale", "init", "size", "scales",
                 "style_scale",
                 "style_layers", "layer_weights", "content_layers", "style_weight", "content_weight", "tv_weight",
                 "normalize", "seed")
FEEDFORWARD = ("alpha", "content_size", "style_size", "crop", "content_dir", "style_dir", "ext")
METHOD_FLAGS = {
    **{name: ("optimize",) for name in OPTIMIZE_ONLY},
    **{name: ("adain", "magenta") for name in FEEDFORWARD},
    **{name: ("adain",) for name in ("decoder", "channels_last", "tile_halo")},
    "tile_size": ("adain", "magenta"),
    **{name: ("optimize", "adain") for name in ("weights", "pooling")},  # magenta brings its own networks
}
EXTENSIONS = sorted({suffix[1:] for suffix in OUTPUT_FORMATS})


@click.command("stylize")
@click.argument("images", nargs=-1, type=EXISTING, metavar="[CONTENT] [STYLE]...")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image (.png, .jpg, ...); an output folder with --content-dir/--style-dir.")
@click.option("--method", type=click.Choice(METHODS), default="optimize", show_default=True,
              help="optimize: iterative (Gatys et al.); adain: one pass through an AdaIN decoder; magenta: one "
                   "pass through Magenta's style predictor and transformer (Ghiasi et al.).")
@click.option("--style", "extra_styles", multiple=True, type=EXISTING, help="Another style image (repeatable).")
@click.option("--style-blend", "--style-interpolation-weights", "style_blend", type=FLOATS,
              help="Blend (adain: interpolation) weights of the styles, e.g. 0.7,0.3.")
@click.option("--preserve-color", type=click.Choice(color.choices()), default=color.NONE, show_default=True,
              help="coral/histogram: match the style's colours to the content's first; "
                   "luminance: keep the content's colours, take the result's luminance.")
@click.option("--mask", type=EXISTING, default=None,
              help="Mask image: white gets the first style, black the second (needs exactly two styles).")
@O.ENCODER
# --method adain
@click.option("--decoder", type=EXISTING, default=None,
              help="[adain] Decoder: ours (.safetensors) or pytorch-AdaIN's decoder.pth. Required for adain.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=None, help="[adain, magenta] Degree of stylisation, 0..1 [1].")
@click.option("--content-size", type=click.IntRange(min=0), default=None,
              help=f"[adain, magenta] Content shorter side; 0 keeps the original size [adain {FF.DEFAULT_SIZE}, "
                   f"magenta {CONTENT_SIZE}].")
@click.option("--style-size", type=click.IntRange(min=0), default=None,
              help=f"[adain, magenta] Style shorter side; 0 keeps the original size [adain {FF.DEFAULT_SIZE}, "
                   f"magenta {STYLE_SIZE}].")
@click.option("--crop", is_flag=True, default=False, help="[adain, magenta] Centre crop to a square after resizing.")
@click.option("--content-dir", type=EXISTING, default=None, help="[adain, magenta] Stylise every image in this folder.")
@click.option("--style-dir", type=EXISTING, default=None, help="[adain, magenta] Use every image in this folder, one at a time.")
@click.option("--ext", type=click.Choice(EXTENSIONS), default="png", show_default=True,
              help="[adain, magenta] Output format in folder mode.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="[adain] NHWC memory format for the networks (same results, faster on CPUs).")
@click.option("--tile-size", type=click.IntRange(min=0), default=None,
              help=f"[adain, magenta] Stylise in tiles of N pixels a side (a multiple of 8; magenta: 4), with "
                   f"whole-image statistics; 0: never. Default: "
                   f"{FF.DEFAULT_TILE_SIZE} above {FF.TILE_THRESHOLD_PIXELS:,} pixels.")
@click.option("--tile-halo", type=click.IntRange(min=0), default=None,
              help="[adain] Pixels of overlap around each tile (a multiple of 8). Default: the networks' reach "
                   f"({exact_halo(ADAIN_LAYER, DECODER_PLAN)}), which makes tiling exact.")
# --method optimize
@click.option("--loss", "losses", multiple=True, default=("gram",), show_default=True,
              help=f"Style loss(es) with weights, e.g. gram:0.5,bn-stats:0.5. One of: {', '.join(STYLE_LOSSES.names())}.")
@O.LOSS_PARAM
@O.OPTIMIZER
@click.option("--steps-per-scale", type=STEPS, default=None,
              help="Steps at each of --scales, e.g. 300,100 (overrides --steps).")
@click.option("--init", default="content", show_default=True, help="content, noise, or an image path.")
@O.SIZE
@click.option("--scales", type=SIZES, default=None, help="Coarse-to-fine long edges, e.g. 256,512 (overrides --size).")
@click.option("--style-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Style image long edge relative to the output's.")
@O.LAYERS
@click.option("--layer-weights", type=FLOATS, default=None, help="Per style layer weights (default uniform).")
@O.WEIGHTS_OF_TERMS
@click.option("--normalize/--no-normalize", default=True, show_default=True,
              help="Divide each style loss by its value on the content image.")
@O.SEED
# both
@click.option("--precision", type=click.Choice(PRECISIONS.names()), default=DEFAULT_PRECISION, show_default=True,
              help="bf16: bfloat16 convolutions (statistics and losses stay float32); faster where the CPU "
                   "(AVX512-BF16, AMX) or GPU computes bfloat16 natively.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@O.INPUT_AND_PROGRESS
@click.pass_context
def stylize_command(ctx: click.Context, images, **opts) -> None:
    """Stylise CONTENT with STYLE image(s) and write -o OUTPUT.

    With --content-dir and/or --style-dir every combination is written into the folder -o as
    {content}_stylized_{style}.{ext}; with --content-dir all positional images are styles.
    """
    method = opts["method"]
    _reject_other_method_flags(ctx, method)
    if opts["content_dir"] is not None:
        content, styles = None, (*images, *opts["extra_styles"])
    else:
        content, styles = (images[0] if images else None), (*images[1:], *opts["extra_styles"])
    if content is None and opts["content_dir"] is None:
        raise UsageError("give a CONTENT image (or --content-dir) and a STYLE image")
    if method == "adain":
        _run_adain(content, styles, opts)
    elif method == "magenta":
        _run_magenta(content, styles, opts)
    else:
        _run_optimize(content, styles, opts)


def _reject_other_method_flags(ctx: click.Context, method: str) -> None:
    for param in ctx.command.params:
        owners = METHOD_FLAGS.get(param.name)
        if (owners and method not in owners
                and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE):
            raise UsageError(f"{param.opts[0]} applies to --method {' and '.join(owners)} only "
                             f"(this run uses --method {method})")


def _run_optimize(content, styles, opts) -> None:
    if not styles:
        raise UsageError("give a STYLE image (positional or --style)")
    config = S.StylizeConfig(
        losses=parse_loss_list(opts["losses"]),
        loss_options=parse_loss_params(opts["loss_param"]),
        style_layers=opts["style_layers"],
        layer_weights=opts["layer_weights"],
        content_layers=opts["content_layers"],
        style_weight=opts["style_weight"],
        content_weight=opts["content_weight"],
        tv_weight=opts["tv_weight"],
        normalize=opts["normalize"],
        optimizer=opts["optimizer"],
        lr=opts["lr"],
        steps=opts["steps"],
        steps_per_scale=opts["steps_per_scale"],
        init=opts["init"],
        scales=opts["scales"] or (opts["size"],),
        style_scale=opts["style_scale"],
        style_blend=opts["style_blend"],
        seed=opts["seed"],
        precision=opts["precision"],
    )
    result = stylize_files(content, styles, opts["output"], config, weights=opts["weights"], pooling=opts["pooling"],
                           device=opts["device"], report=opts["report"], progress=opts["progress"],
                           max_pixels=opts["max_pixels"], preserve_color=opts["preserve_color"], mask=opts["mask"])
    last = result.history[-1]
    click.echo(f"wrote {opts['output']} ({result.image.shape[-1]}x{result.image.shape[-2]}) in {result.seconds:.1f}s, "
               f"loss {result.history[0]['total']:.4g} → {last['total']:.4g}")


def _run_adain(content, styles, opts) -> None:
    if opts["decoder"] is None:
        raise UsageError("--method adain needs --decoder PATH (a decoder .safetensors or pytorch-AdaIN's decoder.pth)")
    config = FF.AdaINConfig(
        alpha=1.0 if opts["alpha"] is None else opts["alpha"],
        style_weights=opts["style_blend"],
        preserve_color=opts["preserve_color"],
        content_size=FF.DEFAULT_SIZE if opts["content_size"] is None else opts["content_size"],
        style_size=FF.DEFAULT_SIZE if opts["style_size"] is None else opts["style_size"],
        crop=opts["crop"],
        precision=opts["precision"],
        channels_last=opts["channels_last"],
        tile_size=opts["tile_size"],
        tile_halo=opts["tile_halo"],
    )
    run = adain_files(content, styles, opts["output"], config, decoder=opts["decoder"], weights=opts["weights"],
                      pooling=opts["pooling"], mask=opts["mask"], content_dir=opts["content_dir"],
                      style_dir=opts["style_dir"], ext=opts["ext"], device=opts["device"], report=opts["report"],
                      progress=opts["progress"], max_pixels=opts["max_pixels"])
    _report_feedforward(run, opts)


def _run_magenta(content, styles, opts) -> None:
    config = MagentaConfig(
        alpha=1.0 if opts["alpha"] is None else opts["alpha"],
        style_weights=opts["style_blend"],
        preserve_color=opts["preserve_color"],
        content_size=CONTENT_SIZE if opts["content_size"] is None else opts["content_size"],
        style_size=STYLE_SIZE if opts["style_size"] is None else opts["style_size"],
        crop=opts["crop"],
        precision=opts["precision"],
        tile_size=opts["tile_size"],
    )
    run = magenta_files(content, styles, opts["output"], config, mask=opts["mask"], content_dir=opts["content_dir"],
                        style_dir=opts["style_dir"], ext=opts["ext"], device=opts["device"], report=opts["report"],
                        progress=opts["progress"], max_pixels=opts["max_pixels"])
    _report_feedforward(run, opts)


def _report_feedforward(run, opts) -> None:
    total = run.seconds["total"]
    if len(run.outputs) == 1 and opts["content_dir"] is None and opts["style_dir"] is None:
        (out,) = run.outputs
        click.echo(f"wrote {out.output} ({out.size[0]}x{out.size[1]}) in {total:.1f}s")
    else:
        click.echo(f"wrote {len(run.outputs)} images to {opts['output']} in {total:.1f}s "
                   f"({run.style_statistics_computed} style statistics computed)")
