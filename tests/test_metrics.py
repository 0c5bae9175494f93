"""Metrics: BasicSR-exact PSNR/SSIM, offline-safe learned metrics, tables and the metric callback."""

from __future__ import annotations

import csv
import math
import time
import urllib.error
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.utils.data import DataLoader

from restorezoo.data.batch import collate, make_sample
from restorezoo.metrics import learned as learned_mod
from restorezoo.metrics.callback import PSNR_CAP_DB, RestorationMetrics
from restorezoo.metrics.functional import gaussian_window, psnr, psnr_ssim, rgb_to_y, ssim
from restorezoo.metrics.learned import (
    PYIQA_MISSING,
    WEIGHTS_UNAVAILABLE,
    LearnedMetric,
    build_learned_metrics,
)
from restorezoo.metrics.protocol import RGB, MetricProtocol
from restorezoo.metrics.tables import (
    NA_WEIGHTS,
    overall_means,
    print_table,
    rows_from_state,
    to_markdown,
    write_csv,
    write_markdown,
)


def constant(value: float, size: int = 16, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, 3, size, size), value / 255.0)


def smooth_image(seed: int, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]


# --------------------------------------------------------------------------- functional


def test_y_of_pure_colours_follows_matlab_bt601() -> None:
    colours = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0], [0, 0, 0]])
    img = colours.view(5, 3, 1, 1)
    y255 = rgb_to_y(img).flatten() * 255
    expected = torch.tensor([16 + 65.481, 16 + 128.553, 16 + 24.966, 235.0, 16.0])
    assert torch.allclose(y255, expected, atol=1e-4)


def test_constant_offset_gives_the_psnr_of_its_mse() -> None:
    # Every pixel is off by 10 levels: MSE = 100, PSNR = 10·log10(255² / 100).
    got = psnr(constant(110, batch=2), constant(100, batch=2))
    assert got.shape == (2,) and got.dtype == torch.float64
    expected = torch.full((2,), 10 * math.log10(255**2 / 100), dtype=torch.float64)
    assert torch.allclose(got, expected, atol=1e-12, rtol=0)


def test_y_channel_psnr_of_a_grey_offset_uses_the_luma_weight_sum() -> None:
    # A grey offset of d levels moves Y by d·(65.481 + 128.553 + 24.966)/255 = d·219/255.
    dy = 10 * 219 / 255
    got = psnr(constant(110), constant(100), y_channel=True)
    assert float(got) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)


def test_identical_images_give_infinite_psnr_and_unit_ssim() -> None:
    x = smooth_image(0).unsqueeze(0)
    assert math.isinf(float(psnr(x, x)))
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, x, y_channel=True, crop_border=3)) == pytest.approx(1.0, abs=1e-12)


def test_quantize_rounds_to_uint8_levels_like_tensor2img() -> None:
    hq = constant(100)
    pred = hq + 0.3 / 255  # rounds back to level 100
    assert math.isinf(float(psnr(pred, hq)))
    assert math.isfinite(float(psnr(pred, hq, quantize=False)))
    # float32 input: the 0.3-level offset is only float32-exact, hence the loose tolerance; the 1e-8 is
    # calculate_psnr_pt's floor on the [0, 1]-scale MSE.
    expected = 10 * math.log10(1 / (0.09 / 255**2 + 1e-8))
    assert float(psnr(pred, hq, quantize=False)) == pytest.approx(expected, abs=1e-3)


# BasicSR's calculate_psnr_pt / calculate_ssim_pt (XPixelGroup/BasicSR 8d56e3a) on _float_pair(), per image:
# (y_channel, crop) -> (PSNR, SSIM). Restorezoo matched them to 4e-15 (dB) and 5e-16 when they were taken.
BASICSR_PT = {
    (False, 0): ((23.821616461448, 23.679406341464), (0.933720182792, 0.933324849991)),
    (False, 4): ((24.588259195392, 24.269118173942), (0.938600844477, 0.929561409603)),
    (True, 0): ((29.221645427699, 28.881941519667), (0.938888276456, 0.936355088867)),
    (True, 4): ((28.881940609363, 29.475848300797), (0.942521283317, 0.937186754041)),
}


def _float_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A float32 prediction ~4 % out of [0, 1] (the clamp restorezoo used to apply moves PSNR by 0.4 dB)."""
    hq = torch.stack([smooth_image(1), smooth_image(2)])
    g = torch.Generator().manual_seed(3)
    return hq * 1.3 - 0.15 + 0.03 * torch.randn(hq.shape, generator=g), hq


@pytest.mark.parametrize(("y_channel", "crop"), list(BASICSR_PT))
def test_float_psnr_ssim_equal_basicsrs_pt_functions(y_channel: bool, crop: int) -> None:
    pred, hq = _float_pair()
    proto = MetricProtocol(y_channel=y_channel, crop_border=crop, quantize=False)
    want_psnr, want_ssim = BASICSR_PT[y_channel, crop]
    assert psnr(pred, hq, protocol=proto).tolist() == pytest.approx(want_psnr, abs=1e-9)
    assert ssim(pred, hq, protocol=proto).tolist() == pytest.approx(want_ssim, abs=1e-9)
    both = psnr_ssim(pred, hq, proto)
    assert both[0].tolist() == pytest.approx(want_psnr, abs=1e-9)
    assert both[1].tolist() == pytest.approx(want_ssim, abs=1e-9)


def test_float_psnr_of_identical_images_is_80_db_as_calculate_psnr_pt() -> None:
    hq = smooth_image(4).unsqueeze(0)
    assert float(psnr(hq, hq, quantize=False)) == pytest.approx(80.0, abs=1e-9)
    assert math.isinf(float(psnr(hq, hq)))  # calculate_psnr on uint8 keeps +inf


def test_crop_border_removes_exactly_that_many_pixels() -> None:
    hq = smooth_image(1).unsqueeze(0)
    pred = hq.clone()
    pred[..., :3, :] = 0  # damage only the top 3 rows
    assert math.isfinite(float(psnr(pred, hq, crop_border=2)))
    assert math.isinf(float(psnr(pred, hq, crop_border=3)))
    noisy = (hq + 0.05 * torch.randn(hq.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    by_hand = psnr(noisy[..., 4:-4, 4:-4], hq[..., 4:-4, 4:-4])
    assert torch.allclose(psnr(noisy, hq, crop_border=4), by_hand, atol=1e-12)
    assert torch.allclose(ssim(noisy, hq, crop_border=4), ssim(noisy[..., 4:-4, 4:-4], hq[..., 4:-4, 4:-4]))


def test_protocol_keyword_matches_explicit_settings() -> None:
    hq = smooth_image(3).unsqueeze(0)
    pred = (hq * 0.9 + 0.05).clamp(0, 1)
    proto = MetricProtocol(y_channel=True, crop_border=2, quantize=True)
    assert torch.equal(psnr(pred, hq, protocol=proto), psnr(pred, hq, 2, True, True))
    assert torch.equal(ssim(pred, hq, protocol=proto), ssim(pred, hq, 2, True, True))
    p, s = psnr_ssim(pred, hq, proto)
    assert torch.equal(p, psnr(pred, hq, protocol=proto)) and torch.equal(s, ssim(pred, hq, protocol=proto))


def numpy_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """BasicSR's ``_ssim`` written plainly: filter, keep the valid part, average the map (H×W×C, 0-255)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    means = []
    for ch in range(x.shape[2]):
        a, b = x[..., ch], y[..., ch]

        def f(t: np.ndarray) -> np.ndarray:
            return ndimage.correlate(t, w, mode="mirror")[5:-5, 5:-5]

        mu_a, mu_b = f(a), f(b)
        va, vb, cov = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
        smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
        means.append(smap.mean())
    return float(np.mean(means))


def test_ssim_matches_a_plain_numpy_reimplementation() -> None:
    g = torch.Generator().manual_seed(4)
    hq = torch.rand(2, 3, 23, 29, generator=g)
    pred = (hq + 0.1 * torch.randn(hq.shape, generator=g)).clamp(0, 1)
    got = ssim(pred, hq)
    for i in range(2):
        x = (pred[i].permute(1, 2, 0).numpy().astype(np.float64) * 255).round()
        y = (hq[i].permute(1, 2, 0).numpy().astype(np.float64) * 255).round()
        assert float(got[i]) == pytest.approx(numpy_ssim(x, y), abs=1e-10)


def test_ssim_agrees_with_scikit_image_gaussian_ssim() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(5)
    hq = smooth_image(6, size=40).unsqueeze(0)
    pred = (hq + 0.08 * torch.randn(hq.shape, generator=g)).clamp(0, 1)
    x = (pred[0].permute(1, 2, 0).numpy().astype(np.float64) * 255).round()
    y = (hq[0].permute(1, 2, 0).numpy().astype(np.float64) * 255).round()
    # skimage filters the whole image with reflect padding, then averages the map without its
    # 5-pixel border: the same valid region, so agreement is to rounding error, far inside 1e-3.
    ref = metrics.structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
    )
    assert float(ssim(pred, hq)) == pytest.approx(ref, abs=1e-6)


def test_gaussian_window_is_normalised_and_symmetric() -> None:
    w = gaussian_window()
    assert w.shape == (11, 11) and float(w.sum()) == pytest.approx(1.0)
    assert torch.allclose(w, w.T) and torch.allclose(w, w.flip(0))


def test_separable_ssim_filter_equals_the_two_dimensional_window() -> None:
    """SSIM filters with the window's two 1-D passes; BasicSR filters with the 11×11 window itself."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 40, 57, generator=g) * 255).round().double()
    window = gaussian_window().expand(3, 1, 11, 11)
    y = (x + 25 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 255).round()

    def filt(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, window, groups=3)

    mx, my = filt(x), filt(y)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * (filt(x * y) - mx * my) + c2)) / (
        (mx * mx + my * my + c1) * (filt(x * x) - mx * mx + filt(y * y) - my * my + c2)
    )
    want = ssim_map.flatten(1).mean(1)
    assert ssim(x / 255, y / 255).tolist() == pytest.approx(want.tolist(), abs=1e-12)


def test_nan_prediction_scores_nan_without_raising() -> None:
    hq = smooth_image(7).unsqueeze(0).repeat(2, 1, 1, 1)
    pred = hq.clone()
    pred[1, 0, 0, 0] = float("nan")
    p, s = psnr_ssim(pred, hq, RGB)
    assert math.isinf(float(p[0])) and math.isnan(float(p[1])) and math.isnan(float(s[1]))


def test_mismatched_shapes_and_tiny_images_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(constant(1, size=16), constant(1, size=12))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(constant(1, size=12), constant(1, size=12), crop_border=1)


# --------------------------------------------------------------------------- learned


class _FakePyiqa:
    """Stands in for pyiqa: either offline (creation raises like a failed download) or working."""

    def __init__(self, online: bool) -> None:
        self.online = online
        self.created: list[str] = []

    def create_metric(self, name: str, device: Any = None, as_loss: bool = False) -> Any:
        self.created.append(name)
        if not self.online:
            raise urllib.error.URLError("[Errno -2] Name or service not known")

        class Net(torch.nn.Module):
            lower_better = True

            def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
                ref = torch.zeros_like(x) if y is None else y
                return (x - ref).abs().flatten(1).mean(1, keepdim=True)  # pyiqa returns B×1

        return Net()


@pytest.fixture
def fake_pyiqa(monkeypatch: pytest.MonkeyPatch):
    def install(online: bool) -> _FakePyiqa:
        fake = _FakePyiqa(online)
        monkeypatch.setattr(learned_mod, "_cache", {})
        monkeypatch.setattr(learned_mod, "_import_pyiqa", lambda: (fake, None))
        return fake

    return install


def test_missing_weights_give_an_unavailable_metric_not_an_error(fake_pyiqa) -> None:
    fake = fake_pyiqa(online=False)
    metrics = build_learned_metrics(["lpips", "niqe"], "cpu")
    assert set(metrics) == {"lpips", "niqe"}
    lp = metrics["lpips"]
    assert not lp.available and lp.reason == WEIGHTS_UNAVAILABLE and "URLError" in lp.detail
    assert lp.full_reference and lp.lower_better and not metrics["niqe"].full_reference
    # Cached per process: a second build neither retries nor rebuilds.
    again = build_learned_metrics(["lpips"], "cpu")
    assert again["lpips"] is lp and fake.created.count("lpips") == 1
    with pytest.raises(RuntimeError, match="unavailable"):
        lp(constant(1), constant(2))


def test_available_learned_metric_returns_one_score_per_image(fake_pyiqa) -> None:
    fake_pyiqa(online=True)
    lp = build_learned_metrics(["lpips"], "cpu")["lpips"]
    assert lp.available and lp.reason == ""
    out = lp(constant(110, batch=3), constant(100, batch=3))
    assert out.shape == (3,) and out.dtype == torch.float64
    assert torch.allclose(out, torch.full((3,), 10 / 255, dtype=torch.float64), atol=1e-6)
    with pytest.raises(ValueError, match="needs a target"):
        lp(constant(1))


def test_missing_pyiqa_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learned_mod, "_import_pyiqa", lambda: (None, "ImportError: no pyiqa"))
    m = LearnedMetric("musiq")
    assert not m.available and m.reason == PYIQA_MISSING


def test_unknown_learned_metric_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="lpips, dists, niqe, musiq, clipiqa"):
        build_learned_metrics(["fid-ish"], "cpu")


def test_real_pyiqa_creation_never_raises_or_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learned_mod, "_cache", {})
    start = time.monotonic()
    m = build_learned_metrics(["lpips"], "cpu")["lpips"]
    available = m.available  # offline here: fails fast; with cached weights: builds
    assert available or m.reason in (WEIGHTS_UNAVAILABLE, PYIQA_MISSING)
    assert time.monotonic() - start < 60


# --------------------------------------------------------------------------- tables


ROWS = [
    {"benchmark": "sample", "task": "noise", "images": 3, "psnr": 28.123, "ssim": 0.81234, "lpips": None},
    {"benchmark": "sample", "task": "blur", "images": 2, "psnr": math.inf, "ssim": math.nan, "lpips": None},
]


def test_markdown_formats_psnr_with_two_and_ssim_with_four_decimals() -> None:
    md = to_markdown(ROWS, ["psnr", "ssim", "lpips"], unavailable={"lpips"}, title="t")
    assert md.startswith("## t\n")
    assert "| benchmark | task | images | PSNR | SSIM | LPIPS |" in md
    assert f"| sample | noise | 3 | 28.12 | 0.8123 | {NA_WEIGHTS} |" in md
    assert "| inf | nan |" in md
    # A None outside the unavailable columns is a plain dash.
    assert "| - |" in to_markdown(ROWS, ["lpips"])


def test_csv_and_markdown_are_written_atomically(tmp_path) -> None:
    md = write_markdown(ROWS, ["psnr", "ssim", "lpips"], tmp_path / "out" / "b.md", unavailable={"lpips"})
    cs = write_csv(ROWS, ["psnr", "ssim", "lpips"], tmp_path / "out" / "b.csv", unavailable={"lpips"})
    assert md.read_text().count("\n") == 4
    with cs.open() as f:
        table = list(csv.DictReader(f))
    assert table[0]["psnr"] == "28.12" and table[0]["ssim"] == "0.8123" and table[0]["lpips"] == NA_WEIGHTS
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.csv", "b.md"]  # no temp files left


def test_print_table_renders_with_rich() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    print_table(ROWS, ["psnr", "ssim", "lpips"], "Results", unavailable={"lpips"}, console=console)
    text = console.export_text()
    assert "Results" in text and "28.12" in text and NA_WEIGHTS in text


def test_rows_from_state_equal_for_one_rank_and_two_ranks_with_a_padded_duplicate() -> None:
    """DistributedSampler pads rank 1 with a copy of image 0; dividing by counts removes it."""
    columns = ["psnr", "ssim"]
    per_image = torch.tensor(
        [[30.0, 0.9], [20.0, 0.7], [25.0, 0.8], [40.0, 0.95], [10.0, 0.5]], dtype=torch.float64
    )
    tasks = torch.tensor([1, 2, 1, 3, 0])  # task index + 1; 0 = unknown
    image_sets = torch.tensor([0, 0, 0, 1, 1])
    names, vocab = ["alpha", "beta"], ["noise", "blur", "rain"]

    single = rows_from_state(per_image, torch.ones(5, 2), tasks, image_sets, names, columns, vocab)

    rank_values = [torch.zeros(5, 2, dtype=torch.float64) for _ in range(2)]
    rank_counts = [torch.zeros(5, 2) for _ in range(2)]
    rank_tasks = [torch.zeros(5, dtype=torch.long) for _ in range(2)]
    for rank, images in enumerate([[0, 2, 4], [1, 3, 0]]):  # image 0 twice: rank 1's padding
        for i in images:
            rank_values[rank][i] += per_image[i]
            rank_counts[rank][i] += 1
            rank_tasks[rank][i] = tasks[i]
    summed = rows_from_state(
        sum(rank_values), sum(rank_counts), torch.maximum(*rank_tasks), image_sets, names, columns, vocab
    )
    assert summed == single
    by_key = {(r["benchmark"], r["task"]): r for r in single}
    assert list(by_key) == [("alpha", "noise"), ("alpha", "blur"), ("alpha", "all"), ("beta", "rain"),
                            ("beta", "unknown"), ("beta", "all")]  # fmt: skip
    assert by_key["alpha", "noise"]["images"] == 2 and by_key["alpha", "noise"]["psnr"] == pytest.approx(27.5)
    assert by_key["alpha", "all"]["psnr"] == pytest.approx(25.0)  # over images, not over task means
    assert overall_means(per_image, torch.ones(5, 2), columns)["psnr"] == pytest.approx(25.0)


def test_rows_skip_unseen_images_and_missing_metrics() -> None:
    values = torch.tensor([[30.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    counts = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # image 1 never scored, ssim never computed
    tasks, sets = torch.tensor([1, 1]), torch.tensor([0, 0])
    rows = rows_from_state(values, counts, tasks, sets, ["a"], ["psnr", "ssim"])
    assert rows == [{"benchmark": "a", "task": "task0", "images": 1, "psnr": 30.0, "ssim": None}]


# --------------------------------------------------------------------------- callback end to end

TASKS = ["noise", "blur", "rain"]
Y4 = MetricProtocol(y_channel=True, crop_border=2, quantize=True)


def make_set(benchmark: str, tasks: list[int], seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i, task in enumerate(tasks):
        hq = smooth_image(seed * 100 + i, size=24)
        lq = (hq + 0.1 * torch.randn(hq.shape, generator=g)).clamp(0, 1)
        samples.append(make_sample(lq, hq, task=task, name=f"{benchmark}_{i}", benchmark=benchmark, index=i))
    return samples


class Blend(L.LightningModule):
    """Restores by averaging input and target: always better than the input, never perfect."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def restore(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"pred": batch["lq"] * 0.5 + batch["hq"] * 0.5}

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self.restore(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self.restore(batch)


class TwoBenchmarks(L.LightningDataModule):
    """alpha (RGB): noise, blur, noise, blur, noise; beta (Y, crop 2): rain ×3."""

    task_names = TASKS

    def __init__(self, with_eval_sets: bool = True) -> None:
        super().__init__()
        self.sets = {"alpha": make_set("alpha", [0, 1, 0, 1, 0], 1), "beta": make_set("beta", [2, 2, 2], 2)}
        self.protocols = {"alpha": RGB, "beta": Y4}
        if not with_eval_sets:
            self.eval_sets = None  # type: ignore[assignment]

    def eval_sets(self, stage: str) -> list[tuple[str, int, MetricProtocol]]:
        return [(name, len(s), self.protocols[name]) for name, s in self.sets.items()]

    def _loaders(self) -> list[DataLoader]:
        return [DataLoader(s, batch_size=2, collate_fn=collate) for s in self.sets.values()]

    def val_dataloader(self) -> list[DataLoader]:
        return self._loaders()

    def test_dataloader(self) -> list[DataLoader]:
        return self._loaders()


def trainer(tmp_path, callback: RestorationMetrics) -> Any:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )


def expected_mean(samples: list[dict[str, Any]], protocol: MetricProtocol, metric: str, lq: bool = False):
    vals = []
    for s in samples:
        hq = s["hq"].unsqueeze(0)
        pred = s["lq"].unsqueeze(0) if lq else s["lq"].unsqueeze(0) * 0.5 + hq * 0.5
        p, q = psnr_ssim(pred, hq, protocol)
        vals.append(float(p) if metric == "psnr" else float(q))
    return sum(vals) / len(vals)


def test_callback_groups_by_benchmark_and_task_and_writes_the_table(tmp_path, fake_pyiqa) -> None:
    fake_pyiqa(online=False)  # LPIPS weights cannot be downloaded
    cb = RestorationMetrics(learned=["lpips"], save_images=2)
    dm = TwoBenchmarks()
    run = trainer(tmp_path, cb)
    with pytest.warns(UserWarning, match="lpips"):
        run.test(Blend(), datamodule=dm)

    keys = [(r["benchmark"], r["task"], r["images"]) for r in cb.rows]
    assert keys == [("alpha", "noise", 3), ("alpha", "blur", 2), ("alpha", "all", 5), ("beta", "rain", 3)]
    rows = {(r["benchmark"], r["task"]): r for r in cb.rows}
    for r in cb.rows:
        assert r["psnr"] > r["psnr_lq"] and r["ssim"] > r["ssim_lq"]
        assert r["lpips"] is None
    alpha_noise = [dm.sets["alpha"][i] for i in (0, 2, 4)]
    assert rows["alpha", "noise"]["psnr"] == pytest.approx(expected_mean(alpha_noise, RGB, "psnr"), abs=1e-9)
    assert rows["beta", "rain"]["ssim"] == pytest.approx(expected_mean(dm.sets["beta"], Y4, "ssim"), abs=1e-9)
    assert rows["beta", "rain"]["psnr_lq"] == pytest.approx(
        expected_mean(dm.sets["beta"], Y4, "psnr", lq=True), abs=1e-9
    )

    md = (tmp_path / "benchmark.md").read_text()
    assert f"{rows['alpha', 'all']['psnr']:.2f}" in md and NA_WEIGHTS in md
    assert "beta: Y, crop 2, uint8" in md and md == cb.table_markdown
    with (tmp_path / "benchmark.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [t["task"] for t in table] == ["noise", "blur", "all", "rain"]
    assert table[3]["psnr"] == f"{rows['beta', 'rain']['psnr']:.2f}" and table[0]["lpips"] == NA_WEIGHTS

    images = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "images").rglob("*.png"))
    assert images == ["images/alpha/alpha_0.png", "images/alpha/alpha_1.png",
                      "images/beta/beta_0.png", "images/beta/beta_1.png"]  # fmt: skip
    from PIL import Image

    with Image.open(tmp_path / "images" / "alpha" / "alpha_0.png") as im:
        assert im.size == (3 * 24 + 2 * 4, 24)  # LQ | prediction | HQ

    logged = {k: float(v) for k, v in run.callback_metrics.items()}
    assert logged["test/alpha/psnr"] == pytest.approx(rows["alpha", "all"]["psnr"], abs=1e-4)
    assert logged["test/beta/ssim"] == pytest.approx(rows["beta", "rain"]["ssim"], abs=1e-4)
    assert not any(key.endswith("_lq") for key in logged), "input scores belong in the table, not the logs"


def test_validation_logs_overall_and_per_benchmark_psnr_for_checkpointing(tmp_path) -> None:
    cb = RestorationMetrics(save_images=0)
    dm = TwoBenchmarks()
    run = trainer(tmp_path, cb)
    run.validate(Blend(), datamodule=dm)
    logged = {k: float(v) for k, v in run.callback_metrics.items()}
    every = [*dm.sets["alpha"], *dm.sets["beta"]]
    per_image = [expected_mean([s], RGB if s["benchmark"] == "alpha" else Y4, "psnr") for s in every]
    assert logged["val/psnr"] == pytest.approx(sum(per_image) / len(per_image), abs=1e-4)
    assert logged["val/beta/psnr"] == pytest.approx(expected_mean(dm.sets["beta"], Y4, "psnr"), abs=1e-4)
    assert "val/ssim" in logged and "val/psnr_lq" not in logged
    assert not (tmp_path / "benchmark.md").exists() and cb.rows == [] and len(cb.val_rows) == 4


def test_without_eval_sets_groups_by_the_batch_benchmark_names(tmp_path) -> None:
    cb = RestorationMetrics(compare_input=False, save_images=0, output_dir=str(tmp_path / "tables"))
    dm = TwoBenchmarks(with_eval_sets=False)
    trainer(tmp_path, cb).test(Blend(), datamodule=dm)
    assert [(r["benchmark"], r["task"]) for r in cb.rows] == [
        ("alpha", "noise"), ("alpha", "blur"), ("alpha", "all"), ("beta", "rain"),
    ]  # fmt: skip
    beta = cb.rows[-1]
    # Without eval_sets there is no protocol to read: RGB.
    assert beta["psnr"] == pytest.approx(expected_mean(dm.sets["beta"], RGB, "psnr"), abs=1e-9)
    assert set(beta) == {"benchmark", "task", "images", "psnr", "ssim"}
    assert (tmp_path / "tables" / "benchmark.csv").exists()


class Identity(Blend):
    def restore(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pred = batch["hq"].clone()
        pred[batch["index"] == 1] = float("nan")  # one broken prediction per benchmark
        return {"pred": pred}


def test_perfect_predictions_are_capped_and_nan_predictions_warn(tmp_path) -> None:
    cb = RestorationMetrics(save_images=0)
    with pytest.warns(UserWarning, match="NaN"):
        trainer(tmp_path, cb).test(Identity(), datamodule=TwoBenchmarks())
    rows = {(r["benchmark"], r["task"]): r for r in cb.rows}
    assert rows["alpha", "noise"]["psnr"] == PSNR_CAP_DB  # images 0, 2, 4: identical to the target
    assert math.isnan(rows["alpha", "blur"]["psnr"])  # contains image 1
    assert "nan" in (tmp_path / "benchmark.md").read_text()


def test_unknown_metric_names_are_refused() -> None:
    with pytest.raises(ValueError, match="known: psnr, ssim"):
        RestorationMetrics(metrics=["psnr", "lpips"])
    with pytest.raises(ValueError, match="known: lpips"):
        RestorationMetrics(learned=["nope"])


def test_samples_without_a_valid_index_are_dropped_with_a_warning(tmp_path) -> None:
    cb = RestorationMetrics(save_images=0)
    dm = TwoBenchmarks()
    dm.sets["beta"][2]["index"] = 7  # past the end of beta
    with pytest.warns(UserWarning, match="no valid benchmark/index"):
        trainer(tmp_path, cb).test(Blend(), datamodule=dm)
    assert {(r["benchmark"], r["task"]): r["images"] for r in cb.rows}["beta", "rain"] == 2


def test_state_is_device_side_until_epoch_end() -> None:
    """The per-batch path only does tensor ops on the module's device (no host syncs)."""
    cb = RestorationMetrics(save_images=0)
    dm = TwoBenchmarks()
    module = Blend()
    strategy = SimpleNamespace(root_device=torch.device("cpu"))
    fake_trainer = SimpleNamespace(datamodule=dm, world_size=1, is_global_zero=True, strategy=strategy)
    cb._start(fake_trainer, module, "test")  # type: ignore[arg-type]
    batch = collate(dm.sets["beta"][:2])
    cb._update(fake_trainer, module, module.restore(batch), batch, dataloader_idx=1)  # type: ignore[arg-type]
    state = cb._state
    assert state is not None and state.counts is not None and state.tasks is not None
    assert state.counts[5:7].tolist() == [[1.0] * 4, [1.0] * 4] and state.counts[:5].sum() == 0
    assert state.tasks[5:7].tolist() == [3, 3]  # rain = index 2, stored + 1


def test_a_batch_mixing_benchmarks_scores_each_sample_under_its_own_protocol() -> None:
    cb = RestorationMetrics(compare_input=False, save_images=0)
    dm = TwoBenchmarks()
    module = Blend()
    strategy = SimpleNamespace(root_device=torch.device("cpu"))
    fake_trainer = SimpleNamespace(datamodule=dm, world_size=1, is_global_zero=True, strategy=strategy)
    cb._start(fake_trainer, module, "test")  # type: ignore[arg-type]
    samples = [dm.sets["alpha"][3], dm.sets["beta"][1]]
    batch = collate(samples)
    cb._update(fake_trainer, module, module.restore(batch), batch, dataloader_idx=0)  # type: ignore[arg-type]
    state = cb._state
    assert state is not None and state.values is not None and state.counts is not None
    assert state.counts.sum(dim=1).nonzero().flatten().tolist() == [3, 6]  # alpha #3, beta offset 5 + #1
    assert float(state.values[3, 0]) == pytest.approx(expected_mean(samples[:1], RGB, "psnr"), abs=1e-12)
    assert float(state.values[6, 0]) == pytest.approx(expected_mean(samples[1:], Y4, "psnr"), abs=1e-12)


class BlendWithAutoencoder(Blend):
    """Blend with a lossy "autoencoder" (x ↦ 0.9·x + 0.05): the metric table's ceiling column."""

    def autoencoder_round_trip(self, images: torch.Tensor) -> torch.Tensor:
        return images * 0.9 + 0.05


class BlendWithAnotherReconstruct(Blend):
    """A method named like a round trip but taking a batch (Diff-Restorer stage 2's ``reconstruct``)."""

    def reconstruct(self, batch: dict[str, Any]) -> torch.Tensor:
        raise AssertionError("the callback must not call reconstruct")


def test_the_ceiling_column_scores_the_models_autoencoder_round_trip_of_the_target(tmp_path) -> None:
    dm = TwoBenchmarks()
    cb = RestorationMetrics(save_images=0, output_dir=str(tmp_path / "a"))
    trainer(tmp_path, cb).test(BlendWithAutoencoder(), datamodule=dm)
    rows = {(r["benchmark"], r["task"]): r for r in cb.rows}
    expected = []
    for s in dm.sets["beta"]:
        hq = s["hq"].unsqueeze(0)
        expected.append(float(psnr_ssim(hq * 0.9 + 0.05, hq, Y4)[0]))
    assert rows["beta", "rain"]["psnr_ceiling"] == pytest.approx(sum(expected) / len(expected), abs=1e-9)
    assert "ssim_ceiling" in rows["alpha", "all"]
    for model in (Blend(), BlendWithAnotherReconstruct()):  # no round trip: no column
        cb = RestorationMetrics(save_images=0, output_dir=str(tmp_path / "b"))
        trainer(tmp_path, cb).test(model, datamodule=dm)
        assert not any(key.endswith("_ceiling") for key in cb.rows[0])
    cb = RestorationMetrics(compare_input=False, save_images=0, output_dir=str(tmp_path / "c"))
    trainer(tmp_path, cb).test(BlendWithAutoencoder(), datamodule=dm)  # the ceiling goes with the input
    assert not any(key.endswith("_ceiling") for key in cb.rows[0])
