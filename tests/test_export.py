"""Hub-ready exports: `restorezoo export CKPT --to DIR` writes a folder a model hub can host, and
`restorezoo.load_model(DIR or "org/name")` loads it back to the same outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

import restorezoo
from restorezoo.callbacks import RECORD_KEY
from restorezoo.errors import WeightsNotFoundError
from tests.conftest import run_cli, write_photo, write_tiny_checkpoint

TABLE = """## restorezoo benchmark (sample: RGB, crop 0, uint8)

| benchmark | task | images | PSNR | SSIM |
| --- | --- | ---: | ---: | ---: |
| sample | noise | 3 | 23.17 | 0.6021 |
"""
TRAINING_CONFIG = """model:
  class_path: InstructIR
data:
  class_path: RestorationDataModule
  init_args:
    train:
      - class_path: Sample
        init_args: {split: train, tasks: [noise, blur]}
    batch_size: 4
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `restorezoo fit`-shaped run folder: checkpoints/last.ckpt (with its run record) and no table yet."""
    root = tmp_path_factory.mktemp("run")
    record = {"task_names": ["noise", "blur"], "config": TRAINING_CONFIG}
    write_tiny_checkpoint(root / "checkpoints/last.ckpt", {RECORD_KEY: record})
    return root


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_an_exported_folder_restores_exactly_like_the_checkpoint(run, tmp_path, capsys):
    table = tmp_path / "benchmark.md"
    table.write_text(TABLE)
    folder = tmp_path / "hub" / "tiny-instructir"
    ckpt = run / "checkpoints/last.ckpt"
    code, stdout, stderr = run_cli(["export", str(ckpt), "--to", str(folder), "--benchmark", str(table)], capsys)
    assert code == 0, stderr
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "model.yaml"]
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-instructir"], "no temporary folder left behind"

    image = torch.rand(3, 19, 23)
    original = restorezoo.restore(image, "remove the noise", model=restorezoo.load_model(ckpt=ckpt))
    for loaded in (restorezoo.load_model(folder), restorezoo.load_model(ckpt=folder)):
        assert torch.equal(restorezoo.restore(image, "remove the noise", model=loaded), original)

    card = (folder / "README.md").read_text()
    front = _front_matter(card)
    assert front["library_name"] == "restorezoo" and front["pipeline_tag"] == "image-to-image"
    assert front["license"] == "apache-2.0" and {"restorezoo", "instructir"} <= set(front["tags"])
    assert "| sample | noise | 3 | 23.17 | 0.6021 |" in card, "the measured table, as measured"
    assert "class_path: Sample" in card and "tasks:" in card, "the training data section of the run's config"
    from safetensors.torch import load_file

    count = sum(t.numel() for t in load_file(folder / "model.safetensors").values())
    assert f"{count:,}" in card, "the parameter count of the shipped weights"
    assert "restorezoo.load_model(" in card and "restorezoo restore" in card and "InstructIR" in card


def test_the_card_takes_the_runs_own_table_and_says_so_when_there_is_none(run, tmp_path):
    from restorezoo.export import export_folder

    no_table = export_folder(run / "checkpoints/last.ckpt", tmp_path / "a")
    card = (no_table / "README.md").read_text()
    assert "No benchmark was measured" in card and "| --- |" not in card, "no invented numbers"

    logs = run / "logs" / "version_1"
    logs.mkdir(parents=True)
    (logs / "benchmark.md").write_text(TABLE)
    try:
        found = export_folder(run / "checkpoints/last.ckpt", tmp_path / "b")
        assert "| sample | noise | 3 | 23.17 | 0.6021 |" in (found / "README.md").read_text()
    finally:
        shutil.rmtree(run / "logs")


def test_export_refuses_to_overwrite_a_folder_without_the_flag(run, tmp_path, capsys):
    folder = tmp_path / "model"
    ckpt = str(run / "checkpoints/last.ckpt")
    assert run_cli(["export", ckpt, "--to", str(folder)], capsys)[0] == 0
    (folder / "mine.txt").write_text("keep me")
    code, _, stderr = run_cli(["export", ckpt, "--to", str(folder)], capsys)
    assert code == 1 and "--overwrite" in stderr and stderr.count("\n") == 1
    assert (folder / "mine.txt").exists(), "the refused export left the folder alone"
    assert run_cli(["export", ckpt, "--to", str(folder), "--overwrite"], capsys)[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "model.yaml"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "the replaced folder is gone, no temporaries"


def test_restore_cli_takes_an_export_folder(run, tmp_path, capsys):
    folder = tmp_path / "model"
    assert run_cli(["export", str(run / "checkpoints/last.ckpt"), "--to", str(folder)], capsys)[0] == 0
    write_photo(tmp_path / "photo.png", seed=3, size=(21, 30))
    out = tmp_path / "out.png"
    args = ["restore", str(tmp_path / "photo.png"), "--ckpt", str(folder), "--prompt", "denoise", "-o", str(out)]
    code, _, stderr = run_cli(args, capsys)
    assert code == 0, stderr
    from PIL import Image

    with Image.open(out) as image:
        assert image.size == (30, 21)


def test_a_hub_id_offline_gives_one_line_naming_the_local_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as error:
        restorezoo.load_model("restorezoo-test/no-such-model")
    message = str(error.value)
    assert "\n" not in message and "restorezoo-test/no-such-model" in message and "folder" in message


def test_a_hub_id_downloads_only_the_export_files(run, tmp_path, monkeypatch):
    import huggingface_hub

    from restorezoo.export import export_folder

    folder = tmp_path / "published"
    export_folder(run / "checkpoints/last.ckpt", folder)
    (folder / "huge_extra.bin").write_bytes(b"x")
    calls: list[dict] = []

    def fake_snapshot_download(repo_id: str, **kwargs):  # the hub, served from a local folder
        calls.append({"repo_id": repo_id, **kwargs})
        cache = tmp_path / "cache" / repo_id.replace("/", "--")
        cache.mkdir(parents=True, exist_ok=True)
        for name in kwargs["allow_patterns"]:
            if (folder / name).exists():
                shutil.copy(folder / name, cache / name)
        return str(cache)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    model = restorezoo.load_model("org/tiny-instructir")
    assert type(model).__name__ == "InstructIR"
    assert calls[0]["repo_id"] == "org/tiny-instructir" and calls[0]["local_files_only"] is False
    assert "huge_extra.bin" not in calls[0]["allow_patterns"] and "model.safetensors" in calls[0]["allow_patterns"]
