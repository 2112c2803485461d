"""Upload a local directory into an Encord storage folder: concurrent transfers, batched registration, no duplicates.

The SDK's ``upload_*`` helpers spend four API calls and one job per file, serially. This task spends, per
batch of up to 1,000 units, one signed-URL request per item type, the PUTs (in parallel, straight to
object storage), one data-upload job and its long poll; batches are pipelined, so object storage and
Encord's job workers are busy at the same time. What to upload and how the answers map back is decided by
:mod:`prefect_encord.planning.uploads`; this module only does the I/O.

Re-running over the same directory creates nothing: every item carries its content digest in client
metadata (``prefect_encord.sha256``), and one listing of the folder up front finds what is already there.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx
from encord.exceptions import EncordException
from encord.orm.storage import DataUploadItems, StorageItemType, UploadSignedUrl
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.planning.uploads import (
    IDENTITY_KEY,
    SlotType,
    UploadUnit,
    assign_slots,
    is_candidate,
    job_batches,
    media_type,
    pending_units,
    plan_units,
    registration,
    settle,
    slot_requests,
    unit_digest,
)
from prefect_encord.tasks.run_logger import run_logger

DEFAULT_RETRY_POLICY = RetryPolicy()
_CHUNK_BYTES = 1024 * 1024
_PUT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=None)


class UploadResult(BaseModel):
    """What an upload run left in the folder, keyed by the unit: a file's path relative to the directory,
    or a directory's for an image group, image sequence or DICOM series (``"."`` for the directory itself)."""

    items: dict[str, str] = Field(
        default_factory=dict, description="Every unit now in the folder → its item UUID, new or already present."
    )
    skipped: list[str] = Field(
        default_factory=list, description="Units whose content was already in the folder: nothing was uploaded."
    )
    failed: dict[str, str] = Field(default_factory=dict, description="Units (or unusable files) → why they failed.")
    jobs: list[str] = Field(default_factory=list, description="UUIDs of the data-upload jobs this run started.")


@task
def upload_directory(
    credentials: EncordCredentials,
    folder_uuid: str | UUID,
    directory: str | Path,
    image_groups: Sequence[str] = (),
    image_sequences: Sequence[str] = (),
    exclude: Sequence[str] = (),
    client_metadata: Mapping[str, Any] | None = None,
    max_concurrency: int = 16,
    job_size: int = 1000,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    poll_timeout_seconds: int = 3600,
) -> UploadResult:
    """Upload every media file under ``directory`` into the storage folder ``folder_uuid``.

    Images, videos, audio, text and PDFs become one item each; the ``.dcm`` files of a directory become
    one DICOM series; images directly inside directories matching an ``image_groups`` or
    ``image_sequences`` pattern (``fnmatch`` on the relative path, ``"."`` for ``directory`` itself)
    become one image group or sequence, frames in natural file-name order. Hidden files and paths
    matching ``exclude`` are left out.

    One bad file never fails the others: unreadable, unsupported, refused or undecodable files are
    reported in ``failed``. Content already in the folder (same SHA-256) is not uploaded again.

    Args:
        credentials: Encord credentials block.
        folder_uuid: UUID of the storage folder to upload into.
        directory: Local directory to upload, recursively.
        image_groups: Patterns of directories whose images form one image group each.
        image_sequences: Patterns of directories whose images form one image sequence (a video) each.
        exclude: Patterns of relative paths to leave out.
        client_metadata: Client metadata for every item created (the identity key is added to it).
        max_concurrency: Files hashed and transferred in parallel.
        job_size: Units per data-upload job (Encord takes up to 1,000 placeholders per item type and request).
        retry_policy: Retries of PUTs failing with a connection error, 408, 429 or 5xx.
        poll_timeout_seconds: How long to wait for each job; units still pending afterwards are reported as failed.

    Returns:
        An :class:`UploadResult`.
    """
    logger = run_logger(__name__)
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    paths = sorted(
        relative
        for path in root.rglob("*")
        if path.is_file() and is_candidate(relative := path.relative_to(root).as_posix(), exclude)
    )
    plan = plan_units(paths, root.name, image_groups, image_sequences)
    result = UploadResult(failed=dict(plan.rejected))

    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="encord-upload") as pool:
        units, digests = _identify(pool, root, plan.units, result.failed)
        storage_folder = credentials.get_client().get_storage_folder(UUID(str(folder_uuid)))
        pending = pending_units(units, digests, _existing_digests(storage_folder))
        result.items.update(pending.present)
        result.skipped.extend(pending.present)
        logger.info(
            "%d units under %s: %d already in folder %s, %d to upload, %d unusable",
            len(plan.units), root, len(pending.present), folder_uuid, len(pending.upload), len(result.failed),
        )  # fmt: skip
        started = []
        with httpx.Client(timeout=_PUT_TIMEOUT, limits=httpx.Limits(max_connections=max_concurrency)) as http:
            for batch in job_batches(pending.upload, job_size):
                job = _send(storage_folder, pool, http, root, batch, digests, client_metadata, retry_policy, result)
                if job is not None:
                    started.append(job)

    for job_uuid, job_units, job_slots in started:  # long polls: by now the first jobs have had time to finish
        state = storage_folder.add_private_data_to_folder_get_result(job_uuid, timeout_seconds=poll_timeout_seconds)
        created, failed = settle(job_units, job_slots, state)
        result.items.update(created)
        result.failed.update(failed)
    for twin, original in pending.twins.items():
        if original in result.items:
            result.items[twin] = result.items[original]
            result.skipped.append(twin)
        else:
            result.failed[twin] = f"same content as {original}, which failed: {result.failed[original]}"
    logger.info(
        "upload of %s finished: %d created, %d already present, %d failed",
        root, len(result.items) - len(result.skipped), len(result.skipped), len(result.failed),
    )  # fmt: skip
    return result


def _identify(
    pool: ThreadPoolExecutor, root: Path, units: Sequence[UploadUnit], failed: dict[str, str]
) -> tuple[list[UploadUnit], dict[str, str]]:
    """Hash every file in parallel; return the units whose files are all readable and their digests (key → digest),
    recording the others in ``failed``."""
    paths = [p for unit in units for p in unit.files]
    file_digests: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for path, outcome in zip(paths, pool.map(lambda p: _sha256(root / p), paths), strict=True):
        if isinstance(outcome, OSError):
            unreadable[path] = f"cannot read: {outcome.strerror or outcome}"
        else:
            file_digests[path] = outcome
    readable = []
    for unit in units:
        broken = [f"{p}: {unreadable[p]}" for p in unit.files if p in unreadable]
        if broken:
            failed[unit.key] = "; ".join(broken)
        else:
            readable.append(unit)
    return readable, {unit.key: unit_digest(unit, file_digests) for unit in readable}


def _sha256(path: Path) -> str | OSError:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        return exc
    return digest.hexdigest()


def _existing_digests(folder: StorageFolder) -> dict[str, str]:
    """Digest → item UUID of everything this task uploaded into the folder before, in one paged listing."""
    existing: dict[str, str] = {}
    for item in folder.list_items(page_size=1000):
        digest = (item.client_metadata or {}).get(IDENTITY_KEY)
        if isinstance(digest, str):
            existing.setdefault(digest, str(item.uuid))
    return existing


def _reserve_slots(folder: StorageFolder, slot_type: SlotType, count: int) -> list[UploadSignedUrl]:
    """Reserve ``count`` placeholder items with signed upload URLs.

    The only SDK internal this package relies on: the SDK has no public call for upload slots, and its own
    ``upload_*``/``create_*`` helpers get theirs from this method (one per file, or one per frame).
    """
    slots = folder._get_upload_signed_urls(item_type=StorageItemType(slot_type), count=count)
    if len(slots) != count:
        raise EncordException(f"asked for {count} {slot_type} upload slots, got {len(slots)}")
    return slots


def _reserve_all(
    folder: StorageFolder, requests: Sequence[tuple[SlotType, int]]
) -> dict[SlotType, list[UploadSignedUrl]]:
    reserved: dict[SlotType, list[UploadSignedUrl]] = {}
    for slot_type, count in requests:
        reserved.setdefault(slot_type, []).extend(_reserve_slots(folder, slot_type, count))
    return reserved


def _start_job(folder: StorageFolder, items: DataUploadItems) -> UUID:
    """Start one data-upload job; ``ignore_errors`` so a failing unit never stops its siblings.

    Local uploads name no cloud integration: the SDK's own helpers pass ``None`` here, though the public
    signature says ``str``.
    """
    return folder.add_private_data_to_folder_start(None, items, ignore_errors=True)  # type: ignore[arg-type]


def _send(
    folder: StorageFolder,
    pool: ThreadPoolExecutor,
    http: httpx.Client,
    root: Path,
    batch: Sequence[UploadUnit],
    digests: Mapping[str, str],
    client_metadata: Mapping[str, Any] | None,
    policy: RetryPolicy,
    result: UploadResult,
) -> tuple[UUID, list[UploadUnit], dict[str, UploadSignedUrl]] | None:
    """Reserve slots for one batch, transfer its files and start its job without waiting for it.

    Returns the job with the units and slots it registers, or None when no unit got that far (every
    failure is recorded in ``result``).
    """
    try:
        slots = assign_slots(batch, _reserve_all(folder, slot_requests(batch)))
    except EncordException as exc:
        result.failed.update({unit.key: f"no upload slot: {exc}" for unit in batch})
        return None
    sent = _transfer_batch(pool, http, root, batch, slots, policy, result.failed)
    if not sent:
        return None
    try:
        job = _start_job(folder, registration(sent, slots, digests, client_metadata))
    except EncordException as exc:
        result.failed.update({unit.key: f"registration refused: {exc}" for unit in sent})
        return None
    result.jobs.append(str(job))
    run_logger(__name__).info("started data-upload job %s for %d units", job, len(sent))
    return job, sent, slots


def _transfer_batch(
    pool: ThreadPoolExecutor,
    http: httpx.Client,
    root: Path,
    batch: Sequence[UploadUnit],
    slots: Mapping[str, UploadSignedUrl],
    policy: RetryPolicy,
    failed: dict[str, str],
) -> list[UploadUnit]:
    """PUT every file of the batch concurrently; record units with a failed file, return the others."""
    paths = [p for unit in batch for p in unit.files]
    errors = dict(zip(paths, pool.map(lambda p: put_file(http, root / p, slots[p], policy), paths), strict=True))
    sent = []
    for unit in batch:
        problems = [f"{p}: {errors[p]}" for p in unit.files if errors[p]]
        if problems:
            failed[unit.key] = "upload failed: " + "; ".join(problems)
        else:
            sent.append(unit)
    return sent


def put_file(http: httpx.Client, path: Path, slot: UploadSignedUrl, policy: RetryPolicy) -> str | None:
    """PUT one file to its signed URL, streamed, as the SDK does; None on success, else the last error.

    The headers are the SDK's (Content-Type by file type, ``Cache-Control``, the slot's own headers). An
    explicit Content-Length keeps the streamed body out of chunked encoding, which signed PUTs refuse.
    """
    media = media_type(path.name)
    headers = {
        "Content-Type": media[1] if media else "application/octet-stream",
        "Cache-Control": "max-age=86400",
        **slot.upload_headers,
    }
    error = "not attempted"
    for attempt in range(1, policy.max_attempts + 1):
        try:
            with path.open("rb") as stream:
                size = str(path.stat().st_size)
                response = http.put(
                    slot.signed_url, content=_chunks(stream), headers={**headers, "Content-Length": size}
                )
        except httpx.TransportError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
        else:
            if response.is_success:
                return None
            error = f"HTTP {response.status_code} from the upload URL: {response.text[:200]}"
            if not policy.retryable(response.status_code):
                return error
        if attempt < policy.max_attempts:
            time.sleep(policy.delay(attempt, random.random()))
    return f"{error} (gave up after {policy.max_attempts} attempts)"


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK_BYTES):
        yield chunk
