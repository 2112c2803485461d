"""Encord workflow webhooks from the sandbox: task submitted (Annotate stage) and task completed.

Encord lets a project's workflow POST a JSON payload to a URL when a task is submitted on an
Annotate stage or reaches the Complete stage (docs.encord.com, *Webhooks and Notifications*). The
sandbox sends the same payloads, shaped as documented there::

    {"uid": "<event uuid>", "version": 1, "source": "Encord",
     "event_type": "task_submitted_event" | "task_completed_event",
     "event_created_timestamp": "2022-04-13T14:35:11.791161+00:00",
     "payload": {"project_hash": "...", "data_hashes": ["..."], "label_hashes": ["..."]}}

One webhook per label row and event (lists of one). In the sandbox, *submitted* means labels saved
(``label_row.save()``) while the row is in the Annotate stage; *completed* means the row moved to the
Complete stage (``label_row.workflow_complete()``); reopening sends nothing. Nothing is signed: the
documentation describes no signature for these webhooks.

How: SQLite triggers on ``label_rows`` write each event into an outbox table in the same transaction
as the change (transactional outbox), one row per subscribed URL, so an event exists if and only if
the change committed, and labels.py needs no hook. A background thread delivers the outbox: POST with
a short timeout, retried with exponential backoff on connection errors, 5xx, 408 and 429 (other 4xx
fail at once), in order per URL, never blocking a request and never raising. Subscriptions live in
the data directory (``webhooks`` table); ``Sandbox(webhook_url=...)`` adds one for the life of that
process only, ``Sandbox.add_webhook(url)`` one that survives restarts.
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import InvalidArgument, parse_uuid

logger = logging.getLogger(__name__)

TASK_SUBMITTED = "task_submitted_event"
TASK_COMPLETED = "task_completed_event"
EVENT_TYPES = (TASK_SUBMITTED, TASK_COMPLETED)
PAYLOAD_VERSION = 1
KEEP_SETTLED = 10_000  # delivered or failed outbox rows kept for inspection (``deliveries()``)

_OUTBOX_COLUMNS = "webhook, url, event_type, project_hash, data_hash, label_hash, stage, occurred_at"
_SUBSCRIBERS = "FROM webhooks w WHERE (w.project IS NULL OR w.project = NEW.project) AND instr(w.events, '{event}') > 0"

DDL = f"""
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, project TEXT, events TEXT NOT NULL, persistent INTEGER NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, webhook TEXT NOT NULL, url TEXT NOT NULL, uid TEXT,
    event_type TEXT NOT NULL, project_hash TEXT NOT NULL, data_hash TEXT NOT NULL, label_hash TEXT NOT NULL,
    stage TEXT NOT NULL, occurred_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'PENDING',
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT,
    delivered_at TEXT);
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox(status, url, id);
CREATE TRIGGER IF NOT EXISTS webhook_task_submitted AFTER UPDATE OF blob ON label_rows
WHEN NEW.stage = 'Annotate' BEGIN
    INSERT INTO webhook_outbox ({_OUTBOX_COLUMNS})
    SELECT w.id, w.url, '{TASK_SUBMITTED}', NEW.project, NEW.data_hash, NEW.label_hash, NEW.stage,
           NEW.last_edited_at {_SUBSCRIBERS.format(event=TASK_SUBMITTED)};
END;
CREATE TRIGGER IF NOT EXISTS webhook_task_completed AFTER UPDATE OF stage ON label_rows
WHEN NEW.stage = 'Complete' AND OLD.stage <> 'Complete' BEGIN
    INSERT INTO webhook_outbox ({_OUTBOX_COLUMNS})
    SELECT w.id, w.url, '{TASK_COMPLETED}', NEW.project, NEW.data_hash, NEW.label_hash, NEW.stage,
           NEW.last_edited_at {_SUBSCRIBERS.format(event=TASK_COMPLETED)};
END;
"""


@dataclass(frozen=True)
class Webhook:
    """One subscription: where to POST, for which project (``None``: all) and which event types."""

    id: str
    url: str
    project: str | None
    events: tuple[str, ...]
    persistent: bool


def payload(row: sqlite3.Row) -> dict[str, Any]:
    """The documented webhook body of one outbox row."""
    return {
        "uid": row["uid"],
        "version": PAYLOAD_VERSION,
        "source": "Encord",
        "event_type": row["event_type"],
        "event_created_timestamp": row["occurred_at"],
        "payload": {
            "project_hash": row["project_hash"],
            "data_hashes": [row["data_hash"]],
            "label_hashes": [row["label_hash"]],
        },
    }


class WebhookDispatcher:
    """Subscriptions, and the background thread that delivers the outbox of one sandbox's store.

    ``timeout``, ``max_attempts``, ``backoff`` and ``max_backoff`` are plain attributes: the delay
    before attempt n+1 is ``min(backoff * 2**(n-1), max_backoff)`` seconds (0.5, 1, 2, 4, 8 s by default).
    """

    def __init__(
        self,
        store: Database,
        *,
        poll_interval: float = 0.1,
        timeout: float = 5.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.ensure_schema(DDL)
        # Subscriptions made for an earlier process's lifetime only are gone, with what they had queued.
        with store.transaction() as db:
            db.execute("DELETE FROM webhook_outbox WHERE webhook IN (SELECT id FROM webhooks WHERE persistent = 0)")
            db.execute("DELETE FROM webhooks WHERE persistent = 0")

    # --- subscriptions --------------------------------------------------------------------------

    def add(
        self,
        url: str,
        project_hash: str | None = None,
        events: tuple[str, ...] | list[str] = EVENT_TYPES,
        persistent: bool = True,
    ) -> Webhook:
        """Subscribe ``url``; the same URL, project and events again returns the existing subscription."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"webhook URL {url!r} must be an absolute http(s) URL")
        unknown = [e for e in events if e not in EVENT_TYPES]
        if unknown or not events:
            raise InvalidArgument(f"webhook events {list(events)!r} must be some of {list(EVENT_TYPES)}")
        project = parse_uuid(project_hash, "project_hash") if project_hash else None
        wanted = ",".join(sorted(set(events)))
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT * FROM webhooks WHERE url = ? AND project IS ? AND events = ?", (url, project, wanted)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                    (new_uuid(), url, project, wanted, int(persistent), now_iso()),
                )
            elif persistent and not row["persistent"]:
                db.execute("UPDATE webhooks SET persistent = 1 WHERE id = ?", (row["id"],))
            row = db.execute(
                "SELECT * FROM webhooks WHERE url = ? AND project IS ? AND events = ?", (url, project, wanted)
            ).fetchone()
        return _webhook(row)

    def remove(self, url: str) -> int:
        """Unsubscribe every subscription of ``url`` and drop what was queued for it; returns how many."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM webhook_outbox WHERE url = ? AND status = 'PENDING'", (url,))
            return int(db.execute("DELETE FROM webhooks WHERE url = ?", (url,)).rowcount)

    def subscriptions(self) -> list[Webhook]:
        return [_webhook(r) for r in self._store.query("SELECT * FROM webhooks ORDER BY created_at, id")]

    def deliveries(self) -> list[dict[str, Any]]:
        """Every outbox row (pending, delivered, failed) with its body, oldest first: for tests and debugging."""
        rows = self._store.query("SELECT * FROM webhook_outbox ORDER BY id")
        return [{**dict(r), "body": payload(r)} for r in rows]

    # --- delivery -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="encord-sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop delivering; what is still pending stays in the outbox for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (delivered or given up); True if that happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._store.query_one("SELECT 1 FROM webhook_outbox WHERE status = 'PENDING' LIMIT 1") is None:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        with (
            httpx.Client(timeout=self.timeout, trust_env=True) as proxied,
            httpx.Client(timeout=self.timeout, trust_env=False) as direct,
        ):
            while not self._stop.is_set():
                try:
                    sent = self._deliver_due(proxied, direct)
                except Exception:  # never let one bad row or a closed store kill the thread
                    logger.exception("webhook delivery loop failed; retrying")
                    sent = 0
                if not sent:
                    self._stop.wait(self._poll_interval)

    def _deliver_due(self, proxied: httpx.Client, direct: httpx.Client) -> int:
        """Deliver the oldest pending event of each URL that is due; returns how many were attempted."""
        rows = self._store.query(
            "SELECT * FROM webhook_outbox WHERE id IN "
            "(SELECT min(id) FROM webhook_outbox WHERE status = 'PENDING' GROUP BY url) AND next_attempt_at <= ? "
            "ORDER BY id",
            (time.time(),),
        )
        for row in rows:
            if self._stop.is_set():
                break
            if row["uid"] is None:  # the event's id is fixed once, so retries carry the same uid
                with self._store.transaction() as db:
                    db.execute("UPDATE webhook_outbox SET uid = ? WHERE id = ? AND uid IS NULL",
                               (str(uuid.uuid4()), row["id"]))  # fmt: skip
                fresh = self._store.query_one("SELECT * FROM webhook_outbox WHERE id = ?", (row["id"],))
                if fresh is None:
                    continue
                row = fresh
            self._attempt(row, direct if _is_loopback(row["url"]) else proxied)
        return len(rows)

    def _attempt(self, row: sqlite3.Row, client: httpx.Client) -> None:
        error: str | None = None
        retry = True
        try:
            response = client.post(row["url"], json=payload(row), headers={"User-Agent": "encord-sandbox-webhooks/1"})
            if response.is_success:
                self._settle(row, "DELIVERED", None)
                return
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            retry = response.status_code >= 500 or response.status_code in (408, 429)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = row["attempts"] + 1
        if not retry or attempts >= self.max_attempts:
            logger.warning("webhook %s to %s failed after %d attempts: %s", row["event_type"], row["url"], attempts,
                           error)  # fmt: skip
            self._settle(row, "FAILED", error)
            return
        delay = min(self.backoff * 2 ** (attempts - 1), self.max_backoff)
        with self._store.transaction() as db:
            db.execute(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (attempts, time.time() + delay, error, row["id"]),
            )

    def _settle(self, row: sqlite3.Row, status: str, error: str | None) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE webhook_outbox SET status = ?, attempts = attempts + 1, last_error = ?, delivered_at = ? "
                "WHERE id = ?",
                (status, error, now_iso() if status == "DELIVERED" else None, row["id"]),
            )
            db.execute("DELETE FROM webhook_outbox WHERE status <> 'PENDING' AND id <= ?", (row["id"] - KEEP_SETTLED,))


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        project=row["project"],
        events=tuple(row["events"].split(",")),
        persistent=bool(row["persistent"]),
    )


def _is_loopback(url: str) -> bool:
    """Deliveries to this machine bypass any HTTP proxy from the environment."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
