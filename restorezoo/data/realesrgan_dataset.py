"""Clean photos for the Real-ESRGAN degradation, which runs on the accelerator (SPIRE's blind half).

The dataset does only the cheap, per-sample part on the CPU: load, crop, flip and draw the blur
kernels. The DataModule's ``gpu_degradation`` hook degrades the batch where it lives (BasicSR's
split), so each sample's ``lq`` is just the cropped HQ as a placeholder until then.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from restorezoo.data.datasets import Item, RestorationDataset
from restorezoo.data.degrade.realesrgan import RealESRGAN, RealESRGANOptions
from restorezoo.data.io import list_images, load_image
from restorezoo.data.pairing import require_dir
from restorezoo.data.sample_photos import SAMPLE_PHOTOS, center_crop, sample_photo
from restorezoo.errors import DataError
from restorezoo.metrics.protocol import MetricProtocol

__all__ = ["RealESRGANSynthetic", "SpireMix"]


def attach_kernels(
    dataset: RestorationDataset, sample: dict[str, Any], index: int, degrade: bool
) -> dict[str, Any]:
    """Add the Real-ESRGAN kernels (drawn here, on the CPU) and the ``gpu_degrade`` flag to a sample.

    In evaluation the kernels come from a per-index stream apart from the base class's crops, so a
    validation image is degraded the same way every epoch; in training they are fresh.
    """
    generator = dataset._generator(index)
    if not dataset.training:
        generator.manual_seed(dataset.seed * 1_000_003 + index + 0x5EED)
    else:  # the sample's own seed, shifted: kernels must not replay the crop's random stream
        generator.manual_seed((generator.initial_seed() + 0x5EED) % 2**63)
    kernels = dataset.gpu_pipeline.sample_kernels(generator)
    kernels["seed"] = torch.randint(0, 2**62, (), generator=generator)
    sample["degrade_kernels"] = kernels
    sample["gpu_degrade"] = torch.tensor(degrade)
    return sample


class RealESRGANSynthetic(RestorationDataset):
    """HQ images with per-sample Real-ESRGAN kernels; the DataModule degrades them on the device.

    Args:
        hq_dir: folder of clean images; None uses scikit-image's bundled photos of ``split``.
        split: "train", "val" or "test" (only with ``hq_dir=None``).
        options: pipeline parameters (default: the paper's).
        scale: LQ is ``1/scale`` the HQ's size; 1 (restoration) keeps the size. With scale > 1 a
            batch must hold only this dataset's samples (the LQ rows then change size).
        usm_target: sharpen the HQ target on the device, as Real-ESRGAN trains.
        max_side: evaluation images are centre-cropped to at most this many pixels per side.

    Samples carry ``degrade_kernels`` (the dict of :meth:`RealESRGAN.sample_kernels` plus a
    ``seed``) and ``gpu_degrade`` (True). In evaluation both are seeded per index, so a validation
    image is degraded the same way every epoch.
    """

    def __init__(
        self,
        hq_dir: str | None = None,
        split: str = "train",
        options: RealESRGANOptions | None = None,
        scale: int = 1,
        usm_target: bool = False,
        max_side: int | None = 256,
        benchmark: str = "",
        **common: Any,
    ) -> None:
        default_name = f"realesrgan_{Path(hq_dir).name if hq_dir else split}"
        super().__init__(benchmark or default_name, **common)
        self.gpu_pipeline = RealESRGAN(options, scale=scale, usm_target=usm_target)
        self.max_side = max_side
        if hq_dir is not None:
            self.files: list[Path] = list_images(require_dir(hq_dir, "HQ"))
            self.names: tuple[str, ...] = tuple(p.stem for p in self.files)
        else:
            if split not in SAMPLE_PHOTOS:
                raise DataError(
                    f"RealESRGANSynthetic split must be one of {sorted(SAMPLE_PHOTOS)}, got '{split}'"
                )
            self.files = []
            self.names = SAMPLE_PHOTOS[split]

    @cached_property
    def _photos(self) -> list[Tensor]:
        return [sample_photo(name) for name in self.names]

    def num_items(self) -> int:
        return len(self.names)

    def item(self, index: int, generator: torch.Generator) -> Item:
        hq = load_image(self.files[index]) if self.files else self._photos[index]
        if not self.training:
            hq = center_crop(hq, self.max_side)
        # the LQ placeholder is the HQ itself, so the base class crops both identically
        return Item(hq=hq, lq=hq, task=RealESRGAN.task, prompt=RealESRGAN.prompt, name=self.names[index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return attach_kernels(self, super().__getitem__(index), index, degrade=True)


class SpireMix(RestorationDataset):
    """SPIRE's training recipe over any clean-image source: 50 % Real-ESRGAN, 50 % parameterized.

    Each sample either gets the parameterized pipeline on the CPU (downsample → blur σ → noise σ →
    JPEG, each stage skipped with p 0.5) with the restoration prompt of the stages applied ("Upsample
    to 2.0x; Deblur with sigma 2.9; Denoise with sigma 0.10;" or type only), or is flagged for the Real-ESRGAN
    pipeline on the accelerator with the blind prompt "Remove all degradation" (SPIRE, Sec. 3.3).
    Captions come from the source (a ``CaptionedFolder``'s COCO captions, a ``Manifest``'s caption
    column) and are dropped to "" with probability ``caption_dropout`` in training (SPIRE: 0.1; leave
    the source's own dropout at 0 so captions are not dropped twice).

    Args:
        source: a dataset of clean images (its own degradation is ignored): ``CaptionedFolder``,
            ``Synthetic``, ``Sample``, ``Manifest``, ...
        p_realesrgan: probability of the Real-ESRGAN branch.
        parameterized: spec of the CPU branch (default ``{"name": "parameterized"}``).
        options: Real-ESRGAN parameters (default: the paper's).
        caption_dropout: probability of an empty caption in training (classifier-free guidance).
    """

    def __init__(
        self,
        source: RestorationDataset,
        p_realesrgan: float = 0.5,
        parameterized: Any = None,
        options: RealESRGANOptions | None = None,
        caption_dropout: float = 0.1,
        benchmark: str = "",
        protocol: MetricProtocol | None = None,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(
            benchmark or f"spire_{source.benchmark}", protocol or source.protocol, None, None, repeat, seed
        )
        if not 0.0 <= p_realesrgan <= 1.0:
            raise DataError(f"p_realesrgan must be in [0, 1], got {p_realesrgan}")
        from restorezoo.data.degrade import build_degradation

        self.source = source
        self.small_images = source.small_images  # crops are cut here: the source's choice ("resize" for COCO)
        self.p_realesrgan = float(p_realesrgan)
        if not 0.0 <= caption_dropout <= 1.0:
            raise DataError(f"caption_dropout must be in [0, 1], got {caption_dropout}")
        self.caption_dropout = float(caption_dropout)
        self.cpu_pipeline = build_degradation(parameterized or {"name": "parameterized"})
        self.gpu_pipeline = RealESRGAN(options)

    def configure(self, training: bool, *args: Any, **kwargs: Any) -> SpireMix:
        """``RestorationDataset.configure`` for this mix and the dataset it draws its photos from."""
        self.source.configure(training, *args, **kwargs)
        return super().configure(training, *args, **kwargs)

    def num_items(self) -> int:
        return self.source.num_items()

    def item(self, index: int, generator: torch.Generator) -> Item:
        clean = self.source.item(index, generator)
        if self.training and float(torch.rand((), generator=generator)) < self.caption_dropout:
            clean.caption = ""
        # The branch is drawn from the base class's per-sample generator (fixed per index in evaluation).
        if bool(torch.rand((), generator=generator) < self.p_realesrgan):  # degraded later, on the device
            return Item(
                hq=clean.hq,
                lq=clean.hq,
                task=RealESRGAN.task,
                caption=clean.caption,
                name=clean.name,
                params={"pipeline": "realesrgan"},
            )
        return Item(
            hq=clean.hq,
            caption=clean.caption,
            name=clean.name,
            degradation=self.cpu_pipeline,
            params={"pipeline": "parameterized"},
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        use_gpu = sample["params"]["pipeline"] == "realesrgan"
        sample["prompt"] = self.gpu_pipeline.prompt if use_gpu else str(sample["params"].get("prompt", ""))
        # Every sample carries kernels so batches stack; only flagged rows are degraded on the device.
        return attach_kernels(self, sample, index, degrade=use_gpu)
