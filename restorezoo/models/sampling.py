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
    init_latents: Tensor | None = None,
    strength: float = 1.0,
) -> Tensor:
    """The reverse diffusion loop: start from scaled Gaussian latents, ``denoise(z_t, t)`` and step to z_0.

    ``denoise`` returns what the scheduler's ``prediction_type`` says (noise or v); guidance happens
    inside it. The initial noise (and stochastic steps) draw from ``generator``: same seed, same output.
    With ``init_latents`` and ``strength`` < 1 the loop starts instead from ``init_latents`` noised to
    the ``round(steps·strength)``-th last timestep and runs only those steps (SDEdit / diffusers' img2img).
    """
    from diffusers.utils.torch_utils import randn_tensor

    if not 0.0 < strength <= 1.0:
        raise RestoreZooError(f"strength must be in (0, 1], got {strength}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    scheduler.set_timesteps(steps, device=device)
    noise = randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)
    timesteps = scheduler.timesteps
    if init_latents is None or strength >= 1.0:
        latents = noise * scheduler.init_noise_sigma
    else:
        run = max(1, min(steps, round(steps * strength)))
        begin = (steps - run) * getattr(scheduler, "order", 1)
        timesteps = timesteps[begin:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        latents = scheduler.add_noise(init_latents.to(device=device, dtype=dtype), noise, timesteps[:1])
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in tqdm(timesteps, desc=desc, disable=not progress, leave=False):
        output = denoise(scheduler.scale_model_input(latents, t), t)
        latents = scheduler.step(output.to(latents.dtype), t, latents, **step_kwargs).prev_sample
    return latents


__all__ = ["SCHEDULERS", "guided", "make_scheduler", "sample_latents"]
