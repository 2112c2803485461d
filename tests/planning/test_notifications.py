"""Each cloud's bucket notification, as its provider documents it, read into the same notices."""

from __future__ import annotations

import base64
import json

import pytest

from prefect_encord.planning.notifications import (
    NotificationError,
    ObjectNotice,
    SubscriptionConfirmation,
    ValidationRequest,
    parse_notification,
)

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
S3_EVENT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-west-2",
            "eventTime": "2026-12-04T10:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "encord",
                "bucket": {"name": "cams", "arn": "arn:aws:s3:::cams"},
                "object": {"key": "day+1/front%2Bleft.png", "size": 1024, "eTag": "d41d8cd9", "sequencer": "0055AED6"},
            },
        },
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "cams"},
                                                      "object": {"key": "old.png", "sequencer": "0055AED7"}}},
        {"eventName": "ObjectRestore:Completed", "s3": {"bucket": {"name": "cams"}, "object": {"key": "cold.png"}}},
    ]
}  # fmt: skip
CREATED = ObjectNotice("s3", "cams", "day 1/front+left.png", "created", "d41d8cd9", 1024, "0055AED6")
DELETED = ObjectNotice("s3", "cams", "old.png", "deleted", None, None, "0055AED7")


def _body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_s3_event_records_directly_and_inside_an_sns_envelope() -> None:
    assert parse_notification(_body(S3_EVENT)) == [CREATED, DELETED]
    envelope = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-west-2:1:cams",
                "Message": json.dumps(S3_EVENT), "Timestamp": "2026-12-04T10:00:01.000Z"}  # fmt: skip
    assert parse_notification(_body(envelope)) == [CREATED, DELETED]
    assert parse_notification(_body({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "cams"})) == []


def test_an_sns_subscription_confirmation_asks_for_its_url() -> None:
    url = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    confirmation = {"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-west-2:1:cams", "SubscribeURL": url}
    assert parse_notification(_body(confirmation)) == SubscriptionConfirmation("arn:aws:sns:us-west-2:1:cams", url)


def test_s3_through_eventbridge() -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
    event = {"version": "0", "id": "e-1", "detail-type": "Object Created", "source": "aws.s3",
             "detail": {"version": "0", "bucket": {"name": "cams"},
                        "object": {"key": "day 1/a.png", "size": 5, "etag": "abc", "sequencer": "00617F0"},
                        "reason": "PutObject"}}  # fmt: skip
    assert parse_notification(_body(event)) == [
        ObjectNotice("s3", "cams", "day 1/a.png", "created", "abc", 5, "00617F0")
    ]


def test_gcs_pubsub_push() -> None:
    # https://cloud.google.com/storage/docs/pubsub-notifications
    resource = {"kind": "storage#object", "name": "day 1/a.png", "bucket": "cams", "generation": "1733306400000000",
                "size": "2048", "etag": "CICo"}  # fmt: skip
    push = {"message": {"attributes": {"bucketId": "cams", "objectId": "day 1/a.png", "eventType": "OBJECT_FINALIZE",
                                       "objectGeneration": "1733306400000000", "payloadFormat": "JSON_API_V1"},
                        "data": base64.b64encode(json.dumps(resource).encode()).decode(), "messageId": "1"},
            "subscription": "projects/p/subscriptions/encord"}  # fmt: skip
    assert parse_notification(_body(push)) == [
        ObjectNotice("gcs", "cams", "day 1/a.png", "created", "CICo", 2048, "1733306400000000")
    ]
    push["message"]["attributes"]["eventType"] = "OBJECT_METADATA_UPDATE"  # type: ignore[index]
    assert parse_notification(_body(push)) == []


def test_azure_event_grid_events_and_its_validation_handshake() -> None:
    # https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage
    created = {"topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct",
               "subject": "/blobServices/default/containers/cams/blobs/day 1/a.png",
               "eventType": "Microsoft.Storage.BlobCreated", "id": "e-1",
               "data": {"api": "PutBlob", "eTag": "0x8D4BCC2E4835CD0", "contentLength": 524288,
                        "url": "https://acct.blob.core.windows.net/cams/day%201/a.png",
                        "sequencer": "00000000000004420000000000028963"}}  # fmt: skip
    assert parse_notification(_body([created])) == [ObjectNotice(
        "azure", "cams", "day 1/a.png", "created", "0x8D4BCC2E4835CD0", 524288, "00000000000004420000000000028963"
    )]  # fmt: skip
    cloud_event = {"specversion": "1.0", "type": "Microsoft.Storage.BlobDeleted", "source": "x", "id": "e-2",
                   "data": {"url": "http://127.0.0.1:10000/devstoreaccount1/cams/b.png"}}  # fmt: skip
    assert parse_notification(_body(cloud_event)) == [ObjectNotice("azure", "cams", "b.png", "deleted")]
    validation = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "id": "v",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]  # fmt: skip
    assert parse_notification(_body(validation)) == ValidationRequest("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")


def test_the_same_change_delivered_twice_has_one_identity() -> None:
    again = parse_notification(_body(S3_EVENT))
    assert isinstance(again, list) and again[0].identity == CREATED.identity
    assert CREATED.identity != DELETED.identity


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the body is not JSON"),
        (b'{"hello": 1}', "not a bucket notification"),
        (b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "a"}}}]}', "no object 'bucket'"),
        (b'{"message": {"attributes": {"eventType": "OBJECT_FINALIZE", "bucketId": "b", "objectId": "o"}, '
         b'"data": "%%%"}}', "not base64 JSON"),
        (b'[{"eventType": "Microsoft.Storage.BlobCreated", "data": {"url": "https://a.blob.core.windows.net/c"}}]',
         "names no container and blob"),
    ],
)  # fmt: skip
def test_a_body_that_is_no_notification_is_refused_naming_why(body: bytes, message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        parse_notification(body)
