"""DDP on 2 CPU processes (gloo) equals one process with the same global batch, for one model per family.

Each family trains 2 steps through ``restorezoo fit`` twice: one process with batch 4, and Lightning's
DDP with 2 processes of batch 2. The sampler hands rank r the samples r, r+2 of each global batch,
samples carry their own seeds (crops, degradations, diffusion timesteps and noise), and DDP averages
the gradients, so the weights, the epoch's training loss and the ``restorezoo test`` table must agree.
Slow (about a minute and a half per family on 2 cores): ``pytest -m slow tests/test_ddp.py``.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow

TRAINER: dict[str, Any] = {
    "accelerator": "cpu",
    "max_epochs": 1,
    "limit_train_batches": 2,
    "limit_val_batches": 0,
    "num_sanity_val_steps": 0,
    "precision": "32-true",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "log_every_n_steps": 1,
}

FAMILIES: dict[str, dict[str, Any]] = {
    "instructir": {
        "model": {"class_path": "InstructIR", "init_args": {
            "width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1], "text_encoder": "minilm",
            "lr": 1.0e-3}},
        "train": {"class_path": "Sample", "init_args": {"split": "train", "tasks": ["noise", "blur"]}},
        "test": {"class_path": "Sample", "init_args": {"split": "test", "tasks": ["noise"], "max_side": 64}},
        "patch_size": 32,
    },
    "daclip_irsde": {
        "model": {"class_path": "IRSDE", "init_args": {
            "nf": 8, "ch_mult": [1, 2], "daclip": "tiny", "T": 10, "steps": 3, "seed": 0, "progress": False,
            "ema_decay": 0.9, "lr": 1.0e-3}},
        "train": {"class_path": "Sample", "init_args": {"split": "train", "tasks": ["noise"]}},
        "test": {"class_path": "Sample", "init_args": {"split": "test", "tasks": ["noise"], "max_side": 64}},
        "patch_size": 32,
    },
    "latent_diffusion": {
        "model": {"class_path": "SPIRE", "init_args": {
            "pretrained": "tiny", "scheduler": "ddim", "steps": 2, "seed": 0, "progress": False, "ema_decay": 0.9,
            "lr": 1.0e-3}},
        # Parameterized degradations only: Real-ESRGAN draws one resize per (per-rank) batch, as BasicSR.
        # draws: sample keeps every other Real-ESRGAN draw per sample (BasicSR's default draws the noise
        # kind, blur coin and final order per batch, which a per-rank batch of 2 cannot equal a batch of 4 in).
        "train": {"class_path": "SpireMix", "init_args": {"p_realesrgan": 0.0, "options": {"draws": "sample"},
            "source": {
            "class_path": "Sample", "init_args": {"split": "train", "tasks": ["clean"], "caption": "a photo"}}}},
        "test": {"class_path": "SpireMix", "init_args": {"p_realesrgan": 0.0, "options": {"draws": "sample"},
            "source": {
            "class_path": "Sample", "init_args": {"split": "test", "tasks": ["clean"], "max_side": 64,
                                                  "caption": "a photo"}}}},
        "patch_size": 32,
    },
}

DACLIP_FAMILY: dict[str, Any] = {
    # gather: true (the release's 4-GPU objective): each rank contrasts against the global batch
    "model": {"class_path": "DACLIP", "init_args": {"tiny": True, "lr": 1.0e-3, "warmup_steps": 1, "gather": True}},
    "train": {"class_path": "Sample", "init_args": {"split": "train", "tasks": ["noise", "motion_blur", "haze"]}},
    "patch_size": 64,
    "data": {"task_names": ["blur", "haze", "jpeg", "lowlight", "noise", "raindrop", "rain", "shadow", "snow",
                            "inpainting"]},
}


def _cli(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "restorezoo.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _run(family: str, workdir: Path, processes: int) -> dict[str, Any]:
    """fit 2 steps + test with ``processes`` ranks; returns weights, epoch loss and the test table."""
    spec = DACLIP_FAMILY if family == "daclip" else FAMILIES[family]
    run = workdir / f"run{processes}"
    config = {
        "seed_everything": 0,
        "trainer": {**TRAINER, "devices": processes, "strategy": "ddp" if processes > 1 else "auto",
                    "default_root_dir": str(run),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(run), "name": "logs", "version": 0}}},
        "model": spec["model"],
        "data": {"class_path": "RestorationDataModule", "init_args": {
            "train": [spec["train"]], "batch_size": 4 // processes,
            "patch_size": spec["patch_size"], "num_workers": 0, **spec.get("data", {})}},
        "metrics": {"save_images": 0, "output_dir": str(run / "table")},
    }
    path = workdir / f"config{processes}.yaml"
    if "test" in spec:
        config["data"]["init_args"]["test"] = [spec["test"]]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    _cli(["fit", "--config", str(path)], workdir)
    (ckpt,) = sorted((run / "logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    table: list[dict[str, str]] = []
    if "test" in spec:
        _cli(["test", "--config", str(path), "--ckpt_path", str(ckpt), "--trainer.logger.init_args.version", "1"],
             workdir)
        with open(run / "table" / "benchmark.csv", newline="") as handle:
            table = list(csv.DictReader(handle))
    with open(run / "logs" / "version_0" / "metrics.csv", newline="") as handle:
        epoch_loss = [float(row["train/loss_epoch"]) for row in csv.DictReader(handle) if row.get("train/loss_epoch")]
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    moments = [s["exp_avg"] for s in checkpoint["optimizer_states"][0]["state"].values()]
    return {"state": checkpoint["state_dict"], "moments": moments, "epoch_loss": epoch_loss, "table": table}


def _numbers(table: list[dict[str, str]]) -> dict[tuple[int, str], float]:
    """(row, column) → value for every numeric cell of a benchmark.csv."""
    out = {}
    for index, row in enumerate(table):
        for column, value in row.items():
            try:
                out[(index, column)] = float(value)
            except (TypeError, ValueError):
                continue
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_process_ddp_equals_one_process(family: str, tmp_path: Path):
    single = _run(family, tmp_path, 1)
    ddp = _run(family, tmp_path, 2)
    assert single["state"].keys() == ddp["state"].keys()
    for key, value in single["state"].items():
        assert torch.allclose(value.float(), ddp["state"][key].float(), atol=1e-5, rtol=1e-4), key
    # the same averaged gradients reached AdamW (its first moments), and they were not zero
    assert len(single["moments"]) == len(ddp["moments"]) > 0
    assert any(m.abs().max() > 0 for m in single["moments"])
    for first, second in zip(single["moments"], ddp["moments"]):
        assert torch.allclose(first, second, atol=1e-5, rtol=1e-3)
    assert len(single["epoch_loss"]) == len(ddp["epoch_loss"]) == 1
    assert single["epoch_loss"][0] == pytest.approx(ddp["epoch_loss"][0], rel=1e-5)
    single_table, ddp_table = _numbers(single["table"]), _numbers(ddp["table"])
    assert single_table and single_table.keys() == ddp_table.keys()
    for key, value in single_table.items():
        assert value == pytest.approx(ddp_table[key], rel=1e-4, abs=1e-4), key


def test_daclip_two_process_ddp_with_gathered_negatives_equals_one_process(tmp_path: Path):
    """The contrastive loss over the global batch: DDP (2 × 2 rows, negatives gathered) = 1 process × 4 rows."""
    single = _run("daclip", tmp_path, 1)
    ddp = _run("daclip", tmp_path, 2)
    assert single["epoch_loss"][0] == pytest.approx(ddp["epoch_loss"][0], rel=1e-5)
    trained = [k for k in single["state"] if k.startswith("visual_control.") or k == "logit_scale"]
    assert trained
    for key in trained:
        assert torch.allclose(single["state"][key], ddp["state"][key], atol=1e-5, rtol=1e-4), key
    for first, second in zip(single["moments"], ddp["moments"]):
        assert torch.allclose(first, second, atol=1e-6, rtol=1e-3)
