"""``stylize-dataset``: the plan, batches against single images, resuming, errors, processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from styletransfer.cli import main
from styletransfer.dataset import DatasetConfig, stylize_dataset
from styletransfer.dataset import records as R
from styletransfer.dataset import run as dataset_run
from styletransfer.dataset.plan import choose_styles, make_plan, output_relpath, rank_chunks
from styletransfer.errors import UsageError
from styletransfer.imageio import list_images, read_metadata
from tests.helpers.adain_helpers import seeded_decoder

ROOT = Path(__file__).resolve().parents[1]
STYLES = ROOT / "assets" / "style"
TIMEOUT = 180
TINY = dict(style_size=64, batch_size=4, workers=0)  # Magenta on small images: quick and real


def make_contents(root: Path, count: int = 6, *, size=(48, 40), broken: bool = False) -> Path:
    """``count`` images in two class folders (some PNG, some JPEG), optionally one unreadable file."""
    for index in range(count):
        folder = root / ("cat" if index % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        width, height = size if index % 3 else size[::-1]
        write_image(folder / f"img{index:02d}.{'png' if index % 3 else 'jpg'}", width, height, seed=index)
    if broken:
        (root / "dog" / "broken.jpg").write_bytes(b"not an image")
    return root


def files_of(folder: Path) -> dict[str, bytes]:
    """Every image below ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".png", ".jpg")}


def run_magenta(content, out, cache="none", **changes):
    return stylize_dataset(content, STYLES, out, DatasetConfig(**{**TINY, **changes}), style_cache=cache, device="cpu")


# -- the plan ------------------------------------------------------------------------------------


def test_style_choice_depends_on_seed_and_path_only(tmp_path):
    content = make_contents(tmp_path / "content", 6)
    config = DatasetConfig(num_styles=2)
    first = make_plan(content, STYLES, tmp_path / "out", config)
    by_path = {(first.contents[o.content], o.k): first.styles[o.style] for o in first.outputs}
    make_contents(tmp_path / "content" / "aaa", 3)  # more files, sorted before the others
    second = make_plan(content, STYLES, tmp_path / "out", config)
    assert len(second.contents) == 9
    for output in second.outputs:
        key = (second.contents[output.content], output.k)
        if key in by_path:
            assert by_path[key] == second.styles[output.style]
    for index in range(len(second.contents)):  # K different styles per content
        assert len({o.style for o in second.outputs_of(index)}) == 2
    three = ["x.jpg", "y.jpg", "z.jpg"]
    draws = {tuple(choose_styles("a/b.jpg", seed, three, 1)) for seed in range(20)}
    assert len(draws) == 3  # the seed moves the choice; every style gets drawn
    assert choose_styles("a/b.jpg", 5, three, 2) == choose_styles("a/b.jpg", 5, three, 2)


def test_style_choice_is_a_hash_ranking_and_survives_added_styles():
    import hashlib

    styles = [f"s{i}.jpg" for i in range(10)]
    digests = {s: hashlib.sha256(f"7\0c/x.png\0{s}".encode()).hexdigest() for s in styles}
    assert [styles[i] for i in choose_styles("c/x.png", 7, styles, 3)] == sorted(styles, key=digests.get)[:3]
    # A style added (sorted first, so every index moves): each content keeps its choice unless
    # the new style ranks among its first K, and then only the new style enters.
    more = ["a_new.jpg", *styles]
    changed = 0
    for index in range(200):
        content = f"dir/img{index}.jpg"
        before = [styles[i] for i in choose_styles(content, 3, styles, 2)]
        after = [more[i] for i in choose_styles(content, 3, more, 2)]
        if after != before:
            changed += 1
            assert "a_new.jpg" in after and [s for s in before if s in after] == [s for s in after if s != "a_new.jpg"]
    assert 0 < changed < 200 * 0.35  # about K / (n + 1) = 18 % of the contents


def test_output_names_keep_folders_and_names():
    assert output_relpath("n01/x.JPEG", 0, 1, None) == "n01/x.JPEG"
    assert output_relpath("n01/x.jpg", 3, 5, None) == "n01/x_3.jpg"
    assert output_relpath("n01/x.jpg", 0, 1, "png") == "n01/x.png"
    assert output_relpath("x.gif", 0, 1, None) == "x.png"  # a format we do not write


def test_plan_refuses_what_would_go_wrong(tmp_path):
    content = make_contents(tmp_path / "content", 3)
    write_image(content / "dog" / "img00.png", 40, 40)  # beside img00.jpg
    with pytest.raises(UsageError, match="would both write"):
        make_plan(content, STYLES, tmp_path / "out", DatasetConfig(ext="png"))
    held = len(list_images(STYLES, recursive=False))
    with pytest.raises(UsageError, match=f"STYLE_ROOT holds {held}"):
        make_plan(content, STYLES, tmp_path / "out", DatasetConfig(num_styles=held + 1))
    with pytest.raises(UsageError, match="overlaps CONTENT_ROOT"):
        make_plan(content, STYLES, content / "stylised", DatasetConfig())
    with pytest.raises(UsageError, match="not a folder"):
        make_plan(tmp_path / "missing", STYLES, tmp_path / "out", DatasetConfig())


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_ranks_share_the_chunks_without_overlap(tmp_path, world_size):
    content = make_contents(tmp_path / "content", 11)
    chunks = make_plan(content, STYLES, tmp_path / "out", DatasetConfig(batch_size=4, num_styles=2)).chunks()
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 2, 1]  # batch 4 = 2 contents × 2 styles
    shares = [rank_chunks(chunks, rank, world_size) for rank in range(world_size)]
    taken = [c for share in shares for c in share]
    assert sorted(taken, key=lambda c: c.start) == chunks and len(taken) == len(chunks)


# -- batches give what single images give --------------------------------------------------------


def test_magenta_batch_matches_single_images():
    from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer

    stylizer = load_stylizer(MagentaConfig(alpha=0.6, style_size=64))
    generator = torch.Generator().manual_seed(0)
    contents = torch.rand(2, 3, 40, 52, generator=generator)
    styles = [stylizer.represent_style(torch.rand(3, 70, 64, generator=generator)) for _ in range(3)]
    batch = stylizer.stylize_batch(contents, [[styles[0], styles[1]], [styles[2], styles[0]]])
    assert batch.shape == (2, 2, 3, 40, 52)
    for b, group in enumerate([[0, 1], [2, 0]]):
        for k, s in enumerate(group):
            assert torch.allclose(batch[b, k], stylizer.stylize(contents[b], [styles[s]]), atol=1e-5)


@pytest.mark.parametrize("method, tile_size", [("adain", None), ("adain", 16), ("wct", None)])  # WCT never tiles
def test_decoder_method_batch_matches_single_images(encoder, method, tile_size):
    from styletransfer.adain import AdaINModel
    from styletransfer.adain.stylizer import AdaINConfig, AdaINStylizer
    from styletransfer.wct.stylizer import WCTConfig, WCTStylizer

    model = AdaINModel(encoder, seeded_decoder(0, torch.randn(2, 512, 4, 4))).eval()
    config = dict(alpha=0.8, content_size=0, style_size=0)
    stylizer = (AdaINStylizer(model, AdaINConfig(**config, tile_size=tile_size)) if method == "adain"
                else WCTStylizer(model, WCTConfig(**config)))
    generator = torch.Generator().manual_seed(1)
    contents = torch.rand(2, 3, 30, 37, generator=generator)
    styles = [stylizer.style_statistics(torch.rand(3, 32, 32, generator=generator)) for _ in range(2)]
    batch = stylizer.stylize_batch(contents, [[styles[0], styles[1]], [styles[1], styles[0]]])
    for b, group in enumerate([[0, 1], [1, 0]]):
        for k, s in enumerate(group):
            difference = (batch[b, k] - stylizer.stylize(contents[b], [styles[s]])).abs().max()
            assert difference < 1e-3, float(difference)  # WCT: an eigendecomposition of a rank-deficient Σ


def test_magenta_alpha_with_a_content_size_embeds_the_original_content_as_stylize_does(tmp_path):
    """alpha < 1 mixes in the content's own embedding: the dataset run takes it from the original
    file prepared at the style size, not from the already resized content resized again."""
    from styletransfer.imageio import load_image
    from styletransfer.magenta.stylizer import MagentaConfig, load_stylizer

    content = tmp_path / "content"
    content.mkdir()
    write_image(content / "wide.png", 150, 100, seed=4)
    out = tmp_path / "out"
    run_magenta(content, out, alpha=0.3, content_size=40, style_size=96)
    [row] = R.read_rows(out / "manifest.csv", R.MANIFEST)
    stylizer = load_stylizer(MagentaConfig(alpha=0.3, content_size=40, style_size=96))
    expected = stylizer.stylize(load_image(content / "wide.png"), [load_image(STYLES / row["style"])])
    written = load_image(out / row["output"])
    assert written.shape == expected.shape == (3, 40, 60)
    assert (written - expected).abs().max() <= 2 / 255  # PNG rounding; the second resize was off by up to 0.13


# -- a run ----------------------------------------------------------------------------------------


def test_a_run_mirrors_the_folders_and_records_every_output(tmp_path):
    content = make_contents(tmp_path / "content", 5, broken=True)
    out = tmp_path / "out"
    run = run_magenta(content, out, num_styles=2)
    assert (run.written, run.existing, run.failed, run.bad_inputs) == (10, 0, 2, 1)
    written = files_of(out)
    assert sorted(written) == sorted(f"{Path(c).parent.as_posix()}/{Path(c).stem}_{k}{Path(c).suffix}"
                                     for c in (p.relative_to(content).as_posix() for p in content.rglob("img*"))
                                     for k in range(2))
    rows = R.read_rows(out / "manifest.csv", R.MANIFEST)
    assert [row["output"] for row in rows] == sorted(written)
    for row in rows:
        metadata = read_metadata(out / row["output"])
        assert (metadata["content"], metadata["style"], metadata["k"]) == (row["content"], row["style"], row["k"])
        assert row["status"] == R.WRITTEN and row["method"] == "magenta" and row["style_size"] == 64
        assert (tmp_path / "content" / row["content"]).exists() and (STYLES / row["style"]).exists()
    [error] = R.read_rows(out / "errors.csv", R.ERRORS)
    assert (error["role"], error["input"], error["outputs"]) == ("content", "dog/broken.jpg", 2)
    assert "Pillow" in error["error"]
    assert not list(out.glob("*.rank*.*"))  # the shards were merged


def test_batches_and_workers_do_not_change_the_outputs(tmp_path):
    content = make_contents(tmp_path / "content", 6, size=(40, 40))  # one shape: whole chunks in one batch
    run_magenta(content, tmp_path / "a", batch_size=1)
    run_magenta(content, tmp_path / "b", batch_size=6, workers=2, manifest_format="jsonl")
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert sorted(a) == sorted(b)
    for name in a:  # a batch of six against one image at a time: rounding at most
        from styletransfer.imageio import load_image

        assert (load_image(tmp_path / "a" / name) - load_image(tmp_path / "b" / name)).abs().max() <= 2 / 255
    rows_a = R.read_rows(tmp_path / "a" / "manifest.csv", R.MANIFEST)
    rows_b = R.read_rows(tmp_path / "b" / "manifest.jsonl", R.MANIFEST)
    assert rows_a == rows_b  # the same rows whichever the format


def test_a_rerun_completes_what_is_missing_and_writes_the_same_bytes(tmp_path, monkeypatch):
    content = make_contents(tmp_path / "content", 6, broken=True)
    out = tmp_path / "out"
    run_magenta(content, out)
    before = files_of(out)
    for name in sorted(before)[:2]:
        (out / name).unlink()
    (out / "cat" / ".img01.png.x1y2.tmp").write_bytes(b"half")  # what a killed write leaves
    again = run_magenta(content, out)
    assert (again.written, again.existing, again.failed) == (2, 4, 1)
    assert files_of(out) == before
    assert not list((out / "cat").glob(".*.tmp"))
    statuses = {row["output"]: row["status"] for row in R.read_rows(out / "manifest.csv", R.MANIFEST)}
    assert sorted(o for o, s in statuses.items() if s == R.WRITTEN) == sorted(before)[:2]

    def no_models(*args, **kwargs):
        raise AssertionError("a finished run loaded the networks")

    monkeypatch.setattr(dataset_run, "_stylizer", no_models)
    finished = run_magenta(content, out)  # the unreadable file is known and unchanged: nothing to do
    assert (finished.written, finished.existing, finished.failed, finished.bad_inputs) == (0, 6, 1, 1)
    monkeypatch.undo()
    write_image(content / "dog" / "broken.jpg", 40, 48, seed=9)  # mended: tried again
    mended = run_magenta(content, out)
    assert (mended.written, mended.failed, mended.bad_inputs) == (1, 0, 0)
    assert not (out / "errors.csv").exists() and (out / "dog" / "broken.jpg").exists()


def test_other_settings_are_refused_in_a_used_folder(tmp_path):
    content = make_contents(tmp_path / "content", 2)
    run_magenta(content, tmp_path / "out")
    with pytest.raises(UsageError, match=r"alpha 1\.0 → 0\.5"):
        run_magenta(content, tmp_path / "out", alpha=0.5)
    run_magenta(content, tmp_path / "out", batch_size=1, workers=1)  # speed settings may change


def test_style_representations_come_from_the_disk_cache(tmp_path):
    content = make_contents(tmp_path / "content", 4)
    cache = tmp_path / "cache"
    first = run_magenta(content, tmp_path / "a", cache=cache)
    assert first.styles_computed == len({r["style"] for r in R.read_rows(tmp_path / "a" / "manifest.csv", R.MANIFEST)})
    assert len(list(cache.glob("*.pt"))) == first.styles_computed
    second = run_magenta(content, tmp_path / "b", cache=cache)
    assert second.styles_computed == 0 and files_of(tmp_path / "a") == files_of(tmp_path / "b")


def test_unreadable_style_is_logged_and_its_outputs_skipped(tmp_path):
    content = make_contents(tmp_path / "content", 6)
    styles = tmp_path / "styles"
    styles.mkdir()
    write_image(styles / "good.png", 64, 64, seed=3)
    (styles / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    run = stylize_dataset(content, styles, tmp_path / "out", DatasetConfig(**TINY), style_cache="none",
                          device="cpu")
    rows = R.read_rows(tmp_path / "out" / "manifest.csv", R.MANIFEST)
    assert {row["style"] for row in rows} == {"good.png"} and run.written == len(rows)
    [error] = R.read_rows(tmp_path / "out" / "errors.csv", R.ERRORS)
    assert error["role"] == "style" and error["outputs"] == run.failed == 6 - len(rows) > 0


def test_read_rows_drops_a_line_cut_short(tmp_path):
    path = tmp_path / "manifest.rank0.jsonl"
    path.write_text('{"output": "a.png"}\n{"output": "b.p')
    assert R.read_rows(path, R.MANIFEST) == [{"output": "a.png"}]


# -- the command line -------------------------------------------------------------------------------


def test_cli_exit_codes_and_messages(tmp_path):
    content = make_contents(tmp_path / "content", 3, broken=True)
    runner = CliRunner()
    held = len(list_images(STYLES, recursive=False))
    args = ["stylize-dataset", str(content), str(STYLES), "-o", str(tmp_path / "out"), "--style-size", "64",
            "--workers", "0", "--style-cache", "none", "--no-progress"]
    result = runner.invoke(main, args)
    assert result.exit_code == 3, result.output
    assert "3 written" in result.output and "1 input(s) could not be read" in result.output
    # the shipped decoder serves the default encoder only: another encoder needs --decoder
    for extra, message in ((["--method", "adain", "--weights", "random:0"], "needs --decoder"),
                           (["--decoder", "x.pth"], "--decoder applies to --method adain and wct only"),
                           (["--num-styles", "99"], f"--num-styles 99 but STYLE_ROOT holds {held}")):
        result = runner.invoke(main, [*args, *extra])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_run_that_cannot_load_its_networks_leaves_the_folder_free(tmp_path):
    content = make_contents(tmp_path / "content", 2)
    args = ["stylize-dataset", str(content), str(STYLES), "-o", str(tmp_path / "out"), "--method", "adain",
            "--weights", "random:0", "--workers", "0", "--style-cache", "none", "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--decoder", str(tmp_path / "missing.pth")])
    assert result.exit_code == 1 and "missing.pth" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "stylize-dataset.json").exists()  # a corrected rerun is not refused
    assert not files_of(tmp_path / "out")


def test_adain_through_the_cli_with_decoder_files(tmp_path, encoder):
    from styletransfer.adain.decoder import save_decoder

    decoder = tmp_path / "decoder.safetensors"
    save_decoder(seeded_decoder(0, torch.randn(2, 512, 4, 4)), decoder, {"norm": "none"})
    content = make_contents(tmp_path / "content", 3)
    result = CliRunner().invoke(main, ["stylize-dataset", str(content), str(STYLES), "-o", str(tmp_path / "out"),
                                       "--method", "wct", "--decoder", str(decoder), "--weights", "random:0",
                                       "--style-size", "32", "--workers", "0", "--style-cache", "none",
                                       "--no-progress", "--ext", "png"])
    assert result.exit_code == 0, result.output
    assert len(files_of(tmp_path / "out")) == 3
    assert json.loads((tmp_path / "out" / "stylize-dataset.json").read_text())["settings"]["method"] == "wct"


# -- processes ---------------------------------------------------------------------------------------


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _command(content: Path, out: Path, *extra: str) -> list[str]:
    return ["stylize-dataset", str(content), str(STYLES), "-o", str(out), "--style-size", "64", "--num-styles", "2",
            "--batch-size", "2", "--style-cache", str(out.parent / "cache"), "--no-progress", *extra]


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_as_one(tmp_path):
    content = make_contents(tmp_path / "content", 7, broken=True)
    one = subprocess.run([sys.executable, "-m", "styletransfer", *_command(content, tmp_path / "one")],
                         env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert one.returncode == 3, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "styletransfer", *_command(content, tmp_path / "two", "--workers", "1")],
                         env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert "14 written" in two.stdout and "over 2 processes" in two.stdout, two.stderr[-2000:]
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two") and len(files_of(tmp_path / "one")) == 14
    for name in ("manifest.csv", "errors.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert not list((tmp_path / "two").glob("*.rank*.*"))


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    content = make_contents(tmp_path / "content", 40, size=(96, 80))
    clean = subprocess.run([sys.executable, "-m", "styletransfer", *_command(content, tmp_path / "clean")],
                           env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert clean.returncode == 0, clean.stderr[-2000:]
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "styletransfer", *_command(content, out, "--workers", "1")],
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while len(files_of(out)) < 6 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=TIMEOUT)
    done = len(files_of(out))
    assert 6 <= done < 80, "the run was not stopped midway"
    resumed = subprocess.run([sys.executable, "-m", "styletransfer", *_command(content, out)],
                             env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{80 - done} written, {done} already there" in resumed.stdout
    assert files_of(out) == files_of(tmp_path / "clean")
    assert not list(out.rglob(".*.tmp")) and not list(out.glob("*.rank*.*"))
