"""``RestorationDataModule``: one DataModule for every model of the zoo.

Train/val/test/predict are lists of datasets configured in YAML (any ``RestorationDataset``:
``Sample``, ``PairedFolder``, ``Manifest``, ``Synthetic``, ``Benchmark``). Training sets are
concatenated and cropped; every val/test set is its own dataloader and its own named benchmark, so
one ``restorezoo test`` fills a whole results table. Heavy degradation pipelines can run on the
accelerator in ``on_after_batch_transfer`` (BasicSR's Real-ESRGAN habit) through ``gpu_degradation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader

from restorezoo.data.batch import collate
from restorezoo.data.datasets import RestorationDataset
from restorezoo.data.prompts import INSTRUCTIR_TASKS
from restorezoo.errors import DataError
from restorezoo.metrics.protocol import MetricProtocol


def collate_with_tasks(samples: Sequence[dict[str, Any]], task_names: Sequence[str]) -> dict[str, Any]:
    """Collate, mapping task names to indices of the vocabulary (unknown → -1)."""
    lookup = {name: i for i, name in enumerate(task_names)}
    converted = []
    for sample in samples:
        task = sample.get("task", -1)
        if isinstance(task, str):
            task = lookup.get(task.split("+")[0] if task not in lookup else task, -1)
        converted.append({**sample, "task": task})
    return collate(converted)


class RestorationDataModule(L.LightningDataModule):
    """Paired LQ/HQ/text data for every restorer.

    Args:
        train, val, test, predict: datasets per stage (val/test/predict: one dataloader each).
        batch_size: training batch size (per device).
        eval_batch_size: val/test/predict batch size; 1 lets full images of different sizes through.
        patch_size: random training crop (paper: 256 for InstructIR).
        flip: random horizontal/vertical flips in training.
        num_workers: dataloader workers.
        task_names: task vocabulary of the ``task`` tensor (default: InstructIR's seven tasks).
    """

    def __init__(
        self,
        train: list[RestorationDataset] | None = None,
        val: list[RestorationDataset] | None = None,
        test: list[RestorationDataset] | None = None,
        predict: list[RestorationDataset] | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        patch_size: int | None = 128,
        flip: bool = True,
        num_workers: int = 0,
        task_names: Sequence[str] = INSTRUCTIR_TASKS,
    ) -> None:
        super().__init__()
        self.train_sets = list(train or [])
        self.val_sets = list(val or [])
        self.test_sets = list(test or [])
        self.predict_sets = list(predict or [])
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.patch_size = patch_size
        self.flip = flip
        self.num_workers = num_workers
        self.task_names = list(task_names)
        for stage, sets in (("val", self.val_sets), ("test", self.test_sets), ("predict", self.predict_sets)):
            names = [s.benchmark for s in sets]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise DataError(f"{stage} sets need distinct benchmark names; repeated: {', '.join(duplicates)}")
        for dataset in self.train_sets:
            dataset.configure(training=True, patch_size=patch_size, flip=flip)
        for dataset in (*self.val_sets, *self.test_sets, *self.predict_sets):
            dataset.configure(training=False)

    # ------------------------------------------------------------------ what the metric callback reads
    def eval_sets(self, stage: str) -> list[tuple[str, int, MetricProtocol]]:
        """(benchmark name, length, protocol) of the val (``"validate"``/``"fit"``) or test sets, in loader order."""
        sets = self.test_sets if stage == "test" else self.val_sets
        return [(s.benchmark, len(s), s.protocol) for s in sets]

    # ------------------------------------------------------------------ loaders
    def _loader(self, dataset: Any, batch_size: int, shuffle: bool, drop_last: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=partial(collate_with_tasks, task_names=self.task_names),
        )

    def train_dataloader(self) -> DataLoader:
        if not self.train_sets:
            raise DataError("no training data: set data.train in the config")
        dataset = ConcatDataset(self.train_sets) if len(self.train_sets) > 1 else self.train_sets[0]
        drop_last = len(dataset) > self.batch_size
        return self._loader(dataset, self.batch_size, shuffle=True, drop_last=drop_last)

    def _eval_loaders(self, sets: list[RestorationDataset], stage: str) -> list[DataLoader]:
        if not sets:
            raise DataError(f"no {stage} data: set data.{stage} in the config")
        return [self._loader(s, self.eval_batch_size, shuffle=False) for s in sets]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.val_sets, "val") if self.val_sets else []

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.test_sets, "test")

    def predict_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.predict_sets or self.test_sets, "predict")

    # ------------------------------------------------------------------ accelerator-side degradation
    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Hook for batched degradation pipelines that run on the accelerator (see ``gpu_degradation``)."""
        if self.trainer is not None and self.trainer.training:
            return self.gpu_degradation(batch)
        return batch

    def gpu_degradation(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Identity here; subclasses (e.g. Real-ESRGAN synthesis) degrade ``batch["hq"]`` on the device."""
        return batch
