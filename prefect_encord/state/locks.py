"""Locks that keep two runs writing into one Encord folder from both creating what neither found.

Encord has no unique key to lean on: folder names may repeat, and an upload's identity (its content digest in
the item's client metadata) is checked by our listing, not by Encord. Two identical ingests started together
both list the folder, both find nothing, and both upload everything: each file twice. So the steps from
"look up" to "created" hold a lock named after what they write into (a folder path, a folder UUID). The
second run waits, logging that it does, and then finds everything in place.

**Where runs meet, the lock is there.**

* Runs that share a Prefect server (workers on several machines, any ``PREFECT_HOME``) take a slot of a
  Prefect **global concurrency limit** of one slot per name (``encord-folder:<uuid>``, created on first use, shown
  under Concurrency in the Prefect UI). Its lease is renewed while the run holds it and lapses
  :data:`LEASE_SECONDS` after a worker dies, so a lost machine blocks the folder for a minute, not for ever.
  Used whenever ``PREFECT_API_URL`` is set (``PREFECT_INTEGRATIONS_ENCORD_SERVER_LOCKS=false`` turns it off,
  e.g. for a server whose repossessor service, which reclaims lapsed leases, is disabled).
* Runs that share only the machine (the command line's own temporary Prefect servers, or no server) meet on an
  ``flock`` of a file in the lock directory: by default ``prefect-encord-locks`` in the machine's temporary
  directory, whatever the ``PREFECT_HOME`` (two profiles or two users writing into one folder must meet in one
  place), else ``PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY``. The directory is shared (sticky, writable by all)
  and each lock file readable by all: ``flock`` needs only a read handle. The kernel releases it when its
  process ends, even by ``kill -9``. Where there is no ``fcntl`` (Windows), this half does nothing.

A run takes both, the server's first. Neither relies on a network file system: keep the lock, ledger and
inventory directories on each machine's own disk (SQLite and ``flock`` are unreliable on NFS).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.settings import local_directory, server_locks

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def _shared_directory(root: Path) -> None:
    """Create ``root`` writable by every user of the machine (sticky, as ``/tmp`` is), if it is not there."""
    if root.is_dir():
        return
    root.mkdir(parents=True, exist_ok=True)
    with suppress(PermissionError):  # another user made it meanwhile
        root.chmod(0o1777)


def _lock_file(path: Path) -> IO[bytes]:
    """The lock file, created readable by all, or opened for reading when another user created it."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        descriptor = os.open(path, os.O_RDONLY)
    return os.fdopen(descriptor, "rb")


#: How long a held server slot outlives its holder's last renewal (Prefect renews it well before).
LEASE_SECONDS = 60


@contextmanager
def exclusive(name: str, what: str, directory: Path | str | None = None) -> Iterator[None]:
    """Hold the lock ``name`` (any string) for the block, on the Prefect server and on this machine (see the
    module); ``what`` says in the log what a waiting run waits for, e.g. ``"folder cams/2026"``."""
    with _server_slot(name, what), _machine_lock(name, what, directory):
        yield


def slot_name(name: str) -> str:
    """The global concurrency limit of lock ``name``: readable, of the characters Prefect allows in a name (a
    name of others, or a long one, is shortened with its digest: two locks sharing a slot only wait longer)."""
    readable = "encord-" + re.sub(r"[^A-Za-z0-9._:-]", "-", name)
    if readable == "encord-" + name and len(readable) <= 100:
        return readable
    return f"{readable[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


@contextmanager
def _server_slot(name: str, what: str) -> Iterator[None]:
    """The one slot of the Prefect global concurrency limit of ``name``, when a Prefect server is configured."""
    from prefect.concurrency.sync import concurrency
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value() or not server_locks():
        yield
        return
    limit = slot_name(name)
    if _ensure_limit(limit):
        run_logger(__name__).warning("another run is writing into %s; waiting for it to finish (%s)", what, limit)
    with concurrency(limit, lease_duration=LEASE_SECONDS, strict=True):
        yield


def _ensure_limit(limit: str) -> bool:
    """Create the one-slot limit unless it exists (two runs creating it at once: one is told it exists); whether
    its slot is taken now (the run will wait)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(limit)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit, limit=1))
            return False
        return found.active_slots >= found.limit


@contextmanager
def _machine_lock(name: str, what: str, directory: Path | str | None) -> Iterator[None]:
    """An ``flock`` on the lock file of ``name`` (hashed into a file name) in the lock directory."""
    if fcntl is None:
        yield
        return
    root = Path(directory).expanduser() if directory is not None else local_directory("lock")
    _shared_directory(root)
    path = root / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"
    with _lock_file(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            run_logger(__name__).warning("another run is writing into %s; waiting for it to finish", what)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
