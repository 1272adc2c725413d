"""File-level entry points: read images, build the networks, run a method, write the results.

:func:`stylize_files` runs an optimisation, :func:`feedforward_files` any feed-forward method of
:data:`~styletransfer.methods.METHODS`; both take a :class:`RunOptions` for what every run shares.
The CLI and the web page only parse their input into these calls; everything here is usable from Python.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import color
from .devices import resolve_device
from .encoder import Encoder
from .errors import ImageError, NonFiniteError, UsageError
from .files import atomic_write_json
from .imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    check_mask_styles,
    check_output_path,
    check_resizable,
    list_images,
    load_image,
    same_path,
    save_image,
)
from .methods import METHODS, Method, feedforward_methods
from .optimize import StylizeConfig, StylizeResult, stylize
from .provenance import encoder_info, environment_info
from .realtime import Networks, Stylizer
from .video.clip import ClipStylizer, VideoConfig
from .video.io import check_audio_copy, check_clip_output, check_encoder, is_clip, list_clips, output_suffix, probe
from .weights import DEFAULT_ENCODER, load_encoder

OUTPUT_NAME = "{content}_stylized_{style}{ext}"  # folder mode; several styles are joined by "+"


@dataclass(frozen=True)
class RunOptions:
    """What every file-level run shares, whatever the method."""

    device: str | torch.device = "auto"
    report: str | os.PathLike | None = None  # a JSON report of the run, written here
    progress: bool = False  # tqdm bars
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger inputs are refused
    mask: str | os.PathLike | None = None  # white = the first style, black the second (exactly two styles)
    content_dir: str | os.PathLike | None = None  # folder mode (feed-forward): every content image of a folder
    style_dir: str | os.PathLike | None = None  # folder mode: every style image of a folder, one at a time
    ext: str = "png"  # the outputs' format in folder mode
    video: VideoConfig | None = None  # how clips are written (feed-forward); None: the defaults

    @property
    def folder_mode(self) -> bool:
        return self.content_dir is not None or self.style_dir is not None


def _options(options: RunOptions | None, fields: dict) -> RunOptions:
    """``options`` with ``fields`` (RunOptions fields given by keyword) in place."""
    return dataclasses.replace(options or RunOptions(), **fields)


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
                  config: StylizeConfig | None = None, *, weights: str | Encoder = DEFAULT_ENCODER,
                  pooling: str | None = None, preserve_color: str | None = None,
                  callback: Callable[[dict], None] | None = None, options: RunOptions | None = None,
                  **fields) -> StylizeResult:
    """Stylise the image file ``content`` with the style image files and write ``output``.

    Validation (flags, paths, images, weights) happens before any optimisation starts.
    ``options`` (or its fields by keyword: ``device``, ``report``, ``progress``, ``max_pixels``,
    ``mask``): folders and clips are the feed-forward methods'. ``preserve_color`` (the config's
    when None): ``coral``/``histogram`` match the style images' colours to the content before
    optimising; ``luminance`` keeps the content's chrominance in the result. A ``mask`` (white =
    foreground): two optimisations, one per style, composited by the mask's grey level at the
    output size (first style in the white part). ``callback`` gets every evaluation's record (as
    ``optimize.stylize``'s does). The image's metadata and the report hold the configuration that
    ran (the encoder's layers, the optimiser "auto" picked).
    """
    config = config or StylizeConfig()
    if preserve_color is not None:
        config = dataclasses.replace(config, preserve_color=preserve_color)
    config = config.validate()
    config.check_options_in_use()
    options = _options(options, fields)
    if options.folder_mode or options.video is not None:
        raise UsageError("folders and clips go through a feed-forward method (--method "
                         f"{' or '.join(feedforward_methods(style_images=True))}); an optimisation stylises one image")
    if not styles:
        raise UsageError("give at least one style image")
    mask = options.mask
    if mask is not None:
        check_mask_styles([tuple(styles)], config.style_blend, style_dir=False)
    inputs = [content, *styles, *([mask] if mask is not None else [])]
    output = check_output_path(output, inputs)
    report = _check_report(options.report, [*inputs, output])
    torch_device = resolve_device(options.device)
    content_image, style_images, mask_image = _load_optimisation_inputs(content, styles, mask, config,
                                                                        options.max_pixels)
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    try:
        result = stylize(content_image, style_images, encoder, config, mask=mask_image, device=torch_device,
                         progress=options.progress, callback=callback)
    except NonFiniteError as error:  # keep what the optimisation had reached, then report the stop
        if error.image is not None:
            save_image(error.image, output, metadata={"method": "optimize", "config": config.to_dict(),
                                                      "stopped": str(error)}, inputs=inputs)
            raise NonFiniteError(f"{error}; the last finite image was written to {str(output)!r}") from None
        raise
    metadata = {"method": "optimize", "config": result.config.to_dict(), "weights": encoder_info(encoder),
                "preserve_color": config.preserve_color, "mask": None if mask is None else str(mask)}
    save_image(result.image, output, metadata=metadata, inputs=inputs)
    if report is not None:
        atomic_write_json(report, {
            **metadata, "content": str(content), "styles": [str(s) for s in styles], "output": str(output),
            "output_size": [result.image.shape[-1], result.image.shape[-2]],
            "environment": environment_info(torch_device), "seconds": result.seconds, "history": result.history,
        })
    return result


def _load_optimisation_inputs(content, styles, mask, config: StylizeConfig, max_pixels: int | None) -> tuple:
    """(content, [styles], mask or None) as images, each checked to be resizable to the smallest scale."""
    content_image = load_image(content, max_pixels=max_pixels)
    style_images = [load_image(path, max_pixels=max_pixels) for path in styles]
    mask_image = load_image(mask, max_pixels=max_pixels) if mask is not None else None
    smallest = min(config.scales)
    check_resizable(content_image, str(content), smallest)
    for path, image in zip(styles, style_images):
        check_resizable(image, str(path), max(16, round(smallest * config.style_scale)))
    return content_image, style_images, mask_image


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
class FeedforwardOutput:
    content: Path
    styles: tuple[Path, ...]
    output: Path
    size: tuple[int, int]  # (width, height)
    seconds: float
    frames: int | None = None  # a clip's; None for an image


@dataclass
class FeedforwardRun:
    """What a feed-forward run wrote, whatever the method."""

    outputs: list[FeedforwardOutput]
    seconds: dict[str, float]
    config: object  # the method's config, as it ran
    style_statistics_computed: int  # style representations computed (statistics, embeddings)


AdaINOutput, AdaINRun = FeedforwardOutput, FeedforwardRun  # their names from when AdaIN was the only such method


def feedforward_files(method: str | Method, content: str | os.PathLike | None, styles: Sequence[str | os.PathLike],
                      output: str | os.PathLike, config=None, *, networks: Networks | None = None,
                      options: RunOptions | None = None, **fields) -> FeedforwardRun:
    """Feed-forward stylisation of image files (and clips) with ``method``, a ``METHODS`` name.

    ``config``: the method's config (None: its defaults). ``networks``: the encoder and decoder
    of the methods that need them (``adain``, ``wct``; decoder None: the one shipped for the
    default encoder); the others bring their own. ``options`` (or its fields by keyword): device,
    report, progress, max_pixels, a mask, folders (see :func:`plan_jobs`), the folder mode's
    extension, and how clips are written (a content that is a video clip is stylised frame for
    frame; docs/VIDEO.md). Each style is represented once for the whole run (once per pair with
    ``coral``/``histogram`` colour preservation). A method with built-in styles (``cin``) takes
    no style file and one content image.
    """
    start = time.perf_counter()
    method = METHODS.get(method) if isinstance(method, str) else method
    if not method.feedforward:
        raise UsageError(f"--method {method.name} optimises each image: call stylize_files")
    config = method.check_config(config)
    options = _options(options, fields)
    plan = (_plan_feedforward(content, styles, output, config.style_weights, options) if method.style_images
            else _plan_built_in_styles(method, content, styles, output, options))
    stylizer = method.build(config, networks or Networks(), plan.device)
    metadata = {"method": method.name, "config": config.to_dict(), **stylizer.describe(),
                "mask": None if options.mask is None else str(options.mask)}
    return _run_feedforward(plan, stylizer, metadata, start=start, options=options)


def _alias(name: str):
    """``{name}_files``, the file-level function of one feed-forward method before :func:`feedforward_files`."""
    def files(content, styles, output, config=None, *, decoder=None, weights=DEFAULT_ENCODER, pooling=None,
              **options) -> FeedforwardRun:
        warnings.warn(f"{name}_files is deprecated: call feedforward_files({name!r}, ...)", DeprecationWarning,
                      stacklevel=2)
        return feedforward_files(name, content, styles, output, config,
                                 networks=Networks(weights=weights, pooling=pooling, decoder=decoder), **options)

    files.__name__ = files.__qualname__ = f"{name}_files"
    files.__doc__ = f"Deprecated: ``feedforward_files({name!r}, ...)`` with ``Networks(weights, pooling, decoder)``."
    return files


adain_files, wct_files, magenta_files = (_alias(name) for name in ("adain", "wct", "magenta"))


def cin_files(content: str | os.PathLike, output: str | os.PathLike, config=None, **options) -> FeedforwardRun:
    """Deprecated: ``feedforward_files("cin", content, (), output, config, ...)``."""
    warnings.warn("cin_files is deprecated: call feedforward_files('cin', content, (), output, ...)",
                  DeprecationWarning, stacklevel=2)
    return feedforward_files("cin", content, (), output, config, **options)


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

    def clip_stylizer(self, stylizer: Stylizer) -> ClipStylizer | None:
        return None if self.video is None else ClipStylizer(stylizer, self.video)


def _plan_feedforward(content, styles, output, style_weights, options: RunOptions) -> FeedforwardPlan:
    """``plan_jobs``, the checks of masks and style weights against the planned styles, the report
    path, the device, the mask image, and every clip opened and checked (no work starts on a bad one)."""
    mask = options.mask
    extra_inputs = [mask] if mask is not None else []
    jobs = plan_jobs(content, styles, output, content_dir=options.content_dir, style_dir=options.style_dir,
                     ext=options.ext, inputs=extra_inputs)
    if mask is not None:
        check_mask_styles([job.styles for job in jobs], style_weights, style_dir=options.style_dir is not None)
    elif style_weights is not None and len(style_weights) != len(jobs[0].styles):
        raise UsageError(f"{len(style_weights)} style interpolation weights for {len(jobs[0].styles)} "
                         "styles: give one per style")
    report = _check_report(options.report, [*_job_inputs(jobs, extra_inputs), *(job.output for job in jobs)])
    video = _check_clips(jobs, options.video, options.max_pixels)
    mask_image = load_image(mask, max_pixels=options.max_pixels) if mask is not None else None
    return FeedforwardPlan(jobs, extra_inputs, report, resolve_device(options.device), mask_image,
                           options.folder_mode, video)


def _plan_built_in_styles(method: Method, content, styles, output, options: RunOptions) -> FeedforwardPlan:
    """One content image and no style file: the method's styles are in its config (cin)."""
    if styles:
        raise UsageError(f"--method {method.name} has its styles built in and takes no style image "
                         f"({str(styles[0])!r}): choose them with --style-index")
    if options.folder_mode or options.mask is not None:
        raise UsageError(f"--method {method.name} stylises one image with its built-in styles: drop "
                         "--content-dir, --style-dir and --mask")
    if content is None:
        raise UsageError("give a CONTENT image")
    if is_clip(content):
        raise UsageError(f"{str(content)!r} is a video clip: --method {method.name} stylises images; clips go "
                         f"through --method {' or '.join(feedforward_methods(style_images=True))}")
    path = check_output_path(output, [content])
    return FeedforwardPlan([Job(Path(content), (), path)], [], _check_report(options.report, [content, path]),
                           resolve_device(options.device), None, folder_mode=False)


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


def _run_feedforward(plan: FeedforwardPlan, stylizer: Stylizer, metadata: dict, *, start: float,
                     options: RunOptions) -> FeedforwardRun:
    """The job loop of every feed-forward method: each style's representation computed once
    (``represent_style``), then each job stylised (a clip's frames through ``ClipStylizer``),
    outputs and the report written."""
    max_pixels, config = options.max_pixels, stylizer.config
    seconds = {"load_models": time.perf_counter() - start}
    mark = time.perf_counter()
    per_pair = color.uses_style_stage(config.preserve_color)
    representations = {} if per_pair else {path: stylizer.represent_style(load_image(path, max_pixels=max_pixels))
                                           for path in _job_styles(plan.jobs)}
    seconds["style_statistics"] = time.perf_counter() - mark
    mark = time.perf_counter()
    outputs = _stylize_jobs(plan, stylizer, representations, metadata, options)
    seconds["stylize"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    computed = sum(len(job.styles) for job in plan.jobs) if per_pair else len(representations)
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
    return FeedforwardRun(outputs, seconds, config, computed)


def _stylize_jobs(plan: FeedforwardPlan, stylizer: Stylizer, representations: dict, metadata: dict,
                  options: RunOptions) -> list[FeedforwardOutput]:
    """Each job's output written: an image from the styles' representations (or, where colour
    preservation changes the style per content, from the style images), a clip frame for frame."""
    max_pixels, clips = options.max_pixels, plan.clip_stylizer(stylizer)
    per_pair = color.uses_style_stage(stylizer.config.preserve_color)
    every_input = _job_inputs(plan.jobs, plan.extra_inputs)
    outputs: list[FeedforwardOutput] = []
    content_cache: tuple[Path, torch.Tensor] | None = None
    for job in _progress(list(plan.jobs), options.progress):
        begin = time.perf_counter()
        if clips is not None and is_clip(job.content):  # frame for frame, the styles represented once
            styles = _clip_styles(job, stylizer, representations, per_pair, max_pixels)
            clip = clips.stylize(job.content, job.output, styles, mask=plan.mask_image, progress=options.progress,
                                 metadata={**metadata, "video": plan.video.to_dict()})
            outputs.append(FeedforwardOutput(job.content, job.styles, job.output, clip.size,
                                             time.perf_counter() - begin, clip.frames))
            continue
        if content_cache is None or content_cache[0] != job.content:
            content_cache = (job.content, load_image(job.content, max_pixels=max_pixels))
        styles = [load_image(s, max_pixels=max_pixels) if per_pair else representations[s] for s in job.styles]
        image = stylizer.stylize(content_cache[1], styles, mask=plan.mask_image)  # (3, H, W)
        save_image(image, job.output, metadata=metadata, inputs=every_input)
        outputs.append(FeedforwardOutput(job.content, job.styles, job.output, (image.shape[-1], image.shape[-2]),
                                         time.perf_counter() - begin))
    return outputs


def _clip_styles(job: Job, stylizer: Stylizer, representations: dict, per_pair: bool, max_pixels: int | None):
    """``styles(first_frame)`` for a clip: the run's representations, or with a colour
    preservation that changes the style, each style matched to the clip's first frame once."""
    def styles(first_frame: torch.Tensor) -> list:
        if not per_pair:
            return [representations[s] for s in job.styles]
        return [stylizer.represent_style(load_image(s, max_pixels=max_pixels), first_frame) for s in job.styles]

    return styles


def _clip_record(output: FeedforwardOutput) -> dict:
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
