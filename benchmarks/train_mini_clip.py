"""Train ``mini-clip``: the tiny CLIP architecture (64-d, 64² input) trained contrastively on the sample.

Diff-Restorer reads the degradation of a photo out of a *frozen, pretrained* CLIP image embedding (its
P_D branch). The random tiny CLIP of the smoke runs carries almost none: a logistic regression on its
standardised embeddings classifies the eight degradations of the held-out photos at 33 %. Real CLIPs
learnt from web captions, which often say "blurry", "dark", "noisy", "foggy"; this script gives the tiny
tower that experience in miniature: image-text pairs of the sample's *train* photos, each randomly
degraded with one of Diff-Restorer's eight types (or left clean), and captions naming content and
degradation ("a grey brick wall, hazy"), under CLIP's symmetric contrastive loss. Crops of 32-160 px
(resized to the tower's 64²) cover both the 32² training patches of the Diff-Restorer quickstart and
its 96-px test photos. Writes ``restorezoo/assets/mini-clip/image_tower.safetensors`` (the image tower,
what ``clip_model: mini-clip`` loads), ``train_log.jsonl`` (losses, held-out probe) and
``training.md``::

    python benchmarks/train_mini_clip.py [--steps 2000] [--tower resnet|vit] [--out restorezoo/assets/mini-clip]

The probe is a logistic regression on the frozen embeddings of the train photos (3 degradation draws),
scored on the 3 test photos (4 draws: 96 images), eight classes: how much degradation the tower's
embedding carries, which is what Diff-Restorer's P_D reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from restorezoo.data import Sample
from restorezoo.data.degrade import build_degradation
from restorezoo.data.sample_photos import (
    DIFFRESTORER_SAMPLE_TASKS,
    SAMPLE_CAPTIONS,
    SAMPLE_PHOTOS,
    sample_photo,
)
from restorezoo.encoders.clip import clip_pixels, mini_clip, mini_clip_architecture, tiny_clip

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "restorezoo" / "assets" / "mini-clip"
DEGRADATIONS = {
    "noise": ({"name": "noise", "sigmas": [15, 25, 50]}, "noisy"),
    "lowlight": ("lowlight", "dark, low-light"),
    "haze": ("haze", "hazy, foggy"),
    "rain": ("rain", "rainy, rain streaks"),
    "raindrop": ("raindrop", "raindrops on the lens"),
    "snow": ("snow", "snowy"),
    "blur": ("blur", "blurry"),
    "jpeg": ({"name": "jpeg", "quality": [5, 30]}, "jpeg compressed, blocky"),
    "clean": ("clean", ""),
}
"""Each type's degradation spec and the words its captions add."""
EIGHT = list(DIFFRESTORER_SAMPLE_TASKS)
CLASS_NAMES = [str(t if isinstance(t, str) else t["name"]) for t in EIGHT]
"""The eight degradation types' names, the probe tables' columns."""
EXTRA_PHOTOS = {
    "clock": "a grey wall clock",
    "page": "a grey page of printed text",
    "text": "grey handwritten text",
    "cell": "a grey microscope image of a cell",
    "colorwheel": "a colour wheel",
    "checkerboard": "a grey checkerboard",
    "microaneurysms": "a grey retinal scan",
}
"""scikit-image's other offline photos (in no split of the sample), for ``--extra-photos``: more content to
tell degradation from."""


def batch(
    photos: dict[str, torch.Tensor],
    size: int,
    generator: torch.Generator,
    degradations: dict,
    word_only: float = 0.0,
    image_size: int | tuple[int, int] = 64,
    tint: float = 0.0,
) -> tuple:
    """Degraded crops resized to the tower's ``image_size`` and their captions; with probability ``word_only`` a caption is only the
    degradation's words ("clean" for a clean crop), as DA-CLIP's degradation texts are."""
    images, texts = [], []
    names, kinds = list(photos), list(DEGRADATIONS)
    for _ in range(size):
        name = names[int(torch.randint(len(names), (1,), generator=generator))]
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
        photo = photos[name]
        side = min(int(torch.randint(32, 161, (1,), generator=generator)), *photo.shape[-2:])
        top = int(torch.randint(photo.shape[-2] - side + 1, (1,), generator=generator))
        left = int(torch.randint(photo.shape[-1] - side + 1, (1,), generator=generator))
        crop = photo[None, :, top : top + side, left : left + side]
        if tint and float(torch.rand((), generator=generator)) < tint:
            crop = tinted(crop, generator)
        degraded, _ = degradations[kind](crop, generator=generator)
        images.append(clip_pixels(degraded.clamp(0, 1), image_size)[0])
        words = DEGRADATIONS[kind][1]
        if float(torch.rand((), generator=generator)) < word_only:
            texts.append(words or "clean")
        else:
            caption = SAMPLE_CAPTIONS.get(name) or EXTRA_PHOTOS[name]
            texts.append(f"{caption}, {words}" if words else caption)
    return torch.stack(images), texts


def tinted(crop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-channel gamma and gain: a grey crop turns colour (six of the ten train photos are grey, the three
    test photos are colour, and colour changes how JPEG's chroma and the weather layers look)."""
    gamma = torch.empty(1, 3, 1, 1).uniform_(0.6, 1.6, generator=generator)
    gain = torch.empty(1, 3, 1, 1).uniform_(0.7, 1.0, generator=generator)
    return crop.clamp(0, 1).pow(gamma) * gain


@torch.no_grad()
def probe_accuracy(
    tower: torch.nn.Module, per_class: bool = False, train_patch: int | None = None
) -> float | tuple[float, list[float]]:
    """Held-out linear probe: a logistic regression on embeddings of train photos (3 draws), scored on the
    test photos (4 draws), eight classes; with ``per_class`` also each class's accuracy.

    ``train_patch``: fit the regression on random ``train_patch``-px training patches of the train photos
    instead (30 draws, degraded after cropping, as Diff-Restorer's DataModule feeds its classifier).
    """

    def embed(datasets: Iterable[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for data in datasets:
            lq = torch.stack([data[i]["lq"] for i in range(len(data))])
            xs.append(tower(clip_pixels(lq, tower.image_size)))
            ys.append(torch.arange(len(data)) % len(EIGHT))
        return torch.cat(xs), torch.cat(ys)

    def photos(split: str, seeds: range) -> list[Sample]:
        return [Sample(split, tasks=EIGHT, max_side=96, seed=seed).configure(training=False) for seed in seeds]

    if train_patch is None:
        x, y = embed(photos("train", range(3)))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # training crops draw from the global generator
            x, y = embed(Sample("train", tasks=EIGHT).configure(training=True, patch_size=train_patch) for _ in range(30))
    x_test, y_test = embed(photos("test", range(1000, 1004)))
    mean, std = x.mean(0), x.std(0) + 1e-6
    x, x_test = (x - mean) / std, (x_test - mean) / std
    with torch.enable_grad():
        weight = torch.zeros(x.shape[1], len(EIGHT), requires_grad=True)
        bias = torch.zeros(len(EIGHT), requires_grad=True)
        optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
        for _ in range(300):
            loss = F.cross_entropy(x @ weight + bias, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    right = (x_test @ weight + bias).argmax(1) == y_test
    accuracy = float(right.float().mean())
    if not per_class:
        return accuracy
    return accuracy, [float(right[y_test == k].float().mean()) for k in range(len(EIGHT))]


def print_probes(tower: torch.nn.Module) -> None:
    """The held-out probe with the regression fitted on whole train photos and on training patches."""
    print("| regression fitted on | held-out accuracy | " + " | ".join(CLASS_NAMES) + " |")
    print("|---|---:|" + "---:|" * len(EIGHT))
    for patch in (None, 32, 64, 96):
        accuracy, per_class = probe_accuracy(tower, per_class=True, train_patch=patch)
        where = "train photos, 96 px (3 draws)" if patch is None else f"{patch}-px training patches (30 draws)"
        print(f"| {where} | {100 * accuracy:.1f} % | " + " | ".join(f"{100 * a:.0f} %" for a in per_class) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--tower", choices=("resnet", "vit"), default="resnet",
                        help="resnet: mini-clip's ModifiedResNet (shipped); vit: tiny_clip's ViT, for comparison")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--word-only", type=float, default=0.5,
                        help="probability that a caption is only the degradation's words (default 0.5)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--image-size", type=int, default=64,
                        help="the ResNet tower's input side, a multiple of 32 (default 64)")
    parser.add_argument("--extra-photos", action="store_true",
                        help="also train on scikit-image's photos outside the sample's splits (EXTRA_PHOTOS)")
    parser.add_argument("--tint", type=float, default=0.0,
                        help="probability of a random per-channel gamma/gain on a crop before degrading (default 0)")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="probe and ship an exponential moving average of the tower with this decay (default 0: off)")
    parser.add_argument("--width", type=int, default=8, help="the ResNet tower's base width (default 8)")
    parser.add_argument("--probe", default=None, metavar="TOWER",
                        help="train nothing: probe this image_tower.safetensors, fitting the regression on the "
                             "train photos and on 32/64/96-px training patches (Diff-Restorer's view)")
    args = parser.parse_args(argv)
    if args.probe:
        print_probes(mini_clip(args.probe))
        return

    from safetensors.torch import save_file

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train_log.jsonl"
    log.write_text("")
    generator = torch.Generator().manual_seed(args.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip, tokenizer = mini_clip_architecture(args.image_size, args.width) if args.tower == "resnet" else tiny_clip()
    names = [*SAMPLE_PHOTOS["train"], *(EXTRA_PHOTOS if args.extra_photos else ())]
    photos = {name: sample_photo(name) for name in names}
    degradations = {kind: build_degradation(spec) for kind, (spec, _) in DEGRADATIONS.items()}
    optimizer = torch.optim.AdamW(clip.parameters(), lr=args.lr, weight_decay=0.1)
    # --ema: probe and ship an exponential moving average of the image tower (BatchNorm statistics copied)
    ema = copy.deepcopy(clip.visual).eval().requires_grad_(False) if args.ema else None

    def tower() -> torch.nn.Module:
        return ema if ema is not None else clip.visual.eval()

    records = [{"step": 0, "probe_accuracy": probe_accuracy(tower())}]
    log.write_text(json.dumps(records[0]) + "\n")
    clip.train()
    bar = tqdm(range(args.steps), desc="mini-clip")
    for step in bar:
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + torch.cos(torch.tensor(step / args.steps * torch.pi)))
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        images, texts = batch(photos, args.batch_size, generator, degradations, args.word_only, clip.visual.image_size, args.tint)
        image_features = F.normalize(clip.encode_image(images), dim=-1)
        text_features = F.normalize(clip.encode_text(tokenizer(texts)), dim=-1)
        logits = clip.logit_scale.exp() * image_features @ text_features.T
        # identical captions in one batch are all right answers
        same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float32)
        targets = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, 4.6052)
            if ema is not None:
                for average, weight in zip(ema.parameters(), clip.visual.parameters()):
                    average.lerp_(weight, 1 - args.ema)
                for average, statistic in zip(ema.buffers(), clip.visual.buffers()):
                    average.copy_(statistic)
        record: dict = {"step": step + 1, "loss": float(loss)}
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            record["probe_accuracy"] = probe_accuracy(tower())
            clip.train()
            bar.set_postfix(probe=f"{record['probe_accuracy']:.2f}")
        with log.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    clip.eval()
    accuracy, per_class = probe_accuracy(tower(), per_class=True)
    # the image tower only: Diff-Restorer reads nothing else, and the text tower's 49408-token embedding
    # table alone would be 12.6 MB
    save_file({k: v.contiguous() for k, v in tower().state_dict().items()}, str(out / "image_tower.safetensors"))
    probes = [json.loads(line) for line in log.read_text().splitlines() if "probe_accuracy" in line]
    summary = [
        "# mini-clip: training log summary",
        "",
        f"`python benchmarks/train_mini_clip.py --seed {args.seed} --steps {args.steps} --tower {args.tower} "
        f"--lr {args.lr:g} --word-only {args.word_only:g} --image-size {args.image_size} --width {args.width}"
        f"{' --extra-photos' if args.extra_photos else ''}{f' --tint {args.tint:g}' if args.tint else ''}"
        f"{f' --ema {args.ema:g}' if args.ema else ''}`: "
        f"{(time.perf_counter() - start) / 60:.1f} min on {torch.get_num_threads()} CPU threads.",
        "",
        "| step | held-out linear-probe accuracy (8 degradations, test photos) |",
        "|---:|---:|",
        *(f"| {p['step']} | {100 * p['probe_accuracy']:.1f} % |" for p in probes),
        "",
        f"Final held-out probe per class ({100 * accuracy:.1f} % overall, 12 images each):",
        "",
        "| " + " | ".join(CLASS_NAMES) + " |",
        "|" + "---:|" * len(EIGHT),
        "| " + " | ".join(f"{100 * a:.0f} %" for a in per_class) + " |",
        "",
    ]
    (out / "training.md").write_text("\n".join(summary))
    print("\n".join(summary))


if __name__ == "__main__":
    main()
