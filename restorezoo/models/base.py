"""``ZooModule`` and ``RestorationModule``: what every LightningModule of the zoo shares.

A restorer implements two things, ``training_loss(batch)`` and ``restore(batch, **sampling)``; the
base owns the steps, the optimiser/schedule, NaN guarding, frozen parts and the plain-tensor
``forward`` so any model drops into another Lightning project (torchgeo's ``BaseTask`` shape). Models
know nothing about metrics: validation/test steps return ``{"pred": ...}`` for ``RestorationMetrics``.
DA-CLIP, a conditioner, is a ``ZooModule`` (optimiser, callbacks, loading) without ``restore``.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from restorezoo.callbacks import default_callbacks
from restorezoo.data.batch import batch_from_images
from restorezoo.data.io import check_image_tensor
from restorezoo.errors import CheckpointError
from restorezoo.weights import load_checkpoint, load_matching


@torch.no_grad()
def ema_step(ema: torch.nn.Module, live: torch.nn.Module, decay: float) -> None:
    """One EMA update of a module copy: ``ema ← decay·ema + (1 − decay)·live``; buffers are copied."""
    for ema_param, live_param in zip(ema.parameters(), live.parameters()):
        ema_param.lerp_(live_param.detach().to(ema_param.dtype), 1 - decay)
    for ema_buffer, live_buffer in zip(ema.buffers(), live.buffers()):
        ema_buffer.copy_(live_buffer)


EMA_WARMUP_START = 100
"""ema_pytorch's ``update_after_step``: updates before it copy the live weights."""

EMA_WARMUP_POWER = 2 / 3
"""ema_pytorch's ``power``: the decay after n updates is 1 − (1 + n)^(−power), capped at the target."""


def ema_decay_at(call: int, decay: float, warmup: bool = False) -> float:
    """Decay of the EMA update number ``call`` (0-based): constant, or ema_pytorch's warm-up.

    With ``warmup`` the first ``EMA_WARMUP_START + 1`` updates copy (decay 0), then the decay is
    ``1 − (1 + n)^(−2/3)`` for the n-th update after them, capped at ``decay`` (the DA-CLIP/IR-SDE
    release trains with ema_pytorch's ``EMA(beta=0.995, update_every=10)`` and these defaults).
    """
    if not warmup:
        return decay
    elapsed = call - EMA_WARMUP_START
    if elapsed <= 0:
        return 0.0
    return min(max(1 - (1 + elapsed) ** -EMA_WARMUP_POWER, 0.0), decay)


def sample_generators(batch: dict[str, Any], device: torch.device) -> list[torch.Generator] | None:
    """One generator per sample, seeded from the sample's training ``seed`` (None when the batch has none).

    A diffusion model that draws its timestep and noise per sample from these trains on the same
    randomness whatever the number of processes or the batch split: a 2-GPU DDP run equals the
    1-GPU run with the same global batch, and a resumed run equals an uninterrupted one.
    """
    seeds = batch.get("seed")
    if seeds is None:
        return None
    if isinstance(seeds, Tensor):
        seeds = seeds.tolist()
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def per_sample_randn(
    shape: Sequence[int], generators: list[torch.Generator] | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """B×… standard normal noise, row i from ``generators[i]`` (the global RNG when None)."""
    if generators is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    return torch.stack([torch.randn(tuple(shape[1:]), generator=g, device=device, dtype=dtype) for g in generators])


def per_sample_randint(
    low: int, high: int, size: int, generators: list[torch.Generator] | None, device: torch.device
) -> Tensor:
    """``size`` integers in [low, high), entry i from ``generators[i]`` (the global RNG when None)."""
    if generators is None:
        return torch.randint(low, high, (size,), device=device)
    return torch.cat([torch.randint(low, high, (1,), generator=g, device=device) for g in generators])


class ZooModule(L.LightningModule):
    """What every LightningModule of the zoo shares, restorer or conditioner (DA-CLIP).

    - the optimiser: AdamW over ``parameter_groups()``, linear warm-up then cosine decay to ``min_lr``
      per step (``lr_factor``);
    - the training step: ``training_loss(batch)`` → logged ``train/loss`` (and its epoch mean over ranks);
    - the reliability callbacks the trainer lacks (NaN guard, per-step seeding, vocabularies in checkpoints);
    - held parts (``hold``): frozen modules a model uses but does not own (Stable Diffusion, CLIP,
      DA-CLIP, a stage-1 model). They never enter the state dict — checkpoints hold what was trained
      and reload strictly — yet follow every device/dtype move (``.to``, Lightning's placement);
    - ``from_checkpoint``: safe loading of a ``restorezoo fit`` checkpoint or ``restorezoo export`` file.

    Args:
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        min_lr: learning rate at the end of the cosine decay.
        warmup_steps: linear warm-up steps before the cosine decay.
    """

    adam_eps: float = 1e-8

    def __init__(
        self,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = tuple(betas)
        self.min_lr = min_lr
        self.warmup_steps = warmup_steps
        self._held: dict[str, Any] = {}

    # ----------------------------------------------------------------- held (frozen) parts
    def hold(self, name: str, module: Any, freeze: bool = True) -> None:
        """Use ``module`` without owning it: out of the state dict, moved with the model, frozen and in
        eval mode unless ``freeze=False`` (a module another model trains, e.g. stage 2's decoder)."""
        if freeze and isinstance(module, torch.nn.Module):
            module.requires_grad_(False).eval()
        self._held[name] = module

    def held(self, name: str) -> Any:
        """A part given to ``hold`` (None when none was)."""
        return self._held.get(name)

    def _apply(self, fn: Any, recurse: bool = True) -> ZooModule:
        super()._apply(fn, recurse)
        for module in self.__dict__.get("_held", {}).values():
            if isinstance(module, torch.nn.Module):
                module._apply(fn, recurse)
        return self

    # ----------------------------------------------------------------- training
    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Return the scalar loss and a dict of extra values to log (without the ``train/`` prefix)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The loss, logged; a non-finite one is handled by ``NonFiniteGuard`` (skipped, not fatal)."""
        loss, logs = self.training_loss(batch)
        batch_size = batch["lq"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        # the epoch mean over every rank: accumulated on the device, reduced once at the epoch's end
        self.log("train/loss_epoch", loss.detach(), on_step=False, on_epoch=True, sync_dist=True, batch_size=batch_size)
        for name, value in logs.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        return loss

    def configure_callbacks(self) -> list[L.Callback]:
        """The reliability callbacks (NaN guard, per-step seeding, vocabularies in checkpoints) the trainer lacks."""
        return default_callbacks(self._trainer)

    # ----------------------------------------------------------------- evaluation
    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """What one validation/test batch gives the callbacks (a restorer: ``{"pred": ...}``)."""
        raise NotImplementedError

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        return self._eval_step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        return self._eval_step(batch)

    # ----------------------------------------------------------------- task labels
    # A model with a label head (InstructIR's intents, DA-CLIP's and Diff-Restorer's degradation classes)
    # registers a ``task_to_class`` buffer and says in ``_class_of_task`` which class a task name is. The
    # names go to classes once a run: ``setup`` maps the datamodule's ``task_names`` (what ``batch["task"]``
    # indexes) into that buffer, and ``task_classes`` reads each batch's task indices through it, on the device.
    def _class_of_task(self, task: str) -> int:
        """The label head's class index of a task name, -1 for none (a model with a label head overrides it)."""
        return -1

    def set_task_names(self, names: Sequence[str]) -> None:
        """The vocabulary that ``batch["task"]`` indexes (``setup`` takes it from the datamodule)."""
        self.task_to_class = torch.tensor(
            [self._class_of_task(str(n)) for n in names], dtype=torch.long, device=self.device
        )

    def setup(self, stage: str) -> None:
        """Map the datamodule's task vocabulary to the label head's classes (models with a ``task_to_class``)."""
        names = getattr(getattr(self.trainer, "datamodule", None), "task_names", None)
        if names and "task_to_class" in self._buffers:
            self.set_task_names(names)

    def task_classes(self, task: Tensor) -> Tensor:
        """``batch["task"]`` indices → the label head's classes, -1 where unknown (on ``task``'s device)."""
        lookup = self.task_to_class.to(task.device)
        if not len(lookup):
            return torch.full_like(task, -1)
        known = (task >= 0) & (task < len(lookup))
        return torch.where(known, lookup[task.clamp(0, len(lookup) - 1)], torch.full_like(task, -1))

    # the label head's accuracy (``restorezoo.metrics.ClassAccuracy``), for models that have one (DA-CLIP's
    # and Diff-Restorer's degradation classes, InstructIR's intents): ``_eval_step`` updates
    # ``self.label_accuracy`` (or calls ``update_label_accuracy``); the epoch hooks reset it and log its values
    label_accuracy_per_benchmark: bool = False
    """With several validation/test loaders, count and log the label accuracy per benchmark
    (``<stage>/<benchmark>/<name>``, the benchmark of each batch's first sample) instead of over all of them."""

    def update_label_accuracy(self, predicted: Tensor, target: Tensor, batch: dict[str, Any]) -> None:
        """Count one evaluation batch in ``label_accuracy`` (or its copy for the batch's benchmark)."""
        metric = self.label_accuracy
        benchmark = self._benchmark_of(batch) if self.label_accuracy_per_benchmark else ""
        if benchmark:
            per_benchmark = self.__dict__.setdefault("_label_accuracy_by_benchmark", {})
            if benchmark not in per_benchmark:
                per_benchmark[benchmark] = metric.clone()
                per_benchmark[benchmark].reset()
            metric = per_benchmark[benchmark]
        metric.update(predicted, target)

    def _benchmark_of(self, batch: dict[str, Any]) -> str:
        """The batch's benchmark when the running stage has several loaders (Lightning refuses one key
        logged from two), else ''."""
        if self._trainer is None:
            return ""
        validating = self.trainer.validating or self.trainer.sanity_checking
        loaders = self.trainer.val_dataloaders if validating else self.trainer.test_dataloaders
        several = isinstance(loaders, (list, tuple)) and len(loaders) > 1
        return str((batch.get("benchmark") or [""])[0]) if several else ""

    def _log_label_accuracy(self, stage: str) -> None:
        metric = getattr(self, "label_accuracy", None)
        if metric is not None and metric.update_count:
            self.log_dict(metric.compute_named(stage), add_dataloader_idx=False)
        for benchmark, per_benchmark in self.__dict__.get("_label_accuracy_by_benchmark", {}).items():
            self.log_dict(per_benchmark.compute_named(f"{stage}/{benchmark}"), add_dataloader_idx=False)
        self._reset_label_accuracy()

    def _reset_label_accuracy(self) -> None:
        if getattr(self, "label_accuracy", None) is not None:
            self.label_accuracy.reset()
        self.__dict__.pop("_label_accuracy_by_benchmark", None)

    def on_validation_epoch_start(self) -> None:
        self._reset_label_accuracy()

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._log_label_accuracy("val")

    def on_test_epoch_end(self) -> None:
        self._log_label_accuracy("test")

    # ----------------------------------------------------------------- optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW's parameter groups: every trainable parameter, with ``weight_decay``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def lr_factor(self, step: int, warmup: int, total: int) -> float:
        """The learning-rate multiplier at ``step``: linear warm-up to 1, then cosine to ``min_lr / lr``."""
        if step < warmup:
            return (step + 1) / (warmup + 1)
        floor = self.min_lr / self.lr if self.lr > 0 else 0.0
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW over ``parameter_groups()`` with ``lr_factor`` applied per step."""
        optimizer = torch.optim.AdamW(
            self.parameter_groups(), lr=self.lr, betas=self.betas, eps=self.adam_eps, weight_decay=self.weight_decay
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = min(self.warmup_steps, total - 1) if total > 1 else 0
        scheduler = LambdaLR(optimizer, lambda step: self.lr_factor(step, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------- loading
    @classmethod
    def checkpoint_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """The init arguments that rebuild the model of a checkpoint (a model whose checkpoint holds its
        pretrained weights too, as DA-CLIP's, skips loading them here)."""
        return hparams

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Any:
        """Rebuild a model from a ``restorezoo fit`` checkpoint or a ``restorezoo export`` file, loading it safely.

        The class comes from the checkpoint's ``_class_path`` (LightningCLI records it) when called on
        a base class; weights load with ``weights_only=True`` (or from safetensors, with the YAML
        beside it) and must match the model exactly, else one line says what differs.
        """
        path = Path(path)
        if path.suffix == ".safetensors":
            from restorezoo.export import read_export

            hparams, state_dict = read_export(path)
        else:
            checkpoint = load_checkpoint(path)
            if "state_dict" not in checkpoint:
                raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict'); try from_official()")
            hparams, state_dict = dict(checkpoint.get("hyper_parameters", {})), checkpoint["state_dict"]
        class_path = hparams.pop("_class_path", None)
        hparams.pop("_instantiator", None)
        model_cls: type[ZooModule] = cls
        if class_path is not None:
            found = model_class(str(class_path), path)
            if not issubclass(found, cls):
                raise CheckpointError(f"{path} holds a {class_path}, not a {cls.__name__}")
            model_cls = found
        elif cls in (ZooModule, RestorationModule):
            raise CheckpointError(f"{path} does not record its model class; load it with the model class itself")
        try:
            model = model_cls(**model_cls.checkpoint_hparams(hparams))
        except TypeError as error:
            raise CheckpointError(f"{path}: its hyper-parameters do not fit {model_cls.__name__} ({error})") from error
        load_matching(model, state_dict, path)
        return model.to(map_location).eval()


class RestorationModule(ZooModule):
    """Base LightningModule of all restorers: ``restore(batch)`` and the evaluation steps around it.

    Class attributes read by the fast path (``restorezoo.inference``): ``channels_last``
    (convolutional models run faster in channels_last, on CPU as on CUDA), ``compile_targets``
    (attribute paths of the hot modules or methods ``compile_model`` compiles), and the tiling
    defaults (``max_pixels`` above which ``restore_tensor`` tiles, ``default_tile``,
    ``default_tile_overlap``). ``sampling_options`` names the keyword options ``restore`` takes.
    """

    channels_last: bool = False
    compile_targets: tuple[str, ...] = ()
    sampling_options: tuple[str, ...] = ()
    """The keyword options ``restore(batch, **sampling)`` accepts (a sampler's ``steps``, ``seed``, ...);
    none for a one-pass model. ``restorezoo restore`` passes its ``--steps``, ``--seed`` and ``--sampler``
    only to a model that names them here (``--sampler`` as ``scheduler`` or ``sampler``, whichever it names)."""
    max_pixels: int = 2048 * 2048
    default_tile: int = 1024
    default_tile_overlap: int = 64

    # ----------------------------------------------------------------- what a model implements
    def restore(self, batch: dict[str, Any], **sampling: Any) -> Tensor:
        """Restore ``batch["lq"]``; returns B×3×H×W in [0, 1]."""
        raise NotImplementedError

    # ----------------------------------------------------------------- plain use
    def forward(
        self,
        lq: Tensor,
        prompt: str | Sequence[str] | None = None,
        caption: str | Sequence[str] | None = None,
        **sampling: Any,
    ) -> Tensor:
        """Restore a plain B×3×H×W (or 3×H×W) tensor in [0, 1], guided by optional text."""
        check_image_tensor(lq, "input tensor")
        return self.restore(batch_from_images(lq, prompt, caption), **sampling)

    # ----------------------------------------------------------------- Lightning steps
    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"pred": self.restore(batch).clamp(0, 1)}

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        output: dict[str, Any] = self._eval_step(batch)
        output.update(name=batch.get("name"), benchmark=batch.get("benchmark"), prompt=batch.get("prompt"))
        return output


def _moved_class(module_name: str, class_name: str) -> Any:
    """A restorezoo class under its current module, for checkpoints written before it moved file."""
    from restorezoo import models

    if not module_name.startswith("restorezoo.models.") or class_name not in models._EXPORTS:
        return None
    return getattr(importlib.import_module(models._EXPORTS[class_name]), class_name)


def model_class(class_path: str, source: str | Path = "") -> type[L.LightningModule]:
    """The LightningModule class a checkpoint names; only restorezoo's or an already imported module's.

    A checkpoint is data: it must not make us import (and so run) an arbitrary module.
    """
    module_name, _, class_name = class_path.rpartition(".")
    if not (module_name.startswith("restorezoo.") or module_name in sys.modules):
        raise CheckpointError(
            f"{source} names the model class {class_path}, outside restorezoo; import its module first"
        )
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        found = _moved_class(module_name, class_name)
        if found is None:
            raise CheckpointError(f"{source} names the model class {class_path}, which does not exist") from error
    if not (isinstance(found, type) and issubclass(found, L.LightningModule)):
        raise CheckpointError(f"{source} names {class_path}, which is not a LightningModule")
    return found
