"""Training checkpoints and the training log, written so that a kill at any moment loses nothing.

A checkpoint at iteration k is a pair of files in the checkpoint folder:

    decoder_0000000k.safetensors  the decoder (``adain.load_decoder`` reads it; config in its header)
    state_0000000k.pt             a ``torch.save`` dict that ``torch.load(weights_only=True)`` reads:
                                  format, iteration, config, optimizer state, RNG and sampler state,
                                  recent losses, and the sha256 of the decoder file beside it

Each file goes through a temporary file and a rename (``files.atomic_write``); the decoder is
written first and the state last, so a state file marks a complete checkpoint. A kill leaves the
earlier checkpoints intact and at worst an orphan decoder file or a ``.*.tmp`` file, which are
ignored (and the orphan is overwritten by the next save at that iteration).

The log (``log.jsonl``) has one JSON line per logged iteration. A run that starts at iteration k
first rewrites it atomically to the lines with ``iteration <= k`` (dropping what a killed run
logged after its last checkpoint, and any torn last line), then appends.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .adain import Decoder, load_decoder, save_decoder
from .errors import TrainingError, UsageError
from .files import atomic_write, atomic_write_text, sha256_file

STATE_FORMAT = "styletransfer-adain-training-state"
STATE_VERSION = 1
LOG_NAME = "log.jsonl"
PREVIEW_FOLDER = "previews"
ITERATION_DIGITS = 8
_STATE_NAME = re.compile(r"^state_(\d+)\.pt$")
_DECODER_NAME = re.compile(r"^decoder_(\d+)\.safetensors$")


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    iteration: int

    @property
    def state_path(self) -> Path:
        return self.folder / f"state_{self.iteration:0{ITERATION_DIGITS}d}.pt"

    @property
    def decoder_path(self) -> Path:
        return self.folder / f"decoder_{self.iteration:0{ITERATION_DIGITS}d}.safetensors"


def list_checkpoints(folder: str | os.PathLike) -> list[Checkpoint]:
    """Complete checkpoints (state and decoder file present) in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _STATE_NAME.match(path.name)
        if match:
            checkpoint = Checkpoint(folder, int(match.group(1)))
            if checkpoint.decoder_path.is_file():
                found.append(checkpoint)
    return sorted(found, key=lambda c: c.iteration)


def save_checkpoint(folder: str | os.PathLike, iteration: int, decoder: Decoder, *, decoder_config: dict,
                    state: dict) -> Checkpoint:
    """Write the decoder, then the state file that names the decoder's sha256."""
    checkpoint = Checkpoint(Path(folder), iteration)
    save_decoder(decoder, checkpoint.decoder_path, decoder_config)
    full_state = {**state, "format": STATE_FORMAT, "version": STATE_VERSION, "iteration": iteration,
                  "decoder_sha256": sha256_file(checkpoint.decoder_path)}
    atomic_write(checkpoint.state_path, lambda stream: torch.save(full_state, stream))
    return checkpoint


def read_state(checkpoint: Checkpoint) -> dict:
    """The state dict of a checkpoint, checked against its decoder file."""
    path = checkpoint.state_path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, foreign or unsafe pickles all mean: not our checkpoint
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise TrainingError(f"cannot read training state {str(path)!r} ({reason}): the file is damaged; "
                            "resume from the checkpoint folder to use the newest intact one") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingError(f"{str(path)!r} is not a training state written by `styletransfer train`")
    if state.get("iteration") != checkpoint.iteration:
        raise TrainingError(f"{str(path)!r} holds iteration {state.get('iteration')}, not "
                            f"{checkpoint.iteration} as its name says: the checkpoint folder was edited")
    if not checkpoint.decoder_path.is_file() or sha256_file(checkpoint.decoder_path) != state.get("decoder_sha256"):
        raise TrainingError(f"{str(checkpoint.decoder_path)!r} is missing or does not belong to {path.name} "
                            "(sha256 differs): resume from the checkpoint folder to use an intact checkpoint")
    return state


def load_checkpoint(checkpoint: Checkpoint) -> tuple[Decoder, dict]:
    """The decoder (in training mode) and state dict of a checkpoint."""
    state = read_state(checkpoint)
    decoder, _ = load_decoder(checkpoint.decoder_path)
    return decoder.train(), state


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Checkpoint, dict]:
    """A checkpoint from a state file, its decoder file, or a folder (its newest intact checkpoint)."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = list_checkpoints(path)
        if not candidates:
            raise UsageError(f"--resume {str(path)!r}: the folder holds no checkpoint (state_*.pt with "
                                "its decoder_*.safetensors); pass a checkpoint folder written by a run")
        for checkpoint in reversed(candidates):
            try:
                return checkpoint, read_state(checkpoint)
            except TrainingError as error:
                warnings.warn(f"skipping checkpoint {checkpoint.iteration}: {error}", stacklevel=2)
        raise TrainingError(f"--resume {str(path)!r}: none of its {len(candidates)} checkpoints is intact")
    for pattern in (_STATE_NAME, _DECODER_NAME):
        match = pattern.match(path.name)
        if match:
            checkpoint = Checkpoint(path.parent, int(match.group(1)))
            if not checkpoint.state_path.is_file():
                raise UsageError(f"--resume {str(path)!r}: {checkpoint.state_path.name} is missing beside it; "
                                    "pass the checkpoint folder to use its newest intact checkpoint")
            return checkpoint, read_state(checkpoint)
    if not path.exists():
        raise UsageError(f"--resume {str(path)!r} does not exist: pass a checkpoint folder or a state_*.pt file")
    raise UsageError(f"--resume {str(path)!r} is not a checkpoint: pass the checkpoint folder "
                        "(e.g. weights/NAME.ckpt) or a state_*.pt file inside it")


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> list[Checkpoint]:
    """Delete all but the newest ``keep`` checkpoints, and orphan decoder files older than them."""
    folder = Path(folder)
    complete = list_checkpoints(folder)
    old = complete[:-keep] if keep > 0 else []
    for checkpoint in old:
        checkpoint.state_path.unlink(missing_ok=True)  # the state first: the pair stops counting
        checkpoint.decoder_path.unlink(missing_ok=True)
    if complete:
        for path in folder.iterdir():
            match = _DECODER_NAME.match(path.name)
            if match and int(match.group(1)) < complete[-1].iteration and not Checkpoint(
                    folder, int(match.group(1))).state_path.exists():
                path.unlink(missing_ok=True)  # left by a run killed between its two writes
    return old


def read_log(path: str | os.PathLike, up_to: int | None = None) -> list[dict]:
    """The records of a JSONL log (torn or foreign lines skipped), up to an iteration if given."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), int):
            if up_to is None or record["iteration"] <= up_to:
                records.append(record)
    return records


def truncate_log(path: str | os.PathLike, iteration: int) -> int:
    """Rewrite the log to its records up to ``iteration``; returns how many were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    total = len(read_log(path))
    kept = read_log(path, up_to=iteration)
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))
    return total - len(kept)


def append_log(path: str | os.PathLike, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")
        stream.flush()
