"""Datasets, the DataModule and image I/O: the batch contract, clear errors, determinism, odd files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from restorezoo.data import (
    Benchmark,
    Manifest,
    PairedFolder,
    RestorationDataModule,
    Sample,
    Synthetic,
    collate,
    load_image,
    make_sample,
    save_image,
)
from restorezoo.data.prompts import instructions
from restorezoo.errors import DataError, ImageLoadError
from tests.conftest import write_photo


def _check_contract(sample: dict) -> None:
    assert sample["lq"].dtype == torch.float32 and sample["lq"].shape[0] == 3
    assert sample["lq"].min() >= 0 and sample["lq"].max() <= 1
    if "hq" in sample:
        assert sample["hq"].shape == sample["lq"].shape
    for key in ("prompt", "caption", "name", "benchmark"):
        assert isinstance(sample[key], str)
    assert isinstance(sample["params"], dict)


def test_sample_dataset_splits_are_disjoint_and_cover_every_task():
    splits = {s: Sample(s, tasks=["noise", "lowlight"]) for s in ("train", "val", "test")}
    names = {s: set(d.names) for s, d in splits.items()}
    assert not (names["train"] & names["test"]) and not (names["train"] & names["val"])
    test = splits["test"].configure(training=False)
    assert len(test) == 2 * len(names["test"])
    samples = [test[i] for i in range(len(test))]
    for sample in samples:
        _check_contract(sample)
    assert [s["task"] for s in samples[:2]] == ["noise", "lowlight"]


def test_evaluation_is_deterministic_per_index_and_uses_held_out_instructions():
    first = Sample("test", tasks=["noise"]).configure(training=False)
    second = Sample("test", tasks=["noise"]).configure(training=False)
    a, b = first[1], second[1]
    assert torch.equal(a["lq"], b["lq"]) and a["params"] == b["params"]
    assert not torch.equal(first[0]["lq"][:, :8, :8], first[1]["lq"][:, :8, :8])
    assert a["prompt"] in instructions("noise", "test")


def test_training_draws_random_crops_flips_and_training_instructions():
    train = Sample("train", tasks=["blur"], repeat=3).configure(training=True, patch_size=32)
    assert len(train) == 3 * len(train.names)
    samples = [train[0] for _ in range(4)]
    assert all(s["lq"].shape == (3, 32, 32) for s in samples)
    assert len({s["lq"].sum().item() for s in samples}) > 1, "fresh randomness every draw"
    assert all(s["prompt"] in instructions("blur", "train") for s in samples)


def test_paired_folder_matches_by_stem_and_lists_unmatched_files(paired_folder, tmp_path):
    lq, hq = paired_folder
    dataset = PairedFolder(str(lq), str(hq), task="lowlight", benchmark="pairs").configure(training=False)
    assert len(dataset) == 3
    sample = dataset[0]
    _check_contract(sample)
    assert sample["name"] == "img0" and sample["task"] == "lowlight" and sample["benchmark"] == "pairs"
    assert torch.allclose(sample["lq"], sample["hq"] * 0.5, atol=1 / 255 + 1e-6)
    write_photo(lq / "orphan.png", seed=9)
    with pytest.raises(DataError, match="orphan.png"):
        PairedFolder(str(lq), str(hq))
    with pytest.raises(DataError, match="not found"):
        PairedFolder(str(tmp_path / "missing"), str(hq))


def test_resize_trains_on_whole_images_resized_instead_of_crops(paired_folder):
    lq, hq = paired_folder
    data = RestorationDataModule(train=[PairedFolder(str(lq), str(hq))], resize=16, flip=False, batch_size=3)
    dataset = data.train_sets[0]
    sample = dataset[0]
    assert sample["hq"].shape == (3, 16, 16)
    full = PairedFolder(str(lq), str(hq)).configure(training=False)
    whole = {full[i]["name"]: full[i]["hq"] for i in range(len(full))}[sample["name"]]
    assert whole.shape[-2:] == (40, 48)  # the file is not square: a crop could not match the resize
    expected = torch.nn.functional.interpolate(whole[None], size=(16, 16), mode="bicubic", antialias=True)[0]
    torch.testing.assert_close(sample["hq"], expected.clamp(0, 1))


def test_paired_folder_prefix_matching_pairs_sots_style_names(tmp_path):
    write_photo(tmp_path / "gt" / "0001.png", seed=1)
    write_photo(tmp_path / "hazy" / "0001_0.8_0.2.png", seed=2)
    dataset = PairedFolder(str(tmp_path / "hazy"), str(tmp_path / "gt"), match="prefix")
    assert [(a.name, b.name) for a, b in dataset.pairs] == [("0001_0.8_0.2.png", "0001.png")]


def test_mismatched_pair_sizes_are_a_clear_error(tmp_path):
    write_photo(tmp_path / "hq" / "a.png", seed=1, size=(32, 32))
    write_photo(tmp_path / "lq" / "a.png", seed=1, size=(16, 16))
    dataset = PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq")).configure(training=False)
    with pytest.raises(DataError, match="differs in size"):
        dataset[0]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_manifest_reads_text_columns_and_resolves_relative_paths(paired_folder, suffix):
    lq, hq = paired_folder
    root = lq.parent
    rows = [
        {"lq": f"lq/img{i}.png", "hq": f"hq/img{i}.png", "prompt": f"brighten {i}", "caption": "a pattern",
         "task": "low-light"}
        for i in range(3)
    ]
    path = root / f"train{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        path.write_text("lq,hq,prompt,caption,task\n" + "".join(",".join(r.values()) + "\n" for r in rows))
    dataset = Manifest(str(path)).configure(training=False)
    sample = dataset[2]
    _check_contract(sample)
    assert (sample["prompt"], sample["caption"], sample["task"]) == ("brighten 2", "a pattern", "lowlight")


def test_manifest_errors_name_the_line(tmp_path, paired_folder):
    lq, _ = paired_folder
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"lq": str(lq / "img0.png")}) + "\n" + json.dumps({"lq": "nope.png"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: lq file not found"):
        Manifest(str(bad))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(DataError, match=r"broken.jsonl:1: invalid JSON"):
        Manifest(str(broken))


def test_synthetic_pairs_record_the_applied_parameters(paired_folder):
    _, hq = paired_folder
    dataset = Synthetic(str(hq), {"name": "noise", "sigmas": [25]}).configure(training=False)
    sample = dataset[0]
    assert sample["params"]["sigma"] == 25 and sample["task"] == "noise"
    residual = (sample["lq"] - sample["hq"]).std().item() * 255
    assert 15 < residual < 30


def test_benchmark_presets_resolve_their_distributed_layout(tmp_path):
    for i in range(2):
        write_photo(tmp_path / "Rain100L" / "target" / f"{i}.png", seed=i)
        write_photo(tmp_path / "Rain100L" / "input" / f"{i}.png", seed=i + 5)
        write_photo(tmp_path / "CBSD68" / "original_png" / f"{i}.png", seed=i)
    rain = Benchmark("rain100l", root=str(tmp_path))
    assert rain.protocol.y_channel and rain.benchmark == "rain100l" and rain.num_items() == 2
    noise = Benchmark("cbsd68_sigma50", root=str(tmp_path)).configure(training=False)
    assert noise[0]["params"]["sigma"] == 50 and noise[0]["task"] == "noise"
    with pytest.raises(DataError, match="unknown benchmark"):
        Benchmark("nope", root=str(tmp_path))
    with pytest.raises(DataError, match="not found"):
        Benchmark("gopro", root=str(tmp_path))


def test_datamodule_maps_tasks_to_its_vocabulary_and_names_eval_sets():
    dm = RestorationDataModule(
        train=[Sample("train", tasks=["noise", "lowlight"])],
        test=[Sample("test", tasks=["lowlight"], benchmark="a"), Sample("test", tasks=["noise"], benchmark="b")],
        batch_size=4,
        patch_size=32,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["lq"].shape == (4, 3, 32, 32) and batch["task"].dtype == torch.long
    assert set(batch["task"].tolist()) <= {dm.task_names.index("noise"), dm.task_names.index("lowlight")}
    assert [(name, n) for name, n, _ in dm.eval_sets("test")] == [("a", 3), ("b", 3)]
    loaders = dm.test_dataloader()
    assert len(loaders) == 2 and next(iter(loaders[0]))["benchmark"] == ["a"]
    with pytest.raises(DataError, match="distinct benchmark names"):
        RestorationDataModule(test=[Sample("test"), Sample("test")])


def test_collate_refuses_mixed_sizes_with_a_hint():
    a = make_sample(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
    b = make_sample(torch.rand(3, 8, 9), torch.rand(3, 8, 9))
    with pytest.raises(ValueError, match="batch_size 1"):
        collate([a, b])


# ----------------------------------------------------------------------------------------- image I/O
def test_odd_image_files_load_as_rgb_floats(tmp_path):
    gray16 = (np.arange(12 * 10).reshape(12, 10) * 500).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    loaded = load_image(tmp_path / "gray16.png")
    assert loaded.shape == (3, 12, 10)
    assert loaded[0, -1, -1].item() == pytest.approx(gray16[-1, -1] / 65535, abs=1e-6), "16-bit precision kept"

    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert torch.allclose(load_image(tmp_path / "rgba.png")[0], torch.full((6, 7), 200 / 255))

    Image.fromarray(np.full((5, 5), 128, np.uint8)).convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").shape == (3, 5, 5)


def test_bad_image_files_raise_one_clear_error(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageLoadError, match="corrupt.png"):
        load_image(tmp_path / "corrupt.png")
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.png")
    write_photo(tmp_path / "big.png", seed=0, size=(64, 64))
    with pytest.raises(ImageLoadError, match="MP limit"):
        load_image(tmp_path / "big.png", max_pixels=1000)


def test_save_image_is_atomic_and_round_trips(tmp_path):
    image = torch.rand(3, 9, 11)
    path = save_image(image, tmp_path / "out" / "x.png")
    assert torch.allclose(load_image(path), image, atol=0.5 / 255 + 1e-6)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.png"], "no temporary file left behind"


def test_paired_folder_max_pairs_keeps_a_fixed_random_subset(tmp_path):
    """InstructIR trains on 2000 of RESIDE OTS's ~72k pairs: a seeded subset, the same every run."""
    from restorezoo.data import PairedFolder

    for i in range(12):
        write_photo(tmp_path / "lq" / f"{i:02d}.png", seed=i, size=(8, 8))
        write_photo(tmp_path / "hq" / f"{i:02d}.png", seed=i, size=(8, 8))
    full = PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq"), task="haze")
    a = PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq"), task="haze", max_pairs=5)
    b = PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq"), task="haze", max_pairs=5)
    c = PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq"), task="haze", max_pairs=5, subset_seed=1)
    assert a.num_items() == 5 and a.pairs == b.pairs and set(a.pairs) < set(full.pairs)
    assert a.pairs != c.pairs and a.pairs != full.pairs[:5]
    assert PairedFolder(str(tmp_path / "lq"), str(tmp_path / "hq"), max_pairs=50).num_items() == 12


def test_samples_per_epoch_sets_the_weighted_epoch_length(tmp_path):
    """Diff-Restorer's 8 × 10 K per epoch: the weighted sampler draws ``samples_per_epoch``, not the sets' total."""
    from restorezoo.data import RestorationDataModule, Sample
    from restorezoo.errors import DataError

    sets = [Sample("train", tasks=["noise"]), Sample("train", tasks=["blur"])]
    data = RestorationDataModule(train=sets, train_weights=[1, 1], samples_per_epoch=50, batch_size=2)
    sampler = data.train_sampler()
    assert len(sampler) == 50 and len(list(sampler)) == 50
    assert len(RestorationDataModule(train=sets, train_weights=[1, 1], batch_size=2).train_sampler()) == 20
    with pytest.raises(DataError, match="samples_per_epoch"):
        RestorationDataModule(train=sets, samples_per_epoch=50)


def test_datamodule_from_config_builds_the_datasets_the_cli_builds_by_short_class_name(tmp_path):
    """benchmarks/miniature.py measures a config's own test sets; they come from the same parser the CLI uses
    (short class paths resolved, the datamodule's eval configuration applied), not from a second YAML reader."""
    from restorezoo.data import datamodule_from_config
    from restorezoo.data.realesrgan_dataset import SpireMix
    from tests.conftest import REPO

    diffrestorer = datamodule_from_config(REPO / "configs" / "diffrestorer" / "quickstart.yaml")
    assert [(s.benchmark, len(s), s.training) for s in diffrestorer.test_sets] == [
        ("sample", 15, False), ("sample_ours_s", 15, False)]
    assert tuple(diffrestorer.test_sets[0][0]["lq"].shape) == (3, 96, 96)  # max_side 96, no training crop
    assert diffrestorer.train_sets[0].patch_size == 32 and diffrestorer.train_sets[0].training
    spire = datamodule_from_config(REPO / "configs" / "spire" / "quickstart.yaml")
    assert isinstance(spire.train_sets[0], SpireMix)  # "class_path: SpireMix", another module than Sample's
    (tmp_path / "no_data.yaml").write_text("model: {}\n")
    for path, message in ((tmp_path / "absent.yaml", "config not found"), (tmp_path / "no_data.yaml", "no 'data' section")):
        with pytest.raises(DataError, match=message) as error:
            datamodule_from_config(path)
        assert "\n" not in str(error.value)
