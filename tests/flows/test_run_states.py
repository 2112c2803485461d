"""A run with failures never looks green: "Completed with failures", or Failed above ``max_failures``.

Real parts: the ingest flow under a real Prefect API, uploading a directory with one corrupt image into the
sandbox, which probes every upload as Encord does. The corrupt file does not even start like an image, so the
upload refuses it before sending it: no run, first or re-run, spends a job on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from encord_sandbox import Sandbox
from encord_sandbox.samples import png
from prefect.settings import PREFECT_API_URL

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.flows.ingest import IngestSummary, ingest
from prefect_encord.flows.parameters import LocalSource
from prefect_encord.reporting import COMPLETED_WITH_FAILURES, TooManyFailures
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


def test_a_run_with_a_failed_file_completes_with_failures_and_keeps_the_good_files(
    block: EncordCredentials, media: Path
) -> None:
    state = ingest(LocalSource(directory=str(media)), _folder(), credentials=block, return_state=True)

    assert state.is_completed() and state.name == COMPLETED_WITH_FAILURES
    assert state.message is not None
    assert state.message.startswith("1 failure (1 in files); listed in the 'encord-ingest-run-states-")
    summary = state.result()
    assert isinstance(summary, IngestSummary)
    assert (summary.created, summary.failed, summary.failures) == (GOOD, 1, 1)


def test_a_re_run_keeps_the_good_files_and_never_sends_the_corrupt_one(
    block: EncordCredentials, sandbox: Sandbox, media: Path
) -> None:
    folder = _folder()
    first = ingest(LocalSource(directory=str(media)), folder, credentials=block)
    again = ingest(LocalSource(directory=str(media)), folder, credentials=block, return_state=True)

    assert again.name == COMPLETED_WITH_FAILURES  # the file is still not in Encord, and the run says so
    summary = again.result()
    assert isinstance(summary, IngestSummary) and isinstance(first, IngestSummary)
    assert (summary.created, summary.already_present, summary.failed) == (0, GOOD, 1)
    jobs = sandbox.backend.store.query_one("SELECT count(*) AS n FROM jobs WHERE folder = ?", (first.folder_uuid,))
    assert jobs is not None and jobs["n"] == 1  # the first run's job, for the good files; none since


def test_more_failures_than_max_failures_fail_the_run_and_carry_the_summary(
    block: EncordCredentials, media: Path
) -> None:
    folder = _folder()
    state = ingest(LocalSource(directory=str(media)), folder, credentials=block, max_failures=0, return_state=True)

    assert state.is_failed()
    assert state.message is not None and state.message.endswith("more than max_failures=0")
    carried = state.result(raise_on_failure=False)
    assert isinstance(carried, TooManyFailures)
    assert (carried.result.created, carried.result.failed) == (GOOD, 1)  # the good files landed all the same
    with pytest.raises(TooManyFailures, match="1 failure .*more than max_failures=0"):
        ingest(LocalSource(directory=str(media)), folder, credentials=block, max_failures=0)


def test_enough_headroom_keeps_the_run_completed(block: EncordCredentials, media: Path) -> None:
    state = ingest(LocalSource(directory=str(media)), _folder(), credentials=block, max_failures=1, return_state=True)
    assert state.name == COMPLETED_WITH_FAILURES


def test_a_negative_max_failures_is_refused_before_anything_is_written(block: EncordCredentials, media: Path) -> None:
    with pytest.raises(ValueError, match="max_failures must be 0 or more .*not -1"):
        ingest(LocalSource(directory=str(media)), _folder(), credentials=block, max_failures=-1)


def test_the_cli_exits_non_zero_and_names_the_state(block: EncordCredentials, media: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "NO_PROXY": "127.0.0.1,localhost"}
    command = [str(Path(sys.executable).parent / "prefect-encord"), "ingest", str(media), "--folder", _folder()]
    done = subprocess.run(
        [*command, "--credentials-block", BLOCK, "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{COMPLETED_WITH_FAILURES}: 1 failure (1 in files)" in " ".join(done.stdout.split())
