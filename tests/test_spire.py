"""SPIRE on a tiny random-init backbone: zero-init fusion, what trains, guidance, seeds, prompt control, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restorezoo.data import RestorationDataModule, Sample, SpireMix
from restorezoo.data.prompts import SPIRE_BLIND_PROMPT
from restorezoo.errors import RestoreZooError
from restorezoo.models import MODELS, SPIRE
from tests.conftest import REPO

QUICKSTART = REPO / "configs" / "spire" / "smoke.yaml"


def _batch(size: int = 32, n: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    hq = torch.rand(n, 3, size, size, generator=generator)
    return {
        "hq": hq,
        "lq": (hq + 0.2 * torch.randn(n, 3, size, size, generator=generator)).clamp(0, 1),
        "prompt": ["Denoise with sigma 50.0;", ""][:n] + [""] * max(n - 2, 0),
        "caption": ["a photo of a cat", ""][:n] + [""] * max(n - 2, 0),
    }


def _inputs(model: SPIRE, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    z_t = torch.randn(batch["lq"].shape[0], 4, 8, 8, generator=torch.Generator().manual_seed(1))
    return z_t, torch.tensor([50, 800])[: z_t.shape[0]], model.condition(batch)


def _wake_up(model: SPIRE, std: float = 0.05) -> None:
    """Give the zero-initialised fusion convs small weights, as a few training steps would."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for conv in model.control.fusion.convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)


@pytest.fixture()
def model() -> SPIRE:
    return SPIRE(pretrained="tiny", steps=2, progress=False, seed=0)


def test_registered_and_checkpoint_holds_only_the_restoration_branch(model):
    assert MODELS["spire"] is SPIRE
    keys = list(model.state_dict())
    assert keys and all(k.startswith("control.") for k in keys)
    assert any(k.startswith("control.controlnet.down_blocks") for k in keys)
    assert any(k.startswith("control.degraded_encoder") for k in keys)


@pytest.mark.parametrize("fusion", ["modulation", "additive"])
def test_at_init_the_fused_prediction_is_the_frozen_unets(fusion):
    model = SPIRE(pretrained="tiny", fusion=fusion, progress=False)
    batch = _batch()
    z_t, t, cond = _inputs(model, batch)
    frozen = model.sd.unet(z_t, t, cond["context"]).sample
    assert torch.equal(model.predict_noise(model.control, z_t, t, cond), frozen)
    _wake_up(model)
    assert not torch.allclose(model.predict_noise(model.control, z_t, t, cond), frozen, atol=1e-4)


def test_modulation_scales_and_shifts_each_skip():
    model = SPIRE(pretrained="tiny", progress=False)
    fusion = model.control.fusion
    f_skip, f_con = torch.randn(1, 32, 4, 4), torch.randn(1, 32, 4, 4)
    with torch.no_grad():
        fusion.convs[0].bias[:32].fill_(0.5)  # γ = 0.5
        fusion.convs[0].bias[32:].fill_(2.0)  # β = 2
    assert torch.allclose(fusion(0, f_skip, f_con), 1.5 * f_skip + 2.0)
    additive = SPIRE(pretrained="tiny", fusion="additive", progress=False).control.fusion
    assert additive.convs[0].out_channels == 32 and fusion.convs[0].out_channels == 64


def test_only_the_restoration_branch_gets_gradients_and_every_part_of_it_learns(model):
    _wake_up(model)
    batch = _batch()
    loss, logs = model.training_loss(batch)
    loss.backward()
    assert set(logs) == {"diffusion"}
    assert all(p.grad is None for p in model.sd.parameters())
    trainable = dict(model.named_parameters())
    assert trainable and all(p.requires_grad for p in trainable.values())

    def learns(part: str) -> bool:
        grads = [p.grad for name, p in trainable.items() if name.startswith(f"control.{part}")]
        return bool(grads) and any(g is not None and g.abs().sum() > 0 for g in grads)

    for part in ("controlnet.conv_in", "controlnet.down_blocks", "controlnet.mid_block", "fusion"):
        assert learns(part), part
    # E'(y) enters through conv_in input weights that start at zero (ControlNet): it learns from step 2.
    assert not learns("degraded_encoder")
    torch.optim.SGD(trainable.values(), lr=1.0).step()
    model.zero_grad()
    model.training_loss(batch)[0].backward()
    assert learns("degraded_encoder")


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(model):
    batch = _batch()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def fixed_loss() -> torch.Tensor:
        torch.manual_seed(0)  # the same noise and timesteps every call
        return model.training_loss(batch)[0]

    before = fixed_loss()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = fixed_loss()
    assert after < before


def test_guidance_scale_one_is_the_conditional_prediction(model):
    _wake_up(model)
    batch = _batch()
    z_t, t, cond = _inputs(model, batch)
    uncond = model.unconditional(cond)
    conditional = model.predict_noise(model.control, z_t, t, cond)
    assert torch.allclose(model.guided_prediction(model.control, z_t, t, cond, uncond, 1.0), conditional, atol=1e-5)
    assert not torch.allclose(model.guided_prediction(model.control, z_t, t, cond, uncond, 4.0), conditional, atol=1e-4)


def test_same_seed_same_output_and_blind_defaults(model):
    _wake_up(model)
    lq = _batch()["lq"][:1, :, :30, :27]
    out = model(lq, prompt="", caption="", seed=3)
    assert out.shape == (1, 3, 30, 27) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, model(lq, prompt="", caption="", seed=3))
    assert not torch.equal(out, model(lq, prompt="", caption="", seed=4))
    assert torch.equal(out, model(lq, prompt=SPIRE_BLIND_PROMPT, caption="", seed=3)), "blind c_r is the default"


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    from restorezoo.models import stable_diffusion

    calls = []
    checkpoint = stable_diffusion.checkpoint
    monkeypatch.setattr(stable_diffusion, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)  # E' draws its initial weights from the global generator
        model = SPIRE(pretrained="tiny", gradient_checkpointing=flag, progress=False)
        _wake_up(model)
        torch.manual_seed(0)
        model.training_loss(_batch())[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.control.parameters()]))
    assert grads[0].abs().sum() > 0 and torch.allclose(grads[0], grads[1], atol=1e-6)
    assert len(calls) == 5 + 3, "every block recomputes: UNet 2 down + mid + 2 up, control 2 down + mid"


def test_v_prediction_trains_and_samples_with_another_scheduler():
    model = SPIRE(pretrained="tiny", prediction_type="v_prediction", scheduler="unipc", steps=2, progress=False)
    loss, _ = model.training_loss(_batch())
    assert torch.isfinite(loss)
    out = model(_batch()["lq"][:1], prompt="Deblur with sigma 3.0", caption="a cat", scheduler="dpmsolver++")
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_bad_settings_give_clear_errors():
    with pytest.raises(RestoreZooError, match="unknown fusion"):
        SPIRE(pretrained="tiny", fusion="concat")
    with pytest.raises(RestoreZooError, match="unknown scheduler"):
        SPIRE(pretrained="tiny", scheduler="plms")


def test_restoration_prompt_controls_a_briefly_trained_model():
    torch.manual_seed(0)
    model = SPIRE(pretrained="tiny", steps=3, progress=False, seed=0)
    data = SpireMix(Sample("train", tasks=["clean"], caption="a photo"), p_realesrgan=0.0, caption_dropout=0.0)
    loader = RestorationDataModule(train=[data], batch_size=2, patch_size=32, num_workers=0).train_dataloader()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batches = iter(loader)
    for _ in range(4):  # a few seconds: enough for the zero-initialised fusion to open up
        loss, _ = model.training_loss(next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    lq = next(batches)["lq"][:1]
    soft = model(lq, prompt="Deblur with sigma 1.0", caption="a photo", seed=0)
    hard = model(lq, prompt="Deblur with sigma 3.0", caption="a photo", seed=0)
    assert torch.equal(soft, model(lq, prompt="Deblur with sigma 1.0", caption="a photo", seed=0))
    assert (soft - hard).abs().mean() > 5e-5, "the sigma in c_r changes the restoration"

    # The restoration-prompt embedding is a real input of the prediction.
    batch = {"lq": lq, "prompt": ["Deblur with sigma 3.0"], "caption": ["a photo"]}
    z_t, t, cond = torch.randn(1, 4, 8, 8), torch.tensor([500]), model.condition(batch)
    with torch.no_grad():
        base = model.predict_noise(model.control, z_t, t, cond)
        nudged = model.predict_noise(model.control, z_t, t, {**cond, "restoration": cond["restoration"] * 1.5})
    assert (base - nudged).abs().mean() > 1e-6


def test_cli_fit_test_and_restore_with_prompt_and_caption(tmp_path: Path, monkeypatch):
    from PIL import Image

    from restorezoo import load_model
    from restorezoo.cli import main

    monkeypatch.chdir(tmp_path)
    tiny = [
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--data.init_args.batch_size", "2", "--data.init_args.patch_size", "32", "--model.init_args.steps", "2",
    ]
    main(["fit", "--config", str(QUICKSTART), *tiny])
    ckpt = tmp_path / "runs/spire-smoke/checkpoints/last.ckpt"
    assert ckpt.is_file()
    main(["test", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt), "--model.init_args.steps", "2",
          "--trainer.limit_test_batches", "1"])
    tables = list((tmp_path / "runs/spire-smoke").rglob("benchmark.md"))
    assert tables and "psnr" in tables[0].read_text().lower()
    assert "PSNR (ceiling)" in tables[0].read_text()  # the callback's round trip of the target through the VAE

    Image.new("RGB", (24, 20), (120, 60, 200)).save(tmp_path / "in.png")
    main(["restore", "in.png", "--ckpt", str(ckpt), "--prompt", "Deblur with sigma 3.0", "--caption", "a cat",
          "-o", "out.png"])
    assert Image.open(tmp_path / "out.png").size == (24, 20)
    reloaded = load_model(ckpt=ckpt)
    assert isinstance(reloaded, SPIRE) and reloaded.hparams.pretrained == "tiny"


@pytest.mark.slow
def test_paper_config_runs_on_the_coco_layout_with_a_tiny_backbone(tmp_path: Path, monkeypatch):
    import json

    from restorezoo.cli import main
    from tests.conftest import write_photo

    root = tmp_path / "data" / "COCO"
    for split in ("train2017", "val2017"):
        for i in range(4):
            write_photo(root / split / f"{i:012d}.png", seed=i, size=(40, 56))
        coco = {
            "images": [{"id": i, "file_name": f"{i:012d}.png"} for i in range(4)],
            "annotations": [{"image_id": i, "caption": f"a pattern number {i}"} for i in range(4)],
        }
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"captions_{split}.json").write_text(json.dumps(coco))
    monkeypatch.chdir(tmp_path)
    for config in ("spire.yaml", "controlnet_sr.yaml"):
        main([
            "fit", "--config", str(REPO / "configs/spire" / config), "--model.init_args.pretrained", "tiny",
            "--model.init_args.steps", "2", "--trainer.fast_dev_run", "2", "--trainer.accelerator", "cpu",
            "--trainer.devices", "1", "--trainer.precision", "32-true", "--data.init_args.batch_size", "2",
            "--data.init_args.patch_size", "32", "--data.init_args.num_workers", "0", "--metrics.learned", "[]",
            "--metrics.save_images", "0",
        ])


def test_clip_i_metric_is_na_offline_and_scores_cosine_similarity(monkeypatch):

    from restorezoo.encoders.clip import tiny_clip
    from restorezoo.metrics.learned import WEIGHTS_UNAVAILABLE, LearnedMetric

    offline = LearnedMetric("clip_i")
    assert not offline.available and offline.reason == WEIGHTS_UNAVAILABLE and not offline.lower_better

    import restorezoo.encoders.clip as clip_module

    # weights "found": the metric builds through load_clip (the activation-checked path), here a tiny CLIP
    monkeypatch.setattr(clip_module, "load_clip", lambda *args, **kwargs: tiny_clip()[0])
    metric = LearnedMetric("clip_i")
    images = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    same = metric(images, images)
    assert same.shape == (2,) and torch.allclose(same, torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert (metric(images, images.flip(0)) < 0.9999).all()
