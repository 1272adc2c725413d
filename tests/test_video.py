"""Video: clips in and out (PyAV), the stylisation of clips by every feed-forward method,
bad clips, interrupted runs, and --temporal (its hooks, less flicker on a pan; on clips of
known motion: tests/test_video_temporal.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from styletransfer.adain import AdaINConfig, AdaINStylizer, adain, mean_std
from styletransfer.api import feedforward_files, plan_jobs
from styletransfer.cli import main
from styletransfer.errors import UsageError
from styletransfer.imageio import load_image
from styletransfer.magenta.networks import StyleNorm
from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer
from styletransfer.realtime import Networks
from styletransfer.video import (
    ClipStylizer,
    RunningMoments,
    VideoConfig,
    VideoError,
    pan,
    pan_flicker,
    probe,
    read_frames,
    smoothing,
    transcode,
)
from styletransfer.video import io as video_io
from styletransfer.video.io import read_clip_metadata
from styletransfer.video.temporal import DEFAULT_MOMENTUM
from styletransfer.wct import WCTConfig, WCTStylizer
from styletransfer.weights import load_encoder
from tests.helpers.adain_helpers import calibrated_model, pytorch_adain_encoder
from tests.helpers.video_helpers import audio_payloads, frame_times, make_audio_only, make_clip, make_unknown_codec, moving_frames

pytestmark = pytest.mark.usefixtures("one_thread")
STYLE = Path("assets/style/mosaic.jpg")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def clip(tmp_path):
    """12 frames, 96x64, 24 frames/s, with an AAC tone."""
    return make_clip(tmp_path / "clip.mp4", moving_frames(12), audio=True)


@pytest.fixture(scope="module")
def magenta():
    return load_stylizer(MagentaConfig())


@pytest.fixture(scope="module")
def decoder_model(tmp_path_factory):
    """pytorch-AdaIN's vgg to relu4_1 with random weights, and a decoder calibrated on its AdaIN targets."""
    vgg = tmp_path_factory.mktemp("nets") / "vgg.pth"
    torch.save(pytorch_adain_encoder(seed=3, children=31).state_dict(), vgg)
    return calibrated_model(load_encoder(str(vgg)), lambda f, s: adain(f, *mean_std(s)))


def no_leftovers(folder: Path, *keep: Path) -> bool:
    """Nothing but ``keep`` in ``folder``: no output, no temporary file."""
    return sorted(folder.iterdir()) == sorted(keep)


# -- reading and writing ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".avi", ".webm"])
def test_transcode_keeps_frames_size_and_rate(tmp_path, suffix):
    source = make_clip(tmp_path / "in.mp4", moving_frames(6, 40, 54))
    result = transcode(source, tmp_path / f"out{suffix}", lambda frame: 1 - frame)
    info = probe(tmp_path / f"out{suffix}")
    assert result.frames == 6 and (info.width, info.height) == (54, 40) == result.size
    assert info.rate == Fraction(24) and len(list(read_frames(tmp_path / f"out{suffix}"))) == 6
    first_in, first_out = next(read_frames(source)), next(read_frames(tmp_path / f"out{suffix}"))
    assert (1 - first_in - first_out).abs().mean() < 0.05  # the processed frames were written


def test_variable_frame_times_audio_and_metadata_are_kept(tmp_path):
    milliseconds = [0, 40, 100, 120, 200, 210]
    source = make_clip(tmp_path / "vfr.mp4", moving_frames(6), audio=True, milliseconds=milliseconds)
    for suffix in (".mp4", ".mkv"):
        target = tmp_path / f"out{suffix}"
        transcode(source, target, lambda frame: frame, metadata={"method": "test"})
        times = frame_times(target)
        assert [b - a for a, b in zip(times, times[1:])] == [Fraction(b - a, 1000) for a, b in
                                                            zip(milliseconds, milliseconds[1:])]
        assert audio_payloads(target) == audio_payloads(source) != []  # copied packet for packet
        assert read_clip_metadata(target) == {"method": "test"}


def test_odd_sizes_and_lossless_output(tmp_path):
    frames = moving_frames(4, 33, 47)
    source = make_clip(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    transcode(source, tmp_path / "out.mp4", lambda frame: frame, crf=0)
    assert (probe(tmp_path / "out.mp4").width, probe(tmp_path / "out.mp4").height) == (47, 33)
    decoded_in, decoded_out = list(read_frames(source)), list(read_frames(tmp_path / "out.mp4"))
    assert max(float((a - b).abs().max()) for a, b in zip(decoded_in, decoded_out)) <= 3 / 255  # YUV rounding only


def test_colour_tags_are_kept_and_used(tmp_path):
    """A BT.709 clip is read with BT.709's matrix and written tagged and converted the same way."""
    bt709 = 1
    frames = [torch.tensor([0.8, 0.2, 0.1]).view(3, 1, 1).expand(3, 32, 48).clone()] * 2
    source = make_clip(tmp_path / "709.mp4", frames, colorspace=bt709, pix_fmt="yuv444p")
    transcode(source, tmp_path / "out.mp4", lambda frame: frame, crf=0)
    with video_io.require_av().open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.colorspace == bt709
    for path in (source, tmp_path / "out.mp4"):
        assert (next(read_frames(path)) - frames[0]).abs().max() <= 3 / 255


def test_a_rotated_clip_is_read_upright(tmp_path):
    frames = moving_frames(3, 32, 48)
    frames[0][:, :, :8] = 1.0  # a white band at the left edge
    source = make_clip(tmp_path / "rot.mp4", frames, rotation=90)
    info, first = probe(source), next(read_frames(source))
    assert (info.width, info.height) == (32, 48) and first.shape == (3, 48, 32)
    assert first[:, -8:, :].mean() > 0.9  # turned a quarter counter-clockwise: the left edge is at the bottom


def test_interrupted_transcode_leaves_the_old_file_and_no_temporary(tmp_path, clip):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"the previous result")
    seen = []

    def stop_at_the_third(frame):
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return frame

    with pytest.raises(KeyboardInterrupt):
        transcode(clip, target, stop_at_the_third)
    assert target.read_bytes() == b"the previous result" and no_leftovers(tmp_path, clip, target)


def test_missing_pyav_is_one_line_naming_the_extra(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(VideoError, match=r'pip install -e "\.\[video\]"'):
        probe(clip)
    result = run("stylize", clip, STYLE, "-o", tmp_path / "out.mp4", "--method", "magenta", "--no-progress")
    assert result.exit_code == 1 and result.output.count("\n") == 1 and ".[video]" in result.output


def test_temporal_without_opencv_is_one_line_naming_the_extra_and_writes_nothing(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    out = tmp_path / "out.mp4"
    result = run("stylize", clip, STYLE, "-o", out, "--method", "magenta", "--temporal", "--no-progress")
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "optical flow needs OpenCV" in result.output and ".[video]" in result.output and not out.exists()


# -- bad input: one line, nothing written ---------------------------------------------------------


def text_named_mp4(folder: Path) -> Path:
    (folder / "notes.mp4").write_text("not a video")
    return folder / "notes.mp4"


BAD_CLIPS = {
    "not a video": (text_named_mp4, "not a clip PyAV can read", []),
    "no video stream": (lambda folder: make_audio_only(folder / "sound.mp4"), "no video stream", []),
    "unsupported codec": (lambda folder: make_unknown_codec(folder / "odd.avi"), "no decoder", []),
    "huge frames": (lambda folder: make_clip(folder / "big.mp4", moving_frames(2)), "--max-pixels 6144",
                    ["--max-pixels", 5000]),
}


@pytest.mark.parametrize("case", BAD_CLIPS)
def test_a_bad_clip_is_one_line_and_nothing_is_written(tmp_path, case):
    make, needle, flags = BAD_CLIPS[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    source, out = make(inputs), tmp_path / "out"
    out.mkdir()
    result = run("stylize", source, STYLE, "-o", out / "styled.mp4", "--method", "magenta", "--no-progress", *flags)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1 and needle in result.output
    assert no_leftovers(out)


@pytest.mark.parametrize("flags,needle", [
    (["-o", "{tmp}/out.png", "--method", "magenta"], "unknown video clip extension"),
    (["-o", "{tmp}/out.mp4"], "clips go through a feed-forward method"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--temporal-momentum", "0.5"], "add --temporal"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--temporal", "--temporal-blend", "1"], "--temporal-blend"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--temporal-flow", "medium"], "add --temporal"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--temporal", "--temporal-flow", "slow"], "--temporal-flow"),
    (["-o", "{tmp}/out.webm", "--method", "magenta"], "aac audio, which .webm cannot hold"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--crop"], "--crop would change the frame size"),
    (["-o", "{tmp}/out.mp4", "--method", "magenta", "--temporal", "--tile-size", "32"], "--tile-size 0"),
])
def test_bad_clip_flags_are_one_line_errors(tmp_path, clip, flags, needle):
    out = tmp_path / "out"
    out.mkdir()
    result = run("stylize", clip, STYLE, "--no-progress", *[f.format(tmp=out) for f in flags])
    assert result.exit_code in (1, 2) and result.output.lower().count("error:") == 1, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert no_leftovers(out)


def test_temporal_with_an_image_is_a_usage_error(tmp_path, image_pair):
    content, style = image_pair
    result = run("stylize", content, style, "-o", tmp_path / "o.png", "--method", "magenta", "--temporal")
    assert result.exit_code == 2 and "--temporal applies to video clips" in result.output


# -- stylising clips ------------------------------------------------------------------------------


def test_magenta_clip_end_to_end(tmp_path, clip):
    out, report = tmp_path / "styled.mp4", tmp_path / "report.json"
    result = run("stylize", clip, STYLE, "--style", "assets/style/swirl.jpg", "--style-blend", "0.7,0.3",
                 "--alpha", "0.8", "--preserve-color", "luminance", "-o", out, "--method", "magenta",
                 "--report", report, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "12 frames at" in result.output and "frames/s" in result.output
    info = probe(out)
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (96, 64, 12, Fraction(24), ("aac",))
    assert frame_times(out) == frame_times(clip) and audio_payloads(out) == audio_payloads(clip)
    styled, original = next(read_frames(out)), next(read_frames(clip))
    assert (styled - original).abs().mean() > 0.03 and styled.std() > 0.05  # stylised, and a picture
    data = json.loads(report.read_text())
    (output,) = data["outputs"]
    assert output["frames"] == 12 and output["frames_per_second"] > 0 and data["style_statistics_computed"] == 2
    assert data["video"]["temporal"] is False and data["config"]["alpha"] == 0.8
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_without_temporal_each_frame_is_what_the_image_path_gives(tmp_path, magenta):
    source = make_clip(tmp_path / "in.mp4", moving_frames(3), pix_fmt="yuv444p")
    feedforward_files("magenta", source, [STYLE], tmp_path / "out.mp4", video=VideoConfig(crf=0))
    embedding = magenta.represent_style(load_image(STYLE))
    for frame, written in zip(read_frames(source), read_frames(tmp_path / "out.mp4"), strict=True):
        difference = (written - magenta.stylize(frame, [embedding])).abs()
        assert difference.mean() < 1 / 255 and difference.max() <= 4 / 255  # 8-bit YUV rounding only


@pytest.mark.slow
def test_the_benchmark_script_runs_and_measures(tmp_path):
    report = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "scripts/bench_video.py", "--only", "flicker", "--pan-frames", "2",
                           "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(report.read_text())
    content, *styled = data["flicker"]
    assert content["flicker"] == 0 and len(styled) == 4 and all(row["flicker"] > 0 for row in styled)
    assert "| without --temporal |" in done.stdout


@pytest.mark.slow
def test_the_consistency_benchmark_measures_every_clip_kind(tmp_path):
    """The consistency part on tiny clips: every kind, a footage clip (one of the sample clips
    written here), both methods; E_warp is measured, halved by --temporal, the strip drawn."""
    footage = make_clip(tmp_path / "walk.mp4", moving_frames(4, 64, 96))
    report, strip = tmp_path / "bench.json", tmp_path / "strip.png"
    done = subprocess.run([sys.executable, "scripts/bench_video.py", "--only", "consistency", "--kind-frames", "4",
                           "--kind-size", "64", "--footage", str(footage), "--strip", str(strip), "--json", str(report)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(report.read_text())["consistency"]
    assert [(r["clip"], r["method"]) for r in rows] == [(c, m) for c in ("pan", "zoom", "rotation", "object",
                                                                         "red square", "cut",
                                                                         "walk.mp4") for m in ("magenta", "adain")]
    assert all(r["temporal"] < r["plain"] and r["style_ratio_max"] > 0 for r in rows)
    assert all("true_ratio" in r for r in rows if r["clip"] != "walk.mp4")
    assert {r["clip"]: r["cuts"] for r in rows}["cut"] == 1
    assert load_image(strip).shape[-1] == 4 * 64 and "| object 64x64 | magenta |" in done.stdout


def test_each_style_is_embedded_once_per_run(tmp_path, clip, monkeypatch):
    from styletransfer.magenta.stylizer import MagentaStylizer

    calls = []
    original = MagentaStylizer.represent_style
    monkeypatch.setattr(MagentaStylizer, "represent_style", lambda self, *a: calls.append(1) or original(self, *a))
    feedforward_files("magenta", clip, [STYLE], tmp_path / "out.mkv")
    assert len(calls) == 1 and probe(tmp_path / "out.mkv").width == 96


@pytest.mark.parametrize("method, stylizer_config", [("adain", AdaINConfig), ("wct", WCTConfig)])
def test_decoder_methods_take_clips_matching_colours_once(tmp_path, clip, decoder_model, method, stylizer_config):
    """coral matches the style to the clip's first frame once, so the statistics are computed once."""
    config = stylizer_config(content_size=48, style_size=64, preserve_color="coral")
    networks = Networks(weights=decoder_model.encoder, decoder=decoder_model.decoder)
    run_ = feedforward_files(method, clip, [STYLE], tmp_path / "out.mp4", config, networks=networks,
                             video=VideoConfig(temporal=True))
    (output,) = run_.outputs
    assert output.frames == 12 and output.size == (96, 64) and run_.style_statistics_computed == 1
    assert probe(tmp_path / "out.mp4").frames == 12  # stylised at 48 px, written at the clip's size


def test_folder_mode_takes_clips_and_images(tmp_path, clip):
    contents = tmp_path / "contents"
    contents.mkdir()
    clip.rename(contents / "walk.mov")
    write_image(contents / "still.png", 40, 30)
    jobs = plan_jobs(None, [STYLE], tmp_path / "out", content_dir=contents, ext="jpg")
    assert [job.output.name for job in jobs] == ["still_stylized_mosaic.jpg", "walk_stylized_mosaic.mov"]
    result = run("stylize", STYLE, "--content-dir", contents, "-o", tmp_path / "out", "--method", "magenta",
                 "--ext", "jpg", "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["still_stylized_mosaic.jpg",
                                                                    "walk_stylized_mosaic.mov"]
    assert "1 images and 1 clips" in result.output and probe(tmp_path / "out" / "walk_stylized_mosaic.mov").frames == 12


# -- --temporal: hooks, motion, flicker -------------------------------------------------------------


def test_running_moments_are_an_exponential_moving_average():
    running = RunningMoments(0.75)
    first, second = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    assert torch.equal(running("k", first)[0], first)
    assert torch.allclose(running("k", second)[0], 0.75 * first + 0.25 * second)
    assert torch.equal(running("other", second)[0], second)  # one average per key
    running.reset()
    assert torch.equal(running("k", second)[0], second) and len(running) == 1


def stylizers(magenta, decoder_model):
    sizes = dict(content_size=0, style_size=64)
    return {"magenta": magenta, "adain": AdaINStylizer(decoder_model, AdaINConfig(**sizes)),
            "wct": WCTStylizer(decoder_model, WCTConfig(**sizes))}


@pytest.mark.parametrize("method", ["magenta", "adain", "wct"])
def test_smoothing_hooks_change_nothing_at_momentum_zero_or_on_a_still(magenta, decoder_model, method):
    stylizer = stylizers(magenta, decoder_model)[method]
    style = load_image(STYLE)
    frames = moving_frames(2, 40, 56)
    plain = [stylizer.stylize(frame, [style]) for frame in frames]
    with smoothing(stylizer, RunningMoments(0.0)) as running:
        assert torch.equal(torch.stack([stylizer.stylize(f, [style]) for f in frames]), torch.stack(plain))
        assert len(running) > 0  # the hooks were called
    with smoothing(stylizer, RunningMoments(0.9)):
        again = [stylizer.stylize(frames[0], [style]) for _ in range(2)]  # the average of a constant is the constant
        moving = stylizer.stylize(frames[1], [style])
    assert torch.equal(again[0], plain[0]) and torch.equal(again[1], plain[0])
    assert not torch.equal(moving, plain[1])  # the running statistics act
    assert torch.equal(stylizer.stylize(frames[1], [style]), plain[1])  # hooks gone: the image path as before
    owners = [stylizer, *(m for m in getattr(stylizer, "transformer", torch.nn.Module()).modules())]
    assert all("smooth_moments" not in vars(owner) for owner in owners)


def test_magenta_hooks_reach_every_norm_and_the_own_embedding(magenta):
    norms = [m for m in magenta.transformer.modules() if isinstance(m, StyleNorm)]
    running = RunningMoments(0.5)
    alpha = load_stylizer(MagentaConfig(alpha=0.5))
    with smoothing(alpha, running):
        alpha.stylize(moving_frames(1, 32, 32)[0], [load_image(STYLE)])
    assert len(running) == len(norms) + 1 and any("content_embedding" in key for key in running._averages)


def test_flicker_is_measured_and_temporal_reduces_it(tmp_path):
    """The pan's own flicker is 0; magenta's per-frame stylisation flickers, --temporal less."""
    frames = pan(load_image("assets/content/chelsea.jpg"), 64, 96, 10, (1, 3))
    assert pan_flicker(frames, (1, 3)) == 0
    source = make_clip(tmp_path / "pan.mp4", frames, pix_fmt="yuv444p")
    figures = {}
    for temporal in (False, True):
        out = tmp_path / f"temporal_{temporal}.mp4"
        feedforward_files("magenta", source, [STYLE], out, video=VideoConfig(temporal=temporal, crf=0))
        figures[temporal] = pan_flicker(list(read_frames(out)), (1, 3))
    assert 0.01 < figures[True] < 0.8 * figures[False]


def test_clip_stylizer_refuses_crop(tmp_path, clip, magenta):
    cropping = load_stylizer(MagentaConfig(crop=True))
    with pytest.raises(UsageError, match="--crop"):
        ClipStylizer(cropping).stylize(clip, tmp_path / "o.mp4", lambda first: [load_image(STYLE)])
    assert no_leftovers(tmp_path, clip)


def test_temporal_settings_reach_the_clip_and_its_metadata(tmp_path, clip):
    out = tmp_path / "styled.mp4"
    result = run("stylize", clip, STYLE, "-o", out, "--method", "magenta", "--temporal", "--temporal-flow", "medium",
                 "--temporal-blend", "0.4", "--no-progress")
    assert result.exit_code == 0, result.output
    video = read_clip_metadata(out)["video"]
    assert (video["temporal"], video["flow"], video["blend"], video["momentum"]) == (True, "medium", 0.4, DEFAULT_MOMENTUM)
