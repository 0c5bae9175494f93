"""The zoo's models. Each architecture lives in its own file; this registry maps short names to them."""

import lightning as L

from restorezoo.models.base import RestorationModule
from restorezoo.models.daclip import DACLIP, build_daclip
from restorezoo.models.diffrestorer import DiffRestorer, DiffRestorerDecoder
from restorezoo.models.instructir import InstructIR, InstructIRNet
from restorezoo.models.irsde import IRSDE
from restorezoo.models.nafnet_daclip import NAFNetDACLIP
from restorezoo.models.spire import SPIRE

MODELS: dict[str, type[L.LightningModule]] = {
    "instructir": InstructIR,
    "daclip": DACLIP,
    "irsde": IRSDE,
    "nafnet_daclip": NAFNetDACLIP,
    "diffrestorer": DiffRestorer,
    "diffrestorer_decoder": DiffRestorerDecoder,
    "spire": SPIRE,
}
"""Short name → LightningModule class. All but ``daclip`` (a conditioner) are restorers."""

__all__ = [
    "DACLIP",
    "DiffRestorer",
    "DiffRestorerDecoder",
    "IRSDE",
    "MODELS",
    "InstructIR",
    "InstructIRNet",
    "NAFNetDACLIP",
    "RestorationModule",
    "SPIRE",
    "build_daclip",
]
