"""Sampling the latent-diffusion restorers: diffusers schedulers by name, guidance, the reverse loop.

IR-SDE's own samplers (posterior and Euler-Maruyama of its mean-reverting SDE) live with the SDE in
``irsde.py``; these are the latent-diffusion ones, where the noise schedule is SD's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from restorezoo.errors import RestoreZooError

SCHEDULERS = ("ddim", "ddpm", "unipc", "dpmsolver++", "euler")


def make_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh diffusers scheduler by name over the backbone's noise-schedule ``config``."""
    import diffusers

    classes = {
        "ddim": (diffusers.DDIMScheduler, {}),
        "ddpm": (diffusers.DDPMScheduler, {}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
        "dpmsolver++": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
    }
    if name.lower() not in classes:
        raise RestoreZooError(f"unknown scheduler '{name}' (one of {', '.join(SCHEDULERS)})")
    cls, extra = classes[name.lower()]
    return cls.from_config({**config, **extra})


def guided(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``uncond + scale·(cond − uncond)`` (scale 1 is the conditional prediction)."""
    return uncond + scale * (cond - uncond)


@torch.no_grad()
def sample_latents(
    denoise: Callable[[Tensor, Tensor], Tensor],
    scheduler: Any,
    steps: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    desc: str = "sampling",
) -> Tensor:
    """The reverse diffusion loop: start from scaled Gaussian latents, ``denoise(z_t, t)`` and step to z_0.

    ``denoise`` returns what the scheduler's ``prediction_type`` says (noise or v); guidance happens
    inside it. The initial noise (and stochastic steps) draw from ``generator``: same seed, same output.
    """
    from diffusers.utils.torch_utils import randn_tensor

    device = torch.device(device) if device is not None else torch.device("cpu")
    scheduler.set_timesteps(steps, device=device)
    latents = randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)
    latents = latents * scheduler.init_noise_sigma
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in tqdm(scheduler.timesteps, desc=desc, disable=not progress, leave=False):
        output = denoise(scheduler.scale_model_input(latents, t), t)
        latents = scheduler.step(output.to(latents.dtype), t, latents, **step_kwargs).prev_sample
    return latents


__all__ = ["SCHEDULERS", "guided", "make_scheduler", "sample_latents"]
