"""Video benchmark: frames per second of clip stylisation, and flicker with and without --temporal.

    python scripts/bench_video.py --only flicker                          # about 1 minute on 2 cores
    python scripts/bench_video.py --only speed --precisions fp32 --frames 8  # about 8 minutes on 2 cores
    python scripts/bench_video.py                                         # both parts, fp32 and bf16
    python scripts/bench_video.py --device cuda --frames 48

bf16 on a CPU without AVX512-BF16/AMX is emulated: there AdaIN at 720p takes minutes per frame.

**Speed.** For magenta and AdaIN, in fp32 and bf16, at 384p (682x384) and 720p (1280x720), a
clip of ``--frames`` frames (a pan over a sample picture) is stylised

* by ours, the clip path (``feedforward_files`` with a clip, as ``styletransfer
  stylize clip.mp4 style.jpg -o out.mp4 --method ...``: decode, stylise, encode, audio copied), and
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


def ours(clip: Path, folder: Path, method: str, precision: str, model, device: str) -> float:
    config, extra = method_files(method, precision, model)
    run = feedforward_files(method, clip, [STYLE], folder / "ours.mp4", config, device=device, video=VideoConfig(),
                            **extra)
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
                row = {"method": method, "precision": precision, "size": f"{SIZES[height][1]}x{height}",
                       "frames": args.frames, "ours_fps": args.frames / mine, "baseline_fps": args.frames / base,
                       "speedup": base / mine, "load": os.getloadavg()[0]}
                print(f"{method} {precision} {row['size']}: ours {row['ours_fps']:.3g} frames/s, baseline "
                      f"{row['baseline_fps']:.3g} frames/s ({row['speedup']:.2f}x)", flush=True)
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


# --- report ----------------------------------------------------------------------------------------


def markdown(data: dict) -> str:
    lines = [f"CPU/device: {data['device_name']}; torch {data['torch']}, {data['threads']} threads; "
             f"native bf16: {data['native_bf16']}; load average {data['load_at_start'][0]:.2f} at the start", ""]
    if data.get("speed"):
        lines += ["| method | precision | frames | ours frames/s | baseline frames/s (image path) | ours / baseline |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['precision']} | {r['frames']} x {r['size']} | {r['ours_fps']:.3g} | "
                  f"{r['baseline_fps']:.3g} | {r['speedup']:.2f}x |" for r in data["speed"]]
        lines.append("")
    if data.get("flicker"):
        lines += [f"| magenta on a pan ({data['pan_frames']} frames {PAN_SIZE[1]}x{PAN_SIZE[0]}, {PAN_STEP[0]} px down "
                  f"+ {PAN_STEP[1]} px right per frame) | flicker |", "|---|---|"]
        lines += [f"| {r['setting']} | {r['flicker']:.4f} |" for r in data["flicker"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["speed", "flicker"], help="one part (default: both)")
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
    if not set(args.sizes) <= set(SIZES):
        raise SystemExit(f"error: --sizes takes {', '.join(map(str, SIZES))}")
    warnings.simplefilter("ignore")  # bf16 without native support warns once per stylizer: the table says it
    data = {"device": args.device, "device_name": cpu_model() if args.device == "cpu" else torch.cuda.get_device_name(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "native_bf16": native_bf16(args.device),
            "cpu_count": os.cpu_count(), "load_at_start": os.getloadavg(), "pan_frames": args.pan_frames,
            "command": " ".join(["python", *sys.argv])}
    start = time.perf_counter()
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
