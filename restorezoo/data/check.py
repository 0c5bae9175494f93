"""``restorezoo data check --config X.yaml``: find data problems before a long run does.

Reads the config's ``data.init_args.{train,val,test,predict}`` dataset entries with plain YAML (no
LightningCLI, no models), and for every folder-based dataset reports the pairs found, files without
a partner, images that do not decode and LQ/HQ pairs whose sizes differ. Missing folders are
reported, not raised. It only ever reads: no file is written, moved or fixed.

Relative paths resolve against the working directory, as they do for ``restorezoo fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from restorezoo.data.captions import read_coco_captions
from restorezoo.data.io import list_images, read_image_array
from restorezoo.data.manifest import read_manifest_rows
from restorezoo.data.pairing import pair_files, universal_folders
from restorezoo.data.presets import PRESETS
from restorezoo.errors import DataError, RestoreZooError

STAGES = ("train", "val", "test", "predict")
Size = tuple[int, int]


@dataclass
class Report:
    """What was found for one dataset entry of a config; ``problems`` counts what needs fixing."""

    stage: str
    dataset: str
    where: str = ""
    pairs: int = 0
    images: int = 0
    unmatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(
            len(x) for x in (self.unmatched, self.unreadable, self.size_mismatches, self.missing, self.errors)
        )

    @property
    def ok(self) -> bool:
        return self.problems == 0


def _probe(paths: Iterable[Path], label: str) -> dict[Path, Size | str]:
    """Decode every image (as training would) in a few threads: its (H, W) or why it failed."""
    from tqdm import tqdm

    def one(path: Path) -> Size | str:
        try:
            image = read_image_array(path)
        except RestoreZooError as error:
            return str(error)
        except Exception as error:  # anything a decoder throws is a finding, not a crash
            return f"{type(error).__name__}: {error}"
        return (int(image.shape[0]), int(image.shape[1]))

    unique = list(dict.fromkeys(paths))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(tqdm(pool.map(one, unique), total=len(unique), desc=label, unit="img", leave=False))
    return dict(zip(unique, results))


def _record_images(report: Report, sizes: dict[Path, Size | str]) -> None:
    report.images += len(sizes)
    report.unreadable += [f"{path}: {result}" for path, result in sizes.items() if isinstance(result, str)]


def _compare_sizes(report: Report, pairs: Iterable[tuple[Path, Path]], sizes: dict[Path, Size | str]) -> None:
    for lq, hq in pairs:
        a, b = sizes.get(lq), sizes.get(hq)
        if isinstance(a, tuple) and isinstance(b, tuple) and a != b:
            report.size_mismatches.append(f"{lq.name} {a[0]}x{a[1]} vs {hq.name} {b[0]}x{b[1]}")


def _folder(report: Report, path: Path, what: str) -> bool:
    if path.is_dir():
        return True
    report.missing.append(f"{what} folder {path}")
    return False


def _check_pairs(report: Report, lq_dir: Path, hq_dir: Path | None, match: Any = "stem", label: str = "") -> None:
    lq_ok = _folder(report, lq_dir, f"{label}LQ")
    hq_ok = hq_dir is None or _folder(report, hq_dir, f"{label}HQ")
    if not (lq_ok and hq_ok):
        return
    if hq_dir is None:
        _record_images(report, _probe(list_images(lq_dir), f"{report.dataset} {label}LQ"))
        return
    try:
        pairs, unmatched, unused = pair_files(lq_dir, hq_dir, match)
    except DataError as error:
        report.errors.append(str(error))
        return
    report.pairs += len(pairs)
    report.unmatched += [f"{label}LQ {p} (no HQ partner)" for p in unmatched]
    if match != "prefix":  # prefix mode lets several LQ share one HQ and some HQ go unused
        report.unmatched += [f"{label}HQ {p} (no LQ partner)" for p in unused]
    sizes = _probe([*list_images(lq_dir), *list_images(hq_dir)], f"{report.dataset} {label}".strip())
    _record_images(report, sizes)
    _compare_sizes(report, pairs, sizes)


def _check_clean_folder(report: Report, folder: Path) -> None:
    if _folder(report, folder, "HQ"):
        _record_images(report, _probe(list_images(folder), report.dataset))


def _read_listing(report: Report, path: Path, what: str, reader: Callable[[Path], Any]) -> Any:
    """``reader(path)``, or None with the missing file or the reader's error recorded in ``report``."""
    if not path.is_file():
        report.missing.append(f"{what} {path}")
        return None
    try:
        return reader(path)
    except DataError as error:
        report.errors.append(str(error))
        return None


def _check_captioned(report: Report, image_dir: Path, captions: Path) -> None:
    if not _folder(report, image_dir, "image"):
        return
    listed = _read_listing(report, captions, "captions file", read_coco_captions)
    if listed is None:
        return
    present = {p.name: p for p in list_images(image_dir)}
    report.missing += [f"image {image_dir / name} (listed in {captions.name})" for name in listed if name not in present]
    report.unmatched += [f"image {p} (not in {captions.name})" for name, p in present.items() if name not in listed]
    uncaptioned = sum(1 for name, texts in listed.items() if name in present and not texts)
    if uncaptioned:
        report.notes.append(f"{uncaptioned} images have no caption (they get an empty one)")
    _record_images(report, _probe([present[n] for n in listed if n in present], report.dataset))


def _check_universal(report: Report, args: dict[str, Any]) -> None:
    try:
        folders = universal_folders(args.get("root", ""), args.get("split", "train"), args.get("degradations"))
    except DataError as error:
        report.missing.append(str(error))
        return
    for folder in folders:
        _check_pairs(report, folder / "LQ", folder / "GT", "stem", label=f"{folder.name}/")
    if args.get("caption_file") and not Path(args["caption_file"]).expanduser().is_file():
        report.missing.append(f"caption file {args['caption_file']}")


def _check_manifest(report: Report, args: dict[str, Any]) -> None:
    path = Path(args.get("path", "")).expanduser()
    rows = _read_listing(report, path, "manifest", read_manifest_rows)
    if rows is None:
        return
    base = Path(args["root"]).expanduser() if args.get("root") else path.parent
    pairs, files = [], []
    for line, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        if not row.get("lq"):
            report.errors.append(f"{path}:{line}: row has no 'lq' path")
            continue
        found = {}
        for key in ("lq", "hq"):
            if row.get(key):
                file = (base / row[key]).expanduser()
                (files.append(file) if file.is_file() else report.missing.append(f"{path.name}:{line}: {key} {file}"))
                found[key] = file
        if len(found) == 2:
            pairs.append((found["lq"], found["hq"]))
    report.pairs = len(pairs)
    sizes = _probe(files, report.dataset)
    _record_images(report, sizes)
    _compare_sizes(report, pairs, sizes)


def _check_benchmark(report: Report, args: dict[str, Any]) -> None:
    name = args.get("name", "")
    if name not in PRESETS:
        report.errors.append(f"unknown benchmark '{name}'")
        return
    preset = PRESETS[name]
    report.dataset = f"Benchmark {name}"
    base = Path(args.get("root", "data")).expanduser()
    lq = args.get("lq_dir") or preset.lq
    hq_name = args.get("hq_dir") or preset.hq
    hq = base / hq_name if hq_name else None
    captions = args.get("captions") or preset.captions
    if hq is None:  # real photos without ground truth: the LQ folder is all there is
        _check_clean_folder(report, base / str(lq))
    elif captions:
        _check_captioned(report, hq, base / captions)
    elif lq:
        _check_pairs(report, base / lq, hq, preset.match)
    else:
        _check_clean_folder(report, hq)
    if report.missing:
        report.notes.append(f"expected layout: {preset.layout(base)}")


def _check_entry(stage: str, index: int, entry: Any) -> Report:
    if isinstance(entry, str):
        entry = {"class_path": entry}
    if not isinstance(entry, dict):
        return Report(stage, f"#{index}", errors=[f"{stage}[{index}] is not a dataset entry: {entry!r}"])
    class_name = str(entry.get("class_path", "")).rsplit(".", 1)[-1]
    args = dict(entry.get("init_args") or {})
    report = Report(stage, class_name or f"#{index}")
    if class_name == "PairedFolder":
        hq = args.get("hq_dir")
        report.where = str(args.get("lq_dir", ""))
        _check_pairs(report, Path(args.get("lq_dir", "")).expanduser(), Path(hq).expanduser() if hq else None,
                     args.get("match", "stem"))
    elif class_name == "Synthetic":
        report.where = str(args.get("hq_dir", ""))
        _check_clean_folder(report, Path(args.get("hq_dir", "")).expanduser())
    elif class_name == "CaptionedFolder":
        report.where = str(args.get("image_dir", ""))
        _check_captioned(
            report, Path(args.get("image_dir", "")).expanduser(), Path(args.get("captions_json", "")).expanduser()
        )
    elif class_name == "UniversalFolder":
        report.where = f"{args.get('root', '')}/{args.get('split', 'train')}"
        _check_universal(report, args)
    elif class_name == "Manifest":
        report.where = str(args.get("path", ""))
        _check_manifest(report, args)
    elif class_name == "Benchmark":
        report.where = str(args.get("root", "data"))
        _check_benchmark(report, args)
    elif class_name == "Sample":
        report.notes.append("bundled scikit-image photos; nothing on disk to check")
    else:
        report.notes.append(f"not checked: no file checks for '{class_name}'")
    return report


def data_section(path: str | Path) -> dict[str, Any]:
    """A fit/test config's ``data:`` mapping, or a one-line ``DataError`` (missing file, bad YAML, no section)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"config not found: {path}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DataError(f"{path}: invalid YAML ({error})") from error
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict):
        raise DataError(f"{path} has no 'data' section")
    return data


def check_config(path: str | Path) -> list[Report]:
    """Check every dataset of a config's ``data`` section; one ``Report`` per entry, in stage order."""
    data = data_section(path)
    args = data.get("init_args", data) or {}
    reports = []
    for stage in STAGES:
        entries = args.get(stage) or []
        for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            reports.append(_check_entry(stage, index, entry))
    return reports


def print_reports(reports: list[Report], details: int = 10) -> None:
    """A rich table, one row per dataset, then the first ``details`` findings of each kind."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="restorezoo data check (rows in red need fixing)")
    table.add_column("stage", no_wrap=True)
    table.add_column("dataset (where)", min_width=14)
    for column in ("pairs", "imgs", "unpaired", "corrupt", "size≠", "missing"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in reports:
        counts = (r.pairs, r.images, len(r.unmatched), len(r.unreadable), len(r.size_mismatches),
                  len(r.missing) + len(r.errors))
        name = f"{r.dataset} ({r.where})" if r.where else r.dataset
        table.add_row(r.stage, name, *map(str, counts), style=None if r.ok else "red")
    console.print(table)
    for r in reports:
        kinds = (("missing", r.missing), ("error", r.errors), ("unmatched", r.unmatched),
                 ("unreadable", r.unreadable), ("size mismatch", r.size_mismatches), ("note", r.notes))
        for kind, items in kinds:
            for item in items[:details]:
                console.print(f"{r.stage} {r.dataset}: {kind}: {item}", highlight=False, soft_wrap=True)
            if len(items) > details:
                console.print(f"{r.stage} {r.dataset}: ... {len(items) - details} more {kind}", highlight=False)
