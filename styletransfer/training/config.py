"""The settings of an AdaIN decoder training run: defaults (pytorch-AdaIN's), checks, storage.

A ``TrainConfig`` is stored whole in every checkpoint and in the final decoder's metadata, so a
run can be resumed, or inspected, from its files alone.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..checkpoint import resolve_checkpoint
from ..errors import UsageError
from ..norms import NORMS
from ..precision import DEFAULT_PRECISION, validate_precision
from ..weights import DEFAULT_ENCODER

DEFAULT_LR = 1e-4
DEFAULT_LR_DECAY = 5e-5
DEFAULT_BATCH_SIZE = 8
DEFAULT_IMAGE_SIZE = 512
DEFAULT_CROP_SIZE = 256
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 10.0
DEFAULT_MAX_ITER = 160_000
DEFAULT_SAVE_EVERY = 10_000
DEFAULT_KEEP = 3
DEFAULT_LOG_EVERY = 10
DEFAULT_PREVIEW_EVERY = 1_000
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
DECODER_SUFFIX = ".safetensors"
CHECKPOINT_SUFFIX = ".ckpt"  # default checkpoint folder: <out without suffix>.ckpt beside --out
CROP_MULTIPLE = 8  # relu4_1 is 1/8 of the input; the decoder upsamples it 8 times
MIN_CROP = 16
# What the decoder learns: "adain" (pytorch-AdaIN's content + style losses through AdaIN) or
# "reconstruction" (invert the encoder: pixel + content losses, no style; Li et al. 2017).
OBJECTIVES = ("adain", "reconstruction")
# How the style loss weighs its layers: "none" (pytorch-AdaIN: all 1) or "rms" (each layer brought
# to relu4_1's scale by the mean squared activation of the first style images; adain.losses).
STYLE_BALANCES = ("none", "rms")
STYLE_BALANCE_IMAGES = 8
# Settings that define what a run computes; a resumed run must keep them. The encoder is checked
# by its sha256 (or source), the data folders by the fingerprint of their file lists.
RUN_FIELDS = ("norm", "lr", "lr_decay", "batch_size", "image_size", "crop_size", "content_weight",
              "style_weight", "seed", "objective", "pixel_weight", "init", "style_balance")


@dataclass
class TrainConfig:
    """Every setting of a training run; stored whole in checkpoints and in the decoder's metadata."""

    content_dir: str = ""
    style_dir: str = ""
    out: str | None = None  # the final decoder (.safetensors); None: write no final file
    checkpoint_dir: str | None = None  # default: <out>.ckpt beside out; None without out: no checkpoints
    weights: str = DEFAULT_ENCODER  # encoder: vgg19 (default), imagenet, random[:SEED], or a file
    norm: str = "none"  # normalization inside the decoder (norms.NORMS)
    lr: float = DEFAULT_LR
    lr_decay: float = DEFAULT_LR_DECAY
    batch_size: int = DEFAULT_BATCH_SIZE  # images per step, over all processes together
    image_size: int = DEFAULT_IMAGE_SIZE  # every image is resized to image_size², then cropped
    crop_size: int = DEFAULT_CROP_SIZE
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float = DEFAULT_STYLE_WEIGHT
    objective: str = "adain"  # OBJECTIVES
    pixel_weight: float = 0.0  # reconstruction: MSE(g, c); adain: the identity loss MSE(decoder(relu4_1(c)), c)
    style_balance: str = "none"  # STYLE_BALANCES
    init: str | None = None  # a decoder file to start from (fine-tuning) instead of a random decoder
    seed: int = 0
    manifest: str | None = None  # the data's manifest file; its sha256 goes into the decoder's header
    max_iter: int = DEFAULT_MAX_ITER  # total iterations of the run (a resumed run counts on)
    save_every: int = DEFAULT_SAVE_EVERY
    keep: int = DEFAULT_KEEP  # newest checkpoints kept
    log_every: int = DEFAULT_LOG_EVERY
    preview_every: int = DEFAULT_PREVIEW_EVERY  # 0: no previews
    device: str = "auto"
    workers: int = DEFAULT_WORKERS  # data loader processes (0: load in the training process)
    precision: str = DEFAULT_PRECISION  # fp32, bf16, or auto (bf16 where the device computes it natively)

    def validate(self) -> "TrainConfig":
        NORMS.get(self.norm)
        validate_precision(self.precision)
        for name in ("batch_size", "max_iter", "save_every", "keep", "log_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{flag(name)} must be ≥ 1, got {getattr(self, name)}")
        for name in ("preview_every", "workers", "seed"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{flag(name)} must be ≥ 0, got {getattr(self, name)}")
        if self.objective not in OBJECTIVES:
            raise UsageError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.style_balance not in STYLE_BALANCES:
            raise UsageError(f"--style-balance must be one of {', '.join(STYLE_BALANCES)}, got {self.style_balance!r}")
        for name in ("lr", "lr_decay", "content_weight", "style_weight", "pixel_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise UsageError(f"--{flag(name)} must be a finite number {'>' if name == 'lr' else '≥'} 0, got {value}")
        if self.objective == "reconstruction" and not (self.pixel_weight or self.content_weight):
            raise UsageError("--objective reconstruction needs --pixel-weight or --content-weight above 0")
        if self.init is not None and not Path(self.init).expanduser().is_file():
            raise UsageError(f"--init {self.init!r} is not a file: give a decoder (.safetensors or decoder.pth)")
        if self.manifest is not None and not Path(self.manifest).expanduser().is_file():
            raise UsageError(f"--manifest {self.manifest!r} is not a file (e.g. the manifest.csv of scripts/fetch_data.py)")
        if self.crop_size < MIN_CROP or self.crop_size % CROP_MULTIPLE:
            raise UsageError(f"--crop-size must be a multiple of {CROP_MULTIPLE} and ≥ {MIN_CROP}, got {self.crop_size} "
                             "(the decoder output is 8 times relu4_1's size)")
        if self.image_size < self.crop_size:
            raise UsageError(f"--image-size {self.image_size} is smaller than --crop-size {self.crop_size}")
        if self.out is not None and Path(self.out).suffix != DECODER_SUFFIX:
            raise UsageError(f"--out {self.out!r}: the decoder is written as safetensors; name it *{DECODER_SUFFIX}")
        return self

    def checkpoint_folder(self) -> Path | None:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir).expanduser()
        if self.out:
            out = Path(self.out).expanduser()
            return out.with_name(out.stem + CHECKPOINT_SUFFIX)
        return None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` → ``batch-size``."""
    return name.replace("_", "-")


def load_run_config(checkpoint: str | Path) -> TrainConfig:
    """The configuration stored in a checkpoint (file or folder), e.g. to resume it with changes."""
    _, state = resolve_checkpoint(checkpoint)
    return TrainConfig.from_dict(state["config"])
