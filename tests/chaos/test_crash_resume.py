"""Crash-resume: the ingest process killed at each crash point, then run again, ends exactly as a clean run.

The sandbox runs in a process of its own (``encord-sandbox serve``), so it outlives the ingest it
serves, as Encord would. Each ingest runs in a child process (forked from a server that imported the flow
once), against the session's Prefect API, and ``PREFECT_ENCORD_CRASH_AT`` makes it ``os._exit(137)`` at the
named point (see :mod:`prefect_encord.runtime.crashpoints`). The same ingest then runs again without it, with the
same job ledger, and the folder, its data groups and the dataset must equal those of a clean run: the same
items (by type, name, URL and content digest), each exactly once. Every long poll is answered 0.3 s late
(chaos ``slow`` on that route only), so a ``mid-poll`` crash, armed 0.1 s after the poll is sent, always
lands while the poll waits.
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
from encord.orm.storage import StorageItemType
from encord.storage import StorageItem
from encord_sandbox import samples
from encord_sandbox.chaos import ChaosConfig
from encord_sandbox.process import sandbox_process
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.settings import PREFECT_API_URL

from prefect_encord import EncordCredentials
from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.cli.example_data import GROUP_LAYOUT, GROUP_PATTERN
from prefect_encord.flows.rollback import rollback
from prefect_encord.planning.identity_keys import IDENTITY_KEY
from prefect_encord.runtime.crashpoints import CRASH_AT_ENV, CRASH_EXIT_CODE, CRASH_POINTS
from prefect_encord.state.run_ledger import load
from prefect_encord.tasks.datasets import get_or_create_dataset
from prefect_encord.tasks.folders import get_or_create_folder
from tests.chaos.conftest import prepare_served_sandbox, served_credentials
from tests.chaos.crash_worker import run_ingest
from tests.integration_buckets import new_bucket

CREDENTIALS_BLOCK = "chaos-crash-sandbox"
BUCKET_BLOCK = "chaos-crash-bucket"
#: The data-job engine's points are reached by local uploads and cloud registrations alike: each runs on both.
JOB_POINTS = sorted(point for point in CRASH_POINTS if point.startswith("job."))
#: The other points, with the source that reaches them.
SOURCE_OF = {point: "local" if point.startswith("upload.") else "cloud" for point in CRASH_POINTS}
CASES = [(point, source) for point in JOB_POINTS for source in ("local", "cloud")] + [
    (point, SOURCE_OF[point]) for point in sorted(CRASH_POINTS) if point not in JOB_POINTS
]
#: Crash at the 5th PUT rather than the first, so the batch is half sent.
NTH = {"upload.mid-put": 5}
#: Where the job's body was already in the ledger: the re-run finishes that job first, never starting it twice.
FINISHED = "finished 1 data jobs an earlier run left unfinished"
RESUMED = dict.fromkeys(JOB_POINTS, FINISHED)
SLOW_POLLS = ChaosConfig(slow_rate=1.0, slow_seconds=0.3, routes=(r"^GET .*/data-upload-jobs/\{id\}$",))


def _media() -> dict[str, bytes]:
    """Camera pairs (grouped by the flow), singles, and one corrupt file that fails in every run alike."""
    files = {f"scene-{n}_{role}.png": samples.png(color=(n, role == "rear", 7)) for n in range(6)
             for role in ("front", "rear")}  # fmt: skip
    files.update({f"single-{n:02d}.png": samples.png(color=(n, 99, 3)) for n in range(10)})
    files["broken.png"] = b"not an image at all"
    return files


@dataclass(frozen=True)
class Ingests:
    """Runs ingests in child processes against the served sandbox and reads back what they left."""

    context: ForkServerContext
    api_url: str
    work: Path
    credentials: EncordCredentials
    directory: Path
    bucket: EncordS3Integration

    def bucket_url(self, key: str) -> str:
        return self.bucket.object_url(key)

    def run(self, name: str, source: str, crash_at: str | None = None) -> tuple[int | None, str]:
        """Ingest ``source`` (cloud or local) into ``crash/<name>``; returns the child's exit code and output."""
        scenario = self.work / name
        scenario.mkdir(parents=True, exist_ok=True)
        env = {
            CRASH_AT_ENV: crash_at or "",
            "PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY": str(scenario / "job-ledger"),
            "PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY": str(scenario / "runs"),
            # A killed run's server slot lapses only after its lease (a minute): these runs meet on the machine's
            # locks alone, and the slots are proven by tests/hardening/test_workers.py.
            "PREFECT_INTEGRATIONS_ENCORD_SERVER_LOCKS": "false",
        }
        log = scenario / "output.log"
        arguments = (env, self.api_url, str(log), self._parameters(name, source))
        child = self.context.Process(target=run_ingest, args=arguments)
        child.start()
        child.join(timeout=240)
        if child.is_alive():
            child.kill()
        return child.exitcode, log.read_text(errors="replace") if log.exists() else ""

    def _parameters(self, name: str, source: str) -> dict[str, Any]:
        return {
            "source": {"kind": "cloud", "block": self.bucket}
            if source == "cloud"
            else {"kind": "local", "directory": str(self.directory), "image_groups": ["burst"]},
            "folder_path": f"crash/{name}",
            "credentials": self.credentials,
            "grouping": {"rule": {"kind": "key_pattern", "pattern": GROUP_PATTERN}, "layout": GROUP_LAYOUT},
            "dataset": {"title": f"crash {name}"},
            "max_failures": 1,  # the one bad file, known: the run completes with failures, its exit code is 0
        }

    def state(self, name: str) -> dict[str, Counter[Any]]:
        """What ingest ``name`` left: items, data groups (with members) and dataset rows, each with a count."""
        client = self.credentials.get_client()
        folder = client.get_storage_folder(uuid.UUID(get_or_create_folder.fn(self.credentials, f"crash/{name}")))
        items = list(folder.list_items())
        files = Counter(_identity(item) for item in items if item.item_type != StorageItemType.GROUP)
        groups = Counter(
            (item.name, tuple(child.name for child in item.get_child_items()))
            for item in items
            if item.item_type == StorageItemType.GROUP
        )
        dataset = client.get_dataset(get_or_create_dataset.fn(self.credentials, f"crash {name}").dataset_hash)
        return {"files": files, "groups": groups, "dataset": Counter(row.title for row in dataset.list_data_rows())}


def _identity(item: StorageItem) -> tuple[str, str, str | None, str | None]:
    """Type, name, and URL (registered objects) or content digest (uploads: their URL is a per-run slot key)."""
    digest = (item.client_metadata or {}).get(IDENTITY_KEY)
    return item.item_type.value, item.name, item.url if digest is None else None, digest


@pytest.fixture(scope="module")
def ingests(
    prefect_harness: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ingests]:
    work = tmp_path_factory.mktemp("crash")
    data_dir = work / "sandbox"
    prepare_served_sandbox(data_dir, request.getfixturevalue("s3_endpoint"), "crash-s3")
    bucket = new_bucket("s3", request, _media(), integration="crash-s3")
    assert isinstance(bucket, EncordS3Integration)
    directory = work / "media"
    (directory / "burst").mkdir(parents=True)
    for name, data in _media().items():
        (directory / name).write_bytes(data)
    for frame in range(3):
        (directory / "burst" / f"{frame}.png").write_bytes(samples.png(color=(frame, 1, 1)))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.chaos.crash_worker"])
    with sandbox_process(data_dir, chaos=SLOW_POLLS) as domain:
        credentials = served_credentials(data_dir, domain)
        credentials.save(CREDENTIALS_BLOCK, overwrite=True)
        bucket.save(BUCKET_BLOCK, overwrite=True)
        yield Ingests(context, str(PREFECT_API_URL.value()), work, credentials, directory, bucket)


@pytest.fixture(scope="module")
def clean(ingests: Ingests) -> dict[str, dict[str, Counter[Any]]]:
    """What a run that is never interrupted leaves, per source."""
    states = {}
    for source in ("cloud", "local"):
        code, output = ingests.run(source, source)
        assert code == 0, output[-3000:]
        states[source] = ingests.state(source)
    return states


def test_a_clean_run_registers_every_good_file_once_and_reports_the_bad_one(
    ingests: Ingests, clean: dict[str, dict[str, Counter[Any]]]
) -> None:
    for state in clean.values():
        assert sum(state["files"].values()) == len(state["files"]) >= 22  # each item once; broken.png is not one
        assert len(state["groups"]) == 6 and set(state["dataset"].values()) == {1}
    assert ("imageGroup", "burst") in {(kind, name) for kind, name, _, _ in clean["local"]["files"]}
    assert all(digest for _, _, _, digest in clean["local"]["files"])
    code, _ = ingests.run("cloud", "cloud")  # a re-run of a finished ingest changes nothing either
    assert code == 0 and ingests.state("cloud") == clean["cloud"]
    with get_client(sync_client=True) as prefect:
        (table,) = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="encord-ingest-%-outcomes")),
            sort=ArtifactSort.CREATED_DESC, limit=1,
        )  # fmt: skip
    rows = json.loads(str(table.data))
    assert [row["subject"] for row in rows if row["status"] == "failed"] == [ingests.bucket_url("broken.png")]


@pytest.mark.parametrize(("point", "source"), CASES, ids=[f"{point}-{source}" for point, source in CASES])
def test_a_run_killed_at_a_crash_point_is_repaired_by_running_it_again(
    ingests: Ingests, clean: dict[str, dict[str, Counter[Any]]], point: str, source: str
) -> None:
    crash_at = f"{point}:{NTH[point]}" if point in NTH else point
    name = f"at/{point}-{source}"

    code, output = ingests.run(name, source, crash_at=crash_at)
    assert code == CRASH_EXIT_CODE and f"crash point {point} reached" in output, output[-3000:]

    code, output = ingests.run(name, source)
    assert code == 0, output[-3000:]
    assert RESUMED.get(point, "") in output
    assert ingests.state(name) == clean[source]


def test_a_run_killed_after_registering_is_rolled_back_completely(
    ingests: Ingests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipt's item map is written as jobs settle, so even a run that died before recording its step
    names every item it created, and a rollback removes them all."""
    code, output = ingests.run("rollback", "cloud", crash_at="ingest.after-files")
    assert code == CRASH_EXIT_CODE and "crash point ingest.after-files reached" in output, output[-3000:]
    files = ingests.state("rollback")["files"]
    assert sum(files.values()) >= 22
    runs = ingests.work / "rollback" / "runs"
    (receipt,) = runs.glob("*-*-*-*-*.json")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(runs))

    result = rollback(receipt.stem, credentials=ingests.credentials)

    assert len(result.deleted) == sum(files.values()) and not result.failed
    assert ingests.state("rollback")["files"] == Counter()


def test_two_rollbacks_of_one_run_at_once_take_turns(ingests: Ingests, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second waits for the first (a lock on the run id), then finds everything gone: no errors, no
    item deleted twice, and the receipt marked rolled back once everything is."""
    code, output = ingests.run("two-rollbacks", "local")
    assert code == 0, output[-3000:]
    state = ingests.state("two-rollbacks")
    created = sum(state["files"].values()) + sum(state["groups"].values())
    runs = ingests.work / "two-rollbacks" / "runs"
    (receipt,) = runs.glob("*-*-*-*-*.json")
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(runs))

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: rollback(receipt.stem, credentials=ingests.credentials), range(2)))

    assert sorted(len(r.deleted) for r in results) == [0, created]
    assert sorted(len(r.already_deleted) for r in results) == [0, created]
    assert not any(r.failed for r in results)
    assert ingests.state("two-rollbacks")["files"] == Counter()
    assert load(receipt.stem, runs).rolled_back_at is not None


def test_a_run_killed_before_recording_its_upload_is_rolled_back_once_the_next_run_finished_its_job(
    ingests: Ingests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run dies after its upload job finished but before it recorded the job's items. The next upload
    into the folder finishes that job from the ledger and writes its items into the dead run's item map, so
    rolling back both runs (the later first: its groups hold the earlier's items) leaves nothing behind."""
    code, output = ingests.run("killed-upload", "local", crash_at="job.after-poll")
    assert code == CRASH_EXIT_CODE, output[-3000:]
    code, output = ingests.run("killed-upload", "local")
    assert code == 0, output[-3000:]
    runs = ingests.work / "killed-upload" / "runs"
    receipts = [load(path.stem, runs) for path in runs.glob("*-*-*-*-*.json")]
    (killed,) = [r for r in receipts if r.finished_at is None]
    (again,) = [r for r in receipts if r.finished_at is not None]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(runs))

    later = rollback(again.run_id, credentials=ingests.credentials)
    earlier = rollback(killed.run_id, credentials=ingests.credentials)

    assert earlier.deleted and not earlier.failed and not later.failed
    assert ingests.state("killed-upload")["files"] == Counter()


UNSETTLED = [("job.before-start", "local"), ("job.after-start", "local"), ("job.after-poll", "local"),
             ("job.after-start", "cloud"), ("job.mid-poll", "cloud"), ("job.after-poll", "cloud")]  # fmt: skip


@pytest.mark.parametrize(("crash_at", "source"), UNSETTLED, ids=[f"{point}-{source}" for point, source in UNSETTLED])
def test_a_run_killed_with_its_job_unsettled_is_rolled_back_completely_by_rollback_alone(
    ingests: Ingests, monkeypatch: pytest.MonkeyPatch, crash_at: str, source: str
) -> None:
    """kill -9 around an upload or registration job: the rollback finishes the job the dead run left in the
    ledger (as the next run into the folder would), so its items join the run's item map, and removes them all;
    no other run is needed."""
    name = f"killed-{crash_at.replace('.', '-')}-{source}"
    code, output = ingests.run(name, source, crash_at=crash_at)
    assert code == CRASH_EXIT_CODE, output[-3000:]
    scenario = ingests.work / name
    (receipt,) = [load(path.stem, scenario / "runs") for path in (scenario / "runs").glob("*-*-*-*-*.json")]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(scenario / "runs"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(scenario / "job-ledger"))

    undone = rollback(receipt.run_id, credentials=ingests.credentials)

    assert not undone.failed
    assert ingests.state(name)["files"] == Counter()  # nothing the run created remains
    assert load(receipt.run_id, scenario / "runs").rolled_back_at is not None
    assert undone.deleted  # the job's items existed (a job never started was started from its body) and went


def test_a_rollback_that_cannot_settle_a_job_of_the_run_names_it_and_does_not_call_the_run_undone(
    ingests: Ingests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's item map journals the job before it starts; rolled back where its job ledger is not (another
    machine), the rollback cannot know the job's items: it says so, ends Failed and leaves the run not undone.
    With the run's ledger, a second rollback finishes the job and removes everything."""
    name = "killed-elsewhere"
    code, output = ingests.run(name, "cloud", crash_at="job.mid-poll")
    assert code == CRASH_EXIT_CODE, output[-3000:]
    scenario = ingests.work / name
    (receipt,) = [load(path.stem, scenario / "runs") for path in (scenario / "runs").glob("*-*-*-*-*.json")]
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(scenario / "runs"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(scenario / "another-machine"))

    state = rollback(receipt.run_id, credentials=ingests.credentials, return_state=True)

    assert state.is_failed() and "never settled" in str(state.message), state.message
    assert load(receipt.run_id, scenario / "runs").rolled_back_at is None
    assert sum(ingests.state(name)["files"].values()) > 0  # the job's items: unknown to that rollback, so kept

    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(scenario / "job-ledger"))
    undone = rollback(receipt.run_id, credentials=ingests.credentials)
    assert undone.deleted and not undone.failed and not undone.unsettled_jobs
    assert ingests.state(name)["files"] == Counter()
    assert load(receipt.run_id, scenario / "runs").rolled_back_at is not None
