"""IR-SDE: the released U-Net layout, the mean-reverting SDE's closed forms, samplers, training and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restorezoo.cli import main
from restorezoo.models.irsde import IRSDE, ConditionalUNet, MeanRevertingSDE
from tests.conftest import REPO, working_directory

MANIFEST = Path(__file__).parent / "specs" / "irsde_official_unet_keys.json"
QUICKSTART = REPO / "configs" / "daclip" / "irsde_quickstart.yaml"
TINY = dict(nf=8, ch_mult=(1, 2), context_dim=16, T=10, progress=False, ema_decay=0.9)


def _pair(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    hq = torch.rand(2, 3, size, size, generator=generator)
    lq = (hq + 0.2 * torch.randn(hq.shape, generator=generator)).clamp(0, 1)
    return hq, lq


@pytest.mark.skipif(not MANIFEST.is_file(), reason="key manifest not available")
def test_full_size_unet_state_dict_equals_the_released_manifest():
    expected = json.loads(MANIFEST.read_text())
    unet = ConditionalUNet(3, 3, 64, (1, 2, 4, 8), 512, True, True)
    assert {k: list(v.shape) for k, v in unet.state_dict().items()} == expected


def test_forward_marginal_has_the_closed_form_mean_and_std():
    sde = MeanRevertingSDE(T=100)
    torch.manual_seed(0)
    x0, mu = torch.full((1, 1, 1, 1), 0.8), torch.full((1, 1, 1, 1), 0.3)
    t = 30
    samples = sde.forward_state(x0.expand(200_000, 1, 1, 1), mu, t)[0]
    decay = torch.exp(-sde.theta_bars[t] * sde.dt)
    assert samples.mean().item() == pytest.approx(0.3 + 0.5 * decay.item(), abs=2e-3)
    assert samples.std().item() == pytest.approx(sde.max_sigma * (1 - decay**2).sqrt().item(), rel=1e-2)
    assert sde.theta_bars[-1] * sde.dt == pytest.approx(-torch.log(torch.tensor(0.005)).item(), rel=1e-5)


def test_optimal_reverse_step_is_the_maximum_likelihood_x_t_minus_1():
    sde = MeanRevertingSDE(T=100)
    hq, lq = _pair()
    # t = 1: x_0 is the clean image itself, and the optimal step recovers it exactly from any x_1.
    x1 = sde.forward_state(hq, lq, 1)[0]
    torch.testing.assert_close(sde.optimal_reverse_step(x1, hq, lq, 1), hq, atol=1e-5, rtol=0)
    # Build x_{t-1} from x0 and x_t from x_{t-1} with known noise; x* maximises
    # log p(x_t | x_{t-1}) + log p(x_{t-1} | x0): the gradient of that sum vanishes at x*.
    t = 40
    x_prev = sde.forward_state(hq, lq, t - 1)[0]
    a = torch.exp(-sde.thetas[t] * sde.dt)
    x_t = lq + (x_prev - lq) * a + sde.max_sigma * (1 - a**2).sqrt() * torch.randn_like(hq)
    best = sde.optimal_reverse_step(x_t, hq, lq, t).requires_grad_(True)
    step_var = sde.max_sigma**2 * (1 - a**2)
    log_lik = -((x_t - lq - (best - lq) * a) ** 2).sum() / (2 * step_var)
    log_lik = log_lik - ((best - sde.marginal_mean(hq, lq, t - 1)) ** 2).sum() / (2 * sde.sigma_bars[t - 1] ** 2)
    (grad,) = torch.autograd.grad(log_lik, best)
    assert grad.abs().max().item() < 1e-2
    # Inverting the one-step transition with its true noise gives x_{t-1} back exactly.
    noise = (x_t - lq - (x_prev - lq) * a) / (sde.max_sigma * (1 - a**2).sqrt())
    recovered = lq + (x_t - lq - sde.max_sigma * (1 - a**2).sqrt() * noise) / a
    torch.testing.assert_close(recovered, x_prev, atol=1e-5, rtol=0)


@pytest.mark.parametrize("steps", [100, 50, 10, 3])
def test_posterior_sampling_with_a_true_noise_oracle_returns_the_clean_image(steps: int):
    sde = MeanRevertingSDE(T=100)
    hq, lq = _pair()
    # The release's fewer-step mode runs a new SDE of `steps` steps with the network at t·T/steps;
    # restorezoo's strided mode runs a subset of the T grid with the exact posterior per stride.
    chain = sde if steps == sde.T else sde.rescheduled(steps)

    def oracle(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        own = (t * steps / sde.T).round().long()
        return (x_t - chain.marginal_mean(hq, lq, own)) / chain.marginal_std(own, x_t)

    def strided_oracle(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x_t - sde.marginal_mean(hq, lq, t.long())) / sde.marginal_std(t.long(), x_t)

    generator = torch.Generator().manual_seed(0)
    out = sde.sample(oracle, sde.noise_state(lq, generator), lq, steps=steps, generator=generator, progress=False)
    assert (out - hq).abs().max().item() < 1e-3
    strided = sde.sample(
        strided_oracle, sde.noise_state(lq), lq, steps=steps, fewer_steps="stride", progress=False
    )
    assert (strided - hq).abs().max().item() < 1e-3
    if steps >= 10:  # the release's Euler-Maruyama adds σ_t·sqrt(dt) noise on every step, the last included
        euler = sde.sample(oracle, sde.noise_state(lq), lq, steps=steps, sampler="euler", progress=False)
        assert (euler - hq).abs().mean() < (lq - hq).abs().mean()


def test_loss_falls_on_a_fixed_tiny_batch():
    torch.manual_seed(0)
    model = IRSDE(**TINY)
    hq, lq = _pair()
    batch = {"hq": hq, "lq": lq}

    def loss_at_fixed_draws() -> float:
        with torch.random.fork_rng():
            torch.manual_seed(123)
            losses = [model.training_loss(batch)[0].item() for _ in range(4)]
        return sum(losses) / len(losses)

    before = loss_at_fixed_draws()
    optimizer = torch.optim.AdamW(model.unet.parameters(), lr=2e-3)
    for _ in range(60):
        loss, _ = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_ema()
    assert loss_at_fixed_draws() < 0.95 * before
    # EMA weights move but lag the live ones, and restore() samples with them.
    live, ema = model.unet.state_dict(), model.unet_ema.state_dict()
    assert any(not torch.equal(live[k], ema[k]) for k in live)
    model.eval()
    out = model.restore(batch, steps=5, seed=0)
    assert out.shape == lq.shape and out.min() >= 0 and out.max() <= 1
    model.unet_ema.load_state_dict(live)
    assert not torch.allclose(model.restore(batch, steps=5, seed=0), out)
    model.unet.load_state_dict(ema)  # live = old EMA; EMA = old live: output follows the EMA copy
    torch.testing.assert_close(model.restore(batch, steps=5, seed=0), model.restore(batch, steps=5, seed=0))


def _noise_error_at_the_last_step(model: IRSDE, batch: dict) -> float:
    """RMSE of the predicted noise at t = T, where the ML loss barely weights it, over fixed draws."""
    hq, lq = batch["hq"], batch["lq"]
    t = torch.full((hq.shape[0],), model.sde.T)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(7)
        x_t, noise = model.sde.forward_state(hq, lq, t)
        return float((model.unet(x_t, lq, t, None, None) - noise).pow(2).mean().sqrt())


def test_the_auxiliary_noise_loss_teaches_the_noise_at_large_t():
    hq, lq = _pair(size=16)
    batch = {"hq": hq, "lq": lq}
    errors = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = IRSDE(**TINY, noise_loss_weight=weight)
        with torch.random.fork_rng():
            _, logs = model.training_loss(batch)
        assert ("noise_mse" in logs) == (weight > 0)
        optimizer = torch.optim.AdamW(model.unet.parameters(), lr=3e-3)
        for _ in range(120):
            loss, _ = model.training_loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        errors[weight] = _noise_error_at_the_last_step(model, batch)
    assert errors[1.0] < 0.95 * errors[0.0], errors  # measured 0.341 vs 0.378 (2 threads)


def test_restore_is_seedable_and_accepts_sampler_overrides():
    model = IRSDE(**TINY).eval()
    _, lq = _pair()
    batch = {"lq": lq}
    first = model.restore(batch, steps=4, seed=3)
    torch.testing.assert_close(model.restore(batch, steps=4, seed=3), first)
    assert not torch.equal(model.restore(batch, steps=4, seed=4), first)
    assert model.restore(batch, steps=4, sampler="euler", seed=3).shape == lq.shape
    odd = torch.rand(1, 3, 13, 19)
    assert model.restore({"lq": odd}, steps=2, seed=0).shape == odd.shape


class StubDACLIP:
    """Same interface as restorezoo.models.daclip.DACLIP: encode_image → (content, degradation)."""

    embed_dim = 16

    def encode_image(
        self, images: torch.Tensor, control: bool = True, normalize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = images.mean(dim=(2, 3))
        content = torch.nn.functional.normalize(pooled.repeat(1, 6)[:, :16] + 0.1, dim=-1)
        degradation = torch.nn.functional.normalize(images.std(dim=(2, 3)).repeat(1, 6)[:, :16] + 0.2, dim=-1)
        return content, degradation


def test_da_clip_conditioning_changes_the_output_and_stays_out_of_the_state_dict():
    torch.manual_seed(0)
    model = IRSDE(**TINY).eval()
    for module in (model.unet.mid_attn.fn.fn, model.unet_ema.mid_attn.fn.fn):  # a zero proj_out hides context
        torch.nn.init.normal_(module.proj_out.weight, std=0.2)
    _, lq = _pair()
    plain = model.restore({"lq": lq}, steps=3, seed=0)
    model.set_daclip(StubDACLIP())
    degradation, content = model.conditioning(lq)
    assert degradation.shape == content.shape == (2, 16)
    conditioned = model.restore({"lq": lq}, steps=3, seed=0)
    assert (conditioned - plain).abs().mean() > 1e-4
    assert not any("daclip" in key for key in model.state_dict())


def test_released_style_state_dict_round_trips_through_from_official(tmp_path: Path):
    sizes = dict(nf=8, ch_mult=(1, 2), context_dim=16)
    source = ConditionalUNet(**sizes)
    path = tmp_path / "universal-ir.pth"
    torch.save({"params": source.state_dict()}, path)
    model = IRSDE.from_official(path, **sizes, T=10, progress=False)
    for key, value in source.state_dict().items():
        assert torch.equal(model.unet.state_dict()[key], value)
        assert torch.equal(model.unet_ema.state_dict()[key], value)
    assert not model.training


def test_quickstart_fit_test_restore_through_the_cli(tmp_path: Path):
    from restorezoo import load_model
    from restorezoo.data import Sample, load_image, save_image

    fast = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "0",
            "--data.init_args.batch_size", "2", "--model.init_args.steps", "2"]
    with working_directory(tmp_path):
        main(["fit", "--config", str(QUICKSTART), *fast])
        ckpt = tmp_path / "runs/irsde-quickstart/checkpoints/last.ckpt"
        assert ckpt.is_file()
        main(["test", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt), "--model.init_args.steps", "2",
              "--trainer.limit_test_batches", "1", "--metrics.output_dir", "table", "--metrics.save_images", "0"])
        assert (tmp_path / "table" / "benchmark.csv").is_file()
        photo = tmp_path / "photo.png"
        save_image(Sample("test", tasks=["noise"]).configure(training=False)[0]["lq"][:, :21, :30], photo)
        main(["restore", str(photo), "--ckpt", str(ckpt), "-o", "out"])
        assert load_image(tmp_path / "out" / "photo_restored.png").shape == (3, 21, 30)
    reloaded = load_model(ckpt=ckpt)
    assert isinstance(reloaded, IRSDE) and reloaded.unet_ema is not None and reloaded.sde.T == 20


def test_clipping_the_x0_estimate_keeps_an_inaccurate_network_on_the_image_range():
    sde = MeanRevertingSDE(T=20)
    lq = torch.rand(1, 3, 8, 8)
    x_T = sde.noise_state(lq, torch.Generator().manual_seed(0))

    def wrong(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)  # a badly trained noise predictor

    clipped = sde.sample(wrong, x_T, lq, generator=torch.Generator().manual_seed(1), progress=False, clip_x0=True)
    raw = sde.sample(wrong, x_T, lq, generator=torch.Generator().manual_seed(1), progress=False)  # the release
    assert clipped.min() > -0.5 and clipped.max() < 1.5
    assert (raw - lq).abs().max() > (clipped - lq).abs().max()


def test_a_released_file_of_another_size_is_one_clear_line(tmp_path: Path):
    from restorezoo.errors import CheckpointError

    path = tmp_path / "universal-ir.pth"
    torch.save(ConditionalUNet(nf=8, ch_mult=(1, 2)).state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit ConditionalUNet: .*shape mismatches") as error:
        IRSDE.from_official(path, nf=16, ch_mult=(1, 2), progress=False)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------- the release's numbers
# Reference values computed by running the release (Algolzw/daclip-uir, universal-image-restoration/
# utils/sde_utils.py, IRSDE(max_sigma=50, T=100, eps=0.005)); benchmarks/parity_official.py recomputes
# them against a checkout. Before the fix the cosine θ was DDPM's per-step β (θ̄ off by up to 44).
RELEASE_TABLES = {
    # schedule: (θ_0, θ_1, θ_50, θ_100), (θ̄_1, θ̄_50, θ̄_100), (σ̄_1, σ̄_50, σ̄_100), dt
    "cosine": ((0.0006142854690551758, 0.0016945600509643555, 0.506156325340271, 0.9997665882110596),
               (0.0016945600509643555, 9.792815208435059, 50.89944839477539),
               (0.003682623850181699, 0.1828695684671402, 0.19607597589492798), 0.10409380495548248),
    "linear": ((0.0009900990407913923, 0.00296039623208344, 0.09950494021177292, 0.19801980257034302),
               (0.00296039623208344, 2.561633825302124, 10.049010276794434),
               (0.010946808382868767, 0.18938346207141876, 0.19607597589492798), 0.5272476673126221),
    "constant": ((1.0, 1.0, 1.0, 1.0), (1.0, 50.0, 100.0),
                 (0.06217421218752861, 0.195587620139122, 0.19607597589492798), 0.05298317223787308),
}


@pytest.mark.parametrize("schedule", sorted(RELEASE_TABLES))
def test_the_sde_tables_are_the_releases(schedule: str):
    thetas, theta_bars, sigma_bars, dt = RELEASE_TABLES[schedule]
    sde = MeanRevertingSDE(T=100, max_sigma=50, eps=0.005, schedule=schedule)  # 50 → 50/255, as the release
    assert [float(sde.thetas[i]) for i in (0, 1, 50, 100)] == pytest.approx(thetas, rel=1e-6)
    assert [float(sde.theta_bars[i]) for i in (1, 50, 100)] == pytest.approx(theta_bars, rel=1e-6)
    assert [float(sde.sigma_bars[i]) for i in (1, 50, 100)] == pytest.approx(sigma_bars, rel=1e-6)
    assert sde.dt == pytest.approx(dt, rel=1e-6)


# The release's reverse_posterior / reverse_sde with a fixed stand-in network
# tanh(3(x − μ))·(0.5 + t/200), μ = torch.rand(1, 3, 4, 4) after manual_seed(0), and
# torch.manual_seed(7) before noise_state: (T, sample_T, sampler) → (sum, first four outputs).
RELEASE_CHAINS = {
    (20, 20, "posterior"): (-137.91127014160156, (-19.992250442504883, 9.599945068359375, 24.80583381652832, -49.63804626464844)),
    (20, 20, "euler"): (42.5289421081543, (1.9855531454086304, -0.8237316012382507, -0.16564135253429413, 1.3204869031906128)),
    (20, 5, "posterior"): (-100.75691986083984, (-18.578588485717773, 7.007853984832764, 21.318281173706055, -38.79429626464844)),
}


@pytest.mark.parametrize("case", sorted(RELEASE_CHAINS))
def test_the_chains_are_the_releases_with_the_same_draws(case: tuple[int, int, str]):
    T, steps, sampler = case
    total, first = RELEASE_CHAINS[case]
    mu = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))

    def network(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(3 * (x - mu)) * (0.5 + t.view(-1, 1, 1, 1) / 200)

    sde = MeanRevertingSDE(T=T, max_sigma=50 / 255)
    generator = torch.Generator().manual_seed(7)  # the same draws as the release's global RNG
    out = sde.sample(network, sde.noise_state(mu, generator), mu, steps=steps, sampler=sampler,
                     generator=generator, progress=False)
    assert float(out.sum()) == pytest.approx(total, rel=1e-5)
    assert [float(v) for v in out.flatten()[:4]] == pytest.approx(first, rel=1e-5, abs=1e-5)


def test_the_restorer_is_conditioned_on_raw_daclip_features():
    model = IRSDE(nf=8, ch_mult=(1, 2), T=10, daclip="tiny", progress=False)
    lq = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    degradation, content = model.conditioning(lq)
    raw_content, raw_degradation = model.daclip.encode_pixels(model.daclip.preprocess(lq))
    torch.testing.assert_close(content, raw_content)
    torch.testing.assert_close(degradation, raw_degradation)
    assert not torch.allclose(content.norm(dim=-1), torch.ones(2), atol=1e-3)  # not L2-normalised


def test_x0_parameterization_gives_the_release_score_fn_():
    sde = MeanRevertingSDE(T=100)
    hq, lq = _pair()
    x_t, noise = sde.forward_state(hq, lq, 40)
    # with the true x0 the score is the true −noise/σ̄_t, whichever parameterization produced it
    torch.testing.assert_close(sde.score(hq, x_t, lq, 40, "x0"), sde.score(noise, x_t, lq, 40, "noise"), atol=1e-3, rtol=1e-4)


def test_ema_warmup_follows_ema_pytorch():
    from restorezoo.models.base import ema_decay_at

    assert [ema_decay_at(c, 0.995, warmup=True) for c in (0, 100)] == [0.0, 0.0]  # copies first
    assert ema_decay_at(101, 0.995, warmup=True) == pytest.approx(1 - 2 ** (-2 / 3))
    assert ema_decay_at(10_000, 0.995, warmup=True) == 0.995
    assert ema_decay_at(0, 0.99) == 0.99


@pytest.mark.slow
def test_the_quickstart_as_configured_beats_its_degraded_input(tmp_path: Path):
    """The README's IR-SDE quickstart, fit and test exactly as configured: every row above its input."""
    import csv

    with working_directory(tmp_path):
        main(["fit", "--config", str(QUICKSTART)])
        main(["test", "--config", str(QUICKSTART), "--ckpt_path", "runs/irsde-quickstart/checkpoints/last.ckpt",
              "--metrics.output_dir", "table", "--metrics.save_images", "0"])
    with open(tmp_path / "table" / "benchmark.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    for row in rows:
        assert float(row["psnr"]) > float(row["psnr_lq"]), row
        assert float(row["ssim"]) > float(row["ssim_lq"]), row
