"""Metrics: BasicSR-exact PSNR/SSIM, pyiqa-exact FID, optional pyiqa metrics, benchmark tables and the metric callback.

``RestorationMetrics`` is imported lazily so that the functional metrics can be used (e.g. in a
notebook or another project) without importing Lightning.
"""

from __future__ import annotations

from restorezoo.lazy import lazy_exports

# Lazy (module __getattr__), like restorezoo.data: importing the package, or restorezoo.metrics.protocol for
# the benchmark presets, does not import torch; each name imports its module on first use.
_MODULES = {
    "restorezoo.metrics.functional": ("psnr", "psnr_ssim", "rgb_to_y", "ssim"),
    "restorezoo.metrics.inception": ("FID_MODES", "InceptionFeatures", "fid", "frechet_distance"),
    "restorezoo.metrics.learned": ("KNOWN_LEARNED", "LearnedMetric", "build_learned_metrics"),
    "restorezoo.metrics.protocol": ("RGB", "MetricProtocol"),
    "restorezoo.metrics.tables": ("NA_WEIGHTS", "print_table", "rows_from_state", "to_markdown", "write_csv", "write_markdown"),
    "restorezoo.metrics.callback": ("RestorationMetrics",),
    "restorezoo.metrics.accuracy": ("ClassAccuracy", "masked_accuracy"),
}
_EXPORTS, __getattr__ = lazy_exports(__name__, _MODULES)

__all__ = [
    "ClassAccuracy",
    "FID_MODES",
    "InceptionFeatures",
    "KNOWN_LEARNED",
    "NA_WEIGHTS",
    "RGB",
    "LearnedMetric",
    "MetricProtocol",
    "RestorationMetrics",
    "build_learned_metrics",
    "fid",
    "frechet_distance",
    "masked_accuracy",
    "print_table",
    "psnr",
    "psnr_ssim",
    "rgb_to_y",
    "rows_from_state",
    "ssim",
    "to_markdown",
    "write_csv",
    "write_markdown",
]



def __dir__() -> list[str]:
    return __all__
