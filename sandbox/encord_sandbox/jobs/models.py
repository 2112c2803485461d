"""Data-upload jobs and their units: a job is pending until every unit is done, failed or cancelled.

The runner (:mod:`encord_sandbox.jobs.runner`) carries the units out; this module owns the two tables and
the transitions of a job (created, unit finished, settled, cancelled).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import NotFound, parse_uuid
from encord_sandbox.storage import models as storage_models

DDL = """
CREATE TABLE IF NOT EXISTS jobs (
    uuid TEXT PRIMARY KEY, folder TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    ignore_errors INTEGER NOT NULL, file_name TEXT, integration_hash TEXT, options TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_units (
    job TEXT NOT NULL, idx INTEGER NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
    item_uuid TEXT, name TEXT, error TEXT, subtask_uuid TEXT NOT NULL, PRIMARY KEY (job, idx));
CREATE INDEX IF NOT EXISTS job_units_status ON job_units(status, job);
"""


def create_job(
    store: Database,
    user: str,
    folder_uuid: str,
    units: Sequence[dict[str, Any]],
    ignore_errors: bool,
    file_name: str | None,
    integration_hash: str | None,
    options: dict[str, Any],
) -> str:
    job_uuid = new_uuid()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?)",
            (job_uuid, folder_uuid, user, int(ignore_errors), file_name, integration_hash,
             json.dumps(options), now_iso()),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO job_units VALUES (?, ?, ?, 'PENDING', NULL, NULL, NULL, ?)",
            [(job_uuid, idx, json.dumps(unit), new_uuid()) for idx, unit in enumerate(units)],
        )
    return job_uuid


def job(store: Database, user: str, folder_uuid: str, job_uuid: str) -> sqlite3.Row:
    folder = storage_models.folder(store, user, folder_uuid)
    row = store.query_one("SELECT * FROM jobs WHERE uuid = ?", (parse_uuid(job_uuid, "upload job"),))
    if row is None or row["folder"] != folder["uuid"]:
        raise NotFound(f"upload job {job_uuid} does not exist in folder {folder_uuid}")
    return row


def job_units(store: Database, job_uuid: str) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM job_units WHERE job = ? ORDER BY idx", (job_uuid,))


def pending_jobs(store: Database) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM jobs WHERE status = 'PENDING' ORDER BY created_at")


def finish_unit(
    store: Database, db: sqlite3.Connection, job_uuid: str, idx: int, status: str, item_uuid: str | None,
    name: str | None, error: str | None,
) -> None:  # fmt: skip
    db.execute(
        "UPDATE job_units SET status = ?, item_uuid = ?, name = ?, error = ? "
        "WHERE job = ? AND idx = ? AND status = 'PENDING'",
        (status, item_uuid, name, error, job_uuid, idx),
    )


def settle_job(store: Database, job_uuid: str) -> str:
    """Mark a job finished once no unit is pending; returns the job's status."""
    with store.transaction() as db:
        job = db.execute("SELECT * FROM jobs WHERE uuid = ?", (job_uuid,)).fetchone()
        counts = dict(
            db.execute("SELECT status, count(*) FROM job_units WHERE job = ? GROUP BY status", (job_uuid,)).fetchall()
        )
        if job["status"] != "PENDING" or counts.get("PENDING"):
            return str(job["status"])
        failed = counts.get("ERROR", 0) and not job["ignore_errors"]
        status = "ERROR" if failed else "DONE"
        db.execute("UPDATE jobs SET status = ? WHERE uuid = ?", (status, job_uuid))
        return status


def cancel_job(store: Database, job_uuid: str) -> int:
    with store.transaction() as db:
        cancelled = db.execute(
            "UPDATE job_units SET status = 'CANCELLED' WHERE job = ? AND status = 'PENDING'", (job_uuid,)
        ).rowcount
        db.execute("UPDATE jobs SET status = 'CANCELLED' WHERE uuid = ? AND status = 'PENDING'", (job_uuid,))
    return int(cancelled)
