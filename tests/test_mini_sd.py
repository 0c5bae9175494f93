"""mini-sd, the packaged small Stable Diffusion: the diffusers path, CLIP's real tokenizer, its ceiling."""

from __future__ import annotations

import pytest
import torch

from restorezoo.data.sample_photos import DIFFRESTORER_SAMPLE_TASKS, SAMPLE_PHOTOS, center_crop, sample_photo
from restorezoo.metrics.functional import psnr
from restorezoo.models.stable_diffusion import (
    FrozenStableDiffusion,
    HFCLIPTokenizer,
    OpenCLIPTokenizer,
    write_clip_tokenizer,
)
from restorezoo.weights import MINI_SD, PACKAGED_STABLE_DIFFUSION
from tests.conftest import working_directory

PROMPTS = [
    "a photo of a ginger cat",
    "Upsample to 2.0x; Deblur with sigma 2.9; Denoise with sigma 0.10; Dejpeg with quality 40;",
    "",
    "Remove all degradation",
    "it's way too DARK!!! brighten it, 100%",
    "naïve café — ünïcödé 日本語",
    "a " * 100,  # truncated at 77 ids
]


@pytest.fixture(scope="module")
def mini_sd() -> FrozenStableDiffusion:
    return FrozenStableDiffusion.build(MINI_SD)


def test_written_clip_tokenizer_gives_open_clips_ids(tmp_path):
    from transformers import CLIPTokenizer

    write_clip_tokenizer(tmp_path)
    hf = HFCLIPTokenizer(CLIPTokenizer.from_pretrained(tmp_path))
    assert torch.equal(hf(PROMPTS), OpenCLIPTokenizer()(PROMPTS))


def test_mini_sd_is_a_diffusers_folder_loaded_like_sd15(mini_sd):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = PACKAGED_STABLE_DIFFUSION[MINI_SD]
    for sub in ("unet", "vae", "text_encoder"):
        assert list((folder / sub).glob("*.safetensors")), sub
    assert (folder / "scheduler" / "scheduler_config.json").is_file()
    assert isinstance(mini_sd.unet, UNet2DConditionModel) and isinstance(mini_sd.vae, AutoencoderKL)
    assert isinstance(mini_sd.text_encoder, CLIPTextModel)
    assert isinstance(mini_sd.tokenizer, HFCLIPTokenizer)  # the tokenizer/ files, as SD 1.5's
    assert torch.equal(mini_sd.tokenizer(PROMPTS), OpenCLIPTokenizer()(PROMPTS))
    assert mini_sd.scheduler_config["beta_schedule"] == "scaled_linear"
    assert mini_sd.vae_scale_factor == 1  # x1: see benchmarks/train_mini_sd.py
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    assert size <= 25 * 2**20, f"mini-sd is {size / 2**20:.1f} MB"


def test_mini_sd_reconstructs_held_out_photos_above_30_db(mini_sd):
    names = SAMPLE_PHOTOS["val"] + SAMPLE_PHOTOS["test"]
    images = torch.stack([center_crop(sample_photo(name), 128) for name in names])
    recon = mini_sd.decode_latents(mini_sd.encode_image(images))
    scores = psnr(recon, images)
    assert scores.min() >= 30.0, dict(zip(names, scores.tolist()))


def test_missing_packaged_backbone_is_one_clear_line(monkeypatch, tmp_path):
    from restorezoo.errors import WeightsNotFoundError

    monkeypatch.setitem(PACKAGED_STABLE_DIFFUSION, MINI_SD, tmp_path / "absent")
    with pytest.raises(WeightsNotFoundError, match="train_mini_sd.py"):
        FrozenStableDiffusion.build(MINI_SD)


def _fit_and_test(tmp_path, config, run: str) -> list[dict[str, str]]:
    """``restorezoo fit`` + ``test`` of a quickstart exactly as configured; the test table's rows."""
    import csv

    from restorezoo.cli import main

    with working_directory(tmp_path):
        main(["fit", "--config", str(config)])
        main(["test", "--config", str(config), "--ckpt_path", f"runs/{run}/checkpoints/last.ckpt",
              "--metrics.output_dir", "table", "--metrics.save_images", "0"])
    with open(tmp_path / "table" / "benchmark.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # fit + test as configured: about 8 minutes on 2 idle cores
def test_spire_quickstart_on_mini_sd_beats_its_inputs(tmp_path):
    from tests.conftest import REPO

    rows = _fit_and_test(tmp_path, REPO / "configs" / "spire" / "quickstart.yaml", "spire-quickstart")
    assert len(rows) == 4
    for row in rows:
        assert float(row["psnr"]) > float(row["psnr_lq"]), row
        assert float(row["ssim"]) > float(row["ssim_lq"]), row
        assert float(row["psnr_ceiling"]) >= 30.0, row


@pytest.mark.slow  # fit + test as configured, then 96 classifications: 3 min 51 s on 2 idle cores (2026-12-02)
def test_diffrestorer_quickstart_on_mini_sd_beats_its_inputs_and_classifies_held_out_photos(tmp_path):
    """Every row of the quickstart's table (σ50 noise and the paper's four mixtures) beats its input on
    PSNR and SSIM (SD's decoder: the stage-1 test has no stage-2 decoder). P_D's classifier on the held-out
    photos, 8 types × 4 draws (65 / 96 measured, 33 / 96 with the random tiny CLIP tower;
    benchmarks/miniature.py reports the same figure)."""
    from restorezoo.data import Sample
    from restorezoo.models import DiffRestorer
    from tests.conftest import REPO

    rows = _fit_and_test(tmp_path, REPO / "configs" / "diffrestorer" / "quickstart.yaml", "diffrestorer-quickstart")
    tasks = {row["task"] for row in rows} - {"all"}
    assert tasks == {"noise", "noise+blur", "snow+noise", "raindrop+noise+blur", "jpeg+noise+blur"}, tasks
    for row in rows:
        assert float(row["psnr"]) > float(row["psnr_lq"]), row
        assert float(row["ssim"]) > float(row["ssim_lq"]), row
        assert float(row["psnr_ceiling"]) >= 30.0, row

    model = DiffRestorer.from_checkpoint(tmp_path / "runs/diffrestorer-quickstart/checkpoints/last.ckpt").eval()
    right = total = 0
    for seed in range(1000, 1004):
        data = Sample("test", tasks=list(DIFFRESTORER_SAMPLE_TASKS), max_side=96, seed=seed).configure(training=False)
        samples = [data[i] for i in range(len(data))]
        with torch.no_grad():
            guesses = model.predict_degradation(torch.stack([s["lq"] for s in samples]))
        truths = [s["task"] if isinstance(s["task"], str) else model.degradation_classes[int(s["task"])] for s in samples]
        right += sum(g == t for g, t in zip(guesses, truths))
        total += len(samples)
    assert total == 96 and right / total >= 0.55, f"{right} / {total}"


@pytest.mark.slow  # the strength run's fit as configured: about an hour on one CPU thread
def test_spire_strength_run_sharpens_monotonically_with_the_prompted_sigma(tmp_path):
    """SPIRE's Fig. 7 in miniature: "Deblur with sigma s;" for s = 0.5 … 3.0 on the same σ 2 blurred
    test photos gives outputs whose mean gradient energy rises with s (benchmarks/miniature.py's sweep)."""
    from benchmarks.miniature import SIGMAS, STRENGTH_CONFIG, fit, sigma_sweep
    from restorezoo.models import SPIRE

    model = SPIRE.from_checkpoint(fit(STRENGTH_CONFIG, "spire-strength", tmp_path)).eval()
    with torch.no_grad():
        _, _, energy, _ = sigma_sweep(model, 2.0, 96, SIGMAS)
    mean = energy.mean(0)
    assert (mean.diff() > 0).all(), dict(zip(SIGMAS, mean.tolist()))
    assert float(mean.max() / mean.min()) > 1.2  # the prompt moves the output, not by rounding noise


def test_mini_sd_autoencoder_is_exact_to_70_db_in_float_on_whole_held_out_photos(mini_sd):
    """The README's "77–80 dB in float": whole val/test photos, unquantised PSNR of the round trip."""
    names = SAMPLE_PHOTOS["val"] + SAMPLE_PHOTOS["test"]
    scores = [float(psnr(mini_sd.decode_latents(mini_sd.encode_image(p[None])), p[None], quantize=False))
              for p in (sample_photo(name) for name in names)]
    assert min(scores) > 70.0, dict(zip(names, scores))


# ---------------------------------------------------------------------- the text tower's number tokens
def test_mini_sd_text_tower_is_the_seeded_random_tower_but_its_number_tokens(mini_sd):
    from benchmarks.train_mini_sd import number_tokens, random_tower

    tokenizer = OpenCLIPTokenizer()
    random_state = random_tower(0).state_dict()
    packaged = mini_sd.text_encoder.float().state_dict()
    assert set(random_state) == set(packaged)
    for key, value in packaged.items():
        if key != "embeddings.token_embedding.weight":
            assert torch.equal(value, random_state[key]), key
    rows = torch.tensor(number_tokens(tokenizer))
    table, random_table = packaged["embeddings.token_embedding.weight"], random_state["embeddings.token_embedding.weight"]
    others = torch.ones(table.shape[0], dtype=torch.bool)
    others[rows] = False
    assert torch.equal(table[others], random_table[others])
    assert not torch.equal(table[rows], random_table[rows])


def test_mini_sd_writes_nearby_restoration_strengths_nearby(mini_sd):
    """SPIRE's strength control needs "3.0" next to "2.9" and "3.1"; the random tower put it next to "0.3"."""
    from benchmarks.train_mini_sd import number_geometry, random_tower

    tokenizer = OpenCLIPTokenizer()
    fitted = number_geometry(mini_sd.text_encoder.float(), tokenizer)
    random = number_geometry(random_tower(0), tokenizer)
    assert random["nearest"][3.0] == 0.3 and random["spearman"] < 0.5  # what the fit repairs
    assert fitted["spearman"] > 0.9, fitted["spearman"]
    far = {s: n for s, n in fitted["nearest"].items() if s <= 3.9 and abs(s - n) > 0.2 + 1e-9}
    assert not far, far


def test_number_token_fit_moves_only_number_rows_and_keeps_every_caption():
    from benchmarks.train_mini_sd import number_aware_digits, number_tokens, random_tower

    tokenizer = OpenCLIPTokenizer()
    tower = random_tower(3)
    before = tower.embeddings.token_embedding.weight.detach().clone()
    number_aware_digits(tower, tokenizer, seed=0, steps=30)  # raises if a caption's embedding moved
    after = tower.embeddings.token_embedding.weight.detach()
    changed = (after != before).any(dim=1).nonzero().flatten().tolist()
    assert sorted(changed) == sorted(number_tokens(tokenizer))
    assert not tower.embeddings.token_embedding.weight.requires_grad


def test_strength_sweep_inputs_do_not_depend_on_the_kernel_size():
    """benchmarks/miniature.py blurs the sweep's σ 2 inputs with the quickstart pipeline's 19-tap kernel;
    the strength run's σ range would give 25 taps. Its comment says the difference is at most 3.1e-6."""
    from benchmarks.miniature import blurred_test_photos
    from restorezoo.data.degrade import ops

    _, hq, lq = blurred_test_photos(2.0, 96)
    wide = ops.gaussian_blur(hq, [2.0] * len(hq), kernel_size=25).clamp(0, 1)
    assert float((wide - lq).abs().max()) < 4e-6
