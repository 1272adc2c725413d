"""What produced a result — the encoder's weights, the device and versions, the command — as
plain dicts for reports, image metadata and checkpoints. Library modules (training, compare, the
ablations) and the file-level front end (``api``) all describe their runs through these."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
from torch import nn


def encoder_info(encoder: nn.Module) -> dict:
    spec = encoder.spec
    return {"source": spec.source, "sha256": spec.sha256, "layout": spec.metadata.get("layout", "random"),
            "pooling": spec.pooling, "padding": spec.padding, "last_layer": spec.last_layer}


def environment_info(device: torch.device) -> dict:
    return {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
