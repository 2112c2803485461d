"""``prefect-encord check-notifications``: a probe object goes into the bucket, its notification comes back through
the relay as a Prefect event, and nothing is ingested; a bucket that is not wired says what to check."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from encord_sandbox.bucket_notifier import S3Notifier
from encord_sandbox.emulators import s3_client
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.cli.main import main
from prefect_encord.cli.notification_check import check_notifications
from prefect_encord.events.names import BUCKET_OBJECTS_CHANGED_EVENT, BUCKET_PROBE_EVENT
from prefect_encord.events.relay import RelayServer
from prefect_encord.planning.notifications import parse_notification
from prefect_encord.planning.objects import PROBE_DIRECTORY
from tests import readme
from tests.integration_buckets import new_bucket
from tests.sns import signed

TOKEN = "probe-token"
WIRING = "Wiring a bucket to the relay"


@pytest.fixture(scope="module")
def relay(prefect_harness: None) -> Iterator[RelayServer]:
    with RelayServer(within_seconds=0.5, token=TOKEN) as server:
        yield server


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> EncordS3Integration:
    block = new_bucket("s3", request, {"cams/a.png": b"a"}, prefix="cams")
    assert isinstance(block, EncordS3Integration)
    return block


def _as_sns(document: dict[str, object]) -> dict[str, object]:
    """What an SNS topic subscribed by the relay delivers: the S3 notification as a signed SNS message."""
    return signed({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:raw", "Message": json.dumps(document)})


def _changes_of(bucket: str) -> list[ReceivedEvent]:
    """The relay's events of keys to ingest from ``bucket`` (its resource is the bucket)."""
    about = EventResourceFilter(id=[f"prefect-encord.bucket.s3.{bucket}"])
    with get_client(sync_client=True) as client:
        return client.read_events(filter=EventFilter(event=EventNameFilter(name=[BUCKET_OBJECTS_CHANGED_EVENT]),
                                                     resource=about), limit=50).events  # fmt: skip


def _probes_of(bucket: str, expected: int) -> list[ReceivedEvent]:
    """The relay's probe events related to ``bucket``, once ``expected`` are stored (or after 30 s)."""
    deadline = time.monotonic() + 30
    related = EventRelatedFilter(id=[f"prefect-encord.bucket.s3.{bucket}"])
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_events(filter=EventFilter(event=EventNameFilter(name=[BUCKET_PROBE_EVENT]),
                                                          related=related), limit=50).events  # fmt: skip
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.25)


def _keys(block: EncordS3Integration) -> list[str]:
    listed = s3_client(block.endpoint_url or "").list_objects_v2(Bucket=block.bucket_name)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_a_wired_bucket_returns_its_probe_as_an_event_and_nothing_is_ingested(
    relay: RelayServer, bucket: EncordS3Integration
) -> None:
    target = f"{relay.notifications_url}?token={TOKEN}"
    with S3Notifier(bucket.endpoint_url or "", bucket.bucket_name, target, wrap=_as_sns) as s3:
        probe = check_notifications(bucket, timeout_seconds=60)
        time.sleep(2)  # the probe's deletion is told too, and the relay's batches go out within 0.5 s

    assert probe.arrived and probe.seconds is not None and probe.seconds < 60, probe
    assert f"/cams/{PROBE_DIRECTORY}/" in probe.url
    assert s3.failures == [] and s3.sent == 2  # created, then deleted: both accepted (signed as SNS signs)
    assert _keys(bucket) == ["cams/a.png"]  # the probe object is gone again
    assert _changes_of(bucket.bucket_name) == []  # no ingest-on-upload run
    probes = _probes_of(bucket.bucket_name, expected=2)
    assert {event.payload["change"] for event in probes} == {"created", "deleted"}, probes
    assert list(bucket.list_objects()) and all(PROBE_DIRECTORY not in o.key for o in bucket.list_objects())


def test_a_bucket_not_wired_times_out_naming_what_to_check(
    relay: RelayServer, bucket: EncordS3Integration, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"probe-{bucket.bucket_name}"
    bucket.save(name)

    code = main(["check-notifications", "--bucket-block", f"encord-s3-integration/{name}", "--timeout", "2"])

    said = capsys.readouterr().err
    assert code == 1, said
    assert f"no notification of {bucket.root_url}cams/{PROBE_DIRECTORY}/" in said
    assert "/buckets/notifications?token=" in said and "/healthz" in said
    assert _keys(bucket) == ["cams/a.png"]  # the probe is deleted either way


def test_a_timeout_that_is_not_positive_is_refused_before_anything_is_written(
    relay: RelayServer, bucket: EncordS3Integration
) -> None:
    with pytest.raises(ValueError, match="positive number of seconds, not 0"):
        check_notifications(bucket, timeout_seconds=0)
    assert _keys(bucket) == ["cams/a.png"]


def test_the_relay_tells_a_probe_apart_from_a_change_to_ingest(relay: RelayServer) -> None:
    record = {"eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "raw"}, "object": {"key": f"{PROBE_DIRECTORY}/by-hand.txt"}}}  # fmt: skip
    with httpx.Client(trust_env=False, timeout=30) as http:
        answer = http.post(f"{relay.notifications_url}?token={TOKEN}", json={"Records": [record]})
    assert answer.status_code == 202 and answer.json() == {"accepted": 1, "new": 0, "probes": 1}


def test_the_readme_s_notification_documents_send_what_the_relay_reads() -> None:
    """The S3 notification configuration and the EventBridge pattern in the README's wiring section ask for the
    events the relay turns into keys (created and deleted objects), and parse as JSON."""
    configuration, pattern = (json.loads(block.text) for block in readme.section(WIRING) if block.language == "json")
    (topic,) = configuration["TopicConfigurations"]
    created, deleted = ("ObjectCreated:Put", "ObjectRemoved:Delete")
    assert {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"} == set(topic["Events"])
    for event in (created, deleted):
        record = {"eventName": event, "s3": {"bucket": {"name": "raw"}, "object": {"key": "clips/a.mp4"}}}
        assert [n.key for n in parse_notification(json.dumps({"Records": [record]}).encode())] == ["clips/a.mp4"]
    for kind in pattern["detail-type"]:
        detail = {"bucket": {"name": "raw"}, "object": {"key": "clips/a.mp4"}}
        document = {"source": pattern["source"][0], "detail-type": kind, "detail": detail}
        assert [n.key for n in parse_notification(json.dumps(document).encode())] == ["clips/a.mp4"]
