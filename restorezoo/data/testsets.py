"""Named test sets: where each lives on disk (as it is distributed), its task and how it is scored.

``Benchmark(name, root)`` is a dataset: put it in a config's ``test:`` list and the metric table gets
a row scored with that paper's protocol. Folder layouts are those of the public archives; pass
``lq_dir``/``hq_dir`` to override when your copy is laid out differently.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restorezoo.data.datasets import CaptionedFolder, Item, PairedFolder, RestorationDataset, Synthetic
from restorezoo.data.presets import (  # noqa: F401 - the presets live in presets.py (no torch), re-exported here
    CAPTIONED_RGB,
    DACLIP_RGB,
    DERAIN_Y,
    DIFFRESTORER_BENCHMARKS,
    INSTRUCTIR_RGB,
    JPEG_Y,
    MIXED,
    PRESETS,
    PROTOCOL_CHOICES,
    SR_Y,
    BenchmarkPreset,
    release_protocol,
)
from restorezoo.errors import DataError

if TYPE_CHECKING:
    import torch


class Benchmark(RestorationDataset):
    """A named preset as a dataset: ``Benchmark("rain100l", root="data/")``.

    Args:
        name: a key of ``PRESETS`` (``restorezoo list`` prints them).
        root: folder that holds the test sets in their distributed layout.
        lq_dir, hq_dir: override the preset's folders (absolute, or relative to ``root``).
        prompt: a fixed instruction; by default a held-out instruction of the preset's task.
        captions: override the preset's captions JSON (absolute, or relative to ``root``).
        max_images: score only the first N captioned images (SPIRE Tab. 1: 3000 of MS-COCO val).
        protocol: ``"preset"`` (the preset's own, BasicSR-exact protocol) or ``"instructir-release"``
            (InstructIR's released test script: LQ/GT centre-cropped to x16, raw output, its formulas, RGB
            and, on rain, Y with its luma quirk, and its template prompts seeded with 42).
        release_checkout: a mv-lab/InstructIR checkout whose ``datasets.py`` holds the template prompts
            (read, not imported; default ``$INSTRUCTIR_RELEASE``); needed by ``"instructir-release"``
            unless ``prompt`` is given.
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
        protocol: str = "preset",
        release_checkout: str | None = None,
    ) -> None:
        if name not in PRESETS:
            raise DataError(f"unknown benchmark '{name}'; known: {', '.join(sorted(PRESETS))}")
        if protocol not in PROTOCOL_CHOICES:
            raise DataError(f"unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOL_CHOICES)}")
        preset = PRESETS[name]
        scoring = release_protocol(preset.task) if protocol == "instructir-release" else preset.protocol
        super().__init__(preset.name, scoring, prompt, None, 1, seed)
        self.release_checkout = release_checkout or os.environ.get("INSTRUCTIR_RELEASE")
        self._release_prompts: list[str] | None = None
        if scoring.release == "instructir" and prompt is None and not self.release_checkout:
            raise DataError(
                f"benchmark '{name}': the instructir-release protocol prompts with the release's template "
                "instructions: pass release_checkout=<a mv-lab/InstructIR checkout> (or $INSTRUCTIR_RELEASE), "
                "or prompt=<one instruction>"
            )
        self.preset = preset
        base = Path(root).expanduser()
        hq = base / (hq_dir or preset.hq) if (hq_dir or preset.hq) else None
        lq = base / (lq_dir or preset.lq) if (lq_dir or preset.lq) else None
        text = base / (captions or preset.captions) if (captions or preset.captions) else None
        for path in (lq, hq):
            if path is not None and not path.is_dir():
                raise self._missing(path, base)
        if text is not None and not text.is_file():
            raise self._missing(text, base)
        task = None if preset.task == MIXED else preset.task
        inner: RestorationDataset
        if hq is None:  # real photos, no ground truth
            assert lq is not None, f"preset {name} has neither HQ nor LQ folder"
            inner = PairedFolder(str(lq), None, task=task, benchmark=name)
        elif text is not None:
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
        item = self.inner.item(index, generator)
        if item.lq is None and item.degradation is not None and item.hq is not None:
            # A fixed test set: the draw depends on the preset and the image only (not on the model, the
            # config's crops or resizes, the batch or the index order), and is made on the full image.
            import torch

            draw = torch.Generator().manual_seed(self.draw_seed(item.name))
            lq, applied = item.degradation(item.hq[None], generator=draw)
            item.lq = lq[0].clamp(0, 1).to(item.hq.dtype)
            item.params = {**item.params, **applied[0]}
            item.task = item.task or str(applied[0].get("task", ""))
            item.degradation = None
        elif (self.preset.lq_upsample and item.lq is not None and item.hq is not None
              and item.lq.shape[-2:] != item.hq.shape[-2:]):
            import torch.nn.functional as F

            item.lq = F.interpolate(item.lq[None], size=tuple(item.hq.shape[-2:]), mode="bicubic",
                                    align_corners=False)[0].clamp(0, 1)
        return item

    def draw_seed(self, image_name: str) -> int:
        """The degradation seed of one image of this preset: a hash of the preset and image names
        (``seed`` > 0 gives another fixed draw of the same set)."""
        return zlib.crc32(f"{self.preset.name}/{image_name}".encode()) + (int(self.seed) << 32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        if self.protocol.crop_multiple > 1:  # the release's crop_img on LQ and GT, before the model
            from restorezoo.metrics.release import centre_crop_to_multiple

            for key in ("lq", "hq"):
                if sample.get(key) is not None:
                    sample[key] = centre_crop_to_multiple(sample[key], self.protocol.crop_multiple).contiguous()
        if self.protocol.release == "instructir" and self.prompt is None:
            if self._release_prompts is None:
                from restorezoo.data.instructions import release_template_prompts

                task = self.preset.task if self.preset.task != MIXED else str(sample.get("task_name", "noise"))
                self._release_prompts = release_template_prompts(task, len(self), str(self.release_checkout))
            sample["prompt"] = self._release_prompts[int(index) % len(self._release_prompts)]
        if self.preset.degradation_prompt and self.prompt is None:
            # SPIRE's protocol: the restorer is told what was done to this image (fixed per index).
            sample["prompt"] = str(sample["params"].get("prompt", ""))
        return sample
