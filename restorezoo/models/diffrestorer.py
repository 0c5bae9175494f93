"""Diff-Restorer (Zhang et al., 2024): CLIP visual prompts, degradation-modulated control, degradation-aware decoder.

A frozen Stable Diffusion 1.5 restores an image from what a frozen CLIP image encoder sees in it:

- **Prompt processor** (§3.2): the CLIP image embedding of the LQ image goes through a *semantic
  branch* (3-layer MLP with LayerNorm + LeakyReLU) to P_S, the UNet's cross-attention context that
  replaces a text prompt, and a *degradation branch* (2-layer MLP) to the degradation prompt P_D; a
  classifier on P_D is trained with cross-entropy over the degradation types (L_deg).
- **Image-guided control module** (§3.3): a control encoder of four residual blocks, each a
  *Degradation Modulation Block* that gates its channels with sigmoid(Linear(P_D)), brings the LQ
  image to latent size; ControlNet's trainable UNet-encoder copy reads it next to z_t and its features
  enter the frozen UNet through zero convolutions. A control decoder (training only) reconstructs the
  HQ image from the control features (L_rec), which keeps them faithful to the content.
- **Degradation-aware decoder** (§3.4, stage 2): the VAE decoder with *Degradation-aware Refinement
  Blocks* that fuse the frozen VAE encoder's features of the LQ image, gated by P_D, to recover the
  detail the latent bottleneck loses. Trained separately on z0 = E(HQ) (L2 + 0.1·VGG-19 perceptual +
  0.001·adversarial), combined with stage 1 at inference; ``decoder="plain"`` is the paper's "Ours_S".

The frozen backbone, sampling loop and ControlNet copy come from :mod:`restorezoo.models.latent_diffusion`
(shared with SPIRE); stage 2's training module is ``diffrestorer_decoder.py``, its losses ``losses.py``.
Frozen parts (SD, CLIP) never enter checkpoints; they are rebuilt from the specs the hyper-parameters record.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.resnet import ResnetBlock2D
from torch import Tensor, nn

from restorezoo.data.prompts import DIFFRESTORER_CLASSES, canonical_task
from restorezoo.encoders.clip import MINI_CLIP, clip_pixels, load_clip, mini_clip, tiny_clip
from restorezoo.errors import RestoreZooError
from restorezoo.metrics.accuracy import ClassAccuracy
from restorezoo.models.controlnet import build_control_branch, zero_conv
from restorezoo.models.latent_diffusion import LatentDiffusionRestorer
from restorezoo.models.stable_diffusion import SD15
from restorezoo.tiling import tiled_apply
from restorezoo.weights import load_checkpoint, resolve_weights

DECODERS = ("drb", "plain")
"""``drb``: the degradation-aware decoder (stage 2, "Ours"); ``plain``: SD's VAE decoder ("Ours_S")."""


def _groups(channels: int) -> int:
    """GroupNorm groups for a width: 32 as in SD, fewer for the tiny test widths."""
    return math.gcd(32, channels)


def _resblock(in_channels: int, out_channels: int, down: bool = False, up: bool = False) -> ResnetBlock2D:
    """diffusers' residual block (GroupNorm, SiLU, 3×3 convs), without a time embedding."""
    return ResnetBlock2D(
        in_channels=in_channels,
        out_channels=out_channels,
        temb_channels=None,
        groups=_groups(in_channels),
        groups_out=_groups(out_channels),
        down=down,
        up=up,
    )


# ====================================================================== CLIP image prompt (§3.2)
def build_clip_image_encoder(model_name: str = "ViT-L-14", pretrained: str | None = "openai") -> nn.Module:
    """The frozen open_clip image tower (pooled, projected embedding) of ``model_name``.

    ``"tiny"`` is DA-CLIP's small random CLIP tower (64-d, 64² input) built from a fixed seed, so the
    same network comes back in every process (it is not in checkpoints); ``"mini-clip"`` is the packaged
    miniature CLIP trained by ``benchmarks/train_mini_clip.py`` (64-d, 64² input). Otherwise the weights
    ``pretrained`` load through ``load_clip`` (an open_clip tag, a local file, ``$RESTOREZOO_WEIGHTS``).
    """
    if model_name == MINI_CLIP:
        visual = mini_clip()
    elif model_name == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            visual = tiny_clip()[0].visual
    else:
        visual = load_clip(model_name, pretrained).visual
    visual.requires_grad_(False)
    return visual.eval()


class PromptProcessor(nn.Module):
    """P_CLIP → (P_S, P_D, degradation logits) (§3.2).

    Semantic branch: 3-layer MLP with LayerNorm + LeakyReLU after the first two layers → one
    ``context_dim`` token for the UNet's cross-attention. Degradation branch: "two MLP layers with layer
    normalization and LeakyReLU activation (except for the last layer)" → P_D. Classifier: "a simple MLP
    layer" on P_D over the degradation classes (L_deg): one linear layer (``classifier_layers=1``, the paper);
    ``classifier_layers=2`` is restorezoo's former Linear-LeakyReLU-Linear head. The LeakyReLU slope 0.2 is
    restorezoo's choice (the paper gives none).
    """

    def __init__(
        self,
        clip_dim: int,
        context_dim: int = 768,
        degradation_dim: int = 256,
        hidden_dim: int = 768,
        num_classes: int = len(DIFFRESTORER_CLASSES),
        classifier_layers: int = 1,
    ) -> None:
        super().__init__()
        if classifier_layers not in (1, 2):
            raise RestoreZooError(f"classifier_layers must be 1 (the paper) or 2, got {classifier_layers}")
        self.semantic = nn.Sequential(
            nn.Linear(clip_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, context_dim),
        )
        self.degradation = nn.Sequential(
            nn.Linear(clip_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, degradation_dim),
        )
        self.classifier: nn.Module = (
            nn.Linear(degradation_dim, num_classes)
            if classifier_layers == 1
            else nn.Sequential(
                nn.Linear(degradation_dim, degradation_dim), nn.LeakyReLU(0.2), nn.Linear(degradation_dim, num_classes)
            )
        )

    def forward(self, p_clip: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(P_S as B×1×context_dim, P_D as B×degradation_dim, logits B×classes)."""
        p_d = self.degradation(p_clip)
        return self.semantic(p_clip)[:, None], p_d, self.classifier(p_d)


# ====================================================================== image-guided control module (§3.3)
class DegradationModulationBlock(nn.Module):
    """F̃ = ResBlock(F); f = sigmoid(Linear(P_D)); out = ResBlock(F̃ ⊗ f): P_D chooses the channels to keep.

    ``modulate=False`` is Tab. III's "w/o DMB": the two ResBlocks without the P_D gate.
    """

    def __init__(
        self, in_channels: int, out_channels: int, degradation_dim: int, down: bool = False, modulate: bool = True
    ) -> None:
        super().__init__()
        self.resblock_in = _resblock(in_channels, out_channels, down=down)
        self.gate = nn.Linear(degradation_dim, out_channels) if modulate else None
        self.resblock_out = _resblock(out_channels, out_channels)

    def forward(self, x: Tensor, p_d: Tensor) -> Tensor:
        features = self.resblock_in(x, None)
        if self.gate is not None:
            features = features * torch.sigmoid(self.gate(p_d.to(features.dtype)))[:, :, None, None]
        return self.resblock_out(features, None)


class ControlEncoder(nn.Module):
    """LQ image → control features at latent size: a conv then four Degradation Modulation Blocks.

    The first log2(VAE factor) blocks halve the resolution, so the output matches the latent grid.
    """

    def __init__(self, channels: Sequence[int], degradation_dim: int, downsamples: int, modulate: bool = True) -> None:
        super().__init__()
        channels = list(channels)
        if len(channels) != 4 or not 0 <= downsamples <= 4:
            raise RestoreZooError(
                f"the control encoder has 4 blocks (got {len(channels)} widths) and at most 4 downsamplings "
                f"(the VAE needs {downsamples})"
            )
        self.conv_in = nn.Conv2d(3, channels[0], 3, padding=1)
        widths = [channels[0], *channels]
        self.blocks = nn.ModuleList(
            DegradationModulationBlock(widths[i], widths[i + 1], degradation_dim, down=i < downsamples, modulate=modulate)
            for i in range(4)
        )
        self.out_channels = channels[-1]

    def forward(self, lq: Tensor, p_d: Tensor) -> Tensor:
        h = self.conv_in(lq * 2 - 1)
        for block in self.blocks:
            h = block(h, p_d)
        return h


class ControlDecoder(nn.Module):
    """Control features → the HQ image, four residual blocks (the last log2(VAE factor) upsample); for L_rec."""

    def __init__(self, channels: Sequence[int], upsamples: int) -> None:
        super().__init__()
        widths = list(reversed(list(channels)))
        widths = [*widths, widths[-1]]
        self.blocks = nn.ModuleList(
            _resblock(widths[i], widths[i + 1], up=i >= 4 - upsamples) for i in range(4)
        )
        self.norm_out = nn.GroupNorm(_groups(widths[-1]), widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, features: Tensor) -> Tensor:
        h = features
        for block in self.blocks:
            h = block(h, None)
        return (self.conv_out(F.silu(self.norm_out(h))) + 1) / 2


class DiffRestorerControl(nn.Module):
    """Every part stage 1 trains: prompt processor, control encoder/decoder, ControlNet copy, zero convs."""

    def __init__(
        self,
        unet: nn.Module,
        clip_dim: int,
        context_dim: int,
        vae_downsamples: int,
        num_classes: int,
        degradation_dim: int = 256,
        hidden_dim: int = 768,
        control_channels: Sequence[int] = (32, 64, 128, 256),
        classifier_layers: int = 1,
        dmb: bool = True,
    ) -> None:
        super().__init__()
        self.prompt_processor = PromptProcessor(
            clip_dim, context_dim, degradation_dim, hidden_dim, num_classes, classifier_layers
        )
        self.control_encoder = ControlEncoder(control_channels, degradation_dim, vae_downsamples, modulate=dmb)
        self.control_decoder = ControlDecoder(control_channels, vae_downsamples)
        self.branch = build_control_branch(unet, extra_in_channels=self.control_encoder.out_channels)
        self.zero_convs = nn.ModuleList(zero_conv(c, c) for c in self.branch.channels)

    def residuals(self, z_t: Tensor, t: Tensor, context: Tensor, hint: Tensor) -> tuple[list[Tensor], Tensor]:
        """(per-skip residuals, middle residual) for the frozen UNet: zero at initialisation."""
        skips, middle = self.branch(z_t, t, context, hint)
        down = [conv(feature) for conv, feature in zip(self.zero_convs, skips)]
        return down, self.zero_convs[-1](middle)


# ====================================================================== degradation-aware decoder (§3.4)
def vae_encoder_features(vae: nn.Module, images: Tensor) -> list[Tensor]:
    """The VAE encoder's feature at each level (before its downsampling) for images in [0, 1].

    Level i has the encoder's ``block_out_channels[i]`` channels at 1/2^i of the image size; these are
    the z_i^lq that the refinement blocks fuse.
    """
    encoder = vae.encoder
    h = encoder.conv_in((images * 2 - 1).to(encoder.conv_in.weight.dtype))
    features = []
    for index, block in enumerate(encoder.down_blocks):
        for resnet in block.resnets:
            h = resnet(h, None)
        features.append(h)
        if index == len(encoder.down_blocks) - 2:
            break  # the deepest level is at latent size: the refinement blocks do not use it
        for downsampler in block.downsamplers or []:
            h = downsampler(h)
    return features


class DegradationAwareRefinementBlock(nn.Module):
    """z̃ = Conv(cat(z_i, z_i^lq)); f = sigmoid(Linear(P_D)); ẑ = ResBlock(z̃ ⊗ f) + z_i.

    restorezoo adds a zero-initialised 1×1 conv after the ResBlock (ControlNet's habit), so a fresh
    block is the identity and the decoder starts as SD's own; the paper does not say how it initialises.
    """

    def __init__(self, channels: int, lq_channels: int, degradation_dim: int) -> None:
        super().__init__()
        self.fuse = nn.Conv2d(channels + lq_channels, channels, 3, padding=1)
        self.gate = nn.Linear(degradation_dim, channels)
        self.resblock = _resblock(channels, channels)
        self.zero_conv = zero_conv(channels, channels)

    def forward(self, z: Tensor, z_lq: Tensor, p_d: Tensor) -> Tensor:
        fused = self.fuse(torch.cat([z, z_lq.to(z.dtype)], dim=1))
        gate = torch.sigmoid(self.gate(p_d.to(z.dtype)))[:, :, None, None]
        return z + self.zero_conv(self.resblock(fused * gate, None))


class DegradationAwareDecoder(nn.Module):
    """SD's VAE decoder (a trainable copy) with a refinement block after every upsampling up-block.

    With SD 1.5's VAE that is three blocks, at 1/4, 1/2 and 1/1 of the image size (z1..z3 of the paper),
    each fusing the frozen VAE encoder's LQ feature of the same size. ``drb=False`` is Tab. V's "Ours
    decoder w/o DRB": the decoder copy finetuned alone, without refinement blocks.
    """

    def __init__(
        self, vae: nn.Module, degradation_dim: int = 256, train_decoder: bool = True, drb: bool = True
    ) -> None:
        super().__init__()
        post = getattr(vae, "post_quant_conv", None)
        self.post_quant_conv = copy.deepcopy(post) if post is not None else None
        self.decoder = copy.deepcopy(vae.decoder).float().train()
        self.decoder.requires_grad_(train_decoder)
        if self.post_quant_conv is not None:
            self.post_quant_conv.float().requires_grad_(train_decoder)
        encoder_channels = list(vae.config.block_out_channels)
        levels = len(encoder_channels)
        decoder_channels = list(reversed(encoder_channels))
        # up block i (i < levels - 1) upsamples to 1/2^(levels-2-i): the encoder's level levels-2-i. A
        # one-level VAE (mini-sd: latents at image size) has no upsampling block; it gets one refinement
        # block after its only up-block, at full size (the paper's z3), so its decoder still sees the LQ image.
        self.levels = [levels - 2 - i for i in range(levels - 1)] or [0]
        self.refinement = nn.ModuleList(
            DegradationAwareRefinementBlock(decoder_channels[i], encoder_channels[level], degradation_dim)
            for i, level in enumerate(self.levels)
            if drb
        )

    def forward(self, latents: Tensor, lq_features: Sequence[Tensor], p_d: Tensor) -> Tensor:
        """Unscaled latents (z / scaling_factor) → images in [-1, 1], as ``AutoencoderKL.decode``."""
        decoder = self.decoder
        z = latents.to(decoder.conv_in.weight.dtype)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        h = decoder.mid_block(decoder.conv_in(z), None)
        for index, up_block in enumerate(decoder.up_blocks):
            h = up_block(h, None)
            if index < len(self.refinement):
                h = self.refinement[index](h, lq_features[self.levels[index]], p_d)
        return decoder.conv_out(decoder.conv_act(decoder.conv_norm_out(h)))


def decode_with_refinement(
    decoder: DegradationAwareDecoder,
    vae: nn.Module,
    latents: Tensor,
    lq: Tensor,
    p_d: Tensor,
    scaling_factor: float,
    tile_size: int | None = None,
    overlap: int = 8,
) -> Tensor:
    """Scaled latents + the LQ image (padded to the latent grid) → images in [0, 1] via the DRB decoder.

    Tiled like ``FrozenStableDiffusion.decode_latents``: the LQ image travels with the latents as
    pixel-unshuffled channels, so each latent tile gets the LQ features of its own region.
    """
    factor = lq.shape[-1] // latents.shape[-1]

    def decode(tile: Tensor) -> Tensor:
        z, packed = tile[:, : latents.shape[1]], tile[:, latents.shape[1] :]
        image = F.pixel_shuffle(packed, factor)
        return decoder(z / scaling_factor, vae_encoder_features(vae, image), p_d).float()

    packed = torch.cat([latents, F.pixel_unshuffle(lq.to(latents.dtype), factor)], dim=1)
    if tile_size is None or max(latents.shape[-2:]) <= tile_size:
        images = decode(packed)
    else:
        images = tiled_apply(decode, packed, tile_size, overlap, factor)
    return ((images + 1) / 2).clamp(0, 1)


# ====================================================================== stage 1
class DiffRestorer(LatentDiffusionRestorer):
    """Diff-Restorer stage 1: prompt processor + image-guided control on a frozen SD (L_diff + L_deg + L_rec).

    Args:
        pretrained: SD backbone (paper: SD 1.5), a diffusers folder/hub id or ``"tiny"`` (random, tests).
        clip_model, clip_pretrained: the frozen open_clip image encoder and its weights (tag or file);
            ``clip_model="tiny"`` is a small random tower for tests and smoke runs, ``"mini-clip"`` the packaged
            miniature CLIP trained by restorezoo (``benchmarks/train_mini_clip.py``). The tower gets the
            activation its weights were trained with (``openai``: QuickGELU); for a local file of OpenAI
            weights name the ``-quickgelu`` architecture (``ViT-L-14-quickgelu``).
        degradation_classes: L_deg's classes as task names, in class order (paper: the eight types).
        degradation_dim, hidden_dim: P_D width (paper: 256) and the prompt MLPs' hidden width.
        control_channels: widths of the control encoder's four blocks (decoder mirrored).
        deg_weight, rec_weight: weights of L_deg and L_rec (paper: 1 and 1; Tab. IV's ablations set them to 0,
            and ``rec_weight: 0`` is also Tab. III's "w/o CD": the control decoder gets no gradient).
        classifier_layers: the degradation classifier, 1 linear layer (the paper's "simple MLP layer") or 2.
        semantic_branch: False is Tab. II's "w/o B_s": the UNet's cross-attention reads SD's empty-prompt
            text embedding instead of P_S (restorezoo's reading of what replaces it; the paper does not say).
        degradation_prompt: False is Tab. II's "w/o P_D": P_D is set to zero wherever it acts (the control
            encoder's DMB gates and the stage-2 decoder's DRBs then see a constant); L_deg still trains the
            classifier head, which no longer reaches the restoration.
        dmb: False is Tab. III's "w/o DMB": the control encoder's blocks without the P_D gate.
        decoder_ckpt: a ``DiffRestorerDecoder`` checkpoint (stage 2) to decode with; not part of this
            model's state dict (the stage-1 checkpoint stays what stage 1 trained).
        decoder: "drb" (the stage-2 decoder; SD's when no ``decoder_ckpt`` is given) or "plain" (SD's
            decoder, the paper's "Ours_S").
        plain_decoder_sets: val/test benchmark names decoded with the plain decoder whatever ``decoder``
            says: list a test set twice under two names and one ``restorezoo test`` prints both rows.
        scheduler, steps, seed, progress, decode_tile, lq_start, ...: sampler settings (paper: UniPC, 20 steps).
    """

    sampling_options = (*LatentDiffusionRestorer.sampling_options, "decoder")

    def __init__(
        self,
        pretrained: str = SD15,
        clip_model: str = "ViT-L-14",
        clip_pretrained: str | None = "openai",
        degradation_classes: Sequence[str] = DIFFRESTORER_CLASSES,
        degradation_dim: int = 256,
        hidden_dim: int = 768,
        control_channels: Sequence[int] = (32, 64, 128, 256),
        deg_weight: float = 1.0,
        rec_weight: float = 1.0,
        classifier_layers: int = 1,
        semantic_branch: bool = True,
        degradation_prompt: bool = True,
        dmb: bool = True,
        decoder_ckpt: str | None = None,
        decoder: str = "drb",
        plain_decoder_sets: Sequence[str] = (),
        prediction_type: str = "epsilon",
        scheduler: str = "unipc",
        steps: int = 20,
        guidance_scale: float = 1.0,
        seed: int | None = 0,
        progress: bool = True,
        decode_tile: int | None = None,
        lq_start: float | None = None,
        ema_decay: float | None = None,
        gradient_checkpointing: bool = False,
        lr: float = 1e-5,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(
            pretrained=pretrained,
            prediction_type=prediction_type,
            scheduler=scheduler,
            steps=steps,
            guidance_scale=guidance_scale,
            seed=seed,
            progress=progress,
            decode_tile=decode_tile,
            lq_start=lq_start,
            ema_decay=ema_decay,
            gradient_checkpointing=gradient_checkpointing,
            lr=lr,
            weight_decay=weight_decay,
            betas=betas,
            min_lr=min_lr,
            warmup_steps=warmup_steps,
        )
        self.save_hyperparameters()
        if decoder not in DECODERS:
            raise RestoreZooError(f"decoder must be one of {', '.join(DECODERS)}, got '{decoder}'")
        self.degradation_classes = [canonical_task(str(c)) for c in degradation_classes]
        self.clip_model, self.degradation_dim = clip_model, degradation_dim
        self.hold("clip", build_clip_image_encoder(clip_model, clip_pretrained))
        clip_dim = int(self.clip.output_dim)
        self.control = DiffRestorerControl(
            self.sd.unet,
            clip_dim=clip_dim,
            context_dim=int(self.sd.unet.config.cross_attention_dim),
            vae_downsamples=int(math.log2(self.sd.vae_scale_factor)),
            num_classes=len(self.degradation_classes),
            degradation_dim=degradation_dim,
            hidden_dim=hidden_dim,
            control_channels=control_channels,
            classifier_layers=classifier_layers,
            dmb=dmb,
        )
        self.semantic_branch, self.degradation_prompt = bool(semantic_branch), bool(degradation_prompt)
        self.control.branch.gradient_checkpointing = gradient_checkpointing
        self.init_ema()
        self.deg_weight, self.rec_weight = deg_weight, rec_weight
        self.decoder = decoder
        self.plain_decoder_sets = set(plain_decoder_sets)
        if decoder_ckpt is not None:
            self.set_refinement_decoder(load_refinement_decoder(decoder_ckpt, self.sd.vae, degradation_dim))
        # datamodule task index → degradation class (-1 unknown), from the task names in setup()
        self.register_buffer("task_to_class", torch.zeros(0, dtype=torch.long), persistent=False)
        self.label_accuracy = ClassAccuracy(self.degradation_classes)

    # ------------------------------------------------------------------ frozen parts (not registered)
    @property
    def clip(self) -> nn.Module:
        """The frozen CLIP image tower (never in the state dict)."""
        return self.held("clip")

    @property
    def refinement_decoder(self) -> DegradationAwareDecoder | None:
        """The stage-2 decoder loaded from ``decoder_ckpt`` (frozen here), or None."""
        return self.held("refinement_decoder")

    def set_refinement_decoder(self, decoder: DegradationAwareDecoder | None) -> None:
        """Decode with this stage-2 decoder (used under no_grad; kept out of the state dict)."""
        self.hold("refinement_decoder", decoder, freeze=False)  # stage 2 trains the one it passes here

    # ------------------------------------------------------------------ prompts
    @torch.no_grad()
    def clip_embedding(self, images: Tensor) -> Tensor:
        """P_CLIP: the frozen CLIP image embedding of images in [0, 1] (B×clip_dim)."""
        pixels = clip_pixels(images.to(self.clip.conv1.weight.dtype), self.clip.image_size)
        return self.clip(pixels).float()

    def prompts(self, images: Tensor, control: nn.Module | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(P_S, P_D, degradation logits) of LQ images in [0, 1]."""
        if control is None:
            control = self.control if self.training else self.sampling_control
        p_s, p_d, logits = control.prompt_processor(self.clip_embedding(images))
        if not self.semantic_branch:  # "w/o B_s": SD's unconditional text context instead of P_S
            p_s = self.sd.encode_text([""] * images.shape[0]).to(p_s.dtype)
        if not self.degradation_prompt:  # "w/o P_D"
            p_d = torch.zeros_like(p_d)
        return p_s, p_d, logits

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        """Predicted degradation class per image (the classifier head on P_D)."""
        return self.prompts(images)[2].argmax(-1)

    def predict_degradation(self, images: Tensor) -> list[str]:
        """The predicted degradation task name of each image."""
        return [self.degradation_classes[i] for i in self.classify(images).tolist()]

    # ------------------------------------------------------------------ the denoiser
    def condition(self, batch: dict[str, Any]) -> dict[str, Any]:
        """P_S, P_D and the control encoder's features of the LQ image (once per batch)."""
        control = self.control if self.training else self.sampling_control
        lq = batch["lq"].float()
        p_s, p_d, logits = self.prompts(lq, control)
        hint = control.control_encoder(lq, p_d)
        return {"context": p_s, "p_d": p_d, "logits": logits, "hint": hint, "lq": lq}

    def _decoder_for(self, batch: dict[str, Any]) -> str:
        """"plain" for a batch of ``plain_decoder_sets`` benchmarks, else ``decoder``."""
        names = batch.get("benchmark") or []
        if names and all(str(name) in self.plain_decoder_sets for name in names):
            return "plain"
        return self.decoder

    def predict_noise(self, control: nn.Module, z_t: Tensor, t: Tensor, cond: dict[str, Any]) -> Tensor:
        down, middle = control.residuals(z_t, t, cond["context"], cond["hint"])
        return self.sd.unet_forward(z_t, t, cond["context"], down_residuals=down, mid_residual=middle)

    def unconditional(self, cond: dict[str, Any]) -> dict[str, Any]:
        """Guidance branch (only when guidance_scale ≠ 1; the paper uses none): a zero semantic prompt."""
        return {**cond, "context": torch.zeros_like(cond["context"])}

    def auxiliary_losses(self, batch: dict[str, Any], cond: dict[str, Any]) -> dict[str, Tensor]:
        """L_deg (cross-entropy on P_D, unknown tasks ignored) and L_rec (MSE of the control decoder)."""
        logits = cond["logits"]
        targets = self.degradation_targets(batch).to(logits.device)
        valid = (targets >= 0).float()  # masked mean, not boolean indexing: no host sync per step
        per_sample = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
        l_deg = (per_sample * valid).sum() / valid.sum().clamp(min=1)
        reconstruction = self.control.control_decoder(cond["hint"])
        l_rec = F.mse_loss(reconstruction.float(), batch["hq"].float())
        return {"deg": self.deg_weight * l_deg, "rec": self.rec_weight * l_rec}

    # ------------------------------------------------------------------ decoding
    def decode(self, latents: Tensor, cond: dict[str, Any], tile_size: int | None = None) -> Tensor:
        """Scaled latents → images in [0, 1]: the stage-2 decoder when loaded and chosen, else SD's."""
        decoder = self.refinement_decoder
        if cond.get("decoder", self.decoder) == "plain" or decoder is None:
            return self.sd.decode_latents(latents, tile_size=tile_size)
        with torch.no_grad():
            return decode_with_refinement(
                decoder, self.sd.vae, latents, cond["lq"], cond["p_d"], self.sd.scaling_factor, tile_size
            )

    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        out = super()._eval_step(batch)
        targets = self.degradation_targets(batch).to(out["pred"].device)
        if bool((targets >= 0).any()):  # the classifier on P_D, logged per epoch by ZooModule's hooks
            self.label_accuracy.update(self.classify(batch["lq"].float()), targets)
        return out

    # ------------------------------------------------------------------ labels and accuracy
    def _class_of_task(self, task: str) -> int:
        """A task name's degradation class by canonical task name (``ZooModule.setup`` maps the datamodule's)."""
        try:
            name = canonical_task(str(task))
        except ValueError:
            return -1
        return self.degradation_classes.index(name) if name in self.degradation_classes else -1

    def degradation_targets(self, batch: dict[str, Any]) -> Tensor:
        """Degradation class per sample (-1 unknown) from the task index, else ``params["task"]``."""
        task = batch.get("task")
        size = batch["lq"].shape[0]
        if not isinstance(task, Tensor):
            task = torch.full((size,), -1, dtype=torch.long)
        targets = self.task_classes(task)
        params = batch.get("params") or []
        if any(isinstance(p, dict) and p.get("task") for p in params):
            # host-side labels, copied over once: reading ``targets[i]`` would sync the device per sample
            fallback = [self._class_of_task(str(p["task"])) if isinstance(p, dict) and p.get("task") else -1 for p in params]
            targets = torch.where(targets >= 0, targets, torch.tensor(fallback, device=targets.device))
        return targets

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def restore(self, batch: dict[str, Any], decoder: str | None = None, **sampling: Any) -> Tensor:
        """Sample (UniPC, 20 steps by default) and decode; ``decoder="plain"`` is "Ours_S"."""
        if decoder is not None and decoder not in DECODERS:
            raise RestoreZooError(f"decoder must be one of {', '.join(DECODERS)}, got '{decoder}'")
        return super().restore(batch, condition_extra={"decoder": decoder or self._decoder_for(batch)}, **sampling)


def load_refinement_decoder(path: str | Path, vae: nn.Module, degradation_dim: int = 256) -> DegradationAwareDecoder:
    """The ``decoder.*`` weights of a ``DiffRestorerDecoder`` checkpoint, strictly, on a copy of ``vae``."""
    checkpoint = load_checkpoint(resolve_weights(path, what="Diff-Restorer decoder checkpoint"))
    state = checkpoint.get("state_dict", checkpoint)
    decoder_state = {k.removeprefix("decoder."): v for k, v in state.items() if k.startswith("decoder.")}
    if not decoder_state:
        raise RestoreZooError(f"{path} holds no 'decoder.*' weights; is it a DiffRestorerDecoder checkpoint?")
    drb = any(key.startswith("refinement.") for key in decoder_state)  # a "w/o DRB" decoder has none
    decoder = DegradationAwareDecoder(vae, degradation_dim, drb=drb)
    decoder.load_state_dict(decoder_state, strict=True)
    return decoder.requires_grad_(False).eval()


__all__ = [
    "DECODERS",
    "ControlDecoder",
    "ControlEncoder",
    "DegradationAwareDecoder",
    "DegradationAwareRefinementBlock",
    "DegradationModulationBlock",
    "DiffRestorer",
    "DiffRestorerControl",
    "PromptProcessor",
    "build_clip_image_encoder",
    "decode_with_refinement",
    "load_refinement_decoder",
    "vae_encoder_features",
]
