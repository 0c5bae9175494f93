"""Diff-Restorer stage 2 (§3.4): train the degradation-aware decoder against a frozen stage-1 model.

The architecture (``DegradationAwareDecoder`` and its refinement blocks) is in ``diffrestorer.py``;
this file holds the training module: L2 + 0.1·VGG-19 perceptual + 0.001·adversarial (``losses.py``),
two optimisers (decoder, discriminator), validation through stage 1 with the new decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from restorezoo.errors import RestoreZooError
from restorezoo.models.base import RestorationModule
from restorezoo.models.diffrestorer import DegradationAwareDecoder, DiffRestorer, vae_encoder_features
from restorezoo.models.losses import PatchDiscriminator, PerceptualLoss
from restorezoo.weights import resolve_weights

TRAINING_LATENTS = ("hq", "restored")
"""What the stage-2 decoder trains on: the paper's E(HQ), or stage 1's sampled latents (``latents``)."""


def build_stage1(spec: str | dict[str, Any]) -> DiffRestorer:
    """The frozen stage-1 model a decoder trains against: a ``restorezoo fit`` checkpoint, or init
    args of a random ``DiffRestorer`` (smoke tests; built from a fixed seed so it reloads identically)."""
    if isinstance(spec, dict):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = DiffRestorer(**spec)
    else:
        loaded = DiffRestorer.from_checkpoint(resolve_weights(spec, what="Diff-Restorer stage-1 checkpoint"))
        assert isinstance(loaded, DiffRestorer)
        model = loaded
    model.requires_grad_(False)
    return model.eval()


class DiffRestorerDecoder(RestorationModule):
    """Diff-Restorer stage 2: train the degradation-aware decoder on z0 = E(HQ) (§3.4).

    The VAE encoder stays frozen; the decoder (a copy of SD's) and its refinement blocks learn to
    decode the HQ latents with the LQ image's encoder features and P_D from the frozen stage-1 model,
    under L2 + 0.1·VGG-19 perceptual + 0.001·adversarial (PatchGAN, non-saturating) losses. Validation
    and test restore through stage 1 with this decoder, so the table shows the combined model.
    ``DiffRestorer(decoder_ckpt=<this checkpoint>)`` combines them later.

    Args:
        stage1: a stage-1 ``restorezoo fit`` checkpoint, or ``DiffRestorer`` init args (random; smoke tests).
        perceptual_weights: "imagenet" (torchvision's VGG-19: cache, ``$RESTOREZOO_WEIGHTS`` or download),
            a VGG-19 state-dict file, or "tiny-random" (a random VGG-like net; tests/quickstarts only).
        l2_weight, perceptual_weight, adversarial_weight: loss weights (paper: 1, 0.1, 0.001).
        train_decoder: train the decoder copy too (paper: only the encoder is frozen); False trains the
            refinement blocks alone.
        drb: False is Tab. V's "Ours decoder w/o DRB" (the decoder copy finetuned without refinement blocks).
        latents: what the decoder learns to decode. "hq" is the paper's z0 = E(HQ). "restored" is restorezoo's,
            for a backbone whose autoencoder is exact (mini-sd: E(HQ) decodes at 77–80 dB, so under "hq" the
            L2 loss starts at zero and the LQ features have nothing to add): stage 1's sampled latents of the
            LQ crop (its own steps, scheduler and ``lq_start``; seed = the training step), the latents the
            decoder meets at test time, so the refinement blocks learn to repair the sampler's errors.
        disc_channels, disc_layers: PatchGAN width and depth.
        lr, betas, weight_decay: AdamW of the decoder and of the discriminator.
    """

    channels_last = True
    compile_targets = ("decoder",)
    sampling_options = tuple(o for o in DiffRestorer.sampling_options if o != "decoder")  # stage 1's sampler

    def __init__(
        self,
        stage1: str | dict[str, Any] = "runs/diffrestorer/checkpoints/last.ckpt",
        perceptual_weights: str = "imagenet",
        l2_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        adversarial_weight: float = 0.001,
        train_decoder: bool = True,
        drb: bool = True,
        latents: str = "hq",
        disc_channels: int = 64,
        disc_layers: int = 3,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, betas=betas)
        self.save_hyperparameters()
        if isinstance(stage1, str) and Path(stage1).is_file():
            self.hparams["stage1"] = str(Path(stage1).resolve())  # reloads from any working directory
        if latents not in TRAINING_LATENTS:
            raise RestoreZooError(f"latents must be one of {', '.join(TRAINING_LATENTS)}, got '{latents}'")
        self.latents = latents
        self.automatic_optimization = False
        self.hold("stage1", build_stage1(stage1))
        self.hold("perceptual", PerceptualLoss(perceptual_weights) if perceptual_weight > 0 else None)
        stage = self.stage1
        self.decoder = DegradationAwareDecoder(stage.sd.vae, stage.degradation_dim, train_decoder, drb=drb)
        self.discriminator = PatchDiscriminator(disc_channels, disc_layers) if adversarial_weight > 0 else None
        self.l2_weight, self.perceptual_weight, self.adversarial_weight = l2_weight, perceptual_weight, adversarial_weight
        stage.set_refinement_decoder(self.decoder)

    @property
    def stage1(self) -> DiffRestorer:
        """The frozen stage-1 model (not registered: never in this checkpoint; rebuilt from ``stage1``)."""
        return self.held("stage1")

    @property
    def perceptual(self) -> PerceptualLoss | None:
        return self.held("perceptual")

    def reconstruct(self, batch: dict[str, Any]) -> Tensor:
        """The decoder's image of its training latents (``latents``) given the LQ image, in [0, 1] (not clamped)."""
        stage, sd = self.stage1, self.stage1.sd
        hq, lq = batch["hq"].float(), batch["lq"].float()
        stage._check_size(hq)
        with torch.no_grad():
            if self.latents == "restored":
                scaled, _ = stage.restored_latents(batch, seed=int(self.global_step), progress=False)
            else:
                scaled = sd.encode_image(hq)
            latents = scaled / sd.scaling_factor
            features = vae_encoder_features(sd.vae, lq)
            p_d = stage.prompts(lq, stage.sampling_control)[1]
        return (self.decoder(latents, features, p_d).float() + 1) / 2

    def generator_losses(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(weighted loss, its parts, the reconstruction)."""
        hq = batch["hq"].float()
        prediction = self.reconstruct(batch)
        parts = {"l2": F.mse_loss(prediction, hq)}
        loss = self.l2_weight * parts["l2"]
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(prediction, hq)
            loss = loss + self.perceptual_weight * parts["perceptual"]
        if self.discriminator is not None:
            parts["adversarial"] = F.softplus(-self.discriminator(prediction)).mean()
            loss = loss + self.adversarial_weight * parts["adversarial"]
        return loss, parts, prediction

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The decoder's loss (the discriminator's step is in ``training_step``)."""
        loss, parts, _ = self.generator_losses(batch)
        return loss, {name: value.detach() for name, value in parts.items()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        loss, parts, prediction = self.generator_losses(batch)  # non-finite losses: NonFiniteGuard
        optimizers[0].zero_grad()
        self.manual_backward(loss)
        optimizers[0].step()
        size = batch["lq"].shape[0]
        if self.discriminator is not None:
            real = self.discriminator(batch["hq"].float())
            fake = self.discriminator(prediction.detach())
            loss_d = F.softplus(-real).mean() + F.softplus(fake).mean()
            optimizers[1].zero_grad()
            self.manual_backward(loss_d)
            optimizers[1].step()
            self.log("train/discriminator", loss_d.detach(), batch_size=size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        for name, value in parts.items():
            self.log(f"train/{name}", value.detach(), batch_size=size)
        return loss.detach()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """AdamW for the decoder (+ refinement blocks) and, with an adversarial loss, the discriminator."""
        params = [p for p in self.decoder.parameters() if p.requires_grad]
        optimizers = [torch.optim.AdamW(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)]
        if self.discriminator is not None:
            optimizers.append(
                torch.optim.AdamW(self.discriminator.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
            )
        return optimizers

    @torch.no_grad()
    def restore(self, batch: dict[str, Any], **sampling: Any) -> Tensor:
        """Stage-1 sampling decoded with this decoder (the combined model)."""
        self.stage1.set_refinement_decoder(self.decoder)
        return self.stage1.restore(batch, decoder="drb", **sampling)


__all__ = ["TRAINING_LATENTS", "DiffRestorerDecoder", "build_stage1"]
