"""Throughput of the Real-ESRGAN second-order degradation (images/s), the cost it adds to a training step.

Usage: ``python benchmarks/data_throughput.py [--batch 16] [--size 256] [--iters 5] [--devices cpu cuda]``.
Prints a Markdown table; CUDA is measured only when available.
"""

from __future__ import annotations

import argparse
import time

import torch

from restorezoo.data.degrade import RealESRGAN


def measure(device: str, batch: int, size: int, iters: int) -> tuple[float, float]:
    """Images/s of ``apply`` (kernels drawn beforehand, as DataLoader workers do) and of kernel sampling."""
    pipeline = RealESRGAN()
    hq = torch.rand(batch, 3, size, size, device=device)
    t0 = time.perf_counter()
    kernels = pipeline.sample_batch_kernels(batch, torch.Generator().manual_seed(0))
    sample_rate = batch / (time.perf_counter() - t0)
    generator = torch.Generator(device=device).manual_seed(0)
    pipeline.apply(hq, kernels, generator)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        pipeline.apply(hq, kernels, generator)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0), sample_rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args(argv)
    print(f"Real-ESRGAN degradation, batch {args.batch} of {args.size}², torch {torch.__version__}\n")
    print("| device | apply (images/s) | kernel sampling, CPU (images/s) |")
    print("|---|---:|---:|")
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        apply_rate, sample_rate = measure(device, args.batch, args.size, args.iters)
        name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        print(f"| {name} | {apply_rate:.1f} | {sample_rate:.0f} |")


if __name__ == "__main__":
    main()
