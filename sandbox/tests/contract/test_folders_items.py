"""Storage folders and items: the unmodified SDK against the running sandbox over HTTP.

Covers folders, items, metadata updates and bundles (docs/sandbox.md), the sandbox's signed URLs
and blob sink, and §10's error mapping, including what one user may see of another's data.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.http.bundle import Bundle
from encord.http.v2.request_signer import sign_request
from encord.orm.storage import FoldersSortBy, PatchItemPayload, StorageItemType
from encord.storage import StorageFolder, StorageItem
from encord_sandbox.server import Sandbox
from encord_sandbox.storage import models as storage_models
from encord_sandbox.storage.models import NewItem


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _signed(sandbox: Sandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    """A raw v2 call signed with the admin key by the SDK's own signer, for bodies the SDK cannot send."""
    key = load_ssh_private_key(sandbox.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    key_hex = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    prepared = sign_request(requests.Request(method, sandbox.domain + path, json=body).prepare(), key_hex, key)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    content = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
    return httpx.request(method, prepared.url or "", content=content, headers=headers)


def _upload_images(folder: StorageFolder, image: Path, names: list[str], **metadata: Any) -> list[StorageItem]:
    """Upload one real PNG per name (through signed URL, blob sink and registration job)."""
    uuids = [folder.upload_image(image, title=name, client_metadata=dict(metadata) or None) for name in names]
    return [StorageItem._get_item(folder._api_client, u, get_signed_url=False) for u in uuids]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- folders ------------------------------------------------------------------------------------


def test_create_folder_round_trips_description_and_metadata(client: EncordUserClient) -> None:
    metadata = {"site": "north", "count": 3, "nested": {"tags": ["a", "b"], "ok": True}, "none": None}
    name = f"create-{_token()}"
    created = client.create_storage_folder(name, description="cameras of site north", client_metadata=metadata)

    for folder in (created, client.get_storage_folder(created.uuid)):
        assert folder.uuid == created.uuid
        assert folder.name == name
        assert folder.description == "cameras of site north"
        assert folder.client_metadata == metadata
        assert folder.parent_uuid is None
        assert [(p.uuid, p.name, p.parent_uuid) for p in folder.path_to_root] == [(created.uuid, name, None)]
        assert folder.folder_type.value == "generic"
        assert not folder.is_cloud_synced


def test_folder_without_metadata_reads_back_none(client: EncordUserClient) -> None:
    folder = client.create_storage_folder(f"plain-{_token()}")
    assert client.get_storage_folder(folder.uuid).client_metadata is None
    assert folder.description == ""


def test_subfolders_have_parent_and_path_to_root(client: EncordUserClient) -> None:
    top = client.create_storage_folder(f"top-{_token()}")
    child = top.create_subfolder("child", description="level 1", client_metadata={"level": 1})
    grandchild = client.create_storage_folder("grandchild", parent_folder=child.uuid)

    assert child.parent_uuid == top.uuid
    assert child.client_metadata == {"level": 1}
    assert child.description == "level 1"
    fetched = client.get_storage_folder(grandchild.uuid)
    assert fetched.parent_uuid == child.uuid
    assert fetched.parent is not None and fetched.parent.uuid == child.uuid
    # From this folder up to the root, each element naming its own parent.
    assert [(p.uuid, p.parent_uuid) for p in fetched.path_to_root] == [
        (grandchild.uuid, child.uuid),
        (child.uuid, top.uuid),
        (top.uuid, None),
    ]


def test_list_storage_folders_is_top_level_only_and_find_is_recursive(client: EncordUserClient) -> None:
    token = _token()
    top = client.create_storage_folder(f"{token}-top")
    nested = top.create_subfolder(f"{token}-nested")
    unrelated = client.create_storage_folder(f"other-{_token()}")

    top_level = {f.uuid for f in client.list_storage_folders()}
    assert {top.uuid, unrelated.uuid} <= top_level
    assert nested.uuid not in top_level

    assert [f.uuid for f in client.list_storage_folders(search=token)] == [top.uuid]
    assert {f.uuid for f in client.find_storage_folders(search=token)} == {top.uuid, nested.uuid}
    # Search is a case-insensitive substring match on the name.
    assert [f.uuid for f in client.find_storage_folders(search=f"{token}-NEST")] == [nested.uuid]


def test_list_and_find_subfolders(folder: StorageFolder) -> None:
    b = folder.create_subfolder("b-child")
    a = folder.create_subfolder("a-child")
    deep = a.create_subfolder("deep-child")

    assert [f.uuid for f in folder.list_subfolders()] == [a.uuid, b.uuid]
    assert [f.uuid for f in folder.list_subfolders(desc=True)] == [b.uuid, a.uuid]
    assert [f.uuid for f in folder.list_subfolders(order=FoldersSortBy.CREATED_AT)] == [b.uuid, a.uuid]
    assert {f.uuid for f in folder.find_subfolders()} == {a.uuid, b.uuid, deep.uuid}
    assert [f.uuid for f in folder.find_subfolders(search="deep")] == [deep.uuid]
    assert list(folder.list_subfolders(search="deep")) == []
    assert list(deep.list_subfolders()) == []


def test_folder_listing_pages_return_every_folder_once_in_order(folder: StorageFolder) -> None:
    names = ["e", "c", "a", "d", "b"]
    for name in names:
        folder.create_subfolder(name)
    assert [f.name for f in folder.list_subfolders(page_size=2)] == sorted(names)
    assert [f.name for f in folder.list_subfolders(page_size=2, desc=True)] == sorted(names, reverse=True)


def test_folder_update_changes_only_what_is_given(client: EncordUserClient, folder: StorageFolder) -> None:
    folder.update(name="renamed", description="new words", client_metadata={"v": 2})
    assert (folder.name, folder.description, folder.client_metadata) == ("renamed", "new words", {"v": 2})

    folder.update(description="only this")
    fetched = client.get_storage_folder(folder.uuid)
    assert (fetched.name, fetched.description, fetched.client_metadata) == ("renamed", "only this", {"v": 2})


def test_bundled_folder_update_sends_one_patch_bulk(client: EncordUserClient) -> None:
    first = client.create_storage_folder(f"bundle-a-{_token()}")
    second = client.create_storage_folder(f"bundle-b-{_token()}")
    with Bundle() as bundle:
        first.update(description="first, bundled", bundle=bundle)
        second.update(name=f"bundle-b2-{_token()}", client_metadata={"bundled": True}, bundle=bundle)
        # Nothing reaches the server until the bundle executes.
        assert client.get_storage_folder(first.uuid).description == ""

    assert first.description == "first, bundled"
    assert second.client_metadata == {"bundled": True}
    assert client.get_storage_folder(first.uuid).description == "first, bundled"
    refetched = client.get_storage_folder(second.uuid)
    assert refetched.name == second.name and refetched.name.startswith("bundle-b2-")
    assert refetched.client_metadata == {"bundled": True}


# --- items --------------------------------------------------------------------------------------


def test_list_items_filters_by_type_and_search(folder: StorageFolder, media_dir: Path) -> None:
    folder.upload_image(media_dir / "red.png", title="red-image")
    folder.upload_image(media_dir / "green.jpg", title="green-image")
    folder.upload_video(media_dir / "clip.mp4", title="clip-video")
    folder.upload_audio(media_dir / "tone.wav", title="tone-audio")
    folder.upload_pdf(media_dir / "report.pdf", title="report-pdf")
    folder.upload_text(media_dir / "notes.txt", title="notes-text")

    def names(**kwargs: Any) -> list[str]:
        return [i.name for i in folder.list_items(**kwargs)]

    assert names() == ["clip-video", "green-image", "notes-text", "red-image", "report-pdf", "tone-audio"]
    assert names(item_types=[StorageItemType.IMAGE]) == ["green-image", "red-image"]
    assert names(item_types=[StorageItemType.VIDEO, StorageItemType.AUDIO]) == ["clip-video", "tone-audio"]
    assert names(item_types=[StorageItemType.DICOM_SERIES]) == []
    assert names(search="IMAGE") == ["green-image", "red-image"]
    assert names(search="re", item_types=[StorageItemType.PDF]) == ["report-pdf"]
    assert {i.item_type for i in folder.list_items()} == {
        StorageItemType.IMAGE,
        StorageItemType.VIDEO,
        StorageItemType.AUDIO,
        StorageItemType.PDF,
        StorageItemType.PLAIN_TEXT,
    }


def test_find_items_searches_subfolders_and_metadata_can_be_left_out(folder: StorageFolder, media_dir: Path) -> None:
    folder.upload_image(media_dir / "red.png", title="top-red", client_metadata={"where": "top"})
    sub = folder.create_subfolder("sub")
    sub.upload_image(media_dir / "blue.png", title="sub-blue", client_metadata={"where": "sub"})

    assert [i.name for i in folder.list_items()] == ["top-red"]
    found = {i.name: i.client_metadata for i in folder.find_items(item_types=[StorageItemType.IMAGE])}
    assert found == {"top-red": {"where": "top"}, "sub-blue": {"where": "sub"}}
    assert [i.name for i in folder.find_items(search="blue")] == ["sub-blue"]
    assert [i.client_metadata for i in folder.list_items(include_client_metadata=False)] == [{}]
    assert [i.client_metadata for i in folder.list_items(resolve_client_metadata_locally=True)] == [{"where": "top"}]


def test_list_items_order_and_paging(sandbox: Sandbox, folder: StorageFolder, media_dir: Path) -> None:
    upload_order = ["e", "c", "a", "d", "b"]
    _upload_images(folder, media_dir / "red.png", upload_order)

    # One raw page proves the server really pages: two results and a token for the rest.
    first = _signed(sandbox, "GET", f"/v2/public/storage/folders/{folder.uuid}/items?pageSize=2")
    assert first.status_code == 200, first.text
    assert [i["name"] for i in first.json()["results"]] == ["a", "b"]
    assert first.json()["nextPageToken"]

    def names(**kwargs: Any) -> list[str]:
        return [i.name for i in folder.list_items(page_size=2, **kwargs)]

    assert names() == ["a", "b", "c", "d", "e"]
    assert names(desc=True) == ["e", "d", "c", "b", "a"]
    assert names(order=FoldersSortBy.CREATED_AT) == upload_order
    assert names(order=FoldersSortBy.CREATED_AT, desc=True) == upload_order[::-1]
    assert [i.name for i in folder.list_items(page_size=1, search="d")] == ["d"]


def test_get_storage_item_and_bulk_get(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    red, green = (
        folder.upload_image(media_dir / "red.png", title="red", client_metadata={"colour": "red"}),
        folder.upload_image(media_dir / "green.jpg", title="green"),
    )
    item = client.get_storage_item(red)
    assert (item.uuid, item.name, item.parent_folder_uuid) == (red, "red", folder.uuid)
    assert item.item_type == StorageItemType.IMAGE
    assert (item.width, item.height, item.mime_type) == (8, 6, "image/png")
    assert item.file_size == (media_dir / "red.png").stat().st_size
    assert item.client_metadata == {"colour": "red"}

    # Bulk get keeps the order asked for.
    assert [i.uuid for i in client.get_storage_items([green, red])] == [green, red]
    assert [i.uuid for i in client.get_storage_items([str(red), str(green)])] == [red, green]


def test_item_update_replaces_metadata(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    (item,) = _upload_images(folder, media_dir / "red.png", ["meta"], a=1, b={"deep": 2})
    assert item.client_metadata == {"a": 1, "b": {"deep": 2}}

    item.update(client_metadata={"b": 3, "c": [1, 2]})
    assert item.client_metadata == {"b": 3, "c": [1, 2]}
    # The sandbox's choice (docs/sandbox.md): a PATCH replaces the metadata; "a" is gone, not merged.
    assert client.get_storage_item(item.uuid).client_metadata == {"b": 3, "c": [1, 2]}

    item.update(name="renamed", description="described")
    fetched = client.get_storage_item(item.uuid)
    assert (fetched.name, fetched.description) == ("renamed", "described")
    assert fetched.client_metadata == {"b": 3, "c": [1, 2]}, "a name-only update must keep the metadata"


def test_bundled_item_update(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    items = _upload_images(folder, media_dir / "red.png", ["x", "y", "z"], old=True)
    with Bundle() as bundle:
        for n, item in enumerate(items):
            item.update(client_metadata={"n": n}, bundle=bundle)
        assert client.get_storage_item(items[0].uuid).client_metadata == {"old": True}

    assert [i.client_metadata for i in items] == [{"n": 0}, {"n": 1}, {"n": 2}]
    refetched = client.get_storage_items([i.uuid for i in items])
    assert [i.client_metadata for i in refetched] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_bundle_of_1001_updates_and_the_1000_limit_per_call(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder
) -> None:
    # 1,001 items stored directly (uploading them one by one would be slow); every update goes over HTTP.
    store = sandbox.backend.store
    rows = [
        NewItem(
            folder=str(folder.uuid), item_type="image", name=f"bulk-{n:04d}", owner=sandbox.admin_user,
            storage_location="encord", client_metadata={"n": -1},
        )
        for n in range(1001)
    ]  # fmt: skip
    with store.transaction() as db:
        storage_models.insert_items(store, db, rows)
    items = list(folder.list_items(page_size=1000))
    assert len(items) == 1001

    # One patch-bulk call may carry at most 1,000 patches; nothing is written when it carries more.
    too_many = {str(i.uuid): PatchItemPayload(client_metadata={"over": True}) for i in items}
    with pytest.raises(InvalidArgumentsError, match="1001 item patches"):
        StorageItem._patch_multiple_items(client._api_client, too_many)
    assert all(i.client_metadata == {"n": -1} for i in folder.list_items(page_size=1000))

    # The SDK's bundle splits 1,001 updates into calls of at most 1,000, and all of them land.
    with Bundle() as bundle:
        for n, item in enumerate(items):
            item.update(client_metadata={"n": n}, bundle=bundle)
    assert [i.client_metadata for i in items] == [{"n": n} for n in range(1001)]
    assert [i.client_metadata["n"] for i in folder.list_items(page_size=1000)] == list(range(1001))


# --- signed URLs and the blob sink --------------------------------------------------------------


def test_signed_urls_download_the_exact_uploaded_bytes(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    red = folder.upload_image(media_dir / "red.png", title="red")
    green = folder.upload_image(media_dir / "green.jpg", title="green")
    expected = {red: (media_dir / "red.png").read_bytes(), green: (media_dir / "green.jpg").read_bytes()}

    urls = {red: client.get_storage_item(red, sign_url=True).get_signed_url()}
    urls.update({i.uuid: i.get_signed_url() for i in client.get_storage_items([green], sign_url=True)})
    listed = {i.uuid: i.get_signed_url() for i in folder.list_items(get_signed_urls=True)}
    assert set(listed) == {red, green}
    unsigned = client.get_storage_item(red)
    assert unsigned.get_signed_url() is not None, "get_signed_url() refetches a URL on demand"

    for item_uuid, url in [*urls.items(), *listed.items(), (red, unsigned.get_signed_url())]:
        assert url is not None
        response = httpx.get(url)
        assert response.status_code == 200, response.text
        assert response.content == expected[item_uuid]


def test_tampered_swapped_or_expired_download_urls_are_refused(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    red = folder.upload_image(media_dir / "red.png", title="red")
    green = folder.upload_image(media_dir / "green.jpg", title="green")
    url = client.get_storage_item(red, sign_url=True).get_signed_url()
    assert url is not None and httpx.get(url).status_code == 200
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")

    refused = {
        "tampered signature": httpx.get(_with_query(url, sig=flipped)),
        "non-ASCII signature": httpx.get(_with_query(url, sig="é" * 64)),
        "missing signature": httpx.get(url.split("?")[0]),
        "extended expiry": httpx.get(_with_query(url, expires="9999999999")),
        "op swapped in the query": httpx.get(_with_query(url, op="put")),
        "another item's key": httpx.get(url.replace(str(red), str(green))),
        "GET URL used to PUT": httpx.put(url, content=b"overwritten"),
        "expired": httpx.get(sandbox.backend.blobs.signed_url(sandbox.domain, str(red), "get", ttl=-1)),
    }
    for case, response in refused.items():
        assert response.status_code == 403, f"{case}: {response.status_code} {response.text}"
    assert "expired" in refused["expired"].json()["message"]
    assert httpx.get(url).content == (media_dir / "red.png").read_bytes(), "the blob must be unchanged"


def test_blob_sink_refuses_unsigned_or_tampered_puts(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    red = folder.upload_image(media_dir / "red.png", title="red")
    key = str(red)
    put_url = sandbox.backend.blobs.signed_url(sandbox.domain, key, "put", ttl=60)
    signature = parse_qs(urlsplit(put_url).query)["sig"][0]

    attempts = {
        "unsigned": f"{sandbox.domain}/_blobs/{key}",
        "tampered signature": _with_query(put_url, sig=signature[::-1]),
        "signed for another key": put_url.replace(key, str(uuid.uuid4())),
        "expired": sandbox.backend.blobs.signed_url(sandbox.domain, key, "put", ttl=-1),
    }
    for case, target in attempts.items():
        response = httpx.put(target, content=b"evil bytes")
        assert response.status_code == 403, f"{case}: {response.status_code} {response.text}"

    download = client.get_storage_item(red, sign_url=True).get_signed_url()
    assert download is not None
    assert httpx.get(download).content == (media_dir / "red.png").read_bytes()


# --- errors -------------------------------------------------------------------------------------


def test_unknown_folder_and_item_are_not_found(client: EncordUserClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.get_storage_folder(uuid.uuid4())
    with pytest.raises(ResourceNotFoundError):
        client.get_storage_item(uuid.uuid4())
    with pytest.raises(ResourceNotFoundError):
        client.create_storage_folder("orphan", parent_folder=uuid.uuid4())
    assert [f.uuid for f in client.find_storage_folders(search="orphan")] == []


def test_bulk_get_with_one_unknown_uuid_is_not_found(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    known = folder.upload_image(media_dir / "red.png")
    with pytest.raises(ResourceNotFoundError):
        client.get_storage_items([known, uuid.uuid4()])


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_folder_name_is_invalid_and_named(client: EncordUserClient, name: str) -> None:
    with pytest.raises(InvalidArgumentsError, match=f"folder name {name!r}"):
        client.create_storage_folder(name)


def test_folder_rename_to_blank_is_invalid_and_changes_nothing(client: EncordUserClient, folder: StorageFolder) -> None:
    with pytest.raises(InvalidArgumentsError, match="folder name ''"):
        folder.update(name="", description="would be lost")
    fetched = client.get_storage_folder(folder.uuid)
    assert (fetched.name, fetched.description) == (folder.name, "a test folder")


def test_metadata_patch_with_a_non_object_is_invalid_and_named(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    (item,) = _upload_images(folder, media_dir / "red.png", ["item"], keep="me")

    response = _signed(
        sandbox, "PATCH", f"/v2/public/storage/folders/{folder.uuid}/items/{item.uuid}", {"clientMetadata": [1, 2]}
    )
    assert response.status_code == 400, response.text
    assert "[1, 2]" in response.json()["message"] and str(item.uuid) in response.json()["message"]

    response = _signed(
        sandbox,
        "PATCH",
        "/v2/public/storage/items/patch-bulk",
        {"itemPatches": {str(item.uuid): {"clientMetadata": 7}}},
    )
    assert response.status_code == 400 and "got 7" in response.json()["message"]
    assert client.get_storage_item(item.uuid).client_metadata == {"keep": "me"}

    response = _signed(sandbox, "PATCH", f"/v2/public/storage/folders/{folder.uuid}", {"clientMetadata": "text"})
    assert response.status_code == 400 and "'text'" in response.json()["message"]
    assert client.get_storage_folder(folder.uuid).client_metadata is None


def test_folder_metadata_must_be_a_json_string_on_create(sandbox: Sandbox) -> None:
    """The SDK sends create-time metadata as a JSON *string*; an object (or bad JSON) is a 400, not a 500."""
    name = f"raw-{_token()}"
    for metadata, named in [({"x": 1}, "{'x': 1}"), ("[1, 2]", "'[1, 2]'"), ("{nope", "'{nope'")]:
        response = _signed(sandbox, "POST", "/v2/public/storage/folders", {"name": name, "clientMetadata": metadata})
        assert response.status_code == 400, response.text
        assert named in response.json()["message"]


def test_page_tokens_the_server_did_not_issue_are_invalid(sandbox: Sandbox, folder: StorageFolder) -> None:
    items, subfolders = (
        f"/v2/public/storage/folders/{folder.uuid}/items",
        f"/v2/public/storage/folders/{folder.uuid}/folders",
    )
    folder.create_subfolder("a")
    folder.create_subfolder("b")
    folder_token = _signed(sandbox, "GET", subfolders + "?pageSize=1").json()["nextPageToken"]
    assert folder_token

    for path, token in [(items, "garbage!"), (items, folder_token), (subfolders, "garbage!"), (subfolders, "WyJhIl0=")]:
        response = _signed(sandbox, "GET", f"{path}?{urlencode({'pageToken': token})}")
        assert response.status_code == 400, f"{path} {token}: {response.text}"
        assert "pageToken" in response.json()["message"]


def test_list_items_with_an_unknown_item_type_is_invalid(sandbox: Sandbox, folder: StorageFolder) -> None:
    response = _signed(sandbox, "GET", f"/v2/public/storage/folders/{folder.uuid}/items?itemTypes=hologram")
    assert response.status_code == 400 and "'hologram'" in response.json()["message"]


# --- one user cannot reach another's data -------------------------------------------------------


def test_other_users_folder_and_items_are_forbidden(
    client: EncordUserClient, other_client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    (item,) = _upload_images(folder, media_dir / "red.png", ["private"], secret=True)

    with pytest.raises(AuthorisationError):
        other_client.get_storage_folder(folder.uuid)
    with pytest.raises(AuthorisationError):
        other_client.get_storage_item(item.uuid)
    with pytest.raises(AuthorisationError):
        other_client.get_storage_items([item.uuid])
    with pytest.raises(AuthorisationError):
        other_client.create_storage_folder("squatter", parent_folder=folder.uuid)
    with pytest.raises(AuthorisationError):
        StorageItem._patch_multiple_items(
            other_client._api_client, {str(item.uuid): PatchItemPayload(client_metadata={"secret": False})}
        )
    # A StorageFolder object for the admin's folder, held by the other user's API client.
    trespassing = StorageFolder(other_client._api_client, folder._orm_folder)
    with pytest.raises(AuthorisationError):
        list(trespassing.list_items())
    with pytest.raises(AuthorisationError):
        trespassing.update(name="taken over")

    fetched = client.get_storage_folder(folder.uuid)
    assert fetched.name == folder.name
    assert client.get_storage_item(item.uuid).client_metadata == {"secret": True}
    assert list(fetched.list_subfolders()) == []


def test_listings_only_show_the_callers_own_folders(
    client: EncordUserClient, other_client: EncordUserClient, folder: StorageFolder
) -> None:
    token = _token()
    admins = client.create_storage_folder(f"shared-name-{token}")
    theirs = other_client.create_storage_folder(f"shared-name-{token}")

    other_sees = {f.uuid for f in other_client.list_storage_folders()}
    assert theirs.uuid in other_sees
    assert admins.uuid not in other_sees and folder.uuid not in other_sees
    assert [f.uuid for f in other_client.find_storage_folders(search=token)] == [theirs.uuid]
    assert [f.uuid for f in client.find_storage_folders(search=token)] == [admins.uuid]


def test_a_name_with_half_a_unicode_pair_is_refused_by_name(client: EncordUserClient) -> None:
    before = len(list(client.list_storage_folders()))
    with pytest.raises(InvalidArgumentsError, match=r"caf\\udce9.*not valid Unicode"):
        client.create_storage_folder("caf\udce9")
    assert len(list(client.list_storage_folders())) == before
