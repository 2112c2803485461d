"""An ingest through Encord's cloud-synced folder, event-driven: the folder is created bound to the bucket, each
notified change triggers one sync (a burst, one), and every outcome is Encord's: new files become items, deleted
ones tombstones, returning ones restored with the same item, changed ones updated in place, sidecars metadata.

Real parts: the flow under a real Prefect API, the S3 emulator, the sandbox's cloud-synced folders and syncs.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from encord.orm.storage import StorageFolderType
from encord_sandbox import Sandbox, samples
from prefect.client.schemas.objects import State

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.ingest_summary import IngestSummary
from prefect_encord.flows.parameters import CloudSource, DatasetStep, GroupingStep
from prefect_encord.planning.grouping import KeyPattern
from prefect_encord.state.item_map import ItemMap
from prefect_encord.testing import credentials_block
from tests.integration_buckets import add_sandbox_integration, new_bucket

SUFFIX = ".metadata.json"


@pytest.fixture(autouse=True)
def own_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY", str(tmp_path / "inventory"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(tmp_path / "runs"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(tmp_path / "jobs"))


def _syncs(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one("SELECT count(*) AS n FROM syncs WHERE folder = ?", (folder,))
    assert row is not None
    return int(row["n"])


def test_notified_changes_sync_the_cloud_synced_folder_once_per_burst_with_encords_outcomes(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    files = {"cams/a.png": samples.png(color=(1, 1, 1)), "cams/b.png": samples.png(color=(2, 2, 2)),
             f"cams/a.png{SUFFIX}": b'{"camera": "front"}', "cams/scan.dcm": samples.dicom()}  # fmt: skip
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request),
                       prefix="cams")  # fmt: skip
    assert isinstance(block, EncordS3Integration)
    credentials, folder_path = credentials_block(sandbox), f"synced/{uuid.uuid4().hex[:8]}"

    def run(changed_at: datetime | None = None) -> tuple[State[IngestSummary], IngestSummary]:
        source = CloudSource(block=block, method="encord-cloud-sync", sidecar_suffix=SUFFIX, changed_at=changed_at)
        state = ingest(source, folder_path, credentials=credentials, return_state=True, max_failures=5)
        summary = state.result()
        assert isinstance(summary, IngestSummary)
        return state, summary

    def items() -> dict[str, tuple[str, bool, dict[str, object]]]:
        folder = credentials.get_client().get_storage_folder(uuid.UUID(first.folder_uuid))
        return {i.name: (str(i.uuid), i._orm_item.is_tombstone, dict(i.client_metadata or {}))
                for i in folder.list_items()}  # fmt: skip

    state, first = run()
    folder = credentials.get_client().get_storage_folder(uuid.UUID(first.folder_uuid))
    assert folder.folder_type == StorageFolderType.CLOUD_LINKED and folder.remote_url == block.remote_url
    assert first.counts["files"] == {"synced": 3, "failed": 1}, first.counts  # 2 files and a sidecar; the DICOM
    assert state.name == "Completed with failures"
    before = items()
    assert sorted(before) == ["a.png", "b.png"] and before["a.png"][2] == {"camera": "front"}

    burst = datetime.now(timezone.utc)  # a burst of changes, notified at once
    block.write_object("cams/a.png", samples.png(color=(9, 9, 9)))
    block.write_object(f"cams/a.png{SUFFIX}", json.dumps({"camera": "rear"}).encode())
    block.write_object("cams/c.png", samples.png(color=(3, 3, 3)))
    block.delete_object("cams/b.png")
    runs = [run(changed_at=burst)[1] for _ in range(3)]  # the runs the burst's events queued, one after another

    assert _syncs(sandbox, first.folder_uuid) == 2  # the first run's sync, then one for the whole burst
    assert [r.counts["files"].get("skipped", 0) for r in runs] == [0, 1, 1]  # covered by the burst's sync
    after = items()
    assert after["a.png"][:2] == (before["a.png"][0], False) and after["a.png"][2] == {"camera": "rear"}  # updated
    assert after["b.png"][:2] == (before["b.png"][0], True)  # a tombstone, kept
    assert "c.png" in after and ItemMap.read(runs[0].item_map).to_dict() == {}  # no dataset step: nothing mapped

    block.write_object("cams/b.png", files["cams/b.png"])  # it returns
    run(changed_at=datetime.now(timezone.utc))
    assert items()["b.png"][:2] == (before["b.png"][0], False)  # restored: the same item, not a second one
    assert len(items()) == 3

    linked = ingest(CloudSource(block=block, method="encord-cloud-sync", sidecar_suffix=SUFFIX), folder_path,
                    dataset=DatasetStep(title=f"synced {first.folder_uuid}"), credentials=credentials,
                    max_failures=5)  # fmt: skip
    assert linked.linked == 3 and len(ItemMap.read(linked.item_map).to_dict()) == 3  # the live items, mapped


def test_a_cloud_sync_refuses_what_only_our_registration_does(prefect_harness: None, sandbox: Sandbox) -> None:
    block = EncordS3Integration(bucket_name="unused", integration="unused", endpoint_url="http://127.0.0.1:9")
    grouping = GroupingStep(rule=KeyPattern(pattern=r"(?P<key>\w+)"))
    for source, kwargs, message in [
        (CloudSource(block=block, method="encord-cloud-sync"), {"grouping": grouping}, "grouping needs method"),
        (CloudSource(block=block, method="encord-cloud-sync", include=["*.png"]), {}, "include=\\['\\*.png'\\] needs"),
        (CloudSource(block=block, method="encord-cloud-sync", on_vanished="delete"), {}, "on_vanished='delete' needs"),
        (CloudSource(block=block, method="encord-cloud-sync", sidecar_mode="overwrite"), {}, "sidecar_mode='overwr"),
    ]:
        with pytest.raises(ValueError, match=message):
            ingest(source, "never", credentials=credentials_block(sandbox), **kwargs)
