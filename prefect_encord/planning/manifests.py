"""Custom-metadata manifests: rows keyed by item, every value checked against the schema before any write.

A manifest is CSV, JSON, JSONL or Parquet, read by :mod:`.manifest_readers`; each record names one item (by
name, URL or UUID, in the column ``key_by`` names unless told otherwise) and gives metadata values in its other
columns. Every value is coerced to what Encord stores for its key's type (:mod:`.metadata_values`) or reported
as a :class:`RowError` naming the row and key. Empty CSV cells and JSON ``null`` mean "no value".

Encord validates item metadata against the schema and refuses a whole bulk update for one bad value,
so checking here is what lets the good rows of a manifest be written while the bad ones are reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from prefect_encord.planning.identity_keys import OWN_KEY_PREFIX
from prefect_encord.planning.manifest_readers import ManifestRow
from prefect_encord.planning.metadata_values import coerce_metadata, coerce_value, short
from prefect_encord.planning.schema import KeyType

KeyBy = Literal["name", "url", "uuid"]


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


# --- validating --------------------------------------------------------------------------------------------------


def parse_manifest(
    rows: Iterable[ManifestRow], types: Mapping[str, KeyType], key_by: KeyBy, allow_unknown_keys: bool = False
) -> Iterator[ManifestEntry | InvalidRow]:
    """Each row as a valid entry, or as every problem it has; an item named twice is refused the second time.

    ``types`` are the schema's key types (see :func:`~prefect_encord.planning.schema_diff.value_types`). A key the
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
        return None, f"item {key_by} {short(value)} is not text"
    return value, None


# --- planning writes ---------------------------------------------------------------------------------------------
