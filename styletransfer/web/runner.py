"""What a job does: the library's own functions on the job's files, writing into the job's folder.

Every job goes through the file-level function the CLI calls (``stylize_files`` with a per-step
callback that feeds the page's loss curve, ``feedforward_files`` for every feed-forward method,
``compare_files``). Encoders get a forward pre-hook that stops a cancelled job at its next pass
through the network.
"""

from __future__ import annotations

from pathlib import Path

from ..api import RunOptions, feedforward_files, stylize_files
from ..compare import GRID_NAME, REPORT_JSON, REPORT_MD, compare_files
from ..encoder import Encoder
from ..methods import METHODS
from ..realtime import Networks
from ..weights import load_encoder
from .jobs import Job
from .settings import ServerSettings

RESULT = "result.png"
COMPARE_FOLDER = "compare"
COMMAND = "styletransfer serve (web page)"


def cancellable_encoder(job: Job, settings: ServerSettings) -> Encoder:
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
    method = METHODS.get(request.method)
    options = RunOptions(device=settings.device, max_pixels=settings.max_pixels)
    if not method.feedforward:
        stylize_files(content, [style], output, request.config, weights=cancellable_encoder(job, settings),
                      callback=job.report, options=options)  # the image carries what the CLI writes
    else:
        weights = cancellable_encoder(job, settings) if method.needs_encoder else settings.weights
        feedforward_files(method, content, [style], output, request.config, options=options,
                          networks=Networks(weights=weights, pooling=settings.pooling, decoder=settings.decoder))
    return {RESULT: output}


def _compare(job: Job, settings: ServerSettings, content: Path, style: Path) -> dict[str, Path]:
    folder = job.folder / COMPARE_FOLDER
    report = compare_files(content, style, folder, job.request.config, weights=cancellable_encoder(job, settings),
                           decoder=settings.decoder, device=settings.device, command=COMMAND,
                           max_pixels=settings.max_pixels)
    names = [GRID_NAME, REPORT_JSON, REPORT_MD, *(run["image"] for run in report["runs"].values())]
    return {name: folder / name for name in names}
