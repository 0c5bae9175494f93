"""NAFNet building blocks (Chen et al., ECCV 2022), shared by InstructIR and NAFNet + DA-CLIP.

Parameter names (``conv1`` … ``conv5``, ``sca.1``, ``norm1``/``norm2``, ``beta``/``gamma``) follow
the released NAFNet/InstructIR state dicts so official checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of an N×C×H×W map (NAFNet's only normalisation)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: the non-linearity that replaces GELU."""

    def forward(self, x: Tensor) -> Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: LN → 1×1 → depthwise 3×3 → SimpleGate → SCA → 1×1, then an FFN.

    Both branches are added back with learned per-channel scales (``beta``, ``gamma``) that start at
    zero, so a freshly initialised block is the identity.
    """

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        dw_channels = channels * dw_expand
        self.conv1 = nn.Conv2d(channels, dw_channels, 1)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, 3, padding=1, groups=dw_channels)
        self.conv3 = nn.Conv2d(dw_channels // 2, channels, 1)
        # Simplified channel attention: global pooling + 1×1, no non-linearity.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channels // 2, dw_channels // 2, 1))
        self.sg = SimpleGate()
        ffn_channels = channels * ffn_expand
        self.conv4 = nn.Conv2d(channels, ffn_channels, 1)
        self.conv5 = nn.Conv2d(ffn_channels // 2, channels, 1)
        self.norm1 = LayerNorm2d(channels)
        self.norm2 = LayerNorm2d(channels)
        self.dropout1 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inp: Tensor) -> Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.dropout1(self.conv3(x * self.sca(x)))
        y = torch.addcmul(inp, x, self.beta)  # inp + x·β in one pass
        x = self.dropout2(self.conv5(self.sg(self.conv4(self.norm2(y)))))
        return torch.addcmul(y, x, self.gamma)


def nafblocks(channels: int, count: int) -> nn.Sequential:
    """A stage of ``count`` NAFBlocks (an empty Sequential is the identity)."""
    return nn.Sequential(*[NAFBlock(channels) for _ in range(count)])


def downsample(channels: int) -> nn.Conv2d:
    """Halve resolution, double channels: a strided 2×2 convolution."""
    return nn.Conv2d(channels, channels * 2, kernel_size=2, stride=2)


def upsample(channels: int) -> nn.Sequential:
    """Double resolution, halve channels: 1×1 conv to 2C, then PixelShuffle(2) (C/2 channels out)."""
    return nn.Sequential(nn.Conv2d(channels, channels * 2, 1, bias=False), nn.PixelShuffle(2))

