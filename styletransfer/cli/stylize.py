"""``styletransfer stylize``: optimisation-based stylisation of one image pair."""

from __future__ import annotations

import click

from .. import optimize as S
from ..api import stylize_files
from ..imageio import DEFAULT_MAX_PIXELS
from ..losses import STYLE_LOSSES
from .params import FLOATS, NAMES, SIZES, parse_loss_list, parse_loss_params

EXISTING = click.Path(exists=False, dir_okay=True)


@click.command("stylize")
@click.argument("content", type=EXISTING)
@click.argument("styles", nargs=-1, type=EXISTING)
@click.option("-o", "--output", required=True, type=click.Path(), help="Output image (.png, .jpg, ...).")
@click.option("--style", "extra_styles", multiple=True, type=EXISTING, help="Another style image (repeatable).")
@click.option("--style-blend", type=FLOATS, help="Blend weights of the styles, e.g. 0.7,0.3.")
@click.option("--loss", "losses", multiple=True, default=("gram",), show_default=True,
              help=f"Style loss(es) with weights, e.g. gram:0.5,bn-stats:0.5. One of: {', '.join(STYLE_LOSSES.names())}.")
@click.option("--loss-param", multiple=True, help="Loss option LOSS.OPTION=VALUE, e.g. mmd-poly.c=1.")
@click.option("--weights", default="imagenet", show_default=True,
              help="Encoder weights: imagenet, a .pth/.safetensors file, a downloaded manifest name "
                   "(styletransfer weights list), or random[:SEED] (tests only).")
@click.option("--pooling", type=click.Choice(["max", "avg"]), default=None, help="Pooling (default: the weights').")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--optimizer", type=click.Choice(S.OPTIMIZERS), default="lbfgs", show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate (default 1 for L-BFGS, 0.02 for Adam).")
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True, help="Steps per scale.")
@click.option("--init", default="content", show_default=True, help="content, noise, or an image path.")
@click.option("--size", type=click.IntRange(min=16), default=512, show_default=True, help="Output long edge.")
@click.option("--scales", type=SIZES, default=None, help="Coarse-to-fine long edges, e.g. 256,512 (overrides --size).")
@click.option("--style-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Style image long edge relative to the output's.")
@click.option("--style-layers", type=NAMES, default=",".join(S.DEFAULT_STYLE_LAYERS), show_default=True)
@click.option("--layer-weights", type=FLOATS, default=None, help="Per style layer weights (default uniform).")
@click.option("--content-layers", type=NAMES, default=",".join(S.DEFAULT_CONTENT_LAYERS), show_default=True)
@click.option("--style-weight", type=click.FloatRange(min=0), default=S.DEFAULT_STYLE_WEIGHT, show_default=True)
@click.option("--content-weight", type=click.FloatRange(min=0), default=S.DEFAULT_CONTENT_WEIGHT, show_default=True)
@click.option("--tv-weight", type=click.FloatRange(min=0), default=S.DEFAULT_TV_WEIGHT, show_default=True)
@click.option("--normalize/--no-normalize", default=True, show_default=True,
              help="Divide each style loss by its value on the content image.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write a JSON report here.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse larger input images.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def stylize_command(content, styles, output, extra_styles, style_blend, losses, loss_param, weights, pooling,
                    device, optimizer, lr, steps, init, size, scales, style_scale, style_layers, layer_weights,
                    content_layers, style_weight, content_weight, tv_weight, normalize, seed, report,
                    max_pixels, progress) -> None:
    """Stylise CONTENT with STYLE image(s) and write -o OUTPUT."""
    all_styles = (*styles, *extra_styles)
    if not all_styles:
        raise click.UsageError("give a STYLE image (positional or --style)")
    config = S.StylizeConfig(
        losses=parse_loss_list(losses),
        loss_options=parse_loss_params(loss_param),
        style_layers=style_layers,
        layer_weights=layer_weights,
        content_layers=content_layers,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        normalize=normalize,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        init=init,
        scales=scales or (size,),
        style_scale=style_scale,
        style_blend=style_blend,
        seed=seed,
    )
    result = stylize_files(content, all_styles, output, config, weights=weights, pooling=pooling, device=device,
                           report=report, progress=progress, max_pixels=max_pixels)
    last = result.history[-1]
    click.echo(f"wrote {output} ({result.image.shape[-1]}x{result.image.shape[-2]}) in {result.seconds:.1f}s, "
               f"loss {result.history[0]['total']:.4g} → {last['total']:.4g}")
