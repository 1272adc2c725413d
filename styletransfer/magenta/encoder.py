"""The style predictor as a feature extractor for every style loss (``--weights magenta``).

It takes RGB in [0, 1] like the VGG encoders, so it drops into the optimisation stylizer,
compare and the ablations unchanged. It is a MobileNetV2 trained (by distillation into a style
embedding) to describe *style*, not an ImageNet VGG19: its features are real, but different.
"""

from __future__ import annotations

from typing import Iterable

from torch import Tensor, nn

from ..encoder import EncoderSpec, check_layers
from .networks import StylePredictor, predictor_layer_names

# Chosen by measurement (docs/MAGENTA.md, scripts/magenta_layers.py): ReLU6 expand activations
# at strides 2, 4, 8 and 16 for style; for content the one at stride 8, which kept the edges best.
STYLE_LAYERS = ("block1_expand", "block3_expand", "block6_expand", "block13_expand")
CONTENT_LAYERS = ("block6_expand",)
SOURCES = {"magenta": False, "magenta:antialias": True}  # --weights value → anti-aliased strided convs


class MagentaEncoder(nn.Module):
    """Named features of Magenta's style predictor. ``forward(image, layers)`` → ``{name: tensor}``."""

    default_style_layers = STYLE_LAYERS
    default_content_layers = CONTENT_LAYERS
    # The perceptual loss of feed-forward training (``ablate norm``): VGG's relu2_2 and
    # relu1_1…relu4_1 at the same strides.
    perceptual_content_layer = "block1_expand"
    perceptual_style_layers = ("block1_expand", "block3_expand", "block6_expand", "block13_expand")

    def __init__(self, predictor: StylePredictor, spec: EncoderSpec) -> None:
        super().__init__()
        self.predictor = predictor
        self.spec = spec
        self.layer_names: tuple[str, ...] = predictor_layer_names()
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, image: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        wanted = set(check_layers(layers, self.layer_names))
        return self.predictor.features(image, wanted) if wanted else {}


def load_magenta_encoder(*, antialias: bool = False) -> MagentaEncoder:
    from .weights import load_predictor

    predictor, config = load_predictor()
    predictor.set_antialias(antialias)
    spec = EncoderSpec(preprocessing="none", padding="tf-same", pooling="none", last_layer="head",
                       source="magenta:antialias" if antialias else "magenta", sha256=config["source_sha256"],
                       metadata={"layout": "magenta", "package": config["package"], "file": config["file"]})
    return MagentaEncoder(predictor, spec).eval()
