"""Register cloud objects with Encord: each chunk one data-upload job, through the job engine.

The engine (:mod:`prefect_encord.jobs.engine`) starts each job exactly once (its body in the job ledger before
Encord is asked), long-polls it, settles it into the item map and sends failed units again once; a run killed
mid-job is finished by the next registration into the folder or by its rollback
(:mod:`prefect_encord.jobs.finishing`). Registration's own part (:mod:`prefect_encord.tasks.registrar`): the
job body names object URLs, sent with ``skip_duplicate_urls`` (and ``upsert_metadata`` on request) so anything
already registered comes back as the existing item instead of a copy; one bulk item lookup per 1,000 items
tells new items from skipped duplicates (:mod:`prefect_encord.planning.outcomes`); per-unit errors are reported, never
raised, so one bad file never fails or hides its siblings.

Requests to Encord: per task call, one to fetch the folder and one to resolve the integration; per job of
up to 1,000 units, one to submit, one long poll (more only for jobs running longer than a poll is held)
and one bulk lookup. That is about 3 requests per 1,000 files once a bucket is large. Faults and failed
units add requests; a run without them adds none.

Tasks take blocks, UUIDs and names, never SDK clients: those are built inside the task, so task inputs
stay hashable and picklable for Prefect's caching and retries.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prefect import task

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.storage import CloudStorageIntegration, resolve_integration
from prefect_encord.events.reporting import StepProgress
from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.engine import StartedJob
from prefect_encord.jobs.finishing import finish_earlier_jobs
from prefect_encord.limits import MAX_BULK_ITEMS
from prefect_encord.planning.changes import Known, classify, fingerprint, in_selection, single_unit_fingerprints
from prefect_encord.planning.metadata_values import ImportMode
from prefect_encord.planning.objects import (
    ObjectRecord,
    Skipped,
    as_utc,
    folder_prefix,
    is_modified_since,
)
from prefect_encord.planning.outcomes import BucketRegistration, JobResult, JobSummary
from prefect_encord.planning.sidecars import check_suffix, sidecar_fingerprint, sidecar_target
from prefect_encord.planning.specs import (
    DEFAULT_JOB_SIZE,
    Entry,
    PlanOptions,
    chunked,
    named_keys,
    plan_registration,
)
from prefect_encord.runtime.interrupts import NOT_STARTED, stop_requested
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.inventory import Inventory
from prefect_encord.state.inventory import default_path as default_inventory
from prefect_encord.state.item_map import ItemMapWriter
from prefect_encord.state.item_map import default_path as default_item_map
from prefect_encord.state.job_ledger import JobLedger
from prefect_encord.state.locks import exclusive
from prefect_encord.tasks.dicom_headers import read_dicom_headers
from prefect_encord.tasks.moves import Restored, restore_archived
from prefect_encord.tasks.registrar import DEFAULT_TIMEOUT_SECONDS, DEFAULT_UNIT_RETRIES, Registrar
from prefect_encord.tasks.sidecars import apply_sidecars

#: Jobs submitted ahead of the one being polled: Encord works on them meanwhile, memory stays bounded.
DEFAULT_MAX_IN_FLIGHT = 4
#: The bucket's top-level folders listed at once: a listing is bound by round trips, not bandwidth.
LISTING_FAN_OUT = 8
#: Listed objects compared with the inventory at once (a few MB): each comparison is a few SQLite statements, and
#: every statement waits its turn for the GIL behind the listing's threads.
CONFIRM_BATCH = 10_000


def _registrar(
    credentials: EncordCredentials,
    folder_uuid: str,
    integration: str,
    ledger_dir: Path | str | None,
    upsert_metadata: bool,
    timeout_seconds: int,
    unit_retries: int,
) -> Registrar:
    """A registrar for the folder and integration; both lookups are reads, retried on transient errors."""
    client = credentials.get_client()
    return Registrar(
        client,
        call_with_retries(lambda: client.get_storage_folder(UUID(folder_uuid)), f"fetching folder {folder_uuid}"),
        call_with_retries(lambda: resolve_integration(client, integration), f"resolving integration {integration}"),
        JobLedger(ledger_dir),
        upsert_metadata=upsert_metadata,
        timeout_seconds=timeout_seconds,
        unit_retries=unit_retries,
    )


@task
def register_chunk(
    credentials: EncordCredentials,
    folder_uuid: str,
    integration: str,
    entries: Sequence[Entry],
    upsert_metadata: bool = False,
    ledger_dir: Path | str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    unit_retries: int = DEFAULT_UNIT_RETRIES,
) -> JobResult:
    """Register one chunk of planned entries as one Encord data-upload job and wait for it.

    Safe to retry: the job id is recorded before polling, so a retry resumes the same job; and a
    resubmission (a lost record) creates nothing new, because duplicate URLs are skipped.

    Args:
        credentials: Encord credentials.
        folder_uuid: UUID of the storage folder to register into (see ``get_or_create_folder``).
        integration: Title or UUID of the Encord cloud integration that can read the objects.
        entries: One chunk from :func:`~prefect_encord.planning.specs.chunked`.
        upsert_metadata: Replace the client metadata of entries that are already registered.
        ledger_dir: Directory of the job ledger; see :mod:`prefect_encord.state.job_ledger`.
        timeout_seconds: Give up polling after this long (a retry resumes).
        unit_retries: Times failed units are registered again, each time in a job of their own.

    Returns:
        The job's :class:`~prefect_encord.planning.outcomes.JobResult` (with its retries' outcomes).
    """
    registrar = _registrar(
        credentials, folder_uuid, integration, ledger_dir, upsert_metadata, timeout_seconds, unit_retries
    )
    return registrar.register(entries)


@task
def register_bucket(
    credentials: EncordCredentials,
    storage: CloudStorageIntegration,
    folder_uuid: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    modified_since: datetime | None = None,
    options: PlanOptions | None = None,
    job_size: int = DEFAULT_JOB_SIZE,
    upsert_metadata: bool = False,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ledger_dir: Path | str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    unit_retries: int = DEFAULT_UNIT_RETRIES,
    item_map: Path | str | None = None,
    progress: StepProgress | None = None,
    use_inventory: bool = True,
    refresh_inventory: bool = False,
    keys: Sequence[str] | None = None,
    sidecar_suffix: str = "",
    sidecar_mode: ImportMode = "merge",
    sidecar_unknown_keys: bool = False,
    dry_run: bool = False,
) -> BucketRegistration:
    """List a bucket, plan its registration, and register it in jobs of ``job_size`` units.

    The listing streams page by page into the planner and the planner into jobs, and each settled job's
    URL -> item pairs go to the item map file, so memory holds a few jobs (``max_in_flight`` submitted
    ahead of the one being polled), not the bucket. Re-running it creates nothing new: already-registered
    objects come back as skipped duplicates with their items.

    Args:
        credentials: Encord credentials.
        storage: The S3, GCS or Azure integration block naming the bucket and the Encord integration.
        folder_uuid: UUID of the storage folder to register into (see ``get_or_create_folder``).
        include: Glob patterns an object's key (relative to the block's prefix) must match; empty = all.
        exclude: Glob patterns of keys to leave out.
        modified_since: Only objects modified at or after this moment, e.g. the previous run's watermark.
        options: How objects become entries (image groups and sequences, DICOM series, client metadata).
        job_size: Units per registration job.
        upsert_metadata: Replace the client metadata of objects that are already registered.
        max_in_flight: Jobs submitted before the oldest one is polled.
        ledger_dir: Directory of the job ledger; see :mod:`prefect_encord.state.job_ledger`.
        timeout_seconds: Give up polling a job after this long (a retry resumes).
        unit_retries: Times failed units are registered again, each time in a job of their own.
        item_map: File to write every registered object's URL -> item UUID to (JSON lines, see
            :mod:`prefect_encord.state.item_map`); by default a new file in the item-map directory.
        progress: Where to tell how many objects are registered so far (a flow's run report hands it out); the
            total is known only once the listing ends, since the listing streams.
        use_inventory: Send Encord only the units the :mod:`inventory <prefect_encord.state.inventory>` does not
            hold as they are listed now; False sends every unit (Encord skips what it holds) and starts the
            inventory afresh.
        refresh_inventory: Forget the inventory first (when items may have been deleted in Encord): this run
            sends every unit and records Encord's answers.
        keys: Only these objects (full object keys, as bucket notifications name them): each is looked up on its
            own, nothing listed, except the directories whose objects form one unit (images grouped, DICOM
            series), listed whole; a key that no longer exists counts as vanished. None lists the whole prefix.
        sidecar_suffix: Objects whose key is another's plus this suffix (e.g. ``.metadata.json``) are that
            object's metadata sidecars (see :mod:`prefect_encord.planning.sidecars`): never registered, selected
            with their object, applied to its item once it exists (with ``sidecar_mode``), and only when new or
            changed. A named key brings its sidecar along. Empty: no sidecars.
        sidecar_mode: ``merge`` sets the keys a sidecar gives and keeps the item's others; ``overwrite`` makes the
            item's metadata exactly the sidecar's.
        sidecar_unknown_keys: Write sidecar keys the metadata schema does not declare, unchecked; by default a
            sidecar with one is reported and not applied.
        dry_run: List and compare only: nothing is sent to Encord (``planned`` counts the units that would be,
            ``restored`` names the archived items that would move back), no earlier job is finished, no sidecar
            read, and the inventory learns nothing but which units this listing saw.

    Returns:
        The jobs' outcomes in counts and failures, the item map, the objects skipped with reasons, and the
        watermark for the next run.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight {max_in_flight} must be at least 1")
    suffix = check_suffix(sidecar_suffix) if sidecar_suffix else ""
    options = options or PlanOptions()
    registrar = _registrar(
        credentials, folder_uuid, storage.integration, ledger_dir, upsert_metadata, timeout_seconds, unit_retries
    )
    base = folder_prefix(storage.prefix)
    named = named_keys(keys, base, options) if keys is not None else None
    missing: list[str] = []  # named keys that do not exist (any more)
    if named is not None and named.outside:
        run_logger(__name__).warning(
            "%d of the %d keys given are not under %s, so not this block's to register; first: %s",
            len(named.outside), len(keys or ()), storage.root_url + base, ", ".join(named.outside[:5]),
        )  # fmt: skip
    newest: datetime | None = None
    skipped: list[Skipped] = []
    listed_records: dict[str, ObjectRecord] = {}  # listed, not yet planned into a unit: a few directories' worth
    sidecars: list[tuple[str, str, str, str]] = []  # listed, not yet noted in the inventory: up to 1,000
    # With sidecars, the listing's patterns are applied here, so that a sidecar goes with its object.
    filters: tuple[Sequence[str], Sequence[str]] = ((), ()) if suffix else (include, exclude)
    matched = 0
    unchanged = 0  # units known and unchanged: not sent
    confirming = use_inventory and not upsert_metadata  # else every unit is planned and sent

    def selected(key: str) -> bool:
        """A listing's rule, where a sidecar is selected with the object it describes."""
        return in_selection(sidecar_target(key, suffix) or key, base, include, exclude)

    def named_objects() -> Iterator[ObjectRecord]:
        """For named keys: each looked up on its own (a missing one noted), with its sidecar when there are some."""
        assert named is not None
        wanted = [key for key in named.singles if selected(key)]
        companions = {key + suffix for key in wanted if suffix and not sidecar_target(key, suffix)} - set(wanted)
        for key, found in storage.stat_objects([*wanted, *sorted(companions)]):
            if found is None:
                missing.extend([] if key in companions else [key])
            elif is_modified_since(found.last_modified, modified_since):
                yield found

    def pages() -> Iterator[Sequence[ObjectRecord]]:
        """The listing a page at a time, or for named keys those looked up (in pages of 1,000) and only composites'
        directories listed."""
        if named is None:
            yield from storage.list_object_pages(*filters, modified_since, fan_out=LISTING_FAN_OUT)
            return
        yield from chunked(named_objects(), MAX_BULK_ITEMS)
        if named.directories:
            yield from storage.list_object_pages(*filters, modified_since, within=named.directories)

    def batches() -> Iterator[list[ObjectRecord]]:
        """The objects listed that are not sidecars (those are noted), ``CONFIRM_BATCH`` at a time."""
        batch: list[ObjectRecord] = []
        for page in pages():
            for record in page:
                if suffix and not selected(record.key):
                    continue
                target = sidecar_target(record.key, suffix) if suffix else None
                if target is None:
                    batch.append(record)
                    continue
                # not an item: noted, and applied once its object's item exists
                sidecars.append((record.url, record.key, storage.object_url(target), sidecar_fingerprint(record)))
                if len(sidecars) >= MAX_BULK_ITEMS and not dry_run:
                    inventory.note_sidecars(sidecars)
                    sidecars.clear()
            if len(batch) >= CONFIRM_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def listed() -> Iterator[ObjectRecord]:
        """The objects listed that are not sidecars, less those the inventory confirms unchanged (units of one
        object whose fingerprint it holds): those go to the item map as they are, unplanned."""
        nonlocal newest, matched, unchanged
        for objects in batches():
            matched += len(objects)
            latest = max((as_utc(r.last_modified) for r in objects if r.last_modified is not None), default=None)
            if latest is not None and (newest is None or latest > newest):
                newest = latest
            confirmed = inventory.unchanged(single_unit_fingerprints(objects, options), run) if confirming else {}
            writer.write(confirmed, "present")
            unchanged += len(confirmed)
            for record in objects:
                if record.url not in confirmed:
                    listed_records[record.url] = record
                    yield record

    def entries() -> Iterator[Entry]:
        for planned in plan_registration(
            listed(),
            root_url=storage.root_url,
            options=options,
            read_dicom_headers=lambda records: read_dicom_headers(storage, records),
        ):
            if isinstance(planned, Skipped):
                skipped.append(planned)
            else:
                yield planned

    inventory_file = default_inventory(folder_uuid, storage)
    run = uuid.uuid4().hex
    jobs: list[JobSummary] = []
    changed: list[Known] = []
    restored: dict[str, str] = {}  # URL -> item moved back from the archive folder
    planned = 0  # units a dry run would send Encord
    in_flight: deque[StartedJob[Entry]] = deque()
    identities: dict[str, tuple[str, str | None]] = {}  # URL of a unit sent to Encord -> (key, fingerprint)
    settled = 0
    with (
        exclusive(f"folder:{folder_uuid}", f"folder {folder_uuid}"),  # two runs into one folder take turns
        ItemMapWriter(item_map if item_map is not None else default_item_map(folder_uuid)) as writer,
        Inventory(inventory_file) as inventory,
    ):
        if not dry_run:
            finish_earlier_jobs(registrar.client, registrar.folder, registrar.ledger, timeout_seconds)
        registrar.writer = writer
        if inventory.moved_aside is not None:
            aside, why = inventory.moved_aside
            run_logger(__name__).warning(
                "The inventory %s was damaged (%s): moved aside to %s; this run sends every object once and "
                "Encord skips what it holds", inventory_file, why, aside.name,
            )  # fmt: skip
        if refresh_inventory or not use_inventory:
            inventory.clear()

        def to_register() -> Iterator[Entry]:
            """The planned units Encord must be sent: new ones (all of them, without an inventory or when
            upserting metadata); the others go to the item map as they are."""
            nonlocal unchanged
            adopted: list[tuple[str, str, str | None, str]] = []
            for batch in chunked(entries(), MAX_BULK_ITEMS):
                records = {
                    url: listed_records.pop(url) for entry in batch for url in entry.urls if url in listed_records
                }
                urls = [entry.url for entry in batch]
                known = inventory.known(urls) if use_inventory else {}
                unknown = [url for url in urls if url not in known]
                returning = (
                    Restored(back={url: k for url, (k, _) in inventory.archived(unknown).items()})
                    if dry_run
                    else restore_archived(registrar.client, inventory, folder_uuid, unknown, run)
                )
                known.update(returning.back)  # back in the folder: compared as the unit they were
                restored.update({url: k.item for url, k in returning.back.items()})
                skipped.extend(Skipped(url, why) for url, why in returning.failed.items())
                present: dict[str, str] = {}
                for entry in (entry for entry in batch if entry.url not in returning.failed):
                    current = fingerprint(entry, records)
                    change = classify(current, known.get(entry.url))
                    if change == "new" or upsert_metadata:
                        identity = records.get(entry.url)
                        identities[entry.url] = (identity.key if identity else entry.url, current)
                        yield entry
                        continue
                    present[entry.url] = known[entry.url].item
                    if change == "changed":  # reported once: the new fingerprint is the one compared next time
                        changed.append(known[entry.url])
                        adopted.append((entry.url, known[entry.url].key, current, known[entry.url].item))
                    else:
                        unchanged += 1
                writer.write(present, "present")
                inventory.seen(list(present), run)
                inventory.record([] if dry_run else adopted, run)
                adopted.clear()

        def settle_oldest() -> None:
            nonlocal settled
            job = in_flight.popleft()
            result = registrar.settle(job)  # its items are in the item map from here on
            answered = {**result.created, **result.skipped_duplicates}
            inventory.record(((url, *identities.pop(url), item) for url, item in answered.items()), run)
            for entry in job.units:
                identities.pop(entry.url, None)
            jobs.append(result.summary())
            settled += len(job.units)
            if progress is not None:
                progress.tell(settled, None if in_flight or not listing_done else settled, "files registered")

        listing_done = stopped = False
        for chunk in chunked(to_register(), job_size):
            if dry_run:
                planned += len(chunk)
                continue
            if stopped := stop_requested():  # Ctrl-C: the rest is not listed; what started is settled below
                skipped.append(Skipped(storage.root_url, f"{NOT_STARTED} (the listing stopped here)"))
                break
            if len(in_flight) >= max_in_flight:
                settle_oldest()
            in_flight.append(registrar.start(chunk))
        listing_done = True
        while in_flight:
            settle_oldest()
        gone: list[Known] = []
        if not stopped and use_inventory and modified_since is None:  # only a whole listing shows what vanished
            prefixes = [base] if named is None else [base + directory for directory in named.directories]
            gone = [k for k in inventory.unseen(run) if in_selection(k.key, base, include, exclude)
                    and any(k.key.startswith(prefix) for prefix in prefixes)] if prefixes else []  # fmt: skip
            gone += inventory.known([storage.object_url(key) for key in missing]).values()
        inventory.note_sidecars([] if dry_run else sidecars)
        applied = (
            apply_sidecars(registrar.client, registrar.folder, storage, inventory, sidecar_mode, sidecar_unknown_keys)
            if suffix and not stopped and not dry_run
            else None
        )
        writer.note({k.url: k.item for k in changed}, "changed")
        writer.note({k.url: k.item for k in gone}, "vanished")
        writer.note(restored, "restored")
        written = writer.close()
    if include and not matched and not stopped:  # most often a misspelt pattern: say so, not "nothing to change"
        run_logger(__name__).warning(
            "no object under %s matched include %s: nothing was registered (patterns match keys below the prefix, "
            "e.g. '*.mp4' or 'cams/*')", storage.root_url + base, list(include),
        )  # fmt: skip
    if skipped:
        run_logger(__name__).warning("%d objects were not registered; see the result's `skipped` for why", len(skipped))
    if unchanged or changed or gone:
        run_logger(__name__).info(
            "inventory %s: %d units unchanged, %d changed, %d vanished from the bucket (none sent to Encord)",
            inventory_file, unchanged, len(changed), len(gone),
        )  # fmt: skip
    return BucketRegistration(
        jobs=tuple(jobs),
        item_map=written,
        skipped=tuple(skipped),
        watermark=newest,
        unchanged=unchanged,
        changed=tuple((k.url, k.item) for k in changed),
        vanished=tuple((k.url, k.item) for k in gone),
        restored=tuple(restored.items()),
        planned=planned,
        sidecars=applied,
    )
