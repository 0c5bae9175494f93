"""Errors a user can act on. The CLI prints them as one line instead of a traceback."""

from __future__ import annotations


def first_line(error: BaseException, default: str | None = None) -> str:
    """The first line of an error's message (one line for the user), else ``default`` or its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else (default if default is not None else type(error).__name__)


class RestoreZooError(Exception):
    """Base class of every error restorezoo raises on purpose."""


class WeightsNotFoundError(RestoreZooError, FileNotFoundError):
    """Pretrained weights are neither on disk, in ``RESTOREZOO_WEIGHTS``, nor reachable online."""


class ImageLoadError(RestoreZooError, ValueError):
    """An image file is missing, corrupt, or too large to restore safely."""


class DataError(RestoreZooError, ValueError):
    """A dataset is misconfigured: missing folders, unmatched pairs, bad manifest rows."""


class CheckpointError(RestoreZooError, ValueError):
    """A checkpoint is unsafe to unpickle, or holds another model or other shapes than asked for."""


class NonFiniteLossError(RestoreZooError, FloatingPointError):
    """Training produced too many non-finite losses in a row to go on."""


class InvalidImageError(RestoreZooError, ValueError):
    """An image tensor handed to the Python API is not B×3×H×W or holds NaN/inf values."""
