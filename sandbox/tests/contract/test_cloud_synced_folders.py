"""Cloud-synced folders: the unmodified SDK creates one bound to a bucket, starts syncs and long-polls their result
against the sandbox; each sync's outcome as Encord documents it (docs.encord.com, "Cloud-synced folders"): new
files become items, deleted ones tombstones, returning ones restored, changed ones updated in place, sidecars
metadata, unsupported types refused, all in the result's counters."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.exceptions import InvalidArgumentsError
from encord.orm.storage import (
    CloudSyncedFolderParams,
    SidecarMatcherSuffix,
    StorageFolderType,
    SyncPrivateDataWithCloudSyncedFolderStatus,
)
from encord.storage import StorageFolder
from encord_sandbox import samples
from encord_sandbox.server import Sandbox


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    root = tmp_path / "bucket"
    (root / "cams").mkdir(parents=True)
    (root / "cams" / "a.png").write_bytes(samples.png(color=(1, 2, 3)))
    (root / "cams" / "b.png").write_bytes(samples.png(color=(4, 5, 6)))
    (root / "cams" / "notes.txt").write_text("a note")
    (root / "cams" / "scan.dcm").write_bytes(samples.dicom())  # DICOM: not a cloud-synced folder's type
    return root


def _synced(client: EncordUserClient, sandbox: Sandbox, bucket: Path) -> StorageFolder:
    integration = sandbox.add_integration(f"sync-{uuid.uuid4().hex[:6]}", "local", root=str(bucket))
    params = CloudSyncedFolderParams(
        integration_uuid=uuid.UUID(integration), remote_url=(bucket / "cams").as_uri() + "/"
    )
    return client.create_storage_folder(f"synced-{uuid.uuid4().hex[:6]}", cloud_synced_folder_params=params)


def _sync(folder: StorageFolder) -> dict[str, int | str]:
    result = folder.sync_private_data_with_cloud_synced_folder_get_result(
        folder.sync_private_data_with_cloud_synced_folder_start(), timeout_seconds=60
    )
    assert result.status == SyncPrivateDataWithCloudSyncedFolderStatus.DONE, result
    return {k: v for k, v in result.model_dump().items() if isinstance(v, int) and v}


def _items(folder: StorageFolder) -> dict[str, tuple[uuid.UUID, bool, dict[str, object]]]:
    """Name → (UUID, tombstone, metadata); the SDK keeps ``is_tombstone`` on the item's record, not the item."""
    return {i.name: (i.uuid, i._orm_item.is_tombstone, dict(i.client_metadata or {})) for i in folder.list_items()}


def test_a_cloud_synced_folder_follows_its_bucket_sync_by_sync(
    client: EncordUserClient, sandbox: Sandbox, bucket: Path
) -> None:
    folder = _synced(client, sandbox, bucket)
    assert folder.folder_type == StorageFolderType.CLOUD_LINKED and folder.is_cloud_synced
    assert folder.remote_url == (bucket / "cams").as_uri() + "/"

    first = _sync(folder)
    assert first == {"scan_pages_processing_done": 1, "upload_jobs_done": 1, "upload_jobs_units_done": 3,
                     "upload_jobs_units_error": 1}, first  # fmt: skip
    items = _items(folder)
    assert sorted(items) == ["a.png", "b.png", "notes.txt"] and not any(t for _, t, _ in items.values())

    (bucket / "cams" / "b.png").unlink()  # deleted
    (bucket / "cams" / "a.png").write_bytes(samples.png(color=(9, 9, 9)))  # changed
    os.utime(bucket / "cams" / "a.png", ns=(1, 1))
    (bucket / "cams" / "c.png").write_bytes(samples.png(color=(7, 7, 7)))  # new
    second = _sync(folder)
    after = _items(folder)
    assert after["b.png"][:2] == (items["b.png"][0], True)  # a tombstone, the same item
    assert after["a.png"][:2] == (items["a.png"][0], False)  # updated in place
    assert sorted(after) == ["a.png", "b.png", "c.png", "notes.txt"]
    assert second["upload_jobs_units_done"] == 2 and second["upload_jobs_units_error"] == 1  # a updated, c; dcm

    (bucket / "cams" / "b.png").write_bytes(samples.png(color=(4, 5, 6)))  # back
    _sync(folder)
    assert _items(folder)["b.png"][:2] == (items["b.png"][0], False)  # restored, not a second item
    assert len(_items(folder)) == 4


def test_sidecars_become_their_files_metadata_when_ingestion_is_enabled(
    client: EncordUserClient, sandbox: Sandbox, bucket: Path
) -> None:
    folder = _synced(client, sandbox, bucket)
    folder.enable_metadata_ingestion(SidecarMatcherSuffix(suffix=".meta.json"))
    assert folder.get_folder_config().metadata_ingestion.matcher.suffix == ".meta.json"  # type: ignore[union-attr]
    (bucket / "cams" / "a.png.meta.json").write_text(json.dumps({"camera": "front"}))
    (bucket / "cams" / "b.png.meta.json").write_text("[1, 2]")  # not an object: refused

    result = _sync(folder)

    items = _items(folder)
    assert sorted(items) == ["a.png", "b.png", "notes.txt"]  # sidecars are not items
    assert items["a.png"][2] == {"camera": "front"} and items["b.png"][2] == {}
    assert result["upload_jobs_units_error"] == 2  # the DICOM file and the bad sidecar
    (bucket / "cams" / "a.png.meta.json").write_text(json.dumps({"camera": "rear"}))
    os.utime(bucket / "cams" / "a.png.meta.json", ns=(2, 2))
    _sync(folder)
    assert _items(folder)["a.png"][2] == {"camera": "rear"}


def test_only_a_cloud_synced_folder_syncs_and_its_url_must_be_the_integrations(
    client: EncordUserClient, sandbox: Sandbox, bucket: Path, tmp_path: Path
) -> None:
    plain = client.create_storage_folder(f"plain-{uuid.uuid4().hex[:6]}")
    with pytest.raises(InvalidArgumentsError, match="is not a cloud-synced folder"):
        plain.sync_private_data_with_cloud_synced_folder_start()
    integration = sandbox.add_integration(f"sync-{uuid.uuid4().hex[:6]}", "local", root=str(bucket))
    elsewhere = CloudSyncedFolderParams(integration_uuid=uuid.UUID(integration), remote_url=tmp_path.as_uri() + "/x/")
    with pytest.raises(InvalidArgumentsError, match="is not one integration"):
        client.create_storage_folder(f"bad-{uuid.uuid4().hex[:6]}", cloud_synced_folder_params=elsewhere)
