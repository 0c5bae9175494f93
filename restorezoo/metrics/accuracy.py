"""Classification accuracy of a model's degradation head, per class and overall (a torchmetrics metric).

DA-CLIP's zero-shot degradation classifier and Diff-Restorer's classifier on P_D report the same
numbers: accuracy over images (``deg_acc``), the mean of the per-class accuracies (``deg_acc_mean``,
DA-CLIP's Table 4) and one value per class (``deg_acc/<class>``). Targets of -1 (a task the head has
no class for) are ignored. The counts reduce over every rank under DDP (torchmetrics' sum reduction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class ClassAccuracy(Metric):
    """Correct and seen counts per class; ``compute_named`` gives the logged values."""

    full_state_update = False

    def __init__(self, classes: Sequence[str], name: str = "deg_acc") -> None:
        super().__init__()
        self.classes, self.name = [str(c) for c in classes], name
        self.add_state("correct", torch.zeros(len(self.classes)), dist_reduce_fx="sum")
        self.add_state("seen", torch.zeros(len(self.classes)), dist_reduce_fx="sum")

    def update(self, predicted: Tensor, target: Tensor) -> None:
        """Count one batch of predicted class indices against targets (-1: unknown, ignored)."""
        target = target.to(self.seen.device).long()
        valid = target >= 0
        hits = (predicted.to(target.device) == target) & valid
        self.correct.index_add_(0, target[valid], hits[valid].float())
        self.seen.index_add_(0, target[valid], torch.ones_like(target[valid], dtype=self.seen.dtype))

    def compute(self) -> dict[str, Tensor]:
        """``deg_acc`` (over images), ``deg_acc_mean`` (mean over classes) and ``deg_acc/<class>`` for the
        classes seen; empty before any labelled image. torchmetrics sums the counts over ranks first."""
        correct, seen = self.correct, self.seen
        if float(seen.sum()) == 0:
            return {}
        present = seen > 0
        values = {self.name: correct.sum() / seen.sum(), f"{self.name}_mean": (correct[present] / seen[present]).mean()}
        values.update({f"{self.name}/{c}": correct[i] / seen[i] for i, c in enumerate(self.classes) if seen[i] > 0})
        return values

    def compute_named(self, stage: str) -> dict[str, Tensor]:
        """``compute()`` with the ``{stage}/`` prefix of the logged keys."""
        return {f"{stage}/{key}": value for key, value in self.compute().items()}


__all__ = ["ClassAccuracy"]
