"""Real-ESRGAN second-order degradation: kernels, the batched pipeline, and the dataset → DataModule path."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from restorezoo.data import RealESRGANSynthetic, RestorationDataModule
from restorezoo.data.degrade import (
    KERNEL_FAMILIES,
    KERNEL_PROBS,
    RealESRGAN,
    RealESRGANOptions,
    bivariate_kernel,
    gaussian_kernel,
    generalized_gaussian_kernel,
    ops,
    plateau_kernel,
    random_mixed_kernel,
    sinc_kernel,
    usm_sharpen,
)
from restorezoo.data.degrade.kernels import KERNEL_SIZE


def _moments(k: torch.Tensor) -> torch.Tensor:
    """Covariance of a kernel seen as a distribution over (x = column, y = row) offsets."""
    size = k.shape[-1]
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    k = k.double()
    return torch.tensor(
        [
            [(k * xx * xx).sum(), (k * xx * yy).sum()],
            [(k * xx * yy).sum(), (k * yy * yy).sum()],
        ]
    )


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    from skimage import data

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    return image[:, 64:192, 160:288].contiguous()  # the face and helmet: texture and flat parts


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -10 * torch.log10(((a - b) ** 2).mean(dim=(1, 2, 3)))


# ------------------------------------------------------------------------------------------ kernels


def test_every_kernel_sums_to_one():
    kernels = [
        gaussian_kernel(21, 2.0),
        gaussian_kernel(7, 0.3, 2.5, 0.7),
        generalized_gaussian_kernel(15, 1.5, 0.8, 1.0, beta=0.6),
        plateau_kernel(11, 1.2, beta=1.7),
        sinc_kernel(13, math.pi / 4),
    ]
    generator = torch.Generator().manual_seed(0)
    kernels += [random_mixed_kernel(generator)[0] for _ in range(50)]
    for k in kernels:
        assert torch.isclose(k.sum(), torch.tensor(1.0), atol=1e-5)


def test_isotropic_gaussian_has_the_requested_sigma():
    for sigma in (1.0, 2.0, 3.0):
        cov = _moments(gaussian_kernel(31, sigma))
        assert cov[0, 0].sqrt().item() == pytest.approx(sigma, rel=0.02)
        assert cov[1, 1].sqrt().item() == pytest.approx(sigma, rel=0.02)
        assert abs(cov[0, 1].item()) < 1e-6


def test_anisotropic_rotation_rotates_the_covariance():
    sx, sy, theta = 3.0, 1.0, math.pi / 6
    measured = _moments(bivariate_kernel(41, sx, sy, theta))
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    expected = rot @ torch.diag(torch.tensor([sx**2, sy**2], dtype=torch.float64)) @ rot.T
    assert torch.allclose(measured, expected, rtol=0.03, atol=0.03)
    # no rotation: axis-aligned
    axis = _moments(bivariate_kernel(41, sx, sy, 0.0))
    assert axis[0, 0] == pytest.approx(sx**2, rel=0.03) and abs(axis[0, 1]) < 1e-6


def test_generalized_and_plateau_shapes():
    gauss = gaussian_kernel(21, 2.0)
    heavy = generalized_gaussian_kernel(21, 2.0, beta=0.5)  # β < 1: heavier tails
    flat = generalized_gaussian_kernel(21, 2.0, beta=4.0)  # β > 1: flatter top
    assert heavy[10, 0] > gauss[10, 0] and flat[10, 0] < gauss[10, 0]
    assert torch.allclose(generalized_gaussian_kernel(21, 2.0, beta=1.0), gauss, atol=1e-7)
    plateau = plateau_kernel(21, 2.0, beta=2.0)
    assert plateau[10, 10] == plateau.max()
    assert plateau[10, 11] / plateau[10, 10] > gauss[10, 11] / gauss[10, 10]  # flatter top
    assert plateau[10, 0] > gauss[10, 0]  # and slower fall-off


def test_sinc_kernel_is_a_low_pass_at_its_cutoff():
    cutoff = math.pi / 3
    k = sinc_kernel(21, cutoff)
    spectrum = torch.fft.fftshift(torch.fft.fft2(k, s=(128, 128))).abs()
    f = torch.fft.fftshift(torch.fft.fftfreq(128)) * 2 * math.pi
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    radius = torch.sqrt(fx**2 + fy**2)
    assert spectrum[radius < 0.7 * cutoff].mean() > 0.85
    assert spectrum[(radius > 1.3 * cutoff) & (radius < math.pi)].mean() < 0.1


def test_family_frequencies_match_the_paper():
    generator = torch.Generator().manual_seed(0)
    draws = 3000
    counts = Counter(random_mixed_kernel(generator)[1]["family"] for _ in range(draws))
    assert counts["sinc"] / draws == pytest.approx(0.1, abs=0.025)
    for family, p in zip(KERNEL_FAMILIES, KERNEL_PROBS):
        assert counts[family] / draws == pytest.approx(0.9 * p, abs=0.03), family


def test_kernel_sizes_are_odd_in_range_and_padded():
    generator = torch.Generator().manual_seed(1)
    sizes = set()
    for _ in range(200):
        kernel, info = random_mixed_kernel(generator)
        assert kernel.shape == (KERNEL_SIZE, KERNEL_SIZE)
        sizes.add(info["size"])
    assert sizes == set(range(7, 22, 2))


def test_options_default_to_the_paper():
    o = RealESRGANOptions()
    assert o.resize_prob == (0.2, 0.7, 0.1) and o.resize_prob2 == (0.3, 0.4, 0.3)
    assert o.resize_range == (0.15, 1.5) and o.resize_range2 == (0.3, 1.2)
    assert o.noise_range == (1, 30) and o.noise_range2 == (1, 25)
    assert o.poisson_scale_range == (0.05, 3) and o.poisson_scale_range2 == (0.05, 2.5)
    assert o.blur_sigma == (0.2, 3) and o.blur_sigma2 == (0.2, 1.5)
    assert o.second_blur_prob == 0.8 and o.final_sinc_prob == 0.8 and o.gray_noise_prob == 0.4
    assert o.jpeg_range == (30, 95) and o.jpeg_range2 == (30, 95)


# ------------------------------------------------------------------------------------------ pipeline


def _degrade(hq: torch.Tensor, seed: int, pipeline: RealESRGAN | None = None):
    pipeline = pipeline or RealESRGAN()
    kernels = pipeline.sample_batch_kernels(hq.shape[0], torch.Generator().manual_seed(seed))
    return pipeline.apply(hq, kernels, torch.Generator().manual_seed(seed))


def test_same_seed_same_lq_and_different_seed_different(astronaut):
    hq = astronaut[None].repeat(2, 1, 1, 1)
    lq_a, params_a = _degrade(hq, 3)
    lq_b, params_b = _degrade(hq, 3)
    lq_c, _ = _degrade(hq, 4)
    assert torch.equal(lq_a, lq_b) and params_a == params_b
    assert not torch.equal(lq_a, lq_c)


def test_output_is_on_the_8bit_grid_degraded_but_recognisable(astronaut):
    hq = astronaut[None].repeat(4, 1, 1, 1)
    psnrs = []
    for seed in range(4):
        lq, params = _degrade(hq, seed)
        assert lq.shape == hq.shape and lq.dtype == hq.dtype
        assert lq.min() >= 0 and lq.max() <= 1
        assert torch.equal(lq * 255, (lq * 255).round())
        psnrs.append(_psnr(lq, hq))
        json.dumps(params)  # JSON-serialisable
        assert all(p["task"] == "realesrgan" for p in params)
        assert {p["final_order"] for p in params} <= {"resize_sinc_jpeg", "jpeg_resize_sinc"}
    psnr = torch.cat(psnrs)
    assert psnr.max() < 40 and psnr.mean() > 15


def test_params_record_every_stage(astronaut):
    _, params = _degrade(astronaut[None].repeat(2, 1, 1, 1), 5)
    keys = {"kernel1", "kernel2", "sinc", "resize1", "noise1", "jpeg1", "resize2", "noise2", "jpeg2"}
    for p in params:
        assert keys <= p.keys()
        assert p["noise1"]["kind"] in ("gaussian", "poisson")
        assert 30 <= p["jpeg1"] <= 95 and 30 <= p["jpeg2"] <= 95
        assert (p["kernel2"]["family"] == "pulse") == (not p["blur2"])


def test_sr_scale_shrinks_the_lq(astronaut):
    lq, _ = _degrade(astronaut[None], 0, RealESRGAN(scale=4))
    assert lq.shape[-2:] == (32, 32)


def test_usm_sharpening_raises_laplacian_energy(astronaut):
    hq = astronaut[None]
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)

    def energy(x: torch.Tensor) -> float:
        return torch.nn.functional.conv2d(x, lap, groups=3).pow(2).mean().item()

    sharp = usm_sharpen(hq)
    assert sharp.shape == hq.shape and sharp.min() >= 0 and sharp.max() <= 1
    assert energy(sharp) > 1.1 * energy(hq)


# ------------------------------------------------------------------------------------------ data path


def test_dataset_carries_kernels_and_a_placeholder_lq():
    dataset = RealESRGANSynthetic(split="test")
    sample = dataset[0]
    assert torch.equal(sample["lq"], sample["hq"])
    assert sample["prompt"] == "Remove all degradation" and sample["task"] == "realesrgan"
    assert bool(sample["gpu_degrade"])
    assert sample["degrade_kernels"]["kernel1"].shape == (KERNEL_SIZE, KERNEL_SIZE)
    again = dataset[0]  # evaluation: per-index deterministic
    for key, value in sample["degrade_kernels"].items():
        assert torch.equal(value, again["degrade_kernels"][key]), key
    assert isinstance(dataset.gpu_pipeline, RealESRGAN)


def test_datamodule_degrades_training_batches_on_the_device():
    torch.manual_seed(0)
    dm = RestorationDataModule(train=[RealESRGANSynthetic(split="train")], batch_size=2, patch_size=64)
    batch = next(iter(dm.train_dataloader()))
    assert torch.equal(batch["lq"], batch["hq"])
    batch["prompt"] = ["", batch["prompt"][1]]
    out = dm.on_after_batch_transfer(batch, 0)
    assert out["lq"].shape == out["hq"].shape == (2, 3, 64, 64)
    assert not torch.equal(out["lq"], out["hq"])
    assert out["prompt"] == ["Remove all degradation"] * 2
    assert all(p["task"] == "realesrgan" and "noise1" in p for p in out["params"])
    json.dumps(out["params"])
    assert not out["gpu_degrade"].any()  # marked done: a second call is a no-op
    lq = out["lq"].clone()
    assert torch.equal(dm.gpu_degradation(out)["lq"], lq)


def test_datamodule_reproducible_under_the_global_seed():
    dm = RestorationDataModule(train=[RealESRGANSynthetic(split="train")], batch_size=2, patch_size=48)
    results = []
    for _ in range(2):
        torch.manual_seed(7)
        batch = next(iter(dm.train_dataloader()))
        results.append(dm.gpu_degradation(batch)["lq"])
    assert torch.equal(results[0], results[1])


def test_usm_target_sharpens_the_hq_in_the_batch():
    dm = RestorationDataModule(
        train=[RealESRGANSynthetic(split="train", usm_target=True)], batch_size=2, patch_size=64
    )
    torch.manual_seed(1)
    batch = next(iter(dm.train_dataloader()))
    original = batch["hq"].clone()
    out = dm.gpu_degradation(batch)
    assert not torch.equal(out["hq"], original)


def test_validation_batches_are_degraded_the_same_every_epoch():
    from types import SimpleNamespace

    val = RealESRGANSynthetic(split="val", max_side=64)
    dm = RestorationDataModule(val=[val])
    dm.trainer = SimpleNamespace(training=False, testing=False, predicting=False)
    results = []
    for global_seed in (0, 1):  # the global RNG must not matter in evaluation
        torch.manual_seed(global_seed)
        batch = next(iter(dm.val_dataloader()[0]))
        results.append(dm.on_after_batch_transfer(batch, 0)["lq"])
    assert not torch.equal(results[0], batch["hq"])
    assert torch.equal(results[0], results[1])


# ------------------------------------------------------------------------------------------ BasicSR's way


def test_diff_jpeg_equals_basicsrs_diffjpeg_pinned():
    """Values of BasicSR's DiffJPEG(differentiable=False) (XPixelGroup/BasicSR 8d56e3a) on this input: a
    size that is no multiple of 16 (zero padding) and fractional qualities (no rounding of the tables)."""
    g = torch.Generator().manual_seed(7)
    coarse = torch.rand(2, 3, 5, 6, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(20, 24), mode="bicubic", align_corners=False).clamp(0, 1)
    out = ops.diff_jpeg(x, torch.tensor([37.5, 81.0]))
    assert out.mean(dim=(1, 2, 3)).tolist() == pytest.approx([0.5223866105079651, 0.44643041491508484], abs=1e-6)
    points = [(0, 0, 0, 0), (0, 1, 19, 23), (1, 2, 7, 8), (1, 0, 12, 17), (0, 2, 16, 3)]
    assert [float(out[p]) for p in points] == pytest.approx(
        [0.4711904, 0.6781023, 0.9867203, 0.7015631, 0.4020663], abs=1e-6
    )
    assert (ops.jpeg(x, torch.tensor([37.5, 81.0])) - out).abs().max() > 0.05  # the real-encoder op differs


def test_plateau_beta_is_one_half_the_time_as_basicsr_draws_it():
    def betas(draw: str) -> list[float]:
        g = torch.Generator().manual_seed(0)
        return [
            random_mixed_kernel(g, ("plateau_iso",), (1.0,), sinc_prob=0.0, betap_range=(1.0, 2.0), beta_draw=draw)[1][
                "beta"
            ]
            for _ in range(400)
        ]

    basicsr = betas("basicsr")
    assert 0.4 < sum(b == 1.0 for b in basicsr) / len(basicsr) < 0.6  # U(1, 1) on heads
    assert all(1.0 <= b <= 2.0 for b in basicsr)
    assert not any(b == 1.0 for b in betas("range"))


def _batch(n: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.interpolate(torch.rand(n, 3, 12, 12, generator=g), size=(96, 96), mode="bilinear")


@pytest.mark.parametrize("draws", ["batch", "sample"])
def test_noise_kind_blur_coin_and_final_order_per_batch_or_per_sample(draws):
    pipeline = RealESRGAN(RealESRGANOptions(draws=draws))
    mixed = False
    for seed in range(3):
        _, params = _degrade(_batch(), seed, pipeline)
        values = {
            "noise1": {p["noise1"]["kind"] for p in params},
            "noise2": {p["noise2"]["kind"] for p in params},
            "blur2": {p["blur2"] for p in params},
            "final_order": {p["final_order"] for p in params},
        }
        mixed |= any(len(v) > 1 for v in values.values())
    assert mixed == (draws == "sample")


def test_shared_grey_gaussian_field_in_batch_mode():
    from restorezoo.data.degrade.realesrgan import _Draw, _gaussian_noise

    x = torch.zeros(3, 3, 8, 8)
    gray = torch.tensor([True, False, True]).view(3, 1, 1, 1)
    sigma = torch.tensor([10.0, 10.0, 20.0])
    noise = _gaussian_noise(x, sigma, gray, _Draw(torch.Generator().manual_seed(0), x.device), shared_gray=True)
    assert torch.allclose(noise[2], 2 * noise[0])  # one field, scaled by each row's sigma
    assert torch.equal(noise[0, 0], noise[0, 2]) and not torch.equal(noise[1, 0], noise[1, 2])
    per_sample = _gaussian_noise(x, sigma, gray, _Draw(torch.Generator().manual_seed(0), x.device), False)
    assert not torch.allclose(per_sample[2], 2 * per_sample[0])


def test_stage2_resizes_relative_to_the_lq_size_at_x4(monkeypatch):
    seen: list[tuple[int, int]] = []
    noise = RealESRGAN._noise

    def record(x, *args, **kwargs):
        seen.append(tuple(x.shape[-2:]))
        return noise(x, *args, **kwargs)

    monkeypatch.setattr(RealESRGAN, "_noise", staticmethod(record))
    for size_mode, base in (("lq", 32), ("hq", 128)):
        seen.clear()
        hq = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
        _, params = _degrade(hq, 2, RealESRGAN(RealESRGANOptions(stage2_size=size_mode), scale=4))
        s2 = params[0]["resize2"]["scale"]
        assert abs(seen[1][0] - base * s2) <= 1, (size_mode, seen, s2)


def test_the_lq_degrades_the_usm_sharpened_hq(astronaut):
    hq = astronaut[None].repeat(2, 1, 1, 1)
    sharpened, _ = _degrade(hq, 8, RealESRGAN(RealESRGANOptions(degrade_usm=True)))
    plain_of_usm, _ = _degrade(usm_sharpen(hq), 8, RealESRGAN(RealESRGANOptions(degrade_usm=False)))
    plain, _ = _degrade(hq, 8, RealESRGAN(RealESRGANOptions(degrade_usm=False)))
    assert torch.equal(sharpened, plain_of_usm) and not torch.equal(sharpened, plain)


def test_a_misspelt_option_is_one_clear_error():
    with pytest.raises(ValueError, match=r"RealESRGANOptions\.draws must be one of"):
        RealESRGANOptions(draws="per_sample")
