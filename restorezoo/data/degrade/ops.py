"""Functional degradation operators: pure torch, batched, device-agnostic.

Every operator takes a B×C×H×W float batch in [0, 1] and explicit per-sample parameters (a python
number shared by the batch, or a sequence / 1-D tensor of length B), and returns a batch of the same
shape, dtype and device, clamped to [0, 1]. They hold no randomness of their own: the few that need a
noise field take ``generator``, either one ``torch.Generator`` for the whole batch or a list with one
generator per sample (so that a sample's noise does not depend on the batch it travels in).

Work happens in float32 whatever the input dtype, so half-precision batches on an accelerator get the
same degradations as float32 ones on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from restorezoo.data.degrade.kernels import filter2d, gaussian_kernels

__all__ = [
    "Generators",
    "ParamLike",
    "add_gaussian_noise",
    "bicubic_down_up",
    "diff_jpeg",
    "gaussian_blur",
    "gaussian_kernels",
    "haze",
    "haze_depth",
    "jpeg",
    "jpeg_quant_tables",
    "low_light",
    "motion_blur",
    "motion_kernels",
    "rain_streaks",
]

ParamLike = float | int | Sequence[float] | Tensor
"""A per-sample parameter: one number for the whole batch, or B numbers."""

Generators = torch.Generator | Sequence[torch.Generator] | None
"""One generator for the batch, one per sample, or None for torch's default generator."""


# --------------------------------------------------------------------------------------------------
# helpers


def _check(x: Tensor, channels: int | None = None) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a B×C×H×W batch, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point batch in [0, 1], got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"expected {channels} channels (RGB), got {x.shape[1]}")


def _per_sample(value: ParamLike, batch: int, device: torch.device, name: str) -> Tensor:
    """Broadcast a scalar or length-B parameter to a float32 tensor of shape (B,) on ``device``."""
    t = torch.as_tensor(value, dtype=torch.float32).to(device).flatten()
    if t.numel() == 1:
        return t.expand(batch).clone()
    if t.numel() != batch:
        raise ValueError(f"{name} has {t.numel()} values for a batch of {batch}")
    return t


def _random(kind: str, shape: Sequence[int], generator: Generators, device: torch.device) -> Tensor:
    """Draw a float32 field of ``shape`` (leading dim B) on the generator's device, then move it.

    Drawing where the generator lives makes a seeded field identical on every device the batch
    may be on.
    """
    draw = torch.randn if kind == "normal" else torch.rand
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if generator is not None else device
        return draw(*shape, generator=generator, device=gen_device).to(device)
    gens = list(generator)
    if len(gens) != shape[0]:
        raise ValueError(f"got {len(gens)} generators for a batch of {shape[0]}")
    fields = [draw(*shape[1:], generator=g, device=g.device).to(device) for g in gens]
    return torch.stack(fields)


def _finish(y: Tensor, like: Tensor) -> Tensor:
    return y.clamp(0.0, 1.0).to(like.dtype)


def _odd(n: float) -> int:
    n = max(int(math.ceil(n)), 1)
    return n if n % 2 == 1 else n + 1


# --------------------------------------------------------------------------------------------------
# noise


def add_gaussian_noise(x: Tensor, sigma: ParamLike, generator: Generators = None) -> Tensor:
    """Add white Gaussian noise; ``sigma`` is on the 0-255 scale as in the denoising literature (15/25/50)."""
    _check(x)
    b = x.shape[0]
    s = _per_sample(sigma, b, x.device, "sigma").view(b, 1, 1, 1) / 255.0
    noise = _random("normal", x.shape, generator, x.device)
    return _finish(x.float() + s * noise, x)


# --------------------------------------------------------------------------------------------------
# blur


def gaussian_blur(x: Tensor, sigma: ParamLike, kernel_size: int | None = None) -> Tensor:
    """Isotropic Gaussian blur with a per-sample sigma (pixels); kernels from :func:`kernels.gaussian_kernels`.

    The default kernel spans ±3 sigma of the largest sigma in the batch; pass ``kernel_size`` to
    make a sample's result independent of its batch-mates.
    """
    _check(x)
    s = _per_sample(sigma, x.shape[0], x.device, "sigma")
    k = _odd(2 * math.ceil(3 * float(s.max())) + 1) if kernel_size is None else _odd(kernel_size)
    return _finish(filter2d(x.float(), gaussian_kernels(s, k)), x)


def motion_kernels(length: Tensor, angle: Tensor, kernel_size: int) -> Tensor:
    """Anti-aliased straight-line kernels (B×k×k, each summing to 1).

    A pixel's weight is its overlap with a one-pixel-wide segment of ``length`` pixels centred on
    the kernel; ``angle`` is in degrees, counter-clockwise from the horizontal with y pointing up
    (0 = horizontal streak, 90 = vertical streak).
    """
    r = torch.arange(kernel_size, dtype=torch.float32, device=length.device) - kernel_size // 2
    yy, xx = torch.meshgrid(-r, r, indexing="ij")  # rows go down the image, so y = -row
    theta = torch.deg2rad(angle.float()).view(-1, 1, 1)
    along = xx * torch.cos(theta) + yy * torch.sin(theta)
    across = -xx * torch.sin(theta) + yy * torch.cos(theta)
    half = length.float().clamp_min(1.0).view(-1, 1, 1) / 2
    w = (1 - across.abs()).clamp_min(0) * (half + 0.5 - along.abs()).clamp(0, 1)
    return w / w.sum(dim=(1, 2), keepdim=True)


def motion_blur(x: Tensor, length: ParamLike, angle: ParamLike, kernel_size: int | None = None) -> Tensor:
    """Linear motion blur: a streak of ``length`` pixels at ``angle`` degrees (see :func:`motion_kernels`)."""
    _check(x)
    b = x.shape[0]
    ln = _per_sample(length, b, x.device, "length")
    an = _per_sample(angle, b, x.device, "angle")
    k = _odd(float(ln.max()) + 2) if kernel_size is None else _odd(kernel_size)
    return _finish(filter2d(x.float(), motion_kernels(ln, an, k)), x)


# --------------------------------------------------------------------------------------------------
# photometric


def low_light(
    x: Tensor, exposure: ParamLike, gamma: ParamLike, noise_sigma: ParamLike, generator: Generators = None
) -> Tensor:
    """Simulate an under-exposed shot like LOL's: ``y = x**gamma * exposure`` plus sensor noise.

    Gamma > 1 crushes shadows more than highlights, ``exposure`` scales the light down. The noise is
    shot-like: its variance grows with the signal, ``(noise_sigma/255)**2 * (y + 0.01)``, so
    ``noise_sigma`` (0-255 scale) is the std a fully lit pixel would get and black keeps a small floor.
    """
    _check(x)
    b = x.shape[0]
    e = _per_sample(exposure, b, x.device, "exposure").view(b, 1, 1, 1)
    g = _per_sample(gamma, b, x.device, "gamma").view(b, 1, 1, 1)
    s = _per_sample(noise_sigma, b, x.device, "noise_sigma").view(b, 1, 1, 1) / 255.0
    dark = x.float().clamp(0, 1).pow(g) * e
    noise = _random("normal", x.shape, generator, x.device)
    return _finish(dark + s * torch.sqrt(dark + 0.01) * noise, x)


def haze_depth(x: Tensor) -> Tensor:
    """A smooth depth proxy in [0, 1] (B×1×H×W, 1 = far) for images without a depth map.

    Outdoor scenes tend to recede towards the top of the frame, and distant regions (sky, far
    buildings) are bright and desaturated. The proxy averages the vertical position (1 at the top
    row, 0 at the bottom) with the image's "whiteness" ``value * (1 - saturation)``, blurred heavily
    (area-downsampled 16×, bilinearly upsampled) so that depth follows regions, not texture.
    """
    _check(x, channels=3)
    b, _, h, w = x.shape
    xf = x.float().clamp(0, 1)
    value = xf.amax(dim=1, keepdim=True)
    saturation = (value - xf.amin(dim=1, keepdim=True)) / value.clamp_min(1e-6)
    whiteness = value * (1 - saturation)
    small = F.interpolate(whiteness, size=(max(1, h // 16), max(1, w // 16)), mode="area")
    whiteness = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    rows = torch.linspace(1.0, 0.0, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
    return (0.5 * rows + 0.5 * whiteness).clamp(0, 1)


def haze(x: Tensor, beta: ParamLike, airlight: ParamLike, depth: Tensor | None = None) -> Tensor:
    """Atmospheric scattering ``I = J·t + A·(1 − t)`` with transmission ``t = exp(−β·d)``.

    ``depth`` (B×1×H×W or B×H×W, in [0, 1]) defaults to :func:`haze_depth`; ``airlight`` is a grey
    level in [0, 1] per sample.
    """
    _check(x)
    b = x.shape[0]
    bt = _per_sample(beta, b, x.device, "beta").view(b, 1, 1, 1)
    a = _per_sample(airlight, b, x.device, "airlight").view(b, 1, 1, 1)
    d = haze_depth(x) if depth is None else depth.to(x.device, torch.float32)
    if d.ndim == 3:
        d = d.unsqueeze(1)
    t = torch.exp(-bt * d)
    return _finish(x.float() * t + a * (1 - t), x)


def rain_streaks(
    x: Tensor,
    density: ParamLike,
    length: ParamLike,
    angle: ParamLike,
    brightness: ParamLike,
    generator: Generators = None,
) -> Tensor:
    """Synthetic rain: sparse random drops smeared into streaks, screen-blended onto the image.

    A fraction ``density`` of the pixels become drops of random strength; a motion blur of
    ``length`` pixels at ``angle`` degrees (90 = falling straight down) stretches them into thin
    streaks, rescaled so a streak's core reaches ``brightness``. Screen blending,
    ``1 − (1 − x)(1 − r)``, only ever brightens, as light rain does.
    """
    _check(x)
    b, _, h, w = x.shape
    dens = _per_sample(density, b, x.device, "density").view(b, 1, 1, 1)
    ln = _per_sample(length, b, x.device, "length")
    bright = _per_sample(brightness, b, x.device, "brightness").view(b, 1, 1, 1)
    u = _random("uniform", (b, 1, h, w), generator, x.device)
    # one uniform field gives both the drop mask (u < density) and a drop strength in [0.5, 1)
    drops = torch.where(u < dens, 0.5 + 0.5 * u / dens.clamp_min(1e-12), torch.zeros_like(u))
    streaks = motion_blur(drops, ln, angle) * ln.clamp_min(1.0).view(b, 1, 1, 1)
    layer = (streaks * bright).clamp(0, 1)
    return _finish(1 - (1 - x.float()) * (1 - layer), x)


# --------------------------------------------------------------------------------------------------
# compression and resolution

# Annex K of the JPEG standard (ITU-T T.81), the tables libjpeg scales by quality.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)


def jpeg_quant_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """Luma and chroma quantisation tables (B×8×8) for IJG qualities 1-100, baseline-clamped to 1..255."""
    q = quality.float().round().clamp(1, 100).view(-1, 1, 1)
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)
    tables = []
    for base in (_LUMA_TABLE, _CHROMA_TABLE):
        t = torch.tensor(base, dtype=torch.float32, device=quality.device)
        tables.append(torch.floor((t * scale + 50) / 100).clamp(1, 255))
    return tables[0], tables[1]


def _dct_matrix(device: torch.device) -> Tensor:
    """Orthonormal 8-point DCT-II; ``D @ block @ D.T`` is exactly JPEG's forward DCT."""
    n = torch.arange(8, dtype=torch.float32, device=device)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def _jpeg_plane(plane: Tensor, table: Tensor, dct: Tensor) -> Tensor:
    """Level-shift, block-DCT, quantise, dequantise and invert one B×H×W plane (H, W multiples of 8)."""
    b, h, w = plane.shape
    blocks = (plane - 128).reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coef = dct @ blocks @ dct.T
    q = table.view(b, 1, 1, 8, 8)
    coef = torch.round(coef / q) * q
    out = dct.T @ coef @ dct + 128
    out = out.permute(0, 1, 3, 2, 4).reshape(b, h, w)
    return out.round().clamp(0, 255)


def jpeg(x: Tensor, quality: ParamLike) -> Tensor:
    """Real baseline JPEG round trip in torch, per-sample IJG ``quality`` (1-100).

    Follows libjpeg's default path: 8-bit input, JFIF RGB→YCbCr, 4:2:0 chroma by 2×2 averaging,
    replicate padding to 16-pixel MCUs, 8×8 DCT, quantisation with the Annex K tables scaled by
    the IJG quality formula, then the inverse with triangle ("fancy") chroma upsampling, which is
    bilinear 2× interpolation. Results track PIL's encoder to a fraction of a dB.
    """
    _check(x, channels=3)
    b, _, h, w = x.shape
    q_luma, q_chroma = jpeg_quant_tables(_per_sample(quality, b, x.device, "quality"))
    dct = _dct_matrix(x.device)
    rgb = torch.round(x.float().clamp(0, 1) * 255)
    ph, pw = (-h) % 16, (-w) % 16
    rgb = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
    r, g, bl = rgb.unbind(1)
    y = (0.299 * r + 0.587 * g + 0.114 * bl).round()
    cb = (-0.168736 * r - 0.331264 * g + 0.5 * bl + 128).round().clamp(0, 255)
    cr = (0.5 * r - 0.418688 * g - 0.081312 * bl + 128).round().clamp(0, 255)
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2).round()
    y = _jpeg_plane(y, q_luma, dct)
    cb_s = _jpeg_plane(chroma[:, 0], q_chroma, dct)
    cr_s = _jpeg_plane(chroma[:, 1], q_chroma, dct)
    chroma = F.interpolate(torch.stack([cb_s, cr_s], 1), scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0] - 128, chroma[:, 1] - 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    out = out.round().clamp(0, 255)[:, :, :h, :w] / 255
    return _finish(out, x)


def _diffjpeg_factor(quality: Tensor) -> Tensor:
    """IJG's quality scaling on continuous qualities, as a factor of the base table (no rounding, no clamp)."""
    q = quality.float()
    return torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q) / 100.0


def _diffjpeg_plane(plane: Tensor, table: Tensor, dct: Tensor) -> Tensor:
    """Block-DCT, quantise with ``table`` (B×8×8), dequantise and invert one B×H×W plane; no pixel rounding."""
    b, h, w = plane.shape
    blocks = (plane - 128).reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    q = table.view(b, 1, 1, 8, 8)
    coef = torch.round((dct @ blocks @ dct.T) / q) * q
    out = dct.T @ coef @ dct + 128
    return out.permute(0, 1, 3, 2, 4).reshape(b, h, w)


def diff_jpeg(x: Tensor, quality: ParamLike) -> Tensor:
    """JPEG as BasicSR's ``DiffJPEG(differentiable=False)`` computes it (Real-ESRGAN's training JPEG).

    It differs from a real encoder (:func:`jpeg`) on purpose-free details that nevertheless shape the
    artefacts a model learns: the Annex K tables are used transposed, scaled by the continuous quality
    factor (no rounding to integers, no 1..255 clamp); nothing is rounded to 8 bits (input, YCbCr or
    output); the input is zero-padded (not replicated) to 16-pixel multiples; chroma is 2×2 averaged
    and upsampled by nearest-neighbour repetition. Per-sample ``quality`` may be fractional.
    """
    _check(x, channels=3)
    b, _, h, w = x.shape
    factor = _diffjpeg_factor(_per_sample(quality, b, x.device, "quality")).view(b, 1, 1)
    dct = _dct_matrix(x.device)
    luma_t = torch.tensor(_LUMA_TABLE, dtype=torch.float32, device=x.device).T
    chroma_t = torch.tensor(_CHROMA_TABLE, dtype=torch.float32, device=x.device).T
    img = F.pad(x.float() * 255, (0, (-w) % 16, 0, (-h) % 16), mode="constant", value=0.0)
    r, g, bl = img.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    y = _diffjpeg_plane(y, luma_t * factor, dct)
    cb = _diffjpeg_plane(chroma[:, 0], chroma_t * factor, dct)
    cr = _diffjpeg_plane(chroma[:, 1], chroma_t * factor, dct)
    cb = cb.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2) - 128
    cr = cr.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2) - 128
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    return _finish(rgb.clamp(0, 255)[:, :, :h, :w] / 255, x)


def bicubic_down_up(x: Tensor, scale: ParamLike) -> Tensor:
    """Lose detail as ×``scale`` super-resolution inputs do, but keep the size.

    Downsamples by ``scale`` with antialiased bicubic (as MATLAB's ``imresize``), then upsamples
    back to H×W with bicubic, since restorezoo's models restore at the input size. Samples with the
    same scale are resized together.
    """
    _check(x)
    b, c, h, w = x.shape
    scales = _per_sample(scale, b, x.device, "scale").tolist()
    out = torch.empty(b, c, h, w, dtype=torch.float32, device=x.device)
    xf = x.float()
    for s in sorted(set(scales)):
        idx = torch.tensor([i for i, v in enumerate(scales) if v == s], device=x.device)
        if s <= 1:
            out[idx] = xf[idx]
            continue
        size = (max(1, round(h / s)), max(1, round(w / s)))
        small = F.interpolate(xf[idx], size=size, mode="bicubic", antialias=True, align_corners=False)
        out[idx] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return _finish(out, x)
