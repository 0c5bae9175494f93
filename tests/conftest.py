"""Shared fixtures: offline mode, tiny models, fake image folders, and one real quickstart run per session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "instructir" / "quickstart.yaml"
TINY_INSTRUCTIR = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), text_encoder="minilm")


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[Path]:
    """Run the CLI from ``path`` (relative ``runs/`` folders land there) and come back, even on failure."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(previous)


def write_photo(path: Path, seed: int, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    """A smooth random colour image (gradients + blobs), saved as PNG; returns the uint8 array."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(rng.uniform(2, 8) * xx + rng.uniform(0, 3)) * np.cos(rng.uniform(2, 8) * yy) for _ in range(3)]
    array = ((np.stack(channels, -1) * 0.5 + 0.5) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``restorezoo ARGS`` in-process: (exit code, stdout, stderr)."""
    from restorezoo.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def paired_folder(tmp_path: Path) -> tuple[Path, Path]:
    """lq/ and hq/ folders with three matching pairs (LQ = darker HQ)."""
    lq, hq = tmp_path / "lq", tmp_path / "hq"
    for i in range(3):
        array = write_photo(hq / f"img{i}.png", seed=i)
        lq.mkdir(exist_ok=True)
        Image.fromarray((array * 0.5).astype(np.uint8)).save(lq / f"img{i}.png")
    return lq, hq


def write_tiny_checkpoint(path: Path, extra: dict | None = None) -> Path:
    """A checkpoint shaped like `restorezoo fit`'s (class path, hyper-parameters, state dict) holding a
    tiny random InstructIR (seed 0), without running a Trainer."""
    import torch

    from restorezoo.models import InstructIR

    torch.manual_seed(0)
    model = InstructIR(**TINY_INSTRUCTIR)
    hparams = {**model.hparams, "_class_path": "restorezoo.models.instructir.InstructIR"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, **(extra or {})}, path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random InstructIR checkpoint (see ``write_tiny_checkpoint``), shared by the session."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-instructir.ckpt")


@pytest.fixture(scope="session")
def tiny_instructir():
    from restorezoo.models import InstructIR

    return InstructIR(**TINY_INSTRUCTIR)


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the README's quickstart fit exactly as configured, in a scratch working directory.

    Returns the working directory; the checkpoint is at runs/instructir-quickstart/checkpoints/last.ckpt.
    """
    from restorezoo.cli import main

    workdir = tmp_path_factory.mktemp("quickstart")
    with working_directory(workdir):
        main(["fit", "--config", str(QUICKSTART)])
    assert (workdir / "runs/instructir-quickstart/checkpoints/last.ckpt").is_file()
    return workdir
