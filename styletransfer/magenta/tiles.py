"""Exact tiled inference of Magenta's style transformer: bounded memory at any image size.

The transformer's conditional instance norms normalise with statistics over the *whole* image,
so tiles cannot simply be stylised one by one. Here:

1. the contract path (convs and ReLUs only) runs tile by tile, with a halo, into the whole
   quarter-resolution feature map (32 channels: 128 bytes per 16 pixels, so 0.5 GB at 8192²);
2. the residual blocks run on that map whole;
3. the expand path streams its statistics: pass k recomputes, tile by tile, the layers before
   norm k (normalised with the statistics the earlier passes found) and accumulates norm k's
   per-channel moments over every tile's own pixels; a last pass writes the output.

Tiles start on multiples of 4 pixels, so every tile's stride-2 grid is the image's; the halo
(16 px) exceeds how far either path reaches (7 px), so reflection padding at a tile's inner edges
only touches pixels that are cropped away. The result equals the untiled one up to float
rounding (the moments are summed in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tiling import ChannelMoments, plan_tiles
from .networks import TRANSFORMER_STRIDE, NormConv, StyleTransformer

HALO_CELLS = 4  # quarter-resolution cells around a tile (16 px); the paths reach 7 px


def _normalise(x: Tensor, layer: NormConv, embedding: Tensor, moments: tuple[Tensor, Tensor]) -> Tensor:
    mean, std = moments  # (1, C, 1, 1) each, over the whole image
    scale, shift = layer.norm.scale(embedding), layer.norm.shift(embedding)  # (1, C) each
    return (x - mean) / std * scale[..., None, None] + shift[..., None, None]


def tiled_transform(transformer: StyleTransformer, content: Tensor, embedding: Tensor, tile_size: int) -> Tensor:
    """The transformer on a (1, 3, H, W) content, H and W multiples of 4, in tiles of about
    ``tile_size`` pixels a side; (1, 3, H, W) out, equal to ``transformer(content, embedding)``."""
    height, width = content.shape[-2:]
    cells_h, cells_w = height // TRANSFORMER_STRIDE, width // TRANSFORMER_STRIDE
    tiles = [tile.scaled(1 / TRANSFORMER_STRIDE) for tile in plan_tiles(height, width, tile_size,
                                                                         stride=TRANSFORMER_STRIDE)]
    regions = [(tile, tile.grow(HALO_CELLS, cells_h, cells_w)) for tile in tiles]  # in quarter-resolution cells

    low = None
    for tile, outer in regions:  # 1. contract, tile by tile
        x = outer.scaled(TRANSFORMER_STRIDE).crop(content)
        for conv in transformer.contract:
            x = F.relu(conv(x))
        if low is None:
            low = x.new_empty(1, x.shape[1], cells_h, cells_w)  # (1, 32, H/4, W/4)
        tile.crop(low).copy_(tile.within(outer).crop(x))
    for block in transformer.residual:  # 2. the residual blocks, whole
        low = block(low, embedding)

    expand = list(transformer.expand)
    moments: list[tuple[Tensor, Tensor]] = []
    output = content.new_empty(1, 3, height, width)
    for stage in range(len(expand) + 1):  # 3. one pass per norm, then the output pass
        accumulator = ChannelMoments() if stage < len(expand) else None
        for tile, outer in regions:
            x, factor = outer.crop(low), 1
            for index, layer in enumerate(expand[: stage + 1]):
                if layer.upsample > 1:
                    x, factor = F.interpolate(x, scale_factor=layer.upsample, mode="nearest"), factor * layer.upsample
                x = layer.conv(x)
                if index == stage:  # this pass's norm: its moments over the tile's own pixels
                    accumulator.add(tile.within(outer).scaled(factor).crop(x))
                    break
                x = _normalise(x, layer, embedding, moments[index])
                x = torch.sigmoid(x) if index == len(expand) - 1 else F.relu(x)
            else:  # the output pass ran every layer
                tile.scaled(factor).crop(output).copy_(tile.within(outer).scaled(factor).crop(x))
        if accumulator is not None:
            moments.append(accumulator.mean_std(expand[stage].norm.eps, unbiased=False))
    return output
