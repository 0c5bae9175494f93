"""Inference helpers shared by ``restorezoo.restore``, ``restorezoo restore`` and ``restorezoo predict``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from restorezoo.data.batch import batch_from_images
from restorezoo.data.io import save_image


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
    **sampling: Any,
) -> Tensor:
    """Restore a B×3×H×W (or 3×H×W) tensor of any size with a zoo model, under ``inference_mode``.

    Models pad to their own multiple and crop back, so any size works; on CUDA the pass runs in
    bf16 autocast. Returns B×3×H×W in [0, 1] on the input's device.
    """
    single = lq.ndim == 3
    device = next(model.parameters()).device
    batch = batch_from_images(lq.to(device), prompt, caption)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            out = model.restore(batch, **sampling).float().clamp(0, 1)
    finally:
        model.train(was_training)
    out = out.to(lq.device)
    return out[0] if single else out


class ImageWriter(BasePredictionWriter):
    """Writes every prediction of ``restorezoo predict`` as ``<output_dir>/<benchmark>/<name>.png`` (atomic).

    Args:
        output_dir: destination folder; default ``<log dir>/predictions``.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir

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
