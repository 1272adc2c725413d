"""An independent judge of style for the comparison: Magenta's style-embedding distance.

Magenta's style-prediction network (Ghiasi et al. 2017) maps a painting to a 100-d embedding that
conditions its transformer; it was trained on its own data and objective, and no style loss here
optimises it. The judge scores an image by ‖e(image) − e(style)‖² / ‖e(content) − e(style)‖²:
1 for the content image, below 1 for an image whose embedding is closer to the style's.

With ``--weights magenta`` the losses are computed on the same MobileNetV2 layers the predictor
starts from, so the judge is then less independent; the report says so.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from ..magenta.stylizer import STYLE_SIZE, MagentaConfig, MagentaStylizer, load_stylizer

NAME = "judge"
DESCRIPTION = "Magenta style-embedding distance ‖e(x) − e(s)‖² / ‖e(c) − e(s)‖² (Ghiasi et al. 2017's predictor)"
SHARED_NETWORK_NOTE = ("the judge (Magenta's style embedding) shares its first layers with the magenta encoder the "
                       "losses used, so it is not fully independent of them here")


class EmbeddingJudge:
    """Scores (3, H, W) images in [0, 1] against one style, relative to one content."""

    def __init__(self, content: Tensor, style: Tensor, *, device: torch.device | str = "cpu",
                 stylizers: Iterable = ()) -> None:
        """``stylizers``: a run's stylizers; a Magenta one that embeds as the predictor was trained is
        reused (the networks are loaded once), else the judge loads its own."""
        suitable = [s for s in stylizers if isinstance(s, MagentaStylizer)
                    and s.config.style_size == STYLE_SIZE and not s.config.crop]
        self.stylizer = suitable[0] if suitable else load_stylizer(MagentaConfig(), device=device)
        # its represent_style: the image resized to 256 px, as the predictor was trained
        self.style = self.embedding(style)  # (100,)
        self.reference = float((self.embedding(content) - self.style).pow(2).sum())

    def embedding(self, image: Tensor) -> Tensor:
        return self.stylizer.represent_style(image.detach().cpu())  # (100,)

    def __call__(self, image: Tensor) -> float:
        distance = float((self.embedding(image) - self.style).pow(2).sum())
        return distance / self.reference if self.reference > 0 else float("nan")
