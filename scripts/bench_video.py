"""Video benchmark: temporal consistency (warping error, flicker, style strength) with and without
--temporal, and frames per second of clip stylisation with and without it.

    python scripts/bench_video.py --only consistency --strip docs/video/strip.jpg  # about 4 minutes on 2 cores
    python scripts/bench_video.py --only consistency --footage cockatoo.mp4         # and a real clip
    python scripts/bench_video.py --only flicker                          # about 1 minute on 2 cores
    python scripts/bench_video.py --only speed --precisions fp32 --frames 8  # about 15 minutes on 2 cores
    python scripts/bench_video.py                                         # every part, fp32 and bf16
    python scripts/bench_video.py --device cuda --frames 48

**Consistency.** Every kind of clip of :mod:`styletransfer.video.known_motion` (``--kind-frames``
frames of ``--kind-size``² built from the sample pictures, their true flow known: a pan, a zoom,
a rotation, a textured and a flat red square moving over a still picture, a scene cut), and
``--footage`` clips (their first ``--kind-frames`` frames, the shorter side resized to
``--kind-size``), each written
losslessly and stylised through the clip path (``feedforward_files``, as ``styletransfer
stylize clip.mp4 style.jpg -o out.mp4 --method M [--temporal]``) by each of ``--consistency-methods``
(magenta; adain with the shipped decoder) with ``assets/style/mosaic.jpg``, without and with
``--temporal`` (the defaults), written losslessly and decoded again. Measured on the outputs:

* E_warp (Lai et al. 2018), DIS flow and masks computed on the INPUT frames
  (:func:`styletransfer.video.flow.clip_motion`), the mean over the pairs within a shot; the
  input clip's own E_warp is the floor. Where the true flow is known, E_warp with it as well.
* The style distance of every frame: the Gram distance to the style image over relu1_1–relu4_1
  of the original VGG19, each layer divided by the input frame's own distance (1: no style; as
  ``scripts/evaluate_decoder.py``), and its ratio --temporal / per frame (mean and worst frame).
* On the two square clips, the trail: mean |--temporal − per frame| over the strip the square just
  uncovered, against the same over the still background 16 px or more from anywhere it has been.
* On the pan, the flicker of :func:`styletransfer.video.pan_flicker` (its step is whole pixels).

``--strip`` draws the object clip's frames: input, per frame, --temporal, and their difference.

bf16 on a CPU without AVX512-BF16/AMX is emulated: there AdaIN at 720p takes minutes per frame.

**Speed.** For magenta and AdaIN, in fp32 and bf16, at 384p (682x384) and 720p (1280x720), a
clip of ``--frames`` frames (a pan over a sample picture) is stylised

* by ours, the clip path (``feedforward_files`` with a clip, as ``styletransfer
  stylize clip.mp4 style.jpg -o out.mp4 --method ...``: decode, stylise, encode, audio copied),
* by ours with ``--temporal`` (the defaults: two DIS flows, the masks and a warp per frame), and
* by the baseline, frames one by one through the image path: the clip decoded to PNG files,
  the folder stylised in folder mode (``--content-dir``: networks loaded and the style embedded
  once, as for ours), the PNGs encoded into a clip.

Both at the frames' full size (``content_size`` 0) with the style at 512 (magenta's default 256),
the same encoder settings; frames/s counts the whole path from the input clip to the output clip,
without loading the networks and embedding the style (once per run in both). The two run side by
side, baseline first, in this process: on a shared machine read the ratio. AdaIN's networks are
random (time does not depend on the weights; ``--encoder-weights/--decoder-weights`` take
pytorch-AdaIN's files) and its decoder is calibrated as in ``scripts/bench.py``.

**Flicker.** A pan over ``assets/content/chelsea.jpg`` (``--pan-frames`` frames of 384x256, the
view moving 1 px down and 3 px right per frame), written losslessly, stylised with magenta and
``assets/style/mosaic.jpg`` without ``--temporal``, with it (the defaults), and with each of its
two parts alone; each output written losslessly (``crf`` 0) and decoded again, then measured with
:func:`styletransfer.video.pan_flicker`: the mean |output t+1 − output t moved by the known
motion| over the shared region (RGB in [0, 1]). The content's own figure is 0.

Prints Markdown tables and writes JSON (``--json``, default bench_video.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from evaluate_decoder import STYLE_LAYERS, distances  # noqa: E402

from styletransfer.adain import AdaINConfig  # noqa: E402
from styletransfer.api import feedforward_files  # noqa: E402
from styletransfer.imageio import load_image, resize_to, save_image  # noqa: E402
from styletransfer.magenta.stylizer import MagentaConfig  # noqa: E402
from styletransfer.precision import native_bf16  # noqa: E402
from styletransfer.realtime import Networks  # noqa: E402
from styletransfer.video import VideoConfig, pan, pan_flicker, read_frames, write_clip  # noqa: E402

SIZES = {384: (384, 682), 720: (720, 1280)}  # height → (height, width), 16:9 with even sides
CONTENT = ROOT / "assets" / "content" / "chelsea.jpg"
STYLE = ROOT / "assets" / "style" / "mosaic.jpg"
STYLE_SIZE = 512
RATE = 24
PAN_SIZE, PAN_STEP = (256, 384), (1, 3)  # (height, width), (dy, dx) per frame
LOSSLESS = 0


def cpu_model() -> str:
    """lscpu's model name (platform's answer where lscpu is missing)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def pan_clip(path: Path, height: int, width: int, frames: int, step: tuple[int, int], *, crf: int | None) -> Path:
    """A clip panning over the sample picture, enlarged when the frames need it."""
    picture = load_image(CONTENT)
    need = (height + step[0] * (frames - 1), width + step[1] * (frames - 1))
    scale = max(need[0] / picture.shape[-2], need[1] / picture.shape[-1], 1.0)
    if scale > 1:
        picture = resize_to(picture, round(picture.shape[-2] * scale) + 1, round(picture.shape[-1] * scale) + 1)
    return write_clip(path, pan(picture, height, width, frames, step), RATE, crf=crf)


# --- speed -----------------------------------------------------------------------------------------


def method_files(method: str, precision: str, model):
    """(config, keyword arguments) of one method at one precision."""
    if method == "magenta":
        return MagentaConfig(precision=precision, style_size=STYLE_SIZE), {}
    config = AdaINConfig(precision=precision, content_size=0, style_size=STYLE_SIZE)
    return config, {"networks": Networks(weights=model.encoder, decoder=model.decoder)}


def stylise_seconds(run) -> float:
    """The seconds of a run's stylisation loop (without loading networks and representing styles)."""
    return run.seconds["stylize"]


def ours(clip: Path, folder: Path, method: str, precision: str, model, device: str, temporal: bool = False) -> float:
    config, extra = method_files(method, precision, model)
    run = feedforward_files(method, clip, [STYLE], folder / "ours.mp4", config, device=device,
                            video=VideoConfig(temporal=temporal), **extra)
    return stylise_seconds(run)


def baseline(clip: Path, folder: Path, method: str, precision: str, model, device: str) -> float:
    """Frames one by one through the image path: decode to PNGs, folder mode, encode the PNGs."""
    frames, styled = folder / "frames", folder / "styled"
    frames.mkdir(exist_ok=True)
    start = time.perf_counter()
    for index, frame in enumerate(read_frames(clip)):
        save_image(frame, frames / f"{index:06d}.png")
    decode = time.perf_counter() - start
    config, extra = method_files(method, precision, model)
    run = feedforward_files(method, None, [STYLE], styled, config, content_dir=frames, device=device, **extra)
    start = time.perf_counter()
    write_clip(folder / "baseline.mp4", (load_image(p) for p in sorted(styled.iterdir())), RATE)
    return decode + stylise_seconds(run) + time.perf_counter() - start


def speed_rows(args) -> list[dict]:
    model = None
    if "adain" in args.methods:
        import bench

        _, _, model = bench.adain_networks(args, torch.device("cpu"))
    rows = []
    for method in args.methods:
        for precision in args.precisions:
            for height in args.sizes:
                with tempfile.TemporaryDirectory() as temporary:
                    folder = Path(temporary)
                    clip = pan_clip(folder / "clip.mp4", *SIZES[height], args.frames, (0, 2), crf=None)
                    base = baseline(clip, folder, method, precision, model, args.device)
                    mine = ours(clip, folder, method, precision, model, args.device)
                    smoothed = ours(clip, folder, method, precision, model, args.device, temporal=True)
                row = {"method": method, "precision": precision, "size": f"{SIZES[height][1]}x{height}",
                       "frames": args.frames, "ours_fps": args.frames / mine, "baseline_fps": args.frames / base,
                       "speedup": base / mine, "temporal_fps": args.frames / smoothed, "temporal_ratio": mine / smoothed,
                       "load": os.getloadavg()[0]}
                print(f"{method} {precision} {row['size']}: ours {row['ours_fps']:.3g} frames/s, baseline "
                      f"{row['baseline_fps']:.3g} frames/s ({row['speedup']:.2f}x); with --temporal "
                      f"{row['temporal_fps']:.3g} frames/s ({row['temporal_ratio']:.2f}x ours)", flush=True)
                rows.append(row)
    return rows


# --- flicker ---------------------------------------------------------------------------------------


DEFAULT_TEMPORAL = "--temporal (defaults)"
FLICKER_SETTINGS = {
    "without --temporal": VideoConfig(crf=LOSSLESS),
    DEFAULT_TEMPORAL: VideoConfig(temporal=True, crf=LOSSLESS),
    "--temporal --temporal-blend 0 (running statistics only)": VideoConfig(temporal=True, blend=0.0, crf=LOSSLESS),
    "--temporal --temporal-momentum 0 (blend only)": VideoConfig(temporal=True, momentum=0.0, crf=LOSSLESS),
}


def flicker_rows(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        clip = pan_clip(folder / "pan.mp4", *PAN_SIZE, args.pan_frames, PAN_STEP, crf=LOSSLESS)
        rows.append({"setting": "the content (the pan itself)", "flicker": pan_flicker(list(read_frames(clip)),
                                                                                     PAN_STEP)})
        for label, video in FLICKER_SETTINGS.items():
            out = folder / "out.mp4"
            feedforward_files("magenta", clip, [STYLE], out, device=args.device, video=video)
            frames = list(read_frames(out))
            rows.append({"setting": label, "flicker": pan_flicker(frames, PAN_STEP), **video.to_dict()})
            print(f"{label}: flicker {rows[-1]['flicker']:.4f}", flush=True)
            if args.frame_png and label == DEFAULT_TEMPORAL:
                save_image(frames[-1], Path(args.frame_png))
    return rows


# --- consistency -----------------------------------------------------------------------------------

TRAIL_DISTANCE = 16  # px: the still background is this far from anywhere the object has been
CONSISTENCY_KINDS = ("pan", "zoom", "rotation", "object", "red square", "cut")


class StyleDistance:
    """The Gram distance of frames to the style image over relu1_1–relu4_1 of the original VGG19,
    each layer divided by the input frame's own distance (1: no style at all), as
    ``scripts/evaluate_decoder.py`` measures it (:func:`evaluate_decoder.distances`)."""

    def __init__(self, style) -> None:
        from styletransfer import load_encoder

        self.encoder = load_encoder()
        self.style = self.features(style)

    @torch.no_grad()
    def features(self, image) -> dict:
        return self.encoder(image.unsqueeze(0), STYLE_LAYERS)

    def __call__(self, content, *outputs) -> list[float]:
        """The distance of each of ``outputs``, stylisations of the (3, H, W) ``content`` (encoded once)."""
        own = self.features(content)
        return [distances(self.features(output), own, self.style)["gram"] for output in outputs]


def footage_frames(path: Path, frames: int, size: int) -> list:
    """The first ``frames`` frames of a real clip, the shorter side resized to ``size`` (even sides)."""
    decoded = []
    for frame in read_frames(path):
        height, width = frame.shape[-2:]
        scale = size / min(height, width)
        decoded.append(resize_to(frame, 2 * round(height * scale / 2), 2 * round(width * scale / 2)).clamp(0, 1))
        if len(decoded) == frames:
            break
    return decoded


def stylised_clip(method: str, clip: Path, out: Path, temporal: bool, device: str) -> list:
    """The clip through the clip path, losslessly, decoded again."""
    config = None
    if method == "adain":
        config = AdaINConfig(content_size=0, style_size=256)
    feedforward_files(method, clip, [STYLE], out, config, device=device,
                      video=VideoConfig(temporal=temporal, crf=LOSSLESS))
    return list(read_frames(out))


def trail(clip, plain: list, smoothed: list) -> tuple[float, float]:
    """(mean |--temporal − per frame| over the strips the object uncovered, the same over the still
    background TRAIL_DISTANCE px or more from anywhere the object has been), over the frames."""
    left_sum = left_count = still_sum = still_count = 0.0
    for t in range(1, len(clip.frames)):
        left, still = clip.uncovered(t), clip.still_background(t, TRAIL_DISTANCE)
        difference = (smoothed[t] - plain[t]).abs().mean(dim=0)  # (H, W)
        left_sum, left_count = left_sum + float(difference[left].sum()), left_count + int(left.sum())
        still_sum, still_count = still_sum + float(difference[still].sum()), still_count + int(still.sum())
    return left_sum / left_count, still_sum / still_count


def whole_pixel_pan(clip) -> tuple[int, int] | None:
    """(dy, dx) of a clip whose true flow is one whole-pixel translation (the step of
    :func:`styletransfer.video.pan_flicker`), else None."""
    if clip.cuts or clip.objects is not None:
        return None
    first = clip.flows[0][:, 0, 0]  # (x, y)
    if not all(torch.allclose(flow, first[:, None, None], atol=1e-4) for flow in clip.flows):
        return None
    dx, dy = (float(v) for v in first)
    return (round(dy), round(dx)) if abs(dx - round(dx)) < 1e-4 and abs(dy - round(dy)) < 1e-4 else None


def strip_picture(clip, plain: list, smoothed: list, path: Path) -> None:
    """Three frames (the second, the middle, the last), one row each; columns: input, per frame,
    --temporal, |--temporal − per frame| x 4."""
    count = len(clip.frames)
    frames = (1, count // 2, count - 1)
    from styletransfer.ablate.plot import image_grid, save_png

    rows = [[clip.frames[t], plain[t], smoothed[t], ((smoothed[t] - plain[t]).abs() * 4).clamp(0, 1)] for t in frames]
    grid = image_grid(rows, ["input", "per frame", "--temporal", "|difference| x 4"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):  # stylised textures: a PNG of them is megabytes
        grid.save(path, quality=90, optimize=True)
    else:
        save_png(grid, path)


def consistency_rows(args) -> list[dict]:
    from styletransfer.video.flow import clip_motion, warping_errors
    from styletransfer.video.known_motion import KnownMotion, kinds

    distance = StyleDistance(load_image(STYLE))
    builders = kinds(args.kind_frames, args.kind_size)
    clips = {kind: builders[kind] for kind in CONSISTENCY_KINDS}  # name → a KnownMotion, or frames of footage
    clips.update({Path(f).name: (lambda f=f: footage_frames(Path(f), args.kind_frames, args.kind_size))
                  for f in args.footage})
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for name, build in clips.items():
            built = build()
            known = built if isinstance(built, KnownMotion) else None  # footage: motion unknown
            source = write_clip(folder / "in.mp4", known.frames if known else built, RATE, crf=LOSSLESS)
            inputs = list(read_frames(source))
            motions = clip_motion(inputs)
            truth = known.true_motions() if known else None
            step = whole_pixel_pan(known) if known else None
            for method in args.consistency_methods:
                start = time.perf_counter()
                plain = stylised_clip(method, source, folder / "plain.mp4", False, args.device)
                smoothed = stylised_clip(method, source, folder / "temporal.mp4", True, args.device)
                row = {"clip": name, "method": method, "frames": len(inputs),
                       "size": f"{inputs[0].shape[-1]}x{inputs[0].shape[-2]}",
                       "cuts": sum(m.cut for m in motions), "input": warping_errors(inputs, motions).mean,
                       "plain": warping_errors(plain, motions).mean, "temporal": warping_errors(smoothed, motions).mean}
                row["ratio"] = row["temporal"] / row["plain"]
                if truth is not None:
                    row["true_plain"] = warping_errors(plain, truth).mean
                    row["true_temporal"] = warping_errors(smoothed, truth).mean
                    row["true_ratio"] = row["true_temporal"] / row["true_plain"]
                pairs = [distance(i, p, o) for i, p, o in zip(inputs, plain, smoothed)]  # (per frame, --temporal)
                styles = [after / before for before, after in pairs]
                row["style_plain"] = sum(before for before, _ in pairs) / len(pairs)
                row["style_ratio_mean"], row["style_ratio_max"] = sum(styles) / len(styles), max(styles)
                if known and known.objects is not None:
                    row["trail"], row["still_noise"] = trail(known, plain, smoothed)
                    if args.strip and method == args.consistency_methods[0] and name == "object":
                        strip_picture(known, plain, smoothed, Path(args.strip))
                if step is not None:
                    row["flicker_plain"], row["flicker_temporal"] = pan_flicker(plain, step), pan_flicker(smoothed, step)
                row["seconds"] = time.perf_counter() - start
                print(f"{name} {method}: E_warp input {row['input']:.5f}, per frame {row['plain']:.4f}, --temporal "
                      f"{row['temporal']:.4f} ({row['ratio']:.2f}x); style distance ratio {row['style_ratio_mean']:.3f} "
                      f"(worst frame {row['style_ratio_max']:.3f})", flush=True)
                rows.append(row)
    return rows


def consistency_table(data: dict) -> list[str]:
    lines = [f"| clip ({data['kind_frames']} frames) | method | input E_warp | per frame E_warp | --temporal E_warp "
             "| ratio | with the true flow: per frame / --temporal (ratio) | style distance per frame "
             "| --temporal / per frame (worst frame) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data["consistency"]:
        true = (f"{r['true_plain']:.4f} / {r['true_temporal']:.4f} ({r['true_ratio']:.2f}x)" if "true_ratio" in r
                else "unknown")
        lines.append(f"| {r['clip']} {r['size']} | {r['method']} | {r['input']:.5f} | {r['plain']:.4f} | "
                     f"{r['temporal']:.4f} | **{r['ratio']:.2f}x** | {true} | {r['style_plain']:.3f} | "
                     f"{r['style_ratio_mean']:.3f} ({r['style_ratio_max']:.3f}) |")
    extra = [r for r in data["consistency"] if "trail" in r or "flicker_plain" in r]
    if extra:
        lines.append("")
    for r in extra:
        if "trail" in r:
            lines.append(f"- {r['method']}, {r['clip']}: mean |--temporal − per frame| {r['trail']:.4f} where the "
                         f"square just was, {r['still_noise']:.4f} on the still background")
        if "flicker_plain" in r:
            lines.append(f"- {r['method']}, pan: flicker {r['flicker_plain']:.4f} per frame, "
                         f"{r['flicker_temporal']:.4f} with --temporal")
    return lines


# --- report ----------------------------------------------------------------------------------------


def markdown(data: dict) -> str:
    lines = [f"CPU/device: {data['device_name']}; torch {data['torch']}, {data['threads']} threads; "
             f"native bf16: {data['native_bf16']}; load average {data['load_at_start'][0]:.2f} at the start", ""]
    if data.get("speed"):
        lines += ["| method | precision | frames | ours frames/s | baseline frames/s (image path) | ours / baseline "
                  "| ours with --temporal, frames/s | --temporal / ours |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['precision']} | {r['frames']} x {r['size']} | {r['ours_fps']:.3g} | "
                  f"{r['baseline_fps']:.3g} | {r['speedup']:.2f}x | {r['temporal_fps']:.3g} | {r['temporal_ratio']:.2f}x |"
                  for r in data["speed"]]
        lines.append("")
    if data.get("consistency"):
        lines += consistency_table(data) + [""]
    if data.get("flicker"):
        lines += [f"| magenta on a pan ({data['pan_frames']} frames {PAN_SIZE[1]}x{PAN_SIZE[0]}, {PAN_STEP[0]} px down "
                  f"+ {PAN_STEP[1]} px right per frame) | flicker |", "|---|---|"]
        lines += [f"| {r['setting']} | {r['flicker']:.4f} |" for r in data["flicker"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["consistency", "speed", "flicker"], help="one part (default: all)")
    parser.add_argument("--kind-frames", type=int, default=12, help="frames of each consistency clip")
    parser.add_argument("--kind-size", type=int, default=256, help="side of the consistency clips (a multiple of 64)")
    parser.add_argument("--consistency-methods", default="magenta,adain")
    parser.add_argument("--footage", action="append", default=[], help="a real clip for the consistency part")
    parser.add_argument("--strip", help="save the object clip's frame strip (PNG) here")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=4, help="frames per speed clip")
    parser.add_argument("--pan-frames", type=int, default=16, help="frames of the flicker pan")
    parser.add_argument("--sizes", default="384,720", help=f"frame heights, of {','.join(map(str, SIZES))}")
    parser.add_argument("--methods", default="magenta,adain")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--encoder-weights", help="pytorch-AdaIN's vgg_normalised.pth (default: random)")
    parser.add_argument("--decoder-weights", help="pytorch-AdaIN's decoder.pth (default: random)")
    parser.add_argument("--frame-png", help="also save the last frame of the --temporal output here")
    parser.add_argument("--json", default="bench_video.json")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.methods, args.precisions = args.methods.split(","), args.precisions.split(",")
    args.consistency_methods = args.consistency_methods.split(",")
    if not set(args.sizes) <= set(SIZES):
        raise SystemExit(f"error: --sizes takes {', '.join(map(str, SIZES))}")
    warnings.simplefilter("ignore")  # bf16 without native support warns once per stylizer: the table says it
    data = {"device": args.device, "device_name": cpu_model() if args.device == "cpu" else torch.cuda.get_device_name(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "native_bf16": native_bf16(args.device),
            "cpu_count": os.cpu_count(), "load_at_start": os.getloadavg(), "pan_frames": args.pan_frames,
            "kind_frames": args.kind_frames,
            "command": " ".join(["python", *sys.argv])}
    start = time.perf_counter()
    if args.only in (None, "consistency"):
        data["consistency"] = consistency_rows(args)
    if args.only in (None, "flicker"):
        data["flicker"] = flicker_rows(args)
    if args.only in (None, "speed"):
        data["speed"] = speed_rows(args)
    data["seconds"], data["load_at_end"] = time.perf_counter() - start, os.getloadavg()
    Path(args.json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(markdown(data))
    print(f"\n{data['seconds']:.0f} s; load average {data['load_at_end'][0]:.2f} at the end; wrote {args.json}")


if __name__ == "__main__":
    main()
