"""``styletransfer compare``: stylise one pair under every method, measure, and write the results."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from ..devices import resolve_device
from ..encoder import VGGEncoder
from ..errors import UsageError
from ..files import atomic_write, atomic_write_json, atomic_write_text
from ..imageio import DEFAULT_MAX_PIXELS, check_output_path, check_resizable, load_image, resize_edge, same_path, save_image, to_pil
from ..losses import STYLE_LOSSES
from ..memory import PeakMemory
from ..methods import METHODS
from ..optimize import stylize
from .calibration import Calibration, calibrate
from .grid import build_grid
from .judge import SHARED_NETWORK_NOTE, EmbeddingJudge
from .identity import gram_poly_identity
from .matrix import StyleMeter, cross_loss_matrix, layer_weight_map
from .report import GRID_NAME, REPORT_JSON, REPORT_MD, build_report, method_label, render_markdown
from .selection import CompareConfig, same_objectives
from ..weights import DEFAULT_ENCODER


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


def _load_adain(decoder_path, encoder: VGGEncoder) -> tuple[object, dict, list[str]]:
    """The encoder–decoder pair of the decoder methods, the decoder's description, and the
    mismatch warning (if any) as a note for the report."""
    from ..adain import ADAIN_LAYER, load_decoder
    from ..adain.decoder import pair_with

    if ADAIN_LAYER not in encoder.layer_names:
        raise UsageError(f"the decoder methods (adain, wct) need the encoder up to {ADAIN_LAYER}, but "
                         f"{encoder.spec.source!r} ends at {encoder.spec.last_layer}: pass fuller encoder weights "
                         "or --skip adain,wct")
    decoder, decoder_config = load_decoder(decoder_path)
    model, mismatch = pair_with(encoder, decoder, decoder_config)
    notes = [] if mismatch is None else [mismatch]
    for note in notes:  # shown as stylize shows it, and kept for the report
        warnings.warn(note, stacklevel=3)
    info = {"path": str(decoder_path), "norm": decoder.norm, "config": decoder_config}
    return model.eval(), info, notes


def compare_files(content: str | os.PathLike, style: str | os.PathLike, out_dir: str | os.PathLike,
                  config: CompareConfig, *, weights: str | VGGEncoder = DEFAULT_ENCODER, pooling: str | None = None,
                  decoder: str | os.PathLike | None = None, device: str | torch.device = "auto",
                  overwrite: bool = False, progress: bool = False, command: str | None = None,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Stylise ``content`` with ``style`` under every method of ``config``; write images, grid and reports.

    Validation (methods, output folder, images, weights, decoder) happens before any
    stylisation. Returns the report (the content of ``report.json``).
    """
    from ..provenance import encoder_info, environment_info
    from ..weights import load_encoder

    config = config.validate()
    base = config.stylize
    for method in config.methods:
        if method in METHODS and METHODS.get(method).needs_decoder and decoder is None:
            raise UsageError(f"method {method} needs a decoder: pass --decoder PATH")
    out_dir = Path(out_dir)
    inputs = [content, style, *([decoder] if decoder is not None else [])]
    _check_outputs(out_dir, config.methods, inputs, overwrite)
    torch_device = resolve_device(device)
    content_image = load_image(content, max_pixels=max_pixels)
    style_image = load_image(style, max_pixels=max_pixels)
    smallest = min(base.scales)
    check_resizable(content_image, str(content), smallest)
    check_resizable(style_image, str(style), max(16, round(smallest * base.style_scale)))
    encoder = weights if isinstance(weights, torch.nn.Module) else load_encoder(weights, pooling=pooling)
    encoder = encoder.to(torch_device).eval()
    base = base.for_encoder(encoder)  # the encoder's default layers, when none were given
    merged = same_objectives(config.methods, base)
    config = replace(config, stylize=base, methods=tuple(m for m in config.methods if m not in merged))
    stylizers, decoder_info, notes = {}, None, []
    if any(METHODS.get(m).needs_decoder for m in config.methods if m in METHODS):
        model, decoder_info, notes = _load_adain(decoder, encoder)
    # the decoder methods' own stylizers (stylize --method adain / wct), on the working images as they are
    if "adain" in config.methods:
        from ..adain.stylizer import AdaINConfig, AdaINStylizer

        stylizers["adain"] = AdaINStylizer(model, AdaINConfig(content_size=0, style_size=0, tile_size=0),
                                           device=torch_device)
    if "wct" in config.methods:
        from ..wct import WCTConfig, WCTStylizer

        stylizers["wct"] = WCTStylizer(model, WCTConfig(content_size=0, style_size=0), device=torch_device)
    if "magenta" in config.methods:
        from ..magenta.stylizer import MagentaConfig, load_stylizer

        stylizers["magenta"] = load_stylizer(MagentaConfig(content_size=0), device=torch_device)  # at the working size

    # The stylizer's working images at its last scale: the outputs have the content's size there.
    size = base.scales[-1]
    content_s = resize_edge(content_image, size).unsqueeze(0).to(torch_device)  # (1, 3, H, W)
    style_s = resize_edge(style_image, max(16, round(size * base.style_scale))).unsqueeze(0).to(torch_device)
    # columns: every loss linear in the positions, and any other (mrf) that is compared; a loss with the
    # same objective as another (mmd-poly with c = 0 and gram) once
    measured = [name for name, loss in STYLE_LOSSES.items() if loss.cost == "linear" or name in config.methods]
    measured = [name for name in measured if name not in same_objectives(measured, base)]
    meter = StyleMeter(encoder, content_s, style_s, base, measured)
    reference = meter.style_distances(content_s)
    content_features = meter.features(content_s)
    judge = (EmbeddingJudge(content_s[0], style_s[0], device=torch_device, stylizer=stylizers.get("magenta"))
             if config.judge else None)
    if judge is not None and str(getattr(encoder.spec, "source", "")).startswith("magenta"):
        notes = [*notes, SHARED_NETWORK_NOTE]
    identity = gram_poly_identity({l: content_features[l] for l in base.style_layers}, meter.style_features,
                                  max_positions=config.identity_positions, seed=base.seed)

    # Untimed warm-up (one step of the first loss, one pass of each feed-forward method): one-off start-up costs are not
    # charged to whichever method happens to run first.
    first_loss = next((m for m in config.methods if m not in stylizers), None)
    if first_loss is not None:
        stylize(content_image, style_image, encoder, replace(config.method_config(first_loss), steps=1),
                device=torch_device)
    for stylizer in stylizers.values():
        stylizer.stylize(content_s[0], [style_s[0]])
    weights_info = encoder_info(encoder)
    per_layer, runs, outputs = {}, {}, {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(config.methods), desc="compare", unit="method")
    calibration_target, calibrations, judged = None, {}, {}
    for method in config.methods:
        if bar is not None:
            bar.set_postfix(method=method, refresh=True)
        with PeakMemory(torch_device) as memory:
            start = time.perf_counter()
            if method in stylizers:
                image, steps = stylizers[method].stylize(content_s[0], [style_s[0]]), None  # (3, H, W)
                metadata = {"method": method, "config": stylizers[method].config.to_dict()}
                if METHODS.get(method).needs_decoder:
                    metadata.update(decoder=decoder_info, weights=weights_info)
                _synchronize(torch_device)
                seconds, chosen, content_loss = time.perf_counter() - start, None, None
            else:
                results: dict[float, tuple] = {}  # style weight → (result, its config, content loss, seconds)

                def content_loss_at(style_weight: float) -> float:
                    begin = time.perf_counter()
                    method_config = replace(config.method_config(method), style_weight=style_weight)
                    done = stylize(content_image, style_image, encoder, method_config, device=torch_device,
                                   progress=progress)
                    _synchronize(torch_device)
                    value = meter.content_loss(done.image.unsqueeze(0).to(torch_device))
                    results[style_weight] = (done, method_config, value, time.perf_counter() - begin)
                    return value

                if calibration_target is None or not config.calibrate:
                    chosen = base.style_weight
                    value = content_loss_at(chosen)
                    if config.calibrate:  # the first optimisation method sets the content loss to reach
                        calibration_target = value
                        calibrations[method] = Calibration(chosen, value, value, ((chosen, value),)).to_dict()
                else:
                    found = calibrate(content_loss_at, calibration_target, base.style_weight, runs=config.calibrate)
                    chosen, calibrations[method] = found.style_weight, found.to_dict()
                # the chosen run alone: its seconds and content loss (the calibration's runs are in "calibration")
                result, method_config, content_loss, seconds = results[chosen]
                image, steps = result.image, len(result.history)  # (3, H, W)
                metadata = {"method": "optimize", "config": method_config.to_dict(), "weights": weights_info}
        # measured on the float output the method produced, before 8-bit quantisation in the PNG
        save_image_path = save_image(image, out_dir / f"{method}.png", metadata=metadata, inputs=inputs)
        batch = image.unsqueeze(0).to(torch_device)  # (1, 3, H, W)
        per_layer[method] = meter.style_distances(batch)
        if judge is not None:
            judged[method] = judge(image)
        outputs[method] = image
        runs[method] = {"seconds": seconds, "steps": steps,
                        "content_loss": meter.content_loss(batch) if content_loss is None else content_loss,
                        "memory": memory.usage.to_dict(), "image": save_image_path.name,
                        "style_weight": chosen, "calibration": calibrations.get(method)}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    matrix = cross_loss_matrix(per_layer, reference, layer_weight_map(base))
    height, width = content_s.shape[-2:]
    environment = {**environment_info(torch_device), "cpu_threads": torch.get_num_threads()}
    command = command or environment["command"]
    environment["command"] = command
    report = build_report(command=command, content=str(content), style=str(style), size=(width, height),
                          config=config, encoder=weights_info, decoder=decoder_info, environment=environment,
                          matrix=matrix, runs=runs, identity=identity, notes=notes, merged=merged, judge=judged)
    tiles = [(["content"], to_pil(content_s)), (["style"], to_pil(style_s))]
    # "=" in the picture: the grid's bitmap font has no "≡"
    tiles += [([method_label(method, merged).replace(" ≡ ", " = "), f"{runs[method]['seconds']:.1f} s"],
               to_pil(outputs[method]))
              for method in config.methods]
    grid = build_grid(tiles)
    atomic_write(out_dir / GRID_NAME, lambda stream: grid.save(stream, format="PNG", optimize=True))
    atomic_write_json(out_dir / REPORT_JSON, report)
    atomic_write_text(out_dir / REPORT_MD, render_markdown(report))
    return report
