"""Raw rows of one split: from the Hugging Face hub (or its offline cache) or a local file.

Every row comes back numbered (jsonl: its line number; a json array, parquet or the hub: its
1-based index) as either a mapping or a BadRow saying why it could not be read (bytes that
are not UTF-8, invalid JSON, longer than data.max_row_chars, not an object), so the caller
applies data.on_bad_row to all of them alike. A problem with the source as a whole (missing,
empty, not readable, no rows left) raises ValueError naming it: nothing to load is never fine.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sps.config import SplitSource
from sps.tasks.bench.schemas import BadRow

Row = dict | BadRow
# surrogateescape decodes an undecodable byte b to U+DC00 + b; valid UTF-8 never decodes to a
# surrogate, and a JSON "\udc93" escape that json.loads leaves unpaired cannot be written out
_SURROGATE = re.compile("[\ud800-\udfff]")


def describe(src: SplitSource) -> str:
    """How errors name a source: the file, or the hub id, config and split."""
    if src.source == "local":
        return str(src.path)
    name = f" ({src.name})" if src.name else ""
    return f"hf:{src.path}{name} split {src.split}"


def _decode(path: Path) -> str:
    """The file's text; a UTF-8 BOM dropped, bad bytes kept as surrogates for the row check."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{path}: the file is UTF-16; save it as UTF-8")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    text = raw.decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise ValueError(f"{path}: the file is {'blank' if text else 'empty'}: nothing to load")
    return text


def _not_utf8(text: str) -> BadRow | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:
        what = f"byte 0x{code - 0xDC00:02x} at character {found.start() + 1}"
        return BadRow("not UTF-8", f"{what} is not UTF-8 (a cp1252 or latin-1 file?)")
    return BadRow("not UTF-8", "a lone surrogate, which is not UTF-8 text")


def _json_line(line: str, max_chars: int) -> Row:
    """One jsonl line, length and bytes checked before it is parsed."""
    if len(line) > max_chars:
        return BadRow("too long", f"{len(line):,} characters (data.max_row_chars {max_chars:,})")
    bad = _not_utf8(line)
    if bad is not None:
        return bad
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return BadRow("invalid JSON", f"{exc.msg} at character {exc.pos + 1} (a truncated line?)")


def _read_local(path: Path, max_chars: int) -> list[tuple[int, Row]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            rows = pd.read_parquet(path).to_dict("records")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable parquet file: {exc}") from None
        return list(enumerate(rows, start=1))
    if suffix not in (".json", ".jsonl"):
        raise ValueError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")
    text = _decode(path)
    if suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:  # no row boundaries to skip by in a broken array
            raise ValueError(
                f"{path}: line {exc.lineno}: not a valid JSON array: {exc.msg}"
            ) from None
        return list(enumerate(rows, start=1))
    # split("\n"), not splitlines(): a JSON string may hold U+2028, which splitlines() breaks
    lines = enumerate(text.split("\n"), start=1)
    return [(n, _json_line(line, max_chars)) for n, line in lines if line.strip()]


def _read_hf(src: SplitSource) -> list[tuple[int, Row]]:
    # With HF_DATASETS_OFFLINE=1 this reads the local cache and never touches the network.
    import datasets

    try:
        ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=src.revision)
    except Exception as exc:  # whatever failed (missing cache, bad files), name the source
        raise ValueError(
            f"{describe(src)}: load_dataset failed: {type(exc).__name__}: {exc}"
        ) from exc
    return list(enumerate((dict(row) for row in ds), start=1))


def check_row(row: Row, max_chars: int) -> Row:
    """A mapping whose text (keys and values, nested) totals at most max_chars characters
    and holds no lone surrogate; anything else becomes a BadRow."""
    if isinstance(row, BadRow):
        return row
    if not isinstance(row, dict):
        return BadRow("not an object", f"the row is a {type(row).__name__}, not an object")
    size, stack = 0, [row]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
            bad = _not_utf8(item)
            if bad is not None:
                return bad
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | np.ndarray):
            stack.extend(item)
        else:
            size += len(str(item))
        if size > max_chars:
            return BadRow("too long", f"over {max_chars:,} characters (data.max_row_chars)")
    return row


def read_rows(src: SplitSource, max_chars: int) -> list[tuple[int, Row]]:
    """(row number in the source, row or BadRow) after SplitSource.skip/limit.

    skip and limit count rows, bad ones included, so two splits carved from one file
    never share a row.
    """
    if src.source not in ("hf", "local"):
        raise ValueError(f"{describe(src)}: unknown source {src.source!r} (hf or local)")
    rows = _read_local(Path(src.path), max_chars) if src.source == "local" else _read_hf(src)
    end = src.skip + src.limit if src.limit else None
    kept = rows[src.skip : end]
    if not kept:
        raise ValueError(
            f"{describe(src)}: no rows to load ({len(rows)} in the source, "
            f"skip {src.skip}, limit {src.limit})"
        )
    return [(number, check_row(row, max_chars)) for number, row in kept]
