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

from restorezoo.data.datasets import Item, PairedFolder, RestorationDataset, Synthetic
from restorezoo.errors import DataError
from restorezoo.metrics.protocol import MetricProtocol

INSTRUCTIR_RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=False)
"""InstructIR's released test script: PSNR on RGB floats in [0, 1], no border crop."""
DERAIN_Y = MetricProtocol(y_channel=True, crop_border=0, quantize=True)
"""Deraining convention (Rain100L/H): Y channel of the uint8 images."""


@dataclass(frozen=True)
class BenchmarkPreset:
    """One named test set.

    ``hq``/``lq`` are folders relative to the data root. Synthetic presets have no ``lq`` and
    a ``degradation`` spec applied deterministically per image instead.
    """

    name: str
    task: str
    hq: str
    protocol: MetricProtocol
    lq: str | None = None
    degradation: Any = None
    match: str = "stem"
    paper: str = ""


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
    )
}


class Benchmark(RestorationDataset):
    """A named preset as a dataset: ``Benchmark("rain100l", root="data/")``.

    Args:
        name: a key of ``PRESETS`` (``restorezoo list`` prints them).
        root: folder that holds the test sets in their distributed layout.
        lq_dir, hq_dir: override the preset's folders (absolute, or relative to ``root``).
        prompt: a fixed instruction; by default a held-out instruction of the preset's task.
    """

    def __init__(
        self,
        name: str,
        root: str = "data",
        lq_dir: str | None = None,
        hq_dir: str | None = None,
        prompt: str | None = None,
        seed: int = 0,
    ) -> None:
        if name not in PRESETS:
            raise DataError(f"unknown benchmark '{name}'; known: {', '.join(sorted(PRESETS))}")
        preset = PRESETS[name]
        super().__init__(preset.name, preset.protocol, prompt, None, 1, seed)
        self.preset = preset
        base = Path(root).expanduser()
        hq = base / (hq_dir or preset.hq)
        inner: RestorationDataset
        if preset.lq is None and lq_dir is None:
            inner = Synthetic(str(hq), preset.degradation, task=preset.task, benchmark=name, seed=seed)
        else:
            lq = base / (lq_dir or preset.lq or "")
            inner = PairedFolder(str(lq), str(hq), task=preset.task, match=preset.match, benchmark=name)
        self.inner = inner

    def num_items(self) -> int:
        return self.inner.num_items()

    def item(self, index: int, generator: torch.Generator) -> Item:
        return self.inner.item(index, generator)
