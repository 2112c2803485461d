"""Bucket notifications in, a few batched Prefect events out: the batcher alone, then the relay over HTTP with
events read back from a real Prefect API."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent

from prefect_encord.events.bucket_notifications import KeyBatch, NotificationBatcher
from prefect_encord.events.names import BUCKET_OBJECTS_CHANGED_EVENT
from prefect_encord.events.relay import NOTIFICATIONS_PATH, RelayServer
from prefect_encord.planning.notifications import ObjectNotice
from tests.sns import signed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _notice(key: str, sequencer: str = "01") -> ObjectNotice:
    return ObjectNotice("s3", "cams", key, "created", "etag", 1, sequencer)


def test_a_batch_goes_out_when_full_or_when_its_first_key_waited_long_enough() -> None:
    clock, sent = Clock(), list[KeyBatch]()
    batcher = NotificationBatcher(sent.append, within_seconds=30, max_keys=3, clock=clock)
    assert batcher.add([_notice("a"), _notice("b")]) == 2
    assert batcher.flush() == 0 and sent == []
    batcher.add([_notice("c"), _notice("d")])  # c fills the batch; d starts the next
    assert [batch.keys for batch in sent] == [("a", "b", "c")]
    clock.now = 31
    assert batcher.flush() == 1 and sent[-1].keys == ("d",)


def test_a_delivery_seen_before_is_dropped_and_another_change_of_the_key_is_not() -> None:
    clock, sent = Clock(), list[KeyBatch]()
    batcher = NotificationBatcher(sent.append, within_seconds=0, clock=clock)
    assert batcher.add([_notice("a"), _notice("a"), _notice("a", sequencer="02")]) == 2
    batcher.flush()
    assert [batch.keys for batch in sent] == [("a",)]  # one key, however many of its changes were told
    assert batcher.add([_notice("a")]) == 0  # a redelivery after its batch went out


def test_the_same_keys_make_the_same_event_id_whatever_their_order() -> None:
    assert KeyBatch("s3", "cams", ("a", "b")).event_id == KeyBatch("s3", "cams", ("b", "a")).event_id
    assert KeyBatch("s3", "cams", ("a",)).event_id != KeyBatch("s3", "other", ("a",)).event_id


def _s3_records(keys: list[str], bucket: str) -> dict[str, Any]:
    def record(key: str) -> dict[str, Any]:
        obj = {"key": key, "size": 10, "eTag": f"e-{key}", "sequencer": "0A"}
        return {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}}

    return {"Records": [record(key) for key in keys]}


def _sns(document: dict[str, Any], **signing: Any) -> dict[str, Any]:
    """``document`` in an SNS envelope, signed as SNS signs (tests/sns.py)."""
    return signed({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(document)},
                  **signing)  # fmt: skip


def _events(bucket: str, expected: int, timeout: float = 30.0) -> list[ReceivedEvent]:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            event_filter = EventFilter(  # anew each time: a filter's time window ends when it is made
                resource=EventResourceFilter(id=[f"prefect-encord.bucket.s3.{bucket}"]),
                event=EventNameFilter(name=[BUCKET_OBJECTS_CHANGED_EVENT]),
            )
            found = client.read_events(filter=event_filter, limit=50).events
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.25)


@pytest.fixture(scope="module")
def relay(prefect_harness: None) -> Iterator[RelayServer]:
    with RelayServer(within_seconds=1.0, token="s3cret") as server:
        yield server


def test_thousands_of_notifications_with_duplicates_and_reordering_become_three_events(relay: RelayServer) -> None:
    bucket = f"cams-{random.randrange(10**9)}"
    keys = [f"day-1/{n:05d}.png" for n in range(2500)]
    deliveries = [keys[start : start + 10] for start in range(0, len(keys), 10)]
    deliveries += random.Random(7).sample(deliveries, 25)  # at-least-once: a tenth delivered twice
    random.Random(8).shuffle(deliveries)
    with httpx.Client(trust_env=False, timeout=30) as http:
        answers = [http.post(f"{relay.notifications_url}?token=s3cret", json=_sns(_s3_records(d, bucket)))
                   for d in deliveries]  # fmt: skip
    assert {answer.status_code for answer in answers} == {202}
    assert sum(answer.json()["new"] for answer in answers) == 2500

    events = _events(bucket, expected=3)

    assert sorted(len(event.payload["object_keys"]) for event in events) == [500, 1000, 1000]
    assert sorted(key for event in events for key in event.payload["object_keys"]) == keys


def test_a_delivery_without_the_token_is_refused_and_event_grid_is_answered_its_code(relay: RelayServer) -> None:
    validation = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "id": "v",
                   "data": {"validationCode": "code-123"}}]  # fmt: skip
    with httpx.Client(trust_env=False, timeout=30) as http:
        refused = http.post(relay.notifications_url, json=_s3_records(["a.png"], "cams"))
        wrong = http.post(relay.notifications_url, headers={"X-Prefect-Encord-Token": "guess"}, json=validation)
        answered = http.post(relay.notifications_url, headers={"X-Prefect-Encord-Token": "s3cret"}, json=validation)
        forged = http.post(f"{relay.notifications_url}?token=s3cret", json=signed({
            "Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "confirm",
            "Token": "t", "SubscribeURL": "https://attacker.example/confirm"}))  # fmt: skip
        garbage = http.post(f"{relay.notifications_url}?token=s3cret", content=b"{}")
    assert refused.status_code == wrong.status_code == 401 and "token" in refused.json()["message"]
    assert answered.status_code == 200 and answered.json() == {"validationResponse": "code-123"}
    assert forged.status_code == 400 and "not Amazon SNS's" in forged.json()["message"]
    assert garbage.status_code == 400 and "not a bucket notification" in garbage.json()["message"]
    assert NOTIFICATIONS_PATH in relay.notifications_url


def test_sns_messages_not_signed_by_sns_are_refused_and_counted(relay: RelayServer) -> None:
    """SNS signs what it delivers; a message altered on the way, replayed an hour later, signed with another
    certificate URL, or not signed at all is refused before any of its keys is taken."""
    records = _s3_records(["tampered.png"], "cams-signatures")
    tampered = {**_sns(records), "Message": json.dumps(_s3_records(["evil.png"], "cams-signatures"))}
    replayed = _sns(records, sent=datetime.now(timezone.utc) - timedelta(hours=2))
    elsewhere = {**_sns(records), "SigningCertURL": "https://attacker.example/sns.pem"}
    unsigned = {key: value for key, value in _sns(records).items() if key != "Signature"}
    with httpx.Client(trust_env=False, timeout=30) as http:
        before = http.get(relay.notifications_url.replace(NOTIFICATIONS_PATH, "/healthz")).json()["refused"]
        answers = {
            name: http.post(f"{relay.notifications_url}?token=s3cret", json=body)
            for name, body in [
                ("tampered", tampered),
                ("replayed", replayed),
                ("elsewhere", elsewhere),
                ("unsigned", unsigned),
            ]
        }
        version_1 = http.post(f"{relay.notifications_url}?token=s3cret", json=_sns(records, version="1"))
        after = http.get(relay.notifications_url.replace(NOTIFICATIONS_PATH, "/healthz")).json()["refused"]

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 403)
    assert "does not match its content" in answers["tampered"].json()["message"]
    assert "a replay" in answers["replayed"].json()["message"]
    assert "is not Amazon SNS's" in answers["elsewhere"].json()["message"]
    assert "Signature missing" in answers["unsigned"].json()["message"]
    assert after.get("sns", 0) - before.get("sns", 0) == 4
    assert version_1.status_code == 202  # SHA1 signatures (SignatureVersion 1) are SNS's too
