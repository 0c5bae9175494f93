"""Frozen pretrained encoders (text and image) used as conditioning by the restorers."""

from restorezoo.encoders.text import (
    DEFAULT_TEXT_ENCODER,
    PACKAGED_MINILM,
    SentenceEncoder,
    build_sentence_encoder,
)

__all__ = ["DEFAULT_TEXT_ENCODER", "PACKAGED_MINILM", "SentenceEncoder", "build_sentence_encoder"]
