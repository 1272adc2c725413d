"""``styletransfer compare``: stylise one pair under every method, measure, and write the results."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..devices import resolve_device
from ..encoder import Encoder
from ..errors import UsageError
from ..files import atomic_write, atomic_write_json, atomic_write_text
from ..imageio import (
    DEFAULT_MAX_PIXELS,
    check_output_path,
    check_resizable,
    load_image,
    resize_edge,
    same_path,
    save_image,
    to_pil,
)
from ..losses import STYLE_LOSSES
from ..memory import PeakMemory
from ..methods import METHODS
from ..optimize import StylizeConfig, stylize
from ..provenance import encoder_info, environment_info
from ..realtime import Networks, Stylizer
from ..weights import DEFAULT_ENCODER, load_encoder
from .calibration import Calibration, calibrate
from .grid import build_grid
from .identity import gram_poly_identity
from .judge import SHARED_NETWORK_NOTE, EmbeddingJudge
from .matrix import StyleMeter, cross_loss_matrix, layer_weight_map
from .report import GRID_NAME, REPORT_JSON, REPORT_MD, build_report, method_label, render_markdown
from .selection import CompareConfig, same_objectives


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def planned_files(out_dir: Path, methods: Sequence[str]) -> list[Path]:
    return [*(out_dir / f"{m}.png" for m in methods), out_dir / GRID_NAME, out_dir / REPORT_JSON, out_dir / REPORT_MD]


def _check_outputs(out_dir: Path, methods: Sequence[str], inputs: Sequence, overwrite: bool) -> list[Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {str(out_dir)!r} is a file; compare writes a folder: give a folder name")
    files = planned_files(out_dir, methods)
    for path in files:
        if path.suffix == ".png":
            check_output_path(path, inputs)
        elif any(same_path(path, p) for p in inputs):
            raise UsageError(f"{str(path)!r} would overwrite an input; choose another -o folder")
    existing = [p.name for p in files if p.exists()]
    if existing and not overwrite:
        raise UsageError(f"{str(out_dir)!r} already holds {', '.join(existing[:4])}"
                         f"{' ...' if len(existing) > 4 else ''}: choose another -o folder or pass --overwrite")
    return files


def _feedforward_stylizers(methods: Sequence[str], networks: Networks,
                           device: torch.device) -> tuple[dict[str, Stylizer], list[str]]:
    """The stylizer of each feed-forward method among ``methods``, as ``stylize --method`` builds it,
    with the config under which it takes the working images as they are; and what building them
    warned (a decoder trained with another encoder), shown as stylize shows it and kept for the report."""
    stylizers = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in methods:
            method = METHODS.get(name) if name in METHODS else None
            if method is not None and method.feedforward:
                stylizers[name] = method.stylizer(method.make_config(**method.compare_fields), networks, device)
    notes = list(dict.fromkeys(str(warning.message) for warning in caught))
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return stylizers, notes


@dataclass
class _Comparison:
    """One pair, one encoder, the stylised outputs and their measurements as the methods run."""

    content: Tensor  # (3, H, W), as loaded
    style: Tensor
    content_s: Tensor  # (1, 3, h, w): the working image at the last scale, on the device
    style_s: Tensor
    encoder: Encoder
    config: CompareConfig
    meter: StyleMeter
    device: torch.device
    progress: bool
    calibration_target: float | None = None
    calibrations: dict = field(default_factory=dict)

    def feedforward(self, method: str, stylizer: Stylizer) -> tuple[Tensor, dict, dict]:
        """One pass of a feed-forward method: (image, metadata, its run's entries)."""
        start = time.perf_counter()
        image = stylizer.stylize(self.content_s[0], [self.style_s[0]])  # (3, H, W)
        _synchronize(self.device)
        metadata = {"method": method, "config": stylizer.config.to_dict(), **stylizer.describe()}
        return image, metadata, {"seconds": time.perf_counter() - start, "steps": None, "content_loss": None,
                                 "style_weight": None}

    def optimisation(self, method: str) -> tuple[Tensor, dict, dict]:
        """The loss ``method`` optimised at the shared style weight, or, when calibrating, at the one
        that reaches the first optimisation's content loss: (image, metadata, its run's entries)."""
        config, base = self.config, self.config.stylize
        results: dict[float, tuple] = {}  # style weight → (result, its config, content loss, seconds)

        def content_loss_at(style_weight: float) -> float:
            begin = time.perf_counter()
            method_config = replace(config.method_config(method), style_weight=style_weight)
            done = stylize(self.content, self.style, self.encoder, method_config, device=self.device,
                           progress=self.progress)
            _synchronize(self.device)
            value = self.meter.content_loss(done.image.unsqueeze(0).to(self.device))
            results[style_weight] = (done, method_config, value, time.perf_counter() - begin)
            return value

        if self.calibration_target is None or not config.calibrate:
            chosen = base.style_weight
            value = content_loss_at(chosen)
            if config.calibrate:  # the first optimisation method sets the content loss to reach
                self.calibration_target = value
                self.calibrations[method] = Calibration(chosen, value, value, ((chosen, value),)).to_dict()
        else:
            found = calibrate(content_loss_at, self.calibration_target, base.style_weight, runs=config.calibrate)
            chosen, self.calibrations[method] = found.style_weight, found.to_dict()
        # the chosen run alone: its seconds and content loss (the calibration's runs are in "calibration")
        result, method_config, content_loss, seconds = results[chosen]
        metadata = {"method": "optimize", "config": method_config.to_dict(), "weights": encoder_info(self.encoder)}
        return result.image, metadata, {"seconds": seconds, "steps": len(result.history),
                                        "content_loss": content_loss, "style_weight": chosen}

    def warm_up(self, stylizers: dict[str, Stylizer]) -> None:
        """Untimed: one step of the first loss, one pass of each feed-forward method, so that
        one-off start-up costs are not charged to whichever method happens to run first."""
        first_loss = next((m for m in self.config.methods if m not in stylizers), None)
        if first_loss is not None:
            stylize(self.content, self.style, self.encoder, replace(self.config.method_config(first_loss), steps=1),
                    device=self.device)
        for stylizer in stylizers.values():
            stylizer.stylize(self.content_s[0], [self.style_s[0]])


def _load_pair(content, style, base: StylizeConfig, max_pixels: int | None) -> tuple[Tensor, Tensor]:
    content_image = load_image(content, max_pixels=max_pixels)
    style_image = load_image(style, max_pixels=max_pixels)
    smallest = min(base.scales)
    check_resizable(content_image, str(content), smallest)
    check_resizable(style_image, str(style), max(16, round(smallest * base.style_scale)))
    return content_image, style_image


def compare_files(content: str | os.PathLike, style: str | os.PathLike, out_dir: str | os.PathLike,
                  config: CompareConfig, *, weights: str | Encoder = DEFAULT_ENCODER, pooling: str | None = None,
                  decoder: str | os.PathLike | None = None, device: str | torch.device = "auto",
                  overwrite: bool = False, progress: bool = False, command: str | None = None,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Stylise ``content`` with ``style`` under every method of ``config``; write images, grid and reports.

    Validation (methods, output folder, images, weights, decoder) happens before any
    stylisation. Returns the report (the content of ``report.json``).
    """
    config = config.validate()
    for method in config.methods:
        if method in METHODS and METHODS.get(method).needs_decoder and decoder is None:
            raise UsageError(f"method {method} needs a decoder: pass --decoder PATH")
    out_dir = Path(out_dir)
    inputs = [content, style, *([decoder] if decoder is not None else [])]
    _check_outputs(out_dir, config.methods, inputs, overwrite)
    torch_device = resolve_device(device)
    content_image, style_image = _load_pair(content, style, config.stylize, max_pixels)
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    encoder = encoder.to(torch_device).eval()
    base = config.stylize.for_encoder(encoder)  # the encoder's default layers, when none were given
    merged = same_objectives(config.methods, base)
    config = replace(config, stylize=base, methods=tuple(m for m in config.methods if m not in merged))
    stylizers, notes = _feedforward_stylizers(config.methods, Networks(weights=encoder, decoder=decoder), torch_device)
    comparison = _comparison(content_image, style_image, encoder, config, torch_device, progress)
    reference = comparison.meter.style_distances(comparison.content_s)
    content_features = comparison.meter.features(comparison.content_s)
    judge = (EmbeddingJudge(comparison.content_s[0], comparison.style_s[0], device=torch_device,
                            stylizers=stylizers.values()) if config.judge else None)
    if judge is not None and str(getattr(encoder.spec, "source", "")).startswith("magenta"):
        notes = [*notes, SHARED_NETWORK_NOTE]
    identity = gram_poly_identity({l: content_features[l] for l in base.style_layers},
                                  comparison.meter.style_features, max_positions=config.identity_positions,
                                  seed=base.seed)
    comparison.warm_up(stylizers)
    runs, outputs, per_layer, judged = _run_methods(comparison, stylizers, judge, out_dir, inputs)
    decoder_info = next((s.describe()["decoder"] for s in stylizers.values() if "decoder" in s.describe()), None)
    matrix = cross_loss_matrix(per_layer, reference, layer_weight_map(base))
    height, width = comparison.content_s.shape[-2:]
    environment = {**environment_info(torch_device), "cpu_threads": torch.get_num_threads()}
    environment["command"] = command = command or environment["command"]
    report = build_report(command=command, content=str(content), style=str(style), size=(width, height),
                          config=config, encoder=encoder_info(encoder), decoder=decoder_info, environment=environment,
                          matrix=matrix, runs=runs, identity=identity, notes=notes, merged=merged, judge=judged)
    _write_results(out_dir, report, comparison, outputs, merged)
    return report


def _comparison(content: Tensor, style: Tensor, encoder: Encoder, config: CompareConfig, device: torch.device,
                progress: bool) -> _Comparison:
    """The working images at the last scale (the outputs have the content's size there) and the meter."""
    base = config.stylize
    size = base.scales[-1]
    content_s = resize_edge(content, size).unsqueeze(0).to(device)  # (1, 3, H, W)
    style_s = resize_edge(style, max(16, round(size * base.style_scale))).unsqueeze(0).to(device)
    # columns: every loss linear in the positions, and any other (mrf) that is compared; a loss with the
    # same objective as another (mmd-poly with c = 0 and gram) once
    measured = [name for name, loss in STYLE_LOSSES.items() if loss.cost == "linear" or name in config.methods]
    measured = [name for name in measured if name not in same_objectives(measured, base)]
    meter = StyleMeter(encoder, content_s, style_s, base, measured)
    return _Comparison(content, style, content_s, style_s, encoder, config, meter, device, progress)


def _run_methods(comparison: _Comparison, stylizers: dict[str, Stylizer], judge, out_dir: Path, inputs: list):
    """Every method in turn, timed and its memory measured; each output written and measured:
    (runs, outputs, per-layer style distances, judge scores), by method."""
    config, device = comparison.config, comparison.device
    runs, outputs, per_layer, judged = {}, {}, {}, {}
    bar = None
    if comparison.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(config.methods), desc="compare", unit="method")
    for method in config.methods:
        if bar is not None:
            bar.set_postfix(method=method, refresh=True)
        with PeakMemory(device) as memory:
            if method in stylizers:
                image, metadata, run = comparison.feedforward(method, stylizers[method])
            else:
                image, metadata, run = comparison.optimisation(method)
        # measured on the float output the method produced, before 8-bit quantisation in the PNG
        path = save_image(image, out_dir / f"{method}.png", metadata=metadata, inputs=inputs)
        batch = image.unsqueeze(0).to(device)  # (1, 3, H, W)
        per_layer[method] = comparison.meter.style_distances(batch)
        if judge is not None:
            judged[method] = judge(image)
        outputs[method] = image
        if run["content_loss"] is None:
            run["content_loss"] = comparison.meter.content_loss(batch)
        runs[method] = {**run, "memory": memory.usage.to_dict(), "image": path.name,
                        "calibration": comparison.calibrations.get(method)}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return runs, outputs, per_layer, judged


def _write_results(out_dir: Path, report: dict, comparison: _Comparison, outputs: dict, merged: dict) -> None:
    """grid.png (content, style and each output with its seconds), report.json and report.md."""
    runs = report["runs"]
    tiles = [(["content"], to_pil(comparison.content_s)), (["style"], to_pil(comparison.style_s))]
    # "=" in the picture: the grid's bitmap font has no "≡"
    tiles += [([method_label(method, merged).replace(" ≡ ", " = "), f"{runs[method]['seconds']:.1f} s"],
               to_pil(outputs[method]))
              for method in comparison.config.methods]
    grid = build_grid(tiles)
    atomic_write(out_dir / GRID_NAME, lambda stream: grid.save(stream, format="PNG", optimize=True))
    atomic_write_json(out_dir / REPORT_JSON, report)
    atomic_write_text(out_dir / REPORT_MD, render_markdown(report))
