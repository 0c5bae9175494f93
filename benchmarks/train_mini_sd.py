"""Train ``mini-sd``: a small latent-diffusion backbone in Stable Diffusion 1.5's diffusers layout.

No Stable Diffusion can be downloaded here and SPIRE / Diff-Restorer have no released weights, so a
CPU user's only evidence that their training code restores is a run on a backbone that can
reconstruct photos at all. This script trains one on the embedded sample's *train* photos
(scikit-image's, ``restorezoo.data.sample_photos``) and writes ``unet/ vae/ text_encoder/ tokenizer/
scheduler/`` (safetensors) so it loads through ``FrozenStableDiffusion.from_pretrained``, the path a
real SD 1.5 folder takes. What differs from SD 1.5, and why:

* **Autoencoder ×1, 4 latent channels** (SD: ×8). A ×4 KL autoencoder tops out near 27–28 dB even at
  LDM scale, below the inputs of mild degradations, and the ×2 ones this machine can train in its budget
  stay far lower (see ``identity_autoencoder``); this one starts as an exact codec and fine-tunes under
  MSE + 1e-6·KL (SD's KL weight), no LPIPS/GAN terms (PSNR is what the quickstarts measure).
* **UNet prior** ``(32, 64, 64)``, cross-attention on a 32-d CLIP text tower, SD 1.5's noise
  schedule and ε-prediction, trained on VAE latents of augmented crops with the sample's captions
  (``SAMPLE_CAPTIONS``; 10 % dropped, as SD's classifier-free guidance training).
* **Text encoder**: SD's CLIP text architecture at 32-d, randomly initialised and frozen (there is
  no text corpus here to train it on); CLIP's real BPE tokenizer (open_clip ships its vocabulary)
  written as ``vocab.json``/``merges.txt``, so SD's ``CLIPTokenizer`` reads it. Only the embeddings
  of the digit tokens and "." are then fitted (``number_aware_digits``), because SPIRE reads numbers
  ("Deblur with sigma 3.0;") through this frozen tower and a random one writes "3.0" next to "0.3".

Reproducible from ``--seed`` (fixed step counts, one generator). Writes a log of losses and
held-out reconstruction PSNR (``train_log.jsonl`` next to the weights) and a summary table::

    python benchmarks/train_mini_sd.py                       # -> restorezoo/assets/mini-sd (packaged)
    python benchmarks/train_mini_sd.py --out /tmp/mini-sd --vae-steps 200 --unet-steps 200   # quick try
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from restorezoo.data.sample_photos import SAMPLE_CAPTIONS as CAPTIONS
from restorezoo.data.sample_photos import SAMPLE_PHOTOS, center_crop, sample_photo
from restorezoo.metrics.functional import psnr
from restorezoo.models.stable_diffusion import (
    SD15_SCHEDULER,
    TINY_TEXT_CONFIG,
    OpenCLIPTokenizer,
    write_clip_tokenizer,
)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "restorezoo" / "assets" / "mini-sd"

VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",),
    block_out_channels=(32,),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=1,
    sample_size=64,
    mid_block_add_attention=False,
)
"""×1, 4 latent channels (RGB and luma at init), one norm group, no attention: see ``identity_autoencoder``."""

UNET_CONFIG: dict[str, Any] = dict(
    sample_size=64,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 64),
    layers_per_block=1,
    attention_head_dim=8,
    norm_num_groups=32,
)
"""Attention only at 1/2 and 1/4 of the latent size (SD 1.5 has it at 1, 1/2, 1/4): CPU cost."""

TEXT_CONFIG = TINY_TEXT_CONFIG
"""The random frozen text tower: ``FrozenStableDiffusion.tiny``'s (SD 1.5's CLIP text architecture at 32-d)."""


# ====================================================================== the autoencoder's start
ANCHOR, OFFSET = 50.0, 15.0
"""Constant ±ANCHOR channels pin GroupNorm's per-image statistics; OFFSET keeps SiLU in its linear range."""


def _pass_through_norm(norm: torch.nn.GroupNorm, signals: int, sigma: float) -> None:
    """GroupNorm + SiLU ≈ x + OFFSET on channels [0, 2·signals): the ±signal pairs cancel in the mean and
    the anchors dominate the variance, so the per-image normalisation is a fixed scale (error ≤ 6e-4·x)."""
    norm.weight.zero_()
    norm.bias.zero_()
    norm.weight[: 2 * signals] = sigma
    norm.bias[: 2 * signals] = OFFSET


def _fan_out(conv: torch.nn.Conv2d, signals: int) -> None:
    """A 3×3 conv writing (+x, −x, +ANCHOR, −ANCHOR) from its first ``signals`` input channels."""
    conv.weight.zero_()
    conv.bias.zero_()
    for c in range(signals):
        conv.weight[c, c, 1, 1] = 1.0
        conv.weight[signals + c, c, 1, 1] = -1.0
    conv.bias[2 * signals] = ANCHOR
    conv.bias[2 * signals + 1] = -ANCHOR


def identity_autoencoder(config: dict[str, Any]) -> torch.nn.Module:
    """An ``AutoencoderKL`` of ``config`` (×1, one norm group) that starts as an exact codec: latent = RGB
    (and luma), decoder = its inverse, posterior std e^-6, every residual branch at zero.

    Why: the ×2 and ×4 autoencoders this machine can train in its budget stay far below the 30 dB a
    restoring backbone needs (×2, 4-8 channels: 18.4 dB on the held-out photos after 200 steps, 4 min),
    and the decoder of a ×2 latent cannot even represent the identity at initialisation (nearest
    upsampling hides each pixel's position in its 2×2 cell from a shift-invariant conv). A ×1 latent can,
    so the fine-tuning starts at the ceiling instead of climbing towards it.
    """
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**config)
    channels = vae.config.block_out_channels[-1]
    latents = vae.config.latent_channels
    if len(vae.config.block_out_channels) != 1 or vae.config.norm_num_groups != 1 or latents < 3:
        raise ValueError("identity_autoencoder needs one block (×1), norm_num_groups 1 and ≥ 3 latent channels")
    sigma = ANCHOR * math.sqrt(2 / channels)
    with torch.no_grad():
        for coder in (vae.encoder, vae.decoder):
            for module in coder.modules():
                if type(module).__name__ == "ResnetBlock2D":
                    module.conv2.weight.zero_()
                    module.conv2.bias.zero_()
            _pass_through_norm(coder.conv_norm_out, 3, sigma)
        _fan_out(vae.encoder.conv_in, 3)
        _fan_out(vae.decoder.conv_in, 3)
        out = vae.encoder.conv_out  # 2·latents channels: means, then log-variances
        out.weight.zero_()
        out.bias.zero_()
        luma = (0.299, 0.587, 0.114)
        for c in range(3):
            out.weight[c, c, 1, 1] = 1.0
            out.bias[c] = -OFFSET
        for extra in range(3, latents):  # luma in the fourth channel (and any further one)
            for c in range(3):
                out.weight[extra, c, 1, 1] = luma[c]
            out.bias[extra] = -OFFSET
        out.bias[latents:] = -12.0
        decoder_out = vae.decoder.conv_out
        decoder_out.weight.zero_()
        for c in range(3):
            decoder_out.weight[c, c, 1, 1] = 1.0
        decoder_out.bias.fill_(-OFFSET)
        for conv in (vae.quant_conv, vae.post_quant_conv):
            if conv is not None:
                conv.weight.copy_(torch.eye(conv.out_channels)[:, :, None, None])
                conv.bias.zero_()
    return vae


# ====================================================================== data
def train_photos() -> dict[str, torch.Tensor]:
    return {name: sample_photo(name) for name in SAMPLE_PHOTOS["train"]}


def held_out_crops(side: int = 128) -> torch.Tensor:
    """The val and test photos, centre-cropped to ``side``: the reconstruction PSNR the log reports."""
    names = SAMPLE_PHOTOS["val"] + SAMPLE_PHOTOS["test"]
    return torch.stack([center_crop(sample_photo(name), side) for name in names])


def random_crops(
    photos: dict[str, torch.Tensor], count: int, size: int, generator: torch.Generator, permute_colours: bool
) -> tuple[torch.Tensor, list[str]]:
    """``count`` augmented crops: a random photo, scale in [0.5, 1], crop, flips, a quarter turn and
    (for the autoencoder, which must reconstruct any colour) a random channel order."""
    names = list(photos)
    crops, chosen = [], []
    for _ in range(count):
        name = names[int(torch.randint(len(names), (1,), generator=generator))]
        image = photos[name]
        scale = 0.5 + 0.5 * float(torch.rand((), generator=generator))
        if scale < 0.98:
            height, width = image.shape[-2:]
            target = (max(size, round(height * scale)), max(size, round(width * scale)))
            image = F.interpolate(image[None], size=target, mode="bicubic", antialias=True, align_corners=False)[0]
            image = image.clamp(0, 1)
        height, width = image.shape[-2:]
        top = int(torch.randint(height - size + 1, (1,), generator=generator))
        left = int(torch.randint(width - size + 1, (1,), generator=generator))
        crop = image[:, top : top + size, left : left + size]
        if float(torch.rand((), generator=generator)) < 0.5:
            crop = crop.flip(-1)
        crop = torch.rot90(crop, int(torch.randint(4, (1,), generator=generator)), dims=(-2, -1))
        if permute_colours:
            crop = crop[torch.randperm(3, generator=generator)]
        crops.append(crop)
        chosen.append(name)
    return torch.stack(crops), chosen


# ====================================================================== training
def cosine_lr(step: int, steps: int, peak: float, warmup: int = 50, floor: float = 0.02) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def log_line(log: Path, record: dict[str, Any]) -> None:
    with log.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


@torch.no_grad()
def reconstruction_psnr(vae: torch.nn.Module, images: torch.Tensor) -> float:
    """Mean PSNR (RGB, uint8-quantised) of posterior-mean reconstructions."""
    vae.eval()
    latents = vae.encode(images * 2 - 1).latent_dist.mean
    recon = ((vae.decode(latents).sample + 1) / 2).clamp(0, 1)
    vae.train()
    return float(psnr(recon, images).mean())


def train_vae(args: argparse.Namespace, photos: dict[str, torch.Tensor], log: Path) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    vae = identity_autoencoder({**VAE_CONFIG, "latent_channels": args.latent_channels,
                                "block_out_channels": (args.vae_width,)})
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.vae_lr)
    held_out = held_out_crops()
    print(f"VAE: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M parameters")
    bar = tqdm(range(args.vae_steps), desc="autoencoder")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.vae_steps, args.vae_lr)
        images, _ = random_crops(photos, args.batch_size, args.crop, generator, permute_colours=True)
        posterior = vae.encode(images * 2 - 1).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(posterior.mean + posterior.std * noise).sample
        mse = F.mse_loss(recon, images * 2 - 1)
        kl = posterior.kl().mean() / images[0].numel()
        loss = mse + args.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        record: dict[str, Any] = {"stage": "vae", "step": step, "mse": float(mse), "kl": float(kl)}
        if (step + 1) % args.eval_every == 0 or step + 1 == args.vae_steps:
            record["held_out_psnr"] = reconstruction_psnr(vae, held_out)
            bar.set_postfix(psnr=f"{record['held_out_psnr']:.2f}")
        log_line(log, record)
    return vae.eval().requires_grad_(False)


@torch.no_grad()
def latent_scale(vae: torch.nn.Module, photos: dict[str, torch.Tensor], generator: torch.Generator) -> float:
    """1 / std of posterior-mean latents on training crops (SD 1.5's 0.18215 was found the same way)."""
    images, _ = random_crops(photos, 64, 64, generator, permute_colours=False)
    latents = vae.encode(images * 2 - 1).latent_dist.mean
    return float(1.0 / latents.std())


# ====================================================================== number tokens
def number_tokens(tokenizer: Any) -> list[int]:
    """The ids of "0"…"9" and "." (open_clip's BPE writes every digit of a number as its own token)."""
    return [int(tokenizer([symbol])[0, 1]) for symbol in [*"0123456789", "."]]


def restoration_prompts_varying(stage: str, values: list[float], rng: random.Random) -> list[str]:
    """SPIRE's restoration prompts that differ only in ``stage``'s value, inside a random set of other
    stages (each kept with p 0.5, the pipeline's skip rate) drawn once for the batch."""
    from restorezoo.data.degrade.parameterized import STAGE_WORDS, STAGES, restoration_prompt

    others = {name: draw_value(name, rng) for name in STAGES if name != stage and rng.random() < 0.5}
    prompts = []
    for value in values:
        chosen = {**others, stage: value}
        prompts.append(restoration_prompt([{"stage": name, STAGE_WORDS[name][1]: chosen[name]} for name in STAGES
                                           if name in chosen], with_values=True))
    return prompts


@functools.cache
def _default_ranges() -> dict[str, tuple[float, float]]:
    """Each stage's default value range in the parameterized pipeline (read once)."""
    from restorezoo.data.degrade.parameterized import Parameterized

    pipeline = Parameterized()
    return {"blur": pipeline.blur_sigma, "downsample": pipeline.scale, "noise": pipeline.noise_sigma,
            "jpeg": pipeline.jpeg_quality}


def draw_value(stage: str, rng: random.Random) -> float:
    """One value of ``stage`` from the parameterized pipeline's default range, at its printed precision."""
    from restorezoo.data.degrade.parameterized import STAGE_WORDS

    low, high = _default_ranges()[stage]
    return round(rng.uniform(low, high), STAGE_WORDS[stage][2])


def number_aware_digits(
    text_encoder: torch.nn.Module, tokenizer: Any, seed: int, steps: int, lr: float = 1e-2, log: Path | None = None
) -> None:
    """Fit the number tokens' embedding rows so the frozen tower's output is distance-preserving in the value.

    SD's real CLIP tower learnt from its corpus that "2.9" and "3.0" are close; a random one does not (its
    nearest prompt to "Deblur with sigma 3.0;" is "…0.3;", the same tokens reordered), and SPIRE's
    strength control dipped at 3.0. Each step draws up to 16 values of one stage (others fixed) and
    matches the pairwise distances of the whole 77×D output to the values' distances, both divided by
    their mean (multidimensional scaling onto the number line). Only the 11 rows move; no caption has a
    digit or ".", so every caption's embedding, and the UNet prior trained on them, is unchanged
    (asserted). Adam, constant ``lr``; one Python generator from ``seed``.
    """
    from restorezoo.data.degrade.parameterized import STAGES

    rng = random.Random(seed)
    table = text_encoder.embeddings.token_embedding.weight
    rows = torch.tensor(number_tokens(tokenizer))
    frozen = table.detach().clone()
    moving = torch.zeros(table.shape[0], 1, dtype=torch.bool)
    moving[rows] = True
    captions = tokenizer(sorted(set(CAPTIONS.values())) + [""])
    with torch.no_grad():
        before = text_encoder(captions)[0]
    table.requires_grad_(True)
    optimizer = torch.optim.Adam([table], lr=lr)
    bar = tqdm(range(steps), desc="number tokens")
    window: list[float] = []
    for step in bar:
        stage = rng.choice(STAGES)
        values = sorted({draw_value(stage, rng) for _ in range(16)})
        features = text_encoder(tokenizer(restoration_prompts_varying(stage, values, rng)))[0].flatten(1)
        feature_distance = torch.pdist(features)
        value_distance = torch.pdist(torch.tensor(values)[:, None])
        loss = (feature_distance / feature_distance.mean() - value_distance / value_distance.mean()).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            table.copy_(torch.where(moving, table, frozen))
        window = (window + [float(loss.detach())])[-100:]
        bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
        if log is not None:
            log_line(log, {"stage": "number_tokens", "step": step, "loss": window[-1]})
    table.requires_grad_(False)
    with torch.no_grad():
        if not torch.equal(text_encoder(captions)[0], before):
            raise RuntimeError("a caption's embedding changed: a caption holds a number token")


def number_geometry(text_encoder: torch.nn.Module, tokenizer: Any) -> dict[str, Any]:
    """How the tower writes "Deblur with sigma s;" for s = 0.3 … 4.0: the Spearman correlation of the
    outputs' pairwise distances with |s − s'| and the nearest other value of each s."""
    from scipy.stats import spearmanr

    from restorezoo.data.degrade.parameterized import restoration_prompt

    values = [round(0.3 + 0.1 * i, 1) for i in range(38)]
    prompts = [restoration_prompt([{"stage": "blur", "sigma": v}], with_values=True) for v in values]
    with torch.no_grad():
        features = text_encoder(tokenizer(prompts))[0].flatten(1).double()
    distance = torch.cdist(features, features)
    upper = torch.triu_indices(len(values), len(values), 1)
    gaps = torch.tensor(values)[:, None].sub(torch.tensor(values)[None]).abs()
    rho = float(spearmanr(distance[upper[0], upper[1]].numpy(), gaps[upper[0], upper[1]].numpy()).correlation)
    distance.fill_diagonal_(float("inf"))
    nearest = {v: values[int(distance[i].argmin())] for i, v in enumerate(values)}
    return {"spearman": rho, "nearest": nearest}


def random_tower(seed: int) -> torch.nn.Module:
    """The frozen random CLIP text tower of ``seed``, drawn as ``train_unet`` draws it."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed + 1)
    return CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).eval().requires_grad_(False)


def redo_number_tokens(args: argparse.Namespace) -> None:
    """``--number-tokens-only``: the seed's random tower, its number tokens fitted, into ``--out``.

    A full run draws the same tower and fits it the same way before the UNet trains, so this gives the
    folder a full run would write. Refuses a folder whose tower is not the seed's (beyond those rows).
    """
    out = Path(args.out)
    from transformers import CLIPTextModel

    folder_tower = CLIPTextModel.from_pretrained(out, subfolder="text_encoder").float().eval()  # the tower alone
    tokenizer = OpenCLIPTokenizer()
    text_encoder = random_tower(args.seed)
    captions = tokenizer(sorted(set(CAPTIONS.values())) + [""])
    with torch.no_grad():
        if not torch.equal(folder_tower(captions)[0], text_encoder(captions)[0]):
            raise SystemExit(f"{out}'s text tower is not the random tower of seed {args.seed}: train the folder anew")
    log = out / "train_log.jsonl"
    kept = [line for line in log.read_text().splitlines() if json.loads(line)["stage"] != "number_tokens"]
    log.write_text("".join(line + "\n" for line in kept))
    before = number_geometry(text_encoder, tokenizer)
    number_aware_digits(text_encoder, tokenizer, args.seed + 2, args.number_steps, log=log)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    report_path = Path(args.report or out / "training.md")
    head = report_path.read_text().split("\n" + NUMBER_HEADING)[0].rstrip("\n") + "\n"
    report_path.write_text(head + "\n" + number_report(log, before, number_geometry(text_encoder, tokenizer)))
    print(report_path.read_text())


def train_unet(args: argparse.Namespace, vae: torch.nn.Module, photos: dict[str, torch.Tensor], log: Path):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    generator = torch.Generator().manual_seed(args.seed + 1)
    text_encoder = random_tower(args.seed)
    tokenizer = OpenCLIPTokenizer()
    number_aware_digits(text_encoder, tokenizer, args.seed + 2, args.number_steps, log=log)
    prompts = sorted(set(CAPTIONS[name] for name in photos)) + [""]
    with torch.no_grad():
        embedded = dict(zip(prompts, text_encoder(tokenizer(prompts))[0]))
    scale = latent_scale(vae, photos, generator)
    unet = UNet2DConditionModel(**{**UNET_CONFIG, "in_channels": args.latent_channels,
                                   "out_channels": args.latent_channels,
                                   "cross_attention_dim": TEXT_CONFIG["hidden_size"]})
    print(f"UNet: {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters; latent scale {scale:.4f}")
    schedule = DDPMScheduler.from_config(SD15_SCHEDULER)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.unet_lr, weight_decay=0.0)
    bar = tqdm(range(args.unet_steps), desc="UNet prior")
    window: list[float] = []
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.unet_steps, args.unet_lr)
        images, names = random_crops(photos, args.batch_size, args.crop, generator, permute_colours=False)
        with torch.no_grad():
            posterior = vae.encode(images * 2 - 1).latent_dist
            z0 = (posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)) * scale
        captions = ["" if float(torch.rand((), generator=generator)) < 0.1 else CAPTIONS[n] for n in names]
        context = torch.stack([embedded[c] for c in captions])
        noise = torch.randn(z0.shape, generator=generator)
        t = torch.randint(0, schedule.config.num_train_timesteps, (z0.shape[0],), generator=generator)
        prediction = unet(schedule.add_noise(z0, noise, t), t, context).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        window = (window + [float(loss)])[-100:]
        bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
        log_line(log, {"stage": "unet", "step": step, "loss": float(loss)})
    return unet.eval(), text_encoder, scale


def save(args: argparse.Namespace, vae, unet, text_encoder, scale: float) -> None:
    from diffusers import PNDMScheduler

    out = Path(args.out)
    vae.register_to_config(scaling_factor=scale)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    write_clip_tokenizer(out / "tokenizer")
    PNDMScheduler.from_config({**SD15_SCHEDULER, "skip_prk_steps": True}).save_pretrained(out / "scheduler")
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": [None, None],
             "feature_extractor": [None, None], "requires_safety_checker": False}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "captions.json").write_text(json.dumps(CAPTIONS, indent=2) + "\n")


def summary(log: Path, args: argparse.Namespace, seconds: float) -> str:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    evals = [r for r in rows if "held_out_psnr" in r]
    unet = [r["loss"] for r in rows if r["stage"] == "unet"]
    lines = [
        "# mini-sd: training log summary",
        "",
        f"`python benchmarks/train_mini_sd.py --seed {args.seed} --vae-steps {args.vae_steps} "
        f"--unet-steps {args.unet_steps}`: {seconds / 60:.1f} min on {torch.get_num_threads()} CPU threads.",
        "",
        "| autoencoder step | held-out reconstruction PSNR (dB, 4 photos, 128² crops) |",
        "|---:|---:|",
        *(f"| {r['step'] + 1} | {r['held_out_psnr']:.2f} |" for r in evals),
        "",
    ]
    if unet:
        first, last = unet[: min(100, len(unet))], unet[-min(100, len(unet)) :]
        lines += [
            f"UNet prior ε-loss: mean {sum(first) / len(first):.4f} over the first {len(first)} steps, "
            f"{sum(last) / len(last):.4f} over the last {len(last)}.",
            "",
        ]
    return "\n".join(lines)


NUMBER_HEADING = "## Number tokens"


def number_report(log: Path, before: dict[str, Any], after: dict[str, Any]) -> str:
    """The number-token stage's paragraph of ``training.md``: its loss and the tower's number geometry."""
    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines()
              if json.loads(line)["stage"] == "number_tokens"]
    first, last = losses[: min(100, len(losses))], losses[-min(100, len(losses)) :]
    probe = (0.5, 1.0, 2.0, 2.5, 2.9, 3.0, 3.1)
    return "\n".join([
        NUMBER_HEADING,
        "",
        f"{len(losses)} steps (`number_aware_digits`), distance-matching loss {sum(first) / len(first):.4f} "
        f"(first {len(first)}) → {sum(last) / len(last):.4f} (last {len(last)}). \"Deblur with sigma s;\" for "
        "s = 0.3 … 4.0, before → after:",
        "",
        "| | random rows | fitted rows |",
        "|---|---:|---:|",
        f"| Spearman ρ (output distance vs \\|s − s'\\|) | {before['spearman']:.3f} | {after['spearman']:.3f} |",
        *(f"| nearest other prompt to s = {v} | {before['nearest'][v]} | {after['nearest'][v]} |" for v in probe),
        "",
        "No caption holds a digit or \".\": every caption's embedding, so the UNet prior, is unchanged (asserted).",
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (diffusers layout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-steps", type=int, default=200)
    parser.add_argument("--unet-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--vae-lr", type=float, default=2e-5)
    parser.add_argument("--unet-lr", type=float, default=5e-4)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--latent-channels", type=int, default=VAE_CONFIG["latent_channels"])
    parser.add_argument("--vae-width", type=int, default=VAE_CONFIG["block_out_channels"][0],
                        help="channels of the autoencoder's one block")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--vae-only", action="store_true", help="train and report the autoencoder only (probes)")
    parser.add_argument("--number-steps", type=int, default=2000, help="steps of the number-token stage")
    parser.add_argument("--number-tokens-only", action="store_true",
                        help="redo only the number-token stage on the tower of --seed, into an existing --out "
                             "(the UNet reads no number token, so the rest of the folder stays valid)")
    parser.add_argument("--report", default=None, help="summary markdown (default: <out>/training.md)")
    args = parser.parse_args(argv)
    if args.number_tokens_only:
        redo_number_tokens(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train_log.jsonl"
    log.write_text("")
    start = time.perf_counter()
    photos = train_photos()
    vae = train_vae(args, photos, log)
    if args.vae_only:
        print(summary(log, args, time.perf_counter() - start))
        return
    unet, text_encoder, scale = train_unet(args, vae, photos, log)
    save(args, vae, unet, text_encoder, scale)
    report = summary(log, args, time.perf_counter() - start)
    report += "\n" + number_report(log, number_geometry(random_tower(args.seed), OpenCLIPTokenizer()),
                                    number_geometry(text_encoder, OpenCLIPTokenizer()))
    Path(args.report or out / "training.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
