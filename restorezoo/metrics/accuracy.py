"""Classification accuracy of a model's degradation head, per class and overall (a torchmetrics metric).

DA-CLIP's zero-shot degradation classifier and Diff-Restorer's classifier on P_D report the same
numbers: accuracy over images (``deg_acc``), the mean of the per-class accuracies (``deg_acc_mean``,
DA-CLIP's Table 4) and one value per class (``deg_acc/<class>``). Targets of -1 (a task the head has
no class for) are ignored. The counts reduce over every rank under DDP (torchmetrics' sum reduction).
InstructIR's intent classifier reports only the accuracy over images (``intent_acc``, ``per_class=False``).
``masked_accuracy`` is the same accuracy over one batch, for a training step's log.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class ClassAccuracy(Metric):
    """Correct and seen counts per class; ``compute_named`` gives the logged values.

    Args:
        classes: class names, in the head's class order.
        name: the logged key (``deg_acc``, ``intent_acc``).
        per_class: also give ``<name>_mean`` and ``<name>/<class>``; else ``<name>`` alone.
    """

    full_state_update = False

    def __init__(self, classes: Sequence[str], name: str = "deg_acc", per_class: bool = True) -> None:
        super().__init__()
        self.classes, self.name, self.per_class = [str(c) for c in classes], name, per_class
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
        classes seen (``deg_acc`` alone without ``per_class``); empty before any labelled image.
        torchmetrics sums the counts over ranks first."""
        correct, seen = self.correct, self.seen
        if float(seen.sum()) == 0:
            return {}
        if not self.per_class:
            return {self.name: correct.sum() / seen.sum()}
        present = seen > 0
        values = {self.name: correct.sum() / seen.sum(), f"{self.name}_mean": (correct[present] / seen[present]).mean()}
        values.update({f"{self.name}/{c}": correct[i] / seen[i] for i, c in enumerate(self.classes) if seen[i] > 0})
        return values

    def compute_named(self, stage: str) -> dict[str, Tensor]:
        """``compute()`` with the ``{stage}/`` prefix of the logged keys (``val``, or ``val/<benchmark>``)."""
        return {f"{stage}/{key}": value for key, value in self.compute().items()}


def masked_accuracy(predicted: Tensor, target: Tensor) -> Tensor:
    """The fraction of one batch's predicted class indices that equal their target, over the targets
    that are not -1 (0 when there is none); masked sums, so no host-device sync in a training step."""
    valid = (target >= 0).float()
    return ((predicted == target).float() * valid).sum() / valid.sum().clamp(min=1)


__all__ = ["ClassAccuracy", "masked_accuracy"]
