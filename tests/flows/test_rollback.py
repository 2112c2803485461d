"""Rollback never deletes people's labels unasked: a run whose items were labelled since is refused, whole.

The ingest runs in-process (its receipt in a temporary run ledger); the rollbacks run as a person types
them, through the CLI against the same Prefect API and sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from encord_sandbox import Sandbox, samples
from prefect.settings import PREFECT_API_URL

from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.parameters import DatasetStep, LocalSource
from prefect_encord.testing import credentials_block

BLOCK = "rollback-sandbox"


def _items(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one(
        "SELECT count(*) AS n FROM items WHERE folder = ? AND is_placeholder = 0", (folder,)
    )
    assert row is not None
    return int(row["n"])


def _shots(tmp_path: Path, count: int) -> Path:
    """A directory of ``count`` PNGs of their own colour."""
    media = tmp_path / "media"
    media.mkdir()
    for n in range(count):
        (media / f"shot-{n}.png").write_bytes(samples.png(color=(n, 40, 80)))
    return media


def test_rollback_refuses_items_with_labels_unless_forced(
    prefect_harness: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = _shots(tmp_path, 4)
    runs = tmp_path / "runs"
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(runs))
    credentials = credentials_block(sandbox)
    credentials.save(BLOCK, overwrite=True)
    token = uuid.uuid4().hex[:8]
    summary = ingest(
        source=LocalSource(directory=str(media)),
        folder_path=f"rollback/{token}",
        credentials=credentials,
        dataset=DatasetStep(title=f"rollback {token}", project=f"rollback {token}"),
    )
    assert summary.project_hash is not None
    project = credentials.get_client().get_project(summary.project_hash)
    (row,) = [r for r in project.list_label_rows_v2() if r.data_title == "shot-2.png"]
    row.initialise_labels()
    row.save()  # a person opened it and saved a verdict
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    command = [str(Path(sys.executable).parent / "prefect-encord"), "rollback", summary.run_id,
               "--credentials-block", BLOCK, "--home", str(tmp_path / "home")]  # fmt: skip

    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("prefect-encord rollback: ")]
    assert f"1 of the 4 items and groups run {summary.run_id} created have labels" in message
    assert f"project 'rollback {token}' ({summary.project_hash}): 1 item" in message
    assert "nothing was deleted" in message and "--force" in message
    assert "Traceback" not in refused.stderr
    assert _items(sandbox, summary.folder_uuid) == 4

    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, env=env, timeout=180)

    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "deleted 4, already gone 0, failed 0" in forced.stdout
    assert _items(sandbox, summary.folder_uuid) == 0
    assert project.list_label_rows_v2() == []


def test_rollback_undoes_the_folders_attachment_and_schema_keys_and_names_what_encord_cannot_delete(
    prefect_harness: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_encord.flows.parameters import MetadataStep
    from prefect_encord.flows.rollback import rollback
    from prefect_encord.tasks.metadata_schema import read_organisation_schema

    media = _shots(tmp_path, 3)
    token = uuid.uuid4().hex[:8]
    schema = tmp_path / "schema.yaml"
    schema.write_text(f"rollback{token}.camera: varchar\nrollback{token}.score: number\n")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(tmp_path / "runs"))
    credentials = credentials_block(sandbox)
    summary = ingest(
        source=LocalSource(directory=str(media)),
        folder_path=f"undo-{token}/deep/er",
        metadata=MetadataStep(schema_file=str(schema)),
        dataset=DatasetStep(title=f"undo {token}", project=f"undo {token}"),
        credentials=credentials,
    )
    client = credentials.get_client()
    assert summary.project_hash and summary.dataset_hash

    result = rollback(summary.run_id, credentials=credentials)

    assert len(result.deleted) == 3 and len(result.folders_deleted) == 3 and result.folders_kept == {}
    top_level = [f.name for f in client.list_storage_folders(search=f"undo-{token}")]
    assert top_level == []
    _, keys = read_organisation_schema(client)
    assert all(keys[k].deleted for k in (f"rollback{token}.camera", f"rollback{token}.score"))
    assert result.detached == [f"{summary.project_hash} → {summary.dataset_hash}"]
    assert client.get_project(summary.project_hash).list_datasets() == []
    assert list(client.get_dataset(summary.dataset_hash).list_data_rows()) == []
    # Encord's API cannot delete datasets or projects: both are named, with why, for a person to delete.
    assert "cannot delete a dataset" in result.kept[f"dataset {summary.dataset_hash}"]
    assert "cannot delete a project" in result.kept[f"project {summary.project_hash}"]
