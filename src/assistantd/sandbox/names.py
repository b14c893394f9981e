"""File names inside /mnt/data: what an uploaded file is called there, and link parsing."""

from __future__ import annotations

import os
import re
import unicodedata
from urllib.parse import quote

MAX_NAME_BYTES = 200
PREFIX = "sandbox:/mnt/data/"


def safe_name(filename: str, fallback: str) -> str:
    """A plain file name for `filename`: its last path component, no control characters, no
    leading dots, at most MAX_NAME_BYTES bytes; `fallback` when nothing usable is left."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if unicodedata.category(ch).startswith("C") else ch
        for ch in unicodedata.normalize("NFC", name)
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        name = fallback
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 20:
        stem, ext = name, ""
    while len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + ext


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `stem-3.ext`... when it is already taken."""
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    counter = 2
    while f"{stem}-{counter}{ext}" in taken:
        counter += 1
    return f"{stem}-{counter}{ext}"


def find_links(text: str, known: dict[str, str]) -> list[tuple[int, int, str, str]]:
    """Each `sandbox:/mnt/data/<path>` in `text` naming a path of `known` (path -> file id),
    as (start, end, link text, file id). A path may appear as is or URL-encoded; the longest
    known path wins, so `a.csv` does not claim the link to `a.csv.zip`."""
    candidates: list[tuple[str, str]] = []
    for path, file_id in known.items():
        candidates.append((path, file_id))
        quoted = quote(path)
        if quoted != path:
            candidates.append((quoted, file_id))
    candidates.sort(key=lambda item: len(item[0]), reverse=True)
    found = []
    for match in re.finditer(re.escape(PREFIX), text):
        rest = text[match.end() :]
        for path, file_id in candidates:
            if rest.startswith(path):
                end = match.end() + len(path)
                found.append((match.start(), end, text[match.start() : end], file_id))
                break
    return found
