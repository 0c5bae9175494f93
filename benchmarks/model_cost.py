"""Parameters, MACs and latency of each zoo model at its paper size (random weights).

Usage: python benchmarks/model_cost.py [--sizes 256 512] [--device cpu] [--out benchmarks/results/model_cost_cpu.md]
Prints a Markdown table and writes it (with the machine named) to --out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from restorezoo.models.instructir import InstructIRNet

if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import cpu_name  # noqa: E402


def paper_models() -> dict[str, tuple[torch.nn.Module, callable]]:
    """name → (network, input builder(size, device)); text side excluded (cached embeddings at inference)."""
    net = InstructIRNet()
    return {"InstructIR (image model)": (net, lambda s, d: (torch.rand(1, 3, s, s, device=d), torch.randn(1, 256, device=d)))}


def measure(net: torch.nn.Module, inputs: tuple, repeats: int) -> tuple[float, float]:
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            net(*inputs)
        macs = counter.get_total_flops() / 2
        net(*inputs)  # warm-up
        if inputs[0].is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            net(*inputs)
        if inputs[0].is_cuda:
            torch.cuda.synchronize()
    return macs, (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/model_cost_cpu.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    lines = [
        f"Machine: {machine}; torch {torch.__version__}; fp32 eager, batch 1.",
        "",
        "| model | params (M) | size | GMACs | latency (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (net, build) in paper_models().items():
        net = net.to(device).eval()
        params = sum(p.numel() for p in net.parameters()) / 1e6
        for size in args.sizes:
            macs, seconds = measure(net, build(size, device), args.repeats)
            lines.append(f"| {name} | {params:.2f} | {size}² | {macs / 1e9:.1f} | {seconds * 1e3:.0f} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
