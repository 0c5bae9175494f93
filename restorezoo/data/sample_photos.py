"""The embedded sample's photos: scikit-image ships them, so the quickstarts need no download.

``restorezoo sample`` writes the degraded test photos to try ``restore`` on. The default set
(``DEFAULT_SAMPLE_TASKS``) is also packaged pre-rendered under ``restorezoo/assets/sample`` so the
command answers without importing torch; ``tests/test_layout.py`` checks the packaged files equal
what ``write_degraded_sample`` computes, and ``restorezoo sample --compute --packaged`` rewrites them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_SAMPLE_TASKS = ("noise", "blur", "lowlight")
"""The degradations ``restorezoo sample`` writes by default (and the packaged set holds)."""

DIFFRESTORER_SAMPLE_TASKS: tuple = (
    {"name": "noise", "sigmas": [50]}, "lowlight", "haze", "rain", "raindrop", "snow", "blur",
    {"name": "jpeg", "quality": [10, 10]},
)  # fmt: skip
"""Diff-Restorer's eight degradation types at the strengths of its quickstart (noise σ 50, JPEG q10): the
held-out classification sets of ``benchmarks/miniature.py``, ``diffrestorer_tsne.py`` and mini-clip's probe."""

PACKAGED_SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample"
"""``<name>_<task>.png`` degraded test photos and ``clean/<name>.png``: the default sample, pre-rendered."""

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

SAMPLE_CAPTIONS: dict[str, str] = {
    "astronaut": "a portrait of an astronaut in a white spacesuit in front of an american flag",
    "motorcycle": "a red motorcycle parked in a workshop",
    "hubble_deep_field": "galaxies and stars in the black night sky",
    "retina": "a photo of the retina of a human eye, red and orange with blood vessels",
    "camera": "a black and white photo of a man with a camera on a tripod",
    "brick": "a grey brick wall",
    "grass": "a close-up of green grass",
    "gravel": "a close-up of grey gravel stones",
    "coins": "old coins on a grey background",
    "moon": "the surface of the moon with craters",
    "immunohistochemistry": "a microscope image of stained tissue cells",
    "chelsea": "a photo of a ginger cat",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on its launch pad",
}
"""A caption written for each sample photo: mini-sd's prior trains on the train photos' ones, and the
latent-diffusion quickstarts give them as semantic prompts (``Sample(photo_captions=True)``)."""


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
    import torch
    from skimage import data as skdata

    array = np.asarray(skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))



def write_degraded_sample(folder: str | Path, tasks: Sequence[str] = DEFAULT_SAMPLE_TASKS, packaged: bool = False) -> int:
    """Degrade the test photos (``Sample("test")``, evaluation seeds) into ``folder``; returns the count.

    Layout: ``<name>_<task>.png`` and ``clean/<name>_<task>.png``; with ``packaged`` the clean photos
    are written once each, as ``clean/<name>.png`` (the packaged layout).
    """
    from restorezoo.data.datasets import Sample
    from restorezoo.data.io import save_image

    folder = Path(folder)
    data = Sample("test", tasks=list(tasks)).configure(training=False)
    for index in range(len(data)):
        sample = data[index]
        save_image(sample["lq"], folder / f"{sample['name']}.png")
        clean = sample["name"].rsplit("_", 1)[0] if packaged else sample["name"]
        save_image(sample["hq"], folder / "clean" / f"{clean}.png")
    return len(data)


def copy_packaged_sample(folder: str | Path) -> int:
    """Copy the packaged default sample into ``folder`` in ``write_degraded_sample``'s layout; returns the count."""
    from restorezoo.files import atomic_write_bytes

    folder = Path(folder)
    clean = {path.stem: path.read_bytes() for path in PACKAGED_SAMPLE.glob("clean/*.png")}  # read each once
    degraded = sorted(PACKAGED_SAMPLE.glob("*.png"))
    for path in degraded:
        atomic_write_bytes(folder / path.name, path.read_bytes())
        atomic_write_bytes(folder / "clean" / path.name, clean[path.stem.rsplit("_", 1)[0]])
    return len(degraded)


__all__ = ["DEFAULT_SAMPLE_TASKS", "DIFFRESTORER_SAMPLE_TASKS", "SAMPLE_PHOTOS", "center_crop", "copy_packaged_sample", "sample_photo", "write_degraded_sample"]
