"""Style losses (a registry of interchangeable formulations) and their pure functions."""

from . import functional
from .style import STYLE_LOSSES, StyleLoss, build_style_loss, layer_losses

__all__ = ["STYLE_LOSSES", "StyleLoss", "build_style_loss", "layer_losses", "functional"]
