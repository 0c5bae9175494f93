"""CLIP-T (caption similarity) and FID (set-level, per benchmark/task group) in the metric callback."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from restorezoo.data.batch import collate
from restorezoo.encoders.clip import clip_pixels, tiny_clip
from restorezoo.metrics import learned as learned_mod
from restorezoo.metrics.callback import RestorationMetrics
from restorezoo.metrics.learned import (
    FID_TOO_FEW,
    NO_CAPTIONS,
    ClipTextSimilarity,
    LearnedMetric,
    frechet_distance,
)
from restorezoo.metrics.tables import NA_WEIGHTS
from tests.test_metrics import Blend, TwoBenchmarks, trainer

ALPHA_CAPTIONS = ["a red barn", "", "two dogs on a beach", "", "a city street at night"]


class PoolFeatures(torch.nn.Module):
    """A tiny stand-in for Inception: 2×2 average-pooled colours (12-d)."""

    dim = 12

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images, 2).flatten(1)


class Perfect(Blend):
    def restore(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"pred": batch["hq"].clone()}


def _inject(monkeypatch, **nets: torch.nn.Module) -> None:
    """Learned metrics built from the given networks instead of downloaded weights."""
    cache: dict[tuple[str, str], LearnedMetric] = {}
    for name, net in nets.items():
        metric = LearnedMetric(name)
        metric._net, metric._tried = net, True
        cache[name, "cpu"] = metric
    monkeypatch.setattr(learned_mod, "_cache", cache)


def _captioned() -> TwoBenchmarks:
    dm = TwoBenchmarks()
    for sample, caption in zip(dm.sets["alpha"], ALPHA_CAPTIONS, strict=True):
        sample["caption"] = caption
    return dm  # beta has no captions


def test_offline_clip_t_and_fid_read_na_and_the_run_goes_on(tmp_path, monkeypatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> None:
        raise OSError("no network")

    monkeypatch.setattr(learned_mod, "_cache", {})
    monkeypatch.setattr(learned_mod, "_open_clip_model", offline)
    monkeypatch.setattr(learned_mod, "InceptionFeatures", offline)
    cb = RestorationMetrics(learned=["clip_t", "fid"], save_images=0)
    with pytest.warns(UserWarning, match="clip_t"):
        trainer(tmp_path, cb).test(Blend(), datamodule=_captioned())
    assert cb.unavailable == {"clip_t", "fid"}
    assert all(r["clip_t"] is None and r["fid"] is None and r["psnr"] > 20 for r in cb.rows)
    header, *body = [line for line in cb.table_markdown.splitlines() if line.startswith("| ")]
    assert "CLIP-T" in header and "FID" in header
    assert all(line.count(NA_WEIGHTS) == 2 for line in body[1:])


def test_clip_t_is_the_image_caption_cosine_over_captioned_images_only(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    clip, tokenizer = tiny_clip()
    _inject(monkeypatch, clip_t=ClipTextSimilarity(model=clip, tokenizer=tokenizer))
    dm = _captioned()
    cb = RestorationMetrics(learned=["clip_t"], save_images=0)
    trainer(tmp_path, cb).test(Blend(), datamodule=dm)

    def cosine(sample: dict[str, Any]) -> float:
        pred = (sample["lq"] * 0.5 + sample["hq"] * 0.5).unsqueeze(0)
        with torch.no_grad():
            image = clip.encode_image(clip_pixels(pred, (64, 64)))
            text = clip.encode_text(tokenizer([sample["caption"]]))
        return float(F.cosine_similarity(image, text))

    rows = {(r["benchmark"], r["task"]): r for r in cb.rows}
    # alpha noise = images 0, 2, 4 (all captioned); blur = 1, 3 (both empty); all = the captioned three.
    expected = sum(cosine(dm.sets["alpha"][i]) for i in (0, 2, 4)) / 3
    assert rows["alpha", "noise"]["clip_t"] == pytest.approx(expected, abs=1e-5)
    assert rows["alpha", "all"]["clip_t"] == pytest.approx(expected, abs=1e-5)
    assert rows["alpha", "blur"]["clip_t"] == NO_CAPTIONS and rows["beta", "rain"]["clip_t"] == NO_CAPTIONS
    assert NO_CAPTIONS in cb.table_markdown


def test_clip_t_refuses_a_missing_caption() -> None:
    clip, tokenizer = tiny_clip()
    with pytest.raises(ValueError, match="caption"):
        ClipTextSimilarity(model=clip, tokenizer=tokenizer)(torch.rand(2, 3, 16, 16), ["a cat", " "])


def test_frechet_distance_matches_the_matrix_square_root_formula() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 5, generator=g, dtype=torch.float64)
    b = torch.randn(30, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    ca, cb = (torch.cov(x.T).numpy() for x in (a, b))
    expected = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + float(
        (ca + cb - 2 * linalg.sqrtm(ca @ cb).real).trace()
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + 0.5) == pytest.approx(5 * 0.25, rel=1e-6)  # a shift moves only the means


def test_fid_per_group_is_zero_for_identical_sets_positive_otherwise_and_na_below_two(tmp_path, monkeypatch):
    _inject(monkeypatch, fid=PoolFeatures())
    dm = TwoBenchmarks()
    dm.sets["beta"] = dm.sets["beta"][:1]  # one rain image: no covariance
    exact = RestorationMetrics(learned=["fid"], save_images=0)
    trainer(tmp_path, exact).test(Perfect(), datamodule=dm)
    rows = {(r["benchmark"], r["task"]): r["fid"] for r in exact.rows}
    assert rows["alpha", "noise"] == pytest.approx(0.0, abs=1e-6) and rows["alpha", "all"] == pytest.approx(0.0, abs=1e-6)
    assert rows["beta", "rain"] == FID_TOO_FEW and FID_TOO_FEW in exact.table_markdown

    blend = RestorationMetrics(learned=["fid"], save_images=0)
    trainer(tmp_path, blend).test(Blend(), datamodule=dm)
    rows = {(r["benchmark"], r["task"]): r["fid"] for r in blend.rows}
    alpha = dm.sets["alpha"]
    noise = [alpha[i] for i in (0, 2, 4)]
    pred = PoolFeatures()(torch.stack([s["lq"] * 0.5 + s["hq"] * 0.5 for s in noise]))
    hq = PoolFeatures()(torch.stack([s["hq"] for s in noise]))
    assert rows["alpha", "noise"] > 0
    assert rows["alpha", "noise"] == pytest.approx(frechet_distance(pred, hq), rel=1e-4)
    assert rows["alpha", "all"] > 0 and rows["alpha", "blur"] > 0


class _TwoRanks:
    """Strategy stand-in whose reduce adds (or maxes) rank 0's state tensor with rank 1's."""

    root_device = torch.device("cpu")

    def __init__(self) -> None:
        self.peers: dict[int, torch.Tensor] = {}

    def pair(self, mine: Any, theirs: Any) -> None:
        for name in ("values", "counts", "tasks"):
            self.peers[id(getattr(mine, name))] = getattr(theirs, name)
        for name, tensor in mine.features.items():
            self.peers[id(tensor)] = theirs.features[name]

    def reduce(self, tensor: torch.Tensor, reduce_op: str = "sum") -> torch.Tensor:
        other = self.peers.get(id(tensor), torch.zeros_like(tensor))
        return torch.maximum(tensor, other) if reduce_op == "max" else tensor + other


def test_fid_under_ddp_counts_padded_duplicates_once_and_equals_one_device(monkeypatch) -> None:
    _inject(monkeypatch, fid=PoolFeatures())
    dm, module = TwoBenchmarks(), Blend()
    alpha = dm.sets["alpha"]

    def run(shards: list[list[int]]) -> dict[tuple[str, str], Any]:
        strategy = _TwoRanks()
        fake = SimpleNamespace(datamodule=dm, world_size=len(shards), is_global_zero=True, strategy=strategy)
        callbacks = [RestorationMetrics(learned=["fid"], save_images=0) for _ in shards]
        for cb, shard in zip(callbacks, shards, strict=True):
            cb._start(fake, module, "validate")  # type: ignore[arg-type]
            batch = collate([alpha[i] for i in shard])
            cb._update(fake, module, module.restore(batch), batch, dataloader_idx=0)  # type: ignore[arg-type]
        if len(callbacks) == 2:
            strategy.pair(callbacks[0]._state, callbacks[1]._state)
        callbacks[0]._finish(fake, module)  # type: ignore[arg-type]
        return {(r["benchmark"], r["task"]): r["fid"] for r in callbacks[0].val_rows}

    single = run([[0, 1, 2, 3, 4]])
    ddp = run([[0, 2, 4], [1, 3, 0]])  # image 0 padded onto rank 1, as DistributedSampler does
    assert single["alpha", "all"] > 0
    assert ddp.keys() == single.keys()
    for key, value in single.items():
        assert ddp[key] == pytest.approx(value, rel=1e-5)
