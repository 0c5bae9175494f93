"""``restorezoo export CKPT --to ...``: a checkpoint as weights-only safetensors and its config, to share.

A Lightning checkpoint is a pickle that also holds optimizer state, loop state and callbacks'
entries; a shared model needs only tensors (safetensors: no code can run on load) and the few
values that rebuild the architecture. ``model.yaml`` beside ``model.safetensors`` holds the model's
``class_path`` and ``init_args`` (a LightningCLI ``model:`` section), the data vocabularies and,
when the checkpoint has it, the training run's full config. ``load_model(ckpt="model.safetensors")``
reads the pair back.

``--to DIR`` (no ``.safetensors`` suffix) writes the folder a model hub hosts: ``model.safetensors``,
``model.yaml`` and a model card ``README.md`` (model, training data, the measured benchmark table,
usage). ``load_model(DIR)`` and ``load_model("org/name")`` (through ``huggingface_hub``) read it back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from restorezoo.errors import CheckpointError
from restorezoo.weights import hub_offline, load_checkpoint


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


def _export_parts(ckpt: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, config) of a ``restorezoo fit`` checkpoint: the tensors and the YAML that rebuilds the model."""
    from restorezoo.callbacks import RECORD_KEY

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
    return tensors, config


def _write_pair(tensors: dict[str, torch.Tensor], config: dict[str, Any], to: Path) -> Path:
    """``to`` (safetensors) and its ``.yaml``; returns the YAML path. Callers make the pair appear atomically."""
    from safetensors.torch import save_file

    yaml_path = config_path(to)
    save_file(tensors, str(to), metadata={"format": "pt", "class_path": str(config["model"]["class_path"])})
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    to.chmod(yaml_path.stat().st_mode & 0o777)  # safetensors writes owner-only files; a shared file is readable
    return yaml_path


def export_checkpoint(ckpt: str | Path, to: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the checkpoint's weights as safetensors and its model config as YAML beside them."""
    to = Path(to)
    if to.suffix != ".safetensors":
        raise CheckpointError(f"export writes .safetensors files, got {to}")
    yaml_path = config_path(to)
    existing = [p for p in (to, yaml_path) if p.exists()]
    if existing and not overwrite:
        raise CheckpointError(f"{existing[0]} exists; pass --overwrite to replace it")
    tensors, config = _export_parts(ckpt)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp_weights = to.with_name(f".{to.name}.tmp")
    tmp_yaml = _write_pair(tensors, config, tmp_weights)
    tmp_weights.replace(to)
    tmp_yaml.replace(yaml_path)
    return to, yaml_path


# ====================================================================== hub-ready folders
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "model.yaml"
CARD_NAME = "README.md"
HUB_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)
"""The files of an export folder (all a hub download fetches)."""

PAPERS: dict[str, str] = {
    "InstructIR": "Conde, Geigle, Timofte. *InstructIR: High-Quality Image Restoration Following Human "
    "Instructions*. ECCV 2024. arXiv:2401.16468",
    "IRSDE": "Luo et al. *Controlling Vision-Language Models for Multi-Task Image Restoration* (DA-CLIP, "
    "universal IR-SDE). ICLR 2024. arXiv:2310.01018",
    "NAFNetDACLIP": "Luo et al. *Controlling Vision-Language Models for Multi-Task Image Restoration* "
    "(NAFNet + DA-CLIP baseline). ICLR 2024. arXiv:2310.01018",
    "DACLIP": "Luo et al. *Controlling Vision-Language Models for Multi-Task Image Restoration*. ICLR 2024. "
    "arXiv:2310.01018",
    "SPIRE": "Qi et al. *SPIRE: Semantic Prompt-Driven Image Restoration*. ECCV 2024. arXiv:2312.11595",
    "DiffRestorer": "Zhang et al. *Diff-Restorer: Unleashing Visual Prompts for Diffusion-based Universal "
    "Image Restoration*. arXiv:2407.03636",
    "DiffRestorerDecoder": "Zhang et al. *Diff-Restorer: Unleashing Visual Prompts for Diffusion-based "
    "Universal Image Restoration* (stage 2, degradation-aware decoder). arXiv:2407.03636",
}
"""Model class name → the paper it implements, for model cards."""

USAGE_PROMPTS: dict[str, tuple[str, str]] = {
    "InstructIR": ("--prompt 'remove the noise, please'", '"remove the noise, please"'),
    "SPIRE": (
        "--prompt 'Denoise with sigma 0.10' --caption 'a cat on a sofa'",
        '"Denoise with sigma 0.10", caption="a cat on a sofa"',
    ),
}
"""Model class name → (CLI flags, Python arguments) of a typical call; others take no text."""


def find_benchmark(ckpt: str | Path) -> Path | None:
    """The newest ``benchmark.md`` that ``restorezoo test`` wrote into the checkpoint's run, if any.

    A run is ``<root>/checkpoints/last.ckpt`` beside ``<root>/logs/version_N/``; the checkpoint's own
    folder is searched too (a checkpoint copied next to its table).
    """
    ckpt = Path(ckpt).resolve()
    patterns = ["benchmark.md"] + (["*/benchmark.md", "*/*/benchmark.md"] if ckpt.parent.name == "checkpoints" else [])
    root = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    found = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    if root != ckpt.parent and (ckpt.parent / "benchmark.md").is_file():
        found.add(ckpt.parent / "benchmark.md")
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _training_config(config: Mapping[str, Any]) -> dict[str, Any]:
    recorded = config.get("training_config")
    if isinstance(recorded, str):
        try:
            recorded = yaml.safe_load(recorded)
        except yaml.YAMLError:
            return {}
    return recorded if isinstance(recorded, dict) else {}


def _yaml_block(value: Any) -> str:
    return "```yaml\n" + yaml.safe_dump(_plain(value), sort_keys=False, allow_unicode=True).rstrip() + "\n```"


def model_card(
    config: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    name: str,
    benchmark: str | None = None,
    benchmark_source: str | None = None,
    license: str = "apache-2.0",
) -> str:
    """The ``README.md`` of an export folder: hub front matter, model, data, measured numbers, usage.

    Only recorded facts go in: without a measured ``benchmark.md`` the card says none was measured.
    """
    class_path = str(config["model"]["class_path"])
    class_name = class_path.rpartition(".")[2]
    init_args = dict(config["model"].get("init_args") or {})
    training = _training_config(config)
    tasks = [str(t) for t in config.get("task_names") or []]
    tags = ["restorezoo", "image-restoration", "pytorch-lightning", class_name.lower()]
    front = {
        "library_name": "restorezoo",
        "license": license,
        "pipeline_tag": "image-to-image",
        "tags": tags,
    }
    parameters = sum(t.numel() for t in tensors.values())
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# {name}", ""]
    lines += [
        f"`{class_name}` image restorer trained with restorezoo (PyTorch Lightning), "
        f"exported as weights-only safetensors (`{WEIGHTS_NAME}`) and the config that rebuilds it (`{CONFIG_NAME}`).",
        "",
        "## Model",
        "",
        f"- Class: `{class_path}`",
        f"- Paper: {PAPERS.get(class_name, 'see the restorezoo README')}",
        f"- Parameters in `{WEIGHTS_NAME}`: {parameters:,} ({parameters / 1e6:.2f} M) in {len(tensors)} tensors",
    ]
    frozen = {k: init_args[k] for k in ("pretrained", "daclip", "text_encoder", "stage1") if init_args.get(k)}
    if frozen:
        listed = ", ".join(f"`{k}: {v}`" for k, v in frozen.items())
        lines.append(f"- Frozen parts rebuilt from their own weights, not counted above: {listed}")
    lines += ["", "Architecture and sampler settings (`model.init_args`):", "", _yaml_block(init_args), ""]
    lines += ["## Training data", ""]
    if isinstance(training.get("data"), dict):
        lines += ["The `data:` section of the training run's config:", "", _yaml_block(training["data"]), ""]
    else:
        lines += ["The checkpoint does not record its training data (no run config in it).", ""]
    if tasks:
        lines += [f"Task vocabulary of the training datamodule: {', '.join(tasks)}.", ""]
    lines += ["## Evaluation", ""]
    if benchmark:
        table = "\n".join(line for line in benchmark.strip().splitlines() if not line.startswith("#"))
        lines += [f"Measured by `restorezoo test` ({benchmark_source or 'benchmark.md'}):", "", table.strip(), ""]
    else:
        lines += [
            "No benchmark was measured for this checkpoint. `restorezoo test --config ... --ckpt_path ...` writes "
            "`benchmark.md` into the run's log folder; export again (or pass `--benchmark`) to include it.",
            "",
        ]
    flags, arguments = USAGE_PROMPTS.get(class_name, ("", '""'))
    lines += [
        "## Usage",
        "",
        "```bash",
        f"restorezoo restore photo.png --ckpt path/to/this/folder {flags} -o restored.png".replace("  ", " "),
        "restorezoo demo --ckpt path/to/this/folder     # local web demo",
        "```",
        "",
        "```python",
        "import restorezoo",
        "",
        'model = restorezoo.load_model("org/name")      # hub repo id, or a local folder holding these files',
        f'restored = restorezoo.restore("photo.png", {arguments}, model=model)  # 3×H×W in [0, 1]',
        "```",
        "",
        "Loading is safe: safetensors weights and a YAML config, no pickles and no remote code.",
        "",
    ]
    return "\n".join(lines)


def export_folder(
    ckpt: str | Path,
    to: str | Path,
    overwrite: bool = False,
    benchmark: str | Path | None = None,
    name: str | None = None,
    license: str = "apache-2.0",
) -> Path:
    """Write a hub-ready folder: ``model.safetensors``, ``model.yaml`` and the model card ``README.md``.

    The folder appears whole or not at all (built in a temporary sibling, then renamed). The benchmark
    table is ``benchmark`` when given, else the newest ``benchmark.md`` of the checkpoint's run.
    ``license`` (a hub license id) defaults to restorezoo's own; weights fine-tuned from a backbone
    or trained on data under other terms may need theirs.
    """
    import shutil
    import uuid

    to = Path(to)
    if to.suffix == ".safetensors":
        raise CheckpointError(f"{to} names a file; export_checkpoint writes single .safetensors files")
    if to.exists() and not to.is_dir():
        raise CheckpointError(f"{to} exists and is not a folder")
    if to.exists() and not overwrite:
        raise CheckpointError(f"{to} exists; pass --overwrite to replace it")
    table_path = Path(benchmark) if benchmark is not None else find_benchmark(ckpt)
    if table_path is not None and not table_path.is_file():
        raise CheckpointError(f"benchmark table {table_path} not found")
    tensors, config = _export_parts(ckpt)
    table = table_path.read_text(encoding="utf-8") if table_path is not None else None
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = to.parent / f".{to.name}.{uuid.uuid4().hex[:12]}.tmp"  # mkdir, not mkdtemp: keep the umask's mode
    staging.mkdir()
    try:
        _write_pair(tensors, config, staging / WEIGHTS_NAME)
        source = _shown_path(table_path, Path(ckpt)) if table_path is not None else None
        card = model_card(config, tensors, name or to.resolve().name, table, source, license=license)
        (staging / CARD_NAME).write_text(card, encoding="utf-8")
        if to.exists():  # --overwrite: the old folder steps aside only once the new one is complete
            old = to.parent / f".{to.name}.{uuid.uuid4().hex[:12]}.old"
            old.mkdir()
            to.replace(old / to.name)
            staging.replace(to)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.replace(to)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return to


def _shown_path(table: Path, ckpt: Path) -> str:
    """The table's path relative to the checkpoint's run (``logs/version_1/benchmark.md``) when inside it."""
    run = ckpt.resolve().parent
    run = run.parent if run.name == "checkpoints" else run
    try:
        return str(table.resolve().relative_to(run))
    except ValueError:
        return table.name


def _looks_like_repo_id(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None and not text.endswith(CHECKPOINT_SUFFIXES)


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors", ".bin")


def resolve_export(source: str | Path) -> Path | None:
    """The weights file to load for ``source``: an export folder, a checkpoint file, or a hub repo id.

    Returns None when ``source`` is none of these (not on disk, not shaped like ``org/name``). A hub
    id is fetched with ``huggingface_hub.snapshot_download`` (only the export's files), from the
    cache alone when offline; failing that, one line says how to pass a local folder instead.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"{path} holds no {WEIGHTS_NAME}; export a checkpoint with `restorezoo export CKPT --to {path}`"
            )
        return path / WEIGHTS_NAME
    if path.is_file():
        return path
    text = str(source)
    if not _looks_like_repo_id(text):
        return None
    return Path(download_export(text)) / WEIGHTS_NAME


def download_export(repo_id: str) -> Path:
    """A hub repo's export files in the local cache (network unless ``HF_HUB_OFFLINE=1``)."""
    from restorezoo.errors import WeightsNotFoundError

    offline = hub_offline()
    hint = "download the repo elsewhere and pass its folder: load_model('path/to/folder') or --ckpt path/to/folder"
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id, allow_patterns=list(HUB_FILES), local_files_only=offline))
    except Exception as error:  # offline, unknown repo, no network: all the same to the user
        why = "offline (HF_HUB_OFFLINE=1) and not in the cache" if offline else type(error).__name__
        message = f"'{repo_id}' is not a local folder and the hub gave nothing ({why}); {hint}"
        raise WeightsNotFoundError(message) from None
    if not (folder / WEIGHTS_NAME).is_file():
        raise WeightsNotFoundError(f"hub repo '{repo_id}' holds no {WEIGHTS_NAME} (not a restorezoo export); {hint}")
    return folder


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
