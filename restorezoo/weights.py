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

import functools
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from restorezoo.errors import CheckpointError, WeightsNotFoundError, first_line

WEIGHTS_ENV = "RESTOREZOO_WEIGHTS"


def hub_offline() -> bool:
    """Whether the user switched the model hub off (``HF_HUB_OFFLINE``): the one place that reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub answers a TCP connection within ``timeout`` s (name lookup included)."""
    import socket
    import threading
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # a hanging DNS lookup ignores socket timeouts
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def offline_unless_reachable() -> bool:
    """Switch the hub clients to their caches (``HF_HUB_OFFLINE=1``) when the hub cannot be reached.

    Without it a machine with no network waits out the clients' retries (a minute for DA-CLIP's CLIP)
    before a missing weight is reported. Returns True when it switched.
    """
    if hub_offline() or hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - a dependency through transformers
        pass
    return True


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
        if download and not hub_offline():
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


SD_FILES = ("*.json", "*.txt", "unet/*.safetensors", "vae/*.safetensors", "text_encoder/*.safetensors")
"""What a hub download of an SD repo fetches (not the multi-GB single-file checkpoints next to it)."""


MINI_SD = "mini-sd"
"""``pretrained`` name of the packaged mini Stable Diffusion (``benchmarks/train_mini_sd.py`` trains it)."""

PACKAGED_STABLE_DIFFUSION = {MINI_SD: Path(__file__).resolve().parent / "assets" / MINI_SD}
"""Backbones shipped inside the package, in SD 1.5's diffusers layout: they load like any SD folder."""


def resolve_stable_diffusion(name: str) -> Path:
    """A packaged backbone (``mini-sd``), a local SD folder, ``$RESTOREZOO_WEIGHTS``/HF cache entry, or a hub
    download of the diffusers files only."""
    if name in PACKAGED_STABLE_DIFFUSION:
        folder = PACKAGED_STABLE_DIFFUSION[name]
        if not (folder / "model_index.json").is_file():
            raise WeightsNotFoundError(
                f"the packaged '{name}' backbone is missing from {folder}; reinstall restorezoo or rebuild it "
                "with `python benchmarks/train_mini_sd.py`"
            )
        return folder
    try:
        return resolve_weights(name, what="Stable Diffusion weights", download=False)
    except WeightsNotFoundError as error:
        if hub_offline() or name.startswith((".", "/", "~")) or name.count("/") != 1:
            raise WeightsNotFoundError(
                f"{error} (diffusers layout: unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
            ) from None
        try:
            import huggingface_hub

            return Path(huggingface_hub.snapshot_download(name, allow_patterns=list(SD_FILES)))
        except Exception as download_error:
            raise WeightsNotFoundError(
                f"Stable Diffusion weights '{name}' not in the cache and the hub download failed "
                f"({type(download_error).__name__}); download the diffusers folder and pass its path"
            ) from None


VGG19_FILE = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG-19 (``VGG19_Weights.IMAGENET1K_V1``) file name."""


def vgg19_imagenet_state() -> dict[str, Tensor]:
    """torchvision's ImageNet VGG-19 state dict: torch hub cache, ``$RESTOREZOO_WEIGHTS``, else a download."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if cached.is_file():
        return load_state_dict(cached)
    try:
        return load_state_dict(resolve_weights(VGG19_FILE, what="VGG-19 weights", download=False))
    except WeightsNotFoundError:
        pass
    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    hint = (
        f"download {url} into {cached.parent} or ${WEIGHTS_ENV}, or pass its path as perceptual_weights "
        "('tiny-random' only for smoke tests)"
    )
    if hub_offline():
        raise WeightsNotFoundError(f"VGG-19 ImageNet weights {VGG19_FILE} not found (offline); {hint}")
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsNotFoundError(
            f"VGG-19 ImageNet weights {VGG19_FILE} unreachable ({type(error).__name__}); {hint}"
        ) from None


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

        try:
            state = load_file(str(path), device="cpu")
        except Exception as error:
            raise CheckpointError(f"{path} is not a valid safetensors file: {first_line(error)}") from error
    else:
        state = safe_torch_load(path)
    for key in nested_keys:
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise WeightsNotFoundError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return strip_prefix(dict(state))


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` with one-line errors; never unpickles code or arbitrary objects.

    A file that needs more than tensors, containers and plain values to unpickle (a crafted pickle,
    a whole pickled ``nn.Module``) is refused: nothing in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refusing to load {path}: it holds pickled objects beyond plain weights ({first_line(error)}); "
            "restorezoo only loads safetensors or weights-only files. If you trust its source, re-save its "
            "state_dict (torch.save(model.state_dict(), ...)) or convert it to .safetensors"
        ) from error
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {first_line(error)} (truncated or not a checkpoint?)") from error


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Load a whole Lightning checkpoint (hyper-parameters + state dict) with ``weights_only=True``."""
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path} does not hold a checkpoint dict (found {type(checkpoint).__name__})")
    return dict(checkpoint)


def load_matching(module: torch.nn.Module, state_dict: Mapping[str, Tensor], source: str | os.PathLike[str]) -> None:
    """``load_state_dict(strict=True)`` whose failure is one line: which keys or shapes differ and what to do."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        found = []
        if missing:
            found.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            found.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shapes:
            found.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: {'; '.join(found)}; it was trained with another model "
            "or other sizes: load it with the model and config it was trained with"
        )
    module.load_state_dict(state_dict, strict=True)
