"""Every CLIP restorezoo builds has the activation its weights were trained with (OpenAI: QuickGELU).

The pairs come from the code and configs themselves (metric defaults, model defaults, YAML), so a new
(architecture, tag) is checked without editing this file. Models are built on the meta device.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import open_clip
import pytest
import yaml

from restorezoo.encoders import clip as clip_mod
from restorezoo.encoders.clip import clip_activation, trained_with_quick_gelu
from restorezoo.metrics import learned

ROOT = Path(__file__).resolve().parents[1]


def _defaults(fn, arch: str, tag: str) -> tuple[str, str]:
    params = inspect.signature(fn).parameters
    return params[arch].default, params[tag].default


def _yaml_pairs() -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for arch_key, tag_key in (("model_name", "pretrained"), ("clip_model", "clip_pretrained")):
                arch, tag = node.get(arch_key), node.get(tag_key)
                if isinstance(arch, str) and isinstance(tag, str) and open_clip.get_pretrained_cfg(arch, tag):
                    pairs.add((arch, tag))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return pairs


def used_pairs() -> list[tuple[str, str, str]]:
    """(who, architecture, open_clip tag) for every pretrained CLIP restorezoo builds by default."""
    from restorezoo.models.daclip import DACLIP
    from restorezoo.models.diffrestorer import DiffRestorer, build_clip_image_encoder

    found = {(f"metric {name}", *pair) for name, pair in learned.OPEN_CLIP_METRICS.items()}
    found.add(("DA-CLIP", *_defaults(DACLIP.__init__, "model_name", "pretrained")))
    found.add(("Diff-Restorer", *_defaults(DiffRestorer.__init__, "clip_model", "clip_pretrained")))
    found.add(("Diff-Restorer encoder", *_defaults(build_clip_image_encoder, "model_name", "pretrained")))
    found |= {("config", *pair) for pair in _yaml_pairs()}
    return sorted(found)


PAIRS = used_pairs()


def test_the_known_pairs_are_collected() -> None:
    pairs = {(arch, tag) for _, arch, tag in PAIRS}
    assert {("ViT-L-14", "openai"), ("ViT-B-32", "laion2b_s34b_b79k")} <= pairs


@pytest.fixture
def meta_weights(monkeypatch):
    """load_clip as the models call it, with a local 'file' of the architecture's own (meta) tensors."""
    built: dict[str, object] = {}
    real = clip_mod.create_clip

    def create(model_name, pretrained=None, quick_gelu=None, device="cpu"):
        built["model"] = real(model_name, pretrained, quick_gelu, device="meta")
        return built["model"]

    monkeypatch.setattr(clip_mod, "create_clip", create)
    monkeypatch.setattr(clip_mod, "_find_local_weights", lambda *args: Path("open_clip_model.safetensors"))
    monkeypatch.setattr(clip_mod, "load_state_dict", lambda path: dict(built["model"].state_dict()))


@pytest.mark.parametrize(("who", "arch", "tag"), PAIRS)
def test_clip_has_the_activation_of_its_pretrained_config(who, arch, tag, meta_weights) -> None:
    expected = "quick_gelu" if open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False) else "gelu"
    if who.startswith("metric"):
        model = learned._open_clip_model(arch, tag, "meta")
    elif who.startswith("Diff-Restorer"):
        from restorezoo.models.diffrestorer import build_clip_image_encoder

        model = build_clip_image_encoder(arch, tag)
    else:  # DA-CLIP and the configs build through load_clip
        model = clip_mod.load_clip(arch, tag)
    assert clip_activation(model) == expected, f"{who}: {arch}/{tag}"


def test_openai_weights_mean_quick_gelu_and_a_local_file_can_say_so() -> None:
    assert trained_with_quick_gelu("ViT-L-14", "openai")
    assert not trained_with_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")
    assert trained_with_quick_gelu("ViT-L-14-quickgelu", "/weights/openai-vit-l-14.bin")
    assert clip_activation(clip_mod.create_clip("ViT-B-32", "laion2b_s34b_b79k", quick_gelu=True, device="meta")) == (
        "quick_gelu"
    )
