"""restorezoo: a PyTorch Lightning model zoo of all-in-one, prompt-driven image restorers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import torch

    from restorezoo.models.base import RestorationModule


def list_models() -> list[str]:
    """Short names of the zoo's models."""
    from restorezoo.models import MODELS

    return sorted(MODELS)


def load_model(
    model: str | Path | None = None,
    ckpt: str | Path | None = None,
    weights: str | Path | None = None,
    extra_weights: str | Path | None = None,
    **kwargs: Any,
) -> RestorationModule:
    """Build a model, in eval mode, from a ``fit`` checkpoint or a paper's released weights.

    ``load_model(ckpt="runs/x/checkpoints/last.ckpt")`` restores any zoo checkpoint (its class is
    recorded in it); ``load_model("instructir", weights="im_instructir-7d.pt",
    extra_weights="lm_instructir-7d.pt")`` loads released files through ``from_official``.
    ``load_model("path/to/folder")`` or ``load_model("org/name")`` loads a ``restorezoo export``
    folder, locally or from the model hub (``huggingface_hub``; the cache only when offline).
    """
    from restorezoo.errors import RestoreZooError
    from restorezoo.export import resolve_export
    from restorezoo.models import MODELS, RestorationModule

    model = str(model) if model is not None else None
    if model is not None and model.lower() not in MODELS:
        exported = resolve_export(model) if ckpt is None and weights is None else None
        if exported is None and Path(model).suffix in (".ckpt", ".safetensors", ".pt", ".pth"):
            raise RestoreZooError(f"checkpoint not found: {model}")
        if exported is None:
            raise RestoreZooError(
                f"unknown model '{model}'; known: {', '.join(sorted(MODELS))} "
                "(or an export folder, a checkpoint file, a hub repo id 'org/name')"
            )
        model, ckpt = None, exported
    cls = MODELS[model.lower()] if model is not None else RestorationModule
    if ckpt is not None:
        return cls.from_checkpoint(resolve_export(ckpt) or ckpt)
    if weights is not None:
        if model is None:
            raise RestoreZooError("released weights need --model to say which architecture they are")
        from_official = getattr(cls, "from_official", None)
        if from_official is None:
            raise RestoreZooError(f"{model} has no released weights to load")
        args = (weights, extra_weights) if extra_weights is not None else (weights,)
        return from_official(*args, **kwargs).eval()
    raise RestoreZooError("give a checkpoint (--ckpt) or released weights (--weights)")


def restore(
    image: torch.Tensor | str | Path,
    prompt: str = "",
    model: RestorationModule | None = None,
    caption: str = "",
    **sampling: Any,
) -> torch.Tensor:
    """Restore one image (a 3×H×W tensor in [0, 1] or a file path) with a loaded model."""
    from restorezoo.data.io import load_image
    from restorezoo.errors import RestoreZooError
    from restorezoo.inference import restore_tensor

    if model is None:
        raise RestoreZooError("restore() needs a model: restorezoo.load_model(ckpt=...)")
    tensor = load_image(image) if isinstance(image, (str, Path)) else image
    return restore_tensor(model, tensor, prompt, caption, **sampling)


__all__ = ["__version__", "list_models", "load_model", "restore"]
