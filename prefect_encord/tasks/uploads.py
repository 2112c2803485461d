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

Faults and crashes (see :mod:`prefect_encord.jobs.api_retries`):

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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.engine import DataJobs, StartedJob
from prefect_encord.jobs.finishing import finish_earlier_jobs
from prefect_encord.limits import MAX_BULK_ITEMS, MAX_PAGE_SIZE, MAX_UPLOAD_SLOTS
from prefect_encord.planning.identity import FolderIndex, KnownItem, pending_units
from prefect_encord.planning.identity_keys import identity_metadata
from prefect_encord.planning.patterns import check_patterns
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.planning.uploads import (
    SlotType,
    UploadUnit,
    assign_slots,
    job_batches,
    plan_units,
    registration,
    settle,
    slot_requests,
)
from prefect_encord.runtime.interrupts import NOT_STARTED, stop_requested
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.item_map import ItemMap, ItemMapWriter, Status
from prefect_encord.state.job_ledger import JobLedger
from prefect_encord.state.locks import exclusive
from prefect_encord.tasks.local_files import identify, source_root, walk
from prefect_encord.tasks.transfers import PUT_TIMEOUT, transfer_batch

DEFAULT_RETRY_POLICY = RetryPolicy()
#: Times the units a job failed are registered again, in a job of their own.
DEFAULT_UNIT_RETRIES = 1


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
    paths, unusable = walk(root, exclude)
    plan = plan_units(paths, root.name, image_groups, image_sequences)
    result = UploadResult(failed={**unusable, **plan.rejected})
    ledger = JobLedger(ledger_dir)

    # From the listing to the last settled job: a second run into this folder waits, then finds it all there.
    with (
        exclusive(f"folder:{folder_uuid}", f"folder {folder_uuid}"),
        ItemMapWriter(item_map) if item_map is not None else nullcontext() as writer,
    ):
        with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="encord-upload") as pool:
            units, digests, sizes, file_digests = identify(pool, root, plan.units, result.failed)
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
                writer.note(pending.changed, "changed")
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
            with httpx.Client(timeout=PUT_TIMEOUT, limits=httpx.Limits(max_connections=max_concurrency)) as http:
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
        sent = transfer_batch(self.pool, self.http, self.root, batch, slots, self.read, self.policy, result.failed)
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
