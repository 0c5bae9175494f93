"""Reading a pair manifest (JSONL or CSV): shared by the ``Manifest`` dataset and ``restorezoo data check``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from restorezoo.errors import DataError


def _manifest_text(manifest: Path) -> str:
    """The manifest as text; bytes that are not UTF-8 are one error naming the file and line."""
    data = manifest.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{manifest}:{line}: not UTF-8 text (byte {data[error.start]:#04x}); re-save the manifest as UTF-8"
        ) from error

def read_manifest_rows(manifest: Path) -> list[dict[str, str]]:
    """The rows of a JSONL or CSV manifest as string dicts; a malformed line is one error naming it."""
    text_lines = list(io.StringIO(_manifest_text(manifest), newline=""))
    if manifest.suffix.lower() == ".csv":
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(text_lines)]
    rows = []
    for line, text in enumerate(text_lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{manifest}:{line}: invalid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise DataError(f"{manifest}:{line}: expected an object with an 'lq' key")
        rows.append({k: "" if v is None else str(v) for k, v in row.items()})
    return rows


__all__ = ["read_manifest_rows"]
