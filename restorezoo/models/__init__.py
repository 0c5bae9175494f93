"""The zoo's models. Each architecture lives in its own file; this registry maps short names to them.

Imports are lazy (module ``__getattr__``), like ``restorezoo.data``: ``import restorezoo.models`` or
``restorezoo list`` do not import Lightning, diffusers or open_clip. A class is imported when it is
first named (``from restorezoo.models import InstructIR``) or looked up (``MODELS["spire"]``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from restorezoo.lazy import lazy_exports

_MODULES = {
    "restorezoo.models.base": ("RestorationModule",),
    "restorezoo.models.daclip": ("DACLIP", "build_daclip"),
    "restorezoo.models.diffrestorer": ("DiffRestorer",),
    "restorezoo.models.diffrestorer_decoder": ("DiffRestorerDecoder",),
    "restorezoo.models.instructir": ("InstructIR", "InstructIRNet"),
    "restorezoo.models.irsde": ("IRSDE",),
    "restorezoo.models.nafnet_daclip": ("NAFNetDACLIP",),
    "restorezoo.models.spire": ("SPIRE",),
}
_EXPORTS, __getattr__ = lazy_exports(__name__, _MODULES)

MODEL_CLASSES: dict[str, str] = {
    "instructir": "InstructIR",
    "daclip": "DACLIP",
    "irsde": "IRSDE",
    "nafnet_daclip": "NAFNetDACLIP",
    "diffrestorer": "DiffRestorer",
    "diffrestorer_decoder": "DiffRestorerDecoder",
    "spire": "SPIRE",
}
"""Short name → class name of every LightningModule of the zoo, known without importing anything."""

CONDITIONERS = ("daclip",)
"""Short names of the modules that steer a restorer and restore nothing themselves (DA-CLIP)."""

RESTORERS = tuple(name for name in MODEL_CLASSES if name not in CONDITIONERS)
"""Short names of the restorers (``RestorationModule``: ``restore`` an image)."""


def model_class(name: str) -> Any:
    """The LightningModule class of a short model name (imports only its module)."""
    class_name = MODEL_CLASSES[name.lower()]
    return getattr(importlib.import_module(_EXPORTS[class_name]), class_name)


def import_all() -> None:
    """Import every model module, so that configs can name classes by short name (``class_path: SPIRE``)."""
    for module in dict.fromkeys(_EXPORTS.values()):
        importlib.import_module(module)


class _Registry(Mapping[str, Any]):
    """``MODELS``: short name → class, a mapping whose values import on first access."""

    def __getitem__(self, name: str) -> Any:
        if name not in MODEL_CLASSES:
            raise KeyError(name)
        return model_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODEL_CLASSES)

    def __len__(self) -> int:
        return len(MODEL_CLASSES)

    def __repr__(self) -> str:
        return f"MODELS({', '.join(MODEL_CLASSES)})"


MODELS: Mapping[str, Any] = _Registry()
"""Short name → LightningModule class (imported on access): the ``RESTORERS`` and the ``CONDITIONERS``."""

__all__ = sorted([*_EXPORTS, "CONDITIONERS", "MODELS", "MODEL_CLASSES", "RESTORERS", "import_all", "model_class"])



def __dir__() -> list[str]:
    return __all__
