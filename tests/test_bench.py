"""The benchmark's baseline does the same work as the package, and its measuring helpers are right.

Speed is never asserted here: the ratios in README are only meaningful if the baseline computes
what the package computes, which these tests check.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import baseline as B  # noqa: E402
import bench  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def adain_networks():
    return bench.adain_networks(SimpleNamespace(encoder_weights=None, decoder_weights=None), CPU)


def test_baseline_adain_is_our_fp32_stylizer(adain_networks):
    vgg, decoder, model = adain_networks
    content, style = bench.sample_images(64, CPU, 1)[0], bench.style_image(48, CPU)
    theirs = B.adain_style_transfer(vgg, decoder, content, style, alpha=0.6)[0].clamp(0, 1)  # (3, 64, 64)
    ours = bench.our_stylizer(model, CPU, "fp32", alpha=0.6, channels_last=False).stylize(content[0], [style[0]])
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=0)


def test_calibrated_random_decoder_gives_images_not_saturation(adain_networks):
    vgg, decoder, _ = adain_networks
    with torch.no_grad():
        out = B.adain_style_transfer(vgg, decoder, bench.sample_images(128, CPU, 1)[0], bench.style_image(128, CPU))
    inside = ((out >= 0) & (out <= 1)).float().mean()
    assert inside > 0.9  # PSNRs and seam ratios on these outputs compare pixels, not clipped values


def test_baseline_gatys_objective_is_our_default_objective():
    from styletransfer.optimize import Objective, StylizeConfig

    encoder, vgg = bench.encoders(CPU)
    content, style = bench.sample_images(48, CPU, 2)
    config = StylizeConfig(style_weight=bench.STYLE_WEIGHT, content_weight=bench.CONTENT_WEIGHT,
                           tv_weight=bench.TV_WEIGHT).validate()
    ours = Objective(encoder, content, [style], config)
    theirs = B.gatys_objective(vgg, content, style, bench.STYLE_WEIGHT, bench.CONTENT_WEIGHT, bench.TV_WEIGHT)
    x = (content + 0.1 * torch.randn(content.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    with torch.no_grad():
        expected, got = float(theirs(x)), float(ours(x)[0])
        at_content = float(theirs(content))
    assert got == pytest.approx(expected, rel=1e-4)
    assert at_content == pytest.approx(bench.STYLE_WEIGHT, rel=1e-3)  # normalised: style 1, content 0, small tv


def test_psnr_and_seam_ratio():
    from styletransfer.tiling import plan_tiles

    line = torch.linspace(0, 0.5, 64)
    ramp = (line[:, None] + line[None, :]).expand(3, 64, 64).clone()  # smooth: the same step everywhere
    tiles = plan_tiles(64, 64, 32)
    assert bench.seam_ratio(ramp, tiles) == pytest.approx(1.0, rel=1e-4)
    seamed = ramp.clone()
    seamed[:, :, 32:] += 0.2  # a jump where the second column of tiles starts
    assert bench.seam_ratio(seamed, tiles) > 10
    assert bench.psnr(ramp, ramp) == math.inf
    assert bench.psnr(ramp, ramp + 0.1) == pytest.approx(20.0)
    flat_rows = line.expand(3, 64, 64)  # no change down the columns: only the other axis counts
    assert bench.seam_ratio(flat_rows, tiles) == pytest.approx(1.0, rel=1e-4)


def test_markdown_table_renders_every_row():
    data = {"rows": [
        {"row": "AdaIN one pair bf16 s/image @512²", "ours": 1.0, "baseline": 3.0, "speedup": 3.0,
         "peak_rss_mb": 800.4, "baseline_peak_rss_mb": 900.6, "note": ""},
        {"row": "PSNR", "ours": 41.25, "baseline": None, "speedup": None, "peak_rss_mb": None,
         "baseline_peak_rss_mb": None, "note": "guard ok"},
    ]}
    lines = bench.markdown_table(data).splitlines()
    assert lines[2] == "| AdaIN one pair bf16 s/image @512² | 1.000 | 3.000 | 3.00× | 800 / 901 |  |"
    assert lines[3] == "| PSNR | 41.250 | - | - | - / - | guard ok |"


def test_unknown_group_is_refused_before_anything_runs():
    assert bench.wanted_groups(None) == set(bench.GROUPS)
    assert bench.wanted_groups("tiled,compile") == {"tiled", "compile"}
    run = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--only", "tiled,nope"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stdout == "" and run.stderr.strip().splitlines() == [
        f"error: unknown group nope: choose from {', '.join(bench.GROUPS + bench.OPT_IN_GROUPS)}"]


@pytest.mark.slow
def test_one_row_runs_in_its_own_process_and_reports_json(tmp_path):
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--row", "adain_pair", "--impl", "bf16",
                          "--size", "64", "--repeats", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["seconds"] > 0 and result["peak_rss_mb"] > 0
    report.write_text(json.dumps({"rows": []}))
    shown = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--markdown", str(report)],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("| row | ours |")
