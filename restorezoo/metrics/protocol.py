"""How a benchmark is scored: the colour space, the border crop and the rounding.

Papers disagree on these and the differences move PSNR by more than most method gains
(Y vs RGB alone is often > 1 dB), so every benchmark preset carries its protocol explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricProtocol:
    """Scoring convention of one test set.

    Attributes:
        y_channel: score the MATLAB BT.601 luma (``rgb2ycbcr``'s Y) instead of RGB.
        crop_border: pixels removed from every side before scoring.
        quantize: round images to uint8 first, as BasicSR's ``tensor2img`` + ``calculate_psnr`` and most
            released test scripts do; False scores the float images as BasicSR's ``calculate_psnr_pt`` /
            ``calculate_ssim_pt`` (no clamp, no rounding, MSE floored at 1e-8: identical images give 80 dB).
        clamp: with ``quantize=False``, clamp the prediction to [0, 1] first (BasicSR's ``tensor2img``
            does; False scores a model's raw output, as InstructIR's release does).
        release: score with a released test script's own formulas instead of BasicSR's
            (``"instructir"``: ``restorezoo.metrics.release``).
        crop_multiple: the dataset centre-crops LQ and GT to a multiple of this before the model runs
            (InstructIR's release: 16); 0 keeps the full image (restorezoo pads and crops back).
        also_y: also report ``psnr_y``/``ssim_y`` (InstructIR's release does on its rain sets).
    """

    y_channel: bool = False
    crop_border: int = 0
    quantize: bool = True
    clamp: bool = True
    release: str = ""
    crop_multiple: int = 0
    also_y: bool = False

    def describe(self) -> str:
        if self.release:
            extra = " + Y (release luma quirk)" if self.also_y else ""
            return f"{self.release} release script: RGB float unclamped{extra}, centre crop to x{self.crop_multiple}"
        space = "Y" if self.y_channel else "RGB"
        rounding = "uint8" if self.quantize else "float"
        return f"{space}, crop {self.crop_border}, {rounding}"


RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=True)
"""Default protocol: RGB, no crop, uint8 rounding."""
