"""Caption readers: DA-CLIP's CSVs and COCO's JSON, keyed so that moving the image tree keeps them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from restorezoo.data.prompts import DACLIP_DEGRADATIONS
from restorezoo.errors import DataError


def _split_title(title: str) -> str:
    """DA-CLIP titles read ``"{caption}: {degradation}"``; keep the caption."""
    caption, sep, word = title.rpartition(": ")
    return caption.strip() if sep and word.strip().lower() in DACLIP_DEGRADATIONS else title.strip()


def read_daclip_captions(path: str | Path) -> dict[tuple[str, str], str]:
    """Captions of a DA-CLIP CSV (``filepath``, ``title``; tab- or comma-separated) by (degradation, file name).

    The released CSVs hold absolute paths of the machine they were made on, so rows are keyed by
    the degradation folder and file name, which survive moving the tree.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"caption file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        header = handle.readline()
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter="\t" if "\t" in header else ",")
        if not {"filepath", "title"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected columns 'filepath' and 'title', found {reader.fieldnames}")
        captions = {}
        for row in reader:
            file = Path((row.get("filepath") or "").replace("\\", "/"))
            captions[(file.parent.parent.name, file.name)] = _split_title(row.get("title") or "")
    return captions


def read_coco_captions(path: str | Path) -> dict[str, list[str]]:
    """COCO-style captions (``images``: id, file_name; ``annotations``: image_id, caption) by file name.

    Images keep the JSON's order; an image without annotations gets an empty list.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"captions file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {image["id"]: str(image["file_name"]) for image in data["images"]}
        captions: dict[str, list[str]] = {name: [] for name in names.values()}
        for note in data.get("annotations", []):
            if note["image_id"] in names:
                captions[names[note["image_id"]]].append(str(note["caption"]).strip())
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a COCO captions file ({type(error).__name__}: {error})") from error
    return captions


__all__ = ["read_coco_captions", "read_daclip_captions"]
