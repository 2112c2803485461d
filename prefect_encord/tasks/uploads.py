"""Upload a local directory into an Encord storage folder: concurrent transfers, batched registration, no duplicates.

The SDK's ``upload_*`` helpers spend four API calls and one job per file, serially. This task spends, per
batch of up to 1,000 units, one signed-URL request per item type, the PUTs (in parallel, straight to
object storage), one data-upload job and its long poll; batches are pipelined, so object storage and
Encord's job workers are busy at the same time. What to upload and how the answers map back is decided by
:mod:`prefect_encord.planning.uploads`; this module only does the I/O.

Re-running over the same directory creates nothing: every item carries its path relative to the directory
and its content digest in client metadata (``prefect_encord.path``, ``prefect_encord.sha256``), and one
listing of the folder up front finds what is already there (:mod:`prefect_encord.planning.identity`). Two
files are never merged into one item, whatever their bytes; a file rewritten since its upload is reported as
changed, its item kept.

Faults and crashes (see :mod:`prefect_encord.tasks.api_retries`):

* PUTs are retried on connection errors, 408, 429 and 5xx, waiting at least as long as ``Retry-After``;
* reads, slot reservations (an unused slot stays an invisible placeholder) and job starts are retried on
  429, 5xx and lost answers. Repeating a job start is safe even if the lost answer hid a started job: a
  single file's item *is* its reserved slot (one UUID, so never two items), and the job is sent with
  ``skip_duplicate_urls`` so a composite whose frames are already registered comes back as the existing item;
* each batch's data job goes through the job engine (:mod:`prefect_encord.jobs.engine`): its body is in the
  job ledger before it starts, its items in the item map before the record goes, failed units are sent again
  once (from the files already transferred). A run that dies in between leaves the record, and the next upload
  into the folder finishes the job (or starts it, from the record) *before* it lists the folder, so content
  whose registration was still running is found, not uploaded again; a rollback does the same first
  (:mod:`prefect_encord.jobs.finishing`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx
from encord import EncordUserClient
from encord.exceptions import EncordException
from encord.http.bundle import Bundle
from encord.orm.storage import StorageItemType, UploadLongPollingState, UploadSignedUrl
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.reporting import StepProgress
from prefect_encord.jobs.engine import DataJobs, StartedJob
from prefect_encord.jobs.finishing import finish_earlier_jobs
from prefect_encord.limits import MAX_BULK_ITEMS, MAX_PAGE_SIZE, MAX_UPLOAD_SLOTS
from prefect_encord.planning.identity import FolderIndex, KnownItem, identity_metadata, pending_units
from prefect_encord.planning.patterns import check_patterns
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.planning.signatures import HEAD_BYTES, refusal
from prefect_encord.planning.uploads import (
    SlotType,
    UploadUnit,
    assign_slots,
    is_candidate,
    job_batches,
    media_type,
    plan_units,
    registration,
    settle,
    slot_requests,
    unit_digest,
)
from prefect_encord.runtime.crashpoints import crash_point
from prefect_encord.runtime.interrupts import NOT_STARTED, stop_requested
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.item_map import ItemMap, ItemMapWriter, Status
from prefect_encord.state.job_ledger import JobLedger
from prefect_encord.state.locks import exclusive
from prefect_encord.tasks.api_retries import call_with_retries

DEFAULT_RETRY_POLICY = RetryPolicy()
#: Times the units a job failed are registered again, in a job of their own.
DEFAULT_UNIT_RETRIES = 1
_CHUNK_BYTES = 1024 * 1024
_PUT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=None)


class UploadResult(BaseModel):
    """What an upload run left in the folder, keyed by the unit: a file's path relative to the directory,
    or a directory's for an image group, image sequence or DICOM series (``"."`` for the directory itself)."""

    items: dict[str, str] = Field(
        default_factory=dict, description="Every unit now in the folder → its item UUID, new or already present."
    )
    skipped: list[str] = Field(
        default_factory=list, description="Units already in the folder (same path, same content): nothing was sent."
    )
    changed: dict[str, str] = Field(
        default_factory=dict,
        description="Units whose path has an item of other content (the file was rewritten since) → that item, "
        "kept as it is; nothing was sent.",
    )
    failed: dict[str, str] = Field(default_factory=dict, description="Units (or unusable files) → why they failed.")
    jobs: list[str] = Field(default_factory=list, description="UUIDs of the data-upload jobs this run started.")
    item_map: ItemMap | None = Field(
        default=None, description="The lines this run wrote to the item map it was given (None without one)."
    )


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
    job_size: int = MAX_UPLOAD_SLOTS,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    poll_timeout_seconds: int = 3600,
    ledger_dir: Path | str | None = None,
    unit_retries: int = DEFAULT_UNIT_RETRIES,
    progress: StepProgress | None = None,
    item_map: Path | str | None = None,
) -> UploadResult:
    """Upload every media file under ``directory`` into the storage folder ``folder_uuid``.

    Images, videos, audio, text and PDFs become one item each; the ``.dcm`` files of a directory become
    one DICOM series; images directly inside directories matching an ``image_groups`` or
    ``image_sequences`` pattern (``fnmatch`` on the relative path, ``"."`` for ``directory`` itself)
    become one image group or sequence, frames in natural file-name order. Hidden files and paths
    matching ``exclude`` are left out.

    One bad file never fails the others: unreadable, unsupported, refused or undecodable files are
    reported in ``failed``. A unit already in the folder (same path, same SHA-256) is not uploaded again; one
    whose path has an item of other content is reported in ``changed`` and not uploaded either.

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
        ledger_dir: Directory of the job ledger; see :mod:`prefect_encord.state.job_ledger`.
        unit_retries: Times the units a job failed are registered again, each time in a job of their own.
        progress: Where to tell how many files are sent, then registered (a flow's run report hands it out).
        item_map: The item map to write every unit's item to (see :mod:`prefect_encord.state.item_map`), each job's
            as it settles; its jobs' ledger records name it, so if the run dies before a job settles, whoever
            finishes the job records the job's items there. None writes no map.

    Returns:
        An :class:`UploadResult`.
    """
    check_patterns(image_groups=image_groups, image_sequences=image_sequences, exclude=exclude)
    logger = run_logger(__name__)
    root = source_root(directory)
    paths, unusable = _walk(root, exclude)
    plan = plan_units(paths, root.name, image_groups, image_sequences)
    result = UploadResult(failed={**unusable, **plan.rejected})
    ledger = JobLedger(ledger_dir)

    # From the listing to the last settled job: a second run into this folder waits, then finds it all there.
    with (
        exclusive(f"folder:{folder_uuid}", f"folder {folder_uuid}"),
        ItemMapWriter(item_map) if item_map is not None else nullcontext() as writer,
    ):
        with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="encord-upload") as pool:
            units, digests, sizes, file_digests = _identify(pool, root, plan.units, result.failed)
            client = credentials.get_client()
            storage_folder = call_with_retries(
                lambda: client.get_storage_folder(UUID(str(folder_uuid))), f"fetching folder {folder_uuid}"
            )
            finish_earlier_jobs(client, storage_folder, ledger, poll_timeout_seconds)
            index = call_with_retries(lambda: _index_folder(storage_folder), f"listing folder {folder_uuid}")
            pending = pending_units(units, digests, index, sizes)
            _restamp(client, pending.restamp, digests)
            if writer is not None:
                writer.write({**pending.present, **pending.changed}, "present")
            result.items.update(pending.present)
            result.skipped.extend(pending.present)
            result.items.update(pending.changed)
            result.changed.update(pending.changed)
            logger.info(
                "%d units under %s: %d already in folder %s, %d changed since, %d to upload, %d unusable",
                len(plan.units), root, len(pending.present), folder_uuid, len(pending.changed), len(pending.upload),
                len(result.failed),
            )  # fmt: skip
            started: list[StartedJob[UploadUnit]] = []
            with httpx.Client(timeout=_PUT_TIMEOUT, limits=httpx.Limits(max_connections=max_concurrency)) as http:
                read = {path: (file_digests[path], sizes[path]) for path in file_digests}
                kind = UploadKind(digests, client_metadata)
                jobs = DataJobs(storage_folder, ledger, kind, writer=writer, timeout_seconds=poll_timeout_seconds,
                                unit_retries=unit_retries)  # fmt: skip
                batches = _Batches(storage_folder, jobs, kind, pool, http, root, read, retry_policy)
                sent = 0
                for batch in job_batches(pending.upload, job_size):
                    if stop_requested():  # Ctrl-C: no new slots, PUTs or jobs; what started is settled below
                        result.failed.update(dict.fromkeys((unit.key for unit in batch), NOT_STARTED))
                        continue
                    job = batches.send(batch, result)
                    if job is not None:
                        started.append(job)
                    sent += len(batch)
                    if progress is not None:
                        progress.tell(sent, len(pending.upload), "files sent", phases=2)

        settled = len(pending.upload) - sum(len(job.units) for job in started)  # those that failed before a job
        for job in started:  # long polls: by now the first jobs have had time to finish
            outcome = batches.settle(job)
            result.items.update(outcome.created)
            result.failed.update(outcome.failed)
            settled += len(job.units)
            if progress is not None:
                progress.tell(settled, len(pending.upload), "files registered", phase=1, phases=2)
        result.jobs.extend(jobs.started)
        if writer is not None:
            result.item_map = writer.close()
    logger.info(
        "upload of %s finished: %d created, %d already present, %d changed, %d failed",
        root, len(result.items) - len(result.skipped) - len(result.changed), len(result.skipped),
        len(result.changed), len(result.failed),
    )  # fmt: skip
    return result


def source_root(directory: str | Path) -> Path:
    """The absolute directory to upload; checked before a flow writes anything, so a typo creates no folder.

    Raises:
        NotADirectoryError: Naming the path, if it is not a directory.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory" + ("" if root.exists() else " (it does not exist)"))
    return root


def _walk(root: Path, exclude: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The files to upload under ``root`` (relative POSIX paths, sorted) and the entries that cannot be, with why.

    Symbolic links are followed only within ``root``: a link that leads out of it (to ``/etc/passwd``) would
    upload what the user never meant to share, so it is listed, not followed. Every directory is walked once,
    under its own path; a link to one walked already (or a loop of links) adds nothing. An unreadable
    directory or a broken link is listed too: nothing drops out silently. Hidden entries and excluded files
    are left out, as :func:`is_candidate` says.
    """
    files: list[str] = []
    unusable: dict[str, str] = {}
    walked: dict[Path, str] = {}
    linked: list[tuple[Path, str]] = []  # directory links, walked after the real tree so it is walked as itself

    def visit(directory: Path, relative: str) -> None:
        walked[directory.resolve()] = relative
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            unusable[relative or "."] = f"cannot read the directory: {exc.strerror or exc}"
            return
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if not is_candidate(path, exclude):
                continue
            try:
                if entry.is_symlink():
                    target = Path(entry.path).resolve(strict=True)
                    if not target.is_relative_to(root):
                        unusable[path] = f"a symbolic link to {target}, outside the directory uploaded; not followed"
                        continue
                if entry.is_dir():
                    if entry.is_symlink():
                        linked.append((Path(entry.path), path))
                    else:
                        visit(Path(entry.path), path)
                elif entry.is_file():
                    files.append(path)
                else:
                    unusable[path] = "not a regular file (a socket, pipe or device)"
            except (FileNotFoundError, RuntimeError):  # RuntimeError: a loop of links
                unusable[path] = "a broken symbolic link"
            except OSError as exc:
                unusable[path] = f"cannot read: {exc.strerror or exc}"

    visit(root, "")
    while linked:
        link, path = linked.pop(0)
        real = link.resolve()
        if real in walked:
            run_logger(__name__).info("%s links to %s, uploaded under its own path", path, walked[real] or ".")
        else:
            visit(link, path)
    return sorted(files), unusable


def _identify(
    pool: ThreadPoolExecutor, root: Path, units: Sequence[UploadUnit], failed: dict[str, str]
) -> tuple[list[UploadUnit], dict[str, str], dict[str, int], dict[str, str]]:
    """Hash every file in parallel; return the units whose files are all readable media, their digests
    (key → digest), the files' sizes and digests (path → …), recording the others in ``failed`` (see
    :mod:`prefect_encord.planning.signatures`)."""
    paths = [p for unit in units for p in unit.files]
    file_digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    unusable: dict[str, str] = {}
    for path, outcome in zip(paths, pool.map(lambda p: _read(root / p), paths), strict=True):
        if isinstance(outcome, OSError):
            unusable[path] = f"cannot read: {outcome.strerror or outcome}"
        elif (refused := refusal(path, outcome[1])) is not None:
            unusable[path] = refused
        else:
            file_digests[path], sizes[path] = outcome[0], outcome[2]
    usable = []
    for unit in units:
        # A file's own row names it; a composite's row names its directory, so its reasons name the files.
        broken = [unusable[p] if unit.files == (unit.key,) else f"{p}: {unusable[p]}" for p in unit.files
                  if p in unusable]  # fmt: skip
        if broken:
            failed[unit.key] = "; ".join(broken)
        else:
            usable.append(unit)
    return usable, {unit.key: unit_digest(unit, file_digests) for unit in usable}, sizes, file_digests


def _read(path: Path) -> tuple[str, bytes, int] | OSError:
    """The file's SHA-256, its first bytes and its size, from one pass over it."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return exc
    return digest.hexdigest(), head, size


def _index_folder(folder: StorageFolder) -> FolderIndex:
    """The folder's items by identity, in one paged listing (what each item is, never the item itself, so a
    folder of millions costs its index, not its items)."""
    index = FolderIndex()
    for item in folder.list_items(page_size=MAX_PAGE_SIZE):
        index.add(KnownItem.of(str(item.uuid), item.name, item.client_metadata, item.file_size))
    return index


def _restamp(client: EncordUserClient, restamp: Mapping[str, str], digests: Mapping[str, str]) -> None:
    """Write the path and digest back onto items recognised without them (see
    :mod:`prefect_encord.planning.identity`), keeping their other metadata: per 1,000 items, one bulk read of
    their current metadata and one bundled update.

    A refused write is logged and changes nothing else: the item is still recognised the same way next run.
    """
    uuids = list(restamp)
    for start in range(0, len(uuids), MAX_BULK_ITEMS):
        part = uuids[start : start + MAX_BULK_ITEMS]

        def send(part: list[str] = part) -> None:
            items = client.get_storage_items([UUID(uuid) for uuid in part])
            with Bundle() as bundle:
                for item in items:
                    key = restamp[str(item.uuid)]
                    metadata = {**(item.client_metadata or {}), **identity_metadata(key, digests[key])}
                    item.update(client_metadata=metadata, bundle=bundle)

        try:
            call_with_retries(send, f"tagging {len(part)} items with their path")
        except EncordException as exc:
            run_logger(__name__).warning("could not tag %d items with their path: %s", len(part), exc)
    if uuids:
        run_logger(__name__).info("recognised %d items by content or title and tagged them with their path", len(uuids))


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


@dataclass
class UploadOutcome:
    """A settled upload job, by unit key: the items it created and why the others failed."""

    created: dict[str, str]
    failed: dict[str, str]


@dataclass
class UploadKind:
    """Upload's part of a data job (see :class:`~prefect_encord.jobs.engine.JobKind`): files already PUT to the
    upload slots reserved for them, registered by slot. A single file's item is its slot (one UUID, so a
    repeated start never makes two items)."""

    digests: Mapping[str, str]
    client_metadata: Mapping[str, Any] | None
    #: The slot of every file of a batch sent and not yet settled (a retry sends its units to the same slots).
    slots: dict[str, UploadSignedUrl] = dataclasses.field(default_factory=dict)
    kind: str = "upload"
    integration_id: str = ""

    def spec(self, units: Sequence[UploadUnit]) -> dict[str, Any]:
        items = registration(units, self.slots, self.digests, self.client_metadata)
        items.skip_duplicate_urls = True  # a repeated start returns what an earlier one registered
        return items.to_dict()

    def outcome(self, job: StartedJob[UploadUnit], state: UploadLongPollingState) -> UploadOutcome:
        """Units still pending when the poll gives up are reported as failed; the job stays in the ledger."""
        return UploadOutcome(*settle(job.units, self.slots, state))

    def items(self, outcome: UploadOutcome) -> Sequence[tuple[Mapping[str, str], Status]]:
        return [(outcome.created, "created")]

    def failed(self, job: StartedJob[UploadUnit], outcome: UploadOutcome) -> list[UploadUnit]:
        return [unit for unit in job.units if unit.key in outcome.failed]

    def merge(
        self,
        first: StartedJob[UploadUnit],
        outcome: UploadOutcome,
        retry: StartedJob[UploadUnit],
        retried: UploadOutcome,
    ) -> UploadOutcome:
        failed = dict(outcome.failed)
        for key in retried.created:
            run_logger(__name__).warning("%s failed in job %s (%s) and was registered by job %s", key,
                                         first.record.job_id, failed.pop(key), retry.record.job_id)  # fmt: skip
        return UploadOutcome({**outcome.created, **retried.created}, {**failed, **retried.failed})


@dataclass
class _Batches:
    """Sends batches (slots, PUTs, job) and settles their jobs, all into one folder from one directory."""

    folder: StorageFolder
    jobs: DataJobs[UploadUnit, UploadOutcome]
    kind: UploadKind
    pool: ThreadPoolExecutor
    http: httpx.Client
    root: Path
    read: Mapping[str, tuple[str, int]]  # path → (digest, size) when the file was identified
    policy: RetryPolicy

    def send(self, batch: Sequence[UploadUnit], result: UploadResult) -> StartedJob[UploadUnit] | None:
        """Reserve slots for one batch, transfer its files and start its job without waiting for it.

        Returns the job, or None when no unit got that far (every failure is recorded in ``result``).
        Reserving again after a lost answer only leaves unused slots behind, which stay invisible.
        """
        try:
            reserved = call_with_retries(lambda: _reserve_all(self.folder, slot_requests(batch)), "reserving slots")
            slots = assign_slots(batch, reserved)
        except EncordException as exc:
            result.failed.update({unit.key: f"no upload slot: {exc}" for unit in batch})
            return None
        sent = _transfer_batch(self.pool, self.http, self.root, batch, slots, self.read, self.policy, result.failed)
        if sent and stop_requested():  # the files are up, but no job makes them items: nothing to undo
            result.failed.update(dict.fromkeys((unit.key for unit in sent), NOT_STARTED))
            return None
        if not sent:
            return None
        self.kind.slots.update(slots)
        try:
            return self.jobs.start(sent)
        except EncordException as exc:
            result.failed.update({unit.key: f"registration refused: {exc}" for unit in sent})
            return None

    def settle(self, job: StartedJob[UploadUnit]) -> UploadOutcome:
        """Wait for ``job`` and map it back to its units, retrying failed units; its slots are then let go."""
        outcome = self.jobs.settle(job)
        for unit in job.units:
            for path in unit.files:
                self.kind.slots.pop(path, None)
        return outcome


def _transfer_batch(
    pool: ThreadPoolExecutor,
    http: httpx.Client,
    root: Path,
    batch: Sequence[UploadUnit],
    slots: Mapping[str, UploadSignedUrl],
    read: Mapping[str, tuple[str, int]],
    policy: RetryPolicy,
    failed: dict[str, str],
) -> list[UploadUnit]:
    """PUT every file of the batch concurrently; record units with a failed file, return the others."""
    paths = [p for unit in batch for p in unit.files]

    def put(path: str) -> str | None:
        return NOT_STARTED if stop_requested() else put_file(http, root / path, slots[path], policy, read.get(path))

    errors = dict(zip(paths, pool.map(put, paths), strict=True))
    sent = []
    for unit in batch:
        problems = [f"{p}: {errors[p]}" for p in unit.files if errors[p]]
        if problems:
            failed[unit.key] = "upload failed: " + "; ".join(problems)
        else:
            sent.append(unit)
    return sent


def put_file(
    http: httpx.Client, path: Path, slot: UploadSignedUrl, policy: RetryPolicy, read: tuple[str, int] | None = None
) -> str | None:
    """PUT one file to its signed URL, streamed, as the SDK does; None on success, else the last error.

    A failed attempt is repeated after the policy's backoff, or after ``Retry-After`` if that is longer. A file
    whose size changes while it is sent fails at once (the next run sends it again), and whatever else the HTTP
    library raises fails this file's attempt, never the step: one file's trouble is one file's failure. Given
    ``read``, the digest and size the file had when it was identified, bytes that differ from them fail the file
    too: its item would carry the identity of other bytes.

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
        asked = ""  # the Retry-After of a throttled answer, in seconds
        try:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                if read is not None and size != read[1]:
                    raise FileChangedWhileSent(f"{read[1]:,} bytes when it was read, {size:,} now")
                body = _chunks(stream, size, None if read is None else read[0])
                response = http.put(slot.signed_url, content=body, headers={**headers, "Content-Length": str(size)})
        except FileChangedWhileSent as exc:
            return f"changed during its upload ({exc}); the next run sends it again"
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - httpx's errors and h11's unwrapped ones alike: this file's failure
            error = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                crash_point("upload.mid-put")
                return None
            error = f"HTTP {response.status_code} from the upload URL: {_reason(response)}"
            if not policy.retryable(response.status_code):
                return error
            asked = response.headers.get("retry-after", "")
        if attempt < policy.max_attempts:
            time.sleep(policy.wait(attempt, random.random(), asked))
    return f"{error} (gave up after {policy.max_attempts} attempts)"


def _reason(response: httpx.Response) -> str:
    """What a refusing storage service said: the ``message`` of a JSON answer, else the start of its text."""
    try:
        said = response.json()
    except ValueError:
        said = None
    message = said.get("message") if isinstance(said, dict) else None
    return str(message) if message else response.text[:200]


class FileChangedWhileSent(Exception):
    """A file's bytes no longer match the size declared for its upload: it was rewritten, grown or cut meanwhile."""


def _chunks(stream: IO[bytes], size: int, digest: str | None) -> Iterator[bytes]:
    """The file's bytes, exactly ``size`` of them (the Content-Length sent) and, given ``digest``, those bytes;
    else :class:`FileChangedWhileSent`, raised before the last chunk goes, so the upload does not complete."""
    sent, hashed, held = 0, hashlib.sha256(), b""
    while chunk := stream.read(_CHUNK_BYTES):
        sent += len(chunk)
        if sent > size:
            raise FileChangedWhileSent(f"it grew beyond its {size:,} bytes")
        hashed.update(chunk)
        if held:
            yield held
        held = chunk
    if sent < size:
        raise FileChangedWhileSent(f"it ended after {sent:,} of its {size:,} bytes")
    if digest is not None and hashed.hexdigest() != digest:
        raise FileChangedWhileSent("its bytes changed since it was read")
    if held:
        yield held
