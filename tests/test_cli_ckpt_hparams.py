"""`restorezoo test --ckpt_path`: the checkpoint supplies the architecture, the command line and --config win."""

from __future__ import annotations

from pathlib import Path

import yaml

from restorezoo.cli import main
from restorezoo.models.irsde import IRSDE
from tests.conftest import REPO, working_directory

QUICKSTART = REPO / "configs" / "daclip" / "irsde_quickstart.yaml"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
TEST = ["--trainer.limit_test_batches", "1", "--metrics.output_dir", "table", "--metrics.save_images", "0", *QUIET,
        "--data.init_args.test", "[{class_path: Sample, init_args: {split: test, tasks: [noise], max_side: 32}}]",
        "--data.init_args.eval_batch_size", "1"]


def test_command_line_sampler_steps_override_the_checkpoint_hparams(tmp_path: Path, monkeypatch):
    built: list[tuple[int, int]] = []  # (sampler steps, U-Net width) of each model the test run uses

    def record(self: IRSDE) -> None:
        built.append((self.steps, self.unet.init_conv.out_channels))

    with working_directory(tmp_path):
        main(["fit", "--config", str(QUICKSTART), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
              "--trainer.limit_val_batches", "0", "--data.init_args.batch_size", "2",
              "--model.init_args.steps", "3", *QUIET])
        ckpt = tmp_path / "runs/irsde-quickstart/checkpoints/last.ckpt"
        monkeypatch.setattr(IRSDE, "on_test_start", record, raising=False)

        # The documented command: the checkpoint was trained with steps 3, the command line asks for 2.
        main(["test", "--config", str(QUICKSTART), "--ckpt_path", str(ckpt), "--model.init_args.steps", "2", *TEST])
        assert built == [(2, 16)]

        # A config without a model section: the width (16, default 64) comes from the checkpoint.
        config = yaml.safe_load(QUICKSTART.read_text())
        del config["model"]
        no_model = tmp_path / "no_model.yaml"
        no_model.write_text(yaml.safe_dump(config))
        main(["test", "--config", str(no_model), "--ckpt_path", str(ckpt), "--model", "IRSDE",
              "--model.init_args.steps", "2", *TEST])
        assert built[1] == (2, 16)
