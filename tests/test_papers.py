"""The papers' reported numbers: every fact is in its paper's text, matches its preset, and lands beside ours."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from restorezoo.data.presets import PRESETS
from restorezoo.metrics.learned import KNOWN_LEARNED
from restorezoo.metrics.papers import (
    PAPER_RESULTS,
    annotate_rows,
    find_result,
    papers_markdown,
    protocol_note,
)
from restorezoo.metrics.protocol import MetricProtocol
from restorezoo.metrics.tables import column_label, to_markdown

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPER_FILES = {
    "InstructIR": "papers/003_instructir.txt",
    "DA-CLIP": "papers/002_daclip_irsde.txt",
    "Diff-Restorer": "papers/001_diffrestorer.txt",
    "SPIRE": "papers/000_spire.txt",  # Table 1's rows (both halves, every method)
}


def test_every_fact_names_a_known_metric_and_a_preset_or_why_not() -> None:
    known = {"psnr", "ssim", "accuracy", *KNOWN_LEARNED}
    for r in PAPER_RESULTS:
        assert r.metric in known, r
        assert r.benchmark in PRESETS or r.not_comparable, r
        if r.benchmark in PRESETS and r.task != "all":
            assert PRESETS[r.benchmark].task == r.task, r


@pytest.mark.skipif(not (SHARED / "papers").is_dir(), reason="the papers are not beside the checkout")
def test_every_value_is_printed_in_its_paper() -> None:
    texts = {paper: (SHARED / path).read_text(encoding="utf-8") for paper, path in PAPER_FILES.items()}
    for r in PAPER_RESULTS:
        decimals = {"ssim": 3, "lpips": 4, "dists": 4, "clipiqa": 4, "clip_i": 3, "clip_t": 3}.get(r.metric, 2)
        if r.paper in ("DA-CLIP", "SPIRE") and r.metric in ("lpips",):
            decimals = 3
        if r.metric == "accuracy" or r.paper == "Diff-Restorer" and r.metric in ("musiq", "niqe", "fid"):
            decimals = 2 if r.metric != "accuracy" else 1
        printed = f"{r.value:.{decimals}f}"
        variants = {printed, printed.rstrip("0").rstrip(".")}
        assert any(re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", texts[r.paper]) for v in variants), r


def test_pinned_facts() -> None:
    assert find_result("cbsd68_sigma25", "noise", "psnr", "InstructIR").value == 31.40  # 5D row of Tab. 3
    assert find_result("cbsd68_sigma25", "noise", "psnr", "InstructIR", "InstructIR-3D").value == 31.52
    assert find_result("coco_val", "all", "clip_i", "SPIRE").value == 0.943
    assert find_result("coco_val_realesrgan_x4", "all", "fid", "SPIRE").value == 14.42  # Tab. 1 right half
    assert find_result("coco_val", "all", "psnr", "SPIRE", "ControlNet-SR").value == 23.75
    assert find_result("coco_val_realesrgan_x4", "all", "clip_t", "SPIRE", "Ours w/o text").value == 0.300
    assert find_result("lol", "lowlight", "fid", "DiffRestorer").value == 40.23
    assert find_result("gopro", "blur", "psnr", "IRSDE") is None  # DA-CLIP reports averages only


def test_a_matching_row_gets_the_paper_and_the_difference() -> None:
    rows = [
        {"benchmark": "cbsd68_sigma25", "task": "noise", "images": 68, "psnr": 31.00, "ssim": 0.8800, "psnr_lq": 20.2},
        {"benchmark": "sample", "task": "noise", "images": 3, "psnr": 24.0, "ssim": 0.5, "psnr_lq": 16.0},
    ]
    out, columns, notes = annotate_rows(rows, ["psnr", "ssim", "psnr_lq"], "InstructIR")
    assert columns[-2:] == ["paper", "paper_diff"]
    assert out[0]["paper"] == "PSNR 31.40, SSIM 0.887"
    assert out[0]["paper_diff"] == "PSNR -0.40, SSIM -0.0070"
    assert "paper" not in out[1]
    assert notes == ["cbsd68_sigma25: InstructIR Tab. 3, InstructIR-5D; RGB floats in [0, 1], no crop (released "
                     "test script); SSIM not specified"]
    table = to_markdown(out, columns)
    assert "| paper | Δ vs paper |" in table and column_label("paper_diff") == "Δ vs paper"
    same, unchanged, none = annotate_rows(rows[1:], ["psnr", "ssim"], "InstructIR")
    assert unchanged == ["psnr", "ssim"] and not none


def test_a_value_restorezoo_cannot_reproduce_is_marked_not_compared() -> None:
    rows = [{"benchmark": "coco_val", "task": "all", "images": 3000, "psnr": 23.0, "fid": 12.0}]
    out, _, notes = annotate_rows(rows, ["psnr", "fid"], "SPIRE")
    assert out[0]["paper"] == "PSNR 23.61, FID 11.34"
    assert out[0]["paper_diff"] == "PSNR -0.61, FID not compared"
    assert any("not compared: the paper does not say which FID" in n for n in notes)


def test_protocol_note_names_colour_crop_rounding_ssim_and_fid() -> None:
    note = protocol_note("rain100l", MetricProtocol(y_channel=True, crop_border=0, quantize=True), ["psnr", "ssim", "fid"])
    assert note == ("rain100l: Y (MATLAB BT.601), crop 0, uint8-rounded (BasicSR calculate_psnr/calculate_ssim), "
                    "SSIM 11×11 Gaussian σ 1.5, valid, FID clean (pyiqa)")


def test_list_papers_prints_every_fact() -> None:
    text = papers_markdown()
    assert text.count("\n") == len(PAPER_RESULTS) + 2
    assert "| SPIRE | Tab. 1 | coco_val | all | clip_t | 0.306 |" in text


def test_the_test_table_puts_the_paper_beside_a_matching_preset_and_names_the_protocols(tmp_path) -> None:
    from restorezoo.data.presets import INSTRUCTIR_RGB
    from restorezoo.metrics.callback import RestorationMetrics
    from tests.test_metrics import Blend, TwoBenchmarks, make_set, trainer

    class InstructIR(Blend):  # the table looks the paper rows up by the model's class name
        pass

    dm = TwoBenchmarks()
    dm.sets = {"cbsd68_sigma25": make_set("cbsd68_sigma25", [0, 0, 0], 1), "alpha": make_set("alpha", [1, 1], 2)}
    dm.protocols = {"cbsd68_sigma25": INSTRUCTIR_RGB, "alpha": MetricProtocol()}
    cb = RestorationMetrics(save_images=0, output_dir=str(tmp_path))
    trainer(tmp_path, cb).test(InstructIR(), datamodule=dm, verbose=False)
    by_bench = {r["benchmark"]: r for r in cb.rows}
    ours = by_bench["cbsd68_sigma25"]["psnr"]
    assert by_bench["cbsd68_sigma25"]["paper"] == "PSNR 31.40, SSIM 0.887"
    assert by_bench["cbsd68_sigma25"]["paper_diff"].startswith(f"PSNR {ours - 31.40:+.2f}, SSIM ")
    assert "paper" not in by_bench["alpha"]
    md = (tmp_path / "benchmark.md").read_text()
    assert "| paper | Δ vs paper |" in md
    assert "Protocol: cbsd68_sigma25: RGB, crop 0, float, no clamp (BasicSR calculate_psnr_pt/calculate_ssim_pt)" in md
    assert "Paper: cbsd68_sigma25: InstructIR Tab. 3, InstructIR-5D" in md
    assert "paper_diff" in (tmp_path / "benchmark.csv").read_text().splitlines()[0]
