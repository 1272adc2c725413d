"""``styletransfer stylize``: optimisation-based (default) or feed-forward (AdaIN, WCT, Magenta, CIN) stylisation.

Every method comes from ``METHODS``: its entry says which options it reads (declared on each
option), builds its stylizer, and knows its config; nothing here branches on a method's name.
"""

from __future__ import annotations

import click

from .. import color
from ..adain import ADAIN_LAYER, DECODER_PLAN
from ..api import RunOptions, feedforward_files, stylize_files
from ..cin.networks import NUM_STYLES
from ..errors import UsageError
from ..imageio import OUTPUT_FORMATS
from ..losses import STYLE_LOSSES
from ..methods import METHODS, Method, feedforward_methods
from ..parsing import parse_loss_list
from ..precision import DEFAULT_PRECISION, precision_names
from ..realtime import Networks
from ..tiling import DEFAULT_TILE_SIZE, TILE_THRESHOLD_PIXELS, exact_halo
from ..video.clip import VideoConfig
from ..video.flow import PRESETS as FLOW_PRESETS
from ..video.io import is_clip
from ..video.temporal import DEFAULT_BLEND, DEFAULT_FLOW, DEFAULT_MOMENTUM
from . import options
from .options import built_in_styles, decoder_users, encoder_users, optimising, setting, style_files
from .params import FLOATS, SIZES, STEPS

EXISTING = click.Path(exists=False, dir_okay=True)
EXTENSIONS = sorted({suffix[1:] for suffix in OUTPUT_FORMATS})


def _defaults(field: str) -> str:
    """Each method's default for a config field, e.g. "adain 512, wct 512, magenta 256"."""
    return ", ".join(f"{name} {method.default(field)}" for name, method in METHODS.items()
                     if method.feedforward and method.reads(field))


# each option is read by the methods whose entries its ``methods`` question accepts (options.MethodOption)
FEEDFORWARD_OPTIONS = options.apply(
    options.option("--decoder", type=EXISTING, default=None, methods=decoder_users,
                   help="Decoder: ours (.safetensors) or pytorch-AdaIN's decoder.pth; default: the decoder shipped for the "
                        "default encoder (any other --weights needs one)."),
    options.option("--style-index", default=None, metavar="K[:W],...", methods=built_in_styles,
                   help=f"The built-in style: an index 0..{NUM_STYLES - 1}, or a blend such as 3:0.5,12:0.5 (weights "
                        "normalised to sum 1); no STYLE image. The styles: docs/cin_styles.png."),
    options.option("--alpha", type=float, default=None, methods=setting("alpha"),
                   help="Degree of stylisation, 0..1 [1] (cin: the output blended with the content)."),
    options.option("--content-size", type=click.IntRange(min=0), default=None, methods=setting("content_size"),
                   help=f"Content shorter side; 0 keeps the original size [{_defaults('content_size')}]."),
    options.option("--style-size", type=click.IntRange(min=0), default=None, methods=setting("style_size"),
                   help=f"Style shorter side; 0 keeps the original size [{_defaults('style_size')}]."),
    options.option("--crop", is_flag=True, default=False, methods=setting("crop"),
                   help="Centre crop to a square after resizing."),
    options.option("--content-dir", type=EXISTING, default=None, methods=style_files,
                   help="Stylise every image in this folder."),
    options.option("--style-dir", type=EXISTING, default=None, methods=style_files,
                   help="Use every image in this folder, one at a time."),
    options.option("--ext", type=click.Choice(EXTENSIONS), default="png", show_default=True, methods=style_files,
                   help="Output image format in folder mode (a clip keeps its container)."),
    # clips (CONTENT .mp4, .mov, .mkv, .webm, .avi, ...; docs/VIDEO.md)
    options.option("--temporal", is_flag=True, default=False, methods=style_files,
                   help="Clips: reduce flicker (running content statistics in the norms, the previous output "
                        "warped by the optical flow and blended where the surface is the same)."),
    options.option("--temporal-momentum", type=click.FloatRange(0, 1, max_open=True), default=None,
                   methods=style_files,
                   help=f"With --temporal: weight of the past frames in the running statistics; 0: off "
                        f"[{DEFAULT_MOMENTUM}]."),
    options.option("--temporal-blend", type=click.FloatRange(0, 1, max_open=True), default=None,
                   methods=style_files,
                   help=f"With --temporal: weight of the previous output, warped by the optical flow; 0: off "
                        f"[{DEFAULT_BLEND}]."),
    options.option("--temporal-flow", type=click.Choice(list(FLOW_PRESETS)), default=None, methods=style_files,
                   help=f"With --temporal: the optical flow's DIS preset (faster to more accurate) [{DEFAULT_FLOW}]."),
    options.option("--crf", type=click.IntRange(min=0), default=None, methods=style_files,
                   help="Clips: encoder quality (H.264 0-51, VP9 0-63; lower is better, 0 lossless) [18; VP9 24]."),
    options.option("--channels-last/--no-channels-last", default=True, show_default=True,
                   methods=setting("channels_last"),
                   help="NHWC memory format for the networks (same results, faster on CPUs)."),
    options.option("--tile-size", type=click.IntRange(min=0), default=None, methods=setting("tile_size"),
                   help=f"Stylise in tiles of N pixels a side (a multiple of 8; magenta: 4), with whole-image "
                        f"statistics; 0: never. Default: {DEFAULT_TILE_SIZE} above {TILE_THRESHOLD_PIXELS:,} pixels."),
    options.option("--tile-halo", type=click.IntRange(min=0), default=None, methods=setting("tile_halo"),
                   help="Pixels of overlap around each tile (a multiple of 8). Default: the networks' reach "
                        f"({exact_halo(ADAIN_LAYER, DECODER_PLAN)}), which makes tiling exact."),
)

OPTIMIZE_OPTIONS = options.apply(
    options.option("--loss", "losses", multiple=True, default=("gram",), show_default=True, methods=optimising,
                   help=f"Style loss(es) with weights, e.g. gram:0.5,bn-stats:0.5. One of: "
                        f"{', '.join(STYLE_LOSSES.names())}."),
    options.loss_param(optimising),
    options.optimizer(optimising),
    options.option("--steps-per-scale", type=STEPS, default=None, methods=optimising,
                   help="Steps at each of --scales, e.g. 300,100 (overrides --steps)."),
    options.option("--init", default="content", show_default=True, methods=optimising,
                   help="content, noise, or an image path."),
    options.size(optimising),
    options.option("--scales", type=SIZES, default=None, methods=optimising,
                   help="Coarse-to-fine long edges, e.g. 256,512 (overrides --size)."),
    options.option("--style-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                   methods=optimising, help="Style image long edge relative to the output's."),
    options.layers(optimising),
    options.option("--layer-weights", type=FLOATS, default=None, methods=optimising,
                   help="Per style layer weights (default uniform)."),
    options.weights_of_terms(optimising),
    options.option("--normalize/--no-normalize", default=True, show_default=True, methods=optimising,
                   help="Divide each style loss by its value on the content image."),
    options.seed(optimising),
)


@click.command("stylize")
@click.argument("images", nargs=-1, type=EXISTING, metavar="[CONTENT] [STYLE]...")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image (.png, .jpg, ...) or clip (.mp4, .mkv, ...); an output folder with "
                   "--content-dir/--style-dir.")
@click.option("--method", type=options.method_choice(), default="optimize", show_default=True,
              help=options.method_help())
@click.option("--style", "extra_styles", multiple=True, type=EXISTING, help="Another style image (repeatable).")
@click.option("--style-blend", "--style-interpolation-weights", "style_blend", type=FLOATS,
              help="Blend (adain, wct: interpolation) weights of the styles, e.g. 0.7,0.3.")
@click.option("--preserve-color", type=click.Choice(color.choices()), default=color.NONE, show_default=True,
              help="coral/histogram: match the style's colours to the content's first; "
                   "luminance: keep the content's colours, take the result's luminance.")
@click.option("--mask", type=EXISTING, default=None,
              help="Mask image: white gets the first style, black the second (needs exactly two styles).")
@options.encoder(encoder_users)
@FEEDFORWARD_OPTIONS
@OPTIMIZE_OPTIONS
# every method
@click.option("--precision", type=click.Choice(precision_names()), default=None,
              help="bf16: bfloat16 convolutions (statistics and losses stay float32); faster where the CPU "
                   "(AVX512-BF16, AMX) or GPU computes bfloat16 natively; auto: bf16 there, fp32 elsewhere "
                   f"[optimize auto; feed-forward methods {DEFAULT_PRECISION}].")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@options.INPUT_AND_PROGRESS
@click.pass_context
def stylize_command(ctx: click.Context, images, **opts) -> None:
    """Stylise CONTENT with STYLE image(s) and write -o OUTPUT.

    With --content-dir and/or --style-dir every combination is written into the folder -o as
    {content}_stylized_{style}.{ext}; with --content-dir all positional images are styles.
    With --method adain, wct or magenta, CONTENT may be a video clip (.mp4, .mov, .mkv, .webm, .avi,
    ...), written -o as a clip frame for frame (pip install -e ".[video]"; docs/VIDEO.md).
    With --method cin there is no STYLE: --style-index picks or blends its 26 built-in styles.
    """
    method = METHODS.get(opts["method"])
    options.reject_other_method_options(ctx, method.name)
    if not method.style_images:
        content, styles = _built_in_styles_input(method, images, opts), ()
    elif opts["content_dir"] is not None:
        content, styles = None, (*images, *opts["extra_styles"])
    else:
        content, styles = (images[0] if images else None), (*images[1:], *opts["extra_styles"])
    if content is None and opts["content_dir"] is None:
        raise UsageError("give a CONTENT image (or --content-dir) and a STYLE image")
    if method.feedforward:
        run = feedforward_files(method, content, styles, opts["output"], _feedforward_config(method, opts),
                                networks=Networks(opts["weights"], opts["pooling"], opts["decoder"]),
                                options=_run_options(opts, video=_video_config(opts)))
        _report_feedforward(run, opts)
    elif is_clip(content):
        raise UsageError(f"{content!r} is a video clip: clips go through a feed-forward method, "
                         f"--method {' or '.join(feedforward_methods(style_images=True))}")
    else:
        _run_optimize(content, styles, opts)


def _run_options(opts, *, video: VideoConfig | None = None) -> RunOptions:
    return RunOptions(device=opts["device"], report=opts["report"], progress=opts["progress"],
                      max_pixels=opts["max_pixels"], mask=opts["mask"], content_dir=opts["content_dir"],
                      style_dir=opts["style_dir"], ext=opts["ext"], video=video)


def _run_optimize(content, styles, opts) -> None:
    if not styles:
        raise UsageError("give a STYLE image (positional or --style)")
    config = options.stylize_config(
        opts,
        losses=parse_loss_list(opts["losses"]),
        layer_weights=opts["layer_weights"],
        normalize=opts["normalize"],
        steps_per_scale=opts["steps_per_scale"],
        init=opts["init"],
        scales=opts["scales"] or (opts["size"],),
        style_scale=opts["style_scale"],
        style_blend=opts["style_blend"],
        preserve_color=opts["preserve_color"],
        **({"precision": opts["precision"]} if opts["precision"] else {}),
    )
    result = stylize_files(content, styles, opts["output"], config, weights=opts["weights"], pooling=opts["pooling"],
                           options=_run_options(opts))
    final = result.final_loss
    click.echo(f"wrote {opts['output']} ({result.image.shape[-1]}x{result.image.shape[-2]}) in {result.seconds:.1f}s, "
               f"loss {result.history[0]['total']:.4g} → {final:.4g}")


# stylize options → fields of the feed-forward configs; an option left unset keeps the config's default
FEEDFORWARD_FIELDS = {"alpha": "alpha", "style_weights": "style_blend", "preserve_color": "preserve_color",
                      "content_size": "content_size", "style_size": "style_size", "crop": "crop",
                      "precision": "precision", "channels_last": "channels_last", "tile_size": "tile_size",
                      "tile_halo": "tile_halo"}


def _feedforward_config(method: Method, opts):
    """The method's config from the options it reads (a method with built-in styles: and --style-index)."""
    fields = {field: opts[option] for field, option in FEEDFORWARD_FIELDS.items()}
    if not method.style_images:
        fields.update(method.style_index(opts["style_index"]))
    return method.make_config(**fields)


def _video_config(opts) -> VideoConfig:
    """The clip settings; the strengths of --temporal only with it."""
    strengths = {field: opts[option] for field, option in (("momentum", "temporal_momentum"),
                                                            ("blend", "temporal_blend"), ("flow", "temporal_flow"))
                 if opts[option] is not None}
    if strengths and not opts["temporal"]:
        raise UsageError("--temporal-momentum, --temporal-blend and --temporal-flow set how --temporal works: "
                         "add --temporal")
    return VideoConfig(temporal=opts["temporal"], crf=opts["crf"], **strengths)


# what a method with built-in styles (cin) refuses, having no style image: option → (flag, the remedy)
NO_STYLE_IMAGE = {"extra_styles": ("--style", "choose a built-in style with --style-index"),
                  "style_blend": ("--style-blend", "blend the built-in styles in --style-index, e.g. 3:0.5,12:0.5"),
                  "mask": ("--mask", "a mask places two style images, and there are none: drop --mask")}


def _built_in_styles_input(method: Method, images, opts):
    """The CONTENT of a method whose styles are built in (cin): one image, and no style image."""
    if len(images) > 1:
        raise UsageError(f"--method {method.name} has its styles built in and takes no STYLE image ({images[1]!r}): "
                         "drop it and choose them with --style-index")
    for option, (flag, remedy) in NO_STYLE_IMAGE.items():
        if opts[option]:
            raise UsageError(f"{flag} applies to style images, and --method {method.name} has none: {remedy}")
    if not images:
        raise UsageError("give a CONTENT image")
    return images[0]


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
