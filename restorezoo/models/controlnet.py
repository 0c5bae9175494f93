"""ControlNet's trainable encoder copy: the control branch SPIRE and Diff-Restorer train.

The copy starts as the frozen UNet's encoder (weights copied, the extra input channels and the
output convolutions at zero), so training begins from "no change" (Zhang et al., ControlNet).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from restorezoo.models.stable_diffusion import _down_pass, _mid_pass, _skip_channels, _time_embedding


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


__all__ = ["ControlBranch", "build_control_branch", "zero_conv"]
