"""Diff-Restorer's paper configs, each ablation and the paper-data config, train to their first step on data
laid out as the archives ship it (tiny random SD and CLIP, CPU). Slow: one model build and step per config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from restorezoo.cli import main
from restorezoo.data.presets import DIFFRESTORER_BENCHMARKS, PRESETS
from tests.conftest import REPO, working_directory, write_photo

CONFIGS = REPO / "configs" / "diffrestorer"
CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true",
       "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
       "--trainer.fast_dev_run", "1", "--data.init_args.batch_size", "2", "--data.init_args.resize", "32",
       "--data.init_args.num_workers", "0", "--metrics.save_images", "0", "--metrics.learned", "[]"]
TINY_ARGS = {"pretrained": "tiny", "clip_model": "tiny", "clip_pretrained": None, "degradation_dim": 16,
             "hidden_dim": 32, "control_channels": [16, 16, 32, 32], "progress": False, "steps": 2}
TINY = [arg for key, value in TINY_ARGS.items()
        for arg in (f"--model.init_args.{key}", "null" if value is None else str(value).lower()
                    if isinstance(value, bool) else str(value))]
STAGE1 = ["stage1.yaml", "stage1_paper_data.yaml", *sorted(p.name for p in CONFIGS.glob("ablation_*.yaml"))]
DECODERS = ["decoder.yaml", "decoder_wo_drb.yaml"]
UNIVERSAL = ["noisy", "low-light", "hazy", "rainy", "raindrop", "snowy", "motion-blurry", "jpeg-compressed"]


def _layout(root: Path) -> None:
    for split in ("train", "val"):
        for i, folder in enumerate(UNIVERSAL):
            for side in ("LQ", "GT"):
                write_photo(root / "data/universal" / split / folder / side / "0001.png", seed=i, size=(40, 40))
    for folder in ("DIV2K/DIV2K_train_HR", "Flickr2K/Flickr2K_HR", "LOL/our485/low", "LOL/our485/high",
                   "Snow100K/train/synthetic", "Snow100K/train/gt", "GoPro/train/input", "GoPro/train/target"):
        write_photo(root / "data" / folder / "0001.png", seed=len(folder), size=(40, 40))
    for lq, hq, lq_name in (("RESIDE/OTS/hazy", "RESIDE/OTS/clear", "0001_0.8_0.2.png"),
                            ("Rain1400/training/rainy_image", "Rain1400/training/ground_truth", "0001_3.png")):
        write_photo(root / "data" / lq / lq_name, seed=1, size=(40, 40))
        write_photo(root / "data" / hq / "0001.png", seed=2, size=(40, 40))
    write_photo(root / "data/RainDrop/train/data/0_rain.png", seed=3, size=(40, 40))
    write_photo(root / "data/RainDrop/train/gt/0_clean.png", seed=4, size=(40, 40))
    for name in DIFFRESTORER_BENCHMARKS:  # the test sets, each in its preset's layout
        preset = PRESETS[name]
        lq_name, hq_name = "0001.png", "0001.png"
        if preset.match == "prefix":
            lq_name = "0001_1.png"
        elif preset.match.startswith("suffix:"):
            a, b = preset.match[len("suffix:"):].split(",")
            lq_name, hq_name = f"0001{a}.png", f"0001{b}.png"
        if preset.hq is not None:
            write_photo(root / "data/benchmarks" / preset.hq / hq_name, seed=5, size=(40, 40))
        if preset.lq:
            write_photo(root / "data/benchmarks" / preset.lq / lq_name, seed=6, size=(40, 40))


def _run(tmp_path: Path, args: list[str]) -> None:
    with working_directory(tmp_path):
        main(args)


@pytest.mark.slow
@pytest.mark.parametrize("name", STAGE1)
def test_stage1_and_ablation_configs_run_their_first_step(tmp_path: Path, name: str):
    _layout(tmp_path)
    _run(tmp_path, ["fit", "--config", str(CONFIGS / name), *TINY, *CPU])


@pytest.mark.slow
@pytest.mark.parametrize("name", DECODERS)
def test_decoder_configs_run_their_first_step(tmp_path: Path, name: str):
    _layout(tmp_path)
    stage1 = yaml.safe_dump({**TINY_ARGS, "degradation_classes": ["noise", "lowlight", "haze", "rain", "raindrop",
                                                                   "snow", "blur", "jpeg"]}, default_flow_style=True)
    _run(tmp_path, ["fit", "--config", str(CONFIGS / name), "--model.init_args.stage1", stage1.strip(),
                    "--model.init_args.perceptual_weights", "tiny-random", "--model.init_args.disc_channels", "8",
                    "--model.init_args.disc_layers", "2", *CPU])
