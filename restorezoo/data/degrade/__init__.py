"""Pure-torch degradations: functional ops and the seeded pipelines that record what they did.

``ops`` holds the batched operators (explicit parameters, no hidden randomness); ``pipelines`` holds
the :class:`Degradation` wrappers that sample parameters with a ``torch.Generator`` and return them
alongside the degraded batch, so prompts can be written from the parameters actually used.
"""

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
from restorezoo.data.degrade.pipelines import (
    DEGRADATIONS,
    JPEG,
    BicubicSR,
    Blur,
    Compose,
    Degradation,
    GaussianBlur,
    GaussianNoise,
    Haze,
    Identity,
    LowLight,
    MotionBlur,
    Rain,
    RandomChoice,
    build_degradation,
)

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
]
