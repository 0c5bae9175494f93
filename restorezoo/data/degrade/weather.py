"""Synthetic snow and lens raindrops: the weather degradations DA-CLIP and Diff-Restorer add to rain and haze.

DA-CLIP's ``snowy`` / ``raindrop`` words and Diff-Restorer's snow and raindrop classes come from real
datasets (Snow100K, RainDrop); these generators give the same look from any clean image, so those
classes can be trained and tested without the datasets. Both are pure torch, batched and seeded per
sample like :mod:`restorezoo.data.degrade.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from restorezoo.data.degrade import ops
from restorezoo.data.degrade.base import (
    Degradation,
    apply_generators,
    as_range,
    column,
    draw_seeds,
    randint,
    uniform,
)
from restorezoo.data.degrade.ops import Generators, ParamLike, _check, _finish, _odd, _per_sample, _random

__all__ = ["Raindrop", "Snow", "raindrop", "snow"]

Params = dict[str, Any]

# (flake size factor, share of the density, streak length factor): far flakes are small, many and slow on
# screen; near ones are big, few and smear further during the exposure.
_SNOW_LAYERS = ((0.5, 1.0, 0.5), (1.0, 0.35, 1.0), (1.8, 0.1, 1.6))
_MAX_FLAKE = 3.0
_MAX_SNOW_LENGTH = 30.0
_MAX_DROP_BLUR = 8.0


# --------------------------------------------------------------------------------------------------
# ops


def snow(
    x: Tensor,
    density: ParamLike,
    flake_size: ParamLike,
    length: ParamLike,
    angle: ParamLike,
    brightness: ParamLike,
    veil: ParamLike,
    generator: Generators = None,
) -> Tensor:
    """Falling snow: three depth layers of soft flakes, motion-smeared, screen-blended over a light veil.

    ``density`` is the fraction of pixels that seed a far flake (nearer layers get fewer);
    ``flake_size`` the Gaussian radius in pixels of a mid-layer flake (capped at 3); ``length`` and
    ``angle`` the mid-layer smear in pixels (capped at 30) and its direction in degrees (90 = straight
    down); ``brightness`` the flake opacity; ``veil`` the strength of the whitish haze snowfall leaves
    in the air. Blending only brightens, as snow does.
    """
    _check(x)
    b, _, h, w = x.shape
    dens = _per_sample(density, b, x.device, "density").view(b, 1, 1, 1)
    size = _per_sample(flake_size, b, x.device, "flake_size").clamp(0.3, _MAX_FLAKE)
    ln = _per_sample(length, b, x.device, "length").clamp(1.0, _MAX_SNOW_LENGTH)
    an = _per_sample(angle, b, x.device, "angle")
    bright = _per_sample(brightness, b, x.device, "brightness").view(b, 1, 1, 1)
    v = _per_sample(veil, b, x.device, "veil").view(b, 1, 1, 1)
    flakes = torch.zeros(b, 1, h, w, device=x.device)
    for size_f, dens_f, len_f in _SNOW_LAYERS:
        u = _random("uniform", (b, 1, h, w), generator, x.device)
        seeds = (u < dens * dens_f).float() * (0.6 + 0.4 * u / (dens * dens_f).clamp_min(1e-12))
        sigma = size * size_f
        # kernels sized from the caps, so a sample looks the same whatever batch it travels in
        blob_k = _odd(2 * math.ceil(3 * _MAX_FLAKE * size_f) + 1)
        blob = ops.gaussian_blur(seeds, sigma, kernel_size=blob_k)
        blob = blob * (2 * math.pi * sigma**2).view(b, 1, 1, 1)  # a lone flake peaks at its seed value
        streak_len = ln * len_f
        streak = ops.motion_blur(
            blob.clamp(0, 1), streak_len, an, kernel_size=_odd(_MAX_SNOW_LENGTH * len_f + 2)
        )
        gain = 1 + streak_len / (2.5 * sigma)  # undo the peak loss of smearing a blob of width ~2.5σ
        flakes = torch.maximum(flakes, (streak * gain.view(b, 1, 1, 1)).clamp(0, 1))
    veiled = x.float() * (1 - v) + 0.9 * v
    layer = (flakes * bright).clamp(0, 1)
    return _finish(1 - (1 - veiled) * (1 - layer), x)


def _generator_list(generator: Generators, batch: int) -> list[torch.Generator | None]:
    if generator is None or isinstance(generator, torch.Generator):
        return [generator] * batch
    gens = list(generator)
    if len(gens) != batch:
        raise ValueError(f"got {len(gens)} generators for a batch of {batch}")
    return gens


def _drops(
    h: int, w: int, count: int, radius: float, generator: torch.Generator | None, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Lay out ``count`` elliptic drops; per pixel, return the nearest drop's (dx, dy, d, cx, cy).

    ``dx, dy`` are the pixel's offset from that drop's centre in units of its semi-axes, ``d`` the
    normalised radius (< 1 inside), ``cx, cy`` the centre in pixels.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(count, 5, generator=generator, device=gen_device).to(device)
    side = min(h, w)
    cx, cy = u[:, 0] * w, u[:, 1] * h
    r = radius * side * (0.5 + 0.5 * u[:, 2])
    aspect = 0.8 + 0.4 * u[:, 3]  # width / height: drops sag, so most are a little taller than wide
    rx = (r * aspect).clamp_min(1.0)
    ry = (r * (1.0 + 0.3 * u[:, 4])).clamp_min(1.0)
    yy = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1) + 0.5
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w) + 0.5
    dx = ((xx - cx.view(-1, 1, 1)) / rx.view(-1, 1, 1)).expand(-1, h, w)
    dy = ((yy - cy.view(-1, 1, 1)) / ry.view(-1, 1, 1)).expand(-1, h, w)
    d = torch.sqrt(dx**2 + dy**2)
    d_min, nearest = d.min(dim=0)
    pick = nearest.unsqueeze(0)
    dx, dy = dx.gather(0, pick)[0], dy.gather(0, pick)[0]
    return dx, dy, d_min, cx[nearest], cy[nearest]


def raindrop(
    x: Tensor,
    count: ParamLike,
    radius: ParamLike,
    blur: ParamLike,
    generator: Generators = None,
    zoom: float = 2.0,
    return_mask: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Water drops stuck on the lens: out-of-focus, refracting blobs with a bright rim.

    ``count`` drops per image, of radius up to ``radius`` × the shorter side (each drop draws its own
    size in [½, 1] of it and a slightly elliptic, sagging shape). Inside a drop the scene is seen through
    a small lens: mirrored about the centre and ``zoom`` × wider, then defocused by a Gaussian of
    ``blur`` pixels (capped at 8), since the drop sits far closer than the focus plane. A highlight
    rim on the lower edge and a specular glint at the upper left make the drops read as water.
    ``return_mask=True`` also returns the B×1×H×W drop coverage in [0, 1].
    """
    _check(x)
    b, c, h, w = x.shape
    counts = [int(round(v)) for v in _per_sample(count, b, x.device, "count").tolist()]
    radii = _per_sample(radius, b, x.device, "radius").tolist()
    sigmas = _per_sample(blur, b, x.device, "blur").clamp(0.1, _MAX_DROP_BLUR)
    xf = x.float()
    defocused = ops.gaussian_blur(xf, sigmas, kernel_size=_odd(6 * _MAX_DROP_BLUR + 1))
    grids, masks, glints = [], [], []
    for i, g in enumerate(_generator_list(generator, b)):
        if counts[i] <= 0:
            grids.append(torch.zeros(h, w, 2, device=x.device))
            masks.append(torch.zeros(h, w, device=x.device))
            glints.append(torch.zeros(h, w, device=x.device))
            continue
        dx, dy, d, cx, cy = _drops(h, w, counts[i], radii[i], g, x.device)
        yy = torch.arange(h, device=x.device, dtype=torch.float32).view(h, 1) + 0.5
        xx = torch.arange(w, device=x.device, dtype=torch.float32).view(1, w) + 0.5
        src_x = cx - (xx - cx) * zoom
        src_y = cy - (yy - cy) * zoom
        grids.append(torch.stack([src_x / w * 2 - 1, src_y / h * 2 - 1], dim=-1))
        masks.append(((1 - d) / 0.12).clamp(0, 1))
        rim = torch.exp(-(((d - 0.88) / 0.08) ** 2)) * (0.3 + 0.7 * dy.clamp(0, 1))
        glint = torch.exp(-((dx + 0.35) ** 2 + (dy + 0.4) ** 2) / 0.015)
        glints.append((0.35 * rim + 0.6 * glint) * (d < 1.05).float())
    grid = torch.stack(grids)
    mask = torch.stack(masks).unsqueeze(1)
    glint = torch.stack(glints).unsqueeze(1)
    seen = F.grid_sample(defocused, grid, mode="bilinear", padding_mode="border", align_corners=False)
    seen = seen * 0.92 + 0.04  # water lowers the contrast a little
    out = xf * (1 - mask) + seen * mask
    out = out + glint * (1 - out)
    result = _finish(out, x)
    return (result, mask) if return_mask else result


# --------------------------------------------------------------------------------------------------
# degradations


class Snow(Degradation):
    """Falling snow over a light veil (see :func:`snow`); ranges are restorezoo's, tuned to look like Snow100K."""

    task = "snow"

    def __init__(
        self,
        density: float | Sequence[float] = (0.002, 0.008),
        flake_size: float | Sequence[float] = (0.7, 1.6),
        length: float | Sequence[float] = (2.0, 10.0),
        angle: float | Sequence[float] = (60.0, 120.0),
        brightness: float | Sequence[float] = (0.7, 1.0),
        veil: float | Sequence[float] = (0.05, 0.25),
    ):
        self.density = as_range(density, "density")
        self.flake_size = as_range(flake_size, "flake_size")
        self.length = as_range(length, "length")
        self.angle = as_range(angle, "angle")
        self.brightness = as_range(brightness, "brightness")
        self.veil = as_range(veil, "veil")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        n = batch_size
        cols = {
            key: uniform(getattr(self, key), n, generator)
            for key in ("density", "flake_size", "length", "angle", "brightness", "veil")
        }
        seeds = draw_seeds(n, generator)
        return [{"task": self.task, **{k: v[i] for k, v in cols.items()}, "seed": seeds[i]} for i in range(n)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return snow(
            x,
            column(params, "density"),
            column(params, "flake_size"),
            column(params, "length"),
            column(params, "angle"),
            column(params, "brightness"),
            column(params, "veil"),
            apply_generators(params),
        )


class Raindrop(Degradation):
    """Adherent lens raindrops (see :func:`raindrop`); ranges are restorezoo's, tuned to look like RainDrop."""

    task = "raindrop"

    def __init__(
        self,
        count: int | Sequence[int] = (10, 40),
        radius: float | Sequence[float] = (0.03, 0.08),
        blur: float | Sequence[float] = (2.0, 5.0),
    ):
        lo, hi = as_range(count, "count")
        if lo < 0 or hi < lo:
            raise ValueError(f"count must be a non-negative (low, high) pair, got {count!r}")
        self.count = (int(lo), int(hi))
        self.radius = as_range(radius, "radius")
        self.blur = as_range(blur, "blur")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        n = batch_size
        counts = randint(*self.count, n, generator)
        radii = uniform(self.radius, n, generator)
        blurs = uniform(self.blur, n, generator)
        seeds = draw_seeds(n, generator)
        return [
            {"task": self.task, "count": int(c), "radius": r, "blur": bl, "seed": sd}
            for c, r, bl, sd in zip(counts, radii, blurs, seeds)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        out = raindrop(
            x,
            column(params, "count"),
            column(params, "radius"),
            column(params, "blur"),
            apply_generators(params),
        )
        assert isinstance(out, Tensor)
        return out
