"""Custom-metadata values against the schema (pure): coerce each value to what Encord stores for its key's type or say
why not, merge or overwrite an item's metadata, and compare what was written with what Encord holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from prefect_encord.planning.identity_keys import OWN_KEY_PREFIX
from prefect_encord.planning.schema import KeyType

ImportMode = Literal["merge", "overwrite"]

#: Encord's cap on a ``varchar`` value.
VARCHAR_MAX_LENGTH = 8192

#: The types whose values Encord stores as JSON strings.
_TEXT_KINDS = ("varchar", "text", "datetime", "uuid", "enum")
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


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
        raise ValueError(f"{short(value)} is not a boolean")
    if kind in ("varchar", "text"):
        if not isinstance(value, str):
            raise ValueError(f"{short(value)} is not text")
        if kind == "varchar" and len(value) > VARCHAR_MAX_LENGTH:
            raise ValueError(f"is {len(value)} characters long; varchar holds at most {VARCHAR_MAX_LENGTH}")
        return value
    if kind == "datetime":
        return _datetime(value)
    if kind == "uuid":
        try:
            return str(value if isinstance(value, UUID) else UUID(str(value).strip()))
        except ValueError:
            raise ValueError(f"{short(value)} is not a UUID") from None
    if kind == "enum":
        if isinstance(value, str) and value in key_type.values:
            return value
        raise ValueError(f"{short(value)} is not one of the enum options {short(list(key_type.values))}")
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
                raise ValueError(f"{short(text)} is not a number") from None
    return _finite(float(value) if isinstance(value, Decimal) else value)


def _finite(value: Any) -> int | float:
    """A JSON number: not a bool, not text, not NaN or infinite. Embeddings and coordinates must be these."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{short(value)} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def _datetime(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"{short(text)} is not an ISO 8601 datetime") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{short(value)} is not a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _embedding(value: Any, size: int | None) -> list[float]:
    value = _json_text(value, "a list of numbers")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{short(value)} is not a list of numbers")
    if len(value) != size:
        raise ValueError(f"has {len(value)} numbers; the embedding has {size}")
    try:
        return [float(_finite(v)) for v in value]
    except ValueError:
        raise ValueError(f"{short(value)} is not a list of finite numbers") from None


def _geospatial(value: Any) -> dict[str, float]:
    value = _json_text(value, "a {latitude, longitude} object")
    if not isinstance(value, Mapping) or set(value) != {"latitude", "longitude"}:
        raise ValueError(f"{short(value)} is not a {{latitude, longitude}} object")
    try:
        latitude, longitude = float(_finite(value["latitude"])), float(_finite(value["longitude"]))
    except ValueError:
        raise ValueError(f"{short(value)} has coordinates that are not numbers") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"{short(value)} is out of range (latitude -90..90, longitude -180..180)")
    return {"latitude": latitude, "longitude": longitude}


def _json_text(value: Any, expected: str) -> Any:
    """A CSV cell holds a list or object as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{short(value)} is not {expected} (in JSON)") from None


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
        f"{short(value)} is not plain JSON, and the key is not in the schema to say what it should be; "
        "declare the key in the metadata schema"
    )


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def new_metadata(current: Mapping[str, Any], given: Mapping[str, Any], mode: ImportMode) -> dict[str, Any]:
    """The item's complete metadata after the import.

    ``merge``: the item's keys the manifest does not give are kept. ``overwrite``: exactly the manifest's,
    and prefect-encord's own keys (:data:`~prefect_encord.planning.identity_keys.OWN_KEY_PREFIX`).
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
        return f"{short(value)} is text, not a {key_type.kind} value"
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
