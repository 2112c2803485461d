"""Read custom-metadata manifests (CSV, JSON, JSONL, Parquet) as rows keyed by item. CSV, JSONL and Parquet are
streamed (Parquet by record batch), so a manifest larger than memory can be imported; a JSON document is read whole,
as JSON cannot be split safely. Rows are numbered from 1 in the order of the file's records: the CSV header and
blank lines are not rows.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prefect_encord.planning.strict_parsing import DuplicateKey, loads_json
from prefect_encord.runtime.extras import require

if TYPE_CHECKING:
    import pyarrow.parquet as pq

ManifestFormat = Literal["csv", "json", "jsonl", "parquet"]

_SUFFIXES: dict[str, ManifestFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Parquet rows decoded at a time: bounds memory whatever the file's row groups.
PARQUET_BATCH_ROWS = 10_000

#: Bytes decoded at a time when a text manifest is checked for UTF-8 before it is read.
_CHECK_CHUNK_BYTES = 1024 * 1024


class ManifestError(ValueError):
    """The manifest as a whole cannot be read: unknown format, no key column, or not a JSON document."""


@dataclass(frozen=True)
class ManifestRow:
    """A record as read: the raw item key and values, or why the record could not be read."""

    row: int
    item: Any
    values: dict[str, Any]
    problem: str | None = None


def manifest_format(path: str | Path, format: ManifestFormat | None = None) -> ManifestFormat:
    """``format`` if given, else the one the file's suffix names."""
    if format is not None:
        if format not in _SUFFIXES.values():
            raise ManifestError(f"unknown manifest format {format!r}; expected csv, json, jsonl or parquet")
        return format
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise ManifestError(f"{path}: cannot tell the manifest format from its suffix; pass format=")
    return found


def check_readable(path: str | Path, format: ManifestFormat | None = None) -> ManifestFormat:
    """The manifest's format, once the reader it needs is known to be installed (Parquet: the parquet extra).

    Raises:
        ManifestError: If the format is unknown.
        MissingExtraError: If reading it needs an extra that is not installed.
    """
    kind = manifest_format(path, format)
    if kind == "parquet":
        require("pyarrow.parquet", extra="parquet", purpose=f"Reading the Parquet manifest {path}")
    return kind


def read_manifest(path: str | Path, key_column: str, format: ManifestFormat | None = None) -> Iterator[ManifestRow]:
    """The records of a manifest, one at a time; ``key_column`` holds each record's item key.

    A JSON manifest is either a list of records or an object of item key → metadata object (then
    ``key_column`` is not used).

    Raises:
        ManifestError: At once (before any record is read) if a text manifest is not UTF-8, or a Parquet
            manifest cannot be opened: a bad byte in row 40,000 must not stop an import half-way.
    """
    path = Path(path)
    kind = check_readable(path, format)
    if kind == "parquet":
        return _read_parquet(_open_parquet(path), path, key_column)
    _check_utf8(path)
    readers = {"csv": _read_csv, "json": _read_json, "jsonl": _read_jsonl}
    return readers[kind](path, key_column)


def _check_utf8(path: Path) -> None:
    """Decode the whole file once (a chunk at a time, so memory stays flat), naming the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as file:
        while chunk := file.read(_CHECK_CHUNK_BYTES):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                start = max(exc.start - pending, 0)
                line = lines + chunk[:start].count(b"\n")
                raise ManifestError(
                    f"{path} is not UTF-8 text: line {line}, byte {offset + start} is {chunk[start : start + 1]!r} "
                    f"({exc.reason}); save the manifest as UTF-8"
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not UTF-8 text: it ends inside a character; save it as UTF-8") from None


def _read_csv(path: Path, key_column: str) -> Iterator[ManifestRow]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]
        _check_columns(path, header, key_column)
        number = 0
        for cells in reader:
            if not cells:
                continue
            number += 1
            if len(cells) > len(header):
                yield ManifestRow(number, None, {}, f"has {len(cells)} cells but the header has {len(header)}")
                continue
            values = {name: cell for name, cell in zip(header, cells, strict=False) if cell != ""}
            yield ManifestRow(number, values.pop(key_column, None), values)


def _check_columns(path: Path, columns: list[str], key_column: str) -> None:
    if key_column not in columns:
        raise ManifestError(f"{path} has no {key_column!r} column to find items by; its columns are {columns}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ManifestError(f"{path} has the column {repeated[0]!r} more than once")


def _read_jsonl(path: Path, key_column: str) -> Iterator[ManifestRow]:
    with path.open(encoding="utf-8-sig") as file:
        number = 0
        for line in file:
            if not line.strip():
                continue
            number += 1
            try:
                record = loads_json(line)
            except json.JSONDecodeError as exc:
                yield ManifestRow(number, None, {}, f"is not valid JSON: {exc.msg}")
                continue
            except DuplicateKey as exc:
                yield ManifestRow(number, None, {}, str(exc))
                continue
            yield _record_row(number, record, key_column)


def _read_json(path: Path, key_column: str) -> Iterator[ManifestRow]:
    try:
        document = loads_json(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, DuplicateKey) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(document, list):
        for number, record in enumerate(document, 1):
            yield _record_row(number, record, key_column)
    elif isinstance(document, dict):
        for number, (item, metadata) in enumerate(document.items(), 1):
            if isinstance(metadata, dict):
                yield ManifestRow(number, item, _present(metadata))
            else:
                yield ManifestRow(number, item, {}, "must map the item to a JSON object of metadata")
    else:
        raise ManifestError(f"{path} must hold a JSON list of records or an object of item → metadata")


def _record_row(number: int, record: Any, key_column: str) -> ManifestRow:
    if not isinstance(record, dict):
        return ManifestRow(number, None, {}, "is not a JSON object")
    values = _present(record)
    return ManifestRow(number, values.pop(key_column, None), values)


def _open_parquet(path: Path) -> pq.ParquetFile:
    """Open a Parquet manifest with pyarrow (installed by the ``parquet`` extra: see :func:`check_readable`)."""
    import pyarrow
    import pyarrow.parquet as parquet

    try:
        return parquet.ParquetFile(path)
    except FileNotFoundError:
        raise
    except (pyarrow.ArrowException, OSError) as exc:
        raise ManifestError(f"{path} is not a readable Parquet file: {exc}") from None


def _read_parquet(parquet: pq.ParquetFile, path: Path, key_column: str) -> Iterator[ManifestRow]:
    _check_columns(path, list(parquet.schema_arrow.names), key_column)
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for record in batch.to_pylist():
            number += 1
            values = _present(record)
            yield ManifestRow(number, values.pop(key_column, None), values)


def _present(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}
