"""SPIRE at Stable Diffusion 1.5 size: what is frozen, what trains, and the cost of one denoising step.

Everything is built on PyTorch's ``meta`` device (shapes only, no memory, no weights), so this runs
offline in seconds: parameter counts per part, and multiply-accumulates (MACs) of one guided
denoising step at 512² (64² latents) for SPIRE's modulation fusion and the additive ControlNet-SR.

Usage: python benchmarks/spire_params.py [--size 512] [--out benchmarks/results/spire_params.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from restorezoo.models.spire import SpireControl
from restorezoo.models.stable_diffusion import (
    SD15_TEXT_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
    FrozenStableDiffusion,
    OpenCLIPTokenizer,
)


def count(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (latents are size / 8)")
    parser.add_argument("--out", default="benchmarks/results/spire_params.md")
    opts = parser.parse_args()

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        sd = FrozenStableDiffusion(
            UNet2DConditionModel(**SD15_UNET_CONFIG),
            AutoencoderKL(**SD15_VAE_CONFIG),
            CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG)),
            OpenCLIPTokenizer(),
        )
        unet = sd.unet
        controls = {
            fusion: SpireControl(unet, sd.skip_channels, 8, 4, additive=fusion == "additive")
            for fusion in ("modulation", "additive")
        }
        side = opts.size // 8
        z_t, t = torch.randn(2, 4, side, side), torch.tensor([500, 500])
        context, restoration, degraded = torch.randn(2, 77, 768), torch.randn(2, 77, 768), torch.rand(2, 3, opts.size, opts.size)

    rows = [
        f"| frozen: UNet {count(unet):.1f} M + VAE {count(sd.vae):.1f} M + CLIP text {count(sd.text_encoder):.1f} M "
        f"| {count(sd):.1f} M | – |"
    ]
    for fusion, control in controls.items():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            features = control.features(z_t, t, restoration, degraded)
            sd.unet_forward(z_t, t, context, skip_fusion=lambda i, f, c=control, fs=features: c.fusion(i, f, fs[i]))
        macs = counter.get_total_flops() / 2 / z_t.shape[0]  # FLOPs → MACs, per image of the batch
        rows.append(
            f"| SPIRE control ({fusion}): E' {count(control.degraded_encoder):.2f} M + ControlNet "
            f"{count(control.controlnet):.1f} M + fusion {count(control.fusion):.2f} M | {count(control):.1f} M "
            f"| {macs / 1e9:.0f} G |"
        )
    table = "\n".join(
        [
            f"SPIRE at SD 1.5 size, one denoising step at {opts.size}² ({side}² latents), UNet + control, per image "
            "(×2 with classifier-free guidance); VAE and text encoder excluded. Counted on the meta device.",
            "",
            "| part | parameters | MACs / step |",
            "|---|---|---|",
            *rows,
        ]
    )
    print(table)
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
