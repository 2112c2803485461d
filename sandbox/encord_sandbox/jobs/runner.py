"""The job runner: registers data-upload units in the background, reading and probing real media.

Each unit (one image, video, image group, DICOM series …) is fetched through its integration (or
the blob store for local uploads), probed with field libraries and stored in *one* transaction, so
a failing unit leaves nothing behind and never takes its siblings with it: its error is recorded
on the unit (``unitErrors``). Units run on a small thread pool; pending work is picked up again
after a restart because it lives in the database. Long polls wait on :attr:`JobRunner.changed`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlparse

from encord_sandbox.blobs import BlobStore
from encord_sandbox.chaos import Chaos
from encord_sandbox.db import Database, now_iso
from encord_sandbox.jobs import models as job_models
from encord_sandbox.jobs.fetchers import fetch
from encord_sandbox.jobs.integrations import FetchError, IntegrationConfig
from encord_sandbox.jobs.probing import MediaFacts, ProbeError, probe
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.organisation.metadata_schema import check_values
from encord_sandbox.storage import models as storage_models
from encord_sandbox.storage.models import ITEM_FACT_COLUMNS, NewItem

logger = logging.getLogger(__name__)

STORAGE_LOCATIONS = {"local": "directAccess", "s3": "s3", "gcs": "gcp", "azure": "azure"}
_FRAME_TYPE = {"imageGroup": "image", "imageSequence": "image", "dicomSeries": "dicomFile"}
ACTIONS = {
    "image": "Uploading image",
    "video": "Uploading video",
    "audio": "Uploading audio",
    "plainText": "Uploading text",
    "pdf": "Uploading PDF",
    "nifti": "Uploading NIfTI",
    "imageGroup": "Uploading image group",
    "imageSequence": "Uploading image sequence",
    "dicomSeries": "Uploading DICOM series",
}


class UnitError(Exception):
    """A problem with one unit's media; recorded on the unit, never raised to the caller."""


@dataclasses.dataclass
class Outcome:
    """What one unit resolves to: its item (new, or an existing duplicate) and what to store."""

    item_uuid: str
    name: str
    new_items: list[NewItem] = dataclasses.field(default_factory=list)
    children: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    upsert_metadata: dict[str, Any] | None = None


class JobRunner:
    """Processes pending units of registration jobs on a thread pool."""

    def __init__(
        self,
        store: Database,
        blobs: BlobStore,
        schema: Callable[[], dict[str, Any] | None],
        workers: int = 4,
        chaos: Chaos | None = None,
    ):
        self._store = store
        self._blobs = blobs
        self._schema = schema
        self._chaos = chaos
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-job")
        self._jobs = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-jobs")
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-syncs")
        self.changed = threading.Condition()

    def resume(self) -> None:
        """Pick up jobs left pending by a previous run of the sandbox."""
        for job in job_models.pending_jobs(self._store):
            self.submit(str(job["uuid"]))

    def submit(self, job_uuid: str) -> None:
        self._jobs.submit(self._run_job, job_uuid)

    def run_job(self, job_uuid: str) -> None:
        """Run a job on the calling thread, its units on the pool, until it settles (a cloud sync's jobs)."""
        self._run_job(job_uuid)

    def submit_task(self, task: Callable[[], None]) -> None:
        """Run ``task`` on a thread of its own (a cloud sync, which runs jobs itself); pollers wake at its end."""

        def run() -> None:
            try:
                task()
            except Exception:  # the runner must survive anything a task throws at it
                logger.exception("a background task failed unexpectedly")
            finally:
                self._notify()

        self._tasks.submit(run)

    def shutdown(self) -> None:
        self._tasks.shutdown(wait=False, cancel_futures=True)
        self._jobs.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Block until ``predicate`` holds or ``timeout`` passes (at once when chaos times the poll out)."""
        if self._chaos is not None and self._chaos.poll_times_out():
            return
        with self.changed:
            self.changed.wait_for(predicate, timeout=timeout)

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def _run_job(self, job_uuid: str) -> None:
        try:
            job = self._store.query_one("SELECT * FROM jobs WHERE uuid = ?", (job_uuid,))
            if job is None:
                return
            pending = [u for u in job_models.job_units(self._store, job_uuid) if u["status"] == "PENDING"]
            list(self._pool.map(lambda unit: self._run_unit(job, unit), pending))
            job_models.settle_job(self._store, job_uuid)
        except Exception:  # the runner must survive anything a job throws at it
            logger.exception("job %s failed unexpectedly", job_uuid)
        finally:
            self._notify()

    def _run_unit(self, job: sqlite3.Row, unit: sqlite3.Row) -> None:
        if not self._pending(job["uuid"], unit["idx"]):
            return  # cancelled while it waited in the queue: fetch nothing
        spec = json.loads(unit["spec"])
        chaos_error = self._chaos.unit_failure(_unit_key(spec)) if self._chaos else None
        if chaos_error is not None:
            self._finish(job, unit, "ERROR", None, None, chaos_error)
            return
        try:
            outcome = self._build(job, spec)
        except (UnitError, FetchError, ProbeError) as exc:
            self._finish(job, unit, "ERROR", None, None, str(exc))
            return
        except Exception as exc:  # an unexpected failure still belongs to this unit alone
            logger.exception("unit %s of job %s failed", unit["idx"], job["uuid"])
            self._finish(job, unit, "ERROR", None, None, f"internal error: {type(exc).__name__}: {exc}")
            return
        try:
            self._store_outcome(job, unit, spec, outcome)
        except Exception as exc:  # a failed write is rolled back; the unit, not the job, reports it
            logger.exception("storing unit %s of job %s failed", unit["idx"], job["uuid"])
            self._finish(job, unit, "ERROR", None, None, f"internal error while storing: {type(exc).__name__}: {exc}")
            return
        self._notify()

    def _store_outcome(self, job: sqlite3.Row, unit: sqlite3.Row, spec: dict[str, Any], outcome: Outcome) -> None:
        """Write one unit's items and result in a single transaction (nothing, if it was cancelled)."""
        options = json.loads(job["options"])
        with self._store.transaction() as db:
            if not self._pending(job["uuid"], unit["idx"]):
                return  # cancelled while it was fetched and probed: a cancelled unit stores nothing
            # Units run concurrently: re-check under the write lock so one URL never makes two items.
            duplicate = self._duplicate(job["folder"], spec) if options.get("skip_duplicate_urls") else None
            if duplicate is not None and outcome.new_items:
                outcome = Outcome(item_uuid=str(duplicate["uuid"]), name=str(duplicate["name"]))
                if options.get("upsert_metadata"):
                    outcome.upsert_metadata = spec["client_metadata"]
            storage_models.insert_items(self._store, db, outcome.new_items)
            if outcome.children:
                storage_models.set_children(self._store, db, outcome.item_uuid, outcome.children)
            if outcome.upsert_metadata is not None:
                db.execute(
                    "UPDATE items SET client_metadata = ?, last_edited_at = ? WHERE uuid = ?",
                    (json.dumps(outcome.upsert_metadata), now_iso(), outcome.item_uuid),
                )
            job_models.finish_unit(
                self._store, db, job["uuid"], unit["idx"], "DONE", outcome.item_uuid, outcome.name, None
            )

    def _pending(self, job_uuid: str, idx: int) -> bool:
        row = self._store.query_one("SELECT status FROM job_units WHERE job = ? AND idx = ?", (job_uuid, idx))
        return row is not None and row["status"] == "PENDING"

    def _duplicate(self, folder_uuid: str, spec: dict[str, Any]) -> sqlite3.Row | None:
        """An item of the unit's own kind registered in this folder under the same URL (and, for image
        groups, sequences and DICOM series, the same frame URLs in the same order); for an upload, the item
        its reserved placeholder already became (a resubmitted job)."""
        if spec["placeholders"] and spec["placeholders"][0]:
            return self._registered_upload(folder_uuid, spec)
        urls = spec["urls"]
        candidates = self._store.query(
            "SELECT * FROM items WHERE folder = ? AND url = ? AND item_type = ? AND is_placeholder = 0 "
            "AND frame_of IS NULL ORDER BY created_at, uuid",
            (folder_uuid, urls[0], spec["kind"]),
        )
        for candidate in candidates:
            if (
                spec["kind"] not in _FRAME_TYPE
                or [c["url"] for c in storage_models.children(self._store, candidate["uuid"])] == urls
            ):
                return candidate
        return None

    def _registered_upload(self, folder_uuid: str, spec: dict[str, Any]) -> sqlite3.Row | None:
        """An upload's identity is its first placeholder: the item itself, or the composite owning it as frame 0."""
        first = spec["placeholders"][0]
        if spec["kind"] not in _FRAME_TYPE:
            return self._store.query_one(
                "SELECT * FROM items WHERE uuid = ? AND folder = ? AND is_placeholder = 0", (first, folder_uuid)
            )
        return self._store.query_one(
            "SELECT i.* FROM item_children c JOIN items i ON i.uuid = c.parent "
            "WHERE c.child = ? AND c.position = 0 AND i.folder = ? AND i.item_type = ?",
            (first, folder_uuid, spec["kind"]),
        )

    def _finish(
        self,
        job: sqlite3.Row,
        unit: sqlite3.Row,
        status: str,
        item: str | None,
        name: str | None,
        error: str | None,
    ) -> None:
        with self._store.transaction() as db:
            job_models.finish_unit(self._store, db, job["uuid"], unit["idx"], status, item, name, error)
        self._notify()

    def _build(self, job: sqlite3.Row, spec: dict[str, Any]) -> Outcome:
        """The items one unit creates (frames first, the unit's own item last) and its children."""
        if spec["invalid"]:
            raise UnitError(spec["invalid"])
        options = json.loads(job["options"])
        kind, urls = spec["kind"], spec["urls"]
        name = spec["title"] or _basename(urls[0])
        check_values(self._schema(), spec["client_metadata"], f"item {name!r}")
        if options.get("skip_duplicate_urls"):
            duplicate = self._duplicate(job["folder"], spec)
            if duplicate is not None:  # metadata is upserted with the unit's result, if it is not cancelled
                upsert = spec["client_metadata"] if options.get("upsert_metadata") else None
                return Outcome(item_uuid=str(duplicate["uuid"]), name=str(duplicate["name"]), upsert_metadata=upsert)
        integration = self._integration(job)
        base = {"folder": job["folder"], "owner": job["owner"], "integration_hash": job["integration_hash"]}
        if kind in _FRAME_TYPE:
            frames = [
                self._frame(job, integration, spec, i, url, _FRAME_TYPE[kind], base) for i, url in enumerate(urls)
            ]
            own = NewItem(
                item_type=kind,
                name=name,
                client_metadata=spec["client_metadata"],
                storage_location=frames[0].storage_location,
                url=urls[0],
                facts=_composite_facts(kind, name, frames),
                **base,
            )
            for frame in frames:
                frame.frame_of = own.uuid
            children = [(str(i), f.uuid) for i, f in enumerate(frames)]
            return Outcome(item_uuid=own.uuid, name=name, new_items=[*frames, own], children=children)
        placeholder = spec["placeholders"][0]
        item = self._media_item(job, integration, url=urls[0], name=name, expected=kind, placeholder=placeholder,
                                provided=spec["provided"], base=base)  # fmt: skip
        item.client_metadata = spec["client_metadata"]
        return Outcome(item_uuid=item.uuid, name=name, new_items=[item])

    def _frame(
        self, job: sqlite3.Row, integration: IntegrationConfig | None, spec: dict[str, Any], index: int, url: str,
        expected: str, base: dict[str, Any],
    ) -> NewItem:  # fmt: skip
        titles = spec.get("frame_titles") or []
        name = (titles[index] if index < len(titles) else None) or _basename(url)
        return self._media_item(job, integration, url=url, name=name, expected=expected,
                                placeholder=spec["placeholders"][index], provided=None, base=base)  # fmt: skip

    def _media_item(
        self, job: sqlite3.Row, integration: IntegrationConfig | None, *, url: str, name: str, expected: str,
        placeholder: str | None, provided: dict[str, Any] | None, base: dict[str, Any],
    ) -> NewItem:  # fmt: skip
        if placeholder:
            reserved = storage_models.placeholder(self._store, job["folder"], placeholder)
            data = self._blobs.read(reserved["blob_key"])
            if data is None:
                raise UnitError(f"{name}: nothing was uploaded to the signed URL of item {placeholder}")
            facts = probe(data, name, expected)
            return NewItem(uuid=reserved["uuid"], item_type=expected, name=name, storage_location="encord",
                           blob_key=reserved["blob_key"], url=None, facts=_facts(facts),
                           **{**base, "integration_hash": None})  # fmt: skip
        if integration is None:
            raise UnitError(f"{url}: registering a URL needs an integrationHash")
        if provided is not None:  # strict client-only access: use the customer's facts, do not fetch
            facts_dict = {k: v for k, v in provided.items() if k in ITEM_FACT_COLUMNS}
            facts_dict.update(_renamed(provided))
        else:
            facts_dict = _facts(probe(fetch(integration, url), name, expected))
        return NewItem(item_type=expected, name=name, storage_location=STORAGE_LOCATIONS[integration.kind],
                       url=url, facts=facts_dict, **base)  # fmt: skip

    def _integration(self, job: sqlite3.Row) -> IntegrationConfig | None:
        if not job["integration_hash"]:
            return None
        row = organisation_models.integration(self._store, job["owner"], job["integration_hash"])
        return IntegrationConfig.from_dict(json.loads(row["config"]))


def _facts(facts: MediaFacts) -> dict[str, Any]:
    values = dataclasses.asdict(facts)
    return {column: values.get(column) for column in ITEM_FACT_COLUMNS}


def _renamed(provided: dict[str, Any]) -> dict[str, Any]:
    """Customer-provided audio metadata says ``sample_rate``; the item stores ``audio_sample_rate``."""
    names = {"sample_rate": "audio_sample_rate", "bit_depth": "audio_bit_depth", "codec": "audio_codec",
             "num_channels": "audio_num_channels"}  # fmt: skip
    return {names[k]: v for k, v in provided.items() if k in names}


def _composite_facts(kind: str, name: str, frames: list[NewItem]) -> dict[str, Any]:
    first = frames[0].facts
    if kind == "imageSequence":
        sizes = {(f.facts.get("width"), f.facts.get("height")) for f in frames}
        if len(sizes) > 1:
            raise UnitError(f"image sequence {name!r} mixes frame sizes {sorted(sizes)}; a sequence needs one size")
    if kind == "dicomSeries":
        series = {f.facts.get("dicom_series_uid") for f in frames}
        if len(series) > 1:
            raise UnitError(f"DICOM series {name!r} mixes SeriesInstanceUIDs {sorted(map(str, series))}")
    return {
        "width": first.get("width"),
        "height": first.get("height"),
        "frame_count": len(frames),
        "file_size": sum(f.facts.get("file_size") or 0 for f in frames),
        "mime_type": "application/dicom"
        if kind == "dicomSeries"
        else ("video/mp4" if kind == "imageSequence" else None),
        "dicom_study_uid": first.get("dicom_study_uid"),
        "dicom_series_uid": first.get("dicom_series_uid"),
    }


def _unit_key(spec: dict[str, Any]) -> str:
    """What names a unit across jobs and runs, for chaos: its title, else its first URL."""
    return str(spec.get("title") or (spec.get("urls") or ["untitled unit"])[0])


def _basename(url: str) -> str:
    return posixpath.basename(unquote(urlparse(url).path)) or url
