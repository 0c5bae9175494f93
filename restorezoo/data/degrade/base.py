"""The base of every degradation and the seeded sampling helpers the concrete ones share.

A :class:`Degradation` splits its work in two so prompts can be written from what was done:
``sample_params`` draws one JSON-serialisable dict per sample (on the CPU, from a
``torch.Generator``), and ``apply`` is a pure function of the batch and those dicts. Randomness the
apply step needs (noise fields, rain drops) comes from a ``"seed"`` stored in the dict, so the same
params give the same image on any device and in any batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

Params = dict[str, Any]
Range = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# sampling helpers (CPU, driven by the caller's generator so a seeded datamodule is reproducible)


def sampling_device(generator: torch.Generator | None) -> torch.device:
    """Where ``generator`` draws (the CPU without one)."""
    return generator.device if generator is not None else torch.device("cpu")


def uniform(bounds: Sequence[float], n: int, generator: torch.Generator | None) -> list[float]:
    """``n`` draws from U(lo, hi), rounded to 4 decimals so the recorded params are what was applied."""
    lo, hi = (float(v) for v in bounds)
    if hi < lo:
        raise ValueError(f"range {tuple(bounds)} has its upper bound below its lower bound")
    u = torch.rand(n, generator=generator, device=sampling_device(generator)).cpu()
    return [round(lo + (hi - lo) * float(v), 4) for v in u]


def randint(lo: int, hi: int, n: int, generator: torch.Generator | None) -> list[int]:
    """Integers in [lo, hi], both ends included."""
    return torch.randint(int(lo), int(hi) + 1, (n,), generator=generator, device=sampling_device(generator)).tolist()


def choice(values: Sequence[Any], n: int, generator: torch.Generator | None) -> list[Any]:
    """``n`` uniform picks from ``values``."""
    if len(values) == 0:
        raise ValueError("cannot choose from an empty list")
    return [values[i] for i in randint(0, len(values) - 1, n, generator)]


def draw_seeds(n: int, generator: torch.Generator | None) -> list[int]:
    """``n`` seeds for the apply step's own randomness (stored in the params)."""
    return randint(0, 2**31 - 2, n, generator)


def apply_generators(params: Sequence[Params]) -> list[torch.Generator]:
    """One CPU generator per sample, seeded from its params: the apply step's only randomness."""
    return [torch.Generator().manual_seed(int(p["seed"])) for p in params]


def column(params: Sequence[Params], key: str) -> list[float]:
    """One value per sample from the params, with a clear error when a dict lacks it."""
    try:
        return [float(p[key]) for p in params]
    except KeyError as err:
        raise KeyError(f"degradation params are missing {key!r}: {list(params)[:1]}") from err


def as_range(value: float | Sequence[float], name: str) -> Range:
    """A number or a (low, high) pair as a range."""
    if isinstance(value, int | float):
        return (float(value), float(value))
    if len(value) != 2:
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    return (float(value[0]), float(value[1]))


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


__all__ = [
    "Degradation",
    "Params",
    "Range",
    "apply_generators",
    "as_range",
    "choice",
    "column",
    "draw_seeds",
    "randint",
    "sampling_device",
    "uniform",
]
