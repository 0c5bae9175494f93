"""``restorezoo export CKPT --to model.safetensors``: a weights-only file to share, and its config beside it.

A Lightning checkpoint is a pickle that also holds optimizer state, loop state and callbacks'
entries; a shared model needs only tensors (safetensors: no code can run on load) and the few
values that rebuild the architecture. ``model.yaml`` beside ``model.safetensors`` holds the model's
``class_path`` and ``init_args`` (a LightningCLI ``model:`` section), the data vocabularies and,
when the checkpoint has it, the training run's full config. ``load_model(ckpt="model.safetensors")``
reads the pair back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from restorezoo.errors import CheckpointError
from restorezoo.weights import load_checkpoint


def _plain(value: Any) -> Any:
    """Tuples → lists (recursively) so ``yaml.safe_dump`` writes them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_path(weights: str | Path) -> Path:
    """``model.safetensors`` → ``model.yaml``."""
    return Path(weights).with_suffix(".yaml")


def export_checkpoint(ckpt: str | Path, to: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the checkpoint's weights as safetensors and its model config as YAML beside them."""
    from safetensors.torch import save_file

    from restorezoo.training import RECORD_KEY

    to = Path(to)
    if to.suffix != ".safetensors":
        raise CheckpointError(f"export writes .safetensors files, got {to}")
    yaml_path = config_path(to)
    existing = [p for p in (to, yaml_path) if p.exists()]
    if existing and not overwrite:
        raise CheckpointError(f"{existing[0]} exists; pass --overwrite to replace it")
    checkpoint = load_checkpoint(ckpt)
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"{ckpt} is not a Lightning checkpoint (no 'state_dict')")
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = hparams.pop("_class_path", None)
    hparams.pop("_instantiator", None)
    if class_path is None:
        raise CheckpointError(f"{ckpt} does not record its model class (_class_path); was it written by restorezoo fit?")
    # safetensors refuses shared or strided storage: give every tensor its own contiguous copy
    tensors = {k: v.detach().contiguous().clone() for k, v in checkpoint["state_dict"].items() if torch.is_tensor(v)}
    record = dict(checkpoint.get(RECORD_KEY, {}))
    config: dict[str, Any] = {"model": {"class_path": class_path, "init_args": _plain(hparams)}}
    config.update({k: _plain(v) for k, v in record.items() if k != "config"})
    if "config" in record:
        config["training_config"] = record["config"]
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp_weights, tmp_yaml = to.with_name(f".{to.name}.tmp"), yaml_path.with_name(f".{yaml_path.name}.tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": "pt", "class_path": str(class_path)})
    tmp_yaml.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp_weights.replace(to)
    tmp_yaml.replace(yaml_path)
    return to, yaml_path


def read_export(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(hyper-parameters with ``_class_path``, state dict) of an exported ``.safetensors`` + ``.yaml`` pair."""
    from restorezoo.weights import load_state_dict

    path = Path(path)
    yaml_path = config_path(path)
    if not yaml_path.is_file():
        raise CheckpointError(f"{path} needs its config {yaml_path} beside it (written by restorezoo export)")
    try:
        config = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        model = config["model"]
        hparams = dict(model.get("init_args") or {})
        hparams["_class_path"] = model["class_path"]
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{yaml_path}: not a restorezoo export config ({type(error).__name__}: {error})") from error
    return hparams, load_state_dict(path, nested_keys=())
