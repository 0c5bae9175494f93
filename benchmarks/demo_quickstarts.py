"""The demo's restore path with every family's quickstart checkpoint, on real photos.

Usage::

    python benchmarks/demo_quickstarts.py --ckpt runs/instructir-quickstart/checkpoints/last.ckpt \
        runs/irsde-quickstart/checkpoints/last.ckpt runs/spire-quickstart/checkpoints/last.ckpt \
        runs/diffrestorer-quickstart/checkpoints/last.ckpt [--out benchmarks/results/demo_quickstarts.md]

Noise σ 50 is the degradation every quickstart trains on, so each test photo of the embedded sample
(96-px side) is noised with it once (seeded), written as a PNG as a user would upload it, and restored
by each checkpoint through ``restorezoo.demo.restore_file`` (what the page's "Restore" button calls),
with the text its family takes: InstructIR an instruction, SPIRE its restoration prompt and the
photo's caption, IR-SDE and Diff-Restorer none (the degradation they predict is reported). Writes a
table of PSNR/SSIM against the clean photo and an image grid (rows: photos; columns: the clean photo,
the upload, each family's result).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from restorezoo.data import Sample
from restorezoo.data.io import save_image, tensor_to_uint8
from restorezoo.data.sample_photos import SAMPLE_CAPTIONS
from restorezoo.demo import Controls, ModelShelf, controls_for, restore_file
from restorezoo.files import atomic_write_text, atomic_writer
from restorezoo.metrics.functional import psnr, ssim

REPO = Path(__file__).resolve().parents[1]
INSTRUCTION = "remove the noise, please"
SPIRE_PROMPT = "Denoise with sigma 0.20;"  # σ 50 on 0-255 is 0.196 on SPIRE's [0, 1] scale


def texts_for(controls: Controls, photo: str) -> tuple[str, str]:
    """(text, caption) the page would be given for this family."""
    if controls.instruction:
        return INSTRUCTION, ""
    if controls.prompt_and_caption:
        return SPIRE_PROMPT, SAMPLE_CAPTIONS.get(photo, "")
    return "", ""


def grid(columns: list[str], rows: list[list[torch.Tensor]], out: Path) -> None:
    side = max(t.shape[-1] for row in rows for t in row)
    label = 14
    canvas = Image.new("RGB", (side * len(columns), label + side * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, name in enumerate(columns):
        draw.text((c * side + 3, 1), name[: side // 6], fill="black", font=font)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(Image.fromarray(tensor_to_uint8(image)), (c * side, label + r * side))
    with atomic_writer(out, suffix=".png") as handle:
        canvas.save(handle, format="PNG")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", nargs="+", required=True, help="quickstart checkpoints (any load_model source)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "demo_quickstarts.md"))
    parser.add_argument("--max-side", type=int, default=96)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps for diffusion models (default: each model's)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data = Sample("test", tasks=[{"name": "noise", "sigmas": [50]}], max_side=args.max_side, seed=0)
    data = data.configure(training=False)
    items = [data[i] for i in range(len(data))]
    shelf = ModelShelf(args.ckpt, device="cpu")
    out = Path(args.out)
    table = ["| checkpoint | family | text given | photo | predicted degradation | PSNR input → output | SSIM input → output |",
             "|---|---|---|---|---|---|---|"]
    columns = ["clean", "upload (noise 50)", *(label.removesuffix("-quickstart") for label in shelf.labels)]
    rows: list[list[torch.Tensor]] = [[item["hq"], item["lq"]] for item in items]
    gains: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for label in shelf.labels:
            model = shelf.get(label)
            controls = controls_for(model)
            sampling = {"seed": 0} if controls.sampler else {}
            if controls.sampler and args.steps:
                sampling["steps"] = args.steps
            for item, row in zip(items, rows):
                photo = str(item["name"]).rsplit("_", 1)[0]
                upload = save_image(item["lq"], Path(folder) / f"{item['name']}.png")
                text, caption = texts_for(controls, photo)
                image, restored, degradation = restore_file(model, upload, text, caption, sampling)
                restored = restored.clamp(0, 1)
                row.append(restored)
                hq = item["hq"][None]
                p_in, p_out = float(psnr(image[None], hq)), float(psnr(restored[None], hq))
                s_in, s_out = float(ssim(image[None], hq)), float(ssim(restored[None], hq))
                gains.setdefault(label, []).append(p_out - p_in)
                given = " / ".join(t for t in (text, caption) if t) or "none"
                table.append(f"| {label} | {controls.family} | {given} | {photo} | {degradation or '–'} | "
                             f"{p_in:.2f} → {p_out:.2f} | {s_in:.3f} → {s_out:.3f} |")
    image_path = out.with_suffix(".png")
    grid(columns, rows, image_path)
    mean = [f"{label} {np.mean(g):+.2f} dB" for label, g in gains.items()]
    lines = [
        "# The demo's restore path with the quickstart checkpoints",
        "",
        f"`python benchmarks/demo_quickstarts.py --ckpt {' '.join(args.ckpt)}` "
        f"({(time.perf_counter() - start) / 60:.1f} min on CPU): the sample's test photos ({args.max_side} px) with "
        "noise σ 50, uploaded as PNG and restored through `restorezoo.demo.restore_file`, the function behind "
        "the page's Restore button.",
        "",
        *table,
        "",
        "Mean PSNR gain over the upload: " + ", ".join(mean) + ".",
        "",
        f"![the demo's restorations]({image_path.name}) (columns: {', '.join(columns)})",
        "",
    ]
    atomic_write_text(out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
