"""SSIM's Gaussian filter two ways on the same image: the 11×11 window (BasicSR's ``cv2.filter2D``) and
the two 1-D passes ``restorezoo.metrics.functional`` uses, alternated; a table of seconds and their
largest difference, and one whole ``ssim`` call for scale::

    python benchmarks/ssim_filter_speed.py [--size 512] [--repeats 5] [--out benchmarks/results/ssim_filter_cpu.md]

SSIM filters five maps per call (x, y, x², y², xy), so the filter is most of its time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import load_average, machine, write_report  # noqa: E402
from restorezoo.metrics.functional import gaussian_window, ssim  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    g = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, args.size, args.size, generator=g, dtype=torch.float64) * 255).round()
    window = gaussian_window()  # float64, 11×11, σ 1.5
    taps = window.sum(1)  # the window is an outer product of a normalised 1-D Gaussian: its row sums are it
    channels, size = image.shape[1], window.shape[0]
    full = window.expand(channels, 1, size, size)
    column = taps.view(1, 1, size, 1).expand(channels, 1, size, 1)
    row = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    ways = {
        "11×11 window": lambda: F.conv2d(image, full, groups=channels),
        "two 1-D passes": lambda: F.conv2d(F.conv2d(image, column, groups=channels), row, groups=channels),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    outputs = {}
    for _ in range(args.repeats):  # alternate the two, so that the machine's drift hits both
        for name, way in ways.items():
            start = time.perf_counter()
            outputs[name] = way()
            seconds[name].append(time.perf_counter() - start)
    difference = float((outputs["11×11 window"] - outputs["two 1-D passes"]).abs().max())
    start = time.perf_counter()
    ssim(image / 255, (image.flip(-1) / 255))
    whole = time.perf_counter() - start
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    lines = [
        f"# SSIM's Gaussian filter on a {args.size}² RGB float64 image",
        "",
        f"`python benchmarks/ssim_filter_speed.py --size {args.size} --repeats {args.repeats}` on "
        f"{machine(torch.device('cpu'))}, load {load_average()}.",
        "",
        "| filter | median s (of " + str(args.repeats) + ", alternated) | min s |",
        "|---|---:|---:|",
        *(f"| {name} | {medians[name]:.4f} | {min(seconds[name]):.4f} |" for name in ways),
        "",
        f"Speed-up: {medians['11×11 window'] / medians['two 1-D passes']:.1f}×. Largest difference between the "
        f"two outputs: {difference:.1e} (on a 0–255 scale). One whole `ssim` call (5 filters): {whole:.3f} s.",
        "",
    ]
    write_report("\n".join(lines), args.out, "benchmarks/results/ssim_filter_cpu.md")


if __name__ == "__main__":
    main()
