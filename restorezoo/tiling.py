"""Overlapping tiles with smooth blending: bounded memory for any image size, no visible seams.

Used for whole restorers (``restorezoo.inference.restore_tensor``: pixel tiles) and for VAE encode /
decode in the latent-diffusion models (latent tiles → pixel tiles, ``scale`` 8, or back, ``scale``
1/8). A tile's weight is zero over a ``margin`` at every edge it shares with a neighbour and then rises
smoothly (smoothstep) to 1, so a pixel only takes values computed at least ``margin`` pixels away from a
tile border: for a model whose receptive radius is at most ``margin`` the tiled result equals the
whole-image result; for models with a wider (or global) receptive field the ramp hides the seam.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm


def pad_to_multiple(images: Tensor, multiple: int, mode: str = "zeros") -> Tensor:
    """Pad the bottom/right of N×C×H×W images so H and W are multiples of ``multiple``.

    ``"zeros"`` is what NAFNet/InstructIR's release does; ``"reflect"`` mirrors the border (IR-SDE's
    release, the latent-diffusion models) and falls back to replicating it where a side is shorter
    than its padding (reflection needs pad < side).
    """
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return images
    if mode == "zeros":
        return F.pad(images, (0, pad_w, 0, pad_h))
    if mode != "reflect":
        raise ValueError(f"pad mode must be 'zeros' or 'reflect', got {mode!r}")
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``length`` with step ``stride`` (the last one flush with the end)."""
    if length <= tile:
        return [0]
    return sorted({*range(0, length - tile, stride), length - tile})


def default_margin(overlap: int) -> int:
    """Pixels ignored at a shared tile edge: a quarter of the overlap (the rest is the blending ramp)."""
    return overlap // 4


def edge_ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool, margin: int, device: torch.device) -> Tensor:
    """1-D weights of one tile: zero for ``margin`` pixels at a shared edge, a smoothstep over the rest of
    the overlap, 1 inside; an edge on the image border keeps weight 1 (nothing else covers it)."""
    position = torch.arange(length, device=device, dtype=torch.float32)
    span = max(overlap - 2 * margin, 1)
    weight = torch.ones(length, device=device)

    def rise(distance: Tensor) -> Tensor:
        x = ((distance - margin + 1) / (span + 1)).clamp(0, 1)
        return x * x * (3 - 2 * x)

    if ramp_start:
        weight = weight * rise(position)
    if ramp_end:
        weight = weight * rise(length - 1 - position)
    return weight


def tiled_apply(
    fn: Callable[[Tensor], Tensor],
    inputs: Tensor,
    tile: int,
    overlap: int,
    scale: float = 1,
    margin: int | None = None,
    progress: bool = False,
    desc: str = "tiles",
) -> Tensor:
    """Apply ``fn`` to overlapping ``tile``×``tile`` windows of ``inputs`` (…×H×W) and blend the outputs.

    ``fn`` maps a window to an output ``scale`` times its size (1: restorers; 8: VAE decode of latents;
    1/8: VAE encode of pixels). ``overlap`` and ``margin`` are in input cells. The output accumulates in
    float32 on the input's device; each window is computed alone, so peak memory is that of one tile.
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"tile must be >= 1 and overlap in [0, tile), got tile={tile}, overlap={overlap}")
    margin = default_margin(overlap) if margin is None else margin
    if not 0 <= 2 * margin <= overlap:
        raise ValueError(f"margin must be in [0, overlap/2], got {margin} for overlap {overlap}")
    height, width = inputs.shape[-2:]
    stride = tile - overlap
    tops, lefts = tile_starts(height, tile, stride), tile_starts(width, tile, stride)

    def scaled(n: int) -> int:
        value = n * scale
        if abs(value - round(value)) > 1e-6:
            raise ValueError(f"tile offsets must be multiples of {1 / scale:g} for scale {scale:g}; got {n}")
        return round(value)

    out: Tensor | None = None
    weight_sum: Tensor | None = None
    windows = [(top, left) for top in tops for left in lefts]
    for top, left in tqdm(windows, desc=desc, disable=not progress or len(windows) < 2, leave=False):
        window = inputs[..., top : top + tile, left : left + tile]
        result = fn(window).float()
        if out is None:
            out = result.new_zeros(*result.shape[:-2], scaled(height), scaled(width))
            weight_sum = result.new_zeros(1, 1, scaled(height), scaled(width))
        h, w = result.shape[-2:]
        row = edge_ramp(h, scaled(overlap), top > 0, top + tile < height, scaled(margin), result.device)
        column = edge_ramp(w, scaled(overlap), left > 0, left + tile < width, scaled(margin), result.device)
        weight = row[:, None] * column[None, :]
        region = (..., slice(scaled(top), scaled(top) + h), slice(scaled(left), scaled(left) + w))
        out[region] += result * weight
        weight_sum[region] += weight
    assert out is not None and weight_sum is not None
    return out / weight_sum


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles ``tiled_apply`` computes for an image of this size."""
    stride = tile - overlap
    return len(tile_starts(height, tile, stride)) * len(tile_starts(width, tile, stride))


__all__ = ["default_margin", "edge_ramp", "tile_count", "tile_starts", "tiled_apply"]
