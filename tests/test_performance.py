"""Fast paths: tiled inference (exact for local models, seamless for the rest), channels_last, compile
fallback, SDPA attention, and no host syncs in the training step."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restorezoo.inference import compile_model, restore_tensor
from restorezoo.models.base import RestorationModule
from restorezoo.tiling import tile_count, tiled_apply

TINY = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), text_encoder="minilm")


class LocalConvRestorer(RestorationModule):
    """Three 3×3 convolutions: receptive radius 3, so tiles with a margin >= 3 are exact."""

    channels_last = True
    compile_targets = ("net",)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(8, 3, 3, padding=1))
        self.seen: list[tuple[int, int]] = []

    def restore(self, batch: dict[str, Any], **sampling: Any) -> torch.Tensor:
        self.seen.append(tuple(batch["lq"].shape[-2:]))
        return torch.sigmoid(self.net(batch["lq"]))


@pytest.fixture()
def image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(3, 75, 90)


def test_tiles_equal_the_whole_image_when_the_margin_covers_the_receptive_field(image):
    model = LocalConvRestorer()
    whole = restore_tensor(model, image, fast=False)
    # overlap 16 → a margin of 4 pixels >= the receptive radius 3: every used pixel is exact
    tiled = restore_tensor(model, image, tile=32, tile_overlap=16, fast=False)
    assert tiled.shape == image.shape
    assert (tiled - whole).abs().max() < 1e-5
    # a margin of 0 (overlap 2) uses border pixels computed on zero padding: visibly different
    cut = restore_tensor(model, image, tile=32, tile_overlap=2, fast=False)
    assert (cut - whole).abs().max() > 1e-3


def test_tiling_starts_by_itself_above_the_models_pixel_budget(image):
    model = LocalConvRestorer()
    model.max_pixels, model.default_tile, model.default_tile_overlap = 64 * 64, 48, 16
    out = restore_tensor(model, image)
    assert out.shape == image.shape
    assert model.seen and all(side <= 48 for shape in model.seen for side in shape)
    assert len(model.seen) == tile_count(75, 90, 48, 16)
    model.seen.clear()
    restore_tensor(model, image, max_pixels=10**6)  # a larger budget: one pass
    assert model.seen == [(75, 90)]


def test_tiled_apply_scales_for_vae_encode_and_decode():
    torch.manual_seed(0)
    latents = torch.rand(1, 4, 20, 28)

    def upsample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=8, mode="nearest")[:, :3]

    def downsample(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 8)

    pixels = upsample(latents)
    assert torch.allclose(tiled_apply(upsample, latents, 12, 4, scale=8), pixels, atol=1e-6)
    assert torch.allclose(tiled_apply(downsample, pixels, 96, 32, scale=1 / 8), latents[:, :3], atol=1e-6)
    with pytest.raises(ValueError, match="multiples of 8"):
        tiled_apply(downsample, pixels, 90, 30, scale=1 / 8)


def test_tiled_instructir_has_no_seams(image):
    from restorezoo.models import InstructIR

    model = InstructIR(**TINY).eval()
    whole = restore_tensor(model, image, "remove the noise")
    tiled = restore_tensor(model, image, "remove the noise", tile=48, tile_overlap=24)
    # NAFNet's channel attention pools globally, so tiles are not exact; the blend keeps them close
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.02


def test_fast_path_matches_eager_and_switches_memory_format(image):
    from restorezoo.models import InstructIR

    model = InstructIR(**TINY).eval()
    eager = restore_tensor(model, image, "remove the noise", fast=False)
    weight = model.net.intro.weight if hasattr(model.net, "intro") else next(p for p in model.parameters() if p.ndim == 4)
    assert weight.is_contiguous()
    fast = restore_tensor(model, image, "remove the noise")
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert torch.allclose(fast, eager, atol=1e-4)
    restore_tensor(model, image, "remove the noise", fast=False)
    assert weight.is_contiguous()


def test_compile_falls_back_to_eager_with_one_warning(image, monkeypatch):
    model = LocalConvRestorer()
    expected = restore_tensor(model, image, fast=False)

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C++ compiler\nlong trace")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    compile_model(model)
    with pytest.warns(UserWarning, match="torch.compile failed for LocalConvRestorer.net .*no C\\+\\+ compiler"):
        first = restore_tensor(model, image, fast=False)
    assert torch.equal(first, expected)
    assert list(model.state_dict()) == list(LocalConvRestorer().state_dict())  # checkpoints unchanged
    with pytest.raises(RuntimeError, match="channels"):  # the model's own errors still surface
        model.net(torch.rand(1, 5, 8, 8))


def test_attention_runs_through_sdpa(monkeypatch):
    """Every quadratic attention in the zoo's own blocks calls F.scaled_dot_product_attention."""
    from restorezoo.models.irsde import ConditionalUNet

    calls = []
    original = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    unet = ConditionalUNet(nf=8, ch_mult=(1, 2), context_dim=16)
    x = torch.rand(1, 3, 16, 16)
    unet(x, x, torch.tensor([5]), torch.rand(1, 16), torch.rand(1, 16))
    assert calls, "IR-SDE's cross-attention did not use SDPA"

    from restorezoo.models import DACLIP

    daclip = DACLIP(tiny=True).eval()
    attention = [m for m in daclip.modules() if isinstance(m, nn.MultiheadAttention)]
    calls.clear()
    # in eval, nn.MultiheadAttention may take its fused native path (SDPA kernels inside): count that too
    native = torch._native_multi_head_attention

    def counting_native(*args, **kwargs):
        calls.append(args[0].shape)
        return native(*args, **kwargs)

    monkeypatch.setattr(torch, "_native_multi_head_attention", counting_native)
    with torch.no_grad():
        daclip.encode_image(torch.rand(1, 3, 32, 32))
        daclip.encode_text(["a photo"])
    assert attention and len(calls) >= len(attention)  # open_clip's towers and the controller copy


def test_diffusers_attention_uses_the_sdpa_processor():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from restorezoo.models.stable_diffusion import FrozenStableDiffusion

    sd = FrozenStableDiffusion.tiny()
    attention = [m for module in (sd.unet, sd.vae) for m in module.modules() if isinstance(m, Attention)]
    assert attention and all(isinstance(m.processor, AttnProcessor2_0) for m in attention)


class _NoHostSync:
    """Make any Python-side read of a tensor value (.item(), bool(), int(), .tolist()) raise."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(name):
            def method(self, *args, **kwargs):
                raise AssertionError(f"host sync: Tensor.{name} in the training step")
            return method

        for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
            monkeypatch.setattr(torch.Tensor, name, refuse(name))


def test_instructir_training_loss_reads_nothing_back(monkeypatch):
    from restorezoo.models import InstructIR

    model = InstructIR(**TINY)
    model.embed_prompts(["remove the noise", "deblur"])  # encoder cache warm (the encoder reads on the host)
    batch = {"lq": torch.rand(2, 3, 16, 16), "hq": torch.rand(2, 3, 16, 16), "task": torch.tensor([0, -1]),
             "prompt": ["remove the noise", "deblur"]}
    _NoHostSync(monkeypatch)
    loss, logs = model.training_loss(batch)
    monkeypatch.undo()
    assert torch.isfinite(loss) and set(logs) >= {"l1", "intent_ce", "intent_acc"}


def test_the_sampler_shards_one_global_order_across_ranks():
    from restorezoo.data.samplers import ResumableSampler

    def draw(world: int, rank: int) -> list[tuple[int, int]]:
        sampler = ResumableSampler(10)
        sampler.seed, sampler.num_replicas, sampler.rank = 7, world, rank
        sampler.num_samples = -(-sampler.total_samples // world)
        return [(int(i), i.seed) for i in sampler]

    single = draw(1, 0)
    first, second = draw(2, 0), draw(2, 1)
    assert len(first) == len(second) == 5
    interleaved = [pair for two in zip(first, second) for pair in two]
    assert interleaved == single  # global batch k of 2 ranks = batch k of one process, twice the size
    assert sorted(i for i, _ in single) == list(range(10))


def test_per_sample_seeds_make_a_split_batch_train_like_the_whole():
    """Diffusion timesteps and noise come from each sample's seed, not from the batch or the global RNG."""
    from restorezoo.models import IRSDE

    torch.manual_seed(0)
    model = IRSDE(nf=8, ch_mult=(1, 2), T=10, ema_decay=None, progress=False)
    hq, lq = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    batch = {"hq": hq, "lq": lq, "seed": [11, 12, 13, 14], "task": torch.zeros(4, dtype=torch.long)}

    def half(rows: slice) -> dict[str, Any]:
        return {"hq": hq[rows], "lq": lq[rows], "seed": batch["seed"][rows], "task": batch["task"][rows]}

    torch.manual_seed(1)
    whole, _ = model.training_loss(batch)
    torch.manual_seed(2)  # a different global RNG state changes nothing
    parts = [model.training_loss(half(slice(0, 2)))[0], model.training_loss(half(slice(2, 4)))[0]]
    assert torch.allclose(whole, torch.stack(parts).mean(), atol=1e-6)
    unseeded = {k: v for k, v in batch.items() if k != "seed"}
    assert not torch.allclose(whole, model.training_loss(unseeded)[0])  # without seeds: the global RNG


def test_restore_refuses_sampler_options_for_a_one_pass_model(tmp_path, tiny_ckpt):
    from restorezoo.cli import main
    from restorezoo.data import save_image

    photo = tmp_path / "photo.png"
    save_image(torch.rand(3, 20, 24), photo)
    ckpt = tiny_ckpt
    with pytest.raises(SystemExit):
        main(["restore", str(photo), "--ckpt", str(ckpt), "--steps", "5", "-o", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    main(["restore", str(photo), "--ckpt", str(ckpt), "--eager", "--tile", "16", "-o", str(tmp_path / "out")])
    assert (tmp_path / "out" / "photo_restored.png").is_file()


def test_declared_sampling_options_are_the_keywords_each_restore_takes():
    """``sampling_options`` (what ``restorezoo restore`` passes --steps/--seed/--sampler by) names what sampling takes."""
    import inspect

    from restorezoo.models import IRSDE, SPIRE, DiffRestorer, InstructIR, NAFNetDACLIP
    from restorezoo.models.diffrestorer_decoder import DiffRestorerDecoder
    from restorezoo.models.latent_diffusion import LatentDiffusionRestorer

    def keywords(function: Any, *internal: str) -> set[str]:
        return set(inspect.signature(function).parameters) - {"self", "batch", "sampling", *internal}

    # restore decodes (decode_tile) what restored_latents samples with the other options
    latent = keywords(LatentDiffusionRestorer.restored_latents, "condition_extra") | keywords(LatentDiffusionRestorer.restore)
    assert set(IRSDE.sampling_options) == keywords(IRSDE.sample_chain)  # IR-SDE's restore clamps sample_chain
    assert set(SPIRE.sampling_options) == set(DiffRestorerDecoder.sampling_options) == latent
    assert set(DiffRestorer.sampling_options) == latent | keywords(DiffRestorer.restore)
    assert InstructIR.sampling_options == NAFNetDACLIP.sampling_options == RestorationModule.sampling_options == ()


@pytest.mark.parametrize("family", ["instructir", "irsde", "spire"])
def test_frozen_backbones_stay_out_of_ddp_gradient_sync(family):
    """DDP all-reduces the parameters that require grad: the frozen encoders and SD must not be among them."""
    from restorezoo.models import IRSDE, SPIRE, InstructIR

    if family == "instructir":
        model = InstructIR(**TINY)
        frozen = list(model.text_encoder.model.parameters())
    elif family == "irsde":
        model = IRSDE(nf=8, ch_mult=(1, 2), T=10, daclip="tiny", progress=False)
        frozen = list(model.daclip.parameters())
    else:
        model = SPIRE(pretrained="tiny", steps=2, progress=False)
        frozen = list(model.sd.parameters())
    synced = [p for p in model.parameters() if p.requires_grad]
    assert synced and frozen
    assert not {id(p) for p in frozen} & {id(p) for p in synced}
    assert all(not p.requires_grad for p in frozen)


def test_daclip_encodes_each_text_once_and_forgets_on_new_weights():
    from restorezoo.models import DACLIP

    model = DACLIP(tiny=True)
    calls = []
    original = model.clip.encode_text

    def counting(tokens, normalize=False):
        calls.append(tokens.shape[0])
        return original(tokens, normalize=normalize)

    model.clip.encode_text = counting
    first = model.word_embeddings()
    again = model.word_embeddings()
    assert torch.equal(first, again) and calls == [len(model.degradation_words)]
    model.encode_text(["a photo", model.degradation_words[0]])
    assert calls[-1] == 1  # only the unseen string
    model.load_state_dict(model.state_dict())
    model.word_embeddings()
    assert calls[-1] == len(model.degradation_words)


def test_daclip_masked_contrastive_loss_equals_the_loss_on_the_labelled_rows():
    from restorezoo.models import DACLIP

    model = DACLIP(tiny=True)
    torch.manual_seed(0)
    image, text = F.normalize(torch.randn(5, 8), dim=-1), F.normalize(torch.randn(5, 8), dim=-1)
    valid = torch.tensor([True, False, True, True, False])
    masked = model.clip_loss(image, text, valid)
    assert torch.allclose(masked, model.clip_loss(image[valid], text[valid]), atol=1e-6)
    assert torch.allclose(model.clip_loss(image, text, torch.ones(5, dtype=torch.bool)), model.clip_loss(image, text))
    assert model.clip_loss(image, text, torch.zeros(5, dtype=torch.bool)) == 0


def test_daclip_training_loss_reads_nothing_back(monkeypatch):
    from restorezoo.models import DACLIP

    model = DACLIP(tiny=True)
    model.task_to_class = torch.tensor([0, 1])
    batch = {"lq": torch.rand(3, 3, 32, 32), "task": torch.tensor([0, -1, 1]), "caption": ["a cat", "", "a dog"]}
    model.training_loss(batch)  # text cache warm: strings are tokenized on the host
    _NoHostSync(monkeypatch)
    loss, logs = model.training_loss(batch)
    monkeypatch.undo()
    assert torch.isfinite(loss) and logs["loss_degradation"] > 0


@pytest.mark.parametrize("family", ["irsde", "spire"])
def test_diffusion_training_losses_read_nothing_back(family, monkeypatch):
    from restorezoo.models import IRSDE, SPIRE

    if family == "irsde":
        model = IRSDE(nf=8, ch_mult=(1, 2), T=10, daclip="tiny", progress=False)
    else:
        model = SPIRE(pretrained="tiny", steps=2, progress=False)
    batch = {"lq": torch.rand(2, 3, 32, 32), "hq": torch.rand(2, 3, 32, 32), "task": torch.tensor([0, 1]),
             "prompt": ["Denoise", ""], "caption": ["a cat", ""], "seed": [3, 4], "params": [{}, {}]}
    model.training_loss(batch)  # text caches warm
    _NoHostSync(monkeypatch)
    loss, _ = model.training_loss(batch)
    monkeypatch.undo()
    assert torch.isfinite(loss)


@pytest.mark.slow
def test_compiled_instructir_matches_eager():
    """A real torch.compile (inductor, about a minute on 2 CPU cores): no fallback warning, same output."""
    import warnings

    from restorezoo.models import InstructIR

    model = InstructIR(**TINY).eval()
    image = torch.rand(3, 64, 64)
    eager = restore_tensor(model, image, "remove the noise", fast=False)
    compile_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a fallback to eager would warn
        compiled = restore_tensor(model, image, "remove the noise")
    assert torch.allclose(compiled, eager, atol=1e-4)


def test_latent_diffusion_step_counts_outside_the_schedule_are_one_line():
    from restorezoo.errors import RestoreZooError
    from restorezoo.models import SPIRE

    model = SPIRE(pretrained="tiny", steps=2, progress=False)
    for steps in (0, 1000):
        with pytest.raises(RestoreZooError, match=r"steps must be in \[1, 999\]"):
            restore_tensor(model, torch.rand(3, 32, 32), steps=steps, scheduler="ddim")
