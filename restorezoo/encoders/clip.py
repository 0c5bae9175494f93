"""Frozen CLIP image/text towers from stock open_clip: weight resolution, input preprocessing, a tiny random CLIP.

Shared by DA-CLIP (models/daclip.py), Diff-Restorer's prompt processor and the CLIP metrics. Weights resolve
through ``restorezoo.weights`` (a local file, ``$RESTOREZOO_WEIGHTS``, then open_clip's download), and a
missing one is a single ``WeightsNotFoundError`` line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.errors import RestoreZooError, WeightsNotFoundError
from restorezoo.weights import WEIGHTS_ENV, load_state_dict, resolve_weights

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_pixels(images: Tensor, image_size: int | Sequence[int]) -> Tensor:
    """B×3×H×W in [0, 1] → a CLIP tower's input: bicubic resize to ``image_size``, CLIP's mean/std.

    ``image_size`` as the towers give it: a pair (ViT) or one side (ModifiedResNet)."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if tuple(images.shape[-2:]) != tuple(image_size):
        images = F.interpolate(images, size=tuple(image_size), mode="bicubic", align_corners=False, antialias=True)
    images = images.clamp(0, 1)
    mean = images.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def tiny_clip() -> tuple[nn.Module, Any]:
    """A small random CLIP (64-d, 64² input, 2+2 blocks) and its tokenizer, for tests and CPU quickstarts."""
    from open_clip.model import CLIPVisionCfg

    vision = CLIPVisionCfg(image_size=64, layers=2, width=64, patch_size=16, head_width=32)
    return _small_clip(vision)


def _small_clip(vision_cfg: Any) -> tuple[nn.Module, Any]:
    """A 64-d CLIP with ``vision_cfg`` and the small text tower tiny_clip and mini-clip share (context 32)."""
    from open_clip.model import CLIP, CLIPTextCfg

    text_cfg = CLIPTextCfg(context_length=32, vocab_size=49408, width=64, heads=2, layers=2)
    clip = CLIP(embed_dim=64, vision_cfg=vision_cfg, text_cfg=text_cfg)
    return clip, open_clip.tokenizer.SimpleTokenizer(context_length=32)


MINI_CLIP = "mini-clip"
"""``clip_model`` name of the packaged miniature CLIP (``benchmarks/train_mini_clip.py`` trains it)."""

MINI_CLIP_FILE = Path(__file__).resolve().parents[1] / "assets" / MINI_CLIP / "image_tower.safetensors"


def mini_clip_architecture(image_size: int = 64, width: int = 8) -> tuple[nn.Module, Any]:
    """mini-clip's untrained network and tokenizer: a ``ModifiedResNet`` image tower (CLIP-RN50's design,
    one bottleneck per stage, ``width`` 8: 0.35 M parameters; ``image_size`` a multiple of 32) and
    tiny_clip's text tower.

    A convolutional tower because the ViT of :func:`tiny_clip` (16 patches of 16²) learns the local
    statistics that tell noise, blur and JPEG apart far more slowly at this size
    (``python benchmarks/train_mini_clip.py --tower vit`` trains that one instead).
    """
    from open_clip.model import CLIPVisionCfg

    if image_size % 32:
        raise RestoreZooError(f"mini-clip's input side must be a multiple of 32 (the tower's stride), got {image_size}")
    return _small_clip(CLIPVisionCfg(image_size=image_size, layers=(1, 1, 1, 1), width=width, head_width=32))


def mini_clip(path: str | Path | None = None) -> nn.Module:
    """The packaged mini-clip's image tower (the text tower is not shipped), trained by restorezoo on the
    sample's train photos; offline, no extra step. ``path``: another tower file ``train_mini_clip.py`` wrote."""
    path = MINI_CLIP_FILE if path is None else Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"the packaged '{MINI_CLIP}' weights are missing ({path}); reinstall restorezoo or rebuild "
            "them with `python benchmarks/train_mini_clip.py`"
        )
    state = load_state_dict(path)
    # the attention pool has one position per 32² cell of the input, plus the pooled token
    side = 32 * math.isqrt(state["attnpool.positional_embedding"].shape[0] - 1)
    # and its stem's first convolution has width / 2 filters
    clip, _ = mini_clip_architecture(side, width=2 * state["conv1.weight"].shape[0])
    clip.visual.load_state_dict(state, strict=True)
    return clip.visual.eval()


def _find_local_weights(model_name: str, pretrained: str) -> Path | None:
    """A local file for ``pretrained``: the path itself or a file under ``$RESTOREZOO_WEIGHTS``."""
    for name in (pretrained, f"{model_name}/{pretrained}", f"{model_name}-{pretrained}"):
        try:
            path = resolve_weights(name, what="CLIP weights", download=False)
        except WeightsNotFoundError:
            continue
        if path.is_dir():
            files = [path / f for f in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")]
            path = next((f for f in files if f.is_file()), None)
        if path is not None and path.is_file():
            return path
    return None


def trained_with_quick_gelu(model_name: str, pretrained: str | None) -> bool:
    """Whether the weights ``pretrained`` of ``model_name`` were trained with QuickGELU (``x·σ(1.702x)``).

    OpenAI's CLIPs were, LAION's and most later ones use exact GELU; an architecture built with the other
    activation loads the same tensors without complaint but gives different embeddings. open_clip's
    pretrained config of the tag says which (``quick_gelu``); a ``-quickgelu`` architecture always is.
    An unknown tag (a local file) counts as GELU, open_clip's default: for a local file of OpenAI weights
    name the ``-quickgelu`` architecture (``ViT-L-14-quickgelu``) or pass ``quick_gelu`` to :func:`load_clip`.
    """
    if model_name.endswith("-quickgelu"):
        return True
    if not pretrained:
        return False
    return bool(open_clip.get_pretrained_cfg(model_name, pretrained).get("quick_gelu", False))


def create_clip(
    model_name: str, pretrained: str | None = None, quick_gelu: bool | None = None, device: str = "cpu"
) -> nn.Module:
    """The open_clip architecture ``model_name`` (random weights) with the activation ``pretrained`` was
    trained with (:func:`trained_with_quick_gelu`), or the one ``quick_gelu`` forces.

    ``device="meta"`` builds the structure without memory (what the activation checks use).
    """
    if quick_gelu is None:
        quick_gelu = trained_with_quick_gelu(model_name, pretrained)
    with torch.device(device):
        return open_clip.create_model(model_name, pretrained=None, force_quick_gelu=quick_gelu, device=device)


def clip_activation(model: nn.Module) -> str:
    """``"quick_gelu"`` or ``"gelu"``: the MLP activation of an open_clip CLIP's (or image tower's) blocks."""
    visual = getattr(model, "visual", model)
    block = visual.transformer.resblocks[0]
    act = block.mlp.gelu
    if isinstance(act, open_clip.transformer.QuickGELU):
        return "quick_gelu"
    if isinstance(act, nn.GELU):
        return "gelu"
    return type(act).__name__


def load_clip(
    model_name: str = "ViT-B-32",
    pretrained: str | None = "laion2b_s34b_b79k",
    quick_gelu: bool | None = None,
) -> nn.Module:
    """The open_clip CLIP ``model_name`` with weights ``pretrained`` (a tag, a local file, or None for random).

    The architecture gets the activation the weights were trained with (OpenAI tags: QuickGELU; see
    :func:`trained_with_quick_gelu`); ``quick_gelu`` overrides that, e.g. for a local file of OpenAI weights.
    Local files and ``$RESTOREZOO_WEIGHTS`` are tried before open_clip's own download; every failure is
    one :class:`WeightsNotFoundError` line naming the tag and how to provide it.
    """
    if pretrained is None:
        return create_clip(model_name, None, quick_gelu)
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if quick_gelu is None:
        quick_gelu = trained_with_quick_gelu(model_name, pretrained if tag_cfg else None)
    local = _find_local_weights(model_name, pretrained)
    if local is None:
        cfg = tag_cfg
        hint = (
            f"download it (e.g. open_clip_pytorch_model.bin of {cfg.get('hf_hub') or cfg.get('url')}) and pass its "
            f"path as `pretrained`, or put it at ${WEIGHTS_ENV}/{pretrained}"
            if cfg
            else f"pass a local open_clip checkpoint as `pretrained` or put it at ${WEIGHTS_ENV}/{pretrained}"
        )
        if not cfg:
            raise WeightsNotFoundError(
                f"CLIP weights '{pretrained}' for {model_name}: not a file and not an open_clip tag "
                f"(known: {', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none'}); {hint}"
            )
        try:
            found = open_clip.pretrained.download_pretrained(cfg)
        except Exception as error:
            raise WeightsNotFoundError(
                f"CLIP weights {model_name}/'{pretrained}' unreachable ({type(error).__name__}); {hint}"
            ) from None
        if not found:
            raise WeightsNotFoundError(f"CLIP weights {model_name}/'{pretrained}' unreachable; {hint}")
        local = Path(found)
    clip = create_clip(model_name, quick_gelu=quick_gelu)
    state = load_state_dict(local)
    state.pop("position_ids", None)
    clip.load_state_dict(state, strict=True)
    return clip


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "clip_activation",
    "clip_pixels",
    "create_clip",
    "load_clip",
    "MINI_CLIP",
    "mini_clip",
    "mini_clip_architecture",
    "tiny_clip",
    "trained_with_quick_gelu",
]
