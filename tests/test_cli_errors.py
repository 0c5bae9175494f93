"""Issue 20: every mistake a user can make through the command line is one line on stderr, a non-zero exit
code, and no file written or overwritten. Fast subcommands answer without importing the model stack.

Each case runs ``restorezoo ARGS`` in-process (``run_cli``) in an empty working directory holding only the
case's inputs, then checks: exactly one ``restorezoo: error: ...`` line (warnings aside), the exit code
(2: a command line that does not parse, 1: anything else), the words that say what and where, and that
the folder's files are byte-for-byte what they were (nothing created, nothing overwritten).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_INSTRUCTIR, run_cli, write_tiny_checkpoint

CONFIGS = REPO / "configs"
QUICK = str(CONFIGS / "instructir/quickstart.yaml")
TINY_ARGS = [
    f"--model.init_args.{key}={list(value) if isinstance(value, tuple) else value}"
    for key, value in TINY_INSTRUCTIR.items()
]
SAMPLE_DATA = """class_path: RestorationDataModule
init_args:
  train: [{class_path: Sample, init_args: {split: train, tasks: [noise]}}]
  val: [{class_path: Sample, init_args: {split: val, tasks: [noise]}}]
  test: [{class_path: Sample, init_args: {split: test, tasks: [noise]}}]
  batch_size: 2
  patch_size: 32
  num_workers: 0
"""
NOISE = ("Seed set to", "GPU available", "TPU available", "HPU available", "💡", "Using bfloat16")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(err: str) -> list[str]:
    """The stderr lines that are neither warnings nor Lightning's banner lines."""
    lines = [line for line in err.splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("restorezoo: warning:") and not line.startswith(NOISE)]


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    import logging

    # Lightning's log handlers keep the stderr of the test that first imported it (closed by now)
    for name in list(logging.root.manager.loggerDict):
        for handler in getattr(logging.getLogger(name), "handlers", []):
            if type(handler) is logging.StreamHandler:
                monkeypatch.setattr(handler, "stream", sys.stderr)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESTOREZOO_WEIGHTS", raising=False)
    monkeypatch.delenv("RESTOREZOO_DEBUG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "sample_data.yaml").write_text(SAMPLE_DATA)
    return tmp_path


def expect_one_line(args: list[str], capsys, folder: Path, code: int, *words: str) -> str:
    """Run ``args``; assert one error line holding ``words``, exit ``code``, and ``folder`` untouched."""
    before = _snapshot(folder)
    capsys.readouterr()  # what the case's own setup printed
    got, _, err = run_cli(args, capsys)
    lines = _error_line(err)
    assert len(lines) == 1, f"{args}: expected one line, got {len(lines)}:\n{err[-3000:]}"
    line = lines[0]
    assert line.startswith("restorezoo: error: "), line
    assert "Traceback" not in err, err[-3000:]
    assert got == code, f"{args}: exit {got}, wanted {code}: {line}"
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert _snapshot(folder) == before, f"{args} wrote or changed files"
    return line


# ------------------------------------------------------------------ paper configs without data or weights

PAPER_DATA = [
    ("instructir/3d.yaml", "folder not found"),
    ("instructir/5d.yaml", "folder not found"),
    ("instructir/7d.yaml", "folder not found"),
    ("daclip/daclip.yaml", "data/universal"),
    ("daclip/irsde_universal.yaml", "data/universal"),
    ("daclip/nafnet_daclip.yaml", "data/universal"),
    ("spire/spire.yaml", "COCO"),
    ("spire/controlnet_sr.yaml", "not found"),
    ("diffrestorer/stage1.yaml", "data/universal"),
    ("diffrestorer/decoder.yaml", "data/universal"),
]


@pytest.mark.parametrize(("config", "word"), PAPER_DATA, ids=[c for c, _ in PAPER_DATA])
def test_paper_config_without_its_data(config: str, word: str, workdir: Path, capsys):
    expect_one_line(["fit", "--config", str(CONFIGS / config)], capsys, workdir, 1, word)


PAPER_WEIGHTS = [
    ("instructir/5d.yaml", "TaylorAI/bge-micro-v2"),
    ("daclip/daclip.yaml", "laion2b_s34b_b79k"),
    ("daclip/irsde_universal.yaml", "daclip_ViT-B-32.pt"),
    ("daclip/nafnet_daclip.yaml", "daclip_ViT-B-32.pt"),
    ("spire/spire.yaml", "stable-diffusion-v1-5"),
    ("diffrestorer/stage1.yaml", "stable-diffusion-v1-5"),
    ("diffrestorer/decoder.yaml", "runs/diffrestorer/checkpoints/last.ckpt"),
]


@pytest.mark.parametrize(("config", "word"), PAPER_WEIGHTS, ids=[c for c, _ in PAPER_WEIGHTS])
def test_paper_config_without_its_weights(config: str, word: str, workdir: Path, capsys):
    """The paper's model on the embedded sample: the missing weights are named, with where to put them."""
    args = ["fit", "--config", str(CONFIGS / config), "--data", "sample_data.yaml", "--trainer.precision", "32-true"]
    line = expect_one_line(args, capsys, workdir, 1, word)
    assert "RESTOREZOO_WEIGHTS" in line or "pass its path" in line or "check the path" in line, line


# ------------------------------------------------------------------ the command line itself

USAGE = [
    (["fit", "--config", QUICK, "--trainer.max_epochs", "banana"], "--trainer.max_epochs expects int"),
    (["fit", "--config", QUICK, "--data.init_args.batch_size", "two"], "--data.init_args.batch_size"),
    (["fit", "--config", QUICK, "--trainer.max_epochz", "3"], "--trainer.max_epochz"),
    (["fit", "--config", QUICK, "--model.class_path", "InstructIRR"], "InstructIRR"),
    (["fit", "--config", "nope.yaml"], "nope.yaml"),
    (["fitt", "--config", QUICK], "unknown subcommand 'fitt'"),
    (["fit"], "--data and --model are required"),
    (["sample", "--tasks"], "--tasks"),
    (["list", "--bogus"], "--bogus"),
    (["restore", "x.png", "--tile", "abc"], "--tile"),
    (["restore"], "restorezoo restore"),
    (["demo", "--port", "http"], "--port"),
    (["data", "verify"], "restorezoo data"),
    (["export"], "restorezoo export"),
]


@pytest.mark.parametrize(("args", "word"), USAGE, ids=[" ".join(a[:1] + a[-2:])[:40] for a, _ in USAGE])
def test_a_command_line_that_does_not_parse(args: list[str], word: str, workdir: Path, capsys):
    expect_one_line(args, capsys, workdir, 2, word)


def test_an_unknown_class_in_a_config(workdir: Path, capsys):
    text = Path(QUICK).read_text().replace("class_path: lightning.pytorch.callbacks.ModelCheckpoint", "class_path: ModelCheckpointt")
    (workdir / "bad.yaml").write_text(text)
    expect_one_line(["fit", "--config", "bad.yaml"], capsys, workdir, 2, "ModelCheckpointt")


def test_a_config_that_is_not_yaml(workdir: Path, capsys):
    (workdir / "bad.yaml").write_text("trainer:\n  max_epochs: [1, 2\n model: {\n")
    expect_one_line(["fit", "--config", "bad.yaml"], capsys, workdir, 2, "bad.yaml")


# ------------------------------------------------------------------ checkpoints

def _ckpt_case(workdir: Path, kind: str) -> Path:
    path = workdir / "run.ckpt"
    if kind == "truncated":
        data = write_tiny_checkpoint(workdir / "full.ckpt").read_bytes()
        (workdir / "full.ckpt").unlink()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("<html>not a checkpoint</html>\n")
    elif kind == "folder":
        path.mkdir()
        (path / "keep").write_text("x")
    return path


@pytest.mark.parametrize(
    ("kind", "word"),
    [("missing", "checkpoint file not found"), ("truncated", "truncated"), ("empty", "empty"),
     ("text", "run.ckpt"), ("folder", "is a folder")],
)  # fmt: skip
def test_a_bad_ckpt_path(kind: str, word: str, workdir: Path, capsys):
    path = _ckpt_case(workdir, kind)
    expect_one_line(["test", "--config", QUICK, "--ckpt_path", str(path)], capsys, workdir, 1, word)


def test_a_checkpoint_of_another_model(workdir: Path, capsys):
    ckpt = write_tiny_checkpoint(workdir / "instructir.ckpt")
    config = str(CONFIGS / "daclip/irsde_quickstart.yaml")
    expect_one_line(["test", "--config", config, "--ckpt_path", str(ckpt)], capsys, workdir, 1, "InstructIR", "IRSDE")


def test_restore_with_a_missing_checkpoint_and_export_of_a_truncated_one(workdir: Path, capsys):
    (workdir / "in.png").write_bytes(b"")
    expect_one_line(["restore", "in.png", "--ckpt", "nope.ckpt"], capsys, workdir, 1, "nope.ckpt")
    path = _ckpt_case(workdir, "truncated")
    expect_one_line(["export", str(path), "--to", "out.safetensors"], capsys, workdir, 1, "run.ckpt")


def test_restore_an_unknown_model(workdir: Path, capsys):
    expect_one_line(["restore", "x.png", "--model", "instructor", "--weights", "w.pt"], capsys, workdir, 1, "instructor")


# ------------------------------------------------------------------ machine, outputs, data, model options

def test_gpu_asked_for_on_a_cpu_machine(workdir: Path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    expect_one_line(["fit", "--config", QUICK, "--trainer.accelerator", "gpu"], capsys, workdir, 1, "accelerator gpu", "cpu")


def test_an_output_folder_that_cannot_be_written(workdir: Path, capsys):
    (workdir / "a_file").write_text("x")
    args = ["fit", "--config", QUICK, "--trainer.default_root_dir", "a_file/run"]
    expect_one_line(args, capsys, workdir, 1, "a_file", "--trainer.default_root_dir")


def test_an_empty_test_set(workdir: Path, capsys):
    (workdir / "lq").mkdir()
    (workdir / "hq").mkdir()
    data = ("class_path: RestorationDataModule\ninit_args:\n  test: [{class_path: PairedFolder, "
            "init_args: {lq_dir: lq, hq_dir: hq}}]\n  num_workers: 0\n")  # fmt: skip
    (workdir / "empty.yaml").write_text(data)
    ckpt = write_tiny_checkpoint(workdir / "tiny.ckpt")
    args = ["test", "--config", QUICK, "--data", "empty.yaml", "--ckpt_path", str(ckpt)]
    expect_one_line(args, capsys, workdir, 1, "holds no images")


def test_a_missing_decoder_ckpt(workdir: Path, capsys):
    args = ["fit", "--config", str(CONFIGS / "diffrestorer/quickstart.yaml"), "--model.init_args.decoder_ckpt", "dec.ckpt"]
    expect_one_line(args, capsys, workdir, 1, "dec.ckpt")


def test_sampler_steps_beyond_the_schedule(workdir: Path, capsys):
    args = ["test", "--config", str(CONFIGS / "daclip/irsde_quickstart.yaml"), "--model.init_args.steps", "50"]
    expect_one_line(args, capsys, workdir, 1, "steps", "50", "20")


@pytest.mark.parametrize("size", ["0", "-8", "100000"])
def test_an_absurd_patch_size(size: str, workdir: Path, capsys):
    args = ["fit", "--config", QUICK, "--data.init_args.patch_size", size]
    expect_one_line(args, capsys, workdir, 1, "patch_size", size)


def test_data_check_of_a_missing_config_and_sample_of_an_unknown_task(workdir: Path, capsys):
    expect_one_line(["data", "check", "--config", "nope.yaml"], capsys, workdir, 1, "nope.yaml")
    expect_one_line(["sample", "--tasks", "sparkles", "-o", "out"], capsys, workdir, 1, "sparkles")


def test_export_onto_an_existing_file(workdir: Path, capsys):
    ckpt = write_tiny_checkpoint(workdir / "tiny.ckpt")
    (workdir / "model.safetensors").write_bytes(b"keep me")
    expect_one_line(["export", str(ckpt), "--to", "model.safetensors"], capsys, workdir, 1, "--overwrite")


def test_bf16_on_cpu_is_a_warning_not_an_error(workdir: Path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = ["test", "--config", QUICK, "--trainer.precision", "bf16-mixed", "--ckpt_path", "nope.ckpt"]
    expect_one_line(args, capsys, workdir, 1, "nope.ckpt")  # the run goes on to the next check
    _, _, err = run_cli(args, capsys)
    assert [line for line in err.splitlines() if line.startswith("restorezoo: warning: precision bf16-mixed on CPU")]


@pytest.mark.slow
def test_bf16_on_cpu_warns_and_runs(workdir: Path, capsys):
    """Decided: bf16 on CPU is valid (CPU autocast), so it runs, with one warning line saying it is slow."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = ["fit", "--config", QUICK, *TINY_ARGS, "--trainer.precision", "bf16-mixed", "--trainer.fast_dev_run", "1",
            "--data", "sample_data.yaml"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err[-3000:]
    warnings = [line for line in err.splitlines() if line.startswith("restorezoo: warning: precision bf16-mixed on CPU")]
    assert len(warnings) == 1, err[-2000:]


# ------------------------------------------------------------------ --debug, and the rules of the one line

def test_debug_flag_and_variable_give_the_traceback(workdir: Path, capsys, monkeypatch):
    from restorezoo.cli import main
    from restorezoo.errors import RestoreZooError

    with pytest.raises(RestoreZooError, match="checkpoint file not found"):
        main(["test", "--config", QUICK, "--ckpt_path", "nope.ckpt", "--debug"])
    monkeypatch.setenv("RESTOREZOO_DEBUG", "1")
    with pytest.raises(RestoreZooError, match="unknown subcommand"):
        main(["fitt"])


def test_an_unexpected_error_is_one_line_that_names_its_type(workdir: Path, capsys, monkeypatch):
    from restorezoo import cli

    def broken(argv: list[str]) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "_sample", broken)
    line = expect_one_line(["sample"], capsys, workdir, 1, "KeyError", "--debug")
    assert "boom" in line


def test_describe_unwraps_the_cause_of_an_instantiation_error():
    from restorezoo.errors import WeightsNotFoundError
    from restorezoo.preflight import describe

    try:
        try:
            raise WeightsNotFoundError("weights 'x' not found; put it under $RESTOREZOO_WEIGHTS/x")
        except WeightsNotFoundError as cause:
            raise ValueError("Does not validate against any of the Union subtypes\nSubtypes: [...]") from cause
    except ValueError as error:
        assert describe(error) == "weights 'x' not found; put it under $RESTOREZOO_WEIGHTS/x"


# ------------------------------------------------------------------ fast answers (no model stack imported)

@pytest.mark.parametrize(
    "args", [["--help"], ["list"], ["restore", "--help"], ["data", "check", "--help"], ["export", "--help"]]
)
def test_light_subcommands_import_no_model_stack(args: list[str], tmp_path: Path):
    code = (
        "import sys; from restorezoo.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'lightning', 'diffusers', 'open_clip', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_importing_restorezoo_imports_no_model_module():
    code = (
        "import sys, restorezoo, restorezoo.models, restorezoo.data, restorezoo.metrics\n"
        "assert restorezoo.list_models() == sorted(restorezoo.models.MODEL_CLASSES)\n"
        "loaded = [m for m in sys.modules if m.startswith('restorezoo.models.') or m in ('torch', 'lightning')]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------ --trainer.default_root_dir moves every output

def _parsed(argv: list[str]):
    """The quickstart config as `restorezoo fit ARGV` parses it (plain dicts; no class instantiated)."""
    import yaml

    config = yaml.safe_load(Path(QUICK).read_text())
    config.setdefault("writer", {"output_dir": None})
    config.setdefault("metrics", {"output_dir": None})
    for arg, value in zip(argv[::2], argv[1::2]):
        if arg == "--trainer.default_root_dir":
            config["trainer"]["default_root_dir"] = value
        if arg == "--trainer.logger.save_dir":
            config["trainer"]["logger"]["init_args"]["save_dir"] = value
    return config, ["fit", "--config", QUICK, *argv]


def _outputs(config) -> tuple[str, str]:
    trainer = config["trainer"]
    return (trainer["logger"]["init_args"]["save_dir"], trainer["callbacks"][0]["init_args"]["dirpath"])


def test_default_root_dir_moves_logs_and_checkpoints():
    from restorezoo.preflight import move_run_dirs

    config, argv = _parsed([])
    move_run_dirs(config, argv)
    assert _outputs(config) == ("runs/instructir-quickstart", "runs/instructir-quickstart/checkpoints")
    config, argv = _parsed(["--trainer.default_root_dir", "/scratch/a"])
    move_run_dirs(config, argv)
    assert _outputs(config) == ("/scratch/a", "/scratch/a/checkpoints")
    config, argv = _parsed(["--trainer.logger.save_dir", "/scratch/b"])
    move_run_dirs(config, argv)
    assert _outputs(config) == ("/scratch/b", "/scratch/b/checkpoints")


def test_a_fit_with_another_root_writes_nothing_under_runs(workdir: Path, capsys):
    args = ["fit", "--config", QUICK, *TINY_ARGS, "--data", "sample_data.yaml", "--trainer.max_steps", "1",
            "--trainer.limit_val_batches", "0", "--trainer.default_root_dir", "elsewhere", "--metrics.save_images", "0"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err[-3000:]
    assert not (workdir / "runs").exists()
    assert (workdir / "elsewhere/checkpoints/last.ckpt").is_file()
    assert list((workdir / "elsewhere/logs").glob("version_*/metrics.csv"))
