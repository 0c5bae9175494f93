"""The issue-7 benchmark scripts run end to end on tiny models and say what they measured and what they did not."""

from __future__ import annotations

import pytest
import torch

from benchmarks import harness, sampler_steps, scaling, speed


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rows(text: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith(f"| {first_cell}")]


def test_speed_smoke_writes_eager_and_fast_rows_the_machine_and_cuda_only_targets(tmp_path):
    out = tmp_path / "speed.md"
    text = speed.main(["--smoke", "--models", "instructir", "spire", "--sizes", "32", "--steps", "2",
                       "--repeats", "1", "--no-train", "--out", str(out)])
    assert out.read_text() == text
    assert "Machine: " in text and "torch " + torch.__version__ in text and "load average" in text
    for name in ("InstructIR 7D", "SPIRE"):
        rows = _rows(text, name)
        paths = [row[2] for row in rows if len(row) == 9]
        assert paths == ["eager fp32", "fast"], rows
        for row in rows:
            if len(row) == 9:
                assert float(row[4]) > 0 and row[5].startswith("measured"), row  # a latency in ms, measured
    assert text.count("needs CUDA") >= 5, "no target can be judged on a CPU"


def test_rows_over_budget_are_printed_as_skipped_not_dropped(tmp_path):
    text = speed.main(["--smoke", "--models", "instructir", "--sizes", "32", "48", "--budget-s", "1e-9",
                       "--no-train", "--out", str(tmp_path / "s.md")])
    rows = [row for row in _rows(text, "InstructIR 7D") if len(row) == 9]
    assert len(rows) == 4 and all(row[4] == "–" and row[5].startswith("skipped (budget") for row in rows)


def test_a_diffusion_latency_too_long_to_run_whole_is_derived_from_measured_parts_and_labelled():
    zoo = harness.ZOO["spire"]
    model = zoo.build(True).eval()
    lq = torch.rand(1, 3, 32, 32)
    gmacs = zoo.gmacs(model, 32, 32)
    budget = harness.Budget(per_row_s=5.0, total_s=120.0, repeats=1)
    budget.rates[f"{zoo.name}/fast"] = gmacs["total"] / 10.0  # the whole 20-step run "takes" 10 s > 5 s
    row = speed.latency(zoo, model, lq, gmacs, True, budget)
    assert row.how.startswith("**derived**") and "19 × one denoiser call" in row.how and row.seconds > 0


def test_scaling_smoke_times_whole_and_tiled_and_draws_both_panels(tmp_path):
    out, plot = tmp_path / "scaling.md", tmp_path / "scaling.png"
    text = scaling.main(["--smoke", "--sizes", "32", "64", "--vae-sizes", "32", "--repeats", "1",
                         "--out", str(out), "--plot", str(plot)])
    modes = [row[3].split(" (")[0] for row in _rows(text, "InstructIR") + _rows(text, "SD 1.5 VAE")]
    assert modes == ["whole", "whole", "tiled", "whole", "tiled"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "needs CUDA" in text


def test_sampler_steps_smoke_compares_with_the_reference_and_says_it_is_not_restoration_psnr(tmp_path):
    text = sampler_steps.main(["--smoke", "--models", "spire", "--schedulers", "ddim", "unipc",
                               "--out", str(tmp_path / "steps.md")])
    assert "NOT restoration PSNR" in text
    rows = {(row[1], row[2]): row for row in _rows(text, "SPIRE")}
    assert rows[("ddim", "20 (reference)")][4] == "–"
    psnr = {steps: float(rows[("ddim", steps)][4]) for steps in ("8 (own reference)", "4", "2")}
    assert psnr["8 (own reference)"] > psnr["4"] > psnr["2"], "DDIM converges to its 20-step run"
    assert all(0 <= float(rows[("unipc", steps)][5]) <= 1 for steps in ("4", "2"))
