"""Real-ESRGAN's second-order degradation model (Wang et al., 2021), batched on any device.

Real photos are degraded by a chain of camera, editing and transmission steps; Real-ESRGAN models
that with the classical chain ``blur → resize → noise → JPEG`` applied twice, then a final resize,
sinc ringing and JPEG in random order. The split follows BasicSR's habit of running it on the
accelerator: the DataLoader workers draw the blur kernels (:meth:`RealESRGAN.sample_kernels`, CPU,
one sample), and :meth:`RealESRGAN.apply` runs the rest on the whole batch where it lives, drawing
its own random numbers from a ``torch.Generator``.

By default every step is BasicSR's (``RealESRGANModel.feed_data``, checked by
``benchmarks/parity_basicsr.py``): the LQ degrades the USM-sharpened HQ, stage 1 resizes with
``scale_factor``, stage 2 resizes relative to the LQ size (``h/scale·s``), JPEG is DiffJPEG's, the
plateau β is drawn as BasicSR draws it, and the noise kind, second-blur coin, final order and the grey
Gaussian field are drawn once per batch. restorezoo's former choices stay available as options
(:class:`RealESRGANOptions`): ``draws="sample"`` (a sample's degradation independent of its
batch-mates: what DDP equality needs), ``jpeg="libjpeg"``, ``resize1="size"``, ``stage2_size="hq"``,
``beta_draw="range"``, ``degrade_usm=False``. The random resizes use one direction, scale and mode per
batch in every mode, because a batch must keep one size between the steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from restorezoo.data.degrade import ops
from restorezoo.data.degrade.base import Degradation
from restorezoo.data.degrade.kernels import (
    KERNEL_FAMILIES,
    KERNEL_PROBS,
    filter2d,
    kernel_info_from_meta,
    kernel_meta,
    pad_kernel,
    pulse_kernel,
    random_mixed_kernel,
    sinc_kernel,
    usm_sharpen,
)
from restorezoo.data.prompts import SPIRE_BLIND_PROMPT

__all__ = ["RESIZE_MODES", "RealESRGAN", "RealESRGANOptions", "RealESRGANTestSet", "random_resize_step"]

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass
class RealESRGANOptions:
    """Every parameter of the pipeline; defaults are the paper's (Real-ESRGAN §3.1, BasicSR's train_realesrnet_x4plus.yml).

    Names follow BasicSR's option files (stage-2 names end in ``2``) so published configs map 1:1.
    Noise sigmas are on the 0-255 scale; cutoffs in rad/pixel.
    """

    # stage 1
    kernel_range: tuple[int, int] = (7, 21)
    kernel_list: tuple[str, ...] = KERNEL_FAMILIES
    kernel_prob: tuple[float, ...] = KERNEL_PROBS
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)
    # stage 2
    second_blur_prob: float = 0.8
    kernel_range2: tuple[int, int] = (7, 21)
    kernel_list2: tuple[str, ...] = KERNEL_FAMILIES
    kernel_prob2: tuple[float, ...] = KERNEL_PROBS
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (30.0, 95.0)
    # final step
    final_sinc_prob: float = 0.8
    final_order_prob: float = 0.5  # p of [resize + sinc, then JPEG]; else [JPEG, then resize + sinc]
    sinc_cutoff_small: tuple[float, float] = (math.pi / 3, math.pi)  # stage kernels of size < 13
    sinc_cutoff_large: tuple[float, float] = (math.pi / 5, math.pi)  # stage kernels of size >= 13
    final_sinc_cutoff: tuple[float, float] = (math.pi / 3, math.pi)
    resize_modes: tuple[str, ...] = RESIZE_MODES
    # how each step is done: BasicSR's way by default, restorezoo's former choices as named options
    draws: str = "batch"
    """"batch" (BasicSR): noise kind, second-blur coin, final order and the grey Gaussian field once per
    batch; "sample": all of them per sample, so a sample's LQ does not depend on its batch-mates."""
    jpeg: str = "diffjpeg"
    """"diffjpeg" (BasicSR's DiffJPEG, :func:`~restorezoo.data.degrade.ops.diff_jpeg`) or "libjpeg"
    (a real baseline encoder, Pillow-close: :func:`~restorezoo.data.degrade.ops.jpeg`)."""
    resize1: str = "scale_factor"
    """Stage-1 resize: "scale_factor" (BasicSR's ``interpolate(scale_factor=s)``, sampling grid of s) or
    "size" (``interpolate(size=int(h·s))``, grid of the rounded size ratio)."""
    stage2_size: str = "lq"
    """Stage-2 resize target: "lq" (BasicSR: ``int(h/scale·s2)``) or "hq" (``int(h·s2)``; same at scale 1)."""
    beta_draw: str = "basicsr"
    """Shape β of the generalized/plateau kernels: "basicsr" (a fair coin between ``U(lo, 1)`` and
    ``U(1, hi)`` whatever the range, so plateau [1, 2] gives β = 1 half the time) or "range"
    (the coin only when the range straddles 1, else uniform over it)."""
    degrade_usm: bool = True
    """Degrade the USM-sharpened HQ (BasicSR) or the plain HQ (False). The target is a separate choice
    (``usm_target`` of :class:`RealESRGAN`)."""

    def __post_init__(self) -> None:
        choices = {
            "draws": ("batch", "sample"),
            "jpeg": ("diffjpeg", "libjpeg"),
            "resize1": ("scale_factor", "size"),
            "stage2_size": ("lq", "hq"),
            "beta_draw": ("basicsr", "range"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"RealESRGANOptions.{name} must be one of {allowed}, got {getattr(self, name)!r}")


class RealESRGAN:
    """The Real-ESRGAN second-order degradation (task ``"realesrgan"``, blind prompt).

    Args:
        options: pipeline parameters (defaults: the paper's).
        scale: the LQ is ``1/scale`` the HQ's size; 1 (restoration, as SPIRE trains) keeps the size.
        usm_target: sharpen the HQ target with :func:`~restorezoo.data.degrade.kernels.usm_sharpen`
            before use as ground truth (the DataModule does it), as Real-ESRGAN trains.
    """

    task = "realesrgan"
    prompt = SPIRE_BLIND_PROMPT

    def __init__(
        self, options: RealESRGANOptions | None = None, scale: int = 1, usm_target: bool = False
    ) -> None:
        self.options = options or RealESRGANOptions()
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        self.scale = int(scale)
        self.usm_target = usm_target

    def __repr__(self) -> str:
        return f"RealESRGAN(scale={self.scale}, usm_target={self.usm_target})"

    # ------------------------------------------------------------------ CPU side (DataLoader workers)
    def sample_kernels(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Draw one sample's kernels (21×21, CPU): stage-1 blur, stage-2 blur, final sinc.

        ``use_blur2`` is the sample's second-blur coin (used with ``draws="sample"``; BasicSR tosses one
        per batch in :meth:`apply`); a skipped final sinc is the pulse (identity) kernel, as BasicSR's
        dataset gives it. ``*_meta`` entries describe each kernel as a small float vector so that the
        parameters survive ``collate`` and reach :meth:`apply`.
        """
        o = self.options
        k1, info1 = random_mixed_kernel(
            generator,
            o.kernel_list,
            o.kernel_prob,
            o.kernel_range,
            o.blur_sigma,
            o.betag_range,
            o.betap_range,
            o.sinc_prob,
            o.sinc_cutoff_small,
            o.sinc_cutoff_large,
            beta_draw=o.beta_draw,
        )
        k2, info2 = random_mixed_kernel(
            generator,
            o.kernel_list2,
            o.kernel_prob2,
            o.kernel_range2,
            o.blur_sigma2,
            o.betag_range2,
            o.betap_range2,
            o.sinc_prob2,
            o.sinc_cutoff_small,
            o.sinc_cutoff_large,
            beta_draw=o.beta_draw,
        )
        use_blur2 = bool(torch.rand((), generator=generator) < o.second_blur_prob)
        use_sinc = bool(torch.rand((), generator=generator) < o.final_sinc_prob)
        if use_sinc:
            sizes = list(range(o.kernel_range[0] | 1, o.kernel_range[1] + 1, 2))
            size = sizes[int(torch.randint(len(sizes), (), generator=generator))]
            lo, hi = o.final_sinc_cutoff
            cutoff = lo + (hi - lo) * float(torch.rand((), generator=generator))
            sinc = pad_kernel(sinc_kernel(size, cutoff))
            info3: dict[str, Any] = {"family": "sinc", "size": size, "cutoff": round(cutoff, 4)}
        else:
            sinc, info3 = pulse_kernel(), {"family": "pulse"}
        return {
            "kernel1": k1,
            "kernel2": k2,
            "sinc": sinc,
            "use_blur2": torch.tensor(use_blur2),
            "use_final_sinc": torch.tensor(use_sinc),
            "kernel1_meta": kernel_meta(info1),
            "kernel2_meta": kernel_meta(info2),
            "sinc_meta": kernel_meta(info3),
        }

    def sample_batch_kernels(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``batch_size`` draws of :meth:`sample_kernels`, stacked (for direct use without a dataset)."""
        draws = [self.sample_kernels(generator) for _ in range(batch_size)]
        return {key: torch.stack([d[key] for d in draws]) for key in draws[0]}

    # ------------------------------------------------------------------ device side
    def __call__(
        self, hq: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[dict[str, Any]]]:
        """Draw kernels and degrade in one go (kernels on the CPU from a generator seeded by ``generator``)."""
        seed = int(torch.randint(0, 2**62, (), generator=generator, device=_gen_device(generator)))
        kernels = self.sample_batch_kernels(hq.shape[0], torch.Generator().manual_seed(seed))
        return self.apply(hq, kernels, generator)

    def apply(
        self, hq: Tensor, kernels: dict[str, Tensor], generator: torch.Generator | None = None
    ) -> tuple[Tensor, list[dict[str, Any]]]:
        """Degrade a B×3×H×W batch in [0, 1] on its own device; returns the LQ (on the /255 grid) and params.

        ``hq`` is the plain HQ (it is USM-sharpened here first when ``options.degrade_usm``).
        ``kernels`` holds B-stacked entries of :meth:`sample_kernels`. Random numbers come from
        ``generator`` (drawn on its device, then moved), so a seed gives the same LQ every time.
        """
        ops._check(hq, channels=3)
        o = self.options
        per_batch = o.draws == "batch"
        b, _, h, w = hq.shape
        dev = hq.device
        rng = _Draw(generator, dev)
        k1, k2, sinc = (kernels[k].to(dev, torch.float32) for k in ("kernel1", "kernel2", "sinc"))
        if "use_blur2" in kernels:
            blur2 = [bool(v) for v in kernels["use_blur2"].reshape(-1).tolist()]
        else:
            blur2 = [True] * b
        if per_batch:  # BasicSR: one coin for the batch
            blur2 = [bool(rng.uniform(1)[0] < o.second_blur_prob)] * b
        params: list[dict[str, Any]] = [{"task": self.task, "scale": self.scale} for _ in range(b)]
        for i in range(b):
            for key in ("kernel1", "kernel2", "sinc"):
                meta = kernels.get(f"{key}_meta")
                params[i][key] = kernel_info_from_meta(meta[i]) if meta is not None else {}
            params[i]["blur2"] = blur2[i]
            if not blur2[i]:
                params[i]["kernel2"] = {"family": "pulse"}
            params[i]["final_sinc"] = (
                bool(kernels["use_final_sinc"][i]) if "use_final_sinc" in kernels else True
            )

        src = hq.float()
        if o.degrade_usm:
            src = usm_sharpen(src)
        # ---- stage 1
        out = filter2d(src, k1)
        out = self._random_resize(
            out, (h, w), o.resize_prob, o.resize_range, o.resize_modes, rng, params, "resize1",
            by_factor=o.resize1 == "scale_factor",
        )
        out = self._noise(
            out,
            o.gaussian_noise_prob,
            o.noise_range,
            o.poisson_scale_range,
            o.gray_noise_prob,
            rng,
            params,
            "noise1",
            per_batch,
        )
        out = self._jpeg(out, o.jpeg_range, rng, params, "jpeg1")
        # ---- stage 2 (a skipped blur is skipped, or the pulse kernel for some rows)
        if all(blur2):
            out = filter2d(out, k2)
        elif any(blur2):
            pulse = pulse_kernel(k2.shape[-1]).to(dev)
            rows = torch.tensor(blur2, device=dev).view(b, 1, 1)
            out = filter2d(out, torch.where(rows, k2, pulse))
        base2 = (h, w) if o.stage2_size == "hq" else (h / self.scale, w / self.scale)
        out = self._random_resize(
            out, base2, o.resize_prob2, o.resize_range2, o.resize_modes, rng, params, "resize2"
        )
        out = self._noise(
            out,
            o.gaussian_noise_prob2,
            o.noise_range2,
            o.poisson_scale_range2,
            o.gray_noise_prob2,
            rng,
            params,
            "noise2",
            per_batch,
        )
        # ---- final: resize to target + sinc and JPEG, in a random order (per batch or per sample)
        size = (h // self.scale, w // self.scale)
        sinc_first = rng.coins(b, o.final_order_prob, per_batch)
        mode = o.resize_modes[int(rng.randint(len(o.resize_modes), 1)[0])]
        quality = rng.uniform(b) * (o.jpeg_range2[1] - o.jpeg_range2[0]) + o.jpeg_range2[0]
        result = torch.empty(b, out.shape[1], *size, device=dev)
        for first in (True, False):
            rows = [i for i in range(b) if bool(sinc_first[i]) == first]
            if not rows:
                continue
            idx = torch.tensor(rows, device=dev)
            q = quality[rows].to(dev, torch.float32)
            if first:  # resize + sinc, then JPEG
                done = self._compress(filter2d(_resize(out[idx], size, mode), sinc[idx]).clamp(0, 1), q)
            else:  # JPEG, then resize + sinc
                done = filter2d(_resize(self._compress(out[idx].clamp(0, 1), q), size, mode), sinc[idx])
            result[idx] = done
        for i in range(b):
            params[i]["final_order"] = "resize_sinc_jpeg" if bool(sinc_first[i]) else "jpeg_resize_sinc"
            params[i]["final_resize_mode"] = mode
            params[i]["jpeg2"] = round(float(quality[i]), 2)
        lq = (result * 255).round().clamp(0, 255) / 255
        return lq.to(hq.dtype), params

    # ------------------------------------------------------------------ steps
    def _compress(self, x: Tensor, quality: Tensor) -> Tensor:
        if self.options.jpeg == "diffjpeg":
            return ops.diff_jpeg(x, quality)
        return ops.jpeg(x, quality)

    @staticmethod
    def _random_resize(
        x: Tensor,
        base: tuple[float, float],
        prob: tuple[float, ...],
        bounds: tuple[float, float],
        modes: tuple[str, ...],
        rng: _Draw,
        params: list[dict[str, Any]],
        key: str,
        by_factor: bool = False,
    ) -> Tensor:
        """Resize to ``int(base·s)`` (one direction, scale and mode per batch).

        ``by_factor`` resizes with ``interpolate(scale_factor=s)`` instead (BasicSR's stage 1): the same
        output size, but source pixels sampled on the grid of ``s`` rather than of the size ratio.
        """
        direction = ("up", "down", "keep")[rng.choice(prob)]
        u = float(rng.uniform(1)[0])
        if direction == "up":
            s = 1 + (bounds[1] - 1) * u
        elif direction == "down":
            s = bounds[0] + (1 - bounds[0]) * u
        else:
            s = 1.0
        mode = modes[int(rng.randint(len(modes), 1)[0])]
        for p in params:
            p[key] = {"direction": direction, "scale": round(s, 4), "mode": mode}
        return random_resize_step(x, s, mode, None if by_factor else base)

    @staticmethod
    def _noise(
        x: Tensor,
        gaussian_prob: float,
        sigma_range: tuple[float, float],
        poisson_range: tuple[float, float],
        gray_prob: float,
        rng: _Draw,
        params: list[dict[str, Any]],
        key: str,
        per_batch: bool = False,
    ) -> Tensor:
        """Gaussian (sigma on the 0-255 scale) or Poisson noise, grey (one field for all channels) with
        p ``gray_prob`` per sample.

        ``per_batch`` (BasicSR): one Gaussian-or-Poisson draw for the batch and one grey Gaussian field
        shared by the batch's grey rows (each scaled by its own sigma); else both per sample.
        """
        b = x.shape[0]
        gaussian = rng.coins(b, gaussian_prob, per_batch)
        gray = rng.uniform(b) < gray_prob
        u = rng.uniform(b)
        sigma = sigma_range[0] + (sigma_range[1] - sigma_range[0]) * u
        pscale = poisson_range[0] + (poisson_range[1] - poisson_range[0]) * u
        gray_dev = gray.to(x.device).view(b, 1, 1, 1)
        noise = torch.zeros_like(x)
        g_idx = [i for i in range(b) if bool(gaussian[i])]
        p_idx = [i for i in range(b) if not bool(gaussian[i])]
        if g_idx:
            idx = torch.tensor(g_idx, device=x.device)
            sig = sigma[g_idx].to(x.device, torch.float32)
            noise[idx] = _gaussian_noise(x[idx], sig, gray_dev[idx], rng, per_batch)
        if p_idx:
            idx = torch.tensor(p_idx, device=x.device)
            noise[idx] = _poisson_noise(x[idx], gray_dev[idx], rng) * pscale[p_idx].to(
                x.device, torch.float32
            ).view(-1, 1, 1, 1)
        for i, p in enumerate(params):
            colour = "gray" if bool(gray[i]) else "color"
            if bool(gaussian[i]):
                p[key] = {"kind": "gaussian", "sigma": round(float(sigma[i]), 3), "color": colour}
            else:
                p[key] = {"kind": "poisson", "scale": round(float(pscale[i]), 3), "color": colour}
        return (x + noise).clamp(0, 1)

    def _jpeg(
        self, x: Tensor, bounds: tuple[float, float], rng: _Draw, params: list[dict[str, Any]], key: str
    ) -> Tensor:
        quality = rng.uniform(x.shape[0]) * (bounds[1] - bounds[0]) + bounds[0]
        for i, p in enumerate(params):
            p[key] = round(float(quality[i]), 2)
        return self._compress(x.clamp(0, 1), quality.to(x.device, torch.float32))

    def to_config(self) -> dict[str, Any]:
        """The options as a plain dict (for logs and hyper-parameters)."""
        return {"scale": self.scale, "usm_target": self.usm_target, **asdict(self.options)}


class RealESRGANTestSet(Degradation):
    """Real-ESRGAN's degradation as a test-set degradation (registered ``"realesrgan"``), one seed per sample.

    SPIRE's Tab. 1 (right half) degrades MS-COCO val "aligned with open-sourced checkpoints" (Real-ESRGAN
    ×4) and prompts "Remove all degradation". The training pipeline (:class:`RealESRGAN`) draws on the
    accelerator per batch; a test set must instead be a function of the image and its seed, so here every
    sample runs alone (batch of one: per-batch draws are per-sample) from ``torch.Generator(seed)``, on the
    CPU, with BasicSR's defaults. The LQ is resized back to the input size (bicubic), since restorezoo's
    restorers work at the input size (as the ``sr`` pipeline does); ``upsample=False`` keeps it at 1/scale.
    """

    task = "realesrgan"

    def __init__(self, scale: int = 4, options: dict[str, Any] | None = None, upsample: bool = True) -> None:
        self.pipeline = RealESRGAN(RealESRGANOptions(**(options or {})), scale=scale)
        self.scale = int(scale)
        self.upsample = bool(upsample)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[dict[str, Any]]:
        seeds = torch.randint(0, 2**62, (batch_size,), generator=generator, device=_gen_device(generator)).tolist()
        return [{"task": self.task, "scale": self.scale, "seed": int(s), "prompt": RealESRGAN.prompt} for s in seeds]

    def apply(self, x: Tensor, params: Any) -> Tensor:
        self._check_len(x, params)
        h, w = x.shape[-2:]  # any size: the LQ is (h // scale, w // scale), as BasicSR's final resize gives
        out = []
        for i, p in enumerate(params):
            g = torch.Generator().manual_seed(int(p["seed"]))
            lq, _ = self.pipeline(x[i : i + 1].float().cpu(), g)
            if self.upsample and self.scale > 1:
                lq = F.interpolate(lq, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
            out.append(lq.to(x.device, x.dtype))
        return torch.cat(out)


# --------------------------------------------------------------------------------------------------
# helpers


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


class _Draw:
    """Random numbers from one generator, drawn on its device and moved where they are used."""

    def __init__(self, generator: torch.Generator | None, device: torch.device) -> None:
        self.generator = generator
        self.gen_device = generator.device if generator is not None else device
        self.device = device
        # a CPU generator for the few host-side choices (multinomial), seeded from the main one
        seed = int(torch.randint(0, 2**62, (), generator=generator, device=self.gen_device))
        self.cpu = torch.Generator().manual_seed(seed)

    def uniform(self, n: int) -> Tensor:
        """``n`` uniforms in [0, 1) on the CPU (they decide shapes and go into the params)."""
        return torch.rand(n, generator=self.generator, device=self.gen_device).cpu().double()

    def coins(self, n: int, p: float, shared: bool) -> Tensor:
        """``n`` booleans, each True with probability ``p``: one toss for all (``shared``) or one each."""
        return (self.uniform(1) < p).expand(n) if shared else self.uniform(n) < p

    def choice(self, weights: tuple[float, ...]) -> int:
        """An index drawn with probabilities ``weights`` (on the host generator)."""
        return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=self.cpu))

    def randint(self, high: int, n: int) -> Tensor:
        return torch.randint(high, (n,), generator=self.generator, device=self.gen_device).cpu()

    def normal(self, shape: tuple[int, ...]) -> Tensor:
        return torch.randn(*shape, generator=self.generator, device=self.gen_device).to(self.device)

    def poisson(self, rate: Tensor) -> Tensor:
        return torch.poisson(rate.to(self.gen_device), generator=self.generator).to(self.device)


def random_resize_step(x: Tensor, scale: float, mode: str, base: tuple[float, float] | None = None) -> Tensor:
    """One random-resize step of the pipeline once its scale and mode are drawn.

    ``base=None`` is BasicSR's stage 1, ``interpolate(scale_factor=scale)``: output ``floor(h·scale)``,
    source coordinates ``(i + 0.5)/scale − 0.5``. Otherwise the output is ``int(base·scale)`` and the
    coordinates follow that size (``interpolate(size=...)``), as BasicSR's stage 2 does with base ``h/scale``.
    """
    if base is None:
        if scale == 1.0:
            return x
        if mode == "area":
            return F.interpolate(x, scale_factor=scale, mode="area")
        return F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)
    size = (max(int(base[0] * scale), 1), max(int(base[1] * scale), 1))
    return _resize(x, size, mode)


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


_GRAY = (0.2989, 0.587, 0.114)
"""torchvision's ``rgb_to_grayscale`` weights, which BasicSR's grey Poisson noise uses."""


def _levels(q: Tensor) -> Tensor:
    """Per sample, the number of distinct 8-bit values in ``q`` (0..255 levels) rounded up to a power of two."""
    b = q.shape[0]
    hist = torch.zeros(b, 256, device=q.device).scatter_(1, q.reshape(b, -1).long(), 1.0)
    return torch.exp2(torch.ceil(torch.log2((hist > 0).sum(1).float().clamp_min(1)))).view(b, 1, 1, 1)


def _gaussian_noise(x: Tensor, sigma: Tensor, gray: Tensor, rng: _Draw, shared_gray: bool) -> Tensor:
    """Gaussian noise of per-row ``sigma`` (0-255 scale); grey rows (B×1×1×1 ``gray``) get one field on
    every channel. ``shared_gray`` (BasicSR's ``generate_gaussian_noise_pt``): the grey rows share one
    H×W field, drawn before the colour field; else each grey row uses its own colour field's first channel.
    """
    b = x.shape[0]
    scale = (sigma / 255).view(b, 1, 1, 1)
    if shared_gray:
        shared = rng.normal(tuple(x.shape[2:])).view(1, 1, *x.shape[2:]) if bool(gray.any()) else None
        field = rng.normal(tuple(x.shape))
        if shared is not None:
            field = torch.where(gray, shared.expand_as(field), field)
    else:
        field = rng.normal(tuple(x.shape))
        field = torch.where(gray, field[:, :1].expand_as(field), field)
    return field * scale


def _poisson_noise(x: Tensor, gray: Tensor, rng: _Draw) -> Tensor:
    """Zero-mean shot noise (before scaling) as BasicSR's ``generate_poisson_noise_pt``:
    ``Poisson(x·L)/L − x`` on the image rounded to 8 bits, L its distinct-level count rounded up to a
    power of two (a richly toned photo gets ~256 photon levels, a posterised one fewer).

    Grey rows take the noise of their grey image (torchvision's weights on the unrounded image, then
    rounded; its own level count), the same on every channel.
    """
    gnoise = None
    if bool(gray.any()):  # drawn first, as BasicSR does
        lum = sum(c * x[:, i : i + 1] for i, c in enumerate(_GRAY))
        gq = (lum * 255).round().clamp(0, 255)
        gimg, levels = gq / 255, _levels(gq)
        gnoise = rng.poisson(gimg * levels) / levels - gimg
    q = (x * 255).round().clamp(0, 255)
    img, levels = q / 255, _levels(q)
    noise = rng.poisson(img * levels) / levels - img
    if gnoise is not None:
        noise = torch.where(gray, gnoise.expand_as(noise), noise)
    return noise
