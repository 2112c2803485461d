"""Metadata manifests (pure apart from reading files): the four formats, and every value checked against the schema."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_encord.planning import manifest_readers
from prefect_encord.planning.identity_keys import IDENTITY_KEY
from prefect_encord.planning.manifest_readers import ManifestError, ManifestRow, read_manifest
from prefect_encord.planning.manifests import InvalidRow, ManifestEntry, RowError, parse_manifest
from prefect_encord.planning.metadata_values import (
    coerce_value,
    differing_keys,
    existing_problems,
    new_metadata,
    value_problem,
)
from prefect_encord.planning.schema import KeyType, embedding_type, enum_type

TYPES = {
    "flag": KeyType(kind="boolean"),
    "camera": KeyType(kind="varchar"),
    "notes": KeyType(kind="text"),
    "count": KeyType(kind="number"),
    "taken": KeyType(kind="datetime"),
    "session": KeyType(kind="uuid"),
    "weather": enum_type(["rain", "sunny"]),
    "clip": embedding_type(3),
    "where": KeyType(kind="geospatial"),
}
SESSION = "6f1c1d7e-0000-4000-8000-000000000001"
#: What each format's two records become, once coerced.
EXPECTED = [
    ManifestEntry(
        1,
        "a.png",
        {
            "flag": True,
            "camera": "front",
            "count": 3,
            "taken": "2024-05-01T08:00:00+00:00",
            "session": SESSION,
            "weather": "rain",
            "clip": [0.5, 1.0, -2.0],
            "where": {"latitude": 51.5, "longitude": -0.1},
            "extra": "free",
        },
    ),
    ManifestEntry(2, "b.png", {"count": 2.5, "notes": "long, with a comma"}),
]


def write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as file:  # with a BOM, as spreadsheets save
        writer = csv.writer(file)
        writer.writerow(
            ["name", "flag", "camera", "count", "taken", "session", "weather", "clip", "where", "extra", "notes"]
        )
        writer.writerow(
            ["a.png", "TRUE", "front", "3", "2024-05-01T10:00:00+02:00", SESSION.upper(), "rain", "[0.5, 1, -2]",
             '{"latitude": 51.5, "longitude": -0.1}', "free", ""]
        )  # fmt: skip
        writer.writerow([])  # a blank line is not a row
        writer.writerow(["b.png", "", "", "2.5", "", "", "", "", "", "", "long, with a comma"])
    return path


RECORDS: list[dict[str, Any]] = [
    {
        "name": "a.png",
        "flag": True,
        "camera": "front",
        "count": 3,
        "taken": "2024-05-01T08:00:00Z",
        "session": SESSION,
        "weather": "rain",
        "clip": [0.5, 1, -2],
        "where": {"latitude": 51.5, "longitude": -0.1},
        "extra": "free",
        "notes": None,
    },
    {"name": "b.png", "count": 2.5, "notes": "long, with a comma"},
]


def write_json(path: Path) -> Path:
    path.write_text(json.dumps(RECORDS))
    return path


def write_jsonl(path: Path) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in RECORDS[:1]) + "\n\n" + json.dumps(RECORDS[1]) + "\n")
    return path


def write_parquet(path: Path) -> Path:
    table = pa.table(
        {
            "name": ["a.png", "b.png"],
            "flag": [True, None],
            "camera": ["front", None],
            "count": [3.0, 2.5],
            "taken": pa.array([datetime(2024, 5, 1, 8, tzinfo=timezone.utc), None], pa.timestamp("us", tz="UTC")),
            "session": [SESSION, None],
            "weather": ["rain", None],
            "clip": [[0.5, 1.0, -2.0], None],
            "where": [{"latitude": 51.5, "longitude": -0.1}, None],
            "extra": ["free", None],
            "notes": [None, "long, with a comma"],
        }
    )
    pq.write_table(table, path)
    return path


WRITERS = {"csv": write_csv, "json": write_json, "jsonl": write_jsonl, "parquet": write_parquet}


def parse(path: Path, key_by: Any = "name", **kwargs: Any) -> list[ManifestEntry | InvalidRow]:
    rows = read_manifest(path, kwargs.pop("key_column", key_by), **kwargs)
    return list(parse_manifest(rows, TYPES, key_by, allow_unknown_keys=True))  # 'extra' is outside the schema


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_format_reads_to_the_same_entries(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](tmp_path / f"manifest.{fmt}")
    assert parse(path) == EXPECTED


def test_the_format_can_be_given_and_must_be_known(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "manifest.txt")
    assert parse(path, format="jsonl") == EXPECTED
    with pytest.raises(ManifestError, match="cannot tell the manifest format"):
        read_manifest(path, "name")
    with pytest.raises(ManifestError, match="unknown manifest format 'xlsx'"):
        read_manifest(path, "name", format="xlsx")  # type: ignore[arg-type]


def test_a_json_object_maps_items_to_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"a.png": {"count": 1, "notes": None}, "b.png": ["not", "an", "object"]}))
    assert parse(path) == [
        ManifestEntry(1, "a.png", {"count": 1}),
        InvalidRow(2, (RowError(row=2, item="b.png", message="must map the item to a JSON object of metadata"),)),
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.csv", "file,count\na,1\n", "has no 'name' column to find items by; its columns are ['file', 'count']"),
        ("m.csv", "name,count,count\n", "has the column 'count' more than once"),
        ("m.csv", "", "has no 'name' column"),
        ("m.json", "[{", "is not valid JSON"),
        ("m.json", '"text"', "must hold a JSON list of records"),
    ],
)
def test_unreadable_manifests(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=re.escape(message)):
        parse(tmp_path / name)


def test_a_parquet_manifest_needs_the_key_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"file": ["a"]}), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="has no 'name' column"):
        parse(tmp_path / "m.parquet")


def test_a_key_column_other_than_key_by(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file , count\na.png,1\n")  # header names are trimmed
    assert parse(tmp_path / "m.csv", key_by="name", key_column="file") == [ManifestEntry(1, "a.png", {"count": 1})]


def test_parquet_streams_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(pa.table({"uuid": [str(UUID(int=i)) for i in range(25)], "count": list(range(25))}),
                   tmp_path / "m.parquet", row_group_size=10)  # fmt: skip
    monkeypatch.setattr(manifest_readers, "PARQUET_BATCH_ROWS", 4)
    batches: list[int] = []
    iter_batches = pq.ParquetFile.iter_batches

    def counting(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        for batch in iter_batches(self, *args, **kwargs):
            batches.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    rows = read_manifest(tmp_path / "m.parquet", "uuid")
    first = next(rows)
    assert first == ManifestRow(1, str(UUID(int=0)), {"count": 0}) and batches == [4], "only the first batch is read"
    entries = [first, *rows]
    assert len(entries) == 25 and max(batches) <= 4
    assert [e.row for e in entries] == list(range(1, 26))


def test_csv_and_jsonl_are_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"name": "a"}\n' + "not json\n" * 3)
    rows = read_manifest(path, "name")
    assert next(rows) == ManifestRow(1, "a", {})  # the bad lines after it are not read yet


# --- rows with problems --------------------------------------------------------------------------------------------


def test_malformed_records_are_row_errors(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"name": "a"}\n{"name": \n[1, 2]\n{"count": 1}\n{"name": 7}\n{"name": ""}\n')
    (tmp_path / "m.csv").write_text("name,count\na,1,extra\n")
    assert [str(e) for row in parse(tmp_path / "m.jsonl")[1:] for e in row.errors] == [  # type: ignore[union-attr]
        "row 2: is not valid JSON: Expecting value",
        "row 3: is not a JSON object",
        "row 4: has no item name",
        "row 5: item name 7 is not text",
        "row 6: has no item name",
    ]
    assert [str(e) for e in parse(tmp_path / "m.csv")[0].errors] == [  # type: ignore[union-attr]
        "row 1: has 3 cells but the header has 2"
    ]


def value_errors(values: dict[str, Any]) -> list[str]:
    (row,) = parse_manifest([ManifestRow(4, "x.png", values)], TYPES, "name", allow_unknown_keys=True)
    assert isinstance(row, InvalidRow)
    return [str(e) for e in row.errors]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("flag", "maybe", "'maybe' is not a boolean"),
        ("flag", 1, "1 is not a boolean"),
        ("camera", 12, "12 is not text"),
        ("camera", "x" * 8193, "is 8193 characters long; varchar holds at most 8192"),
        ("notes", ["a"], "['a'] is not text"),
        ("count", "three", "'three' is not a number"),
        ("count", True, "True is not a number"),
        ("count", "nan", "nan is not a finite number"),
        ("count", [1], "[1] is not a number"),
        ("taken", "yesterday", "'yesterday' is not an ISO 8601 datetime"),
        ("taken", 1714550400, "1714550400 is not a datetime"),
        ("session", "not-a-uuid", "'not-a-uuid' is not a UUID"),
        ("weather", "hail", "'hail' is not one of the enum options ['rain', 'sunny']"),
        ("weather", "Rain", "'Rain' is not one of the enum options"),
        ("clip", [1, 2], "has 2 numbers; the embedding has 3"),
        ("clip", "[1, 2", "'[1, 2' is not a list of numbers (in JSON)"),
        ("clip", [1, "a", 3], "[1, 'a', 3] is not a list of finite numbers"),
        ("clip", 5, "5 is not a list of numbers"),
        ("clip", ["1", "2", "3"], "is not a list of finite numbers"),  # numbers inside JSON text, not text inside
        ("where", {"latitude": "1", "longitude": 2}, "has coordinates that are not numbers"),
        ("where", {"latitude": 91, "longitude": 0}, "is out of range (latitude -90..90, longitude -180..180)"),
        ("where", {"lat": 1, "lon": 2}, "is not a {latitude, longitude} object"),
        ("where", {"latitude": "n", "longitude": 2}, "has coordinates that are not numbers"),
        ("where", "51.5,-0.1", "'51.5,-0.1' is not a {latitude, longitude} object (in JSON)"),
        ("unknown", datetime(2024, 1, 1), "is not plain JSON, and the key is not in the schema"),
        ("unknown", float("inf"), "is not plain JSON"),
    ],
)
def test_every_value_error_names_row_item_and_key(key: str, value: Any, message: str) -> None:
    (error,) = value_errors({key: value})
    assert error.startswith(f"row 4 (item 'x.png'), key '{key}': ") and message in error


def test_all_of_a_rows_problems_are_reported_together() -> None:
    assert value_errors({"count": "x", "weather": "hail", "camera": "ok"}) == [
        "row 4 (item 'x.png'), key 'count': 'x' is not a number",
        "row 4 (item 'x.png'), key 'weather': 'hail' is not one of the enum options ['rain', 'sunny']",
    ]


def test_an_item_named_twice_is_refused_the_second_time() -> None:
    rows = [ManifestRow(1, "a", {}), ManifestRow(2, "b", {}), ManifestRow(3, "a", {"count": 1})]
    parsed = list(parse_manifest(rows, TYPES, "name"))
    assert parsed[:2] == [ManifestEntry(1, "a", {}), ManifestEntry(2, "b", {})]
    duplicate = RowError(row=3, item="a", message="the item is also in row 1; give each item once")
    assert parsed[2] == InvalidRow(3, (duplicate,))


def test_uuid_keys_are_canonical_so_spellings_of_one_uuid_are_one_item() -> None:
    rows = [ManifestRow(1, SESSION.upper(), {}), ManifestRow(2, f"{{{SESSION}}}", {}), ManifestRow(3, "nope", {})]
    parsed = list(parse_manifest(rows, TYPES, "uuid"))
    assert parsed[0] == ManifestEntry(1, SESSION, {})
    assert isinstance(parsed[1], InvalidRow) and "also in row 1" in parsed[1].errors[0].message
    assert parsed[2] == InvalidRow(3, (RowError(row=3, item="nope", message="item uuid 'nope' is not a UUID"),))


# --- coercion and comparison ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "coerced"),
    [
        ("boolean", " No ", False),
        ("boolean", "1", True),
        ("number", "-4", -4),
        ("number", "1e3", 1000.0),
        ("number", Decimal("2.50"), 2.5),
        ("datetime", "2024-05-01", "2024-05-01T00:00:00+00:00"),
        ("datetime", "2024-05-01T10:00:00.250z", "2024-05-01T10:00:00.250000+00:00"),
        ("datetime", datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=-5))), "2024-05-01T15:00:00+00:00"),
        ("uuid", UUID(SESSION), SESSION),
        ("text", "", ""),
    ],
)
def test_coercions(kind: Any, value: Any, coerced: Any) -> None:
    assert coerce_value(value, KeyType(kind=kind)) == coerced


def test_merge_keeps_other_keys_and_overwrite_replaces_them() -> None:
    current = {"a": 1, "b": 2}
    assert new_metadata(current, {"b": 3, "c": 4}, "merge") == {"a": 1, "b": 3, "c": 4}
    assert new_metadata(current, {"b": 3, "c": 4}, "overwrite") == {"b": 3, "c": 4}
    assert new_metadata(current, {}, "overwrite") == {}


def test_a_key_outside_the_schema_is_refused_per_row_unless_allowed() -> None:
    rows = [ManifestRow(1, "a.png", {"count": "3", "cuont": "4"})]
    (refused,) = parse_manifest(rows, TYPES, "name")
    assert isinstance(refused, InvalidRow) and [(e.key, e.message[:31]) for e in refused.errors] == [
        ("cuont", "is not in the metadata schema (")
    ]
    (allowed,) = parse_manifest(rows, TYPES, "name", allow_unknown_keys=True)
    assert isinstance(allowed, ManifestEntry) and allowed.metadata == {"count": 3, "cuont": "4"}


def test_overwrite_keeps_the_content_identity_so_a_re_run_does_not_upload_the_file_again() -> None:
    current = {"a": 1, IDENTITY_KEY: "9f86d08"}
    assert new_metadata(current, {"b": 3}, "overwrite") == {IDENTITY_KEY: "9f86d08", "b": 3}


def test_a_manifest_cannot_write_prefect_encords_own_keys() -> None:
    rows = [ManifestRow(1, "a.png", {IDENTITY_KEY: "forged", "b": "x"})]
    (invalid,) = parse_manifest(rows, {}, "name", allow_unknown_keys=True)
    assert isinstance(invalid, InvalidRow)
    (error,) = invalid.errors
    assert error.key == IDENTITY_KEY and error.message.startswith("is prefect-encord's own key")


def test_differences_are_judged_by_type() -> None:
    assert differing_keys({"taken": "2024-05-01T08:00:00+00:00"}, {"taken": "2024-05-01T10:00:00+02:00"}, TYPES) == []
    assert differing_keys({"count": 1}, {"count": 1.0}, TYPES) == []
    assert differing_keys({"flag": True, "count": 1}, {"flag": "true", "count": True}, TYPES) == ["count", "flag"]
    assert differing_keys({"x": [1, {"y": True}]}, {"x": [1, {"y": 1}]}, TYPES) == ["x"]
    assert differing_keys({"a": 1}, {"b": 1}, TYPES) == ["a", "b"]
    assert differing_keys({"clip": [1, 2, 3], "x": None}, {"clip": [1.0, 2.0, 3.0], "x": None}, TYPES) == []


def test_values_a_merge_would_keep_must_still_fit_the_schema() -> None:
    current = {"flag": "yes", "count": 3, "weather": "hail", "unknown": object(), "camera": None}
    assert existing_problems(current, {"weather": "rain"}, TYPES) == [
        ("flag", "the item's existing value no longer fits the schema: 'yes' is text, not a boolean value")
    ]
    assert value_problem("2024-05-01T00:00:00Z", TYPES["taken"]) is None
    assert value_problem(3, TYPES["count"]) is None
