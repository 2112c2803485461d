"""The deployments of ``deployments/prefect.yaml`` on a real local Prefect server, process pool and worker.

Everything runs offline on loopback: ``prefect server start``, ``prefect deploy --all``, a process worker,
the webhook relay (``prefect-encord webhook-relay``) and the sandbox, which sends Encord's workflow webhook
when a label row is completed. Two runs are proved: one started as from the UI (``prefect deployment
run``) and one started by the automation of ``export-on-completion`` when the webhook arrives.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from encord.orm.dataset import DatasetType
from encord_sandbox import Sandbox, samples

BIN = Path(sys.executable).parent


def _labelled_project(sandbox: Sandbox, tmp: Path) -> tuple[str, str]:
    """A project with one image whose label row is created and saved; returns (project hash, data hash)."""
    client = sandbox.credentials().get_client()
    folder = client.create_storage_folder(f"deploy-{uuid.uuid4().hex[:6]}")
    (tmp / "photo.png").write_bytes(samples.png(10, 10, (1, 2, 3)))
    item = folder.upload_image(tmp / "photo.png")
    dataset = client.create_dataset(f"deploy-{uuid.uuid4().hex[:6]}", DatasetType.CORD_STORAGE)
    client.get_dataset(dataset.dataset_hash).link_items([item])
    project_hash = client.create_project(f"deploy-{uuid.uuid4().hex[:6]}", [dataset.dataset_hash])
    (row,) = client.get_project(project_hash).list_label_rows_v2()
    row.initialise_labels()
    row.save()
    return project_hash, row.data_hash


def _flow_runs(api: str, deployment_name: str) -> list[dict[str, Any]]:
    deployment = httpx.get(f"{api}/deployments/name/encord-export-labels/{deployment_name}").json()
    body = {"deployments": {"id": {"any_": [deployment["id"]]}}}
    return list(httpx.post(f"{api}/flow_runs/filter", json=body).json())


def _wait_for_run(api: str, deployment_name: str, stack: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _flow_runs(api, deployment_name)
        finished = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]
        if finished:
            return finished[0]
        time.sleep(1)
    raise AssertionError(f"no finished run of {deployment_name}:\n{stack['processes'].logs()}")


def test_every_deployment_of_prefect_yaml_is_created(stack: dict[str, Any]) -> None:
    names = {d["name"] for d in httpx.post(f"{stack['api']}/deployments/filter", json={}).json()}
    assert {
        "ingest-directory", "ingest-hourly", "ingest-on-upload", "cloud-sync-on-upload", "export-labels",
        "export-on-completion", "watch-labels", "sync-metadata", "rollback",
    } <= names  # fmt: skip
    flows = {f["name"] for f in httpx.post(f"{stack['api']}/flows/filter", json={}).json()}
    assert {"encord-ingest", "encord-export-labels", "encord-sync-metadata", "encord-watch-labels",
            "encord-rollback"} <= flows  # a deployment for every flow  # fmt: skip
    automations = httpx.post(f"{stack['api']}/automations/filter", json={}).json()
    assert any("export-on-completion" in a["name"] for a in automations)


def test_export_started_as_from_the_ui(stack: dict[str, Any], sandbox: Sandbox, tmp_path: Path) -> None:
    project_hash, data_hash = _labelled_project(sandbox, tmp_path)
    destination = {"kind": "local", "directory": str(tmp_path / "ui-export"), "prefix": "labels"}
    stack["processes"].run(
        str(BIN / "prefect"), "deployment", "run", "encord-export-labels/export-labels",
        "--param", f"project_hash={project_hash}", "--param", f"destination={json.dumps(destination)}",
    )  # fmt: skip
    run = _wait_for_run(stack["api"], "export-labels", stack)
    assert run["state_type"] == "COMPLETED", stack["processes"].logs()
    assert (tmp_path / "ui-export" / "labels" / project_hash / "labels" / f"{data_hash}.json").exists()
    # The run was given the credentials block by reference (the deployment's default), never its key.
    assert run["parameters"]["credentials"] == {"$ref": {"block_document_id": stack["credentials_id"]}}


def test_export_triggered_by_an_encord_webhook(stack: dict[str, Any], sandbox: Sandbox, tmp_path: Path) -> None:
    project_hash, data_hash = _labelled_project(sandbox, tmp_path)
    sandbox.add_webhook(f"http://127.0.0.1:{stack['relay_port']}/encord/webhook", project_hash=project_hash)
    (row,) = sandbox.credentials().get_client().get_project(project_hash).list_label_rows_v2()
    row.workflow_complete()  # the sandbox sends task_completed_event → relay → Prefect event → automation

    run = _wait_for_run(stack["api"], "export-on-completion", stack)
    assert run["state_type"] == "COMPLETED", stack["processes"].logs()
    assert run["parameters"]["project_hash"] == project_hash
    # The deployment's default destination: under the worker's PREFECT_HOME, not the working directory.
    exported = stack["prefect_home"] / "encord" / "exports" / "labels" / project_hash / "labels" / f"{data_hash}.json"
    assert exported.exists(), stack["processes"].logs()
