"""Optimisation-based stylisation (Gatys et al.) with any registered style loss or a fusion.

The objective at one scale is

    total = content_weight · Σ_l ½‖F_l − P_l‖² / (½‖P_l‖²)
          + style_weight · Σ_losses w · Σ_styles b · Σ_l λ_l · L(x_l, s_l) / L(c_l, s_l)
          + tv_weight · Σ (squared horizontal and vertical neighbour differences) / (C·H·W)

evaluated on the image clamped to [0, 1] (the image the file will hold: pixels are optimised
freely, and one pushed past a bound gets no gradient further out), where L(c_l, s_l) is the loss
of the content image itself (``normalize=True``, the default):
it makes every loss start at 1 per layer, so one ``style_weight`` stylises comparably under
every formulation and every encoder. With ``normalize=False`` the raw formulas are used.

``precision="bf16"`` runs the encoder's convolutions under bfloat16 autocast (1.5× faster per
evaluation on a 2-core AVX512-BF16 CPU, more with AMX and on recent GPUs); the features are cast
back to float32 before any loss, so losses, their targets and the optimiser's state stay float32.
The default, ``"auto"``, picks bf16 where the device computes it natively and fp32 elsewhere; the
gradients then carry bfloat16 rounding, and the final objective, scored in float32, stays within
1 % of the fp32 run's in our measurements (docs/PERFORMANCE.md); ``precision="fp32"`` for the
exact objective.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from . import color
from .encoder import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, VGG19_LAYERS, Encoder, check_layers  # noqa: F401  (the CLI's help reads them here)
from .errors import NonFiniteError, UsageError
from .imageio import check_mask_styles, check_min_size, grayscale, resize_edge, resize_to
from .losses import STYLE_LOSSES, layer_losses
from .losses import functional as loss_functions
from .losses.style import TooManyPatchPairs, check_loss_options
from .magenta.networks import predictor_layer_names
from .precision import AUTO, autocast_call, check_precision, dtype_of, resolve_precision, validate_precision
from .registry import Registry

DEFAULT_STYLE_WEIGHT = 20.0
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_TV_WEIGHT = 1e-3
# "auto": L-BFGS with a strong Wolfe line search, except for objectives that redraw their random
# parameters at every evaluation, which a line search cannot compare (sliced-wasserstein stopped
# after 8 of 80 evaluations): plain L-BFGS (Gatys et al., neural-style) for those. Plain L-BFGS
# diverged with bn-stats on the magenta encoder (objective 20 → 127); the line search reaches 0.49.
AUTO_OPTIMIZER = "auto"
DEFAULT_OPTIMIZER = AUTO_OPTIMIZER
ENCODER_LAYERS = (*VGG19_LAYERS, *predictor_layer_names())  # every encoder's layer names
MIN_REFERENCE = 1e-12  # floor of a loss's value on the content image, the normalising denominator


@dataclass
class StylizeConfig:
    """Every setting of an optimisation run; stored whole in reports and image metadata."""

    losses: tuple[tuple[str, float], ...] = (("gram", 1.0),)
    loss_options: dict[str, dict] = field(default_factory=dict)
    style_layers: tuple[str, ...] | None = None  # None: the encoder's default_style_layers
    layer_weights: tuple[float, ...] | None = None  # default: uniform, summing to 1
    content_layers: tuple[str, ...] | None = None  # None: the encoder's default_content_layers
    style_weight: float = DEFAULT_STYLE_WEIGHT
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    tv_weight: float = DEFAULT_TV_WEIGHT
    normalize: bool = True
    optimizer: str = DEFAULT_OPTIMIZER
    lr: float | None = None
    steps: int = 300  # per scale; for L-BFGS, objective evaluations
    steps_per_scale: tuple[int, ...] | None = None  # one count per scale; overrides steps
    init: str = "content"  # content, noise, or an image path
    scales: tuple[int, ...] = (512,)  # long edge of the output at each scale, coarse to fine
    style_scale: float = 1.0  # style long edge relative to the output's
    style_blend: tuple[float, ...] | None = None
    preserve_color: str = color.NONE  # coral/histogram: the styles' colours matched first; luminance: the content's kept
    seed: int = 0
    precision: str = AUTO  # bf16 (the encoder under bfloat16 autocast) where the device has it natively, else fp32

    def validate(self) -> "StylizeConfig":
        if not self.losses:
            raise UsageError("give at least one style loss with --loss")
        for name, weight in self.losses:
            STYLE_LOSSES.get(name)
            if weight < 0:
                raise UsageError(f"loss weight for {name!r} must be ≥ 0, got {weight}")
        for name, options in self.loss_options.items():
            check_loss_options(name, options)  # an unknown loss or option, before any work
        for layers in (self.style_layers, self.content_layers):  # names no encoder has; for_encoder checks the one used
            if layers is not None:
                check_layers(layers, ENCODER_LAYERS)
        if self.layer_weights is not None and self.style_layers is not None:
            self._check_layer_weights(self.style_layers)
        if self.optimizer != AUTO_OPTIMIZER:
            OPTIMIZERS.get(self.optimizer)
        if self.steps < 1:
            raise UsageError(f"--steps must be ≥ 1, got {self.steps}")
        if not self.scales or any(s < 16 for s in self.scales):
            raise UsageError(f"every scale (--size/--scales) must be ≥ 16 pixels, got {self.scales}")
        if self.steps_per_scale is not None:
            if len(self.steps_per_scale) != len(self.scales):
                raise UsageError(f"--steps-per-scale has {len(self.steps_per_scale)} counts for {len(self.scales)} "
                                 f"scales ({', '.join(map(str, self.scales))}): give one per scale")
            if any(count < 1 for count in self.steps_per_scale):
                raise UsageError(f"--steps-per-scale counts must be ≥ 1, got {self.steps_per_scale}")
        validate_precision(self.precision)
        color.get(self.preserve_color)
        for label, value in (("style", self.style_weight), ("content", self.content_weight), ("tv", self.tv_weight)):
            if value < 0:
                raise UsageError(f"--{label}-weight must be ≥ 0, got {value}")
        if self.style_scale <= 0:
            raise UsageError(f"--style-scale must be > 0, got {self.style_scale}")
        return self

    def _check_layer_weights(self, style_layers: Sequence[str]) -> None:
        if self.layer_weights is not None and len(self.layer_weights) != len(style_layers):
            raise UsageError(f"{len(self.layer_weights)} layer weights for {len(style_layers)} style layers "
                             f"({', '.join(style_layers)}): give one per layer")

    def check_options_in_use(self) -> None:
        """Refuse ``--loss-param`` options for losses this run does not use (compare measures every
        loss, so there they are all in use)."""
        used = [name for name, _ in self.losses]
        for name in self.loss_options:
            if name not in used:
                raise UsageError(f"--loss-param {name}.…: {name} is not among the losses in use "
                                 f"({', '.join(used)}); add it with --loss or drop the option")

    def for_encoder(self, encoder: nn.Module) -> "StylizeConfig":
        """A copy with the encoder's default layers where none were given, every name checked
        against the encoder's layers (VGG19's ``relu4_2`` means nothing to the magenta encoder)."""
        style = tuple(self.style_layers or encoder.default_style_layers)
        content = tuple(self.content_layers or encoder.default_content_layers)
        check_layers(style, encoder.layer_names)
        check_layers(content, encoder.layer_names)
        self._check_layer_weights(style)
        return replace(self, style_layers=style, content_layers=content)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default (both L-BFGS variants, which "auto" picks from, use 1)."""
        if self.lr is not None:
            return self.lr
        return OPTIMIZERS.get("lbfgs" if self.optimizer == AUTO_OPTIMIZER else self.optimizer).default_lr

    def resolve_optimizer(self, redraws: bool) -> "StylizeConfig":
        """A copy naming the optimiser that runs: "auto" becomes plain L-BFGS for an objective that
        ``redraws`` its random parameters at every evaluation, L-BFGS with a line search otherwise.
        A line search asked for by name on such an objective is kept, with a warning."""
        if self.optimizer == AUTO_OPTIMIZER:
            return replace(self, optimizer="lbfgs" if redraws else "lbfgs-wolfe")
        if redraws and OPTIMIZERS.get(self.optimizer).line_search:
            warnings.warn(f"--optimizer {self.optimizer}: a loss in use redraws its random parameters at every "
                          "evaluation, so the line search compares different objectives and may stop early; "
                          "use --optimizer lbfgs (what auto picks here)", stacklevel=3)
        return self

    def scale_steps(self) -> tuple[int, ...]:
        """Steps at each scale: ``steps_per_scale``, or ``steps`` at every scale."""
        return self.steps_per_scale or tuple(self.steps for _ in self.scales)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StylizeResult:
    image: Tensor  # (3, H, W) in [0, 1], on the CPU
    history: list[dict]  # one entry per objective evaluation
    seconds: float
    config: StylizeConfig
    encoder_source: str
    redraws: bool = False  # the objective drew new random parameters at every evaluation

    @property
    def final_loss(self) -> float:
        """The objective of the returned image at the last scale, as far as the history knows it: the
        lowest evaluation (deterministic objectives end on their best iterate), or, for an objective
        that redraws, the last one (values from different draws are not comparable, so no "best")."""
        last_scale = [r["total"] for r in self.history if r["scale"] == self.history[-1]["scale"]]
        return last_scale[-1] if self.redraws else min(last_scale)


class Objective(nn.Module):
    """The stylisation objective for one content image, one or more styles, at one size."""

    def __init__(self, encoder: Encoder, content: Tensor, styles: Sequence[Tensor],
                 config: StylizeConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config = config.for_encoder(encoder)
        self.encoder, self.config = encoder, config
        self.dtype = dtype_of(resolve_precision(config.precision, content.device))
        layers = config.style_layers
        self.layer_weights = config.layer_weights or tuple(1.0 / len(layers) for _ in layers)
        blend = config.style_blend or tuple(1.0 / len(styles) for _ in styles)
        if len(blend) != len(styles):
            raise UsageError(f"--style-blend has {len(blend)} weights for {len(styles)} styles")
        self.blend = tuple(b / sum(blend) for b in blend)
        with torch.no_grad():
            content_features = self.features(content, (*layers, *config.content_layers))
            self.content_targets = {l: content_features[l].detach().clone() for l in config.content_layers}
            self.content_scale = {
                l: (1.0 / max(float(loss_functions.content_loss(t, torch.zeros_like(t))), MIN_REFERENCE)
                    if config.normalize else 1.0)
                for l, t in self.content_targets.items()
            }
            # terms[i] = (loss name, loss weight · blend · layer weight / reference, layer, module)
            self.terms: list[tuple[str, float, str, nn.Module]] = []
            for style, b in zip(styles, self.blend):
                style_features = self.features(style, layers)
                for name, weight in config.losses:
                    modules = layer_losses(name, style_features, layers, generator, **config.loss_options.get(name, {}))
                    for layer, lw in zip(layers, self.layer_weights):
                        module = modules[layer]
                        scale = 1.0
                        if config.normalize:
                            try:
                                reference = float(module.denominator(content_features[layer]).sum())
                            except TooManyPatchPairs as error:
                                raise self._remedy(error, layer) from None
                            scale = 1.0 / max(reference, MIN_REFERENCE)
                        self.terms.append((name, weight * b * lw * scale, layer, module))
        self._modules_list = nn.ModuleList(m for _, _, _, m in self.terms)
        self.redraws = any(module.redraws for _, _, _, module in self.terms)  # a new objective every call
        self.needed_layers = tuple(dict.fromkeys((*layers, *config.content_layers)))

    def _remedy(self, error: TooManyPatchPairs, layer: str) -> UsageError:
        """mrf's refusal with a remedy in this encoder's own layer names."""
        deep = ",".join(self.encoder.default_style_layers[-2:])
        return UsageError(f"{error.what} at {layer}; use deeper --style-layers (e.g. {deep}), a smaller --size, "
                          "or --loss-param mrf.stride=2")

    def features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The encoder's features, float32 whatever ``config.precision`` runs the convolutions in."""
        return autocast_call(self.dtype, self.encoder, image, layers)

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, float]]:
        cfg = self.config
        image = image.clamp(0, 1)  # the image that will be saved; out-of-range pixels get no gradient outward
        features = self.features(image, self.needed_layers)
        parts: dict[str, Tensor] = {}
        content = sum(
            loss_functions.content_loss(features[l], t).sum() * self.content_scale[l]
            for l, t in self.content_targets.items()
        ) / len(self.content_targets)
        for name, weight, layer, module in self.terms:
            try:
                parts[name] = parts.get(name, 0.0) + weight * module(features[layer]).sum()
            except TooManyPatchPairs as error:
                raise self._remedy(error, layer) from None
        style = sum(parts.values())
        tv = loss_functions.tv_loss(image).sum() / image[0].numel() if cfg.tv_weight else image.new_zeros(())
        total = cfg.content_weight * content + cfg.style_weight * style + cfg.tv_weight * tv
        record = {"total": total, "content": content, "style": style, "tv": tv}
        record.update({f"style/{k}": v for k, v in parts.items()})
        return total, {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in record.items()}


def _initial_image(content: Tensor, init: str, generator: torch.Generator) -> Tensor:
    if init == "content":
        return content.clone()
    if init == "noise":
        noise = torch.rand(content.shape, generator=generator).to(content)
        return noise
    from .imageio import load_image

    image = load_image(init).to(content).unsqueeze(0)
    return resize_to(image, content.shape[-2], content.shape[-1])


def stylize(content: Tensor, styles: Tensor | Sequence[Tensor], encoder: Encoder,
            config: StylizeConfig | None = None, *, mask: Tensor | None = None, preserve_color: str | None = None,
            device: torch.device | str = "cpu", progress: bool = False,
            callback: Callable[[dict], None] | None = None) -> StylizeResult:
    """Stylise ``content`` (3, H, W) with one or more ``styles`` by optimising the pixels.

    Runs each scale of ``config.scales`` in turn, each starting from the previous result.
    Returns the image at the last scale, which keeps the content's aspect ratio.

    ``preserve_color`` (None: ``config.preserve_color``): ``coral``/``histogram`` match each
    style's colours to the content's before optimising; ``luminance`` keeps the content's
    chrominance in the result. ``mask``
    ((3|1, h, w) or (h, w) in [0, 1], any size; white = foreground) needs exactly two styles: one
    optimisation per style, composited by the mask's grey level at the output size.
    """
    config = config or StylizeConfig()
    if preserve_color is not None:
        config = replace(config, preserve_color=preserve_color)
    preserve_color = config.preserve_color
    color.get(preserve_color)  # an unknown name is refused before any work
    styles = [styles] if isinstance(styles, Tensor) else list(styles)
    styles = [color.prepare_style(style, content, preserve_color) for style in styles]
    if mask is None:
        result = _stylize(content, styles, encoder, config, device=device, progress=progress, callback=callback)
    else:
        check_mask_styles([tuple(styles)], config.style_blend if config is not None else None)
        results = [_stylize(content, [style], encoder, config, device=device, progress=progress, callback=callback)
                   for style in styles]
        foreground, background = (r.image for r in results)  # (3, H, W) each
        weight = resize_to(grayscale(mask), *foreground.shape[-2:])  # (1, H, W)
        history = [{**record, "region": region} for region, r in zip(("foreground", "background"), results)
                   for record in r.history]
        result = StylizeResult(weight * foreground + (1 - weight) * background, history,
                               sum(r.seconds for r in results), results[0].config, encoder.spec.source,
                               redraws=results[0].redraws)
    if color.uses_output_stage(preserve_color):
        reference = resize_to(content, *result.image.shape[-2:])  # (3, H, W), the output's size
        result.image = color.finish_output(result.image, reference, preserve_color).clamp(0, 1)
    return result


def _stylize(content: Tensor, styles: list[Tensor], encoder: Encoder, config: StylizeConfig | None, *,
             device: torch.device | str, progress: bool, callback: Callable[[dict], None] | None) -> StylizeResult:
    """One optimisation of ``content`` towards ``styles`` (blended by ``config.style_blend``)."""
    config = (config or StylizeConfig()).validate().for_encoder(encoder)
    device = torch.device(device)
    check_precision(config.precision, device)
    config = replace(config, precision=resolve_precision(config.precision, device))  # what ran, in reports
    encoder = encoder.to(device).eval()
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(config.scale_steps()), desc="stylize", unit="step", leave=False)
    image: Tensor | None = None
    for scale_index, (size, steps) in enumerate(zip(config.scales, config.scale_steps())):
        content_s = resize_edge(content, size).unsqueeze(0).to(device)
        check_min_size(content_s, "content")
        styles_s = [resize_edge(s, max(16, round(size * config.style_scale))).unsqueeze(0).to(device)
                    for s in styles]
        for s in styles_s:
            check_min_size(s, "style")
        objective = Objective(encoder, content_s, styles_s, config, generator)
        if scale_index == 0:
            config = config.resolve_optimizer(objective.redraws)
        if image is None:
            x = _initial_image(content_s, config.init, generator)
        else:
            x = resize_to(image, content_s.shape[-2], content_s.shape[-1]).to(device)
        x = x.detach().contiguous().requires_grad_(True)  # L-BFGS views the parameter flat
        try:
            _optimise(x, objective, config, steps, scale_index, size, history, start, bar, callback)
        except NonFiniteError as error:
            if bar is not None:
                bar.close()
            error.image = error.image[0].clamp(0, 1).cpu()
            raise
        image = x.detach().clamp_(0, 1)
    if bar is not None:
        bar.close()
    assert image is not None
    return StylizeResult(image[0].cpu(), history, time.perf_counter() - start, config, encoder.spec.source,
                         redraws=objective.redraws)


def _optimise(x: Tensor, objective: Objective, config: StylizeConfig, steps: int, scale_index: int, size: int,
              history: list[dict], start: float, bar, callback) -> None:
    """Run the optimiser on ``x`` in place. A NaN or infinite objective or gradient stops it with a
    ``NonFiniteError`` that carries the last iterate whose objective and gradient were finite.

    A run whose last evaluated objective is above the lowest one it saw (L-BFGS without a line
    search can diverge: seen with bn-stats on the magenta encoder, objective 20 → 127) ends on the
    iterate of that lowest objective instead of the diverged one. A run that is still descending
    at its end keeps its final update, as before."""
    last_finite = x.detach().clone()  # (1, 3, H, W)
    best = {"total": math.inf, "x": x.detach().clone(), "last": math.inf}

    def stop(what: str) -> NonFiniteError:
        return NonFiniteError(f"the {what} became NaN or infinite at evaluation {len(history)} (scale {size} px): "
                              "lower --lr, the loss weights or --style-weight, or try --optimizer adam", last_finite)

    def evaluate() -> Tensor:
        total, record = objective(x)
        if not torch.isfinite(total):
            raise stop("objective")
        record.update(scale=scale_index, size=size, step=len(history), seconds=time.perf_counter() - start)
        history.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(total=f"{record['total']:.4g}", content=f"{record['content']:.3g}",
                            style=f"{record['style']:.3g}", refresh=False)
        if callback is not None:
            callback(record)
        return total

    def check_gradient() -> None:
        if not torch.isfinite(x.grad).all():
            raise stop("gradient")
        last_finite.copy_(x.detach())  # objective and gradient finite at this iterate

    def step() -> Tensor:
        total = evaluate()
        total.backward()
        check_gradient()
        best["last"] = float(total.detach())
        if best["last"] < best["total"]:
            best["total"] = best["last"]
            best["x"].copy_(x.detach())
        return total

    optimizer = OPTIMIZERS.get(config.optimizer)
    optimizer.run(x, step, steps, config.learning_rate)
    # An objective that redraws its randomness at every evaluation has no comparable "best": the
    # lowest value is the luckiest draw, so such a run keeps its last iterate.
    redraws = getattr(objective, "redraws", False)
    if not redraws and (optimizer.line_search or best["last"] > best["total"]):  # end on the best iterate seen
        with torch.no_grad():
            x.copy_(best["x"])
    if not optimizer.line_search and best["last"] > DIVERGENCE_RATIO * best["total"]:
        kept = "its last iterate (the objective redraws, so values are not comparable)" if redraws else "its best iterate"
        warnings.warn(f"the {config.optimizer} run at {size} px diverged (objective {best['total']:.4g} at best, "
                      f"{best['last']:.4g} at the end): the output is {kept}; lower --lr or try "
                      "--optimizer adam", stacklevel=2)


@dataclass(frozen=True)
class Optimizer:
    """How pixels are optimised: ``run(x, step, steps, lr)`` calls ``step()`` (objective and its
    gradient into ``x.grad``) ``steps`` times and updates ``x`` in place."""

    default_lr: float
    run: Callable[[Tensor, Callable[[], Tensor], int, float], None]
    line_search: bool = False  # its last iterate may be an unevaluated trial point: runs end on the best one


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")
DIVERGENCE_RATIO = 2.0  # a run ending above twice its best objective is reported as diverged


class _BudgetSpent(Exception):
    """A line search asked for an evaluation beyond the run's budget."""


# torch's L-BFGS sizes its first step (steepest descent, no curvature known yet) as lr·min(1, 1/‖g‖₁)·g:
# at most 1 in L1 norm over all pixels, i.e. ~1e-5 of an intensity level per pixel at 256 px. That
# wastes evaluations (a line search extrapolates ×10 per evaluation to find a real step), and
# without a line search the curvature from so tiny a step sends the next one far off (the objective
# jumped 2e8 → 2e27); a step that small also hides under bfloat16's rounding of the objective.
# The first step here moves the pixels by this much on average; L-BFGS's own scaling follows.
FIRST_STEP_MEAN = 1.0 / 255.0


def _lbfgs(x: Tensor, step: Callable[[], Tensor], steps: int, lr: float, line_search: str | None = None) -> None:
    """L-BFGS (Gatys et al.'s choice): ``steps`` objective evaluations, no early stop.

    Without a line search every iteration steps ``lr`` along the quasi-Newton direction, which can
    climb (bn-stats on the magenta encoder). With ``line_search="strong_wolfe"`` each step length
    satisfies the strong Wolfe conditions (sufficient decrease, curvature); the search's trial
    points spend evaluations of the same budget, and a search cut short by the budget leaves ``x``
    on an unevaluated trial point, so such runs end on their best evaluated iterate.

    The first iteration runs alone, with its rate scaled so that its step moves the pixels by
    ``lr · FIRST_STEP_MEAN`` on average (see above); the rest run at ``lr`` from the state it left.
    The second call starts by asking for the objective at the point the first left, which its line
    search has just evaluated: that answer is reused, so no evaluation is spent twice."""
    optimizer = torch.optim.LBFGS([x], lr=lr * FIRST_STEP_MEAN * x.numel(), max_iter=1, max_eval=steps,
                                  tolerance_grad=0.0, tolerance_change=0.0, history_size=50,
                                  line_search_fn=line_search)
    evaluations, last = 0, None  # last: (x, objective, gradient) of the latest evaluation

    def closure() -> Tensor:
        nonlocal evaluations, last
        if last is not None and torch.equal(x.detach(), last[0]):  # the second call's first question
            x.grad = last[2].clone()  # was answered by the first call's line search: no evaluation
            return last[1]
        if evaluations == steps:
            raise _BudgetSpent
        evaluations += 1
        optimizer.zero_grad(set_to_none=True)
        total = step()
        last = (x.detach().clone(), total.detach(), x.grad.detach().clone())
        return total

    try:
        optimizer.step(closure)  # the first, sized step
        optimizer.param_groups[0].update(lr=lr, max_iter=steps)
        optimizer.step(closure)
    except _BudgetSpent:
        pass


def _adam(x: Tensor, step: Callable[[], Tensor], steps: int, lr: float) -> None:
    """Adam, the pixels clamped to [0, 1] after every update."""
    optimizer = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        step()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)


OPTIMIZERS.register("lbfgs")(Optimizer(default_lr=1.0, run=_lbfgs))
OPTIMIZERS.register("lbfgs-wolfe")(Optimizer(default_lr=1.0, run=partial(_lbfgs, line_search="strong_wolfe"),
                                             line_search=True))
OPTIMIZERS.register("adam")(Optimizer(default_lr=0.02, run=_adam))
