"""Metrics: BasicSR-exact PSNR/SSIM, pyiqa-exact FID, optional pyiqa metrics, benchmark tables and the metric callback.

``RestorationMetrics`` is imported lazily so that the functional metrics can be used (e.g. in a
notebook or another project) without importing Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restorezoo.metrics.functional import psnr, psnr_ssim, rgb_to_y, ssim
from restorezoo.metrics.inception import FID_MODES, InceptionFeatures, fid, frechet_distance
from restorezoo.metrics.learned import KNOWN_LEARNED, LearnedMetric, build_learned_metrics
from restorezoo.metrics.protocol import RGB, MetricProtocol
from restorezoo.metrics.tables import (
    NA_WEIGHTS,
    print_table,
    rows_from_state,
    to_markdown,
    write_csv,
    write_markdown,
)

if TYPE_CHECKING:
    from restorezoo.metrics.callback import RestorationMetrics

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
    if name == "RestorationMetrics":
        from restorezoo.metrics.callback import RestorationMetrics

        return RestorationMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
