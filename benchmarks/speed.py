"""Speed, memory and cost of every zoo model at its paper size (random weights), eager fp32 vs the fast path.

    python benchmarks/speed.py                          # CPU → benchmarks/results/speed_cpu.md
    python benchmarks/speed.py --device cuda            # CUDA → benchmarks/results/speed_cuda.md (+ compile)
    python benchmarks/speed.py --smoke --out /tmp/s.md  # tiny models in seconds (what the test runs)

Per model: parameters (total, incl. frozen backbones and EMA copies, and trainable), GMACs (torch's FLOP
counter on meta tensors, so every size is counted), latency / throughput / peak memory at 256², 512², 1024²
and 1920×1080 through ``restore_tensor`` with ``fast=False`` (eager fp32, no_grad) and ``fast=True``
(inference_mode, channels_last, bf16 autocast on CUDA), a training step at the paper's batch and crop, and
the issue's targets beside what was measured. Diffusion models run their default/fast sampler (IR-SDE 20
strided posterior steps of T = 100; SPIRE DDIM and Diff-Restorer UniPC at 20 steps); where the full run
does not fit the per-row budget, the 1-step restore and one denoiser call are measured and the N-step
latency is DERIVED from them (and says so). Rows predicted over budget print "skipped (budget)".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
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
    ZooModel,
    denoiser_step,
    free_memory,
    load_average,
    machine,
    parse_size,
    restore,
    size_label,
    training_step,
    write_report,
)

SIZES = ["256", "512", "1024", "1920x1080"]
SMOKE_SIZES = ["32", "48x40"]

TARGETS = [
    # (model key, size, what, seconds or None (speed-up target), text)
    ("instructir", (1080, 1920), "latency", 0.1, "InstructIR 1920×1080 under 100 ms on one H100 in bf16"),
    ("irsde", (512, 512), "latency", 2.0, "IR-SDE 512² under 2 s with its fast sampler"),
    ("spire", (512, 512), "latency", 2.0, "SPIRE 512² at 20 steps under 2 s on one H100"),
    ("diffrestorer", (512, 512), "latency", 2.0, "Diff-Restorer 512² at 20 steps under 2 s on one H100"),
]


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_g(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


class LatencyRow:
    """One (model, size, path) latency: measured, derived from measured parts, or skipped."""

    def __init__(self, seconds: float | None, how: str, memory: Measurement) -> None:
        self.seconds, self.how, self.memory = seconds, how, memory


def latency(zoo: ZooModel, model: Any, lq: torch.Tensor, gmacs: dict[str, float], fast: bool, budget: Budget) -> LatencyRow:
    """Measure the whole restore if it fits the budget; for a diffusion model that does not, measure the
    1-step restore and one denoiser call and derive the N-step latency from them (labelled **derived**).
    A diffusion model's first row measures one denoiser call first, to learn this machine's speed for it."""
    device = lq.device
    key = f"{zoo.name}/{'fast' if fast else 'eager'}"
    step: Measurement | None = None
    if zoo.diffusion and not budget.knows(key):
        step = budget.measure(denoiser_step(zoo, model, lq, fast), device, key, gmacs["step"])
        if not step.ok:
            return LatencyRow(None, f"one denoiser call {step.note}", step)
    full = budget.measure(lambda: restore(zoo, model, lq, fast), device, key, gmacs["total"])
    if full.ok or not zoo.diffusion or "share" in full.note:
        return LatencyRow(full.seconds, f"measured (runs: {full.runs_label()})" if full.ok else full.note, full)
    steps = int(zoo.sampling["steps"])
    one = budget.measure(lambda: restore(zoo, model, lq, fast, steps=1), device, key, gmacs["fixed"] + gmacs["step"])
    if not one.ok:
        measured = f"; one denoiser call {step.ms()} ms measured" if step is not None and step.ok else ""
        return LatencyRow(None, f"1-step restore {one.note}{measured}", one)
    if step is None:
        step = budget.measure(denoiser_step(zoo, model, lq, fast), device, key, gmacs["step"])
    if not step.ok:
        return LatencyRow(None, f"one denoiser call {step.note} (1-step restore {one.ms()} ms measured)", one)
    seconds = one.seconds + (steps - 1) * step.seconds
    how = (
        f"**derived** = 1-step restore {one.ms()} ms + {steps - 1} × one denoiser call {step.ms()} ms "
        f"(both measured, runs: {one.runs_label()} / {step.runs_label()})"
    )
    return LatencyRow(seconds, how, one)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(ZOO), choices=list(ZOO))
    parser.add_argument("--sizes", nargs="+", help=f"HxW as 512 or 1920x1080 (default {' '.join(SIZES)})")
    parser.add_argument("--budget-s", type=float, default=60.0, help="skip rows predicted to take longer")
    parser.add_argument("--total-budget-s", type=float, default=840.0, help="skip everything after this")
    parser.add_argument("--repeats", type=int, help="timed calls per row after one warm-up (default CUDA 10, CPU 3)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--batch", type=int, default=4, help="batch of the throughput rows (1: none)")
    parser.add_argument("--steps", type=int, help="sampler steps of the diffusion models (default: theirs, 20)")
    parser.add_argument("--no-train", action="store_true", help="leave out the training-step rows")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (default on CUDA)")
    parser.add_argument("--compile-budget-s", type=float, default=180.0, help="time a compile may take (skip if less left)")
    parser.add_argument("--smoke", action="store_true", help="tiny models and sizes (seconds)")
    parser.add_argument("--out", help="Markdown file (default benchmarks/results/speed_<device>.md)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [parse_size(s) for s in (args.sizes or (SMOKE_SIZES if args.smoke else SIZES))]
    budget = Budget(args.budget_s, args.total_budget_s, args.repeats or (10 if device.type == "cuda" else 3))
    load_start = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    calibration = budget.calibrate(device)
    compile_on = args.compile or device.type == "cuda"
    memory_label = PeakMemory(device).label

    models_table = ["| model | config | params total (M) | trainable (M) | notes |", "|---|---|---:|---:|---|"]
    latency_table = [
        f"| model | size | path | GMACs | latency (ms) | how | MP/s (pixels ÷ latency) | {memory_label} | fast ÷ eager |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    throughput_table = [
        f"| model | size | batch | images/s | MP/s | {memory_label} | runs |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    train_table = [
        f"| model | batch × crop | precision | images/s | step (s) | {memory_label} | runs |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    compile_table = ["| model | size | first call incl. compile (s) | latency (ms) | runs |", "|---|---|---:|---:|---|"]
    results: dict[tuple[str, tuple[int, int], bool], float | None] = {}
    derived: dict[tuple[str, tuple[int, int], bool], bool] = {}

    for index, key in enumerate(args.models):
        zoo = ZOO[key]
        if args.steps and zoo.diffusion:
            zoo = dataclasses.replace(zoo, sampling={**zoo.sampling, "steps": args.steps})
        budget.start_share(len(args.models) - index, first=0.75)  # a quarter kept for throughput and training
        print(f"[speed] {zoo.name}: building", flush=True)
        model = zoo.build(args.smoke).to(device).eval()
        total, trainable = zoo.params(model)
        models_table.append(f"| {zoo.name} | `{zoo.config}` | {total:.2f} | {trainable:.2f} | {zoo.note} |")
        for hw in sizes:
            gmacs = zoo.gmacs(model, *hw)
            lq = torch.rand(1, 3, *hw, device=device)
            eager_seconds = None
            for fast in (False, True):
                row = latency(zoo, model, lq, gmacs, fast, budget)
                results[(key, hw, fast)] = row.seconds
                derived[(key, hw, fast)] = row.how.startswith("**derived**")
                megapixels = hw[0] * hw[1] / 1e6
                speedup = "–"
                if fast and row.seconds and eager_seconds:
                    speedup = f"{eager_seconds / row.seconds:.2f}×"
                eager_seconds = row.seconds if not fast else eager_seconds
                latency_table.append(
                    f"| {zoo.name} | {size_label(hw)} | {'fast' if fast else 'eager fp32'} | {gmacs['total']:.3g} | "
                    f"{fmt(row.seconds and row.seconds * 1e3, 0)} | {row.how} | "
                    f"{fmt_g(row.seconds and megapixels / row.seconds)} | {row.memory.mib()} | {speedup} |"
                )
                print(latency_table[-1], flush=True)
            del lq
        budget.rest_of_share()
        if not args.no_train:
            train_rows(zoo, model, budget, device, args.smoke, train_table)
            model.eval()
        if args.batch > 1:
            throughput_rows(zoo, model, sizes, args.batch, budget, device, throughput_table)
        if compile_on:
            compile_rows(zoo, model, sizes, budget, device, compile_table, args.compile_budget_s)
        del model
        free_memory(device)

    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    lines = [
        f"# Speed and memory ({device.type}{', smoke: tiny models' if args.smoke else ''})",
        "",
        f"- Machine: {machine(device)}",
        f"- Started {started:%Y-%m-%d %H:%M} UTC; 1-minute load average {load_start} at the start, "
        f"{load_average()} at the end (other work shared this machine: timings are only as quiet as that).",
        f"- Budget: {args.budget_s:.0f} s per row, {args.total_budget_s:.0f} s in all (each model an equal share "
        "of what is left, a quarter of it kept for its throughput and training rows); a dense conv ran at "
        f"{calibration:.1f} GMAC/s here. Rows predicted over budget say \"skipped (budget)\".",
        f"- `python benchmarks/speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "- Random weights at the paper-size configs (no downloads); batch 1; latency through `restore_tensor`.",
        "",
        "## Models",
        "",
        *models_table,
        "",
        "## Inference (batch 1, whole image)",
        "",
        "`eager fp32`: `fast=False` (no_grad, fp32, contiguous). `fast`: `fast=True` (inference_mode, channels_last "
        "for convolutional models, bf16 autocast on CUDA). GMACs: torch's FLOP counter ÷ 2 on meta tensors "
        "(diffusion: conditioning + sampler steps + VAE decode). Runs: timed calls after one warm-up ('cold': "
        "no warm-up fitted the budget). **derived** rows add measured parts and are not a measurement of the "
        f"whole run. Memory: {memory_label}.",
        "",
        *latency_table,
    ]
    if args.batch > 1:
        lines += [
            "",
            f"## Throughput (batch {args.batch}, fast path, whole images)",
            "",
            *throughput_table,
        ]
    if not args.no_train:
        lines += [
            "",
            f"## Training step (paper batch and crop, {precision}, AdamW, EMA update included, channels_last "
            "for convolutional models as `restorezoo fit` does)",
            "",
            *train_table,
        ]
    if compile_on:
        lines += ["", "## torch.compile (`restorezoo.inference.compile_model`, fast path)", "", *compile_table]
    lines += ["", "## Targets (issue 7)", "", *targets_table(results, derived, device)]
    text = "\n".join(lines) + "\n"
    write_report(text, args.out, f"benchmarks/results/speed_{device.type}.md")
    return text


def throughput_rows(
    zoo: ZooModel, model: Any, sizes: list[tuple[int, int]], batch: int, budget: Budget, device: torch.device,
    table: list[str],
) -> None:
    """Images per second restoring ``batch`` images at once (the fast path), where the budget allows."""
    for hw in sizes:
        lq = torch.rand(batch, 3, *hw, device=device)
        gmacs = batch * zoo.gmacs(model, *hw)["total"]
        measured = budget.measure(lambda lq=lq: restore(zoo, model, lq, True), device, f"{zoo.name}/fast", gmacs)
        if measured.ok:
            images = batch / measured.seconds
            cells = f"{images:.3g} | {images * hw[0] * hw[1] / 1e6:.3g} | {measured.mib()} | {measured.runs_label()}"
        else:
            cells = f"{measured.note} | – | – | –"
        table.append(f"| {zoo.name} | {size_label(hw)} | {batch} | {cells} |")
        print(table[-1], flush=True)
        del lq
        free_memory(device)


def train_rows(zoo: ZooModel, model: Any, budget: Budget, device: torch.device, smoke: bool, table: list[str]) -> None:
    """The paper's batch × crop; when that is over budget, also batch 1 at the paper crop (labelled)."""
    batch_size, crop = zoo.train
    if smoke:
        batch_size, crop = 2, 32
    gmacs = zoo.gmacs(model, crop, crop, steps=1)
    per_image = 3 * (gmacs["fixed"] + gmacs["step"])  # forward + backward ≈ 3 forwards (a prediction only)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    for size in dict.fromkeys([batch_size, 1]):
        try:
            step = training_step(zoo, model, size, crop, device)
            measured = budget.measure(step, device, f"{zoo.name}/eager", per_image * size)
        except torch.OutOfMemoryError:
            measured = Measurement(note="out of memory")
        finally:
            free_memory(device)
        label = f"{size} × {crop}²" + ("" if size == zoo.train[0] or smoke else f" (paper: {zoo.train[0]})")
        if measured.ok:
            table.append(
                f"| {zoo.name} | {label} | {precision} | {size / measured.seconds:.2f} | {measured.seconds:.2f} | "
                f"{measured.mib()} | {measured.runs_label()} |"
            )
            print(table[-1], flush=True)
            return
        table.append(f"| {zoo.name} | {label} | {precision} | {measured.note} | – | – | – |")
        print(table[-1], flush=True)


def compile_rows(
    zoo: ZooModel, model: Any, sizes: list[tuple[int, int]], budget: Budget, device: torch.device, table: list[str],
    compile_budget_s: float,
) -> None:
    """``compile_model`` then the fast path again, where compiling exists and the budget allows."""
    import time

    try:
        from restorezoo.inference import compile_model
    except ImportError:
        table.append(f"| {zoo.name} | – | compile_model not available | – | – |")
        return
    if budget.left() < compile_budget_s:
        table.append(f"| {zoo.name} | – | skipped (budget: {budget.left():.0f} s left, compiling may take "
                     f"{compile_budget_s:.0f} s) | – | – |")
        return
    counts = {hw: zoo.gmacs(model, *hw)["total"] for hw in sizes}  # before compiling: meta copies run eagerly
    model = compile_model(model)
    for hw in sizes:
        lq = torch.rand(1, 3, *hw, device=device)
        gmacs = counts[hw]
        key = f"{zoo.name}/fast"
        if budget.predict(key, gmacs) * 3 > budget.per_row_s:  # compiling costs several calls' time
            table.append(f"| {zoo.name} | {size_label(hw)} | skipped (budget) | – | – |")
            continue
        start = time.perf_counter()
        restore(zoo, model, lq, True)
        first = time.perf_counter() - start
        measured = budget.measure(lambda lq=lq: restore(zoo, model, lq, True), device, f"{zoo.name}/compiled", gmacs)
        table.append(f"| {zoo.name} | {size_label(hw)} | {first:.1f} | {measured.ms()} | {measured.runs_label()} |")
        print(table[-1], flush=True)


def targets_table(
    results: dict[tuple[str, tuple[int, int], bool], float | None],
    derived: dict[tuple[str, tuple[int, int], bool], bool],
    device: torch.device,
) -> list[str]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""

    def status(seconds: float | None, limit: float) -> str:
        if device.type != "cuda":
            return "needs CUDA (CPU figure for reference only)"
        if seconds is None:
            return "not measured"
        verdict = "met" if seconds < limit else "NOT met"
        return verdict if "H100" in gpu else f"{verdict} on {gpu} (the target names an H100)"

    lines = ["| target | measured here (fast path) | status |", "|---|---:|---|"]
    for key, hw, _, limit, text in TARGETS:
        seconds = results.get((key, hw, True))
        shown = "not run" if (key, hw, True) not in results else "skipped (budget)"
        if seconds is not None:
            shown = f"{seconds * 1e3:.0f} ms"
        if derived.get((key, hw, True)):
            shown += " (derived)"
        lines.append(f"| {text} | {shown} | {status(seconds, limit)} |")
    lines.append(
        "| 8K restore under 8 GB of accelerator memory with tiling | see `scaling_<device>.md` | "
        + ("needs CUDA |" if device.type != "cuda" else "measured by scaling.py |")
    )
    speedups: list[tuple[str, float, tuple[int, int]]] = []
    for key in ZOO:
        pairs = [(hw, results[(k, hw, False)], results[(k, hw, True)]) for (k, hw, fast) in results if k == key and fast]
        pairs = [(hw, eager, fast) for hw, eager, fast in pairs if eager and fast]
        if pairs:
            hw, eager, fast = max(pairs, key=lambda pair: pair[0][0] * pair[0][1])
            label = " (derived)" if derived.get((key, hw, False)) or derived.get((key, hw, True)) else ""
            speedups.append((ZOO[key].name, eager / fast, f"{size_label(hw)}{label}"))
    shown = "; ".join(f"{name} {ratio:.2f}× at {where}" for name, ratio, where in speedups) or "–"
    if device.type != "cuda":
        verdict = "needs CUDA"
    else:
        verdict = "met" if speedups and all(ratio >= 1.5 for _, ratio, _ in speedups) else "NOT met (see values)"
    lines.append(f"| fast path ≥ 1.5× eager fp32 on CUDA, every model (largest size with both rows) | {shown} | {verdict} |")
    return lines


if __name__ == "__main__":
    main()
