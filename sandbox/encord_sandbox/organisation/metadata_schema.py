"""The organisation's custom-metadata schema: its table, what a schema may say, and what values fit it.

The SDK validates keys client-side but never checks item metadata against the schema, so the
sandbox chooses to: a value of the wrong type, an unknown enum option, an embedding of the wrong
length or an unparseable datetime is a 400 naming the item, key and value. Keys absent from the
schema are accepted, as Encord accepts metadata without a schema.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from datetime import datetime
from typing import Any

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import InvalidArgument

_KEY = re.compile(r"^[A-Za-z0-9 _\-.]+$")
_SCALAR_HINTS = ("number", "varchar", "text", "boolean", "datetime", "uuid")
_TYPES = (
    "number",
    "boolean",
    "varchar",
    "datetime",
    "enum",
    "embedding",
    "geospatial",
    "text",
    "uuid",
    "variant",
)
_TYPES_ALL = (*_TYPES, "user", "tombstone")
LEGACY_TYPES = ("number", "string", "boolean", "datetime", "geospatial", "enum", "embedding", "long_string")


def check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"{where} key {key!r} must be a non-empty string")
    if key.startswith("$"):
        raise InvalidArgument(f"{where} key {key!r} must not start with '$'")
    if not _KEY.match(key):
        raise InvalidArgument(f"{where} key {key!r} may only use letters, digits, space, '-', '_' and '.'")
    if key == "keyframes":
        raise InvalidArgument(f"{where} key 'keyframes' is reserved")


def check_schema_v2(body: Any) -> dict[str, Any]:
    """Validate a complete v2 schema document (``{key: {"ty": ..., ...}}``) and return it."""
    if not isinstance(body, dict):
        raise InvalidArgument("the metadata schema must be a JSON object of key → type")
    for key, spec in body.items():
        check_key(key, "metadata schema")
        if not isinstance(spec, dict) or spec.get("ty") not in _TYPES_ALL:
            raise InvalidArgument(f"metadata schema key {key!r} has unknown type {spec!r}")
        ty = spec["ty"]
        if ty == "enum":
            values = spec.get("values")
            if (
                not isinstance(values, list)
                or not 1 <= len(values) <= 256
                or not all(isinstance(v, str) for v in values)
            ):
                raise InvalidArgument(f"enum {key!r} needs 1–256 string values, got {values!r}")
        elif ty == "embedding":
            size = spec.get("size")
            if not isinstance(size, int) or not 1 <= size <= 4096:
                raise InvalidArgument(f"embedding {key!r} size {size!r} must be 1–4096")
        elif ty == "variant" and spec.get("hint") not in _SCALAR_HINTS:
            raise InvalidArgument(f"metadata schema key {key!r} has unknown hint {spec.get('hint')!r}")
        elif ty == "varchar" and spec.get("max_length") is not None and not _valid_max_length(spec["max_length"]):
            raise InvalidArgument(f"varchar {key!r} max_length {spec['max_length']!r} must be 1–8192")
    return body


def _valid_max_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8192


def check_schema_legacy(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        raise InvalidArgument("the legacy metadata schema must be a JSON object of key → type name")
    for key, ty in body.items():
        check_key(key, "metadata schema")
        if ty not in LEGACY_TYPES:
            raise InvalidArgument(
                f"metadata schema key {key!r} has unknown type {ty!r}; expected one of {LEGACY_TYPES}"
            )
    return body


def check_values(schema: dict[str, Any] | None, metadata: dict[str, Any], where: str) -> None:
    """Refuse metadata whose values do not fit the schema; ``where`` names the item."""
    if not schema:
        return
    for key, value in metadata.items():
        spec = schema.get(key)
        if spec is None or value is None:
            continue
        problem = _value_problem(spec, value)
        if problem:
            raise InvalidArgument(f"{where}: metadata key {key!r} value {_short(value)} {problem}")


def _value_problem(spec: dict[str, Any], value: Any) -> str | None:
    ty = spec.get("hint") if spec.get("ty") == "variant" else spec.get("ty")
    if ty == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "is not a number"
    if ty == "boolean":
        return None if isinstance(value, bool) else "is not a boolean"
    if ty in ("varchar", "text"):
        if not isinstance(value, str):
            return "is not a string"
        limit = spec.get("max_length") or (8192 if ty == "varchar" else None)
        return f"is longer than {limit} characters" if limit and len(value) > limit else None
    if ty == "datetime":
        return None if isinstance(value, str) and _is_datetime(value) else "is not an ISO 8601 datetime"
    if ty == "uuid":
        return None if isinstance(value, str) and _is_uuid(value) else "is not a UUID"
    if ty == "enum":
        values = spec.get("values") or []
        return None if value in values else f"is not one of the enum values {values}"
    if ty == "embedding":
        size = spec.get("size")
        numbers = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        )
        if not numbers:
            return "is not a list of numbers"
        return None if len(value) == size else f"has {len(value)} dimensions; the schema says {size}"
    if ty == "geospatial":
        return _geospatial_problem(value)
    return None


def _geospatial_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or not {"latitude", "longitude"} <= set(value):
        return "is not a {latitude, longitude} object"
    lat, lon = value["latitude"], value["longitude"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        return "has non-numeric coordinates"
    return None if -90 <= lat <= 90 and -180 <= lon <= 180 else "has coordinates out of range"


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


DDL = """
CREATE TABLE IF NOT EXISTS metadata_schemas (
    kind TEXT PRIMARY KEY, uuid TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
"""


def stored(store: Database, kind: str) -> sqlite3.Row | None:
    return store.query_one("SELECT * FROM metadata_schemas WHERE kind = ?", (kind,))


def save(store: Database, kind: str, body: dict[str, Any]) -> None:
    stamp = now_iso()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO metadata_schemas VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            (kind, new_uuid(), json.dumps(body), stamp, stamp),
        )
