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
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from restorezoo.data.batch import collate
from restorezoo.data.datasets import RestorationDataset
from restorezoo.data.prompts import INSTRUCTIR_TASKS
from restorezoo.data.samplers import ResumableDataLoader, ResumableSampler, SeededConcatDataset
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
        resize: resize whole training images to resize×resize (bicubic, antialiased) instead of cropping
            (DA-CLIP: 224, the CLIP input).
        resize_scale: with ``resize``, a random resized crop covering this area fraction instead of a
            squash (DA-CLIP's release trains with open_clip's ``RandomResizedCrop(scale=(0.9, 1.0))``).
        eval_resize: val/test/predict images to CLIP's test geometry: shorter side to this size, centre
            crop (DA-CLIP's evaluation); None: full images.
        flip: random horizontal/vertical flips in training.
        num_workers: dataloader workers.
        task_names: task vocabulary of the ``task`` tensor (default: InstructIR's seven tasks).
        train_weights: one sampling weight per training set (InstructIR's multi-task mix). Each epoch
            then draws ``sum(len(train sets))`` samples with replacement, set ``d`` with probability
            ``w_d / sum(w)`` whatever its size (small sets are oversampled, large ones subsampled).
            None: every sample once per epoch, shuffled. Under DDP Lightning splits this sampler
            across ranks (``DistributedSamplerWrapper``).
        samples_per_epoch: with ``train_weights``, how many samples an epoch draws (default: the training
            sets' total). Diff-Restorer's "10 K per degradation type" over eight types is 80 000 with equal
            weights per type.
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
        resize: int | None = None,
        resize_scale: tuple[float, float] | None = None,
        eval_resize: int | None = None,
        flip: bool = True,
        num_workers: int = 0,
        task_names: Sequence[str] = INSTRUCTIR_TASKS,
        train_weights: list[float] | None = None,
        samples_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.train_sets = list(train or [])
        self.val_sets = list(val or [])
        self.test_sets = list(test or [])
        self.predict_sets = list(predict or [])
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.patch_size = patch_size
        self.resize = resize
        self.resize_scale = resize_scale
        self.eval_resize = eval_resize
        self.flip = flip
        self.num_workers = num_workers
        self.task_names = list(task_names)
        if train_weights is not None:
            if len(train_weights) != len(self.train_sets):
                raise DataError(
                    f"train_weights has {len(train_weights)} entries for {len(self.train_sets)} training sets"
                )
            if min(train_weights, default=0) < 0 or sum(train_weights) <= 0:
                raise DataError(f"train_weights must be non-negative and not all zero, got {train_weights}")
        self.train_weights = None if train_weights is None else [float(w) for w in train_weights]
        if samples_per_epoch is not None and (train_weights is None or samples_per_epoch < 1):
            raise DataError(f"samples_per_epoch ({samples_per_epoch}) needs train_weights and must be at least 1")
        self.samples_per_epoch = samples_per_epoch
        for stage, sets in (("val", self.val_sets), ("test", self.test_sets), ("predict", self.predict_sets)):
            names = [s.benchmark for s in sets]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise DataError(f"{stage} sets need distinct benchmark names; repeated: {', '.join(duplicates)}")
        for dataset in self.train_sets:
            dataset.configure(
                training=True, patch_size=patch_size, flip=flip, resize=resize, resize_scale=resize_scale
            )
        for dataset in (*self.val_sets, *self.test_sets, *self.predict_sets):
            dataset.configure(training=False, resize=eval_resize)

    # ------------------------------------------------------------------ what the metric callback reads
    def eval_sets(self, stage: str) -> list[tuple[str, int, MetricProtocol]]:
        """(benchmark name, length, protocol) of the val (``"validate"``/``"fit"``) or test sets, in loader order."""
        sets = self.test_sets if stage == "test" else self.val_sets
        return [(s.benchmark, len(s), s.protocol) for s in sets]

    # ------------------------------------------------------------------ loaders
    def _loader(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool,
        drop_last: bool = False,
        sampler: Sampler | None = None,
        loader_class: type[DataLoader] = DataLoader,
    ) -> DataLoader:
        return loader_class(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=partial(collate_with_tasks, task_names=self.task_names),
        )

    def train_dataloader(self) -> DataLoader:
        if not self.train_sets:
            raise DataError("no training data: set data.train in the config")
        dataset = SeededConcatDataset(self.train_sets) if len(self.train_sets) > 1 else self.train_sets[0]
        drop_last = len(dataset) > self.batch_size
        sampler = self.train_sampler() or ResumableSampler(len(dataset))
        return self._loader(
            dataset, self.batch_size, False, drop_last=drop_last, sampler=sampler, loader_class=ResumableDataLoader
        )

    def train_sampler(self) -> ResumableSampler | None:
        """The ``train_weights`` mix: per-sample weight ``w_d / len_d`` over the concatenated training sets."""
        if self.train_weights is None:
            return None
        lengths = [len(d) for d in self.train_sets]
        weights = self.train_weights
        empty = [d.benchmark for d, n, w in zip(self.train_sets, lengths, weights) if n == 0 and w > 0]
        if empty:
            raise DataError(f"training sets with a weight but no samples: {', '.join(empty)}")
        per_sample = torch.cat([torch.full((n,), w / max(n, 1), dtype=torch.double) for w, n in zip(weights, lengths)])
        return ResumableSampler(len(per_sample), weights=per_sample, num_samples=self.samples_per_epoch or sum(lengths))

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
    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Read the Real-ESRGAN rows and seeds while the batch is still on the host (no device sync later)."""
        if isinstance(batch.get("seed"), torch.Tensor):  # per-sample training seeds stay host-side ints
            batch["seed"] = [int(seed) for seed in batch["seed"].tolist()]
        if "gpu_degrade" in batch:
            batch[_GPU_PLAN] = _degradation_plan(batch)
        return batch

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Run accelerator-side degradation (``gpu_degradation``) on batches whose samples ask for it."""
        if "gpu_degrade" in batch:
            return self.gpu_degradation(batch, dataloader_idx)
        return batch

    def _gpu_pipeline(self, dataloader_idx: int) -> Any:
        """The ``gpu_pipeline`` of the set this batch comes from (training sets, or the eval set at the index)."""
        trainer = self.trainer
        if trainer is None or trainer.training:
            candidates = list(self.train_sets)
        else:
            if trainer.testing:
                sets = self.test_sets
            elif trainer.predicting:
                sets = self.predict_sets or self.test_sets
            else:
                sets = self.val_sets
            candidates = sets[dataloader_idx : dataloader_idx + 1]
        candidates += [*self.train_sets, *self.val_sets, *self.test_sets, *self.predict_sets]
        return next((d.gpu_pipeline for d in candidates if getattr(d, "gpu_pipeline", None) is not None), None)

    def gpu_degradation(self, batch: dict[str, Any], dataloader_idx: int = 0) -> dict[str, Any]:
        """Degrade, on the batch's device, the rows of ``batch["hq"]`` flagged ``gpu_degrade`` (Real-ESRGAN).

        The rows' ``lq`` placeholders are replaced, their params merged and empty prompts set to the
        pipeline's. The generator is seeded from the samples' ``degrade_kernels["seed"]``: fixed per
        index in evaluation (a validation image is degraded the same way every epoch), drawn by the
        resumable training sampler in training (a resumed run degrades as the uninterrupted one).
        """
        if batch.get("gpu_degrade") is None or "hq" not in batch:
            return batch
        n = batch["hq"].shape[0]
        # planned on the host by on_before_batch_transfer; computed here (with a sync) for direct calls
        rows, seed = batch.pop(_GPU_PLAN, None) or _degradation_plan(batch)
        pipeline = self._gpu_pipeline(dataloader_idx)
        if not rows or pipeline is None:
            return batch
        stored = batch["degrade_kernels"]
        if isinstance(stored, dict):
            kernels = {key: value[rows] for key, value in stored.items()}
        else:
            kernels = {key: torch.stack([stored[i][key] for i in rows]) for key in stored[rows[0]]}
        hq = batch["hq"]
        device = hq.device
        generator = torch.Generator(device=device).manual_seed(seed)
        index = torch.tensor(rows, device=device)
        source = hq[index]
        # The pipeline degrades the plain HQ (sharpening it itself when its options say so, as BasicSR);
        # usm_target only decides whether the target the loss sees is the sharpened one.
        lq, params = pipeline.apply(source, kernels, generator)
        if getattr(pipeline, "usm_target", False):
            from restorezoo.data.degrade.kernels import usm_sharpen

            hq = hq.clone()
            hq[index] = usm_sharpen(source).to(hq.dtype)
            batch["hq"] = hq
        if lq.shape[-2:] == batch["lq"].shape[-2:]:
            batch["lq"] = batch["lq"].clone()
            batch["lq"][index] = lq.to(batch["lq"].dtype)
        elif len(rows) == n:  # scale > 1: the whole batch becomes the smaller LQ
            batch["lq"] = lq.to(batch["lq"].dtype)
        else:
            raise DataError("a batch mixing Real-ESRGAN samples with scale > 1 and other samples cannot stack")
        for i, applied in zip(rows, params):
            batch["params"][i] = {**batch["params"][i], **applied}
            if not batch["prompt"][i]:
                batch["prompt"][i] = pipeline.prompt
        batch["gpu_degrade"] = torch.zeros(n, dtype=torch.bool, device=device)  # done: never twice
        return batch


_GPU_PLAN = "_gpu_degradation_plan"


def _degradation_plan(batch: dict[str, Any]) -> tuple[list[int], int]:
    """(rows flagged ``gpu_degrade``, generator seed from their kernels' seeds) of a batch."""
    flags = batch.get("gpu_degrade")
    if isinstance(flags, torch.Tensor):
        rows = [i for i, flag in enumerate(flags.reshape(-1).tolist()) if flag]
    else:  # a mixed batch: samples without the key were collated as None
        rows = [i for i, flag in enumerate(flags or []) if flag is not None and bool(flag)]
    stored = batch.get("degrade_kernels")
    if rows and isinstance(stored, dict) and "seed" in stored:
        seed = int(stored["seed"][rows].long().sum()) % (2**62)
    elif rows and isinstance(stored, list) and all("seed" in stored[i] for i in rows):
        seed = sum(int(stored[i]["seed"]) for i in rows) % (2**62)
    else:
        seed = int(torch.randint(0, 2**62, ()))
    return rows, seed


DATASET_MODULES: tuple[str, ...] = ("datasets", "realesrgan_dataset", "testsets")
"""restorezoo.data's modules holding dataset classes."""


def import_all_datasets() -> None:
    """Import every dataset module, so configs can name dataset classes by short name (``class_path: Sample``)."""
    import importlib

    for module in DATASET_MODULES:
        importlib.import_module(f"restorezoo.data.{module}")


def datamodule_from_config(config: str | Path) -> RestorationDataModule:
    """The ``data:`` section of a fit/test config, built as ``restorezoo fit``/``test`` build it (jsonargparse:
    class paths, defaults and type checks), for scripts that measure a config's own datasets."""
    from jsonargparse import ArgumentParser

    from restorezoo.data.check import data_section

    section = data_section(config)
    import_all_datasets()
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--data", type=RestorationDataModule)
    return parser.instantiate(parser.parse_object({"data": section})).data
