"""``RestorationMetrics``: the zoo's one metric callback (README, "Metrics").

Models only return ``{"pred": ...}`` from their validation/test steps; this callback reads the
prediction, the batch's ``hq``/``lq``/``benchmark``/``task``/``index`` fields and the datamodule's
benchmark protocols, and owns every number and table (the anomalib "evaluator as callback" shape).

Exactness under DDP: every image has a fixed row in a per-epoch state tensor
(``offset(benchmark) + batch["index"]``). Ranks add their scores and counts into it, the tensors are
summed across ranks once at epoch end, and each image's score is its sum divided by its count. The
samples DistributedSampler repeats to even out the ranks therefore count once, and the table equals
the single-device one. Nothing on the per-batch path leaves the device (no ``.item()``).

Set-level metrics (FID) keep per-image features the same way (an N×2×D tensor of prediction and target
features, reduced like the scores) and are computed per (benchmark, task) group from them at epoch end.
CLIP-T reads the image's own caption (``batch["reference_caption"]`` where a dataset's fixed conditioning
caption replaced it, else ``batch["caption"]``); images without a caption are not scored.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from restorezoo.files import atomic_write_bytes
from restorezoo.metrics.functional import psnr_ssim
from restorezoo.metrics.learned import (
    FID_TOO_FEW,
    KNOWN_LEARNED,
    NO_CAPTIONS,
    LearnedMetric,
    build_learned_metrics,
    frechet_distance,
)
from restorezoo.metrics.papers import annotate_rows, protocol_note
from restorezoo.metrics.protocol import RGB, MetricProtocol
from restorezoo.metrics.release import release_scores
from restorezoo.metrics.tables import (
    overall_means,
    print_table,
    rows_from_state,
    to_markdown,
    write_csv,
)

__all__ = ["PSNR_CAP_DB", "RestorationMetrics"]

PSNR_CAP_DB = 100.0
"""PSNR stored for an image identical to its target (BasicSR returns +inf, which would make any
benchmark mean inf). 100 dB is far above any real restoration result, so the cap never hides one."""

FUNCTIONAL_METRICS = ("psnr", "ssim")
STAGES = {"validate": "val", "test": "test"}


@dataclass
class _EpochState:
    """Per-image accumulators of one validation or test epoch."""

    stage: str
    columns: list[str]
    set_names: list[str]
    protocols: list[MetricProtocol]
    task_names: list[str]
    indexed: bool
    offsets: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    values: Tensor | None = None  # (N + 1) × C sums; the last row collects samples with no valid slot
    counts: Tensor | None = None  # (N + 1) × C
    tasks: Tensor | None = None  # N + 1, task index + 1 (0 = unknown)
    chunks: list[tuple[list[str], Tensor, Tensor, Tensor]] = field(default_factory=list)  # fallback
    features: dict[str, Tensor] = field(default_factory=dict)  # set-level metric -> (N + 1) × 2 × D sums
    feature_chunks: dict[str, list[Tensor]] = field(default_factory=dict)  # fallback: B × 2 × D per batch
    output_dir: Path | None = None
    saved: dict[str, int] = field(default_factory=dict)
    set_index: dict[str, int] = field(default_factory=dict)  # benchmark name -> its first position in set_names

    def __post_init__(self) -> None:
        for i, name in enumerate(self.set_names):
            self.set_index.setdefault(name, i)


class RestorationMetrics(L.Callback):
    """Score validation and test predictions per (benchmark, task) and write the benchmark table.

    Args:
        metrics: BasicSR-exact metrics to compute, among ``"psnr"`` and ``"ssim"``.
        learned: pyiqa metrics (``"lpips"``, ``"dists"``, ``"niqe"``, ``"musiq"``, ``"clipiqa"``), open_clip
            ``"clip_i"``/``"clip_t"`` (against the image's own caption) and the set-level ``"fid"``; ones whose
            weights cannot be had show "n/a (weights unavailable)" and the run goes on.
        compare_input: also score the degraded input against the target (``psnr_lq``, ``ssim_lq``),
            so the table shows what the model gained; and, for a model with an ``autoencoder_round_trip``
            (a latent-diffusion restorer: the target through its frozen autoencoder), score that round trip
            too (``psnr_ceiling``, ``ssim_ceiling``): no sample can beat its decoder. It is computed here,
            only when this table asks for it.
        save_images: on test, save an LQ | prediction | HQ strip of the first N images of each
            benchmark (on global rank zero) under ``<output dir>/images/<benchmark>/``.
        output_dir: where ``benchmark.md``/``benchmark.csv``/images go; default ``trainer.log_dir``.
        paper_method: the table row of the paper to put beside each result (e.g. ``"InstructIR-3D"``);
            default: the model's own method (``metrics.papers.MODEL_METHODS``). Under the table go each
            benchmark's protocol and, for the rows a paper reports, its table, method and protocol.

    After ``trainer.test``, ``rows`` holds the table as dicts and ``table_markdown`` its Markdown;
    ``val_rows`` holds the last validation epoch's rows.
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("psnr", "ssim"),
        learned: Sequence[str] = (),
        compare_input: bool = True,
        save_images: int = 4,
        output_dir: str | None = None,
        paper_method: str | None = None,
    ) -> None:
        super().__init__()
        metrics, learned = tuple(metrics), tuple(learned)
        bad = [m for m in metrics if m not in FUNCTIONAL_METRICS]
        if bad:
            raise ValueError(
                f"unknown metric(s) {bad}; known: {', '.join(FUNCTIONAL_METRICS)} "
                f"(learned ones go in `learned`: {', '.join(KNOWN_LEARNED)})"
            )
        bad = [m for m in learned if m not in KNOWN_LEARNED]
        if bad:
            raise ValueError(f"unknown learned metric(s) {bad}; known: {', '.join(KNOWN_LEARNED)}")
        if save_images < 0:
            raise ValueError(f"save_images must be >= 0, got {save_images}")
        self.metrics = metrics
        self.learned = learned
        self.compare_input = compare_input
        self.save_images = save_images
        self.output_dir = output_dir
        self.paper_method = paper_method
        self.columns: list[str] = [*metrics, *learned]
        if compare_input:
            self.columns += [f"{m}_lq" for m in metrics]
        self.rows: list[dict[str, Any]] = []
        self.val_rows: list[dict[str, Any]] = []
        self.table_markdown: str = ""
        self._learned: dict[str, LearnedMetric] = {}
        self._state: _EpochState | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            rank_zero_warn(message)

    @property
    def unavailable(self) -> set[str]:
        """Learned metrics that could not be built (their column reads "n/a (weights unavailable)")."""
        return {name for name, m in self._learned.items() if not m.available}

    def _build_learned(self, device: torch.device) -> None:
        if not self.learned or self._learned:
            return
        self._learned = build_learned_metrics(self.learned, device)
        for name, m in self._learned.items():
            if not m.available:
                self._warn_once(
                    f"learned:{name}",
                    f"RestorationMetrics: '{name}' is unavailable ({m.reason}: {m.detail}); "
                    "its column will read 'n/a (weights unavailable)'.",
                )

    # ------------------------------------------------------------------ epoch state

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Build learned metrics where the module will run (the strategy's root device)."""
        self._build_learned(trainer.strategy.root_device)

    def _start(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._build_learned(pl_module.device)
        dm = getattr(trainer, "datamodule", None)
        task_names = [str(t) for t in (getattr(dm, "task_names", None) or [])]
        eval_sets = getattr(dm, "eval_sets", None)
        sets = list(eval_sets(stage)) if callable(eval_sets) else None
        if sets is None:
            self._state = _EpochState(stage, list(self.columns), [], [], task_names, indexed=False)
            if trainer.world_size > 1:
                self._warn_once(
                    "fallback-ddp",
                    "RestorationMetrics: the datamodule has no eval_sets(); the table covers rank zero's "
                    "share only, logged values are averaged over rank means and padded duplicates are "
                    "kept. Give the datamodule eval_sets() for exact DDP numbers.",
                )
        else:
            names = [str(s[0]) for s in sets]
            lengths = [int(s[1]) for s in sets]
            protocols = [s[2] if len(s) > 2 and s[2] is not None else RGB for s in sets]
            offsets = [sum(lengths[:i]) for i in range(len(lengths))]
            n = sum(lengths)
            columns = list(self.columns)
            if self._round_trip(pl_module) is not None:
                columns += [f"{m}_ceiling" for m in self.metrics]
            if any(p.also_y for p in protocols):  # a release that also scores Y (InstructIR's rain sets)
                columns += [f"{m}_y" for m in self.metrics]
            c = len(columns)
            dtype = torch.float32 if pl_module.device.type == "mps" else torch.float64
            self._state = _EpochState(
                stage,
                columns,
                names,
                protocols,
                task_names,
                indexed=True,
                offsets=offsets,
                lengths=lengths,
                values=torch.zeros(n + 1, c, dtype=dtype, device=pl_module.device),
                counts=torch.zeros(n + 1, c, dtype=dtype, device=pl_module.device),
                tasks=torch.zeros(n + 1, dtype=torch.long, device=pl_module.device),
            )
            for name, metric in self._set_level().items():
                self._state.features[name] = torch.zeros(n + 1, 2, metric.dim, device=pl_module.device)
        if stage == "test" and self.save_images > 0:
            # log_dir broadcasts, so every rank must resolve it, not just rank zero.
            self._state.output_dir = self._resolve_output_dir(trainer)

    def _resolve_output_dir(self, trainer: L.Trainer) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(trainer.log_dir or trainer.default_root_dir)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module, "validate")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module, "test")

    # ------------------------------------------------------------------ per batch

    def _set_ids(self, state: _EpochState, benchmarks: Sequence[Any], dataloader_idx: int) -> list[int]:
        """Each sample's position in eval_sets: its benchmark's (named once an epoch in ``set_index``),
        else its dataloader's; -1 for neither."""
        fallback = dataloader_idx if 0 <= dataloader_idx < len(state.set_names) else -1
        return [state.set_index.get(str(name), fallback) for name in benchmarks]

    def _set_level(self) -> dict[str, LearnedMetric]:
        return {n: m for n, m in self._learned.items() if m.set_level and m.available}

    def _score(
        self,
        state: _EpochState,
        pred: Tensor,
        batch: Mapping[str, Any],
        protocols: list[MetricProtocol],
        ceiling: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """B×C scores, B×C 0/1 flags of which were computed and B×2×D set-level features (prediction,
        target), all on the prediction's device."""
        b, device = pred.shape[0], pred.device
        cols = state.columns
        vals = torch.zeros(b, len(cols), dtype=torch.float64, device=device)
        done = torch.zeros_like(vals)
        hq, lq = batch.get("hq"), batch.get("lq")
        paired = isinstance(hq, Tensor) and hq.shape[0] == b
        # Samples of one batch nearly always share a protocol; score each protocol group at once.
        groups: dict[MetricProtocol, list[int]] = {}
        for i, p in enumerate(protocols):
            groups.setdefault(p, []).append(i)
        for protocol, members in groups.items():
            pos = _to_device(members, device) if len(members) < b else None

            def pick(t: Tensor, pos: Tensor | None = pos) -> Tensor:
                return t if pos is None else t.index_select(0, pos)

            rows = pos if pos is not None else slice(None)
            if paired and self.metrics:
                target = pick(hq)
                pairs = [("", pred)]
                if self.compare_input and isinstance(lq, Tensor) and lq.shape == hq.shape:
                    pairs.append(("_lq", lq))
                if isinstance(ceiling, Tensor) and ceiling.shape == hq.shape:
                    pairs.append(("_ceiling", ceiling))
                for suffix, img in pairs:
                    img = pick(img)
                    if suffix == "" and protocol.clamp:  # BasicSR's tensor2img clamps; a release may not
                        img = img.clamp(0, 1)
                    if protocol.release:
                        scores = release_scores(img, target, also_y=protocol.also_y)
                    else:
                        p, s = psnr_ssim(img, target, protocol)
                        scores = {"psnr": p, "ssim": s}
                    scores = {k: (v.clamp(max=PSNR_CAP_DB) if k.startswith("psnr") else v).to(device)
                              for k, v in scores.items()}
                    for m in self.metrics:
                        for name in (m, f"{m}_y"):
                            if name in scores and name + suffix in cols:
                                j = cols.index(name + suffix)
                                vals[rows, j] = scores[name]
                                done[rows, j] = 1.0
        features: dict[str, Tensor] = {}
        # CLIP-T scores the image's own caption: a dataset's fixed conditioning caption leaves it in reference_caption
        captions = [str(c) for c in (batch.get("caption") or [])]
        for i, reference in enumerate(list(batch.get("reference_caption") or [])[: len(captions)]):
            if reference is not None:
                captions[i] = str(reference)
        for name, metric in self._learned.items():
            if not metric.available or f"failed:{name}" in self._warned:
                continue
            if metric.full_reference and not paired:
                continue
            j = cols.index(name)
            rows = slice(None)
            try:
                if metric.set_level:
                    features[name] = torch.stack([metric.features(pred), metric.features(hq)], dim=1).to(device)
                    done[:, j] = 1.0
                    continue
                if metric.needs_caption:  # CLIP-T: only images that have a caption (not dropped, not empty)
                    keep = [i for i, c in enumerate(captions[:b]) if c.strip()]
                    if not keep:
                        continue
                    rows = _to_device(keep, device)
                    score = metric(pred.index_select(0, rows), captions=[captions[i] for i in keep])
                else:
                    score = metric(pred, hq if metric.full_reference else None)
            except Exception as exc:  # a metric that cannot score these images must not end the run
                self._warn_once(f"failed:{name}", f"RestorationMetrics: '{name}' failed ({exc}); skipped.")
                continue
            vals[rows, j] = score.to(device)
            done[rows, j] = 1.0
        return vals, done, features

    def _round_trip(self, pl_module: L.LightningModule) -> Callable[[Tensor], Tensor] | None:
        """The model's ``autoencoder_round_trip`` when the table scores the ceiling (with the input), else None."""
        round_trip = getattr(pl_module, "autoencoder_round_trip", None)
        return round_trip if self.compare_input and callable(round_trip) else None

    def _update(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        dataloader_idx: int,
    ) -> None:
        state = self._state
        if state is None or not isinstance(batch, Mapping):
            return
        pred = outputs.get("pred") if isinstance(outputs, Mapping) else None
        if not isinstance(pred, Tensor):
            self._warn_once(
                "no-pred",
                "RestorationMetrics: the step returned no {'pred': tensor}; nothing is scored.",
            )
            return
        b, device = pred.shape[0], pred.device
        benchmarks = list(batch.get("benchmark") or [""] * b)
        task = batch.get("task")
        task = task.to(device) if isinstance(task, Tensor) else torch.full((b,), -1, device=device)
        if state.indexed:
            set_ids = self._set_ids(state, benchmarks, dataloader_idx)
            protocols = [state.protocols[s] if s >= 0 else RGB for s in set_ids]
        else:
            protocols = [RGB] * b
        ceiling, round_trip, hq = None, self._round_trip(pl_module), batch.get("hq")
        if round_trip is not None and isinstance(hq, Tensor):
            with torch.no_grad():
                ceiling = round_trip(hq.to(device))
        vals, done, features = self._score(state, pred, batch, protocols, ceiling)
        if state.indexed:
            assert state.values is not None and state.counts is not None and state.tasks is not None
            index = batch.get("index")
            index = index.to(device) if isinstance(index, Tensor) else torch.full((b,), -1, device=device)
            offsets = [state.offsets[s] if s >= 0 else 0 for s in set_ids]
            lengths = [state.lengths[s] if s >= 0 else 0 for s in set_ids]
            # One benchmark per batch is the rule: plain ints then, so nothing is copied to the device.
            uniform = len(set(set_ids)) == 1
            offset = offsets[0] if uniform else _to_device(offsets, device)
            length = lengths[0] if uniform else _to_device(lengths, device)
            valid = (index >= 0) & (index < length)
            trash = state.values.shape[0] - 1
            slot = torch.where(valid, offset + index, torch.full_like(index, trash))
            state.values.index_add_(0, slot, vals.to(state.values.dtype))
            state.counts.index_add_(0, slot, done.to(state.counts.dtype))
            state.tasks.scatter_reduce_(0, slot, (task.long() + 1).clamp(min=0), reduce="amax")
            for name, feats in features.items():
                state.features[name].index_add_(0, slot, feats.to(state.features[name].dtype))
        else:
            state.chunks.append(([str(n) for n in benchmarks], task.long().detach(), vals, done))
            for name, feats in features.items():
                state.feature_chunks.setdefault(name, []).append(feats.detach())
        if state.stage == "test" and self.save_images > 0 and trainer.is_global_zero:
            self._save_strips(state, pred, batch, benchmarks)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update(trainer, pl_module, outputs, batch, dataloader_idx)

    on_test_batch_end = on_validation_batch_end

    # ------------------------------------------------------------------ images

    def _save_strips(
        self, state: _EpochState, pred: Tensor, batch: Mapping[str, Any], benchmarks: list[str]
    ) -> None:
        if state.output_dir is None:
            return
        names = list(batch.get("name") or [""] * pred.shape[0])
        for i, bench in enumerate(benchmarks):
            done = state.saved.get(bench, 0)
            if done >= self.save_images:
                continue
            state.saved[bench] = done + 1
            panels = [t[i] for t in (batch.get("lq"), pred, batch.get("hq")) if isinstance(t, Tensor)]
            stem = re.sub(r"[^\w.-]+", "_", str(names[i])).strip("._") if i < len(names) else ""
            stem = stem or f"{done:05d}"
            folder = re.sub(r"[^\w.-]+", "_", bench) or "default"
            path = state.output_dir / "images" / folder / f"{stem}.png"
            atomic_write_bytes(path, _strip_png(panels))

    # ------------------------------------------------------------------ epoch end

    def _gather_features(self, trainer: L.Trainer, n: int) -> dict[str, Tensor]:
        """All ranks' per-image set-level features (N × 2 × D sums) on the CPU."""
        state = self._state
        assert state is not None
        if state.indexed:
            return {k: trainer.strategy.reduce(v, reduce_op="sum").cpu()[:-1] for k, v in state.features.items()}
        return {k: torch.cat(v).cpu() for k, v in state.feature_chunks.items() if sum(len(t) for t in v) == n}

    def _gather(self, trainer: L.Trainer) -> tuple[Tensor, Tensor, Tensor, Tensor, list[str]] | None:
        """All ranks' per-image state as (values, counts, tasks, image_sets, set_names) on the CPU."""
        state = self._state
        if state is None:
            return None
        if state.indexed:
            assert state.values is not None and state.counts is not None and state.tasks is not None
            values = trainer.strategy.reduce(state.values, reduce_op="sum")
            counts = trainer.strategy.reduce(state.counts, reduce_op="sum")
            tasks = trainer.strategy.reduce(state.tasks, reduce_op="max")
            values, counts, tasks = values.cpu(), counts.cpu(), tasks.cpu()
            dropped = int(counts[-1].max()) if counts.shape[1] else 0
            if dropped:
                self._warn_once(
                    "dropped",
                    f"RestorationMetrics: {dropped} sample(s) had no valid benchmark/index slot "
                    "(batch['index'] missing or out of range) and were not scored.",
                )
            lengths = torch.tensor(state.lengths, dtype=torch.long)
            image_sets = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
            return values[:-1], counts[:-1], tasks[:-1], image_sets, state.set_names
        if not state.chunks:
            c = len(state.columns)
            empty = torch.zeros(0, c, dtype=torch.float64)
            return empty, empty, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), []
        names: list[str] = []
        for bench, *_ in state.chunks:
            names += bench
        set_names = list(dict.fromkeys(names))
        image_sets = torch.tensor([set_names.index(n) for n in names], dtype=torch.long)
        values = torch.cat([c[2] for c in state.chunks]).cpu()
        counts = torch.cat([c[3] for c in state.chunks]).cpu()
        tasks = (torch.cat([c[1] for c in state.chunks]).cpu() + 1).clamp(min=0)
        return values, counts, tasks, image_sets, set_names

    def _finish(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = self._state
        gathered = self._gather(trainer)
        if state is None or gathered is None:
            return
        values, counts, tasks, image_sets, set_names = gathered
        prefix = STAGES[state.stage]
        set_level = self._set_level_columns(trainer, values, counts, state.columns)
        rows = rows_from_state(
            values, counts, tasks, image_sets, set_names, state.columns, state.task_names, set_level
        )
        if "clip_t" in state.columns and "clip_t" not in self.unavailable and "failed:clip_t" not in self._warned:
            for row in rows:  # CLIP-T where no image of the group had a caption
                if row["clip_t"] is None:
                    row["clip_t"] = NO_CAPTIONS
        scored = counts > 0
        nan_images = int(((values != values) & scored).any(dim=1).sum())
        if nan_images:
            self._warn_once(
                f"nan:{prefix}",
                f"RestorationMetrics: {nan_images} image(s) scored NaN (non-finite predictions?); "
                "their groups' means are NaN.",
            )
        # Values are already summed over ranks; syncing again would be wrong (fallback mode excepted).
        sync = not state.indexed and trainer.world_size > 1
        # Lightning echoes every logged value in its own results table: log the headline numbers only;
        # the per-task breakdown (and the input's scores) live in benchmark.md/.csv.
        keep = [c for c in state.columns if not c.endswith(("_lq", "_ceiling"))]

        def log(name: str, value: float | str | None) -> None:
            if isinstance(value, (int, float)):  # not None nor an "n/a (...)" cell
                pl_module.log(name, float(value), sync_dist=sync, add_dataloader_idx=False)

        overall = overall_means(values, counts, state.columns, set_level)
        for col in keep:
            log(f"{prefix}/{col}", overall[col])
        for row in rows:
            bench_rows = [r for r in rows if r["benchmark"] == row["benchmark"]]
            if (row["task"] == "all" or len(bench_rows) == 1) and len(set_names) > 1:
                for col in keep:
                    log(f"{prefix}/{row['benchmark']}/{col}", row[col])
        if state.stage == "test":
            self.rows = rows
            self._write_test_table(trainer, state, rows, type(pl_module).__name__)
        else:
            self.val_rows = rows
        self._state = None

    def _set_level_columns(
        self, trainer: L.Trainer, values: Tensor, counts: Tensor, columns: list[str]
    ) -> dict[str, Any]:
        """Per set-level metric, the function of a group's image mask that computes it (FID)."""
        features = self._gather_features(trainer, values.shape[0])
        out: dict[str, Any] = {}
        for name, feats in features.items():
            # Each image's features are its sums over the times it was scored (DDP padding) / that count.
            count = counts[:, columns.index(name)].clamp(min=1).to(feats.dtype).view(-1, 1, 1)
            mean = feats / count

            def fid(mask: Tensor, mean: Tensor = mean) -> float | str:
                if int(mask.sum()) < 2:
                    return FID_TOO_FEW
                group = mean[mask]
                return frechet_distance(group[:, 0], group[:, 1])

            out[name] = fid
        return out

    def _write_test_table(
        self, trainer: L.Trainer, state: _EpochState, rows: list[dict[str, Any]], model: str = ""
    ) -> None:
        out_dir = state.output_dir or self._resolve_output_dir(trainer)  # every rank: log_dir broadcasts
        protocols = {n: p for n, p in zip(state.set_names, state.protocols, strict=True)}
        shown = dict.fromkeys(r["benchmark"] for r in rows)
        described = [f"{n}: {protocols.get(n, RGB).describe()}" for n in shown]
        title = "restorezoo benchmark" + (f" ({'; '.join(described)})" if described else "")
        # the papers' numbers beside ours where a paper reports this model on this preset (metrics.papers)
        rows, columns, paper_notes = annotate_rows(rows, state.columns, model, self.paper_method)
        self.rows = rows
        notes = ["Protocol: " + "; ".join(protocol_note(n, protocols.get(n, RGB), state.columns) for n in shown)]
        notes += [f"Paper: {note}" for note in paper_notes]
        unavailable = self.unavailable
        table = to_markdown(rows, columns, unavailable=unavailable, title=title)
        self.table_markdown = table + "\n" + "\n".join(f"{n}  " for n in notes) + "\n"
        if not trainer.is_global_zero:
            return
        print_table(rows, columns, title, unavailable=unavailable)
        for note in notes:
            print(note)
        atomic_write_bytes(out_dir / "benchmark.md", self.table_markdown.encode("utf-8"))
        write_csv(rows, columns, out_dir / "benchmark.csv", unavailable=unavailable)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module)


def _to_device(values: list[int], device: torch.device) -> Tensor:
    """A small index tensor made on the host and copied without waiting for queued device work."""
    return torch.tensor(values, dtype=torch.long).to(device, non_blocking=True)


def _strip_png(panels: Sequence[Tensor], max_height: int = 256, gap: int = 4) -> bytes:
    """PNG bytes of C×H×W images in [0, 1] side by side, each resized to one height ≤ ``max_height``."""
    from PIL import Image

    height = min(max_height, max(int(p.shape[-2]) for p in panels))
    resized = []
    for p in panels:
        x = p.detach().float().cpu().nan_to_num(0.0).clamp(0, 1).unsqueeze(0)
        width = max(1, round(x.shape[-1] * height / x.shape[-2]))
        if x.shape[-2:] != (height, width):
            x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        resized.append(x[0].clamp(0, 1))
    spacer = torch.ones(3, height, gap)
    parts: list[Tensor] = []
    for i, x in enumerate(resized):
        parts += [spacer, x] if i else [x]
    strip = (torch.cat(parts, dim=-1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    buffer = io.BytesIO()
    Image.fromarray(strip.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()
