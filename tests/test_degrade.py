"""Specifications of the degradation ops and the seeded pipelines built on them."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

from restorezoo.data.degrade import (
    DEGRADATIONS,
    JPEG,
    BicubicSR,
    Blur,
    Compose,
    Degradation,
    GaussianNoise,
    Identity,
    RandomChoice,
    add_gaussian_noise,
    bicubic_down_up,
    build_degradation,
    gaussian_blur,
    haze,
    jpeg,
    low_light,
    motion_blur,
    rain_streaks,
)
from restorezoo.data.degrade.ops import haze_depth, motion_kernels


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(F.mse_loss(a.double(), b.double())))


def _high_freq_energy(x: torch.Tensor) -> float:
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    return float(F.conv2d(x.float(), lap, groups=x.shape[1]).pow(2).mean())


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """A 2×3×64×64 stand-in for photos: smooth colour gradients, texture and sharp edges."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    r = 0.3 + 0.4 * xx + 0.1 * torch.sin(12 * yy)
    g = 0.5 + 0.25 * torch.cos(9 * xx * yy) - 0.2 * yy
    b = 0.4 + 0.3 * ((xx * 8).floor() % 2) * ((yy * 8).floor() % 2)
    one = torch.stack([r, g, b]).clamp(0, 1)
    two = one.flip(-1).roll(17, dims=-2)
    return torch.stack([one, two])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


OPS = {
    "noise": lambda x: add_gaussian_noise(x, 25, _gen(0)),
    "gaussian_blur": lambda x: gaussian_blur(x, [1.0, 2.5]),
    "motion_blur": lambda x: motion_blur(x, [7, 15], [0, 45]),
    "low_light": lambda x: low_light(x, 0.3, 1.5, 3.0, _gen(0)),
    "haze": lambda x: haze(x, 1.5, 0.9),
    "rain": lambda x: rain_streaks(x, 0.01, 15, 90, 0.8, _gen(0)),
    "jpeg": lambda x: jpeg(x, [20, 60]),
    "bicubic": lambda x: bicubic_down_up(x, [2, 3]),
}


# --------------------------------------------------------------------------------------------------
# ops


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_op_keeps_shape_dtype_device_and_range(image: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    x = image.to(dtype)
    y = OPS[name](x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.equal(y, x), "the op should change the image"


@pytest.mark.parametrize("sigma", [15.0, 25.0])
def test_noise_std_matches_sigma_on_flat_gray(sigma: float) -> None:
    gray = torch.full((2, 3, 96, 96), 0.5)
    noisy = add_gaussian_noise(gray, sigma, _gen(1))
    assert (noisy - gray).std().item() == pytest.approx(sigma / 255, rel=0.03)
    assert (noisy - gray).mean().abs().item() < 0.003


def test_per_sample_parameters_apply_to_their_own_sample(image: torch.Tensor) -> None:
    out = add_gaussian_noise(image, [0.0, 25.0], _gen(0))
    assert torch.equal(out[0], image[0])
    assert not torch.equal(out[1], image[1])


def test_blur_lowers_high_frequencies_and_more_sigma_blurs_more(image: torch.Tensor) -> None:
    energies = [_high_freq_energy(gaussian_blur(image, s)) for s in (0.0, 1.0, 2.5)]
    assert energies[0] == pytest.approx(_high_freq_energy(image))
    assert energies[0] > energies[1] > energies[2]


def test_the_batched_isotropic_kernels_are_the_bivariate_gaussian_with_equal_sigmas() -> None:
    """``kernels.gaussian_kernels`` (blur, USM) is ``gaussian_kernel(k, σ)`` batched, to float32 rounding."""
    from restorezoo.data.degrade.kernels import gaussian_kernel, gaussian_kernels

    sigmas = [0.0, 0.19, 0.3, 0.5, 1.0, 2.5, 8.0]
    for size in (3, 7, 21, 51):
        batched = gaussian_kernels(torch.tensor(sigmas), size)
        expected = torch.stack([gaussian_kernel(size, s) for s in sigmas])
        assert torch.allclose(batched, expected, rtol=0, atol=3e-7), size


@pytest.mark.parametrize(("length", "angle"), [(5, 0), (9, 30), (15, 90), (21, 137.5), (1, 0)])
def test_motion_kernel_sums_to_one(length: float, angle: float) -> None:
    k = motion_kernels(torch.tensor([float(length)]), torch.tensor([float(angle)]), 23)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(k.min()) >= 0


def test_horizontal_motion_kernel_is_a_centred_row_of_the_given_length() -> None:
    k = motion_kernels(torch.tensor([7.0]), torch.tensor([0.0]), 11)[0]
    assert torch.count_nonzero(k[5]) == 7 and float(k[5].sum()) == pytest.approx(1.0)
    assert float(k.sum()) == pytest.approx(float(k[5].sum()))


def test_longer_motion_blurs_more(image: torch.Tensor) -> None:
    short, long = (_high_freq_energy(motion_blur(image, n, 30)) for n in (5, 21))
    assert _high_freq_energy(image) > short > long


def test_low_light_darkens(image: torch.Tensor) -> None:
    dark = low_light(image, 0.3, 1.6, 3.0, _gen(0))
    assert dark.mean() < 0.5 * image.mean()
    assert float(dark.mean()) < 0.2


def test_haze_brightens_and_lowers_contrast(image: torch.Tensor) -> None:
    hazy = haze(image, 1.5, 0.95)
    assert hazy.mean() > image.mean()
    assert hazy.std(dim=(1, 2, 3)).lt(image.std(dim=(1, 2, 3))).all()
    depth = haze_depth(image)
    assert depth.shape == (2, 1, 64, 64) and float(depth.min()) >= 0 and float(depth.max()) <= 1


def test_haze_uses_a_given_depth_map(image: torch.Tensor) -> None:
    near = haze(image, 2.0, 1.0, depth=torch.zeros(2, 64, 64))
    assert torch.allclose(near, image, atol=1e-6)


def test_rain_adds_bright_thin_vertical_streaks() -> None:
    black = torch.zeros(1, 3, 96, 96)
    rainy = rain_streaks(black, 0.005, 20, 90, 1.0, _gen(2))
    covered = float((rainy > 0.05).float().mean())
    assert 0.005 < covered < 0.4, "streaks should be visible but sparse"
    vertical_change = (rainy[..., 1:, :] - rainy[..., :-1, :]).abs().mean()
    horizontal_change = (rainy[..., :, 1:] - rainy[..., :, :-1]).abs().mean()
    assert horizontal_change > 3 * vertical_change, "streaks at 90° should run down the image"


def test_rain_only_brightens(image: torch.Tensor) -> None:
    rainy = rain_streaks(image, 0.01, 15, 80, 0.8, _gen(0))
    assert (rainy >= image - 1e-6).all()
    assert (rainy > image + 0.05).any()


def test_jpeg_tracks_pil_at_quality_30() -> None:
    skdata = pytest.importorskip("skimage.data")
    pil_image = pytest.importorskip("PIL.Image")
    rgb = skdata.astronaut()
    buffer = io.BytesIO()
    pil_image.fromarray(rgb).save(buffer, format="JPEG", quality=30)
    decoded = pil_image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    reference = torch.frombuffer(bytearray(decoded.tobytes()), dtype=torch.uint8).view(
        x.shape[2], x.shape[3], 3
    )
    reference = reference.permute(2, 0, 1)[None].float() / 255
    ours = jpeg(x, 30)
    assert abs(_psnr(ours, x) - _psnr(reference, x)) < 1.0
    assert _psnr(ours, reference) > 40, "our decode should nearly match PIL's pixel for pixel"


def test_jpeg_lower_quality_loses_more_and_odd_sizes_survive(image: torch.Tensor) -> None:
    x = image[..., :53, :41]
    low, high = _psnr(jpeg(x, 10), x), _psnr(jpeg(x, 80), x)
    assert low < high
    assert jpeg(x, 10).shape == x.shape
    # output lies on the 8-bit grid, as a decoded file does
    y = jpeg(x, 50) * 255
    assert torch.allclose(y, y.round(), atol=1e-4)


def test_bicubic_scale_4_loses_more_than_scale_2(image: torch.Tensor) -> None:
    assert _psnr(bicubic_down_up(image, 4), image) < _psnr(bicubic_down_up(image, 2), image)
    assert torch.allclose(bicubic_down_up(image, 1), image)


@pytest.mark.parametrize("name", ["noise", "low_light", "rain"])
def test_seeded_ops_are_reproducible(image: torch.Tensor, name: str) -> None:
    calls = {
        "noise": lambda g: add_gaussian_noise(image, 25, g),
        "low_light": lambda g: low_light(image, 0.3, 1.5, 5.0, g),
        "rain": lambda g: rain_streaks(image, 0.01, 15, 90, 0.8, g),
    }
    run = calls[name]
    assert torch.equal(run(_gen(7)), run(_gen(7)))
    assert not torch.equal(run(_gen(7)), run(_gen(8)))


def test_per_sample_generators_make_a_sample_independent_of_its_batch(image: torch.Tensor) -> None:
    both = add_gaussian_noise(image, 25, [_gen(3), _gen(4)])
    alone = add_gaussian_noise(image[1:], 25, [_gen(4)])
    assert torch.equal(both[1:], alone)


# --------------------------------------------------------------------------------------------------
# pipelines

PIPELINES = {
    **{name: name for name in DEGRADATIONS if name not in ("compose", "random_choice")},
    "compose": ["blur", "noise", {"name": "jpeg", "quality": [20, 40]}],
    "random_choice": {"name": "random_choice", "options": ["noise", "rain", "clean"], "weights": [2, 1, 1]},
    "alias": "denoise",
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_apply_reproduces_call_and_params_survive_json(image: torch.Tensor, name: str) -> None:
    degradation = build_degradation(PIPELINES[name])
    batch = image.repeat(2, 1, 1, 1)
    out, params = degradation(batch, _gen(0))
    assert out.shape == batch.shape and len(params) == 4
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert all("task" in p for p in params)
    reloaded = json.loads(json.dumps(params))
    assert reloaded == params
    assert torch.equal(degradation.apply(batch, reloaded), out)


@pytest.mark.parametrize("name", ["noise", "blur", "lowlight", "haze", "rain", "jpeg", "sr"])
def test_same_seed_same_output_different_seed_different(image: torch.Tensor, name: str) -> None:
    degradation = build_degradation(name)
    a, pa = degradation(image, _gen(11))
    b, pb = degradation(image, _gen(11))
    assert pa == pb and torch.equal(a, b)
    outputs = [degradation(image, _gen(seed))[0] for seed in (12, 13, 14)]
    assert any(not torch.equal(a, o) for o in outputs)


def test_params_record_the_task_and_values_used(image: torch.Tensor) -> None:
    _, params = GaussianNoise(sigmas=(25,))(image, _gen(0))
    assert params[0]["task"] == "noise" and params[0]["sigma"] == 25.0 and isinstance(params[0]["seed"], int)
    _, params = JPEG(quality=(30, 30))(image, _gen(0))
    assert params == [{"task": "jpeg", "quality": 30}] * 2
    _, params = BicubicSR(scales=(3,))(image, _gen(0))
    assert params[0] == {"task": "sr", "scale": 3}
    _, params = GaussianNoise(sigma_range=(5, 10))(image, _gen(0))
    assert all(5 <= p["sigma"] <= 10 for p in params)


def test_identity_is_clean(image: torch.Tensor) -> None:
    out, params = Identity()(image)
    assert torch.equal(out, image) and params == [{"task": "clean"}] * 2


def test_compose_joins_tasks_and_nests_each_steps_params(image: torch.Tensor) -> None:
    composed = Compose([build_degradation("gaussian_blur"), GaussianNoise(), GaussianNoise(), Identity()])
    out, params = composed(image, _gen(0))
    p = params[0]
    assert p["task"] == "blur+noise+noise"
    assert p["blur"]["kind"] == "gaussian" and p["noise"]["task"] == "noise" and "noise_2" in p
    assert p["clean"] == {"task": "clean"}
    by_hand = composed.steps[0].apply(image, [q["blur"] for q in params])
    by_hand = composed.steps[1].apply(by_hand, [q["noise"] for q in params])
    by_hand = composed.steps[2].apply(by_hand, [q["noise_2"] for q in params])
    assert torch.equal(out, by_hand)


def test_random_choice_follows_weights_and_keeps_samples_independent(image: torch.Tensor) -> None:
    choice = RandomChoice([Identity(), GaussianNoise()], weights=[0.0, 1.0])
    _, params = choice(image.repeat(4, 1, 1, 1), _gen(0))
    assert {p["task"] for p in params} == {"noise"}
    mixed = RandomChoice([Identity(), GaussianNoise(), JPEG()])
    batch = image.repeat(4, 1, 1, 1)
    out, params = mixed(batch, _gen(5))
    for i in range(len(params)):
        assert torch.equal(mixed.apply(batch[i : i + 1], params[i : i + 1]), out[i : i + 1])


def test_blur_draws_both_kinds(image: torch.Tensor) -> None:
    _, params = Blur()(image.repeat(16, 1, 1, 1), _gen(0))
    assert {p["kind"] for p in params} == {"gaussian", "motion"}
    assert {p["task"] for p in params} == {"blur"}
    _, params = Blur(motion_prob=1.0)(image, _gen(0))
    assert {p["kind"] for p in params} == {"motion"}


def test_apply_is_device_and_dtype_agnostic(image: torch.Tensor) -> None:
    degradation = build_degradation(["blur", "noise"])
    out, params = degradation(image, _gen(0))
    again = degradation.apply(image.double(), params)
    assert again.dtype == torch.float64
    assert torch.allclose(again.float(), out, atol=1e-5)


def test_build_degradation_accepts_names_dicts_lists_and_instances() -> None:
    assert isinstance(build_degradation("noise"), GaussianNoise)
    assert isinstance(build_degradation("Low-Light"), DEGRADATIONS["lowlight"])
    assert build_degradation({"name": "noise", "sigmas": [50]}).sigmas == (50.0,)
    assert isinstance(build_degradation(["noise", "jpeg"]), Compose)
    noise = GaussianNoise()
    assert build_degradation(noise) is noise
    assert isinstance(build_degradation({"name": "compose", "steps": ["haze", "rain"]}), Compose)


@pytest.mark.parametrize(
    "spec", ["fog", {"name": "fog"}, {"sigmas": [15]}, {"name": "noise", "sigmaz": 3}, 3.5, "enhancement"]
)
def test_build_degradation_fails_clearly(spec: object) -> None:
    with pytest.raises(ValueError) as err:
        build_degradation(spec)  # type: ignore[arg-type]
    message = str(err.value)
    assert "noise" in message or "sigmaz" in message


def test_unknown_name_error_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: .*haze.*jpeg.*noise.*rain.*sr"):
        build_degradation("fog")


def test_every_registered_class_is_a_degradation_with_a_task() -> None:
    tasks = {"noise", "blur", "rain", "haze", "lowlight", "sr", "jpeg", "clean", "snow", "raindrop", "parameterized",
             "realesrgan"}
    for name, cls in DEGRADATIONS.items():
        assert issubclass(cls, Degradation)
        if name not in ("compose", "random_choice"):
            assert build_degradation(name).task in tasks


def test_default_ranges_are_visible_but_restorable(image: torch.Tensor) -> None:
    """Degraded inputs should be clearly worse than clean, yet keep the content (quickstart needs both)."""
    batch = image.repeat(4, 1, 1, 1)
    for name in ("noise", "blur", "rain", "haze", "jpeg", "sr"):
        out, _ = build_degradation(name)(batch, _gen(0))
        psnr = _psnr(out, batch)
        assert 12 < psnr < 40, (name, psnr)
    dark, _ = build_degradation("lowlight")(batch, _gen(0))
    assert float(dark.mean()) < 0.5 * float(batch.mean())
    assert not math.isnan(_psnr(dark, batch))
