"""DA-CLIP (Luo et al., "Controlling Vision-Language Models for Multi-Task Image Restoration", ICLR 2024).

A frozen CLIP (open_clip ViT-B-32, LAION-2B) plus a trainable *controller*: a copy of the image
tower with one zero-initialised ``Linear(width, width)`` after each transformer block. The
controller's block outputs are added to the frozen tower's blocks in reverse order, which steers the
frozen tower towards a clean-content embedding; the controller's own head gives a degradation
embedding. Both are trained contrastively against text (the clean caption, the degradation word).
DA-CLIP is a conditioner for restorers (IR-SDE, NAFNet), not a restorer itself.

Module names reproduce the released ``daclip_ViT-B-32.pt`` state dict exactly
(tests/specs/daclip_official_keys.json): ``clip.*`` the frozen CLIP, ``visual.*`` the controlled
tower (the same module as ``clip.visual``), ``visual_control.*`` the controller, ``logit_scale``.
Built on stock open_clip; the transformer walk is written here.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.data.prompts import DACLIP_DEGRADATIONS, to_daclip_word
from restorezoo.encoders.clip import CLIP_MEAN, CLIP_STD, clip_pixels, load_clip, tiny_clip
from restorezoo.metrics.accuracy import ClassAccuracy
from restorezoo.models.base import ZooModule
from restorezoo.weights import load_matching, load_state_dict, resolve_weights

NEUTRAL_CAPTION = "a photo"
"""Content text for samples without a caption. Not the degradation word: that would teach the
content embedding the degradation, which is what the controller is meant to take out of it."""

MAX_LOGIT_SCALE = math.log(100.0)
"""CLIP's temperature cap (logits at most ×100)."""

PREPROCESSING = ("release", "tensor")
"""How ``encode_image`` turns [0, 1] images into the tower's input, both with CLIP's test geometry
(shorter side to the input size, bicubic, centre crop) and CLIP's mean/std. ``release``: the release's
``clip_transform`` — 8-bit by truncation, PIL's bicubic — on the host, per image. ``tensor``: the same
geometry on the images' device in torch (antialiased bicubic, no 8-bit step); faster, no host copy,
not bit-equal to PIL."""

NO_WEIGHT_DECAY = ("bias", "ln", "bn", "logit_scale")
"""Parameter names (parts) the release's training excludes from weight decay, with every tensor of
fewer than 2 dimensions (gains and biases)."""


# ---------------------------------------------------------------------------------------------- tower walk
def _embed_patches(tower: nn.Module, pixels: Tensor) -> Tensor:
    """Patch embedding + class token + positions + ``ln_pre`` of an open_clip ``VisionTransformer`` (B×L×D)."""
    x = tower.conv1(pixels)
    x = x.flatten(2).transpose(1, 2)
    cls = tower.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + tower.positional_embedding.to(x.dtype)
    x = tower.patch_dropout(x)
    return tower.ln_pre(x)


def _pool_project(tower: nn.Module, x: Tensor) -> Tensor:
    """``ln_post``, token pooling and ``proj`` of a ``VisionTransformer`` on B×L×D tokens (B×embed_dim)."""
    pool_type = getattr(tower, "pool_type", "tok")
    after = getattr(tower, "final_ln_after_pool", False)
    if not after:
        x = tower.ln_post(x)
    pooled = x[:, 1:].mean(dim=1) if pool_type == "avg" else x[:, 0]
    if after:
        pooled = tower.ln_post(pooled)
    return pooled @ tower.proj if tower.proj is not None else pooled


def _run_blocks(transformer: nn.Module, x: Tensor) -> list[Tensor]:
    """Every block output of an open_clip ``Transformer`` on B×L×D tokens (handles a seq-first layout)."""
    batch_first = getattr(transformer, "batch_first", True)
    outputs = []
    h = x if batch_first else x.transpose(0, 1)
    for block in transformer.resblocks:
        h = block(h, attn_mask=None)
        outputs.append(h if batch_first else h.transpose(0, 1))
    return outputs


class ControlTransformer(nn.Module):
    """The controller's trunk: the copied blocks (``transformer``) and one zero linear per block (``zero_modules``).

    The zero linears start at zero weight and bias, so a fresh controller adds nothing to the frozen tower.
    """

    def __init__(self, transformer: nn.Module, width: int) -> None:
        super().__init__()
        self.transformer = transformer
        self.zero_modules = nn.ModuleList(nn.Linear(width, width) for _ in transformer.resblocks)
        for linear in self.zero_modules:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(last block output, [zero_i(block_i output) for i in order])."""
        outputs = _run_blocks(self.transformer, x)
        return outputs[-1], [zero(h) for zero, h in zip(self.zero_modules, outputs)]


def build_controller(visual: nn.Module) -> nn.Module:
    """A deep copy of the image tower whose ``transformer`` becomes a :class:`ControlTransformer`."""
    controller = copy.deepcopy(visual)
    width = controller.conv1.out_channels
    controller.transformer = ControlTransformer(controller.transformer, width)
    controller.requires_grad_(True)
    return controller


def controlled_forward(
    visual: nn.Module, controller: nn.Module | None, pixels: Tensor
) -> tuple[Tensor, Tensor | None]:
    """(content features, degradation features) of normalised pixels, unnormalised, B×embed_dim.

    The controller runs first; its zero-linear outputs are added after the frozen blocks in REVERSE
    order (the release pops them from a list: the last controller output goes to the first block).
    Without a controller this is the plain frozen CLIP image feature and degradation is None.
    """
    hints: list[Tensor] = []
    degradation = None
    if controller is not None:
        last, hints = controller.transformer(_embed_patches(controller, pixels))
        degradation = _pool_project(controller, last)
    x = _embed_patches(visual, pixels)
    trunk = visual.transformer
    batch_first = getattr(trunk, "batch_first", True)
    h = x if batch_first else x.transpose(0, 1)
    for block in trunk.resblocks:
        h = block(h, attn_mask=None)
        if hints:
            hint = hints.pop()
            h = h + (hint if batch_first else hint.transpose(0, 1))
    x = h if batch_first else h.transpose(0, 1)
    return _pool_project(visual, x), degradation


# ---------------------------------------------------------------------------------------------- the module
TEXT_CACHE_SIZE = 4096
"""Text embeddings DA-CLIP keeps (degradation words and recent captions)."""


class DACLIP(ZooModule):
    """DA-CLIP as a Lightning module: frozen CLIP + trainable controller, joint contrastive training.

    Args:
        model_name: open_clip architecture (paper: ``ViT-B-32``).
        pretrained: CLIP weights: an open_clip tag (paper: ``laion2b_s34b_b79k``), a local file, or None
            for random init.
        tiny: build a small random CLIP instead (64-d, 64² input; tests and CPU quickstarts).
        lr, weight_decay, warmup_steps: AdamW, linear warm-up then cosine (release: 3e-5, 0.05, 100); no
            weight decay on biases, norms and ``logit_scale`` (``NO_WEIGHT_DECAY``), as the release trains.
        betas, adam_eps: AdamW's (release: open_clip's ViT defaults (0.9, 0.98), 1e-6).
        degradation_words: the degradation classes, in class order (paper: the ten DA-CLIP words).
        preprocess: ``release`` or ``tensor`` (see ``PREPROCESSING``); ``from_official`` uses ``release``.
        gather: contrast against the negatives of every rank under DDP (the release gathers features
            across its 4 GPUs); False: each rank's local batch only, a different objective.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        tiny: bool = False,
        lr: float = 3e-5,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        betas: tuple[float, float] = (0.9, 0.98),
        adam_eps: float = 1e-6,
        degradation_words: Sequence[str] = DACLIP_DEGRADATIONS,
        preprocess: str = "tensor",
        gather: bool = True,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, betas=betas, min_lr=0.0, warmup_steps=warmup_steps)
        self.save_hyperparameters()
        if preprocess not in PREPROCESSING:
            raise ValueError(f"unknown preprocess '{preprocess}' (one of {', '.join(PREPROCESSING)})")
        if tiny:
            clip, tokenizer = tiny_clip()
        else:
            clip = load_clip(model_name, pretrained)
            tokenizer = open_clip.get_tokenizer(model_name)
        clip.requires_grad_(False)
        clip.eval()
        self.clip = clip
        self.visual = clip.visual  # the controlled tower: an alias, saved under both names as released
        self.visual_control = build_controller(clip.visual)
        self.logit_scale = nn.Parameter(clip.logit_scale.detach().clone())
        self.tokenizer = tokenizer
        self.adam_eps = adam_eps
        self.preprocessing, self.gather = preprocess, gather
        self.degradation_words = [str(w).strip().lower() for w in degradation_words]
        self.embed_dim = int(clip.text_projection.shape[-1])
        self.image_size = tuple(clip.visual.image_size)
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        # datamodule task index → degradation class (-1 unknown); set in setup() from the task names
        self.register_buffer("task_to_class", torch.zeros(0, dtype=torch.long), persistent=False)
        self.label_accuracy = ClassAccuracy(self.degradation_words)  # deg_acc, deg_acc_mean (Table 4), per word
        self._text_cache: OrderedDict[str, Tensor] = OrderedDict()
        self.register_load_state_dict_pre_hook(lambda *args, **kwargs: self._text_cache.clear())

    # ------------------------------------------------------------------ frozen parts stay frozen
    def train(self, mode: bool = True) -> DACLIP:
        """Switch the controller's mode; the frozen CLIP always stays in eval (no dropout, fixed stats)."""
        super().train(mode)
        self.clip.eval()
        return self

    # ------------------------------------------------------------------ public encoders
    def preprocess(self, images: Tensor) -> Tensor:
        """B×3×H×W in [0, 1] → CLIP-normalised tower input, by ``self.preprocessing`` (``PREPROCESSING``)."""
        dtype = self.visual.conv1.weight.dtype
        if self.preprocessing == "release":
            return release_clip_pixels(images, self.image_size[0]).to(self.pixel_mean.device, dtype)
        return clip_pixels(centre_square(images.to(self.pixel_mean.device, dtype)), self.image_size)

    def encode_pixels(
        self, pixels: Tensor, control: bool = True, normalize: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """The release's ``encode_image``: CLIP-normalised pixels in, raw (content, degradation) features out.

        ``control=False`` gives the plain frozen CLIP feature as content and None as degradation.
        """
        content, degradation = controlled_forward(
            self.visual, self.visual_control if control else None, pixels
        )
        if normalize:
            content = F.normalize(content, dim=-1)
            degradation = None if degradation is None else F.normalize(degradation, dim=-1)
        return content, degradation

    def encode_image(
        self, images: Tensor, control: bool = True, normalize: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """(content, degradation) embeddings, B×embed_dim each, of images in [0, 1] (``preprocess`` first).

        Normalised by default (contrastive training, classification); restorers condition on the raw
        features (``normalize=False``), as the release feeds its U-Net.
        """
        return self.encode_pixels(self.preprocess(images), control=control, normalize=normalize)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised frozen CLIP text embeddings (len(texts)×embed_dim), cached per string.

        The text tower is frozen, so the degradation words (every training step and every
        classification) are encoded once. Embeddings computed under ``inference_mode`` are not kept:
        a later training step could not save them for backward.
        """
        texts = [str(t) for t in texts]
        device = self.pixel_mean.device
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        fresh: dict[str, Tensor] = {}
        if missing:
            with torch.no_grad():
                encoded = self.clip.encode_text(self.tokenizer(missing).to(device), normalize=True)
            fresh = dict(zip(missing, encoded))
            if not torch.is_inference_mode_enabled():
                self._text_cache.update(fresh)
                while len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        return torch.stack([fresh[t] if t in fresh else self._text_cache[t] for t in texts])

    def _apply(self, fn: Any, recurse: bool = True) -> DACLIP:
        self._text_cache.clear()  # cached embeddings live on the old device/dtype
        return super()._apply(fn, recurse)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Same as :meth:`encode_image` (normalised, controlled)."""
        return self.encode_image(images)

    @torch.no_grad()
    def word_embeddings(self) -> Tensor:
        """Text embeddings of the degradation words (classes × embed_dim), for zero-shot classification."""
        return self.encode_text(self.degradation_words)

    @torch.no_grad()
    def degradation_similarity(self, images: Tensor) -> Tensor:
        """Cosine similarity of each image's degradation embedding to each word (B × classes), the
        release's ``evaluate.py`` scores."""
        _, degradation = self.encode_image(images)
        assert degradation is not None
        return degradation @ self.word_embeddings().to(degradation.dtype).T

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        """Predicted degradation class per image: the nearest word embedding to the degradation embedding."""
        return self.degradation_similarity(images).argmax(-1)

    def predict_degradation(self, images: Tensor) -> list[str]:
        """The degradation word of each image."""
        return [self.degradation_words[i] for i in self.classify(images).tolist()]

    # ------------------------------------------------------------------ labels
    def _class_of_task(self, task: str) -> int:
        """A task name's degradation word (``to_daclip_word``; a mixture's first part), -1 for none."""
        try:
            word = to_daclip_word(task)
        except ValueError:
            word = task.strip().lower()
        if isinstance(word, list):  # a mixture "a+b": its first part
            word = word[0]
        return self.degradation_words.index(word) if word in self.degradation_words else -1

    def degradation_targets(self, batch: dict[str, Any]) -> Tensor:
        """Degradation class per sample, -1 where unknown: from the task index, else ``params["degradation"]``."""
        targets = self.task_classes(batch["task"])  # ZooModule's lookup of the datamodule's task names
        params = batch.get("params") or []
        if any(isinstance(p, dict) and "degradation" in p for p in params):
            # host-side labels, copied over once: reading ``targets[i]`` would sync the device per sample
            fallback = [self._class_of_task(str(p["degradation"])) if isinstance(p, dict) and "degradation" in p else -1 for p in params]
            targets = torch.where(targets >= 0, targets, torch.tensor(fallback, device=targets.device))
        return targets

    # ------------------------------------------------------------------ training: joint contrastive loss
    def clip_loss(self, image_features: Tensor, text_features: Tensor, valid: Tensor | None = None) -> Tensor:
        """Symmetric CLIP cross-entropy of matched rows, with the learnable temperature ``logit_scale``.

        Repeated texts in a batch (same word) have identical columns, so their gradients equal those of
        a soft multi-positive target; only the loss value carries a constant offset. With ``valid``
        (B bools), the other rows and columns are masked out: the same loss as on the valid rows alone,
        without the host sync that selecting them (boolean indexing) would cost every step.
        """
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        logits = scale * image_features @ text_features.T
        labels = torch.arange(logits.shape[0], device=logits.device)
        if valid is None:
            return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        pairs = valid[:, None] & valid[None, :]
        logits = logits.masked_fill(~pairs, torch.finfo(logits.dtype).min)
        weight = valid.to(logits.dtype)
        count = weight.sum().clamp(min=1)
        image_to_text = (F.cross_entropy(logits, labels, reduction="none") * weight).sum() / count
        text_to_image = (F.cross_entropy(logits.T, labels, reduction="none") * weight).sum() / count
        return (image_to_text + text_to_image) / 2

    def _gather(self, tensor: Tensor) -> Tensor:
        """Rows of every rank, in rank order, with gradients flowing back to each rank's own rows.

        Under DDP every rank then computes the loss of the global batch; DDP's gradient average of
        those equal losses is the global batch's gradient, as one process on the whole batch.
        """
        trainer = self._trainer
        if not self.gather or trainer is None or trainer.world_size <= 1:
            return tensor
        gathered = self.all_gather(tensor, sync_grads=True)
        return gathered.reshape(-1, *tensor.shape[1:])

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Content emb ↔ clean-caption text + degradation emb ↔ degradation-word text, equal weights.

        Negatives come from the global batch (``gather``), as in the release's 4-GPU training.
        """
        content, degradation = self.encode_image(batch["lq"])
        assert degradation is not None
        captions = [c.strip() or NEUTRAL_CAPTION for c in batch.get("caption") or [""] * content.shape[0]]
        with torch.no_grad():
            caption_text = self.encode_text(captions)
        targets = self.degradation_targets(batch)
        words = self.word_embeddings().to(degradation.dtype)
        content, degradation = self._gather(content), self._gather(degradation)
        caption_text = self._gather(caption_text.to(content.dtype).contiguous())
        targets = self._gather(targets)
        loss_content = self.clip_loss(content, caption_text)
        loss_degradation = self.clip_loss(degradation, words[targets.clamp(min=0)], valid=targets >= 0)
        loss = loss_content + loss_degradation
        return loss, {"loss_content": loss_content.detach(), "loss_degradation": loss_degradation.detach()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """``ZooModule``'s logged step, plus the learnt temperature."""
        loss = super().training_step(batch, batch_idx)
        self.log("train/logit_scale", self.logit_scale.detach().exp(), batch_size=batch["lq"].shape[0])
        return loss

    # ------------------------------------------------------------------ evaluation: zero-shot classification
    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        predicted = self.classify(batch["lq"])
        targets = self.degradation_targets(batch).to(predicted.device)
        self.label_accuracy.update(predicted, targets)  # logged per epoch by ZooModule's hooks
        # no "pred" image: RestorationMetrics skips the batch (one warning) and the table stays empty
        return {"degradation": predicted, "target": targets}

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[str]:
        """The predicted degradation word of each image."""
        return self.predict_degradation(batch["lq"])

    # ------------------------------------------------------------------ optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """The controller and ``logit_scale``; no weight decay on gains, biases and ``logit_scale`` (open_clip)."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        exempt = [p for n, p in named if p.ndim < 2 or any(part in n for part in NO_WEIGHT_DECAY)]
        decayed = [p for n, p in named if not (p.ndim < 2 or any(part in n for part in NO_WEIGHT_DECAY))]
        return [{"params": exempt, "weight_decay": 0.0}, {"params": decayed, "weight_decay": self.weight_decay}]

    def lr_factor(self, step: int, warmup: int, total: int) -> float:
        """open_clip's per-step schedule: linear warm-up ``(step + 1)/warmup``, then cosine to zero."""
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress))

    # ------------------------------------------------------------------ released weights
    @classmethod
    def from_official(cls, path: str | Path, **kwargs: Any) -> DACLIP:
        """Load a released ``daclip_ViT-B-32.pt`` (plain, under 'state_dict', 'module.'-prefixed) strictly.

        The CLIP is built without its own pretrained weights: the file holds the whole model.
        """
        kwargs.setdefault("pretrained", None)
        kwargs.setdefault("preprocess", "release")
        model = cls(**kwargs)
        state = load_state_dict(resolve_weights(path, what="DA-CLIP weights"))
        load_matching(model, state, path)
        return model.eval()

    @classmethod
    def checkpoint_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint holds the CLIP weights too: build it without loading its pretrained ones."""
        return {**hparams, "pretrained": None}


def centre_square(images: Tensor) -> Tensor:
    """The central square of B×3×H×W images: with a resize to the tower's size after it, CLIP's test
    geometry (shorter side to the input size, centre crop), the same box as PIL's path picks."""
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return images[..., top : top + side, left : left + side]


def release_clip_pixels(images: Tensor, size: int) -> Tensor:
    """The release's ``clip_transform`` on B×3×H×W images in [0, 1]: 8 bits by truncation, PIL bicubic
    resize of the shorter side to ``size``, centre crop, CLIP's mean/std (on the host; B×3×size×size)."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    out = []
    for image in images.detach().float().cpu():
        array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        pil = TF.resize(Image.fromarray(array), size, interpolation=InterpolationMode.BICUBIC)
        pil = TF.center_crop(pil, [size, size])
        out.append(TF.normalize(TF.to_tensor(pil), CLIP_MEAN, CLIP_STD))
    return torch.stack(out)


def build_daclip(spec: str | Path | None, **kwargs: Any) -> DACLIP | None:
    """The frozen DA-CLIP a restorer conditions on: None, ``"tiny"``, a released file, or a fit ``.ckpt``."""
    if spec is None:
        return None
    text = str(spec)
    if text == "tiny":
        # A fixed seed makes "tiny" the same network in every process, so a restorer conditioned on
        # it (the conditioner is not in the restorer's checkpoint) reloads to the same outputs.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = DACLIP(tiny=True, **kwargs)
    elif text.endswith(".ckpt"):
        model = DACLIP.from_checkpoint(resolve_weights(text, what="DA-CLIP checkpoint"))
    else:
        model = DACLIP.from_official(text, **kwargs)
    model.requires_grad_(False)
    return model.eval()


class DACLIPConditioned:
    """Mixin for restorers steered by a frozen DA-CLIP (IR-SDE, NAFNet + DA-CLIP).

    The conditioner is frozen and held out of the restorer's state dict (``ZooModule.hold``):
    checkpoints stay small and record only its spec, which ``build_daclip`` turns back into the same
    network.
    """

    def init_daclip(self, spec: str | Path | None) -> None:
        """Build the conditioner from a spec (see ``build_daclip``); None leaves the model unconditioned."""
        self.set_daclip(build_daclip(spec) if spec is not None else None)

    @property
    def daclip(self) -> Any:
        """The frozen DA-CLIP (``encode_image(images, control=True) → (content, degradation)``), or None."""
        return self.held("daclip")  # type: ignore[attr-defined]

    def set_daclip(self, encoder: Any) -> None:
        """Attach a frozen DA-CLIP (anything with ``encode_image``) without registering it as a submodule."""
        self.hold("daclip", encoder)  # type: ignore[attr-defined]

    def conditioning(self, lq: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """(degradation, content) DA-CLIP embeddings of the LQ images, or (None, None) without DA-CLIP."""
        if self.daclip is None:
            return None, None
        if isinstance(self.daclip, nn.Module):
            self.daclip.to(lq.device)
        with torch.no_grad():  # raw features, as the release feeds its U-Net
            content, degradation = self.daclip.encode_image(lq.float(), control=True, normalize=False)
        return degradation.to(lq.dtype), content.to(lq.dtype)


__all__ = [
    "DACLIP",
    "DACLIPConditioned",
    "ControlTransformer",
    "NEUTRAL_CAPTION",
    "build_controller",
    "build_daclip",
    "release_clip_pixels",
]
