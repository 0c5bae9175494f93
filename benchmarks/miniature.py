"""Each paper's headline claim, in miniature, on the packaged mini-sd and the embedded sample.

Usage::

    python benchmarks/miniature.py [--workdir runs/miniature] [--out benchmarks/results/miniature.md]
        [--spire CKPT] [--spire-additive CKPT] [--spire-strength CKPT] [--diffrestorer CKPT] [--decoder CKPT]
        [--diffrestorer-only]

Checkpoints not given are trained here first with the quickstart configs as they are (``restorezoo
fit``, each in its own folder under ``--workdir``); the additive run is the SPIRE quickstart with
``fusion: additive`` (the paper's ControlNet-SR baseline) at the same budget; the strength run is
``configs/spire/strength_quickstart.yaml`` (the same SPIRE trained on the blur stage alone). Then:

* SPIRE, restoration-strength control: the same blurred photos restored with "Deblur with sigma s;"
  for s = 0.5 … 3.0; the outputs' gradient energy (mean squared finite differences of luma) should
  rise with s. Image grids: ``miniature_spire_sigma.png`` (quickstart) and ``miniature_spire_strength.png``.
* SPIRE, modulation fusion vs additive ControlNet-SR, and the blind prompt "Remove all degradation"
  vs the right parameterized prompt, on the quickstart's test sets.
* Diff-Restorer: P_D's degradation classification of held-out photos (the test photos, every class,
  ``--draws`` degradation draws each), per class; the stage-2 degradation-aware decoder (fitted with
  ``decoder_quickstart.yaml`` on the stage-1 checkpoint unless ``--decoder``) against SD's decoder on the
  same sampled latents, on the quickstart's test tasks and on the single types left out of it; the t-SNE of P_D.

``--diffrestorer-only`` measures Diff-Restorer alone and keeps the SPIRE section of the existing ``--out``
file as it is (its header says so): the SPIRE fits take over an hour on a CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from restorezoo.cli import main as cli
from restorezoo.data import Sample, datamodule_from_config
from restorezoo.data.degrade import ops
from restorezoo.data.prompts import SPIRE_BLIND_PROMPT
from restorezoo.data.sample_photos import (
    DIFFRESTORER_SAMPLE_TASKS,
    SAMPLE_CAPTIONS,
    SAMPLE_PHOTOS,
    center_crop,
    sample_photo,
)
from restorezoo.files import atomic_write_text
from restorezoo.metrics.functional import psnr, ssim

REPO = Path(__file__).resolve().parents[1]
SPIRE_CONFIG = REPO / "configs" / "spire" / "quickstart.yaml"
STRENGTH_CONFIG = REPO / "configs" / "spire" / "strength_quickstart.yaml"
DIFFRESTORER_CONFIG = REPO / "configs" / "diffrestorer" / "quickstart.yaml"
DECODER_CONFIG = REPO / "configs" / "diffrestorer" / "decoder_quickstart.yaml"
SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
EIGHT = list(DIFFRESTORER_SAMPLE_TASKS)


def fit(config: Path, run: str, folder: Path, *extra: str) -> Path:
    """``restorezoo fit`` of a quickstart config inside ``folder`` (its runs/ paths are relative)."""
    ckpt = folder / "runs" / run / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return ckpt
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        cli(["fit", "--config", str(config), *extra])
    finally:
        os.chdir(previous)
    return ckpt


def gradient_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean squared horizontal + vertical finite differences of luma (BT.601), per image."""
    luma = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    dx, dy = luma.diff(dim=-1), luma.diff(dim=-2)
    return dx.pow(2).mean(dim=(-2, -1)) + dy.pow(2).mean(dim=(-2, -1))


def test_sets(config: Path) -> list[tuple[str, Sample]]:
    """The quickstart config's test sets, built by the datamodule the CLI builds from it."""
    return [(data.benchmark, data) for data in datamodule_from_config(config).test_sets]


def stack(data: Sample) -> dict[str, Any]:
    return batch_of([data[i] for i in range(len(data))])


def batch_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "lq": torch.stack([s["lq"] for s in samples]),
        "hq": torch.stack([s["hq"] for s in samples]),
        "prompt": [s["prompt"] for s in samples],
        "caption": [s["caption"] for s in samples],
    }


def scores(pred: torch.Tensor, hq: torch.Tensor) -> tuple[float, float]:
    return float(psnr(pred, hq).mean()), float(ssim(pred, hq).mean())


# ====================================================================== SPIRE
def blurred_test_photos(blur_sigma: float, size: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The test photos' centre crops and their Gaussian-blurred copies: the sweep's inputs."""
    names = list(SAMPLE_PHOTOS["test"])
    hq = torch.stack([center_crop(sample_photo(n), size) for n in names])
    # the quickstart pipeline's kernel, 2·ceil(3·3.0) + 1 for its σ range (0.5, 3.0); the strength run's (0.3, 4.0)
    # gives 25, which changes these σ 2 inputs by at most 3.1e-6
    return names, hq, ops.gaussian_blur(hq, [blur_sigma] * len(names), kernel_size=19).clamp(0, 1)


def sigma_sweep(
    model: Any, blur_sigma: float, size: int, values: tuple[float, ...] = SIGMAS
) -> tuple[list[str], torch.Tensor, torch.Tensor, list[float]]:
    """Restore the blurred test photos with "Deblur with sigma s;" for every s; gradient energy per (photo, s)."""
    names, hq, lq = blurred_test_photos(blur_sigma, size)
    outputs, energy = [], []
    for s in tqdm(values, desc="sigma sweep"):
        batch = {"lq": lq, "prompt": [f"Deblur with sigma {s:.1f};"] * len(names),
                 "caption": [SAMPLE_CAPTIONS[n] for n in names]}
        out = model.restore(batch).clamp(0, 1)
        outputs.append(out)
        energy.append(gradient_energy(out))
    psnrs = [float(psnr(o, hq).mean()) for o in outputs]
    return names, torch.stack(outputs, dim=1), torch.stack(energy, dim=1), psnrs


def sweep_lines(model: Any, grid_path: Path, neighbours: tuple[float, ...] = ()) -> list[str]:
    """The sweep's table (gradient energy per photo and s, PSNR), whether it rises with s, and its image grid;
    with ``neighbours``, a line of the mean energy and PSNR at those prompts too (one sweep for both)."""
    from restorezoo.data.io import save_image

    values = SIGMAS + tuple(v for v in neighbours if v not in SIGMAS)
    names, outputs, energy, psnrs = sigma_sweep(model, 2.0, 96, values)
    around = [values.index(v) for v in neighbours]
    around_cells = ", ".join(f"{values[k]:.1f}: {1e3 * float(energy[:, k].mean()):.3f} ({psnrs[k]:.2f} dB)" for k in around)
    outputs, energy, psnrs = outputs[:, : len(SIGMAS)], energy[:, : len(SIGMAS)], psnrs[: len(SIGMAS)]
    mean = energy.mean(0)
    rising = bool((mean.diff() > 0).all())
    per_photo = [bool((row.diff() > 0).all()) for row in energy]
    lines = [
        "| s | " + " | ".join(names) + " | mean | PSNR (dB, mean) |",
        "|---:|" + "---:|" * (len(names) + 2),
    ]
    for j, s in enumerate(SIGMAS):
        cells = " | ".join(f"{1e3 * float(energy[i, j]):.3f}" for i in range(len(names)))
        lines.append(f"| {s:.1f} | {cells} | {1e3 * float(mean[j]):.3f} | {psnrs[j]:.2f} |")
    spread = float(mean.max() - mean.min()) / float(mean.min())
    lines += ["", f"Monotonic in s: mean {'yes' if rising else 'no'}; per photo "
              + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in zip(names, per_photo))
              + f". The prompt moves the mean gradient energy by {100 * spread:.1f} % (max − min over min).", ""]
    grid = torch.cat([torch.cat(list(outputs[i]), dim=-1) for i in range(len(names))], dim=-2)
    save_image(grid, grid_path)
    lines += [f"![sigma sweep]({grid_path.name}) (rows: photos; columns: s = "
              + ", ".join(f"{s:.1f}" for s in SIGMAS) + ")", ""]
    if neighbours:
        lines += [f"Around s = 3.0 (mean gradient energy ×1e3, PSNR): {around_cells}.", ""]
    return lines


NEIGHBOURS = (2.9, 3.0, 3.1, 3.5)
"""Prompts around the sweep's last value: does the energy fall with the number, or only at "3.0"?"""


def strength_sigma_range() -> list[float]:
    """The blur σ range the strength run trains on, as its config gives it."""
    spec = yaml.safe_load(STRENGTH_CONFIG.read_text())["data"]["init_args"]["train"][0]["init_args"]
    return spec["parameterized"]["blur_sigma"]


def sweep_reference() -> str:
    """The blurred inputs' and the clean photos' gradient energy and PSNR, to read the sweep against."""
    _, hq, lq = blurred_test_photos(2.0, 96)
    return (f"For reference, the blurred inputs: gradient energy {1e3 * float(gradient_energy(lq).mean()):.3f}, "
            f"PSNR {scores(lq, hq)[0]:.2f} dB; the clean photos: {1e3 * float(gradient_energy(hq).mean()):.3f}.")


def training_of(model: Any, ckpt: Path) -> str:
    """"N steps at lr X" of a fitted checkpoint, read from it."""
    from restorezoo.weights import load_checkpoint

    return f"{load_checkpoint(ckpt)['global_step']} steps at lr {model.hparams['lr']:g}"


def spire_section(spire: Any, additive: Any, strength: Any, strength_training: str, grid_path: Path) -> list[str]:
    lines = ["## SPIRE", ""]
    lines += [
        "### Restoration-strength control",
        "",
        "The test photos blurred with σ = 2.0, restored with \"Deblur with sigma s;\" (same seed). Gradient "
        "energy (×1e3, mean squared finite differences of luma) should rise with s. " + sweep_reference(),
        "",
        "**The quickstart checkpoint** (trained on the whole mix):",
        "",
        *sweep_lines(spire, grid_path),
        "**The strength run** (`configs/spire/strength_quickstart.yaml`: the same SPIRE and budget per step, "
        f"trained on the blur stage alone, σ in {strength_sigma_range()}, {strength_training}):",
        "",
        *sweep_lines(strength, grid_path.with_name("miniature_spire_strength.png"), NEIGHBOURS),
    ]
    prompts = [f"Deblur with sigma {s:.1f};" for s in SIGMAS] + [SPIRE_BLIND_PROMPT]
    embedded = spire.sd.encode_text(prompts).flatten(1)
    gap = (embedded[0] - embedded[len(SIGMAS) - 1]).norm() / embedded[0].norm()
    blind_gap = (embedded[len(SIGMAS) - 1] - embedded[-1]).norm() / embedded[0].norm()
    lines += [
        f"How far apart the restoration prompts reach the ControlNet: mini-sd's frozen text encoder (random but its number tokens, benchmarks/train_mini_sd.py) puts "
        f"\"Deblur with sigma 0.5;\" and \"… 3.0;\" {100 * float(gap):.1f} % apart (relative L2 of the 77×32 "
        f"embeddings), \"… 3.0;\" and the blind prompt {100 * float(blind_gap):.1f} % apart.",
        "",
    ]
    lines += [
        "### Modulation fusion vs additive ControlNet-SR, and the blind prompt",
        "",
        "The quickstart's test sets (3 photos each, 96² centre crops). Same data, steps and seed for both "
        "fusions; \"blind\" restores the same inputs with \"Remove all degradation\" instead of the right prompt.",
        "",
        "| test set | prompt | input PSNR / SSIM | modulation | additive | modulation, blind prompt |",
        "|---|---|---:|---:|---:|---:|",
    ]
    totals = {"modulation": [], "additive": [], "blind": []}
    for name, data in test_sets(SPIRE_CONFIG):
        batch = stack(data)
        results = {
            "modulation": scores(spire.restore(batch).clamp(0, 1), batch["hq"]),
            "additive": scores(additive.restore(batch).clamp(0, 1), batch["hq"]),
            "blind": scores(spire.restore({**batch, "prompt": [SPIRE_BLIND_PROMPT] * len(batch["prompt"])}).clamp(0, 1),
                            batch["hq"]),
        }
        for key, value in results.items():
            totals[key].append(value)
        cell = {k: f"{v[0]:.2f} / {v[1]:.4f}" for k, v in results.items()}
        lq = scores(batch["lq"], batch["hq"])
        lines.append(f"| {name} | {batch['prompt'][0]} | {lq[0]:.2f} / {lq[1]:.4f} | {cell['modulation']} | "
                     f"{cell['additive']} | {cell['blind']} |")
    mean_cells = {k: f"{sum(v[0] for v in vs) / len(vs):.2f} / {sum(v[1] for v in vs) / len(vs):.4f}"
                  for k, vs in totals.items()}
    lines += [f"| mean | | | {mean_cells['modulation']} | {mean_cells['additive']} | {mean_cells['blind']} |", ""]
    return lines


# ====================================================================== Diff-Restorer
def diffrestorer_section(model: Any, draws: int) -> list[str]:
    classes = list(model.degradation_classes)
    correct = dict.fromkeys(classes, 0)
    total = dict.fromkeys(classes, 0)
    confusion: dict[tuple[str, str], int] = {}
    for draw in tqdm(range(draws), desc="P_D classification"):
        data = Sample("test", tasks=EIGHT, max_side=96, seed=1000 + draw).configure(training=False)
        samples = [data[i] for i in range(len(data))]
        lq = torch.stack([s["lq"] for s in samples])
        predicted = model.predict_degradation(lq)
        for sample, guess in zip(samples, predicted):
            truth = sample["task"] if isinstance(sample["task"], str) else classes[int(sample["task"])]
            total[truth] += 1
            correct[truth] += int(guess == truth)
            confusion[(truth, guess)] = confusion.get((truth, guess), 0) + 1
    overall = sum(correct.values()) / max(1, sum(total.values()))
    lines = [
        "## Diff-Restorer",
        "",
        "### P_D's degradation classification on held-out photos",
        "",
        f"The three test photos (never trained on), each degraded with each of the eight types, {draws} "
        "draws (evaluation seeds 1000…): the stage-1 quickstart checkpoint's classifier on P_D.",
        "",
        "| class | correct / images | accuracy |",
        "|---|---:|---:|",
        *(f"| {c} | {correct[c]} / {total[c]} | {100 * correct[c] / max(1, total[c]):.1f} % |" for c in classes),
        f"| all | {sum(correct.values())} / {sum(total.values())} | {100 * overall:.1f} % |",
        "",
    ]
    wrong = sorted(((k, v) for k, v in confusion.items() if k[0] != k[1]), key=lambda kv: -kv[1])
    if wrong:
        lines += ["Confusions: " + ", ".join(f"{t} → {g} ×{n}" for (t, g), n in wrong) + ".", ""]
    return lines


def decoder_table(model: Any, sets: list[tuple[str, Sample]]) -> list[str]:
    """Per task: the input, SD's decoder (Ours_S) and the stage-2 decoder (Ours) of the same sampled latents."""
    rows, totals = [], {"lq": [], "drb": [], "plain": []}
    for name, data in sets:
        if name in model.plain_decoder_sets:
            continue  # the config's second copy of the same sets, decoded plain by the test table
        samples = [data[i] for i in range(len(data))]  # each item synthesises its degradation: once
        for task in dict.fromkeys(s["task"] for s in samples):
            part = batch_of([s for s in samples if s["task"] == task])
            drb = model.restore(part, decoder="drb").clamp(0, 1)  # same seed: the same latents
            plain = model.restore(part, decoder="plain").clamp(0, 1)
            row = {"lq": scores(part["lq"], part["hq"]), "drb": scores(drb, part["hq"]), "plain": scores(plain, part["hq"])}
            for key, value in row.items():
                totals[key].append(value)
            label = task if isinstance(task, str) else model.degradation_classes[int(task)]
            rows.append(f"| {label} | {row['lq'][0]:.2f} / {row['lq'][1]:.4f} | {row['plain'][0]:.2f} / "
                        f"{row['plain'][1]:.4f} | {row['drb'][0]:.2f} / {row['drb'][1]:.4f} | "
                        f"{row['drb'][0] - row['plain'][0]:+.2f} |")
    mean = {k: (sum(v[0] for v in vs) / len(vs), sum(v[1] for v in vs) / len(vs)) for k, vs in totals.items()}
    return [
        "| task | input PSNR / SSIM | Ours_S (SD's decoder) | Ours (degradation-aware decoder) | Δ PSNR |",
        "|---|---:|---:|---:|---:|",
        *rows,
        f"| mean | {mean['lq'][0]:.2f} / {mean['lq'][1]:.4f} | {mean['plain'][0]:.2f} / {mean['plain'][1]:.4f} | "
        f"{mean['drb'][0]:.2f} / {mean['drb'][1]:.4f} | {mean['drb'][0] - mean['plain'][0]:+.2f} |",
        "",
    ]


def decoder_section(model: Any) -> list[str]:
    """Ours (the stage-2 degradation-aware decoder) vs Ours_S (SD's decoder) on the quickstart's test sets."""
    return [
        "### The degradation-aware decoder against SD's decoder (Ours vs Ours_S)",
        "",
        "The quickstart's test tasks (3 test photos each, 96 px); both columns decode the same sampled latents "
        "(same seed and steps). The stage-2 decoder is `configs/diffrestorer/decoder_quickstart.yaml` fitted "
        "on this stage-1 checkpoint (`latents: restored`: it trains on stage 1's sampled latents, since "
        "mini-sd's autoencoder is exact and E(HQ) would leave its LQ features nothing to add).",
        "",
        *decoder_table(model, test_sets(DIFFRESTORER_CONFIG)),
    ]


SINGLE_TYPES_NOT_IN_THE_QUICKSTART = ("lowlight", "haze", "rain", "snow")
"""Trained on, but not in the quickstart's test table: at this budget they do not beat their inputs."""


def misses_section(model: Any) -> list[str]:
    """The single types left out of the quickstart's test table, measured: by how much they miss."""
    data = Sample("test", tasks=list(SINGLE_TYPES_NOT_IN_THE_QUICKSTART), max_side=96).configure(training=False)
    return [
        "### The single types left out of the quickstart's table",
        "",
        "Low light, haze, rain and snow are among the eight training types but not in the quickstart's test "
        "table: at 300 steps, decoded with SD's decoder, they do not beat their inputs (PSNR and SSIM), measured "
        "here with the same checkpoints, 3 test photos each, 96 px. With `lq_start: 0.6` the sampler starts from the noised LQ "
        "latent, whose low frequencies (brightness, the haze veil) survive; rain and snow inputs keep the "
        "photo's structure (SSIM 0.5–0.8), which the sampler at this scale does not.",
        "",
        *decoder_table(model, [("sample", data)]),
    ]


def tsne_section(ckpt: Path, image: Path) -> list[str]:
    """Diff-Restorer's Fig. 10 for this checkpoint, drawn by ``benchmarks/diffrestorer_tsne.py``."""
    import subprocess
    import sys

    script = Path(__file__).with_name("diffrestorer_tsne.py")
    result = subprocess.run([sys.executable, str(script), "--ckpt", str(ckpt), "--out", str(image)],
                            capture_output=True, text=True, check=True)
    summary = [line for line in result.stdout.splitlines() if line.startswith("wrote")][-1]
    return [
        "### The t-SNE of P_D",
        "",
        f"`python benchmarks/diffrestorer_tsne.py --ckpt <checkpoint> --out {image.name}`: {summary.removeprefix('wrote ').replace(str(image), image.name)}",
        "",
        f"![t-SNE of P_D]({image.name})",
        "",
    ]


def kept_section(path: Path, start: str, end: str) -> list[str]:
    """The lines of ``path`` from the heading ``start`` up to (not including) the heading ``end``."""
    if not path.is_file():
        raise SystemExit(f"--diffrestorer-only keeps the SPIRE section of {path}, which does not exist; run without it")
    lines = path.read_text().splitlines()
    if start not in lines or end not in lines:
        raise SystemExit(f"{path} has no '{start}' … '{end}' section to keep; run without --diffrestorer-only")
    return lines[lines.index(start):lines.index(end)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="runs/miniature")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "miniature.md"))
    parser.add_argument("--spire", default=None, help="SPIRE quickstart checkpoint (default: fit one)")
    parser.add_argument("--spire-additive", default=None, help="the same with fusion: additive (default: fit one)")
    parser.add_argument("--spire-strength", default=None, help="strength_quickstart.yaml's checkpoint (default: fit one)")
    parser.add_argument("--diffrestorer", default=None, help="Diff-Restorer quickstart checkpoint (default: fit one)")
    parser.add_argument("--decoder", default=None, help="its stage-2 decoder checkpoint (default: fit one on it)")
    parser.add_argument("--draws", type=int, default=4, help="degradation draws per photo and class")
    parser.add_argument("--diffrestorer-only", action="store_true",
                        help="measure Diff-Restorer alone; keep the SPIRE section of the existing --out file")
    args = parser.parse_args(argv)

    from restorezoo.models import SPIRE, DiffRestorer
    from restorezoo.models.diffrestorer import load_refinement_decoder

    start = time.perf_counter()
    work = Path(args.workdir).resolve()
    out = Path(args.out)
    if args.diffrestorer_only:
        kept_spire = kept_section(out, "## SPIRE", "## Diff-Restorer")
    else:
        spire_ckpt = Path(args.spire) if args.spire else fit(SPIRE_CONFIG, "spire-quickstart", work / "spire")
        additive_ckpt = Path(args.spire_additive) if args.spire_additive else fit(
            SPIRE_CONFIG, "spire-quickstart", work / "spire-additive", "--model.init_args.fusion", "additive")
        strength_ckpt = Path(args.spire_strength) if args.spire_strength else fit(
            STRENGTH_CONFIG, "spire-strength", work / "spire-strength")
    diff_ckpt = Path(args.diffrestorer) if args.diffrestorer else fit(
        DIFFRESTORER_CONFIG, "diffrestorer-quickstart", work / "diffrestorer")
    decoder_ckpt = Path(args.decoder) if args.decoder else fit(
        DECODER_CONFIG, "diffrestorer-decoder-quickstart", work / "diffrestorer-decoder",
        "--model.init_args.stage1", str(diff_ckpt.resolve()))
    diffrestorer = DiffRestorer.from_checkpoint(diff_ckpt).eval()
    diffrestorer.set_refinement_decoder(
        load_refinement_decoder(decoder_ckpt, diffrestorer.sd.vae, diffrestorer.degradation_dim))
    fit_minutes = (time.perf_counter() - start) / 60
    spire_given = args.diffrestorer_only or all((args.spire, args.spire_additive, args.spire_strength))
    given = spire_given and all((args.diffrestorer, args.decoder))
    fitted = ("every checkpoint given on the command line, so no fits" if given
              else f"{fit_minutes:.0f} min of fits before the measurements below")
    if args.diffrestorer_only:
        fitted += ("; `--diffrestorer-only`: the SPIRE section is kept as the previous full run wrote it, "
                   "and the total time below is Diff-Restorer's alone")
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if args.diffrestorer_only:
            spire_lines = kept_spire
        else:
            spire_lines = spire_section(
                SPIRE.from_checkpoint(spire_ckpt).eval(), SPIRE.from_checkpoint(additive_ckpt).eval(),
                strength := SPIRE.from_checkpoint(strength_ckpt).eval(), training_of(strength, strength_ckpt),
                out.with_name("miniature_spire_sigma.png"))
        lines = [
            "# The papers' claims in miniature (mini-sd, embedded sample, CPU)",
            "",
            f"`python benchmarks/miniature.py` ({fitted}). Backbone: the packaged mini-sd (`benchmarks/train_mini_sd.py`); checkpoints: "
            "the SPIRE and Diff-Restorer quickstarts as configured, SPIRE's with `fusion: additive`, and SPIRE's "
            "strength run (`configs/spire/strength_quickstart.yaml`).",
            "",
            *spire_lines,
            *diffrestorer_section(diffrestorer, args.draws),
            *decoder_section(diffrestorer),
            *misses_section(diffrestorer),
            *tsne_section(diff_ckpt, out.with_name("diffrestorer_tsne_mini_sd.png")),
            "## IR-SDE and InstructIR",
            "",
            "Their quickstarts restore the sample too: InstructIR's table and intent accuracy are in the README's "
            "quickstart section (`tests/test_quickstart.py`), IR-SDE's in its quickstart section and "
            "[irsde_steps_cpu.md](irsde_steps_cpu.md) (sampler steps against PSNR).",
            "",
            f"Total time: {(time.perf_counter() - start) / 60:.1f} min on {torch.get_num_threads()} CPU threads.",
            "",
        ]
    atomic_write_text(out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
