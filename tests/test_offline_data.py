"""The offline data recipe: the Qt rcc reader, puzzle reassembly, licences, the hold-out split and
a deterministic, resumable build on a tiny fake package (no network, no apt)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.offline_data import recipe
from styletransfer.offline_data.licences import parse_copyright
from styletransfer.offline_data.puzzles import Board, GapError, Piece, assemble, load_board
from styletransfer.offline_data.rcc import RccError, read_rcc
from styletransfer.offline_data.sources import CONTENT, SAME_SPLIT, SOURCES, STYLE, Item, Source


# --- a tiny rcc writer, following Qt's layout -----------------------------------------------------
def make_rcc(files: dict[str, tuple[bytes, int]], version: int) -> bytes:
    """Bundle ``{path: (bytes, flags)}`` (flags 0: stored, 1: zlib, 4: zstd, payload given as is)."""
    tree: dict = {}
    for path, content in files.items():
        node = tree
        *dirs, name = path.split("/")
        for part in dirs:
            node = node.setdefault(part, {})
        node[name] = content
    nodes = [("", tree)]  # breadth first: a directory's children are consecutive entries
    first_child = {}
    for index, (_, node) in enumerate(nodes):
        if isinstance(node, dict):
            first_child[index] = len(nodes)
            nodes += sorted(node.items())
    names, name_offset = b"", {}
    data, data_offset = b"", {}
    for index, (name, node) in enumerate(nodes):
        name_offset[index] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(encoded) // 2, 0) + encoded
        if not isinstance(node, dict):
            content, flags = node
            payload = struct.pack(">I", len(content)) + zlib.compress(content) if flags == 1 else content
            data_offset[index] = len(data)
            data += struct.pack(">I", len(payload)) + payload
    entries = b""
    for index, (_, node) in enumerate(nodes):
        if isinstance(node, dict):
            entries += struct.pack(">IHII", name_offset[index], 2, len(node), first_child[index])
        else:
            entries += struct.pack(">IHHHI", name_offset[index], node[1], 0, 0, data_offset[index])
        if version >= 2:
            entries += struct.pack(">Q", 1_700_000_000_000)
    header_size = 24 if version >= 3 else 20
    tree_at, data_at = header_size, header_size + len(entries)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + entries + data + names


FILES = {
    "top.txt": (b"stored at the root", 0),
    "a/b/deep.bin": (bytes(range(256)) * 4, 1),
    "a/b/plain.bin": (b"\x00\xffnot compressed", 0),
    "a/c.qml": ("QtObject { property string é: \"ü\" }".encode(), 1),
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_returns_the_exact_bytes(version):
    blob = make_rcc(FILES, version)
    assert read_rcc(blob) == {path: content for path, (content, _) in sorted(FILES.items())}


def test_rcc_reader_reads_a_path(tmp_path):
    path = tmp_path / "bundle.rcc"
    path.write_bytes(make_rcc(FILES, 2))
    assert read_rcc(path)["a/b/deep.bin"] == FILES["a/b/deep.bin"][0]


@pytest.mark.parametrize("blob", [b"", b"PK\x03\x04 a zip file, not a bundle", b"qres" + b"\x00" * 3])
def test_rcc_reader_names_a_file_that_is_not_a_bundle(blob):
    with pytest.raises(RccError, match="not a Qt rcc bundle"):
        read_rcc(blob, origin="x.rcc")


def test_rcc_reader_rejects_unknown_versions_and_truncation():
    blob = make_rcc(FILES, 2)
    with pytest.raises(RccError, match="version 9"):
        read_rcc(blob[:4] + struct.pack(">I", 9) + blob[8:])
    with pytest.raises(RccError):
        read_rcc(blob[: len(blob) // 2])


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is not None, reason="zstandard decodes it")
def test_rcc_reader_skips_zstd_entries_with_a_warning():
    blob = make_rcc({"z.bin": (b"\x28\xb5\x2f\xfd not really zstd", 4), "ok.txt": (b"ok", 0)}, 3)
    with pytest.warns(UserWarning, match="zstd"):
        assert read_rcc(blob) == {"ok.txt": b"ok"}


# --- puzzles ---------------------------------------------------------------------------------------
def test_puzzle_pieces_reassemble_the_painting():
    rng = np.random.default_rng(0)
    painting = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    width, height, left, top = 100, 70, 10, 5  # the painting sits inside a larger board
    ys, xs = np.mgrid[0:60, 0:80]
    # two pieces split along a wavy (jigsaw-like) line, each a box around its shape with alpha
    upper = ys < 30 + (6 * np.sin(xs / 5)).astype(int)
    pieces, layout = {}, []
    for name, mask in (("p1.webp", upper), ("p2.webp", ~upper)):
        rows, cols = np.nonzero(mask)
        box = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
        rgba = np.zeros((box[1] - box[0], box[3] - box[2], 4), np.uint8)
        rgba[..., :3] = painting[box[0]:box[1], box[2]:box[3]]
        rgba[..., 3] = mask[box[0]:box[1], box[2]:box[3]] * 255
        pieces[name] = Image.fromarray(rgba, "RGBA")
        centre_x = (left + (box[2] + box[3]) / 2) / width
        centre_y = (top + (box[0] + box[1]) / 2) / height
        layout.append(Piece(name, centre_x, centre_y))
    board = Board("test", width, height, tuple(layout))
    assert np.array_equal(np.asarray(assemble(board, pieces)), painting)
    background = ('{ "pixmapfile" : "image/bg.svg", "type" : "SHAPE_BACKGROUND_IMAGE", '
                  f'"width": {width}, "height": {height} }}')
    board_qml = "\n".join(
        ['QtObject {', '   property string instruction: qsTr("A, B - 1900")', '   property var levels : [',
         f"      {background},"]
        + [f'      {{ "pixmapfile" : "image/{p.image}", "x" : "{p.x}", "y" : "{p.y}" }},' for p in layout]
        + ["   ]", "}"]
    )
    files = {"res/board/board1_0.qml": board_qml.encode()}
    for name, image in pieces.items():
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        files[f"res/image/{name}"] = buffer.getvalue()
    parsed, images = load_board(files, "res/board/board1_0.qml")
    assert parsed.title == "A, B - 1900" and (parsed.width, parsed.height) == (width, height)
    assert np.array_equal(np.asarray(assemble(parsed, images)), painting)
    with pytest.raises(GapError):  # one piece cannot make the whole painting without a hole
        assemble(Board("half", width, height, (layout[0], Piece("p1.webp", layout[0].x, layout[1].y))), pieces)


# --- licences --------------------------------------------------------------------------------------
def test_dep5_last_matching_paragraph_wins_and_free_form_gpl_is_summarised():
    text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: someone\nLicense: GPL-3+\n\n"
            "Files: src/a/*.jpg\n       src/b/x.png\nCopyright: other\nLicense: CC-BY-SA-4.0\n text\n")
    dep5 = parse_copyright(text)
    assert dep5.licence_for("src/a/photo.jpg") == "CC-BY-SA-4.0"
    assert dep5.licence_for("src/b/x.webp") == "GPL-3+"
    assert dep5.licence_for("src/b/x.webp", any_extension=True) == "CC-BY-SA-4.0"
    free = parse_copyright("This program is free software; under the terms of the GNU General Public License "
                           "version 2\n or at your option any later version.")
    assert free.licence_for("anything") == "GPL-2+"
    assert parse_copyright("All rights reserved.").licence_for("x") == "see copyright"


# --- the split -------------------------------------------------------------------------------------
def test_split_is_fixed_by_the_path_alone():
    item = Item("some-package", "usr/share/some/photo.jpg", CONTENT)
    alone = recipe.split_of(item)
    for _ in range(3):
        assert recipe.split_of(Item(item.package, item.source_path, CONTENT)) == alone
    assert recipe.split_of(Item(item.package, item.source_path, STYLE, "rcc")) == alone  # role/loader don't matter
    # pinned: a changed salt, hash or fraction would silently move images between the splits
    assert recipe.split_score("gcompris-qt-data", "a/b.webp") == 0.2536920871268776
    assert recipe.split_score("scratch", "usr/share/scratch/Media/Backgrounds/Nature/forest.jpg") == 0.5558004756908477
    assert recipe.HELDOUT_FRACTION == 0.15
    scores = [recipe.split_score("p", f"img{i}.jpg") for i in range(4000)]
    assert abs(np.mean(np.array(scores) < recipe.HELDOUT_FRACTION) - 0.15) < 0.02


def test_always_held_out_samples_and_near_duplicate_partners():
    for package, path in recipe.SAMPLE_STYLES.values():
        loader = "puzzle" if path.endswith(".qml") else "file"
        assert recipe.split_of(Item(package, path, STYLE, loader)) == "heldout"
    assert {"starry_night", "great_wave"} <= set(recipe.SAMPLE_STYLES)
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "any.png"):
        assert recipe.split_of(Item("scikit-image", f"skimage/data/{name}", CONTENT)) == "heldout"
    for (package, member), leader in SAME_SPLIT.items():
        assert recipe.split_of(Item(package, member, CONTENT)) == recipe.split_of(Item(package, leader, CONTENT))
    assert set(SOURCES) >= {"gcompris-qt-data", "scratch", "opencv-doc", "wesnoth-1.16-data", "scikit-image"}


# --- a deterministic, resumable build on a fake package ------------------------------------------
def _fake_package(root: Path) -> None:
    rng = np.random.default_rng(1)
    folder = root / "pics"
    folder.mkdir(parents=True)
    photo = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    Image.fromarray(photo).save(folder / "photo.png")
    Image.fromarray(photo).save(folder / "same_photo_again.png")  # an exact duplicate
    Image.fromarray(rng.integers(0, 256, (1500, 300, 3), dtype=np.uint8)).save(folder / "tall.png")
    Image.fromarray(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(folder / "painting.png")
    Image.fromarray(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)).save(folder / "tiny.png")
    Image.fromarray(rng.integers(0, 256, (150, 150), dtype=np.uint8)).save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 256, (150, 150, 4), dtype=np.uint8)).save(folder / "sprite.png")
    for i in range(12):  # enough names for both splits to be used
        Image.fromarray(rng.integers(0, 256, (130, 140, 3), dtype=np.uint8)).save(folder / f"extra{i}.png")


def _fake_source() -> Source:
    def find(root: Path) -> list[Item]:
        return sorted(Item("fake-pkg", p.relative_to(root).as_posix(), STYLE if p.stem == "painting" else CONTENT)
                      for p in (root / "pics").iterdir())

    return Source("fake-pkg", "1.0", "wheel", find, lambda root, item: "CC0")


def _prepared(out: Path) -> dict[str, Source]:
    """An out dir whose archive and extracted tree are already there, so nothing is fetched."""
    source = _fake_source()
    (out / "packages").mkdir(parents=True)
    (out / "packages" / "fake_pkg-1.0-py3-none-any.whl").write_bytes(b"not used")
    _fake_package(out / "extracted" / "fake-pkg_1.0")
    return {"fake-pkg": source}


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file() and p.parts[len(out.parts)] not in ("packages", "extracted")}


def test_build_is_deterministic_and_resumable(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    result = recipe.build(first, sources=_prepared(first))
    recipe.build(second, sources=_prepared(second), jobs=2)
    assert _snapshot(first) == _snapshot(second)  # byte-identical manifest and images
    manifest = (first / "manifest.csv").read_text()
    assert manifest.splitlines()[0] == ",".join(recipe.MANIFEST_COLUMNS)
    assert (first / "manifest.sha256").read_text() == f"{hashlib.sha256(manifest.encode()).hexdigest()}  manifest.csv\n"
    assert result.dropped == {"small": 1, "greyscale": 1, "transparent": 1, "duplicate": 1}
    paths = {row.source_path for row in result.rows}
    assert "pics/photo.png" in paths and "pics/same_photo_again.png" not in paths  # first of the duplicates
    assert {row.split for row in result.rows} == {"train", "heldout"}
    for row in result.rows:
        image = Image.open(first / row.file)
        assert image.mode == "RGB" and max(image.size) <= recipe.MAX_EDGE and image.size == (row.width, row.height)
        assert row.split == recipe.split_of(Item("fake-pkg", row.source_path, row.role))
        assert row.file.startswith(f"{row.split}/{row.role}/") and row.licence == "CC0"
    tall = next(row for row in result.rows if row.source_path == "pics/tall.png")
    assert (tall.width, tall.height) == (205, 1024)

    # an interrupted run: a half-written image, a temporary leftover, a lost manifest
    expected = _snapshot(first)
    victim = first / result.rows[0].file
    victim.write_bytes(victim.read_bytes()[:100])
    (victim.parent / f".{victim.name}.x.tmp").write_bytes(b"partial")
    (first / "manifest.csv").unlink()
    recipe.build(first, sources={"fake-pkg": _fake_source()})
    assert _snapshot(first) == expected
