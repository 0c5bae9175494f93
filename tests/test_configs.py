"""Every shipped config parses, and the paper configs train/test on data laid out as the archives ship it."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorezoo.cli import main
from tests.conftest import REPO, working_directory, write_photo

CONFIGS = sorted((REPO / "configs").glob("*/*.yaml"))
TINY = [
    "--model.init_args.width", "8", "--model.init_args.enc_blocks", "[1, 1]", "--model.init_args.middle_blocks", "1",
    "--model.init_args.dec_blocks", "[1, 1]", "--model.init_args.text_encoder", "auto",
    "--model.init_args.warm_instructions", "false", "--model.init_args.register_accuracy", "false",
]
LAYOUT_5D = {
    "train": ["denoise", "RainTrainL/input", "RainTrainL/target", "GoPro/input", "GoPro/target",
              "LOL/our485/low", "LOL/our485/high"],
    "test": ["CBSD68/original_png", "Rain100L/input", "Rain100L/target", "GoPro/test/input", "GoPro/test/target",
             "LOL/eval15/low", "LOL/eval15/high"],
}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_parses(config: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path" in capsys.readouterr().out


def test_instructir_paper_configs_follow_the_recipe():
    """Data as the paper sizes it (OTS 2000, MIT5K 1000, no repeat factors), 6D from 5D and 7D from 6D,
    checkpoints selected on the mean over tasks."""
    import yaml

    configs = {n: yaml.safe_load((REPO / f"configs/instructir/{n}.yaml").read_text()) for n in ("3d", "5d", "6d", "7d")}
    for name, config in configs.items():
        train = config["data"]["init_args"]["train"]
        assert len(train) == {"3d": 3, "5d": 5, "6d": 6, "7d": 7}[name]
        assert not any("repeat" in d["init_args"] for d in train), name
        haze = next(d["init_args"] for d in train if d["init_args"].get("task") == "haze")
        assert haze["max_pairs"] == 2000
        checkpoint = config["trainer"]["callbacks"][0]["init_args"]
        assert checkpoint["monitor"] == "val/psnr_task_mean" and checkpoint["filename"] == "best"
        assert len(config["data"]["init_args"]["val"]) == len(train), "one validation set per task"
    assert configs["3d"]["trainer"]["max_epochs"] == configs["5d"]["trainer"]["max_epochs"] == 500
    assert "init_from" not in configs["5d"]["model"]["init_args"]
    assert configs["6d"]["model"]["init_args"]["init_from"] == "runs/instructir-5d/checkpoints/best.ckpt"
    assert configs["7d"]["model"]["init_args"]["init_from"] == "runs/instructir-6d/checkpoints/best.ckpt"


def test_paper_5d_config_runs_on_the_distributed_folder_layout(tmp_path: Path):
    for split, folders in LAYOUT_5D.items():
        for folder in folders:
            write_photo(tmp_path / "data" / split / folder / "0001.png", seed=len(folder), size=(48, 48))
    # SOTS pairs hazy "0001_0.8_0.2" with gt "0001"; RESIDE OTS the same way.
    for base, lq, hq in (("data/test/SOTS/outdoor", "hazy", "gt"), ("data/train/RESIDE/OTS", "hazy", "clear")):
        write_photo(tmp_path / base / hq / "0001.png", seed=1, size=(48, 48))
        write_photo(tmp_path / base / lq / "0001_0.8_0.2.png", seed=2, size=(48, 48))
    with working_directory(tmp_path):
        main([
            "fit", "--config", str(REPO / "configs/instructir/5d.yaml"), *TINY,
            "--trainer.fast_dev_run", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.precision", "32-true", "--data.init_args.batch_size", "2", "--data.init_args.patch_size", "32",
            "--data.init_args.num_workers", "0", "--metrics.save_images", "0",
        ])
