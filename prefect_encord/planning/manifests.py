"""Custom-metadata manifests: read rows keyed by item, and check every value against the schema before any write.

Pure apart from reading the file. A manifest is CSV, JSON, JSONL or Parquet; each record names one item
(by name, URL or UUID, in the column ``key_by`` names unless told otherwise) and gives metadata values
in its other columns. CSV, JSONL and Parquet are streamed (Parquet by record batch), so a manifest
larger than memory can be imported; a JSON document is read whole, as JSON cannot be split safely.

Every value is coerced to what Encord stores for its key's type (see :func:`coerce_value`) or reported
as a :class:`RowError` naming the row and key. Rows are numbered from 1 in the order of the file's
records: the CSV header and blank lines are not rows. Empty CSV cells and JSON ``null`` mean "no value".

Encord validates item metadata against the schema and refuses a whole bulk update for one bad value,
so checking here is what lets the good rows of a manifest be written while the bad ones are reported.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from prefect_encord.planning.identity import OWN_KEY_PREFIX
from prefect_encord.planning.schema import KeyType
from prefect_encord.planning.strict_parsing import DuplicateKey, loads_json
from prefect_encord.runtime.extras import require

if TYPE_CHECKING:
    import pyarrow.parquet as pq

ManifestFormat = Literal["csv", "json", "jsonl", "parquet"]
KeyBy = Literal["name", "url", "uuid"]
ImportMode = Literal["merge", "overwrite"]

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
#: Encord's cap on a ``varchar`` value.
VARCHAR_MAX_LENGTH = 8192
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
#: The types whose values Encord stores as JSON strings.
_TEXT_KINDS = ("varchar", "text", "datetime", "uuid", "enum")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read: unknown format, no key column, or not a JSON document."""


class RowError(BaseModel):
    """One problem with one row: its number, the item it names (if known), the metadata key (if one) and why."""

    model_config = ConfigDict(frozen=True)

    row: int
    item: str | None = None
    key: str | None = None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}"
        if self.item is not None:
            where += f" (item {self.item!r})"
        if self.key is not None:
            where += f", key {self.key!r}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ManifestRow:
    """A record as read: the raw item key and values, or why the record could not be read."""

    row: int
    item: Any
    values: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True)
class ManifestEntry:
    """A valid row: the item key (a canonical UUID when keyed by UUID) and its metadata, coerced for Encord."""

    row: int
    item: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class InvalidRow:
    row: int
    errors: tuple[RowError, ...]


# --- reading -----------------------------------------------------------------------------------------------------


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


# --- validating --------------------------------------------------------------------------------------------------


def parse_manifest(
    rows: Iterable[ManifestRow], types: Mapping[str, KeyType], key_by: KeyBy, allow_unknown_keys: bool = False
) -> Iterator[ManifestEntry | InvalidRow]:
    """Each row as a valid entry, or as every problem it has; an item named twice is refused the second time.

    ``types`` are the schema's key types (see :func:`~prefect_encord.planning.schema.value_types`). A key the
    schema does not define is most often a typo of one it does (``hd.wether``), which Encord would store as
    a new, unchecked key: it is refused unless ``allow_unknown_keys``, and then its values must be plain JSON.
    """
    seen: dict[str, int] = {}
    for row in rows:
        item, problem = _item_key(row, key_by)
        label = item if item is not None else (row.item if isinstance(row.item, str) and row.item else None)
        errors = [RowError(row=row.row, item=label, message=problem)] if problem else []
        if item is not None and item in seen:
            message = f"the item is also in row {seen[item]}; give each item once"
            errors.append(RowError(row=row.row, item=item, message=message))
        elif item is not None:
            seen[item] = row.row
        metadata, problems = coerce_metadata(row.values, types)
        errors.extend(RowError(row=row.row, item=label, key=key, message=why) for key, why in problems)
        errors.extend(RowError(row=row.row, item=label, key=key, message=_OWN_KEY_REFUSED)
                      for key in sorted(row.values) if key.startswith(OWN_KEY_PREFIX))  # fmt: skip
        if not allow_unknown_keys:
            unknown = sorted(k for k in row.values if k not in types and not k.startswith(OWN_KEY_PREFIX))
            errors.extend(RowError(row=row.row, item=label, key=key, message=_UNKNOWN_KEY_REFUSED) for key in unknown)
        if errors or item is None:
            yield InvalidRow(row.row, tuple(errors))
        else:
            yield ManifestEntry(row.row, item, metadata)


_OWN_KEY_REFUSED = (
    "is prefect-encord's own key (a file's content identity, which keeps re-runs from uploading it twice); "
    "a manifest cannot write it"
)


_UNKNOWN_KEY_REFUSED = (
    "is not in the metadata schema (a typo?): declare it in the schema, or allow unknown keys to write it unchecked"
)


def _item_key(row: ManifestRow, key_by: KeyBy) -> tuple[str | None, str | None]:
    """The row's item key, or why it has none usable."""
    if row.problem is not None:
        return None, row.problem
    value = row.item
    if value is None or value == "":
        return None, f"has no item {key_by}"
    if key_by == "uuid":
        try:
            return coerce_value(value, KeyType(kind="uuid")), None
        except ValueError as exc:
            return None, f"item uuid {exc}"
    if not isinstance(value, str):
        return None, f"item {key_by} {_short(value)} is not text"
    return value, None


def coerce_metadata(
    values: Mapping[str, Any], types: Mapping[str, KeyType]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The values coerced for Encord, and ``(key, problem)`` for each that cannot be."""
    metadata: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in values.items():
        try:
            key_type = types.get(key)
            metadata[key] = coerce_value(value, key_type) if key_type else _plain_json(value)
        except ValueError as exc:
            problems.append((key, str(exc)))
    return metadata, problems


def coerce_value(value: Any, key_type: KeyType) -> Any:
    """``value`` as Encord stores a value of ``key_type``, accepting the text forms a CSV cell has.

    number: int or float (text such as ``"3"`` or ``"2.5"``); boolean: a bool or ``true/false/yes/no/1/0``;
    varchar (≤ 8,192 characters) and text: a string; datetime: ISO 8601 text or a datetime, stored as UTC
    ISO 8601 (a time without zone is taken as UTC); uuid: canonical text; enum: one of the options, exactly;
    embedding: that many numbers (a list, or its JSON text); geospatial: ``{"latitude", "longitude"}`` in range
    (an object, or its JSON text).

    Raises:
        ValueError: Naming the value and what was expected (not the key; callers add it).
    """
    kind = key_type.kind
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
            return value.strip().lower() in _TRUE
        raise ValueError(f"{_short(value)} is not a boolean")
    if kind in ("varchar", "text"):
        if not isinstance(value, str):
            raise ValueError(f"{_short(value)} is not text")
        if kind == "varchar" and len(value) > VARCHAR_MAX_LENGTH:
            raise ValueError(f"is {len(value)} characters long; varchar holds at most {VARCHAR_MAX_LENGTH}")
        return value
    if kind == "datetime":
        return _datetime(value)
    if kind == "uuid":
        try:
            return str(value if isinstance(value, UUID) else UUID(str(value).strip()))
        except ValueError:
            raise ValueError(f"{_short(value)} is not a UUID") from None
    if kind == "enum":
        if isinstance(value, str) and value in key_type.values:
            return value
        raise ValueError(f"{_short(value)} is not one of the enum options {_short(list(key_type.values))}")
    if kind == "embedding":
        return _embedding(value, key_type.size)
    return _geospatial(value)


def _number(value: Any) -> int | float:
    """A number, from a number or its text (a CSV cell)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{_short(text)} is not a number") from None
    return _finite(float(value) if isinstance(value, Decimal) else value)


def _finite(value: Any) -> int | float:
    """A JSON number: not a bool, not text, not NaN or infinite. Embeddings and coordinates must be these."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{_short(value)} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def _datetime(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"{_short(text)} is not an ISO 8601 datetime") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{_short(value)} is not a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _embedding(value: Any, size: int | None) -> list[float]:
    value = _json_text(value, "a list of numbers")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{_short(value)} is not a list of numbers")
    if len(value) != size:
        raise ValueError(f"has {len(value)} numbers; the embedding has {size}")
    try:
        return [float(_finite(v)) for v in value]
    except ValueError:
        raise ValueError(f"{_short(value)} is not a list of finite numbers") from None


def _geospatial(value: Any) -> dict[str, float]:
    value = _json_text(value, "a {latitude, longitude} object")
    if not isinstance(value, Mapping) or set(value) != {"latitude", "longitude"}:
        raise ValueError(f"{_short(value)} is not a {{latitude, longitude}} object")
    try:
        latitude, longitude = float(_finite(value["latitude"])), float(_finite(value["longitude"]))
    except ValueError:
        raise ValueError(f"{_short(value)} has coordinates that are not numbers") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"{_short(value)} is out of range (latitude -90..90, longitude -180..180)")
    return {"latitude": latitude, "longitude": longitude}


def _json_text(value: Any, expected: str) -> Any:
    """A CSV cell holds a list or object as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{_short(value)} is not {expected} (in JSON)") from None


def _plain_json(value: Any) -> Any:
    """A value for a key the schema does not define: sent as it is, so it must be JSON already."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain_json(v) for k, v in value.items()}
    raise ValueError(
        f"{_short(value)} is not plain JSON, and the key is not in the schema to say what it should be; "
        "declare the key in the metadata schema"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- planning writes ---------------------------------------------------------------------------------------------


def new_metadata(current: Mapping[str, Any], given: Mapping[str, Any], mode: ImportMode) -> dict[str, Any]:
    """The item's complete metadata after the import.

    ``merge``: the item's keys the manifest does not give are kept. ``overwrite``: exactly the manifest's,
    and prefect-encord's own keys (:data:`~prefect_encord.planning.identity.OWN_KEY_PREFIX`).
    Either way the result is the *whole* metadata, so writing it is correct whether Encord's update merges or
    replaces.
    """
    if mode == "merge":
        return {**current, **given}
    # prefect-encord's own keys stay: without its content identity, the next ingest would upload the file again.
    return {**{k: v for k, v in current.items() if k.startswith(OWN_KEY_PREFIX)}, **given}


def existing_problems(
    current: Mapping[str, Any], given: Mapping[str, Any], types: Mapping[str, KeyType]
) -> list[tuple[str, str]]:
    """``(key, problem)`` for each of the item's values a merge would keep but Encord would now refuse.

    Merging sends the item's whole metadata back, and Encord refuses a bulk update for one bad value; a
    value written before the schema said otherwise must therefore be found before the write, not by it.
    """
    problems = []
    for key, value in current.items():
        key_type = types.get(key)
        if key not in given and key_type is not None and value is not None:
            problem = value_problem(value, key_type)
            if problem:
                problems.append((key, f"the item's existing value no longer fits the schema: {problem}"))
    return problems


def value_problem(value: Any, key_type: KeyType) -> str | None:
    """Why Encord would refuse ``value``, stored as it is, for a key of ``key_type``; None if it would not.

    Stricter than :func:`coerce_value`, which also accepts the text forms of a CSV cell.
    """
    if isinstance(value, str) and key_type.kind not in _TEXT_KINDS:
        return f"{_short(value)} is text, not a {key_type.kind} value"
    try:
        coerce_value(value, key_type)
    except ValueError as exc:
        return str(exc)
    return None


def differing_keys(expected: Mapping[str, Any], actual: Mapping[str, Any], types: Mapping[str, KeyType]) -> list[str]:
    """Keys whose values differ, comparing as Encord's types do: ``"2024-01-01T00:00:00Z"`` is UTC midnight and
    ``1`` equals ``1.0``, but ``True`` is not ``1`` and ``"1"`` is not ``1``."""
    return sorted(
        key
        for key in set(expected) | set(actual)
        if key not in expected or key not in actual or not _same_value(expected[key], actual[key], types.get(key))
    )


def _same_value(expected: Any, actual: Any, key_type: KeyType | None) -> bool:
    if key_type is not None and value_problem(expected, key_type) is None and value_problem(actual, key_type) is None:
        return _json_equal(coerce_value(expected, key_type), coerce_value(actual, key_type))
    return _json_equal(expected, actual)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)
