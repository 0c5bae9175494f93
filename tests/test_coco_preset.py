"""The ``coco_val`` preset follows SPIRE's Table-1 protocol: COCO val + captions, parameterized degradation
with its restoration prompt, fixed per image."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from restorezoo.data.degrade import parse_restoration_prompt, restoration_prompt
from restorezoo.data.testsets import PRESETS, Benchmark
from restorezoo.metrics.learned import KNOWN_LEARNED
from tests.conftest import write_photo

NAMES = [f"{i:012d}.jpg" for i in (139, 285, 632, 724)]


def _coco(root: Path) -> Path:
    for i, name in enumerate(NAMES):
        write_photo(root / "COCO/val2017" / name, seed=i, size=(32, 40))
    captions = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(NAMES)],
        "annotations": [{"image_id": i, "caption": f"photo number {i}"} for i in range(len(NAMES))],
    }
    path = root / "COCO/annotations/captions_val2017.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(captions))
    return root


def test_coco_val_prompts_are_the_restoration_prompts_of_the_stages_applied(tmp_path):
    bench = Benchmark("coco_val", root=str(_coco(tmp_path))).configure(training=False)
    samples = [bench[i] for i in range(len(bench))]
    for i, sample in enumerate(samples):
        stages = sample["params"]["stages"]
        assert stages, "every evaluation image is degraded"
        assert sample["prompt"] == restoration_prompt(sample["params"])
        assert [s["stage"] for s in parse_restoration_prompt(sample["prompt"])] == [s["stage"] for s in stages]
        assert sample["caption"] == f"photo number {i}" and not torch.equal(sample["lq"], sample["hq"])
    assert len({s["prompt"] for s in samples}) > 1  # drawn per image, not one prompt for the set

    again = Benchmark("coco_val", root=str(tmp_path)).configure(training=False)
    assert again[2]["prompt"] == samples[2]["prompt"] and torch.equal(again[2]["lq"], samples[2]["lq"])


def test_coco_val_fixed_prompt_max_images_and_paper_metrics(tmp_path):
    _coco(tmp_path)
    bench = Benchmark("coco_val", root=str(tmp_path), max_images=2, prompt="Remove all degradation")
    bench.configure(training=False)
    assert len(bench) == 2 and bench[1]["prompt"] == "Remove all degradation"
    metrics = PRESETS["coco_val"].metrics
    assert {"fid", "clip_i", "clip_t"} <= set(metrics) and all(
        m in KNOWN_LEARNED or m in ("psnr", "ssim") for m in metrics
    )
