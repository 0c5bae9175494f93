"""Pure-torch degradations: functional ops and the seeded pipelines that record what they did.

``ops`` (and ``kernels``, ``weather``) hold the batched operators (explicit parameters, no hidden
randomness); ``base`` the :class:`Degradation` class and its seeded sampling helpers; ``pipelines``,
``parameterized`` (SPIRE), ``weather`` and ``realesrgan`` the concrete degradations that sample their
parameters with a ``torch.Generator`` and return them with the degraded batch, so prompts can be
written from what was done; ``registry`` builds them by name from configs.

Imports are lazy (``restorezoo.lazy``): naming one degradation imports only its module.
"""

from __future__ import annotations

from restorezoo.lazy import lazy_exports

_MODULES = {
    "restorezoo.data.degrade.base": ("Degradation",),
    "restorezoo.data.degrade.kernels": ("KERNEL_FAMILIES", "KERNEL_PROBS", "bivariate_kernel", "gaussian_kernel", "generalized_gaussian_kernel", "plateau_kernel", "pulse_kernel", "random_mixed_kernel", "sinc_kernel", "usm_sharpen"),
    "restorezoo.data.degrade.ops": ("add_gaussian_noise", "bicubic_down_up", "gaussian_blur", "haze", "haze_depth", "jpeg", "low_light", "motion_blur", "rain_streaks"),
    "restorezoo.data.degrade.parameterized": ("Parameterized", "STAGES", "parse_restoration_prompt", "restoration_prompt"),
    "restorezoo.data.degrade.pipelines": ("BicubicSR", "Blur", "Compose", "GaussianBlur", "GaussianNoise", "Haze", "Identity", "JPEG", "LowLight", "Mixture", "MotionBlur", "Rain", "RandomChoice"),
    "restorezoo.data.degrade.realesrgan": ("RealESRGAN", "RealESRGANOptions"),
    "restorezoo.data.degrade.registry": ("DEGRADATIONS", "MIXTURES", "build_degradation"),
    "restorezoo.data.degrade.weather": ("Raindrop", "Snow", "raindrop", "snow"),
}
_EXPORTS, __getattr__ = lazy_exports(__name__, _MODULES)

__all__ = sorted(_EXPORTS)


def __dir__() -> list[str]:
    return __all__
