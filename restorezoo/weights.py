"""Where pretrained weights come from, and how they are loaded safely.

Resolution order for a weight named ``name`` (a hub id such as ``TaylorAI/bge-micro-v2``, a hub
file ``org/repo/file.pt``, or a path):

1. an existing local file or folder;
2. ``$RESTOREZOO_WEIGHTS/<name>`` (and ``$RESTOREZOO_WEIGHTS/<basename>``), for offline clusters;
3. the Hugging Face cache, without touching the network;
4. a download from the hub, unless ``HF_HUB_OFFLINE=1`` or ``download=False``.

When all fail the user gets one line naming the weight, the places searched and how to provide it,
never a hang or a half-built model. Loading never unpickles arbitrary objects: safetensors or
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from restorezoo.errors import WeightsNotFoundError

WEIGHTS_ENV = "RESTOREZOO_WEIGHTS"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _split_hub_file(name: str) -> tuple[str, str | None]:
    """``org/repo/sub/file.pt`` → (``org/repo``, ``sub/file.pt``); ``org/repo`` → (``org/repo``, None)."""
    parts = name.removeprefix("hf://").split("/")
    if len(parts) <= 2:
        return "/".join(parts), None
    return "/".join(parts[:2]), "/".join(parts[2:])


def resolve_weights(name: str | os.PathLike[str], *, what: str = "weights", download: bool = True) -> Path:
    """Find ``name`` locally or on the hub and return its local path (file or folder)."""
    text = str(name)
    searched: list[str] = []
    path = Path(text).expanduser()
    if path.exists():
        return path
    searched.append(str(path))

    root = os.environ.get(WEIGHTS_ENV)
    if root:
        for candidate in (Path(root) / text.removeprefix("hf://"), Path(root) / Path(text).name):
            if candidate.exists():
                return candidate
            searched.append(str(candidate))
    else:
        searched.append(f"${WEIGHTS_ENV} (unset)")

    looks_like_hub = text.startswith("hf://") or (text.count("/") >= 1 and not text.startswith((".", "/", "~")))
    if looks_like_hub:
        repo_id, filename = _split_hub_file(text)
        local = _from_hub(repo_id, filename, local_only=True)
        if local is not None:
            return local
        searched.append(f"HF cache for {repo_id}")
        if download and not _offline():
            local = _from_hub(repo_id, filename, local_only=False)
            if local is not None:
                return local
            searched.append(f"hub download of {text} (failed: offline?)")
        else:
            searched.append("hub download (disabled: offline)")
    raise WeightsNotFoundError(
        f"{what} '{text}' not found (looked in: {', '.join(searched)}); download it and pass its path, "
        f"or put it under ${WEIGHTS_ENV}/{Path(text).name}"
    )


def _from_hub(repo_id: str, filename: str | None, *, local_only: bool) -> Path | None:
    """Fetch a repo snapshot or one file from the hub cache (or network); None when unavailable."""
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover - a hard dependency through transformers
        return None
    try:
        if filename is None:
            return Path(huggingface_hub.snapshot_download(repo_id, local_files_only=local_only))
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=local_only))
    except Exception:
        return None


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Remove a DDP/compile prefix from every key that has it."""
    return {k.removeprefix(prefix): v for k, v in state_dict.items()}


def load_state_dict(path: str | os.PathLike[str], *, nested_keys: tuple[str, ...] = ("state_dict", "params")) -> dict:
    """Load a checkpoint safely and unwrap the usual containers (``state_dict``, ``params``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise WeightsNotFoundError(
                f"cannot load {path} safely (weights_only=True): {str(error).splitlines()[0]}"
            ) from error
    for key in nested_keys:
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise WeightsNotFoundError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return strip_prefix(dict(state))


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Load a whole Lightning checkpoint (hyper-parameters + state dict) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsNotFoundError(
            f"cannot load checkpoint {path} safely: {str(error).splitlines()[0]}"
        ) from error
