"""Diff-Restorer as published (issue 17): the prompt processor's layers, the ablation switches of Tab. II-V,
and the configs' paper settings (stage-1 512² resize, per-device batch × devices, stage-2 schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from restorezoo.models.diffrestorer import (
    DegradationAwareDecoder,
    DegradationModulationBlock,
    DiffRestorer,
    PromptProcessor,
)
from tests.conftest import REPO
from tests.test_diffrestorer import TINY

CONFIGS = REPO / "configs" / "diffrestorer"


def test_degradation_branch_has_layernorm_and_leakyrelu_and_the_classifier_is_one_layer():
    """"two MLP layers with layer normalization and LeakyReLU activation (except for the last layer)";
    the classifier is "a simple MLP layer"."""
    processor = PromptProcessor(clip_dim=24, context_dim=12, degradation_dim=8, hidden_dim=16, num_classes=5)
    kinds = [type(m) for m in processor.degradation]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.LeakyReLU, nn.Linear]
    assert isinstance(processor.classifier, nn.Linear) and processor.classifier.out_features == 5
    two = PromptProcessor(clip_dim=24, context_dim=12, degradation_dim=8, hidden_dim=16, num_classes=5,
                          classifier_layers=2)
    assert sum(isinstance(m, nn.Linear) for m in two.classifier.modules()) == 2


def test_without_dmb_the_control_features_ignore_p_d():
    torch.manual_seed(0)
    plain = DegradationModulationBlock(8, 8, 4, modulate=False)
    gated = DegradationModulationBlock(8, 8, 4)
    x = torch.randn(1, 8, 6, 6)
    assert torch.equal(plain(x, torch.zeros(1, 4)), plain(x, torch.randn(1, 4)))
    assert not torch.allclose(gated(x, torch.zeros(1, 4)), gated(x, torch.randn(1, 4) * 5))


def test_ablation_switches_reach_the_prompts():
    torch.manual_seed(0)
    lq = torch.rand(2, 3, 16, 16)
    full = DiffRestorer(**TINY)
    p_s, p_d, _ = full.prompts(lq, full.control)
    assert p_s.shape[1] == 1 and float(p_d.detach().abs().sum()) > 0
    no_pd = DiffRestorer(**TINY, degradation_prompt=False)
    assert float(no_pd.prompts(lq, no_pd.control)[1].abs().sum()) == 0  # "w/o P_D": P_D is null
    no_bs = DiffRestorer(**TINY, semantic_branch=False)
    context = no_bs.prompts(lq, no_bs.control)[0]
    assert torch.equal(context, no_bs.sd.encode_text(["", ""]).to(context.dtype))  # "w/o B_s"
    no_dmb = DiffRestorer(**TINY, dmb=False)
    assert all(block.gate is None for block in no_dmb.control.control_encoder.blocks)


def test_decoder_without_drb_has_no_refinement_blocks():
    model = DiffRestorer(**TINY)
    assert len(DegradationAwareDecoder(model.sd.vae, 16).refinement) > 0
    assert len(DegradationAwareDecoder(model.sd.vae, 16, drb=False).refinement) == 0


def _config(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def test_stage1_config_resizes_to_512_and_states_the_global_batch():
    config = _config("stage1.yaml")
    data = config["data"]["init_args"]
    assert data.get("resize") == 512 and data.get("patch_size") is None  # the paper resizes, not crops
    assert config["trainer"]["devices"] * data["batch_size"] == 16  # 2 GPUs × 8 = the paper's batch 16
    model = config["model"]["init_args"]
    assert model["lr"] == 1e-5 and config["trainer"]["max_epochs"] == 100
    assert model.get("classifier_layers", 1) == 1


def test_stage2_config_uses_the_papers_schedule():
    config = _config("decoder.yaml")
    assert config["model"]["init_args"]["lr"] == 1e-5  # "the same as the training of diffusion model"
    assert config["data"]["init_args"]["batch_size"] * config["trainer"]["devices"] == 4
    assert config["trainer"]["max_epochs"] == 25


ABLATIONS = {
    "ablation_wo_semantic.yaml": {"semantic_branch": False},
    "ablation_wo_pd.yaml": {"degradation_prompt": False},
    "ablation_wo_dmb.yaml": {"dmb": False},
    "ablation_wo_dmb_cd.yaml": {"dmb": False, "rec_weight": 0.0},
    "ablation_wo_cd.yaml": {"rec_weight": 0.0},
    "ablation_wo_deg.yaml": {"deg_weight": 0.0},
    "ablation_wo_deg_rec.yaml": {"deg_weight": 0.0, "rec_weight": 0.0},
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_config_sets_its_switch(name: str):
    config = _config(name)
    model = config["model"]["init_args"]
    for key, value in ABLATIONS[name].items():
        assert model[key] == value, (name, key)
    base = _config("stage1.yaml")["model"]["init_args"]
    changed = {k for k in model if model[k] != base.get(k)}
    assert changed == set(ABLATIONS[name]), (name, changed)  # one switch each, nothing else moved


def test_decoder_ablation_config():
    assert _config("decoder_wo_drb.yaml")["model"]["init_args"]["drb"] is False


def test_paper_train_data_lists_the_eight_sources_balanced():
    data = _config("stage1_paper_data.yaml")["data"]["init_args"]
    per_task: dict[str, float] = {}
    for entry, weight in zip(data["train"], data["train_weights"], strict=True):
        per_task[entry["init_args"]["task"]] = per_task.get(entry["init_args"]["task"], 0) + weight
    assert sorted(per_task) == sorted(["noise", "lowlight", "haze", "rain", "raindrop", "snow", "blur", "jpeg"])
    assert set(per_task.values()) == {1.0}  # every degradation type drawn equally often
    noise = [e for e in data["train"] if e["init_args"]["task"] == "noise"]
    assert all(e["init_args"]["degradation"] == {"name": "noise", "sigmas": [50]} for e in noise)
    text = (CONFIGS / "stage1_paper_data.yaml").read_text()
    for source in ("DIV2K", "Flickr2K", "LOL", "RESIDE", "Rain1400", "RainDrop", "Snow100K", "GoPro"):
        assert source in text, source
    assert Path(CONFIGS / "stage1_paper_data.yaml").is_file()
