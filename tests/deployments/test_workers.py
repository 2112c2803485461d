"""Two workers of one Prefect server, as on two machines, ingesting into one folder at once: each file once.

The workers share nothing but the server: each has its own ``PREFECT_HOME`` (job ledger, receipts, inventory)
and its own lock directory, so the machine's ``flock`` cannot meet; only the Prefect global concurrency limit of
the folder (see :mod:`prefect_encord.state.locks`) makes the second run wait and then find every file in place. Each
worker serves a queue of its own and each round sends one run to each, started together.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from encord_sandbox import Sandbox, samples
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_encord.flows.ingest import ingest
from prefect_encord.state.locks import slot_name
from prefect_encord.testing import credentials_block
from tests.deployments.conftest import Processes

BIN = Path(sys.executable).parent
MACHINES = ("machine-a", "machine-b")
FILES = 300
#: Rounds of the race; PREFECT_ENCORD_TEST_ROUNDS raises it (the issue's figure is taken at 20).
ROUNDS = int(os.environ.get("PREFECT_ENCORD_TEST_ROUNDS", "2"))


@pytest.fixture(scope="module")
def machines(stack: dict[str, Any]) -> Iterator[dict[str, UUID]]:
    """A deployment and a worker per machine, on queues of their own; deployment id by machine."""
    processes: Processes = stack["processes"]
    workdir: Path = stack["workdir"]
    deployments = {}
    with temporary_settings(updates={PREFECT_API_URL: stack["api"]}):
        source = ingest.from_source(source=str(workdir), entrypoint="prefect_encord/flows/ingest.py:ingest")
        for machine in MACHINES:
            deployments[machine] = source.deploy(
                name=f"ingest-on-{machine}",
                work_pool_name="encord",
                work_queue_name=machine,
                print_next_steps=False,
                ignore_warnings=True,
            )
    for machine in MACHINES:
        env = {
            **processes.env,
            "PREFECT_HOME": str(workdir / f"{machine}-home"),
            "PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY": str(workdir / f"{machine}-locks"),
        }
        command = ["worker", "start", "--pool", "encord", "--work-queue", machine, "--name", machine, "--limit", "1"]
        processes.running.append((machine, Processes(workdir, env).start(machine, str(BIN / "prefect"), *command)))
    yield deployments


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("two-workers")
    for n in range(FILES):
        (directory / f"frame-{n:04d}.png").write_bytes(samples.png(4, 4, (n % 256, n // 256, 9)))
    return directory


@pytest.mark.timeout(120 + 60 * ROUNDS)
def test_two_workers_of_one_server_ingest_each_file_once(
    stack: dict[str, Any], machines: dict[str, UUID], media: Path, sandbox: Sandbox
) -> None:
    credentials = credentials_block(sandbox)
    client = credentials.get_client()
    waited = 0
    for round_ in range(ROUNDS):
        folder_path = f"two-workers/{uuid.uuid4().hex[:8]}-{round_}"
        parameters = {
            "source": {"directory": str(media)},
            "folder_path": folder_path,
            "credentials": {"$ref": {"block_document_id": stack["credentials_id"]}},
        }
        with temporary_settings(updates={PREFECT_API_URL: stack["api"]}), get_client(sync_client=True) as prefect:
            runs = [prefect.create_flow_run_from_deployment(machines[m], parameters=parameters) for m in MACHINES]
            states = _wait_for(prefect, [run.id for run in runs])
            assert all(state.is_completed() for state in states), (states, stack["processes"].logs())
            workers = {prefect.read_flow_run(run.id).work_queue_name for run in runs}
            logs = [log.message for run in runs for log in _logs(prefect, run.id)]
        assert workers == set(MACHINES)
        waited += any("waiting for it to finish" in message for message in logs)

        folder = next(f for f in client.find_storage_folders(search=folder_path.rsplit("/", 1)[1]))
        names = Counter(item.name for item in folder.list_items())
        assert len(names) == FILES and set(names.values()) == {1}, names.most_common(3)
        with temporary_settings(updates={PREFECT_API_URL: stack["api"]}), get_client(sync_client=True) as prefect:
            limit = prefect.read_global_concurrency_limit_by_name(slot_name(f"folder:{folder.uuid}"))
        assert limit.limit == 1 and limit.active_slots == 0  # held one at a time, and let go
    print(f"{ROUNDS} rounds, two workers, {FILES} files each: each file once; the second run waited in {waited}")


def _wait_for(prefect: Any, run_ids: list[UUID], timeout: float = 420) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [prefect.read_flow_run(run_id).state for run_id in run_ids]
        if all(state is not None and state.is_final() for state in states):
            return states
        time.sleep(1)
    raise TimeoutError(f"flow runs {run_ids} did not finish in {timeout} s")


def _logs(prefect: Any, run_id: UUID) -> list[Any]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    return list(prefect.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200))
