"""The zoo's restorers. Each architecture lives in its own file; this registry maps short names to them."""

from restorezoo.models.base import RestorationModule
from restorezoo.models.instructir import InstructIR, InstructIRNet

MODELS: dict[str, type[RestorationModule]] = {"instructir": InstructIR}
"""Short name → LightningModule class (``restorezoo restore --model NAME``)."""

__all__ = ["MODELS", "InstructIR", "InstructIRNet", "RestorationModule"]
