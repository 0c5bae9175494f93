"""mini-clip, the packaged miniature CLIP: it loads frozen, and its embeddings carry the degradation."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from restorezoo.encoders import clip as clip_module
from restorezoo.errors import RestoreZooError, WeightsNotFoundError
from restorezoo.models.diffrestorer import build_clip_image_encoder
from tests.conftest import REPO


def _trainer():
    """benchmarks/train_mini_clip.py, for its held-out probe (the figure its training.md reports)."""
    spec = importlib.util.spec_from_file_location("train_mini_clip", REPO / "benchmarks" / "train_mini_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mini_clip_is_packaged_small_and_loads_as_a_frozen_image_tower():
    from open_clip.modified_resnet import ModifiedResNet

    assert clip_module.MINI_CLIP_FILE.stat().st_size <= 5 * 2**20
    tower = build_clip_image_encoder("mini-clip")
    assert isinstance(tower, ModifiedResNet) and not tower.training
    assert not any(p.requires_grad for p in tower.parameters())
    assert tower.output_dim == 64 and tower.image_size == 64
    embedding = tower(torch.rand(2, 3, 64, 64))
    assert embedding.shape == (2, 64) and torch.isfinite(embedding).all()


def test_mini_clip_embeddings_tell_held_out_degradations_apart_where_a_random_tower_cannot():
    trainer = _trainer()
    trained = trainer.probe_accuracy(clip_module.mini_clip())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        untrained, _ = clip_module.mini_clip_architecture()
    random = trainer.probe_accuracy(untrained.visual.eval())
    # measured: see restorezoo/assets/mini-clip/training.md (the trained figure) and its step-0 row
    assert trained >= 0.6, trained
    assert trained >= random + 0.2, (trained, random)


def test_missing_mini_clip_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(clip_module, "MINI_CLIP_FILE", tmp_path / "absent.safetensors")
    with pytest.raises(WeightsNotFoundError, match="train_mini_clip.py") as error:
        clip_module.mini_clip()
    assert "\n" not in str(error.value)


def test_mini_clip_loads_a_tower_of_any_trained_input_size_and_width(monkeypatch, tmp_path):
    """``train_mini_clip.py --image-size 96 --width 16`` writes a 96², width-16 tower; the loader reads both
    off its weights."""
    from safetensors.torch import save_file

    clip, _ = clip_module.mini_clip_architecture(96, width=16)
    save_file({k: v.contiguous() for k, v in clip.visual.state_dict().items()}, str(tmp_path / "tower.safetensors"))
    monkeypatch.setattr(clip_module, "MINI_CLIP_FILE", tmp_path / "tower.safetensors")
    tower = clip_module.mini_clip()
    assert tower.image_size == 96 and tower.conv3.out_channels == 16
    image = torch.rand(1, 3, 96, 96)
    assert torch.equal(tower(image), clip.visual.eval()(image))
    with pytest.raises(RestoreZooError, match="multiple of 32"):
        clip_module.mini_clip_architecture(80)
