"""IR-SDE, the mean-reverting SDE restorer of DA-CLIP's universal image restoration (Luo et al., ICLR 2024).

The degraded image ``lq`` is the mean μ of an Ornstein–Uhlenbeck process
``dx = θ_t (μ − x) dt + σ_t dw``: run forward, a clean image drifts to "lq plus noise of std σ_max";
run backward with a learned score, "lq plus noise" drifts back to a clean image. A conditional U-Net
predicts the noise of a state x_t; the score is ``−noise / σ̄_t``. Training matches the reverse-SDE
step built from that score to the maximum-likelihood ("optimal") reverse step x*_{t−1}, which has a
closed form given x_t and the clean image.

DA-CLIP steers the U-Net: its degradation embedding picks a soft mixture of a learned prompt that is
added to the time embedding, and its content embedding is cross-attended at the deepest level and the
middle block. Module and parameter names follow the released ``universal-ir.pth`` exactly (see
tests/specs/irsde_official_unet_keys.json), so the release loads with ``strict=True``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from restorezoo.models.base import (
    RestorationModule,
    ema_decay_at,
    ema_step,
    per_sample_randint,
    per_sample_randn,
    sample_generators,
)
from restorezoo.models.daclip import DACLIPConditioned
from restorezoo.tiling import pad_to_multiple
from restorezoo.weights import load_matching, load_state_dict, resolve_weights

SAMPLERS = ("posterior", "euler")
"""``posterior``: the release's sampler (x0 estimate → posterior mean and std of the OU bridge);
``euler``: Euler–Maruyama on the reverse-time SDE."""

NoiseModel = Callable[[Tensor, Tensor], Tensor]
"""``model(x_t, t) → predicted noise`` (or x0), t a float tensor of shape B (the release passes floats)."""


# ====================================================================== the SDE
THETA_SCHEDULES = ("cosine", "linear", "constant")
"""θ schedules of the release's ``IRSDE`` (``schedule:`` in its options)."""

FEWER_STEPS = ("reschedule", "stride")
"""How a chain shorter than T runs. ``reschedule`` (the release's ``sample_T``): a new SDE of ``steps``
steps, the network called at time ``t·T/steps``. ``stride`` (restorezoo's): a subset of the T-step
grid, each jump taken with the exact OU-bridge posterior of that stride."""

PARAMETERIZATIONS = ("noise", "x0")
"""What the U-Net predicts. ``noise`` (the paper, the release's ``score_fn``): score = −noise/σ̄_t.
``x0`` (the release's ``score_fn_``): the clean image; score = −(x_t − E[x_t | x0]) / σ̄_t²."""


def theta_schedule(name: str, T: int) -> Tensor:
    """θ_0..θ_T (T + 1 values, float32) exactly as the release builds them.

    ``cosine`` is 1 − ᾱ_t of Nichol & Dhariwal's cosine ᾱ over T + 2 steps, truncated at both ends
    (not DDPM's per-step β = 1 − ᾱ_t/ᾱ_{t−1}); ``linear`` is DDPM's β range rescaled to T + 1 steps.
    """
    if name == "cosine":
        n, s = T + 2, 0.008
        x = torch.linspace(0, n, n + 1, dtype=torch.float32)
        alphas_bar = torch.cos(((x / n) + s) / (1 + s) * math.pi * 0.5) ** 2
        return 1 - (alphas_bar / alphas_bar[0])[1:-1]
    if name == "linear":
        scale = 1000 / (T + 1)
        return torch.linspace(scale * 1e-4, scale * 0.02, T + 1, dtype=torch.float32)
    if name == "constant":
        return torch.ones(T + 1, dtype=torch.float32)
    raise ValueError(f"unknown θ schedule '{name}' (one of {', '.join(THETA_SCHEDULES)})")


class MeanRevertingSDE:
    """The mean-reverting SDE ``dx = θ_t (μ − x) dt + σ_t dw`` with ``σ_t² = 2 σ_max² θ_t`` (IR-SDE §3).

    Because σ_t²/θ_t is constant, the forward marginal is closed-form:
    ``x_t ~ N(μ + (x0 − μ) e^{−θ̄_t dt}, σ̄_t²)``, ``σ̄_t² = σ_max² (1 − e^{−2 θ̄_t dt})``, with
    θ̄_t = Σ_{1≤i≤t} θ_i and ``dt = −log(eps) / θ̄_T``: at t = T a fraction ``eps`` of x0 − μ is left.
    The tables (θ, σ, θ̄, σ̄, dt) are the release's to float32 rounding, and every one-step formula is
    written as the release writes it; μ (the LQ image) is an argument of every method.

    Args:
        T: number of steps (paper: 100).
        max_sigma: σ_max, the stationary noise std (paper: 50/255); a value ≥ 1 is read on the
            0–255 scale, as the release reads it.
        eps: fraction of x0 − μ left at t = T (paper: 0.005).
        schedule: θ schedule, one of ``THETA_SCHEDULES`` (paper: cosine).
    """

    def __init__(
        self, T: int = 100, max_sigma: float = 50 / 255, eps: float = 0.005, schedule: str = "cosine"
    ):
        max_sigma = max_sigma / 255 if max_sigma >= 1 else max_sigma
        thetas = theta_schedule(schedule, T)
        theta_bars = torch.cumsum(thetas, dim=0) - thetas[0]  # θ_0 is not part of any step
        dt = -1 / theta_bars[-1] * math.log(eps)  # a float32 tensor, as in the release
        self.T, self.max_sigma, self.eps, self.schedule = T, max_sigma, eps, schedule
        self.dt = float(dt)
        self.thetas = thetas
        self.sigmas = torch.sqrt(max_sigma**2 * 2 * thetas)
        self.theta_bars = theta_bars
        self.sigma_bars = torch.sqrt(max_sigma**2 * (1 - torch.exp(-2 * theta_bars * dt)))
        self._rescheduled: dict[int, MeanRevertingSDE] = {}

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _at(values: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        """values[t] shaped to broadcast over a B×C×H×W ``like``."""
        index = torch.as_tensor(t, device=values.device).long().reshape(-1)
        out = values[index].to(device=like.device, dtype=like.dtype)
        return out.reshape(-1, *([1] * (like.ndim - 1)))

    def _decay(self, t: Tensor | int, s: Tensor | int, like: Tensor) -> Tensor:
        """e^{−(θ̄_t − θ̄_s) dt}: how much of x_s − μ survives until t."""
        gap = self._at(self.theta_bars, t, like) - self._at(self.theta_bars, s, like)
        return torch.exp(-gap * self.dt)

    def _step_decay(self, t: Tensor | int, s: Tensor | int | None, like: Tensor) -> Tensor:
        """e^{−θ_t dt} for the one-step jump t → t − 1 (the release's ``A``), the stride's decay otherwise."""
        if s is None:
            return torch.exp(-self._at(self.thetas, t, like) * self.dt)
        return self._decay(t, s, like)

    # ------------------------------------------------------------------ forward process
    def marginal_mean(self, x0: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        """E[x_t | x0] = μ + (x0 − μ) e^{−θ̄_t dt} (the release's ``mu_bar``)."""
        return mu + (x0 - mu) * torch.exp(-self._at(self.theta_bars, t, x0) * self.dt)

    def marginal_std(self, t: Tensor | int, like: Tensor) -> Tensor:
        """σ̄_t = σ_max sqrt(1 − e^{−2 θ̄_t dt})."""
        return self._at(self.sigma_bars, t, like)

    def forward_state(
        self, x0: Tensor, mu: Tensor, t: Tensor | int, noise: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sample x_t from the forward marginal; returns (x_t, the standard-normal noise used)."""
        if noise is None:
            noise = torch.randn_like(x0)
        return noise * self.marginal_std(t, x0) + self.marginal_mean(x0, mu, t), noise

    def noise_state(self, lq: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The sampler's start x_T = lq + σ_max·z (the stationary law of the SDE)."""
        return lq + _randn(lq, generator) * self.max_sigma

    # ------------------------------------------------------------------ scores
    def score_from_noise(self, noise: Tensor, t: Tensor | int) -> Tensor:
        """∇ log p_t(x_t | x0) = −noise / σ̄_t for x_t = mean + σ̄_t·noise."""
        return -noise / self.marginal_std(t, noise)

    def score_from_x0(self, x_t: Tensor, x0: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        """∇ log p_t(x_t | x0) = −(x_t − E[x_t | x0]) / σ̄_t² (the release's ``score_fn_``)."""
        return -(x_t - self.marginal_mean(x0, mu, t)) / self.marginal_std(t, x_t) ** 2

    def x0_from_noise(self, x_t: Tensor, noise: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        """Invert the forward marginal: the clean image implied by x_t and its noise."""
        growth = torch.exp(self._at(self.theta_bars, t, x_t) * self.dt)
        return (x_t - mu - self.marginal_std(t, x_t) * noise) * growth + mu

    def score(self, output: Tensor, x_t: Tensor, mu: Tensor, t: Tensor | int, parameterization: str) -> Tensor:
        """The score implied by a network ``output`` under ``parameterization`` (see ``PARAMETERIZATIONS``)."""
        if parameterization == "x0":
            return self.score_from_x0(x_t, output, mu, t)
        return self.score_from_noise(output, t)

    def x0(self, output: Tensor, x_t: Tensor, mu: Tensor, t: Tensor | int, parameterization: str) -> Tensor:
        """The clean-image estimate implied by a network ``output``."""
        return output if parameterization == "x0" else self.x0_from_noise(x_t, output, mu, t)

    # ------------------------------------------------------------------ reverse steps
    def reverse_step_mean(
        self, x_t: Tensor, score: Tensor, mu: Tensor, t: Tensor | int, s: Tensor | int | None = None
    ) -> Tensor:
        """Noise-free Euler step of the reverse SDE from t to t − 1 (or to s < t, strided).

        One step: the release's ``x_t − (θ_t (μ − x_t) − σ_t² score) dt``. Strided: θ_t dt becomes
        (θ̄_t − θ̄_s) dt and σ_t² dt becomes 2σ_max² (θ̄_t − θ̄_s) dt.
        """
        if s is None:
            theta, sigma = self._at(self.thetas, t, x_t), self._at(self.sigmas, t, x_t)
            return x_t - (theta * (mu - x_t) - sigma**2 * score) * self.dt
        gap = (self._at(self.theta_bars, t, x_t) - self._at(self.theta_bars, s, x_t)) * self.dt
        return x_t - (gap * (mu - x_t) - 2 * self.max_sigma**2 * gap * score)

    def optimal_reverse_step(
        self, x_t: Tensor, x0: Tensor, mu: Tensor, t: Tensor | int, s: Tensor | int | None = None
    ) -> Tensor:
        """x*_s = argmax p(x_s | x_t, x0) (IR-SDE Prop. 3.1; s = t − 1 unless given), the OU bridge's mean.

        With a = e^{−(θ̄_t−θ̄_s)dt}, b = e^{−θ̄_t dt}, c = e^{−θ̄_s dt}:
        ``x*_s − μ = a(1 − c²)/(1 − b²)·(x_t − μ) + c(1 − a²)/(1 − b²)·(x0 − μ)``.
        """
        a = self._step_decay(t, s, x_t)
        b = torch.exp(-self._at(self.theta_bars, t, x_t) * self.dt)
        c = torch.exp(-self._at(self.theta_bars, _minus_one(t) if s is None else s, x_t) * self.dt)
        return (a * (1 - c**2) / (1 - b**2)) * (x_t - mu) + (c * (1 - a**2) / (1 - b**2)) * (x0 - mu) + mu

    def posterior_std(self, t: Tensor | int, like: Tensor, s: Tensor | int | None = None) -> Tensor:
        """Std of p(x_s | x_t, x0): σ_max sqrt((1 − a²)(1 − c²)/(1 − b²)).

        At s = 0 the variance is 0; the release floors it at 1e-20·dt (so its last posterior step
        still draws, with a std of ~1e-10), and so does this.
        """
        a2 = self._step_decay(t, s, like) ** 2
        b2 = torch.exp(-2 * self._at(self.theta_bars, t, like) * self.dt)
        c2 = torch.exp(-2 * self._at(self.theta_bars, _minus_one(t) if s is None else s, like) * self.dt)
        variance = (1 - a2) * (1 - c2) / (1 - b2)
        log_variance = torch.log(torch.clamp(variance, min=1e-20 * self.dt))
        return (0.5 * log_variance).exp() * self.max_sigma

    # ------------------------------------------------------------------ samplers
    def timesteps(self, steps: int | None = None) -> list[int]:
        """Descending times T = t_0 > … > t_n = 0 of a strided chain of ``steps`` steps."""
        steps = self.T if steps is None else int(steps)
        if not 1 <= steps <= self.T:
            raise ValueError(f"steps must be in [1, {self.T}], got {steps}")
        grid = torch.linspace(self.T, 0, steps + 1, dtype=torch.float64).round().long().tolist()
        return list(dict.fromkeys(grid))

    def rescheduled(self, steps: int) -> MeanRevertingSDE:
        """The release's ``sample_T`` SDE: the same σ_max, eps and schedule over ``steps`` steps (cached)."""
        if steps not in self._rescheduled:
            self._rescheduled[steps] = MeanRevertingSDE(steps, self.max_sigma, self.eps, self.schedule)
        return self._rescheduled[steps]

    @torch.no_grad()
    def sample(
        self,
        model: NoiseModel,
        x_T: Tensor,
        mu: Tensor,
        steps: int | None = None,
        sampler: str = "posterior",
        generator: torch.Generator | None = None,
        progress: bool = True,
        clip_x0: bool = False,
        fewer_steps: str = "reschedule",
        parameterization: str = "noise",
    ) -> Tensor:
        """Run the reverse process from x_T to x_0 with ``model(x_t, t) → noise`` (or x0, see ``parameterization``).

        ``posterior`` (the release's ``reverse_posterior``): estimate x0, then draw from the OU-bridge
        posterior p(x_{t−1} | x_t, x0), its last draw included. ``euler`` (``reverse_sde``):
        Euler–Maruyama on the reverse SDE, noise on every step including the last. With the defaults,
        one step per t and the same draws, the chain is the release's. ``fewer_steps`` says how a chain
        of ``steps < T`` runs (see ``FEWER_STEPS``); ``clip_x0`` clamps the x0 estimate to [0, 1]
        (restorezoo's option, DDPM's "clip denoised"; the release does not). ``t`` reaches the model as
        a float tensor of shape B, as the release passes it.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler '{sampler}' (one of {', '.join(SAMPLERS)})")
        if fewer_steps not in FEWER_STEPS:
            raise ValueError(f"unknown fewer_steps '{fewer_steps}' (one of {', '.join(FEWER_STEPS)})")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization '{parameterization}' (one of {', '.join(PARAMETERIZATIONS)})")
        steps = self.T if steps is None else int(steps)
        if not 1 <= steps <= self.T:
            raise ValueError(f"steps must be in [1, {self.T}], got {steps}")
        if fewer_steps == "stride" and steps < self.T:
            return self._sample_strided(model, x_T, mu, steps, sampler, generator, progress, clip_x0, parameterization)
        sde = self if steps == self.T else self.rescheduled(steps)
        time_scale = self.T / steps
        x, batch = x_T, x_T.shape[0]
        for t in tqdm(range(steps, 0, -1), desc=f"IR-SDE {sampler}", disable=not progress, leave=False):
            model_time = torch.full((batch,), t * time_scale, device=x.device, dtype=torch.float32)
            output = model(x, model_time).to(x.dtype)
            if sampler == "posterior":
                x0 = sde.x0(output, x, mu, t, parameterization)
                if clip_x0:
                    x0 = x0.clamp(0, 1)
                x = sde.optimal_reverse_step(x, x0, mu, t) + sde.posterior_std(t, x) * _randn(x, generator)
            else:
                if clip_x0:
                    output = sde.x0(output, x, mu, t, parameterization).clamp(0, 1)
                    score = sde.score_from_x0(x, output, mu, t)
                else:
                    score = sde.score(output, x, mu, t, parameterization)
                dispersion = float(sde.sigmas[t]) * (_randn(x, generator) * math.sqrt(sde.dt))
                x = sde.reverse_step_mean(x, score, mu, t) - dispersion
        return x

    def _sample_strided(
        self,
        model: NoiseModel,
        x: Tensor,
        mu: Tensor,
        steps: int,
        sampler: str,
        generator: torch.Generator | None,
        progress: bool,
        clip_x0: bool,
        parameterization: str,
    ) -> Tensor:
        """restorezoo's strided chain on the T-step grid (exact posterior per stride; no draw at s = 0)."""
        times = self.timesteps(steps)
        pairs = list(zip(times[:-1], times[1:]))
        for t, s in tqdm(pairs, desc=f"IR-SDE {sampler} (strided)", disable=not progress, leave=False):
            model_time = torch.full((x.shape[0],), float(t), device=x.device, dtype=torch.float32)
            output = model(x, model_time).to(x.dtype)
            x0 = self.x0(output, x, mu, t, parameterization)
            if clip_x0:
                x0 = x0.clamp(0, 1)
            if sampler == "posterior":
                x = self.optimal_reverse_step(x, x0, mu, t, s)
            else:
                x = self.reverse_step_mean(x, self.score_from_x0(x, x0, mu, t), mu, t, s)
            if s > 0:
                std = self.posterior_std(t, x, s) if sampler == "posterior" else self._euler_std(t, s, x)
                x = x + std * _randn(x, generator)
        return x

    def _euler_std(self, t: int, s: int, like: Tensor) -> Tensor:
        gap = (self._at(self.theta_bars, t, like) - self._at(self.theta_bars, s, like)) * self.dt
        return self.max_sigma * torch.sqrt(2 * gap)


def _minus_one(t: Tensor | int) -> Tensor | int:
    return t - 1


def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

# ====================================================================== the conditional U-Net
def default_conv(dim_in: int, dim_out: int, kernel_size: int = 3, bias: bool = False) -> nn.Conv2d:
    """The release's bias-free 'same' convolution."""
    return nn.Conv2d(dim_in, dim_out, kernel_size, padding=kernel_size // 2, bias=bias)


class SinusoidalPosEmb(nn.Module):
    """Transformer-style sinusoidal embedding of the (integer) diffusion time."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        angles = t.float()[:, None] * freqs[None]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class LayerNorm(nn.Module):
    """Channel LayerNorm over B×C×H×W with a gain ``g`` only (no bias), as in the release."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class PreNorm(nn.Module):
    """``fn(norm(x), ...)``."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.norm = LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.fn(self.norm(x), context)


class Residual(nn.Module):
    """``fn(x, ...) + x``."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.fn(x, context) + x


class Block(nn.Module):
    """Conv 3×3 → optional time modulation ``x(1 + scale) + shift`` → SiLU."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = default_conv(dim_in, dim_out)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, scale_shift: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = self.proj(x)
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResBlock(nn.Module):
    """Two conv blocks, the first modulated by the (time + prompt) embedding, plus a 1×1 skip."""

    def __init__(self, dim_in: int, dim_out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out * 2))
        self.block1 = Block(dim_in, dim_out)
        self.block2 = Block(dim_out, dim_out)
        self.res_conv = default_conv(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        scale_shift = self.mlp(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.block2(self.block1(x, scale_shift))
        return h + self.res_conv(x)


class LinearAttention(nn.Module):
    """Linear (channel) attention: softmax over features for q, over positions for k; cost linear in H·W."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.heads = heads
        self.scale = dim_head**-0.5
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), LayerNorm(dim))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, _, h, w = x.shape
        q, k, v = (part.reshape(b, self.heads, -1, h * w) for part in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        summary = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", summary, q)
        return self.to_out(out.reshape(b, -1, h, w))


class CrossAttention(nn.Module):
    """Multi-head (cross-)attention on token sequences through ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context

        def split(t: Tensor) -> Tensor:
            return t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class GEGLU(nn.Module):
    """``a · GELU(gate)`` from one projection to twice the width."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward with 4× expansion."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention to the DA-CLIP content embedding, feed-forward (pre-LN, residual)."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x = self.attn1(self.norm1(x)) + x
        if context is not None:  # without an image context the cross-attention is skipped
            x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Latent-diffusion-style transformer over the H·W tokens of a feature map, conditioned by a context.

    ``proj_out`` starts at zero, so a fresh block is the identity (its input is added back).
    """

    def __init__(self, channels: int, heads: int, dim_head: int, context_dim: int, depth: int = 1) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, dim_head, context_dim) for _ in range(depth)
        )
        self.proj_out = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        b, _, h, w = x.shape
        tokens = self.proj_in(self.norm(x))
        inner = tokens.shape[1]
        tokens = tokens.flatten(2).transpose(1, 2)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        tokens = tokens.transpose(1, 2).reshape(b, inner, h, w)
        return self.proj_out(tokens) + x


CROSS_ATTENTION_FROM_LEVEL = 3
"""The release's ``i < 3 → LinearAttention`` rule: only levels 3 and deeper cross-attend to the content
embedding (so a U-Net of fewer levels cross-attends in its middle block only)."""


class ConditionalUNet(nn.Module):
    """IR-SDE's noise predictor (state-dict names of the released ``universal-ir.pth``).

    Input ``cat(x_t − lq, lq)``; a U-Net of ResBlocks (two per level, both skip-connected) with linear
    attention, except that with an image context the levels from ``CROSS_ATTENTION_FROM_LEVEL`` on (the
    release's rule: with 4 levels, the deepest) and the middle block use a
    cross-attention ``SpatialTransformer`` on the DA-CLIP content embedding. The DA-CLIP degradation
    embedding weights a learned ``prompt`` (softmax over its 4·nf entries), which after ``prompt_mlp`` is
    added to the time embedding and so modulates every ResBlock. Any input size: reflect-padded to a
    multiple of 2^len(ch_mult) and cropped back.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        ch_mult: Sequence[int] = (1, 2, 4, 8),
        context_dim: int = 512,
        use_degra_context: bool = True,
        use_image_context: bool = True,
        head_channels: int = 32,
    ) -> None:
        super().__init__()
        self.depth = len(ch_mult)
        self.use_degra_context = use_degra_context and context_dim > 0
        self.use_image_context = use_image_context and context_dim > 0
        time_dim = nf * 4

        def spatial_transformer(dim: int) -> SpatialTransformer:
            heads = max(dim // head_channels, 1)
            return SpatialTransformer(dim, heads, dim // heads, context_dim)

        self.init_conv = default_conv(in_nc * 2, nf, 7)
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(nf), nn.Linear(nf, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        if self.use_degra_context:
            self.prompt = nn.Parameter(torch.rand(1, time_dim))
            self.text_mlp = nn.Sequential(
                nn.Linear(context_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
            )
            self.prompt_mlp = nn.Linear(time_dim, time_dim)

        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        mults = [1, *ch_mult]
        for i in range(self.depth):
            dim_in, dim_out = nf * mults[i], nf * mults[i + 1]
            deepest = i == self.depth - 1
            cross = self.use_image_context and i >= CROSS_ATTENTION_FROM_LEVEL
            attn_down = spatial_transformer(dim_in) if cross else LinearAttention(dim_in)
            attn_up = spatial_transformer(dim_out) if cross else LinearAttention(dim_out)
            self.downs.append(
                nn.ModuleList(
                    [
                        ResBlock(dim_in, dim_in, time_dim),
                        ResBlock(dim_in, dim_in, time_dim),
                        Residual(PreNorm(dim_in, attn_down)),
                        default_conv(dim_in, dim_out) if deepest else nn.Conv2d(dim_in, dim_out, 4, 2, 1),
                    ]
                )
            )
            upsample: nn.Module = (
                default_conv(dim_out, dim_in)
                if i == 0
                else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim_out, dim_in, 3, 1, 1)
                )
            )
            self.ups.insert(
                0,
                nn.ModuleList(
                    [
                        ResBlock(dim_out + dim_in, dim_out, time_dim),
                        ResBlock(dim_out + dim_in, dim_out, time_dim),
                        Residual(PreNorm(dim_out, attn_up)),
                        upsample,
                    ]
                ),
            )
        mid_dim = nf * mults[-1]
        self.mid_block1 = ResBlock(mid_dim, mid_dim, time_dim)
        mid_attn = spatial_transformer(mid_dim) if self.use_image_context else LinearAttention(mid_dim)
        self.mid_attn = Residual(PreNorm(mid_dim, mid_attn))
        self.mid_block2 = ResBlock(mid_dim, mid_dim, time_dim)
        self.final_res_block = ResBlock(nf * 2, nf, time_dim)
        self.final_conv = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.pad_multiple = 2**self.depth

    def forward(
        self,
        x_t: Tensor,
        lq: Tensor,
        t: Tensor | int,
        degradation_context: Tensor | None = None,
        image_context: Tensor | None = None,
    ) -> Tensor:
        """Predict the noise of state ``x_t`` at time ``t`` (B or scalar) given the LQ image and DA-CLIP embeddings."""
        height, width = x_t.shape[-2:]
        t = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        x = self.init_conv(pad_to_multiple(torch.cat([x_t - lq, lq], dim=1), self.pad_multiple, "reflect"))
        first = x
        emb = self.time_mlp(t).to(x.dtype)
        if self.use_degra_context and degradation_context is not None:
            weights = torch.softmax(self.text_mlp(degradation_context.to(x.dtype)), dim=1)
            emb = emb + self.prompt_mlp(weights * self.prompt)
        context = None
        if self.use_image_context and image_context is not None:
            context = image_context.to(x.dtype)
            context = context[:, None] if context.ndim == 2 else context

        skips = []
        for block1, block2, attn, downsample in self.downs:
            x = block1(x, emb)
            skips.append(x)
            x = attn(block2(x, emb), context)
            skips.append(x)
            x = downsample(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, emb), context), emb)
        for block1, block2, attn, upsample in self.ups:
            x = block1(torch.cat([x, skips.pop()], dim=1), emb)
            x = block2(torch.cat([x, skips.pop()], dim=1), emb)
            x = upsample(attn(x, context))
        x = self.final_res_block(torch.cat([x, first], dim=1), emb)
        return self.final_conv(x)[..., :height, :width]


# ====================================================================== the Lightning module
class IRSDE(DACLIPConditioned, RestorationModule):
    """IR-SDE (+ DA-CLIP conditioning) as a Lightning module: ML-objective training, SDE sampling with EMA weights.

    Args:
        in_nc, out_nc, nf, ch_mult, context_dim, use_degra_context, use_image_context: ``ConditionalUNet``
            sizes (release: 3, 3, 64, (1, 2, 4, 8), 512, True, True).
        T, max_sigma, eps, schedule: ``MeanRevertingSDE`` (paper: 100, 50/255, 0.005, cosine).
        daclip: frozen DA-CLIP conditioner given to ``build_daclip`` (None: unconditioned; "tiny": a small
            random one; a path/file name: the released ``daclip_ViT-B-32.pt``). Never in the state dict;
            when given, ``context_dim`` follows its ``embed_dim``.
        parameterization: what the U-Net predicts, ``noise`` (paper, release) or ``x0`` (the release's
            ``score_fn_``); the loss is the same ML objective either way (see ``PARAMETERIZATIONS``).
        ema_decay: decay of the EMA copy of the U-Net used for validation/test/restore (None: no EMA).
        ema_every: update the EMA every this many optimizer steps (release: 10).
        ema_warmup: ema_pytorch's warm-up, as the release trains: the EMA copies the live weights for the
            first 100 updates, then its decay rises as 1 − (1 + n)^(−2/3) up to ``ema_decay`` (release:
            0.995, every 10 steps). False: the constant ``ema_decay`` from the first update.
        noise_loss_weight: weight of an auxiliary noise-matching MSE (DDPM's simple loss) added to the paper's
            maximum-likelihood loss (paper: 0). The ML loss weights the noise error by 2σ_max²θ_t dt/σ̄_t,
            which grows with t (σ̄_t saturates while θ_t peaks mid-chain); the extra term is restorezoo's.
        steps, sampler, seed: default sampler settings (``restore(batch, steps=, sampler=, seed=)`` overrides).
        fewer_steps: how ``steps < T`` runs: ``reschedule`` (release) or ``stride`` (see ``FEWER_STEPS``).
        clip_x0: clamp the sampler's x0 estimate to [0, 1] (restorezoo's option; the release does not).
        progress: show a progress bar over the sampling steps.
        lr, weight_decay, betas, min_lr, warmup_steps: see ``RestorationModule`` (paper: AdamW 2e-4,
            (0.9, 0.99), cosine to 1e-6).
    """

    channels_last = True
    compile_targets = ("unet", "unet_ema")
    sampling_options = ("steps", "sampler", "seed", "progress", "fewer_steps", "clip_x0")  # sample_chain's
    max_pixels = 1024 * 1024  # each pixel costs `steps` U-Net passes: tile earlier than one-pass models
    default_tile = 512

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        ch_mult: Sequence[int] = (1, 2, 4, 8),
        context_dim: int = 512,
        use_degra_context: bool = True,
        use_image_context: bool = True,
        T: int = 100,
        max_sigma: float = 50 / 255,
        eps: float = 0.005,
        schedule: str = "cosine",
        daclip: str | None = None,
        parameterization: str = "noise",
        ema_decay: float | None = 0.999,
        ema_every: int = 1,
        ema_warmup: bool = False,
        noise_loss_weight: float = 0.0,
        steps: int = 100,
        sampler: str = "posterior",
        fewer_steps: str = "reschedule",
        clip_x0: bool = False,
        seed: int | None = None,
        progress: bool = True,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(
            lr=lr, weight_decay=weight_decay, betas=betas, min_lr=min_lr, warmup_steps=warmup_steps
        )
        self.save_hyperparameters()
        for name, value, allowed in (
            ("sampler", sampler, SAMPLERS),
            ("fewer_steps", fewer_steps, FEWER_STEPS),
            ("parameterization", parameterization, PARAMETERIZATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} '{value}' (one of {', '.join(allowed)})")
        self.sde = MeanRevertingSDE(T, max_sigma, eps, schedule)
        self.steps, self.sampler, self.seed, self.progress = steps, sampler, seed, progress
        self.fewer_steps, self.clip_x0, self.parameterization = fewer_steps, clip_x0, parameterization
        self.ema_decay, self.ema_every, self.ema_warmup = ema_decay, max(int(ema_every), 1), ema_warmup
        self._ema_updates = 0
        self.noise_loss_weight = noise_loss_weight
        # Frozen and kept out of the state dict: a list hides it from nn.Module registration.
        self.init_daclip(daclip)
        if self.daclip is not None:  # the embeddings' width decides the context width
            context_dim = int(getattr(self.daclip, "embed_dim", context_dim))
        self.unet = ConditionalUNet(
            in_nc, out_nc, nf, ch_mult, context_dim, use_degra_context, use_image_context
        )
        self.unet_ema = copy.deepcopy(self.unet).requires_grad_(False) if ema_decay is not None else None

    # ------------------------------------------------------------------ EMA
    def update_ema(self) -> None:
        """One EMA call per optimizer step (``ema_step`` with ``ema_decay_at``'s decay, every ``ema_every``)."""
        if self.unet_ema is None or self.ema_decay is None:
            return
        trainer = self._trainer
        call = trainer.global_step - 1 if trainer is not None else self._ema_updates
        self._ema_updates += 1
        if call % self.ema_every:
            return
        decay = ema_decay_at(call, self.ema_decay, warmup=self.ema_warmup)
        ema_step(self.unet_ema, self.unet, decay)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.update_ema()

    @property
    def sampling_unet(self) -> ConditionalUNet:
        """The EMA U-Net when there is one, else the live one."""
        return self.unet_ema if self.unet_ema is not None else self.unet

    # ------------------------------------------------------------------ RestorationModule API
    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The paper's ML objective on a batch, t ~ U{1..T} and the noise drawn per sample (``matching_loss``)."""
        hq, lq = batch["hq"].float(), batch["lq"].float()
        degradation, content = self.conditioning(lq)
        generators = sample_generators(batch, hq.device)  # per-sample: DDP and resumes see the same draws
        t = per_sample_randint(1, self.sde.T + 1, hq.shape[0], generators, hq.device)
        noise = per_sample_randn(hq.shape, generators, hq.device, hq.dtype)
        return self.matching_loss(hq, lq, t, noise, degradation, content)

    def matching_loss(
        self,
        hq: Tensor,
        lq: Tensor,
        t: Tensor,
        noise: Tensor,
        degradation: Tensor | None = None,
        content: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """L1 between the score-based reverse step and the optimal x*_{t−1} (the release's ``MatchingLoss``,
        l1, unweighted) at given times ``t`` (B) and standard-normal ``noise``, plus the optional noise MSE."""
        x_t, true_noise = self.sde.forward_state(hq, lq, t, noise)
        output = self.unet(x_t, lq, t, degradation, content).float()
        score = self.sde.score(output, x_t, lq, t, self.parameterization)
        predicted = self.sde.reverse_step_mean(x_t, score, lq, t)
        optimum = self.sde.optimal_reverse_step(x_t, hq, lq, t)
        l1 = F.l1_loss(predicted, optimum)
        logs = {"l1": l1.detach()}
        if self.noise_loss_weight <= 0:
            return l1, logs
        if self.parameterization == "noise":
            predicted_noise = output
        else:
            predicted_noise = (x_t - self.sde.marginal_mean(output, lq, t)) / self.sde.marginal_std(t, x_t)
        noise_mse = F.mse_loss(predicted_noise, true_noise)
        logs["noise_mse"] = noise_mse.detach()
        return l1 + self.noise_loss_weight * noise_mse, logs

    def sample_chain(
        self,
        batch: dict[str, Any],
        steps: int | None = None,
        sampler: str | None = None,
        seed: int | None = None,
        progress: bool | None = None,
        fewer_steps: str | None = None,
        clip_x0: bool | None = None,
        **sampling: Any,
    ) -> Tensor:
        """The reverse chain's raw x_0 (not clamped to [0, 1]): what the release's ``reverse_posterior`` returns."""
        if sampling:
            raise TypeError(
                f"IR-SDE sampling takes steps, sampler, seed, progress, fewer_steps, clip_x0; got {sorted(sampling)}"
            )
        lq = batch["lq"].float()
        seed = self.seed if seed is None else seed
        generator = None
        if seed is not None:
            generator = torch.Generator(device=lq.device).manual_seed(int(seed))
        degradation, content = self.conditioning(lq)
        unet = self.sampling_unet

        def model(x_t: Tensor, t: Tensor) -> Tensor:
            return unet(x_t, lq, t, degradation, content).float()

        x_T = self.sde.noise_state(lq, generator)
        out = self.sde.sample(
            model,
            x_T,
            lq,
            steps=self.steps if steps is None else steps,
            sampler=self.sampler if sampler is None else sampler,
            generator=generator,
            progress=self.progress if progress is None else progress,
            clip_x0=self.clip_x0 if clip_x0 is None else clip_x0,
            fewer_steps=self.fewer_steps if fewer_steps is None else fewer_steps,
            parameterization=self.parameterization,
        )
        return out

    def restore(self, batch: dict[str, Any], **sampling: Any) -> Tensor:
        """Sample x_0 from ``noise_state(lq)`` with the EMA U-Net; returns B×3×H×W in [0, 1] (the clamped
        ``sample_chain``; it takes the same options)."""
        return self.sample_chain(batch, **sampling).clamp(0, 1)

    # ------------------------------------------------------------------ released weights
    @classmethod
    def from_official(
        cls, unet_path: str | Path, daclip_path: str | Path | None = None, **kwargs: Any
    ) -> IRSDE:
        """Load the released ``universal-ir.pth`` U-Net strictly (into the live and the EMA copy).

        The file may be a plain state dict or wrapped under 'params' / 'state_dict'; paths may be local
        or under ``$RESTOREZOO_WEIGHTS``. ``daclip_path`` is the released ``daclip_ViT-B-32.pt``.
        """
        model = cls(daclip=None if daclip_path is None else str(daclip_path), **kwargs)
        state = load_state_dict(resolve_weights(unet_path, what="IR-SDE U-Net weights"))
        load_matching(model.unet, state, unet_path)
        if model.unet_ema is not None:
            model.unet_ema.load_state_dict(state, strict=True)
        return model.eval()


__all__ = [
    "FEWER_STEPS",
    "IRSDE",
    "PARAMETERIZATIONS",
    "SAMPLERS",
    "THETA_SCHEDULES",
    "ConditionalUNet",
    "MeanRevertingSDE",
    "theta_schedule",
]
