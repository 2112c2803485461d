"""apply_metadata_schema against the sandbox: additive, idempotent, refusing type changes and removals unless allowed.

The schema is organisation-wide and the sandbox lives for the whole session, so every test declares keys of
its own (suffixed with a token) and never assumes the schema starts empty.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Literal

import pytest
from encord import EncordUserClient
from encord.metadata_schema import MetadataSchema
from encord_sandbox.server import Sandbox
from pydantic import BaseModel, Field

from prefect_encord.planning.schema import Embedding, GeoPoint, KeyType, LongText, SchemaDeclarationError, enum_type
from prefect_encord.planning.schema_diff import SchemaChangeRefused
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog

SCHEMA_PATH = "/v2/public/organisation/client-metadata-schema-v2"


def token() -> str:
    return uuid.uuid4().hex[:8]


def types_of(client: EncordUserClient, keys: list[str]) -> dict[str, str | None]:
    schema = client.metadata_schema()
    return {key: schema.get_key_type(key) for key in keys}


def test_a_model_is_applied_additively_and_a_second_apply_is_a_no_op(
    sandbox: Sandbox, client: EncordUserClient, http_log: HttpLog
) -> None:
    t = token()
    other_team = client.metadata_schema()
    other_team.add_scalar(f"theirs-{t}", data_type="varchar")
    other_team.save()

    class Capture(BaseModel):
        camera: str = Field(alias=f"camera-{t}")
        notes: Annotated[str, LongText] = Field(alias=f"notes-{t}")
        weather: Literal["rain", "sunny"] = Field(alias=f"weather-{t}")
        clip: Annotated[list[float], Embedding(8)] = Field(alias=f"clip.{t}")
        where: GeoPoint = Field(alias=f"where {t}")

    http_log.api.clear()
    first = apply_metadata_schema.fn(credentials_block(sandbox), Capture)
    assert first.applied and set(first.added) == {
        f"camera-{t}",
        f"notes-{t}",
        f"weather-{t}",
        f"clip.{t}",
        f"where {t}",
    }
    assert f"theirs-{t}" in first.unmanaged
    assert [m for m, p in http_log.api if p == SCHEMA_PATH] == ["GET", "POST", "GET"]  # read, save, verify

    stored = client.metadata_schema()
    assert types_of(client, [*first.added, f"theirs-{t}"]) == {
        f"camera-{t}": "varchar",
        f"notes-{t}": "text",
        f"weather-{t}": "enum",
        f"clip.{t}": "embedding",
        f"where {t}": "geospatial",
        f"theirs-{t}": "varchar",  # another team's key survives
    }
    assert list(stored.get_enum_options(f"weather-{t}")) == ["rain", "sunny"]
    assert stored.get_embedding_size(f"clip.{t}") == 8

    http_log.api.clear()
    second = apply_metadata_schema.fn(credentials_block(sandbox), Capture)
    assert not second.applied and not second.has_changes
    assert set(second.unchanged) == set(first.added)
    assert http_log.api == [("GET", SCHEMA_PATH)]  # nothing written


def test_a_dry_run_writes_nothing_and_shows_what_would_be_refused(
    sandbox: Sandbox, client: EncordUserClient, http_log: HttpLog
) -> None:
    t = token()
    apply_metadata_schema.fn(credentials_block(sandbox), {f"count-{t}": "number"})
    before = repr(client.metadata_schema())
    http_log.api.clear()

    diff = apply_metadata_schema.fn(
        credentials_block(sandbox), {f"count-{t}": "varchar", f"new-{t}": "boolean"}, dry_run=True
    )

    assert diff.added == {f"new-{t}": KeyType(kind="boolean")} and not diff.applied
    assert [r.key for r in diff.refused] == [f"count-{t}"]
    assert http_log.api == [("GET", SCHEMA_PATH)]
    assert repr(client.metadata_schema()) == before


def test_a_type_change_is_refused_unless_allowed(sandbox: Sandbox, client: EncordUserClient, http_log: HttpLog) -> None:
    t = token()
    key = f"camera-{t}"
    apply_metadata_schema.fn(credentials_block(sandbox), {key: "varchar", f"other-{t}": "number"})
    http_log.api.clear()

    with pytest.raises(SchemaChangeRefused) as refused:
        apply_metadata_schema.fn(credentials_block(sandbox), {key: "number", f"added-{t}": "uuid"})

    assert str(refused.value) == (
        f"metadata key '{key}' is varchar in Encord but declared number: "
        "pass allow_type_changes=True to change its type"
    )
    assert ("POST", SCHEMA_PATH) not in http_log.api, "a refused apply writes nothing, not even the additions"
    assert types_of(client, [key, f"added-{t}"]) == {key: "varchar", f"added-{t}": None}

    diff = apply_metadata_schema.fn(credentials_block(sandbox), {key: "number"}, allow_type_changes=True)
    assert diff.applied and diff.type_changes[key].desired == KeyType(kind="number")
    assert types_of(client, [key, f"other-{t}"]) == {key: "number", f"other-{t}": "number"}


def test_encord_cannot_turn_an_enum_into_text_even_when_allowed(sandbox: Sandbox, client: EncordUserClient) -> None:
    key = f"weather-{token()}"
    apply_metadata_schema.fn(credentials_block(sandbox), {key: {"type": "enum", "values": ["rain"]}})
    with pytest.raises(SchemaChangeRefused, match="declare a new name instead"):
        apply_metadata_schema.fn(credentials_block(sandbox), {key: "varchar"}, allow_type_changes=True)
    assert types_of(client, [key]) == {key: "enum"}


def test_enum_options_are_only_ever_added(sandbox: Sandbox, client: EncordUserClient) -> None:
    key = f"weather-{token()}"
    apply_metadata_schema.fn(credentials_block(sandbox), {key: {"type": "enum", "values": ["rain", "sunny"]}})
    diff = apply_metadata_schema.fn(credentials_block(sandbox), {key: {"type": "enum", "values": ["fog", "rain"]}})
    assert diff.enum_options_added == {key: ("fog",)}
    assert list(client.metadata_schema().get_enum_options(key)) == ["fog", "rain", "sunny"]


def test_removal_needs_permission_and_a_removed_key_can_be_restored(
    sandbox: Sandbox, client: EncordUserClient, tmp_path: Path
) -> None:
    t = token()
    key = f"old-{t}"
    apply_metadata_schema.fn(credentials_block(sandbox), {key: {"type": "enum", "values": ["a", "b"]}})
    declaration = tmp_path / "schema.yaml"
    declaration.write_text(f"{key}: removed\nkept-{t}: datetime\n")

    with pytest.raises(SchemaChangeRefused, match=f"'{key}' is enum\\(a, b\\) in Encord but declared removed"):
        apply_metadata_schema.fn(credentials_block(sandbox), declaration)
    assert not client.metadata_schema().is_key_deleted(key)

    diff = apply_metadata_schema.fn(credentials_block(sandbox), declaration, allow_removals=True)
    assert diff.removals == {key: "enum(a, b)"} and diff.added == {f"kept-{t}": KeyType(kind="datetime")}
    assert client.metadata_schema().is_key_deleted(key)

    restored = apply_metadata_schema.fn(credentials_block(sandbox), {key: {"type": "enum", "values": ["a", "c"]}})
    assert restored.restored == {key: enum_type(["a", "c"])} and restored.enum_options_added == {key: ("c",)}
    assert list(client.metadata_schema().get_enum_options(key)) == ["a", "b", "c"]


def test_an_invalid_declaration_is_refused_before_any_request(sandbox: Sandbox, http_log: HttpLog) -> None:
    with pytest.raises(SchemaDeclarationError, match="'keyframes' is reserved"):
        apply_metadata_schema.fn(credentials_block(sandbox), {"keyframes": "number"})
    assert http_log.api == []


def test_a_save_that_did_not_take_is_reported(
    sandbox: Sandbox, client: EncordUserClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema is read back after saving: a save that was lost (or overwritten meanwhile) is an error."""
    monkeypatch.setattr(MetadataSchema, "save", lambda self: None)
    key = f"lost-{token()}"
    with pytest.raises(RuntimeError, match=f"still differs from the declaration:\n\\+ {key}: number"):
        apply_metadata_schema.fn(credentials_block(sandbox), {key: "number"})
    assert not client.metadata_schema().has_key(key)
