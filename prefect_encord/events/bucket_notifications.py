"""Bucket notifications in, a few batched Prefect events out: what makes an ingest event-driven.

A camera fleet uploading all day makes one notification per object; a deployment run per notification would
be 10,000 flow runs for 10,000 files. So the relay (``POST /buckets/notifications``, see
:mod:`prefect_encord.events.relay`) gathers the keys each bucket's notifications name and emits one
:data:`~prefect_encord.events.names.BUCKET_OBJECTS_CHANGED_EVENT` per batch: when a bucket has
:data:`MAX_KEYS_PER_EVENT` keys waiting, or its oldest has waited ``within_seconds``. A deployment triggered by
that event ingests just those keys.

The event names keys, not what happened to them: the ingest asks the bucket about each key (it exists, with
this ETag, or it is gone), so a duplicated, late or reordered notification changes nothing, and the
inventory keeps an unchanged object from costing Encord anything. A delivery seen before (the same change of
the same object, by its sequencer) is dropped here already; an event's id is derived from its keys, so a
batch sent twice is stored once.

Keys waiting in a relay that dies are lost with it; the scheduled re-run of the same ingest (a listing and
nothing more, thanks to the inventory) is the safety net, as it is for notifications a bucket never sent.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prefect_encord.limits import MAX_BULK_ITEMS
from prefect_encord.planning.notifications import ObjectNotice

#: Keys per event: one registration job's worth, so a batch is one job (and under Prefect's event size limit).
MAX_KEYS_PER_EVENT = MAX_BULK_ITEMS
#: How long the first key of a batch waits for others, by default.
DEFAULT_WITHIN_SECONDS = 30.0
#: Deliveries remembered to drop duplicates (SNS, Pub/Sub and Event Grid all deliver at least once).
_REMEMBERED = 100_000
_EVENT_ID_NAMESPACE = uuid.UUID("5b0c5a3e-8f61-4d8e-9b1f-1f6f1e3c7a42")


@dataclass(frozen=True)
class KeyBatch:
    """Keys of one bucket that changed, to ingest together; ``event_id`` is the same for the same keys."""

    cloud: str
    bucket: str
    keys: tuple[str, ...]

    @property
    def event_id(self) -> uuid.UUID:
        digest = hashlib.sha256("\n".join(sorted(self.keys)).encode()).hexdigest()
        return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{self.cloud}/{self.bucket}/{digest}")


@dataclass
class _Pending:
    since: float
    keys: OrderedDict[str, None] = field(default_factory=OrderedDict)


class NotificationBatcher:
    """Gathers notified keys per bucket and hands ``emit`` a :class:`KeyBatch` when one is due.

    Thread-safe: the relay's request handlers add, a timer thread (:meth:`start`) flushes what waited long enough.
    """

    def __init__(
        self,
        emit: Callable[[KeyBatch], None],
        within_seconds: float = DEFAULT_WITHIN_SECONDS,
        max_keys: int = MAX_KEYS_PER_EVENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_keys <= MAX_KEYS_PER_EVENT:
            raise ValueError(f"max_keys {max_keys} must be from 1 to {MAX_KEYS_PER_EVENT}")
        if within_seconds < 0:
            raise ValueError(f"within_seconds {within_seconds} must not be negative")
        self._emit = emit
        self.within_seconds = within_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def add(self, notices: Iterable[ObjectNotice]) -> int:
        """Take notices in; returns how many were news (not a delivery seen before). Full batches go out now."""
        due: list[KeyBatch] = []
        news = 0
        with self._lock:
            for notice in notices:
                if notice.identity in self._seen:
                    continue
                self._remember(notice.identity)
                news += 1
                scope = (notice.cloud, notice.bucket)
                pending = self._pending.setdefault(scope, _Pending(since=self._clock()))
                pending.keys[notice.key] = None
                if len(pending.keys) >= self.max_keys:
                    due.append(self._take(scope))
        for batch in due:
            self._emit(batch)
        return news

    def flush(self, everything: bool = False) -> int:
        """Emit the batches whose oldest key waited ``within_seconds`` (all of them if ``everything``)."""
        now = self._clock()
        with self._lock:
            scopes = [s for s, p in self._pending.items() if everything or now - p.since >= self.within_seconds]
            due = [self._take(scope) for scope in scopes]
        for batch in due:
            self._emit(batch)
        return len(due)

    def start(self, interval_seconds: float = 0.5) -> NotificationBatcher:
        """Flush due batches every ``interval_seconds`` on a background thread, until :meth:`stop`."""

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                self.flush()

        # The starter's context (Prefect's settings among it), so a batch the timer emits goes where one a request
        # emits would.
        context = contextvars.copy_context()
        self._timer = threading.Thread(target=context.run, args=(run,), name="bucket-notification-batches", daemon=True)
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop the timer and emit everything still waiting."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=10)
        self.flush(everything=True)

    def _take(self, scope: tuple[str, str]) -> KeyBatch:
        pending = self._pending.pop(scope)
        return KeyBatch(cloud=scope[0], bucket=scope[1], keys=tuple(pending.keys))

    def _remember(self, identity: str) -> None:
        self._seen[identity] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
