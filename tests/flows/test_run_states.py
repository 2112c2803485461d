"""A run with failures never looks green: Failed by default, "Completed with failures" within ``max_failures``;
an event announces the failures either way.

Real parts: the ingest flow under a real Prefect API, uploading a directory with one corrupt image into the
sandbox, which probes every upload as Encord does. The corrupt file does not even start like an image, so the
upload refuses it before sending it: no run, first or re-run, spends a job on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from encord_sandbox import Sandbox
from encord_sandbox.samples import png
from prefect.settings import PREFECT_API_URL

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.names import RUN_FAILURES_EVENT
from prefect_encord.events.reporting import COMPLETED_WITH_FAILURES, TooManyFailures
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.ingest_summary import IngestSummary
from prefect_encord.flows.parameters import LocalSource
from prefect_encord.testing import credentials_block

BLOCK = "run-states-sandbox"
GOOD = 3


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good PNGs of their own colour and one that is not an image at all."""
    root = tmp_path_factory.mktemp("run-states")
    for i in range(GOOD):
        (root / f"good-{i}.png").write_bytes(png(color=(40 * i, 7, 99)))
    (root / "corrupt.png").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def block(prefect_harness: None, sandbox: Sandbox) -> EncordCredentials:
    credentials = credentials_block(sandbox)
    credentials.save(BLOCK, overwrite=True)
    return credentials


def _folder() -> str:
    return f"run-states/{uuid.uuid4().hex[:8]}"


def _events(about: str, since: float, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The run-failures events about ``about`` (a folder's resource id) since ``since``, polled until one arrives."""
    body = {
        "filter": {"event": {"name": [RUN_FAILURES_EVENT]}, "any_resource": {"id": [about]},
                   "occurred": {"since": datetime.fromtimestamp(since, timezone.utc).isoformat()}},
        "limit": 10,
    }  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        found = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body).json()["events"]
        if found or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.5)


def test_a_run_with_a_failed_file_fails_says_what_to_do_and_keeps_the_good_files(
    block: EncordCredentials, media: Path
) -> None:
    since = time.time()
    state = ingest(LocalSource(directory=str(media)), _folder(), credentials=block, return_state=True)

    assert state.is_failed() and state.name == "Failed"
    assert state.message is not None
    assert state.message.startswith("1 failure (1 in files); listed in the 'encord-ingest-run-states-")
    carried = state.result(raise_on_failure=False)
    assert isinstance(carried, TooManyFailures)
    summary = carried.result
    assert (summary.created, summary.failed, summary.failures) == (GOOD, 1, 1)  # the good files landed all the same
    assert f"`prefect-encord rollback {summary.run_id}`" in state.message and "max_failures=0" in state.message
    (event,) = _events(f"encord.folder.{summary.folder_uuid}", since)
    assert event["payload"]["state"] == "Failed" and event["payload"]["by_kind"] == {"files": 1}
    assert event["resource"]["prefect.resource.name"] == summary.folder_path
    with pytest.raises(TooManyFailures, match="1 failure .*max_failures=0"):
        ingest(LocalSource(directory=str(media)), summary.folder_path, credentials=block)


def test_a_re_run_keeps_the_good_files_and_never_sends_the_corrupt_one(
    block: EncordCredentials, sandbox: Sandbox, media: Path
) -> None:
    folder = _folder()
    first = ingest(LocalSource(directory=str(media)), folder, credentials=block, return_state=True)
    again = ingest(LocalSource(directory=str(media)), folder, credentials=block, return_state=True)

    assert again.is_failed()  # the file is still not in Encord, and the run says so
    summary = again.result(raise_on_failure=False).result
    assert isinstance(summary, IngestSummary)
    assert (summary.created, summary.already_present, summary.failed) == (0, GOOD, 1)
    jobs = sandbox.backend.store.query_one("SELECT count(*) AS n FROM jobs WHERE folder = ?", (summary.folder_uuid,))
    assert jobs is not None and jobs["n"] == 1  # the first run's job, for the good files; none since
    assert first.is_failed()


def test_a_tolerance_keeps_the_run_completed_with_failures_and_still_announces_them(
    block: EncordCredentials, media: Path
) -> None:
    since = time.time()
    state = ingest(LocalSource(directory=str(media)), _folder(), credentials=block, max_failures=1, return_state=True)
    assert state.is_completed() and state.name == COMPLETED_WITH_FAILURES
    assert state.message is not None and "within max_failures=1" in state.message
    summary = state.result()
    assert isinstance(summary, IngestSummary)
    (event,) = _events(f"encord.folder.{summary.folder_uuid}", since)
    assert event["payload"]["state"] == COMPLETED_WITH_FAILURES


def test_a_negative_max_failures_is_refused_before_anything_is_written(block: EncordCredentials, media: Path) -> None:
    with pytest.raises(ValueError, match="max_failures must be 0 or more, not -1"):
        ingest(LocalSource(directory=str(media)), _folder(), credentials=block, max_failures=-1)


def test_the_cli_exits_non_zero_and_names_the_state(block: EncordCredentials, media: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "NO_PROXY": "127.0.0.1,localhost"}
    command = [str(Path(sys.executable).parent / "prefect-encord"), "ingest", str(media), "--folder", _folder()]
    done = subprocess.run(
        [*command, "--credentials-block", BLOCK, "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Failed: 1 failure (1 in files)" in " ".join(done.stdout.split())


def test_the_readme_automation_for_failures_is_accepted_by_prefect(block: EncordCredentials) -> None:
    """The README's alerting automation, with a real notification block's id, as ``prefect automation create``
    would send it."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = readme.split("```yaml\nname: encord-run-failures\n", 1)[1].split("```", 1)[0]
    notify = CustomWebhookNotificationBlock(name="alerts", url="http://127.0.0.1:9/hook")
    notify_id = notify.save("run-failures-alerts", overwrite=True)
    spec = yaml.safe_load("name: encord-run-failures\n" + text.replace("YOUR NOTIFICATION BLOCK ID", str(notify_id)))

    created = Automation.model_validate(spec).create()

    assert created.trigger.expect == {RUN_FAILURES_EVENT}  # type: ignore[union-attr]
    created.delete()
