"""Errors a user can act on. The CLI prints them as one line instead of a traceback."""

from __future__ import annotations


class RestoreZooError(Exception):
    """Base class of every error restorezoo raises on purpose."""


class WeightsNotFoundError(RestoreZooError, FileNotFoundError):
    """Pretrained weights are neither on disk, in ``RESTOREZOO_WEIGHTS``, nor reachable online."""


class ImageLoadError(RestoreZooError, ValueError):
    """An image file is missing, corrupt, or too large to restore safely."""


class DataError(RestoreZooError, ValueError):
    """A dataset is misconfigured: missing folders, unmatched pairs, bad manifest rows."""
