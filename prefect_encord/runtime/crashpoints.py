"""Named places where a test can make the process die as ``kill -9`` would, to prove a re-run repairs it.

Set ``PREFECT_ENCORD_CRASH_AT=<point>`` (or ``<point>:<n>`` for the *n*-th time the point is reached) and
the process calls ``os._exit(137)`` there: no ``finally`` blocks, no flushed buffers, no atexit handlers,
exactly what an OOM kill or a lost machine leaves behind. Unset (the normal case), a crash point costs one
environment lookup. The points are where state is split between Encord and this process, so that a test
can show each split is healed by running the ingest again (see ``tests/chaos``).

A point given a delay (``job.mid-poll``) arms a timer instead and returns, so the process dies while
the call that follows is still waiting for its answer.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

CRASH_AT_ENV = "PREFECT_ENCORD_CRASH_AT"
#: The exit status of a process killed by SIGKILL, as a shell reports it.
CRASH_EXIT_CODE = 137

#: Every crash point: name -> what has happened (and what has not) when the process dies there.
CRASH_POINTS: dict[str, str] = {
    # The data-job engine's points, reached by uploads and registrations alike (prefect_encord.jobs.engine).
    "job.before-start": "the job's body is in the job ledger and journalled; no job started",
    "job.after-start": "the job started; its id is not yet in the job ledger",
    "job.after-record": "the job id is in the job ledger and journalled; polling has not begun",
    "job.mid-poll": "a long poll of the job is waiting for its answer",
    "job.after-poll": "the job finished; its answer is not mapped back to files, nothing reported",
    "job.after-settle": "the job's items are in the item map; its ledger record is not yet dropped",
    "upload.mid-put": "some files of a batch are PUT to their signed URLs, others not",
    "ingest.after-files": "files are registered or uploaded; the run receipt does not list them",
    "ingest.after-groups": "data groups are created; the run receipt does not list them",
    "ingest.before-link": "the dataset exists; no item is linked to it",
    "ingest.after-link": "items are linked to the dataset; the run receipt does not say so",
}

_reached: Counter[str] = Counter()
_lock = threading.Lock()


def crash_point(name: str, *, delay_seconds: float = 0.0) -> None:
    """Die here if ``PREFECT_ENCORD_CRASH_AT`` names this point (and this is its n-th visit).

    Raises:
        KeyError: If ``name``, or the point the variable names, is not one of :data:`CRASH_POINTS`: a typo
            would otherwise never fire, and a test would prove nothing.
    """
    wanted = os.environ.get(CRASH_AT_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    for named in (name, point):
        if named not in CRASH_POINTS:
            raise KeyError(f"unknown crash point {named!r}; see prefect_encord.runtime.crashpoints.CRASH_POINTS")
    if point != name:
        return
    with _lock:
        _reached[name] += 1
        due = _reached[name] == (int(nth) if nth else 1)
    if not due:
        return
    if delay_seconds > 0:
        timer = threading.Timer(delay_seconds, _die, args=(name,))
        timer.daemon = True  # a run that ends first is not killed on its way out
        timer.start()
    else:
        _die(name)


def _die(name: str) -> None:
    """Say where (a test checks the crash happened at the point it asked for), then exit at once."""
    os.write(2, f"\ncrash point {name} reached: exiting with {CRASH_EXIT_CODE}\n".encode())
    os._exit(CRASH_EXIT_CODE)
