"""A second line of retries around the Encord calls our ingest tasks make, for faults that pass.

The SDK already retries GET, POST and PUT three times (0, 3 and 6 s apart, or as ``Retry-After`` says) on
429, 5xx and dropped connections. What it leaves to the caller:

* calls it sends with retries off: **starting a data-upload job** above all (``allow_retries=False``), and
  the setup writes: creating a folder, dataset or project, ``link_items``, ``add_datasets``;
* a call whose every attempt failed: it then raises ``RateLimitExceededError`` (429), ``UnknownException``
  (5xx) or ``RequestException`` (no answer: a dropped connection, a timeout);
* a long poll, which it retries only on ``RequestException`` (three times, 10 s apart).

:func:`call_with_retries` repeats such a call after a backoff, at least as long as ``Retry-After`` asked.
It is only used where repeating is known to be safe, and each use says why; a call that had no answer may
have been carried out, so "safe" means safe even then. Errors that repeat identically (400, 401, 403, 404)
are raised at once. Nothing here costs a request when the first attempt succeeds.

A create is not safe to repeat blindly: Encord names and titles are not unique keys, so a create whose answer
was lost, sent again, makes a twin. :func:`create_once` sends it again only after a lookup shows that the lost
attempt did not take effect.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from encord.exceptions import RateLimitExceededError, RequestException, UnknownException

from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.runtime.run_logger import run_logger

T = TypeVar("T")

#: What the SDK raises for throttling, server errors and lost answers: worth another attempt.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RateLimitExceededError, UnknownException, RequestException)
#: Attempts 1 s, 2 s, 4 s and 8 s apart (with jitter): on top of the SDK's own retries, this rides out a
#: service that is unavailable for about half a minute.
API_RETRY_POLICY = RetryPolicy(max_attempts=5, backoff_seconds=1.0, max_backoff_seconds=30.0)


def call_with_retries(call: Callable[[], T], what: str, policy: RetryPolicy | None = None) -> T:
    """``call()``, attempted up to ``policy.max_attempts`` times while it fails with a transient error.

    Args:
        call: The request; it must be safe to repeat even if an attempt that seemed to fail took effect.
        what: What the call does, for the log lines of retries ("starting the job of 1000 units").
        policy: How many attempts, and the backoff between them; None is :data:`API_RETRY_POLICY`, read at call
            time so that a test can shorten it for the whole package.

    Raises:
        The last transient error once the attempts are used up; any other error at once.
    """
    return _attempt(call, what, policy or API_RETRY_POLICY, lambda: None)


def create_once(
    find: Callable[[], T | None], create: Callable[[], T], what: str, policy: RetryPolicy | None = None
) -> T:
    """``create()``, sent again after a transient failure only while ``find()`` shows it did not take effect.

    A create that got no answer (a dropped connection, a timeout, a 5xx from a proxy while the server carried
    on) may well have been carried out, and the SDK never retries these POSTs. Sending it again blindly would
    make a second folder, dataset or project of the same name, since names are not unique keys; giving up would
    fail a run whose work is done. So after each transient failure this waits as :func:`call_with_retries`
    would, then looks (a read, itself retried): what it finds is what the lost attempt made, and is returned;
    only if it is still absent is ``create`` sent again. A refusal (400, 403, 404, 409) is raised at once, so
    bad input still fails with the server's message and nothing written.

    The caller looks before the first attempt (its own get-or-create lookup); this costs nothing more when the
    first attempt is answered. Something another run creates at the same moment is taken for ours: as for
    get-or-create itself, Encord offers no key that could tell them apart.

    Args:
        find: Looks the object up as ``create`` would return it, or None if it does not exist.
        create: The write.
        what: What the write does, for log lines ("creating dataset 'cams'").
        policy: Attempts at ``create`` and the backoff between them; None is :data:`API_RETRY_POLICY`.

    Raises:
        The last transient error once the attempts are used up; any other error of ``create`` or ``find`` at once.
    """
    policy = policy or API_RETRY_POLICY

    def took_effect() -> T | None:
        found = call_with_retries(find, f"checking whether {what} took effect", policy)
        if found is not None:
            run_logger(__name__).info("%s: the answer was lost, but it had taken effect", what)
        return found

    return _attempt(create, what, policy, took_effect)


def _attempt(call: Callable[[], T], what: str, policy: RetryPolicy, took_effect: Callable[[], T | None]) -> T:
    """The retry loop of both: ``call()`` until it is answered, a transient failure after the last attempt is
    raised, and between attempts ``took_effect()`` may answer for the failed one (None: try again)."""
    attempt = 1
    while True:
        try:
            return call()
        except TRANSIENT_ERRORS as error:
            if attempt >= policy.max_attempts:
                raise
            _wait_before_retry(error, attempt, policy, what)
            attempt += 1
        found = took_effect()
        if found is not None:
            return found


def _wait_before_retry(error: Exception, attempt: int, policy: RetryPolicy, what: str) -> None:
    """Sleep before the attempt after failed ``attempt``, and say so in the run's log."""
    asked = error.retry_after if isinstance(error, RateLimitExceededError) else None
    delay = policy.wait(attempt, random.random(), asked)
    run_logger(__name__).warning(
        "%s failed (%s: %s); attempt %d of %d in %.1f s",
        what, type(error).__name__, _first_line(error), attempt + 1, policy.max_attempts, delay,
    )  # fmt: skip
    time.sleep(delay)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else "no message"
