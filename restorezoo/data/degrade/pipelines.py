"""Sampling wrappers around :mod:`restorezoo.data.degrade.ops`.

A :class:`Degradation` splits its work in two so prompts can be written from what was done:
``sample_params`` draws one JSON-serialisable dict per sample (on the CPU, from a
``torch.Generator``), and ``apply`` is a pure function of the batch and those dicts. Randomness the
apply step needs (noise fields, rain drops) comes from a ``"seed"`` stored in the dict, so the same
params give the same image on any device and in any batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from restorezoo.data.degrade import ops
from restorezoo.data.prompts import TASK_ALIASES

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
    "MIXTURES",
    "Mixture",
    "MotionBlur",
    "Parameterized",
    "Rain",
    "Raindrop",
    "RandomChoice",
    "Snow",
    "build_degradation",
]

Params = dict[str, Any]
Range = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# sampling helpers (CPU, driven by the caller's generator so a seeded datamodule is reproducible)


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(bounds: Sequence[float], n: int, generator: torch.Generator | None) -> list[float]:
    lo, hi = (float(v) for v in bounds)
    if hi < lo:
        raise ValueError(f"range {tuple(bounds)} has its upper bound below its lower bound")
    u = torch.rand(n, generator=generator, device=_device(generator)).cpu()
    return [round(lo + (hi - lo) * float(v), 4) for v in u]


def _randint(lo: int, hi: int, n: int, generator: torch.Generator | None) -> list[int]:
    """Integers in [lo, hi], both ends included."""
    return torch.randint(int(lo), int(hi) + 1, (n,), generator=generator, device=_device(generator)).tolist()


def _choice(values: Sequence[Any], n: int, generator: torch.Generator | None) -> list[Any]:
    if len(values) == 0:
        raise ValueError("cannot choose from an empty list")
    return [values[i] for i in _randint(0, len(values) - 1, n, generator)]


def _seeds(n: int, generator: torch.Generator | None) -> list[int]:
    return _randint(0, 2**31 - 2, n, generator)


def _generators(params: Sequence[Params]) -> list[torch.Generator]:
    """One CPU generator per sample, seeded from its params: the apply step's only randomness."""
    return [torch.Generator().manual_seed(int(p["seed"])) for p in params]


def _column(params: Sequence[Params], key: str) -> list[float]:
    try:
        return [float(p[key]) for p in params]
    except KeyError as err:
        raise KeyError(f"degradation params are missing {key!r}: {list(params)[:1]}") from err


def _pair(value: float | Sequence[float], name: str) -> Range:
    if isinstance(value, int | float):
        return (float(value), float(value))
    if len(value) != 2:
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    return (float(value[0]), float(value[1]))


# --------------------------------------------------------------------------------------------------
# base


class Degradation:
    """Base class: draw per-sample parameters, then apply them to a B×3×H×W batch in [0, 1]."""

    task: str = "clean"

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        """Draw one JSON-serialisable dict per sample, holding ``"task"`` and every value used."""
        raise NotImplementedError

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        """Degrade ``x`` with the given per-sample parameters; deterministic."""
        raise NotImplementedError

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, list[Params]]:
        """Sample parameters on the CPU with ``generator``, apply them, return ``(degraded, params)``."""
        if x.ndim != 4:
            raise ValueError(f"expected a B×C×H×W batch, got shape {tuple(x.shape)}")
        params = self.sample_params(x.shape[0], generator)
        return self.apply(x, params), params

    def _check_len(self, x: Tensor, params: Sequence[Params]) -> None:
        if len(params) != x.shape[0]:
            raise ValueError(f"{type(self).__name__}: {len(params)} params for a batch of {x.shape[0]}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Identity(Degradation):
    """Leave the image untouched (task ``"clean"``): teaches all-in-one models not to over-restore."""

    task = "clean"

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{"task": self.task} for _ in range(batch_size)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return x.clone()


class GaussianNoise(Degradation):
    """Additive white Gaussian noise, sigma on the 0-255 scale.

    By default sigma is one of the standard benchmark levels (15, 25, 50, as in CBSD68 denoising);
    ``sigma_range=(lo, hi)`` draws it uniformly instead (blind denoising).
    """

    task = "noise"

    def __init__(self, sigmas: Sequence[float] = (15, 25, 50), sigma_range: Sequence[float] | None = None):
        self.sigmas = tuple(float(s) for s in sigmas)
        self.sigma_range = None if sigma_range is None else _pair(sigma_range, "sigma_range")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        if self.sigma_range is not None:
            sigmas = _uniform(self.sigma_range, batch_size, generator)
        else:
            sigmas = _choice(self.sigmas, batch_size, generator)
        seeds = _seeds(batch_size, generator)
        return [{"task": self.task, "sigma": s, "seed": sd} for s, sd in zip(sigmas, seeds)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.add_gaussian_noise(x, _column(params, "sigma"), _generators(params))


class GaussianBlur(Degradation):
    """Isotropic Gaussian blur (defocus-like), sigma in pixels drawn uniformly from ``sigma``."""

    task = "blur"

    def __init__(self, sigma: float | Sequence[float] = (1.0, 3.0)):
        self.sigma = _pair(sigma, "sigma")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [
            {"task": self.task, "kind": "gaussian", "sigma": s}
            for s in _uniform(self.sigma, batch_size, generator)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        sigmas = _column(params, "sigma")
        # the kernel size follows the configured range, so a sample blurs the same in any batch
        size = 2 * math.ceil(3 * max([self.sigma[1], *sigmas])) + 1
        return ops.gaussian_blur(x, sigmas, kernel_size=size)


class MotionBlur(Degradation):
    """Linear camera-shake blur: a streak of ``length`` pixels at ``angle`` degrees."""

    task = "blur"

    def __init__(self, length: float | Sequence[float] = (7, 21), angle: float | Sequence[float] = (0, 180)):
        self.length = _pair(length, "length")
        self.angle = _pair(angle, "angle")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        lengths = _uniform(self.length, batch_size, generator)
        angles = _uniform(self.angle, batch_size, generator)
        return [
            {"task": self.task, "kind": "motion", "length": ln, "angle": an}
            for ln, an in zip(lengths, angles)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        lengths = _column(params, "length")
        size = int(max([self.length[1], *lengths])) + 2
        return ops.motion_blur(x, lengths, _column(params, "angle"), kernel_size=size)


class LowLight(Degradation):
    """Under-exposure like LOL: gamma darkening, exposure scaling and a little shot-like noise."""

    task = "lowlight"

    def __init__(
        self,
        exposure: float | Sequence[float] = (0.15, 0.45),
        gamma: float | Sequence[float] = (1.2, 2.0),
        noise_sigma: float | Sequence[float] = (1.0, 5.0),
    ):
        self.exposure = _pair(exposure, "exposure")
        self.gamma = _pair(gamma, "gamma")
        self.noise_sigma = _pair(noise_sigma, "noise_sigma")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        exposure = _uniform(self.exposure, batch_size, generator)
        gamma = _uniform(self.gamma, batch_size, generator)
        noise = _uniform(self.noise_sigma, batch_size, generator)
        seeds = _seeds(batch_size, generator)
        return [
            {"task": self.task, "exposure": e, "gamma": g, "noise_sigma": s, "seed": sd}
            for e, g, s, sd in zip(exposure, gamma, noise, seeds)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.low_light(
            x,
            _column(params, "exposure"),
            _column(params, "gamma"),
            _column(params, "noise_sigma"),
            _generators(params),
        )


class Haze(Degradation):
    """Atmospheric scattering with a depth proxy (see :func:`ops.haze_depth`)."""

    task = "haze"

    def __init__(
        self, beta: float | Sequence[float] = (0.8, 2.0), airlight: float | Sequence[float] = (0.7, 1.0)
    ):
        self.beta = _pair(beta, "beta")
        self.airlight = _pair(airlight, "airlight")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        beta = _uniform(self.beta, batch_size, generator)
        airlight = _uniform(self.airlight, batch_size, generator)
        return [{"task": self.task, "beta": b, "airlight": a} for b, a in zip(beta, airlight)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.haze(x, _column(params, "beta"), _column(params, "airlight"))


class Rain(Degradation):
    """Synthetic rain streaks, near-vertical by default (angle 90 = straight down)."""

    task = "rain"

    def __init__(
        self,
        density: float | Sequence[float] = (0.002, 0.008),
        length: float | Sequence[float] = (10, 30),
        angle: float | Sequence[float] = (70, 110),
        brightness: float | Sequence[float] = (0.5, 0.9),
    ):
        self.density = _pair(density, "density")
        self.length = _pair(length, "length")
        self.angle = _pair(angle, "angle")
        self.brightness = _pair(brightness, "brightness")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        density = _uniform(self.density, batch_size, generator)
        length = _uniform(self.length, batch_size, generator)
        angle = _uniform(self.angle, batch_size, generator)
        brightness = _uniform(self.brightness, batch_size, generator)
        seeds = _seeds(batch_size, generator)
        return [
            {"task": self.task, "density": d, "length": ln, "angle": an, "brightness": br, "seed": sd}
            for d, ln, an, br, sd in zip(density, length, angle, brightness, seeds)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.rain_streaks(
            x,
            _column(params, "density"),
            _column(params, "length"),
            _column(params, "angle"),
            _column(params, "brightness"),
            _generators(params),
        )


class JPEG(Degradation):
    """JPEG compression artefacts at an integer IJG quality drawn from ``quality`` (both ends included)."""

    task = "jpeg"

    def __init__(self, quality: int | Sequence[int] = (10, 50)):
        lo, hi = _pair(quality, "quality")
        self.quality = (int(lo), int(hi))

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{"task": self.task, "quality": q} for q in _randint(*self.quality, batch_size, generator)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.jpeg(x, [int(q) for q in _column(params, "quality")])


class BicubicSR(Degradation):
    """Bicubic down-and-up resampling: the detail loss of ×2/×3/×4 super-resolution at the input size."""

    task = "sr"

    def __init__(self, scales: Sequence[int] = (2, 3, 4)):
        self.scales = tuple(int(s) for s in scales)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{"task": self.task, "scale": s} for s in _choice(self.scales, batch_size, generator)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.bicubic_down_up(x, _column(params, "scale"))


# --------------------------------------------------------------------------------------------------
# combinators


class RandomChoice(Degradation):
    """Pick one option per sample (weighted), e.g. a different degradation for every image of a batch.

    Each sample's params are its option's params plus ``"choice"``, the option's index, so
    :meth:`apply` can send every sample back to the option that drew it.
    """

    def __init__(self, options: Sequence[Degradation], weights: Sequence[float] | None = None):
        if not options:
            raise ValueError("RandomChoice needs at least one option")
        if weights is not None and (len(weights) != len(options) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"weights {weights!r} must be {len(options)} non-negative numbers, not all zero")
        self.options = list(options)
        self.weights = None if weights is None else [float(w) for w in weights]
        tasks = list(dict.fromkeys(op.task for op in self.options))
        self.task = tasks[0] if len(tasks) == 1 else "|".join(tasks)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        weights = self.weights if self.weights is not None else [1.0] * len(self.options)
        w = torch.tensor(weights, device=_device(generator))
        picks = torch.multinomial(w, batch_size, replacement=True, generator=generator).tolist()
        out: list[Params] = [{} for _ in range(batch_size)]
        for k, option in enumerate(self.options):
            idx = [i for i, p in enumerate(picks) if p == k]
            if not idx:
                continue
            for i, p in zip(idx, option.sample_params(len(idx), generator)):
                out[i] = {**p, "choice": k}
        return out

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        out = x.clone()
        picks = [int(p["choice"]) for p in params]
        for k, option in enumerate(self.options):
            idx = [i for i, p in enumerate(picks) if p == k]
            if idx:
                sub = [{key: v for key, v in params[i].items() if key != "choice"} for i in idx]
                rows = torch.tensor(idx, device=x.device)
                out[rows] = option.apply(x[rows], sub).to(out.dtype)
        return out


class Blur(RandomChoice):
    """Gaussian or motion blur, chosen per sample with probability ``1 − motion_prob`` / ``motion_prob``."""

    def __init__(
        self,
        sigma: float | Sequence[float] = (1.0, 3.0),
        length: float | Sequence[float] = (7, 21),
        angle: float | Sequence[float] = (0, 180),
        motion_prob: float = 0.5,
    ):
        if not 0 <= motion_prob <= 1:
            raise ValueError(f"motion_prob must be in [0, 1], got {motion_prob}")
        super().__init__([GaussianBlur(sigma), MotionBlur(length, angle)], [1 - motion_prob, motion_prob])


class Compose(Degradation):
    """Apply degradations in order (e.g. blur, then noise, then JPEG), as real pipelines stack them.

    A sample's params join the task names with ``"+"`` (``"blur+noise"``; ``"clean"`` steps are left
    out of the name unless every step is clean) and keep each step's params under its own task
    name, numbered when a task repeats (``"noise"``, ``"noise_2"``).
    """

    def __init__(self, steps: Sequence[Degradation]):
        if not steps:
            raise ValueError("Compose needs at least one degradation")
        self.steps = list(steps)
        self.task = _join_tasks([op.task for op in self.steps])

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        per_op = [op.sample_params(batch_size, generator) for op in self.steps]
        out = []
        for i in range(batch_size):
            steps = [p[i] for p in per_op]
            merged: Params = {"task": _join_tasks([s["task"] for s in steps])}
            for s in steps:
                key, n = s["task"], 2
                while key in merged:
                    key, n = f"{s['task']}_{n}", n + 1
                merged[key] = s
            out.append(merged)
        return out

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        steps = [[v for v in p.values() if isinstance(v, Mapping)] for p in params]
        if any(len(s) != len(self.steps) for s in steps):
            raise ValueError(
                f"Compose of {len(self.steps)} steps got params with a different number of steps"
            )
        for j, op in enumerate(self.steps):
            x = op.apply(x, [dict(s[j]) for s in steps])
        return x


def _join_tasks(tasks: Sequence[str]) -> str:
    real = [t for t in tasks if t != "clean"]
    return "+".join(real) if real else "clean"


class Mixture(Compose):
    """A :class:`Compose` labelled with a fixed mixture name (``"noise+blur"``) whatever its step order.

    Diff-Restorer names its mixed test sets by their parts ("noise+blur", "raindrop+noise+blur");
    the steps still run in physical order (scene, then optics, then sensor, then compression).
    """

    def __init__(self, name: str, steps: Sequence[Degradation]):
        super().__init__(steps)
        self.task = name

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{**p, "task": self.task} for p in super().sample_params(batch_size, generator)]


# --------------------------------------------------------------------------------------------------
# registry

# Imported here, not at the top: these modules subclass Degradation from this one.
from restorezoo.data.degrade.parameterized import Parameterized  # noqa: E402
from restorezoo.data.degrade.weather import Raindrop, Snow  # noqa: E402

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
