"""Data: the batch contract, datasets, benchmark presets, degradations and prompts.

Imports are lazy so that light tools (``restorezoo data check``, degradations in a notebook) do not
pay for importing Lightning.
"""

from __future__ import annotations

from restorezoo.lazy import lazy_exports

_MODULES = {
    "restorezoo.data.batch": ("BATCH_KEYS", "batch_from_images", "collate", "make_sample"),
    "restorezoo.data.testsets": ("PRESETS", "Benchmark", "BenchmarkPreset"),
    "restorezoo.data.datamodule": ("RestorationDataModule", "datamodule_from_config"),
    "restorezoo.data.datasets": ("CaptionedFolder", "Manifest", "PairedFolder", "RestorationDataset", "Sample", "Synthetic", "UniversalFolder"),
    "restorezoo.data.io": ("load_image", "save_image"),
    "restorezoo.data.realesrgan_dataset": ("RealESRGANSynthetic", "SpireMix"),
}
_EXPORTS, __getattr__ = lazy_exports(__name__, _MODULES)

__all__ = sorted(_EXPORTS)



def __dir__() -> list[str]:
    return __all__
