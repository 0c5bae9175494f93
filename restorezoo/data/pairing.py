"""Pairing LQ and HQ files by name: the rule the datasets and ``restorezoo data check`` share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from restorezoo.data.io import list_images
from restorezoo.errors import DataError

KeyFn = Callable[[Path], str]
"""Maps a file to the name it is paired by."""


def _strip_suffix(suffix: str) -> KeyFn:
    def key(path: Path) -> str:
        stem = path.stem
        return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem

    return key


def pair_keys(match: str | KeyFn = "stem") -> tuple[KeyFn, KeyFn]:
    """The (LQ, HQ) key functions of a ``match`` mode.

    - ``"stem"``: identical file stems (``0001.png`` ↔ ``0001.jpg``);
    - ``"prefix"``: the LQ stem up to its first ``_`` (SOTS: ``0001_0.8_0.2.png`` ↔ ``0001.png``);
    - ``"suffix:LQ,HQ"``: strip each side's suffix when present (RainDrop: ``"suffix:_rain,_clean"``
      pairs ``0_rain.png`` with ``0_clean.png``; SRD: ``"suffix:,_free"``); either part may be empty;
    - a callable ``Path -> str`` applied to both sides (Python use; configs take the strings).
    """
    if callable(match):
        return match, match
    if match == "stem":
        return _strip_suffix(""), _strip_suffix("")
    if match == "prefix":
        return (lambda path: path.stem.split("_")[0]), _strip_suffix("")
    if match.startswith("suffix:"):
        parts = match[len("suffix:") :].split(",")
        if len(parts) != 2:
            raise DataError(f"match '{match}' needs two comma-separated suffixes, e.g. 'suffix:_rain,_clean'")
        return _strip_suffix(parts[0].strip()), _strip_suffix(parts[1].strip())
    raise DataError(f"unknown match mode '{match}'; use 'stem', 'prefix' or 'suffix:LQ_SUFFIX,HQ_SUFFIX'")


def pair_files(
    lq_dir: Path, hq_dir: Path, match: str | KeyFn = "stem"
) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pair the images of two folders without raising: ``(pairs, unmatched LQ, unused HQ)``.

    Unused HQ files are only a problem for one-to-one modes; with ``"prefix"`` several LQ files
    (SOTS/ITS haze levels) may share one HQ image and some HQ images may have none.
    """
    lq_key, hq_key = pair_keys(match)
    hq_files = {hq_key(p): p for p in list_images(hq_dir)}
    pairs, unmatched = [], []
    for lq in list_images(lq_dir):
        hq = hq_files.get(lq_key(lq))
        (pairs.append((lq, hq)) if hq is not None else unmatched.append(lq))
    used = {hq for _, hq in pairs}
    return pairs, unmatched, [p for p in hq_files.values() if p not in used]


def match_pairs(lq_dir: Path, hq_dir: Path, match: str | KeyFn = "stem") -> list[tuple[Path, Path]]:
    """Pair LQ and HQ files by name (see ``pair_keys`` for the ``match`` modes).

    Raises a ``DataError`` listing unmatched files on either side.
    """
    pairs, unmatched, unused = pair_files(lq_dir, hq_dir, match)
    orphans = [] if match == "prefix" else [p.name for p in unused]
    if unmatched or orphans:
        shown = ", ".join(([p.name for p in unmatched] + orphans)[:8])
        raise DataError(
            f"{len(unmatched)} LQ files in {lq_dir} and {len(orphans)} HQ files in "
            f"{hq_dir} have no partner (matching by {match}): {shown}"
        )
    return pairs


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a folder that holds images, else one ``DataError`` line naming ``what``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{what} folder not found: {path}")
    if not list_images(path):
        raise DataError(f"{what} folder {path} holds no images")
    return path



def universal_folders(
    root: str | Path, split: str = "train", degradations: Sequence[str] | None = None
) -> list[Path]:
    """The degradation folders of a DA-CLIP universal tree, ``<root>/<split>/<degradation>/{LQ,GT}``.

    Without ``degradations`` every sub-folder holding an ``LQ`` folder is taken, sorted by name.
    """
    base = Path(root).expanduser() / split
    if not base.is_dir():
        raise DataError(
            f"universal split folder not found: {base} (expected <root>/{split}/<degradation>/LQ,GT)"
        )
    if degradations is None:
        folders = sorted(p for p in base.iterdir() if (p / "LQ").is_dir())
        if not folders:
            raise DataError(f"no <degradation>/LQ folders in {base}")
        return folders
    return [base / name for name in degradations]


__all__ = ["KeyFn", "match_pairs", "pair_files", "pair_keys", "require_dir", "universal_folders"]
