"""The batch contract: the one structure that crosses module boundaries.

Every dataset yields samples with these keys and every model consumes them, so a new model
or a new dataset touches nothing else (README, "Data library").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

TENSOR_KEYS = ("lq", "hq", "task", "index")
LIST_KEYS = ("prompt", "caption", "params", "name", "benchmark")
BATCH_KEYS = TENSOR_KEYS + LIST_KEYS
"""``index`` (position of the image in its dataset) is restorezoo's one addition to the contract:
it lets the metric callback de-duplicate the padding DistributedSampler adds under DDP."""

OPTIONAL_KEYS = {
    "seed": "training only: the sample's own seed (list of ints), from which diffusion models draw "
    "their timestep and noise (``models.base.sample_generators``): DDP and resumed runs see the same draws",
    "gpu_degrade": "B bools: the sample's Real-ESRGAN degradation is still to be applied on the device "
    "(``RealESRGANSynthetic(gpu_degradation=True)``); the DataModule applies it and clears the flags",
    "degrade_kernels": "the drawn Real-ESRGAN kernels and their seed that ``gpu_degrade`` applies",
    "reference_caption": "evaluation, when a dataset's fixed ``caption=`` replaces the image's own: the image's "
    "own caption, against which CLIP-T scores (the metric never scores against a conditioning caption)",
}
"""Keys some datasets add and one consumer reads; documented here so nothing travels undeclared."""


def make_sample(
    lq: Tensor,
    hq: Tensor | None = None,
    *,
    prompt: str = "",
    caption: str = "",
    task: int | str = -1,
    params: dict[str, Any] | None = None,
    name: str = "",
    benchmark: str = "",
    index: int = -1,
) -> dict[str, Any]:
    """Build one sample (C×H×W tensors in [0, 1]) in the batch-contract layout.

    ``task`` may still be a name here; the DataModule's collate maps it into its task vocabulary.
    """
    if lq.ndim != 3 or lq.shape[0] != 3:
        raise ValueError(f"lq must be 3×H×W RGB, got shape {tuple(lq.shape)}")
    if hq is not None and hq.shape != lq.shape:
        raise ValueError(f"lq {tuple(lq.shape)} and hq {tuple(hq.shape)} differ in size for '{name}'")
    sample: dict[str, Any] = {
        "lq": lq,
        "prompt": prompt,
        "caption": caption,
        "task": task if isinstance(task, str) else int(task),
        "params": dict(params or {}),
        "name": name,
        "benchmark": benchmark,
        "index": int(index),
    }
    if hq is not None:
        sample["hq"] = hq
    return sample


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch; images must share a size (use batch size 1 for full test images)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    shapes = {tuple(s["lq"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"images in one batch differ in size {sorted(shapes)}; use batch_size 1 for full-size images"
        )
    batch: dict[str, Any] = {"lq": torch.stack([s["lq"] for s in samples])}
    if all("hq" in s for s in samples):
        batch["hq"] = torch.stack([s["hq"] for s in samples])
    batch["task"] = torch.tensor([s.get("task", -1) for s in samples], dtype=torch.long)
    batch["index"] = torch.tensor([s.get("index", -1) for s in samples], dtype=torch.long)
    for key in LIST_KEYS:
        default: Any = {} if key == "params" else ""
        batch[key] = [s.get(key, default) for s in samples]
    # Extra keys (e.g. per-sample blur kernels for a degradation that runs on the accelerator) are
    # stacked when every sample has them as tensors or dicts of tensors, and kept as lists otherwise
    # (with None for samples that lack the key, e.g. a ConcatDataset mixing pipelines).
    extra_keys = set().union(*(s.keys() for s in samples)) - set(BATCH_KEYS)
    for key in sorted(extra_keys):
        values = [s.get(key) for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values):
            batch[key] = torch.stack(values)
        elif all(isinstance(v, dict) and all(isinstance(t, torch.Tensor) for t in v.values()) for v in values):
            batch[key] = {name: torch.stack([v[name] for v in values]) for name in values[0]}
        else:
            batch[key] = values
    return batch


def valid_text(text: str) -> str:
    """``text`` with code points UTF-8 cannot encode (lone surrogates, e.g. from undecodable argv bytes) as "?".

    Tokenizers raise on them; a prompt is advice to the model, so a bad character must not end a run.
    """
    return text.encode("utf-8", "replace").decode("utf-8")


def batch_from_images(
    lq: Tensor, prompt: str | Sequence[str] | None = None, caption: str | Sequence[str] | None = None
) -> dict[str, Any]:
    """Wrap a plain B×3×H×W tensor (and optional text) as a batch, for ``forward`` and ``restore``."""
    if lq.ndim == 3:
        lq = lq.unsqueeze(0)
    if lq.ndim != 4 or lq.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W RGB tensor, got shape {tuple(lq.shape)}")
    n = lq.shape[0]

    def as_list(text: str | Sequence[str] | None) -> list[str]:
        if text is None:
            return [""] * n
        if isinstance(text, str):
            return [valid_text(text)] * n
        text = [valid_text(t) for t in text]
        if len(text) != n:
            raise ValueError(f"got {len(text)} texts for a batch of {n} images")
        return text

    return {
        "lq": lq,
        "prompt": as_list(prompt),
        "caption": as_list(caption),
        "task": torch.full((n,), -1, dtype=torch.long, device=lq.device),
        "index": torch.arange(n, device=lq.device),
        "params": [{} for _ in range(n)],
        "name": [f"image_{i}" for i in range(n)],
        "benchmark": [""] * n,
    }
