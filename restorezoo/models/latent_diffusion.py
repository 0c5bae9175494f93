"""The frozen latent-diffusion backbone shared by SPIRE and Diff-Restorer.

Both papers keep a Stable Diffusion 1.5 (UNet2DConditionModel + AutoencoderKL + CLIP text encoder)
frozen and steer it with a trainable control branch whose features enter the UNet's skip
connections. diffusers' ``down_block_additional_residuals`` can only *add* to the skips, while
SPIRE's modulation fusion *scales* them, so ``FrozenStableDiffusion.unet_forward`` runs the UNet
block by block and lets the caller transform every skip feature (with no control it equals
``unet(z_t, t, context).sample``).

What lives here, once:

- ``FrozenStableDiffusion``: the frozen parts (from a diffusers SD folder/hub id, or tiny random ones
  for tests), text/image encoding, tiled VAE decoding and the block-by-block UNet;
- ``ControlBranch`` / ``build_control_branch`` / ``zero_conv``: ControlNet's trainable encoder copy;
- ``make_scheduler``, ``sample_latents``, ``guided``: samplers are diffusers schedulers chosen by name;
- ``LatentDiffusionRestorer``: the Lightning module both models subclass (loss on latents, EMA,
  classifier-free guided sampling). The frozen backbone is NOT registered as a submodule, so
  checkpoints hold only the trainable parts and reload strictly; the backbone is rebuilt from the
  ``pretrained`` spec (hub id, folder or ``tiny[:seed]``) recorded in the hyper-parameters.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from restorezoo.errors import RestoreZooError, WeightsNotFoundError
from restorezoo.models.base import (
    RestorationModule,
    ema_step,
    per_sample_randint,
    per_sample_randn,
    sample_generators,
)
from restorezoo.tiling import tiled_apply
from restorezoo.weights import resolve_weights

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

SD_FILES = ("*.json", "*.txt", "unet/*.safetensors", "vae/*.safetensors", "text_encoder/*.safetensors")
"""What a hub download of an SD repo fetches (not the multi-GB single-file checkpoints next to it)."""

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

    Produces 77 ids per prompt (start, tokens, end, zero padding) like SD's CLIPTokenizer.
    """

    model_max_length = 77

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        return _open_clip_tokenizer()(list(prompts), context_length=self.model_max_length).long()


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
            text_encoder = CLIPTextModel(
                CLIPTextConfig(
                    vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                )
            )
        return cls(unet, vae, text_encoder, OpenCLIPTokenizer(), SD15_SCHEDULER)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike[str] = SD15, torch_dtype: torch.dtype | None = None
    ) -> FrozenStableDiffusion:
        """Load a diffusers-layout SD folder or hub id (safetensors when present, never pickles)."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        root = _resolve_sd(str(name_or_path))
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
        fresh: dict[str, Tensor] = {}
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            ids = self.tokenizer(missing).to(self.device)
            fresh = dict(zip(missing, self.text_encoder(ids)[0]))
            if not torch.is_inference_mode_enabled():
                for prompt, row in fresh.items():
                    self._text_cache[prompt] = row
                    if len(self._text_cache) > self.cache_size:
                        self._text_cache.popitem(last=False)
        rows = []
        for prompt in prompts:
            if prompt in fresh:
                rows.append(fresh[prompt])
            else:
                self._text_cache.move_to_end(prompt)
                rows.append(self._text_cache[prompt])
        return torch.stack(rows)

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


def _resolve_sd(name: str) -> Path:
    """A local SD folder, ``$RESTOREZOO_WEIGHTS``/HF cache entry, or a hub download of the diffusers files only."""
    try:
        return resolve_weights(name, what="Stable Diffusion weights", download=False)
    except WeightsNotFoundError as error:
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        if offline or name.startswith((".", "/", "~")) or name.count("/") != 1:
            raise WeightsNotFoundError(
                f"{error} (diffusers layout: unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
            ) from None
        try:
            import huggingface_hub

            return Path(huggingface_hub.snapshot_download(name, allow_patterns=list(SD_FILES)))
        except Exception as download_error:
            raise WeightsNotFoundError(
                f"Stable Diffusion weights '{name}' not in the cache and the hub download failed "
                f"({type(download_error).__name__}); download the diffusers folder and pass its path"
            ) from None


# ====================================================================== the control branch (ControlNet)
def zero_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 1×1 convolution initialised to zero: a control path that starts as "no change" (ControlNet)."""
    conv = nn.Conv2d(in_channels, out_channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ControlBranch(nn.Module):
    """ControlNet's trainable encoder: a copy of the UNet's time embedding, conv_in, down and middle blocks.

    ``conv_in`` is widened to read ``cat(z_t, condition)``; the extra input weights start at zero, so
    the copy first behaves exactly like the frozen encoder on z_t. Its cross-attention reads whatever
    context the caller passes (SPIRE: the restoration prompt, not the caption).
    ``forward`` returns the features at every skip position of the UNet and the middle block's output.
    """

    def __init__(self, unet: nn.Module, extra_in_channels: int = 0) -> None:
        super().__init__()
        self.time_proj = copy.deepcopy(unet.time_proj)
        self.time_embedding = copy.deepcopy(unet.time_embedding)
        self.time_embed_act = copy.deepcopy(unet.time_embed_act)
        source = unet.conv_in
        self.conv_in = nn.Conv2d(
            source.in_channels + extra_in_channels,
            source.out_channels,
            source.kernel_size,
            padding=source.padding,
        )
        with torch.no_grad():
            self.conv_in.weight.zero_()
            self.conv_in.weight[:, : source.in_channels].copy_(source.weight)
            self.conv_in.bias.copy_(source.bias)
        self.down_blocks = copy.deepcopy(unet.down_blocks)
        self.mid_block = copy.deepcopy(unet.mid_block)
        self.to(dtype=torch.float32)  # trainable: master weights in fp32 even when the UNet is bf16
        self.requires_grad_(True)
        self.train()
        self.gradient_checkpointing = False
        self.channels = _skip_channels(self.conv_in, self.down_blocks, self.mid_block)
        """Channels of the returned features (skips, then middle), as ``FrozenStableDiffusion.skip_channels``."""

    def forward(self, z_t: Tensor, t: Tensor | float, context: Tensor, condition: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """Control features ``(skips, middle)`` for latents ``z_t`` and the extra ``condition`` channels."""
        emb = _time_embedding(self.time_proj, self.time_embedding, t, z_t)
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        x = z_t if condition is None else torch.cat([z_t, condition.to(z_t.dtype)], dim=1)
        sample, skips = _down_pass(self.down_blocks, self.conv_in(x), emb, context, self.gradient_checkpointing)
        middle = _mid_pass(self.mid_block, sample, emb, context, self.gradient_checkpointing)
        return skips, middle


def build_control_branch(unet: nn.Module, extra_in_channels: int = 0) -> ControlBranch:
    """A ``ControlBranch`` initialised from ``unet`` (weights copied; extra input channels zero)."""
    return ControlBranch(unet, extra_in_channels)


# ====================================================================== sampling
SCHEDULERS = ("ddim", "ddpm", "unipc", "dpmsolver++", "euler")


def make_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh diffusers scheduler by name over the backbone's noise-schedule ``config``."""
    import diffusers

    classes = {
        "ddim": (diffusers.DDIMScheduler, {}),
        "ddpm": (diffusers.DDPMScheduler, {}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
        "dpmsolver++": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
    }
    if name.lower() not in classes:
        raise RestoreZooError(f"unknown scheduler '{name}' (one of {', '.join(SCHEDULERS)})")
    cls, extra = classes[name.lower()]
    return cls.from_config({**config, **extra})


def guided(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``uncond + scale·(cond − uncond)`` (scale 1 is the conditional prediction)."""
    return uncond + scale * (cond - uncond)


@torch.no_grad()
def sample_latents(
    denoise: Callable[[Tensor, Tensor], Tensor],
    scheduler: Any,
    steps: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    desc: str = "sampling",
) -> Tensor:
    """The reverse diffusion loop: start from scaled Gaussian latents, ``denoise(z_t, t)`` and step to z_0.

    ``denoise`` returns what the scheduler's ``prediction_type`` says (noise or v); guidance happens
    inside it. The initial noise (and stochastic steps) draw from ``generator``: same seed, same output.
    """
    from diffusers.utils.torch_utils import randn_tensor

    device = torch.device(device) if device is not None else torch.device("cpu")
    scheduler.set_timesteps(steps, device=device)
    latents = randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)
    latents = latents * scheduler.init_noise_sigma
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in tqdm(scheduler.timesteps, desc=desc, disable=not progress, leave=False):
        output = denoise(scheduler.scale_model_input(latents, t), t)
        latents = scheduler.step(output.to(latents.dtype), t, latents, **step_kwargs).prev_sample
    return latents


# ====================================================================== the shared Lightning module
def _concat_conditions(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two condition dicts as one batch (tensors and lists concatenated along the batch)."""
    merged: dict[str, Any] = {}
    for key, value in first.items():
        other = second[key]
        if isinstance(value, Tensor):
            merged[key] = torch.cat([value, other])
        elif isinstance(value, list):
            merged[key] = value + other
        else:
            merged[key] = value
    return merged


def _pad_to_multiple(images: Tensor, multiple: int) -> Tensor:
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)


class LatentDiffusionRestorer(RestorationModule):
    """What SPIRE and Diff-Restorer share: a frozen SD backbone, a trainable ``control`` module, noise-
    (or v-) prediction loss on VAE latents, optional EMA of the control, guided sampling with any scheduler.

    The backbone is held outside module registration (as ``DACLIPConditioned`` does): it never enters
    ``state_dict`` — checkpoints hold the trainable ``control`` (and its EMA) only and load with
    ``strict=True`` — and it is rebuilt from ``pretrained``, which the hyper-parameters record. Device and
    dtype moves (``.to``, Lightning's placement) are forwarded to it.

    A subclass builds ``self.control`` (every trainable part), calls ``init_ema()``, and implements
    ``condition(batch)`` (per-batch inputs of the denoiser, including the semantic ``"context"``) and
    ``predict(control, z_t, t, cond)``; ``unconditional(cond)`` defines the guidance branch.

    Args:
        pretrained: SD backbone: a diffusers folder / hub id, or ``"tiny"`` / ``"tiny:<seed>"`` (random, tests).
        prediction_type: "epsilon" or "v_prediction" (the loss target and the sampler's reading).
        scheduler, steps, guidance_scale, seed, progress: default sampler settings (``restore`` overrides).
        decode_tile: VAE decode tile in latent cells for large images (None: one pass).
        ema_decay: EMA of the control for sampling (None: off).
        gradient_checkpointing: recompute UNet/control activations in the backward pass (memory ↔ time).
    """

    channels_last = True
    compile_targets = ("sd.unet_forward",)
    max_pixels = 1024 * 1024  # SD 1.5 was trained at 512²: larger images go in 512² tiles
    default_tile = 512

    control: nn.Module
    control_ema: nn.Module | None

    def __init__(
        self,
        pretrained: str = SD15,
        prediction_type: str = "epsilon",
        scheduler: str = "ddim",
        steps: int = 50,
        guidance_scale: float = 1.0,
        seed: int | None = None,
        progress: bool = True,
        decode_tile: int | None = None,
        ema_decay: float | None = None,
        gradient_checkpointing: bool = False,
        lr: float = 1e-5,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, betas=betas, min_lr=min_lr, warmup_steps=warmup_steps)
        if prediction_type not in ("epsilon", "v_prediction"):
            raise RestoreZooError(f"prediction_type must be 'epsilon' or 'v_prediction', got '{prediction_type}'")
        if scheduler.lower() not in SCHEDULERS:
            raise RestoreZooError(f"unknown scheduler '{scheduler}' (one of {', '.join(SCHEDULERS)})")
        from diffusers import DDPMScheduler

        self._sd = [FrozenStableDiffusion.build(pretrained)]
        self.sd.enable_gradient_checkpointing(gradient_checkpointing)
        self.gradient_checkpointing = gradient_checkpointing
        self.prediction_type = prediction_type
        self.scheduler_name, self.steps, self.guidance_scale = scheduler, steps, guidance_scale
        self.seed, self.progress, self.decode_tile = seed, progress, decode_tile
        self.ema_decay = ema_decay
        self.noise_scheduler = DDPMScheduler.from_config(
            {**self.sd.scheduler_config, "prediction_type": prediction_type}
        )
        self.control_ema = None

    # ------------------------------------------------------------------ the frozen backbone
    @property
    def sd(self) -> FrozenStableDiffusion:
        """The frozen Stable Diffusion (not a registered submodule: never in the state dict)."""
        return self._sd[0]

    def _apply(self, fn: Callable, recurse: bool = True) -> LatentDiffusionRestorer:
        super()._apply(fn, recurse)
        self.sd._apply(fn, recurse)
        return self

    @property
    def pixel_multiple(self) -> int:
        """Image sides must be multiples of this (VAE × UNet downsampling); ``restore`` pads to it."""
        return self.sd.vae_scale_factor * self.sd.unet_scale_factor

    # ------------------------------------------------------------------ what a subclass implements
    def condition(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Per-batch inputs of ``predict`` (computed once per batch), with the semantic ``"context"``."""
        raise NotImplementedError

    def predict(self, control: nn.Module, z_t: Tensor, t: Tensor, cond: dict[str, Any]) -> Tensor:
        """The noise (or v) prediction of the frozen UNet steered by ``control`` (live or EMA)."""
        raise NotImplementedError

    def unconditional(self, cond: dict[str, Any]) -> dict[str, Any]:
        """The guidance branch: the same inputs with the semantic context of the empty prompt."""
        context = cond["context"]
        empty = self.sd.encode_text([""] * context.shape[0]).to(context.dtype)
        return {**cond, "context": empty}

    def auxiliary_losses(self, batch: dict[str, Any], cond: dict[str, Any]) -> dict[str, Tensor]:
        """Extra weighted losses added to the diffusion loss (Diff-Restorer's L_deg, L_rec); none by default."""
        return {}

    # ------------------------------------------------------------------ EMA
    def init_ema(self) -> None:
        """Call after building ``self.control``: an EMA copy when ``ema_decay`` is set."""
        self.control_ema = copy.deepcopy(self.control).requires_grad_(False) if self.ema_decay is not None else None

    def update_ema(self) -> None:
        """EMA of the trainable control (``ema_step``)."""
        if self.control_ema is not None and self.ema_decay is not None:
            ema_step(self.control_ema, self.control, self.ema_decay)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.update_ema()

    @property
    def sampling_control(self) -> nn.Module:
        """The EMA control when there is one, else the live one."""
        return self.control_ema if self.control_ema is not None else self.control

    # ------------------------------------------------------------------ training
    def _check_size(self, images: Tensor) -> None:
        if any(side % self.pixel_multiple for side in images.shape[-2:]):
            raise RestoreZooError(
                f"training images must have sides divisible by {self.pixel_multiple} (got "
                f"{tuple(images.shape[-2:])}); set the datamodule's patch_size accordingly"
            )

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """MSE between the prediction on noised HQ latents and the noise (or v) that made them."""
        hq = batch["hq"].float()
        self._check_size(hq)
        generators = sample_generators(batch, hq.device)  # per-sample: DDP and resumes see the same draws
        z0 = self.sd.encode_image(hq, sample=True, generators=generators)
        noise = per_sample_randn(z0.shape, generators, z0.device, z0.dtype)
        num_timesteps = self.noise_scheduler.config.num_train_timesteps
        t = per_sample_randint(0, num_timesteps, z0.shape[0], generators, z0.device)
        z_t = self.noise_scheduler.add_noise(z0, noise, t)
        target = noise if self.prediction_type == "epsilon" else self.noise_scheduler.get_velocity(z0, noise, t)
        cond = self.condition(batch)
        prediction = self.predict(self.control, z_t, t, cond)
        diffusion = F.mse_loss(prediction.float(), target.float())
        extra = self.auxiliary_losses(batch, cond)
        loss = diffusion + sum(extra.values(), torch.zeros((), device=diffusion.device))
        logs = {"diffusion": diffusion.detach(), **{name: value.detach() for name, value in extra.items()}}
        return loss, logs

    # ------------------------------------------------------------------ sampling
    def decode(self, latents: Tensor, cond: dict[str, Any], tile_size: int | None = None) -> Tensor:
        """Sampled latents → images in [0, 1]; SD's VAE decoder (Diff-Restorer swaps in its own, given ``cond``)."""
        return self.sd.decode_latents(latents, tile_size=tile_size)

    def guided_prediction(
        self,
        control: nn.Module,
        z_t: Tensor,
        t: Tensor,
        cond: dict[str, Any],
        uncond: dict[str, Any] | None = None,
        scale: float = 1.0,
    ) -> Tensor:
        """``predict`` with classifier-free guidance on the semantic prompt (both branches in one batch)."""
        if uncond is None:
            return self.predict(control, z_t, t, cond)
        t = torch.as_tensor(t, device=z_t.device)
        t_both = torch.cat([t, t]) if t.ndim else t  # per-sample timesteps go with both halves
        both = self.predict(control, torch.cat([z_t, z_t]), t_both, _concat_conditions(cond, uncond))
        cond_out, uncond_out = both.chunk(2)
        return guided(cond_out, uncond_out, scale)

    @torch.no_grad()
    def restore(
        self,
        batch: dict[str, Any],
        steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        scheduler: str | None = None,
        progress: bool | None = None,
        decode_tile: int | None = None,
        **sampling: Any,
    ) -> Tensor:
        """Sample HQ latents conditioned on ``batch`` and decode them; B×3×H×W in [0, 1] (any size: padded)."""
        if sampling:
            raise TypeError(
                f"{type(self).__name__} sampling takes steps, guidance_scale, seed, scheduler, progress, "
                f"decode_tile; got {sorted(sampling)}"
            )
        lq = batch["lq"].float()
        height, width = lq.shape[-2:]
        padded = _pad_to_multiple(lq, self.pixel_multiple)
        cond = self.condition({**batch, "lq": padded})
        scale = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        uncond = self.unconditional(cond) if scale != 1.0 else None
        seed = self.seed if seed is None else seed
        generator = torch.Generator(device=lq.device).manual_seed(int(seed)) if seed is not None else None
        noise_scheduler = make_scheduler(
            scheduler or self.scheduler_name, {**self.sd.scheduler_config, "prediction_type": self.prediction_type}
        )
        steps = self.steps if steps is None else int(steps)
        most = int(noise_scheduler.config.num_train_timesteps) - int(noise_scheduler.config.get("steps_offset", 0))
        if not 1 <= steps <= most:  # e.g. DDIM with SD's steps_offset 1 would index past the schedule
            raise RestoreZooError(f"steps must be in [1, {most}] for this noise schedule, got {steps}")
        control = self.sampling_control
        factor = self.sd.vae_scale_factor
        shape = (lq.shape[0], self.sd.unet.config.in_channels, padded.shape[-2] // factor, padded.shape[-1] // factor)

        def denoise(z_t: Tensor, t: Tensor) -> Tensor:
            return self.guided_prediction(control, z_t, t, cond, uncond, scale)

        z0 = sample_latents(
            denoise,
            noise_scheduler,
            steps,
            shape,
            generator=generator,
            device=lq.device,
            progress=self.progress if progress is None else progress,
            desc=type(self).__name__,
        )
        tile = self.decode_tile if decode_tile is None else decode_tile
        images = self.decode(z0, cond, tile_size=tile)
        return images[..., :height, :width]


__all__ = [
    "SCHEDULERS",
    "RANDOM_SD15",
    "SD15",
    "SD15_TEXT_CONFIG",
    "SD15_UNET_CONFIG",
    "SD15_VAE_CONFIG",
    "ControlBranch",
    "FrozenStableDiffusion",
    "LatentDiffusionRestorer",
    "OpenCLIPTokenizer",
    "build_control_branch",
    "guided",
    "make_scheduler",
    "sample_latents",
    "zero_conv",
]
