"""The training loop: AdaIN decoder training as pytorch-AdaIN's train.py does it, made resumable
and crash-safe.

    total = content_weight · content + style_weight · style     (the losses: ``adain.losses``)

Adam updates the decoder only
(the encoder is frozen) with lr_i = lr / (1 + lr_decay · i) at step i = 0, 1, …; the defaults
are pytorch-AdaIN's. Iteration k (1-based) is the k-th step; its logged losses are those of the
batch it trained on, computed before its update, and a checkpoint at k holds the decoder after it.

A run resumed from a checkpoint repeats the uninterrupted run step for step (exactly, on the
CPU): the checkpoint holds the decoder, Adam's state and the data position, and the data of each
step is a pure function of the seed and the step (see ``data``). With WORLD_SIZE > 1 (torchrun)
the decoder is wrapped in DistributedDataParallel and each process trains on its slice of every
batch; process 0 alone writes checkpoints, the log and previews.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from ..adain.decoder import Decoder, load_decoder, save_decoder
from ..adain.losses import adain_losses, reconstruction_losses, style_balance
from ..checkpoint import (
    LOG_NAME,
    PREVIEW_FOLDER,
    Checkpoint,
    append_log,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    truncate_log,
)
from ..data import (
    CONTENT_STREAM,
    STYLE_STREAM,
    ImageFolder,
    InfiniteSampler,
    PairDataset,
    PairSampler,
    derive_seed,
    make_loader,
    running_loader,
)
from ..devices import resolve_device
from ..distributed import Distributed
from ..encoder import VGGEncoder
from ..errors import StyleTransferError, TrainingError, UsageError
from ..precision import check_precision
from .config import RUN_FIELDS, STYLE_BALANCE_IMAGES, TrainConfig, flag
from .signals import StopSignals

FINAL_LOSS_WINDOW = 100  # the decoder file's final losses: mean over the last 100 iterations
PREVIEW_COLUMNS = 4
PREVIEW_PADDING = 2
RATE_SMOOTHING = 0.9  # exponential smoothing of the images/s shown on the progress bar
LOSS_NAMES = ("content", "style", "pixel", "total")


def learning_rate(lr: float, decay: float, step: int) -> float:
    """pytorch-AdaIN's inverse decay: the rate used for step ``step`` (0-based)."""
    return lr / (1.0 + decay * step)


@dataclass
class TrainResult:
    decoder: Decoder  # this process's decoder after the last step, on the training device
    history: list[dict]  # one record per step run by this call: iteration, content, style, total, lr
    start_iteration: int  # 0, or the iteration of the checkpoint resumed from
    iteration: int  # iterations done when the call returned
    config: TrainConfig
    checkpoint: Path | None = None  # the newest checkpoint's state file
    out: Path | None = None  # the final decoder file, when the run finished
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run
    skipped_files: list[str] = field(default_factory=list)  # unreadable data files met
    rank: int = 0
    world_size: int = 1
    seconds: float = 0.0  # training time of the whole run, resumed parts included

    @property
    def exit_code(self) -> int:
        """0 when finished; 128 + signal number when stopped by a signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + int(getattr(signal, self.interrupted)) if self.interrupted else 0


class Throughput:
    """Images per second: smoothed for the progress bar, and averaged since the last log line."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size, self.rate = batch_size, 0.0
        self._images, self._seconds = 0, 0.0

    def add(self, seconds: float) -> None:
        current = self.batch_size / max(seconds, 1e-9)
        self.rate = current if not self.rate else RATE_SMOOTHING * self.rate + (1 - RATE_SMOOTHING) * current
        self._images += self.batch_size
        self._seconds += seconds

    def window_rate(self) -> float:
        """The mean rate since the previous call, and start a new window."""
        rate = self._images / max(self._seconds, 1e-9)
        self._images, self._seconds = 0, 0.0
        return rate


def _build_decoder(norm: str, seed: int, init: str | None = None) -> Decoder:
    """A freshly initialised decoder, the same for a seed, leaving the global RNG untouched; or,
    with ``init``, the decoder of that file (its norm must be ``norm``)."""
    if init is not None:
        decoder, _ = load_decoder(init)
        if decoder.norm != norm:
            raise UsageError(f"--init {init!r} is a decoder with norm {decoder.norm!r}, not --norm {norm!r}: "
                             f"give --norm {decoder.norm}")
        return decoder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "decoder"))
        return Decoder(norm)


class Trainer:
    """One training run: set up by the constructor (all checks before any work), run by ``run()``."""

    def __init__(self, config: TrainConfig, *, encoder: VGGEncoder | None = None, resume: str | Path | None = None,
                 distributed: Distributed, device: torch.device, report: Callable[[str], None] | None = None,
                 command: str | None = None) -> None:
        self.dist, self.device, self.command = distributed, device, command  # command: for the decoder headers
        self._report = report if distributed.is_main else None
        resumed = resolve_checkpoint(resume) if resume is not None else None
        if resumed is not None:
            config = self._merge_resumed(config, *resumed)
        self.config = config
        self.folder = config.checkpoint_folder()
        self._check_outputs(resuming=resumed is not None)
        from ..files import sha256_file

        # the files the run started from, hashed once for every decoder file's header
        self.sources = {name: {"file": path, "sha256": sha256_file(path)} for name, path in
                        (("init", config.init), ("manifest", config.manifest)) if path is not None}
        self._scan_data()
        self._build_models(encoder, resumed)
        self.sampler = PairSampler(
            InfiniteSampler(len(self.content), config.seed, CONTENT_STREAM),
            InfiniteSampler(len(self.style), config.seed, STYLE_STREAM),
            batch_size=config.batch_size, rank=distributed.rank, world_size=distributed.world_size,
            start_iteration=self.start_iteration,
        )
        self.dataset = PairDataset(self.content, self.style, image_size=config.image_size, crop_size=config.crop_size)
        self.log_path = self.folder / LOG_NAME if self.folder is not None else None
        if self.dist.is_main and self.log_path is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            dropped = truncate_log(self.log_path, self.start_iteration)
            if dropped:
                self.say(f"log: dropped {dropped} lines logged after iteration {self.start_iteration} by the interrupted run")

    # -- setup --------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        if self._report is not None:
            self._report(message)

    def _merge_resumed(self, config: TrainConfig, checkpoint: Checkpoint, state: dict) -> TrainConfig:
        saved = TrainConfig.from_dict(state["config"])
        differing = [f"--{flag(name)} {getattr(config, name)} (checkpoint: {getattr(saved, name)})"
                     for name in RUN_FIELDS if getattr(config, name) != getattr(saved, name)]
        if differing:
            raise UsageError(f"a resumed run keeps its settings; these differ from the checkpoint's: "
                             f"{', '.join(differing)}: drop those flags, or start a new run with another --out")
        if config.max_iter < checkpoint.iteration:
            raise UsageError(f"--max-iter {config.max_iter} is below the checkpoint's iteration {checkpoint.iteration}: "
                             "give a larger --max-iter to continue the run")
        self.say(f"resuming from {checkpoint.state_path} (iteration {checkpoint.iteration} of {config.max_iter})")
        return dataclasses.replace(config, checkpoint_dir=str(checkpoint.folder),
                                   content_dir=config.content_dir or saved.content_dir,
                                   style_dir=config.style_dir or saved.style_dir)

    def _check_outputs(self, resuming: bool) -> None:
        config = self.config
        if config.batch_size % self.dist.world_size:
            raise UsageError(f"--batch-size {config.batch_size} must be a multiple of the number of processes "
                             f"({self.dist.world_size}): each process trains on an equal slice of every batch")
        if config.out is not None:
            out = Path(config.out).expanduser()
            if out.is_dir():
                raise UsageError(f"--out {config.out!r} is a folder; give a file name such as weights/NAME.safetensors")
            if out.exists() and not resuming:
                raise UsageError(f"--out {config.out!r} already exists: choose another name (or continue the run "
                                 "that wrote it with --resume)")
        if self.folder is not None and not resuming and list_checkpoints(self.folder):
            raise UsageError(f"checkpoint folder {str(self.folder)!r} holds checkpoints of an earlier run: continue "
                             f"it with --resume {self.folder}, or choose another --out/--checkpoint-dir")

    def _scan_data(self) -> None:
        self.content = ImageFolder.scan(self.config.content_dir, "content")
        self.style = ImageFolder.scan(self.config.style_dir, "style")
        for label, folder in (("content", self.content), ("style", self.style)):
            names = ", ".join(repr(p.name) for p in folder.unreadable[:3]) + (", ..." if len(folder.unreadable) > 3 else "")
            self.say(f"{label}: {len(folder)} images below {str(folder.root)!r}"
                     + (f"; skipped {len(folder.unreadable)} unreadable: {names}" if folder.unreadable else ""))
        # Unreadable files met so far (insertion-ordered): the scan's, then those failing to decode.
        self.skipped: dict[str, None] = dict.fromkeys(str(p) for p in (*self.content.unreadable, *self.style.unreadable))

    def _build_models(self, encoder: VGGEncoder | None, resumed: tuple[Checkpoint, dict] | None) -> None:
        """Encoder, decoder (new or from the checkpoint), DDP wrapper and Adam (restored when resuming)."""
        from ..provenance import encoder_info
        from ..weights import load_encoder

        if encoder is None:
            encoder = load_encoder(self.config.weights)
        else:
            self.config = dataclasses.replace(self.config, weights=encoder.spec.source)
        self.encoder = encoder.to(self.device).eval()
        self.encoder_info = encoder_info(encoder)
        self.start_iteration, self.seconds, self.last_saved = 0, 0.0, None
        self.recent: collections.deque = collections.deque(maxlen=FINAL_LOSS_WINDOW)
        if resumed is None:
            self.decoder = _build_decoder(self.config.norm, self.config.seed, self.config.init)
        else:
            self.decoder, state = load_checkpoint(resumed[0])
            self._check_resumed_data(state)
        self.decoder.to(self.device).train()
        self.model: nn.Module = self.decoder
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.decoder, device_ids=ids)
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=self.config.lr)
        self.layer_weights = self._style_balance()
        self.dtype = check_precision(self.config.precision, self.device)
        if resumed is not None:
            self._restore(state)

    def _style_balance(self) -> dict[str, float] | None:
        """The style loss's layer weights (``--style-balance rms``): from the folder's first style
        images resized to the crop size, so a resumed run computes the same ones."""
        if self.config.style_balance == "none":
            return None
        from ..imageio import load_image, resize_to

        size = self.config.crop_size
        images = torch.stack([resize_to(load_image(path), size, size) for path in self.style.files[:STYLE_BALANCE_IMAGES]])
        return style_balance(self.encoder, images.to(self.device))

    def _check_resumed_data(self, state: dict) -> None:
        if not self.encoder.spec.same_weights(state.get("encoder", {})):
            raise TrainingError(f"the checkpoint was trained with encoder {state.get('encoder', {}).get('source')!r}, "
                                f"not {self.encoder_info['source']!r}: resume with the same --weights")
        for label, folder in (("content", self.content), ("style", self.style)):
            saved = state.get("data", {}).get(label, {})
            if saved.get("fingerprint") != folder.fingerprint():
                warnings.warn(f"the {label} folder's file list changed since the checkpoint ({saved.get('images')} → "
                              f"{len(folder)} images): the data order differs from the uninterrupted run",
                              stacklevel=3)

    def _restore(self, state: dict) -> None:
        self.start_iteration = self.last_saved = int(state["iteration"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and len(rng.get("cuda", [])) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        recent = state.get("recent", {})
        self.recent.extend(zip(recent.get("content", []), recent.get("style", [])))
        self.seconds = float(state.get("seconds", 0.0))

    # -- one step -------------------------------------------------------------------------------

    def step(self, step: int, content: Tensor, style: Tensor, stop_requested: bool) -> tuple[dict, Tensor, bool]:
        """Train on one batch; returns its record, the decoder output and whether to stop."""
        config = self.config
        lr = learning_rate(config.lr, config.lr_decay, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if config.objective == "reconstruction":
            losses = reconstruction_losses(self.encoder, self.model, content, features=config.content_weight > 0,
                                           dtype=self.dtype)
            total = config.content_weight * losses.content + config.pixel_weight * losses.pixel
        else:
            losses = adain_losses(self.encoder, self.model, content, style, dtype=self.dtype,
                                  layer_weights=self.layer_weights, identity=config.pixel_weight > 0)
            total = config.content_weight * losses.content + config.style_weight * losses.style
            if losses.pixel is not None:
                total = total + config.pixel_weight * losses.pixel
        pixel = losses.pixel if losses.pixel is not None else total.new_zeros(())
        stats = torch.stack([losses.content.detach(), losses.style.detach(), pixel.detach(), total.detach()]).double()
        flag = torch.tensor([float(stop_requested)], dtype=torch.float64, device=stats.device)  # (1,)
        reduced = self.dist.sum_(torch.cat([stats, flag]))  # (5,) summed over processes
        values = (reduced[:4] / self.dist.world_size).tolist()
        self._check_finite(step + 1, values)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        record = {"iteration": step + 1, **dict(zip(LOSS_NAMES, values)), "lr": lr}
        return record, losses.output.detach(), float(reduced[4]) > 0

    def _check_finite(self, iteration: int, values: list[float]) -> None:
        for name, value in zip(LOSS_NAMES, values):
            if not math.isfinite(value):
                if self.last_saved is not None and self.folder is not None:
                    kept = f"the last good checkpoint is {Checkpoint(self.folder, self.last_saved).state_path}"
                else:
                    kept = "no checkpoint was written before it"
                raise TrainingError(f"{name} loss is {value} at iteration {iteration}: training stopped; {kept} "
                                    "(resume from it with a lower --lr or --style-weight)")

    # -- outputs ----------------------------------------------------------------------------------

    def metadata(self, iteration: int) -> dict:
        recent = list(self.recent)
        final = {}
        if recent:
            final = {"content": sum(c for c, _ in recent) / len(recent), "style": sum(s for _, s in recent) / len(recent),
                     "window": len(recent), "last_content": recent[-1][0], "last_style": recent[-1][1]}
        return {"method": "adain", "encoder": self.encoder_info, "training": self.config.to_dict(), **self.sources,
                "style_layer_weights": self.layer_weights, "command": self.command,
                "iterations": iteration, "final_losses": final, "world_size": self.dist.world_size,
                "data": {"content_images": len(self.content), "style_images": len(self.style)},
                "torch": torch.__version__}

    def state(self, iteration: int) -> dict:
        return {
            "config": self.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []},
            "sampler": self.sampler.state(iteration),
            "data": {"content": self.content.describe(), "style": self.style.describe()},
            "encoder": self.encoder_info,
            "recent": {"content": [c for c, _ in self.recent], "style": [s for _, s in self.recent]},
            "seconds": self.seconds,
            "world_size": self.dist.world_size,
        }

    def save(self, iteration: int) -> None:
        """A checkpoint at ``iteration`` (process 0 writes; every process checks the replicas)."""
        if not self.dist.replicas_agree(self.decoder):
            raise TrainingError(f"the processes' decoders differ at iteration {iteration}: "
                                "distributed training went out of sync; resume from the last checkpoint")
        if self.folder is None or self.last_saved == iteration:
            return
        if self.dist.is_main:
            save_checkpoint(self.folder, iteration, self.decoder, decoder_config=self.metadata(iteration),
                            state=self.state(iteration))
            prune_checkpoints(self.folder, self.config.keep)
        self.last_saved = iteration

    def preview(self, iteration: int, content: Tensor, style: Tensor, output: Tensor) -> None:
        from torchvision.utils import make_grid

        from ..imageio import save_image

        columns = min(PREVIEW_COLUMNS, len(content))
        rows = torch.cat([content[:columns], style[:columns], output[:columns].clamp(0, 1)]).float().cpu()
        grid = make_grid(rows, nrow=columns, padding=PREVIEW_PADDING, pad_value=1.0)  # (3, H', W')
        save_image(grid, self.folder / PREVIEW_FOLDER / f"iter_{iteration:08d}.png",
                   metadata={"iteration": iteration, "rows": ["content", "style", "output"]})

    # -- the loop -----------------------------------------------------------------------------

    def run(self, *, progress: bool = False, handle_signals: bool = True,
            callback: Callable[[dict], None] | None = None) -> TrainResult:
        config = self.config
        history: list[dict] = []
        iteration, interrupted = self.start_iteration, None
        bar = None
        if progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.max_iter, initial=iteration, desc="train", unit="it", dynamic_ncols=True)
        meter = Throughput(config.batch_size)
        loader = make_loader(self.dataset, self.sampler, workers=config.workers,
                             pin_memory=self.device.type == "cuda")
        try:
            with running_loader(loader) as batches, StopSignals(handle_signals) as signals:
                for step in range(self.start_iteration, config.max_iter):
                    started = time.perf_counter()
                    content, style, skipped = _next_batch(batches)
                    self._note_skipped(skipped)
                    content = content.to(self.device, non_blocking=True)  # (B/W, 3, crop, crop)
                    style = style.to(self.device, non_blocking=True)  # (B/W, 3, crop, crop)
                    record, output, stop = self.step(step, content, style, signals.received is not None)
                    iteration = step + 1
                    elapsed = time.perf_counter() - started
                    self.seconds += elapsed
                    meter.add(elapsed)
                    self.recent.append((record["content"], record["style"]))
                    history.append(record)
                    self._write_outputs(record, meter, content, style, output, stop)
                    if bar is not None:
                        bar.set_postfix(content=f"{record['content']:.4g}", style=f"{record['style']:.4g}",
                                        img_s=f"{meter.rate:.1f}", refresh=False)
                        bar.update(1)
                    if callback is not None:
                        callback(record)
                    if stop:
                        interrupted = signal.Signals(signals.received or signal.SIGTERM).name
                        break
        finally:
            if bar is not None:
                bar.close()
        out = None
        if interrupted is None and iteration >= config.max_iter:
            self.save(iteration)  # no-op unless resumed from a run that was already complete
            if self.dist.is_main and config.out is not None:
                out = save_decoder(self.decoder, Path(config.out).expanduser(), self.metadata(iteration))
        checkpoint = Checkpoint(self.folder, self.last_saved).state_path if (
            self.folder is not None and self.last_saved is not None) else None
        return TrainResult(self.decoder, history, self.start_iteration, iteration, config, checkpoint, out,
                           interrupted, list(self.skipped), self.dist.rank, self.dist.world_size, self.seconds)

    def _write_outputs(self, record: dict, meter: "Throughput", content: Tensor, style: Tensor, output: Tensor,
                       stop: bool) -> None:
        """The log line, preview and checkpoint that are due after an iteration."""
        config, iteration = self.config, record["iteration"]
        last = iteration == config.max_iter
        if self.dist.is_main and self.log_path is not None and (iteration % config.log_every == 0 or last):
            append_log(self.log_path, {**record, "images_per_second": meter.window_rate(), "seconds": self.seconds})
        if (self.dist.is_main and self.folder is not None and config.preview_every
                and iteration % config.preview_every == 0):
            self.preview(iteration, content, style, output)
        if iteration % config.save_every == 0 or last or stop:
            self.save(iteration)

    def _note_skipped(self, paths: list[str]) -> None:
        for path in paths:
            if path not in self.skipped:
                self.skipped[path] = None
                self.say(f"skipped unreadable image {path!r} (using the next file of its folder)")


def train(config: TrainConfig, *, encoder: VGGEncoder | None = None, resume: str | Path | None = None,
          progress: bool = False, report: Callable[[str], None] | None = None, handle_signals: bool = True,
          callback: Callable[[dict], None] | None = None, command: str | None = None) -> TrainResult:
    """Train an AdaIN decoder; every check (flags, outputs, data, checkpoint) comes before any step.

    ``resume``: a checkpoint folder (its newest intact checkpoint) or a ``state_*.pt`` file; the
    run continues with ``config`` (which must keep the run-defining settings, ``RUN_FIELDS``; use
    ``load_run_config`` to start from the stored ones). ``encoder`` replaces loading
    ``config.weights``. ``report`` receives one-line progress messages (process 0 only);
    ``callback`` receives each step's record. SIGINT/SIGTERM stop the run after the current step
    with a checkpoint (``result.interrupted``); a non-finite loss raises ``TrainingError``.
    ``command``: the command line that started this call, recorded in every decoder file's header.
    """
    config = config.validate()
    distributed, device = Distributed.from_env(resolve_device(config.device))
    try:
        trainer = Trainer(config, encoder=encoder, resume=resume, distributed=distributed, device=device,
                          report=report, command=command)
        return trainer.run(progress=progress, handle_signals=handle_signals, callback=callback)
    finally:
        distributed.close()


def _next_batch(batches):
    """``next(batches)``, with a worker's user-facing error restored to its one-line message.

    PyTorch re-raises a worker's exception with the worker's traceback folded into the message.
    """
    try:
        return next(batches)
    except StyleTransferError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        if len(lines) > 1:
            prefix = f"{type(error).__name__}: "
            last = lines[-1].split(prefix, 1)[-1] if prefix in lines[-1] else lines[-1]
            raise type(error)(last) from None
        raise
