"""Stop a process once its parent is gone: what keeps the CLI's temporary Prefect server from outliving it.

Run as a script by path (``python server_watchdog.py PARENT SERVER``), not as a module of the package, so it
starts in milliseconds and imports nothing of Prefect. It runs in a session of its own, so the signal that
ends the CLI's process group does not end it first. Once the parent's children have passed to init (the
parent is gone, even by SIGKILL, which runs no exit handler), it stops the server: SIGTERM, then SIGKILL after
:data:`GRACE_SECONDS`. It ends as soon as the server has gone, however that happened.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

#: How often the parent is looked at: the longest a server outlives its CLI before it is asked to stop.
INTERVAL_SECONDS = 0.2
#: How long the server has to stop after SIGTERM before it is killed.
GRACE_SECONDS = 5.0


def watch(parent: int, server: int, marker: str) -> None:
    """Wait while ``parent`` lives; then stop ``server`` if it still is the process it was (``marker``)."""
    while _is(server, marker):
        if os.getppid() != parent:
            _stop(server, marker)
            return
        time.sleep(INTERVAL_SECONDS)


def _is(pid: int, marker: str) -> bool:
    """True while ``pid`` is alive and, where /proc tells, still runs a command naming ``marker``.

    The marker guards against a reused pid: once the server has gone, its number may name another process.
    """
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or its number now names someone else's process
        return False
    if not Path("/proc/self").exists():  # no /proc on this system: the pid alone must do
        return True
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()  # a zombie's is empty
    except OSError:  # gone meanwhile
        return False


def _stop(server: int, marker: str) -> None:
    os.kill(server, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        if not _is(server, marker):
            return
        time.sleep(INTERVAL_SECONDS)
    if _is(server, marker):
        os.kill(server, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
