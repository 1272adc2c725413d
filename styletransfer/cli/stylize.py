"""``styletransfer stylize``: optimisation-based (default) or feed-forward (AdaIN, WCT, Magenta) stylisation."""

from __future__ import annotations

import dataclasses

import click

from .. import color
from ..adain import stylizer as FF
from .. import optimize as S
from ..api import adain_files, magenta_files, stylize_files, wct_files
from ..magenta.stylizer import CONTENT_SIZE, STYLE_SIZE, MagentaConfig
from ..errors import UsageError
from ..imageio import OUTPUT_FORMATS
from ..losses import STYLE_LOSSES
from ..methods import METHODS, feedforward_methods
from ..adain import ADAIN_LAYER, DECODER_PLAN
from ..precision import DEFAULT_PRECISION, precision_names
from ..tiling import DEFAULT_TILE_SIZE, TILE_THRESHOLD_PIXELS, exact_halo
from ..video.clip import VideoConfig
from ..video.io import is_clip
from ..video.temporal import DEFAULT_BLEND, DEFAULT_MOMENTUM
from ..wct.stylizer import WCTConfig
from ..adain.decoder import default_decoder
from ..weights import DEFAULT_ENCODER
from . import options as O
from .params import FLOATS, SIZES, STEPS, parse_loss_list, parse_loss_params

EXISTING = click.Path(exists=False, dir_okay=True)
EXTENSIONS = sorted({suffix[1:] for suffix in OUTPUT_FORMATS})
# Which methods read an option is declared with the option (O.option(..., methods=...)).
OPTIMIZE, ADAIN, MAGENTA = ("optimize",), ("adain",), ("magenta",)
FEEDFORWARD = tuple(feedforward_methods())
DECODER_USERS = tuple(name for name, method in METHODS.items() if method.needs_decoder)  # adain, wct
TILED = ("adain", "magenta")  # wct transforms the whole relu4_1 map at once
ENCODER_USERS = tuple(name for name in METHODS.names() if name != "magenta")  # magenta brings its own networks


@click.command("stylize")
@click.argument("images", nargs=-1, type=EXISTING, metavar="[CONTENT] [STYLE]...")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image (.png, .jpg, ...) or clip (.mp4, .mkv, ...); an output folder with "
                   "--content-dir/--style-dir.")
@click.option("--method", type=click.Choice(METHODS.names()), default="optimize", show_default=True,
              help="; ".join(f"{name}: {method.summary}" for name, method in METHODS.items()) + ".")
@click.option("--style", "extra_styles", multiple=True, type=EXISTING, help="Another style image (repeatable).")
@click.option("--style-blend", "--style-interpolation-weights", "style_blend", type=FLOATS,
              help="Blend (adain, wct: interpolation) weights of the styles, e.g. 0.7,0.3.")
@click.option("--preserve-color", type=click.Choice(color.choices()), default=color.NONE, show_default=True,
              help="coral/histogram: match the style's colours to the content's first; "
                   "luminance: keep the content's colours, take the result's luminance.")
@click.option("--mask", type=EXISTING, default=None,
              help="Mask image: white gets the first style, black the second (needs exactly two styles).")
@O.encoder(ENCODER_USERS)
# feed-forward methods
@O.option("--decoder", type=EXISTING, default=None, methods=DECODER_USERS,
          help="Decoder: ours (.safetensors) or pytorch-AdaIN's decoder.pth. Required for adain and wct.")
@O.option("--alpha", type=click.FloatRange(0, 1), default=None, methods=FEEDFORWARD,
          help="Degree of stylisation, 0..1 [1].")
@O.option("--content-size", type=click.IntRange(min=0), default=None, methods=FEEDFORWARD,
          help=f"Content shorter side; 0 keeps the original size [adain, wct {FF.DEFAULT_SIZE}; magenta {CONTENT_SIZE}].")
@O.option("--style-size", type=click.IntRange(min=0), default=None, methods=FEEDFORWARD,
          help=f"Style shorter side; 0 keeps the original size [adain, wct {FF.DEFAULT_SIZE}; magenta {STYLE_SIZE}].")
@O.option("--crop", is_flag=True, default=False, methods=FEEDFORWARD, help="Centre crop to a square after resizing.")
@O.option("--content-dir", type=EXISTING, default=None, methods=FEEDFORWARD, help="Stylise every image in this folder.")
@O.option("--style-dir", type=EXISTING, default=None, methods=FEEDFORWARD,
          help="Use every image in this folder, one at a time.")
@O.option("--ext", type=click.Choice(EXTENSIONS), default="png", show_default=True, methods=FEEDFORWARD,
          help="Output image format in folder mode (a clip keeps its container).")
# clips (CONTENT .mp4, .mov, .mkv, .webm, .avi, ...; docs/VIDEO.md)
@O.option("--temporal", is_flag=True, default=False, methods=FEEDFORWARD,
          help="Clips: reduce flicker (running content statistics in the norms, a motion-compensated blend).")
@O.option("--temporal-momentum", type=click.FloatRange(0, 1, max_open=True), default=None, methods=FEEDFORWARD,
          help=f"With --temporal: weight of the past frames in the running statistics; 0: off [{DEFAULT_MOMENTUM}].")
@O.option("--temporal-blend", type=click.FloatRange(0, 1, max_open=True), default=None, methods=FEEDFORWARD,
          help=f"With --temporal: weight of the previous output, moved by the estimated motion; 0: off "
               f"[{DEFAULT_BLEND}].")
@O.option("--crf", type=click.IntRange(min=0), default=None, methods=FEEDFORWARD,
          help="Clips: encoder quality (H.264 0-51, VP9 0-63; lower is better, 0 lossless) [18; VP9 24].")
@O.option("--channels-last/--no-channels-last", default=True, show_default=True, methods=DECODER_USERS,
          help="NHWC memory format for the networks (same results, faster on CPUs).")
@O.option("--tile-size", type=click.IntRange(min=0), default=None, methods=TILED,
          help=f"Stylise in tiles of N pixels a side (a multiple of 8; magenta: 4), with whole-image statistics; "
               f"0: never. Default: {DEFAULT_TILE_SIZE} above {TILE_THRESHOLD_PIXELS:,} pixels.")
@O.option("--tile-halo", type=click.IntRange(min=0), default=None, methods=ADAIN,
          help="Pixels of overlap around each tile (a multiple of 8). Default: the networks' reach "
               f"({exact_halo(ADAIN_LAYER, DECODER_PLAN)}), which makes tiling exact.")
# --method optimize
@O.option("--loss", "losses", multiple=True, default=("gram",), show_default=True, methods=OPTIMIZE,
          help=f"Style loss(es) with weights, e.g. gram:0.5,bn-stats:0.5. One of: {', '.join(STYLE_LOSSES.names())}.")
@O.loss_param(OPTIMIZE)
@O.optimizer(OPTIMIZE)
@O.option("--steps-per-scale", type=STEPS, default=None, methods=OPTIMIZE,
          help="Steps at each of --scales, e.g. 300,100 (overrides --steps).")
@O.option("--init", default="content", show_default=True, methods=OPTIMIZE, help="content, noise, or an image path.")
@O.size(OPTIMIZE)
@O.option("--scales", type=SIZES, default=None, methods=OPTIMIZE,
          help="Coarse-to-fine long edges, e.g. 256,512 (overrides --size).")
@O.option("--style-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
          methods=OPTIMIZE, help="Style image long edge relative to the output's.")
@O.layers(OPTIMIZE)
@O.option("--layer-weights", type=FLOATS, default=None, methods=OPTIMIZE, help="Per style layer weights (default uniform).")
@O.weights_of_terms(OPTIMIZE)
@O.option("--normalize/--no-normalize", default=True, show_default=True, methods=OPTIMIZE,
          help="Divide each style loss by its value on the content image.")
@O.seed(OPTIMIZE)
# every method
@click.option("--precision", type=click.Choice(precision_names()), default=None,
              help="bf16: bfloat16 convolutions (statistics and losses stay float32); faster where the CPU "
                   "(AVX512-BF16, AMX) or GPU computes bfloat16 natively; auto: bf16 there, fp32 elsewhere "
                   f"[optimize auto; adain, wct, magenta {DEFAULT_PRECISION}].")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@O.INPUT_AND_PROGRESS
@click.pass_context
def stylize_command(ctx: click.Context, images, **opts) -> None:
    """Stylise CONTENT with STYLE image(s) and write -o OUTPUT.

    With --content-dir and/or --style-dir every combination is written into the folder -o as
    {content}_stylized_{style}.{ext}; with --content-dir all positional images are styles.
    With a feed-forward --method, CONTENT may be a video clip (.mp4, .mov, .mkv, .webm, .avi, ...),
    written -o as a clip frame for frame (pip install -e ".[video]"; docs/VIDEO.md).
    """
    method = opts["method"]
    O.reject_other_method_options(ctx, method)
    if opts["content_dir"] is not None:
        content, styles = None, (*images, *opts["extra_styles"])
    else:
        content, styles = (images[0] if images else None), (*images[1:], *opts["extra_styles"])
    if content is None and opts["content_dir"] is None:
        raise UsageError("give a CONTENT image (or --content-dir) and a STYLE image")
    if METHODS.get(method).feedforward:
        _run_feedforward(method, content, styles, opts)
    elif is_clip(content):
        raise UsageError(f"{content!r} is a video clip: clips go through a feed-forward method, "
                         f"--method {' or '.join(FEEDFORWARD)}")
    else:
        _run_optimize(content, styles, opts)


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
        **({"precision": opts["precision"]} if opts["precision"] else {}),
    )
    result = stylize_files(content, styles, opts["output"], config, weights=opts["weights"], pooling=opts["pooling"],
                           device=opts["device"], report=opts["report"], progress=opts["progress"],
                           max_pixels=opts["max_pixels"], preserve_color=opts["preserve_color"], mask=opts["mask"])
    final = result.final_loss
    click.echo(f"wrote {opts['output']} ({result.image.shape[-1]}x{result.image.shape[-2]}) in {result.seconds:.1f}s, "
               f"loss {result.history[0]['total']:.4g} → {final:.4g}")


# stylize options → fields of the feed-forward configs; an option left unset keeps the config's default
FEEDFORWARD_FIELDS = {"alpha": "alpha", "style_weights": "style_blend", "preserve_color": "preserve_color",
                      "content_size": "content_size", "style_size": "style_size", "crop": "crop",
                      "precision": "precision", "channels_last": "channels_last", "tile_size": "tile_size",
                      "tile_halo": "tile_halo"}


def _feedforward_config(config_class, opts):
    fields = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{field: opts[option] for field, option in FEEDFORWARD_FIELDS.items()
                           if field in fields and opts[option] is not None})


def _video_config(opts) -> VideoConfig:
    """The clip settings; the strengths of --temporal only with it."""
    strengths = {field: opts[option] for field, option in (("momentum", "temporal_momentum"),
                                                            ("blend", "temporal_blend")) if opts[option] is not None}
    if strengths and not opts["temporal"]:
        raise UsageError("--temporal-momentum and --temporal-blend set the strength of --temporal: add --temporal")
    return VideoConfig(temporal=opts["temporal"], crf=opts["crf"], **strengths)


def _run_feedforward(method: str, content, styles, opts) -> None:
    common = dict(mask=opts["mask"], content_dir=opts["content_dir"], style_dir=opts["style_dir"], ext=opts["ext"],
                  device=opts["device"], report=opts["report"], progress=opts["progress"],
                  max_pixels=opts["max_pixels"], video=_video_config(opts))
    if method == "magenta":
        run = magenta_files(content, styles, opts["output"], _feedforward_config(MagentaConfig, opts), **common)
    else:
        decoder = opts["decoder"] if opts["decoder"] is not None else default_decoder(opts["weights"])
        if decoder is None:
            raise UsageError(f"--method {method} needs --decoder PATH (an AdaIN decoder .safetensors or "
                             f"pytorch-AdaIN's decoder.pth): the shipped decoder serves the default encoder only "
                             f"(--weights {DEFAULT_ENCODER})")
        files, config_class = {"adain": (adain_files, FF.AdaINConfig), "wct": (wct_files, WCTConfig)}[method]
        run = files(content, styles, opts["output"], _feedforward_config(config_class, opts), decoder=decoder,
                    weights=opts["weights"], pooling=opts["pooling"], **common)
    _report_feedforward(run, opts)


def _report_feedforward(run, opts) -> None:
    total = run.seconds["total"]
    clips = [out for out in run.outputs if out.frames is not None]
    frames = sum(out.frames for out in clips)
    rate = f", {frames} frames at {frames / sum(out.seconds for out in clips):.2f} frames/s" if clips else ""
    if len(run.outputs) == 1 and opts["content_dir"] is None and opts["style_dir"] is None:
        (out,) = run.outputs
        click.echo(f"wrote {out.output} ({out.size[0]}x{out.size[1]}{rate}) in {total:.1f}s")
    else:
        images = len(run.outputs) - len(clips)
        kinds = f"{images} images and {len(clips)} clips" if clips else f"{images} images"
        click.echo(f"wrote {kinds} to {opts['output']} in {total:.1f}s{rate} "
                   f"({run.style_statistics_computed} style statistics computed)")
