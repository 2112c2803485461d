"""A bucket notification of a probe object, announced as such: how a test of the wiring sees its probe come back.

Setting up bucket notifications (SNS or EventBridge, Pub/Sub push, Event Grid) fails silently: a wrong URL, a
missing token, an unconfirmed subscription or a filter that leaves the keys out all end in "nothing happens".
``prefect-encord check-notifications`` (:mod:`prefect_encord.cli.notification_check`) tests the whole path as it
runs in production: a small object in the bucket's :data:`~prefect_encord.planning.objects.PROBE_DIRECTORY` must
come back as the relay's :data:`~prefect_encord.events.names.BUCKET_PROBE_EVENT`. The relay announces a probe's
notifications here, at once and apart: they start no ingest, and listings never select a probe object.
"""

from __future__ import annotations

from prefect.events import emit_event

from prefect_encord.events.names import BUCKET_PROBE_EVENT, bucket_resource
from prefect_encord.planning.notifications import ObjectNotice


def probe_resource(probe_id: str) -> dict[str, str]:
    """``prefect-encord.probe.<probe id>``: the resource of a probe's event, which the checker looks for."""
    return {"prefect.resource.id": f"prefect-encord.probe.{probe_id}", "prefect.resource.role": "probe"}


def probe_id_of(key: str) -> str:
    """The id a probe key carries: its file name without the extension."""
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


def emit_probe(notice: ObjectNotice) -> None:
    """Announce one probe's notification (called by the relay, outside any run)."""
    emit_event(
        BUCKET_PROBE_EVENT,
        resource=probe_resource(probe_id_of(notice.key)),
        related=[bucket_resource(notice.cloud, notice.bucket)],
        payload={"cloud": notice.cloud, "bucket": notice.bucket, "key": notice.key, "change": notice.change},
    )
