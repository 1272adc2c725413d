"""The comparison grid: labelled images laid out in rows."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

GRID_COLUMNS = 4
GRID_PADDING = 6  # pixels around and between tiles
LABEL_LINE_GAP = 2
GRID_BACKGROUND = (255, 255, 255)
LABEL_COLOUR = (0, 0, 0)


def build_grid(tiles: Sequence[tuple[Sequence[str], Image.Image]], *, columns: int = GRID_COLUMNS) -> Image.Image:
    """Lay out labelled images in a grid; each label line is drawn under its image.

    Every cell has the width of the widest image or label and the height of the tallest image
    plus the label lines; images are centred horizontally and sit on their labels.
    """
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom

    line_height = max(text_size("Ag")[1], 1) + LABEL_LINE_GAP
    max_lines = max(len(label) for label, _ in tiles)
    cell_w = max(max(image.width for _, image in tiles),
                 max(text_size(line)[0] for label, _ in tiles for line in label))
    image_h = max(image.height for _, image in tiles)
    cell_h = image_h + LABEL_LINE_GAP + max_lines * line_height
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (columns * cell_w + (columns + 1) * GRID_PADDING,
                             rows * cell_h + (rows + 1) * GRID_PADDING), GRID_BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for index, (label, image) in enumerate(tiles):
        row, column = divmod(index, columns)
        x0 = GRID_PADDING + column * (cell_w + GRID_PADDING)
        y0 = GRID_PADDING + row * (cell_h + GRID_PADDING)
        grid.paste(image.convert("RGB"), (x0 + (cell_w - image.width) // 2, y0 + image_h - image.height))
        for line_index, line in enumerate(label):
            x = x0 + (cell_w - text_size(line)[0]) // 2
            draw.text((x, y0 + image_h + LABEL_LINE_GAP + line_index * line_height), line, fill=LABEL_COLOUR, font=font)
    return grid
