"""IR-SDE sampling cost vs quality: seconds per image and PSNR for T posterior steps vs fewer.

Fewer steps run as the release runs them (``--fewer-steps reschedule``: its ``sample_T``, a new SDE of that
many steps) or as restorezoo's strided chain on the T grid (``--fewer-steps stride``); ``both`` prints both.

    python benchmarks/irsde_steps.py --ckpt runs/irsde-quickstart/checkpoints/last.ckpt --steps 100 50 20 10

Without ``--ckpt`` a random model is timed (labelled as such: its PSNR means nothing): the tiny one, or the
paper-size U-Net (nf 64, ch_mult 1-2-4-8, 48.98 M without the DA-CLIP contexts) with ``--paper-size``. Images
are the embedded sample's noisy test photos; prints a Markdown table (``--out`` also writes it, with the machine).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from restorezoo.data import Sample
from restorezoo.metrics import psnr
from restorezoo.models.irsde import IRSDE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="an IR-SDE fit checkpoint (default: random tiny model)")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 50, 20, 10])
    parser.add_argument("--sampler", default="posterior")
    parser.add_argument("--fewer-steps", default="both", choices=["reschedule", "stride", "both"])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="centre crop side of the test photos")
    parser.add_argument("--paper-size", action="store_true", help="time a random paper-size U-Net")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.ckpt:
        model, label = IRSDE.from_checkpoint(args.ckpt, map_location=device), args.ckpt
    elif args.paper_size:
        model = IRSDE(use_degra_context=False, use_image_context=False, ema_decay=None, progress=False)
        model, label = model.to(device).eval(), "random paper-size U-Net (untrained: timing only)"
    else:
        model = IRSDE(nf=16, ch_mult=(1, 2), use_degra_context=False, use_image_context=False, progress=False)
        model, label = model.to(device).eval(), "random tiny model (untrained: timing only)"
    data = Sample("test", tasks=["noise"], max_side=args.size).configure(training=False)
    samples = [data[i] for i in range(min(args.images, len(data)))]
    machine = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    lines = [
        f"IR-SDE steps benchmark: {label}, T = {model.sde.T}, {args.sampler} sampler, {len(samples)} images "
        f"{args.size}², {device} ({machine})\n",
        "| steps | fewer steps as | s / image | PSNR (dB) | PSNR input (dB) |",
        "|---:|---|---:|---:|---:|",
    ]
    print("\n".join(lines))
    modes = ["reschedule", "stride"] if args.fewer_steps == "both" else [args.fewer_steps]
    runs = []
    for steps in args.steps:
        steps = min(steps, model.sde.T)
        runs += [(steps, "—" if steps == model.sde.T else mode) for mode in (modes if steps < model.sde.T else modes[:1])]
    for steps, mode in runs:
        elapsed, scores, inputs = 0.0, [], []
        for sample in samples:
            lq, hq = sample["lq"][None].to(device), sample["hq"][None].to(device)
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.restore({"lq": lq}, steps=steps, sampler=args.sampler, seed=0, progress=False,
                                    fewer_steps="reschedule" if mode == "—" else mode)
            if device == "cuda":
                torch.cuda.synchronize()
            elapsed += time.perf_counter() - start
            scores.append(float(psnr(out, hq)))
            inputs.append(float(psnr(lq, hq)))
        n = len(samples)
        lines.append(f"| {steps} | {mode} | {elapsed / n:.3f} | {sum(scores) / n:.2f} | {sum(inputs) / n:.2f} |")
        print(lines[-1])
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
