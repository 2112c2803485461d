"""The sandbox's database: one SQLite file shared by the request threads and the job runner.

One connection is used under a lock, and each mutation is one transaction, so a request that fails
validation writes nothing. The database owns no tables: each area (``organisation``, ``storage``, ``jobs``,
``datasets``, ``projects``, ``labels``, ``webhooks``) declares its own DDL and the functions that read and
change its rows. A deletion that reaches another area's rows (an item's data units, a unit's label rows)
goes through :class:`Cascades`: the owning area subscribes, the deleting one publishes.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The state of one sandbox, in its data directory: a data directory without it holds no sandbox yet.
STORE_FILE_NAME = "sandbox.sqlite3"

#: A cascade: given the open transaction and the keys that go, remove what depends on them; returns what
#: it removed, by kind (``{"data_units": [...]}``), or raises the sandbox error that forbids the deletion.
Cascade = Callable[[sqlite3.Connection, Sequence[str]], dict[str, list[str]]]


def now_iso() -> str:
    """Timestamps are stored as ISO 8601 UTC strings, which sort correctly as text."""
    return datetime.now(timezone.utc).isoformat()


def new_uuid() -> str:
    return str(uuid.uuid4())


class Cascades:
    """Deletions that reach rows another area owns, named by event (``"items.deleted"``, ``"folder.deleting"``)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Cascade]] = defaultdict(list)

    def subscribe(self, event: str, hook: Cascade) -> None:
        self._hooks[event].append(hook)

    def publish(self, db: sqlite3.Connection, event: str, keys: Sequence[str]) -> dict[str, list[str]]:
        """Run every hook of ``event`` inside the caller's transaction; what they removed, merged by kind."""
        removed: dict[str, list[str]] = {}
        for hook in self._hooks[event]:
            for kind, values in hook(db, keys).items():
                removed.setdefault(kind, []).extend(values)
        return removed


class Database:
    """One SQLite database behind one lock, with the cascades the areas registered."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self.cascades = Cascades()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:  # SQLite's own message ("unable to open database file") names no file
            raise OSError(f"the sandbox cannot open its database {path}: {exc}") from exc

    def ensure_schema(self, ddl: str) -> None:
        """Create an area's tables if missing."""
        with self._lock:
            self._db.executescript(ddl)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None


def chunked(db: sqlite3.Connection, sql: str, values: Sequence[str], size: int = 500) -> list[sqlite3.Row]:
    """Run ``sql`` (with ``{marks}`` for an ``IN`` list) over ``values`` in chunks; rows of every chunk."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        rows.extend(db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return rows
