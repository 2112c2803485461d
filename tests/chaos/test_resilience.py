"""Our tasks against each kind of fault, one at a time: every file ends up exactly once, failures are reported.

Each test aims one fault (by route and a fault budget) at one step, so that what it proves is clear: a lost
job-start answer does not duplicate, Retry-After is honoured, a poll that keeps failing is resumed, a unit
that fails once is registered by the retry. The job engine's faults run over both paths (a bucket registered,
a directory uploaded); the upload's own steps (PUTs, image groups) have tests of their own.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from encord.storage import StorageFolder
from encord_sandbox import samples
from encord_sandbox.chaos import ChaosConfig
from encord_sandbox.server import Sandbox

from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.tasks.uploads import UploadResult, upload_directory
from prefect_encord.testing import credentials_block
from tests.chaos.conftest import ChaoticSandbox, new_folder
from tests.integration_buckets import add_sandbox_integration, new_bucket

JOB_START = r"^POST .*/data-upload-jobs$"
POLL = r"^GET .*/data-upload-jobs/\{id\}$"
PUT = r"^PUT /_blobs/"
#: Ten quick attempts: at the fault rates below, a file whose every attempt meets a fault is a one-in-a-million.
FAST_PUTS = RetryPolicy(max_attempts=10, backoff_seconds=0.05)


def _jobs(sandbox: Sandbox, folder: StorageFolder) -> int:
    row = sandbox.backend.store.query_one("SELECT count(*) AS n FROM jobs WHERE folder = ?", (str(folder.uuid),))
    assert row is not None
    return int(row["n"])


#: The engine's faults are met on both paths: registering a bucket and uploading a directory.
SOURCES = ("cloud", "local")


def _ingest(
    chaotic_sandbox: ChaoticSandbox,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    config: ChaosConfig,
    files: int,
    source: str,
) -> tuple[Sandbox, StorageFolder, dict[str, str], tuple[str, ...]]:
    """Register ``files`` PNGs from a fresh bucket, or upload them from a directory, under ``config``; returns
    the sandbox, the folder, the items created (by URL or path) and the errors reported."""
    sandbox = chaotic_sandbox(config)
    pngs = {f"f-{n:03d}.png": samples.png(color=(n, 1, 2)) for n in range(files)}
    _, folder = new_folder(sandbox)
    credentials, ledger = credentials_block(sandbox), tmp_path / "ledger"
    if source == "local":
        (tmp_path / "files").mkdir()
        for name, data in pngs.items():
            (tmp_path / "files" / name).write_bytes(data)
        uploaded = upload_directory.fn(credentials, folder.uuid, tmp_path / "files", ledger_dir=ledger)
        return sandbox, folder, uploaded.items, tuple(uploaded.failed.values())
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, pngs, integration=integration)
    result = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=ledger)
    return sandbox, folder, result.created, tuple(f.error for f in result.unit_errors)


def _identity(metadata: dict[str, object]) -> tuple[object, object]:
    """A local file's identity: its path and its content (two files with the same bytes are two items)."""
    return metadata[PATH_KEY], metadata[IDENTITY_KEY]


def _assert_each_once(folder: StorageFolder, expected: int, key: str = "url") -> None:
    items = list(folder.list_items())
    identities = Counter(item.url if key == "url" else _identity(item.client_metadata or {}) for item in items)
    assert len(items) == expected and set(identities.values()) == {1}


def _key(source: str) -> str:
    return "url" if source == "cloud" else "digest"


@pytest.mark.parametrize("source", SOURCES)
def test_a_job_start_whose_answer_was_lost_is_started_again_without_duplicates(
    chaotic_sandbox: ChaoticSandbox, request: pytest.FixtureRequest, tmp_path: Path, source: str
) -> None:
    config = ChaosConfig(seed=1, drop_rate=1.0, routes=(JOB_START,), max_faults=1)

    sandbox, folder, created, errors = _ingest(chaotic_sandbox, request, tmp_path, config, 20, source)

    assert len(created) == 20 and errors == ()  # the twin job's items count as created, not as "already there"
    assert _jobs(sandbox, folder) == 2  # the orphan and its twin
    _assert_each_once(folder, 20, _key(source))
    assert list((tmp_path / "ledger").iterdir()) == []


@pytest.mark.parametrize("source", SOURCES)
def test_throttled_and_refused_job_starts_wait_as_asked(
    chaotic_sandbox: ChaoticSandbox, request: pytest.FixtureRequest, tmp_path: Path, source: str
) -> None:
    config = ChaosConfig(seed=1, error_rate=0.5, throttle_rate=0.5, retry_after_seconds=2, routes=(JOB_START,),
                         max_faults=3)  # fmt: skip
    started = time.perf_counter()

    sandbox, folder, created, errors = _ingest(chaotic_sandbox, request, tmp_path, config, 5, source)

    assert len(created) == 5 and errors == () and _jobs(sandbox, folder) == 1  # refused starts did nothing
    stats = sandbox.backend.chaos.stats() if sandbox.backend.chaos else {}
    assert stats["faults"]["throttle"] >= 1 and time.perf_counter() - started >= 2  # Retry-After: 2
    _assert_each_once(folder, 5, _key(source))


@pytest.mark.parametrize("source", SOURCES)
def test_a_poll_that_keeps_failing_is_polled_again(
    chaotic_sandbox: ChaoticSandbox, request: pytest.FixtureRequest, tmp_path: Path, source: str
) -> None:
    # Five throttled polls in a row: the SDK gives up after four (1 s apart, as asked), our retry polls again.
    config = ChaosConfig(seed=1, throttle_rate=1.0, retry_after_seconds=1, routes=(POLL,), max_faults=5)

    sandbox, folder, created, errors = _ingest(chaotic_sandbox, request, tmp_path, config, 5, source)

    assert len(created) == 5 and errors == () and _jobs(sandbox, folder) == 1  # a known job is never restarted
    _assert_each_once(folder, 5, _key(source))


@pytest.mark.parametrize("source", SOURCES)
def test_units_that_fail_once_are_registered_by_the_retry(
    chaotic_sandbox: ChaoticSandbox,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    source: str,
) -> None:
    config = ChaosConfig(seed=1, unit_failure_rate=0.4, poll_timeout_rate=0.5)

    sandbox, folder, created, errors = _ingest(chaotic_sandbox, request, tmp_path, config, 30, source)

    assert len(created) == 30 and errors == ()
    failed_once = sandbox.backend.chaos.stats()["faults"]["unit_failure"] if sandbox.backend.chaos else 0
    assert failed_once > 0 and _jobs(sandbox, folder) == 2
    recovered = [r.getMessage() for r in caplog.records if "and was registered by job" in r.getMessage()]
    assert len(recovered) == failed_once and all("transient fault" in line for line in recovered)
    _assert_each_once(folder, 30, _key(source))


def _tree(root: Path, singles: int) -> Path:
    """``singles`` PNGs, two image groups of three frames, and one truncated PNG (its signature is right, so it
    is uploaded and fails in Encord); every content distinct."""
    root.mkdir()
    for n in range(singles):
        (root / f"img-{n:03d}.png").write_bytes(samples.png(color=(n, 9, 9)))
    for group in ("views-a", "views-b"):
        (root / group).mkdir()
        for n in range(3):
            (root / group / f"{n}.png").write_bytes(samples.png(color=(n, ord(group[-1]), 1)))
    (root / "corrupt.png").write_bytes(samples.png(color=(1, 2, 3))[:40])
    return root


def _upload(sandbox: Sandbox, folder: StorageFolder, root: Path, tmp_path: Path) -> UploadResult:
    return upload_directory.fn(credentials_block(sandbox), folder.uuid, root, image_groups=["views-*"],
                               retry_policy=FAST_PUTS, ledger_dir=tmp_path / "ledger")  # fmt: skip


def test_an_upload_survives_a_lost_job_start_answer_without_duplicates(
    chaotic_sandbox: ChaoticSandbox, tmp_path: Path
) -> None:
    sandbox = chaotic_sandbox(ChaosConfig(seed=1, drop_rate=1.0, routes=(JOB_START,), max_faults=1))
    _, folder = new_folder(sandbox)

    result = _upload(sandbox, folder, _tree(tmp_path / "tree", 12), tmp_path)

    assert len(result.items) == 14 and set(result.failed) == {"corrupt.png"}
    assert "not a readable image" in result.failed["corrupt.png"]  # reported, after its retry failed too
    assert _jobs(sandbox, folder) == 3 and len(result.jobs) == 2  # the orphan, its twin, the corrupt file's retry
    _assert_each_once(folder, 14, key="digest")  # the orphan job and its twin share items and image groups
    assert list((tmp_path / "ledger").iterdir()) == []


def test_an_upload_survives_faulty_transfers_and_failing_units(chaotic_sandbox: ChaoticSandbox, tmp_path: Path) -> None:
    config = ChaosConfig(seed=2, error_rate=0.1, throttle_rate=0.1, drop_rate=0.1, retry_after_seconds=1,
                         unit_failure_rate=0.3, routes=(PUT,))  # fmt: skip
    sandbox = chaotic_sandbox(config)
    _, folder = new_folder(sandbox)

    result = _upload(sandbox, folder, _tree(tmp_path / "tree", 30), tmp_path)

    assert len(result.items) == 32 and set(result.failed) == {"corrupt.png"}
    faults = sandbox.backend.chaos.stats()["faults"] if sandbox.backend.chaos else {}
    assert {"error", "throttle", "drop", "unit_failure"} <= set(faults)
    _assert_each_once(folder, 32, key="digest")
