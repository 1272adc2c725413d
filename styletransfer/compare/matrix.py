"""The cross-loss matrix: every output measured under every registered loss.

    raw[m][L]        = Σ_l λ_l · L(x_l, s_l)                x = output of method m
    normalized[m][L] = Σ_l λ_l · L(x_l, s_l) / L(c_l, s_l)   c = the content image

``StyleMeter`` measures (tensors in, floats out); ``cross_loss_matrix`` and ``diagonal`` are
pure (numbers in, dict out).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..encoder import Encoder
from ..losses import functional as loss_functions
from ..losses import layer_losses
from ..optimize import MIN_REFERENCE, StylizeConfig

REFERENCE_ROW = "content"  # the content image itself, the reference row of the raw matrix


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


MEASUREMENT_SEED_OFFSET = 7919  # the meter's random parameters: independent of the optimisation's draws


class StyleMeter:
    """Every registered style loss fixed on the style image, with the loss options of the run.

    A loss with random parameters (``randomized``: mmd-rbf's random features, sliced-Wasserstein's
    directions) is measured with draws independent of those any stylisation used (a generator
    seeded ``config.seed + MEASUREMENT_SEED_OFFSET``), and through ``StyleLoss.denominator``, its
    fixed and non-negative estimate, so that no row is measured with the draws it was optimised
    under. Deterministic losses are measured exactly as the stylizer computes them.
    """

    def __init__(self, encoder: Encoder, content: Tensor, style: Tensor, config: StylizeConfig,
                 losses: Sequence[str]) -> None:
        self.encoder, self.config = encoder, config
        self.layers = tuple(config.style_layers)
        with torch.no_grad():
            style_features = encoder(style, self.layers)
            self.style_features = {k: v.detach().clone() for k, v in style_features.items()}
            self.modules = {}
            for loss in losses:
                generator = torch.Generator().manual_seed(config.seed + MEASUREMENT_SEED_OFFSET)
                self.modules[loss] = layer_losses(loss, self.style_features, self.layers, generator,
                                                  **config.loss_options.get(loss, {}))
            content_features = encoder(content, config.content_layers)
            self.content_targets = {k: v.detach().clone() for k, v in content_features.items()}

    @torch.no_grad()
    def features(self, image: Tensor) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.encoder(image, (*self.layers, *self.config.content_layers)).items()}

    def style_distances(self, image: Tensor) -> dict[str, dict[str, float]]:
        """Raw loss values ``{loss: {layer: value}}`` of a (1, 3, H, W) image against the style, each
        through ``StyleLoss.denominator`` (the loss itself, or for a random loss a fixed non-negative
        estimate): on the content image these are the normalising denominators."""
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
        terms = [float(loss_functions.content_loss(features[l], p).sum())
                 / max(float(loss_functions.content_loss(p, torch.zeros_like(p)).sum()), MIN_REFERENCE)
                 for l, p in self.content_targets.items()]
        return sum(terms) / len(terms)
