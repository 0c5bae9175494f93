"""Stable Diffusion's frozen parts, run block by block: the backbone SPIRE and Diff-Restorer steer.

Both papers keep an SD 1.5 (UNet2DConditionModel + AutoencoderKL + CLIP text encoder) frozen and
steer it with a trainable control branch whose features enter the UNet's skip connections.
diffusers' ``down_block_additional_residuals`` can only *add* to the skips, while SPIRE's modulation
fusion *scales* them, so ``FrozenStableDiffusion.unet_forward`` runs the UNet block by block and lets
the caller transform every skip feature (with no control it equals ``unet(z_t, t, context).sample``).
Weights resolve through ``restorezoo.weights.resolve_stable_diffusion`` (folder, ``$RESTOREZOO_WEIGHTS``,
HF cache, hub); ``tiny`` and ``random-sd15`` build random parts without any file.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from restorezoo.errors import WeightsNotFoundError
from restorezoo.models.base import per_sample_randn
from restorezoo.tiling import tiled_apply
from restorezoo.weights import resolve_stable_diffusion

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
"""The hub id of Stable Diffusion 1.5 in the diffusers layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""

RANDOM_SD15 = "random-sd15"
"""``pretrained`` spec of an SD 1.5-shaped backbone with random weights (benchmarks: no download)."""

SD15_UNET_CONFIG: dict[str, Any] = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
)
"""SD 1.5's ``unet/config.json`` values that set its shape (859.52 M parameters)."""

SD15_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
    scaling_factor=0.18215,
)
"""SD 1.5's ``vae/config.json`` values (83.65 M parameters)."""

SD15_TEXT_CONFIG: dict[str, Any] = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    projection_dim=768,
    hidden_act="quick_gelu",
)
"""SD 1.5's ``text_encoder/config.json`` values (the CLIP ViT-L/14 text tower, 123.06 M parameters)."""

CLIP_SOT, CLIP_EOT = 49406, 49407
"""``<|startoftext|>`` and ``<|endoftext|>``: SD 1.5's tokenizer pads with the latter (its ``pad_token``), open_clip with 0."""

TINY_TEXT_CONFIG: dict[str, Any] = {
    **SD15_TEXT_CONFIG,
    **dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32),
    **dict(bos_token_id=CLIP_SOT, eos_token_id=CLIP_EOT, pad_token_id=CLIP_EOT),
}
"""SD 1.5's text tower at 32-d and 2 layers, with its special-token ids: ``tiny()``'s and mini-sd's (random)."""

SD15_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
"""SD 1.5's noise schedule (its scheduler_config.json), used by the tiny backbone too."""

SkipFusion = Callable[[int, Tensor], Tensor]
"""``fusion(index, feature) → feature``: index 0..N-1 for the N skip features, N for the middle block."""


# ====================================================================== tokenizers
@lru_cache(maxsize=1)
def _open_clip_tokenizer() -> Any:
    import open_clip

    return open_clip.get_tokenizer("ViT-L-14")  # CLIP's BPE, bundled with open_clip: works offline


class OpenCLIPTokenizer:
    """CLIP's BPE tokenizer from open_clip's wheel, for random-init text encoders without vocab files.

    Produces 77 ids per prompt as SD 1.5's CLIPTokenizer does: start, tokens, end, then the end token
    repeated as padding (open_clip pads with 0, the id of "!", which the text encoder would read as text).
    """

    model_max_length = 77

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        ids = _open_clip_tokenizer()(list(prompts), context_length=self.model_max_length).long()
        after_end = (ids == CLIP_EOT).long().cumsum(dim=1) > 0
        return torch.where(after_end, torch.full_like(ids, CLIP_EOT), ids)


def write_clip_tokenizer(folder: str | os.PathLike[str]) -> None:
    """CLIP's BPE vocabulary from open_clip's wheel as SD's ``tokenizer/`` files (vocab.json, merges.txt).

    The ids are open_clip's (256 byte tokens, their ``</w>`` forms, the 48 894 merges in rank order,
    then start and end of text), the layout of OpenAI's CLIP vocabulary; transformers' ``CLIPTokenizer``
    reading them gives ``OpenCLIPTokenizer``'s ids (``tests/test_mini_sd.py``). They are not compared
    with SD 1.5's own tokenizer files, which are not on this machine. ``mini-sd`` ships these files.
    """
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as handle:
        lines = handle.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [token + "</w>" for token in byte_tokens] + ["".join(merge) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}, ensure_ascii=False))
    (root / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(merge) for merge in merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>"}
    (root / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace"}
    (root / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


class HFCLIPTokenizer:
    """transformers' CLIPTokenizer of an SD folder, called like ``OpenCLIPTokenizer``."""

    def __init__(self, tokenizer: Any, max_length: int = 77) -> None:
        self.tokenizer = tokenizer
        self.model_max_length = min(int(tokenizer.model_max_length), max_length)

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        out = self.tokenizer(
            list(prompts), padding="max_length", max_length=self.model_max_length, truncation=True,
            return_tensors="pt",
        )
        return out.input_ids


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' loading progress bars off for the duration (restored as they were)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


# ====================================================================== the frozen backbone
def _time_embedding(time_proj: nn.Module, time_embedding: nn.Module, timestep: Tensor | float, like: Tensor) -> Tensor:
    """The UNet's timestep embedding for a scalar or per-sample ``timestep`` (as ``UNet2DConditionModel``)."""
    t = torch.as_tensor(timestep, device=like.device)
    if t.ndim == 0:
        t = t[None]
    t = t.expand(like.shape[0])
    return time_embedding(time_proj(t).to(dtype=like.dtype))


def _call(block: nn.Module, *args: Any, use_checkpoint: bool = False, **kwargs: Any) -> Any:
    """Run ``block(*args, **kwargs)``, under activation checkpointing when asked and gradients are on."""
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(partial(block, **kwargs), *args, use_reentrant=False)
    return block(*args, **kwargs)


def _has_cross_attention(block: nn.Module) -> bool:
    return bool(getattr(block, "has_cross_attention", False))


def _down_pass(
    down_blocks: nn.ModuleList, sample: Tensor, emb: Tensor, context: Tensor, use_checkpoint: bool
) -> tuple[Tensor, list[Tensor]]:
    """Run the down blocks from conv_in's output; returns the deepest feature and all skip features
    (conv_in's output first, then what each block emits), as ``UNet2DConditionModel`` collects them."""
    skips: list[Tensor] = [sample]
    for block in down_blocks:
        if _has_cross_attention(block):
            sample, res = _call(block, sample, emb, encoder_hidden_states=context, use_checkpoint=use_checkpoint)
        else:
            sample, res = _call(block, sample, emb, use_checkpoint=use_checkpoint)
        skips.extend(res)
    return sample, skips


def _mid_pass(mid_block: nn.Module | None, sample: Tensor, emb: Tensor, context: Tensor, use_checkpoint: bool) -> Tensor:
    if mid_block is None:
        return sample
    if _has_cross_attention(mid_block):
        return _call(mid_block, sample, emb, encoder_hidden_states=context, use_checkpoint=use_checkpoint)
    return _call(mid_block, sample, emb, use_checkpoint=use_checkpoint)


class FrozenStableDiffusion(nn.Module):
    """Stable Diffusion's frozen parts: UNet, VAE, CLIP text encoder + tokenizer, noise-schedule config.

    Everything is frozen and stays in eval mode (``train()`` is a no-op). Build it with
    ``from_pretrained`` (a diffusers SD 1.5 folder or hub id, resolved through ``weights.py``),
    ``tiny(seed)`` (random-init tiny parts for tests and smoke runs) or ``build(spec)`` (either).
    """

    def __init__(
        self,
        unet: nn.Module,
        vae: nn.Module,
        text_encoder: nn.Module,
        tokenizer: Callable[[Sequence[str]], Tensor],
        scheduler_config: dict[str, Any] | None = None,
        cache_size: int = 64,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler_config = dict(scheduler_config or SD15_SCHEDULER)
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.18215))
        self.gradient_checkpointing = False
        self.cache_size = cache_size
        self._text_cache: OrderedDict[str, Tensor] = OrderedDict()
        self.requires_grad_(False)
        super().train(False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, spec: str) -> FrozenStableDiffusion:
        """``"tiny"`` / ``"tiny:<seed>"`` → ``tiny(seed)``; ``"random-sd15"`` → ``random_sd15()``; anything
        else → ``from_pretrained(spec)``."""
        if spec == "tiny" or spec.startswith("tiny:"):
            _, _, seed = spec.partition(":")
            return cls.tiny(int(seed or 0))
        if spec == RANDOM_SD15:
            return cls.random_sd15()
        return cls.from_pretrained(spec)

    @classmethod
    def random_sd15(cls, seed: int = 0) -> FrozenStableDiffusion:
        """SD 1.5's exact UNet, VAE and text-encoder shapes with random weights: speed and memory
        benchmarks at paper size without the 4 GB download (restores nothing)."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
            vae = AutoencoderKL(**SD15_VAE_CONFIG)
            text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG))
        return cls(unet, vae, text_encoder, OpenCLIPTokenizer(), SD15_SCHEDULER)

    @classmethod
    def tiny(cls, seed: int = 0) -> FrozenStableDiffusion:
        """Random-init tiny parts with SD 1.5's layout: VAE ×4 down, 4 latent channels, UNet (32, 64), CLIP 32-d."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel(
                sample_size=16,
                in_channels=4,
                out_channels=4,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                block_out_channels=(32, 64),
                layers_per_block=1,
                cross_attention_dim=32,
                attention_head_dim=8,
                norm_num_groups=32,
            )
            vae = AutoencoderKL(
                in_channels=3,
                out_channels=3,
                down_block_types=("DownEncoderBlock2D",) * 3,
                up_block_types=("UpDecoderBlock2D",) * 3,
                block_out_channels=(32, 32, 64),
                layers_per_block=1,
                latent_channels=4,
                norm_num_groups=32,
                sample_size=64,
                scaling_factor=4.0,  # its random posterior means have std ≈ 0.25: unit-variance latents
            )
            text_encoder = CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG))
        return cls(unet, vae, text_encoder, OpenCLIPTokenizer(), SD15_SCHEDULER)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike[str] = SD15, torch_dtype: torch.dtype | None = None
    ) -> FrozenStableDiffusion:
        """Load a diffusers-layout SD folder or hub id (safetensors when present, never pickles)."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        root = resolve_stable_diffusion(str(name_or_path))
        for sub in ("unet", "vae", "text_encoder", "tokenizer"):
            if not (root / sub).is_dir():
                raise WeightsNotFoundError(
                    f"Stable Diffusion '{name_or_path}' at {root} has no {sub}/ folder; give a diffusers-layout "
                    "folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
                )

        def safetensors(sub: str) -> bool:
            return any((root / sub).glob("*.safetensors"))

        dtype = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
        unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", use_safetensors=safetensors("unet"), **dtype)
        vae = AutoencoderKL.from_pretrained(root, subfolder="vae", use_safetensors=safetensors("vae"), **dtype)
        with _quiet_transformers():  # its per-file "Loading weights" bar would land in every CLI error
            text_encoder = CLIPTextModel.from_pretrained(
                root, subfolder="text_encoder", use_safetensors=safetensors("text_encoder"), **dtype
            )
        tokenizer = HFCLIPTokenizer(
            CLIPTokenizer.from_pretrained(root, subfolder="tokenizer"),
            max_length=int(text_encoder.config.max_position_embeddings),
        )
        scheduler_file = root / "scheduler" / "scheduler_config.json"
        scheduler_config = SD15_SCHEDULER
        if scheduler_file.is_file():
            scheduler_config = {k: v for k, v in json.loads(scheduler_file.read_text()).items() if not k.startswith("_")}
        return cls(unet, vae, text_encoder, tokenizer, scheduler_config)

    # ------------------------------------------------------------------ frozen behaviour
    def train(self, mode: bool = True) -> FrozenStableDiffusion:
        """Frozen parts stay in eval mode (no dropout, fixed norms) whatever the caller's mode."""
        return super().train(False)

    def _apply(self, fn: Callable, recurse: bool = True) -> FrozenStableDiffusion:
        self._text_cache.clear()  # cached embeddings live on the old device/dtype
        return super()._apply(fn, recurse)

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute UNet block activations in the backward pass (gradients flow through the frozen UNet)."""
        self.gradient_checkpointing = enabled

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SD 1.5)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def unet_scale_factor(self) -> int:
        """Latent cells per deepest UNet cell: latents must be a multiple of it."""
        return 2 ** sum(1 for block in self.unet.down_blocks if getattr(block, "downsamplers", None))

    @property
    def context_dim(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    # ------------------------------------------------------------------ text and images
    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str]) -> Tensor:
        """CLIP last hidden states, B×77×D, for a list of prompts (small LRU cache per string).

        Embeddings computed under ``inference_mode`` (Lightning's validation) are not cached: such
        tensors could not be saved for backward when a later training step reads them.
        """
        prompts = list(prompts)
        # take this batch's cached rows before inserting new ones: an insertion may evict them
        found: dict[str, Tensor] = {}
        for prompt in dict.fromkeys(prompts):
            if prompt in self._text_cache:
                self._text_cache.move_to_end(prompt)
                found[prompt] = self._text_cache[prompt]
        missing = [p for p in dict.fromkeys(prompts) if p not in found]
        if missing:
            ids = self.tokenizer(missing).to(self.device)
            fresh = dict(zip(missing, self.text_encoder(ids)[0]))
            if not torch.is_inference_mode_enabled():
                for prompt, row in fresh.items():
                    self._text_cache[prompt] = row
                    if len(self._text_cache) > self.cache_size:
                        self._text_cache.popitem(last=False)
            found.update(fresh)
        return torch.stack([found[prompt] for prompt in prompts])

    @torch.no_grad()
    def encode_image(
        self,
        images: Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        tile_size: int | None = None,
        overlap: int = 64,
        generators: list[torch.Generator] | None = None,
    ) -> Tensor:
        """Images in [0, 1] → scaled latents (posterior mean, or a sample when ``sample``).

        ``tile_size`` (pixels, a multiple of 8) encodes blended overlapping tiles: the VAE encoder's
        activations at full resolution are what runs out of memory on large photos. ``generators``
        (one per image) draw the posterior sample per image instead of ``generator``.
        """

        def encode(pixels: Tensor) -> Tensor:
            posterior = self.vae.encode((pixels * 2 - 1).to(self.vae.dtype)).latent_dist
            if not sample:
                return posterior.mean
            if generators is None:
                return posterior.sample(generator)
            noise = per_sample_randn(posterior.mean.shape, generators, posterior.mean.device, posterior.mean.dtype)
            return posterior.mean + posterior.std * noise

        if tile_size is None or max(images.shape[-2:]) <= tile_size:
            latents = encode(images)
        else:
            latents = tiled_apply(encode, images, tile_size, overlap, 1 / self.vae_scale_factor).to(self.vae.dtype)
        return latents * self.scaling_factor

    def decode_latents(self, latents: Tensor, tile_size: int | None = None, overlap: int = 8) -> Tensor:
        """Scaled latents → images in [0, 1]; ``tile_size`` (latent cells) decodes blended overlapping tiles."""

        def decode(z: Tensor) -> Tensor:
            return self.vae.decode(z.to(self.vae.dtype) / self.scaling_factor).sample.float()

        with torch.no_grad():
            if tile_size is None or max(latents.shape[-2:]) <= tile_size:
                images = decode(latents)
            else:
                images = tiled_apply(decode, latents, tile_size, overlap, self.vae_scale_factor)
        return ((images + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ the UNet, block by block
    def unet_forward(
        self,
        z_t: Tensor,
        t: Tensor | float,
        context: Tensor,
        skip_fusion: SkipFusion | None = None,
        down_residuals: Sequence[Tensor] | None = None,
        mid_residual: Tensor | None = None,
    ) -> Tensor:
        """The frozen UNet's prediction, with the skip features open to a control branch.

        ``down_residuals`` / ``mid_residual`` are added as ControlNet does; then ``skip_fusion(i, f)``
        replaces skip feature i (i = N for the middle block's output), e.g. SPIRE's ``(1 + γ) f + β``.
        Without either, equal to ``unet(z_t, t, context).sample``.
        """
        unet = self.unet
        use_checkpoint = self.gradient_checkpointing
        emb = _time_embedding(unet.time_proj, unet.time_embedding, t, z_t)
        if unet.time_embed_act is not None:
            emb = unet.time_embed_act(emb)
        sample, skips = _down_pass(unet.down_blocks, unet.conv_in(z_t), emb, context, use_checkpoint)
        if down_residuals is not None:
            if len(down_residuals) != len(skips):
                raise ValueError(f"{len(down_residuals)} down residuals for {len(skips)} skip features")
            skips = [skip + residual for skip, residual in zip(skips, down_residuals)]
        if skip_fusion is not None:
            skips = [skip_fusion(index, skip) for index, skip in enumerate(skips)]
        sample = _mid_pass(unet.mid_block, sample, emb, context, use_checkpoint)
        if mid_residual is not None:
            sample = sample + mid_residual
        if skip_fusion is not None:
            sample = skip_fusion(len(skips), sample)

        factor = 2**unet.num_upsamplers
        odd_size = any(size % factor for size in z_t.shape[-2:])
        for index, block in enumerate(unet.up_blocks):
            res, skips = tuple(skips[-len(block.resnets):]), skips[: -len(block.resnets)]
            upsample_size = skips[-1].shape[2:] if odd_size and index < len(unet.up_blocks) - 1 else None
            if _has_cross_attention(block):
                sample = _call(
                    block, sample, res, emb, encoder_hidden_states=context, upsample_size=upsample_size,
                    use_checkpoint=use_checkpoint,
                )
            else:
                sample = _call(block, sample, res, emb, upsample_size=upsample_size, use_checkpoint=use_checkpoint)
        if unet.conv_norm_out is not None:
            sample = unet.conv_act(unet.conv_norm_out(sample))
        return unet.conv_out(sample)

    @property
    def skip_channels(self) -> list[int]:
        """Channels of the UNet's skip features, in ``unet_forward`` order, then the middle block's."""
        return _skip_channels(self.unet.conv_in, self.unet.down_blocks, self.unet.mid_block)


def _skip_channels(conv_in: nn.Conv2d, down_blocks: nn.ModuleList, mid_block: nn.Module | None) -> list[int]:
    channels = [conv_in.out_channels]
    for block in down_blocks:
        channels += [resnet.out_channels for resnet in block.resnets]
        if getattr(block, "downsamplers", None):
            channels += [block.downsamplers[0].out_channels]
    if mid_block is not None:
        channels.append(mid_block.resnets[-1].out_channels)
    return channels


__all__ = [
    "RANDOM_SD15",
    "SD15",
    "SD15_SCHEDULER",
    "SD15_TEXT_CONFIG",
    "SD15_UNET_CONFIG",
    "SD15_VAE_CONFIG",
    "TINY_TEXT_CONFIG",
    "FrozenStableDiffusion",
    "HFCLIPTokenizer",
    "OpenCLIPTokenizer",
    "SkipFusion",
    "write_clip_tokenizer",
]
