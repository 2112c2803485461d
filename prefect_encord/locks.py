"""Locks that keep two runs writing into one Encord folder from both creating what neither found.

Encord has no unique key to lean on: folder names may repeat, and an upload's identity (its content digest in
the item's client metadata) is checked by our listing, not by Encord. Two identical ingests started together
both list the folder, both find nothing, and both upload everything: each file twice. So the steps from
"look up" to "created" hold a lock named after what they write into (a folder path, a folder UUID). The
second run waits, logging that it does, and then finds everything in place.

**Where.** An ``flock`` on a file in the lock directory (``$PREFECT_HOME/encord/locks``, or
``PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY``). The kernel releases it when its process ends, even by
``kill -9``, so a crashed run never leaves a lock behind. It holds between the processes of one machine; for
workers on several machines, point the setting at shared storage whose locks are shared (NFSv4, or any file
system with working ``flock``). Where there is no ``fcntl`` (Windows), runs are not serialised: give them
different folders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect_encord.settings import local_directory
from prefect_encord.tasks.run_logger import run_logger

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def exclusive(name: str, what: str, directory: Path | str | None = None) -> Iterator[None]:
    """Hold the lock ``name`` (any string; hashed into a file name) for the block; ``what`` says in the log
    what a waiting run waits for, e.g. ``"folder cams/2026"``."""
    if fcntl is None:
        yield
        return
    root = Path(directory).expanduser() if directory is not None else local_directory("lock")
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            run_logger(__name__).warning("another run is writing into %s; waiting for it to finish", what)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
