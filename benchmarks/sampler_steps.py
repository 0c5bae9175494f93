"""The cost of fewer sampler steps for SPIRE and Diff-Restorer: sampler error and time per image.

    python benchmarks/sampler_steps.py                       # → benchmarks/results/sampler_steps_cpu.md
    python benchmarks/sampler_steps.py --smoke --out /tmp/x.md

With random weights there is no restoration quality to measure, so this measures SAMPLER ERROR: each
scheduler (DDIM, UniPC, DPM-Solver++) at 50/20/10/5 steps is compared, from the same seed and so the
same initial noise, with a reference run of DDIM at 999 steps (the converged solution of the same
deterministic ODE; diffusers' DDIM with SD's ``steps_offset=1`` cannot take all 1000) and with the
scheduler's own 200-step run. PSNR and max |difference| are on the
decoded images in [0, 1] (float, no quantisation). It is not a restoration PSNR. The models use the
tiny random Stable Diffusion backbone (``pretrained="tiny"``: UNet (32, 64), 4-channel ×4 VAE) so the
1000-step references run in minutes on a CPU; the IR-SDE steps table is ``irsde_steps.py``
(results/irsde_steps_cpu.md).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ZOO, load_average, machine, restore, synchronize, write_report  # noqa: E402

SCHEDULERS = ["ddim", "unipc", "dpmsolver++"]


def run(zoo: Any, model: Any, lq: torch.Tensor, scheduler: str, steps: int) -> tuple[torch.Tensor, float]:
    """One restore at ``steps`` with ``scheduler`` (seed 0: the same initial noise every time); (image, s)."""
    synchronize(lq.device)
    start = time.perf_counter()
    out = restore(zoo, model, lq, True, steps=steps, scheduler=scheduler, seed=0)
    synchronize(lq.device)
    return out, time.perf_counter() - start


def compare(out: torch.Tensor, reference: torch.Tensor) -> tuple[str, str]:
    """(PSNR dB, max |difference|) of two images in [0, 1], as text ("∞" when identical)."""
    from restorezoo.metrics.functional import psnr

    value = float(psnr(out.float().cpu(), reference.float().cpu(), quantize=False).mean())
    diff = float((out - reference).abs().max())
    return ("∞" if value == float("inf") else f"{value:.2f}"), f"{diff:.4f}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["spire", "diffrestorer"], choices=["spire", "diffrestorer"])
    parser.add_argument("--schedulers", nargs="+", default=SCHEDULERS)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 20, 10, 5])
    parser.add_argument("--reference-steps", type=int, default=999, help="DDIM steps of the common reference")
    parser.add_argument("--own-steps", type=int, default=200, help="steps of each scheduler's own reference")
    parser.add_argument("--size", type=int, default=64, help="image side (the tiny VAE: latents side / 4)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--smoke", action="store_true", help="few steps, small image (seconds)")
    parser.add_argument("--out", help="Markdown file (default benchmarks/results/sampler_steps_<device>.md)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.reference_steps, args.own_steps, args.size = [4, 2], 20, 8, 32

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    torch.manual_seed(0)
    lq = torch.rand(1, 3, args.size, args.size, device=device)
    table = [
        f"| model | scheduler | steps | s / image | PSNR vs DDIM-{args.reference_steps} (dB) | max abs diff vs "
        f"DDIM-{args.reference_steps} | PSNR vs own {args.own_steps}-step (dB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key in args.models:
        zoo = ZOO[key]
        model = zoo.build(True).to(device).eval()  # the tiny random backbone: references in minutes
        print(f"[sampler_steps] {zoo.name}: DDIM-{args.reference_steps} reference", flush=True)
        reference, seconds = run(zoo, model, lq, "ddim", args.reference_steps)
        table.append(f"| {zoo.name} | ddim | {args.reference_steps} (reference) | {seconds:.2f} | – | – | – |")
        for scheduler in args.schedulers:
            own, seconds = run(zoo, model, lq, scheduler, args.own_steps)
            psnr_ref, diff_ref = compare(own, reference)
            table.append(
                f"| {zoo.name} | {scheduler} | {args.own_steps} (own reference) | {seconds:.2f} | {psnr_ref} | "
                f"{diff_ref} | – |"
            )
            print(table[-1], flush=True)
            for steps in args.steps:
                out, seconds = run(zoo, model, lq, scheduler, steps)
                psnr_ref, diff_ref = compare(out, reference)
                psnr_own, _ = compare(out, own)
                table.append(
                    f"| {zoo.name} | {scheduler} | {steps} | {seconds:.2f} | {psnr_ref} | {diff_ref} | {psnr_own} |"
                )
                print(table[-1], flush=True)
        del model

    lines = [
        f"# Fewer sampler steps: sampler error and time ({device.type}{', smoke' if args.smoke else ''})",
        "",
        "**What this measures: the error of each fast sampler against a converged reference run of the same",
        "random-weight model from the same initial noise. It is sampler error, NOT restoration PSNR** (random",
        "weights restore nothing); a trained model's outputs vary differently with steps. IR-SDE's steps table,",
        "with a trained tiny model's PSNR, is [irsde_steps_cpu.md](irsde_steps_cpu.md).",
        "",
        f"- Machine: {machine(device)}",
        f"- Started {started:%Y-%m-%d %H:%M} UTC; 1-minute load average {load_start} at the start, "
        f"{load_average()} at the end (other work shared this machine: the seconds are noisy).",
        f"- `python benchmarks/sampler_steps.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- Models: SPIRE (CFG 3.0, blind prompt) and Diff-Restorer on the tiny random SD backbone and tiny CLIP; "
        f"one {args.size}² random input, seed 0; `restore_tensor(fast=True)`; time includes conditioning and decode.",
        "",
        *table,
    ]
    text = "\n".join(lines) + "\n"
    write_report(text, args.out, f"benchmarks/results/sampler_steps_{device.type}.md")
    return text


if __name__ == "__main__":
    main()
