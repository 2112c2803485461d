"""``prefect-encord check-notifications``: is a bucket wired to the relay? A probe object goes in, and its
notification must come back through the cloud and the relay as a Prefect event.

Setting up bucket notifications (SNS or EventBridge, Pub/Sub push, Event Grid) fails silently: a wrong URL, a
missing token, an unconfirmed subscription or a filter that leaves the keys out all end in "nothing happens".
This tests the path as it runs in production, end to end, and ingests nothing (see
:mod:`prefect_encord.events.notification_probe`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefect_encord.events.names import BUCKET_PROBE_EVENT
from prefect_encord.events.notification_probe import probe_resource
from prefect_encord.planning.objects import PROBE_DIRECTORY

if TYPE_CHECKING:
    from prefect_encord.blocks.storage import CloudStorageIntegration

#: How often the Prefect server is asked whether the probe's event arrived.
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found: its object's URL and how long its notification took, None if none arrived."""

    url: str
    seconds: float | None

    @property
    def arrived(self) -> bool:
        return self.seconds is not None


def check_notifications(block: CloudStorageIntegration, timeout_seconds: float = 120.0) -> ProbeResult:
    """Write a probe object into ``block``'s bucket, wait up to ``timeout_seconds`` for the relay's event of its
    creation in the Prefect server (``PREFECT_API_URL``, the relay's), then delete the object.

    Raises:
        ValueError: If ``timeout_seconds`` is not positive, or without a Prefect API (the relay's events are only in
            the server it sends them to).
    """
    from prefect.settings import PREFECT_API_URL

    if not timeout_seconds > 0:
        raise ValueError(f"the timeout must be a positive number of seconds, not {timeout_seconds!r}")

    if not PREFECT_API_URL.value():
        raise ValueError(
            "checking notifications needs the Prefect server the relay sends its events to: set PREFECT_API_URL"
        )
    probe_id = uuid.uuid4().hex
    key = f"{block.prefix.strip('/')}/{PROBE_DIRECTORY}/{probe_id}.txt".lstrip("/")
    began = time.monotonic()
    block.write_object(key, b"a prefect-encord notification probe; safe to delete\n", "text/plain")
    try:
        arrived = _wait_for_event(probe_id, began + timeout_seconds)
    finally:
        block.delete_object(key)
    return ProbeResult(block.object_url(key), arrived - began if arrived is not None else None)


def _wait_for_event(probe_id: str, deadline: float) -> float | None:
    """When (monotonic) the probe's creation event was found in the Prefect server, or None at ``deadline``."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        while True:
            wanted = EventFilter(  # anew each time: a filter's time window (the last day) ends when it is made
                event=EventNameFilter(name=[BUCKET_PROBE_EVENT]),
                resource=EventResourceFilter(id=[probe_resource(probe_id)["prefect.resource.id"]]),
            )
            found = client.read_events(filter=wanted, limit=10).events
            if any(event.payload.get("change") == "created" for event in found):
                return time.monotonic()
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_SECONDS)
