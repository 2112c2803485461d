"""S3 event notifications for the S3 emulator, which sends none: what S3 would post, posted to an HTTP endpoint.

moto's S3 keeps its notification configuration but delivers nothing over HTTP, so a test (or a benchmark) of an
event-driven pipeline needs something to play S3's part. :class:`S3Notifier` watches one bucket of the emulator
(a listing every ``interval`` seconds) and, for each object created, overwritten or deleted since the last look,
posts an S3 event notification as S3 documents it (``{"Records": [{"eventName": "ObjectCreated:Put", "s3":
{...}}]}``, keys URL-encoded, a growing ``sequencer``), one delivery per record, to ``target_url``; ``wrap``
turns the document into what the endpoint expects, e.g. an SNS envelope signed as SNS signs.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html

It sees what a listing sees: an object written and deleted between two looks is never told, as a notification
lost on the way would not be.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import quote_plus

from encord_sandbox.emulators import MOTO_REGION, s3_client

Document = dict[str, Any]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class S3Notifier:
    """Posts the S3 notifications of one emulator bucket's changes to ``target_url`` while it runs (a thread).

    ``sent`` counts the deliveries posted; ``first_seen`` holds when each key was first seen created (for latency
    figures); ``failures`` the deliveries the endpoint did not accept, with its answer.
    """

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        target_url: str,
        interval: float = 0.2,
        wrap: Callable[[Document], Document] | None = None,
    ) -> None:
        self.bucket, self.target_url, self.interval = bucket, target_url, interval
        self._client = s3_client(endpoint_url)
        self._wrap = wrap or (lambda document: document)
        self._known: dict[str, str] = self._listing()  # what exists now is not news
        self._sequence = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"s3-notifier-{bucket}", daemon=True)
        self.sent = 0
        self.first_seen: dict[str, float] = {}
        self.failures: list[str] = []

    def __enter__(self) -> S3Notifier:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.notify_changes()

    def notify_changes(self) -> int:
        """Look at the bucket once and post a notification per change since the last look; returns how many."""
        current = self._listing()
        created = [key for key, etag in current.items() if self._known.get(key) != etag]
        deleted = [key for key in self._known if key not in current]
        self._known = current
        now = time.monotonic()
        for key in created:
            self.first_seen.setdefault(key, now)
            self._post(self._record("ObjectCreated:Put", key, current[key]))
        for key in deleted:
            self._post(self._record("ObjectRemoved:Delete", key, None))
        return len(created) + len(deleted)

    def _listing(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found.update({item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])})
        return found

    def _record(self, event_name: str, key: str, etag: str | None) -> Document:
        self._sequence += 1
        described: Document = {"key": quote_plus(key, safe="/"), "sequencer": f"{self._sequence:016X}"}
        if etag is not None:
            described["eTag"] = etag
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": MOTO_REGION,
            "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "eventName": event_name,
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": self.bucket}, "object": described},
        }

    def _post(self, record: Document) -> None:
        body = json.dumps(self._wrap({"Records": [record]})).encode()
        request = urllib.request.Request(
            self.target_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with _DIRECT.open(request, timeout=30) as answer:
                answer.read()
            self.sent += 1
        except OSError as exc:  # an HTTPError (4xx/5xx) or a refused connection: kept for the test to show
            self.failures.append(f"{record['s3']['object']['key']}: {exc}")
