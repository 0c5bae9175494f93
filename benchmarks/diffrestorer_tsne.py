"""Diff-Restorer Fig. 10: the CLIP image embedding vs the degradation prompt P_D, coloured by degradation.

Usage::

    python benchmarks/diffrestorer_tsne.py [--ckpt runs/diffrestorer-quickstart/checkpoints/last.ckpt]
        [--out benchmarks/results/diffrestorer_tsne.png] [--crops 4] [--seed 0]

Points: random crops of every embedded sample photo (train, val and test splits), each degraded with
each of the paper's eight degradations. Left: the frozen CLIP image embedding P_CLIP; right: P_D of the
stage-1 checkpoint (``--ckpt``); without one, a tiny Diff-Restorer (random tiny CLIP) whose prompt
processor is first fitted with L_deg on the train photos (``--fit-steps``), so the picture shows what
L_deg does to the CLIP space. Embeddings go through t-SNE (scikit-learn) or, if it is missing, a PCA
fallback; the titles say which, and give the leave-one-out 5-NN degradation accuracy of each space.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from restorezoo.data import Sample
from restorezoo.data.datamodule import collate_with_tasks
from restorezoo.data.prompts import DIFFRESTORER_CLASSES
from restorezoo.data.sample_photos import DIFFRESTORER_SAMPLE_TASKS
from restorezoo.models.diffrestorer import DiffRestorer

EIGHT = list(DIFFRESTORER_SAMPLE_TASKS)
CLASSES = list(DIFFRESTORER_CLASSES)


def degraded_crops(split: str, crops: int, patch: int, seed: int) -> dict:
    """``crops`` random crops of every photo of ``split`` under each degradation, as one batch."""
    torch.manual_seed(seed)
    data = Sample(split, tasks=EIGHT, repeat=crops).configure(training=True, patch_size=patch, flip=False)
    return collate_with_tasks([data[i] for i in range(len(data))], CLASSES)


def fit_prompt_processor(model: DiffRestorer, steps: int, seed: int) -> None:
    """Fit the prompt processor with L_deg alone on the train photos (quick stand-in for stage 1)."""
    train = degraded_crops("train", crops=4, patch=64, seed=seed + 1)
    optimizer = torch.optim.AdamW(model.control.prompt_processor.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        embeddings = model.clip_embedding(train["lq"])
    targets = model.degradation_targets(train)
    for _ in range(steps):
        pick = torch.randint(0, len(targets), (32,), generator=generator)
        logits = model.control.prompt_processor(embeddings[pick])[2]
        loss = F.cross_entropy(logits, targets[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def project(features: torch.Tensor, seed: int) -> tuple[torch.Tensor, str]:
    """2-D t-SNE (scikit-learn) of the rows, or PCA when scikit-learn is not installed."""
    x = features.double()
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-8)
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        _, _, v = torch.pca_lowrank(x, q=2, center=True)
        return (x - x.mean(0)) @ v[:, :2], "PCA (scikit-learn not installed)"
    perplexity = min(30.0, (len(x) - 1) / 3)
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x.numpy())
    return torch.from_numpy(points), "t-SNE"


def knn_accuracy(features: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy (cosine) of the degradation labels: how well a space separates them."""
    x = F.normalize(features.float(), dim=-1)
    similarity = x @ x.T
    similarity.fill_diagonal_(-2)
    neighbours = similarity.topk(k, dim=-1).indices
    votes = F.one_hot(labels[neighbours], int(labels.max()) + 1).sum(1)
    return float((votes.argmax(-1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None, help="stage-1 checkpoint (default: a tiny model fitted on L_deg)")
    parser.add_argument("--out", default="benchmarks/results/diffrestorer_tsne.png")
    parser.add_argument("--crops", type=int, default=4, help="random crops per photo and degradation")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--fit-steps", type=int, default=300, help="L_deg steps without --ckpt")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    if opts.ckpt:
        model = DiffRestorer.from_checkpoint(opts.ckpt)
        source = f"checkpoint {Path(opts.ckpt).name}"
    else:
        torch.manual_seed(opts.seed)
        model = DiffRestorer(
            pretrained="tiny", clip_model="tiny", degradation_classes=CLASSES, degradation_dim=64, hidden_dim=128,
            control_channels=(16, 16, 32, 32), progress=False,
        )
        model.set_task_names(CLASSES)
        fit_prompt_processor(model, opts.fit_steps, opts.seed)
        source = f"tiny model, prompt processor fitted {opts.fit_steps} steps on L_deg"
    assert isinstance(model, DiffRestorer)
    model.set_task_names(CLASSES)
    model.eval()
    batches = [degraded_crops(split, opts.crops, opts.patch, opts.seed + 10 + i) for i, split in
               enumerate(("train", "val", "test"))]
    lq = torch.cat([b["lq"] for b in batches])
    labels = torch.cat([model.degradation_targets(b) for b in batches])
    with torch.no_grad():
        clip = model.clip_embedding(lq)
        _, p_d, logits = model.prompts(lq)
    held_out = len(batches[0]["lq"])  # val and test photos: never seen by the classifier
    accuracy = float((logits[held_out:].argmax(-1) == labels[held_out:]).float().mean())
    clip_name = "tiny random CLIP" if model.clip_model == "tiny" else model.clip_model
    panels = [(f"CLIP image embedding ({clip_name})", clip), ("degradation prompt P_D", p_d)]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    colours = plt.get_cmap("tab10")
    method = ""
    for axis, (title, features) in zip(axes, panels):
        points, method = project(features, opts.seed)
        for index, name in enumerate(model.degradation_classes):
            mask = labels == index
            axis.scatter(points[mask, 0], points[mask, 1], s=10, color=colours(index), label=name)
        axis.set_title(f"{title}\n5-NN degradation accuracy {knn_accuracy(features, labels):.2f}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, markerscale=2)
    figure.suptitle(
        f"Diff-Restorer Fig. 10 on the embedded sample ({len(labels)} crops, 8 degradations): {method}; {source}\n"
        f"classifier head on P_D, held-out photos: {accuracy:.2f} accuracy (chance {1 / len(CLASSES):.2f})",
        fontsize=10,
    )
    figure.tight_layout()
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(
        f"wrote {out} ({method}; {len(labels)} points; 5-NN accuracy CLIP {knn_accuracy(clip, labels):.3f}, "
        f"P_D {knn_accuracy(p_d, labels):.3f}; held-out classifier accuracy {accuracy:.3f}; "
        f"{time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
