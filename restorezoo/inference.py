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
from restorezoo.data.io import check_image_tensor, save_image


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
    tile_overlap: int = 32,
    **sampling: Any,
) -> Tensor:
    """Restore a B×3×H×W (or 3×H×W) tensor of any size with a zoo model, under ``inference_mode``.

    Models pad to their own multiple and crop back, so any size works; on CUDA the pass runs in
    bf16 autocast. With ``tile`` the image is restored in overlapping tiles (averaged where they
    overlap), so memory stays bounded on large photos. Returns B×3×H×W in [0, 1] on the input's device.
    """
    check_image_tensor(lq, "input tensor")
    single = lq.ndim == 3
    device = next(model.parameters()).device
    batch = batch_from_images(lq.to(device), prompt, caption)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            if tile is not None and max(batch["lq"].shape[-2:]) > tile:
                out = _restore_tiled(model, batch, tile, tile_overlap, **sampling)
            else:
                out = model.restore(batch, **sampling).float().clamp(0, 1)
    finally:
        model.train(was_training)
    out = out.to(lq.device)
    return out[0] if single else out


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _restore_tiled(model: torch.nn.Module, batch: dict[str, Any], tile: int, overlap: int, **sampling: Any) -> Tensor:
    """Restore ``batch["lq"]`` tile by tile and average the overlaps (each tile is a batch of its own)."""
    if tile < 16 or not 0 <= overlap < tile:
        raise ValueError(f"tile must be >= 16 and overlap in [0, tile), got tile={tile}, overlap={overlap}")
    lq = batch["lq"]
    height, width = lq.shape[-2:]
    out = torch.zeros(lq.shape, dtype=torch.float32, device=lq.device)
    weight = torch.zeros((1, 1, height, width), dtype=torch.float32, device=lq.device)
    stride = tile - overlap
    for top in _tile_starts(height, tile, stride):
        for left in _tile_starts(width, tile, stride):
            window = (..., slice(top, top + tile), slice(left, left + tile))
            part = model.restore({**batch, "lq": lq[window]}, **sampling).float().clamp(0, 1)
            out[window] += part
            weight[window] += 1
    return out / weight


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
