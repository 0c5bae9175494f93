"""Benchmark tables: per-image metric state to grouped rows, and rows to Markdown, CSV and the console.

Rows are plain dicts (``{"benchmark", "task", "images", <metric>: float | None, ...}``) so they are
easy to test, to dump as JSON and to compare between runs. The aggregation is a pure function of
the per-image sums and counts, which is what makes the DDP result equal the single-device one.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from restorezoo.files import atomic_write_text

__all__ = [
    "KEY_COLUMNS",
    "NA_WEIGHTS",
    "column_label",
    "format_value",
    "overall_means",
    "print_table",
    "rows_from_state",
    "task_label",
    "to_markdown",
    "write_csv",
    "write_markdown",
]

KEY_COLUMNS = ("benchmark", "task", "images")
"""Columns every row carries and every table starts with."""

NA_WEIGHTS = "n/a (weights unavailable)"
"""Cell text of a learned metric whose weights (or pyiqa itself) could not be had."""

ALL_TASKS = "all"
UNKNOWN_TASK = "unknown"


# --------------------------------------------------------------------------- aggregation


def task_label(task_plus_one: int, task_names: Sequence[str]) -> str:
    """Name of a stored task id (task index + 1, so that 0 means unknown)."""
    if task_plus_one <= 0:
        return UNKNOWN_TASK
    if task_plus_one - 1 < len(task_names):
        return str(task_names[task_plus_one - 1])
    return f"task{task_plus_one - 1}"


def _per_image(values: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    values = values.detach().to("cpu", torch.float64)
    counts = counts.detach().to("cpu", torch.float64)
    if counts.ndim == 1:
        counts = counts.unsqueeze(1).expand_as(values)
    present = counts > 0
    # A sample DistributedSampler padded in is scored twice: dividing by its count undoes that.
    means = torch.where(present, values / counts.clamp(min=1), torch.full_like(values, math.nan))
    return means, present


SetLevel = Mapping[str, Callable[[Tensor], Any]]
"""Set-level metrics (FID): column -> function of a group's N-long image mask giving its value or cell text."""


def _group_means(
    means: Tensor, present: Tensor, mask: Tensor, columns: Sequence[str], set_level: SetLevel | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for j, col in enumerate(columns):
        sel = mask & present[:, j]
        if set_level and col in set_level:
            out[col] = set_level[col](sel) if bool(sel.any()) else None
        else:
            out[col] = float(means[sel, j].mean()) if bool(sel.any()) else None
    return out


def rows_from_state(
    values: Tensor,
    counts: Tensor,
    tasks: Tensor,
    image_sets: Tensor,
    set_names: Sequence[str],
    columns: Sequence[str],
    task_names: Sequence[str] = (),
    set_level: SetLevel | None = None,
) -> list[dict[str, Any]]:
    """Group per-image metric sums into one row per (benchmark, task), plus a benchmark's "all" row.

    Args:
        values: N×C sums of each metric over every time an image was scored (all ranks added up).
        counts: N×C (or N) number of times each metric of each image was scored; 0 = never seen.
        tasks: N task ids stored as task index + 1 (0 = unknown).
        image_sets: N benchmark positions into ``set_names``; images outside it are ignored.
        set_names: benchmark names, in table order.
        columns: the C metric names.
        task_names: the datamodule's task vocabulary, to name task ids.
        set_level: metrics computed over a whole group (FID) instead of averaged over its images.

    A group's value is the mean over its images of each image's mean score, so an image scored on
    two ranks counts once. The "all" row (only when a benchmark has more than one task) averages over
    all of the benchmark's images, not over task means. Metrics no image had are ``None``.
    """
    means, present = _per_image(values, counts)
    seen = present.any(dim=1)
    tasks = tasks.detach().to("cpu", torch.long).reshape(-1)
    image_sets = image_sets.detach().to("cpu", torch.long).reshape(-1)
    if not (means.shape[0] == tasks.shape[0] == image_sets.shape[0]):
        raise ValueError(
            f"state sizes differ: values {means.shape[0]}, tasks {tasks.shape[0]}, sets {image_sets.shape[0]}"
        )
    rows: list[dict[str, Any]] = []
    for s, name in enumerate(set_names):
        in_set = seen & (image_sets == s)
        if not bool(in_set.any()):
            continue
        ids = sorted({int(t) for t in tasks[in_set].tolist()}, key=lambda t: (t <= 0, t))
        for t in ids:
            mask = in_set & (tasks == t)
            row = {"benchmark": name, "task": task_label(t, task_names), "images": int(mask.sum())}
            row.update(_group_means(means, present, mask, columns, set_level))
            rows.append(row)
        if len(ids) > 1:
            row = {"benchmark": name, "task": ALL_TASKS, "images": int(in_set.sum())}
            row.update(_group_means(means, present, in_set, columns, set_level))
            rows.append(row)
    return rows


def overall_means(
    values: Tensor, counts: Tensor, columns: Sequence[str], set_level: SetLevel | None = None
) -> dict[str, Any]:
    """Mean over every scored image of each metric (what ``val/psnr`` reports); set-level ones over all images."""
    means, present = _per_image(values, counts)
    return _group_means(means, present, present.any(dim=1), columns, set_level)


# --------------------------------------------------------------------------- formatting


def column_label(column: str) -> str:
    """Header text: ``psnr`` → ``PSNR``, ``ssim_lq`` → ``SSIM (input)``, ``psnr_ceiling`` → ``PSNR (ceiling)``."""
    if column in KEY_COLUMNS:
        return column
    if column in ("paper", "paper_diff"):  # the papers' values beside ours (metrics.papers)
        return "paper" if column == "paper" else "Δ vs paper"
    base, _, suffix = column.partition("_")
    label = {"clipiqa": "CLIP-IQA"}.get(base, base.upper())
    if column in ("clip_i", "clip_t"):
        return column.upper().replace("_", "-")
    if suffix in ("lq", "ceiling"):
        return f"{label} ({'input' if suffix == 'lq' else suffix})"
    return column.upper() if suffix else label


def format_value(column: str, value: Any, unavailable: Collection[str] = ()) -> str:
    """Cell text: PSNR with 2 decimals, other scores with 4, counts as integers."""
    if value is None:
        return NA_WEIGHTS if column in unavailable else "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int)):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.2f}" if column.startswith("psnr") else f"{v:.4f}"


def _cells(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], unavailable: Collection[str]
) -> tuple[list[str], list[list[str]]]:
    cols = [*KEY_COLUMNS, *(c for c in columns if c not in KEY_COLUMNS)]
    body = [[format_value(c, row.get(c), unavailable) for c in cols] for row in rows]
    return cols, body


def to_markdown(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    unavailable: Collection[str] = (),
    title: str | None = None,
) -> str:
    """A GitHub Markdown table; ``columns`` are the metric columns (benchmark, task, images lead)."""
    cols, body = _cells(rows, columns, unavailable)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    aligns = ["---" if c in ("benchmark", "task") else "---:" for c in cols]
    lines = [line([column_label(c) for c in cols]), "| " + " | ".join(aligns) + " |"]
    lines += [line(r) for r in body]
    text = "\n".join(lines) + "\n"
    return f"## {title}\n\n{text}" if title else text


def write_markdown(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    path: str | os.PathLike[str],
    *,
    unavailable: Collection[str] = (),
    title: str | None = None,
) -> Path:
    """Write :func:`to_markdown` atomically to ``path``."""
    return atomic_write_text(path, to_markdown(rows, columns, unavailable=unavailable, title=title))


def write_csv(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    path: str | os.PathLike[str],
    *,
    unavailable: Collection[str] = (),
) -> Path:
    """Write the table as CSV (raw column keys as header, same number formatting) atomically."""
    cols, body = _cells(rows, columns, unavailable)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows(body)
    return atomic_write_text(path, buffer.getvalue())


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    title: str = "",
    *,
    unavailable: Collection[str] = (),
    console: Any = None,
) -> None:
    """Print the table with rich (a plain Markdown table if rich is missing)."""
    rows = list(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a dependency, but a table must never be what breaks a run
        print(to_markdown(rows, columns, unavailable=unavailable, title=title or None))
        return
    cols, body = _cells(rows, columns, unavailable)
    table = Table(title=title or None, show_lines=False)
    for c in cols:
        table.add_column(column_label(c), justify="left" if c in ("benchmark", "task") else "right")
    for r in body:
        table.add_row(*r)
    (console or Console()).print(table)
