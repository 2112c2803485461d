"""Files that must survive a crash (receipts, job records, item maps), and errors that name them.

A write that fails for want of space or permission raises an ``OSError`` that names no file ("No space left
on device"): a user would not know which disk to free, nor that the run's receipt was the casualty. Every
durable write goes through here, so its error says what and where, and keeps its type (``PermissionError``,
``OSError``), which the CLI shows as one line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def naming(path: Path, what: str) -> Iterator[None]:
    """Re-raise an ``OSError`` inside the block as one that says "cannot write {what} {path}: {reason}"."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot write {what} {path}: {reason}") from exc


def write_atomically(path: Path, text: str, what: str) -> None:
    """Replace ``path`` with ``text`` all at once, on disk before this returns: a crash leaves old or new.

    The text goes to a temporary file beside it, flushed to disk, then renamed over it; a failed write leaves
    no temporary file behind.
    """
    with naming(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
