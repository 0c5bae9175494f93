"""Throughput of every degradation pipeline (images/s) at 256² batches, on CPU and (when present) CUDA.

Usage: ``python benchmarks/data_throughput.py [--batch 16] [--size 256] [--iters 3] [--devices cpu cuda]
[--out benchmarks/results/data_throughput_cpu.md]``. Prints a Markdown table and writes it, with the
machine named. Real-ESRGAN is split as in training: kernels drawn on the CPU (DataLoader workers),
the degradation applied to the batch on the device.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from restorezoo.data.degrade import DEGRADATIONS, RealESRGAN, build_degradation
from restorezoo.data.degrade.registry import MIXTURES


def _rate(run: Callable[[], object], images: int, iters: int, device: str) -> float:
    run()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        run()
    if device == "cuda":
        torch.cuda.synchronize()
    return images * iters / (time.perf_counter() - start)


def pipelines() -> list[str]:
    skip = {"compose", "random_choice", "clean"}
    return [name for name in DEGRADATIONS if name not in skip] + list(MIXTURES)


def measure_device(device: str, batch: int, size: int, iters: int) -> list[tuple[str, float]]:
    hq = torch.rand(batch, 3, size, size, device=device)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for name in pipelines():
        degradation = build_degradation(name)
        rows.append((name, _rate(lambda d=degradation: d(hq, generator), batch, iters, device)))
    esrgan = RealESRGAN()
    kernels = esrgan.sample_batch_kernels(batch, torch.Generator().manual_seed(0))
    device_generator = torch.Generator(device=device).manual_seed(0)
    rows.append(
        (
            "realesrgan (apply on device)",
            _rate(lambda: esrgan.apply(hq, kernels, device_generator), batch, iters, device),
        )
    )
    if device == "cpu":
        sampler = torch.Generator().manual_seed(1)
        rows.append(
            (
                "realesrgan (kernel sampling)",
                _rate(lambda: esrgan.sample_batch_kernels(batch, sampler), batch, iters, device),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--out", default="benchmarks/results/data_throughput_cpu.md")
    args = parser.parse_args(argv)
    devices = [d for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    names = {
        d: torch.cuda.get_device_name() if d == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        for d in devices
    }
    results = {d: dict(measure_device(d, args.batch, args.size, args.iters)) for d in devices}
    lines = [
        f"Degradation throughput, batch {args.batch} of {args.size}², images/s; torch {torch.__version__}.",
        "",
        "| pipeline | " + " | ".join(names[d] for d in devices) + " |",
        "|---|" + "---:|" * len(devices),
    ]
    for name in results[devices[0]]:
        cells = [f"{results[d][name]:.1f}" if name in results[d] else "-" for d in devices]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
