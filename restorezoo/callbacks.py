"""Callbacks that keep long training runs alive and resumable; every ``restorezoo fit`` has them.

- ``NonFiniteGuard``: a NaN/inf loss (or gradient) zeroes that step's gradients instead of poisoning
  the weights; many in a row stop the run with one clear line and a checkpoint to resume from.
  Everything is counted on the device and read back every ``check_every`` steps, so the guard adds
  no host sync per step (what a GPU run wants).
- ``StepSeeding``: the global RNG is re-seeded from (seed, rank, epoch, batch) before every training
  batch, so model-side randomness (diffusion noise and timesteps, dropout) is the same in a run
  resumed from ``last.ckpt`` as in the uninterrupted run. The data side is seeded by the sampler
  (``ResumableSampler``).
- ``ResumeDataPosition``: a resumed run's first epoch skips the batches already trained on.
- ``AtomicCheckpoints``: checkpoints are written to a temporary file beside the target and renamed.
- ``FastPath``: channels_last weights and batches for convolutional models, opt-in ``torch.compile``.
- ``RunRecord``: checkpoints carry what is needed to use them later without the run's folder: the
  data vocabularies (task names, the train/test instruction split) and, under the CLI, the config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from restorezoo.errors import NonFiniteLossError
from restorezoo.files import atomic_writer

RECORD_KEY = "restorezoo"
"""Key of restorezoo's own entry in a Lightning checkpoint."""


class NonFiniteGuard(Callback):
    """Skip optimizer steps whose loss or gradients are not finite; stop after too many in a row.

    A skipped step has its gradients zeroed before gradient clipping and the optimizer, so the
    weights never see a NaN (the optimizer's momentum still moves them a little, as after any
    zero-gradient step). With a ``GradScaler`` (``16-mixed``) overflowing gradients are the
    scaler's business, so only the loss is checked.

    Args:
        max_consecutive: non-finite steps in a row that stop the run (with a checkpoint).
        check_every: optimizer steps between reads of the device-side counters (warnings and the
            stop decision come at most this many steps late; 1 checks every step).
    """

    def __init__(self, max_consecutive: int = 10, check_every: int = 10) -> None:
        if max_consecutive < 1 or check_every < 1:
            raise ValueError("max_consecutive and check_every must be at least 1")
        self.max_consecutive = max_consecutive
        self.check_every = check_every
        self._pending: Tensor | None = None
        self._counts: Tensor | None = None  # [total, consecutive, longest run] on the device
        self._reported = 0
        self._since_check = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._counts = torch.zeros(3, dtype=torch.long, device=pl_module.device)
        self._reported = 0
        self._since_check = 0

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        self._pending = bad if self._pending is None else self._pending | bad

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad = self._pending if self._pending is not None else torch.zeros((), dtype=torch.bool, device=pl_module.device)
        self._pending = None
        if grads and getattr(trainer.precision_plugin, "scaler", None) is None:
            norms = torch._foreach_norm(grads)
            bad = bad | ~torch.isfinite(torch.stack([n.to(bad.device) for n in norms]).sum())
        if trainer.world_size > 1:  # one rank's NaN reaches every rank through the gradient all-reduce
            bad = trainer.strategy.reduce(bad.float(), reduce_op="sum") > 0
        for grad in grads:
            grad.masked_fill_(bad.to(grad.device), 0.0)
        if self._counts is None:
            self._counts = torch.zeros(3, dtype=torch.long, device=bad.device)
        counts = self._counts
        consecutive = (counts[1] + 1) * bad
        self._counts = torch.stack([counts[0] + bad, consecutive, torch.maximum(counts[2], consecutive)])
        self._since_check += 1

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._since_check >= self.check_every:
            self._check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._since_check = 0
        if self._counts is None:
            return
        total, _, longest = (int(v) for v in self._counts.tolist())  # the one host sync, every k steps
        if total > self._reported:
            rank_zero_warn(
                f"skipped {total - self._reported} optimizer step(s) with a non-finite loss or gradient "
                f"(up to step {trainer.global_step}; {total} in this run)"
            )
            self._reported = total
        if longest >= self.max_consecutive:
            path = self._save(trainer)
            raise NonFiniteLossError(
                f"training stopped: {longest} steps in a row had a non-finite loss or gradient (by step "
                f"{trainer.global_step}); weights before them saved to {path}. Lower the learning rate, use "
                "bf16-mixed instead of 16-mixed, or run `restorezoo data check`; resume with --ckpt_path "
                f"{path}"
            )

    @staticmethod
    def _save(trainer: L.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None) or trainer.default_root_dir
        path = Path(folder) / "nonfinite.ckpt"
        trainer.save_checkpoint(path)
        return path


class StepSeeding(Callback):
    """Re-seed the global RNG before every training batch from (seed, rank, epoch, batch index).

    Only when a seed was set (``seed_everything``, the config's ``seed_everything:``); without
    one, training randomness is left alone.
    """

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is None:
            return
        mixed = (int(seed) * 1_000_003 + trainer.global_rank) * 1_000_003 + trainer.current_epoch
        torch.manual_seed((mixed * 1_000_003 + batch_idx) % 2**63)


class ResumeDataPosition(Callback):
    """Hand the training loader its mid-epoch position from the checkpoint, so a resumed epoch goes on
    where the interrupted one stopped.

    Lightning saves the state of loaders that have ``state_dict`` (``ResumableDataLoader``) but, when
    ``configure_optimizers`` asks for ``estimated_stepping_batches``, builds the loader before it
    restores the checkpoint and never loads that state; this callback loads it before the first batch.
    """

    def __init__(self) -> None:
        self._states: list[dict[str, Any]] = []

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._states = list(fit_loop.get("state_dict", {}).get("combined_loader", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        states, self._states = self._states, []
        loader = trainer.fit_loop._combined_loader
        if not states or loader is None:
            return
        stateful = [dl for dl in loader.flattened if hasattr(dl, "load_state_dict") and hasattr(dl, "state_dict")]
        for dataloader, state in zip(stateful, states):
            dataloader.load_state_dict(state)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write local checkpoints to a temporary file in the same folder, fsync, then rename over the target.

    Lightning's own writer stages the file in the system temp folder; when that is another file system
    (a tmpfs ``/tmp``, a cluster's scratch disk) the final move is a copy, and a kill during it leaves
    a truncated ``last.ckpt``. A rename within one folder is atomic: the old file or the new one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:  # remote storage: Lightning's writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_writer(path) as handle:
            torch.save(checkpoint, handle)


class AtomicCheckpoints(Callback):
    """Swap the trainer's plain checkpoint writer for ``AtomicCheckpointIO`` (custom writers are kept)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()


def data_vocabularies(datamodule: Any) -> dict[str, Any]:
    """What a checkpoint needs to be used without its run: task vocabulary and the instruction split."""
    from restorezoo.data.prompts import INSTRUCTIR_TASKS, instructions

    record: dict[str, Any] = {}
    if datamodule is not None and hasattr(datamodule, "task_names"):
        record["task_names"] = list(datamodule.task_names)
    record["instructions"] = {
        task: {split: list(instructions(task, split)) for split in ("train", "test")} for task in INSTRUCTIR_TASKS
    }
    return record


class RunRecord(Callback):
    """Write the data vocabularies (and the run's config, when given) into every checkpoint.

    Args:
        config: the run's full YAML config (the CLI passes it).
    """

    def __init__(self, config: str | None = None) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        from restorezoo import __version__

        record = checkpoint.setdefault(RECORD_KEY, {})
        record.update(version=__version__, **data_vocabularies(trainer.datamodule))
        if self.config is not None:
            record["config"] = self.config


class FastPath(Callback):
    """Training speed-ups that change no result beyond float rounding (``fast_path:`` in a config).

    Args:
        channels_last: convolutional models (``channels_last = True`` on the class) train with
            channels_last weights and batches: faster convolutions on CUDA (tensor cores) and on CPU
            (oneDNN).
        compile: ``torch.compile`` the model's ``compile_targets`` (falls back to eager with a warning).
        compile_mode: ``torch.compile`` mode ("default", "reduce-overhead", "max-autotune").
    """

    def __init__(self, channels_last: bool = True, compile: bool = False, compile_mode: str | None = None) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode

    def _active(self, pl_module: L.LightningModule) -> bool:
        return self.channels_last and bool(getattr(pl_module, "channels_last", False))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from restorezoo.inference import compile_model, set_memory_format

        if self._active(pl_module):
            set_memory_format(pl_module, torch.channels_last)
        if self.compile:
            compile_model(pl_module, self.compile_mode)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._active(pl_module) and isinstance(batch, dict):
            for key in ("lq", "hq"):
                if isinstance(batch.get(key), Tensor) and batch[key].ndim == 4:
                    batch[key] = batch[key].contiguous(memory_format=torch.channels_last)


def default_callbacks(trainer: L.Trainer | None) -> list[Callback]:
    """The reliability callbacks a trainer lacks (a model's ``configure_callbacks`` adds them)."""
    present = {type(c) for c in (trainer.callbacks if trainer is not None else [])}
    wanted = (NonFiniteGuard, StepSeeding, ResumeDataPosition, AtomicCheckpoints, FastPath, RunRecord)
    return [cls() for cls in wanted if not any(issubclass(p, cls) for p in present)]
