"""Cloud registration end to end: emulator bucket -> plan -> data-upload jobs on the sandbox -> item UUIDs.

The sandbox's integrations read the same emulators the blocks list, as Encord's integrations read the
user's bucket, and probe every object for real: a corrupt file really fails, a re-run really finds the
items already there, and a resumed task really polls the job an earlier attempt started.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pydicom
import pytest
from encord import EncordUserClient
from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import StorageItemType, UploadLongPollingState
from encord.storage import StorageFolder
from encord_sandbox import samples
from encord_sandbox.server import Sandbox
from prefect import flow
from pydicom.uid import generate_uid

from prefect_encord import EncordCredentials, EncordS3Integration
from prefect_encord.blocks.storage import CloudStorageIntegration, resolve_integration
from prefect_encord.events.reporting import StepProgress, add_progress_listener
from prefect_encord.planning.objects import Skipped
from prefect_encord.planning.outcomes import BucketRegistration
from prefect_encord.planning.specs import Entry, PlanOptions, plan_registration, registration_spec
from prefect_encord.state.job_ledger import JobLedger, JobRecord, job_key
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.registrar import Registrar
from prefect_encord.tasks.registration import register_bucket, register_chunk
from prefect_encord.testing import credentials_block
from tests.integration_buckets import CLOUDS, add_sandbox_integration, new_bucket
from tests.tasks.conftest import HttpLog

STUDY, SERIES = generate_uid(), generate_uid()
EVERY_TYPE = {
    "media/red.png": samples.png(),
    "media/green.jpg": samples.jpeg(color=(0, 255, 0)),
    "media/clip.mp4": samples.mp4(),
    "media/tone.wav": samples.wav(),
    "media/report.pdf": samples.pdf(),
    "media/notes.txt": samples.text("notes"),
    "media/readme.docx": b"not a format Encord takes",
    **{f"scans/series-1/slice-{n}.dcm": samples.dicom(STUDY, SERIES, instance_number=n) for n in (1, 2, 3)},
    **{f"frames/run-1/{n:04d}.png": samples.png(color=(n, 0, 0)) for n in (1, 2, 10)},
}
SINGLE_TYPES = {
    "media/red.png": StorageItemType.IMAGE,
    "media/green.jpg": StorageItemType.IMAGE,
    "media/clip.mp4": StorageItemType.VIDEO,
    "media/tone.wav": StorageItemType.AUDIO,
    "media/report.pdf": StorageItemType.PDF,
    "media/notes.txt": StorageItemType.PLAIN_TEXT,
}


def jobs_in(sandbox: Sandbox, folder: StorageFolder) -> int:
    row = sandbox.backend.store.query_one("SELECT count(*) AS n FROM jobs WHERE folder = ?", (str(folder.uuid),))
    assert row is not None
    return int(row["n"])


def item_types(client: EncordUserClient, urls_to_items: dict[str, str]) -> dict[str, StorageItemType]:
    items = client.get_storage_items(list(urls_to_items.values()))
    by_uuid = {str(item.uuid): item.item_type for item in items}
    return {url: by_uuid[item] for url, item in urls_to_items.items()}


def planned_entries(block: CloudStorageIntegration) -> list[Entry]:
    return [e for e in plan_registration(block.list_objects(), root_url=block.root_url) if isinstance(e, Entry)]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_data_type_registers_from_each_cloud_and_a_rerun_creates_nothing(
    cloud: str,
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    integration = add_sandbox_integration(sandbox, cloud, request)
    block = new_bucket(cloud, request, EVERY_TYPE, integration=integration)
    credentials, folder_uuid = credentials_block(sandbox), str(folder.uuid)

    first = register_bucket.fn(credentials, block, folder_uuid, exclude=["frames/*"], ledger_dir=tmp_path)
    url = block.object_url
    assert item_types(client, first.created) == {
        **{url(key): kind for key, kind in SINGLE_TYPES.items()},
        url("scans/series-1/slice-1.dcm"): StorageItemType.DICOM_SERIES,
    }
    assert first.skipped == (Skipped(url("media/readme.docx"), "unsupported file type '.docx'"),)
    assert first.skipped_duplicates == {} and first.unit_errors == ()
    assert first.watermark is not None

    sequence = register_bucket.fn(
        credentials,
        block,
        folder_uuid,
        include=["frames/*"],
        options=PlanOptions(images="sequence"),
        ledger_dir=tmp_path,
    )
    assert item_types(client, sequence.created) == {url("frames/run-1/0001.png"): StorageItemType.IMAGE_SEQUENCE}

    items_before = {item.uuid for item in folder.list_items()}
    again = register_bucket.fn(credentials, block, folder_uuid, exclude=["frames/*"], ledger_dir=tmp_path)
    assert again.created == {}
    assert again.skipped_duplicates == first.created  # the same items, found again
    assert {item.uuid for item in folder.list_items()} == items_before
    assert list(tmp_path.iterdir()) == []  # finished jobs leave no ledger records


def test_a_bucket_registration_tells_its_progress_and_its_total_at_the_end(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, tmp_path: Path
) -> None:
    """The listing streams, so the total is unknown until it ends: "N files registered so far", then "5 of 5"."""
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {f"p-{n}.png": samples.png(color=(n, 5, 5)) for n in range(5)},
                       integration=integration)  # fmt: skip
    heard: list[tuple[float, str]] = []
    stop = add_progress_listener(lambda fraction, message: heard.append((fraction, message)))
    try:
        register_bucket.fn(credentials_block(sandbox), block, str(folder.uuid), job_size=2, max_in_flight=1,
                           ledger_dir=tmp_path, progress=StepProgress(None, "ingest", 0.25, 0.5))  # fmt: skip
    finally:
        stop()
    assert heard[-1] == (0.75, "ingest: 5 of 5 files registered")
    assert all(re.fullmatch(r"ingest: \d files registered so far", m) and f == 0.25 for f, m in heard[:-1])


def big_header_dicom(series_uid: str, instance_number: int) -> bytes:
    """A DICOM file whose header outgrows the first 64 KiB range read, so the whole file must be read."""
    dataset = pydicom.dcmread(io.BytesIO(samples.dicom(STUDY, series_uid, instance_number=instance_number)))
    dataset.add_new(0x00091010, "OB", b"\0" * 70_000)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_image_groups_and_dicom_series_by_uid_across_directories(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    spread, other = generate_uid(), generate_uid()
    objects = {
        "groups/a/1.png": samples.png(),
        "groups/a/2.png": samples.png(width=4, height=4),  # groups, unlike sequences, take mixed sizes
        "groups/b/1.png": samples.png(),
        "ct/day1/x.dcm": samples.dicom(STUDY, spread, instance_number=2),
        "ct/day2/y.dcm": samples.dicom(STUDY, spread, instance_number=1),
        "ct/day2/z.dcm": big_header_dicom(spread, 3),
        "ct/day2/other.dcm": samples.dicom(STUDY, other, instance_number=1),
        "ct/day2/fake.dcm": b"plain text pretending to be DICOM",
    }
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, objects, integration=integration)
    options = PlanOptions(images="group", dicom_series_by="series_uid", client_metadata={"batch": "b1"})

    result = register_bucket.fn(
        credentials_block(sandbox), block, str(folder.uuid), options=options, ledger_dir=tmp_path
    )

    url = block.object_url
    assert item_types(client, result.created) == {
        url("groups/a/1.png"): StorageItemType.IMAGE_GROUP,
        url("groups/b/1.png"): StorageItemType.IMAGE_GROUP,
        url("ct/day2/y.dcm"): StorageItemType.DICOM_SERIES,
        url("ct/day2/other.dcm"): StorageItemType.DICOM_SERIES,
    }
    assert result.skipped == (
        Skipped(url("ct/day2/fake.dcm"), "no SeriesInstanceUID could be read from the DICOM header"),
    )
    series = client.get_storage_item(result.created[url("ct/day2/y.dcm")])
    assert series.name == spread and series.client_metadata == {"batch": "b1"}
    frames = [child.url for child in series.get_child_items()]
    assert frames == [url("ct/day2/y.dcm"), url("ct/day1/x.dcm"), url("ct/day2/z.dcm")]  # InstanceNumber order


def test_one_bad_file_never_fails_its_siblings(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    objects = {"good.png": samples.png(), "corrupt.png": b"\x89PNG but not really", "report.pdf": samples.pdf()}
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, objects, integration=integration)
    missing = Entry(kind="image", title="gone.png", urls=(block.object_url("gone.png"),))

    result = register_chunk.fn(
        credentials_block(sandbox),
        str(folder.uuid),
        integration,
        [*planned_entries(block), missing],
        ledger_dir=tmp_path,
    )

    assert result.status == "ERROR"
    assert set(result.created) == {block.object_url("good.png"), block.object_url("report.pdf")}
    failures = {failure.urls: failure.error for failure in result.unit_errors}
    assert set(failures) == {(block.object_url("corrupt.png"),), (block.object_url("gone.png"),)}
    assert "not a readable image" in failures[(block.object_url("corrupt.png"),)]
    assert "no such object" in failures[(block.object_url("gone.png"),)]
    assert result.not_registered == () and result.unmatched_items == ()
    assert {item.name for item in client.get_storage_items(list(result.created.values()))} == {"good.png", "report.pdf"}


def test_a_restarted_task_resumes_the_job_instead_of_submitting_another(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {f"{n}.png": samples.png() for n in range(5)}, integration=integration)
    entries = planned_entries(block)
    # The first attempt got as far as submitting (and recording) the job, then its process died.
    ledger = JobLedger(tmp_path)
    first_attempt = Registrar(client, folder, resolve_integration(client, integration), ledger)
    submitted = first_attempt.start(entries)
    assert not submitted.resumed and ledger.find(submitted.record.key) == submitted.record

    result = register_chunk.fn(credentials_block(sandbox), str(folder.uuid), integration, entries, ledger_dir=tmp_path)

    assert result.resumed and result.job_id == submitted.record.job_id
    assert jobs_in(sandbox, folder) == 1
    assert len(result.created) == 5
    assert ledger.find(submitted.record.key) is None


def test_a_stale_ledger_record_is_dropped_and_the_chunk_submitted(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {"a.png": samples.png()}, integration=integration)
    entries = planned_entries(block)
    integration_id = resolve_integration(client, integration)
    key = job_key(str(folder.uuid), integration_id, registration_spec(entries))
    unknown_job = JobRecord(key, str(uuid.uuid4()), str(folder.uuid), integration_id, datetime.now(timezone.utc), 1)
    JobLedger(tmp_path).record(unknown_job)

    result = register_chunk.fn(credentials_block(sandbox), str(folder.uuid), integration, entries, ledger_dir=tmp_path)

    assert not result.resumed and result.job_id != unknown_job.job_id
    assert len(result.created) == 1 and jobs_in(sandbox, folder) == 1
    assert list(tmp_path.iterdir()) == []


def test_upsert_metadata_replaces_the_metadata_of_existing_items(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    tmp_path: Path,
) -> None:
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {"a.png": samples.png()}, integration=integration)
    credentials, folder_uuid = credentials_block(sandbox), str(folder.uuid)

    def run(version: int, upsert: bool) -> BucketRegistration:
        options = PlanOptions(client_metadata={"version": version})
        return register_bucket.fn(
            credentials, block, folder_uuid, options=options, upsert_metadata=upsert, ledger_dir=tmp_path
        )

    (item,) = run(1, upsert=False).created.values()
    assert run(2, upsert=True).skipped_duplicates == {block.object_url("a.png"): item}
    assert client.get_storage_item(item).client_metadata == {"version": 2}
    run(3, upsert=False)
    assert client.get_storage_item(item).client_metadata == {"version": 2}


def test_requests_stay_at_three_per_job_plus_two_per_run(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, http_log: HttpLog, tmp_path: Path
) -> None:
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {f"img/{n:03d}.png": samples.png() for n in range(45)}, integration=integration)
    http_log.api.clear()

    result = register_bucket.fn(
        credentials_block(sandbox), block, str(folder.uuid), job_size=20, max_in_flight=2, ledger_dir=tmp_path
    )

    assert [job.created for job in result.jobs] == [20, 20, 5]
    folder_path = f"/v2/public/storage/folders/{folder.uuid}"
    assert sorted(http_log.api) == sorted(
        [
            ("GET", folder_path),
            ("GET", "/v2/public/cloud-integrations"),
            *[("POST", f"{folder_path}/data-upload-jobs")] * 3,
            *[("GET", f"{folder_path}/data-upload-jobs/{job.job_id}") for job in result.jobs],
            *[("POST", "/v2/public/storage/items/get-bulk")] * 3,
        ]
    )


class _PollingFolder:
    """A stand-in folder whose job is still running on the first poll and done on the second."""

    def __init__(self, states: Sequence[LongPollingStatus]) -> None:
        self.uuid = uuid.uuid4()
        self.states = list(states)
        self.started = 0

    def add_private_data_to_folder_start(self, integration_id: str, spec: dict[str, Any]) -> uuid.UUID:
        self.started += 1
        return uuid.uuid4()

    def add_private_data_to_folder_get_result(self, job: uuid.UUID, timeout_seconds: int) -> UploadLongPollingState:
        return UploadLongPollingState(
            status=self.states.pop(0),
            items_with_names=[],
            errors=[],
            units_pending_count=0,
            units_done_count=0,
            units_error_count=0,
            units_cancelled_count=0,
            unit_errors=[],
        )


class _NoItems:
    def get_storage_items(self, item_uuids: Sequence[str]) -> list[Any]:
        return []


def test_a_job_still_running_at_the_timeout_stays_in_the_ledger_for_the_retry(tmp_path: Path) -> None:
    folder = _PollingFolder([LongPollingStatus.PENDING, LongPollingStatus.DONE])
    ledger = JobLedger(tmp_path)
    registrar = Registrar(_NoItems(), folder, "integration", ledger, timeout_seconds=1)  # type: ignore[arg-type]
    entries = [Entry(kind="image", title="a.png", urls=("s3://b/a.png",))]

    with pytest.raises(TimeoutError, match="still running after 1 s"):
        registrar.register(entries)
    assert len(list(tmp_path.iterdir())) == 1

    retried = registrar.register(entries)
    assert retried.resumed and folder.started == 1
    assert list(tmp_path.iterdir()) == []


@flow
def ingest_bucket(credentials_block: str, storage_block: str, path: str, ledger_dir: str) -> BucketRegistration:
    credentials = EncordCredentials.load(credentials_block)
    storage = EncordS3Integration.load(storage_block)
    folder_uuid = get_or_create_folder(credentials, path)
    return register_bucket.submit(credentials, storage, folder_uuid, ledger_dir=ledger_dir).result()


def test_tasks_run_inside_a_flow_with_saved_blocks(
    prefect_harness: None, request: pytest.FixtureRequest, sandbox: Sandbox, client: EncordUserClient, tmp_path: Path
) -> None:
    integration = add_sandbox_integration(sandbox, "s3", request)
    block = new_bucket("s3", request, {"a.png": samples.png(), "b.pdf": samples.pdf()}, integration=integration)
    suffix = uuid.uuid4().hex[:8]
    credentials_block(sandbox).save(f"encord-{suffix}")
    block.save(f"bucket-{suffix}")  # with its nested MinIO credentials block

    result = ingest_bucket(f"encord-{suffix}", f"bucket-{suffix}", f"flows-{suffix}/cams", str(tmp_path))

    assert set(result.created) == {block.object_url("a.png"), block.object_url("b.pdf")}
    (folder,) = [f for f in client.find_storage_folders(search=f"flows-{suffix}") if f.name == f"flows-{suffix}"]
    (cams,) = folder.list_subfolders()
    assert {item.uuid for item in cams.list_items()} == {uuid.UUID(i) for i in result.created.values()}
