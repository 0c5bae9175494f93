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
    """

    y_channel: bool = False
    crop_border: int = 0
    quantize: bool = True

    def describe(self) -> str:
        space = "Y" if self.y_channel else "RGB"
        rounding = "uint8" if self.quantize else "float"
        return f"{space}, crop {self.crop_border}, {rounding}"


RGB = MetricProtocol(y_channel=False, crop_border=0, quantize=True)
"""Default protocol: RGB, no crop, uint8 rounding."""
