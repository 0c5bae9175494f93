"""Snow and raindrop synthesis, Diff-Restorer's named mixtures, and the cross-paper task vocabulary."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from restorezoo.data.degrade import (
    DEGRADATIONS,
    MIXTURES,
    Raindrop,
    Snow,
    build_degradation,
    raindrop,
    snow,
)
from restorezoo.data.prompts import (
    DACLIP_DEGRADATIONS,
    DIFFRESTORER_CLASSES,
    INSTRUCTIR_TASKS,
    SPIRE_BLIND_PROMPT,
    TASK_VOCABULARY,
    canonical_task,
    daclip_caption,
    from_daclip_word,
    from_diffrestorer_class,
    to_daclip_word,
    to_diffrestorer_class,
    to_instructir_intent,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture()
def image() -> torch.Tensor:
    """Mid-grey with fine random texture, so blur inside drops is measurable."""
    g = _gen(0)
    return (0.35 + 0.3 * torch.rand(1, 3, 64, 64, generator=g)).clamp(0, 1)


def _laplacian_sq(x: torch.Tensor) -> torch.Tensor:
    lap = (
        torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    )
    return F.conv2d(x, lap, groups=3, padding=1).pow(2).mean(1, keepdim=True)


# --------------------------------------------------------------------------------------------------
# snow


def test_snow_adds_local_bright_flakes_and_only_brightens_without_veil(image: torch.Tensor) -> None:
    out = snow(image, 0.005, 1.2, 6.0, 90.0, 1.0, 0.0, _gen(1))
    diff = out - image
    assert float(diff.min()) > -1e-6  # screen blending never darkens
    changed = (diff.abs().amax(1) > 0.2).float().mean()
    untouched = (diff.abs().amax(1) < 1e-3).float().mean()
    assert 0.005 < float(changed) < 0.5
    assert float(untouched) > 0.2


def test_snow_veil_lifts_the_whole_image(image: torch.Tensor) -> None:
    clear = snow(image, 0.0, 1.0, 5.0, 90.0, 1.0, 0.0, _gen(1))
    veiled = snow(image, 0.0, 1.0, 5.0, 90.0, 1.0, 0.3, _gen(1))
    assert torch.allclose(clear, image, atol=1e-6)
    assert float((veiled - image).mean()) > 0.1


@pytest.mark.parametrize("cls", [Snow, Raindrop])
def test_weather_is_seeded_bounded_and_json_replayable(image: torch.Tensor, cls: type) -> None:
    deg = cls()
    batch = image.repeat(3, 1, 1, 1)
    a, pa = deg(batch, _gen(2))
    b, pb = deg(batch, _gen(2))
    assert pa == pb and torch.equal(a, b)
    c, _ = deg(batch, _gen(3))
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1 and a.shape == batch.shape
    assert all(p["task"] == deg.task and isinstance(p["seed"], int) for p in pa)
    assert torch.equal(deg.apply(batch, json.loads(json.dumps(pa))), a)
    # a sample's look does not depend on its batch-mates
    assert torch.allclose(deg.apply(batch[2:], pa[2:]), a[2:], atol=1e-5)


def test_weather_registered_under_task_names() -> None:
    assert DEGRADATIONS["snow"] is Snow and DEGRADATIONS["raindrop"] is Raindrop
    assert build_degradation("snowy").task == "snow"
    assert build_degradation({"name": "raindrop", "count": [3, 5]}).count == (3, 5)


# --------------------------------------------------------------------------------------------------
# raindrop


def test_raindrop_changes_only_the_drops_and_blurs_inside_them(image: torch.Tensor) -> None:
    out, mask = raindrop(image, 12, 0.08, 3.0, _gen(4), return_mask=True)
    inside, outside = mask[:, 0] >= 1, mask[:, 0] <= 0
    assert 0.03 < float(inside.float().mean()) < 0.7
    diff = (out - image).abs().amax(1)
    assert float(diff[outside].max()) < 0.05  # at most a faint rim just outside a drop
    assert float(diff[inside].mean()) > 0.05
    # compare high frequencies away from drop borders and the glint
    core = F.max_pool2d(-mask, 5, 1, 2)[:, 0] <= -1
    assert float(_laplacian_sq(out)[:, 0][core].mean()) < 0.25 * float(
        _laplacian_sq(image)[:, 0][core].mean()
    )


def test_raindrop_without_drops_is_the_identity(image: torch.Tensor) -> None:
    assert torch.equal(raindrop(image, 0, 0.05, 3.0, _gen(5)), image)


# --------------------------------------------------------------------------------------------------
# mixtures


@pytest.mark.parametrize("name", ["noise+blur", "snow+noise", "raindrop+noise+blur", "jpeg+noise+blur"])
def test_mixtures_build_and_carry_their_name(image: torch.Tensor, name: str) -> None:
    assert name in MIXTURES
    deg = build_degradation(name)
    assert deg.task == name and build_degradation({"name": name}).task == name
    batch = image.repeat(2, 1, 1, 1)
    out, params = deg(batch, _gen(6))
    assert all(p["task"] == name for p in params)
    assert set(name.split("+")) <= set(params[0])
    assert params[0]["noise"]["sigma"] == 50
    if "jpeg" in params[0]:
        assert params[0]["jpeg"]["quality"] == 10
    assert torch.equal(deg.apply(batch, json.loads(json.dumps(params))), out)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


# --------------------------------------------------------------------------------------------------
# vocabularies


def test_every_daclip_word_maps_back_to_a_canonical_task() -> None:
    assert len(DACLIP_DEGRADATIONS) == 10 and DACLIP_DEGRADATIONS[0] == "motion-blurry"
    for word in DACLIP_DEGRADATIONS:
        task = from_daclip_word(word)
        assert canonical_task(task) == task and to_daclip_word(task) == word
        assert canonical_task(word) == task  # the words are also accepted as aliases


def test_every_diffrestorer_class_maps_back_to_a_canonical_task() -> None:
    assert DIFFRESTORER_CLASSES == ("noise", "lowlight", "haze", "rain", "raindrop", "snow", "blur", "jpeg")
    for index, task in enumerate(DIFFRESTORER_CLASSES):
        assert from_diffrestorer_class(index) == task
        assert canonical_task(task) == task and to_diffrestorer_class(task) == index
    with pytest.raises(ValueError, match="class index"):
        from_diffrestorer_class(8)


def test_vocabulary_table_is_consistent_with_each_papers_order() -> None:
    for task, names in TASK_VOCABULARY.items():
        assert canonical_task(task) == task
        if names.instructir is not None:
            assert INSTRUCTIR_TASKS[names.instructir] == task
        if names.diffrestorer is not None:
            assert DIFFRESTORER_CLASSES[names.diffrestorer] == task
    for task in INSTRUCTIR_TASKS:
        assert to_instructir_intent(task) == INSTRUCTIR_TASKS.index(task)
    assert {n.daclip for n in TASK_VOCABULARY.values()} - {None} == set(DACLIP_DEGRADATIONS)


def test_unmapped_mixed_and_unknown_tasks() -> None:
    assert to_daclip_word("sr") is None and to_instructir_intent("snow") is None
    assert to_diffrestorer_class("parameterized") is None
    assert to_daclip_word("Low-Light") == "low-light"
    assert to_daclip_word("noise+blur") == ["noisy", "motion-blurry"]
    assert to_diffrestorer_class("raindrop+noise+blur") == [4, 0, 6]
    assert to_instructir_intent("jpeg+noise+blur") == [None, 0, 1]
    with pytest.raises(ValueError, match="unknown task 'fog-of-war'"):
        to_daclip_word("fog-of-war")
    with pytest.raises(ValueError, match="no vocabulary entry"):
        to_daclip_word("clean")
    with pytest.raises(ValueError, match="unknown DA-CLIP degradation word"):
        from_daclip_word("foggy")


def test_daclip_caption_and_spire_blind_prompt() -> None:
    assert daclip_caption("a dog on a beach", "rainy") == "a dog on a beach: rainy"
    assert daclip_caption("", "snowy") == "snowy"
    with pytest.raises(ValueError, match="unknown DA-CLIP degradation word"):
        daclip_caption("a dog", "rain")
    assert SPIRE_BLIND_PROMPT == "Remove all degradation"
