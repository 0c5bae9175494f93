"""Diff-Restorer: zero-initialised control and refinement, trainable parts, L_deg, seeding, stage 2 and the CLI."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch

from restorezoo.cli import main
from restorezoo.data import RestorationDataModule, Sample
from restorezoo.errors import WeightsNotFoundError
from restorezoo.models import MODELS
from restorezoo.models.diffrestorer import (
    DegradationAwareDecoder,
    DiffRestorer,
    decode_with_refinement,
    vae_encoder_features,
)
from restorezoo.models.diffrestorer_decoder import DiffRestorerDecoder
from restorezoo.models.losses import PerceptualLoss
from tests.conftest import working_directory

TASKS = ["noise", "lowlight", "blur"]
TINY = dict(
    pretrained="tiny",
    clip_model="tiny",
    degradation_classes=TASKS,
    degradation_dim=16,
    hidden_dim=32,
    control_channels=(16, 16, 32, 32),
    progress=False,
    steps=2,
)


@pytest.fixture(scope="module")
def model() -> DiffRestorer:
    torch.manual_seed(0)
    model = DiffRestorer(**TINY)
    model.set_task_names(TASKS)
    return model


def _batch(size: int = 16, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    hq = torch.rand(2, 3, size, size, generator=generator)
    return {"hq": hq, "lq": (hq * 0.4).clamp(0, 1), "task": torch.tensor([1, -1])}


def _latents(model: DiffRestorer, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    z0 = model.sd.encode_image(batch["hq"])
    t = torch.tensor([10, 700])
    return model.noise_scheduler.add_noise(z0, torch.randn_like(z0), t), t


def test_zero_initialised_injection_leaves_the_frozen_unet_prediction_unchanged(model: DiffRestorer):
    model.eval()
    batch = _batch()
    z_t, t = _latents(model, batch)
    cond = model.condition(batch)
    assert cond["context"].shape == (2, 1, model.sd.unet.config.cross_attention_dim)
    with torch.no_grad():
        frozen = model.sd.unet(z_t, t, cond["context"]).sample
        steered = model.predict_noise(model.control, z_t, t, cond)
    torch.testing.assert_close(steered, frozen, atol=1e-5, rtol=0)
    # the zero convolutions are what keeps it so: open one and the control branch shows up
    perturbed = copy.deepcopy(model.control)
    torch.nn.init.normal_(perturbed.zero_convs[0].weight, std=0.1)
    with torch.no_grad():
        assert not torch.allclose(model.predict_noise(perturbed, z_t, t, cond), frozen, atol=1e-4)


def test_gradients_reach_only_the_trainable_parts(model: DiffRestorer):
    model.train()
    model.zero_grad(set_to_none=True)
    batch = _batch()
    loss, logs = model.training_loss(batch)
    loss.backward()
    assert set(logs) == {"diffusion", "deg", "rec"} and logs["deg"] > 0 and logs["rec"] > 0
    control = model.control
    for part in (control.prompt_processor.semantic, control.prompt_processor.classifier, control.control_encoder,
                 control.control_decoder, control.zero_convs):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part
    for frozen in (model.sd, model.clip):
        assert all(not p.requires_grad and p.grad is None for p in frozen.parameters())
    # checkpoints hold the trainable control only; the frozen SD and CLIP come back from their specs
    assert model.state_dict() and all(key.startswith("control.") for key in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in control.parameters())
    model.zero_grad(set_to_none=True)


def test_degradation_modulation_depends_on_the_degradation_prompt(model: DiffRestorer):
    encoder = model.control.control_encoder
    lq = _batch()["lq"]
    p_d = torch.randn(2, 16)
    features = encoder(lq, p_d)
    assert features.shape[-1] == lq.shape[-1] // model.sd.vae_scale_factor
    assert not torch.allclose(encoder(lq, -p_d), features)


def test_refinement_decoder_equals_the_plain_decoder_at_initialisation(model: DiffRestorer):
    sd = model.sd
    batch = _batch(size=32)
    decoder = DegradationAwareDecoder(sd.vae, degradation_dim=16)
    assert len(decoder.refinement) == len(sd.vae.config.block_out_channels) - 1
    z0 = sd.encode_image(batch["hq"])
    p_d = torch.randn(2, 16)
    plain = sd.decode_latents(z0)
    refined = decode_with_refinement(decoder, sd.vae, z0, batch["lq"], p_d, sd.scaling_factor)
    torch.testing.assert_close(refined, plain, atol=1e-5, rtol=0)
    # tiled decoding carries the LQ image along with each latent tile: the same tiles and blend as SD's
    tiled = decode_with_refinement(decoder, sd.vae, z0, batch["lq"], p_d, sd.scaling_factor, tile_size=6, overlap=2)
    torch.testing.assert_close(tiled, sd.decode_latents(z0, tile_size=6, overlap=2), atol=1e-5, rtol=0)
    # a trained refinement block uses the LQ features and P_D
    torch.nn.init.normal_(decoder.refinement[-1].zero_conv.weight, std=0.1)
    features = vae_encoder_features(sd.vae, batch["lq"])
    with torch.no_grad():
        a = decoder(z0 / sd.scaling_factor, features, p_d)
        b = decoder(z0 / sd.scaling_factor, features, -p_d)
    assert not torch.allclose(a, b)


def test_a_one_level_vae_like_mini_sds_gets_one_full_size_refinement_block():
    """mini-sd's VAE has one level (latents at image size) and so no upsampling up-block: its decoder
    gets one refinement block at full size, fusing the encoder's level-0 feature; fresh, it is SD's decoder."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=1).eval()
    decoder = DegradationAwareDecoder(vae, degradation_dim=16)
    assert len(decoder.refinement) == 1 and decoder.levels == [0]
    lq = torch.rand(2, 3, 16, 16)
    features = vae_encoder_features(vae, lq)
    assert [tuple(f.shape) for f in features] == [(2, 8, 16, 16)]
    z = vae.encode(lq * 2 - 1).latent_dist.mean
    p_d = torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(decoder(z, features, p_d), vae.decode(z).sample, atol=1e-5, rtol=0)
        torch.nn.init.normal_(decoder.refinement[0].zero_conv.weight, std=0.1)
        moved = decoder(z, features, p_d) - decoder(z, vae_encoder_features(vae, torch.rand(2, 3, 16, 16)), p_d)
    assert moved.abs().max() > 1e-3  # the LQ image reaches the output


def test_restore_is_seedable_and_pads_odd_sizes(model: DiffRestorer):
    model.eval()
    lq = torch.rand(1, 3, 13, 19, generator=torch.Generator().manual_seed(1))
    first = model.restore({"lq": lq}, seed=3)
    assert first.shape == lq.shape and first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(model.restore({"lq": lq}, seed=3), first)
    assert not torch.equal(model.restore({"lq": lq}, seed=4), first)
    assert model.restore({"lq": lq}, seed=3, scheduler="ddim").shape == lq.shape


def test_vgg19_weights_offline_give_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RESTOREZOO_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as error:
        PerceptualLoss("imagenet")
    message = str(error.value)
    assert "\n" not in message and "vgg19-dcbb9e9d.pth" in message and "tiny-random" in message
    loss = PerceptualLoss("tiny-random")
    image = torch.rand(1, 3, 16, 16)
    assert loss(image, image) == 0 and loss(image, image.flip(-1)) > 0


def test_degradation_loss_drives_accuracy_above_chance_after_a_short_fit():
    L.seed_everything(0)
    model = DiffRestorer(**{**TINY, "lr": 3e-3, "min_lr": 3e-3, "deg_weight": 2.0, "steps": 1})
    data = RestorationDataModule(
        train=[Sample("train", tasks=TASKS, repeat=4)],
        val=[Sample("test", tasks=TASKS, max_side=16)],
        batch_size=6,
        patch_size=16,
        task_names=TASKS,
    )
    trainer = L.Trainer(
        accelerator="cpu", max_steps=20, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these ops are tiny: one thread beats several contending for a busy CPU
    try:
        trainer.fit(model, data)
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
        metrics = trainer.validate(model, data, verbose=False)[0]
    finally:
        torch.set_num_threads(threads)
    chance = 1 / len(TASKS)
    assert metrics["val/deg_acc"] >= chance + 0.3, metrics
    assert {f"val/deg_acc/{task}" for task in TASKS} <= set(metrics)


def test_decoder_stage_trains_the_decoder_and_discriminator_against_a_frozen_stage1():
    L.seed_everything(0)
    stage2 = DiffRestorerDecoder(
        stage1={**TINY}, perceptual_weights="tiny-random", disc_channels=8, disc_layers=2, lr=1e-3
    )
    assert {key.split(".")[0] for key in stage2.state_dict()} == {"decoder", "discriminator"}
    stage1_before = copy.deepcopy(stage2.stage1.control.state_dict())
    decoder_before = copy.deepcopy(stage2.decoder.state_dict())
    data = RestorationDataModule(train=[Sample("train", tasks=TASKS)], batch_size=2, patch_size=16, task_names=TASKS)
    trainer = L.Trainer(
        accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )
    trainer.fit(stage2, data)
    assert {"train/l2", "train/perceptual", "train/adversarial", "train/discriminator"} <= set(trainer.logged_metrics)
    after = stage2.decoder.state_dict()
    assert not torch.equal(after["refinement.0.zero_conv.weight"], decoder_before["refinement.0.zero_conv.weight"])
    assert not torch.equal(after["decoder.conv_out.weight"], decoder_before["decoder.conv_out.weight"])
    for key, value in stage2.stage1.control.state_dict().items():
        assert torch.equal(value, stage1_before[key]), key
    # restoring runs stage 1 and decodes with this decoder
    assert stage2.eval().restore({"lq": torch.rand(1, 3, 16, 16)}).shape == (1, 3, 16, 16)


def test_restored_latents_train_the_decoder_on_what_stage1_samples_not_on_e_hq():
    """``latents="restored"`` decodes stage 1's sampled latents of the LQ crop (seed = the step), which
    restore() decodes too; "hq" (the paper's) decodes E(HQ); anything else is one clear line."""
    from restorezoo.errors import RestoreZooError

    stage2 = DiffRestorerDecoder(stage1={**TINY}, perceptual_weights="tiny-random", adversarial_weight=0.0,
                                 latents="restored")
    batch = _batch()
    stage1, sd = stage2.stage1, stage2.stage1.sd
    z0, cond = stage1.restored_latents(batch, seed=0, progress=False)
    expected = (stage2.decoder(z0 / sd.scaling_factor, vae_encoder_features(sd.vae, batch["lq"]), cond["p_d"]) + 1) / 2
    torch.testing.assert_close(stage2.reconstruct(batch), expected)
    # the same latents restore() decodes: SD's decoder of them is restore(decoder="plain")
    torch.testing.assert_close(sd.decode_latents(z0), stage1.restore(batch, decoder="plain", seed=0))
    stage2.latents = "hq"
    e_hq = sd.encode_image(batch["hq"]) / sd.scaling_factor
    assert not torch.allclose(e_hq, z0 / sd.scaling_factor, atol=1e-3)
    paper = (stage2.decoder(e_hq, vae_encoder_features(sd.vae, batch["lq"]), cond["p_d"]) + 1) / 2
    torch.testing.assert_close(stage2.reconstruct(batch), paper)
    with pytest.raises(RestoreZooError, match="latents must be one of hq, restored"):
        DiffRestorerDecoder(stage1={**TINY}, perceptual_weights="tiny-random", latents="sampled")


def test_the_papers_test_sets_are_presets_and_mixtures_keep_their_task(tmp_path: Path):
    from restorezoo.data.testsets import DIFFRESTORER_BENCHMARKS, PRESETS, Benchmark
    from tests.conftest import write_photo

    # Table I: eight single degradations, two real-world sets (RealSnow, RTTS without ground truth), four mixtures
    assert len(DIFFRESTORER_BENCHMARKS) == 14 and all(name in PRESETS for name in DIFFRESTORER_BENCHMARKS)
    assert {"realsnow", "rtts"} <= set(DIFFRESTORER_BENCHMARKS)
    write_photo(tmp_path / "CBSD68/original_png/0001.png", seed=0, size=(32, 32))
    sample = Benchmark("cbsd68_jpeg_noise_blur", root=str(tmp_path)).configure(training=False)[0]
    assert sample["task"] == "jpeg+noise+blur" and sample["params"]["jpeg"]["quality"] == 10


def test_registry_names_both_stages():
    assert MODELS["diffrestorer"] is DiffRestorer and MODELS["diffrestorer_decoder"] is DiffRestorerDecoder


# ---------------------------------------------------------------------------------------------- CLI
QUICK = [
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
    "--trainer.check_val_every_n_epoch", "1",
]


@pytest.mark.slow  # four CLI runs and two reloads: about a minute on an idle 2-core CPU
def test_cli_fit_stage1_fit_decoder_test_both_decoders_restore_and_reload(tmp_path: Path, capsys):
    from restorezoo import load_model
    from restorezoo.data.io import save_image

    configs = Path(__file__).resolve().parents[1] / "configs" / "diffrestorer"
    with working_directory(tmp_path):
        main(["fit", "--config", str(configs / "quickstart.yaml"), *QUICK, "--model.init_args.steps", "2"])
        stage1 = tmp_path / "runs/diffrestorer-quickstart/checkpoints/last.ckpt"
        assert stage1.is_file()
        main(["fit", "--config", str(configs / "decoder_quickstart.yaml"), *QUICK])
        decoder = tmp_path / "runs/diffrestorer-decoder-quickstart/checkpoints/last.ckpt"
        assert decoder.is_file()
        capsys.readouterr()
        main([
            "test", "--config", str(configs / "quickstart.yaml"), "--ckpt_path", str(stage1),
            "--model.init_args.decoder_ckpt", str(decoder), "--model.init_args.steps", "2",
            "--data.init_args.test", "[{class_path: Sample, init_args: {split: test, tasks: [noise], max_side: 32, "
            "benchmark: sample}}, {class_path: Sample, init_args: {split: test, tasks: [noise], max_side: 32, "
            "benchmark: sample_ours_s}}]",
        ])
        table = (next((tmp_path / "runs/diffrestorer-quickstart").rglob("benchmark.md"))).read_text()
        assert "sample_ours_s" in table and "| sample |" in table.replace("  ", " ")
        assert "test/deg_acc" in capsys.readouterr().out
        # reload: strict, frozen parts rebuilt from their specs, same outputs
        image = tmp_path / "in.png"
        save_image(torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0)), image)
        main(["restore", str(image), "--ckpt", str(decoder), "-o", str(tmp_path / "out.png")])
        assert (tmp_path / "out.png").is_file()
    # the decoder checkpoint records its stage-1 checkpoint by absolute path: it reloads from anywhere
    combined = load_model(ckpt=decoder)
    assert isinstance(combined, DiffRestorerDecoder)
    alone = load_model(ckpt=stage1)
    assert isinstance(alone, DiffRestorer) and alone.refinement_decoder is None
    lq = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(combined.stage1.restore({"lq": lq}, steps=2, decoder="plain"),
                               alone.restore({"lq": lq}, steps=2))
    assert not torch.allclose(combined.restore({"lq": lq}, steps=2), alone.restore({"lq": lq}, steps=2))
