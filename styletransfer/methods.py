"""The stylisation methods ``stylize --method`` offers, each with what it needs.

``optimize`` runs any registered style loss (or a weighted fusion) by iterative optimisation;
the others are feed-forward: one pass through trained networks. ``compare`` runs every style
loss plus each feed-forward method it can; the CLI's ``--method`` choice and the ownership of
method-specific flags both come from here and from the options' declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import Registry


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line, for --help
    feedforward: bool  # one pass through trained networks, no per-image optimisation
    needs_decoder: bool = False  # runs only with a trained decoder (--decoder)


METHODS: Registry[Method] = Registry("method")
for _method in (
    Method("optimize", "iterative optimisation of the image (Gatys et al.) under --loss", feedforward=False),
    Method("adain", "one pass through an AdaIN decoder (Huang & Belongie)", feedforward=True, needs_decoder=True),
    Method("wct", "whitening and colouring of relu4_1 (the style's mean and covariance), then an AdaIN decoder "
           "(Li et al.)", feedforward=True, needs_decoder=True),
    Method("magenta", "one pass through Magenta's style predictor and transformer (Ghiasi et al.)",
           feedforward=True),
):
    METHODS.register(_method.name)(_method)
del _method


def feedforward_methods() -> list[str]:
    return [name for name, method in METHODS.items() if method.feedforward]
