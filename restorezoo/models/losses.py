"""Image losses with frozen networks: VGG-19 perceptual loss and the PatchGAN discriminator.

Diff-Restorer's stage 2 trains its decoder under L2 + 0.1·perceptual + 0.001·adversarial; both
networks here are the field's usual ones (torchvision's ImageNet VGG-19 up to relu5_4, pix2pix's
N-layer PatchGAN). The VGG weights resolve through ``restorezoo.weights.vgg19_imagenet_state``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.weights import VGG19_FILE, load_state_dict, resolve_weights, vgg19_imagenet_state

VGG19_TAPS = (4, 9, 18, 27, 36)
"""Ends of the ``vgg19().features`` slices whose last layer is relu1_2, relu2_2, relu3_4, relu4_4, relu5_4."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_vgg_stages(weights: str = "imagenet") -> nn.ModuleList:
    """Frozen feature stages for the perceptual loss.

    ``"imagenet"``: torchvision's VGG-19 up to relu5_4 (the paper's loss). A path: a VGG-19 state dict
    file in torchvision's layout. ``"tiny-random"``: a 3-stage random VGG-like net from a fixed seed,
    only so tests and CPU quickstarts run offline — its "perceptual" loss means nothing.
    """
    if weights == "tiny-random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            widths = (3, 8, 16, 32)
            stages = nn.ModuleList(
                nn.Sequential(
                    *([nn.MaxPool2d(2)] if i else []),
                    nn.Conv2d(widths[i], widths[i + 1], 3, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(widths[i + 1], widths[i + 1], 3, padding=1),
                    nn.ReLU(),
                )
                for i in range(3)
            )
    else:
        from torchvision.models import vgg19

        state = (
            vgg19_imagenet_state()
            if weights == "imagenet"
            else load_state_dict(resolve_weights(weights, what="VGG-19 weights"))
        )
        vgg = vgg19(weights=None)
        vgg.load_state_dict(state, strict=True)
        bounds = (0, *VGG19_TAPS)
        stages = nn.ModuleList(vgg.features[bounds[i] : bounds[i + 1]] for i in range(len(VGG19_TAPS)))
    stages.requires_grad_(False)
    return stages.eval()


class PerceptualLoss(nn.Module):
    """Mean L1 distance of frozen VGG features of two images in [0, 1] (ImageNet-normalised)."""

    def __init__(self, weights: str = "imagenet") -> None:
        super().__init__()
        self.stages = build_vgg_stages(weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        x = (prediction - self.mean) / self.std
        y = (target - self.mean) / self.std
        loss = prediction.new_zeros(())
        for stage in self.stages:
            x, y = stage(x), stage(y)
            loss = loss + F.l1_loss(x, y.detach())
        return loss / len(self.stages)


class PatchDiscriminator(nn.Module):
    """pix2pix's N-layer PatchGAN: one real/fake logit per overlapping patch (70×70 at 3 layers)."""

    def __init__(self, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        model: list[nn.Module] = [nn.Conv2d(3, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            model += [
                nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2),
            ]
            width = out
        model.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*model)

    def forward(self, images: Tensor) -> Tensor:
        """Logits of images in [0, 1]."""
        return self.model(images * 2 - 1)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG19_FILE", "VGG19_TAPS", "PatchDiscriminator", "PerceptualLoss", "build_vgg_stages"]
