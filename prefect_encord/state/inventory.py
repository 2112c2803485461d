"""The inventory: what a bucket's registrations into one folder left in Encord, kept locally so a re-run sends
Encord only what changed.

One SQLite file per *scope* (Encord folder, cloud integration, and the bucket URL and prefix listed), under
``$PREFECT_HOME/encord/inventory`` (``PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY`` overrides it). A row
per registered unit: its identity URL, the object key, the unit's fingerprint (see
:mod:`prefect_encord.planning.changes`), its Encord item, and the last run that listed it; and a row per metadata
sidecar listed (:mod:`prefect_encord.planning.sidecars`): its URL and key, the URL of the object it describes,
its fingerprint as listed and the fingerprint last applied, so that only a new or changed sidecar is read; and
a row per unit whose object vanished and whose item was moved to an archive folder (``on_vanished="archive"``):
the unit's row as it was, and that folder, so that the item is moved back if the object returns.

**A cache, never the truth.** Rows are written from Encord's own answers: once a job has settled, each unit
it created or found already registered (``skip_duplicate_urls``) is recorded with the item Encord named. A
missing file is therefore rebuilt by the next run, which submits everything (Encord skips what it holds, as
before inventories existed) and records the answers; a caller who doubts the file (someone deleted items
in Encord's UI) passes ``refresh_inventory=True`` for the same. A crash loses at most the rows of jobs not
yet settled, which the job ledger resumes.

**It heals.** A file that is not an inventory (overwritten, truncated) or fails SQLite's quick check (a damaged
page) is moved aside, as ``<name>.damaged-<time>``, and a new one is started, which the run fills from
Encord's answers as for a lost one; the caller says so (:attr:`Inventory.moved_aside`).

**Shared by the processes of one machine.** SQLite's WAL mode lets them read and write it at once (a writer
waits up to :data:`BUSY_TIMEOUT_SECONDS` for another). Workers on several machines each keep their own (SQLite
warns against databases on network file systems, https://www.sqlite.org/useovernet.html): a worker that finds
no inventory rebuilds it from Encord.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.planning.changes import Known
from prefect_encord.planning.objects import folder_prefix
from prefect_encord.state.settings import local_directory

#: How long a write waits for another process's write to finish.
BUSY_TIMEOUT_SECONDS = 60.0
#: URLs per lookup query (SQLite's bound on the ``?`` of one statement is 999 before 3.32).
_QUERY_BATCH = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    url TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    fingerprint TEXT,
    item TEXT NOT NULL,
    seen TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archived (
    url TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    fingerprint TEXT,
    item TEXT NOT NULL,
    folder TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sidecars (
    url TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    applied TEXT
) WITHOUT ROWID;
"""


def _in_batches(urls: Sequence[str]) -> Iterator[tuple[Sequence[str], str]]:
    """``urls`` in slices one statement can bind, each with as many ``?`` marks."""
    for start in range(0, len(urls), _QUERY_BATCH):
        batch = urls[start : start + _QUERY_BATCH]
        yield batch, ",".join("?" * len(batch))


#: The URLs of a JSON array bound as one parameter, for ``url IN``: one statement however many (SQLite's JSON
#: functions, which Prefect's own SQLite database needs too).
_LISTED = "(SELECT value FROM json_each(?))"


def _joined(*columns: str) -> str:
    """An aggregate of ``columns`` over the rows selected, as one text: a row per line, tab-separated (URLs are
    percent-encoded, items and fingerprints hex, so neither character occurs; a missing value is empty).

    Python's sqlite3 hands the GIL over at every statement and every row it steps through; beside the threads of
    a fanned-out listing each handover waits for them, so a million rows fetched one by one (or a statement per
    unit) cost minutes instead of seconds.
    """
    values = " || char(9) || ".join(f"ifnull({column}, '')" for column in columns)
    return f"ifnull(group_concat({values}, char(10)), '')"


def default_path(folder_uuid: str, storage: CloudStorageIntegration) -> Path:
    """The inventory file of one scope: named by the folder, and a digest of the integration and listed root."""
    listed_root = storage.root_url + folder_prefix(storage.prefix)
    digest = hashlib.sha256(f"{storage.integration}\n{listed_root}".encode()).hexdigest()[:16]
    return local_directory("inventory") / f"{folder_uuid}-{digest}.sqlite3"


def forget_units(folder_uuid: str, storage: CloudStorageIntegration, urls: Sequence[str]) -> None:
    """Drop units from the scope's inventory once their items are gone from Encord."""
    with Inventory(default_path(folder_uuid, storage)) as inventory:
        inventory.forget(urls)


def unsettle_units(folder_uuid: str, storage: CloudStorageIntegration, urls: Sequence[str]) -> None:
    """Forget the fingerprints of units whose change was not acted on (a replacement refused or failed): the next
    run finds them changed again, instead of taking the new bytes as the ones the item was made from."""
    with Inventory(default_path(folder_uuid, storage)) as inventory:
        inventory.unsettle(urls)


def archive_units(folder_uuid: str, storage: CloudStorageIntegration, urls: Sequence[str], archive: str) -> None:
    """Mark units archived once their items are in the ``archive`` folder."""
    with Inventory(default_path(folder_uuid, storage)) as inventory:
        inventory.archive(urls, archive)


class PendingSidecar(NamedTuple):
    """A sidecar to read and apply: its URL and key, its object's URL, its fingerprint as last listed."""

    url: str
    key: str
    target: str
    fingerprint: str


class Inventory:
    """One scope's units; open it with ``with Inventory(path) as inventory:``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: Where a damaged file found at ``path`` was moved, and why: for the caller to say (None: it was sound).
        self.moved_aside: tuple[Path, str] | None = None
        try:
            self._db = self._open()
        except sqlite3.OperationalError as exc:  # locked, unreadable, no space: nothing to heal, a fault to name
            raise OSError(f"cannot open the inventory {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            self.moved_aside = (self._move_aside(), str(exc))
            try:
                self._db = self._open()
            except sqlite3.Error as again:
                raise OSError(f"cannot open the inventory {self.path}: {again}") from again

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"SQLite's quick check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        """Rename the damaged file (its WAL and shared-memory files dropped): kept for a person, out of the way."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return aside

    def __enter__(self) -> Inventory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._db.close()

    def clear(self) -> None:
        """Forget every unit: the next registration submits everything, and Encord's answers refill it. Archived
        units are kept: without them a returning object would get a second item beside its archived one."""
        with self._transaction():
            self._db.execute("DELETE FROM units")
            self._db.execute("DELETE FROM sidecars")

    def known(self, urls: Sequence[str]) -> dict[str, Known]:
        """The rows of those ``urls`` the inventory holds."""
        found: dict[str, Known] = {}
        for batch, marks in _in_batches(urls):
            query = f"SELECT url, key, item, fingerprint FROM units WHERE url IN ({marks})"  # noqa: S608 - marks only
            for url, key, item, fingerprint in self._db.execute(query, batch):
                found[url] = Known(url=url, key=key, item=item, fingerprint=fingerprint)
        return found

    def unchanged(self, fingerprints: Mapping[str, str], run: str) -> dict[str, str]:
        """Of units as listed now (URL -> fingerprint), those held with that very fingerprint, marked seen by
        ``run``: URL -> item. A re-run of a large bucket confirms nearly every object here, beside the threads
        listing it, so however many are asked this costs three statements and one row (see :func:`_joined`)."""
        query = f"SELECT {_joined('url', 'item', 'fingerprint')} FROM units WHERE url IN {_LISTED}"  # noqa: S608
        (rows,) = self._db.execute(query, (json.dumps(list(fingerprints)),)).fetchone()
        held: dict[str, str] = {}
        for row in rows.split("\n") if rows else ():
            url, item, fingerprint = row.split("\t")
            if fingerprint == fingerprints[url]:
                held[url] = item
        self.seen(list(held), run)
        return held

    def record(self, rows: Iterable[tuple[str, str, str | None, str]], run: str) -> None:
        """Write ``(url, key, fingerprint, item)`` rows, seen by ``run``: units Encord has settled."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO units (url, key, fingerprint, item, seen) VALUES (?, ?, ?, ?, ?)",
                ((url, key, fingerprint, item, run) for url, key, fingerprint, item in rows),
            )

    def seen(self, urls: Sequence[str], run: str) -> None:
        """Mark units as listed by ``run``, in one statement (not one per unit: see :func:`_joined`)."""
        with self._transaction():
            self._db.execute(f"UPDATE units SET seen = ? WHERE url IN {_LISTED}", (run, json.dumps(urls)))  # noqa: S608

    def unseen(self, run: str) -> Iterator[Known]:
        """Units the listing of ``run`` did not list, in URL order."""
        query = "SELECT url, key, item, fingerprint FROM units WHERE seen != ? ORDER BY url"
        for url, key, item, fingerprint in self._db.execute(query, (run,)):
            yield Known(url=url, key=key, item=item, fingerprint=fingerprint)

    def unsettle(self, urls: Iterable[str]) -> None:
        """Forget the fingerprints of units: compared as changed by the next listing that finds their objects."""
        with self._transaction():
            self._db.executemany("UPDATE units SET fingerprint = NULL WHERE url = ?", ((url,) for url in urls))

    def forget(self, urls: Iterable[str]) -> None:
        """Drop the rows of units that are gone from Encord."""
        with self._transaction():
            self._db.executemany("DELETE FROM units WHERE url = ?", ((url,) for url in urls))

    def archive(self, urls: Sequence[str], folder: str) -> None:
        """Move the rows of ``urls`` from the live units to the archived ones, their items now in ``folder``."""
        with self._transaction():
            for batch, marks in _in_batches(urls):
                self._db.execute(
                    f"INSERT OR REPLACE INTO archived SELECT url, key, fingerprint, item, ? FROM units "  # noqa: S608
                    f"WHERE url IN ({marks})",
                    (folder, *batch),
                )
                self._db.execute(f"DELETE FROM units WHERE url IN ({marks})", batch)  # noqa: S608 - marks only

    def archived(self, urls: Sequence[str]) -> dict[str, tuple[Known, str]]:
        """The archived rows of those ``urls``, each with the folder its item was moved to."""
        found: dict[str, tuple[Known, str]] = {}
        for batch, marks in _in_batches(urls):
            query = f"SELECT url, key, item, fingerprint, folder FROM archived WHERE url IN ({marks})"  # noqa: S608
            for url, key, item, fingerprint, folder in self._db.execute(query, batch):
                found[url] = (Known(url=url, key=key, item=item, fingerprint=fingerprint), folder)
        return found

    def unarchive(self, urls: Iterable[str]) -> None:
        """Drop archived rows: their items are back in the folder (recorded as units again) or gone."""
        with self._transaction():
            self._db.executemany("DELETE FROM archived WHERE url = ?", ((url,) for url in urls))

    def note_sidecars(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Write ``(url, key, target URL, fingerprint)`` of sidecars as listed; what was applied is kept."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO sidecars (url, key, target, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT(url) DO UPDATE "
                "SET key = excluded.key, target = excluded.target, fingerprint = excluded.fingerprint",
                rows,
            )

    def pending_sidecars(self, batch: int) -> Iterator[list[PendingSidecar]]:
        """Sidecars never applied, or changed since, ``batch`` at a time in URL order (read as they are applied)."""
        after = ""
        query = ("SELECT url, key, target, fingerprint FROM sidecars WHERE url > ? AND (applied IS NULL "
                 "OR applied != fingerprint) ORDER BY url LIMIT ?")  # fmt: skip
        while rows := [PendingSidecar(*row) for row in self._db.execute(query, (after, batch))]:
            yield rows
            after = rows[-1].url

    def applied_sidecars(self, rows: Iterable[tuple[str, str]]) -> None:
        """Record ``(url, fingerprint)`` of sidecars applied (or found to change nothing)."""
        with self._transaction():
            self._db.executemany("UPDATE sidecars SET applied = ? WHERE url = ?", ((f, url) for url, f in rows))

    def forget_sidecars(self, urls: Iterable[str]) -> None:
        """Drop sidecars gone from the bucket."""
        with self._transaction():
            self._db.executemany("DELETE FROM sidecars WHERE url = ?", ((url,) for url in urls))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the block raised: all of a batch's rows, or none."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
