"""restorezoo's metrics and Real-ESRGAN degradations against BasicSR's own code, one table, a verdict per row.

    python benchmarks/parity_basicsr.py --basicsr PATH [--only SECTION ...] [--batches 1000] [--out FILE]

PATH is your BasicSR checkout (github: XPixelGroup/BasicSR; the folder holding ``basicsr/``). It is imported
at run time from there, without installing it and without running ``basicsr/__init__.py`` (which needs a
built ``version.py``); nothing is downloaded. BasicSR's own dependencies (OpenCV, scipy, torchvision)
must be importable.

Deterministic operators (PSNR/SSIM, kernels, filter2D, USM, noise with the same seed, DiffJPEG, resizes)
are compared value by value. The second-order pipeline draws its randomness differently in the two
libraries (numpy/random vs a torch generator), so it is compared three ways:

- replayed draws (``replay-x1``, ``replay-x4``): BasicSR's ``RealESRGANModel.feed_data`` (kernels from its
  ``RealESRGANDataset``, options from its ``train_realesrnet_x4plus.yml``) runs with its random calls logged,
  and restorezoo's default ``RealESRGAN`` is handed the same values: equal pipelines give the same LQ;
- draws (``draws``): each library's random decisions compared in distribution (χ², KS);
- statistics (``pipeline-x1``, ``pipeline-x4``): LQ statistics averaged per batch (the unit of BasicSR's
  per-batch draws), each library with its own randomness, and a verdict from the 95 % confidence interval
  of the paired difference (ok only when the whole interval is within the tolerance).

``--only pipeline-x4 --batches 2000`` runs one section (written to ``parity_basicsr_only.md`` unless --out).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import machine, write_report  # noqa: E402
from restorezoo.data.degrade import kernels as rz_kernels  # noqa: E402
from restorezoo.data.degrade import ops as rz_ops  # noqa: E402
from restorezoo.data.degrade import realesrgan as rz_realesrgan  # noqa: E402
from restorezoo.data.sample_photos import SAMPLE_PHOTOS, sample_photo  # noqa: E402
from restorezoo.metrics import psnr, ssim  # noqa: E402
from restorezoo.metrics.functional import rgb_to_y  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "parity_basicsr.md"
EXACT = 1e-6


class ParityError(Exception):
    """A problem with the user's BasicSR checkout, reported as one line."""


# ====================================================================== loading the user's BasicSR
def load_basicsr(path: str) -> SimpleNamespace:
    """Import the BasicSR modules this script needs from the checkout at ``path``."""
    root = Path(path).expanduser()
    if not (root / "basicsr" / "data" / "degradations.py").is_file():
        raise ParityError(f"--basicsr {path}: not a BasicSR checkout (no basicsr/data/degradations.py under it)")
    if "basicsr" in sys.modules and not hasattr(sys.modules["basicsr"], "_parity_stub"):
        raise ParityError("another 'basicsr' is already imported; run this script in a fresh interpreter")
    # A bare package object: its submodules import from the checkout, its heavy __init__ never runs.
    package = types.ModuleType("basicsr")
    package.__path__ = [str(root / "basicsr")]  # type: ignore[attr-defined]
    package._parity_stub = True  # type: ignore[attr-defined]
    sys.modules["basicsr"] = package
    try:
        from basicsr.data import degradations
        from basicsr.data.realesrgan_dataset import RealESRGANDataset
        from basicsr.metrics import psnr_ssim
        from basicsr.models.realesrgan_model import RealESRGANModel
        from basicsr.utils.diffjpeg import DiffJPEG
        from basicsr.utils.img_process_util import USMSharp, filter2D
    except Exception as error:  # a missing dependency of BasicSR, or a checkout of another layout
        raise ParityError(f"cannot import BasicSR from {root}: {type(error).__name__}: {error}") from None
    options = root / "options" / "train" / "RealESRGAN" / "train_realesrnet_x4plus.yml"
    if not options.is_file():
        raise ParityError(f"--basicsr {path}: no options/train/RealESRGAN/train_realesrnet_x4plus.yml")
    import yaml

    version_file = root / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "unknown version"
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return SimpleNamespace(
        root=root,
        label=f"BasicSR {version}" + (f" @ {commit}" if commit else ""),
        degradations=degradations,
        Dataset=RealESRGANDataset,
        psnr_ssim=psnr_ssim,
        Model=RealESRGANModel,
        DiffJPEG=DiffJPEG,
        USMSharp=USMSharp,
        filter2D=filter2D,
        options=yaml.safe_load(options.read_text()),
    )


# ====================================================================== rows
Row = dict[str, str]


def _fmt(v: float) -> str:
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.2e}"
    return f"{v:.4f}"


def exact_row(check: str, diff: float, tol: float = EXACT, ref: str = "", ours: str = "") -> Row:
    return {
        "check": check,
        "basicsr": ref,
        "restorezoo": ours,
        "difference": f"max abs {_fmt(diff)}",
        "tolerance": f"≤ {_fmt(tol)}",
        "verdict": "ok" if diff <= tol else "DIFFERS",
    }


def _photos(names: tuple[str, ...], size: int) -> torch.Tensor:
    out = []
    for name in names:
        img = sample_photo(name)
        top, left = (img.shape[1] - size) // 2, (img.shape[2] - size) // 2
        out.append(img[:, top : top + size, left : left + size])
    return torch.stack(out)


# ---------------------------------------------------------------------- metrics
def metric_rows(b: SimpleNamespace) -> list[Row]:
    gt = _photos(SAMPLE_PHOTOS["test"], 96)
    g = torch.Generator().manual_seed(0)
    blurred = rz_ops.gaussian_blur(gt, 1.2, kernel_size=7)
    pred_float = blurred * 1.15 - 0.07 + 0.04 * torch.randn(gt.shape, generator=g)  # some of it out of [0, 1]
    pred_u8 = pred_float.clamp(0, 1)
    rows = []
    m = b.psnr_ssim

    def bgr_u8(t: torch.Tensor) -> np.ndarray:  # what BasicSR's tensor2img hands to calculate_psnr
        return (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1].copy()

    for y in (False, True):
        for crop in (0, 4):
            space = "Y" if y else "RGB"
            ref_p = [m.calculate_psnr(bgr_u8(p), bgr_u8(t), crop, test_y_channel=y) for p, t in zip(pred_u8, gt)]
            ref_s = [m.calculate_ssim(bgr_u8(p), bgr_u8(t), crop, test_y_channel=y) for p, t in zip(pred_u8, gt)]
            ours_p = psnr(pred_u8, gt, crop, y, quantize=True).tolist()
            ours_s = ssim(pred_u8, gt, crop, y, quantize=True).tolist()
            label = f"{space}, crop {crop}, uint8"
            rows.append(exact_row(f"PSNR {label} (calculate_psnr)", _maxdiff(ref_p, ours_p), 1e-6,
                                  f"{np.mean(ref_p):.4f} dB", f"{np.mean(ours_p):.4f} dB"))
            rows.append(exact_row(f"SSIM {label} (calculate_ssim)", _maxdiff(ref_s, ours_s), 1e-6,
                                  f"{np.mean(ref_s):.6f}", f"{np.mean(ours_s):.6f}"))
            ref_p = m.calculate_psnr_pt(pred_float, gt, crop, test_y_channel=y).tolist()
            ref_s = m.calculate_ssim_pt(pred_float, gt, crop, test_y_channel=y).tolist()
            ours_p = psnr(pred_float, gt, crop, y, quantize=False).tolist()
            ours_s = ssim(pred_float, gt, crop, y, quantize=False).tolist()
            label = f"{space}, crop {crop}, float"
            rows.append(exact_row(f"PSNR {label} (calculate_psnr_pt)", _maxdiff(ref_p, ours_p), 1e-6,
                                  f"{np.mean(ref_p):.4f} dB", f"{np.mean(ours_p):.4f} dB"))
            rows.append(exact_row(f"SSIM {label} (calculate_ssim_pt)", _maxdiff(ref_s, ours_s), 1e-6,
                                  f"{np.mean(ref_s):.6f}", f"{np.mean(ours_s):.6f}"))
    return rows


def _maxdiff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


# ---------------------------------------------------------------------- kernels
def kernel_rows(b: SimpleNamespace) -> list[Row]:
    d = b.degradations
    rows = []
    cases = {
        "iso Gaussian": (d.bivariate_Gaussian(21, 2.3, 2.3, 0, isotropic=True),
                         rz_kernels.bivariate_kernel(21, 2.3, 2.3, 0.0, family="gaussian")),
        "aniso Gaussian": (d.bivariate_Gaussian(21, 2.3, 0.9, 0.6, isotropic=False),
                           rz_kernels.bivariate_kernel(21, 2.3, 0.9, 0.6, family="gaussian")),
        "generalized iso": (d.bivariate_generalized_Gaussian(17, 1.7, 1.7, 0, 0.7, isotropic=True),
                            rz_kernels.bivariate_kernel(17, 1.7, 1.7, 0.0, 0.7, family="generalized")),
        "generalized aniso": (d.bivariate_generalized_Gaussian(15, 2.6, 1.1, -1.2, 2.5, isotropic=False),
                              rz_kernels.bivariate_kernel(15, 2.6, 1.1, -1.2, 2.5, family="generalized")),
        "plateau iso": (d.bivariate_plateau(13, 1.4, 1.4, 0, 1.5, isotropic=True),
                        rz_kernels.bivariate_kernel(13, 1.4, 1.4, 0.0, 1.5, family="plateau")),
        "plateau aniso": (d.bivariate_plateau(21, 2.9, 0.7, 2.1, 1.2, isotropic=False),
                          rz_kernels.bivariate_kernel(21, 2.9, 0.7, 2.1, 1.2, family="plateau")),
        "sinc (circular low-pass)": (d.circular_lowpass_kernel(1.3, 13, pad_to=0), rz_kernels.sinc_kernel(13, 1.3)),
    }
    for name, (ref, ours) in cases.items():
        rows.append(exact_row(f"kernel {name}", float(np.abs(ref - ours.double().numpy()).max())))
    rows += kernel_distribution_rows(b)
    return rows


def _effective_sigma(k: np.ndarray) -> float:
    """√(E[x²] + E[y²]) / √2 of a kernel taken as a distribution (its blur radius in pixels)."""
    n = k.shape[-1]
    r = np.arange(n) - (n - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    return float(np.sqrt(((xx**2 + yy**2) * k).sum() / k.sum() / 2))


def kernel_distribution_rows(b: SimpleNamespace, draws: int = 1500) -> list[Row]:
    from scipy.stats import ks_2samp

    d, opt = b.degradations, b.options["datasets"]["train"]
    rows = []
    plateau = (["plateau_iso"], [1.0])
    for label, (families, probs) in {"stage-1 mixed kernels": (opt["kernel_list"], opt["kernel_prob"]),
                                     "plateau β (iso, range [1, 2])": plateau}.items():
        random.seed(0)
        np.random.seed(0)
        ref = []
        for _ in range(draws):  # as RealESRGANDataset draws a stage-1 blur kernel (sinc excluded here)
            size = random.choice([2 * v + 1 for v in range(3, 11)])
            k = d.random_mixed_kernels(families, probs, size, opt["blur_sigma"], opt["blur_sigma"],
                                       [-math.pi, math.pi], opt["betag_range"], opt["betap_range"], noise_range=None)
            ref.append(_effective_sigma(k))
        g = torch.Generator().manual_seed(0)
        ours = []
        for _ in range(draws):
            k, _ = rz_kernels.random_mixed_kernel(g, families, probs, (7, 21), opt["blur_sigma"], opt["betag_range"],
                                                  opt["betap_range"], sinc_prob=0.0)
            ours.append(_effective_sigma(k.double().numpy()))
        p = float(ks_2samp(ref, ours).pvalue)
        rows.append({
            "check": f"{label}: effective σ distribution ({draws} draws each)",
            "basicsr": f"mean {np.mean(ref):.3f} px",
            "restorezoo": f"mean {np.mean(ours):.3f} px",
            "difference": f"KS p = {p:.3f}",
            "tolerance": "p ≥ 0.01",
            "verdict": "ok" if p >= 0.01 else "DIFFERS",
        })
    return rows


# ---------------------------------------------------------------------- operators
def operator_rows(b: SimpleNamespace) -> list[Row]:
    rows = []
    x = _photos(("astronaut", "coffee"), 64)
    ks = torch.stack([rz_kernels.bivariate_kernel(21, 2.0, 0.8, 0.4), rz_kernels.sinc_kernel(21, 1.0)])
    rows.append(exact_row("filter2D (per-sample 21×21 kernels, reflect)",
                          float((b.filter2D(x, ks) - rz_kernels.filter2d(x, ks)).abs().max())))
    rows.append(exact_row("USM sharpening (radius 50, weight 0.5, threshold 10)",
                          float((b.USMSharp()(x) - rz_kernels.usm_sharpen(x)).abs().max())))
    d = b.degradations
    sigma = torch.tensor([7.5, 22.0])
    rng = rz_realesrgan._Draw(None, x.device)  # torch's global generator, seeded identically for both
    for gray in ((0.0, 0.0), (1.0, 0.0)):
        g_t = torch.tensor(gray)
        torch.manual_seed(5)
        ref = d.generate_gaussian_noise_pt(x, sigma.clone(), g_t.clone())
        torch.manual_seed(5)
        ours = rz_realesrgan._gaussian_noise(x, sigma, g_t.bool().view(2, 1, 1, 1), rng, shared_gray=True)
        label = "colour" if not any(gray) else "grey + colour rows"
        rows.append(exact_row(f"Gaussian noise, {label} (same seed)", float((ref - ours).abs().max())))
        scale = torch.tensor([0.5, 2.0])
        torch.manual_seed(6)
        ref = d.generate_poisson_noise_pt(x, scale.clone(), g_t.clone())
        torch.manual_seed(6)
        ours = rz_realesrgan._poisson_noise(x, g_t.bool().view(2, 1, 1, 1), rng) * scale.view(2, 1, 1, 1)
        rows.append(exact_row(f"Poisson noise, {label} (same seed)", float((ref - ours).abs().max())))
    jpeger = b.DiffJPEG(differentiable=False)
    odd = _photos(("chelsea", "rocket"), 90)[..., :77]  # not a multiple of 16: exercises the padding
    for q in (30.0, 47.5, 70.0, 95.0):
        quality = torch.tensor([q, q + 0.75])
        with torch.no_grad():
            ref = jpeger(odd, quality=quality.clone())
        ours = rz_ops.diff_jpeg(odd, quality)
        diff = float((ref - ours).abs().max())
        vs_libjpeg = float((10 * torch.log10(1 / (ref - rz_ops.jpeg(odd, quality)).pow(2).mean())).item())
        rows.append(exact_row(f"JPEG q {q:g}/{q + 0.75:g} (DiffJPEG; libjpeg-style op: {vs_libjpeg:.1f} dB from it)",
                              diff, 1e-5))
    for mode in rz_realesrgan.RESIZE_MODES:
        for s in (0.37, 1.37):
            ref = F.interpolate(x, scale_factor=s, mode=mode)  # BasicSR's stage-1 call
            ours = rz_realesrgan.random_resize_step(x, s, mode)
            rows.append(exact_row(f"resize {mode} ×{s} (stage 1, scale_factor)", float((ref - ours).abs().max()), 0.0))
        h = x.shape[-2]
        ref = F.interpolate(x, size=(int(h / 4 * 1.13), int(h / 4 * 1.13)), mode=mode)  # BasicSR's stage 2 at ×4
        ours = rz_realesrgan.random_resize_step(x, 1.13, mode, base=(h / 4, h / 4))
        rows.append(exact_row(f"resize {mode} ×1.13 of h/4 (stage 2 at ×4)", float((ref - ours).abs().max()), 0.0))
    return rows


# ---------------------------------------------------------------------- the full pipeline
def _luma255(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_y(x.double()) * 255


def lq_stats(lq: torch.Tensor, gt_at_lq: torch.Tensor) -> dict[str, float]:
    """Per-batch means of what a degradation model should reproduce."""
    y = _luma255(lq)
    lap = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    h, w = y.shape[-2:]
    # Immerkær's fast noise estimate on the luma (0-255 scale)
    sigma = math.sqrt(math.pi / 2) / (6 * (w - 2) * (h - 2)) * F.conv2d(y, lap).abs().sum(dim=(1, 2, 3))
    dx, dy = y.diff(dim=-1), y.diff(dim=-2)
    grad = dx.pow(2).mean(dim=(1, 2, 3)) + dy.pow(2).mean(dim=(1, 2, 3))
    cols = torch.arange(dx.shape[-1])
    edge = (cols % 8) == 7  # differences across an 8-pixel block boundary
    blocky = dx.abs()[..., edge].mean(dim=(1, 2, 3)) / dx.abs()[..., ~edge].mean(dim=(1, 2, 3)).clamp_min(1e-9)
    return {
        "PSNR to GT (dB)": float(psnr(lq, gt_at_lq, quantize=False).mean()),
        "noise σ (Immerkær, 0-255)": float(sigma.mean()),
        "gradient energy (0-255²)": float(grad.mean()),
        "blockiness (8-px boundary / interior)": float(blocky.mean()),
    }


TOLERANCE = {  # |Δ mean| allowed on top of overlapping CIs
    "PSNR to GT (dB)": ("abs", 0.3),
    "noise σ (Immerkær, 0-255)": ("rel", 0.10),
    "gradient energy (0-255²)": ("rel", 0.10),
    "blockiness (8-px boundary / interior)": ("rel", 0.05),
}


def _crops(batch: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    names = SAMPLE_PHOTOS["train"]
    out = []
    for _ in range(batch):
        img = _photo_cache(names[int(torch.randint(len(names), (), generator=g))])
        top = int(torch.randint(img.shape[1] - size + 1, (), generator=g))
        left = int(torch.randint(img.shape[2] - size + 1, (), generator=g))
        out.append(img[:, top : top + size, left : left + size])
    return torch.stack(out)


_PHOTOS: dict[str, torch.Tensor] = {}


def _photo_cache(name: str) -> torch.Tensor:
    if name not in _PHOTOS:
        _PHOTOS[name] = sample_photo(name)
    return _PHOTOS[name]


def _basicsr_pipeline(b: SimpleNamespace, scale: int, size: int) -> SimpleNamespace:
    """BasicSR's dataset (for its kernels), a stand-in ``RealESRGANModel`` for ``feed_data``, and restorezoo's
    ``RealESRGAN`` with the same options."""
    opt = b.options
    data_opt = dict(opt["datasets"]["train"])
    workdir = Path(tempfile.mkdtemp(prefix="parity_basicsr_"))
    import cv2

    cv2.imwrite(str(workdir / "tile.png"), np.zeros((16, 16, 3), np.uint8))  # its kernels are all we use
    (workdir / "meta.txt").write_text("tile.png\n")
    data_opt.update(dataroot_gt=str(workdir), meta_info=str(workdir / "meta.txt"), io_backend={"type": "disk"})
    dataset = b.Dataset(data_opt)
    model_opt = {k: v for k, v in opt.items() if k != "datasets"}
    model_opt.update(scale=scale, gt_size=size)
    jpeger = b.DiffJPEG(differentiable=False)
    env = SimpleNamespace(opt=model_opt, quality_log=None)

    def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        if env.quality_log is not None:
            env.quality_log.append(("jpeg", quality.clone()))
        # BasicSR's filter2D views its input, which a cropped DiffJPEG output followed by a same-size
        # resize (possible at ×1 only) leaves non-contiguous; .contiguous() changes no value.
        return jpeger(x, quality=quality).contiguous()

    usm, calls = b.USMSharp(), itertools.count()

    def sharpen(x: torch.Tensor) -> torch.Tensor:
        # feed_data sharpens twice: the GT it degrades, then again after its crop and training-pair queue
        # (both no-ops here) for the loss target, which is not part of the LQ: skip that second 51² blur.
        return usm(x) if next(calls) % 2 == 0 else x

    env.fake = SimpleNamespace(
        is_train=True, opt=model_opt, device=torch.device("cpu"), jpeger=jpeg,
        usm_sharpener=sharpen, _dequeue_and_enqueue=lambda: None,
    )
    names = ("kernel_list", "kernel_prob", "sinc_prob", "blur_sigma", "betag_range", "betap_range",
             "kernel_list2", "kernel_prob2", "sinc_prob2", "blur_sigma2", "betag_range2", "betap_range2",
             "final_sinc_prob")
    pipeline_keys = ("resize_prob", "resize_range", "gaussian_noise_prob", "noise_range", "poisson_scale_range",
                     "gray_noise_prob", "jpeg_range", "second_blur_prob", "resize_prob2", "resize_range2",
                     "gaussian_noise_prob2", "noise_range2", "poisson_scale_range2", "gray_noise_prob2", "jpeg_range2")
    values = {k: data_opt[k] for k in names} | {k: opt[k] for k in pipeline_keys}
    options = rz_realesrgan.RealESRGANOptions(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    )
    env.ours = rz_realesrgan.RealESRGAN(options, scale=scale)

    def sample(gt: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
        samples = [dataset[0] for _ in range(batch_size)]
        return {"gt": gt.clone(), **{key: torch.stack([s[key] for s in samples])
                                     for key in ("kernel1", "kernel2", "sinc_kernel")}}

    env.sample = sample
    return env


def seeded_batch(env: SimpleNamespace, k: int, first_seed: int, batch_size: int, size: int, scale: int = 1
                 ) -> SimpleNamespace:
    """Batch ``k`` of a section, as every pipeline section starts one: the HQ crops of seed ``first_seed + k``
    (``gt``) and the GT at the LQ size (``gt_at_lq``: area-downsampled at ×4); then ``random``, numpy and
    torch seeded with ``k`` and BasicSR's dataset drawing the batch's kernels (``data``, what ``feed_data``
    takes), and the same kernels as restorezoo's ``RealESRGAN.apply`` takes them (``kernels``)."""
    gt = _crops(batch_size, size, first_seed + k)
    gt_at_lq = F.interpolate(gt, scale_factor=1 / scale, mode="area") if scale > 1 else gt
    random.seed(k)
    np.random.seed(k)
    torch.manual_seed(k)
    data = env.sample(gt, batch_size)
    kernels = {"kernel1": data["kernel1"], "kernel2": data["kernel2"], "sinc": data["sinc_kernel"]}
    return SimpleNamespace(gt=gt, gt_at_lq=gt_at_lq, data=data, kernels=kernels)


def pipeline_rows(b: SimpleNamespace, scale: int, batches: int, batch_size: int, size: int) -> list[Row]:
    env = _basicsr_pipeline(b, scale, size)
    fake, ours_pipe = env.fake, env.ours
    ref_stats: list[dict[str, float]] = []
    our_stats: list[dict[str, float]] = []
    for k in range(batches):
        batch = seeded_batch(env, k, 10_000, batch_size, size, scale)
        b.Model.feed_data(fake, batch.data)
        ref_stats.append(lq_stats(fake.lq, batch.gt_at_lq))
        # The same kernels for both (their sampling is compared above): what differs is the device side.
        lq, _ = ours_pipe.apply(batch.gt.clone(), batch.kernels, torch.Generator().manual_seed(k))
        our_stats.append(lq_stats(lq, batch.gt_at_lq))
    rows = []
    for key, (kind, tol) in TOLERANCE.items():
        r = np.array([s[key] for s in ref_stats])
        o = np.array([s[key] for s in our_stats])
        (rm, rh), (om, oh), (delta, dh) = _ci(r), _ci(o), _ci(o - r)
        bound = tol if kind == "abs" else tol * abs(rm)
        rows.append({
            "check": f"pipeline ×{scale}: {key}",
            "basicsr": f"{rm:.3f} [{rm - rh:.3f}, {rm + rh:.3f}]",
            "restorezoo": f"{om:.3f} [{om - oh:.3f}, {om + oh:.3f}]",
            "difference": f"{delta:+.3f} ± {dh:.3f}" + (f" ({delta / rm:+.1%} ± {dh / rm:.1%})" if kind == "rel" else ""),
            "tolerance": ("±" + (f"{tol} dB" if kind == "abs" else f"{tol:.0%}")) + " (95 % CI of Δ)",
            "verdict": interval_verdict(delta, dh, bound),
        })
    return rows


def interval_verdict(delta: float, half: float, bound: float) -> str:
    """Equivalence read from the 95 % CI of a difference, not from its point estimate.

    "ok": the whole interval lies within ±bound (equal within the tolerance, shown). "DIFFERS": the interval
    excludes 0 and the estimate is beyond the tolerance (a real difference larger than allowed).
    "unresolved": neither: the interval is wider than the tolerance, so more batches are needed (the
    replayed-draw rows are the sharp check of the deterministic pipeline).
    """
    if abs(delta) + half <= bound:
        return "ok"
    if abs(delta) > half and abs(delta) > bound:
        return "DIFFERS"
    return "unresolved"


# ---------------------------------------------------------------------- the pipeline with BasicSR's own draws
class _Recorder:
    """Stands in for a module BasicSR's code draws through (``random``, ``np``, ``np.random``, ``torch``):
    forwards every attribute and logs the results of the random calls named in ``calls``."""

    def __init__(self, module: Any, log: list[tuple[str, Any]], calls: dict[str, str],
                 children: dict[str, Any] | None = None) -> None:
        self._module, self._log, self._calls, self._children = module, log, calls, children or {}

    def __getattr__(self, name: str) -> Any:
        if name in self._children:
            return self._children[name]
        attr = getattr(self._module, name)
        if name not in self._calls:
            return attr
        tag = self._calls[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            value = attr(*args, **kwargs)
            self._log.append((tag, value.clone() if torch.is_tensor(value) else value))
            return value

        return call


class _Replay(rz_realesrgan._Draw):
    """restorezoo's random source made to return BasicSR's draws, each where restorezoo consumes it."""

    def __init__(self, device: torch.device, uniform: list[list[float]], choice: list[int], randint: list[int],
                 normal: list[torch.Tensor], poisson: list[torch.Tensor]) -> None:
        self.device = device
        self._q = {"uniform": uniform, "choice": choice, "randint": randint, "normal": normal, "poisson": poisson}

    def _next(self, kind: str) -> Any:
        if not self._q[kind]:
            raise RuntimeError(f"replay: restorezoo draws one more {kind} than BasicSR did")
        return self._q[kind].pop(0)

    def left(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._q.items() if v}

    def uniform(self, n: int) -> torch.Tensor:
        v = torch.tensor(self._next("uniform"), dtype=torch.float64)
        if v.numel() != n:
            raise RuntimeError(f"replay: restorezoo draws {n} uniforms where BasicSR drew {v.numel()}")
        return v

    def choice(self, weights: tuple[float, ...]) -> int:
        return self._next("choice")

    def randint(self, high: int, n: int) -> torch.Tensor:
        return torch.tensor([self._next("randint")] * n)

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        v = self._next("normal")
        if tuple(v.shape) != tuple(shape):
            raise RuntimeError(f"replay: normal field {tuple(shape)} where BasicSR drew {tuple(v.shape)}")
        return v.to(self.device)

    def poisson(self, rate: torch.Tensor) -> torch.Tensor:
        v = self._next("poisson")
        if v.shape != rate.shape:
            raise RuntimeError(f"replay: Poisson field {tuple(rate.shape)} where BasicSR drew {tuple(v.shape)}")
        return v.to(self.device)


def _replay_from_log(log: list[tuple[str, Any]], opt: dict) -> tuple[dict, dict[str, Any]]:
    """Walk BasicSR's ``feed_data`` draws in its order and queue each value where restorezoo's ``apply`` takes it.

    BasicSR draws values (a scale, a σ, a quality); restorezoo draws the uniforms they come from, so the
    uniform is recovered by inverting the same affine map (exact up to float64 rounding). Also returns the
    batch's decisions named as restorezoo's ``params`` name them.
    """
    log = list(log)
    modes = list(rz_realesrgan.RESIZE_MODES)
    q: dict[str, list] = {"uniform": [], "choice": [], "randint": [], "normal": [], "poisson": []}
    pending_blur2: list[float] = []

    def take(tag: str) -> Any:
        if not log or log[0][0] != tag:
            raise RuntimeError(f"replay: expected BasicSR's {tag} draw, found {log[0][0] if log else 'nothing'}")
        return log.pop(0)[1]

    decided: dict[str, Any] = {}

    def resize(stage: str) -> None:
        direction = take("choices")[0]
        q["choice"].append(("up", "down", "keep").index(direction))
        lo, hi = opt["resize_range" + stage]
        s = 1.0
        if direction == "keep":
            q["uniform"].append([0.0])
        else:
            s = float(take("np_uniform"))
            q["uniform"].append([(s - 1) / (hi - 1) if direction == "up" else (s - lo) / (1 - lo)])
        mode = take("choice")
        q["randint"].append(modes.index(mode))
        key = "resize" + (stage or "1")
        decided[key] = {"direction": direction, "scale": s, "mode": mode}

    def noise(stage: str) -> None:
        coin = float(take("np_uniform"))
        q["uniform"].append([coin])
        gaussian = coin < opt["gaussian_noise_prob" + stage]
        level = take("rand").double()  # the uniform of σ (or of the Poisson scale), then the grey coin's
        gray = take("rand").double()
        q["uniform"].append(gray.tolist())
        q["uniform"].append(level.tolist())
        lo, hi = opt["noise_range" + stage] if gaussian else opt["poisson_scale_range" + stage]
        decided["noise" + (stage or "1")] = {
            "kind": "gaussian" if gaussian else "poisson",
            ("sigma" if gaussian else "scale"): float(level[0]) * (hi - lo) + lo,
            "color": "gray" if float(gray[0]) < opt["gray_noise_prob" + stage] else "color",
        }
        kind = "randn" if gaussian else "poisson"
        while log and log[0][0] == kind:
            q["normal" if gaussian else "poisson"].append(log.pop(0)[1])

    def jpeg(stage: str) -> None:
        lo, hi = opt["jpeg_range" + stage]
        quality = take("jpeg").double()
        q["uniform"].append(((quality - lo) / (hi - lo)).tolist())
        decided["jpeg" + (stage or "1")] = float(quality[0])

    resize("")
    noise("")
    jpeg("")
    pending_blur2.append(float(take("np_uniform")))
    resize("2")
    noise("2")
    order = float(take("np_uniform"))
    q["uniform"].append([order])
    if order < 0.5:
        decided["final_resize_mode"] = take("choice")
        jpeg("2")
    else:
        jpeg("2")
        decided["final_resize_mode"] = take("choice")
    q["randint"].append(modes.index(decided["final_resize_mode"]))
    if log:
        raise RuntimeError(f"replay: BasicSR drew {len(log)} more values than restorezoo takes ({log[0][0]} first)")
    q["uniform"].insert(0, pending_blur2)  # restorezoo tosses the batch's second-blur coin first
    decided["blur2"] = pending_blur2[0] < opt["second_blur_prob"]
    decided["final_order"] = "resize_sinc_jpeg" if order < 0.5 else "jpeg_resize_sinc"
    return q, decided


def _logged_feed_data(b: SimpleNamespace, env: SimpleNamespace, data: dict) -> list[tuple[str, Any]]:
    """Run BasicSR's ``feed_data`` on ``data`` with every random draw it makes logged, in order."""
    model_mod, deg = sys.modules[b.Model.__module__], b.degradations
    log: list[tuple[str, Any]] = []
    saved = (model_mod.random, model_mod.np, deg.torch)
    env.quality_log = log
    model_mod.random = _Recorder(random, log, {"choices": "choices", "choice": "choice"})
    model_mod.np = _Recorder(np, log, {}, {"random": _Recorder(np.random, log, {"uniform": "np_uniform"})})
    deg.torch = _Recorder(torch, log, {"rand": "rand", "randn": "randn", "poisson": "poisson"})
    try:
        b.Model.feed_data(env.fake, data)
    finally:
        model_mod.random, model_mod.np, deg.torch = saved
        env.quality_log = None
    return log


def draw_rows(b: SimpleNamespace, batches: int, size: int = 96) -> list[Row]:
    """The pipeline's random decisions, drawn by each library (its own RNG), compared in distribution.

    With the replay rows showing that equal draws give equal LQs, these are what is left to compare, and
    they are cheap: thousands of batches resolve differences that image statistics over hundreds cannot.
    Decisions do not depend on the scale, so ×1 crops are used. Categorical decisions: χ² test of the two
    count tables; continuous ones: two-sample KS. The p threshold is 1 % over the family (Bonferroni).
    """
    from scipy.stats import chi2_contingency, ks_2samp

    env = _basicsr_pipeline(b, 1, size)
    ref: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    for k in range(batches):
        batch = seeded_batch(env, k, 30_000, 1, size)
        decided = _replay_from_log(_logged_feed_data(b, env, batch.data), env.opt)[1]
        ref.append(_flat(decided))
        _, params = env.ours.apply(batch.gt.clone(), batch.kernels, torch.Generator().manual_seed(k))
        ours.append(_flat({key: params[0][key] for key in decided}))
    categorical = [f"{stage}.{what}" for stage in ("resize1", "noise1") for what in ("direction", "mode", "kind",
                   "color") if f"{stage}.{what}" in ref[0]]
    categorical += [key.replace("1", "2") for key in categorical] + ["blur2", "final_order", "final_resize_mode"]
    continuous = [(f"{stage}.scale", direction) for stage in ("resize1", "resize2") for direction in ("up", "down")]
    continuous += [(f"noise{i}.{what}", None) for i in (1, 2) for what in ("sigma", "scale")]
    continuous += [("jpeg1", None), ("jpeg2", None)]
    alpha = 0.01 / (len(categorical) + len(continuous))
    rows = []
    for key in categorical:
        cats = sorted({str(d[key]) for d in ref + ours})
        table = np.array([[sum(str(d[key]) == c for d in side) for c in cats] for side in (ref, ours)])
        p = 1.0 if len(cats) < 2 else float(chi2_contingency(table).pvalue)
        shares = [", ".join(f"{c} {n / row.sum():.3f}" for c, n in zip(cats, row)) for row in table]
        rows.append(_p_row(f"draws: {key} ({batches} batches each, χ²)", *shares, p, alpha))
    for key, direction in continuous:
        stage = key.split(".")[0]
        r, o = ([float(d[key]) for d in side if key in d and d.get(f"{stage}.direction", direction) == direction]
                for side in (ref, ours))
        p = float(ks_2samp(r, o).pvalue)
        rows.append(_p_row(f"draws: {key}" + (f" ({direction})" if direction else "") + " (KS)",
                           f"mean {np.mean(r):.3f} (n {len(r)})", f"mean {np.mean(o):.3f} (n {len(o)})", p, alpha))
    return rows


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            out[key] = value
    return out


def _p_row(check: str, ref: str, ours: str, p: float, alpha: float) -> Row:
    return {"check": check, "basicsr": ref, "restorezoo": ours, "difference": f"p = {p:.3f}",
            "tolerance": f"p ≥ {alpha:.1e}", "verdict": "ok" if p >= alpha else "DIFFERS"}


def replay_rows(b: SimpleNamespace, scale: int, batches: int, batch_size: int, size: int) -> list[Row]:
    """The second-order pipeline with identical draws: BasicSR's ``feed_data`` is run with its random calls
    logged, and restorezoo's ``apply`` is handed the same values. Equal pipelines give the same LQ (to
    float rounding), so the paired statistics differ by ~0 and any real deviation stands out."""
    env = _basicsr_pipeline(b, scale, size)
    ours_pipe = env.ours
    diffs: list[float] = []
    off_pixels = 0
    total_pixels = 0
    ref_stats: list[dict[str, float]] = []
    our_stats: list[dict[str, float]] = []
    real_draw = rz_realesrgan._Draw
    errors: list[str] = []
    batches_off = 0
    for k in range(batches):
        batch = seeded_batch(env, k, 20_000, batch_size, size, scale)
        log = _logged_feed_data(b, env, batch.data)
        ref = env.fake.lq
        replay = _Replay(torch.device("cpu"), **_replay_from_log(log, env.opt)[0])
        rz_realesrgan._Draw = lambda *_args, _r=replay: _r  # type: ignore[assignment,misc]
        try:
            lq, _ = ours_pipe.apply(batch.gt.clone(), batch.kernels)
            if replay.left():
                raise RuntimeError(f"replay: restorezoo left BasicSR draws unused: {replay.left()}")
            if lq.shape != ref.shape:
                raise RuntimeError(f"replay: LQ {tuple(lq.shape)} vs BasicSR's {tuple(ref.shape)}")
        except RuntimeError as error:  # the pipelines draw differently: a deviation, reported as a row
            errors.append(str(error))
            continue
        finally:
            rz_realesrgan._Draw = real_draw  # type: ignore[misc]
        d = (lq - ref).abs()
        diffs.append(float(d.max()))
        off_pixels += int((d > 0.5 / 255).sum())
        total_pixels += d.numel()
        batches_off += bool(float(d.max()) > 0.5 / 255)
        ref_stats.append(lq_stats(ref, batch.gt_at_lq))
        our_stats.append(lq_stats(lq, batch.gt_at_lq))
    if errors:
        return [{"check": f"pipeline ×{scale}, BasicSR's own draws replayed ({batches} batches)", "basicsr": "",
                 "restorezoo": "", "difference": f"{len(errors)} batches cannot be replayed: {errors[0]}",
                 "tolerance": "every batch", "verdict": "DIFFERS"}]
    rows = [{
        "check": f"pipeline ×{scale}, BasicSR's own draws replayed: LQ values ({batches} batches)",
        "basicsr": "",
        "restorezoo": "",
        "difference": f"{batches_off} of {batches} batches differ at all; {off_pixels / total_pixels:.2e} of values "
                      f"(max {max(diffs) * 255:.0f}/255)",
        "tolerance": f"≤ {REPLAY_OFF:.0%} of values",
        "verdict": "ok" if off_pixels / total_pixels <= REPLAY_OFF else "DIFFERS",
    }]
    for key, (kind, _tol) in TOLERANCE.items():
        r = np.array([s[key] for s in ref_stats])
        o = np.array([s[key] for s in our_stats])
        delta = o - r
        bound = REPLAY_TOL[key] * (1 if kind == "abs" else abs(r.mean()))
        mean_abs, worst = float(np.abs(delta).mean()), float(np.abs(delta).max())
        rows.append({
            "check": f"pipeline ×{scale}, replayed draws: {key}",
            "basicsr": f"{r.mean():.3f}",
            "restorezoo": f"{o.mean():.3f}",
            "difference": f"mean |Δ| {mean_abs:.2e} (worst batch {worst:.2e})",
            "tolerance": f"mean |Δ| ≤ {bound:.1e}",
            "verdict": "ok" if mean_abs <= bound else "DIFFERS",
        })
    return rows


REPLAY_OFF = 0.01
"""Share of LQ values allowed to differ with identical draws. The operators differ by float rounding only
(USM ≤ 2e-7, DiffJPEG ≤ 4e-7: the operator rows), but the pipeline rounds on the way (the Poisson noise
rounds its image to 8 bits; DiffJPEG rounds DCT coefficients): a value on a rounding boundary flips, and
the flip grows with the noise scale and spreads over the JPEG block (traced at ×4, batch 37: 3 stage-1
values off by 2.38/255 = the Poisson scale × one level, 493 of 4800 LQ values at the end). A real
deviation moves most values of most batches (the former stage-2 size, resize or USM choices: 25-100 %)."""
REPLAY_TOL = {  # mean per-batch |Δ| with identical draws (abs in dB / rel): only the rounding flips above may
    # differ, and they touch a few batches (a single flipped batch may exceed these: the mean may not)
    "PSNR to GT (dB)": 0.01,
    "noise σ (Immerkær, 0-255)": 0.005,
    "gradient energy (0-255²)": 0.005,
    "blockiness (8-px boundary / interior)": 0.005,
}


def _ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (normal approximation over batches)."""
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))


# ====================================================================== main
def to_markdown(rows: list[Row], header: list[str]) -> str:
    cols = ["check", "basicsr", "restorezoo", "difference", "tolerance", "verdict"]
    titles = ["check", "BasicSR", "restorezoo", "difference", "tolerance", "verdict"]
    lines = [*header, "", "| " + " | ".join(titles) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    unresolved = sum(r["verdict"] == "unresolved" for r in rows)
    failed = sum(r["verdict"] == "DIFFERS" for r in rows)
    lines += ["", f"{len(rows) - failed - unresolved} of {len(rows)} rows within tolerance"
              + (f", {unresolved} unresolved (interval wider than the tolerance)" if unresolved else "")
              + (f", {failed} differ" if failed else "") + "."]
    return "\n".join(lines) + "\n"


SECTIONS = ("metrics", "kernels", "operators", "draws", "replay-x1", "replay-x4", "pipeline-x1", "pipeline-x4")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr", required=True, help="path of your BasicSR checkout (the folder holding basicsr/)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)}); default: all")
    parser.add_argument("--batches", type=int, default=1000, help="seeded batches per pipeline-statistics scale "
                        "(default 1000)")
    parser.add_argument("--replay-batches", type=int, default=50, help="batches per scale run with BasicSR's own "
                        "draws replayed into restorezoo (default 50)")
    parser.add_argument("--draw-batches", type=int, default=2000, help="batches whose random decisions are "
                        "compared in distribution (default 2000)")
    parser.add_argument("--batch-size", type=int, default=1, help="HQ crops per batch (default 1: the batch-level "
                        "draws dominate the variance, so more batches of one image give the tightest intervals)")
    parser.add_argument("--size1", type=int, default=96, help="HQ crop side at ×1 (default 96)")
    parser.add_argument("--size4", type=int, default=160, help="HQ crop side at ×4 (default 160; BasicSR's reflect "
                        "padding needs every intermediate image above 10 px)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help=f"Markdown output (default {DEFAULT_OUT.relative_to(ROOT)}; "
                        "with --only, benchmarks/results/parity_basicsr_only.md)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        b = load_basicsr(args.basicsr)
    except ParityError as error:
        print(f"parity_basicsr: {error}", file=sys.stderr)
        return 2
    sections = args.only or list(SECTIONS)
    start = time.time()
    rows: list[Row] = []
    for section in SECTIONS:
        if section not in sections:
            continue
        if section == "metrics":
            rows += metric_rows(b)
        elif section == "kernels":
            rows += kernel_rows(b)
        elif section == "operators":
            rows += operator_rows(b)
        elif section == "draws":
            rows += draw_rows(b, args.draw_batches, args.size1)
        else:
            kind, scale = section.split("-x")
            size = args.size1 if scale == "1" else args.size4
            run = replay_rows if kind == "replay" else pipeline_rows
            rows += run(b, int(scale), args.replay_batches if kind == "replay" else args.batches,
                        args.batch_size, size)
    elapsed = time.time() - start
    command = ("python benchmarks/parity_basicsr.py --basicsr PATH"
               + (f" --only {' '.join(args.only)}" if args.only else "")
               + f" --batches {args.batches} --replay-batches {args.replay_batches} --draw-batches {args.draw_batches}")
    header = [
        "# restorezoo vs BasicSR: metrics and the Real-ESRGAN degradations",
        "",
        f"`{command}` against {b.label}; {machine(torch.device('cpu'))}; {elapsed / 60:.1f} min.",
        "",
        "Operators are compared value by value (same inputs, same seeds). The second-order pipeline is "
        "compared three ways. *Replayed draws*: BasicSR's `RealESRGANModel.feed_data` (kernels from its "
        "`RealESRGANDataset`, options of its `train_realesrnet_x4plus.yml`) runs with every random call "
        "logged, and restorezoo's default `RealESRGAN` is handed the same values where it draws them: equal "
        "pipelines give the same LQ. *Draws*: the random decisions each library makes with its own generator, "
        "compared in distribution (χ² / KS, 1 % over the family). *Statistics*: per-batch means of the LQ "
        f"over {args.batches} seeded batches of {args.batch_size} HQ crop(s) ({args.size1}² at ×1, "
        f"{args.size4}² at ×4; scikit-image's sample photos), each library drawing its own randomness (same "
        "crops and kernels); the difference is the mean of the per-batch differences ± its 95 % half-width, "
        "and a row is ok when that whole interval lies within the tolerance, DIFFERS when it excludes 0 "
        "beyond the tolerance, unresolved otherwise. At ×4 the LQ is compared with the area-downsampled GT.",
    ]
    default = DEFAULT_OUT if args.only is None else DEFAULT_OUT.with_name("parity_basicsr_only.md")
    write_report(to_markdown(rows, header), args.out, str(default))
    return 0 if all(r["verdict"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
