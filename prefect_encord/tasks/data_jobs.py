"""Finish the data jobs earlier runs into a folder left unsettled (see :mod:`prefect_encord.jobs.finishing`):
the step a rollback takes before it plans, so a run killed mid-job is undone completely."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import task

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.finishing import finish_earlier_jobs
from prefect_encord.state.job_ledger import JobLedger
from prefect_encord.state.locks import exclusive


@task
def finish_unsettled_jobs(
    credentials: EncordCredentials,
    folder_uuid: UUID | str,
    ledger_dir: Path | str | None = None,
    poll_timeout_seconds: int = 3600,
) -> int:
    """Finish the data jobs (uploads and registrations) that runs into the folder left unsettled, each job's
    items written to the item map of the run that started it; returns how many jobs there were.

    Raises:
        TimeoutError: If a job is still running after ``poll_timeout_seconds``; nothing is recorded for it.
    """
    with exclusive(f"folder:{folder_uuid}", f"folder {folder_uuid}"):
        client = credentials.get_client()
        folder = call_with_retries(
            lambda: client.get_storage_folder(UUID(str(folder_uuid))), f"fetching folder {folder_uuid}"
        )
        return finish_earlier_jobs(client, folder, JobLedger(ledger_dir), poll_timeout_seconds)
