"""The ``restorezoo`` command: LightningCLI for fit/validate/test/predict, plus ``restore``, ``list``, ``sample``
and ``data check``.

``restorezoo export CKPT --to model.safetensors`` writes a weights-only file with its config beside it
(``--to DIR``: a hub-ready folder with a model card); ``restorezoo demo`` serves a local web demo.
``main(args)`` runs in-process (tests call it). Models and datamodules are named by short class
name in configs (``class_path: InstructIR``) because their packages are imported here. Failures a
user can fix print one line, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restorezoo.errors import RestoreZooError, first_line
from restorezoo.preflight import UsageError, check_run, debug_requested, describe, exit_code, move_run_dirs

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
HELP = """usage: restorezoo [--debug] SUBCOMMAND ...

Prompt-driven image restoration: train, benchmark and apply the zoo's models.

subcommands:
  fit        train a model from a config          restorezoo fit --config configs/instructir/quickstart.yaml
  validate   score a checkpoint on the val sets   restorezoo validate --config X.yaml --ckpt_path C.ckpt
  test       benchmark table of a checkpoint      restorezoo test --config X.yaml --ckpt_path C.ckpt
  predict    write restored images of a config    restorezoo predict --config X.yaml --ckpt_path C.ckpt
  restore    restore image files                  restorezoo restore photo.png --ckpt C.ckpt --prompt "..."
  export     weights-only safetensors / hub folder  restorezoo export C.ckpt --to model.safetensors
  demo       local web demo                       restorezoo demo
  data       check a config's data                restorezoo data check --config X.yaml
  sample     write degraded sample photos         restorezoo sample -o samples
  list       models, configs and benchmarks       restorezoo list  (--papers: the papers' numbers)

`restorezoo SUBCOMMAND --help` lists a subcommand's options. Errors are one line
(`restorezoo: error: ...`, exit code 1, 2 for a command line that does not parse);
--debug or RESTOREZOO_DEBUG=1 prints the full traceback instead.
"""


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line (UsageError) instead of a usage block and exit code 2."""

    def error(self, message: str) -> Any:  # noqa: D102 - argparse API
        raise UsageError(f"{self.prog}: {message}; see `{self.prog} --help`")


def _lightning_cli(args: list[str] | None) -> None:
    import logging

    from lightning.pytorch.cli import LightningCLI

    # "Seed set to N" would come before a one-line error; the seed is in the run's config.yaml anyway.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)

    import restorezoo.models
    from restorezoo.callbacks import FastPath
    from restorezoo.data import RestorationDataModule
    from restorezoo.data.datamodule import import_all_datasets

    # Import every model and dataset module so configs can name classes by short name (class_path: Sample).
    restorezoo.models.import_all()
    import_all_datasets()
    from restorezoo.inference import ImageWriter
    from restorezoo.metrics import RestorationMetrics
    from restorezoo.models.base import ZooModule

    class RestorationCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 - jsonargparse parser
            # The metric callback, the image writer and the fast path are always on; configs tune them.
            parser.add_lightning_class_args(RestorationMetrics, "metrics")
            parser.add_lightning_class_args(ImageWriter, "writer")
            parser.add_lightning_class_args(FastPath, "fast_path")

        def parse_arguments(self, parser, args) -> None:  # noqa: ANN001 - jsonargparse parser
            self._given_args = args
            super().parse_arguments(parser, args)

        def _argv(self) -> list[str]:
            args = self._given_args
            return list(sys.argv[1:] if args is None else args) if args is None or isinstance(args, list) else []

        def _parse_ckpt_path(self) -> None:
            # Lightning parses a --ckpt_path checkpoint's hyper-parameters *over* the parsed config, so
            # `test --ckpt_path C --model.init_args.steps 10` silently kept the steps it was trained with.
            # The checkpoint only fills in what --config and the command line leave out (the architecture):
            # parser defaults < checkpoint hparams < config files < command line, in that order.
            subcommand = self.config.get("subcommand")
            if subcommand:  # cheap checks first: a missing --ckpt_path, GPU on a CPU machine, unwritable outputs
                move_run_dirs(self.config[subcommand], self._argv())
                check_run(self.config[subcommand], subcommand)
                _check_ckpt_model(self.config[subcommand])
            super()._parse_ckpt_path()
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            args = self._given_args
            if ckpt_path and Path(ckpt_path).is_file() and (args is None or isinstance(args, list)):
                self.config = self.parser.parse_args(sys.argv[1:] if args is None else args, namespace=self.config)

        def before_instantiate_classes(self) -> None:
            if self.subcommand:  # again: the --ckpt_path re-parse above reads the config files anew
                move_run_dirs(self.config[self.subcommand], self._argv())

        def _set_seed(self) -> None:
            pass  # deferred to instantiate_classes: after the data module, right before the model, as before

        def instantiate_classes(self) -> None:
            # The data module first: a missing data folder or an empty set is one line before any model is
            # built or any weight loaded; the instance stands in the config for the main instantiation, and
            # the config gets its data section back for the saved config.yaml and the checkpoints' record.
            config = self.config[self.subcommand] if self.subcommand else self.config
            action = next((a for a in self._parser(self.subcommand)._actions if a.dest == "data"), None)
            data = config.get("data")
            if action is not None and data is not None:
                from jsonargparse._common import parser_context  # the context parser.instantiate_classes sets

                parser = self._parser(self.subcommand)
                with parser_context(parent_parser=parser, load_value_mode=parser.parser_mode):
                    config["data"] = action.instantiate_classes(data)
            from restorezoo.weights import offline_unless_reachable

            if offline_unless_reachable():
                print("restorezoo: warning: the model hub is unreachable: working offline (HF_HUB_OFFLINE=1)", file=sys.stderr)
            super()._set_seed()
            try:
                with warnings.catch_warnings():  # jsonargparse notes it cannot serialize the instance: by design
                    warnings.filterwarnings("ignore", message=r"\s*Unable to serialize instance")
                    super().instantiate_classes()
            finally:
                config["data"] = data

        def before_fit(self) -> None:
            # NaN guard, per-step seeding and the run record (config + vocabularies in every checkpoint)
            from restorezoo.callbacks import RunRecord, default_callbacks

            try:
                config = self._parser(self.subcommand).dump(self.config.get(str(self.subcommand), self.config))
            except Exception:  # a config that cannot be dumped still trains; its checkpoints lack it
                config = None
            extra = [c for c in default_callbacks(self.trainer) if not isinstance(c, RunRecord)]
            self.trainer.callbacks.extend([*extra, RunRecord(config=config)])

    RestorationCLI(
        model_class=ZooModule,  # restorers and conditioners (DA-CLIP) alike
        datamodule_class=RestorationDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        # parse errors are raised (ArgumentError) and printed as one line by main(), not a usage block
        parser_kwargs={"exit_on_error": False, **{name: {"exit_on_error": False} for name in LIGHTNING_SUBCOMMANDS}},
        args=args,
    )


def _check_ckpt_model(config: Any) -> None:
    """``--ckpt_path`` of another model class than the config names: one line before anything is built."""
    from restorezoo.preflight import LIGHTNING_SPECIAL_CKPTS, check_checkpoint_model

    ckpt_path = config.get("ckpt_path")
    model = config.get("model")
    class_path = model.get("class_path") if hasattr(model, "get") else None
    if not ckpt_path or str(ckpt_path) in LIGHTNING_SPECIAL_CKPTS or not Path(ckpt_path).is_file():
        return
    import torch

    try:  # memory-mapped: only the structure is read, not gigabytes of tensors
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # not a zip checkpoint (mmap needs one): Lightning's own load reports it
        return
    if hasattr(checkpoint, "get"):
        check_checkpoint_model(checkpoint, str(ckpt_path), class_path)


def _restore(argv: list[str]) -> None:
    parser = _Parser(
        prog="restorezoo restore", description="Restore image files with a trained or released model."
    )
    parser.add_argument("images", nargs="+", help="input image files")
    parser.add_argument("--model", default=None, help="model name (restorezoo list); optional with --ckpt")
    parser.add_argument("--ckpt", default=None, help="checkpoint written by `restorezoo fit` (or `export`)")
    parser.add_argument("--weights", default=None, help="released weights (e.g. im_instructir-7d.pt)")
    parser.add_argument("--extra-weights", default=None, help="second released file (e.g. lm_instructir-7d.pt)")
    parser.add_argument("--prompt", default="", help="instruction, e.g. 'remove the noise'")
    parser.add_argument("--caption", default="", help="semantic description of the content (diffusion models)")
    parser.add_argument("-o", "--output", default="restored", help="output folder, or file for one input")
    parser.add_argument("--suffix", default="_restored", help="added to output file stems in a folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    parser.add_argument(
        "--tile", type=int, default=None, help="tile size in pixels (default: the model's, above its pixel budget)"
    )
    parser.add_argument("--tile-overlap", type=int, default=None, help="pixels shared by neighbouring tiles")
    parser.add_argument("--max-pixels", type=int, default=None, help="tile images larger than this (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps of a diffusion model")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed of a diffusion model")
    parser.add_argument(
        "--sampler",
        "--scheduler",
        dest="sampler",
        default=None,
        help="a diffusion model's sampler: IR-SDE posterior or euler; SPIRE / Diff-Restorer ddim, unipc, dpmsolver++, …",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (falls back to eager)")
    parser.add_argument("--eager", action="store_true", help="plain fp32 eager inference (no fast path)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    opts = parser.parse_args(argv)

    from tqdm import tqdm

    from restorezoo import load_model
    from restorezoo.data.io import IMAGE_EXTENSIONS, load_image, save_image
    from restorezoo.inference import pick_device, restore_tensor

    inputs = [Path(p) for p in opts.images]
    output = Path(opts.output)
    as_file = len(inputs) == 1 and output.suffix.lower() in IMAGE_EXTENSIONS
    targets = [output if as_file else output / f"{p.stem}{opts.suffix}.png" for p in inputs]
    resolved_inputs = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in resolved_inputs:
            raise RestoreZooError(f"refusing to overwrite the input {target}; choose another -o/--suffix")
    if len(set(targets)) != len(targets):
        raise RestoreZooError("several inputs share a file name; restore them into separate folders")

    model = _load_for_restore(load_model, opts)
    model = model.to(pick_device(opts.device))
    accepted = getattr(model, "sampling_options", ())  # declared by each restorer (RestorationModule)
    # one --sampler flag: IR-SDE's restore names it ``sampler``, the latent-diffusion ones ``scheduler``
    sampler_kwarg = "scheduler" if "scheduler" in accepted else "sampler"
    given = {"steps": opts.steps, "seed": opts.seed, sampler_kwarg: opts.sampler}
    sampling = {name: value for name, value in given.items() if value is not None}
    unknown = [name for name in sampling if name not in accepted]
    if unknown:
        flags = " ".join("--sampler" if name == sampler_kwarg else f"--{name}" for name in unknown)
        raise RestoreZooError(f"{type(model).__name__} is not a sampler: {flags} does not apply")
    if opts.compile:
        from restorezoo.inference import compile_model

        compile_model(model)
    failures: list[str] = []
    for path, target in tqdm(list(zip(inputs, targets)), desc="restoring", unit="img", disable=len(inputs) < 2):
        try:  # one bad file is reported and skipped, the batch goes on
            if target.exists() and not opts.overwrite:
                raise RestoreZooError(f"{target} exists; pass --overwrite to replace it")
            image = load_image(path)
            restored = restore_tensor(
                model,
                image,
                opts.prompt,
                opts.caption,
                tile=opts.tile,
                tile_overlap=opts.tile_overlap,
                max_pixels=opts.max_pixels,
                fast=not opts.eager,
                progress=True,
                **sampling,
            )
            if restored.shape[-2:] != image.shape[-2:]:
                raise RestoreZooError(
                    f"{path}: the model returned {tuple(restored.shape[-2:])} for a {tuple(image.shape[-2:])} input"
                )
            save_image(restored, target)
        except RestoreZooError as error:
            failures.append(str(error))
            print(f"restorezoo: error: {error}", file=sys.stderr)
            continue
        print(f"{path} -> {target}")
    if failures:
        print(f"restorezoo: {len(failures)} of {len(inputs)} images failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        raise SystemExit(1)


def _load_for_restore(load_model: Any, opts: argparse.Namespace) -> Any:
    """``load_model`` with a released file that does not fit the model as one line, not a traceback."""
    from restorezoo.weights import offline_unless_reachable

    if offline_unless_reachable():
        print("restorezoo: warning: the model hub is unreachable: working offline (HF_HUB_OFFLINE=1)", file=sys.stderr)
    try:
        return load_model(opts.model, ckpt=opts.ckpt, weights=opts.weights, extra_weights=opts.extra_weights)
    except (RuntimeError, KeyError) as error:
        source = opts.ckpt or opts.weights
        first = first_line(error)
        raise RestoreZooError(
            f"{source} does not fit --model {opts.model}: {first}; check the model name and variant it was released for"
        ) from error


def _export(argv: list[str]) -> None:
    parser = _Parser(
        prog="restorezoo export",
        description="Write a fit checkpoint as weights-only safetensors plus its config: one file pair "
        "(--to model.safetensors → model.yaml beside it) or a hub-ready folder (--to DIR: model.safetensors, "
        "model.yaml and a model card README.md).",
    )
    parser.add_argument("ckpt", help="checkpoint written by `restorezoo fit`")
    parser.add_argument("--to", required=True, help="output file (model.safetensors) or folder (anything else)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--benchmark", default=None, help="benchmark.md for the model card (default: the newest in the checkpoint's run)"
    )
    parser.add_argument("--name", default=None, help="model card title (default: the folder name)")
    parser.add_argument(
        "--license", default="apache-2.0", help="hub license id for the model card (check the data and backbone terms)"
    )
    opts = parser.parse_args(argv)

    from restorezoo.export import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, export_checkpoint, export_folder

    if Path(opts.to).suffix == ".safetensors":
        if opts.benchmark or opts.name or opts.license != "apache-2.0":
            raise RestoreZooError("--benchmark, --name and --license go into a model card: export to a folder (--to DIR)")
        weights, config = export_checkpoint(opts.ckpt, opts.to, overwrite=opts.overwrite)
        print(f"wrote {weights} and {config}")
        return
    folder = export_folder(
        opts.ckpt, opts.to, overwrite=opts.overwrite, benchmark=opts.benchmark, name=opts.name, license=opts.license
    )
    files = ", ".join((WEIGHTS_NAME, CONFIG_NAME, CARD_NAME))
    print(f"wrote {folder}/ ({files}); load it with restorezoo.load_model('{folder}')")


def _demo(argv: list[str]) -> None:
    parser = _Parser(
        prog="restorezoo demo",
        description="A local web demo (Gradio): upload or pick a photo, choose a model, restore, compare.",
    )
    parser.add_argument(
        "--ckpt", nargs="+", action="extend", default=None,
        help="checkpoints, export folders or .safetensors exports (default: runs/*/checkpoints/last.ckpt)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument(
        "--share", choices=["never"], default="never", help="public share links are never made: the demo stays local"
    )
    parser.add_argument("--no-examples", action="store_true", help="do not offer the embedded sample photos")
    opts = parser.parse_args(argv)

    from restorezoo.demo import default_checkpoints, launch

    sources = opts.ckpt or default_checkpoints()
    if opts.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"restorezoo demo: serving on {opts.host}: anyone who can reach it can use it", file=sys.stderr)
    launch(sources, host=opts.host, port=opts.port, device=opts.device, examples=not opts.no_examples)


def _list(argv: list[str]) -> None:
    from restorezoo import list_models
    from restorezoo.data.presets import PRESETS  # plain data: `list` imports no torch

    parser = _Parser(prog="restorezoo list", description="The zoo's models, configs and benchmark presets.")
    parser.add_argument("--papers", action="store_true", help="the papers' reported numbers restorezoo compares with")
    opts = parser.parse_args(argv)
    if opts.papers:  # the papers' reported numbers restorezoo compares with (metrics.papers)
        from restorezoo.metrics.papers import papers_markdown

        print(papers_markdown(), end="")
        return

    from restorezoo.models import CONDITIONERS

    print("models:")
    for name in list_models():
        print(f"  {name}{'  (conditioner: steers a restorer, restores nothing)' if name in CONDITIONERS else ''}")
    configs = sorted(Path("configs").glob("*/*.yaml")) if Path("configs").is_dir() else []
    if configs:
        print("configs:")
        for config in configs:
            print(f"  {config}")
    print("benchmarks:")
    for name, preset in sorted(PRESETS.items()):
        print(f"  {name:<20} {preset.task:<12} {preset.protocol.describe()}")


def _sample(argv: list[str]) -> None:
    from restorezoo.data.sample_photos import (
        DEFAULT_SAMPLE_TASKS,
        copy_packaged_sample,
        write_degraded_sample,
    )

    parser = _Parser(
        prog="restorezoo sample", description="Write degraded test photos of the embedded sample to try `restore` on."
    )
    parser.add_argument("-o", "--output", default="samples", help="output folder")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_SAMPLE_TASKS), help="degradations")
    parser.add_argument("--compute", action="store_true", help="degrade the photos here, not copy the packaged ones")
    parser.add_argument("--packaged", action="store_true", help=argparse.SUPPRESS)  # the packaged layout (maintainers)
    opts = parser.parse_args(argv)

    if not opts.compute and tuple(opts.tasks) == DEFAULT_SAMPLE_TASKS:
        count = copy_packaged_sample(opts.output)  # the same files, without importing torch (< 1 s)
    else:
        count = write_degraded_sample(opts.output, opts.tasks, packaged=opts.packaged)
    print(f"wrote {count} degraded photos to {opts.output}/ (clean references in {opts.output}/clean/)")


def _data(argv: list[str]) -> None:
    parser = _Parser(prog="restorezoo data", description="Inspect the data a config points at.")
    tools = parser.add_subparsers(dest="tool", required=True)
    check = tools.add_parser(
        "check", help="report unmatched pairs, unreadable images, size mismatches and missing folders (read-only)"
    )
    check.add_argument("--config", required=True, help="a fit/test config (its data: section is checked)")
    check.add_argument("--details", type=int, default=10, help="findings listed per kind and dataset")
    opts = parser.parse_args(argv)

    from restorezoo.data.check import check_config, print_reports

    reports = check_config(opts.config)
    print_reports(reports, details=opts.details)
    problems = sum(r.problems for r in reports)
    if problems:
        print(f"restorezoo data check: {problems} problem(s) in {opts.config}", file=sys.stderr)
        raise SystemExit(1)


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``restorezoo`` console script: every failure is one line on stderr, exit code 1 (2: usage)."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != "--debug"]
    tools = {
        "restore": _restore, "list": _list, "sample": _sample, "data": _data, "export": _export, "demo": _demo,
    }  # fmt: skip
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(HELP, end="")
        elif argv[0] in ("-V", "--version"):
            from restorezoo import __version__

            print(f"restorezoo {__version__}")
        elif argv[0] in tools:
            tools[argv[0]](argv[1:])
        elif argv[0] in LIGHTNING_SUBCOMMANDS:
            if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
                sys.argv[1:] = argv
            _lightning_cli(None if args is None else argv)
        else:
            raise UsageError(f"unknown subcommand '{argv[0]}'; run `restorezoo --help` for the list")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("restorezoo: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        if debug:
            raise
        print(f"restorezoo: error: {describe(error, argv)}", file=sys.stderr)
        raise SystemExit(exit_code(error)) from None

if __name__ == "__main__":
    main()
