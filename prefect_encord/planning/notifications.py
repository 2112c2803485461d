"""Bucket notifications, as each cloud sends them, read into one shape: which object of which bucket changed (pure).

Formats read (each as its provider documents it):

* **S3 event notifications** (``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {...}}]}``), as SNS
  delivers them (the ``Notification`` envelope, whose ``Message`` is that JSON, or raw message delivery), or
  as a function forwards them; the ``s3:TestEvent`` S3 sends when notifications are set up is ignored.
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
* **S3 events through EventBridge** (``"source": "aws.s3"``, ``detail-type`` "Object Created"/"Object Deleted").
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
* **GCS Pub/Sub notifications**, pushed (``{"message": {"attributes": {...}, "data": base64 JSON}}``).
  https://cloud.google.com/storage/docs/pubsub-notifications
* **Azure Event Grid** Blob Storage events, in the Event Grid schema (a JSON array) or as CloudEvents, and the
  subscription validation event, which must be answered with its code.
  https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage

S3 URL-encodes keys in its notifications (a space as ``+``), so they are decoded here. Each notice keeps what
orders two changes of one object (S3's ``sequencer``, GCS's generation, Azure's ``sequencer``) and what
identifies a delivery, so that a duplicate or a late notification changes nothing downstream.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus, urlsplit

Cloud = Literal["s3", "gcs", "azure"]
Change = Literal["created", "deleted"]


_EVENTBRIDGE_CHANGES: dict[str, Change] = {"Object Created": "created", "Object Deleted": "deleted"}
_PUBSUB_CHANGES: dict[str, Change] = {"OBJECT_FINALIZE": "created", "OBJECT_DELETE": "deleted"}
_EVENT_GRID_CHANGES: dict[str, Change] = {
    "Microsoft.Storage.BlobCreated": "created",
    "Microsoft.Storage.BlobDeleted": "deleted",
}


class NotificationError(ValueError):
    """A body that is none of the notification formats read here, or misses a field; the message says which."""


@dataclass(frozen=True)
class ObjectNotice:
    """One object created (or overwritten) or deleted in a bucket."""

    cloud: Cloud
    bucket: str
    key: str
    change: Change
    etag: str | None = None
    size: int | None = None
    #: Orders two changes of one object: S3's and Azure's ``sequencer`` (hex strings, compared padded), GCS's
    #: generation. None if the format carries none.
    sequencer: str | None = None

    @property
    def identity(self) -> str:
        """Equal for the same change delivered twice: the object and what orders its changes."""
        return f"{self.cloud}\t{self.bucket}\t{self.key}\t{self.change}\t{self.sequencer or self.etag or ''}"


@dataclass(frozen=True)
class ValidationRequest:
    """Event Grid asks the endpoint to prove it wants the events: answer ``{"validationResponse": code}``."""

    code: str


@dataclass(frozen=True)
class SubscriptionConfirmation:
    """SNS asks the endpoint to confirm a subscription, by visiting ``subscribe_url``."""

    topic_arn: str
    subscribe_url: str


Parsed = list[ObjectNotice] | ValidationRequest | SubscriptionConfirmation


def parse_notification(body: bytes) -> Parsed:
    """The notices in one delivery, or the handshake it asks for.

    Raises:
        NotificationError: If the body is not JSON, or not one of the formats above, naming what is missing.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotificationError(f"the body is not JSON: {exc}") from None
    if isinstance(document, list):
        return _event_grid(document)
    if not isinstance(document, dict):
        raise NotificationError("the body is neither a JSON object nor an array of Event Grid events")
    if document.get("Type") == "SubscriptionConfirmation":
        return SubscriptionConfirmation(_text(document, "TopicArn"), _text(document, "SubscribeURL"))
    if document.get("Type") == "Notification":  # the SNS envelope: the S3 event is its Message, as a string
        return parse_notification(_text(document, "Message").encode())
    if "Records" in document or document.get("Event") == "s3:TestEvent":
        return list(_s3_records(document))
    if document.get("source") == "aws.s3":
        return _eventbridge(document)
    if "message" in document and isinstance(document["message"], dict):
        return _pubsub(document["message"])
    if "specversion" in document:  # a CloudEvent of Event Grid
        return _event_grid([document])
    raise NotificationError(
        "not a bucket notification: expected S3 event records, an SNS or EventBridge message, a Pub/Sub push or "
        "Event Grid events"
    )


def _s3_records(document: dict[str, Any]) -> Iterator[ObjectNotice]:
    records = document.get("Records", [])
    if not isinstance(records, list):
        raise NotificationError("'Records' is not a list")
    for record in records:
        name = _text(record, "eventName")
        change: Change | None = (
            "created" if name.startswith("ObjectCreated:") else "deleted" if name.startswith("ObjectRemoved:") else None
        )
        if change is None:  # restores, lifecycle transitions, replication: not a change of what the bucket holds
            continue
        s3 = _object(record, "s3")
        obj = _object(s3, "object")
        yield ObjectNotice(
            cloud="s3",
            bucket=_text(_object(s3, "bucket"), "name"),
            key=unquote_plus(_text(obj, "key")),
            change=change,
            etag=_optional_text(obj, "eTag"),
            size=_optional_int(obj, "size"),
            sequencer=_optional_text(obj, "sequencer"),
        )


def _eventbridge(document: dict[str, Any]) -> list[ObjectNotice]:
    kind = _text(document, "detail-type")
    change = _EVENTBRIDGE_CHANGES.get(kind)
    if change is None:
        return []
    detail = _object(document, "detail")
    obj = _object(detail, "object")
    return [
        ObjectNotice(
            cloud="s3",
            bucket=_text(_object(detail, "bucket"), "name"),
            key=_text(obj, "key"),  # EventBridge sends keys as they are, not URL-encoded
            change=change,
            etag=_optional_text(obj, "etag"),
            size=_optional_int(obj, "size"),
            sequencer=_optional_text(obj, "sequencer"),
        )
    ]


def _pubsub(message: dict[str, Any]) -> list[ObjectNotice]:
    attributes = _object(message, "attributes")
    event = _text(attributes, "eventType")
    change = _PUBSUB_CHANGES.get(event)
    if change is None:  # metadata updates and archiving change no bytes
        return []
    resource: dict[str, Any] = {}
    if message.get("data"):
        try:
            decoded = json.loads(base64.b64decode(message["data"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise NotificationError(f"the Pub/Sub message's data is not base64 JSON: {exc}") from None
        resource = decoded if isinstance(decoded, dict) else {}
    generation = attributes.get("objectGeneration") or resource.get("generation")
    return [
        ObjectNotice(
            cloud="gcs",
            bucket=_text(attributes, "bucketId"),
            key=_text(attributes, "objectId"),
            change=change,
            etag=_optional_text(resource, "etag"),
            size=_optional_int(resource, "size"),
            sequencer=str(generation) if generation is not None else None,
        )
    ]


def _event_grid(events: list[Any]) -> Parsed:
    notices: list[ObjectNotice] = []
    for event in events:
        if not isinstance(event, dict):
            raise NotificationError("an Event Grid event is not a JSON object")
        kind = event.get("eventType") or event.get("type")
        data = _object(event, "data")
        if kind == "Microsoft.EventGrid.SubscriptionValidationEvent":
            return ValidationRequest(_text(data, "validationCode"))
        change = _EVENT_GRID_CHANGES.get(str(kind))
        if change is None:
            continue
        container, key = _azure_blob(_text(data, "url"))
        notices.append(
            ObjectNotice(
                cloud="azure",
                bucket=container,
                key=key,
                change=change,
                etag=_optional_text(data, "eTag"),
                size=_optional_int(data, "contentLength"),
                sequencer=_optional_text(data, "sequencer"),
            )
        )
    return notices


def _azure_blob(url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL, ``https://account.blob.core.windows.net/container/dir/name``.

    An emulator's URLs (Azurite) carry the account as the first path segment instead; its host is then an IP or
    ``localhost``, which is how the two are told apart.
    """
    parts = urlsplit(url)
    segments = unquote(parts.path).lstrip("/").split("/")
    host = parts.hostname or ""
    if host in ("localhost", "127.0.0.1") or host.replace(".", "").isdigit():
        segments = segments[1:]
    if len(segments) < 2 or not segments[0] or not segments[-1]:
        raise NotificationError(f"the blob URL {url!r} names no container and blob")
    return segments[0], "/".join(segments[1:])


def _object(container: dict[str, Any], name: str) -> dict[str, Any]:
    value = container.get(name)
    if not isinstance(value, dict):
        raise NotificationError(f"the notification has no object {name!r}")
    return value


def _text(container: dict[str, Any], name: str) -> str:
    value = container.get(name)
    if not isinstance(value, str) or not value:
        raise NotificationError(f"the notification has no text field {name!r}")
    return value


def _optional_text(container: dict[str, Any], name: str) -> str | None:
    value = container.get(name)
    return value.strip('"') if isinstance(value, str) and value else None


def _optional_int(container: dict[str, Any], name: str) -> int | None:
    value = container.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None
