"""InstructIR's released test script, number for number (the ``instructir-release`` protocol).

The release (github: mv-lab/InstructIR, ``test.py``) scores differently from BasicSR, and its
published numbers come from these formulas, so restorezoo reproduces them next to its BasicSR-exact
protocol rather than instead of it:

- RGB: PSNR ``20 log10(1 / sqrt(MSE))`` and SSIM (Gaussian 11x11, sigma 1.5, valid, K = 0.01/0.03,
  data range 1: the ``pytorch_msssim`` formula) on the *raw* float output: not clamped, not rounded.
- Y, on its rain sets only, through SwinIR's ``calculate_psnr/ssim(test_y_channel=True)``, with the
  **release's luma quirk**: the RGB image goes in where that code expects BGR, so the BT.601 weights
  land on the wrong channels (Y = 16 + 24.966 R + 128.553 G + 65.481 B), and both images are
  truncated to uint8 (``astype(np.uint8)`` after clamping to [0, 1] and x255, not rounded), which also
  moves ground-truth levels whose float32 k/255 x 255 falls just below k.
- Before the model runs, LQ and GT are centre-cropped to a multiple of 16 (``crop_multiple``, done
  by the dataset).

Inputs are B×3×H×W tensors in [0, 1]; every function returns float64 scores per image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from restorezoo.metrics.functional import _ssim_prepared

__all__ = ["RELEASE_LUMA_BGR_WEIGHTS", "centre_crop_to_multiple", "release_luma", "release_scores"]

RELEASE_LUMA_BGR_WEIGHTS = (24.966, 128.553, 65.481)
"""BT.601 luma weights in BGR order, as the release's ``bgr2ycbcr`` applies them (to RGB images)."""


def centre_crop_to_multiple(img: Tensor, multiple: int = 16) -> Tensor:
    """Crop ...×H×W to the largest multiple of ``multiple``, the remainder split as the release does
    (``h % m // 2`` rows off the top, the rest off the bottom)."""
    if multiple <= 1:
        return img
    height, width = img.shape[-2:]
    ch, cw = height % multiple, width % multiple
    return img[..., ch // 2 : height - ch + ch // 2, cw // 2 : width - cw + cw // 2]


def release_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """The release's ``pt_psnr``: 20·log10(1/√MSE) on the float images, per image, no clamp."""
    diff = pred.detach().double() - target.detach().double()
    mse = diff.pow(2).flatten(1).mean(dim=1)
    return 20.0 * torch.log10(1.0 / torch.sqrt(mse))


def release_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM on the raw float images (data range 1), mean over each channel's valid map, then channels."""
    return _ssim_prepared(pred.detach().double() * 255.0, target.detach().double() * 255.0)


def release_luma(img: Tensor) -> Tensor:
    """Y (0-255, float32 values, as B×1×H×W float64) as the release computes it, quirk included.

    uint8 by truncation, the /255 only when the image's maximum exceeds 1 (else the release raises:
    such images score NaN here), BGR weights on RGB channels, float32 rounding of Y/255.
    """
    levels = (img.detach().float().clamp(0.0, 1.0) * 255.0).to(torch.uint8)  # astype(np.uint8): truncates
    out = []
    weights = torch.tensor(RELEASE_LUMA_BGR_WEIGHTS, dtype=torch.float64)
    for one in levels.cpu():
        if int(one.max()) <= 1:  # the release's to_y_channel keeps float64 there and bgr2ycbcr raises
            out.append(torch.full((1, *one.shape[-2:]), float("nan"), dtype=torch.float64))
            continue
        scaled = (one.double().float() / 255.0).double()  # float32 image in [0, 1]
        y = torch.einsum("chw,c->hw", scaled, weights) + 16.0  # np.dot(float32, list) is float64
        y = (y / 255.0).float() * 255.0  # _convert_output_type_range(float32), then x255 in float32
        out.append(y.double()[None])
    return torch.stack(out).to(img.device)


def release_scores(pred: Tensor, target: Tensor, also_y: bool = False) -> dict[str, Tensor]:
    """``psnr``/``ssim`` (RGB, raw float) and, with ``also_y``, ``psnr_y``/``ssim_y`` (the luma quirk)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    scores = {"psnr": release_psnr(pred, target), "ssim": release_ssim(pred, target)}
    if also_y:
        yp, yt = release_luma(pred), release_luma(target)
        mse = (yp - yt).pow(2).flatten(1).mean(dim=1)
        scores["psnr_y"] = 20.0 * torch.log10(255.0 / torch.sqrt(mse))
        scores["ssim_y"] = _ssim_prepared(yp, yt)
    return scores
