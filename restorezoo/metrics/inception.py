"""FID exactly as pyiqa's ``fid`` metric computes it (clean-fid's modes), on tensors or folders.

FID depends on how images reach the Inception network more than on the network itself: clean-fid's
"clean" mode resizes each channel of the uint8 image to 299² with PIL's antialiased bicubic in float
and scales to [-1, 1] as ``(x - 128) / 128``; the legacy modes resize bilinearly (PyTorch, or
TensorFlow 1.x's aligned variant) and scale as ``2·x/255 - 1``. Feeding native-size [0, 1] images
instead moves every feature (and FID by an order of magnitude), so restorezoo reproduces each
mode step by step and shares the Inception-v3 (the TF-ported FID weights) with pyiqa.

Tensors are quantised to uint8 first (``round(clamp(x, 0, 1)·255)``, as writing them to PNG does),
so scoring tensors and scoring the folder of their saved PNGs give the same number.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["FID_MODES", "InceptionFeatures", "fid", "fid_inputs", "frechet_distance"]

FID_MODES = ("clean", "legacy_pytorch", "legacy_tensorflow")
"""pyiqa's (clean-fid's) FID modes; papers that report FID rarely say which one they used."""

_SIZE = (299, 299)


def _ensure_fid_weights() -> None:
    """Find (or fetch) pyiqa's FID Inception weights before building the network, so offline fails fast."""
    from pyiqa.archs.inception import FID_WEIGHTS_URL
    from pyiqa.utils.download_util import load_file_from_url

    with contextlib.redirect_stdout(io.StringIO()):
        load_file_from_url(FID_WEIGHTS_URL, progress=False)


def _uint8(images: Tensor) -> Tensor:
    """B×3×H×W float in [0, 1] → float32 uint8 levels (0..255) on the CPU, as a saved PNG holds them."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W RGB tensor, got shape {tuple(images.shape)}")
    return images.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round()


def _resize_clean(levels: Tensor) -> Tensor:
    """clean-fid's resize: each channel separately, PIL bicubic (antialiased) in 32-bit float, then clip."""
    from PIL import Image

    out = torch.empty(levels.shape[0], 3, *_SIZE, dtype=torch.float32)
    arrays = levels.numpy()
    for i in range(levels.shape[0]):
        for c in range(3):
            plane = Image.fromarray(np.ascontiguousarray(arrays[i, c], dtype=np.float32))
            resized = np.asarray(plane.resize(_SIZE, resample=Image.BICUBIC)).clip(0, 255)
            out[i, c] = torch.from_numpy(resized.copy())
    return out


def fid_inputs(images: Tensor, mode: str = "clean") -> Tensor:
    """What the FID Inception sees for a batch in [0, 1] under ``mode``: B×3×299×299 in about [-1, 1]."""
    if mode not in FID_MODES:
        raise ValueError(f"unknown FID mode {mode!r}; expected one of {', '.join(FID_MODES)}")
    levels = _uint8(images)
    if mode == "clean":
        return (_resize_clean(levels) - 128) / 128
    if mode == "legacy_tensorflow":
        from pyiqa.archs.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        resized = interpolate_bilinear_2d_like_tensorflow1x(levels, size=_SIZE, align_corners=False)
        return (resized - 128) / 128
    resized = torch.nn.functional.interpolate(levels, size=_SIZE, mode="bilinear", align_corners=False)
    return 2 * (resized / 255) - 1


class InceptionFeatures(torch.nn.Module):
    """2048-d pool features of the FID Inception-v3 (pyiqa's, shared with pytorch-fid and clean-fid).

    ``forward`` takes B×3×H×W images in [0, 1] of any size and applies ``mode``'s quantisation,
    resize and scaling (:func:`fid_inputs`) before the network. pyiqa downloads the weights
    (``pt_inception-2015-12-05-6726825d.pth``) into its cache on first use; a file already placed
    there is used offline.
    """

    dim = 2048

    def __init__(self, device: torch.device | str = "cpu", mode: str = "clean") -> None:
        super().__init__()
        if mode not in FID_MODES:
            raise ValueError(f"unknown FID mode {mode!r}; expected one of {', '.join(FID_MODES)}")
        from pyiqa.archs.inception import InceptionV3

        _ensure_fid_weights()
        self.mode = mode
        # Inputs are prepared by fid_inputs, so the network must neither resize nor rescale again.
        self.net = InceptionV3(output_blocks=[3], resize_input=False, normalize_input=False)
        self.net.to(device).eval()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        device = next(self.net.parameters()).device
        x = fid_inputs(images, self.mode).to(device)
        return self.net(x, False, False)[0].flatten(1).float()


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance of Gaussians fitted to two N×D feature sets (FID, Heusel et al. 2017).

    ``||mu_a - mu_b||² + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^½)`` with unbiased covariances. The trace
    of the root is computed exactly from symmetric factors: with ``S = XᵀX`` for the centred,
    ``1/√(N-1)``-scaled features, it is the nuclear norm of ``X_a X_bᵀ`` (N_a×N_b) when there are
    fewer images than dimensions, else the sum of root eigenvalues of ``S_a^½ S_b S_a^½``. This avoids
    the ill-conditioned general matrix square root of a rank-deficient product.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two N×D feature sets, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    a, b = a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    xa = (a - mu_a) / (a.shape[0] - 1) ** 0.5
    xb = (b - mu_b) / (b.shape[0] - 1) ** 0.5
    trace = xa.square().sum() + xb.square().sum()
    if min(a.shape[0], b.shape[0]) <= a.shape[1]:
        root_trace = torch.linalg.svdvals(xa @ xb.T).sum()
    else:
        evals, evecs = torch.linalg.eigh(xa.T @ xa)
        root_a = (evecs * evals.clamp(min=0).sqrt()) @ evecs.T
        root_trace = torch.linalg.eigvalsh(root_a @ (xb.T @ xb) @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + trace - 2 * root_trace)


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _folder_images(folder: Path) -> Iterable[Tensor]:
    """A folder's images (sorted by name, as pyiqa scans them), one 1×3×H×W [0, 1] tensor each."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if len(files) < 2:
        raise ValueError(f"FID needs at least 2 images, found {len(files)} in {folder}")
    for f in files:  # one at a time: sizes may differ within a folder
        arr = np.asarray(Image.open(f).convert("RGB"))
        yield torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255


def _features(
    source: Tensor | str | Path | Sequence[Tensor], net: InceptionFeatures, batch_size: int
) -> Tensor:
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            raise ValueError(f"FID input {folder} is not a folder of images")
        return torch.cat([net(x) for x in _folder_images(folder)])
    if isinstance(source, Tensor):
        return torch.cat([net(source[i : i + batch_size]) for i in range(0, source.shape[0], batch_size)])
    return torch.cat([net(x if x.ndim == 4 else x.unsqueeze(0)) for x in source])


def fid(
    a: Tensor | str | Path | Sequence[Tensor],
    b: Tensor | str | Path | Sequence[Tensor],
    mode: str = "clean",
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    net: InceptionFeatures | None = None,
) -> float:
    """FID between two image sets, equal to pyiqa's ``fid`` metric in the same ``mode``.

    ``a`` and ``b`` are each a B×3×H×W tensor in [0, 1], a list of 3×H×W / 1×3×H×W tensors (sizes
    may differ), or a folder of images. ``net`` reuses an :class:`InceptionFeatures` (its mode wins).
    """
    net = net if net is not None else InceptionFeatures(device, mode)
    return frechet_distance(_features(a, net, batch_size), _features(b, net, batch_size))
