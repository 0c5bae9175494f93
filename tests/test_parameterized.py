"""SPIRE's parameterized pipeline: stage sampling, what each stage does, and prompts that round-trip."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from restorezoo.data.degrade import (
    DEGRADATIONS,
    STAGES,
    Parameterized,
    build_degradation,
    parse_restoration_prompt,
    restoration_prompt,
)
from restorezoo.data.degrade.parameterized import LEGACY_ORDER


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _texture(seed: int = 0, size: int = 64) -> torch.Tensor:
    """A smooth colour image with some fine detail: gradients plus mildly blurred noise."""
    g = _gen(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([0.5 + 0.3 * torch.sin(6 * xx + k) * torch.cos(5 * yy - k) for k in range(3)])
    detail = F.avg_pool2d(torch.rand(1, 3, size, size, generator=g), 3, 1, 1)[0] - 0.5
    return (base + 0.3 * detail).clamp(0, 1).unsqueeze(0)


def _high_freq(x: torch.Tensor) -> float:
    """Mean squared Laplacian: the energy a blur removes."""
    lap = (
        torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    )
    return float(F.conv2d(x, lap, groups=3).pow(2).mean())


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float((a - b).pow(2).mean()))


def _apply_one(stage: dict, image: torch.Tensor) -> torch.Tensor:
    params = [{"task": "parameterized", "stages": [stage], "with_values": True, "prompt": ""}]
    return Parameterized().apply(image, params)


def test_registered_and_built_by_name() -> None:
    assert DEGRADATIONS["parameterized"] is Parameterized
    assert isinstance(build_degradation("parameterized"), Parameterized)
    assert isinstance(build_degradation("spire"), Parameterized)


def test_each_stage_is_skipped_about_half_the_time_and_order_is_fixed() -> None:
    params = Parameterized(allow_clean=True).sample_params(4000, _gen(0))
    for stage in STAGES:
        rate = sum(any(s["stage"] == stage for s in p["stages"]) for p in params) / len(params)
        assert abs(rate - 0.5) < 0.04, (stage, rate)
    empty = sum(not p["stages"] for p in params) / len(params)
    assert abs(empty - 1 / 16) < 0.02
    assert all(p["prompt"] == "" for p in params if not p["stages"])
    for p in params:
        names = [s["stage"] for s in p["stages"]]
        assert names == [s for s in STAGES if s in names]


def test_default_keeps_at_least_one_stage() -> None:
    params = Parameterized().sample_params(2000, _gen(1))
    assert all(p["stages"] for p in params)
    rate = sum(len(p["stages"]) for p in params) / (4 * len(params))
    assert abs(rate - (0.5 + 1 / 64)) < 0.03  # the forced stage adds 1/16 · 1/4 per stage


def test_skip_and_values_probabilities_are_configurable() -> None:
    everything = Parameterized(skip_prob=0.0, values_prob=1.0).sample_params(50, _gen(2))
    assert all([s["stage"] for s in p["stages"]] == list(STAGES) for p in everything)
    assert all(p["with_values"] for p in everything)
    mixed = Parameterized().sample_params(2000, _gen(3))
    rate = sum(p["with_values"] for p in mixed) / len(mixed)
    assert abs(rate - 0.5) < 0.04
    with pytest.raises(ValueError, match="skip_prob"):
        Parameterized(skip_prob=1.5)


def test_stages_restricts_the_pipeline_and_leaves_the_default_draws_alone() -> None:
    blur_only = Parameterized(stages=["blur"], blur_sigma=(0.3, 3.5), values_prob=1.0).sample_params(400, _gen(5))
    assert all([s["stage"] for s in p["stages"]] == ["blur"] for p in blur_only)
    assert all(p["prompt"] == f"Deblur with sigma {p['stages'][0]['sigma']:.1f};" for p in blur_only)
    two = Parameterized(stages=["noise", "downsample"]).sample_params(2000, _gen(6))
    names = [[s["stage"] for s in p["stages"]] for p in two]
    assert {tuple(n) for n in names} == {("downsample",), ("noise",), ("downsample", "noise")}  # SPIRE's order
    single = sum(len(n) == 1 for n in names) / len(names)
    assert abs(single - 0.75) < 0.04  # one of the two kept (p 0.5), or both skipped (0.25) and one forced
    # all four stages listed (any order) is the default pipeline, draw for draw
    assert Parameterized(stages=list(reversed(STAGES))).sample_params(50, _gen(7)) == \
        Parameterized().sample_params(50, _gen(7))
    for bad in ([], ["blur", "blur"], ["deblur"]):
        with pytest.raises(ValueError, match="stages"):
            Parameterized(stages=bad)


def test_sampled_values_lie_in_the_ranges_at_printed_precision() -> None:
    deg = Parameterized(skip_prob=0.0)
    for p in deg.sample_params(300, _gen(4)):
        down, blur, noise, jpeg = p["stages"]
        assert 0.3 <= blur["sigma"] <= 4.0 and blur["sigma"] == round(blur["sigma"], 1)
        assert 1.5 <= down["scale"] <= 6.0 and down["scale"] == round(down["scale"], 1)
        assert 0.02 <= noise["sigma"] <= 0.25 and noise["sigma"] == round(noise["sigma"], 2)
        assert isinstance(noise["seed"], int)
        assert 20 <= jpeg["quality"] <= 90 and isinstance(jpeg["quality"], int)


def test_stage_order_and_ranges_are_the_papers_examples() -> None:
    """SPIRE writes "Upsample to 6.0x; Deblur with sigma 2.9;" and "Upsample…Deblur…Dejpeg", "deblur…
    denoise…": the stages run (and are written) downsample, blur, noise, JPEG; its example values
    (blur σ 0.3 in Tab. 2, 2.9, 3.0, 3.5; ×6.0; noise 0.06 and 0.24 on [0, 1]) lie in the default ranges."""
    assert STAGES == ("downsample", "blur", "noise", "jpeg")
    deg = Parameterized()
    assert deg.order == STAGES
    for v in (0.3, 2.9, 3.0, 3.5):
        assert deg.blur_sigma[0] <= v <= deg.blur_sigma[1]
    assert deg.scale[0] <= 6.0 <= deg.scale[1]
    for v in (0.06, 0.24):
        assert deg.noise_sigma[0] <= v <= deg.noise_sigma[1]
    stages = [{"stage": "downsample", "scale": 6.0}, {"stage": "blur", "sigma": 2.9}]
    assert restoration_prompt(stages, with_values=True) == "Upsample to 6.0x; Deblur with sigma 2.9;"
    assert restoration_prompt([{"stage": "noise", "sigma": 0.24, "seed": 0}], True) == "Denoise with sigma 0.24;"
    assert restoration_prompt([{"stage": "blur", "sigma": 0.3}], True) == "Deblur with sigma 0.3;"


def test_noise_sigma_is_on_the_unit_scale_and_the_legacy_scale_is_an_option() -> None:
    flat = torch.full((1, 3, 128, 128), 0.5)
    out = _apply_one({"stage": "noise", "sigma": 0.1, "seed": 7}, flat)
    assert abs(float((out - flat).std()) - 0.1) < 0.005
    legacy = Parameterized(order=LEGACY_ORDER, noise_unit="255", noise_sigma=(5.0, 50.0), skip_prob=0.0)
    p = legacy.sample_params(1, _gen(3))[0]
    assert [s["stage"] for s in p["stages"]] == list(LEGACY_ORDER)
    assert p["stages"][2]["unit"] == 255 and 5 <= p["stages"][2]["sigma"] <= 50
    assert restoration_prompt([{"stage": "noise", "sigma": 25.0, "unit": 255}], True) == "Denoise with sigma 25.0;"
    with pytest.raises(ValueError, match="noise_unit"):
        Parameterized(noise_sigma=(5.0, 50.0))


def test_parser_reads_every_form_the_paper_shows() -> None:
    assert parse_restoration_prompt("Upsample to 6.0x; Deblur with sigma 2.9;") == [
        {"stage": "downsample", "scale": 6.0},
        {"stage": "blur", "sigma": 2.9},
    ]
    assert parse_restoration_prompt("Denoise with sigma 0.24") == [{"stage": "noise", "sigma": 0.24}]
    assert parse_restoration_prompt("Deblur with sigma 0.3;") == [{"stage": "blur", "sigma": 0.3}]
    assert parse_restoration_prompt("Upsample…Deblur…Dejpeg") == [
        {"stage": "downsample"}, {"stage": "blur"}, {"stage": "jpeg"}
    ]
    assert parse_restoration_prompt("Upsample… Deblur…") == [{"stage": "downsample"}, {"stage": "blur"}]
    assert parse_restoration_prompt("deblur… denoise…") == [{"stage": "blur"}, {"stage": "noise"}]
    assert parse_restoration_prompt("deblur with sigma 3.0") == [{"stage": "blur", "sigma": 3.0}]
    assert parse_restoration_prompt("Remove all degradation") == []
    # restorezoo's former form still reads
    assert parse_restoration_prompt("Upsample with scale 2.0;") == [{"stage": "downsample", "scale": 2.0}]
    with pytest.raises(ValueError, match="only Upsample"):
        parse_restoration_prompt("Deblur to 3.0x;")


def test_blur_stage_removes_high_frequencies() -> None:
    image = _texture()
    out = _apply_one({"stage": "blur", "sigma": 2.0}, image)
    assert _high_freq(out) < 0.2 * _high_freq(image)


def test_downsample_stage_keeps_the_size_and_loses_detail() -> None:
    image = _texture()
    out = _apply_one({"stage": "downsample", "scale": 3.0}, image)
    assert out.shape == image.shape
    assert _high_freq(out) < 0.5 * _high_freq(image)


def test_noise_stage_std_matches_sigma_on_a_flat_image() -> None:
    flat = torch.full((1, 3, 128, 128), 0.5)
    out = _apply_one({"stage": "noise", "sigma": 0.1, "seed": 7}, flat)
    assert abs(float((out - flat).std()) - 0.1) < 0.05 * 0.1
    assert abs(float((out - flat).mean())) < 2e-3


def test_jpeg_stage_psnr_is_in_a_sensible_band() -> None:
    image = _texture()
    low = _psnr(_apply_one({"stage": "jpeg", "quality": 20}, image), image)
    high = _psnr(_apply_one({"stage": "jpeg", "quality": 90}, image), image)
    assert 22 < low < high < 50


def test_prompt_format_type_only_and_with_values() -> None:
    stages = [
        {"stage": "downsample", "scale": 2.0},
        {"stage": "blur", "sigma": 3.0},
        {"stage": "noise", "sigma": 0.1, "seed": 1},
        {"stage": "jpeg", "quality": 40},
    ]
    assert restoration_prompt(stages, with_values=False) == "Upsample, Deblur, Denoise, Dejpeg"
    assert (
        restoration_prompt(stages, with_values=True)
        == "Upsample to 2.0x; Deblur with sigma 3.0; Denoise with sigma 0.10; Dejpeg with quality 40;"
    )
    assert (
        restoration_prompt([{"stage": "noise", "sigma": 0.1234}], with_values=True)
        == "Denoise with sigma 0.12;"
    )
    assert restoration_prompt([], with_values=True) == ""
    one = {"task": "parameterized", "stages": stages[:1], "with_values": False}
    assert restoration_prompt(one) == "Upsample"
    assert restoration_prompt(one, with_values=True) == "Upsample to 2.0x;"


def test_sampled_prompt_follows_the_recorded_choice() -> None:
    for p in Parameterized().sample_params(200, _gen(5)):
        assert p["prompt"] == restoration_prompt(p["stages"], with_values=p["with_values"])
        assert (";" in p["prompt"]) == p["with_values"]


def test_params_round_trip_through_the_prompt() -> None:
    for p in Parameterized().sample_params(500, _gen(6)):
        parsed = parse_restoration_prompt(restoration_prompt(p, with_values=True))
        expected = [{k: v for k, v in s.items() if k != "seed"} for s in p["stages"]]
        assert parsed == expected
        types = parse_restoration_prompt(restoration_prompt(p, with_values=False))
        assert types == [{"stage": s["stage"]} for s in p["stages"]]


def test_parser_is_lenient_about_case_and_strict_about_words() -> None:
    assert parse_restoration_prompt(" deblur WITH sigma 1.5 ;denoise") == [
        {"stage": "blur", "sigma": 1.5},
        {"stage": "noise"},
    ]
    assert parse_restoration_prompt("") == []
    with pytest.raises(ValueError, match="unknown restoration verb 'Dehaze'"):
        parse_restoration_prompt("Dehaze with beta 1.0;")
    with pytest.raises(ValueError, match="takes 'quality'"):
        parse_restoration_prompt("Dejpeg with sigma 3;")


def test_same_seed_same_result_and_params_survive_json() -> None:
    image = _texture().repeat(4, 1, 1, 1)
    deg = Parameterized()
    a, pa = deg(image, _gen(8))
    b, pb = deg(image, _gen(8))
    assert pa == pb and torch.equal(a, b)
    c, pc = deg(image, _gen(9))
    assert pc != pa and not torch.equal(a, c)
    reloaded = json.loads(json.dumps(pa))
    assert torch.equal(deg.apply(image, reloaded), a)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_a_sample_degrades_the_same_alone_or_in_a_batch() -> None:
    image = _texture().repeat(3, 1, 1, 1)
    deg = Parameterized(skip_prob=0.0)
    out, params = deg(image, _gen(10))
    assert torch.allclose(deg.apply(image[1:2], params[1:2]), out[1:2], atol=1e-6)
