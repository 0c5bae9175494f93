"""DA-CLIP: released key layout, zero-init controller, reverse-order injection, loading, and learning."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from restorezoo.data import Sample
from restorezoo.data.datamodule import collate_with_tasks
from restorezoo.data.prompts import DACLIP_DEGRADATIONS
from restorezoo.errors import CheckpointError, WeightsNotFoundError
from restorezoo.models.daclip import DACLIP, build_daclip
from tests.conftest import REPO

MANIFEST = Path(__file__).parent / "specs" / "daclip_official_keys.json"
QUICKSTART = REPO / "configs" / "daclip" / "daclip_quickstart.yaml"
TASKS = ["noise", "lowlight", "haze", "motion_blur"]
TASK_NAMES = ["noise", "lowlight", "haze", "blur"]


@pytest.fixture()
def tiny() -> DACLIP:
    torch.manual_seed(0)
    return DACLIP(tiny=True)


def _batch(samples: list[dict], model: DACLIP) -> dict:
    """Collate with the task names of ``TASK_NAMES`` and point the model's label map at them."""
    model.task_to_class = torch.tensor([model._class_of_task(t) for t in TASK_NAMES])
    return collate_with_tasks(samples, TASK_NAMES)


def _split(split: str, model: DACLIP) -> dict:
    data = Sample(split, tasks=TASKS, max_side=64).configure(training=False)
    return _batch([data[i] for i in range(len(data))], model)


@pytest.mark.skipif(not MANIFEST.is_file(), reason="key manifest not available")
def test_state_dict_matches_the_released_daclip_keys_and_shapes():
    expected = json.loads(MANIFEST.read_text())
    model = DACLIP(pretrained=None)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    assert model.visual is model.clip.visual
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"visual_control", "logit_scale"}


def test_zero_init_controller_leaves_the_frozen_clip_features_unchanged(tiny):
    images = torch.rand(3, 3, 80, 72)
    controlled, degradation = tiny.encode_image(images)
    plain, none = tiny.encode_image(images, control=False)
    assert none is None and degradation is not None
    assert controlled.shape == degradation.shape == (3, tiny.embed_dim)
    torch.testing.assert_close(controlled, plain)
    reference = torch.nn.functional.normalize(tiny.clip.encode_image(tiny.preprocess(images)), dim=-1)
    torch.testing.assert_close(plain, reference)
    torch.testing.assert_close(controlled.norm(dim=-1), torch.ones(3))


def test_the_last_controller_output_is_injected_after_the_first_frozen_block(tiny):
    images = torch.rand(2, 3, 64, 64)
    seen: list[torch.Tensor] = []
    # block 1's input is block 0's output plus its injection: watch it
    hook = tiny.visual.transformer.resblocks[1].register_forward_pre_hook(
        lambda m, args: seen.append(args[0].clone())
    )
    zeros = tiny.visual_control.transformer.zero_modules
    with torch.no_grad():
        tiny.encode_image(images)
        torch.nn.init.normal_(zeros[-1].bias)  # perturb the LAST zero linear only
        tiny.encode_image(images)
        zeros[-1].bias.zero_()
        torch.nn.init.normal_(zeros[0].bias)  # the FIRST zero linear acts after the last frozen block
        content, _ = tiny.encode_image(images)
    hook.remove()
    plain, _ = tiny.encode_image(images, control=False)
    assert not torch.allclose(seen[0], seen[1]), "last controller output reaches the first frozen block"
    torch.testing.assert_close(seen[0], seen[2])
    assert not torch.allclose(content, plain)


def test_released_style_checkpoint_round_trips_strictly(tiny, tmp_path):
    with torch.no_grad():
        for linear in tiny.visual_control.transformer.zero_modules:
            torch.nn.init.normal_(linear.weight, std=0.02)
    state = {f"module.{k}": v for k, v in tiny.state_dict().items()}
    path = tmp_path / "daclip_tiny.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    loaded = DACLIP.from_official(path, tiny=True)
    pixels = tiny.preprocess(torch.rand(2, 3, 64, 64))  # the same input: from_official preprocesses with PIL
    for a, b in zip(loaded.encode_pixels(pixels), tiny.encode_pixels(pixels)):
        torch.testing.assert_close(a, b)
    frozen = build_daclip(str(path), tiny=True)
    assert frozen is not None and not frozen.training
    assert not any(p.requires_grad for p in frozen.parameters())
    assert build_daclip(None) is None
    torch.save({"module.logit_scale": torch.zeros(())}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="does not fit DACLIP: .* missing keys"):
        DACLIP.from_official(tmp_path / "partial.pt", tiny=True)


def test_missing_pretrained_clip_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTOREZOO_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        DACLIP(pretrained=str(tmp_path / "missing_laion.bin"))
    message = str(info.value)
    assert "\n" not in message and "missing_laion.bin" in message and "RESTOREZOO_WEIGHTS" in message


def test_contrastive_loss_falls_on_a_fixed_batch(tiny):
    torch.manual_seed(0)
    batch = _split("train", tiny)
    batch["lq"] = batch["lq"][..., :64, :64]
    batch["caption"] = [f"photo number {i}" for i in range(len(batch["caption"]))]
    optimizer = torch.optim.AdamW([p for p in tiny.parameters() if p.requires_grad], lr=2e-3)
    tiny.train()
    losses = []
    for _ in range(30):
        loss, logs = tiny.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(logs) == {"loss_content", "loss_degradation"}
    assert not tiny.clip.training and tiny.visual_control.training
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_short_fit_classifies_held_out_degradations_above_chance():
    L.seed_everything(0)
    model = DACLIP(tiny=True)
    train = Sample("train", tasks=TASKS).configure(training=True, patch_size=64)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    order = torch.randperm(len(train) * 16) % len(train)
    for start in range(0, len(order), 16):
        batch = _batch([train[int(i)] for i in order[start : start + 16]], model)
        loss, _ = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    held_out = _split("test", model)
    accuracy = (model.classify(held_out["lq"]) == model.degradation_targets(held_out)).float().mean().item()
    assert accuracy > 1 / len(TASKS), accuracy
    words = model.predict_degradation(held_out["lq"])
    assert all(w in DACLIP_DEGRADATIONS for w in words)


def test_quickstart_config_fits_and_tests_through_the_cli(tmp_path, monkeypatch):
    from restorezoo.cli import main

    monkeypatch.chdir(tmp_path)
    main(
        [
            "fit",
            "--config",
            str(QUICKSTART),
            "--trainer.max_epochs",
            "2",
            "--trainer.check_val_every_n_epoch",
            "1",
        ]
    )
    ckpt = tmp_path / "runs/daclip-quickstart/checkpoints/last.ckpt"
    assert ckpt.is_file()
    main(["test", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt)])
    logs = sorted((tmp_path / "runs/daclip-quickstart/logs").glob("version_*/metrics.csv"))
    header = logs[0].read_text().splitlines()[0]
    assert "train/loss_degradation" in header and "val/deg_acc" in header and "val/deg_acc/noisy" in header
    assert "test/deg_acc" in logs[-1].read_text()
    frozen = build_daclip(str(ckpt))
    assert frozen is not None and frozen.embed_dim == 64 and not frozen.training


# ---------------------------------------------------------------------- the release's recipe
def test_release_preprocessing_equals_the_releases_clip_transform():
    """Reference: the release's data/util.py clip_transform(image, 32) on this image (run beside restorezoo)."""
    from restorezoo.models.daclip import release_clip_pixels

    image = torch.rand(3, 40, 60, generator=torch.Generator().manual_seed(0))
    pixels = release_clip_pixels(image[None], 32)[0]
    assert pixels.shape == (3, 32, 32)  # shorter side to 32, centre crop: not a squash of 40×60
    assert float(pixels.sum()) == pytest.approx(522.7577514648438, rel=1e-6)
    assert [float(v) for v in pixels.flatten()[:3]] == pytest.approx(
        [-0.5659946799278259, -0.7411757707595825, -0.8433647751808167], abs=1e-6
    )
    assert float(pixels[2, 31, 31]) == pytest.approx(0.7381106019020081, abs=1e-6)


def test_from_official_preprocesses_as_the_release_and_tiny_on_the_device(tiny, tmp_path):
    path = tmp_path / "daclip.pt"
    torch.save(tiny.state_dict(), path)
    assert DACLIP.from_official(path, tiny=True).preprocessing == "release"
    assert tiny.preprocessing == "tensor"
    photo = Sample("test", tasks=["noise"]).configure(training=False)[0]["hq"]
    images = photo[None, :, :200, :120]  # portrait: a squash would distort, CLIP crops the centre
    # both take CLIP's test geometry; they differ only by PIL's resampling and the 8-bit step
    difference = (tiny.preprocess(images) - DACLIP.from_official(path, tiny=True).preprocess(images)).abs()
    assert difference.mean() < 0.03, float(difference.mean())  # 0.021 measured: ~1.5/255 before CLIP scaling


def test_the_optimiser_decays_no_bias_norm_or_logit_scale(tiny):
    from types import SimpleNamespace

    tiny._trainer = SimpleNamespace(estimated_stepping_batches=10)
    optimizer = tiny.configure_optimizers()["optimizer"]
    exempt, decayed = optimizer.param_groups
    names = {id(p): n for n, p in tiny.named_parameters()}
    assert exempt["weight_decay"] == 0 and decayed["weight_decay"] == 0.05
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["eps"] == 1e-6
    exempt_names = {names[id(p)] for p in exempt["params"]}
    assert "logit_scale" in exempt_names
    assert all(p.ndim >= 2 and "ln" not in names[id(p)] and "bias" not in names[id(p)] for p in decayed["params"])
    assert any(n.endswith("ln_post.weight") for n in exempt_names)


def test_contrasting_the_global_batch_is_not_the_mean_of_local_batches(tiny):
    """Why DDP must gather negatives: the loss of 4 rows differs from the mean loss of two halves of 2."""
    batch = _split("train", tiny)
    batch = {k: (v[:4] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch.items()}
    halves = [{k: (v[i : i + 2] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch.items()} for i in (0, 2)]
    with torch.no_grad():
        whole = tiny.training_loss(batch)[0]
        local = sum(tiny.training_loss(h)[0] for h in halves) / 2
    assert abs(float(whole) - float(local)) > 0.1
