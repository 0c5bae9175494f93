"""Paper test sets as distributed, DA-CLIP's universal tree, captioned data, the multi-task mix, `data check`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from restorezoo.cli import main
from restorezoo.data import Benchmark, RestorationDataModule
from restorezoo.data.check import check_config
from restorezoo.data.datasets import CaptionedFolder, Item, PairedFolder, RestorationDataset, UniversalFolder
from restorezoo.data.pairing import match_pairs, pair_keys
from restorezoo.data.testsets import DACLIP_RGB, JPEG_Y, PRESETS, SR_Y
from restorezoo.errors import DataError
from tests.conftest import write_photo

SIZE = (24, 32)


def _pairs(root: Path, lq: str, hq: str, names: list[tuple[str, str]]) -> None:
    for i, (lq_name, hq_name) in enumerate(names):
        write_photo(root / hq / hq_name, seed=i, size=SIZE)
        write_photo(root / lq / lq_name, seed=i + 50, size=SIZE)


def _coco_json(path: Path, names: list[str], captions: dict[str, list[str]]) -> None:
    images = [{"id": i + 1, "file_name": name} for i, name in enumerate(names)]
    notes = [{"image_id": i + 1, "id": 100 * i + j, "caption": text}
             for i, name in enumerate(names) for j, text in enumerate(captions.get(name, []))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": notes}))


def _lay_out(name: str, root: Path) -> None:
    """Write a two-image copy of a preset's archive exactly as it unpacks."""
    if name == "live1_q10":
        for i, stem in enumerate(("bikes", "house")):
            write_photo(root / "LIVE1" / f"{stem}.bmp", seed=i, size=SIZE)
    elif name == "raindrop_a":
        _pairs(root, "RainDrop/test_a/data", "RainDrop/test_a/gt", [(f"{i}_rain.png", f"{i}_clean.png") for i in (0, 1)])
    elif name == "snow100k_l":
        base = "Snow100K/test/Snow100K-L"
        _pairs(root, f"{base}/synthetic", f"{base}/gt", [(f"city_{i:05d}.jpg",) * 2 for i in (1, 2)])
    elif name == "srd":
        _pairs(root, "SRD/test/shadow", "SRD/test/shadow_free", [(f"IMG_{i}.jpg", f"IMG_{i}_free.jpg") for i in (1, 2)])
    elif name == "reside6k":
        _pairs(root, "RESIDE-6K/test/hazy", "RESIDE-6K/test/GT", [(f"{i:04d}.jpg",) * 2 for i in (1, 2)])
    elif name == "div2k_val_x4":
        for i in (801, 802):
            write_photo(root / "DIV2K/DIV2K_valid_HR" / f"{i:04d}.png", seed=i, size=SIZE)
    elif name == "coco_val":
        names = ["000000000139.jpg", "000000000285.jpg"]
        for i, file in enumerate(names):
            write_photo(root / "COCO/val2017" / file, seed=i, size=SIZE)
        _coco_json(root / "COCO/annotations/captions_val2017.json", names,
                   {n: [f"first caption {i}", f"second caption {i}"] for i, n in enumerate(names)})


@pytest.mark.parametrize(
    ("name", "task", "protocol"),
    [
        ("live1_q10", "jpeg", JPEG_Y),
        ("raindrop_a", "raindrop", DACLIP_RGB),
        ("snow100k_l", "snow", DACLIP_RGB),
        ("srd", "shadow", DACLIP_RGB),
        ("reside6k", "haze", DACLIP_RGB),
        ("div2k_val_x4", "sr", SR_Y),
        ("coco_val", None, PRESETS["coco_val"].protocol),
    ],
)
def test_each_new_preset_reads_its_distributed_layout_with_its_task_and_protocol(tmp_path, name, task, protocol):
    _lay_out(name, tmp_path)
    bench = Benchmark(name, root=str(tmp_path)).configure(training=False)
    assert len(bench) == 2 and bench.protocol == protocol and PRESETS[name].paper
    sample = bench[0]
    assert sample["lq"].shape == sample["hq"].shape == (3, *SIZE) and sample["benchmark"] == name
    if task is not None:
        assert sample["task"] == task
    if name == "live1_q10":
        assert sample["params"]["quality"] == 10 and protocol.y_channel
    if name == "div2k_val_x4":
        assert sample["params"]["scale"] == 4 and (protocol.y_channel, protocol.crop_border) == (True, 4)
    if name == "coco_val":
        assert sample["caption"] == "first caption 0" and sample["name"] == "000000000139"
    assert torch.equal(bench[1]["lq"], Benchmark(name, root=str(tmp_path)).configure(training=False)[1]["lq"])


@pytest.mark.parametrize("name", ["srd", "div2k_val_x4", "coco_val", "raindrop_a"])
def test_a_missing_folder_is_one_line_naming_the_preset_its_layout_and_the_overrides(tmp_path, name):
    with pytest.raises(DataError) as error:
        Benchmark(name, root=str(tmp_path))
    message = str(error.value)
    preset = PRESETS[name]
    assert "\n" not in message and f"'{name}'" in message and "not found" in message
    for folder in filter(None, (preset.lq, preset.hq, preset.captions)):
        assert str(tmp_path / folder) in message
    assert all(hint in message for hint in ("root=", "lq_dir=", "hq_dir="))


def test_the_error_names_the_folder_that_is_missing_when_only_one_is(tmp_path):
    _pairs(tmp_path, "SRD/test/shadow", "elsewhere", [("IMG_1.jpg", "IMG_1_free.jpg")])
    with pytest.raises(DataError, match=r"not found: \S*SRD/test/shadow_free;"):
        Benchmark("srd", root=str(tmp_path))
    bench = Benchmark("srd", root=str(tmp_path), hq_dir=str(tmp_path / "elsewhere"))
    assert bench.num_items() == 1


def test_suffix_matching_pairs_raindrop_and_srd_names_and_still_reports_orphans(tmp_path):
    _pairs(tmp_path, "data", "gt", [("0_rain.png", "0_clean.png"), ("12_rain.png", "12_clean.png")])
    pairs = match_pairs(tmp_path / "data", tmp_path / "gt", "suffix:_rain,_clean")
    assert [(a.name, b.name) for a, b in pairs] == [("0_rain.png", "0_clean.png"), ("12_rain.png", "12_clean.png")]
    write_photo(tmp_path / "gt" / "7_clean.png", seed=3)
    with pytest.raises(DataError, match="7_clean.png"):
        match_pairs(tmp_path / "data", tmp_path / "gt", "suffix:_rain,_clean")

    # SRD: shadow-free names carry "_free" in some copies and not in others; both pair.
    _pairs(tmp_path, "shadow", "free", [("a.jpg", "a_free.jpg"), ("b.jpg", "b.jpg")])
    srd = PairedFolder(str(tmp_path / "shadow"), str(tmp_path / "free"), match="suffix:,_free")
    assert [(a.name, b.name) for a, b in srd.pairs] == [("a.jpg", "a_free.jpg"), ("b.jpg", "b.jpg")]
    with pytest.raises(DataError, match="unknown match mode"):
        pair_keys("fuzzy")
    lq_key, hq_key = pair_keys(lambda path: path.stem.lower())
    assert lq_key(Path("A.png")) == hq_key(Path("a.jpg")) == "a"


@pytest.mark.parametrize("delimiter", ["\t", ","])
def test_universal_folder_reads_each_degradation_with_its_task_and_daclip_captions(tmp_path, delimiter):
    root = tmp_path / "universal"
    rows = ["filepath" + delimiter + "title"]
    for d, folder in enumerate(("noisy", "raindrop", "snowy")):
        _pairs(root / "train" / folder, "LQ", "GT", [(f"{folder}{i}.png",) * 2 for i in range(2)])
        for i in range(2):
            where = f"/home/someone/datasets/universal/train/{folder}/LQ/{folder}{i}.png"
            rows.append(f"{where}{delimiter}a red house number {d}{i}: {folder}")
    captions = tmp_path / "daclip_train.csv"
    captions.write_text("\n".join(rows) + "\n")

    data = UniversalFolder(str(root), "train", caption_file=str(captions)).configure(training=False)
    samples = [data[i] for i in range(len(data))]
    assert len(samples) == 6
    assert [s["task"] for s in samples] == ["noise"] * 2 + ["raindrop"] * 2 + ["snow"] * 2
    assert samples[3]["caption"] == "a red house number 11" and samples[3]["params"]["degradation"] == "raindrop"
    only = UniversalFolder(str(root), "train", degradations=["snowy"])
    assert only.num_items() == 2 and only.benchmark == "universal_train"
    with pytest.raises(DataError, match="val"):
        UniversalFolder(str(root), "val")


def test_captioned_folder_drops_captions_at_its_rate_in_training_only(tmp_path):
    names = [f"{i:012d}.jpg" for i in range(3)]
    for i, name in enumerate(names):
        write_photo(tmp_path / "val2017" / name, seed=i, size=(16, 16))
    captions = {name: [f"a photo {i}", f"another photo {i}"] for i, name in enumerate(names)}
    _coco_json(tmp_path / "captions.json", names, captions)
    make = lambda: CaptionedFolder(  # noqa: E731
        str(tmp_path / "val2017"), str(tmp_path / "captions.json"), {"name": "noise", "sigmas": [25]}, 0.25
    )

    evaluation = make().configure(training=False)
    assert [evaluation[i]["caption"] for i in range(3)] == ["a photo 0", "a photo 1", "a photo 2"]
    assert evaluation[0]["params"]["sigma"] == 25 and evaluation[0]["task"] == "noise"
    assert all(evaluation[i % 3]["caption"] for i in range(60)), "no dropout outside training"

    torch.manual_seed(0)
    training = make().configure(training=True, patch_size=8)
    drawn = [training[i % 3]["caption"] for i in range(600)]
    assert 0.20 < drawn.count("") / len(drawn) < 0.30
    assert {"a photo 1", "another photo 1"} <= set(drawn), "a random caption of the image per sample"

    _coco_json(tmp_path / "more.json", [*names, "missing.jpg"], captions)
    with pytest.raises(DataError, match="missing.jpg"):
        CaptionedFolder(str(tmp_path / "val2017"), str(tmp_path / "more.json"))


class _Constant(RestorationDataset):
    """n tiny grey images; enough to count which set a loader drew from."""

    def __init__(self, n: int, benchmark: str) -> None:
        super().__init__(benchmark)
        self.n = n

    def num_items(self) -> int:
        return self.n

    def item(self, index: int, generator: torch.Generator) -> Item:
        image = torch.full((3, 8, 8), 0.5)
        return Item(hq=image, lq=image.clone(), name=f"{self.benchmark}{index}")


def _drawn(dm: RestorationDataModule) -> list[str]:
    return [name for batch in dm.train_dataloader() for name in batch["name"]]


def test_train_weights_draw_each_set_at_its_weight_whatever_its_size():
    torch.manual_seed(0)
    dm = RestorationDataModule(train=[_Constant(300, "big"), _Constant(10, "small")], batch_size=10,
                               patch_size=8, train_weights=[0.7, 0.3])
    names = _drawn(dm)
    assert len(names) == 310, "an epoch is as long as all training sets together"
    small = sum(n.startswith("small") for n in names) / len(names)
    assert 0.24 < small < 0.36, f"small set drawn {small:.2f} of the time, weight 0.3"

    plain = RestorationDataModule(train=[_Constant(30, "big"), _Constant(10, "small")], batch_size=10, patch_size=8)
    assert sorted(_drawn(plain)) == sorted([f"big{i}" for i in range(30)] + [f"small{i}" for i in range(10)])
    with pytest.raises(DataError, match="2 training sets"):
        RestorationDataModule(train=[_Constant(3, "a"), _Constant(3, "b")], train_weights=[1.0])


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_data_check_reports_unmatched_corrupt_and_mismatched_files_and_touches_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    _pairs(data, "lq", "hq", [(f"{n}.png",) * 2 for n in ("a", "b", "c")])
    write_photo(data / "lq" / "extra.png", seed=7, size=SIZE)  # no HQ partner
    (data / "lq" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")  # corrupt
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(data / "hq" / "c.png")  # size mismatch
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "RestorationDataModule", "init_args": {
        "train": [{"class_path": "PairedFolder", "init_args": {"lq_dir": str(data / "lq"), "hq_dir": str(data / "hq")}}],
        "test": [{"class_path": "Sample", "init_args": {"split": "test"}}],
    }}}))
    before = _digest(tmp_path)

    (report, sample) = check_config(config)
    assert (report.pairs, report.images) == (3, 7) and sample.ok
    assert [u.split()[1] for u in report.unmatched] == [str(data / "lq" / "extra.png")]
    assert len(report.unreadable) == 1 and "b.png" in report.unreadable[0]
    assert report.size_mismatches == ["c.png 24x32 vs c.png 10x12"]
    with pytest.raises(SystemExit) as exit_code:
        main(["data", "check", "--config", str(config)])
    assert exit_code.value.code == 1
    out = capsys.readouterr().out
    assert "extra.png" in out and "b.png" in out and "size mismatch" in out
    assert _digest(tmp_path) == before, "data check only reads"


def test_data_check_passes_a_clean_config_and_reports_missing_folders_without_raising(tmp_path):
    _lay_out("raindrop_a", tmp_path)
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump({"data": {"init_args": {"test": [
        {"class_path": "restorezoo.data.Benchmark", "init_args": {"name": "raindrop_a", "root": str(tmp_path)}},
    ]}}}))
    main(["data", "check", "--config", str(config)])  # returns: exit code 0

    config.write_text(yaml.safe_dump({"data": {"init_args": {"test": [
        {"class_path": "Benchmark", "init_args": {"name": "srd", "root": str(tmp_path)}},
        {"class_path": "UniversalFolder", "init_args": {"root": str(tmp_path / "nowhere")}},
    ]}}}))
    srd, universal = check_config(config)
    assert any("SRD/test/shadow" in m for m in srd.missing) and not srd.ok
    assert universal.missing and universal.pairs == 0
