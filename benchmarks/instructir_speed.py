"""restorezoo's InstructIR image model beside the release's, on CPU, alternating, at the same output.

    python benchmarks/instructir_speed.py --instructir PATH [--size 256] [--rounds 7] [--threads 1]

PATH is the user's checkout of github.com/mv-lab/InstructIR (imported at run time, nothing copied). Both
networks get the same random paper-size weights (width 32, 2-2-4-8 / 4 / 2-2-2-2, text 256); each round
times one forward of the release (its ``InstructIR.forward`` under ``torch.no_grad``) and one of
restorezoo (``InstructIRNet`` under ``torch.inference_mode``, NCHW, as ``restore`` runs it on CPU), in
alternating order so that machine load falls on both alike. Prints the median times, the median of the
per-round speed-ups (release time / restorezoo time) and the largest output difference, and writes ``benchmarks/results/instructir_speed_cpu.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import load_average, machine, write_report  # noqa: E402
from benchmarks.parity_official import InstructIRRelease  # noqa: E402
from restorezoo.models.instructir import InstructIRNet  # noqa: E402


def build(release: InstructIRRelease) -> tuple[torch.nn.Module, InstructIRNet]:
    torch.manual_seed(0)
    ref = release.models.create_model(width=32, enc_blks=[2, 2, 4, 8], middle_blk_num=4, dec_blks=[2, 2, 2, 2],
                                      txtdim=256).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.02)
    ours = InstructIRNet().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructir", type=Path, required=True, help="checkout of mv-lab/InstructIR")
    parser.add_argument("--size", type=int, default=256, help="side of the square input")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (each: one forward per side)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="default: benchmarks/results/instructir_speed_cpu.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    release = InstructIRRelease(args.instructir.expanduser().resolve())
    ref, ours = build(release)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    text = torch.nn.functional.normalize(torch.randn(1, 256, generator=torch.Generator().manual_seed(2)), dim=-1)

    def run_ref() -> torch.Tensor:
        with torch.no_grad():
            return ref(x, text)

    def run_ours() -> torch.Tensor:
        with torch.inference_mode():
            return ours(x, text)

    diff = float((run_ours() - run_ref()).abs().max())  # also the warm-up of both
    times: dict[str, list[float]] = {"release": [], "restorezoo": []}
    for i in range(args.rounds):
        order = [("release", run_ref), ("restorezoo", run_ours)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ref_ms = statistics.median(times["release"]) * 1e3
    our_ms = statistics.median(times["restorezoo"]) * 1e3
    per_round = [r / o for r, o in zip(times["release"], times["restorezoo"])]
    ratio = statistics.median(per_round)  # per round, so that load drifting between rounds cancels
    lines = [
        "# InstructIR image model: restorezoo vs the release, CPU",
        "",
        f"`python benchmarks/instructir_speed.py --instructir PATH --size {args.size} --rounds {args.rounds} "
        f"--threads {args.threads}`: paper size (15.8 M), random N(0, 0.02) weights shared, one "
        f"{args.size}×{args.size} image, alternating forwards; {machine(torch.device('cpu'))}, "
        f"{args.threads} thread(s), load {load_average()}, torch {torch.__version__}.",
        "",
        "| forward | median ms | speed-up (median per round) | per-round speed-ups | max abs output diff |",
        "|---|---|---|---|---|",
        f"| release `InstructIR.forward` (no_grad) | {ref_ms:.1f} | 1.00× | | |",
        f"| restorezoo `InstructIRNet` (inference_mode) | {our_ms:.1f} | {ratio:.2f}× | "
        f"{' '.join(f'{r:.2f}' for r in per_round)} | {diff:.1e} |",
    ]
    write_report("\n".join(lines) + "\n", args.out, "benchmarks/results/instructir_speed_cpu.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
