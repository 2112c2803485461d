"""Metadata schema as code (pure): type mapping, key rules, declarations from files, and the diff's rules."""

from __future__ import annotations

import enum
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union
from uuid import UUID

import pytest
from annotated_types import Len
from pydantic import BaseModel, Field, conlist

from prefect_encord.planning.schema import (
    DesiredSchema,
    Embedding,
    GeoPoint,
    KeyType,
    LongText,
    SchemaDeclarationError,
    check_key,
    embedding_type,
    enum_type,
)
from prefect_encord.planning.schema_diff import (
    ExistingKey,
    SchemaChangeRefused,
    SchemaDiff,
    diff_schema,
    parse_encord_schema,
    value_types,
)
from prefect_encord.planning.schema_sources import declare_schema, schema_from_mapping, schema_from_model

VARCHAR, NUMBER, TEXT = KeyType(kind="varchar"), KeyType(kind="number"), KeyType(kind="text")


class Weather(str, enum.Enum):
    RAIN = "rain"
    SUN = "sunny"


class Position(BaseModel):
    longitude: float
    latitude: float


class Capture(BaseModel):
    flagged: bool
    camera: str
    notes: Annotated[str, LongText]
    count: int
    exposure: float
    taken_at: datetime
    session: UUID
    weather: Weather
    light: Literal["day", "night"]
    clip: Annotated[list[float], Embedding(512)]
    small: conlist(float, min_length=3, max_length=3)  # type: ignore[valid-type]
    tiny: list[float] = Field(min_length=2, max_length=2)
    where: GeoPoint
    origin: Optional[Position] = None  # noqa: UP045 - the old spelling must be understood too
    video_fps: float | None = Field(default=None, alias="video.fps")
    summary: Optional[Annotated[str, LongText]] = None  # noqa: UP045


def test_every_python_type_maps_deliberately() -> None:
    declared = schema_from_model(Capture)
    assert {key: str(key_type) for key, key_type in declared.keys.items()} == {
        "flagged": "boolean",
        "camera": "varchar",
        "notes": "text",
        "count": "number",
        "exposure": "number",
        "taken_at": "datetime",
        "session": "uuid",
        "weather": "enum(rain, sunny)",
        "light": "enum(day, night)",
        "clip": "embedding(512)",
        "small": "embedding(3)",
        "tiny": "embedding(2)",
        "where": "geospatial",
        "origin": "geospatial",
        "video.fps": "number",
        "summary": "text",
    }
    assert declared.removed == ()


class Nested(BaseModel):
    latitude: float
    longitude: float
    altitude: float


class IntWeather(enum.Enum):
    RAIN = 1


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (date, "date has no Encord metadata type"),
        (Nested, "fields are exactly latitude and longitude"),
        (Union[int, str], "is a union"),  # noqa: UP007
        (list[float], "only with a fixed length"),
        (list[str], "is a list of floats"),
        (Annotated[int, LongText], "LongText marks a str"),
        (Annotated[list[float], Embedding(8), Len(4, 4)], "contradicts"),
        (Annotated[list[float], Embedding(5000)], "size from 1 to 4096"),
        (Literal[1, 2], "options must be strings"),
        (IntWeather, "must have string values"),
        (tuple[float, float], "is a list of floats"),
        (dict[str, Any], "has no Encord metadata type"),
    ],
)
def test_unmappable_fields_are_refused_naming_the_key(annotation: Any, message: str) -> None:
    model = type("Bad", (BaseModel,), {"__annotations__": {"odd_key": annotation}})
    with pytest.raises(SchemaDeclarationError, match="'odd_key'") as error:
        schema_from_model(model)
    assert message in str(error.value)


def test_a_fixed_length_tuple_of_floats_is_an_embedding_only_with_ellipsis() -> None:
    model = type("T", (BaseModel,), {"__annotations__": {"v": Annotated[tuple[float, ...], Embedding(4)]}})
    assert schema_from_model(model).keys == {"v": embedding_type(4)}


# --- keys ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["camera", "video.description", "Team Name_key-2", "0", "keyframes2"])
def test_valid_keys(key: str) -> None:
    check_key(key)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "non-empty"),
        ("$camera", "must not start with '$'"),
        ("cam/era", "may only use letters"),
        ("caméra", "may only use letters"),
        ("cam:era", "may only use letters"),
        ("keyframes", "reserved"),
        ("key-frames", "reserved"),
        ("-._ ", "at least one letter or digit"),
    ],
)
def test_invalid_keys_are_refused_by_name(key: str, message: str) -> None:
    with pytest.raises(SchemaDeclarationError, match=re.escape(message)) as error:
        check_key(key)
    assert repr(key) in str(error.value)


def test_a_model_field_with_a_bad_alias_is_refused() -> None:
    class Bad(BaseModel):
        x: int = Field(alias="$x")

    with pytest.raises(SchemaDeclarationError, match=r"'\$x'"):
        schema_from_model(Bad)


# --- mappings and files --------------------------------------------------------------------------------------------

MAPPING = {
    "camera": "string",
    "notes": "long_string",
    "count": {"type": "number"},
    "weather": {"type": "enum", "values": ["sunny", "rain", "sunny"]},
    "clip": {"type": "embedding", "size": 512},
    "where": "geospatial",
    "old camera": "removed",
}
EXPECTED = DesiredSchema(
    keys={
        "camera": VARCHAR,
        "notes": TEXT,
        "count": NUMBER,
        "weather": enum_type(["rain", "sunny"]),
        "clip": embedding_type(512),
        "where": KeyType(kind="geospatial"),
    },
    removed=("old camera",),
)


def test_a_mapping_declares_types_aliases_and_removals() -> None:
    assert schema_from_mapping(MAPPING) == EXPECTED


def test_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(MAPPING))
    (tmp_path / "schema.yaml").write_text(
        "camera: string\nnotes: long_string\ncount: {type: number}\n"
        "weather: {type: enum, values: [sunny, rain]}\nclip:\n  type: embedding\n  size: 512\n"
        "where: geospatial\nold camera: removed\n"
    )
    assert declare_schema(tmp_path / "schema.json") == EXPECTED
    assert declare_schema(str(tmp_path / "schema.yaml")) == EXPECTED


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("schema.toml", "a = 1", "must end in .json, .yaml or .yml"),
        ("schema.json", "{", "not valid JSON"),
        ("schema.yml", "a: [", "not valid YML"),
        ("schema.yaml", "- camera", "must hold a mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(SchemaDeclarationError, match=message):
        declare_schema(tmp_path / name)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("colour", "unknown type 'colour'"),
        (None, "expected a type name"),
        ({"type": "enum"}, "enum needs 1–255 options, got 0"),
        ({"type": "enum", "values": "rain"}, "must be a list of strings"),
        ({"type": "enum", "values": [1, 2]}, "must be a list of strings"),
        ({"type": "enum", "values": [f"v{i}" for i in range(256)]}, "got 256"),
        ({"type": "embedding"}, "needs an integer size"),
        ({"type": "embedding", "size": 0}, "size from 1 to 4096"),
        ({"type": "varchar", "size": 3}, "unexpected fields ['size']"),
    ],
)
def test_bad_mapping_types_name_the_key(spec: Any, message: str) -> None:
    with pytest.raises(SchemaDeclarationError, match="'k'") as error:
        schema_from_mapping({"k": spec})
    assert message in str(error.value)


def test_declare_schema_adds_removals_and_checks_every_key() -> None:
    declared = declare_schema({"a": "number"}, removed=["b", "b"])
    assert declared == DesiredSchema(keys={"a": NUMBER}, removed=("b",))
    with pytest.raises(SchemaDeclarationError, match="'a' is both declared and removed"):
        declare_schema({"a": "number"}, removed=["a"])
    with pytest.raises(SchemaDeclarationError, match="'keyframes'"):
        declare_schema(DesiredSchema(keys={"keyframes": NUMBER}))
    with pytest.raises(TypeError, match="int"):
        declare_schema(3)  # type: ignore[arg-type]


# --- the organisation's schema -------------------------------------------------------------------------------------

#: As the SDK renders what Encord stores (as probed against Encord, plus deletions and strict types).
STORED = {
    "camera": {"ty": "variant", "hint": "varchar"},
    "count": {"ty": "variant", "hint": "number"},
    "strict": {"ty": "number", "format": "F64"},
    "weather": {"ty": "enum", "values": ["rain", "sunny"]},
    "clip": {"ty": "embedding", "size": 512, "api": None},
    "where": {"ty": "geospatial"},
    "owner": {"ty": "user"},
    "gone": {"ty": "tombstone", "deleted_ty": {"ty": "variant", "hint": "text"}},
    "gone enum": {"ty": "tombstone", "deleted_ty": {"ty": "enum", "values": ["a"]}},
    "hard": {"ty": "tombstone", "deleted_ty": None},
}
EXISTING = parse_encord_schema(STORED)


def test_the_stored_schema_is_parsed() -> None:
    assert EXISTING["camera"] == ExistingKey(type=VARCHAR, encord_type="variant", retypable=True)
    assert EXISTING["strict"] == ExistingKey(type=NUMBER, encord_type="number")
    assert EXISTING["gone"] == ExistingKey(type=TEXT, encord_type="variant", deleted=True, retypable=True)
    assert EXISTING["hard"] == ExistingKey(type=None, encord_type="tombstone", deleted=True)
    assert [str(EXISTING[k]) for k in ("weather", "clip", "owner", "gone", "hard")] == [
        "enum(rain, sunny)",
        "embedding(512)",
        "user",
        "deleted text",
        "hard-deleted",
    ]
    assert parse_encord_schema(None) == {}
    assert set(value_types(EXISTING)) == {"camera", "count", "strict", "weather", "clip", "where"}


# --- the diff ------------------------------------------------------------------------------------------------------


def diff(declaration: dict[str, Any], **flags: bool) -> SchemaDiff:
    return diff_schema(EXISTING, declare_schema(declaration), **flags)


def test_matching_declarations_are_unchanged_and_other_keys_unmanaged() -> None:
    result = diff({"camera": "varchar", "weather": {"type": "enum", "values": ["rain"]}, "where": "geospatial"})
    assert not result.has_changes and result.refused == []
    assert result.unchanged == ["camera", "weather", "where"]  # fewer enum options: the others are kept
    assert result.unmanaged == ["clip", "count", "owner", "strict"]
    assert str(result) == "no changes"


def test_additions_options_and_restorations() -> None:
    result = diff(
        {
            "new": "uuid",
            "weather": {"type": "enum", "values": ["fog", "rain", "hail"]},
            "gone": "text",
            "gone enum": {"type": "enum", "values": ["a", "b"]},
        }
    )
    assert result.added == {"new": KeyType(kind="uuid")}
    assert result.enum_options_added == {"weather": ("fog", "hail"), "gone enum": ("b",)}
    assert result.restored == {"gone": TEXT, "gone enum": enum_type(["a", "b"])}
    assert result.refused == [] and result.has_changes
    assert str(result).splitlines() == [
        "+ new: uuid",
        "+ gone: text (restored)",
        "+ gone enum: enum(a, b) (restored)",
        "+ weather: options fog, hail",
        "+ gone enum: options b",
    ]


def test_a_type_change_is_refused_unless_allowed() -> None:
    refused = diff({"camera": "number"})
    assert refused.type_changes["camera"].current == VARCHAR and refused.type_changes["camera"].desired == NUMBER
    (refusal,) = refused.refused
    assert str(refusal) == (
        "metadata key 'camera' is varchar in Encord but declared number: "
        "pass allow_type_changes=True to change its type"
    )
    error = SchemaChangeRefused(refused.refused)
    assert "'camera'" in str(error) and "varchar" in str(error) and "number" in str(error)

    allowed = diff({"camera": "number", "gone": "boolean"}, allow_type_changes=True)
    assert set(allowed.type_changes) == {"camera", "gone"} and allowed.refused == []


@pytest.mark.parametrize(
    ("key", "declared", "current"),
    [
        ("weather", "varchar", "enum(rain, sunny)"),
        ("clip", {"type": "embedding", "size": 768}, "embedding(512)"),
        ("camera", "geospatial", "varchar"),
        ("strict", "varchar", "number"),  # a strict scalar, not a variant: the SDK cannot re-hint it
        ("gone enum", "varchar", "deleted enum(a)"),
    ],
)
def test_type_changes_encord_cannot_make_are_refused_even_when_allowed(key: str, declared: Any, current: str) -> None:
    (refusal,) = diff({key: declared}, allow_type_changes=True).refused
    assert (refusal.key, refusal.current) == (key, current)
    assert "declare a new name instead" in refusal.reason


def test_hard_deleted_and_foreign_types_are_refused() -> None:
    refused = diff({"hard": "varchar", "owner": "varchar"}, allow_type_changes=True).refused
    assert [(r.key, r.current) for r in refused] == [("hard", "hard-deleted"), ("owner", "user")]
    assert "cannot be used again" in refused[0].reason and "not managed here" in refused[1].reason


def test_removals_take_a_declaration_and_permission() -> None:
    declared = declare_schema({}, removed=["camera", "gone", "never existed"])
    refused = diff_schema(EXISTING, declared)
    assert refused.removals == {"camera": "varchar"}  # already deleted or absent: nothing to do
    assert [str(r) for r in refused.refused] == [
        "metadata key 'camera' is varchar in Encord but declared removed: pass allow_removals=True to remove it"
    ]
    allowed = diff_schema(EXISTING, declared, allow_removals=True)
    assert allowed.removals == {"camera": "varchar"} and allowed.refused == []
    assert "camera" not in allowed.unmanaged and str(allowed) == "- camera: varchar"


def test_enums_cannot_grow_past_the_sdk_limit() -> None:
    existing = parse_encord_schema({"big": {"ty": "enum", "values": [f"v{i:03d}" for i in range(250)]}})
    declared = declare_schema({"big": {"type": "enum", "values": [f"w{i}" for i in range(6)]}})
    (refusal,) = diff_schema(existing, declared).refused
    assert refusal.key == "big" and "at most 255 options" in refusal.reason


def test_the_diff_serialises() -> None:
    result = diff({"new": {"type": "embedding", "size": 3}, "camera": "number"})
    assert SchemaDiff.model_validate_json(result.model_dump_json()) == result
