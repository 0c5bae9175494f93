"""Degradations by name: what a config's ``degradation: noise`` (or a dict, or a list) builds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from restorezoo.data.degrade.base import Degradation
from restorezoo.data.degrade.parameterized import Parameterized
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
from restorezoo.data.degrade.realesrgan import RealESRGANTestSet
from restorezoo.data.degrade.weather import Raindrop, Snow
from restorezoo.data.prompts import TASK_ALIASES

DEGRADATIONS: dict[str, type[Degradation]] = {
    "noise": GaussianNoise,
    "blur": Blur,
    "gaussian_blur": GaussianBlur,
    "motion_blur": MotionBlur,
    "lowlight": LowLight,
    "haze": Haze,
    "rain": Rain,
    "jpeg": JPEG,
    "sr": BicubicSR,
    "snow": Snow,
    "raindrop": Raindrop,
    "parameterized": Parameterized,
    "realesrgan": RealESRGANTestSet,
    "clean": Identity,
    "compose": Compose,
    "random_choice": RandomChoice,
}
"""Short names usable in configs; ``compose`` and ``random_choice`` take nested specs."""

_NESTED = {"compose": "steps", "random_choice": "options"}

MIXTURES: dict[str, Callable[[], Degradation]] = {
    "noise+blur": lambda: Mixture("noise+blur", [Blur(), GaussianNoise(sigmas=(50,))]),
    "snow+noise": lambda: Mixture("snow+noise", [Snow(), GaussianNoise(sigmas=(50,))]),
    "raindrop+noise+blur": lambda: Mixture(
        "raindrop+noise+blur", [Raindrop(), Blur(), GaussianNoise(sigmas=(50,))]
    ),
    "jpeg+noise+blur": lambda: Mixture(
        "jpeg+noise+blur", [Blur(), GaussianNoise(sigmas=(50,)), JPEG(quality=10)]
    ),
}
"""Diff-Restorer's mixed test sets by name, at its levels (noise σ 50, JPEG q 10; blur at our defaults)."""

Spec = str | Mapping[str, Any] | Sequence[Any] | Degradation


def build_degradation(spec: Spec) -> Degradation:
    """Build a degradation from a config value.

    ``spec`` is a registered name (``"noise"``; task aliases such as ``"denoise"`` also work), a
    dict ``{"name": ..., **kwargs}``, a list of specs (applied in order, a :class:`Compose`), or an
    already-built :class:`Degradation`. ``compose`` / ``random_choice`` dicts take their steps as
    nested specs under ``"steps"`` / ``"options"``.
    """
    if isinstance(spec, Degradation):
        return spec
    if isinstance(spec, str):
        if spec.strip().lower() in MIXTURES:
            return MIXTURES[spec.strip().lower()]()
        return _lookup(spec)()
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"a degradation dict needs a 'name' key (one of {_valid()}), got {dict(spec)!r}")
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        if str(spec["name"]).strip().lower() in MIXTURES and not kwargs:
            return MIXTURES[str(spec["name"]).strip().lower()]()
        name = _canonical(str(spec["name"]))
        cls = _lookup(name)
        if name in _NESTED:
            key = _NESTED[name]
            if key not in kwargs:
                raise ValueError(f"'{name}' needs its steps under '{key}'")
            steps = kwargs.pop(key)
            if name == "compose":
                return Compose([build_degradation(s) for s in steps], **kwargs)
            return RandomChoice([build_degradation(s) for s in steps], **kwargs)
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"bad arguments for degradation '{name}': {err}") from err
    if isinstance(spec, Sequence):
        return Compose([build_degradation(s) for s in spec])
    raise ValueError(
        f"cannot build a degradation from {spec!r}; use a name (one of {_valid()}), dict or list"
    )


def _valid() -> str:
    return ", ".join(sorted(DEGRADATIONS))


def _canonical(name: str) -> str:
    key = name.strip().lower()
    if key in DEGRADATIONS:
        return key
    return TASK_ALIASES.get(key, key)


def _lookup(name: str) -> type[Degradation]:
    key = _canonical(name)
    if key not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; valid names: {_valid()}")
    return DEGRADATIONS[key]


__all__ = ["DEGRADATIONS", "MIXTURES", "build_degradation"]
