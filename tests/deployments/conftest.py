"""One Prefect stack for the deployment tests and the browser test: started once per session.

A real local Prefect server (with its UI, for the browser test), the project's ``deployments/prefect.yaml``
deployed to a process work pool, a worker, and the webhook relay; all on loopback, stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from encord_sandbox import Sandbox
from encord_sandbox.emulators import free_port
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_encord.cli import example_data
from prefect_encord.testing import credentials_block
from tests.servers import wait_until_answering

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


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[dict[str, Any]]:
    """A Prefect server (UI included) with the project's deployments, a worker, and the webhook relay.

    The bundled example is written where the ``ingest-directory`` deployment's defaults point, as
    ``make demo`` would, so a run started with the defaults ingests it.
    """
    workdir = tmp_path_factory.mktemp("deploy-project")
    (workdir / "prefect_encord").symlink_to(ROOT / "prefect_encord")
    shutil.copy(ROOT / "deployments" / "prefect.yaml", workdir / "prefect.yaml")
    example_data.write_example(workdir / ".prefect-encord" / "example")
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
        # SQLite waits up to this long for a lock instead of answering 503, which the UI does not retry (the
        # default, 10 s, is short on a 2-core machine with a worker, the relay and the tests all writing).
        "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
        "PREFECT_API_LOG_RETRYABLE_ERRORS": "true",  # a 503's cause, in the server's log
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("PREFECT_API_KEY", None)
    processes = Processes(workdir, env)
    try:
        server = processes.start(
            "server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)
        )
        wait_until_answering(f"{api}/health", server, "the Prefect server")
        with temporary_settings(updates={PREFECT_API_URL: api}):
            credentials_id = credentials_block(sandbox).save("encord", overwrite=True)
        processes.run(str(BIN / "prefect"), "work-pool", "create", "encord", "--type", "process")
        deployed = processes.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
        relay = processes.start(
            "relay", str(BIN / "prefect-encord"), "webhook-relay", "--host", "127.0.0.1", "--port", str(relay_port),
            "--within", "2",
        )  # fmt: skip
        wait_until_answering(f"http://127.0.0.1:{relay_port}/healthz", relay, "the webhook relay")
        processes.start(  # the default queue only: test_workers.py gives each of its workers a queue of its own
            "worker", str(BIN / "prefect"), "worker", "start", "--pool", "encord", "--work-queue", "default",
            "--limit", "2",
        )  # fmt: skip
        yield {
            "api": api,
            "ui": f"http://127.0.0.1:{port}",
            "workdir": workdir,
            "prefect_home": workdir / "prefect-home",
            "processes": processes,
            "deployed": deployed,
            "relay_port": relay_port,
            "credentials_id": str(credentials_id),  # deployments reference the saved block by this id
        }
    finally:
        processes.stop()
