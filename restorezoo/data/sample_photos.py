"""The embedded sample's photos: scikit-image ships them, so the quickstarts need no download."""

from __future__ import annotations

import torch
from torch import Tensor

SAMPLE_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut",
        "motorcycle",
        "hubble_deep_field",
        "retina",
        "camera",
        "brick",
        "grass",
        "gravel",
        "coins",
        "moon",
    ),
    "val": ("immunohistochemistry",),
    "test": ("chelsea", "coffee", "rocket"),
}
"""Photos bundled with scikit-image, split once and for all so results are comparable across runs."""


def center_crop(image: Tensor, max_side: int | None) -> Tensor:
    """Centre-crop a C×H×W image to at most ``max_side`` pixels per side (None: unchanged)."""
    if max_side is None:
        return image
    height, width = image.shape[-2:]
    top, left = max((height - max_side) // 2, 0), max((width - max_side) // 2, 0)
    return image[:, top : top + max_side, left : left + max_side]


def sample_photo(name: str) -> Tensor:
    """One of scikit-image's bundled photos as a 3×H×W float tensor in [0, 1] (grey ones as RGB)."""
    import numpy as np
    from skimage import data as skdata

    array = np.asarray(skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


__all__ = ["SAMPLE_PHOTOS", "center_crop", "sample_photo"]
