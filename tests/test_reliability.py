"""Reliability and safety (issue 8): bad inputs, interrupted training, untrusted checkpoints.

Every bad or odd input is generated here (no committed binaries). Each gives a correct output or one
clear line naming the file and the problem; training survives non-finite losses and SIGKILL;
no checkpoint can run code.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from restorezoo.callbacks import AtomicCheckpointIO, NonFiniteGuard
from restorezoo.cli import main
from restorezoo.data import Manifest, PairedFolder, Synthetic
from restorezoo.data.batch import collate
from restorezoo.data.check import check_config
from restorezoo.data.io import load_image
from restorezoo.errors import (
    CheckpointError,
    DataError,
    ImageLoadError,
    InvalidImageError,
    NonFiniteLossError,
    RestoreZooError,
)
from restorezoo.models.base import RestorationModule
from tests.conftest import REPO, TINY_INSTRUCTIR, run_cli, write_photo


# ============================================================================ the input corpus
def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _write_png16_rgb(path: Path, array: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    height, width = array.shape[:2]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _write_bomb_png(path: Path, side: int = 40_000) -> None:
    """A tiny file whose header claims a side × side image (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _encoded(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _exif_rotated(path: Path) -> None:
    """20 wide × 10 high, EXIF orientation 6 (shown rotated 90° clockwise: 10 wide × 20 high); red top-left."""
    array = np.zeros((10, 20, 3), np.uint8)
    array[:6, :6] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(array).save(path, exif=exif.tobytes(), quality=100)


def _float_tiff(path: Path, value: float) -> None:
    array = np.full((4, 5), 0.5, np.float32)
    array[1, 2] = value
    Image.fromarray(array, "F").save(path)


def _palette_transparent(path: Path) -> None:
    image = Image.fromarray(_rgb(6, 9)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    image.info["transparency"] = 0
    image.save(path, transparency=0)


OK = "ok"
# name → (writer, expected (H, W) or an error regex). At least 30 cases (issue 8).
CORPUS: dict[str, tuple[Callable[[Path], None], tuple[int, int] | str]] = {
    "gray.png": (lambda p: Image.fromarray(_rgb(9, 11)[..., 0]).save(p), (9, 11)),
    "gray_alpha_LA.png": (lambda p: Image.fromarray(_rgb(9, 11)[..., :2].copy(), "LA").save(p), (9, 11)),
    "bilevel_1bit.png": (lambda p: Image.fromarray(np.eye(8, 12, dtype=bool)).save(p), (8, 12)),
    "rgb16.png": (lambda p: _write_png16_rgb(p, (np.arange(5 * 7 * 3).reshape(5, 7, 3) * 997).astype(np.uint16)), (5, 7)),
    "rgba.webp": (lambda p: Image.fromarray(np.dstack([_rgb(8, 10), np.full((8, 10), 40, np.uint8)])).save(p), (8, 10)),
    "palette_transparent.png": (_palette_transparent, (6, 9)),
    "cmyk.jpg": (lambda p: Image.new("CMYK", (12, 7), (0, 255, 255, 0)).save(p), (7, 12)),
    "exif_rotated.jpg": (_exif_rotated, (20, 10)),
    "one_pixel.png": (lambda p: Image.fromarray(_rgb(1, 1)).save(p), (1, 1)),
    "odd_7x13.png": (lambda p: Image.fromarray(_rgb(7, 13)).save(p), (7, 13)),
    "large_tiled.png": (lambda p: Image.fromarray(_rgb(160, 224)).save(p), (160, 224)),
    "rgb_webp.webp": (lambda p: Image.fromarray(_rgb(10, 12)).save(p), (10, 12)),
    "rgb_tiff.tif": (lambda p: Image.fromarray(_rgb(10, 12)).save(p), (10, 12)),
    "float32.tif": (lambda p: _float_tiff(p, 0.25), (4, 5)),
    "rgb_bmp.bmp": (lambda p: Image.fromarray(_rgb(10, 12)).save(p), (10, 12)),
    "rgb_ppm.ppm": (lambda p: Image.fromarray(_rgb(10, 12)).save(p), (10, 12)),
    "animated_first_frame.gif": (lambda p: Image.fromarray(_rgb(10, 12)).save(p), (10, 12)),
    "gray_jpeg.jpg": (lambda p: Image.fromarray(_rgb(9, 11)[..., 1]).save(p), (9, 11)),
    "progressive.jpg": (lambda p: Image.fromarray(_rgb(16, 24)).save(p, progressive=True), (16, 24)),
    "фото_写真_ü.png": (lambda p: Image.fromarray(_rgb(8, 8)).save(p), (8, 8)),
    "my photo (1).jpg": (lambda p: Image.fromarray(_rgb(8, 8)).save(p), (8, 8)),
    "png_named.jpg": (lambda p: p.write_bytes(_encoded(_rgb(6, 5), "PNG")), (6, 5)),
    # invalid: one clear line naming the file
    "zero_bytes.png": (lambda p: p.write_bytes(b""), "cannot read image"),
    "zero_bytes_jpeg.jpg": (lambda p: p.write_bytes(b""), "cannot read image"),
    "truncated.png": (lambda p: p.write_bytes(_encoded(_rgb(32, 32), "PNG")[:300]), "cannot read image"),
    "truncated_jpeg.jpg": (lambda p: p.write_bytes(_encoded(_rgb(64, 64), "JPEG")[:400]), "cannot read image"),
    "text_named.png": (lambda p: p.write_text("this is not an image\n"), "cannot read image"),
    "html_named.jpg": (lambda p: p.write_text("<html><body>404</body></html>"), "cannot read image"),
    "bad_crc.png": (
        lambda p: p.write_bytes(_encoded(_rgb(8, 8), "PNG").replace(b"IDAT", b"IDAT\xff", 1)),
        "cannot read image",
    ),
    "bomb_40000x40000.png": (_write_bomb_png, "MP limit"),
    "folder.png": (lambda p: p.mkdir(), "not found"),
    "nan.tif": (lambda p: _float_tiff(p, float("nan")), "NaN or infinite"),
    "inf.tif": (lambda p: _float_tiff(p, float("inf")), "NaN or infinite"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, (write, _) in CORPUS.items():
        write(folder / name)
    return folder


def test_the_corpus_has_at_least_30_inputs_valid_and_invalid():
    expectations = [expected for _, expected in CORPUS.values()]
    assert len(CORPUS) >= 30
    assert sum(isinstance(e, tuple) for e in expectations) >= 15 and sum(isinstance(e, str) for e in expectations) >= 10


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_input_loads_as_rgb_or_fails_in_one_line_naming_the_file(corpus: Path, name: str):
    path = corpus / name
    expected = CORPUS[name][1]
    if isinstance(expected, tuple):
        image = load_image(path)
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, *expected)
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    else:
        with pytest.raises(ImageLoadError, match=expected) as info:
            load_image(path)
        message = str(info.value)
        assert name in message and "\n" not in message


def test_odd_inputs_keep_their_content(corpus: Path):
    rotated = load_image(corpus / "exif_rotated.jpg")  # orientation 6: the red corner moves to the top right
    assert rotated[0, :2, -2:].mean() > 0.8 and rotated[0, :2, :2].mean() < 0.2
    cmyk = load_image(corpus / "cmyk.jpg")[:, 3, 5]  # C=0 M=Y=100 % is red
    assert cmyk[0] > 0.9 and cmyk[1:].max() < 0.1
    rgb16 = load_image(corpus / "rgb16.png")
    expected = (np.arange(5 * 7 * 3).reshape(5, 7, 3) * 997 % 65536)[4, 6] / 65535
    assert torch.allclose(rgb16[:, 4, 6].double(), torch.from_numpy(expected), atol=1e-6), "16 bits kept"
    assert load_image(corpus / "float32.tif")[0, 0, 0].item() == pytest.approx(0.5)
    assert load_image(corpus / "gray_alpha_LA.png").std(0).max() == 0, "gray stays gray"


def test_batch_restore_goes_past_every_bad_file_and_reports_them_all(corpus, tiny_ckpt, tmp_path, capsys):
    names = sorted(CORPUS)
    out = tmp_path / "out"
    huge_prompt = "please remove the noise " * 420  # a 10 000-character instruction
    assert len(huge_prompt) >= 10_000
    args = ["restore", *[str(corpus / n) for n in names], "--ckpt", str(tiny_ckpt), "-o", str(out)]
    code, stdout, stderr = run_cli([*args, "--tile", "96", "--prompt", huge_prompt, "--device", "cpu"], capsys)
    invalid = [n for n in names if isinstance(CORPUS[n][1], str)]
    assert code == 1, stderr[-2000:]
    assert "images failed:" in stderr, stderr[-2000:]
    summary = stderr[stderr.index("images failed:") :]
    assert f"{len(invalid)} of {len(names)} images failed" in stderr
    for name in invalid:
        assert name in summary, f"{name} missing from the failure report"
    for name in names:
        if name in invalid:
            continue
        target = out / f"{Path(name).stem}_restored.png"
        assert target.is_file(), f"{name} was not restored"
        assert tuple(load_image(target).shape[-2:]) == CORPUS[name][1], f"{name}: output size differs"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_restore_never_overwrites_an_output_without_the_flag(corpus, tiny_ckpt, tmp_path, capsys):
    target = tmp_path / "restored.png"
    target.write_bytes(b"precious")
    args = ["restore", str(corpus / "odd_7x13.png"), "--ckpt", str(tiny_ckpt), "-o", str(target), "--device", "cpu"]
    code, _, stderr = run_cli(args, capsys)
    assert code == 1 and "--overwrite" in stderr and target.read_bytes() == b"precious"
    code, _, _ = run_cli([*args, "--overwrite"], capsys)
    assert code == 0 and load_image(target).shape == (3, 7, 13)
    source = corpus / "odd_7x13.png"
    before = source.read_bytes()
    code, _, stderr = run_cli([*args[:-2], "-o", str(source), "--overwrite"], capsys)
    assert code == 1 and "refusing to overwrite the input" in stderr and source.read_bytes() == before


def test_empty_and_absurd_prompts_and_non_finite_tensors_through_the_python_api(tiny_ckpt):
    import restorezoo

    model = restorezoo.load_model(ckpt=tiny_ckpt)
    image = torch.rand(3, 7, 13)
    assert restorezoo.restore(image, "", model=model).shape == (3, 7, 13)
    assert restorezoo.restore(image, "\x00\udcff" + "x" * 10_000, model=model).shape == (3, 7, 13)
    for value in (float("nan"), float("inf"), float("-inf")):
        bad = image.clone()
        bad[1, 2, 3] = value
        with pytest.raises(InvalidImageError, match="1 NaN/inf"):
            restorezoo.restore(bad, "denoise", model=model)
        with pytest.raises(InvalidImageError, match="NaN/inf"):
            model(bad[None])
    with pytest.raises(InvalidImageError, match="uint8"):
        restorezoo.restore((image * 255).byte(), model=model)
    with pytest.raises(InvalidImageError, match="3×H×W"):
        model(torch.rand(1, 4, 8, 8))


def test_tiled_restore_matches_the_whole_image_for_a_local_model():
    """A 1×1 convolution has no spatial context, so tiles must stitch back exactly."""
    from restorezoo.inference import restore_tensor

    class Pointwise(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def restore(self, batch: dict) -> torch.Tensor:
            return torch.sigmoid(self.conv(batch["lq"]))

    model = Pointwise()
    image = torch.rand(3, 150, 97)
    whole = restore_tensor(model, image)
    tiled = restore_tensor(model, image, tile=64, tile_overlap=16)
    assert torch.allclose(whole, tiled, atol=1e-6)


# ============================================================================ datasets and manifests
def test_manifest_rows_with_non_utf8_bytes_name_the_file_and_row(paired_folder, tmp_path):
    lq, hq = paired_folder
    jsonl = tmp_path / "train.jsonl"
    good = f'{{"lq": "{lq / "img0.png"}", "hq": "{hq / "img0.png"}", "prompt": "denoise"}}\n'.encode()
    bad = f'{{"lq": "{lq / "img1.png"}", "prompt": "'.encode() + b"\xff\xfe caf\xe9" + b'"}\n'
    jsonl.write_bytes(good + bad)
    with pytest.raises(DataError, match=r"train\.jsonl:2: not UTF-8"):
        Manifest(str(jsonl))
    csv = tmp_path / "train.csv"
    csv.write_bytes(b"lq,hq,prompt\n" + f"{lq / 'img0.png'},{hq / 'img0.png'},".encode() + b"d\xe9bruit\n")
    with pytest.raises(DataError, match=r"train\.csv:2: not UTF-8"):
        Manifest(str(csv))
    # an empty prompt is valid: the dataset falls back to its rule (blind "" here, no task)
    jsonl.write_text(good.decode().replace('"denoise"', '""'), encoding="utf-8")
    assert Manifest(str(jsonl)).configure(training=False)[0]["prompt"] == ""


def test_a_corrupt_training_image_is_reported_and_skipped_not_fatal(tmp_path):
    for i in range(4):
        write_photo(tmp_path / "hq" / f"img{i}.png", seed=i, size=(20, 20))
    (tmp_path / "hq" / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    data = Synthetic(str(tmp_path / "hq"), degradation="noise", task="noise").configure(training=True, patch_size=16)
    with pytest.warns(UserWarning, match=r"img2\.png.*skipped in training"):
        samples = [data[i] for i in range(len(data))]
    assert all(s["lq"].shape == (3, 16, 16) for s in samples)
    with pytest.raises(ImageLoadError, match=r"img2\.png"):  # evaluation must not silently drop images
        data.configure(training=False)[2]


def test_data_check_reports_every_bad_file_instead_of_dying(corpus, tmp_path, capsys):
    lq, hq = tmp_path / "lq", tmp_path / "hq"
    lq.mkdir()
    hq.mkdir()
    for name in ("zero_bytes.png", "truncated.png", "text_named.png", "odd_7x13.png"):
        shutil.copy(corpus / name, lq / name)
        shutil.copy(corpus / "one_pixel.png", hq / name)  # odd_7x13 pairs with a 1×1 HQ: size mismatch
    shutil.copy(corpus / "gray.png", lq / "lonely.png")  # an LQ without HQ
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"init_args": {"train": [
        {"class_path": "PairedFolder", "init_args": {"lq_dir": str(lq), "hq_dir": str(hq)}}]}}}))
    (report,) = check_config(config)
    assert len(report.unreadable) == 3 and all(str(lq) in u for u in report.unreadable)
    assert len(report.size_mismatches) == 1 and "odd_7x13" in report.size_mismatches[0]
    assert len(report.unmatched) == 1 and "lonely.png" in report.unmatched[0]
    code, _, stderr = run_cli(["data", "check", "--config", str(config)], capsys)
    assert code == 1 and "5 problem(s)" in stderr
    with pytest.raises(DataError, match="lonely.png"):  # and the dataset itself refuses at start-up
        PairedFolder(str(lq), str(hq))


# ============================================================================ non-finite losses
class PoisonedRestorer(RestorationModule):
    """A one-convolution restorer whose loss is NaN at the listed optimizer steps."""

    def __init__(self, poisoned_steps: tuple[int, ...] = ()) -> None:
        super().__init__(lr=1e-2)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.poisoned_steps = set(poisoned_steps)

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        loss = F.l1_loss(self.conv(batch["lq"]), batch["hq"])
        if self.global_step in self.poisoned_steps:
            loss = loss * float("nan")
        return loss, {}

    def restore(self, batch: dict) -> torch.Tensor:
        return self.conv(batch["lq"]).clamp(0, 1)


def _fit(model: RestorationModule, tmp_path: Path, steps: int, guard: NonFiniteGuard | None = None) -> L.Trainer:
    torch.manual_seed(0)
    images = torch.rand(4, 3, 12, 12)
    samples = [{"lq": im * 0.5, "hq": im, "prompt": "", "task": -1} for im in images]
    loader = DataLoader(samples, batch_size=2, collate_fn=collate)
    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[guard] if guard else None,
    )
    trainer.fit(model, loader)
    return trainer


def test_a_non_finite_loss_skips_the_step_with_a_warning(tmp_path):
    model = PoisonedRestorer(poisoned_steps=(2, 3))
    with pytest.warns(UserWarning, match=r"skipped 1 optimizer step.*\(up to step 4; 2 in this run\)"):
        trainer = _fit(model, tmp_path, steps=8, guard=NonFiniteGuard(max_consecutive=3, check_every=1))
    assert model.global_step == 8
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO), "the model brings atomic checkpoints"
    assert all(torch.isfinite(p).all() for p in model.parameters()), "the NaN never reached the weights"


def test_repeated_non_finite_losses_stop_with_one_line_and_a_checkpoint(tmp_path):
    model = PoisonedRestorer(poisoned_steps=tuple(range(3, 100)))
    guard = NonFiniteGuard(max_consecutive=4, check_every=3)  # counted on the device, read every 3 steps
    with pytest.raises(NonFiniteLossError) as info:
        _fit(model, tmp_path, steps=50, guard=guard)
    message = str(info.value)
    assert "\n" not in message and "in a row had a non-finite loss" in message and "--ckpt_path" in message
    saved = Path(message.split("saved to ")[1].split(". ")[0])
    assert saved.is_file() and model.global_step < 12
    state = torch.load(saved, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_daclip_shares_the_guard_instead_of_raising():
    from restorezoo.models import DACLIP

    model = DACLIP(tiny=True)
    assert any(isinstance(c, NonFiniteGuard) for c in model.configure_callbacks())
    assert any(isinstance(c, NonFiniteGuard) for c in PoisonedRestorer().configure_callbacks())


def test_a_checkpoint_write_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    writer = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    writer.save_checkpoint({"global_step": 1}, target)

    def killed_while_writing(obj: object, handle: io.BufferedWriter, *args: object, **kwargs: object) -> None:
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        writer.save_checkpoint({"global_step": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"global_step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "the temporary file is cleaned up"


# ============================================================================ untrusted checkpoints
class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch '{self.marker}'",)


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("evil")
    marker = folder / "pwned"
    path = folder / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"x": _Payload(marker)}}, path)
    return path, marker


def test_the_crafted_pickle_really_runs_code_when_loaded_unsafely(evil):
    path, marker = evil
    torch.load(path, weights_only=False)  # the control: an unsafe load executes the payload
    assert marker.exists()
    marker.unlink()


def _entry_points() -> dict[str, Callable[[Path], object]]:
    import restorezoo
    from restorezoo.models import DACLIP, IRSDE, NAFNetDACLIP, build_daclip
    from restorezoo.weights import load_checkpoint, load_state_dict

    return {
        "weights.load_state_dict": load_state_dict,
        "weights.load_checkpoint": load_checkpoint,
        "load_model(ckpt)": lambda p: restorezoo.load_model(ckpt=p),
        "load_model(instructir, ckpt)": lambda p: restorezoo.load_model("instructir", ckpt=p),
        "load_model(daclip, ckpt)": lambda p: restorezoo.load_model("daclip", ckpt=p),
        "DACLIP.from_official": lambda p: DACLIP.from_official(p, tiny=True),
        "IRSDE.from_official": lambda p: IRSDE.from_official(p),
        "NAFNetDACLIP.from_checkpoint": NAFNetDACLIP.from_checkpoint,
        "build_daclip(file)": build_daclip,
        "export": lambda p: __import__("restorezoo.export").export.export_checkpoint(p, p.with_suffix(".safetensors")),
    }


@pytest.mark.parametrize("entry", sorted(_entry_points()))
def test_every_loading_entry_point_refuses_the_crafted_pickle(evil, entry):
    path, marker = evil
    with pytest.raises(RestoreZooError, match="refusing to load"):
        _entry_points()[entry](path)
    assert not marker.exists()


def test_the_cli_refuses_the_crafted_pickle_in_one_line(evil, tmp_path, capsys):
    path, marker = evil
    photo = tmp_path / "photo.png"
    Image.fromarray(_rgb(8, 8)).save(photo)
    for args in (["restore", str(photo), "--ckpt", str(path)], ["export", str(path), "--to", str(tmp_path / "m.safetensors")]):
        code, _, stderr = run_cli(args, capsys)
        assert code == 1 and stderr.strip().count("\n") == 0 and "refusing to load" in stderr
    config = _tiny_fit_config(tmp_path, max_epochs=1)
    code, _, stderr = run_cli(["fit", "--config", str(config), "--ckpt_path", str(path)], capsys)
    assert code == 1 and "refusing to load" in stderr.strip().splitlines()[-1]
    assert not marker.exists()


def test_a_missing_checkpoint_path_given_as_the_model_is_named_as_such(tmp_path):
    import restorezoo
    from restorezoo.demo import ModelShelf

    missing = tmp_path / "runs" / "x" / "checkpoints" / "last.ckpt"
    with pytest.raises(RestoreZooError, match=r"^checkpoint not found: .*last\.ckpt$"):
        restorezoo.load_model(str(missing))
    with pytest.raises(RestoreZooError, match="checkpoint not found"):
        ModelShelf([missing]).get("x")  # the demo's shelf loads its --ckpt sources this way
    with pytest.raises(RestoreZooError, match="unknown model 'nafnet2'"):
        restorezoo.load_model("nafnet2")


def test_incompatible_checkpoints_say_what_differs_in_one_line(tiny_ckpt, tmp_path, capsys):
    import restorezoo

    with pytest.raises(CheckpointError, match="holds a restorezoo.models.instructir.InstructIR, not a IRSDE"):
        restorezoo.load_model("irsde", ckpt=tiny_ckpt)
    checkpoint = torch.load(tiny_ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["width"] = 16  # the weights are width 8: every shape differs
    wrong = tmp_path / "wrong_shapes.ckpt"
    torch.save(checkpoint, wrong)
    photo = tmp_path / "photo.png"
    Image.fromarray(_rgb(8, 8)).save(photo)
    code, _, stderr = run_cli(["restore", str(photo), "--ckpt", str(wrong), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and stderr.strip().count("\n") == 0
    assert "does not fit InstructIR" in stderr and "shape mismatches" in stderr
    checkpoint["hyper_parameters"]["_class_path"] = "antigravity.Model"  # importing it opens a web browser
    torch.save(checkpoint, wrong)
    with pytest.raises(CheckpointError, match="outside restorezoo"):
        restorezoo.load_model(ckpt=wrong)
    assert "antigravity" not in sys.modules
    checkpoint["hyper_parameters"]["_class_path"] = "os.system"
    torch.save(checkpoint, wrong)
    with pytest.raises(CheckpointError, match="not a LightningModule"):
        restorezoo.load_model(ckpt=wrong)


def test_export_writes_weights_only_safetensors_with_the_config_beside(tiny_ckpt, tmp_path, capsys):
    from safetensors import safe_open

    import restorezoo

    target = tmp_path / "model.safetensors"
    code, stdout, _ = run_cli(["export", str(tiny_ckpt), "--to", str(target)], capsys)
    assert code == 0 and target.is_file() and target.with_suffix(".yaml").is_file()
    config = yaml.safe_load(target.with_suffix(".yaml").read_text())
    assert config["model"]["class_path"].endswith("InstructIR") and config["model"]["init_args"]["width"] == 8
    with safe_open(str(target), "pt") as handle:
        assert set(handle.keys()) == set(torch.load(tiny_ckpt, weights_only=True)["state_dict"])
    image = torch.rand(3, 9, 10)
    original = restorezoo.restore(image, "denoise", model=restorezoo.load_model(ckpt=tiny_ckpt))
    exported = restorezoo.restore(image, "denoise", model=restorezoo.load_model(ckpt=target))
    assert torch.equal(original, exported)
    code, _, stderr = run_cli(["export", str(tiny_ckpt), "--to", str(target)], capsys)
    assert code == 1 and "--overwrite" in stderr


# ============================================================================ kill and resume
PAUSE_CALLBACK = '''
import os, time
from pathlib import Path
from lightning.pytorch.callbacks import Callback


class PauseAfterStep(Callback):
    """Announce (a marker file) and wait once `step` optimizer steps and their checkpoint are done."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            Path(self.marker).write_text(str(os.getpid()))
            time.sleep(300)
'''


def _tiny_fit_config(folder: Path, max_epochs: int = 2) -> Path:
    """Tiny InstructIR on two synthetic sets (noise ×2 repeats, low light): 4 photos → 12 samples, 4 batches."""
    hq = folder / "hq"
    if not hq.is_dir():
        for i in range(4):
            write_photo(hq / f"p{i}.png", seed=i, size=(24, 28))
    init_args = {**TINY_INSTRUCTIR, "enc_blocks": [1, 1], "dec_blocks": [1, 1], "lr": 1e-3,
                 # resuming is about the weights: no instruction-bank encoding or intent accuracy per run
                 "warm_instructions": False, "register_accuracy": False}
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu", "devices": 1, "max_epochs": max_epochs, "precision": "32-true",
            "deterministic": True, "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
            "num_sanity_val_steps": 0, "limit_val_batches": 0, "default_root_dir": str(folder),
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {
                "dirpath": str(folder / "ckpts"), "every_n_train_steps": 1, "save_last": True, "save_top_k": 0}}],
        },
        "model": {"class_path": "InstructIR", "init_args": init_args},
        "data": {"class_path": "RestorationDataModule", "init_args": {
            "train": [
                {"class_path": "Synthetic", "init_args": {"hq_dir": str(hq), "degradation": ["noise"], "task": "noise",
                                                          "repeat": 2}},
                {"class_path": "Synthetic", "init_args": {"hq_dir": str(hq), "degradation": "lowlight",
                                                          "task": "lowlight"}},
            ],
            "batch_size": 3, "patch_size": 16}},
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sigkill_mid_epoch_then_resume_from_last_gives_the_uninterrupted_weights(tmp_path):
    """`restorezoo fit` is SIGKILLed after step 6 of 8 (batch 3 of 4 in epoch 2), resumed from last.ckpt,
    and ends with exactly the weights of a run never interrupted (deterministic settings, CPU)."""
    config = _tiny_fit_config(tmp_path)
    (tmp_path / "pause_callback.py").write_text(PAUSE_CALLBACK)
    marker = tmp_path / "paused"
    pause = tmp_path / "pause.yaml"
    pause.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        *yaml.safe_load(config.read_text())["trainer"]["callbacks"],
        {"class_path": "pause_callback.PauseAfterStep", "init_args": {"step": 6, "marker": str(marker)}}]}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "restorezoo.cli", "fit", "--config", str(config), "--config", str(pause)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached step 6"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    last = tmp_path / "ckpts" / "last.ckpt"
    killed = torch.load(last, weights_only=True)
    assert killed["global_step"] == 6 and killed["epoch"] == 1, "killed mid-epoch 2"
    record = killed["restorezoo"]
    assert record["task_names"][:2] == ["noise", "blur"] and "denoise" in " ".join(record["instructions"]["noise"]["test"])
    assert "InstructIR" in record["config"], "the run's config travels in the checkpoint"
    assert not [p for p in last.parent.iterdir() if p.name != "last.ckpt"], "no partial checkpoint files"

    try:
        main(["fit", "--config", str(config), "--ckpt_path", str(last)])
        resumed = torch.load(last, weights_only=True)
        shutil.rmtree(tmp_path / "ckpts")
        main(["fit", "--config", str(config)])
        uninterrupted = torch.load(last, weights_only=True)
    finally:
        torch.use_deterministic_algorithms(False)
    assert resumed["global_step"] == uninterrupted["global_step"] == 8
    for key, value in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), f"{key} differs after resuming"
