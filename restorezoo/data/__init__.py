"""Data: the batch contract, datasets, benchmark presets, degradations and prompts.

Imports are lazy so that light tools (``restorezoo data check``, degradations in a notebook) do not
pay for importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BATCH_KEYS": "restorezoo.data.batch",
    "batch_from_images": "restorezoo.data.batch",
    "collate": "restorezoo.data.batch",
    "make_sample": "restorezoo.data.batch",
    "PRESETS": "restorezoo.data.benchmarks",
    "Benchmark": "restorezoo.data.benchmarks",
    "BenchmarkPreset": "restorezoo.data.benchmarks",
    "RestorationDataModule": "restorezoo.data.datamodule",
    "CaptionedFolder": "restorezoo.data.datasets",
    "Manifest": "restorezoo.data.datasets",
    "PairedFolder": "restorezoo.data.datasets",
    "RestorationDataset": "restorezoo.data.datasets",
    "Sample": "restorezoo.data.datasets",
    "Synthetic": "restorezoo.data.datasets",
    "UniversalFolder": "restorezoo.data.datasets",
    "load_image": "restorezoo.data.io",
    "save_image": "restorezoo.data.io",
    "RealESRGANSynthetic": "restorezoo.data.realesrgan_dataset",
    "SpireMix": "restorezoo.data.realesrgan_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
