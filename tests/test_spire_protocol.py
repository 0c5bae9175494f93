"""SPIRE's evaluation protocol: both halves of Tab. 1 on the same fixed degraded images, the no-reference and
StableSR presets, and the baselines' prompt switches (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from restorezoo.data.degrade import parse_restoration_prompt
from restorezoo.data.testsets import PRESETS, Benchmark
from tests.conftest import write_photo

NAMES = [f"{i:012d}.jpg" for i in (139, 285, 632)]


def _coco(root: Path, size: tuple[int, int] = (96, 128)) -> Path:
    for i, name in enumerate(NAMES):
        write_photo(root / "COCO/val2017" / name, seed=i, size=size)
    captions = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(NAMES)],
        "annotations": [{"image_id": i, "caption": f"photo number {i}"} for i in range(len(NAMES))],
    }
    path = root / "COCO/annotations/captions_val2017.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(captions))
    return root


def test_table1_test_prompts_carry_their_parameters(tmp_path):
    bench = Benchmark("coco_val", root=str(_coco(tmp_path))).configure(training=False)
    for i in range(len(bench)):
        sample = bench[i]
        stages = parse_restoration_prompt(sample["prompt"])
        assert stages and all(len(s) == 2 for s in stages), sample["prompt"]  # every clause has its value


def test_degraded_image_depends_on_the_image_and_preset_only(tmp_path):
    """Two models' test runs see the same LQ: not the index, the number of images, the eval resize of a
    model's config or the dataset seed of another config changes it (the draw is on the full image)."""
    _coco(tmp_path)
    full = Benchmark("coco_val", root=str(tmp_path)).configure(training=False)
    fewer = Benchmark("coco_val", root=str(tmp_path), max_images=2).configure(training=False)
    assert torch.equal(full[1]["lq"], fewer[1]["lq"]) and full[1]["prompt"] == fewer[1]["prompt"]
    resized = Benchmark("coco_val", root=str(tmp_path)).configure(training=False, resize=48)
    lq, hq = resized[1]["lq"], resized[1]["hq"]
    assert lq.shape[-2:] == (48, 48) and hq.shape[-2:] == (48, 48)
    assert resized[1]["prompt"] == full[1]["prompt"]  # the same draw, then both images resized
    # another image order (a second copy listing them reversed) gives each image the same degradation
    data = json.loads((tmp_path / "COCO/annotations/captions_val2017.json").read_text())
    data["images"] = data["images"][::-1]
    other = tmp_path / "reversed.json"
    other.write_text(json.dumps(data))
    flipped = Benchmark("coco_val", root=str(tmp_path), captions=str(other)).configure(training=False)
    by_name = {flipped[i]["name"]: flipped[i] for i in range(len(flipped))}
    for i in range(len(full)):
        assert torch.equal(by_name[full[i]["name"]]["lq"], full[i]["lq"])


def test_both_halves_of_table1_use_the_same_images(tmp_path):
    _coco(tmp_path)
    param = Benchmark("coco_val", root=str(tmp_path)).configure(training=False)
    esrgan = Benchmark("coco_val_realesrgan_x4", root=str(tmp_path)).configure(training=False)
    a, b = param[0], esrgan[0]
    assert a["name"] == b["name"] and torch.equal(a["hq"], b["hq"]) and a["caption"] == b["caption"]
    assert b["prompt"] == "Remove all degradation" and b["lq"].shape == b["hq"].shape
    assert not torch.equal(a["lq"], b["lq"])
    again = Benchmark("coco_val_realesrgan_x4", root=str(tmp_path)).configure(training=False)
    assert torch.equal(again[0]["lq"], b["lq"])
    # Real-ESRGAN ×4 loses detail: the LQ is farther from the HQ than a light parameterized draw usually is
    assert float((b["lq"] - b["hq"]).abs().mean()) > 0.01


def test_new_presets_are_listed_with_their_protocol(tmp_path):
    for name in ("coco_val_realesrgan_x4", "realphoto60", "div2k_val_stablesr", "rain1400", "realsnow", "rtts"):
        assert name in PRESETS
    assert PRESETS["realphoto60"].hq is None and set(PRESETS["realphoto60"].metrics) == {"clipiqa", "musiq", "maniqa"}
    assert PRESETS["rtts"].hq is None and "fid" not in PRESETS["rtts"].metrics  # real haze, no ground truth
    assert PRESETS["realsnow"].hq is not None and "fid" in PRESETS["realsnow"].metrics  # paired, as Tab. I scores it
    import contextlib
    import io

    from restorezoo.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["list"])
    for name in ("coco_val_realesrgan_x4", "realphoto60", "div2k_val_stablesr", "rain1400", "realsnow", "rtts"):
        assert name in out.getvalue()


def test_no_reference_preset_yields_lq_only(tmp_path):
    for i in range(2):
        write_photo(tmp_path / "RealPhoto60" / f"{i}.png", seed=i, size=(32, 32))
    bench = Benchmark("realphoto60", root=str(tmp_path)).configure(training=False)
    assert len(bench) == 2 and bench[0].get("hq") is None


def test_stablesr_lq_is_resized_to_the_hq(tmp_path):
    write_photo(tmp_path / "StableSR/DIV2K_V2_val/gt/0.png", seed=0, size=(64, 64))
    write_photo(tmp_path / "StableSR/DIV2K_V2_val/lq/0.png", seed=1, size=(16, 16))
    sample = Benchmark("div2k_val_stablesr", root=str(tmp_path)).configure(training=False)[0]
    assert sample["lq"].shape == sample["hq"].shape == (3, 64, 64)


def test_coco_training_crops_resize_the_short_side_instead_of_reflecting(tmp_path):
    """A 40×64 photo at a 48² patch: the crop is a resized piece of the photo, with no mirrored rows (the
    reflect padding put 8 mirrored rows at the bottom of every crop)."""
    from restorezoo.data.datasets import CaptionedFolder
    from restorezoo.data.realesrgan_dataset import SpireMix

    _coco(tmp_path, size=(40, 64))
    folder = CaptionedFolder(str(tmp_path / "COCO/val2017"), str(tmp_path / "COCO/annotations/captions_val2017.json"))
    mix = SpireMix(folder, p_realesrgan=1.0).configure(training=True, patch_size=48, flip=False)
    hq = mix[0]["hq"]
    assert hq.shape[-2:] == (48, 48)
    # reflect padding mirrors the photo about its last row (39): row 40 equals row 38; a resize copies nothing
    assert not torch.equal(hq[:, 40], hq[:, 38])
    padded = CaptionedFolder(str(tmp_path / "COCO/val2017"), str(tmp_path / "COCO/annotations/captions_val2017.json"),
                             small_images="pad")
    old = SpireMix(padded, p_realesrgan=1.0).configure(training=True, patch_size=48, flip=False)[0]["hq"]
    assert torch.equal(old[:, 40], old[:, 38])  # what the former default did


def test_offline_tokenizer_pads_like_sd15_clip_tokenizer():
    """SD 1.5's tokenizer pads with <|endoftext|> (49407), not 0 ("!"): ids pinned from CLIP's vocabulary
    ("a" 320, "photo" 1125, "!" 256)."""
    from restorezoo.models.stable_diffusion import OpenCLIPTokenizer

    ids = OpenCLIPTokenizer()(["a photo", "a photo!"])
    assert ids.shape == (2, 77)
    assert ids[0, :4].tolist() == [49406, 320, 1125, 49407] and set(ids[0, 4:].tolist()) == {49407}
    assert ids[1, :5].tolist() == [49406, 320, 1125, 256, 49407] and set(ids[1, 5:].tolist()) == {49407}


def test_without_text_conditions_on_blank_prompts_but_keeps_the_caption_for_clip_t():
    """"Ours w/o text" / ControlNet-SR: c_s = "" and c_r = "Remove all degradation" whatever the batch says,
    while the batch's ground-truth caption stays for CLIP-T (a number, not n/a)."""
    from restorezoo.models.spire import SPIRE

    model = SPIRE(pretrained="tiny", progress=False, semantic_prompt=False, restoration_prompt=False)
    batch = {"lq": torch.rand(1, 3, 32, 32), "caption": ["a red barn"], "prompt": ["Deblur with sigma 2.0;"]}
    cond = model.condition(batch)
    assert batch["caption"] == ["a red barn"]
    model.semantic_prompt = model.restoration_prompt = True
    blank = model.condition({"lq": batch["lq"], "caption": [""], "prompt": ["Remove all degradation"]})
    given = model.condition(batch)
    assert torch.equal(cond["context"], blank["context"]) and torch.equal(cond["restoration"], blank["restoration"])
    assert not torch.equal(given["context"], blank["context"])


def test_clip_t_scores_the_images_own_caption_not_a_fixed_conditioning_one(tmp_path, monkeypatch):
    """A captioned set given a blank conditioning caption (``caption=""``, "w/o text"): CLIP-T is a number,
    scored against each image's own caption (before: "n/a", every caption blank)."""
    import torch.nn.functional as F

    from restorezoo.data.datamodule import RestorationDataModule
    from restorezoo.data.datasets import CaptionedFolder
    from restorezoo.encoders.clip import clip_pixels, tiny_clip
    from restorezoo.metrics.callback import RestorationMetrics
    from restorezoo.metrics.learned import ClipTextSimilarity
    from tests.test_metrics import Blend, trainer
    from tests.test_metrics_sets import _inject

    _coco(tmp_path, size=(32, 32))
    torch.manual_seed(0)
    clip, tokenizer = tiny_clip()
    _inject(monkeypatch, clip_t=ClipTextSimilarity(model=clip, tokenizer=tokenizer))
    folder = CaptionedFolder(str(tmp_path / "COCO/val2017"), str(tmp_path / "COCO/annotations/captions_val2017.json"),
                             degradation="noise", caption="", benchmark="coco")
    assert folder.configure(training=False)[0]["caption"] == ""
    dm = RestorationDataModule(test=[folder], eval_batch_size=1, num_workers=0)
    cb = RestorationMetrics(learned=["clip_t"], save_images=0)
    trainer(tmp_path, cb).test(Blend(), datamodule=dm)
    expected = []
    for i in range(len(folder)):
        sample = folder[i]
        pred = (sample["lq"] * 0.5 + sample["hq"] * 0.5).unsqueeze(0)
        with torch.no_grad():
            image = clip.encode_image(clip_pixels(pred, (64, 64)))
            text = clip.encode_text(tokenizer([f"photo number {i}"]))
        expected.append(float(F.cosine_similarity(image, text)))
    row = next(r for r in cb.rows if r["benchmark"] == "coco")
    assert abs(row["clip_t"] - sum(expected) / len(expected)) < 1e-5
