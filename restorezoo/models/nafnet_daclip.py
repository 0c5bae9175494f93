"""NAFNet + DA-CLIP (Luo et al., ICLR 2024, Tables 3 and 6): a one-pass restorer steered by DA-CLIP.

The same frozen DA-CLIP embeddings that condition IR-SDE steer a plain NAFNet: the degradation
embedding drives a *degradation prompt module* in every block (a softmax over learned prompts gives
a per-channel scale and shift), and the content embedding enters through cross-attention at the
bottom of the U-Net. Both are zero-initialised, so an untrained conditioning leaves NAFNet as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.models.base import RestorationModule
from restorezoo.models.daclip import DACLIPConditioned
from restorezoo.models.nafnet import LayerNorm2d, NAFBlock, downsample, upsample
from restorezoo.tiling import pad_to_multiple


class DegradationPromptModule(nn.Module):
    """softmax(MLP(e_d)) mixes ``num_prompts`` learned prompts into a per-channel (scale, shift)."""

    def __init__(self, channels: int, context_dim: int = 512, num_prompts: int = 5) -> None:
        super().__init__()
        self.weights = nn.Sequential(
            nn.Linear(context_dim, context_dim // 2), nn.GELU(), nn.Linear(context_dim // 2, num_prompts)
        )
        self.prompts = nn.Parameter(torch.randn(num_prompts, 2 * channels) * 0.02)
        self.to_modulation = nn.Linear(2 * channels, 2 * channels)
        nn.init.zeros_(self.to_modulation.weight)
        nn.init.zeros_(self.to_modulation.bias)

    def forward(self, x: Tensor, degradation: Tensor) -> Tensor:
        prompt = torch.softmax(self.weights(degradation), dim=-1) @ self.prompts
        scale, shift = self.to_modulation(prompt)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + scale) + shift


class PromptedNAFBlock(nn.Module):
    """A NAFBlock whose input is modulated by the degradation prompt (identity at initialisation)."""

    def __init__(self, channels: int, context_dim: int) -> None:
        super().__init__()
        self.prompt = DegradationPromptModule(channels, context_dim)
        self.block = NAFBlock(channels)

    def forward(self, x: Tensor, degradation: Tensor | None) -> Tensor:
        return self.block(self.prompt(x, degradation) if degradation is not None else x)


class ContentCrossAttention(nn.Module):
    """Features attend to the DA-CLIP content embedding (one context token); zero-initialised output."""

    def __init__(self, channels: int, context_dim: int = 512, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = LayerNorm2d(channels)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * channels, bias=False)
        self.to_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: Tensor, content: Tensor | None) -> Tensor:
        if content is None:
            return x
        batch, channels, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # B × HW × C
        context = content[:, None, :] if content.ndim == 2 else content

        def heads(t: Tensor) -> Tensor:
            return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        key, value = self.to_kv(context).chunk(2, dim=-1)
        attended = F.scaled_dot_product_attention(heads(self.to_q(tokens)), heads(key), heads(value))
        attended = self.to_out(attended.transpose(1, 2).flatten(2))
        return x + attended.transpose(1, 2).reshape(batch, channels, height, width)


class NAFNetDACLIPNet(nn.Module):
    """NAFNet U-Net with prompted blocks everywhere and content cross-attention in the middle."""

    def __init__(
        self,
        width: int = 32,
        enc_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 4,
        dec_blocks: Sequence[int] = (2, 2, 2, 2),
        context_dim: int = 512,
    ) -> None:
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        channels = width
        for count in enc_blocks:
            self.encoders.append(nn.ModuleList(PromptedNAFBlock(channels, context_dim) for _ in range(count)))
            self.downs.append(downsample(channels))
            channels *= 2
        self.middle = nn.ModuleList(PromptedNAFBlock(channels, context_dim) for _ in range(middle_blocks))
        self.cross_attention = ContentCrossAttention(channels, context_dim)
        for count in dec_blocks:
            self.ups.append(upsample(channels))
            channels //= 2
            self.decoders.append(nn.ModuleList(PromptedNAFBlock(channels, context_dim) for _ in range(count)))
        self.pad_multiple = 2 ** len(enc_blocks)

    @staticmethod
    def _run(blocks: nn.ModuleList, x: Tensor, degradation: Tensor | None) -> Tensor:
        for block in blocks:
            x = block(x, degradation)
        return x

    def forward(self, x: Tensor, degradation: Tensor | None = None, content: Tensor | None = None) -> Tensor:
        height, width = x.shape[-2:]
        inp = pad_to_multiple(x, self.pad_multiple)
        feat = self.intro(inp)
        skips = []
        for blocks, down in zip(self.encoders, self.downs):
            feat = self._run(blocks, feat, degradation)
            skips.append(feat)
            feat = down(feat)
        feat = self.cross_attention(self._run(self.middle, feat, degradation), content)
        for up, blocks, skip in zip(self.ups, self.decoders, reversed(skips)):
            feat = self._run(blocks, up(feat) + skip, degradation)
        return (self.ending(feat) + inp)[..., :height, :width]


class NAFNetDACLIP(DACLIPConditioned, RestorationModule):
    """NAFNet + DA-CLIP: L1 training of a one-pass restorer on frozen DA-CLIP embeddings.

    Args:
        width, enc_blocks, middle_blocks, dec_blocks: NAFNet size.
        daclip: frozen DA-CLIP conditioner: a released ``daclip_ViT-B-32.pt`` (path, or a file
            name under ``$RESTOREZOO_WEIGHTS``), a ``restorezoo fit`` checkpoint, "tiny" (random,
            for tests) or None (plain NAFNet, no conditioning).
        lr, weight_decay, betas, min_lr, warmup_steps: AdamW + cosine (defaults as IR-SDE's paper setup).
    """

    channels_last = True
    compile_targets = ("net",)

    def __init__(
        self,
        width: int = 32,
        enc_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 4,
        dec_blocks: Sequence[int] = (2, 2, 2, 2),
        daclip: str | None = "daclip_ViT-B-32.pt",
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(
            lr=lr, weight_decay=weight_decay, betas=betas, min_lr=min_lr, warmup_steps=warmup_steps
        )
        self.save_hyperparameters()
        self.init_daclip(daclip)
        context_dim = getattr(self.daclip, "embed_dim", 512)
        self.net = NAFNetDACLIPNet(width, enc_blocks, middle_blocks, dec_blocks, context_dim)

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        degradation, content = self.conditioning(batch["lq"])
        restored = self.net(batch["lq"], degradation, content)
        loss = F.l1_loss(restored, batch["hq"])
        return loss, {"l1": loss.detach()}

    def restore(self, batch: dict[str, Any], **sampling: Any) -> Tensor:
        degradation, content = self.conditioning(batch["lq"])
        return self.net(batch["lq"], degradation, content).clamp(0, 1)
