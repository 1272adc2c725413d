"""What the operator of ``styletransfer serve`` chose: address, encoder, decoder, limits, workers."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..devices import resolve_device
from ..errors import UsageError
from ..imageio import DEFAULT_MAX_PIXELS
from ..weights import DEFAULT_ENCODER

LOOPBACK = "127.0.0.1"
SAMPLES = Path(__file__).resolve().parents[2] / "assets"  # the checkout's sample images (assets/README.md)
MIB = 2**20


@dataclass(frozen=True)
class ServerSettings:
    """Every setting of one server; the CLI's flags map onto these fields one to one."""

    host: str = LOOPBACK  # loopback: only this machine; another address exposes the page
    port: int = 8000
    weights: str = DEFAULT_ENCODER  # the encoder the page selects first (the CLI's --weights default)
    pooling: str | None = None
    decoder: str | None = None  # an AdaIN decoder adds the methods adain and wct
    device: str = "auto"
    workers: int = 1  # jobs run at once; more than one only on a GPU
    queue_size: int = 4  # jobs that may wait; a full queue answers "busy" at once
    max_upload_bytes: int = 32 * MIB  # per uploaded image
    max_pixels: int = DEFAULT_MAX_PIXELS  # per image, as the CLI's --max-pixels
    max_size: int = 1024  # largest size (output long edge / content short side) a request may ask for
    max_steps: int = 1000  # most optimisation steps a request may ask for
    keep_results: int = 200  # finished jobs kept (listed, files on disk); the oldest go beyond this
    samples: Path | None = SAMPLES  # folder with content/ and style/ sample images; None: no samples

    def validate(self) -> "ServerSettings":
        device = resolve_device(self.device)
        if self.workers < 1:
            raise UsageError(f"--workers must be ≥ 1, got {self.workers}")
        if self.workers > 1 and device.type == "cpu":
            raise UsageError(f"--workers {self.workers}: on the CPU jobs run one at a time (each already uses "
                             "every core); more workers need a GPU (--device cuda)")
        for flag, value, minimum in (("--queue", self.queue_size, 1), ("--max-upload-mb", self.max_upload_bytes, 1),
                                     ("--max-pixels", self.max_pixels, 1), ("--max-size", self.max_size, 16),
                                     ("--max-steps", self.max_steps, 1), ("--keep-results", self.keep_results, 1)):
            if value < minimum:
                raise UsageError(f"{flag} must be ≥ {minimum}, got {value}")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, got {self.port}")
        if self.decoder is not None and not Path(self.decoder).is_file():
            raise UsageError(f"--decoder {self.decoder!r} is not a file: pass an AdaIN decoder (.safetensors or "
                             "pytorch-AdaIN's decoder.pth)")
        return self

    @property
    def exposed(self) -> bool:
        """Whether the address reaches beyond this machine."""
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: assume it resolves to a reachable address
            return True

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def default(name: str):
    """The default of a ``ServerSettings`` field, so that the CLI does not restate it."""
    return next(f for f in dataclasses.fields(ServerSettings) if f.name == name).default
