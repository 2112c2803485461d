"""A cloud sync through the job engine: a sync an earlier attempt started (its id in the job ledger) is polled,
never started twice; one that finished is forgotten and its start debounces later notifications."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from encord.orm.storage import CloudSyncedFolderParams
from encord_sandbox import Sandbox, samples

from prefect_encord.state.job_ledger import JobLedger, JobRecord, job_key
from prefect_encord.tasks.cloud_sync import SyncKind, sync_synced_folder
from prefect_encord.testing import credentials_block


@pytest.fixture(autouse=True)
def own_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY", str(tmp_path / "inventory"))


def _syncs(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one("SELECT count(*) AS n FROM syncs WHERE folder = ?", (folder,))
    assert row is not None
    return int(row["n"])


def test_a_sync_started_by_an_earlier_attempt_is_resumed_not_started_again(sandbox: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    root.mkdir()
    (root / "a.png").write_bytes(samples.png())
    integration = sandbox.add_integration(f"sync-{uuid.uuid4().hex[:6]}", "local", root=str(root))
    credentials = credentials_block(sandbox)
    params = CloudSyncedFolderParams(integration_uuid=uuid.UUID(integration), remote_url=root.as_uri() + "/")
    folder = credentials.get_client().create_storage_folder(
        f"s-{uuid.uuid4().hex[:6]}", cloud_synced_folder_params=params
    )
    folder_uuid = str(folder.uuid)
    started = folder.sync_private_data_with_cloud_synced_folder_start()  # the attempt that died after starting
    ledger = JobLedger(tmp_path / "ledger")
    spec = SyncKind(60).spec([folder_uuid])
    ledger.record(JobRecord(key=job_key(folder_uuid, "", spec), job_id=str(started), folder_uuid=folder_uuid,
                            integration_id="", submitted_at=datetime.now(timezone.utc), units=1, kind="sync",
                            spec=spec))  # fmt: skip

    resumed = sync_synced_folder.fn(credentials, folder_uuid, ledger_dir=tmp_path / "ledger")

    assert resumed.sync_id == str(started) and resumed.status == "done" and resumed.files_done == 1
    assert _syncs(sandbox, folder_uuid) == 1 and list(ledger.records()) == []  # no second sync; record forgotten
    covered = sync_synced_folder.fn(credentials, folder_uuid, changed_at=datetime.now(timezone.utc) - timedelta(
        minutes=5), ledger_dir=tmp_path / "ledger")  # fmt: skip
    assert covered.sync_id == "" and covered.covered_by and _syncs(sandbox, folder_uuid) == 1
    later = sync_synced_folder.fn(credentials, folder_uuid, changed_at=datetime.now(timezone.utc),
                                  ledger_dir=tmp_path / "ledger")  # fmt: skip
    assert later.sync_id and _syncs(sandbox, folder_uuid) == 2
