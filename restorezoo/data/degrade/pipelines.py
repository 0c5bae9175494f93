"""The single-degradation pipelines over :mod:`restorezoo.data.degrade.ops`, and how they combine.

Each draws its parameters per sample (``base.Degradation``); ``Compose``, ``RandomChoice`` and
``Mixture`` combine them. Names for configs are in ``registry.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from restorezoo.data.degrade import ops
from restorezoo.data.degrade.base import (
    Degradation,
    Params,
    apply_generators,
    as_range,
    choice,
    column,
    draw_seeds,
    randint,
    sampling_device,
    uniform,
)

__all__ = [
    "JPEG",
    "BicubicSR",
    "Blur",
    "Compose",
    "GaussianBlur",
    "GaussianNoise",
    "Haze",
    "Identity",
    "LowLight",
    "Mixture",
    "MotionBlur",
    "Rain",
    "RandomChoice",
]

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
        self.sigma_range = None if sigma_range is None else as_range(sigma_range, "sigma_range")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        if self.sigma_range is not None:
            sigmas = uniform(self.sigma_range, batch_size, generator)
        else:
            sigmas = choice(self.sigmas, batch_size, generator)
        seeds = draw_seeds(batch_size, generator)
        return [{"task": self.task, "sigma": s, "seed": sd} for s, sd in zip(sigmas, seeds)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.add_gaussian_noise(x, column(params, "sigma"), apply_generators(params))


class GaussianBlur(Degradation):
    """Isotropic Gaussian blur (defocus-like), sigma in pixels drawn uniformly from ``sigma``."""

    task = "blur"

    def __init__(self, sigma: float | Sequence[float] = (1.0, 3.0)):
        self.sigma = as_range(sigma, "sigma")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [
            {"task": self.task, "kind": "gaussian", "sigma": s}
            for s in uniform(self.sigma, batch_size, generator)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        sigmas = column(params, "sigma")
        # the kernel size follows the configured range, so a sample blurs the same in any batch
        size = 2 * math.ceil(3 * max([self.sigma[1], *sigmas])) + 1
        return ops.gaussian_blur(x, sigmas, kernel_size=size)


class MotionBlur(Degradation):
    """Linear camera-shake blur: a streak of ``length`` pixels at ``angle`` degrees."""

    task = "blur"

    def __init__(self, length: float | Sequence[float] = (7, 21), angle: float | Sequence[float] = (0, 180)):
        self.length = as_range(length, "length")
        self.angle = as_range(angle, "angle")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        lengths = uniform(self.length, batch_size, generator)
        angles = uniform(self.angle, batch_size, generator)
        return [
            {"task": self.task, "kind": "motion", "length": ln, "angle": an}
            for ln, an in zip(lengths, angles)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        lengths = column(params, "length")
        size = int(max([self.length[1], *lengths])) + 2
        return ops.motion_blur(x, lengths, column(params, "angle"), kernel_size=size)


class LowLight(Degradation):
    """Under-exposure like LOL: gamma darkening, exposure scaling and a little shot-like noise."""

    task = "lowlight"

    def __init__(
        self,
        exposure: float | Sequence[float] = (0.15, 0.45),
        gamma: float | Sequence[float] = (1.2, 2.0),
        noise_sigma: float | Sequence[float] = (1.0, 5.0),
    ):
        self.exposure = as_range(exposure, "exposure")
        self.gamma = as_range(gamma, "gamma")
        self.noise_sigma = as_range(noise_sigma, "noise_sigma")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        exposure = uniform(self.exposure, batch_size, generator)
        gamma = uniform(self.gamma, batch_size, generator)
        noise = uniform(self.noise_sigma, batch_size, generator)
        seeds = draw_seeds(batch_size, generator)
        return [
            {"task": self.task, "exposure": e, "gamma": g, "noise_sigma": s, "seed": sd}
            for e, g, s, sd in zip(exposure, gamma, noise, seeds)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.low_light(
            x,
            column(params, "exposure"),
            column(params, "gamma"),
            column(params, "noise_sigma"),
            apply_generators(params),
        )


class Haze(Degradation):
    """Atmospheric scattering with a depth proxy (see :func:`ops.haze_depth`)."""

    task = "haze"

    def __init__(
        self, beta: float | Sequence[float] = (0.8, 2.0), airlight: float | Sequence[float] = (0.7, 1.0)
    ):
        self.beta = as_range(beta, "beta")
        self.airlight = as_range(airlight, "airlight")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        beta = uniform(self.beta, batch_size, generator)
        airlight = uniform(self.airlight, batch_size, generator)
        return [{"task": self.task, "beta": b, "airlight": a} for b, a in zip(beta, airlight)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.haze(x, column(params, "beta"), column(params, "airlight"))


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
        self.density = as_range(density, "density")
        self.length = as_range(length, "length")
        self.angle = as_range(angle, "angle")
        self.brightness = as_range(brightness, "brightness")

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        density = uniform(self.density, batch_size, generator)
        length = uniform(self.length, batch_size, generator)
        angle = uniform(self.angle, batch_size, generator)
        brightness = uniform(self.brightness, batch_size, generator)
        seeds = draw_seeds(batch_size, generator)
        return [
            {"task": self.task, "density": d, "length": ln, "angle": an, "brightness": br, "seed": sd}
            for d, ln, an, br, sd in zip(density, length, angle, brightness, seeds)
        ]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.rain_streaks(
            x,
            column(params, "density"),
            column(params, "length"),
            column(params, "angle"),
            column(params, "brightness"),
            apply_generators(params),
        )


class JPEG(Degradation):
    """JPEG compression artefacts at an integer IJG quality drawn from ``quality`` (both ends included)."""

    task = "jpeg"

    def __init__(self, quality: int | Sequence[int] = (10, 50)):
        lo, hi = as_range(quality, "quality")
        self.quality = (int(lo), int(hi))

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{"task": self.task, "quality": q} for q in randint(*self.quality, batch_size, generator)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.jpeg(x, [int(q) for q in column(params, "quality")])


class BicubicSR(Degradation):
    """Bicubic down-and-up resampling: the detail loss of ×2/×3/×4 super-resolution at the input size."""

    task = "sr"

    def __init__(self, scales: Sequence[int] = (2, 3, 4)):
        self.scales = tuple(int(s) for s in scales)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        return [{"task": self.task, "scale": s} for s in choice(self.scales, batch_size, generator)]

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        return ops.bicubic_down_up(x, column(params, "scale"))


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
        w = torch.tensor(weights, device=sampling_device(generator))
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
