"""FID equal to pyiqa's ``fid`` metric: same preprocessing per mode, same distance (offline, random Inception)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from restorezoo.metrics import fid, frechet_distance
from restorezoo.metrics import learned as learned_mod

inception_mod = importlib.import_module("restorezoo.metrics.inception")
pyiqa_inception = pytest.importorskip("pyiqa.archs.inception")
fid_arch = pytest.importorskip("pyiqa.archs.fid_arch")


def _random_weights(net: torch.nn.Module, *args, **kwargs) -> None:
    """Stands in for pyiqa's weight loader: the same seeded random Inception in every build."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 4:  # He-scaled convolutions keep activations alive through 90 layers
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)
            elif name.endswith("weight"):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.01)


@pytest.fixture
def random_inception(monkeypatch):
    monkeypatch.setattr(pyiqa_inception, "load_pretrained_network", _random_weights)
    monkeypatch.setattr(inception_mod, "_ensure_fid_weights", lambda: None)


def _image_sets(tmp_path, n: int = 4):
    """Two small sets (smooth photos-like images and noisy copies), as tensors and as PNG folders."""
    g = torch.Generator().manual_seed(1)
    a = torch.nn.functional.interpolate(torch.rand(n, 3, 6, 8, generator=g), size=(48, 64), mode="bilinear")
    b = (a + 0.15 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    for name, x in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        for i in range(n):
            arr = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / name / f"{i}.png")
    return a, b


def _pyiqa_features(folder, mode: str) -> torch.Tensor:
    model = pyiqa_inception.InceptionV3(output_blocks=[3]).eval()
    feats = fid_arch.get_folder_features(
        str(folder), model, num_workers=0, device=torch.device("cpu"), mode=mode, verbose=False
    )
    return torch.from_numpy(feats).double()


@pytest.mark.parametrize("mode", ["clean", "legacy_pytorch"])
def test_inception_features_equal_pyiqas_for_tensors_and_folders(tmp_path, random_inception, mode) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    a, _ = _image_sets(tmp_path, n=2)
    reference = _pyiqa_features(tmp_path / "a", mode)
    net = inception_mod.InceptionFeatures("cpu", mode=mode)
    ours = net(a).double()
    assert ours.shape == reference.shape == (2, 2048)
    scale = reference.abs().max()
    assert (ours - reference).abs().max() <= 1e-5 * scale
    from_folder = inception_mod._features(tmp_path / "a", net, 8).double()
    assert (from_folder - reference).abs().max() <= 1e-5 * scale


def test_the_callbacks_fid_features_are_clean_fids(tmp_path, random_inception) -> None:
    a, _ = _image_sets(tmp_path, n=2)
    metric = learned_mod.LearnedMetric("fid")
    assert metric.available
    reference = _pyiqa_features(tmp_path / "a", "clean")
    assert (metric.features(a).double() - reference).abs().max() <= 1e-5 * reference.abs().max()


@pytest.mark.parametrize("n", [6, 80])  # fewer images than dimensions (rank-deficient), and more
def test_frechet_distance_equals_pyiqas(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    a = torch.randn(n, 32, generator=g, dtype=torch.float64)
    b = torch.randn(n + 3, 32, generator=g, dtype=torch.float64) @ torch.randn(32, 32, generator=g, dtype=torch.float64)
    an, bn = a.numpy(), b.numpy()
    expected = fid_arch.frechet_distance(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-7)


def test_fid_refuses_an_unknown_mode_and_a_missing_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown FID mode"):
        inception_mod.fid_inputs(torch.rand(1, 3, 8, 8), "tf2")
    with pytest.raises(ValueError, match="not a folder"):
        fid(tmp_path / "nope", tmp_path / "nope", net=object())  # type: ignore[arg-type]


@pytest.mark.slow
def test_fid_equals_pyiqas_fid_metric_end_to_end(tmp_path, random_inception) -> None:
    """pyiqa's own FID() on the two folders (its scipy sqrtm of a 2048² matrix takes ~20 s on 2 cores)."""
    a, b = _image_sets(tmp_path, n=5)
    expected = fid_arch.FID()(
        str(tmp_path / "a"), str(tmp_path / "b"), mode="clean", device=torch.device("cpu"), num_workers=0,
        verbose=False,
    )
    net = inception_mod.InceptionFeatures("cpu")
    assert fid(a, b, net=net) == pytest.approx(float(expected), rel=1e-6)
    assert fid(tmp_path / "a", tmp_path / "b", net=net) == pytest.approx(float(expected), rel=1e-6)
