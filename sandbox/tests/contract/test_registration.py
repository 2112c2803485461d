"""Registering data from cloud integrations through the real SDK (the routes in docs/sandbox.md).

``folder.add_private_data_to_folder_start`` sends a spec (the JSON import format as a dict, or the SDK's
``DataUploadItems``), and ``add_private_data_to_folder_get_result`` long-polls the job. The sandbox fetches
every object through the integration (a local directory, or S3 / GCS / Azure emulators filled with the real
client libraries), decodes it and reports each unit's outcome.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pydicom
import pytest
import requests
from encord import EncordUserClient
from encord.exceptions import InvalidArgumentsError
from encord.orm.storage import (
    DataUploadAudio,
    DataUploadDicomSeries,
    DataUploadDicomSeriesDicomFile,
    DataUploadImage,
    DataUploadImageGroup,
    DataUploadImageGroupImage,
    DataUploadItems,
    DataUploadPDF,
    DataUploadText,
    DataUploadVideo,
    StorageItemType,
    StorageLocationName,
    UploadLongPollingState,
)
from encord.storage import StorageFolder, StorageItem
from encord_sandbox import samples
from encord_sandbox.emulators import (
    MOTO_ACCESS_KEY_ID,
    MOTO_REGION,
    MOTO_SECRET_ACCESS_KEY,
    put_azure_blobs,
    put_gcs_objects,
    put_s3_objects,
    unique_name,
)
from encord_sandbox.server import Sandbox

DONE, ERROR, PENDING, CANCELLED = "DONE", "ERROR", "PENDING", "CANCELLED"
SLICES = [f"dicom/series-1/slice-{n}.dcm" for n in (1, 2, 3)]


# ------------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own "bucket" directory: the sample tree plus a corrupt image and a tagless DICOM file."""
    root = tmp_path_factory.mktemp("bucket")
    samples.write_sample_tree(root)
    (root / "corrupt.png").write_bytes(samples.png()[:40])
    (root / "no-patient.dcm").write_bytes(samples.dicom(omit=("PatientID",)))
    return root


@pytest.fixture(scope="module")
def local_integration(sandbox: Sandbox, bucket: Path) -> str:
    return sandbox.add_integration("local bucket", "local", root=str(bucket))


def url(root: Path, name: str) -> str:
    return (root / name).as_uri()


def register(folder: StorageFolder, integration: str, spec: Any, ignore_errors: bool = False) -> UploadLongPollingState:
    job = folder.add_private_data_to_folder_start(integration, spec, ignore_errors=ignore_errors)
    return folder.add_private_data_to_folder_get_result(job, timeout_seconds=30)


def items_by_name(client: EncordUserClient, result: UploadLongPollingState) -> dict[str, StorageItem]:
    uuids = [i.item_uuid for i in result.items_with_names]
    return {item.name: item for item in client.get_storage_items(uuids)}


def errors_by_url(result: UploadLongPollingState) -> dict[str, str]:
    return {u: e.error for e in result.unit_errors for u in e.object_urls}


def assert_sample_image(item: StorageItem, mime: str = "image/png") -> None:
    assert item.item_type == StorageItemType.IMAGE
    assert (item.width, item.height, item.mime_type) == (8, 6, mime)


def assert_sample_video(item: StorageItem) -> None:
    assert item.item_type == StorageItemType.VIDEO
    assert (item.fps, item.frame_count, item.width, item.height) == (5.0, 10, 32, 24)
    assert item.mime_type == "video/mp4"


# ------------------------------------------------------------------------------- local directory, both spellings


def test_json_spec_registers_every_kind(
    client: EncordUserClient, folder: StorageFolder, local_integration: str, bucket: Path
) -> None:
    spec = {
        "images": [{"objectUrl": url(bucket, "red.png"), "title": "red", "clientMetadata": {"cam": "A"}}],
        "videos": [{"objectUrl": url(bucket, "clip.mp4")}],
        "audio": [{"objectUrl": url(bucket, "tone.wav")}],
        "text": [{"objectUrl": url(bucket, "notes.txt")}],
        "pdf": [{"objectUrl": url(bucket, "report.pdf")}],
        "image_groups": [
            {
                "title": "views",
                "objectUrl_0": url(bucket, "green.jpg"),
                "objectUrl_1": url(bucket, "red.png"),
                "objectUrl_2": url(bucket, "blue.png"),
            },
            {
                "title": "timelapse",
                "createVideo": True,
                "objectUrl_1": url(bucket, "red.png"),  # numbering, not key order, decides the frame order
                "objectUrl_0": url(bucket, "blue.png"),
            },
        ],
        "dicom_series": [{"title": "ct", **{f"objectUrl_{i}": url(bucket, s) for i, s in enumerate(SLICES)}}],
    }
    result = register(folder, local_integration, spec)

    assert result.status == DONE
    assert (result.units_done_count, result.units_error_count, result.unit_errors) == (8, 0, [])
    items = items_by_name(client, result)
    assert set(items) == {"red", "clip.mp4", "tone.wav", "notes.txt", "report.pdf", "views", "timelapse", "ct"}
    assert_sample_image(items["red"])
    assert items["red"].client_metadata == {"cam": "A"}
    assert items["red"].url == url(bucket, "red.png")
    assert items["red"].storage_location == StorageLocationName.DIRECT_ACCESS
    assert items["red"].integration_hash == UUID(local_integration)
    assert_sample_video(items["clip.mp4"])
    assert (items["tone.wav"].item_type, items["tone.wav"].audio_sample_rate) == (StorageItemType.AUDIO, 8000)
    assert (items["notes.txt"].item_type, items["notes.txt"].mime_type) == (StorageItemType.PLAIN_TEXT, "text/plain")
    assert (items["report.pdf"].item_type, items["report.pdf"].mime_type) == (StorageItemType.PDF, "application/pdf")

    views = items["views"]
    assert (views.item_type, views.frame_count) == (StorageItemType.IMAGE_GROUP, 3)
    assert [c.url for c in views.get_child_items()] == [url(bucket, n) for n in ("green.jpg", "red.png", "blue.png")]
    timelapse = items["timelapse"]
    assert (timelapse.item_type, timelapse.frame_count) == (StorageItemType.IMAGE_SEQUENCE, 2)
    assert [c.name for c in timelapse.get_child_items()] == ["blue.png", "red.png"]

    ct = items["ct"]
    header = pydicom.dcmread(bucket / SLICES[0], stop_before_pixels=True)
    assert (ct.item_type, ct.frame_count) == (StorageItemType.DICOM_SERIES, 3)
    assert (ct.dicom_study_uid, ct.dicom_series_uid) == (header.StudyInstanceUID, header.SeriesInstanceUID)
    assert [c.name for c in ct.get_child_items()] == ["slice-1.dcm", "slice-2.dcm", "slice-3.dcm"]

    # Frames stay inside their parents: the folder lists exactly the eight registered units.
    assert sorted(i.uuid for i in folder.list_items()) == sorted(i.item_uuid for i in result.items_with_names)


def test_data_upload_items_spelling(
    client: EncordUserClient, folder: StorageFolder, local_integration: str, bucket: Path
) -> None:
    items = DataUploadItems(
        images=[DataUploadImage(object_url=url(bucket, "green.jpg"), title="g", client_metadata={"k": [1, 2]})],
        videos=[DataUploadVideo(object_url=url(bucket, "clip.mp4"))],
        audio=[DataUploadAudio(object_url=url(bucket, "tone.wav"))],
        text=[DataUploadText(object_url=url(bucket, "notes.txt"))],
        pdf=[DataUploadPDF(object_url=url(bucket, "report.pdf"))],
        image_groups=[
            DataUploadImageGroup(
                title="pair",
                images=[
                    DataUploadImageGroupImage(url=url(bucket, "blue.png"), title="first"),
                    DataUploadImageGroupImage(url=url(bucket, "red.png"), title="second"),
                ],
            ),
            DataUploadImageGroup(
                title="seq",
                create_video=True,
                images=[DataUploadImageGroupImage(url=url(bucket, n)) for n in ("red.png", "blue.png")],
            ),
        ],
        dicom_series=[
            DataUploadDicomSeries(
                title="mr",
                dicom_files=[
                    DataUploadDicomSeriesDicomFile(url=url(bucket, s), title=f"s{i}") for i, s in enumerate(SLICES)
                ],
            )
        ],
    )
    result = register(folder, local_integration, items)

    assert (result.status, result.units_done_count, result.unit_errors) == (DONE, 8, [])
    by_name = items_by_name(client, result)
    assert set(by_name) == {"g", "clip.mp4", "tone.wav", "notes.txt", "report.pdf", "pair", "seq", "mr"}
    assert_sample_image(by_name["g"], mime="image/jpeg")
    assert by_name["g"].client_metadata == {"k": [1, 2]}
    assert_sample_video(by_name["clip.mp4"])
    assert [c.name for c in by_name["pair"].get_child_items()] == ["first", "second"]
    assert by_name["seq"].item_type == StorageItemType.IMAGE_SEQUENCE
    mr = by_name["mr"]
    assert (mr.item_type, mr.frame_count) == (StorageItemType.DICOM_SERIES, 3)
    assert [c.name for c in mr.get_child_items()] == ["s0", "s1", "s2"]


def test_spec_from_a_json_file_reports_its_name(
    folder: StorageFolder, local_integration: str, bucket: Path, tmp_path: Path
) -> None:
    spec_file = tmp_path / "cameras-spec.json"
    spec_file.write_text(json.dumps({"images": [{"objectUrl": url(bucket, "blue.png")}]}))

    result = register(folder, local_integration, spec_file)

    assert result.status == DONE
    assert result.file_name == spec_file.name
    assert [i.name for i in result.items_with_names] == ["blue.png"]


# ----------------------------------------------------------------------------------- duplicates and metadata


def test_skip_duplicate_urls_rerun_creates_nothing(folder: StorageFolder, local_integration: str, bucket: Path) -> None:
    spec: dict[str, Any] = {
        "images": [{"objectUrl": url(bucket, "red.png")}],
        "videos": [{"objectUrl": url(bucket, "clip.mp4")}],
        "image_groups": [{"title": "g", "objectUrl_0": url(bucket, "red.png"), "objectUrl_1": url(bucket, "blue.png")}],
        "dicom_series": [{"title": "d", **{f"objectUrl_{i}": url(bucket, s) for i, s in enumerate(SLICES)}}],
    }
    first = register(folder, local_integration, spec)
    assert first.status == DONE
    before = sorted(i.uuid for i in folder.list_items())
    assert len(before) == 4

    again = register(folder, local_integration, {**spec, "skip_duplicate_urls": True})
    assert again.status == DONE
    assert again.units_done_count == 4
    assert [i.item_uuid for i in again.items_with_names] == [i.item_uuid for i in first.items_with_names]
    assert sorted(i.uuid for i in folder.list_items()) == before

    # An image group whose frames differ from the registered one is not a duplicate, nor is an image
    # sharing the group's first URL mistaken for the group.
    other_group = {"title": "g2", "objectUrl_0": url(bucket, "red.png"), "objectUrl_1": url(bucket, "green.jpg")}
    extended = register(
        folder,
        local_integration,
        {**spec, "image_groups": [*spec["image_groups"], other_group], "skip_duplicate_urls": True},
    )
    new = {i.item_uuid for i in extended.items_with_names} - {i.item_uuid for i in first.items_with_names}
    assert len(new) == 1
    assert len(list(folder.list_items())) == 5

    # Without the flag the same spec registers everything again.
    duplicated = register(folder, local_integration, spec)
    assert not {i.item_uuid for i in duplicated.items_with_names} & {i.item_uuid for i in first.items_with_names}
    assert len(list(folder.list_items())) == 9


def test_upsert_metadata_updates_the_existing_item(
    client: EncordUserClient, folder: StorageFolder, local_integration: str, bucket: Path
) -> None:
    def spec(metadata: dict[str, Any], **flags: bool) -> dict[str, Any]:
        return {"images": [{"objectUrl": url(bucket, "blue.png"), "clientMetadata": metadata}], **flags}

    (original,) = register(folder, local_integration, spec({"v": 1, "keep": True})).items_with_names

    skipped = register(folder, local_integration, spec({"v": 2}, skip_duplicate_urls=True))
    assert [i.item_uuid for i in skipped.items_with_names] == [original.item_uuid]
    assert client.get_storage_item(original.item_uuid).client_metadata == {"v": 1, "keep": True}

    upserted = register(folder, local_integration, spec({"v": 3}, skip_duplicate_urls=True, upsert_metadata=True))
    assert [i.item_uuid for i in upserted.items_with_names] == [original.item_uuid]
    assert client.get_storage_item(original.item_uuid).client_metadata == {"v": 3}
    assert [i.uuid for i in folder.list_items()] == [original.item_uuid]

    # The DTO spelling carries the same flags.
    dto = DataUploadItems(
        images=[DataUploadImage(object_url=url(bucket, "blue.png"), client_metadata={"v": 4})],
        skip_duplicate_urls=True,
        upsert_metadata=True,
    )
    assert [i.item_uuid for i in register(folder, local_integration, dto).items_with_names] == [original.item_uuid]
    assert client.get_storage_item(original.item_uuid).client_metadata == {"v": 4}


# ------------------------------------------------------------------------------------------------ unit errors


def _mixed_spec(bucket: Path) -> dict[str, Any]:
    return {
        "images": [
            {"objectUrl": url(bucket, "missing.png")},
            {"objectUrl": url(bucket, "corrupt.png")},
            {"objectUrl": url(bucket, "red.png"), "title": "good"},
        ],
        "dicom_series": [
            {"title": "tagless", "objectUrl_0": url(bucket, SLICES[0]), "objectUrl_1": url(bucket, "no-patient.dcm")}
        ],
    }


def _assert_mixed_errors(result: UploadLongPollingState, bucket: Path) -> None:
    assert (result.units_done_count, result.units_error_count, result.units_pending_count) == (1, 3, 0)
    errors = errors_by_url(result)
    assert "no such file" in errors[url(bucket, "missing.png")]
    assert url(bucket, "missing.png") in errors[url(bucket, "missing.png")]
    assert errors[url(bucket, "corrupt.png")].startswith("corrupt.png: not a readable image")
    tagless = [
        e for e in result.unit_errors if e.object_urls == [url(bucket, SLICES[0]), url(bucket, "no-patient.dcm")]
    ]
    assert len(tagless) == 1
    assert tagless[0].error == "no-patient.dcm: DICOM file is missing required tags: PatientID"
    assert tagless[0].action_description == "Uploading DICOM series"
    assert len({e.subtask_uuid for e in result.unit_errors}) == 3
    assert sorted(result.errors) == sorted(e.error for e in result.unit_errors)
    assert [i.name for i in result.items_with_names] == ["good"]


def test_failing_units_do_not_affect_siblings_with_ignore_errors(
    client: EncordUserClient, folder: StorageFolder, local_integration: str, bucket: Path
) -> None:
    result = register(folder, local_integration, _mixed_spec(bucket), ignore_errors=True)

    assert result.status == DONE
    _assert_mixed_errors(result, bucket)
    (good,) = folder.list_items()
    assert good.name == "good"
    assert_sample_image(good)


def test_failing_units_mark_the_job_error_without_ignore_errors(
    folder: StorageFolder, local_integration: str, bucket: Path
) -> None:
    result = register(folder, local_integration, _mixed_spec(bucket), ignore_errors=False)

    assert result.status == ERROR
    _assert_mixed_errors(result, bucket)
    assert [i.name for i in folder.list_items()] == ["good"]


def test_url_outside_the_integration_root_is_a_unit_error(
    folder: StorageFolder, local_integration: str, bucket: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(samples.png())  # a real, readable file: only its location is wrong
    escaping = f"{bucket.as_uri()}/../{tmp_path.name}/outside.png"
    spec = {
        "images": [
            {"objectUrl": outside.as_uri()},
            {"objectUrl": escaping},
            {"objectUrl": "s3://some-bucket/red.png"},
            {"objectUrl": url(bucket, "red.png")},
        ]
    }
    result = register(folder, local_integration, spec, ignore_errors=True)

    assert (result.status, result.units_done_count, result.units_error_count) == (DONE, 1, 3)
    errors = errors_by_url(result)
    assert "not a file under the integration root" in errors[outside.as_uri()]
    assert outside.as_uri() in errors[outside.as_uri()]
    assert "not a file under the integration root" in errors[escaping]
    assert "this is a s3 URL but the integration is local" in errors["s3://some-bucket/red.png"]
    assert [i.name for i in folder.list_items()] == ["red.png"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"imagez": [{"objectUrl": "file:///x.png"}]}, "unknown key 'imagez'"),
        ({"images": [{"title": "no url"}]}, "images[1] needs a non-empty 'objectUrl'"),
        (
            {"image_groups": [{"title": "gap", "objectUrl_0": "file:///a.png", "objectUrl_2": "file:///c.png"}]},
            "image_groups[0] frames must be numbered from objectUrl_0 without gaps; missing [1]",
        ),
        ({"dicom_series": [{"objectUrl_0": "file:///a.dcm"}]}, "dicom_series[0] needs a title"),
    ],
    ids=["unknown-key", "entry-without-url", "frame-gap", "series-without-title"],
)
def test_bad_spec_is_refused_whole(
    folder: StorageFolder, local_integration: str, bucket: Path, bad: dict[str, Any], message: str
) -> None:
    good_first = {"images": [{"objectUrl": url(bucket, "red.png")}]}
    spec = {**good_first, **bad} if "images" not in bad else {"images": [*good_first["images"], *bad["images"]]}

    with pytest.raises(InvalidArgumentsError) as excinfo:
        folder.add_private_data_to_folder_start(local_integration, spec, ignore_errors=True)

    assert message in excinfo.value.message
    assert list(folder.list_items()) == []


def test_bad_data_upload_items_are_refused(folder: StorageFolder, local_integration: str) -> None:
    empty_group = DataUploadItems(image_groups=[DataUploadImageGroup(title="empty", images=[])])
    with pytest.raises(InvalidArgumentsError, match=r"dataItems\.imageGroups\[0\]\.images must be a non-empty list"):
        folder.add_private_data_to_folder_start(local_integration, empty_group)
    assert list(folder.list_items()) == []


# --------------------------------------------------------------------- a stalling endpoint: limits, polls, cancel


@dataclass
class StallingEndpoint:
    """An S3-compatible HTTP endpoint that holds every GET until released, then serves a real PNG.

    It makes "a job is still running" a fact the test controls instead of a race against the clock.
    """

    url: str
    release: threading.Event
    requests: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)


@pytest.fixture
def stalling_endpoint() -> Iterator[StallingEndpoint]:
    release = threading.Event()
    body = samples.png()
    seen: list[str] = []
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path.split("?")[0])
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            served.append(self.path.split("?")[0])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stalling-endpoint", daemon=True)
    thread.start()
    try:
        yield StallingEndpoint(f"http://127.0.0.1:{server.server_address[1]}", release, seen, served)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stalling_integration(sandbox: Sandbox, stalling_endpoint: StallingEndpoint) -> str:
    return sandbox.add_integration(
        "stalling", "s3", endpoint_url=stalling_endpoint.url, access_key_id="k", secret_access_key="s", region="x"
    )


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_short_long_poll_returns_promptly_while_pending(
    folder: StorageFolder, stalling_integration: str, stalling_endpoint: StallingEndpoint
) -> None:
    job = folder.add_private_data_to_folder_start(
        stalling_integration, {"images": [{"objectUrl": f"{stalling_endpoint.url}/bkt/a.png"}]}
    )
    _wait_for(lambda: len(stalling_endpoint.requests) == 1)

    started = time.monotonic()
    state = folder.add_private_data_to_folder_get_result(job, timeout_seconds=1)
    elapsed = time.monotonic() - started

    assert state.status == PENDING
    assert (state.units_pending_count, state.units_done_count, state.items_with_names) == (1, 0, [])
    assert 0.9 <= elapsed < 5, f"a 1 s long poll took {elapsed:.2f} s"

    # A long poll held open while the job runs returns as soon as the job finishes, with the result.
    threading.Timer(0.5, stalling_endpoint.release.set).start()
    started = time.monotonic()
    done = folder.add_private_data_to_folder_get_result(job, timeout_seconds=30)
    assert time.monotonic() - started < 10
    assert (done.status, done.units_done_count) == (DONE, 1)
    (item,) = folder.list_items()
    assert item.url == f"{stalling_endpoint.url}/bkt/a.png"
    assert item.storage_location == StorageLocationName.S3
    assert_sample_image(item)


def test_cancel_a_running_job(
    folder: StorageFolder, stalling_integration: str, stalling_endpoint: StallingEndpoint
) -> None:
    units = 10  # more than the sandbox's job workers (4), so some units are still queued when cancelled
    spec = {"images": [{"objectUrl": f"{stalling_endpoint.url}/bkt/{n}.png"} for n in range(units)]}
    job = folder.add_private_data_to_folder_start(stalling_integration, spec)
    _wait_for(lambda: len(stalling_endpoint.requests) >= 1)

    cancelled = folder.add_data_to_folder_job_cancel(job)

    assert cancelled.units_cancelled_count == units
    state = folder.add_private_data_to_folder_get_result(job, timeout_seconds=5)
    assert (state.status, state.units_cancelled_count, state.units_pending_count) == (CANCELLED, units, 0)
    time.sleep(0.3)  # let workers that had already begun a unit send their (held) request
    in_flight = len(stalling_endpoint.requests)

    # Units that were already fetching when the job was cancelled finish their download but store nothing.
    stalling_endpoint.release.set()
    _wait_for(lambda: len(stalling_endpoint.responses) == in_flight)
    time.sleep(0.5)
    assert list(folder.list_items()) == []
    final = folder.add_private_data_to_folder_get_result(job, timeout_seconds=5)
    assert (final.status, final.units_done_count, final.items_with_names) == (CANCELLED, 0, [])
    # Queued units never started their download once cancelled.
    assert len(stalling_endpoint.requests) == in_flight < units

    # Cancelling a finished job changes nothing.
    assert folder.add_data_to_folder_job_cancel(job).units_cancelled_count == 0


def test_image_sequence_over_the_frame_limit_is_a_unit_error_without_fetching(
    folder: StorageFolder, stalling_integration: str, stalling_endpoint: StallingEndpoint, bucket: Path
) -> None:
    frames = {f"objectUrl_{i}": f"{stalling_endpoint.url}/bkt/frame-{i}.png" for i in range(32_768)}
    stalling_endpoint.release.set()  # the one legitimate sibling may be fetched at once
    spec = {
        "image_groups": [{"title": "too-long", "createVideo": True, **frames}],
        "images": [{"objectUrl": f"{stalling_endpoint.url}/bkt/sibling.png"}],
    }
    result = register(folder, stalling_integration, spec, ignore_errors=True)

    assert (result.status, result.units_done_count, result.units_error_count) == (DONE, 1, 1)
    (error,) = result.unit_errors
    assert error.error == "image sequence 'too-long' has 32768 frames; the maximum is 32767"
    assert error.action_description == "Uploading image sequence"
    assert len(error.object_urls) == 32_768
    assert stalling_endpoint.requests == ["/bkt/sibling.png"]
    assert [i.name for i in folder.list_items()] == ["sibling.png"]


# -------------------------------------------------------------------------------------------- cloud emulators


def test_register_from_s3(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, s3_endpoint: str, bucket: Path
) -> None:
    name = unique_name("reg")
    put_s3_objects(
        s3_endpoint,
        name,
        {
            "img/red.png": (bucket / "red.png").read_bytes(),
            "vid/clip.mp4": (bucket / "clip.mp4").read_bytes(),
            "seq/0.png": samples.png(color=(0, 0, 0)),
            "seq/1.png": samples.png(color=(9, 9, 9)),
            **{f"ct/{i}.dcm": (bucket / s).read_bytes() for i, s in enumerate(SLICES)},
        },
    )
    integration = sandbox.add_integration(
        f"s3 {name}",
        "s3",
        endpoint_url=s3_endpoint,
        access_key_id=MOTO_ACCESS_KEY_ID,
        secret_access_key=MOTO_SECRET_ACCESS_KEY,
        region=MOTO_REGION,
    )
    spec = {
        "images": [
            {"objectUrl": f"s3://{name}/img/red.png"},
            {"objectUrl": f"s3://{name}/img/missing.png"},
            {"objectUrl": f"s3://no-such-{name}/img/red.png"},
            {"objectUrl": f"gs://{name}/img/red.png"},
        ],
        "videos": [{"objectUrl": f"{s3_endpoint}/{name}/vid/clip.mp4"}],  # path-style URL on the endpoint
        "image_groups": [{"title": "seq", "createVideo": True, "objectUrl_0": f"s3://{name}/seq/0.png",
                          "objectUrl_1": f"s3://{name}/seq/1.png"}],
        "dicom_series": [{"title": "ct", **{f"objectUrl_{i}": f"s3://{name}/ct/{i}.dcm" for i in range(3)}}],
    }  # fmt: skip
    result = register(folder, integration, spec, ignore_errors=True)

    assert (result.status, result.units_done_count, result.units_error_count) == (DONE, 4, 3)
    errors = errors_by_url(result)
    assert "no such object" in errors[f"s3://{name}/img/missing.png"]
    assert f"bucket 'no-such-{name}' does not exist" in errors[f"s3://no-such-{name}/img/red.png"]
    assert "this is a gcs URL but the integration is s3" in errors[f"gs://{name}/img/red.png"]
    items = items_by_name(client, result)
    assert_sample_image(items["red.png"])
    assert items["red.png"].storage_location == StorageLocationName.S3
    assert items["red.png"].url == f"s3://{name}/img/red.png"
    assert_sample_video(items["clip.mp4"])
    assert (items["seq"].item_type, items["seq"].frame_count) == (StorageItemType.IMAGE_SEQUENCE, 2)
    assert (items["ct"].item_type, items["ct"].frame_count) == (StorageItemType.DICOM_SERIES, 3)
    assert [c.name for c in items["ct"].get_child_items()] == ["0.dcm", "1.dcm", "2.dcm"]


def test_register_from_gcs(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, gcs_endpoint: str, bucket: Path
) -> None:
    name = unique_name("reg")
    put_gcs_objects(
        gcs_endpoint,
        name,
        {
            "a/blue.png": (bucket / "blue.png").read_bytes(),
            "a/tone.wav": (bucket / "tone.wav").read_bytes(),
            "a/report.pdf": (bucket / "report.pdf").read_bytes(),
        },
    )
    integration = sandbox.add_integration(f"gcs {name}", "gcs", gcs_endpoint=gcs_endpoint)
    spec = DataUploadItems(
        images=[
            DataUploadImage(object_url=f"gs://{name}/a/blue.png"),
            DataUploadImage(object_url=f"gs://{name}/a/nope.png"),
        ],
        audio=[DataUploadAudio(object_url=f"https://storage.googleapis.com/{name}/a/tone.wav")],
        pdf=[DataUploadPDF(object_url=f"{gcs_endpoint}/{name}/a/report.pdf")],
        image_groups=[
            DataUploadImageGroup(
                title="twice",
                images=[DataUploadImageGroupImage(url=f"gs://{name}/a/blue.png") for _ in range(2)],
            )
        ],
    )
    result = register(folder, integration, spec, ignore_errors=True)

    assert (result.status, result.units_done_count, result.units_error_count) == (DONE, 4, 1)
    assert "no such object" in errors_by_url(result)[f"gs://{name}/a/nope.png"]
    items = items_by_name(client, result)
    assert_sample_image(items["blue.png"])
    assert items["blue.png"].storage_location == StorageLocationName.GCP
    assert (items["tone.wav"].audio_sample_rate, items["tone.wav"].audio_num_channels) == (8000, 1)
    assert items["report.pdf"].mime_type == "application/pdf"
    assert (items["twice"].item_type, items["twice"].frame_count) == (StorageItemType.IMAGE_GROUP, 2)


def test_register_from_azure(
    sandbox: Sandbox, client: EncordUserClient, folder: StorageFolder, azure_connection_string: str, bucket: Path
) -> None:
    container = unique_name("reg")
    put_azure_blobs(
        azure_connection_string,
        container,
        {"x/clip.mp4": (bucket / "clip.mp4").read_bytes(), "x/green.jpg": (bucket / "green.jpg").read_bytes()},
    )
    blob_endpoint = dict(p.split("=", 1) for p in azure_connection_string.strip(";").split(";"))["BlobEndpoint"]
    integration = sandbox.add_integration(
        f"azure {container}", "azure", azure_connection_string=azure_connection_string
    )
    spec = {
        "videos": [{"objectUrl": f"{blob_endpoint.rstrip('/')}/{container}/x/clip.mp4"}],
        "images": [
            {"objectUrl": f"https://devstoreaccount1.blob.core.windows.net/{container}/x/green.jpg"},
            {"objectUrl": f"https://otheraccount.blob.core.windows.net/{container}/x/green.jpg"},
        ],
    }
    result = register(folder, integration, spec, ignore_errors=True)

    assert (result.status, result.units_done_count, result.units_error_count) == (DONE, 2, 1)
    other = errors_by_url(result)[f"https://otheraccount.blob.core.windows.net/{container}/x/green.jpg"]
    assert "storage account 'otheraccount'" in other
    items = items_by_name(client, result)
    assert_sample_video(items["clip.mp4"])
    assert items["clip.mp4"].storage_location == StorageLocationName.AZURE
    assert_sample_image(items["green.jpg"], mime="image/jpeg")


# --------------------------------------------------------------------------------------------------- restarts


def test_sandbox_restart_keeps_folders_items_jobs_and_integrations(tmp_path: Path, bucket: Path) -> None:
    data_dir = tmp_path / "sandbox"
    with Sandbox(data_dir) as first:
        integration = first.add_integration("local", "local", root=str(bucket))
        folder = first.credentials().get_client().create_storage_folder("kept", client_metadata={"k": 1})
        uploaded = folder.upload_image(bucket / "red.png", client_metadata={"a": 1})
        frames = {f"objectUrl_{i}": url(bucket, s) for i, s in enumerate(SLICES)}
        job = folder.add_private_data_to_folder_start(integration, {"dicom_series": [{"title": "ct", **frames}]})
        registered = folder.add_private_data_to_folder_get_result(job, timeout_seconds=30)
        assert registered.status == DONE
        before = {i.uuid: (i.name, i.item_type, i.width, i.height, i.client_metadata) for i in folder.list_items()}
    assert len(before) == 2

    with Sandbox(data_dir) as second:
        client = second.credentials().get_client()
        folder_again = client.get_storage_folder(folder.uuid)
        assert (folder_again.name, folder_again.client_metadata) == ("kept", {"k": 1})
        after = {i.uuid: (i.name, i.item_type, i.width, i.height, i.client_metadata) for i in folder_again.list_items()}
        assert after == before
        # The uploaded bytes and the URL-signing secret survived: the signed URL still serves the file.
        signed_url = client.get_storage_item(uploaded, sign_url=True).get_signed_url()
        assert signed_url is not None
        assert requests.get(signed_url, timeout=10).content == (bucket / "red.png").read_bytes()
        series = client.get_storage_item(registered.items_with_names[0].item_uuid)
        assert [c.name for c in series.get_child_items()] == ["slice-1.dcm", "slice-2.dcm", "slice-3.dcm"]
        # The finished job can still be polled, and the integration still registers data.
        old = folder_again.add_private_data_to_folder_get_result(job, timeout_seconds=5)
        assert (old.status, [i.item_uuid for i in old.items_with_names]) == (DONE, [series.uuid])
        more = register(folder_again, integration, {"videos": [{"objectUrl": url(bucket, "clip.mp4")}]})
        assert more.status == DONE
        assert len(list(folder_again.list_items())) == 3
