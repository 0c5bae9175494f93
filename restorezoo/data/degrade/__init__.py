"""Pure-torch degradations: functional ops and the seeded pipelines that record what they did.

``ops`` (and ``kernels``, ``weather``) hold the batched operators (explicit parameters, no hidden
randomness); ``base`` the :class:`Degradation` class and its seeded sampling helpers; ``pipelines``,
``parameterized`` (SPIRE), ``weather`` and ``realesrgan`` the concrete degradations that sample their
parameters with a ``torch.Generator`` and return them with the degraded batch, so prompts can be
written from what was done; ``registry`` builds them by name from configs.
"""

from restorezoo.data.degrade.base import Degradation
from restorezoo.data.degrade.kernels import (
    KERNEL_FAMILIES,
    KERNEL_PROBS,
    bivariate_kernel,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    pulse_kernel,
    random_mixed_kernel,
    sinc_kernel,
    usm_sharpen,
)
from restorezoo.data.degrade.ops import (
    add_gaussian_noise,
    bicubic_down_up,
    gaussian_blur,
    haze,
    haze_depth,
    jpeg,
    low_light,
    motion_blur,
    rain_streaks,
)
from restorezoo.data.degrade.parameterized import STAGES, Parameterized, parse_restoration_prompt, restoration_prompt
from restorezoo.data.degrade.pipelines import (
    JPEG,
    BicubicSR,
    Blur,
    Compose,
    GaussianBlur,
    GaussianNoise,
    Haze,
    Identity,
    LowLight,
    Mixture,
    MotionBlur,
    Rain,
    RandomChoice,
)
from restorezoo.data.degrade.realesrgan import RealESRGAN, RealESRGANOptions
from restorezoo.data.degrade.registry import DEGRADATIONS, MIXTURES, build_degradation
from restorezoo.data.degrade.weather import Raindrop, Snow, raindrop, snow

__all__ = [
    "DEGRADATIONS",
    "JPEG",
    "BicubicSR",
    "Blur",
    "Compose",
    "Degradation",
    "GaussianBlur",
    "GaussianNoise",
    "Haze",
    "Identity",
    "LowLight",
    "MotionBlur",
    "Rain",
    "RandomChoice",
    "add_gaussian_noise",
    "bicubic_down_up",
    "build_degradation",
    "gaussian_blur",
    "haze",
    "haze_depth",
    "jpeg",
    "low_light",
    "motion_blur",
    "rain_streaks",
    "MIXTURES",
    "STAGES",
    "Mixture",
    "Parameterized",
    "Raindrop",
    "Snow",
    "parse_restoration_prompt",
    "raindrop",
    "restoration_prompt",
    "snow",
    "KERNEL_FAMILIES",
    "KERNEL_PROBS",
    "RealESRGAN",
    "RealESRGANOptions",
    "bivariate_kernel",
    "generalized_gaussian_kernel",
    "gaussian_kernel",
    "plateau_kernel",
    "pulse_kernel",
    "random_mixed_kernel",
    "sinc_kernel",
    "usm_sharpen",
]
