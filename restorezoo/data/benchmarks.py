"""Named test sets: where each lives on disk (as it is distributed), its task and how it is scored.

``Benchmark(name, root)`` is a dataset: put it in a config's ``test:`` list and the metric table gets
a row scored with that paper's protocol. Folder layouts are those of the public archives; pass
``lq_dir``/``hq_dir`` to override when your copy is laid out differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from restorezoo.data.datasets import CaptionedFolder, Item, PairedFolder, RestorationDataset, Synthetic
from restorezoo.errors import DataError
from restorezoo.metrics.protocol import MetricProtocol

INSTRUCTIR_RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=False)
"""InstructIR's released test script: PSNR on RGB floats in [0, 1], no border crop."""
DERAIN_Y = MetricProtocol(y_channel=True, crop_border=0, quantize=True)
"""Deraining convention (Rain100L/H): Y channel of the uint8 images."""
JPEG_Y = MetricProtocol(y_channel=True, crop_border=0, quantize=True)
"""JPEG artefact removal papers (LIVE1, Classic5): Y channel of the uint8 images, no crop."""
SR_Y = MetricProtocol(y_channel=True, crop_border=4, quantize=True)
"""Super-resolution convention: Y channel, a border as wide as the scale (×4 → 4 pixels) cropped."""
DACLIP_RGB = MetricProtocol(y_channel=False, crop_border=4, quantize=True)
"""DA-CLIP's released test script: uint8 RGB with a 4-pixel border crop (it also reports Y and LPIPS)."""
CAPTIONED_RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=True)
"""SPIRE's MS-COCO table: uint8 RGB, no crop (next to FID, LPIPS and CLIP scores)."""

MIXED = "mixed"
"""Task of presets whose samples each carry the task of the degradation actually applied."""


@dataclass(frozen=True)
class BenchmarkPreset:
    """One named test set.

    ``hq``/``lq`` are folders relative to the data root. Synthetic presets have no ``lq`` and
    a ``degradation`` spec applied deterministically per image instead. ``match`` pairs file names
    (``pair_keys``: "stem", "prefix", "suffix:LQ,HQ"); ``captions`` is a COCO-style JSON relative to
    the root whose captions go with the ``hq`` images. ``degradation_prompt``: each sample's prompt is
    the one its degradation wrote (SPIRE's restoration prompt, "Deblur with sigma 1.5; Dejpeg with
    quality 40;"), not an instruction of the task. ``metrics`` are the paper's columns for this set
    (``--metrics.learned`` takes the learned ones).
    """

    name: str
    task: str
    hq: str
    protocol: MetricProtocol
    lq: str | None = None
    degradation: Any = None
    match: str = "stem"
    paper: str = ""
    captions: str | None = None
    degradation_prompt: bool = False
    metrics: tuple[str, ...] = ()

    def layout(self, root: str | Path = "<root>") -> str:
        """The folders this preset expects, for error messages and ``restorezoo data check``."""
        base = Path(root)
        parts = [f"{base / self.lq} (LQ)"] if self.lq else []
        parts.append(f"{base / self.hq} ({'clean, degraded on the fly' if self.lq is None else 'HQ'})")
        if self.captions:
            parts.append(f"{base / self.captions} (captions)")
        return " + ".join(parts)


def _noise(name: str, folder: str, sigma: int) -> BenchmarkPreset:
    return BenchmarkPreset(
        name=f"{name}_sigma{sigma}",
        task="noise",
        hq=folder,
        protocol=INSTRUCTIR_RGB,
        degradation={"name": "noise", "sigmas": [sigma]},
        paper="InstructIR Tab. 2 (σ on the 0-255 scale)",
    )


PRESETS: dict[str, BenchmarkPreset] = {
    preset.name: preset
    for preset in (
        *(_noise("cbsd68", "CBSD68/original_png", s) for s in (15, 25, 50)),
        *(_noise("urban100", "Urban100/HR", s) for s in (15, 25, 50)),
        *(_noise("kodak24", "Kodak24", s) for s in (15, 25, 50)),
        BenchmarkPreset("rain100l", "rain", "Rain100L/target", DERAIN_Y, lq="Rain100L/input", paper="InstructIR 3D/5D"),
        BenchmarkPreset("rain100h", "rain", "Rain100H/target", DERAIN_Y, lq="Rain100H/input"),
        BenchmarkPreset(
            "sots_outdoor", "haze", "SOTS/outdoor/gt", INSTRUCTIR_RGB, lq="SOTS/outdoor/hazy", match="prefix"
        ),
        BenchmarkPreset("gopro", "blur", "GoPro/test/target", INSTRUCTIR_RGB, lq="GoPro/test/input"),
        BenchmarkPreset("lol", "lowlight", "LOL/eval15/high", INSTRUCTIR_RGB, lq="LOL/eval15/low"),
        BenchmarkPreset("mit5k", "enhancement", "MIT5K/test/target", INSTRUCTIR_RGB, lq="MIT5K/test/input"),
        BenchmarkPreset(
            "live1_q10",
            "jpeg",
            "LIVE1",
            JPEG_Y,
            degradation={"name": "jpeg", "quality": [10, 10]},
            paper="Diff-Restorer JPEG q10; JPEG papers score LIVE1 on Y",
        ),
        BenchmarkPreset(
            "raindrop_a",
            "raindrop",
            "RainDrop/test_a/gt",
            DACLIP_RGB,
            lq="RainDrop/test_a/data",
            match="suffix:_rain,_clean",
            paper="DA-CLIP Tab. 3 raindrop (Qian et al. test_a, 58 pairs)",
        ),
        BenchmarkPreset(
            "snow100k_l",
            "snow",
            "Snow100K/test/Snow100K-L/gt",
            DACLIP_RGB,
            lq="Snow100K/test/Snow100K-L/synthetic",
            paper="DA-CLIP Tab. 3 snow (Snow100K-L)",
        ),
        BenchmarkPreset(
            "srd",
            "shadow",
            "SRD/test/shadow_free",
            DACLIP_RGB,
            lq="SRD/test/shadow",
            match="suffix:,_free",
            paper="DA-CLIP Tab. 3 shadow removal (SRD test, 408 pairs)",
        ),
        BenchmarkPreset(
            "reside6k",
            "haze",
            "RESIDE-6K/test/GT",
            DACLIP_RGB,
            lq="RESIDE-6K/test/hazy",
            paper="DA-CLIP Tab. 3 dehazing (RESIDE-6k test, 1000 pairs)",
        ),
        BenchmarkPreset(
            "div2k_val_x4",
            "sr",
            "DIV2K/DIV2K_valid_HR",
            SR_Y,
            degradation={"name": "sr", "scales": [4]},
            paper="InstructIR 6D SR (bicubic ×4 down-up, restored at input size); SR papers: Y, crop 4",
        ),
        BenchmarkPreset(
            "coco_val",
            MIXED,
            "COCO/val2017",
            CAPTIONED_RGB,
            degradation={"name": "parameterized"},
            captions="COCO/annotations/captions_val2017.json",
            paper="SPIRE Tab. 1 (MS-COCO val with captions, parameterized degradation and its restoration "
            "prompts; the paper uses 3000 images: max_images=3000)",
            degradation_prompt=True,
            metrics=("psnr", "ssim", "lpips", "fid", "clip_i", "clip_t"),
        ),
        *(
            BenchmarkPreset(
                f"cbsd68_{mixture.replace('+', '_')}",
                MIXED,
                "CBSD68/original_png",
                INSTRUCTIR_RGB,
                degradation=mixture,
                paper=f"Diff-Restorer mixed test set {mixture} (its levels; the clean set is restorezoo's choice)",
            )
            for mixture in ("noise+blur", "snow+noise", "raindrop+noise+blur", "jpeg+noise+blur")
        ),
    )
}

DIFFRESTORER_BENCHMARKS: tuple[str, ...] = (
    "cbsd68_sigma50",
    "lol",
    "sots_outdoor",
    "rain100h",
    "raindrop_a",
    "snow100k_l",
    "gopro",
    "live1_q10",
    "cbsd68_noise_blur",
    "cbsd68_snow_noise",
    "cbsd68_raindrop_noise_blur",
    "cbsd68_jpeg_noise_blur",
)
"""Diff-Restorer's eight single-degradation test sets (noise σ 50, low-light, haze, rain, raindrop, snow,
blur, JPEG q 10; public sets standing in where the paper's own are not distributed) and its four mixtures."""


class Benchmark(RestorationDataset):
    """A named preset as a dataset: ``Benchmark("rain100l", root="data/")``.

    Args:
        name: a key of ``PRESETS`` (``restorezoo list`` prints them).
        root: folder that holds the test sets in their distributed layout.
        lq_dir, hq_dir: override the preset's folders (absolute, or relative to ``root``).
        prompt: a fixed instruction; by default a held-out instruction of the preset's task.
        captions: override the preset's captions JSON (absolute, or relative to ``root``).
        max_images: score only the first N captioned images (SPIRE Tab. 1: 3000 of MS-COCO val).
    """

    def __init__(
        self,
        name: str,
        root: str = "data",
        lq_dir: str | None = None,
        hq_dir: str | None = None,
        prompt: str | None = None,
        seed: int = 0,
        captions: str | None = None,
        max_images: int | None = None,
    ) -> None:
        if name not in PRESETS:
            raise DataError(f"unknown benchmark '{name}'; known: {', '.join(sorted(PRESETS))}")
        preset = PRESETS[name]
        super().__init__(preset.name, preset.protocol, prompt, None, 1, seed)
        self.preset = preset
        base = Path(root).expanduser()
        hq = base / (hq_dir or preset.hq)
        lq = base / (lq_dir or preset.lq) if (lq_dir or preset.lq) else None
        text = base / (captions or preset.captions) if (captions or preset.captions) else None
        for path in (lq, hq):
            if path is not None and not path.is_dir():
                raise self._missing(path, base)
        if text is not None and not text.is_file():
            raise self._missing(text, base)
        task = None if preset.task == MIXED else preset.task
        inner: RestorationDataset
        if text is not None:
            inner = CaptionedFolder(
                str(hq), str(text), preset.degradation, task=task, benchmark=name, seed=seed, max_images=max_images
            )
        elif lq is None:
            inner = Synthetic(str(hq), preset.degradation, task=task, benchmark=name, seed=seed)
        else:
            inner = PairedFolder(str(lq), str(hq), task=task, match=preset.match, benchmark=name)
        self.inner = inner

    def _missing(self, path: Path, root: Path) -> DataError:
        """One line: which preset, what is missing, the layout it expects and how to point elsewhere."""
        return DataError(
            f"benchmark '{self.preset.name}': not found: {path}; expected {self.preset.layout(root)} "
            f"as distributed; set root= to the folder holding them, or lq_dir=/hq_dir=/captions= "
            f"(absolute or relative to root) for another layout"
        )

    def num_items(self) -> int:
        return self.inner.num_items()

    def item(self, index: int, generator: torch.Generator) -> Item:
        return self.inner.item(index, generator)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        if self.preset.degradation_prompt and self.prompt is None:
            # SPIRE's protocol: the restorer is told what was done to this image (fixed per index).
            sample["prompt"] = str(sample["params"].get("prompt", ""))
        return sample
