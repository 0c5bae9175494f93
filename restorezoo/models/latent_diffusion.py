"""``LatentDiffusionRestorer``: the Lightning module SPIRE and Diff-Restorer subclass.

A frozen Stable Diffusion (``stable_diffusion.py``), a trainable ``control`` (``controlnet.py``),
noise- (or v-) prediction loss on VAE latents, optional EMA of the control and classifier-free
guided sampling with any scheduler (``sampling.py``). The frozen backbone is held outside module
registration (``FrozenParts``), so checkpoints hold only the trainable parts and reload strictly; the
backbone is rebuilt from the ``pretrained`` spec (hub id, folder or ``tiny[:seed]``) recorded in the
hyper-parameters.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.errors import RestoreZooError
from restorezoo.models.base import (
    RestorationModule,
    ema_step,
    per_sample_randint,
    per_sample_randn,
    sample_generators,
)
from restorezoo.models.sampling import SCHEDULERS, guided, make_scheduler, sample_latents
from restorezoo.models.stable_diffusion import SD15, FrozenStableDiffusion
from restorezoo.tiling import pad_to_multiple


def _concat_conditions(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two condition dicts as one batch (tensors and lists concatenated along the batch)."""
    merged: dict[str, Any] = {}
    for key, value in first.items():
        other = second[key]
        if isinstance(value, Tensor):
            merged[key] = torch.cat([value, other])
        elif isinstance(value, list):
            merged[key] = value + other
        else:
            merged[key] = value
    return merged


class LatentDiffusionRestorer(RestorationModule):
    """What SPIRE and Diff-Restorer share: a frozen SD backbone, a trainable ``control`` module, noise-
    (or v-) prediction loss on VAE latents, optional EMA of the control, guided sampling with any scheduler.

    The backbone is held outside module registration (as ``DACLIPConditioned`` does): it never enters
    ``state_dict`` — checkpoints hold the trainable ``control`` (and its EMA) only and load with
    ``strict=True`` — and it is rebuilt from ``pretrained``, which the hyper-parameters record. Device and
    dtype moves (``.to``, Lightning's placement) are forwarded to it.

    A subclass builds ``self.control`` (every trainable part), calls ``init_ema()``, and implements
    ``condition(batch)`` (per-batch inputs of the denoiser, including the semantic ``"context"``) and
    ``predict_noise(control, z_t, t, cond)``; ``unconditional(cond)`` defines the guidance branch.

    Args:
        pretrained: SD backbone: a diffusers folder / hub id, or ``"tiny"`` / ``"tiny:<seed>"`` (random, tests).
        prediction_type: "epsilon" or "v_prediction" (the loss target and the sampler's reading).
        scheduler, steps, guidance_scale, seed, progress: default sampler settings (``restore`` overrides).
        decode_tile: VAE decode tile in latent cells for large images (None: one pass).
        lq_start: start sampling from the LQ image's latent noised to this fraction of the steps
            (SDEdit-style, e.g. 0.6) instead of pure noise. Not in SPIRE or Diff-Restorer (None, their
            configs); it helps the small ``mini-sd`` quickstarts keep the photo's layout.
        ema_decay: EMA of the control for sampling (None: off).
        gradient_checkpointing: recompute UNet/control activations in the backward pass (memory ↔ time).
    """

    channels_last = True
    compile_targets = ("sd.unet_forward",)
    sampling_options = ("steps", "guidance_scale", "seed", "scheduler", "progress", "decode_tile", "lq_start")
    max_pixels = 1024 * 1024  # SD 1.5 was trained at 512²: larger images go in 512² tiles
    default_tile = 512

    control: nn.Module
    control_ema: nn.Module | None

    def __init__(
        self,
        pretrained: str = SD15,
        prediction_type: str = "epsilon",
        scheduler: str = "ddim",
        steps: int = 50,
        guidance_scale: float = 1.0,
        seed: int | None = None,
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
        super().__init__(lr=lr, weight_decay=weight_decay, betas=betas, min_lr=min_lr, warmup_steps=warmup_steps)
        if prediction_type not in ("epsilon", "v_prediction"):
            raise RestoreZooError(f"prediction_type must be 'epsilon' or 'v_prediction', got '{prediction_type}'")
        if scheduler.lower() not in SCHEDULERS:
            raise RestoreZooError(f"unknown scheduler '{scheduler}' (one of {', '.join(SCHEDULERS)})")
        from diffusers import DDPMScheduler

        self.hold("sd", FrozenStableDiffusion.build(pretrained))
        self.sd.enable_gradient_checkpointing(gradient_checkpointing)
        self.gradient_checkpointing = gradient_checkpointing
        self.prediction_type = prediction_type
        self.scheduler_name, self.steps, self.guidance_scale = scheduler, steps, guidance_scale
        self.seed, self.progress, self.decode_tile = seed, progress, decode_tile
        if lq_start is not None and not 0.0 < lq_start <= 1.0:
            raise RestoreZooError(f"lq_start must be in (0, 1] or None, got {lq_start}")
        self.lq_start = lq_start
        self.ema_decay = ema_decay
        self.noise_scheduler = DDPMScheduler.from_config(
            {**self.sd.scheduler_config, "prediction_type": prediction_type}
        )
        self.control_ema = None

    # ------------------------------------------------------------------ the frozen backbone
    @property
    def sd(self) -> FrozenStableDiffusion:
        """The frozen Stable Diffusion (not a registered submodule: never in the state dict)."""
        return self.held("sd")

    @property
    def pixel_multiple(self) -> int:
        """Image sides must be multiples of this (VAE × UNet downsampling); ``restore`` pads to it."""
        return self.sd.vae_scale_factor * self.sd.unet_scale_factor

    # ------------------------------------------------------------------ what a subclass implements
    def condition(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Per-batch inputs of ``predict_noise`` (computed once per batch), with the semantic ``"context"``."""
        raise NotImplementedError

    def predict_noise(self, control: nn.Module, z_t: Tensor, t: Tensor, cond: dict[str, Any]) -> Tensor:
        """The noise (or v) prediction of the frozen UNet steered by ``control`` (live or EMA)."""
        raise NotImplementedError

    def unconditional(self, cond: dict[str, Any]) -> dict[str, Any]:
        """The guidance branch: the same inputs with the semantic context of the empty prompt."""
        context = cond["context"]
        empty = self.sd.encode_text([""] * context.shape[0]).to(context.dtype)
        return {**cond, "context": empty}

    def auxiliary_losses(self, batch: dict[str, Any], cond: dict[str, Any]) -> dict[str, Tensor]:
        """Extra weighted losses added to the diffusion loss (Diff-Restorer's L_deg, L_rec); none by default."""
        return {}

    # ------------------------------------------------------------------ EMA
    def init_ema(self) -> None:
        """Call after building ``self.control``: an EMA copy when ``ema_decay`` is set."""
        self.control_ema = copy.deepcopy(self.control).requires_grad_(False) if self.ema_decay is not None else None

    def update_ema(self) -> None:
        """EMA of the trainable control (``ema_step``)."""
        if self.control_ema is not None and self.ema_decay is not None:
            ema_step(self.control_ema, self.control, self.ema_decay)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.update_ema()

    @property
    def sampling_control(self) -> nn.Module:
        """The EMA control when there is one, else the live one."""
        return self.control_ema if self.control_ema is not None else self.control

    # ------------------------------------------------------------------ training
    def _check_size(self, images: Tensor) -> None:
        if any(side % self.pixel_multiple for side in images.shape[-2:]):
            raise RestoreZooError(
                f"training images must have sides divisible by {self.pixel_multiple} (got "
                f"{tuple(images.shape[-2:])}); set the datamodule's patch_size accordingly"
            )

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """MSE between the prediction on noised HQ latents and the noise (or v) that made them."""
        hq = batch["hq"].float()
        self._check_size(hq)
        generators = sample_generators(batch, hq.device)  # per-sample: DDP and resumes see the same draws
        z0 = self.sd.encode_image(hq, sample=True, generators=generators)
        noise = per_sample_randn(z0.shape, generators, z0.device, z0.dtype)
        num_timesteps = self.noise_scheduler.config.num_train_timesteps
        t = per_sample_randint(0, num_timesteps, z0.shape[0], generators, z0.device)
        z_t = self.noise_scheduler.add_noise(z0, noise, t)
        target = noise if self.prediction_type == "epsilon" else self.noise_scheduler.get_velocity(z0, noise, t)
        cond = self.condition(batch)
        prediction = self.predict_noise(self.control, z_t, t, cond)
        diffusion = F.mse_loss(prediction.float(), target.float())
        extra = self.auxiliary_losses(batch, cond)
        loss = diffusion + sum(extra.values(), torch.zeros((), device=diffusion.device))
        logs = {"diffusion": diffusion.detach(), **{name: value.detach() for name, value in extra.items()}}
        return loss, logs

    # ------------------------------------------------------------------ evaluation
    def autoencoder_round_trip(self, images: Tensor) -> Tensor:
        """The frozen autoencoder's round trip of ``images`` (posterior mean): the best any sample can decode
        to, the "ceiling" column the metric callback computes with it."""
        padded = pad_to_multiple(images.float(), self.sd.vae_scale_factor, "reflect")
        return self.sd.decode_latents(self.sd.encode_image(padded))[..., : images.shape[-2], : images.shape[-1]]

    # ------------------------------------------------------------------ sampling
    def decode(self, latents: Tensor, cond: dict[str, Any], tile_size: int | None = None) -> Tensor:
        """Sampled latents → images in [0, 1]; SD's VAE decoder (Diff-Restorer swaps in its own, given ``cond``)."""
        return self.sd.decode_latents(latents, tile_size=tile_size)

    def guided_prediction(
        self,
        control: nn.Module,
        z_t: Tensor,
        t: Tensor,
        cond: dict[str, Any],
        uncond: dict[str, Any] | None = None,
        scale: float = 1.0,
    ) -> Tensor:
        """``predict_noise`` with classifier-free guidance on the semantic prompt (both branches in one batch)."""
        if uncond is None:
            return self.predict_noise(control, z_t, t, cond)
        t = torch.as_tensor(t, device=z_t.device)
        t_both = torch.cat([t, t]) if t.ndim else t  # per-sample timesteps go with both halves
        both = self.predict_noise(control, torch.cat([z_t, z_t]), t_both, _concat_conditions(cond, uncond))
        cond_out, uncond_out = both.chunk(2)
        return guided(cond_out, uncond_out, scale)

    @torch.no_grad()
    def restore(self, batch: dict[str, Any], decode_tile: int | None = None, **sampling: Any) -> Tensor:
        """Sample HQ latents conditioned on ``batch`` and decode them; B×3×H×W in [0, 1] (any size: padded).
        ``sampling``: the options of :meth:`restored_latents` (steps, guidance_scale, seed, scheduler, progress,
        lq_start, condition_extra)."""
        height, width = batch["lq"].shape[-2:]
        z0, cond = self.restored_latents(batch, **sampling)
        tile = self.decode_tile if decode_tile is None else decode_tile
        images = self.decode(z0, cond, tile_size=tile)
        return images[..., :height, :width]

    @torch.no_grad()
    def restored_latents(
        self,
        batch: dict[str, Any],
        steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        scheduler: str | None = None,
        progress: bool | None = None,
        condition_extra: dict[str, Any] | None = None,
        lq_start: float | None = None,
        **sampling: Any,
    ) -> tuple[Tensor, dict[str, Any]]:
        """The sampled (scaled) latents of ``batch``'s LQ images, padded to the latent grid, and the condition
        they were sampled under: ``restore`` without the decoding (Diff-Restorer's decoder trains on them).

        ``condition_extra`` joins ``condition(batch)``: a subclass's per-call choices that ``predict_noise`` or
        ``decode`` read (Diff-Restorer's decoder), passed as arguments rather than smuggled in the batch.
        """
        if sampling:
            raise TypeError(
                f"{type(self).__name__} sampling takes steps, guidance_scale, seed, scheduler, progress, "
                f"decode_tile, lq_start; got {sorted(sampling)}"
            )
        lq = batch["lq"].float()
        padded = pad_to_multiple(lq, self.pixel_multiple, "reflect")
        cond = {**self.condition({**batch, "lq": padded}), **(condition_extra or {})}
        scale = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        uncond = self.unconditional(cond) if scale != 1.0 else None
        seed = self.seed if seed is None else seed
        generator = torch.Generator(device=lq.device).manual_seed(int(seed)) if seed is not None else None
        noise_scheduler = make_scheduler(
            scheduler or self.scheduler_name, {**self.sd.scheduler_config, "prediction_type": self.prediction_type}
        )
        steps = self.steps if steps is None else int(steps)
        most = int(noise_scheduler.config.num_train_timesteps) - int(noise_scheduler.config.get("steps_offset", 0))
        if not 1 <= steps <= most:  # e.g. DDIM with SD's steps_offset 1 would index past the schedule
            raise RestoreZooError(f"steps must be in [1, {most}] for this noise schedule, got {steps}")
        control = self.sampling_control
        factor = self.sd.vae_scale_factor
        shape = (lq.shape[0], self.sd.unet.config.in_channels, padded.shape[-2] // factor, padded.shape[-1] // factor)

        def denoise(z_t: Tensor, t: Tensor) -> Tensor:
            return self.guided_prediction(control, z_t, t, cond, uncond, scale)

        start = self.lq_start if lq_start is None else lq_start
        z0 = sample_latents(
            denoise,
            noise_scheduler,
            steps,
            shape,
            generator=generator,
            device=lq.device,
            progress=self.progress if progress is None else progress,
            desc=type(self).__name__,
            init_latents=self.sd.encode_image(padded) if start is not None else None,
            strength=1.0 if start is None else float(start),
        )
        return z0, cond


__all__ = ["LatentDiffusionRestorer"]
