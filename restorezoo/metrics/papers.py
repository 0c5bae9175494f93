"""The papers' reported numbers, as facts, and how each compares with a ``restorezoo test`` row.

Every value here was read from the paper's table (``/shared/papers``; SPIRE's Table 1 body is missing
from its text, so its numbers come from the facts file ``specs/PAPERS.md``). A row of ``restorezoo
test`` gets the paper's value beside its own when the benchmark preset, the task and the metric match
and the model is the paper's; when restorezoo's protocol cannot reproduce the paper's (another FID
implementation, another test split), the value is shown with the reason and no difference is computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from restorezoo.metrics.protocol import MetricProtocol

__all__ = [
    "MODEL_METHODS",
    "PAPER_RESULTS",
    "PaperResult",
    "annotate_rows",
    "find_result",
    "papers_markdown",
    "protocol_note",
]

ALL = "all"


@dataclass(frozen=True)
class PaperResult:
    """One number of one paper's table.

    Attributes:
        paper, table: where it is printed ("InstructIR", "Tab. 3").
        benchmark: restorezoo's preset it corresponds to, or the paper's own name when none does.
        task: the preset's task; "all" for a whole mixed set.
        metric: restorezoo's column name (psnr, ssim, lpips, fid, clip_i, ..., accuracy).
        value: as printed.
        protocol: how the paper (or its released code) computes it.
        method: the row of the table ("InstructIR-5D", "Ours").
        model: restorezoo's model class that reproduces that method.
        not_comparable: why restorezoo's number cannot be compared with it ("" when it can).
    """

    paper: str
    table: str
    benchmark: str
    task: str
    metric: str
    value: float
    protocol: str
    method: str
    model: str
    not_comparable: str = ""


_AVERAGE = "an average over benchmarks, no single restorezoo row"
_IIR_PROTOCOL = "RGB floats in [0, 1], no crop (released test script); SSIM not specified"
_IIR_RAIN = "Y channel (deraining convention), no crop; SSIM not specified"


def _instructir() -> list[PaperResult]:
    # (table, method, benchmark, task, psnr, ssim, protocol)
    cells = [
        ("Tab. 3", "InstructIR-3D", "sots_outdoor", "haze", 30.22, 0.959, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-3D", "rain100l", "rain", 37.98, 0.978, _IIR_RAIN),
        ("Tab. 3", "InstructIR-3D", "cbsd68_sigma15", "noise", 34.15, 0.933, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-3D", "cbsd68_sigma25", "noise", 31.52, 0.890, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-3D", "cbsd68_sigma50", "noise", 28.30, 0.804, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-5D", "sots_outdoor", "haze", 27.10, 0.956, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-5D", "rain100l", "rain", 36.84, 0.973, _IIR_RAIN),
        ("Tab. 3", "InstructIR-5D", "cbsd68_sigma15", "noise", 34.00, 0.931, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-5D", "cbsd68_sigma25", "noise", 31.40, 0.887, _IIR_PROTOCOL),
        ("Tab. 3", "InstructIR-5D", "cbsd68_sigma50", "noise", 28.15, 0.798, _IIR_PROTOCOL),
        ("Tab. 2", "InstructIR-5D", "gopro", "blur", 29.40, 0.886, _IIR_PROTOCOL),
        ("Tab. 2", "InstructIR-5D", "lol", "lowlight", 23.00, 0.836, _IIR_PROTOCOL),
    ]
    out = []
    for table, method, bench, task, p, s, protocol in cells:
        for metric, value in (("psnr", p), ("ssim", s)):
            out.append(PaperResult("InstructIR", table, bench, task, metric, value, protocol, method, "InstructIR"))
    # Tab. 2's Rain100L, SOTS and BSD68 (σ 25) cells repeat Tab. 3's 5D row; its averages are no preset.
    out += [
        PaperResult("InstructIR", "Tab. 2", "5D average (Rain100L, SOTS, BSD68 σ25, GoPro, LOL)", ALL,
                    metric, value, _IIR_PROTOCOL, "InstructIR-5D", "InstructIR", _AVERAGE)
        for metric, value in (("psnr", 29.55), ("ssim", 0.907))
    ]
    return out


_DACLIP_PROTOCOL = "uint8 RGB, 4-pixel border crop (released test script); FID implementation not stated"
_DACLIP_TEN = "average of DA-CLIP's ten test sets"
_FID_UNKNOWN = "the paper does not say which FID implementation/mode it used"


def _daclip() -> list[PaperResult]:
    out = []
    for method, model, values in (
        ("Ours (IR-SDE + DA-CLIP)", "IRSDE", (27.01, 0.794, 0.127, 34.89)),
        ("NAFNet + DA-CLIP", "NAFNetDACLIP", (27.22, 0.861, 0.145, 47.94)),
    ):
        for metric, value in zip(("psnr", "ssim", "lpips", "fid"), values, strict=True):
            reason = _AVERAGE + ("; " + _FID_UNKNOWN if metric == "fid" else "")
            out.append(PaperResult("DA-CLIP", "Tab. 3", _DACLIP_TEN, ALL, metric, value, _DACLIP_PROTOCOL, method,
                                   model, reason))
    accuracy = {
        "motion_blur": 91.6, "haze": 100.0, "jpeg": 100.0, "lowlight": 100.0, "noise": 100.0, "raindrop": 100.0,
        "rain": 100.0, "shadow": 100.0, "snow": 100.0, "inpainting": 100.0, ALL: 99.2,
    }
    for task, value in accuracy.items():
        out.append(PaperResult("DA-CLIP", "Tab. 4", "DA-CLIP degradation classification (its ten test sets)", task,
                               "accuracy", value, "top-1 over the ten degradation words, prompt 'a [degradation] "
                               "photo', %", "DA-CLIP (Ours)", "DACLIP",
                               "DA-CLIP's own test pairs; restorezoo logs its accuracy as test/deg_acc"))
    return out


def _spire() -> list[PaperResult]:
    # Tab. 1: (method, left half: parameterized degradation, right half: Real-ESRGAN ×4), columns
    # FID, LPIPS, PSNR, SSIM, CLIP-I, CLIP-T. The baselines are restorezoo configs too: controlnet_sr.yaml
    # (ControlNet-SR; "+ CLIP" with semantic_prompt true) and spire_wo_text.yaml ("Ours w/o text").
    metrics = ("fid", "lpips", "psnr", "ssim", "clip_i", "clip_t")
    rows = {
        "Ours (Sem + Res prompts)": ((11.34, 0.219, 23.61, 0.665, 0.943, 0.306), (14.42, 0.262, 23.14, 0.633, 0.935, 0.308)),
        "Ours w/o text": ((12.70, 0.221, 23.84, 0.671, 0.939, 0.299), (16.25, 0.262, 23.15, 0.636, 0.929, 0.300)),
        "ControlNet-SR": ((13.65, 0.222, 23.75, 0.669, 0.938, 0.300), (16.99, 0.269, 22.95, 0.628, 0.924, 0.299)),
        "ControlNet-SR + CLIP": ((13.00, 0.241, 23.18, 0.648, 0.937, 0.307), (15.16, 0.286, 22.45, 0.610, 0.926, 0.308)),
    }
    halves = (("coco_val", "parameterized degradation with its restoration prompt"),
              ("coco_val_realesrgan_x4", "Real-ESRGAN ×4 degradation, 'Remove all degradation'"))
    out = []
    for method, values in rows.items():
        for (bench, what), numbers in zip(halves, values, strict=True):
            protocol = f"MS-COCO val2017, 3000 images, {what}; metric implementations not stated"
            for metric, value in zip(metrics, numbers, strict=True):
                out.append(PaperResult("SPIRE", "Tab. 1", bench, ALL, metric, value, protocol, method, "SPIRE",
                                       _FID_UNKNOWN if metric == "fid" else ""))
    return out


_DR_METRICS = ("fid", "lpips", "dists", "niqe", "musiq", "clipiqa")
_DR_PROTOCOL = "pyiqa (IQA-PyTorch) metrics: FID in pyiqa's default (clean) mode"


def _diffrestorer() -> list[PaperResult]:
    # degradation: (restorezoo preset, task, why it cannot be compared or "", six values of "Ours")
    cells = {
        "Noise (σ 50)": ("cbsd68_sigma50", "noise", "paper: its own DIV2K/Flickr2K-based test set; restorezoo: CBSD68",
                         (35.32, 0.1413, 0.1075, 3.50, 69.53, 0.6540)),
        "Low-light": ("lol", "lowlight", "", (40.23, 0.1105, 0.0873, 4.42, 71.69, 0.3970)),
        "Haze": ("sots_outdoor", "haze", "paper: a RESIDE test split it does not name; restorezoo: SOTS outdoor",
                 (12.13, 0.0670, 0.0625, 3.23, 63.92, 0.4777)),
        "Rain": ("rain1400", "rain", "",
                 (24.45, 0.0840, 0.0683, 3.02, 67.37, 0.6390)),
        "Raindrop": ("raindrop_a", "raindrop", "", (22.50, 0.1282, 0.0936, 3.10, 70.86, 0.5299)),
        "Snow": ("snow100k_l", "snow", "paper: a Snow100K test split it does not name; restorezoo: Snow100K-L",
                 (23.84, 0.0840, 0.0650, 2.93, 69.41, 0.4436)),
        "Blur": ("gopro", "blur", "", (26.05, 0.1896, 0.1074, 3.93, 46.90, 0.2332)),
        "JPEG (q 10)": ("live1_q10", "jpeg", "paper: its own DIV2K/Flickr2K-based test set; restorezoo: LIVE1",
                        (24.55, 0.0840, 0.0923, 3.86, 71.27, 0.6825)),
        "Blur + Noise": ("cbsd68_noise_blur", ALL, "paper: its own mixture test set; restorezoo: CBSD68",
                         (26.59, 0.1438, 0.1240, 4.48, 72.55, 0.5864)),
        "Snow + Noise": ("cbsd68_snow_noise", ALL, "paper: its own mixture test set; restorezoo: CBSD68",
                         (33.41, 0.1435, 0.0949, 2.88, 68.19, 0.4022)),
        "Blur + Noise + Raindrop": ("cbsd68_raindrop_noise_blur", ALL,
                                    "paper: its own mixture test set; restorezoo: CBSD68",
                                    (74.24, 0.2511, 0.1571, 4.07, 61.91, 0.3851)),
        "Blur + Noise + JPEG": ("cbsd68_jpeg_noise_blur", ALL, "paper: its own mixture test set; restorezoo: CBSD68",
                                (52.30, 0.2141, 0.1555, 4.04, 65.00, 0.4847)),
        "Real-world snow (RealSnow)": ("realsnow", "snow", "",
                                       (60.92, 0.1260, 0.1042, 4.11, 54.54, 0.4685)),
    }
    out = []
    for degradation, (bench, task, reason, values) in cells.items():
        for metric, value in zip(_DR_METRICS, values, strict=True):
            out.append(PaperResult("Diff-Restorer", f"Tab. I ({degradation})", bench, task, metric, value,
                                   _DR_PROTOCOL, "Ours", "DiffRestorer", reason))
    # RTTS (real haze, no ground truth): NIQE, MUSIQ, CLIP-IQA only
    for metric, value in (("niqe", 4.27), ("musiq", 59.93), ("clipiqa", 0.4369)):
        out.append(PaperResult("Diff-Restorer", "Tab. I (Real-world haze, RTTS)", "rtts", "haze", metric, value,
                               _DR_PROTOCOL, "Ours", "DiffRestorer", ""))
    return out


PAPER_RESULTS: tuple[PaperResult, ...] = (*_instructir(), *_daclip(), *_spire(), *_diffrestorer())
"""Every reported number restorezoo knows, in paper and table order."""

MODEL_METHODS: dict[str, tuple[str, ...]] = {
    "InstructIR": ("InstructIR-5D", "InstructIR-3D"),
    "IRSDE": ("Ours (IR-SDE + DA-CLIP)",),
    "NAFNetDACLIP": ("NAFNet + DA-CLIP",),
    "DACLIP": ("DA-CLIP (Ours)",),
    "SPIRE": ("Ours (Sem + Res prompts)",),
    "DiffRestorer": ("Ours",),
}
"""Which table rows a restorezoo model is compared with, in order of preference (InstructIR: the 5D model,
the released one's closest, where it is reported, else 3D)."""


def find_result(
    benchmark: str, task: str, metric: str, model: str | None = None, method: str | None = None
) -> PaperResult | None:
    """The paper's value for a (benchmark, task, metric) of ``model`` (its preferred method, or ``method``)."""
    candidates = [r for r in PAPER_RESULTS if r.benchmark == benchmark and r.metric == metric and r.task == task]
    if model is not None:
        candidates = [r for r in candidates if r.model == model]
    methods = (method,) if method else MODEL_METHODS.get(model or "", ())
    for m in methods:
        for r in candidates:
            if r.method == m:
                return r
    return None if methods else (candidates[0] if candidates else None)


def _number(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric in ("psnr", "fid", "musiq", "niqe", "accuracy") else f"{value:.4g}"


def annotate_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], model: str, method: str | None = None
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Add ``paper`` and ``paper_diff`` cells to every row that a paper reports for ``model``.

    Returns the rows, the columns (the two added only when a row matched) and notes naming the table,
    method and protocol of each matched paper row. A benchmark with a single task is matched on that
    task or on "all"; values restorezoo cannot reproduce show their reason instead of a difference.
    """
    out: list[dict[str, Any]] = []
    notes: dict[str, None] = {}
    matched = False
    tasks_of: dict[str, set[str]] = {}
    for row in rows:
        tasks_of.setdefault(str(row["benchmark"]), set()).add(str(row["task"]))
    for row in rows:
        new = dict(row)
        bench, task = str(row["benchmark"]), str(row["task"])
        paper_cells, diff_cells = [], []
        for col in columns:
            if col.endswith(("_lq", "_ceiling")) or col in ("benchmark", "task", "images"):
                continue
            found = find_result(bench, task, col, model, method)
            if found is None and len(tasks_of[bench]) == 1:
                found = find_result(bench, ALL, col, model, method)
            if found is None:
                continue
            label = col.upper().replace("_", "-") if col != "clipiqa" else "CLIP-IQA"
            paper_cells.append(f"{label} {_number(col, found.value)}")
            ours = row.get(col)
            if found.not_comparable:
                diff_cells.append(f"{label} not compared")
            elif isinstance(ours, (int, float)) and math.isfinite(float(ours)):
                diff_cells.append(f"{label} {float(ours) - found.value:+.{2 if col == 'psnr' else 4}f}")
            else:
                diff_cells.append(f"{label} -")
            reason = f" (not compared: {found.not_comparable})" if found.not_comparable else ""
            notes[f"{bench}: {found.paper} {found.table}, {found.method}; {found.protocol}{reason}"] = None
        if paper_cells:
            matched = True
            new["paper"] = ", ".join(paper_cells)
            new["paper_diff"] = ", ".join(diff_cells)
        out.append(new)
    cols = [*columns, "paper", "paper_diff"] if matched else list(columns)
    return out, cols, list(notes)


def protocol_note(name: str, protocol: MetricProtocol, columns: Iterable[str]) -> str:
    """How restorezoo scored one benchmark, in words (printed under the test table)."""
    columns = set(columns)
    rounding = (
        "uint8-rounded (BasicSR calculate_psnr/calculate_ssim)"
        if protocol.quantize
        else "float, no clamp (BasicSR calculate_psnr_pt/calculate_ssim_pt)"
    )
    parts = [
        f"{'Y (MATLAB BT.601)' if protocol.y_channel else 'RGB'}",
        f"crop {protocol.crop_border}",
        rounding,
    ]
    if "ssim" in columns:
        parts.append("SSIM 11×11 Gaussian σ 1.5, valid")
    if "fid" in columns:
        parts.append("FID clean (pyiqa)")
    if columns & {"clip_i", "clip_t"}:
        parts.append("CLIP-I/T open_clip ViT-L-14 openai (QuickGELU)")
    return f"{name}: " + ", ".join(parts)


def papers_markdown(model: str | None = None) -> str:
    """Every reported number (or one model's) as a Markdown table: what ``restorezoo list --papers`` prints."""
    head = "| paper | table | benchmark | task | metric | value | method | protocol | compared |"
    lines = [head, "|---|---|---|---|---|---:|---|---|---|"]
    for r in PAPER_RESULTS:
        if model and r.model != model:
            continue
        compared = "no: " + r.not_comparable if r.not_comparable else "yes"
        cells = [r.paper, r.table, r.benchmark, r.task, r.metric, _number(r.metric, r.value), r.method, r.protocol,
                 compared]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
