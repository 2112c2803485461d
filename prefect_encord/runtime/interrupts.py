"""A stop request that long steps check between units of work: Ctrl-C stops new work and keeps the books.

Python delivers SIGINT to the main thread only, as a KeyboardInterrupt there. A flow's tasks run in worker
threads, which carried on: Ctrl-C 1.5 s into a 2,500-file upload still started all three upload jobs, and
the run died before writing its receipt, so no rollback could find what it had created. So the CLI turns
the first SIGINT or SIGTERM into a request: uploads and registrations start no new job or PUT, settle the
jobs already started (Encord runs them anyway), and the run records what they created before it ends as
stopped. A second signal interrupts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()
_signal_received: list[int] = []  # the signal that asked, for the exit code (128 + its number, as a shell says)

#: What the units a stopped step did not start are reported with.
NOT_STARTED = "not started: the run was asked to stop"


class Stopped(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM); what it finished is recorded, and its receipt undoes it."""


def stop_requested() -> bool:
    """Whether the process was asked to stop; steps check it before starting each job or transfer."""
    return _requested.is_set()


def request_stop() -> None:
    _requested.set()


def stop_exit_code() -> int:
    """The exit code of a stopped command: 130 after SIGINT (or a stop asked otherwise), 143 after SIGTERM."""
    return 128 + (_signal_received[-1] if _signal_received else signal.SIGINT)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """For the block, the first SIGINT or SIGTERM requests a stop; the second interrupts at once."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def first(signum: int, frame: FrameType | None) -> None:
        _signal_received.append(signum)
        request_stop()
        print(
            f"\nstopping ({signal.Signals(signum).name}): no new uploads or jobs; finishing the jobs already "
            "started and recording them (press Ctrl-C again to stop at once)",
            file=sys.stderr,
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    _requested.clear()
    _signal_received.clear()
    previous = {sig: signal.signal(sig, first) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
