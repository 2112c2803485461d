"""The deployments of ``deployments/prefect.yaml`` on a real local Prefect server, process pool and worker.

Everything runs offline on loopback: ``prefect server start``, ``prefect deploy --all``, a process worker,
the webhook relay (``prefect-encord webhook-relay``) and the sandbox, which sends Encord's workflow webhook
when a label row is completed. Two runs are proved: one started as from the UI (``prefect deployment
run``) and one started by the automation of ``export-on-completion`` when the webhook arrives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from encord.orm.dataset import DatasetType
from encord_sandbox import Sandbox, samples
from encord_sandbox.emulators import free_port
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_encord.testing import credentials_block

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Processes:
    """Background processes of the test, stopped (and their logs kept for failures) at the end."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((name, process))
        return process

    def run(self, *command: str) -> str:
        done = subprocess.run(command, cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def logs(self) -> str:
        tails = (f"--- {name}\n{(self.workdir / f'{name}.log').read_text()[-3000:]}" for name, _ in self.running)
        return "\n".join(tails)

    def stop(self) -> None:
        for _, process in reversed(self.running):
            process.terminate()
        for _, process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not answer at {url}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[dict[str, Any]]:
    """A Prefect server with the project's deployments, a worker, and the webhook relay."""
    workdir = tmp_path_factory.mktemp("deploy-project")
    (workdir / "prefect_encord").symlink_to(ROOT / "prefect_encord")
    shutil.copy(ROOT / "deployments" / "prefect.yaml", workdir / "prefect.yaml")
    port, relay_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        "PWD": str(workdir),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("PREFECT_API_KEY", None)
    processes = Processes(workdir, env)
    try:
        server = processes.start(
            "server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"
        )
        _wait_for(f"{api}/health", server, "the Prefect server")
        with temporary_settings(updates={PREFECT_API_URL: api}):
            credentials_block(sandbox).save("encord", overwrite=True)
        processes.run(str(BIN / "prefect"), "work-pool", "create", "encord", "--type", "process")
        deployed = processes.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
        relay = processes.start(
            "relay", str(BIN / "prefect-encord"), "webhook-relay", "--host", "127.0.0.1", "--port", str(relay_port)
        )
        _wait_for(f"http://127.0.0.1:{relay_port}/healthz", relay, "the webhook relay")
        processes.start("worker", str(BIN / "prefect"), "worker", "start", "--pool", "encord", "--limit", "2")
        yield {"api": api, "workdir": workdir, "processes": processes, "deployed": deployed, "relay_port": relay_port}
    finally:
        processes.stop()


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
    assert {"ingest-hourly", "export-labels", "export-on-completion", "watch-labels"} <= names
    automations = httpx.post(f"{stack['api']}/automations/filter", json={}).json()
    assert any("export-on-completion" in a["name"] for a in automations)


def test_export_started_as_from_the_ui(stack: dict[str, Any], sandbox: Sandbox, tmp_path: Path) -> None:
    project_hash, data_hash = _labelled_project(sandbox, tmp_path)
    destination = {"kind": "local", "location": str(tmp_path / "ui-export"), "prefix": "labels"}
    stack["processes"].run(
        str(BIN / "prefect"), "deployment", "run", "encord-export-labels/export-labels",
        "--param", f"project_hash={project_hash}", "--param", f"destination={json.dumps(destination)}",
    )  # fmt: skip
    run = _wait_for_run(stack["api"], "export-labels", stack)
    assert run["state_type"] == "COMPLETED", stack["processes"].logs()
    assert (tmp_path / "ui-export" / "labels" / project_hash / "labels" / f"{data_hash}.json").exists()
    # The run was given the credentials block by reference (the deployment's default), never its key.
    assert run["parameters"]["credentials"] == {"$ref": {"block_document_slug": "encord-credentials/encord"}}


def test_export_triggered_by_an_encord_webhook(stack: dict[str, Any], sandbox: Sandbox, tmp_path: Path) -> None:
    project_hash, data_hash = _labelled_project(sandbox, tmp_path)
    sandbox.add_webhook(f"http://127.0.0.1:{stack['relay_port']}/encord/webhook", project_hash=project_hash)
    (row,) = sandbox.credentials().get_client().get_project(project_hash).list_label_rows_v2()
    row.workflow_complete()  # the sandbox sends task_completed_event → relay → Prefect event → automation

    run = _wait_for_run(stack["api"], "export-on-completion", stack)
    assert run["state_type"] == "COMPLETED", stack["processes"].logs()
    assert run["parameters"]["project_hash"] == project_hash
    exported = stack["workdir"] / "exports" / "labels" / project_hash / "labels" / f"{data_hash}.json"
    assert exported.exists(), stack["processes"].logs()
