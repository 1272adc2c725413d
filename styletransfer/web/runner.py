"""What a job does: the library's own functions on the job's files, writing into the job's folder.

Every job goes through the file-level function the CLI calls (``stylize_files`` with a per-step
callback that feeds the page's loss curve, ``magenta_files``, ``adain_files``, ``wct_files``,
``compare_files``). Encoders get a forward pre-hook that stops a cancelled job at its next pass
through the network.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..api import adain_files, magenta_files, stylize_files, wct_files
from ..compare import GRID_NAME, REPORT_JSON, REPORT_MD, compare_files
from ..weights import load_encoder
from .jobs import Job
from .settings import ServerSettings

RESULT = "result.png"
COMPARE_FOLDER = "compare"
FEEDFORWARD_FILES = {"adain": adain_files, "wct": wct_files}  # with the server's decoder; magenta needs none
COMMAND = "styletransfer serve (web page)"


def cancellable_encoder(job: Job, settings: ServerSettings) -> nn.Module:
    """The request's encoder, stopping the job at its next forward pass once it is cancelled."""
    encoder = load_encoder(job.request.weights, pooling=settings.pooling)
    encoder.register_forward_pre_hook(lambda module, args: job.check_cancelled())
    return encoder


def run_job(job: Job, settings: ServerSettings) -> dict[str, Path]:
    """Run ``job`` (its ``request`` a ``forms.JobRequest``); the files the client may fetch, by name."""
    request = job.request
    content, style = job.inputs["content"], job.inputs["style"]
    job.check_cancelled()
    if request.kind == "compare":
        return _compare(job, settings, content, style)
    output = job.folder / RESULT
    if request.method == "optimize":
        _optimize(job, settings, content, style, output)
    elif request.method == "magenta":
        magenta_files(content, [style], output, request.config, device=settings.device,
                      max_pixels=settings.max_pixels)
    else:
        FEEDFORWARD_FILES[request.method](content, [style], output, request.config, decoder=settings.decoder,
                                          weights=cancellable_encoder(job, settings), device=settings.device,
                                          max_pixels=settings.max_pixels)
    return {RESULT: output}


def _optimize(job: Job, settings: ServerSettings, content: Path, style: Path, output: Path) -> None:
    """``stylize_files`` with the job's loss curve as its callback: the image carries what the CLI writes."""
    stylize_files(content, [style], output, job.request.config, weights=cancellable_encoder(job, settings),
                  device=settings.device, max_pixels=settings.max_pixels, preserve_color=job.request.preserve_color,
                  callback=job.report)


def _compare(job: Job, settings: ServerSettings, content: Path, style: Path) -> dict[str, Path]:
    folder = job.folder / COMPARE_FOLDER
    report = compare_files(content, style, folder, job.request.config, weights=cancellable_encoder(job, settings),
                           decoder=settings.decoder, device=settings.device, command=COMMAND,
                           max_pixels=settings.max_pixels)
    names = [GRID_NAME, REPORT_JSON, REPORT_MD, *(run["image"] for run in report["runs"].values())]
    return {name: folder / name for name in names}
