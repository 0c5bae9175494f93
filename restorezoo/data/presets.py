"""The benchmark presets: named test sets, where each lives on disk (as distributed), its task and its protocol.

Plain data without torch, so that ``restorezoo list`` and ``restorezoo data check`` answer without
importing the model stack. ``restorezoo.data.testsets`` re-exports everything here and adds the
``Benchmark`` dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restorezoo.metrics.protocol import MetricProtocol

INSTRUCTIR_RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=False)
"""restorezoo's InstructIR protocol: BasicSR's float path (``calculate_psnr_pt``) on the clamped output, RGB,
no border crop, padded (not cropped) to the network's multiple. The release's own script: INSTRUCTIR_RELEASE."""
DERAIN_Y = MetricProtocol(y_channel=True, crop_border=0, quantize=True)
"""Deraining convention (Rain100L/H): Y channel of the uint8 images."""
JPEG_Y = MetricProtocol(y_channel=True, crop_border=0, quantize=True)
"""JPEG artefact removal papers (LIVE1, Classic5): Y channel of the uint8 images, no crop."""
SR_Y = MetricProtocol(y_channel=True, crop_border=4, quantize=True)
"""Super-resolution convention: Y channel, a border as wide as the scale (×4 → 4 pixels) cropped."""
DACLIP_RGB = MetricProtocol(y_channel=False, crop_border=4, quantize=True)
"""DA-CLIP's released test script: uint8 RGB with a 4-pixel border crop (it also reports Y and LPIPS)."""
CAPTIONED_RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=True)
"""SPIRE's MS-COCO table: uint8 RGB, no crop (next to FID, LPIPS and CLIP scores)."""
NO_REFERENCE = MetricProtocol(y_channel=False, crop_border=0, quantize=True)
"""Real photos without ground truth (RealPhoto60, RealSnow, RTTS): only no-reference metrics apply."""

INSTRUCTIR_RELEASE = MetricProtocol(quantize=False, clamp=False, release="instructir", crop_multiple=16)
"""InstructIR's released ``test.py`` number for number: LQ/GT centre-cropped to x16, raw (unclamped) float
output, its PSNR/SSIM formulas, its template prompts seeded with 42 (``restorezoo.metrics.release``)."""
INSTRUCTIR_RELEASE_RAIN = MetricProtocol(
    quantize=False, clamp=False, release="instructir", crop_multiple=16, also_y=True
)
"""The same on its rain sets, which it also scores on Y, with its luma quirk (BGR weights on RGB, uint8
truncation): ``psnr_y``/``ssim_y`` columns."""
PROTOCOL_CHOICES = ("preset", "instructir-release")
"""``Benchmark(protocol=...)``: the preset's own protocol (BasicSR-exact), or InstructIR's release script."""


def release_protocol(task: str) -> MetricProtocol:
    """The ``instructir-release`` protocol of a preset of ``task`` (Y as well on rain, as the release)."""
    return INSTRUCTIR_RELEASE_RAIN if task == "rain" else INSTRUCTIR_RELEASE


MIXED = "mixed"
"""Task of presets whose samples each carry the task of the degradation actually applied."""


@dataclass(frozen=True)
class BenchmarkPreset:
    """One named test set.

    ``hq``/``lq`` are folders relative to the data root. Synthetic presets have no ``lq`` and
    a ``degradation`` spec applied deterministically per image instead. ``match`` pairs file names
    (``pair_keys``: "stem", "prefix", "suffix:LQ,HQ"); ``captions`` is a COCO-style JSON relative to
    the root whose captions go with the ``hq`` images. ``degradation_prompt``: each sample's prompt is
    the one its degradation wrote (SPIRE's restoration prompt, "Deblur with sigma 1.5; Dejpeg with
    quality 40;"), not an instruction of the task. ``metrics`` are the paper's columns for this set
    (``--metrics.learned`` takes the learned ones). ``hq=None``: real photos without ground truth (LQ
    only, no-reference metrics). ``lq_upsample``: the distributed LQ is 1/scale of the HQ (StableSR's
    128² → 512²) and is resized to the HQ size (bicubic), since restorezoo's restorers work at the input size.

    A synthetic preset's degraded image is drawn from the preset name and the image name alone, on the
    full image, before any crop or resize a model's config asks for: every model scores the same inputs.
    """

    name: str
    task: str
    hq: str | None
    protocol: MetricProtocol
    lq: str | None = None
    degradation: Any = None
    match: str = "stem"
    paper: str = ""
    captions: str | None = None
    degradation_prompt: bool = False
    metrics: tuple[str, ...] = ()
    lq_upsample: bool = False

    def layout(self, root: str | Path = "<root>") -> str:
        """The folders this preset expects, for error messages and ``restorezoo data check``."""
        base = Path(root)
        parts = [f"{base / self.lq} (LQ)"] if self.lq else []
        if self.hq is not None:
            parts.append(f"{base / self.hq} ({'clean, degraded on the fly' if self.lq is None else 'HQ'})")
        if self.captions:
            parts.append(f"{base / self.captions} (captions)")
        return " + ".join(parts)


def _noise(name: str, folder: str, sigma: int) -> BenchmarkPreset:
    return BenchmarkPreset(
        name=f"{name}_sigma{sigma}",
        task="noise",
        hq=folder,
        protocol=INSTRUCTIR_RGB,
        degradation={"name": "noise", "sigmas": [sigma]},
        paper="InstructIR Tab. 2 (σ on the 0-255 scale)",
    )


PRESETS: dict[str, BenchmarkPreset] = {
    preset.name: preset
    for preset in (
        *(_noise("cbsd68", "CBSD68/original_png", s) for s in (15, 25, 50)),
        *(_noise("urban100", "Urban100/HR", s) for s in (15, 25, 50)),
        *(_noise("kodak24", "Kodak24", s) for s in (15, 25, 50)),
        BenchmarkPreset("rain100l", "rain", "Rain100L/target", DERAIN_Y, lq="Rain100L/input", paper="InstructIR 3D/5D"),
        BenchmarkPreset("rain100h", "rain", "Rain100H/target", DERAIN_Y, lq="Rain100H/input"),
        BenchmarkPreset(
            "sots_outdoor", "haze", "SOTS/outdoor/gt", INSTRUCTIR_RGB, lq="SOTS/outdoor/hazy", match="prefix"
        ),
        BenchmarkPreset("gopro", "blur", "GoPro/test/target", INSTRUCTIR_RGB, lq="GoPro/test/input"),
        BenchmarkPreset("lol", "lowlight", "LOL/eval15/high", INSTRUCTIR_RGB, lq="LOL/eval15/low"),
        BenchmarkPreset("mit5k", "enhancement", "MIT5K/test/target", INSTRUCTIR_RGB, lq="MIT5K/test/input"),
        BenchmarkPreset(
            "live1_q10",
            "jpeg",
            "LIVE1",
            JPEG_Y,
            degradation={"name": "jpeg", "quality": [10, 10]},
            paper="Diff-Restorer JPEG q10; JPEG papers score LIVE1 on Y",
        ),
        BenchmarkPreset(
            "raindrop_a",
            "raindrop",
            "RainDrop/test_a/gt",
            DACLIP_RGB,
            lq="RainDrop/test_a/data",
            match="suffix:_rain,_clean",
            paper="DA-CLIP Tab. 3 raindrop (Qian et al. test_a, 58 pairs)",
        ),
        BenchmarkPreset(
            "snow100k_l",
            "snow",
            "Snow100K/test/Snow100K-L/gt",
            DACLIP_RGB,
            lq="Snow100K/test/Snow100K-L/synthetic",
            paper="DA-CLIP Tab. 3 snow (Snow100K-L)",
        ),
        BenchmarkPreset(
            "srd",
            "shadow",
            "SRD/test/shadow_free",
            DACLIP_RGB,
            lq="SRD/test/shadow",
            match="suffix:,_free",
            paper="DA-CLIP Tab. 3 shadow removal (SRD test, 408 pairs)",
        ),
        BenchmarkPreset(
            "reside6k",
            "haze",
            "RESIDE-6K/test/GT",
            DACLIP_RGB,
            lq="RESIDE-6K/test/hazy",
            paper="DA-CLIP Tab. 3 dehazing (RESIDE-6k test, 1000 pairs)",
        ),
        BenchmarkPreset(
            "div2k_val_x4",
            "sr",
            "DIV2K/DIV2K_valid_HR",
            SR_Y,
            degradation={"name": "sr", "scales": [4]},
            paper="InstructIR 6D SR (bicubic ×4 down-up, restored at input size); SR papers: Y, crop 4",
        ),
        BenchmarkPreset(
            "coco_val",
            MIXED,
            "COCO/val2017",
            CAPTIONED_RGB,
            degradation={"name": "parameterized", "values_prob": 1.0},
            captions="COCO/annotations/captions_val2017.json",
            paper="SPIRE Tab. 1 left (MS-COCO val with captions, parameterized degradation, every restoration "
            "prompt with its parameters; the paper uses 3000 images: max_images=3000)",
            degradation_prompt=True,
            metrics=("psnr", "ssim", "lpips", "fid", "clip_i", "clip_t"),
        ),
        BenchmarkPreset(
            "coco_val_realesrgan_x4",
            "realesrgan",
            "COCO/val2017",
            CAPTIONED_RGB,
            degradation={"name": "realesrgan", "scale": 4},
            captions="COCO/annotations/captions_val2017.json",
            paper="SPIRE Tab. 1 right (the same MS-COCO val images, Real-ESRGAN ×4 degradation as BasicSR "
            "trains the open checkpoints, prompt 'Remove all degradation'; LQ resized back to the HQ size)",
            degradation_prompt=True,
            metrics=("psnr", "ssim", "lpips", "fid", "clip_i", "clip_t"),
        ),
        BenchmarkPreset(
            "realphoto60",
            "realesrgan",
            None,
            NO_REFERENCE,
            lq="RealPhoto60",
            paper="SPIRE Tab. 4 (RealPhoto60 of SUPIR, real photos, no ground truth: CLIP-IQA, MUSIQ, MANIQA)",
            metrics=("clipiqa", "musiq", "maniqa"),
        ),
        BenchmarkPreset(
            "div2k_val_stablesr",
            "realesrgan",
            "StableSR/DIV2K_V2_val/gt",
            CAPTIONED_RGB,
            lq="StableSR/DIV2K_V2_val/lq",
            paper="SPIRE Tab. 3 (StableSR's DIV2K validation pairs: 512² crops of DIV2K val, Real-ESRGAN ×4 "
            "LQ at 128², no prompt; the folder names are restorezoo's guess of StableSR's archive, "
            "lq_dir/hq_dir override them)",
            metrics=("psnr", "ssim", "lpips", "fid", "clip_i"),
            lq_upsample=True,
        ),
        BenchmarkPreset(
            "rain1400",
            "rain",
            "Rain1400/test/ground_truth",
            DERAIN_Y,
            lq="Rain1400/test/rainy_image",
            match="prefix",
            paper="Diff-Restorer rain (Rain1400 test of Fu et al.: 14 rainy images per ground truth, "
            "'<n>_<k>.jpg' ↔ '<n>.jpg')",
            metrics=("fid", "lpips", "dists", "niqe", "musiq", "clipiqa"),
        ),
        BenchmarkPreset(
            "realsnow",
            "snow",
            "RealSnow/test/gt",
            DACLIP_RGB,
            lq="RealSnow/test/input",
            paper="Diff-Restorer real-world snow (RealSnow of WGWS-Net: real snowy photos with clean references, "
            "scored with all six metrics; the folder names are restorezoo's guess, lq_dir/hq_dir override them)",
            metrics=("fid", "lpips", "dists", "niqe", "musiq", "clipiqa"),
        ),
        BenchmarkPreset(
            "rtts",
            "haze",
            None,
            NO_REFERENCE,
            lq="RTTS/JPEGImages",
            paper="Diff-Restorer real-world haze (RESIDE RTTS, no ground truth: NIQE, MUSIQ, CLIP-IQA)",
            metrics=("niqe", "musiq", "clipiqa"),
        ),
        *(
            BenchmarkPreset(
                f"cbsd68_{mixture.replace('+', '_')}",
                MIXED,
                "CBSD68/original_png",
                INSTRUCTIR_RGB,
                degradation=mixture,
                paper=f"Diff-Restorer mixed test set {mixture}: noise σ 50 and JPEG q 10 as its single sets; the "
                "paper gives no blur, snow or raindrop level and no clean base set, so those levels (the "
                "pipelines' defaults) and CBSD68 are restorezoo's choice",
            )
            for mixture in ("noise+blur", "snow+noise", "raindrop+noise+blur", "jpeg+noise+blur")
        ),
    )
}

DIFFRESTORER_BENCHMARKS: tuple[str, ...] = (
    "cbsd68_sigma50",
    "lol",
    "sots_outdoor",
    "rain1400",
    "raindrop_a",
    "snow100k_l",
    "gopro",
    "live1_q10",
    "cbsd68_noise_blur",
    "cbsd68_snow_noise",
    "cbsd68_raindrop_noise_blur",
    "cbsd68_jpeg_noise_blur",
    "realsnow",
    "rtts",
)
"""Diff-Restorer's eight single-degradation test sets (noise σ 50, low-light, haze, rain (Rain1400's test set, as
the paper), raindrop, snow, blur, JPEG q 10; public sets standing in where the paper's own are not distributed),
its four mixtures and its two real-world sets (RealSnow; RTTS without ground truth)."""
