"""SPIRE's data recipe: half Real-ESRGAN on the accelerator, half parameterized with written prompts."""

from __future__ import annotations

import json

import torch

from restorezoo.data import CaptionedFolder, RestorationDataModule, Sample, SpireMix
from restorezoo.data.degrade.parameterized import parse_restoration_prompt
from restorezoo.data.prompts import SPIRE_BLIND_PROMPT
from tests.conftest import write_photo


def test_branches_are_drawn_half_and_half_with_their_prompts():
    data = SpireMix(Sample("train", tasks=["noise"]), repeat=20).configure(training=True, patch_size=32)
    torch.manual_seed(0)
    samples = [data[i] for i in range(120)]
    gpu = [s for s in samples if bool(s["gpu_degrade"])]
    assert 0.35 < len(gpu) / len(samples) < 0.65
    assert all(s["prompt"] == SPIRE_BLIND_PROMPT and torch.equal(s["lq"], s["hq"]) for s in gpu)
    for s in samples:
        if not bool(s["gpu_degrade"]):
            stages = parse_restoration_prompt(s["prompt"])
            assert [st["stage"] for st in stages] == [st["stage"] for st in s["params"]["stages"]]


def test_the_datamodule_degrades_the_flagged_rows_on_the_device():
    data = SpireMix(Sample("train"), p_realesrgan=1.0, repeat=4)
    dm = RestorationDataModule(train=[data], batch_size=4, patch_size=48)
    batch = dm.gpu_degradation(next(iter(dm.train_dataloader())))
    assert not bool(batch["gpu_degrade"].any()), "rows are marked done"
    assert all((batch["lq"][i] - batch["hq"][i]).abs().mean() > 1e-3 for i in range(4))
    assert all(p["task"] == "realesrgan" for p in batch["params"])


def test_evaluation_is_fixed_per_index_and_captions_come_from_the_source(tmp_path):
    for i in range(3):
        write_photo(tmp_path / "val2017" / f"{i:012d}.jpg".replace(".jpg", ".png"), seed=i, size=(40, 40))
    coco = {
        "images": [{"id": i, "file_name": f"{i:012d}.png"} for i in range(3)],
        "annotations": [{"image_id": i, "caption": f"a pattern number {i}"} for i in range(3)],
    }
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    source = CaptionedFolder(str(tmp_path / "val2017"), str(tmp_path / "captions.json"))
    first, second = (SpireMix(source).configure(training=False) for _ in range(2))
    a, b = first[1], second[1]
    assert a["prompt"] == b["prompt"] and torch.equal(a["lq"], b["lq"])
    assert a["caption"] == "a pattern number 1"


def test_captions_are_dropped_in_training_only(tmp_path):
    for i in range(2):
        write_photo(tmp_path / "img" / f"{i}.png", seed=i, size=(32, 32))
    rows = [{"lq": f"img/{i}.png", "hq": f"img/{i}.png", "caption": "a colourful pattern"} for i in range(2)]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    from restorezoo.data import Manifest

    train = SpireMix(Manifest(str(tmp_path / "m.jsonl")), caption_dropout=0.3, repeat=200)
    train.configure(training=True, patch_size=16)
    torch.manual_seed(0)
    dropped = sum(train[i]["caption"] == "" for i in range(400)) / 400
    assert 0.2 < dropped < 0.4
    test = SpireMix(Manifest(str(tmp_path / "m.jsonl")), caption_dropout=0.3).configure(training=False)
    assert all(test[i]["caption"] == "a colourful pattern" for i in range(2))
