"""The README's quickstart, end to end through the CLI: fit once per session, then test/predict/restore.

These are the issue's acceptance claims: the checkpoint written by ``fit`` loads everywhere, every
task beats its degraded input, held-out instructions are understood, the text changes the output,
and a 2-process CPU DDP test gives the same table as one process.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from restorezoo import load_model, restore
from restorezoo.cli import main
from restorezoo.data import Sample, load_image
from restorezoo.data.prompts import instructions
from restorezoo.metrics import psnr
from tests.conftest import QUICKSTART, working_directory

CKPT = Path("runs/instructir-quickstart/checkpoints/last.ckpt")


def _run_in(workdir: Path, args: list[str]) -> None:
    with working_directory(workdir):
        main(args)


def _read_table(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as handle:
        return {(row["benchmark"], row["task"]): row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def test_table(quickstart: Path) -> dict[tuple[str, str], dict[str, str]]:
    out = quickstart / "table_1dev"
    _run_in(quickstart, ["test", "--config", str(QUICKSTART), "--ckpt_path", str(CKPT), "--metrics.output_dir", str(out)])
    assert (out / "benchmark.md").is_file()
    return _read_table(out / "benchmark.csv")


@pytest.fixture(scope="module")
def model(quickstart: Path):
    return load_model(ckpt=quickstart / CKPT)


def test_every_quickstart_task_beats_its_degraded_input(test_table):
    for task in ("noise", "blur", "lowlight"):
        row = test_table["sample", task]
        assert int(row["images"]) == 3
        assert float(row["psnr"]) > float(row["psnr_lq"]), f"{task}: {row}"


def test_held_out_instructions_are_classified_above_90_percent(model):
    prompts, truth = [], []
    for task in ("noise", "blur", "lowlight"):
        held_out = instructions(task, "test")
        prompts += held_out
        truth += [task] * len(held_out)
    predicted = model.predict_intent(prompts)
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    assert accuracy > 0.9, list(zip(prompts, predicted))


def test_the_instruction_changes_the_restoration_towards_its_own_task(model):
    data = Sample("test", tasks=["noise", "lowlight"]).configure(training=False)
    noise_prompt, light_prompt = instructions("noise", "test")[0], instructions("lowlight", "test")[0]
    for index in range(0, len(data), 2):
        noisy, dark = data[index], data[index + 1]
        for sample, own, other in ((noisy, noise_prompt, light_prompt), (dark, light_prompt, noise_prompt)):
            with_own = restore(sample["lq"], own, model)
            with_other = restore(sample["lq"], other, model)
            assert (with_own - with_other).abs().mean() > 0.01, "the text must matter"
            hq = sample["hq"][None]
            assert psnr(with_own[None], hq) > psnr(with_other[None], hq), sample["name"]


def test_predict_writes_one_image_per_test_sample_and_never_over_an_earlier_run(quickstart: Path, capsys):
    out = quickstart / "predictions"
    args = ["predict", "--config", str(QUICKSTART), "--ckpt_path", str(CKPT), "--writer.output_dir", str(out)]
    _run_in(quickstart, args)
    written = sorted(p.name for p in (out / "sample").glob("*.png"))
    assert len(written) == 9 and "chelsea_noise.png" in written
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    with pytest.raises(SystemExit):
        _run_in(quickstart, args)
    assert "already holds predictions" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    _run_in(quickstart, [*args, "--writer.overwrite", "true"])


def test_restore_command_writes_outputs_and_never_overwrites_inputs(quickstart: Path, capsys):
    photo = quickstart / "photo.png"
    from restorezoo.data import save_image

    sample = Sample("test", tasks=["lowlight"]).configure(training=False)[0]
    save_image(sample["lq"][:, :37, :53], photo)  # an odd size: padded and cropped back
    before = photo.read_bytes()
    _run_in(quickstart, ["restore", str(photo), "--ckpt", str(CKPT), "--prompt", "brighten it", "-o", "out"])
    restored = load_image(quickstart / "out" / "photo_restored.png")
    assert restored.shape == (3, 37, 53)
    assert restored.mean() > load_image(photo).mean() + 0.05, "a brightening instruction brightens"
    with pytest.raises(SystemExit):
        _run_in(quickstart, ["restore", str(photo), "--ckpt", str(CKPT), "-o", str(photo)])
    assert "refusing to overwrite" in capsys.readouterr().err
    assert photo.read_bytes() == before


def test_missing_checkpoint_is_one_clear_line(quickstart: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run_in(quickstart, ["restore", str(quickstart / "photo.png"), "--ckpt", "nope.ckpt"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and err.count("\n") == 0 and "nope.ckpt" in err


def test_list_names_models_and_benchmarks(capsys):
    main(["list"])
    out = capsys.readouterr().out
    assert "instructir" in out and "rain100l" in out


def test_cpu_ddp_test_gives_the_same_table_as_one_device(quickstart: Path, test_table):
    out = quickstart / "table_ddp"
    command = [
        sys.executable, "-m", "restorezoo.cli", "test", "--config", str(QUICKSTART), "--ckpt_path", str(CKPT),
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--metrics.output_dir", str(out), "--metrics.save_images", "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=quickstart, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = _read_table(out / "benchmark.csv")
    assert ddp.keys() == test_table.keys()
    for key, row in test_table.items():
        for column in ("images", "psnr", "ssim", "psnr_lq"):
            assert ddp[key][column] == row[column], (key, column)
