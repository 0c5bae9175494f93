"""Inference helpers shared by ``restorezoo.restore``, ``restorezoo restore`` and ``restorezoo predict``."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from restorezoo.data.batch import batch_from_images
from restorezoo.data.io import check_image_tensor, save_image
from restorezoo.errors import RestoreZooError, first_line
from restorezoo.tiling import tiled_apply


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" → CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def restore_tensor(
    model: torch.nn.Module,
    lq: Tensor,
    prompt: str | Sequence[str] | None = None,
    caption: str | Sequence[str] | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    *,
    max_pixels: int | None = None,
    fast: bool = True,
    progress: bool = False,
    **sampling: Any,
) -> Tensor:
    """Restore a B×3×H×W (or 3×H×W) tensor of any size with a zoo model.

    Models pad to their own multiple and crop back, so any size works. ``fast`` (the default) runs the
    fast path: ``inference_mode``, channels_last weights and input for convolutional models, bf16
    autocast on CUDA; ``fast=False`` is plain eager fp32 under ``no_grad`` (the reference the fast path
    is measured against). Images with more than ``max_pixels`` pixels (default: the model's
    ``max_pixels``) are restored in overlapping ``tile``-sized tiles blended smoothly (default: the
    model's ``default_tile`` / ``default_tile_overlap``), so memory stays bounded on 4K/8K photos;
    ``tile`` forces tiling above that size. Returns B×3×H×W float32 in [0, 1] on the input's device.
    """
    check_image_tensor(lq, "input tensor")
    single = lq.ndim == 3
    device = next(model.parameters()).device
    batch = batch_from_images(lq.to(device), prompt, caption)
    height, width = batch["lq"].shape[-2:]
    limit = getattr(model, "max_pixels", None) if max_pixels is None else max_pixels
    if tile is None and limit is not None and height * width > limit:
        tile = int(getattr(model, "default_tile", 1024))
    overlap = tile_overlap if tile_overlap is not None else int(getattr(model, "default_tile_overlap", 64))
    if tile is not None:
        overlap = min(overlap, tile // 2)
    use_channels_last = fast and bool(getattr(model, "channels_last", False))
    set_memory_format(model, torch.channels_last if use_channels_last else torch.contiguous_format)
    was_training = model.training
    model.eval()

    def run(window: Tensor) -> Tensor:
        if use_channels_last:
            window = window.contiguous(memory_format=torch.channels_last)
        return model.restore({**batch, "lq": window}, **sampling).float().clamp(0, 1)

    try:
        with inference_context(device, fast):
            if tile is not None and max(height, width) > tile:
                out = tiled_apply(run, batch["lq"], tile, overlap, progress=progress, desc="restoring tiles")
            else:
                out = run(batch["lq"])
    finally:
        model.train(was_training)
    out = out.contiguous().to(lq.device)
    return out[0] if single else out


def inference_context(device: torch.device, fast: bool = True) -> ExitStack:
    """The grad mode and precision of a restore: ``inference_mode`` plus bf16 autocast on CUDA when
    ``fast``, else ``no_grad`` in fp32 (the eager reference)."""
    stack = ExitStack()
    stack.enter_context(torch.inference_mode() if fast else torch.no_grad())
    if fast and device.type == "cuda":
        stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
    return stack


def set_memory_format(model: torch.nn.Module, memory_format: torch.memory_format) -> None:
    """Convert a model's 4-D weights to ``memory_format`` once (a no-op when already there)."""
    if getattr(model, "_restorezoo_memory_format", torch.contiguous_format) == memory_format:
        return
    model.to(memory_format=memory_format)
    if memory_format == torch.channels_last:
        # 1×1 kernels and per-channel scales hold the same bytes either way; default strides keep DDP's gradient
        # buckets (laid out for contiguous gradients) from warning about a stride mismatch
        for param in model.parameters():
            if param.ndim == 4 and param.shape[-2:] == (1, 1):
                param.data = param.data.clone(memory_format=torch.contiguous_format)
    model._restorezoo_memory_format = memory_format


def compile_model(model: torch.nn.Module, mode: str | None = None) -> torch.nn.Module:
    """Opt-in ``torch.compile`` of a model's hot modules (its ``compile_targets``), falling back to eager.

    Each target's ``forward`` is replaced by a compiled one (the state dict and checkpoints are
    unchanged). If compilation fails (no compiler, an unsupported op), a warning names the module once
    and that module runs eagerly from then on: compiling is a speed-up, never a reason to fail.
    """
    targets = tuple(getattr(model, "compile_targets", ()))
    if not targets:
        warnings.warn(f"{type(model).__name__} names no compile_targets; nothing compiled", stacklevel=2)
    for path in targets:
        owner, method = _compile_target(model, path)
        if owner is None or getattr(owner, f"_restorezoo_compiled_{method}", False):
            continue
        setattr(owner, method, _compiled_or_eager(getattr(owner, method), f"{type(model).__name__}.{path}", mode))
        setattr(owner, f"_restorezoo_compiled_{method}", True)
    return model


def _compile_target(model: torch.nn.Module, path: str) -> tuple[Any, str]:
    """``"net"`` → (the ``net`` module, "forward"); ``"sd.unet_forward"`` → (``model.sd``, "unet_forward")."""
    *parents, last = path.split(".")
    owner: Any = model
    for name in parents:
        owner = getattr(owner, name)
    leaf = getattr(owner, last)
    if leaf is None:  # an optional module (an EMA copy) that this model does not have
        return None, ""
    return (leaf, "forward") if isinstance(leaf, torch.nn.Module) else (owner, last)


def _compiled_or_eager(eager: Any, name: str, mode: str | None) -> Any:
    compiled = torch.compile(eager, mode=mode)
    failed = False

    @functools.wraps(eager)
    def forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal failed
        if failed:
            return eager(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except Exception as error:  # torch._dynamo / inductor errors share no base class
            result = eager(*args, **kwargs)  # an error of the model itself is raised here, compile stays on
            failed = True
            warnings.warn(
                f"torch.compile failed for {name} ({type(error).__name__}: {first_line(error, '')}); running it eagerly",
                stacklevel=2,
            )
            return result

    return forward


class ImageWriter(BasePredictionWriter):
    """Writes every prediction of ``restorezoo predict`` as ``<output_dir>/<benchmark>/<name>.png`` (atomic).

    Args:
        output_dir: destination folder; default ``<log dir>/predictions`` (a fresh folder per run).
        overwrite: write into an ``output_dir`` that already holds files (else the run stops before
            predicting, so an earlier run's images are never replaced by accident).
    """

    def __init__(self, output_dir: str | None = None, overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.overwrite = overwrite

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        root = self._root(trainer)
        # decided on rank 0 and broadcast: on other ranks rank 0's first images could already be there
        taken = trainer.strategy.broadcast(not self.overwrite and root.is_dir() and any(root.iterdir()))
        if taken:
            raise RestoreZooError(
                f"{root} already holds predictions; pass --writer.overwrite true or another --writer.output_dir"
            )

    def _root(self, trainer: L.Trainer) -> Path:
        if self.output_dir:
            return Path(self.output_dir)
        return Path(trainer.log_dir or trainer.default_root_dir) / "predictions"

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(prediction, dict) or "pred" not in prediction:
            return  # not an image (e.g. DA-CLIP predicts degradation words)
        root = self._root(trainer)
        names = batch.get("name") or [f"{batch_idx}_{i}" for i in range(len(prediction["pred"]))]
        benchmarks = batch.get("benchmark") or [""] * len(names)
        for image, name, benchmark in zip(prediction["pred"], names, benchmarks):
            save_image(image, root / (benchmark or "predict") / f"{name}.png")
