"""Locks that keep two runs writing into one Encord folder from both creating what neither found.

Encord has no unique key to lean on: folder names may repeat, and an upload's identity (its content digest in
the item's client metadata) is checked by our listing, not by Encord. Two identical ingests started together
both list the folder, both find nothing, and both upload everything: each file twice. So the steps from
"look up" to "created" hold a lock named after what they write into (a folder path, a folder UUID). The
second run waits, logging that it does, and then finds everything in place.

**Where.** An ``flock`` on a file in the lock directory: by default ``prefect-encord-locks`` in the machine's
temporary directory, whatever the ``PREFECT_HOME`` (two profiles, or two users, writing into one folder must
meet in one place; under ``$PREFECT_HOME`` they did not, and uploaded every file twice), else
``PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY``. The directory is shared (sticky, writable by all) and each lock
file readable by all: ``flock`` needs only a read handle. The kernel releases a lock when its process ends, even
by ``kill -9``, so a crashed run never leaves one behind. It holds between the processes of one machine; for
workers on several machines, point the setting at shared storage whose locks are shared (NFSv4, or any file
system with working ``flock``). Where there is no ``fcntl`` (Windows), runs are not serialised: give them
different folders.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from prefect_encord.settings import local_directory
from prefect_encord.tasks.run_logger import run_logger

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


@contextmanager
def exclusive(name: str, what: str, directory: Path | str | None = None) -> Iterator[None]:
    """Hold the lock ``name`` (any string; hashed into a file name) for the block; ``what`` says in the log
    what a waiting run waits for, e.g. ``"folder cams/2026"``."""
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
