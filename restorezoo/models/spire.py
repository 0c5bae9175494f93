"""SPIRE (Qi et al., ECCV 2024): semantic and restoration prompts on a frozen latent diffusion model.

Stable Diffusion 1.5 stays frozen and reads the *semantic* prompt c_s (a caption of the clean content)
as usual. A trainable ControlNet encoder, initialised from the UNet's down and middle blocks, reads the
*restoration* prompt c_r ("Upsample to 2.0x; Deblur with sigma 2.9; Denoise with sigma 0.10;", or the blind "Remove all
degradation") through its cross-attention, and sees the degraded image y as extra input channels:
``cat(z_t, E'(y))`` with E' a small trainable downsampler to latent size.

Its features steer the frozen UNet by *modulation fusion*: at every skip scale and at the
middle block a zero-initialised 1×1 conv maps the control feature to (γ, β) and the frozen skip
becomes ``(1 + γ)·f_skip + β``. At initialisation γ = β = 0, so the model is exactly the frozen SD.
``fusion="additive"`` swaps in ControlNet's zero-conv residuals ``f_skip + conv(f_con)``: the paper's
"ControlNet-SR" baseline. "Every skip scale" is read as every skip connection the UNet's decoder
consumes (12 and the middle block in SD 1.5), where ControlNet puts its zero convolutions; the paper
does not list them.

The backbone, noise-prediction loss, EMA and guided sampling come from ``LatentDiffusionRestorer``
(models/latent_diffusion.py, stable_diffusion.py, controlnet.py); this file holds only what is SPIRE's.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from restorezoo.data.prompts import SPIRE_BLIND_PROMPT
from restorezoo.errors import RestoreZooError
from restorezoo.models.controlnet import ControlBranch, build_control_branch, zero_conv
from restorezoo.models.latent_diffusion import LatentDiffusionRestorer
from restorezoo.models.stable_diffusion import SD15

FUSIONS = ("modulation", "additive")
"""``modulation``: SPIRE's ``(1 + γ) f + β``; ``additive``: ControlNet-SR's ``f + conv(f_con)``."""


class DegradedImageEncoder(nn.Module):
    """E': the degraded image in [0, 1] → a feature map of latent size (stride-2 convs, SiLU).

    ControlNet's hint encoder shape: the control branch must see y at the latent
    resolution, next to z_t, and the VAE is not trained to encode degradations faithfully.
    """

    def __init__(self, scale_factor: int, out_channels: int = 4, width: int = 16) -> None:
        super().__init__()
        if scale_factor < 1 or scale_factor & (scale_factor - 1):
            raise RestoreZooError(f"E' downsamples by a power of two, got {scale_factor}")
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.SiLU()]
        channels = width
        for _ in range(int(math.log2(scale_factor))):
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1), nn.SiLU()]
            channels *= 2
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y * 2 - 1)


class ModulationFusion(nn.Module):
    """One zero-initialised 1×1 conv per skip feature (and the middle block): f_con → (γ, β).

    ``forward(index, f_skip, f_con) = (1 + γ)·f_skip + β``; ``additive=True`` gives ControlNet's
    ``f_skip + conv(f_con)`` with a zero conv of the same width instead.
    """

    def __init__(self, control_channels: list[int], skip_channels: list[int], additive: bool = False) -> None:
        super().__init__()
        self.additive = additive
        self.convs = nn.ModuleList(
            zero_conv(c_con, c_skip if additive else 2 * c_skip)
            for c_con, c_skip in zip(control_channels, skip_channels)
        )

    def forward(self, index: int, f_skip: Tensor, f_con: Tensor) -> Tensor:
        out = self.convs[index](f_con).to(f_skip.dtype)
        if self.additive:
            return f_skip + out
        gamma, beta = out.chunk(2, dim=1)
        return (1 + gamma) * f_skip + beta


class SpireControl(nn.Module):
    """Everything SPIRE trains: E', the ControlNet encoder (reading c_r) and the fusion convs."""

    def __init__(
        self, unet: nn.Module, skip_channels: list[int], scale_factor: int, degraded_channels: int, additive: bool
    ) -> None:
        super().__init__()
        self.degraded_encoder = DegradedImageEncoder(scale_factor, degraded_channels)
        self.controlnet: ControlBranch = build_control_branch(unet, extra_in_channels=degraded_channels)
        self.fusion = ModulationFusion(self.controlnet.channels, skip_channels, additive)

    def features(self, z_t: Tensor, t: Tensor, restoration: Tensor, degraded: Tensor) -> list[Tensor]:
        """Control features at every skip position, then the middle block's."""
        skips, middle = self.controlnet(z_t, t, restoration, self.degraded_encoder(degraded))
        return [*skips, middle]


class SPIRE(LatentDiffusionRestorer):
    """SPIRE as a Lightning module: frozen SD + restoration-prompt ControlNet with modulation fusion.

    Batches give the restoration prompt in ``prompt`` ("" → "Remove all degradation", the blind mode)
    and the semantic prompt in ``caption`` ("" is the unconditional prompt). Classifier-free guidance
    acts on the semantic prompt only (``guidance_scale``); the restoration prompt is always on.

    Args:
        pretrained: SD 1.5 (diffusers folder or hub id; ``"tiny"`` / ``"tiny:<seed>"`` random-init parts).
        fusion: "modulation" (SPIRE) or "additive" (ControlNet-SR baseline).
        degraded_channels: channels of E'(y) concatenated to z_t.
        blind_prompt: c_r used where a sample has none.
        semantic_prompt: read c_s from the batch (True, SPIRE) or always condition on "" (False): the
            paper's baselines "ControlNet-SR" (trained and tested without prompts) and "Ours w/o text" (the
            SPIRE checkpoint tested with an empty c_s). The batch's caption still reaches the metrics, so
            CLIP-T always scores against the ground-truth caption.
        restoration_prompt: read c_r from the batch (True) or always use ``blind_prompt`` (False: "Ours
            w/o text" is tested with "Remove all degradation"; ControlNet-SR without prompts gets this
            constant text, which amounts to no prompt).
        prediction_type, scheduler, steps, guidance_scale, seed, progress, decode_tile, lq_start, ema_decay,
            gradient_checkpointing: see ``LatentDiffusionRestorer``.
        lr, weight_decay, betas, min_lr, warmup_steps: AdamW and schedule (``RestorationModule``).
    """

    def __init__(
        self,
        pretrained: str = SD15,
        fusion: str = "modulation",
        degraded_channels: int = 4,
        blind_prompt: str = SPIRE_BLIND_PROMPT,
        semantic_prompt: bool = True,
        restoration_prompt: bool = True,
        prediction_type: str = "epsilon",
        scheduler: str = "ddim",
        steps: int = 50,
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
        if fusion not in FUSIONS:
            raise RestoreZooError(f"unknown fusion '{fusion}' (one of {', '.join(FUSIONS)})")
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
        self.fusion = fusion
        self.blind_prompt = blind_prompt
        self.semantic_prompt = bool(semantic_prompt)
        self.restoration_prompt = bool(restoration_prompt)
        self.control = SpireControl(
            self.sd.unet, self.sd.skip_channels, self.sd.vae_scale_factor, degraded_channels, fusion == "additive"
        )
        self.control.controlnet.gradient_checkpointing = gradient_checkpointing
        self.init_ema()

    # ------------------------------------------------------------------ LatentDiffusionRestorer hooks
    def condition(self, batch: dict[str, Any]) -> dict[str, Any]:
        """c_s (caption) and c_r (restoration prompt, blind default) CLIP embeddings, and the degraded image."""
        lq = batch["lq"].float()
        size = lq.shape[0]
        captions = list(batch.get("caption") or [""] * size) if self.semantic_prompt else [""] * size
        given = (batch.get("prompt") or [""] * size) if self.restoration_prompt else [""] * size
        prompts = [p.strip() or self.blind_prompt for p in given]
        return {
            "context": self.sd.encode_text(captions),
            "restoration": self.sd.encode_text(prompts),
            "degraded": lq,
        }

    def predict_noise(self, control: nn.Module, z_t: Tensor, t: Tensor, cond: dict[str, Any]) -> Tensor:
        """The frozen UNet on c_s with every skip fused with the control features of (z_t, E'(y), c_r)."""
        features = control.features(z_t, t, cond["restoration"], cond["degraded"])

        def fuse(index: int, f_skip: Tensor) -> Tensor:
            return control.fusion(index, f_skip, features[index])

        return self.sd.unet_forward(z_t, t, cond["context"], skip_fusion=fuse)


__all__ = ["FUSIONS", "SPIRE", "DegradedImageEncoder", "ModulationFusion", "SpireControl"]
