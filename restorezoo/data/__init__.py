"""Data: the batch contract, datasets, benchmark presets, degradations and prompts."""

from restorezoo.data.batch import BATCH_KEYS, batch_from_images, collate, make_sample
from restorezoo.data.benchmarks import PRESETS, Benchmark, BenchmarkPreset
from restorezoo.data.datamodule import RestorationDataModule
from restorezoo.data.datasets import Manifest, PairedFolder, RestorationDataset, Sample, Synthetic
from restorezoo.data.io import load_image, save_image

__all__ = [
    "BATCH_KEYS",
    "PRESETS",
    "Benchmark",
    "BenchmarkPreset",
    "Manifest",
    "PairedFolder",
    "RestorationDataModule",
    "RestorationDataset",
    "Sample",
    "Synthetic",
    "batch_from_images",
    "collate",
    "load_image",
    "make_sample",
    "save_image",
]
