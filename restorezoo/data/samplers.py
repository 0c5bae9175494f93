"""Training order as a pure function of (seed, epoch, position): resumable mid-epoch, equal under DDP.

``ResumableSampler`` hands out ``SeededIndex`` values (an index that carries its sample's seed), so a
dataset's crops, flips, degradations and prompts need no global RNG; ``ResumableDataLoader`` lets
Lightning checkpoint the position; ``SeededConcatDataset`` passes the seed on to member datasets.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler


class SeededIndex(int):
    """A training index that carries the seed of its sample's randomness (crop, flip, degradation, prompt).

    The training sampler draws both from (run seed, epoch, position), so a run resumed mid-epoch
    from ``last.ckpt`` sees exactly the samples it would have seen uninterrupted.
    """

    seed: int

    def __new__(cls, index: int, seed: int) -> SeededIndex:
        value = super().__new__(cls, index)
        value.seed = int(seed)
        return value

    def __reduce__(self) -> tuple[type, tuple[int, int]]:  # survives the trip to dataloader workers
        return SeededIndex, (int(self), self.seed)


class ResumableSampler(DistributedSampler):
    """Training order and per-sample seeds as a pure function of (seed, epoch, position), sharded per rank.

    Shuffles every sample once per epoch, or, with ``weights``, draws ``num_samples`` with
    replacement (the ``train_weights`` mix). Each index comes out as a ``SeededIndex`` so the
    dataset's crops and degradations need no global RNG; ``skip`` drops the first indices of the
    next epoch (a run resumed mid-epoch). The seed is ``seed_everything``'s, else drawn once.

    Under DDP every rank draws the same global order and takes the positions ``rank, rank + world,
    …`` (padded with the first ones to equal length, as ``DistributedSampler``), so a global batch
    of a 2-process run holds exactly the samples of the 1-process batch twice its size. Being a
    ``DistributedSampler`` tells Lightning not to wrap it in one of its own.
    """

    def __init__(self, num_items: int, weights: torch.Tensor | None = None, num_samples: int | None = None) -> None:
        # DistributedSampler.__init__ wants a dataset; only its attributes (rank, replicas) are needed
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.num_replicas = torch.distributed.get_world_size() if distributed else 1
        self.rank = torch.distributed.get_rank() if distributed else 0
        self.shuffle, self.drop_last = True, False
        self.num_items = num_items
        self.weights = weights
        self.total_samples = num_samples if num_samples is not None else num_items
        self.num_samples = math.ceil(self.total_samples / self.num_replicas)  # per rank
        env_seed = os.environ.get("PL_GLOBAL_SEED")
        self.seed = int(env_seed) if env_seed is not None else int(torch.randint(0, 2**31, ()).item())
        self.epoch = 0
        self.current_epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        self.current_epoch, self.epoch = self.epoch, self.epoch + 1  # wrappers that never call set_epoch
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.current_epoch)
        if self.weights is None:
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.total_samples, replacement=True, generator=generator)
        seeds = torch.randint(0, 2**62, (self.total_samples,), generator=generator)
        padding = self.num_samples * self.num_replicas - self.total_samples
        if padding:
            order, seeds = torch.cat([order, order[:padding]]), torch.cat([seeds, seeds[:padding]])
        order, seeds = order[self.rank :: self.num_replicas], seeds[self.rank :: self.num_replicas]
        start, self.skip = self.skip, 0
        for index, seed in zip(order[start:].tolist(), seeds[start:].tolist()):
            yield SeededIndex(index, seed)


class ResumableDataLoader(DataLoader):
    """A training loader Lightning can checkpoint mid-epoch (its ``state_dict``/``load_state_dict``).

    The state is the sampler's seed, the epoch and the batches handed out; on resume the next
    epoch's iteration skips those batches at the sampler (no image is loaded for them).
    """

    _resume_batches = 0
    _position = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        start, self._resume_batches = self._resume_batches, 0
        skipping = isinstance(self.sampler, ResumableSampler) and self.batch_size is not None
        if skipping:
            self.sampler.skip = start * self.batch_size
        self._position = start if skipping else 0
        for position, batch in enumerate(super().__iter__()):
            if not skipping and position < start:
                continue  # a wrapped sampler (DDP): drop the batches already trained on
            self._position += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler = self.sampler
        state = {"batches": self._position}
        if isinstance(sampler, ResumableSampler):
            state.update(seed=sampler.seed, epoch=sampler.current_epoch)
        return state

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_batches = int(state.get("batches", 0))
        if isinstance(self.sampler, ResumableSampler) and "seed" in state:
            self.sampler.seed = int(state["seed"])
            self.sampler.epoch = int(state["epoch"])


class SeededConcatDataset(ConcatDataset):
    """``ConcatDataset`` that passes a ``SeededIndex``'s seed on to the member dataset."""

    def __getitem__(self, index: int) -> Any:
        seed = getattr(index, "seed", None)
        if seed is None or index < 0:
            return super().__getitem__(index)
        member = next(i for i, end in enumerate(self.cumulative_sizes) if index < end)
        offset = self.cumulative_sizes[member - 1] if member else 0
        return self.datasets[member][SeededIndex(index - offset, seed)]


__all__ = ["ResumableDataLoader", "ResumableSampler", "SeededConcatDataset", "SeededIndex"]
