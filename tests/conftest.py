"""Shared fixtures: tiny generated images and seeded random-weight encoders (no downloads)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.weights import RandomWeightsWarning, load_encoder


@pytest.fixture(autouse=True)
def _offline_torch_home(tmp_path_factory, monkeypatch):
    """Never touch the user's torch hub cache; every test gets an empty one."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


@pytest.fixture(autouse=True)
def _precision_auto_is_fp32(monkeypatch):
    """``--precision auto`` picks bf16 on CPUs with native bfloat16 and fp32 elsewhere; tests see
    fp32 on every CPU, so that their numbers do not depend on the machine. Tests of ``auto`` itself
    set ``native_bf16`` as they need."""
    monkeypatch.setattr("styletransfer.precision.native_bf16", lambda device: False)


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: many tiny ops gain nothing from more, and a run matches
    the single-threaded subprocesses' float sums. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_encoder(seed: int = 0, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_encoder(f"random:{seed}", **kwargs)


@pytest.fixture(scope="session")
def encoder():
    return random_encoder(0)


def write_image(path, width: int, height: int, seed: int = 0, mode: str = "RGB"):
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / max(width - 1, 1), ys / max(height - 1, 1), 0.5 + 0.5 * np.sin(xs / 3.0)], -1)
    pixels = np.clip(base * 200 + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


@pytest.fixture
def image_pair(tmp_path):
    """A 96x64 content image and an 80x80 style image (different sizes on purpose)."""
    content = write_image(tmp_path / "content.png", 96, 64, seed=1)
    style = write_image(tmp_path / "style.png", 80, 80, seed=2)
    return content, style


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def pytest_sessionfinish(session, exitstatus):
    """A child process still alive here (a data-loader worker a test failed to stop) would make the
    interpreter's exit handler wait for it; report it as a failure and kill it instead."""
    children = multiprocessing.active_children()
    if not children:
        return
    names = ", ".join(f"{child.name} (pid {child.pid})" for child in children)
    print(f"\nerror: {len(children)} child process(es) outlived the tests: {names}")
    for child in children:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=5)
    session.exitstatus = 1
