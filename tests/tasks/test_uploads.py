"""The local upload task against the sandbox: every media type, re-runs, bad files, request counts, retries."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from encord.orm.storage import StorageItemType, UploadSignedUrl
from encord.storage import StorageFolder
from encord_sandbox import Sandbox
from encord_sandbox.samples import jpeg, png, text

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.tasks import transfers
from prefect_encord.tasks.transfers import put_file
from prefect_encord.tasks.uploads import UploadResult, upload_directory
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog

NO_WAIT = RetryPolicy(backoff_seconds=0)


@pytest.fixture
def credentials(sandbox: Sandbox) -> EncordCredentials:
    return credentials_block(sandbox)


@pytest.fixture
def tree(media_dir: Path, tmp_path: Path) -> Path:
    """The session's sample media plus an image group, an image sequence and some noise."""
    root = tmp_path / "tree"
    shutil.copytree(media_dir, root)
    for index, color in enumerate([(255, 0, 0), (0, 255, 0)]):
        (root / "views").mkdir(exist_ok=True)
        (root / "views" / f"view-{index}.png").write_bytes(png(color=color))
    for frame in (10, 2, 1):
        (root / "drive").mkdir(exist_ok=True)
        (root / "drive" / f"frame-{frame}.png").write_bytes(png(color=(frame, frame, frame)))
    (root / ".DS_Store").write_bytes(b"\0")
    return root


def _upload(credentials: EncordCredentials, folder: StorageFolder, root: Path, **options: Any) -> UploadResult:
    return upload_directory.fn(
        credentials, folder.uuid, root, image_groups=["views"], image_sequences=["drive"], **options
    )


def _items(folder: StorageFolder) -> dict[str, Any]:
    return {item.name: item for item in folder.list_items()}


def test_uploads_every_media_type_with_its_facts_and_identity(
    credentials: EncordCredentials, folder: StorageFolder, tree: Path
) -> None:
    result = _upload(credentials, folder, tree, client_metadata={"source": "lab"})

    assert result.failed == {} and result.skipped == []
    assert set(result.items) == {
        "red.png", "blue.png", "green.jpg", "clip.mp4", "tone.wav", "report.pdf", "notes.txt",
        "dicom/series-1", "views", "drive",
    }  # fmt: skip
    items = _items(folder)
    assert {name: str(item.uuid) for name, item in items.items()} == result.items  # names are the unit titles
    types = {name: item.item_type for name, item in items.items()}
    assert types == {
        "red.png": StorageItemType.IMAGE, "blue.png": StorageItemType.IMAGE, "green.jpg": StorageItemType.IMAGE,
        "clip.mp4": StorageItemType.VIDEO, "tone.wav": StorageItemType.AUDIO, "report.pdf": StorageItemType.PDF,
        "notes.txt": StorageItemType.PLAIN_TEXT, "dicom/series-1": StorageItemType.DICOM_SERIES,
        "views": StorageItemType.IMAGE_GROUP, "drive": StorageItemType.IMAGE_SEQUENCE,
    }  # fmt: skip
    assert (items["red.png"].width, items["red.png"].height) == (8, 6)
    assert items["clip.mp4"].frame_count == 10 and items["clip.mp4"].duration == pytest.approx(2.0)
    assert items["dicom/series-1"].frame_count == 3 and items["drive"].frame_count == 3
    assert items["tone.wav"].audio_sample_rate == 8000
    drive_frames = [child.name for child in items["drive"].get_child_items()]
    assert drive_frames == ["frame-1.png", "frame-2.png", "frame-10.png"]
    assert all(item.client_metadata["source"] == "lab" for item in items.values())
    assert items["red.png"].client_metadata[IDENTITY_KEY] == hashlib.sha256((tree / "red.png").read_bytes()).hexdigest()


def test_a_rerun_creates_nothing_a_copy_or_move_is_its_own_item_and_a_rewrite_is_reported(
    credentials: EncordCredentials, folder: StorageFolder, tree: Path, http_log: HttpLog
) -> None:
    first = _upload(credentials, folder, tree)
    http_log.api.clear()
    http_log.transfers.clear()
    again = _upload(credentials, folder, tree)
    assert again.failed == {} and again.jobs == [] and http_log.transfers == []
    assert again.items == first.items and set(again.skipped) == set(first.items)
    assert http_log.calls("POST", "/upload-signed-urls") == 0 and http_log.calls("POST", "/data-upload-jobs") == 0

    (tree / "moved").mkdir()
    (tree / "red.png").rename(tree / "moved" / "red-renamed.png")
    shutil.copy(tree / "blue.png", tree / "blue-copy.png")
    (tree / "green.jpg").write_bytes(jpeg(color=(1, 2, 3)))  # rewritten since its upload
    third = _upload(credentials, folder, tree)

    assert third.failed == {}
    new = {key for key in third.items if key not in third.skipped and key not in third.changed}
    assert new == {"moved/red-renamed.png", "blue-copy.png"}
    assert third.items["blue-copy.png"] != first.items["blue.png"]
    assert third.changed == {"green.jpg": first.items["green.jpg"]}  # reported, its item kept as it was
    assert len(list(folder.list_items())) == len(first.items) + 2


def test_twelve_files_with_the_same_bytes_are_twelve_items_and_a_rerun_adds_none(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path
) -> None:
    for n in range(12):
        (tmp_path / f"blank-{n:02d}.png").write_bytes(png())
    first = upload_directory.fn(credentials, folder.uuid, tmp_path)
    assert first.failed == {} and first.skipped == [] and len(set(first.items.values())) == 12
    assert {item.name for item in folder.list_items()} == {f"blank-{n:02d}.png" for n in range(12)}

    again = upload_directory.fn(credentials, folder.uuid, tmp_path)
    assert again.items == first.items and again.jobs == [] and len(list(folder.list_items())) == 12


def _replace_metadata(folder: StorageFolder, metadata: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """What the Encord UI or another SDK script may do: write an item's client metadata whole."""
    for item in folder.list_items():
        item.update(client_metadata=metadata(dict(item.client_metadata or {})))


def test_items_of_the_digest_only_version_are_recognised_without_uploading_and_tagged_with_their_path(
    credentials: EncordCredentials, folder: StorageFolder, tree: Path, http_log: HttpLog
) -> None:
    first = _upload(credentials, folder, tree)
    _replace_metadata(folder, lambda m: {k: v for k, v in m.items() if k != PATH_KEY})  # as the old version left them
    http_log.transfers.clear()

    upgraded = _upload(credentials, folder, tree)

    assert upgraded.items == first.items and upgraded.jobs == [] and http_log.transfers == []
    paths = {str(item.uuid): (item.client_metadata or {}).get(PATH_KEY) for item in folder.list_items()}
    assert paths == {item: key for key, item in first.items.items()}


def test_items_whose_metadata_was_replaced_outside_are_not_duplicated_and_keep_the_new_metadata(
    credentials: EncordCredentials, folder: StorageFolder, tree: Path, http_log: HttpLog
) -> None:
    first = _upload(credentials, folder, tree)
    _replace_metadata(folder, lambda m: {"reviewed": True})
    http_log.transfers.clear()

    again = _upload(credentials, folder, tree)

    assert again.items == first.items and again.jobs == [] and http_log.transfers == []
    for item in folder.list_items():
        assert item.client_metadata["reviewed"] is True
        assert {PATH_KEY, IDENTITY_KEY} <= set(item.client_metadata)


def test_a_corrupt_or_unsupported_file_fails_alone(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path
) -> None:
    (tmp_path / "good.png").write_bytes(png())
    (tmp_path / "corrupt.png").write_bytes(b"this is not a PNG")
    (tmp_path / "notes.txt").write_bytes(text("fine"))
    (tmp_path / "archive.zip").write_bytes(b"PK")
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "broken.dcm").write_bytes(b"not dicom")

    result = upload_directory.fn(credentials, folder.uuid, tmp_path)

    assert set(result.items) == {"good.png", "notes.txt"}
    assert result.failed["corrupt.png"] == (
        "not a PNG, JPEG, GIF, WebP, BMP or TIFF image (it starts b'this is not '), so it was not uploaded"
    )
    assert result.failed["archive.zip"] == "unsupported file type '.zip'"
    assert "broken.dcm" in result.failed["series"]
    assert set(_items(folder)) == {"good.png", "notes.txt"}
    assert len(result.jobs) == 1  # what cannot be media is never sent, so no job retries it


def test_a_file_encord_cannot_decode_is_reported_after_one_retry(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path
) -> None:
    """A truncated PNG starts like one, so only Encord can tell: its unit fails, is retried once, and is reported."""
    (tmp_path / "good.png").write_bytes(png())
    (tmp_path / "truncated.png").write_bytes(png(color=(0, 0, 1))[:40])

    result = upload_directory.fn(credentials, folder.uuid, tmp_path)

    assert set(result.items) == {"good.png"} and "truncated.png: not a readable image" in result.failed["truncated.png"]
    assert len(result.jobs) == 2


def test_a_failed_transfer_fails_only_its_unit(
    credentials: EncordCredentials, folder: StorageFolder, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put: Callable[..., str | None] = transfers.put_file

    def flaky(
        http: httpx.Client, path: Path, slot: UploadSignedUrl, policy: RetryPolicy, read: tuple[str, int] | None
    ) -> str | None:
        if path.name in ("blue.png", "slice-2.dcm"):
            return "HTTP 403 from the upload URL: expired"
        return real_put(http, path, slot, policy, read)

    monkeypatch.setattr(transfers, "put_file", flaky)
    result = _upload(credentials, folder, tree)

    assert result.failed == {
        "blue.png": "upload failed: blue.png: HTTP 403 from the upload URL: expired",
        "dicom/series-1": "upload failed: dicom/series-1/slice-2.dcm: HTTP 403 from the upload URL: expired",
    }
    assert len(result.items) == 8 and "blue.png" not in _items(folder)


def test_registration_is_batched_into_few_requests(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path, http_log: HttpLog, sandbox: Sandbox
) -> None:
    for index in range(120):
        (tmp_path / f"img-{index}.png").write_bytes(png(color=(index, 0, 0)))
    for index in range(30):
        (tmp_path / f"doc-{index}.txt").write_bytes(text(f"document {index}"))

    result = upload_directory.fn(credentials, folder.uuid, tmp_path, job_size=100)

    assert len(result.items) == 150 and result.failed == {}
    jobs = sandbox.backend.store.query("SELECT uuid FROM jobs WHERE folder = ?", (str(folder.uuid),))
    assert len(jobs) == 2 == len(result.jobs)
    # get folder, list items, then per job: slots (one per item type), start, long poll
    assert http_log.calls("GET", f"/storage/folders/{folder.uuid}") == 1
    assert http_log.calls("GET", "/items") == 1
    assert http_log.calls("POST", "/upload-signed-urls") == 3  # images ×2 batches, text ×1
    assert http_log.calls("POST", "/data-upload-jobs") == 2
    assert len(http_log.api) == 2 + 3 + 2 + 2
    assert sorted(m for m, _ in http_log.transfers) == ["PUT"] * 150


def test_put_retries_transient_failures_with_backoff(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png())
    slot = UploadSignedUrl(item_uuid="00000000-0000-0000-0000-000000000001", object_key="k", signed_url="http://s/k")
    answers: list[Any] = [httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(200)]
    seen: list[httpx.Request] = []

    def storage(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with httpx.Client(transport=httpx.MockTransport(storage)) as http:
        assert put_file(http, path, slot, NO_WAIT) is None
    assert len(seen) == 3 and seen[-1].content == png()
    assert seen[-1].headers["content-type"] == "image/png" and seen[-1].headers["content-length"] == str(len(png()))
    assert "transfer-encoding" not in seen[-1].headers

    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403, text="expired"))) as http:
        assert put_file(http, path, slot, NO_WAIT) == "HTTP 403 from the upload URL: expired"
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as http:
        error = put_file(http, path, slot, RetryPolicy(max_attempts=2, backoff_seconds=0))
    assert error == "HTTP 500 from the upload URL:  (gave up after 2 attempts)"


def test_a_file_whose_bytes_are_not_its_declared_size_fails_with_the_reason(tmp_path: Path) -> None:
    """``/proc`` files declare 0 bytes and hold more: what a file rewritten between stat and read looks like."""
    slot = UploadSignedUrl(item_uuid="00000000-0000-0000-0000-000000000001", object_key="k", signed_url="http://s/k")
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as http:
        error = put_file(http, Path("/proc/self/status"), slot, NO_WAIT)
    assert error == "changed during its upload (it grew beyond its 0 bytes); the next run sends it again"


def test_a_file_rewritten_while_it_uploads_fails_alone_and_the_others_land(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path
) -> None:
    for index in range(100):
        (tmp_path / f"note-{index:03d}.txt").write_bytes(text(f"note {index}"))
    restless = tmp_path / "restless.txt"
    restless.write_bytes(b"a" * 4_000_000)
    stop = threading.Event()

    def rewrite() -> None:  # someone's program keeps writing the file, now long, now short, never the same
        version = 0
        while not stop.is_set():
            version += 1
            restless.write_bytes(f"version {version}\n".encode() * (100_000 if version % 2 else 300_000))

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    try:
        result = upload_directory.fn(credentials, folder.uuid, tmp_path)
    finally:
        stop.set()
        writer.join()

    assert len([key for key in result.items if key.startswith("note-")]) == 100
    assert set(result.failed) == {"restless.txt"}, result.failed  # its item would have another file's identity
    reason = result.failed["restless.txt"]
    print(f"restless.txt: {reason}")
    assert "changed during its upload" in reason or "file is empty" in reason, reason  # or caught mid-rewrite
