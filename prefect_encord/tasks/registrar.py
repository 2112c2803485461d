"""Registration's part of a data job (see prefect_encord.jobs.engine): object URLs read through a cloud integration,
and the registrar that starts and settles the jobs of one folder through one integration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from encord import EncordUserClient
from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import UploadLongPollingState
from encord.storage import StorageFolder

from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.engine import DataJobs, StartedJob
from prefect_encord.jobs.finishing import item_facts
from prefect_encord.planning.outcomes import JobResult, settle_job
from prefect_encord.planning.specs import (
    Entry,
    registration_spec,
)
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.item_map import Status
from prefect_encord.state.job_ledger import JobLedger

#: How long one job may take before the task gives up polling (the ledger keeps it for a retry to resume).
DEFAULT_TIMEOUT_SECONDS = 24 * 60 * 60

#: Times the failed units of a job are registered again, in a job of their own.
DEFAULT_UNIT_RETRIES = 1


@dataclass
class RegistrationKind:
    """Registration's part of a data job (see :class:`~prefect_encord.jobs.engine.JobKind`): object URLs read
    through a cloud integration; an answer tells new items from skipped duplicates by their creation time."""

    client: EncordUserClient
    integration_id: str
    upsert_metadata: bool
    timeout_seconds: int
    kind: str = "register"

    def spec(self, units: Sequence[Entry]) -> dict[str, Any]:
        return registration_spec(units, upsert_metadata=self.upsert_metadata)

    def outcome(self, job: StartedJob[Entry], state: UploadLongPollingState) -> JobResult:
        """One bulk item lookup per 1,000 items tells new items from skipped duplicates (step 4).

        Raises:
            TimeoutError: If the job is still running after ``timeout_seconds``; its record stays in the
                ledger, so retrying the task resumes polling it.
        """
        if state.status == LongPollingStatus.PENDING:
            raise TimeoutError(
                f"registration job {job.record.job_id} is still running after {self.timeout_seconds} s; "
                "retry the task to resume polling it"
            )
        returned = [str(item.item_uuid) for item in state.items_with_names]
        facts = call_with_retries(
            lambda: item_facts(self.client, returned), f"looking up the items of job {job.record.job_id}"
        )
        result = settle_job(job.units, state, facts, job_id=job.record.job_id, submitted_at=job.record.submitted_at,
                            resumed=job.resumed)  # fmt: skip
        run_logger(__name__).info(
            "Registration job %s %s: %d created, %d already registered, %d failed", result.job_id, result.status,
            len(result.created), len(result.skipped_duplicates), len(result.unit_errors),
        )  # fmt: skip
        return result

    def items(self, outcome: JobResult) -> Sequence[tuple[Mapping[str, str], Status]]:
        return [(outcome.created, "created"), (outcome.skipped_duplicates, "present")]

    def failed(self, job: StartedJob[Entry], outcome: JobResult) -> list[Entry]:
        """The entries whose unit failed, in their planned order."""
        failed = {failure.urls[0] for failure in outcome.unit_errors if failure.urls}
        return [planned for planned in job.units if planned.url in failed]

    def merge(
        self, first: StartedJob[Entry], outcome: JobResult, retry: StartedJob[Entry], retried: JobResult
    ) -> JobResult:
        return _merge_retry(outcome, retried)


class Registrar(DataJobs[Entry, JobResult]):
    """Starts and settles the registration jobs of one folder through one cloud integration."""

    def __init__(
        self,
        client: EncordUserClient,
        folder: StorageFolder,
        integration_id: str,
        ledger: JobLedger,
        *,
        upsert_metadata: bool = False,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        unit_retries: int = DEFAULT_UNIT_RETRIES,
    ) -> None:
        kind = RegistrationKind(client, integration_id, upsert_metadata, timeout_seconds)
        super().__init__(folder, ledger, kind, timeout_seconds=timeout_seconds, unit_retries=unit_retries)
        self.client = client

    def register(self, entries: Sequence[Entry]) -> JobResult:
        """Start (or resume) and settle one job."""
        return self.settle(self.start(entries))


def _merge_retry(first: JobResult, retry: JobResult) -> JobResult:
    """One chunk's result from its job and the job that retried its failed units: the retry's errors replace
    the first's (a unit without URLs, which cannot be retried, keeps its error); recovered units are logged."""
    recovered = [f for f in first.unit_errors if f.urls and f.urls[0] in retry.items]
    for failure in recovered:
        run_logger(__name__).warning(
            "%s failed in job %s (%s) and was registered by job %s", failure.urls[0], first.job_id, failure.error,
            retry.job_id,
        )  # fmt: skip
    return dataclasses.replace(
        first,
        status=retry.status,
        created={**first.created, **retry.created},
        skipped_duplicates={**first.skipped_duplicates, **retry.skipped_duplicates},
        unit_errors=(*(f for f in first.unit_errors if not f.urls), *retry.unit_errors),
        not_registered=(*first.not_registered, *retry.not_registered),
        unmatched_items=(*first.unmatched_items, *retry.unmatched_items),
    )
