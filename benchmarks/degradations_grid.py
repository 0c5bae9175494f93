"""Render every degradation pipeline on one photo, captioned, to eyeball that each looks like its name.

Usage: ``python benchmarks/degradations_grid.py [--out benchmarks/results/degradations.png] [--seed 0]``.
Tiles: every registry entry that builds without arguments, Diff-Restorer's mixtures, SPIRE's
parameterized pipeline (captioned with its restoration prompt) and Real-ESRGAN when that module exists.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from restorezoo.data.degrade import DEGRADATIONS, MIXTURES, Degradation, Parameterized, build_degradation

TILE = 256
CAPTION_LINES = 4
LINE_HEIGHT = 12
COLUMNS = 5


def photo() -> torch.Tensor:
    """skimage's astronaut, area-resized to TILE², as a 1×3×H×W batch in [0, 1]."""
    x = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(x, size=(TILE, TILE), mode="area").clamp(0, 1)


def pipelines() -> list[tuple[str, Degradation]]:
    """(caption stem, degradation) for every pipeline worth showing."""
    out: list[tuple[str, Degradation]] = []
    for name in DEGRADATIONS:
        try:
            out.append((name, build_degradation(name)))
        except (TypeError, ValueError):
            continue  # combinators need nested specs
    out += [(name, build_degradation(name)) for name in MIXTURES]
    try:
        from restorezoo.data.degrade.realesrgan import RealESRGAN  # written in parallel; optional here
    except ImportError:
        RealESRGAN = None  # noqa: N806
    if RealESRGAN is not None:
        # not a Degradation subclass, but called the same way: (batch, generator) -> (lq, params)
        out.append(("realesrgan", RealESRGAN()))  # type: ignore[arg-type]
    # a few extra parameterized draws, since each shows a different stage subset
    out += [("parameterized", Parameterized()) for _ in range(2)]
    return out


def caption(name: str, params: dict, degradation: object) -> str:
    prompt = params.get("prompt") or getattr(degradation, "prompt", None)
    return f"{name}: {prompt}" if prompt else name


def render(out: Path, seed: int) -> Path:
    x = photo()
    generator = torch.Generator().manual_seed(seed)
    tiles = [("clean input", x)]
    for name, degradation in pipelines():
        y, params = degradation(x, generator)
        tiles.append((caption(name, params[0], degradation), y))
    rows = -(-len(tiles) // COLUMNS)
    cell_h = TILE + CAPTION_LINES * LINE_HEIGHT + 4
    canvas = Image.new("RGB", (COLUMNS * TILE, rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for k, (text, y) in enumerate(tiles):
        r, c = divmod(k, COLUMNS)
        array = (y[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(array), (c * TILE, r * cell_h))
        lines = textwrap.wrap(text, width=40)[:CAPTION_LINES]
        for j, line in enumerate(lines):
            draw.text((c * TILE + 3, r * cell_h + TILE + 2 + j * LINE_HEIGHT), line, fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target and rename, so a reader never sees half a PNG
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        canvas.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "degradations.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(render(args.out, args.seed))


if __name__ == "__main__":
    main()
