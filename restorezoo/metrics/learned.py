"""Learned quality metrics (LPIPS, DISTS, NIQE, MUSIQ, CLIP-IQA through pyiqa; CLIP-I and CLIP-T through
open_clip; FID on pyiqa's Inception), optional by design.

These metrics need pretrained weights that pyiqa downloads on first use. On an offline machine, a
cluster node without internet or a CI runner, that download must not hang a test run or crash it
after hours of sampling: creation here is guarded by a short socket timeout and offline flags, fails
fast, and leaves an *unavailable* metric that the results table reports as "n/a (weights unavailable)".
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from restorezoo.metrics.inception import InceptionFeatures, frechet_distance

__all__ = [
    "KNOWN_LEARNED",
    "OPEN_CLIP_METRICS",
    "ClipImageSimilarity",
    "ClipTextSimilarity",
    "FID_TOO_FEW",
    "InceptionFeatures",
    "LearnedMetric",
    "LearnedSpec",
    "NO_CAPTIONS",
    "PYIQA_MISSING",
    "WEIGHTS_UNAVAILABLE",
    "build_learned_metrics",
    "frechet_distance",
]

WEIGHTS_UNAVAILABLE = "weights unavailable"
PYIQA_MISSING = "pyiqa not installed"
FID_TOO_FEW = "n/a (needs ≥ 2 images)"
"""Cell text of FID for a group with fewer than two images (no covariance)."""
NO_CAPTIONS = "n/a (no captions)"
"""Cell text of CLIP-T for a group whose images carry no caption."""


@dataclass(frozen=True)
class LearnedSpec:
    """What the table needs to know about a learned metric before (or without) building it."""

    full_reference: bool
    lower_better: bool
    needs_caption: bool = False
    """Scores the image against ``batch["caption"]`` (CLIP-T); images with an empty caption are left out."""
    set_level: bool = False
    """Computed over a whole (benchmark, task) group from per-image features (FID), not averaged per image."""


KNOWN_LEARNED: dict[str, LearnedSpec] = {
    "lpips": LearnedSpec(full_reference=True, lower_better=True),
    "dists": LearnedSpec(full_reference=True, lower_better=True),
    "niqe": LearnedSpec(full_reference=False, lower_better=True),
    "musiq": LearnedSpec(full_reference=False, lower_better=False),
    "clipiqa": LearnedSpec(full_reference=False, lower_better=False),
    "maniqa": LearnedSpec(full_reference=False, lower_better=False),
    "clip_i": LearnedSpec(full_reference=True, lower_better=False),
    "clip_t": LearnedSpec(full_reference=False, lower_better=False, needs_caption=True),
    "fid": LearnedSpec(full_reference=True, lower_better=True, set_level=True),
}
"""Supported names, spelled as pyiqa spells them (``clip_i``/``clip_t`` are restorezoo's, built on open_clip)."""

OPEN_CLIP_METRICS: dict[str, tuple[str, str]] = {"clip_i": ("ViT-L-14", "openai"), "clip_t": ("ViT-L-14", "openai")}
"""Metrics computed with an open_clip model (architecture, pretrained tag) instead of pyiqa."""


class _ClipScorer(torch.nn.Module):
    """An open_clip model and the input size of its image tower; ``embed`` gives unit-norm image embeddings."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        size = self.model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)

    def embed(self, images: Tensor) -> Tensor:
        from restorezoo.encoders.clip import clip_pixels

        return torch.nn.functional.normalize(self.model.encode_image(clip_pixels(images, self.image_size)), dim=-1)


class ClipImageSimilarity(_ClipScorer):
    """CLIP-I (SPIRE Tab. 1): cosine similarity of the CLIP image embeddings of restoration and clean target."""

    def __init__(self, arch: str, pretrained: str, device: torch.device) -> None:
        super().__init__(_open_clip_model(arch, pretrained, device))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return (self.embed(pred) * self.embed(target)).sum(dim=-1)


class ClipTextSimilarity(_ClipScorer):
    """CLIP-T (SPIRE Tab. 1): cosine similarity of the restoration's CLIP image embedding and its caption's
    CLIP text embedding, i.e. how well the output keeps the semantics the caption describes.

    ``from_pretrained`` builds it from an open_clip (arch, pretrained tag); tests pass a tiny random CLIP.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any) -> None:
        super().__init__(model)
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, arch: str, pretrained: str, device: torch.device) -> ClipTextSimilarity:
        import open_clip

        return cls(_open_clip_model(arch, pretrained, device), open_clip.get_tokenizer(arch))

    def embed_text(self, captions: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        return torch.nn.functional.normalize(self.model.encode_text(self.tokenizer(list(captions)).to(device)), dim=-1)

    def forward(self, pred: Tensor, captions: Sequence[str]) -> Tensor:
        if len(captions) != pred.shape[0] or not all(c.strip() for c in captions):
            raise ValueError("CLIP-T needs one non-empty caption per image")
        return (self.embed(pred) * self.embed_text(captions)).sum(dim=-1)


def _open_clip_model(arch: str, pretrained: str, device: torch.device) -> torch.nn.Module:
    """The CLIP of a metric, built with the activation its weights were trained with (OpenAI: QuickGELU).

    ``load_clip`` fetches (or finds) the weights before building the large tower, so offline fails fast.
    """
    from restorezoo.encoders.clip import load_clip

    return load_clip(arch, pretrained).to(device).eval()


_CREATE_TIMEOUT_S = 10.0
_lock = threading.Lock()
_pyiqa: ModuleType | None = None
_pyiqa_error: str | None = None
_cache: dict[tuple[str, str], LearnedMetric] = {}


def _import_pyiqa() -> tuple[ModuleType | None, str | None]:
    """Import pyiqa once per process; a broken install (e.g. a torchvision mismatch) counts as missing."""
    global _pyiqa, _pyiqa_error
    if _pyiqa is None and _pyiqa_error is None:
        try:
            _pyiqa = importlib.import_module("pyiqa")
        except Exception as exc:  # ImportError, or a RuntimeError raised while importing its deps
            _pyiqa_error = f"{type(exc).__name__}: {exc}"
    return _pyiqa, _pyiqa_error


@contextlib.contextmanager
def _offline_guard(timeout: float) -> Iterator[None]:
    """Make any download attempted while building a metric give up within ``timeout`` seconds.

    pyiqa fetches weights with urllib (torch.hub) and, for some metrics, the Hugging Face hub; a
    default socket timeout bounds the first, the offline variables keep hub clients from retrying.
    """
    previous_timeout = socket.getdefaulttimeout()
    saved_env = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    socket.setdefaulttimeout(timeout)
    # Only forbid the hub where the user has not decided otherwise.
    for key, value in saved_env.items():
        if value is None:
            os.environ[key] = "1"
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous_timeout)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)


class LearnedMetric:
    """One pyiqa metric, built lazily on first use and never raising when its weights are missing.

    Attributes:
        name: pyiqa's name of the metric.
        full_reference: needs the clean target (LPIPS, DISTS) or scores the image alone (NIQE, ...).
        lower_better: direction of the score, for the table's reader.
        device: where the network runs.
    """

    def __init__(self, name: str, device: torch.device | str = "cpu", timeout: float = _CREATE_TIMEOUT_S):
        if name not in KNOWN_LEARNED:
            raise ValueError(f"unknown learned metric '{name}'; known: {', '.join(KNOWN_LEARNED)}")
        spec = KNOWN_LEARNED[name]
        self.name = name
        self.full_reference = spec.full_reference
        self.lower_better = spec.lower_better
        self.needs_caption = spec.needs_caption
        self.set_level = spec.set_level
        self.device = torch.device(device)
        self.timeout = timeout
        self._net: Any = None
        self._tried = False
        self._reason = ""
        self.detail = ""
        """Why creation failed, in full (the exception), for warnings and logs."""

    def _ensure(self) -> None:
        with _lock:
            if self._tried:
                return
            self._tried = True
            if self.name in OPEN_CLIP_METRICS:
                scorer = ClipTextSimilarity.from_pretrained if self.needs_caption else ClipImageSimilarity
                try:
                    with _offline_guard(self.timeout):
                        self._net = scorer(*OPEN_CLIP_METRICS[self.name], self.device)
                except Exception as exc:  # offline, or no cached weights
                    self._reason, self.detail = WEIGHTS_UNAVAILABLE, f"{type(exc).__name__}: {exc}"
                return
            pyiqa, error = _import_pyiqa()
            if pyiqa is None:
                self._reason, self.detail = PYIQA_MISSING, error or ""
                return
            buffer = io.StringIO()  # pyiqa prints download/loading chatter to stdout
            try:
                with _offline_guard(self.timeout), contextlib.redirect_stdout(buffer):
                    if self.set_level:  # pyiqa's own FID scores folders; the callback needs per-image features
                        net = InceptionFeatures(self.device, mode="clean")
                    else:
                        net = pyiqa.create_metric(self.name, device=self.device, as_loss=False)
            except Exception as exc:  # offline download, corrupt cache, missing optional dependency
                self._reason = WEIGHTS_UNAVAILABLE
                self.detail = f"{type(exc).__name__}: {exc}"
                return
            net.eval()
            self._net = net
            self.lower_better = bool(getattr(net, "lower_better", self.lower_better))

    @property
    def available(self) -> bool:
        """Whether the metric could be built (tries once per process, then remembers)."""
        self._ensure()
        return self._net is not None

    @property
    def reason(self) -> str:
        """'' when available, else "weights unavailable" or "pyiqa not installed"."""
        self._ensure()
        return self._reason

    @property
    def dim(self) -> int:
        """Feature size of a set-level metric (FID)."""
        return int(self._net.dim) if self.available and self.set_level else 0

    def features(self, images: Tensor) -> Tensor:
        """B×D float32 features of a set-level metric (FID), for the group statistics."""
        if not self.available or not self.set_level:
            raise RuntimeError(f"learned metric '{self.name}' has no features ({self.reason or 'not set-level'})")
        with torch.no_grad():
            return self._net(images.detach().to(self.device, torch.float32).clamp(0, 1)).float()

    def __call__(
        self, pred: Tensor, target: Tensor | None = None, captions: Sequence[str] | None = None
    ) -> Tensor:
        """Score a B×3×H×W batch in [0, 1]; returns one float64 value per image (shape [B]).

        ``captions`` (one non-empty caption per image) are what CLIP-T compares the images with.
        """
        if not self.available:
            raise RuntimeError(f"learned metric '{self.name}' is unavailable: {self.reason} ({self.detail})")
        if self.set_level:
            raise RuntimeError(f"'{self.name}' is a set-level metric: use features() and frechet_distance()")
        if pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"expected a B×3×H×W RGB tensor, got shape {tuple(pred.shape)}")
        x = pred.detach().to(self.device, torch.float32).clamp(0, 1)
        with torch.no_grad():
            if self.needs_caption:
                if captions is None:
                    raise ValueError(f"'{self.name}' compares images with captions and needs them")
                out = self._net(x, captions)
            elif self.full_reference:
                if target is None:
                    raise ValueError(f"'{self.name}' is a full-reference metric and needs a target")
                out = self._net(x, target.detach().to(self.device, torch.float32).clamp(0, 1))
            else:
                out = self._net(x)
        out = torch.as_tensor(out).reshape(-1)
        if out.numel() != pred.shape[0]:
            raise RuntimeError(f"'{self.name}' returned {out.numel()} scores for {pred.shape[0]} images")
        return out.to(torch.float64)

    def __repr__(self) -> str:
        state = "available" if self._net is not None else (self._reason or "not built yet")
        return f"LearnedMetric({self.name!r}, device={str(self.device)!r}, {state})"


def build_learned_metrics(
    names: Sequence[str], device: torch.device | str = "cpu"
) -> dict[str, LearnedMetric]:
    """Learned metrics by name, shared per process and device so weights load (or fail) only once.

    Never raises for missing weights or a missing pyiqa: check ``.available``/``.reason``.
    Raises ``ValueError`` for a name restorezoo does not know.
    """
    unknown = [n for n in names if n not in KNOWN_LEARNED]
    if unknown:
        raise ValueError(f"unknown learned metric(s) {unknown}; known: {', '.join(KNOWN_LEARNED)}")
    dev = torch.device(device)
    metrics: dict[str, LearnedMetric] = {}
    for name in names:
        key = (name, str(dev))
        if key not in _cache:
            _cache[key] = LearnedMetric(name, dev)
        metrics[name] = _cache[key]
    return metrics
