"""Lazy package exports: ``from restorezoo.models import SPIRE`` imports only what it names.

A package lists ``module → names`` and hands the map to :func:`lazy_exports`; importing the package
then costs nothing (no Lightning, diffusers or open_clip), and one broken model module cannot break
``import restorezoo`` or another model (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[dict[str, str], Callable[[str], Any]]:
    """``(name → defining module, the module __getattr__)`` of ``package`` exporting ``modules``' names."""
    exports = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return exports, __getattr__


__all__ = ["lazy_exports"]
