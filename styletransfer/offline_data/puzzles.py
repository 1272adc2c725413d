"""Reassembling gcompris puzzle paintings from their pieces and board layouts.

gcompris' "paintings" activity stores each painting as jigsaw pieces (RGBA images whose alpha is
the piece's shape) plus a board file ``board/boardN_0.qml``. The board's first level names the
board's width and height in pixels; every later level names a piece image and the x, y of the
piece's centre as fractions of the board. Pasting each piece by alpha at its centre, then cropping
to the pieces' union, gives the whole painting back. The rounded positions can leave a ragged
pixel row at an edge (trimmed) or a pinhole between pieces (filled from its neighbours); a board
whose pieces leave more than that uncovered is refused (:class:`GapError`).
"""

from __future__ import annotations

import io
import posixpath
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

_LEVEL = re.compile(r"\{([^{}]*)\}")
_FIELD = re.compile(r'"(\w+)"\s*:\s*("(?:[^"\\]|\\.)*"|[-+0-9.eE]+)')
_TITLE = re.compile(r'instruction\s*:\s*qsTr\("((?:[^"\\]|\\.)*)"\)')


@dataclass(frozen=True)
class Piece:
    image: str  # the piece image's path relative to the board's resource folder
    x: float  # the centre, as a fraction of the board's width
    y: float  # ... and of its height


@dataclass(frozen=True)
class Board:
    title: str  # the board's instruction, e.g. "Katsushika Hokusai, Woman holding a fan"
    width: int
    height: int
    pieces: tuple[Piece, ...]


def _fields(block: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _FIELD.findall(block)}


def parse_board(text: str) -> Board:
    """Read a board ``.qml``: the board size from the level that has one, then every piece."""
    title_match = _TITLE.search(text)
    levels = [_fields(block) for block in _LEVEL.findall(text)]
    size = next((level for level in levels if "width" in level and "height" in level), None)
    if size is None:
        raise ValueError("board has no level with a width and height")
    pieces = tuple(
        Piece(level["pixmapfile"], float(level["x"]), float(level["y"]))
        for level in levels
        if "pixmapfile" in level and "x" in level and "y" in level
    )
    if not pieces:
        raise ValueError("board has no pieces")
    title = title_match.group(1) if title_match else ""
    return Board(title, int(float(size["width"])), int(float(size["height"])), pieces)


def _composite(board: Board, pieces: dict[str, Image.Image]) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Paste the pieces by alpha ("over") at their centres on a board-sized canvas.

    Returns the premultiplied colour (H, W, 3), the accumulated alpha (H, W) and the crop box of
    the pieces' union. Antialiased edges of neighbouring pieces add up to an opaque pixel.
    """
    canvas = np.zeros((board.height, board.width, 3), np.float64)
    weight = np.zeros((board.height, board.width), np.float64)
    for piece in board.pieces:
        rgba = np.asarray(pieces[piece.image].convert("RGBA"), np.float64) / 255.0  # (h, w, 4)
        h, w = rgba.shape[:2]
        left = int(round(piece.x * board.width - w / 2))
        top = int(round(piece.y * board.height - h / 2))
        x0, y0 = max(left, 0), max(top, 0)  # the piece clipped to the canvas
        x1, y1 = min(left + w, board.width), min(top + h, board.height)
        if x0 >= x1 or y0 >= y1:
            continue
        patch = rgba[y0 - top : y1 - top, x0 - left : x1 - left]
        alpha = patch[..., 3:]  # (h, w, 1)
        canvas[y0:y1, x0:x1] = patch[..., :3] * alpha + canvas[y0:y1, x0:x1] * (1 - alpha)
        weight[y0:y1, x0:x1] = alpha[..., 0] + weight[y0:y1, x0:x1] * (1 - alpha[..., 0])
    covered = np.argwhere(weight > 0.5)
    if covered.size == 0:
        raise ValueError("the pieces cover nothing")
    (top, left), (bottom, right) = covered.min(0), covered.max(0) + 1
    return canvas, weight, (slice(top, bottom), slice(left, right))


OPAQUE = 0.9  # accumulated alpha above which a pixel counts as covered
MAX_EDGE_TRIM = 3  # ragged rows/columns (piece positions are rounded) trimmed per side at most
MAX_GAP_FRACTION = 5e-4  # more uncovered pixels inside the painting than this: a visible seam


class GapError(ValueError):
    """The pieces leave visible gaps inside the painting."""


def _trim(covered: np.ndarray) -> tuple[slice, slice]:
    """Drop up to MAX_EDGE_TRIM edge rows and columns that are not fully covered."""
    top, left, (bottom, right) = 0, 0, covered.shape
    for _ in range(MAX_EDGE_TRIM):
        top += int(not covered[top, left:right].all())
        bottom -= int(not covered[bottom - 1, left:right].all())
        left += int(not covered[top:bottom, left].all())
        right -= int(not covered[top:bottom, right - 1].all())
    return slice(top, bottom), slice(left, right)


def _fill_pinholes(rgb: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Replace uncovered pixels by the mean of their covered 3x3 neighbours (repeated)."""
    rgb, covered = rgb.copy(), covered.copy()
    while not covered.all():
        padded_rgb = np.pad(rgb * covered[..., None], ((1, 1), (1, 1), (0, 0)))
        padded_n = np.pad(covered.astype(np.float64), 1)
        h, w = covered.shape
        total = sum(padded_rgb[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
        count = sum(padded_n[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))
        fillable = ~covered & (count > 0)
        rgb[fillable] = total[fillable] / count[fillable][:, None]
        covered = covered | fillable
    return rgb


def assemble(board: Board, pieces: dict[str, Image.Image]) -> Image.Image:
    """The whole painting: the pieces composited by alpha and cropped to their union (RGB).

    Ragged edges (a pixel row or column that rounding left partly uncovered) are trimmed and
    pinholes between pieces filled from their neighbours; more uncovered pixels than
    MAX_GAP_FRACTION of the painting raise :class:`GapError`. ``pieces`` maps each
    :class:`Piece`'s ``image`` to its decoded image; a missing one raises ``KeyError``.
    """
    canvas, weight, box = _composite(board, pieces)
    canvas, weight = canvas[box], weight[box]
    inner = _trim(weight > OPAQUE)
    canvas, weight = canvas[inner], weight[inner]
    covered = weight > OPAQUE
    gaps = 1.0 - float(covered.mean())
    if gaps > MAX_GAP_FRACTION:
        raise GapError(f"{board.title!r}: {gaps:.3%} of the painting is not covered by its pieces")
    rgb = _fill_pinholes(canvas / np.maximum(weight, 1e-6)[..., None], covered)
    return Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")


def load_board(files: dict[str, bytes], board_path: str) -> tuple[Board, dict[str, Image.Image]]:
    """A board from an rcc bundle's files with its decoded piece images.

    Piece paths in a board are relative to the resource folder above ``board/``. Raises
    ``KeyError`` when a piece is missing from the bundle and ``ValueError`` on a board that is
    not a puzzle layout.
    """
    board = parse_board(files[board_path].decode("utf-8"))
    resource = posixpath.dirname(posixpath.dirname(board_path))
    images = {
        piece.image: Image.open(io.BytesIO(files[posixpath.normpath(posixpath.join(resource, piece.image))]))
        for piece in board.pieces
    }
    return board, images


def board_paths(files: dict[str, bytes]) -> list[str]:
    """The paths of the puzzle boards (``.../board/board*.qml``) in an rcc bundle's files."""
    return sorted(path for path in files if re.search(r"/board/board[^/]*\.qml$", path))
