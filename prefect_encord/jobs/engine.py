"""The one engine for Encord's data-upload jobs, for local uploads and cloud registrations alike.

A data job is where our state and Encord's split: starting one is not idempotent (the SDK sends the POST
with retries off) and a job of 1,000 files runs for minutes. So every job goes through the same steps, and
the same crash points mark the splits between them (see :mod:`prefect_encord.runtime.crashpoints`):

1. **Intent first.** The job's body goes to the :mod:`job ledger <prefect_encord.state.job_ledger>` and the job
   to the run's :mod:`item map <prefect_encord.state.item_map>` journal (``starting``) before Encord is asked
   (``job.before-start``). A body already in the ledger with an id is the job an earlier attempt started:
   it is polled, never started again.
2. **Start once**, retried only on transient errors, which is safe: every job is sent with
   ``skip_duplicate_urls``, so a twin started behind a lost answer returns the first one's items
   (``job.after-start``); the id goes to the ledger and the journal (``started``, ``job.after-record``).
3. **Long-poll** until the job finishes (``job.mid-poll``, ``job.after-poll``).
4. **Settle**: the kind maps Encord's answer back to its units; the items go to the item map, the journal
   says ``settled`` (``job.after-settle``), and only then does the record leave the ledger.
5. **Retry failed units once** (``unit_retries``), in a job of their own started the same way; a unit can
   fail for a passing reason (the bucket throttled Encord's read).

A run killed anywhere in between leaves the record, and :func:`~prefect_encord.jobs.finishing.finish_earlier_jobs`
finishes it before the next run into the folder lists it, or before a rollback plans.

What differs between uploads and registrations is a :class:`JobKind`: how a batch of units becomes a job body
(signed upload slots after the PUTs, or object URLs through a cloud integration) and how the job's answer maps
back to the units. A cloud-synced folder's sync (``kind="sync"``) goes through the same steps: its intent in the
ledger, started once (a twin sync started behind a lost answer only scans the bucket again), its id recorded,
long-polled, and forgotten once it ended, so a run killed mid-sync resumes polling that sync instead of starting
another. This module is the only one that starts Encord data jobs and syncs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from encord.exceptions import EncordException, ResourceNotFoundError
from encord.orm.storage import DataUploadItems, UploadLongPollingState
from encord.storage import StorageFolder

from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.runtime.crashpoints import crash_point
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.item_map import ItemMapWriter, JobEvent, Status
from prefect_encord.state.job_ledger import JobLedger, JobRecord, job_key

U = TypeVar("U")
R = TypeVar("R")

#: A crash "mid-poll" fires this long after the poll is sent, while the long poll holds the request.
_MID_POLL_CRASH_DELAY = 0.1


@dataclass(frozen=True)
class StartedJob(Generic[U]):
    """A job known to be running (or finished): its ledger record, its units, and whether it was found in the
    ledger rather than started by this attempt."""

    record: JobRecord
    units: tuple[U, ...]
    resumed: bool


class JobKind(Protocol[U, R]):
    """What one kind of data job (``upload`` or ``register``) adds to the engine."""

    #: The job record's ``kind``.
    kind: str
    #: The cloud integration the job reads through; empty for uploads (their files are in Encord already).
    integration_id: str

    def spec(self, units: Sequence[U]) -> dict[str, Any]:
        """The job's body for ``units``, sent with ``skip_duplicate_urls``."""

    def outcome(self, job: StartedJob[U], state: UploadLongPollingState) -> R:
        """Map the polled job back to its units; a kind that cannot report a job still pending raises."""

    def items(self, outcome: R) -> Sequence[tuple[Mapping[str, str], Status]]:
        """What the job left, for the item map: source → item, by status."""

    def failed(self, job: StartedJob[U], outcome: R) -> list[U]:
        """The units of ``job`` that failed and can be sent again."""

    def merge(self, first: StartedJob[U], outcome: R, retry: StartedJob[U], retried: R) -> R:
        """One result from a job and the job that retried its failed units."""


def journal(writer: ItemMapWriter | None, key: str, event: JobEvent, job_id: str = "") -> None:
    """Note a job's step in the run's item map, if the run keeps one (see :mod:`prefect_encord.state.item_map`)."""
    if writer is not None:
        writer.job(key, event, job_id)


class DataJobs(Generic[U, R]):
    """Starts and settles the data jobs of one kind into one folder (see the module for the steps)."""

    def __init__(
        self,
        folder: StorageFolder,
        ledger: JobLedger,
        kind: JobKind[U, R],
        *,
        writer: ItemMapWriter | None = None,
        timeout_seconds: int,
        unit_retries: int,
    ) -> None:
        self.folder = folder
        self.ledger = ledger
        self.kind = kind
        #: The item map of the run: each job is journalled in it, and its items written as it settles.
        self.writer = writer
        self.timeout_seconds = timeout_seconds
        self.unit_retries = unit_retries
        #: Ids of the jobs this engine started, retries included, in order.
        self.started: list[str] = []

    def start(self, units: Sequence[U]) -> StartedJob[U]:
        """Start the job for ``units``, or find the one an earlier attempt started (steps 1 and 2)."""
        spec = self.kind.spec(units)
        key = job_key(str(self.folder.uuid), self.kind.integration_id, spec)
        found = self.ledger.find(key)
        if found is not None and found.job_id:
            run_logger(__name__).info("resuming %s job %s (%d units) found in the job ledger", found.kind,
                                      found.job_id, found.units)  # fmt: skip
            return StartedJob(found, tuple(units), resumed=True)
        intent = found or JobRecord(  # a found intent keeps its time: a lost answer's twin job's items count
            key=key, job_id="", folder_uuid=str(self.folder.uuid), integration_id=self.kind.integration_id,
            submitted_at=datetime.now(timezone.utc), units=len(units), kind=self.kind.kind, spec=spec,
            item_map=None if self.writer is None else str(self.writer.path),
        )  # fmt: skip
        if found is None:
            self.ledger.record(intent)
            journal(self.writer, key, "starting")
        crash_point("job.before-start")
        job_id = start_job(self.folder, intent)
        crash_point("job.after-start")
        record = dataclasses.replace(intent, job_id=str(job_id))
        self.ledger.record(record)
        journal(self.writer, key, "started", record.job_id)
        crash_point("job.after-record")
        self.started.append(record.job_id)
        run_logger(__name__).info("started data-upload job %s for %d units (%s)", record.job_id, len(units),
                                  record.kind)  # fmt: skip
        return StartedJob(record, tuple(units), resumed=False)

    def settle(self, job: StartedJob[U]) -> R:
        """Poll ``job`` to completion, map it back, and send its failed units again (steps 3 to 5)."""
        outcome, finished = self._settle_once(job)
        for _ in range(self.unit_retries):
            failed = self.kind.failed(job, outcome) if finished else []
            if not failed:
                break
            run_logger(__name__).warning("%d units of %s job %s failed; sending them again", len(failed),
                                         job.record.kind, job.record.job_id)  # fmt: skip
            try:
                retry = self.start(failed)
            except EncordException as exc:  # the first failures stand, and are reported
                run_logger(__name__).warning("could not start the retry of job %s: %s", job.record.job_id, exc)
                break
            retried, finished = self._settle_once(retry)
            outcome = self.kind.merge(job, outcome, retry, retried)
        return outcome

    def _settle_once(self, job: StartedJob[U]) -> tuple[R, bool]:
        """Poll ``job`` and map it back: (outcome, whether it finished). A finished job's items are on record
        before it leaves the ledger; one still running stays there, for the next run into the folder."""
        try:
            state = poll_job(self.folder, UUID(job.record.job_id), self.timeout_seconds, job.record.kind)
        except ResourceNotFoundError:
            if not job.resumed:
                raise
            # A record from another Encord (or a job Encord no longer keeps): start over, which is safe.
            run_logger(__name__).warning("job %s from the ledger no longer exists; starting it again",
                                         job.record.job_id)  # fmt: skip
            self.ledger.forget(job.record.key)
            return self._settle_once(self.start(job.units))
        crash_point("job.after-poll")
        outcome = self.kind.outcome(job, state)
        finished = not is_pending(state)
        if finished:
            if self.writer is not None:
                for pairs, status in self.kind.items(outcome):
                    self.writer.write(pairs, status)
            journal(self.writer, job.record.key, "settled", job.record.job_id)
            crash_point("job.after-settle")
            self.ledger.forget(job.record.key)
        return outcome, finished


def start_job(folder: StorageFolder, record: JobRecord) -> UUID:
    """Start the job whose body ``record`` holds; retried on transient errors, which is safe (see the module).

    Uploads name no cloud integration (the SDK's own helpers pass ``None``, though its signature says ``str``)
    and are started with ``ignore_errors`` so a failing unit never stops its siblings.
    """
    if record.kind == "upload":
        items = DataUploadItems.from_dict(record.spec or {})
        start = lambda: folder.add_private_data_to_folder_start(None, items, ignore_errors=True)  # type: ignore[arg-type]  # noqa: E731
    elif record.kind == "sync":
        start = folder.sync_private_data_with_cloud_synced_folder_start
    else:
        start = lambda: folder.add_private_data_to_folder_start(record.integration_id, record.spec or {})  # noqa: E731
    return call_with_retries(start, f"starting a {record.kind} job of {record.units} units")


def poll_job(folder: StorageFolder, job_id: UUID, timeout_seconds: int, kind: str = "register") -> Any:
    """Long-poll a data-upload job (an ``UploadLongPollingState``), or a cloud sync (``kind="sync"``: a
    ``SyncPrivateDataWithCloudSyncedFolderGetResultResponse``), until it ends or ``timeout_seconds`` pass,
    riding out transient errors.

    A poll only reads, so repeating it is always safe; a repeat asks for the time that is left. The crash point
    ``job.mid-poll`` is armed while the poll waits.
    """
    deadline = time.monotonic() + timeout_seconds

    def poll() -> Any:
        crash_point("job.mid-poll", delay_seconds=_MID_POLL_CRASH_DELAY)
        remaining = max(1, math.ceil(deadline - time.monotonic()))
        if kind == "sync":
            return folder.sync_private_data_with_cloud_synced_folder_get_result(job_id, timeout_seconds=remaining)
        return folder.add_private_data_to_folder_get_result(job_id, timeout_seconds=remaining)

    return call_with_retries(poll, f"polling {'cloud sync' if kind == 'sync' else 'data-upload job'} {job_id}")


def is_pending(state: Any) -> bool:
    """Whether a polled job or sync is still running (the two answers spell PENDING differently)."""
    return str(getattr(state.status, "value", state.status)).upper() == "PENDING"
