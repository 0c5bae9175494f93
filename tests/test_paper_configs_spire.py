"""SPIRE's paper configs (and its baselines') train to their first step and test on MS-COCO laid out as the
archive ships it (tiny random SD, CPU). Slow: each run builds a model and a Real-ESRGAN batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restorezoo.cli import main
from tests.conftest import REPO, working_directory, write_photo

CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true",
       "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
TINY = ["--model.init_args.pretrained", "tiny", "--model.init_args.steps", "2", "--model.init_args.progress", "false"]
SPIRE_CONFIGS = ("spire", "controlnet_sr", "controlnet_sr_prompts", "spire_wo_text")


def _coco(root: Path) -> None:
    for split, size in (("train2017", (112, 128)), ("val2017", (160, 192))):
        names = [f"{i:012d}.jpg" for i in range(3)]
        for i, name in enumerate(names):
            write_photo(root / "data/COCO" / split / name, seed=i, size=size)
        captions = {
            "images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
            "annotations": [{"image_id": i, "caption": f"a photo number {i}"} for i in range(len(names))],
        }
        path = root / f"data/COCO/annotations/captions_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(captions))


@pytest.mark.slow
@pytest.mark.parametrize("name", SPIRE_CONFIGS)
def test_spire_config_runs_its_first_step_and_test_on_the_coco_layout(tmp_path: Path, name: str):
    _coco(tmp_path)
    config = str(REPO / "configs/spire" / f"{name}.yaml")
    with working_directory(tmp_path):
        main(["fit", "--config", config, *TINY, *CPU, "--trainer.fast_dev_run", "1",
              "--data.init_args.batch_size", "2", "--data.init_args.patch_size", "96",
              "--data.init_args.num_workers", "0", "--metrics.save_images", "0", "--metrics.learned", "[]"])
        main(["test", "--config", config, *TINY, *CPU, "--trainer.limit_test_batches", "1",
              "--data.init_args.num_workers", "0", "--metrics.save_images", "0", "--metrics.learned", "[]",
              "--metrics.output_dir", "table"])
    table = next((tmp_path / "table").rglob("*.md")).read_text()
    assert "coco_val" in table and "coco_val_realesrgan_x4" in table
