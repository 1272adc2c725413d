"""Stylise one content/style pair under every formulation and compare the results.

Every registered style loss (and AdaIN, given a decoder) stylises the same pair with the same
encoder, seed, size and step budget. Each output is then measured under every registered loss:

    raw[m][L]        = Σ_l λ_l · L(x_l, s_l)                x = output of method m
    normalized[m][L] = Σ_l λ_l · L(x_l, s_l) / L(c_l, s_l)   c = the content image

on the encoder's features at the style layers, with the loss modules built exactly as the
stylizer builds them (same options, same seed, so ``mmd-rbf`` uses the same random features).
``normalized`` is the stylizer's own normalised style term: 1 for the content image itself, below
1 when the output is closer to the style than the content was. Reading across a row answers
"does matching X also reduce Y?".

The report builders (``cross_loss_matrix``, ``identity_summary``, ``build_report``,
``render_markdown``, ``build_grid``) are pure: data in, dict / text / image out.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .devices import resolve_device
from .encoder import VGGEncoder
from .errors import UsageError
from .files import atomic_write, atomic_write_json, atomic_write_text
from .imageio import DEFAULT_MAX_PIXELS, check_output_path, same_path, check_resizable, load_image, resize_edge, save_image, to_pil
from .losses import STYLE_LOSSES, layer_losses
from .losses import functional as LF
from .markdown import markdown_table
from .memory import MEASURES, PeakMemory
from .optimize import MIN_REFERENCE, StylizeConfig, stylize
from .registry import did_you_mean

ADAIN_METHOD = "adain"
MAGENTA_METHOD = "magenta"  # Magenta's feed-forward networks, always available (a pinned dependency)
FEEDFORWARD_METHODS = (ADAIN_METHOD, MAGENTA_METHOD)
IDENTITY_MAX_POSITIONS = 1024  # positions per image for the quadratic-time kernel check
REFERENCE_ROW = "content"  # the content image itself, the reference row of the raw matrix
GRID_NAME, REPORT_JSON, REPORT_MD = "grid.png", "report.json", "report.md"
GRID_COLUMNS = 4
GRID_PADDING = 6  # pixels around and between tiles
LABEL_LINE_GAP = 2
GRID_BACKGROUND = (255, 255, 255)
LABEL_COLOUR = (0, 0, 0)
RANDOM_WEIGHTS_NOTE = ("the encoder has random weights: the images and numbers are not representative of "
                       "real style transfer (use --weights imagenet or a weights file)")
NORMALIZATION_NOTE = ("normalized = Σ_l λ_l · L(output_l, style_l) / L(content_l, style_l), the stylizer's "
                      "own normalisation: 1 for the content image, < 1 = closer to the style than the "
                      "content was; raw = Σ_l λ_l · L(output_l, style_l)")


# --- configuration and method selection ------------------------------------------------------


@dataclass
class CompareConfig:
    """The shared stylisation settings and the methods to run; stored whole in the report."""

    stylize: StylizeConfig  # each style-loss method replaces ``losses`` with its own loss alone
    methods: tuple[str, ...]
    identity_positions: int = IDENTITY_MAX_POSITIONS

    def validate(self) -> "CompareConfig":
        self.stylize.validate()
        if not self.methods:
            raise UsageError("no method left to compare: check --only and --skip")
        for name in self.methods:
            if name not in FEEDFORWARD_METHODS:
                STYLE_LOSSES.get(name)
        if self.identity_positions < 2:
            raise UsageError(f"identity_positions must be ≥ 2, got {self.identity_positions}")
        return self

    def method_config(self, method: str) -> StylizeConfig:
        return replace(self.stylize, losses=((method, 1.0),))

    def to_dict(self) -> dict:
        return asdict(self)


def available_methods(*, decoder: bool) -> list[str]:
    """Every registered style loss, then AdaIN when a decoder is given, then Magenta's networks."""
    return [*STYLE_LOSSES.names(), *([ADAIN_METHOD] if decoder else []), MAGENTA_METHOD]


def _check_method_names(names: Sequence[str], flag: str) -> None:
    known = [*STYLE_LOSSES.names(), *FEEDFORWARD_METHODS]
    for name in names:
        if name not in known:
            raise UsageError(f"{flag}: unknown method {name!r}{did_you_mean(name, known)}: "
                             f"choose from {', '.join(known)}")


def select_methods(*, only: Sequence[str] | None = None, skip: Sequence[str] = (),
                   decoder: bool = False) -> tuple[str, ...]:
    """The methods to run, in registry order: ``only`` (default: all available) minus ``skip``."""
    _check_method_names(only or (), "--only")
    _check_method_names(skip, "--skip")
    if only and ADAIN_METHOD in only and not decoder:
        raise UsageError("--only adain needs an AdaIN decoder: pass --decoder PATH")
    chosen = [m for m in available_methods(decoder=decoder) if (not only or m in only) and m not in skip]
    if not chosen:
        raise UsageError("--only/--skip leave no method to compare")
    return tuple(chosen)


# --- pure report builders --------------------------------------------------------------------


def layer_weight_map(config: StylizeConfig) -> dict[str, float]:
    """λ_l per style layer as the stylizer uses them (uniform, summing to 1, by default)."""
    layers = config.style_layers
    weights = config.layer_weights or tuple(1.0 / len(layers) for _ in layers)
    return dict(zip(layers, weights))


def cross_loss_matrix(per_layer: Mapping[str, Mapping[str, Mapping[str, float]]],
                      reference: Mapping[str, Mapping[str, float]],
                      layer_weights: Mapping[str, float]) -> dict:
    """Rows: methods; columns: losses.

    ``per_layer[method][loss][layer]`` and ``reference[loss][layer]`` (the content image) are raw
    loss values. Returns the layer-weighted raw sums (with the reference as row ``content``), the
    per-layer-normalised sums, and the raw per-layer values.
    """
    methods = list(per_layer)
    losses = list(reference)

    def raw(values: Mapping[str, float]) -> float:
        return sum(w * values[layer] for layer, w in layer_weights.items())

    def normalized(values: Mapping[str, float], ref: Mapping[str, float]) -> float:
        return sum(w * values[layer] / max(ref[layer], MIN_REFERENCE) for layer, w in layer_weights.items())

    return {
        "methods": methods,
        "losses": losses,
        "layer_weights": dict(layer_weights),
        "normalized": {m: {l: normalized(per_layer[m][l], reference[l]) for l in losses} for m in methods},
        "raw": {REFERENCE_ROW: {l: raw(reference[l]) for l in losses},
                **{m: {l: raw(per_layer[m][l]) for l in losses} for m in methods}},
        "per_layer_raw": {REFERENCE_ROW: {l: dict(reference[l]) for l in losses},
                          **{m: {l: dict(per_layer[m][l]) for l in losses} for m in methods}},
    }


def diagonal(matrix: Mapping) -> dict[str, float]:
    """Each formulation's own loss on its own output (normalised); methods that are no loss are left out."""
    return {m: matrix["normalized"][m][m] for m in matrix["methods"] if m in matrix["losses"]}


def identity_summary(layers: Mapping[str, Mapping]) -> dict:
    """Spread (max − min) and largest |ratio − 1| of the Gram ≡ poly-MMD ratios across layers."""
    summary: dict = {"layers": {k: dict(v) for k, v in layers.items()}}
    for kind in ("library", "kernel"):
        ratios = [v[f"ratio_{kind}"] for v in layers.values() if v.get(f"ratio_{kind}") is not None]
        summary[f"spread_{kind}"] = max(ratios) - min(ratios) if ratios else None
        summary[f"max_deviation_{kind}"] = max(abs(r - 1) for r in ratios) if ratios else None
    return summary


def build_report(*, command: str, content: str, style: str, size: Sequence[int], config: CompareConfig,
                 encoder: Mapping, decoder: Mapping | None, environment: Mapping, matrix: Mapping,
                 runs: Mapping[str, Mapping], identity: Mapping, notes: Sequence[str] = ()) -> dict:
    """Assemble the report (what ``report.json`` holds) from measured pieces."""
    random_weights = str(encoder.get("source", "")).startswith("random")
    all_notes = [*([RANDOM_WEIGHTS_NOTE] if random_weights else []), *notes]
    own = diagonal(matrix)
    return {
        "command": command,
        "content": content,
        "style": style,
        "size": list(size),
        "methods": list(config.methods),
        "encoder": {**encoder, "random": random_weights},
        "decoder": dict(decoder) if decoder is not None else None,
        "notes": all_notes,
        "config": config.to_dict(),
        "environment": dict(environment),
        "matrix": {**matrix, "note": NORMALIZATION_NOTE},
        "diagonal": own,
        "diagonal_below_one": all(v < 1 for v in own.values()) if own else None,
        "runs": {m: dict(r) for m, r in runs.items()},
        "memory_measures": {k: MEASURES[k] for k in dict.fromkeys(r["memory"]["measure"] for r in runs.values())},
        "identity": dict(identity),
        "grid": GRID_NAME,
    }


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _ratio(value: float | None) -> str:
    """A ratio near 1 as '1 + 2.6e-14', so the deviation stays readable."""
    if value is None:
        return "—"
    deviation = value - 1
    return "1" if deviation == 0 else f"1 {'+' if deviation > 0 else '−'} {abs(deviation):.1e}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f} MiB"


def render_markdown(report: Mapping) -> str:
    """The human-readable report: header, grid, matrices, runs, identity check."""
    matrix, losses = report["matrix"], report["matrix"]["losses"]
    encoder = report["encoder"]
    width, height = report["size"]
    lines = ["# Style-loss comparison", "", "```", report["command"], "```", ""]
    lines += [f"- content: `{report['content']}`, style: `{report['style']}`, output {width}x{height}",
              f"- encoder: `{encoder['source']}` (sha256 {encoder.get('sha256') or '—'}, pooling "
              f"{encoder.get('pooling')}, padding {encoder.get('padding')})"]
    if report.get("decoder"):
        lines.append(f"- AdaIN decoder: `{report['decoder']['path']}` (norm {report['decoder']['norm']})")
    cfg = report["config"]["stylize"]
    lines.append(f"- every method: {cfg['optimizer']}, {cfg['steps']} steps, seed {cfg['seed']}, style weight "
                 f"{cfg['style_weight']:g}, content weight {cfg['content_weight']:g}, tv weight {cfg['tv_weight']:g}, "
                 f"style layers {', '.join(cfg['style_layers'])}, content layers {', '.join(cfg['content_layers'])}")
    env = report["environment"]
    lines.append(f"- device: {env.get('device')}, torch {env.get('torch')}, {env.get('cpu_threads', '?')} CPU threads")
    lines += [""] + [f"> **Note:** {note}" for note in report["notes"]] + ([""] if report["notes"] else [])
    lines += [f"![comparison grid]({report['grid']})", ""]

    lines += ["## Cross-loss matrix", "",
              "Rows: the method used to stylise. Columns: the loss used to measure the output's distance to "
              "the style. Each value is divided, layer by layer, by the content image's own distance under "
              "that loss (the stylizer's normalisation): below 1 means closer to the style than the content "
              "was. The diagonal (bold) is each formulation's own objective.", ""]
    rows = []
    for method in matrix["methods"]:
        cells = [f"**{_number(v)}**" if loss == method else _number(v)
                 for loss, v in matrix["normalized"][method].items()]
        rows.append([f"`{method}`", *cells])
    lines += [markdown_table(["method \\ measured by", *[f"`{l}`" for l in losses]], rows), ""]
    verdict = report.get("diagonal_below_one")
    if verdict is not None:
        lines += [f"Every formulation's own loss below its value on the content image: **{'yes' if verdict else 'no'}**.", ""]

    lines += ["### Raw values", "", "Layer-weighted sums Σ_l λ_l·L(x_l, s_l), unnormalised; row `content` is the "
              "content image itself (the denominators above, summed).", ""]
    rows = [[f"`{m}`", *[_number(v, 4) for v in matrix["raw"][m].values()]] for m in matrix["raw"]]
    lines += [markdown_table(["image \\ measured by", *[f"`{l}`" for l in losses]], rows), ""]

    lines += ["## Runs", ""]
    rows = []
    for method, run in report["runs"].items():
        rows.append([f"`{method}`", f"{run['seconds']:.2f} s", str(run["steps"]) if run["steps"] is not None else "—",
                     _number(run["content_loss"]), _mib(run["memory"]["peak_bytes"]), f"[{run['image']}]({run['image']})"])
    lines += [markdown_table(["method", "wall time", "steps", "content loss", "peak memory", "image"], rows), ""]
    lines += ["Content loss: ½‖F − P‖² / ½‖P‖², averaged over the content layers (the stylizer's "
              "normalisation). Wall time: the whole method on the working images, after an untimed warm-up "
              "(one step of the first loss, one pass of each feed-forward method). Steps: objective evaluations (AdaIN, magenta: one forward pass, shown as —). "
              "Peak memory:"]
    lines += [f"- `{k}`: {v}" for k, v in report["memory_measures"].items()] + [""]

    identity = report["identity"]
    lines += ["## Gram ≡ poly-MMD identity", "",
              "Per style layer, content image vs style: gram_loss / (mmd_poly(d=2, c=0) / (4C²)). `library`: "
              "the registered implementations on all positions; `kernel`: Gatys' formula 1/(4C²M²)·Σ(G − A)² "
              "against the quadratic-time kernel estimator with k(x, y) = (xᵀy)², in float64, on the same "
              f"random positions of each image (at most {identity.get('max_positions')}). Both should be 1 to "
              "about 1e-6.", ""]
    rows = [[f"`{layer}`", str(v["channels"]), str(v["positions"]), _ratio(v["ratio_library"]),
             _ratio(v["ratio_kernel"])] for layer, v in identity["layers"].items()]
    lines += [markdown_table(["layer", "C", "positions (kernel)", "ratio (library)", "ratio (kernel)"], rows), ""]
    lines += [f"Spread across layers (max − min): library {_number(identity['spread_library'], 2)}, "
              f"kernel {_number(identity['spread_kernel'], 2)}; largest |ratio − 1|: library "
              f"{_number(identity['max_deviation_library'], 2)}, kernel {_number(identity['max_deviation_kernel'], 2)}.", ""]
    return "\n".join(lines)


def build_grid(tiles: Sequence[tuple[Sequence[str], Image.Image]], *, columns: int = GRID_COLUMNS) -> Image.Image:
    """Lay out labelled images in a grid; each label line is drawn under its image.

    Every cell has the width of the widest image or label and the height of the tallest image
    plus the label lines; images are centred horizontally and sit on their labels.
    """
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom

    line_height = max(text_size("Ag")[1], 1) + LABEL_LINE_GAP
    max_lines = max(len(label) for label, _ in tiles)
    cell_w = max(max(image.width for _, image in tiles),
                 max(text_size(line)[0] for label, _ in tiles for line in label))
    image_h = max(image.height for _, image in tiles)
    cell_h = image_h + LABEL_LINE_GAP + max_lines * line_height
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (columns * cell_w + (columns + 1) * GRID_PADDING,
                             rows * cell_h + (rows + 1) * GRID_PADDING), GRID_BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for index, (label, image) in enumerate(tiles):
        row, column = divmod(index, columns)
        x0 = GRID_PADDING + column * (cell_w + GRID_PADDING)
        y0 = GRID_PADDING + row * (cell_h + GRID_PADDING)
        grid.paste(image.convert("RGB"), (x0 + (cell_w - image.width) // 2, y0 + image_h - image.height))
        for line_index, line in enumerate(label):
            x = x0 + (cell_w - text_size(line)[0]) // 2
            draw.text((x, y0 + image_h + LABEL_LINE_GAP + line_index * line_height), line, fill=LABEL_COLOUR, font=font)
    return grid


# --- measurements (tensor math; pure apart from the random subsample) -------------------------


def _sample_positions(features: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random columns of a (C, M) matrix, without replacement."""
    index = torch.randperm(features.shape[-1], generator=generator)[:count].to(features.device)
    return features[:, index]  # (C, count)


def identity_ratios(x: Tensor, y: Tensor, *, max_positions: int = IDENTITY_MAX_POSITIONS,
                    generator: torch.Generator | None = None) -> dict:
    """Gram ≡ poly-MMD on one layer's features x: (1, C, H, W) and y: (1, C, H', W').

    ``ratio_library``: ``gram_loss`` / (``mmd_poly``(d=2, c=0) / (4C²)) on all positions, in the
    features' own precision (what the stylizer computes).
    ``ratio_kernel``: Gatys' 1/(4C²m²)·Σ(G − A)² with unnormalised Grams against the
    quadratic-time kernel MMD² (V-statistic, k = (xᵀy)²), both on the same m = min(M, M',
    max_positions) random positions per image; independent computations of the two sides.
    """
    generator = generator or torch.Generator().manual_seed(0)
    x, y = LF.flatten(x), LF.flatten(y)  # (1, C, M), (1, C, M')
    channels = x.shape[1]
    scale = 4 * channels**2

    def ratio(numerator: Tensor, denominator: Tensor) -> float | None:
        return float(numerator / denominator) if float(denominator) > 0 else None

    library = ratio(LF.gram_loss(x, y)[0], LF.mmd_poly(x, y, degree=2, c=0.0)[0] / scale)
    x, y = x.double(), y.double()  # the kernel estimator cancels large terms: float64
    m = min(x.shape[-1], y.shape[-1], max_positions)
    xs, ys = _sample_positions(x[0], m, generator), _sample_positions(y[0], m, generator)  # (C, m)
    gram_x, gram_y = xs @ xs.T, ys @ ys.T  # (C, C), unnormalised
    gatys = (gram_x - gram_y).pow(2).sum() / (scale * m**2)
    kernel_mmd = LF.mmd_exact(xs[None], ys[None], lambda a, b: (a @ b) ** 2)[0]
    return {"channels": channels, "positions": m, "ratio_library": library,
            "ratio_kernel": ratio(gatys, kernel_mmd / scale)}


def gram_poly_identity(content_features: Mapping[str, Tensor], style_features: Mapping[str, Tensor], *,
                       max_positions: int = IDENTITY_MAX_POSITIONS, seed: int = 0) -> dict:
    """``identity_ratios`` for every layer of ``content_features``, summarised across layers."""
    generator = torch.Generator().manual_seed(seed)
    layers = {layer: identity_ratios(content_features[layer], style_features[layer],
                                     max_positions=max_positions, generator=generator)
              for layer in content_features}
    return {**identity_summary(layers), "max_positions": max_positions}


class StyleMeter:
    """Every registered style loss fixed on the style image, built as the stylizer builds it.

    For each loss a fresh generator seeded with ``config.seed`` builds the per-layer modules in
    layer order, exactly as a single-loss ``stylize`` run does, so a formulation with random
    parameters (``mmd-rbf``) is measured with the random features it was optimised under.
    """

    def __init__(self, encoder: VGGEncoder, content: Tensor, style: Tensor, config: StylizeConfig,
                 losses: Sequence[str]) -> None:
        self.encoder, self.config = encoder, config
        self.layers = tuple(config.style_layers)
        with torch.no_grad():
            style_features = encoder(style, self.layers)
            self.style_features = {k: v.detach().clone() for k, v in style_features.items()}
            self.modules = {}
            for loss in losses:  # each as a single-loss stylize run builds it: a fresh generator of the seed
                self.modules[loss] = layer_losses(loss, self.style_features, self.layers,
                                                  torch.Generator().manual_seed(config.seed),
                                                  **config.loss_options.get(loss, {}))
            content_features = encoder(content, config.content_layers)
            self.content_targets = {k: v.detach().clone() for k, v in content_features.items()}

    @torch.no_grad()
    def features(self, image: Tensor) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.encoder(image, (*self.layers, *self.config.content_layers)).items()}

    def style_distances(self, image: Tensor) -> dict[str, dict[str, float]]:
        """Raw loss values ``{loss: {layer: value}}`` of a (1, 3, H, W) image against the style."""
        return self._per_layer(image, lambda module, features: module(features))

    def style_references(self, image: Tensor) -> dict[str, dict[str, float]]:
        """The stylizer's normalising denominators ``{loss: {layer: value}}`` for a (1, 3, H, W) image
        (``StyleLoss.denominator``: the loss itself, or a non-negative fixed estimate of it)."""
        return self._per_layer(image, lambda module, features: module.denominator(features))

    @torch.no_grad()
    def _per_layer(self, image: Tensor, measure) -> dict[str, dict[str, float]]:
        features = self.features(image)
        return {loss: {layer: float(measure(module, features[layer]).sum()) for layer, module in modules.items()}
                for loss, modules in self.modules.items()}

    @torch.no_grad()
    def content_loss(self, image: Tensor) -> float:
        """The stylizer's normalised content term: mean over layers of ½‖F − P‖² / ½‖P‖²."""
        features = self.features(image)
        terms = [float(LF.content_loss(features[l], p).sum())
                 / max(float(LF.content_loss(p, torch.zeros_like(p)).sum()), MIN_REFERENCE)
                 for l, p in self.content_targets.items()]
        return sum(terms) / len(terms)


# --- running the comparison ------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def planned_files(out_dir: Path, methods: Sequence[str]) -> list[Path]:
    return [*(out_dir / f"{m}.png" for m in methods), out_dir / GRID_NAME, out_dir / REPORT_JSON, out_dir / REPORT_MD]


def _check_outputs(out_dir: Path, methods: Sequence[str], inputs: Sequence, overwrite: bool) -> list[Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {str(out_dir)!r} is a file; compare writes a folder: give a folder name")
    files = planned_files(out_dir, methods)
    for path in files:
        if path.suffix == ".png":
            check_output_path(path, inputs)
        elif any(same_path(path, p) for p in inputs):
            raise UsageError(f"{str(path)!r} would overwrite an input; choose another -o folder")
    existing = [p.name for p in files if p.exists()]
    if existing and not overwrite:
        raise UsageError(f"{str(out_dir)!r} already holds {', '.join(existing[:4])}"
                         f"{' ...' if len(existing) > 4 else ''}: choose another -o folder or pass --overwrite")
    return files


def _load_adain(decoder_path, encoder: VGGEncoder) -> tuple[object, dict, list[str]]:
    from .adain import ADAIN_LAYER, AdaINModel, load_decoder

    if ADAIN_LAYER not in encoder.layer_names:
        raise UsageError(f"AdaIN needs the encoder up to {ADAIN_LAYER}, but {encoder.spec.source!r} ends at "
                         f"{encoder.spec.last_layer}: pass fuller encoder weights or --skip adain")
    decoder, decoder_config = load_decoder(decoder_path)
    notes = []
    warning = encoder.spec.decoder_mismatch(decoder_config)  # the same check as stylize --method adain
    if warning:
        warnings.warn(warning, stacklevel=3)
        notes.append(warning)
    info = {"path": str(decoder_path), "norm": decoder.norm, "config": decoder_config}
    return AdaINModel(encoder, decoder).eval(), info, notes


def compare_files(content: str | os.PathLike, style: str | os.PathLike, out_dir: str | os.PathLike,
                  config: CompareConfig, *, weights: str | VGGEncoder = "imagenet", pooling: str | None = None,
                  decoder: str | os.PathLike | None = None, device: str | torch.device = "auto",
                  overwrite: bool = False, progress: bool = False, command: str | None = None,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Stylise ``content`` with ``style`` under every method of ``config``; write images, grid and reports.

    Validation (methods, output folder, images, weights, decoder) happens before any
    stylisation. Returns the report (the content of ``report.json``).
    """
    from .provenance import encoder_info, environment_info
    from .weights import load_encoder

    config = config.validate()
    base = config.stylize
    if ADAIN_METHOD in config.methods and decoder is None:
        raise UsageError("method adain needs an AdaIN decoder: pass --decoder PATH")
    out_dir = Path(out_dir)
    inputs = [content, style, *([decoder] if decoder is not None else [])]
    _check_outputs(out_dir, config.methods, inputs, overwrite)
    torch_device = resolve_device(device)
    content_image = load_image(content, max_pixels=max_pixels)
    style_image = load_image(style, max_pixels=max_pixels)
    smallest = min(base.scales)
    check_resizable(content_image, str(content), smallest)
    check_resizable(style_image, str(style), max(16, round(smallest * base.style_scale)))
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    encoder = encoder.to(torch_device).eval()
    base = base.for_encoder(encoder)  # the encoder's default layers, when none were given
    config = replace(config, stylize=base)
    adain, decoder_info, notes = None, None, []
    if ADAIN_METHOD in config.methods:
        from .feedforward import AdaINConfig, AdaINStylizer

        model, decoder_info, notes = _load_adain(decoder, encoder)
        # stylize --method adain's own path, on the working images as they are
        adain = AdaINStylizer(model, AdaINConfig(content_size=0, style_size=0, tile_size=0), device=torch_device)
    magenta = None
    if MAGENTA_METHOD in config.methods:
        from .magenta.stylizer import MagentaConfig, load_stylizer

        magenta = load_stylizer(MagentaConfig(content_size=0), device=torch_device)  # at the working size

    # The stylizer's working images at its last scale: the outputs have the content's size there.
    size = base.scales[-1]
    content_s = resize_edge(content_image, size).unsqueeze(0).to(torch_device)  # (1, 3, H, W)
    style_s = resize_edge(style_image, max(16, round(size * base.style_scale))).unsqueeze(0).to(torch_device)
    meter = StyleMeter(encoder, content_s, style_s, base, STYLE_LOSSES.names())
    reference = meter.style_references(content_s)
    content_features = meter.features(content_s)
    identity = gram_poly_identity({l: content_features[l] for l in base.style_layers}, meter.style_features,
                                  max_positions=config.identity_positions, seed=base.seed)

    # Untimed warm-up (one step of the first loss, one pass of each feed-forward method): one-off start-up costs are not
    # charged to whichever method happens to run first.
    first_loss = next((m for m in config.methods if m not in FEEDFORWARD_METHODS), None)
    if first_loss is not None:
        stylize(content_image, style_image, encoder, replace(config.method_config(first_loss), steps=1),
                device=torch_device)
    if adain is not None:
        adain.stylize(content_s[0], [style_s[0]])
    if magenta is not None:
        magenta.stylize(content_s[0], [style_s[0]])
    weights_info = encoder_info(encoder)
    per_layer, runs, outputs = {}, {}, {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(config.methods), desc="compare", unit="method")
    for method in config.methods:
        if bar is not None:
            bar.set_postfix(method=method, refresh=True)
        with PeakMemory(torch_device) as memory:
            start = time.perf_counter()
            if method == ADAIN_METHOD:
                image, steps = adain.stylize(content_s[0], [style_s[0]]), None  # (3, H, W)
                metadata = {"method": "adain", "decoder": decoder_info, "weights": weights_info}
            elif method == MAGENTA_METHOD:
                image, steps = magenta.stylize(content_s[0], [style_s[0]]), None  # (3, H, W)
                metadata = {"method": "magenta", "config": magenta.config.to_dict()}
            else:
                method_config = config.method_config(method)
                result = stylize(content_image, style_image, encoder, method_config, device=torch_device,
                                 progress=progress)
                image, steps = result.image, len(result.history)  # (3, H, W)
                metadata = {"method": "optimize", "config": method_config.to_dict(), "weights": weights_info}
            _synchronize(torch_device)
            seconds = time.perf_counter() - start
        # measured on the float output the method produced, before 8-bit quantisation in the PNG
        save_image_path = save_image(image, out_dir / f"{method}.png", metadata=metadata, inputs=inputs)
        batch = image.unsqueeze(0).to(torch_device)  # (1, 3, H, W)
        per_layer[method] = meter.style_distances(batch)
        outputs[method] = image
        runs[method] = {"seconds": seconds, "steps": steps, "content_loss": meter.content_loss(batch),
                        "memory": memory.usage.to_dict(), "image": save_image_path.name}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    matrix = cross_loss_matrix(per_layer, reference, layer_weight_map(base))
    height, width = content_s.shape[-2:]
    environment = {**environment_info(torch_device), "cpu_threads": torch.get_num_threads()}
    command = command or environment["command"]
    environment["command"] = command
    report = build_report(command=command, content=str(content), style=str(style), size=(width, height),
                          config=config, encoder=weights_info, decoder=decoder_info, environment=environment,
                          matrix=matrix, runs=runs, identity=identity, notes=notes)
    tiles = [(["content"], to_pil(content_s)), (["style"], to_pil(style_s))]
    tiles += [([method, f"{runs[method]['seconds']:.1f} s"], to_pil(outputs[method])) for method in config.methods]
    grid = build_grid(tiles)
    atomic_write(out_dir / GRID_NAME, lambda stream: grid.save(stream, format="PNG", optimize=True))
    atomic_write_json(out_dir / REPORT_JSON, report)
    atomic_write_text(out_dir / REPORT_MD, render_markdown(report))
    return report
