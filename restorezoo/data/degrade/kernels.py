"""Blur kernels of the Real-ESRGAN degradation model (Wang et al., 2021, Sec. 3.1) and USM sharpening.

Kernels are drawn one sample at a time on the CPU with a ``torch.Generator`` (the DataLoader
workers' job), padded to a common 21×21 so a batch stacks, and applied later on the accelerator.
Every kernel sums to 1. The bivariate families share one covariance
``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`` and differ in how the Mahalanobis distance ``d² = xᵀΣ⁻¹x`` is
turned into a weight:

- Gaussian: ``exp(-d²/2)``;
- generalized Gaussian: ``exp(-(d²)^β_g / 2)`` (β_g < 1 heavier tails, β_g > 1 flatter top);
- plateau: ``1 / (1 + (d²)^β_p)`` (a flat top and slow fall-off).

Coordinates: ``x`` runs along columns (to the right), ``y`` along rows (down); ``θ`` rotates the
σx axis from ``x`` towards ``y``.

This module is the one home of the blur kernels: ``gaussian_kernels`` (a batch of isotropic ones,
what ``ops.gaussian_blur`` and USM use) is ``bivariate_kernel`` with σx = σy, θ = 0, built batched
in float32; ``filter2d`` applies a batch of kernels, one a sample (``ops`` imports both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "KERNEL_FAMILIES",
    "KERNEL_PROBS",
    "KERNEL_SIZE",
    "bivariate_kernel",
    "filter2d",
    "generalized_gaussian_kernel",
    "gaussian_kernel",
    "gaussian_kernels",
    "kernel_info_from_meta",
    "kernel_meta",
    "pad_kernel",
    "plateau_kernel",
    "pulse_kernel",
    "random_mixed_kernel",
    "sinc_kernel",
    "usm_sharpen",
]

KERNEL_SIZE = 21
"""Every kernel is zero-padded to this size (the largest drawn) so that a batch of them stacks."""

KERNEL_FAMILIES: tuple[str, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
KERNEL_PROBS: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
"""Real-ESRGAN's family probabilities for both blur stages (Wang et al., Real-ESRGAN, 2021, §3.1; BasicSR's train_realesrnet_x4plus.yml)."""

_ALL_FAMILIES = (*KERNEL_FAMILIES, "sinc", "pulse")
_META_FIELDS = ("family", "size", "sigma_x", "sigma_y", "theta", "beta", "cutoff")


# --------------------------------------------------------------------------------------------------
# deterministic kernels


def _grid(size: int) -> tuple[Tensor, Tensor]:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return xx, yy


def _mahalanobis2(size: int, sigma_x: float, sigma_y: float, theta: float) -> Tensor:
    """``xᵀ Σ⁻¹ x`` on the kernel grid, in the rotated frame where Σ is diagonal."""
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy  # coordinate along the σx axis
    v = -s * xx + c * yy  # along the σy axis
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def _normalise(k: Tensor) -> Tensor:
    return (k / k.sum()).float()


def bivariate_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float = 0.0, beta: float = 1.0, family: str = "gaussian"
) -> Tensor:
    """One ``size``×``size`` kernel of a bivariate family ("gaussian", "generalized", "plateau"), sum 1."""
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    d2 = _mahalanobis2(size, max(sigma_x, 1e-3), max(sigma_y, 1e-3), theta)
    if family == "gaussian":
        k = torch.exp(-0.5 * d2)
    elif family == "generalized":
        k = torch.exp(-0.5 * d2.pow(beta))
    elif family == "plateau":
        k = 1.0 / (1.0 + d2.pow(beta))
    else:
        raise ValueError(f"unknown bivariate kernel family {family!r}")
    return _normalise(k)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> Tensor:
    """Gaussian kernel; isotropic when ``sigma_y`` is None."""
    return bivariate_kernel(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta, family="gaussian")


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """Isotropic Gaussian kernels (B×k×k on ``sigma``'s device, each summing to 1), one per sigma;
    sigma ≤ 0 gives the identity kernel.

    The batched form of ``gaussian_kernel(kernel_size, sigma[i])`` (σx = σy, θ = 0), built on the
    device as the outer product of a normalised float32 1-D Gaussian: it agrees with the float64
    ``bivariate_kernel`` to float32 rounding (2.4e-7 at most, on the near-delta kernels of σ < 0.6),
    and its exact numbers are what the seeded blur, USM and the packaged sample photos were made with.
    """
    r = torch.arange(kernel_size, dtype=torch.float32, device=sigma.device) - kernel_size // 2
    s = sigma.float().clamp_min(1e-3).view(-1, 1)
    g = torch.exp(-(r**2) / (2 * s**2))  # B×k
    g = g / g.sum(dim=1, keepdim=True)
    return g[:, :, None] * g[:, None, :]


def filter2d(x: Tensor, kernels: Tensor) -> Tensor:
    """Convolve each sample of a B×C×H×W batch with its own k×k kernel (B×k×k) in one grouped conv,
    reflect padded (replicate when the image is smaller than the kernel's radius)."""
    b, c, h, w = x.shape
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if pad < h and pad < w else "replicate"
    padded = F.pad(x.reshape(1, b * c, h, w), (pad, pad, pad, pad), mode=mode)
    weight = kernels.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C)×1×k×k
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, beta: float = 1.0
) -> Tensor:
    """Generalized Gaussian ``exp(-(d²)^β/2)``: β = 1 is the Gaussian."""
    sy = sigma_x if sigma_y is None else sigma_y
    return bivariate_kernel(size, sigma_x, sy, theta, beta, family="generalized")


def plateau_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, beta: float = 1.0
) -> Tensor:
    """Plateau-shaped ``1/(1 + (d²)^β)``: a flat top, as out-of-focus blur of real cameras has."""
    return bivariate_kernel(
        size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta, beta, family="plateau"
    )


def sinc_kernel(size: int, cutoff: float) -> Tensor:
    """Ideal circular low-pass of angular ``cutoff`` (rad/pixel), truncated to ``size``×``size``, sum 1.

    The 2-D inverse transform of a disc of radius ω is the jinc ``ω·J1(ω·r) / (2π·r)``, with the
    limit ``ω²/(4π)`` at r = 0. It makes the ringing and overshoot artefacts of real resizers.
    """
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    xx, yy = _grid(size)
    r = torch.sqrt(xx**2 + yy**2)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    k = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    k = torch.where(r > 0, k, torch.full_like(r, cutoff**2 / (4 * math.pi)))
    return _normalise(k)


def pulse_kernel(size: int = KERNEL_SIZE) -> Tensor:
    """The identity kernel: a skipped blur stage still convolves, so a batch needs no branching."""
    k = torch.zeros(size, size)
    k[size // 2, size // 2] = 1.0
    return k


def pad_kernel(kernel: Tensor, size: int = KERNEL_SIZE) -> Tensor:
    """Zero-pad a centred odd kernel to ``size``×``size`` (same filter, stackable shape)."""
    pad = (size - kernel.shape[-1]) // 2
    if pad < 0:
        raise ValueError(f"kernel of size {kernel.shape[-1]} exceeds {size}")
    return F.pad(kernel, (pad, pad, pad, pad))


# --------------------------------------------------------------------------------------------------
# random draws (CPU generator, one sample)


def _u(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return float(lo + (hi - lo) * torch.rand((), generator=generator).item())


def _odd_size(kernel_range: Sequence[int], generator: torch.Generator | None) -> int:
    lo, hi = int(kernel_range[0]), int(kernel_range[1])
    sizes = list(range(lo + (1 - lo % 2), hi + 1, 2))
    return sizes[int(torch.randint(len(sizes), (), generator=generator))]


def _beta(bounds: Sequence[float], generator: torch.Generator | None, draw: str = "basicsr") -> float:
    """Half the draws from ``U(lo, 1)`` and half from ``U(1, hi)``, as Real-ESRGAN samples β.

    ``draw="basicsr"`` tosses that coin whatever the range, as BasicSR does: for plateau [1, 2] half the
    draws are ``U(1, 1)``, i.e. β = 1 exactly. ``draw="range"`` tosses it only when the range
    straddles 1 and draws uniformly over the range otherwise.
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    if draw == "basicsr" or lo < 1 < hi:
        return _u(lo, 1.0, generator) if torch.rand((), generator=generator) < 0.5 else _u(1.0, hi, generator)
    return _u(lo, hi, generator)


def random_mixed_kernel(
    generator: torch.Generator | None = None,
    families: Sequence[str] = KERNEL_FAMILIES,
    probs: Sequence[float] = KERNEL_PROBS,
    kernel_range: Sequence[int] = (7, 21),
    sigma_range: Sequence[float] = (0.2, 3.0),
    betag_range: Sequence[float] = (0.5, 4.0),
    betap_range: Sequence[float] = (1.0, 2.0),
    sinc_prob: float = 0.1,
    sinc_cutoff_small: Sequence[float] = (math.pi / 3, math.pi),
    sinc_cutoff_large: Sequence[float] = (math.pi / 5, math.pi),
    pad_to: int = KERNEL_SIZE,
    beta_draw: str = "basicsr",
) -> tuple[Tensor, dict[str, Any]]:
    """Draw one blur kernel as a Real-ESRGAN stage does: size, then sinc (p ``sinc_prob``) or a family.

    Returns the ``pad_to``×``pad_to`` kernel and a JSON-serialisable description of it. Sinc
    cutoffs come from ``sinc_cutoff_small`` for sizes below 13, else ``sinc_cutoff_large`` (a
    larger kernel can resolve a lower cutoff). ``beta_draw`` is how β is drawn (see :func:`_beta`).
    """
    size = _odd_size(kernel_range, generator)
    info: dict[str, Any] = {"size": size}
    if torch.rand((), generator=generator) < sinc_prob:
        bounds = sinc_cutoff_small if size < 13 else sinc_cutoff_large
        cutoff = _u(bounds[0], bounds[1], generator)
        info.update(family="sinc", cutoff=round(cutoff, 4))
        return pad_kernel(sinc_kernel(size, cutoff), pad_to), info
    weights = torch.tensor([float(p) for p in probs], dtype=torch.float64)
    family = families[int(torch.multinomial(weights, 1, generator=generator))]
    sigma_x = _u(sigma_range[0], sigma_range[1], generator)
    if family.endswith("aniso"):
        sigma_y = _u(sigma_range[0], sigma_range[1], generator)
        theta = _u(-math.pi, math.pi, generator)
    else:
        sigma_y, theta = sigma_x, 0.0
    beta = 1.0
    if family.startswith("generalized"):
        beta = _beta(betag_range, generator, beta_draw)
        kind = "generalized"
    elif family.startswith("plateau"):
        beta = _beta(betap_range, generator, beta_draw)
        kind = "plateau"
    elif family in ("iso", "aniso"):
        kind = "gaussian"
    else:
        raise ValueError(f"unknown kernel family {family!r}; expected one of {KERNEL_FAMILIES}")
    kernel = bivariate_kernel(size, sigma_x, sigma_y, theta, beta, family=kind)
    info.update(
        family=family,
        sigma_x=round(sigma_x, 4),
        sigma_y=round(sigma_y, 4),
        theta=round(theta, 4),
        beta=round(beta, 4),
    )
    return pad_kernel(kernel, pad_to), info


def kernel_meta(info: dict[str, Any]) -> Tensor:
    """Pack a kernel description into a float vector, so it travels through ``collate`` as a tensor."""
    family = _ALL_FAMILIES.index(info.get("family", "pulse"))
    values = [float(family)] + [float(info.get(name, 0.0)) for name in _META_FIELDS[1:]]
    return torch.tensor(values, dtype=torch.float64)


def kernel_info_from_meta(meta: Tensor) -> dict[str, Any]:
    """Inverse of :func:`kernel_meta`: the JSON-serialisable description (only the fields that apply)."""
    values = [float(v) for v in meta.detach().cpu().tolist()]
    family = _ALL_FAMILIES[int(values[0])]
    info: dict[str, Any] = {"family": family}
    if family == "pulse":
        return info
    info["size"] = int(values[1])
    if family == "sinc":
        info["cutoff"] = round(values[6], 4)
        return info
    info.update(sigma_x=round(values[2], 4), sigma_y=round(values[3], 4), theta=round(values[4], 4))
    if family.startswith(("generalized", "plateau")):
        info["beta"] = round(values[5], 4)
    return info


# --------------------------------------------------------------------------------------------------
# sharpening of the target


def usm_sharpen(img: Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> Tensor:
    """Unsharp-mask a B×3×H×W batch in [0, 1]; Real-ESRGAN trains on sharpened targets for crisper output.

    ``sharp = img + weight·(img − blur(img))`` is blended in only where the detail exceeds
    ``threshold`` (0-255 scale), through a blurred mask so flat regions keep their noise-free look.
    As in Real-ESRGAN, the Gaussian has ``radius`` taps (rounded up to odd: 51 by default) and the
    σ OpenCV derives from that size (8 for 51 taps).
    """
    size = radius + 1 if radius % 2 == 0 else radius
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    b = img.shape[0]
    kernels = gaussian_kernels(torch.full((b,), sigma, device=img.device), size)
    x = img.float()
    residual = x - filter2d(x, kernels)
    mask = (residual.abs() * 255 > threshold).float()
    soft = filter2d(mask, kernels)
    sharp = (x + weight * residual).clamp(0, 1)
    return (soft * sharp + (1 - soft) * x).to(img.dtype)
