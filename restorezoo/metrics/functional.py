"""PSNR and SSIM exactly as BasicSR computes them, on batched torch tensors.

Published restoration numbers come from BasicSR-style scripts (``tensor2img`` then
``calculate_psnr``/``calculate_ssim``). Small choices there (uint8 rounding, MATLAB BT.601 luma,
border crop, an 11×11 Gaussian window with 'valid' filtering) move PSNR by tenths of a dB or more,
so restorezoo follows them to the letter instead of using a library's slightly different variant.
``quantize=False`` is BasicSR's float path (``calculate_psnr_pt``/``calculate_ssim_pt``) instead.

Inputs are B×3×H×W RGB tensors in [0, 1] on any device; every function returns one float64 value
per image (a tensor of shape [B]) so callers can average per image, per task or per benchmark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from restorezoo.metrics.protocol import MetricProtocol

__all__ = ["rgb_to_y", "prepare", "psnr", "ssim", "psnr_ssim", "gaussian_window"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)
"""MATLAB ``rgb2ycbcr`` luma weights for R, G, B in [0, 1], giving Y in [16, 235] on the 0-255 scale."""

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5


def rgb_to_y(img: Tensor) -> Tensor:
    """MATLAB BT.601 luma of a B×3×H×W RGB tensor in [0, 1], as B×1×H×W in [16/255, 235/255].

    The result is ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``: Y on the usual [0, 1] image
    scale (multiply by 255 for BasicSR's 0-255 Y). It is not re-rounded, matching BasicSR's
    ``to_y_channel``, which keeps the luma of the uint8 image in floating point.
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W RGB tensor, got shape {tuple(img.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return ((img * weights).sum(dim=1, keepdim=True) + 16.0) / 255.0


def _resolve(
    crop_border: int, y_channel: bool, quantize: bool, protocol: MetricProtocol | None
) -> MetricProtocol:
    if protocol is not None:
        return protocol
    return MetricProtocol(y_channel=y_channel, crop_border=crop_border, quantize=quantize)


def prepare(img: Tensor, protocol: MetricProtocol) -> Tensor:
    """Turn a B×3×H×W image in [0, 1] into what BasicSR scores: float64 on the 0-255 scale.

    ``quantize=True`` follows ``tensor2img`` + ``calculate_psnr``: clamp to [0, 1] and round to uint8
    levels, crop the border, then take the Y channel. ``quantize=False`` follows BasicSR's
    ``calculate_psnr_pt``/``calculate_ssim_pt``: no clamp and no rounding (a prediction out of range is
    scored as it is), crop, Y in the input's own dtype (as ``rgb2ycbcr_pt``), then float64. NaNs pass
    through so a broken prediction scores NaN.
    """
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W RGB tensor, got shape {tuple(img.shape)}")
    if img.device.type == "mps":  # MPS has no float64
        img = img.cpu()
    c = protocol.crop_border
    if c > 0 and (img.shape[-2] <= 2 * c or img.shape[-1] <= 2 * c):
        raise ValueError(f"crop_border {c} leaves nothing of a {img.shape[-2]}×{img.shape[-1]} image")
    if not protocol.quantize:
        x = img.detach()
        if not x.is_floating_point():
            x = x.float()
        if c > 0:
            x = x[..., c:-c, c:-c]
        if protocol.y_channel:
            weights = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(3, 1)
            x = (torch.matmul(x.permute(0, 2, 3, 1), weights).permute(0, 3, 1, 2) + 16.0) / 255.0
        return x.to(torch.float64) * 255.0
    x = img.detach().to(torch.float64).clamp(0.0, 1.0) * 255.0
    x = x.round()
    if c > 0:
        x = x[..., c:-c, c:-c]
    if protocol.y_channel:
        x = rgb_to_y(x / 255.0) * 255.0
    return x


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def _psnr_prepared(x: Tensor, y: Tensor, quantize: bool = True) -> Tensor:
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    if not quantize:  # calculate_psnr_pt: on the [0, 1] scale with a 1e-8 floor (identical images: 80 dB)
        return 10.0 * torch.log10(1.0 / (mse / 255.0**2 + 1e-8))
    # 10·log10(255² / 0) = +inf, as BasicSR's ``calculate_psnr`` returns for identical images.
    return 10.0 * torch.log10((255.0**2) / mse)


def gaussian_window(
    size: int = _SSIM_SIZE,
    sigma: float = _SSIM_SIGMA,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """The size×size SSIM window: outer product of a normalised 1-D Gaussian (OpenCV getGaussianKernel)."""
    g = _gaussian_1d(size, sigma, dtype, device)
    return torch.outer(g, g)


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    """OpenCV's getGaussianKernel: a normalised 1-D Gaussian of ``size`` taps."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _ssim_prepared(x: Tensor, y: Tensor) -> Tensor:
    """SSIM on 0-255 float64 images, per image: mean over the valid SSIM map of every channel."""
    size = _SSIM_SIZE
    if x.shape[-2] < size or x.shape[-1] < size:
        raise ValueError(
            f"SSIM needs images of at least {size}×{size} after cropping, got {x.shape[-2]}×{x.shape[-1]}"
        )
    channels = x.shape[1]
    g = _gaussian_1d(size, _SSIM_SIGMA, x.dtype, x.device)
    column, row = g.view(1, 1, size, 1).expand(channels, 1, size, 1), g.view(1, 1, 1, size).expand(channels, 1, 1, size)

    def filt(t: Tensor) -> Tensor:
        # No padding: BasicSR filters with borders then drops 5 pixels per side, i.e. keeps the valid part.
        # The window is an outer product, so a column pass then a row pass equals BasicSR's 2-D filter
        # (float64, to the last bits) at 2·11 instead of 11² multiplies per pixel (benchmarks/ssim_filter_speed.py).
        return F.conv2d(F.conv2d(t, column, groups=channels), row, groups=channels)

    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    mu_x, mu_y = filt(x), filt(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = filt(x * x) - mu_xx
    var_y = filt(y * y) - mu_yy
    cov = filt(x * y) - mu_xy
    ssim_map = ((2 * mu_xy + c1) * (2 * cov + c2)) / ((mu_xx + mu_yy + c1) * (var_x + var_y + c2))
    # Every channel's map has the same size, so the mean of channel means is the mean over all.
    return ssim_map.flatten(1).mean(dim=1)


def psnr(
    pred: Tensor,
    target: Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    quantize: bool = True,
    *,
    protocol: MetricProtocol | None = None,
) -> Tensor:
    """Per-image PSNR in dB (shape [B], float64): BasicSR's ``calculate_psnr`` on uint8-rounded images
    (``quantize=True``), its ``calculate_psnr_pt`` on the float images (``quantize=False``).

    ``protocol``, when given, replaces ``crop_border``/``y_channel``/``quantize``. Identical images
    give ``+inf`` when quantised (as ``calculate_psnr``; callers that average should cap it, the metric
    callback uses 100 dB) and 80 dB in float (``calculate_psnr_pt``'s 1e-8 floor).
    """
    _check_pair(pred, target)
    p = _resolve(crop_border, y_channel, quantize, protocol)
    return _psnr_prepared(prepare(pred, p), prepare(target, p), p.quantize)


def ssim(
    pred: Tensor,
    target: Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    quantize: bool = True,
    *,
    protocol: MetricProtocol | None = None,
) -> Tensor:
    """Per-image SSIM (shape [B], float64), BasicSR's ``calculate_ssim`` (``quantize=True``) or
    ``calculate_ssim_pt`` (``quantize=False``) on batched tensors.

    11×11 Gaussian window (σ = 1.5), valid filtering, C1 = (0.01·255)², C2 = (0.03·255)², averaged
    over channels for RGB. ``protocol``, when given, replaces the three keyword settings.
    """
    _check_pair(pred, target)
    p = _resolve(crop_border, y_channel, quantize, protocol)
    return _ssim_prepared(prepare(pred, p), prepare(target, p))


def psnr_ssim(pred: Tensor, target: Tensor, protocol: MetricProtocol) -> tuple[Tensor, Tensor]:
    """Both metrics under one protocol, preparing each image once (what the metric callback calls)."""
    _check_pair(pred, target)
    x, y = prepare(pred, protocol), prepare(target, protocol)
    return _psnr_prepared(x, y, protocol.quantize), _ssim_prepared(x, y)
