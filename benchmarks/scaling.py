"""How latency and peak memory grow with pixels: whole-image vs tiled inference.

    python benchmarks/scaling.py                   # CPU → benchmarks/results/scaling_cpu.md + scaling.png
    python benchmarks/scaling.py --device cuda     # CUDA → scaling_cuda.md + scaling_cuda.png (8K target)
    python benchmarks/scaling.py --smoke --out /tmp/s.md --plot /tmp/s.png

Two parts, each timed whole and tiled at growing sizes (256² … 2048², 4K, 8K where the budget allows):
InstructIR at its paper size through ``restore_tensor`` (fast path; tiled = ``tile``/``tile_overlap``
pixel tiles blended smoothly) and the VAE decoder of Stable Diffusion 1.5 (random weights), whole or in
blended latent tiles as SPIRE / Diff-Restorer decode large images (``restorezoo.tiling.tiled_apply``,
scale 8). Rows predicted over the per-row budget print "skipped (budget)"; nothing is extrapolated.
The plot (matplotlib, the ``bench`` extra) has two panels, latency and peak memory vs megapixels.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (  # noqa: E402
    ZOO,
    Budget,
    Measurement,
    PeakMemory,
    count_gmacs,
    free_memory,
    load_average,
    machine,
    meta_copy,
    parse_size,
    restore,
    size_label,
    write_report,
)

SIZES = ["256", "512", "1024", "2048", "3840x2160", "7680x4320"]
VAE_SIZES = ["256", "512", "1024", "2048"]
SMOKE_SIZES = ["32", "64", "96x80"]


def vae_decoder(smoke: bool) -> torch.nn.Module:
    """SD 1.5's AutoencoderKL shape (or a tiny one), random weights."""
    from diffusers import AutoencoderKL

    from restorezoo.models.stable_diffusion import SD15_VAE_CONFIG

    config = dict(SD15_VAE_CONFIG)
    if smoke:
        config.update(block_out_channels=(32, 32, 64), down_block_types=("DownEncoderBlock2D",) * 3,
                      up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, sample_size=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return AutoencoderKL(**config).requires_grad_(False).eval()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", help=f"InstructIR sizes (default {' '.join(SIZES)})")
    parser.add_argument("--tile", type=int, default=512, help="InstructIR tile (pixels)")
    parser.add_argument("--overlap", type=int, default=32, help="InstructIR tile overlap (pixels)")
    parser.add_argument("--vae-sizes", nargs="+", help=f"decoded image sizes (default {' '.join(VAE_SIZES)})")
    parser.add_argument("--vae-tile", type=int, default=64, help="VAE decode tile (latent cells; 64 = 512 px)")
    parser.add_argument("--vae-overlap", type=int, default=8, help="VAE decode tile overlap (latent cells)")
    parser.add_argument("--budget-s", type=float, default=60.0, help="skip rows predicted to take longer")
    parser.add_argument("--total-budget-s", type=float, default=840.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--smoke", action="store_true", help="tiny models and sizes (seconds)")
    parser.add_argument("--out", help="Markdown file (default benchmarks/results/scaling_<device>.md)")
    parser.add_argument("--plot", help="PNG (default benchmarks/results/scaling.png; scaling_cuda.png on CUDA)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = Budget(args.budget_s, args.total_budget_s, args.repeats)
    load_start = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    calibration = budget.calibrate(device)
    memory_label = PeakMemory(device).label
    sizes = [parse_size(s) for s in (args.sizes or (SMOKE_SIZES if args.smoke else SIZES))]
    vae_sizes = [parse_size(s) for s in (args.vae_sizes or (SMOKE_SIZES if args.smoke else VAE_SIZES))]
    tile, overlap = (32, 8) if args.smoke else (args.tile, args.overlap)
    vae_tile, vae_overlap = (4, 2) if args.smoke else (args.vae_tile, args.vae_overlap)

    table = [
        f"| part | size | megapixels | mode | tiles | GMACs | latency (ms) | {memory_label} | runs |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    points: list[dict[str, Any]] = []

    def record(part: str, hw: tuple[int, int], mode: str, tiles: int, gmacs: float, measured: Measurement) -> None:
        table.append(
            f"| {part} | {size_label(hw)} | {hw[0] * hw[1] / 1e6:.2f} | {mode} | {tiles} | {gmacs:.4g} | "
            f"{measured.ms()} | {measured.mib()} | {measured.runs_label()} |"
        )
        print(table[-1], flush=True)
        points.append(dict(part=part, mode=mode.split(" (")[0], mp=hw[0] * hw[1] / 1e6, measured=measured))

    budget.start_share(2)
    instructir_rows(args.smoke, sizes, tile, overlap, budget, device, record)
    budget.start_share(1)
    vae_rows(args.smoke, vae_sizes, vae_tile, vae_overlap, budget, device, record)

    lines = [
        f"# Scaling with image size: whole vs tiled ({device.type}{', smoke: tiny models' if args.smoke else ''})",
        "",
        f"- Machine: {machine(device)}",
        f"- Started {started:%Y-%m-%d %H:%M} UTC; 1-minute load average {load_start} at the start, "
        f"{load_average()} at the end (other work shared this machine).",
        f"- Budget: {args.budget_s:.0f} s per row, {args.total_budget_s:.0f} s in all (half per part); a dense "
        f"conv ran at {calibration:.1f} GMAC/s here. Rows predicted over budget say \"skipped (budget)\".",
        f"- `python benchmarks/scaling.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "- InstructIR: paper size, random weights, `restore_tensor(fast=True)`, batch 1. VAE: SD 1.5's "
        "AutoencoderKL shape, random weights, inference_mode fp32 (CPU) as the models decode.",
        f"- GMACs: torch's FLOP counter ÷ 2 on meta tensors; tiled rows: tiles × one tile's count. Memory: {memory_label}.",
        "",
        *table,
        "",
        "## Target (issue 7)",
        "",
        target_line(points, device),
    ]
    text = "\n".join(lines) + "\n"
    write_report(text, args.out, f"benchmarks/results/scaling_{device.type}.md")
    plot = Path(args.plot or f"benchmarks/results/scaling{'' if device.type == 'cpu' else '_' + device.type}.png")
    draw(points, plot, f"{machine(device).split(';')[0]}", memory_label, device.type == "cuda")
    return text


def instructir_rows(
    smoke: bool, sizes: list[tuple[int, int]], tile: int, overlap: int, budget: Budget, device: torch.device,
    record: Callable[..., None],
) -> None:
    """InstructIR through ``restore_tensor`` (fast path), whole and in blended pixel tiles."""
    from restorezoo.tiling import tile_count

    zoo = ZOO["instructir"]
    model = zoo.build(smoke).to(device).eval()
    part = f"{zoo.name}{' (tiny)' if smoke else ''}"
    one_tile = zoo.gmacs(model, tile, tile)["total"]
    for hw in sizes:
        lq = torch.rand(1, 3, *hw, device=device)
        whole = zoo.gmacs(model, *hw)["total"]
        measured = budget.measure(lambda lq=lq: restore(zoo, model, lq, True), device, "instructir", whole)
        record(part, hw, "whole", 1, whole, measured)
        if max(hw) > tile:
            tiles = tile_count(*hw, tile, overlap)
            measured = budget.measure(
                lambda lq=lq: restore(zoo, model, lq, True, tile=tile, tile_overlap=overlap),
                device, "instructir", tiles * one_tile,
            )
            record(part, hw, f"tiled ({tile}, overlap {overlap})", tiles, tiles * one_tile, measured)
        del lq
        free_memory(device)


def vae_rows(
    smoke: bool, sizes: list[tuple[int, int]], tile: int, overlap: int, budget: Budget, device: torch.device,
    record: Callable[..., None],
) -> None:
    """SD 1.5's VAE decoder on latents of each size, whole and in blended latent tiles (scale 8)."""
    from restorezoo.tiling import tile_count, tiled_apply

    vae = vae_decoder(smoke).to(device)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    part = "SD 1.5 VAE decode" + (" (tiny)" if smoke else "")
    meta_vae = meta_copy(vae, vae)

    def decode_gmacs(height: int, width: int) -> float:
        z = torch.zeros(1, 4, height, width, device="meta")
        with torch.no_grad():
            return count_gmacs(lambda: meta_vae.decode(z))

    def decoder(z: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return vae.decode(z).sample

    one_tile = decode_gmacs(tile, tile)
    for hw in sizes:
        latent_hw = (hw[0] // factor, hw[1] // factor)
        z = torch.randn(1, 4, *latent_hw, device=device)
        whole = decode_gmacs(*latent_hw)
        measured = budget.measure(lambda z=z: decoder(z), device, "vae", whole)
        record(part, hw, "whole", 1, whole, measured)
        if max(latent_hw) > tile:
            tiles = tile_count(*latent_hw, tile, overlap)
            measured = budget.measure(
                lambda z=z: tiled_apply(decoder, z, tile, overlap, scale=factor), device, "vae", tiles * one_tile
            )
            record(part, hw, f"tiled ({tile * factor} px, overlap {overlap * factor})", tiles, tiles * one_tile, measured)
        del z
        free_memory(device)


def target_line(points: list[dict[str, Any]], device: torch.device) -> str:
    eight_k = [p for p in points if p["mode"] == "tiled" and p["mp"] > 30 and p["measured"].ok]
    if device.type != "cuda":
        shown = f"{eight_k[0]['measured'].mib()} MiB RSS increase (CPU)" if eight_k else "not run here"
        return f"8K restore under 8 GB of accelerator memory with tiling: {shown}; needs CUDA."
    if not eight_k:
        return "8K restore under 8 GB of accelerator memory with tiling: not measured (budget)."
    mib = eight_k[0]["measured"].peak_mib
    return f"8K restore under 8 GB of accelerator memory with tiling: {mib:.0f} MiB peak, {'met' if mib < 8192 else 'NOT met'}."


def draw(points: list[dict[str, Any]], path: Path, title: str, memory_label: str, show_target: bool) -> None:
    """Two panels, latency and memory vs megapixels, one line per (part, whole|tiled), measured points only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for point in points:
        if point["measured"].ok:
            series.setdefault((point["part"], point["mode"]), []).append(point)
    for (part, mode), rows in series.items():
        rows.sort(key=lambda p: p["mp"])
        style = dict(marker="o" if mode == "whole" else "s", linestyle="-" if mode == "whole" else "--")
        label = f"{part}, {mode}"
        left.plot([p["mp"] for p in rows], [p["measured"].seconds for p in rows], label=label, **style)
        right.plot([p["mp"] for p in rows], [max(p["measured"].peak_mib or 0, 1) for p in rows], label=label, **style)
    if show_target:
        right.axhline(8192, color="grey", linestyle=":", label="8 GB target (8K, tiled)")
        right.legend(fontsize=8)
    for axis, ylabel in ((left, "latency (s)"), (right, memory_label)):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("megapixels")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle(f"Whole vs tiled inference: {title} (measured points only)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
