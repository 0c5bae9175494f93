"""The ``instructir-release`` protocol against a re-implementation of the release's test maths.

The reference below is written from the release's formulas (github: mv-lab/InstructIR ``test.py``,
``metrics.py``, ``datasets.py``), in numpy, independently of restorezoo's code: centre crop to x16,
PSNR 20·log10(1/√MSE) and SSIM (Gaussian 11, σ 1.5, valid) on the raw float output, and on rain the
Y of SwinIR's helpers fed RGB where they expect BGR, after truncation to uint8.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from restorezoo.data import Benchmark, RestorationDataModule, load_image
from restorezoo.data.instructions import release_template_prompts
from restorezoo.errors import DataError
from restorezoo.metrics import RestorationMetrics
from restorezoo.models.instructir import InstructIR
from tests.conftest import TINY_INSTRUCTIR, write_photo

FAKE_RELEASE = '''
import numpy as np

def augment_prompt (prompt):
    lol_prompts = ["light it up", "brighten the night"]
    sr_prompts  = ["make it larger"]
    en_prompts  = ["make the colours sing", "grade it"]
    init = np.random.choice(["Wipe the", "Drop the", "Kill"])
    end  = np.random.choice(["now", "", "in the shot"])
    newp = f"{init} {prompt} {end}"
    if "lol" in prompt:
        newp = np.random.choice(lol_prompts)
    elif "sr" in prompt:
        newp = np.random.choice(sr_prompts)
    elif "en" in prompt:
        newp = np.random.choice(en_prompts)
    return newp.strip().replace("  ", " ").replace("\\n", "")
'''


def _gauss_window() -> np.ndarray:
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    return np.outer(g, g)


def _ssim_valid(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """SSIM of two H×W arrays: valid 11×11 Gaussian statistics, K1 = 0.01, K2 = 0.03."""
    w = _gauss_window()

    def filt(img: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(img, (11, 11))
        return np.einsum("ijkl,kl->ij", windows, w)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ma, mb = filt(a), filt(b)
    va, vb, cov = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    return float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())


def _release_y(img_chw: np.ndarray) -> np.ndarray:
    """Y as the release's rain branch computes it from a float C×H×W output."""
    hwc = np.clip(img_chw.transpose(1, 2, 0), 0, 1).astype(np.float32)
    levels = (hwc * 255).astype(np.uint8).astype(np.float64)  # truncation, then calculate_psnr's float64
    scaled = levels.astype(np.float32) / 255.0  # max > 1 here
    y = np.dot(scaled, [24.966, 128.553, 65.481]) + 16.0  # "BGR" weights applied to R, G, B
    return ((y / 255.0).astype(np.float32) * 255.0).astype(np.float64)


def _reference(pred: np.ndarray, gt: np.ndarray, rain: bool) -> dict[str, float]:
    mse = np.mean((gt.astype(np.float64) - pred.astype(np.float64)) ** 2)
    out = {
        "psnr": 20 * math.log10(1.0 / math.sqrt(mse)),
        "ssim": float(np.mean([_ssim_valid(pred[c].astype(np.float64), gt[c].astype(np.float64), 1.0) for c in range(3)])),
    }
    if rain:
        yp, yt = _release_y(pred), _release_y(gt)
        out["psnr_y"] = 20 * math.log10(255.0 / math.sqrt(np.mean((yp - yt) ** 2)))
        out["ssim_y"] = _ssim_valid(yp, yt, 255.0)
    return out


def _centre_crop(img: np.ndarray, base: int = 16) -> np.ndarray:
    h, w = img.shape[-2:]
    ch, cw = h % base, w % base
    return img[..., ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2]


@pytest.fixture()
def release_checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "InstructIR"
    folder.mkdir()
    (folder / "datasets.py").write_text(FAKE_RELEASE)
    return folder


def test_release_template_prompts_follow_the_release_stream_seeded_42(release_checkout: Path):
    rng = np.random.RandomState(42)  # the stream of np.random.seed(42), drawn as the release draws it
    expected = []
    for _ in range(4):
        first, last = rng.choice(["Wipe the", "Drop the", "Kill"]), rng.choice(["now", "", "in the shot"])
        expected.append(f"{first} rain {last}".strip().replace("  ", " "))
    assert release_template_prompts("rain", 4, str(release_checkout)) == expected
    rng = np.random.RandomState(42)
    lol = []
    for _ in range(3):
        rng.choice(3), rng.choice(3)  # init and end are drawn, then replaced
        lol.append(["light it up", "brighten the night"][rng.randint(0, 2)])
    assert release_template_prompts("lowlight", 3, str(release_checkout)) == lol


def test_instructir_release_protocol_reproduces_the_release_scores(tmp_path: Path, release_checkout: Path):
    root = tmp_path / "data"
    for folder in ("Rain100L/input", "Rain100L/target"):
        (root / folder).mkdir(parents=True)
    for i in range(3):  # odd sizes: the release crops them to x16
        gt = write_photo(root / "Rain100L/target" / f"{i}.png", seed=i, size=(37 + 5 * i, 45))
        rainy = np.clip(gt.astype(np.int16) + np.random.default_rng(i).integers(0, 60, gt.shape), 0, 255)
        from PIL import Image

        Image.fromarray(rainy.astype(np.uint8)).save(root / "Rain100L/input" / f"{i}.png")
    torch.manual_seed(0)
    model = InstructIR(**TINY_INSTRUCTIR)
    for p in model.net.parameters():  # a non-trivial network whose raw output leaves [0, 1]
        torch.nn.init.normal_(p, std=0.05)
    data = Benchmark("rain100l", root=str(root), protocol="instructir-release", release_checkout=str(release_checkout))
    metrics = RestorationMetrics(save_images=0)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[metrics])
    trainer.test(model, datamodule=RestorationDataModule(test=[data], patch_size=None), verbose=False)
    row = next(r for r in metrics.rows if r["benchmark"] == "rain100l")

    prompts = release_template_prompts("rain", 3, str(release_checkout))
    refs, left = [], 0
    for i, prompt in enumerate(prompts):
        lq = _centre_crop(load_image(root / "Rain100L/input" / f"{i}.png").numpy())
        gt = _centre_crop(load_image(root / "Rain100L/target" / f"{i}.png").numpy())
        assert lq.shape[-2] % 16 == 0 and lq.shape[-1] % 16 == 0
        with torch.no_grad():
            pred = model.net(torch.from_numpy(lq)[None], model.embed_prompts([prompt])[0])[0].numpy()
        left += int((pred < 0).any() or (pred > 1).any())
        refs.append(_reference(pred, gt, rain=True))
    assert left, "the test needs outputs outside [0, 1] to show they are scored unclamped"
    for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
        expected = float(np.mean([r[key] for r in refs]))
        assert float(row[key]) == pytest.approx(expected, abs=1e-4 if key.startswith("psnr") else 1e-6), key


def test_release_protocol_without_prompts_is_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("INSTRUCTIR_RELEASE", raising=False)
    for folder in ("Rain100L/input", "Rain100L/target"):
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(DataError) as error:
        Benchmark("rain100l", root=str(tmp_path), protocol="instructir-release")
    assert "\n" not in str(error.value) and "release_checkout" in str(error.value)
    with pytest.raises(DataError, match="unknown protocol"):
        Benchmark("rain100l", root=str(tmp_path), protocol="release")
