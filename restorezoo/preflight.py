"""The command line's error handling: every failure as one line, and the cheap checks done before a model is built.

``describe(error)`` turns any exception (a jsonargparse parse error, an error raised while jsonargparse
instantiates a class, a Lightning misconfiguration, an OS error) into one line: what failed, the
file/weight/option concerned and how to fix it. ``check_run`` looks at a parsed ``fit/validate/test/
predict`` config before anything is instantiated: a missing or truncated ``--ckpt_path``, a GPU asked
for on a machine without one, an output folder that cannot be written. Nothing here imports torch at
module level, so that light subcommands stay light.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from restorezoo.errors import RestoreZooError, first_line

DEBUG_ENV = "RESTOREZOO_DEBUG"
"""Set to 1 (or pass ``--debug``) to get the full traceback instead of the one-line error."""
DEBUG_HINT = "rerun with --debug for the traceback"
LIGHTNING_SPECIAL_CKPTS = ("last", "best", "hpc", "registry")


class UsageError(RestoreZooError):
    """A command line that does not parse (unknown option, wrong type, bad config file); exit code 2."""


def exit_code(error: BaseException) -> int:
    """2 for a command line that does not parse (argparse's convention), 1 for every other failure."""
    for link in _chain(error):
        if isinstance(link, (UsageError, argparse.ArgumentError)):
            return 2
    return 1


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` on the command line or ``RESTOREZOO_DEBUG=1`` in the environment."""
    flag = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return flag or "--debug" in argv


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes, outermost first (``raise ... from`` and implicit context alike)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _type_names(text: str) -> list[str]:
    names = []
    for found in re.findall(r"Expected a <class '([\w.]+)'>", text):
        name = found.rsplit(".", 1)[-1]
        names.append("None" if name == "NoneType" else name)
    return list(dict.fromkeys(names))


def _short(value: str, limit: int = 80) -> str:
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _config_files(argv: list[str]) -> list[str]:
    files = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("-c", "--config")]
    return files + [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]


def describe_parse_error(texts: list[str], argv: list[str] | None = None) -> str:
    """jsonargparse's nested parse errors (outermost first) → one line: the option, what it expects, what it got."""
    argv = argv or []
    prog = f"restorezoo {argv[0]}" if argv and not argv[0].startswith("-") else "restorezoo"
    help_hint = f"see `{prog} --help`"
    text = "\n".join(texts)
    parts: list[str] = []
    after_class = False
    classes: list[str] = []
    for link in texts:
        first = link.strip().splitlines()[0] if link.strip() else ""
        key = re.match(r'(?:Parser key|Key) "([^"]+)"', first)
        if key:
            if after_class:
                parts.append("init_args")
                after_class = False
            if not parts or parts[-1] != key.group(1):
                parts.append(key.group(1))
        cls = re.match(r"Problem with given class_path '([^']+)'", first)
        if cls:
            after_class = True
            classes.append(cls.group(1).rsplit(".", 1)[-1])
    option = f"--{'.'.join(parts)}" if parts else None
    where = f"{option}: " if option else ""

    unknown = re.search(r"Unrecognized arguments: (.*)", text)
    if unknown or "No action for key" in text:
        names = re.findall(r'No action for key "([^"]+)"', text)
        name = f"--{names[-1]}" if names else unknown.group(1).strip() if unknown else option or ""
        return f"unknown option {_short(name)}; {help_hint} for the accepted ones"
    choice = re.search(r"invalid choice: '?([^'\s]+)'?", text)
    if choice:
        return f"unknown subcommand '{choice.group(1)}'; run `restorezoo --help` for the list"
    bad_class = re.search(r"Expected a dot import path string: (\S+)", text) or re.search(
        r"Import path (\S+) does not|No module named '?([\w.]+)'?", text
    )
    if bad_class:
        name = next(group for group in bad_class.groups() if group)
        return (
            f"{where}unknown class '{name.strip(chr(39))}'; name a restorezoo class (restorezoo list) or give a full import "
            "path such as lightning.pytorch.callbacks.ModelCheckpoint"
        )
    not_accepted = re.search(r"Option '([^']+)' is not accepted", text) or re.search(
        r"unexpected keyword argument '([^']+)'", text
    )
    if not_accepted:
        owner = f" of {classes[-1]}" if classes else ""
        return f"{where}'{not_accepted.group(1)}' is not an argument{owner}; {help_hint}"
    if re.search(r"Problems parsing config|Unable to load config|while parsing|while scanning", text):
        files = _config_files(argv)
        position = re.findall(r"line (\d+), column (\d+)", text)
        at = f" at line {position[0][0]}, column {position[0][1]}" if position else ""
        reason = re.search(r"\n(did not find[^\n]*|expected[^\n]*|found[^\n]*|mapping values[^\n]*)", text)
        why = f" ({reason.group(1).strip()})" if reason else ""
        name = ", ".join(files) if files else "the config"
        return f"cannot read config {name}: not valid YAML{at}{why}; fix the file"
    missing_file = re.search(r"[Cc]onfig.*?(?:does not exist|not found|No such file)[^\n]*", text)
    if missing_file or (re.search(r"does not exist|No such file", text) and _config_files(argv)):
        files = [f for f in _config_files(argv) if not Path(f).is_file()]
        return f"config file not found: {', '.join(files) or first_line(text)}; check the path"
    required = re.search(r'Key "([^"]+)" is required|arguments are required: ([^\n]+)', text)
    if required:
        names = [n.strip().split(".", 1)[-1] for n in (required.group(1) or required.group(2)).split(",")]
        flags = " and ".join(f"--{n}" for n in names if n)
        verb = "are" if len(names) > 1 else "is"
        return (
            f"{where}{flags} {verb} required: give a config (`{prog} --config configs/instructir/quickstart.yaml`) "
            f"or set {'them' if len(names) > 1 else 'it'} on the command line ({help_hint})"
        )
    innermost = texts[-1] if texts else text
    got = re.search(r"Got value: (.*)", innermost) or re.search(r"Given value: (.*)", text)
    types = _type_names("\n".join(texts[[i for i, t in enumerate(texts) if re.match(r'\s*(?:Parser key|Key) "', t)][-1]:])
                        if any(re.match(r'\s*(?:Parser key|Key) "', t) for t in texts) else text)
    if types:
        shown = f", got {_short(got.group(1))!r}" if got else ""
        return f"{option or 'a value'} expects {' or '.join(types)}{shown}; {help_hint}"
    lines = [line.strip(" -") for line in innermost.splitlines() if line.strip(" -")]
    reason = next(
        (line for line in lines if not line.startswith(("Subtypes:", "Errors:", "Given value", "Does not validate", "Parser key"))),
        lines[0] if lines else "invalid command line",
    )
    return f"{where}{_short(reason, 200)}; {help_hint}"


def describe(error: BaseException, argv: list[str] | None = None) -> str:
    """One line for any failure: the restorezoo error behind it when there is one, else its first line and type.

    ``argv`` (the command line) lets a parse error name the subcommand and the config files."""
    chain = list(_chain(error))
    for link in chain:
        if isinstance(link, UsageError):
            return str(link)
        if isinstance(link, RestoreZooError):
            line = first_line(link)
            if type(link).__name__ == "DataError" and ";" not in line:
                configs = " ".join(f"--config {f}" for f in _config_files(argv or [])) or "--config FILE"
                line += f"; fix the data paths (restorezoo data check {configs} lists every problem)"
            return line
    for link in chain:
        if isinstance(link, pickle.UnpicklingError):
            return (
                f"refusing to load a checkpoint that holds more than weights ({first_line(link, 'unpickling refused')}); "
                "only resume from checkpoints written by restorezoo fit"
            )
    parse_errors = [link for link in chain if isinstance(link, argparse.ArgumentError)]
    if parse_errors and not any(isinstance(link, (RestoreZooError, OSError)) for link in chain):
        # the outermost names the option; the causes under it carry the expected types
        return describe_parse_error([str(link) for link in chain], argv)
    innermost = chain[-1]
    for link in reversed(chain):
        if isinstance(link, OSError) and getattr(link, "filename", None):
            what = link.strerror or first_line(link)
            if isinstance(link, PermissionError):
                return f"cannot write or read {link.filename}: {what}; choose a folder you can write (e.g. --trainer.default_root_dir)"
            return f"{link.filename}: {what}; check the path"
    name = type(innermost).__name__
    text = first_line(innermost, "")
    if "out of memory" in text.lower():
        return f"{name}: {_short(text, 160)}; lower data.batch_size or data.patch_size (or use tiles)"
    if name == "MisconfigurationException":
        return f"{_short(text, 240)} (a Lightning setting: check the trainer options; {DEBUG_HINT})"
    return f"{name}: {_short(text, 240)} ({DEBUG_HINT})" if text else f"{name} ({DEBUG_HINT})"


# ---------------------------------------------------------------------------------------------- preflight


def _get(namespace: Any, dotted: str, default: Any = None) -> Any:
    """``namespace['a.b.c']`` for jsonargparse Namespaces and plain dicts, ``default`` when absent."""
    value = namespace
    for part in dotted.split("."):
        if value is None:
            return default
        try:
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        except (KeyError, AttributeError, TypeError):
            return default
    return value


def check_checkpoint_file(path: str | os.PathLike[str], option: str = "--ckpt_path") -> None:
    """A checkpoint that is missing, a folder, empty or truncated: one line, before any model is built."""
    file = Path(path).expanduser()
    if not file.exists():
        raise RestoreZooError(
            f"checkpoint file not found: {file} ({option}); check the path (runs/<name>/checkpoints/last.ckpt)"
        )
    if not file.is_file():
        raise RestoreZooError(f"{option} {file} is a folder, not a checkpoint file; name the .ckpt file in it")
    if file.stat().st_size == 0:
        raise RestoreZooError(f"cannot read checkpoint {file}: the file is empty; use an earlier checkpoint")
    with file.open("rb") as handle:
        magic = handle.read(4)
    if magic[:1] != b"\x80" and magic != b"PK\x03\x04":  # neither torch's zip format nor a legacy pickle
        raise RestoreZooError(
            f"cannot read checkpoint {file}: not a PyTorch checkpoint (it starts with {magic!r}); "
            "give a .ckpt written by restorezoo fit"
        )
    if magic == b"PK\x03\x04":  # torch's zip format: a truncated file has no central directory
        try:
            with zipfile.ZipFile(file) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise RestoreZooError(
                f"cannot read checkpoint {file}: {first_line(error)} (truncated or not a checkpoint?); "
                "use an earlier checkpoint"
            ) from None


def check_checkpoint_model(checkpoint: Mapping[str, Any], path: str, model_class_path: str | None) -> None:
    """A ``--ckpt_path`` that records another model class than the config's: one line, not a state-dict dump."""
    hparams = checkpoint.get("hyper_parameters") or {}
    recorded = hparams.get("_class_path") if isinstance(hparams, Mapping) else None
    if "state_dict" not in checkpoint:
        raise RestoreZooError(
            f"{path} is not a Lightning checkpoint (no 'state_dict'); released weights load with "
            "`restorezoo restore --model M --weights FILE` or the model's from_official()"
        )
    if recorded and model_class_path and recorded.rsplit(".", 1)[-1] != model_class_path.rsplit(".", 1)[-1]:
        raise RestoreZooError(
            f"{path} holds a {recorded}, not the config's {model_class_path}; use the config it was trained with"
        )


def _writable(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written, or None when it can."""
    folder = folder.expanduser().absolute()
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _entries(value: Any) -> list[Any]:
    """The class entries (Namespace/dict with class_path) of a logger/callbacks value: one, a list, or none."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [item for item in items if _get(item, "class_path")]


def _set(entry: Any, key: str, value: Any) -> None:
    init_args = _get(entry, "init_args")
    if init_args is None:
        return
    if isinstance(init_args, dict):
        init_args[key] = value
    else:
        setattr(init_args, key, value)


def _under(path: Any, base: Any) -> bool:
    if path is None or base is None:
        return False
    path, base = os.path.normpath(str(path)), os.path.normpath(str(base))
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _moved(path: Any, old: Any, new: Any) -> str:
    rest = os.path.relpath(os.path.normpath(str(path)), os.path.normpath(str(old)))
    return str(Path(str(new))) if rest == "." else str(Path(str(new)) / rest)


def config_file_values(argv: list[str]) -> dict[str, Any]:
    """``trainer.default_root_dir`` and the logger's ``save_dir`` as the ``--config`` files set them (last wins)."""
    import yaml

    values: dict[str, Any] = {}
    for file in _config_files(argv):
        try:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # the parser has already read it; nothing to learn here
        trainer = data.get("trainer") if isinstance(data, dict) else None
        if not isinstance(trainer, dict):
            continue
        if "default_root_dir" in trainer:
            values["root"] = trainer["default_root_dir"]
        logger = trainer.get("logger")
        if isinstance(logger, dict) and isinstance(logger.get("init_args"), dict) and "save_dir" in logger["init_args"]:
            values["save_dir"] = logger["init_args"]["save_dir"]
    return values


def move_run_dirs(config: Any, argv: list[str]) -> None:
    """Make ``--trainer.default_root_dir`` (and ``--trainer.logger.save_dir``) move every output of a run.

    The shipped configs place the logger's ``save_dir`` (logs, benchmark tables, images, predictions)
    and the ``ModelCheckpoint`` ``dirpath`` under their ``trainer.default_root_dir: runs/<name>``. When
    the command line gives another root, every output path the config files put under the old root
    moves under the new one; another logger ``save_dir`` moves what was under the old one (the
    checkpoints included). Paths given on the command line themselves are kept as given.
    """
    trainer = _get(config, "trainer")
    if trainer is None:
        return
    given = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--")]
    save_dir_given = any(
        key in ("--trainer.logger", "--trainer.logger.save_dir", "--trainer.logger.init_args.save_dir") for key in given
    )
    files = config_file_values(argv)
    old_root, new_root = files.get("root"), _get(trainer, "default_root_dir")
    moves = []  # (old base, new base), most specific first
    loggers = _entries(_get(trainer, "logger"))
    old_save = files.get("save_dir")
    for logger in loggers:
        save_dir = _get(logger, "init_args.save_dir")
        if not save_dir_given and old_root and new_root and _under(save_dir, old_root):
            _set(logger, "save_dir", _moved(save_dir, old_root, new_root))
        new_save = _get(logger, "init_args.save_dir")
        if old_save and new_save and os.path.normpath(str(old_save)) != os.path.normpath(str(new_save)):
            moves.append((old_save, new_save))
        break  # Lightning's log_dir is the first logger's
    if old_root and new_root and os.path.normpath(str(old_root)) != os.path.normpath(str(new_root)):
        moves.append((old_root, new_root))
    if not moves:
        return

    def move(value: Any) -> Any:
        for old, new in moves:
            if _under(value, old):
                return _moved(value, old, new)
        return value

    for callback in _entries(_get(trainer, "callbacks")):
        dirpath = _get(callback, "init_args.dirpath")
        if dirpath:
            _set(callback, "dirpath", move(dirpath))
    for key in ("writer", "metrics"):
        section = _get(config, key)
        value = _get(section, "output_dir")
        if value and f"--{key}.output_dir" not in given:
            if isinstance(section, dict):
                section["output_dir"] = move(value)
            else:
                section.output_dir = move(value)


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"restorezoo: warning: {message}", file=sys.stderr)


MAX_PATCH = 16384
"""A training crop larger than this is a typo (no dataset holds images that large to crop from)."""


def check_options(config: Any) -> None:
    """Values that parse but cannot work, found before anything is built: sampler steps, crop sizes."""
    args = _get(config, "model.init_args")
    steps, total = _get(args, "steps"), _get(args, "T")
    if isinstance(steps, int) and isinstance(total, int) and not 1 <= steps <= total:
        raise RestoreZooError(
            f"--model.init_args.steps {steps} is outside the model's {total}-step schedule (T: {total}); "
            f"use 1 to {total}"
        )
    patch = _get(config, "data.init_args.patch_size")
    if isinstance(patch, int) and not 1 <= patch <= MAX_PATCH:
        raise RestoreZooError(
            f"--data.init_args.patch_size {patch} is not a usable crop size; give a positive size such as 128 "
            f"(at most {MAX_PATCH}), or null for whole images"
        )


def check_run(config: Any, subcommand: str | None) -> None:
    """Cheap checks of a parsed run config before any class is instantiated (see the module docstring)."""
    if subcommand is None:
        return
    accelerator = str(_get(config, "trainer.accelerator", "auto") or "auto").lower()
    precision = str(_get(config, "trainer.precision", "32-true") or "32-true")
    if accelerator in ("gpu", "cuda") or accelerator.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise RestoreZooError(
                f"--trainer.accelerator {accelerator}: no CUDA GPU is visible on this machine "
                "(torch.cuda.is_available() is False); use --trainer.accelerator cpu (or auto)"
            )
    on_cpu = accelerator == "cpu"
    if accelerator == "auto":
        import torch

        on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    if on_cpu and precision.startswith(("bf16", "16")) and precision != "16-true":
        # Decided: warn and run. CPU autocast supports bf16, so the paper configs' bf16-mixed is valid on
        # CPU (and fast_dev_run checks of them work); it is just slow there.
        warn(
            f"precision {precision} on CPU runs (CPU autocast) but is slow and not what the paper configs were "
            "tuned on; pass --trainer.precision 32-true for CPU runs"
        )

    ckpt_path = _get(config, "ckpt_path")
    if ckpt_path and str(ckpt_path) not in LIGHTNING_SPECIAL_CKPTS and not str(ckpt_path).startswith("registry"):
        check_checkpoint_file(ckpt_path)
    check_options(config)
    root = _get(config, "trainer.default_root_dir")
    writes = [("--trainer.default_root_dir", root)] if root and subcommand == "fit" else []
    if subcommand == "predict":
        writes.append(("--writer.output_dir", _get(config, "writer.output_dir") or root))
    for option, folder in writes:
        if folder:
            reason = _writable(Path(str(folder)))
            if reason:
                raise RestoreZooError(f"cannot write the run's outputs to {folder} ({option}): {reason}; choose another folder")


__all__ = [
    "DEBUG_ENV",
    "UsageError",
    "check_checkpoint_file",
    "check_checkpoint_model",
    "check_run",
    "debug_requested",
    "exit_code",
    "move_run_dirs",
    "describe",
    "describe_parse_error",
    "warn",
]
