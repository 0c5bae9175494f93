"""Metrics: BasicSR-exact PSNR/SSIM, pyiqa-exact FID, optional pyiqa metrics, benchmark tables and the metric callback.

``RestorationMetrics`` is imported lazily so that the functional metrics can be used (e.g. in a
notebook or another project) without importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy (module __getattr__), like restorezoo.data: importing the package, or restorezoo.metrics.protocol for
# the benchmark presets, does not import torch; each name imports its module on first use.
_EXPORTS = {
    "psnr": "restorezoo.metrics.functional",
    "psnr_ssim": "restorezoo.metrics.functional",
    "rgb_to_y": "restorezoo.metrics.functional",
    "ssim": "restorezoo.metrics.functional",
    "FID_MODES": "restorezoo.metrics.inception",
    "InceptionFeatures": "restorezoo.metrics.inception",
    "fid": "restorezoo.metrics.inception",
    "frechet_distance": "restorezoo.metrics.inception",
    "KNOWN_LEARNED": "restorezoo.metrics.learned",
    "LearnedMetric": "restorezoo.metrics.learned",
    "build_learned_metrics": "restorezoo.metrics.learned",
    "RGB": "restorezoo.metrics.protocol",
    "MetricProtocol": "restorezoo.metrics.protocol",
    "NA_WEIGHTS": "restorezoo.metrics.tables",
    "print_table": "restorezoo.metrics.tables",
    "rows_from_state": "restorezoo.metrics.tables",
    "to_markdown": "restorezoo.metrics.tables",
    "write_csv": "restorezoo.metrics.tables",
    "write_markdown": "restorezoo.metrics.tables",
    "RestorationMetrics": "restorezoo.metrics.callback",
}

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
