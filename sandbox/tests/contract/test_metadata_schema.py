"""The custom-metadata schemas (the routes in docs/sandbox.md) and the sandbox's server-side checks of item metadata.

The schema is organisation-wide and the sandbox lives for the whole session, so every test uses key
names of its own and never assumes the schema starts empty. Saving replaces the whole schema, which
the SDK handles by sending back everything it read plus its changes.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from encord import EncordUserClient
from encord.exceptions import EncordException, InvalidArgumentsError
from encord.http.bundle import Bundle
from encord.http.v2.request_signer import sign_request
from encord.metadata_schema import MetadataSchemaError, MetadataSchemaScalarType
from encord.storage import StorageFolder, StorageItem
from encord_sandbox.server import Sandbox

SCHEMA_V2 = "/v2/public/organisation/client-metadata-schema-v2"
SCHEMA_LEGACY = "/v2/public/organisation/client-metadata-schema"


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _signed(sandbox: Sandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    """A raw v2 call signed with the admin key by the SDK's own signer, for bodies the SDK will not send."""
    key = load_ssh_private_key(sandbox.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    key_hex = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    prepared = sign_request(requests.Request(method, sandbox.domain + path, json=body).prepare(), key_hex, key)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    content = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
    return httpx.request(method, prepared.url or "", content=content, headers=headers)


# --- the v2 schema ------------------------------------------------------------------------------


def test_v2_schema_round_trips_through_a_new_schema_object(client: EncordUserClient) -> None:
    t = _token()
    schema = client.metadata_schema()
    existing = set(schema.keys())
    schema.add_scalar(f"count-{t}", data_type="number")
    schema.add_scalar(f"camera-{t}", data_type="string")
    schema.add_scalar(f"notes-{t}", data_type="long_string")
    schema.add_scalar(f"flag-{t}", data_type=MetadataSchemaScalarType.BOOLEAN)
    schema.add_scalar(f"taken at-{t}", data_type="datetime")
    schema.add_enum(f"weather-{t}", values=["sunny", "rain", "fog"])
    schema.add_embedding(f"clip.{t}", size=512)
    schema.add_geospatial(f"where_{t}")
    assert not client.metadata_schema().has_key(f"count-{t}"), "nothing is stored before save()"
    schema.save()

    fresh = client.metadata_schema()
    assert existing | set(schema.keys()) == set(fresh.keys()), "saving must keep the keys others defined"
    assert {k: fresh.get_key_type(k) for k in set(fresh.keys()) if k.endswith(t)} == {
        f"count-{t}": "number",
        f"camera-{t}": "varchar",
        f"notes-{t}": "text",
        f"flag-{t}": "boolean",
        f"taken at-{t}": "datetime",
        f"weather-{t}": "enum",
        f"clip.{t}": "embedding",
        f"where_{t}": "geospatial",
    }
    assert list(fresh.get_enum_options(f"weather-{t}")) == ["fog", "rain", "sunny"]
    assert fresh.get_embedding_size(f"clip.{t}") == 512
    assert repr(fresh) == repr(schema)


def test_delete_key_writes_a_tombstone_that_a_new_schema_object_sees(client: EncordUserClient) -> None:
    t = _token()
    soft, hard, kept = f"soft-{t}", f"hard-{t}", f"kept-{t}"
    schema = client.metadata_schema()
    schema.add_scalar(soft, data_type="number")
    schema.add_enum(hard, values=["x"])
    schema.add_scalar(kept, data_type="text")
    schema.save()

    schema = client.metadata_schema()
    schema.delete_key(soft)
    schema.delete_key(hard, hard=True)
    schema.save()

    fresh = client.metadata_schema()
    for key in (soft, hard):
        assert fresh.has_key(key) and fresh.is_key_deleted(key)
        assert fresh.get_key_type(key) is None
        assert key not in str(fresh)
    assert fresh.get_key_type(kept) == "text" and not fresh.is_key_deleted(kept)

    # A soft delete remembers the old type, a hard delete does not: both survive the round trip.
    fresh.restore_key(soft)
    with pytest.raises(MetadataSchemaError, match="hard deleted"):
        fresh.restore_key(hard)
    fresh.save()
    assert client.metadata_schema().get_key_type(soft) == "number"


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"enum-{t}": {"ty": "enum", "values": []}}, "enum-{t}"),
        ({"emb-{t}": {"ty": "embedding", "size": 0}}, "size 0"),
        ({"emb-{t}": {"ty": "embedding", "size": 4097}}, "size 4097"),
        ({"var-{t}": {"ty": "variant", "hint": "colour"}}, "'colour'"),
        ({"odd-{t}": {"ty": "hologram"}}, "hologram"),
        ({"$dollar-{t}": {"ty": "boolean"}}, "$dollar-{t}"),
        ({"slash/{t}": {"ty": "boolean"}}, "slash/{t}"),
        ({"keyframes": {"ty": "boolean"}}, "keyframes"),
        ([{"ty": "boolean"}], "JSON object"),
    ],
)
def test_server_refuses_an_invalid_v2_schema_and_keeps_the_old_one(
    sandbox: Sandbox, client: EncordUserClient, document: Any, named: str
) -> None:
    t = _token()
    if isinstance(document, dict):
        document = {k.format(t=t): v for k, v in document.items()}
    before = repr(client.metadata_schema())
    response = _signed(sandbox, "POST", SCHEMA_V2, document)
    assert response.status_code == 400, response.text
    assert named.format(t=t) in response.json()["message"]
    assert repr(client.metadata_schema()) == before


# --- the legacy schema --------------------------------------------------------------------------


def test_legacy_schema_round_trip_and_replacement(sandbox: Sandbox, client: EncordUserClient) -> None:
    t = _token()
    everything = {
        f"n-{t}": "number",
        f"s-{t}": "string",
        f"b-{t}": "boolean",
        f"d-{t}": "datetime",
        f"g-{t}": "geospatial",
        f"e-{t}": "enum",
        f"m-{t}": "embedding",
        f"l-{t}": "long_string",
    }
    client.set_client_metadata_schema_from_dict(everything)
    stored = client.get_client_metadata_schema()
    assert stored is not None
    assert {k: v.value for k, v in stored.items()} == everything

    # Setting it again replaces it as a whole.
    client.set_client_metadata_schema_from_dict({f"only-{t}": "number"})
    stored = client.get_client_metadata_schema()
    assert stored is not None and {k: v.value for k, v in stored.items()} == {f"only-{t}": "number"}

    # The legacy schema is a separate document from the v2 schema.
    assert not client.metadata_schema().has_key(f"only-{t}")

    # The SDK checks type names itself; the server checks them too, naming the bad one.
    with pytest.raises(NotImplementedError):
        client.set_client_metadata_schema_from_dict({f"x-{t}": "colour"})  # type: ignore[dict-item]
    response = _signed(sandbox, "POST", SCHEMA_LEGACY, {f"x-{t}": "colour"})
    assert response.status_code == 400 and "'colour'" in response.json()["message"]
    stored = client.get_client_metadata_schema()
    assert stored is not None and set(stored) == {f"only-{t}"}


# --- item metadata checked against the v2 schema -----------------------------------------------


@pytest.fixture(scope="module")
def typed_keys(client: EncordUserClient) -> dict[str, str]:
    """One schema key per checked type, unique to this module run."""
    t = _token()
    keys = {
        "number": f"num-{t}",
        "boolean": f"bool-{t}",
        "varchar": f"str-{t}",
        "datetime": f"when-{t}",
        "uuid": f"id-{t}",
        "enum": f"weather-{t}",
        "embedding": f"vec-{t}",
        "geospatial": f"geo-{t}",
    }
    schema = client.metadata_schema()
    for kind in ("number", "boolean", "varchar", "datetime", "uuid"):
        schema.add_scalar(keys[kind], data_type=kind)  # type: ignore[arg-type]
    schema.add_enum(keys["enum"], values=["sunny", "rain"])
    schema.add_embedding(keys["embedding"], size=3)
    schema.add_geospatial(keys["geospatial"])
    schema.save()
    return keys


@pytest.fixture
def valid_metadata(typed_keys: dict[str, str]) -> dict[str, Any]:
    return {
        typed_keys["number"]: 1.5,
        typed_keys["boolean"]: True,
        typed_keys["varchar"]: "cam-7",
        typed_keys["datetime"]: "2024-05-01T12:30:00Z",
        typed_keys["uuid"]: str(uuid.uuid4()),
        typed_keys["enum"]: "rain",
        typed_keys["embedding"]: [0.1, 0.2, 3],
        typed_keys["geospatial"]: {"latitude": 51.5, "longitude": -0.12},
        "not in the schema": {"anything": ["goes"]},
    }


@pytest.fixture
def item(folder: StorageFolder, media_dir: Path, valid_metadata: dict[str, Any]) -> StorageItem:
    """A real uploaded image whose (valid) metadata passed the same check at registration."""
    item_uuid = folder.upload_image(media_dir / "red.png", client_metadata=valid_metadata)
    return StorageItem._get_item(folder._api_client, item_uuid, get_signed_url=False)


@pytest.mark.parametrize(
    ("kind", "bad", "problem"),
    [
        ("number", "12", "is not a number"),
        ("number", True, "is not a number"),
        ("boolean", "yes", "is not a boolean"),
        ("varchar", 123, "is not a string"),
        ("varchar", "x" * 8193, "longer than 8192"),
        ("datetime", "yesterday", "ISO 8601"),
        ("uuid", "not-a-uuid", "is not a UUID"),
        ("enum", "snow", "is not one of the enum values ['rain', 'sunny']"),
        ("embedding", [1.0, 2.0], "has 2 dimensions; the schema says 3"),
        ("embedding", ["a", "b", "c"], "is not a list of numbers"),
        ("geospatial", {"latitude": 91, "longitude": 0}, "out of range"),
        ("geospatial", [51.5, -0.12], "is not a {latitude, longitude} object"),
    ],
)
def test_item_metadata_that_breaks_the_schema_is_refused_and_changes_nothing(
    client: EncordUserClient,
    item: StorageItem,
    typed_keys: dict[str, str],
    valid_metadata: dict[str, Any],
    kind: str,
    bad: Any,
    problem: str,
) -> None:
    key = typed_keys[kind]
    with pytest.raises(InvalidArgumentsError) as raised:
        item.update(client_metadata={**valid_metadata, key: bad})
    message = str(raised.value)
    assert repr(key) in message and problem in message and str(item.uuid) in message
    assert repr(bad)[:40] in message
    assert client.get_storage_item(item.uuid).client_metadata == valid_metadata


def test_metadata_that_fits_the_schema_is_stored(
    client: EncordUserClient, item: StorageItem, typed_keys: dict[str, str], valid_metadata: dict[str, Any]
) -> None:
    assert item.client_metadata == valid_metadata
    changed = {typed_keys["number"]: -3, typed_keys["enum"]: "sunny", typed_keys["datetime"]: None, "free": 1}
    item.update(client_metadata=changed)
    assert client.get_storage_item(item.uuid).client_metadata == changed


def test_bundled_update_with_one_bad_item_writes_none(
    client: EncordUserClient,
    folder: StorageFolder,
    media_dir: Path,
    typed_keys: dict[str, str],
    valid_metadata: dict[str, Any],
) -> None:
    uuids = [
        folder.upload_image(media_dir / "red.png", title=f"i{n}", client_metadata=valid_metadata) for n in range(3)
    ]
    items = client.get_storage_items(uuids)
    enum_key = typed_keys["enum"]
    # The bundle sends its one patch-bulk call when the inner block exits; that call fails.
    with pytest.raises(InvalidArgumentsError) as raised, Bundle() as bundle:
        items[0].update(client_metadata={enum_key: "sunny"}, bundle=bundle)
        items[1].update(client_metadata={enum_key: "hail"}, bundle=bundle)
        items[2].update(client_metadata={enum_key: "rain", "extra": 1}, bundle=bundle)
    assert str(items[1].uuid) in str(raised.value) and "'hail'" in str(raised.value)
    assert [i.client_metadata for i in client.get_storage_items(uuids)] == [valid_metadata] * 3


def test_upload_with_metadata_that_breaks_the_schema_registers_nothing(
    folder: StorageFolder, media_dir: Path, typed_keys: dict[str, str]
) -> None:
    with pytest.raises(EncordException, match=typed_keys["enum"]):
        folder.upload_image(media_dir / "red.png", title="refused", client_metadata={typed_keys["enum"]: "snow"})
    assert list(folder.list_items()) == []


def test_checks_follow_the_schema_as_it_is_now(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    t = _token()
    late, dropped = f"late-{t}", f"dropped-{t}"
    schema = client.metadata_schema()
    schema.add_scalar(dropped, data_type="number")
    schema.save()
    item_uuid = folder.upload_image(media_dir / "red.png", client_metadata={late: "text", dropped: 1})
    item = client.get_storage_item(item_uuid)

    # A key added to the schema after the fact is checked from then on.
    schema = client.metadata_schema()
    schema.add_scalar(late, data_type="number")
    schema.save()
    with pytest.raises(InvalidArgumentsError, match=f"'{late}' value 'more text' is not a number"):
        item.update(client_metadata={late: "more text", dropped: 2})

    # A deleted (tombstoned) key is no longer checked.
    schema = client.metadata_schema()
    schema.delete_key(dropped)
    schema.save()
    item.update(client_metadata={late: 5, dropped: "now free text"})
    assert client.get_storage_item(item_uuid).client_metadata == {late: 5, dropped: "now free text"}
