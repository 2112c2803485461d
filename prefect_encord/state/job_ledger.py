"""A small durable record of data jobs (cloud registrations and local uploads) not yet seen to finish.

Starting a data-upload job is not idempotent (the SDK never retries the POST), and a job of 1,000 files
can run for minutes. If the task polling it is retried or its process restarts, it must find the job it
already started instead of starting another. So the job's body is written here *before* the job is started
(no id yet), again with its id once Encord answers, and removed only once the job's items are in the run's
item map; a fresh attempt at the same chunk finds it and only polls, and a run that died holding a record is
finished by the next run into the folder or by its rollback (:mod:`prefect_encord.jobs.finishing`): the body
is what lets them start a job whose start was never confirmed, and a local upload's names the upload slots
its files were PUT to, which a later run cannot derive again.

**Where.** One JSON file per in-flight job in a local directory (by default
``$PREFECT_HOME/encord/job-ledger``; set ``PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY`` or pass a
directory), on the machine's own disk. A file rather than a Prefect Variable because it needs no Prefect
API (tasks run fine outside a flow), costs no request, and survives exactly what it must: task retries (same
process) and process restarts on the same machine. If a record is lost (the next run is on another
machine), a registration chunk is resubmitted, and that is safe: every job is sent with
``skip_duplicate_urls``, so the second job returns the items the first created instead of copying them.

**Key.** A SHA-256 of the folder, the integration and the job's exact spec, so the same chunk of the
same listing maps to the same record, while a different chunk, folder or option never picks up another's
job. Records are written atomically (temporary file, then rename), so a crash never leaves half a record.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect_encord.state.durable_files import write_atomically
from prefect_encord.state.settings import local_directory

logger = logging.getLogger(__name__)


def default_directory() -> Path:
    """The configured ledger directory, else ``$PREFECT_HOME/encord/job-ledger``."""
    return local_directory("job_ledger")


@dataclass(frozen=True)
class JobRecord:
    """A data job: enough to start it again, resume polling it and judge its items afterwards.

    ``submitted_at`` is this machine's clock just before the job was started: items the job reports that
    are older than that already existed (they are skipped duplicates). ``kind`` is ``register`` (cloud
    objects) or ``upload`` (local files); ``spec`` is the job's body, and ``job_id`` is empty until the job
    has started.
    """

    key: str
    job_id: str
    folder_uuid: str
    integration_id: str
    submitted_at: datetime
    units: int
    kind: str = "register"
    spec: dict[str, Any] | None = None
    #: The item map of the run that started the job. A run that dies before it settles the job cannot record
    #: the job's items; whoever finishes the job records them there, so a rollback of that run removes them too.
    item_map: str | None = None


def job_key(folder_uuid: str, integration_id: str, spec: dict[str, Any]) -> str:
    """The ledger key of a job: a digest of where it registers and exactly what."""
    canonical = json.dumps([folder_uuid, integration_id, spec], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class JobLedger:
    """Job records stored as ``<directory>/<key>.json``."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_directory()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def find(self, key: str) -> JobRecord | None:
        """The record for ``key``, or None. An unreadable record counts as none: resubmitting is safe."""
        return self._read(self._path(key))

    def records(self, prefix: str = "") -> list[JobRecord]:
        """Every readable record whose key starts with ``prefix``; none (and no cost) if the directory is absent."""
        if not self.directory.is_dir():
            return []
        found = (self._read(path) for path in sorted(self.directory.glob(f"{prefix}*.json")))
        return [record for record in found if record is not None]

    def _read(self, path: Path) -> JobRecord | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return JobRecord(**{**raw, "submitted_at": datetime.fromisoformat(raw["submitted_at"])})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring unreadable job ledger record %s: %s", path, exc)
            return None

    def record(self, job: JobRecord) -> None:
        """Write ``job`` durably (see :func:`~prefect_encord.state.durable_files.write_atomically`)."""
        payload = json.dumps({**asdict(job), "submitted_at": job.submitted_at.isoformat()})
        write_atomically(self._path(job.key), payload, "the job ledger's record")

    def forget(self, key: str) -> None:
        """Drop the record of a job whose result has been read."""
        self._path(key).unlink(missing_ok=True)
