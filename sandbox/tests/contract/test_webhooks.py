"""Sandbox workflow webhooks: the unmodified SDK changes a label row, a local receiver gets Encord's payloads.

Each test runs its own small sandbox (the session one must not POST into other tests' receivers) and a
plain HTTP receiver on 127.0.0.1 that records every POST and can be told to fail the first few.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from encord import EncordUserClient, Project
from encord.objects import LabelRowV2
from encord.orm.dataset import DatasetType
from encord_sandbox.errors import InvalidArgument
from encord_sandbox.samples import png
from encord_sandbox.server import Sandbox


class Receiver:
    """Records POSTed JSON bodies; answers ``status`` (500 for the first ``fail_first`` requests)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self._seen = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._changed:
                    receiver._seen += 1
                    failing = receiver._seen <= receiver.fail_first
                    receiver.headers.append(dict(self.headers))
                    receiver.bodies.append({"_failed": failing, **json.loads(body)})
                    receiver._changed.notify_all()
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/encord"

    def delivered(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in b.items() if k != "_failed"} for b in self.bodies if not b["_failed"]]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` successfully delivered bodies, waiting for them if needed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.delivered()) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} webhooks, got {self.bodies}"
                self._changed.wait(left)
        return self.delivered()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _dead_url() -> str:
    """A loopback URL nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody"


def _project(client: EncordUserClient, tmp_path: Path, images: int = 1) -> Project:
    """A project over a dataset of ``images`` freshly uploaded images."""
    folder = client.create_storage_folder(f"hooks-{uuid.uuid4().hex[:6]}")
    items = []
    for i in range(images):
        path = tmp_path / f"img-{i}-{uuid.uuid4().hex[:4]}.png"
        path.write_bytes(png(color=(i, 10, 20)))
        items.append(folder.upload_image(path))
    dataset = client.create_dataset(f"hooks-{uuid.uuid4().hex[:6]}", DatasetType.CORD_STORAGE)
    client.get_dataset(dataset.dataset_hash).link_items(items)
    return client.get_project(client.create_project(f"hooks-{uuid.uuid4().hex[:6]}", [dataset.dataset_hash]))


def _row(project: Project) -> LabelRowV2:
    (row,) = project.list_label_rows_v2()
    row.initialise_labels()
    return row


def test_save_then_complete_posts_encords_documented_payloads(tmp_path: Path, receiver: Receiver) -> None:
    with Sandbox(tmp_path / "sb", webhook_url=receiver.url) as sandbox:
        client = sandbox.credentials().get_client()
        project = _project(client, tmp_path)
        row = _row(project)  # creating the row is not a workflow event
        started = time.monotonic()
        row.save()
        row.workflow_complete()
        assert time.monotonic() - started < 2, "webhooks must not slow the SDK's calls down"
        submitted, completed = receiver.wait_for(2)

        for body, event_type in ((submitted, "task_submitted_event"), (completed, "task_completed_event")):
            assert set(body) == {"uid", "version", "source", "event_type", "event_created_timestamp", "payload"}
            assert (body["version"], body["source"], body["event_type"]) == (1, "Encord", event_type)
            assert str(uuid.UUID(body["uid"])) == body["uid"]
            assert datetime.fromisoformat(body["event_created_timestamp"]).utcoffset() is not None
            assert body["payload"] == {
                "project_hash": project.project_hash,
                "data_hashes": [row.data_hash],
                "label_hashes": [row.label_hash],
            }
        assert submitted["uid"] != completed["uid"]
        assert submitted["event_created_timestamp"] <= completed["event_created_timestamp"]
        assert receiver.headers[0]["Content-Type"] == "application/json"

        row.workflow_complete()  # already complete: no change, no webhook
        row.save()  # saving in the Complete stage is not a submission
        row.workflow_reopen()  # back to Annotate: Encord sends nothing for it
        assert sandbox.webhooks.wait_idle()
        time.sleep(0.3)
        assert len(receiver.bodies) == 2
        row.save()  # submitted again from Annotate
        assert receiver.wait_for(3)[2]["event_type"] == "task_submitted_event"


def test_failed_deliveries_are_retried_with_the_same_uid(tmp_path: Path) -> None:
    flaky = Receiver(fail_first=2)
    try:
        with Sandbox(tmp_path / "sb", webhook_url=flaky.url) as sandbox:
            sandbox.webhooks.backoff = 0.05
            row = _row(_project(sandbox.credentials().get_client(), tmp_path))
            row.save()
            (body,) = flaky.wait_for(1)
            assert [b["uid"] for b in flaky.bodies] == [body["uid"]] * 3
            assert sandbox.webhooks.wait_idle()  # the receiver saw the body before the sender saw the 200
            (delivery,) = sandbox.webhooks.deliveries()
            assert (delivery["status"], delivery["attempts"]) == ("DELIVERED", 3)
    finally:
        flaky.close()


def test_a_dead_url_is_given_up_without_blocking_anything(tmp_path: Path, receiver: Receiver) -> None:
    dead = _dead_url()
    with Sandbox(tmp_path / "sb", webhook_url=dead) as sandbox:
        sandbox.webhooks.backoff, sandbox.webhooks.max_attempts = 0.02, 3
        sandbox.add_webhook(receiver.url)
        row = _row(_project(sandbox.credentials().get_client(), tmp_path))
        started = time.monotonic()
        row.save()
        assert time.monotonic() - started < 2
        assert receiver.wait_for(1)[0]["event_type"] == "task_submitted_event"  # the live URL is not held up
        assert sandbox.webhooks.wait_idle()
        by_url = {d["url"]: d for d in sandbox.webhooks.deliveries()}
        assert by_url[dead]["status"] == "FAILED" and by_url[dead]["attempts"] == 3
        assert "ConnectError" in by_url[dead]["last_error"]
        assert by_url[receiver.url]["status"] == "DELIVERED"


def test_webhooks_per_project_and_what_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    other = Receiver()
    try:
        with Sandbox(tmp_path / "sb", webhook_url=_dead_url()) as sandbox:
            client = sandbox.credentials().get_client()
            watched, unwatched = _project(client, tmp_path), _project(client, tmp_path)
            sandbox.add_webhook(receiver.url, project_hash=watched.project_hash)
            sandbox.add_webhook(other.url, events=("task_completed_event",))
            assert sandbox.add_webhook(receiver.url, project_hash=watched.project_hash) == sandbox.add_webhook(
                receiver.url, project_hash=watched.project_hash
            )
        with Sandbox(tmp_path / "sb") as sandbox:  # the constructor's URL was for that process only
            assert sorted(w.url for w in sandbox.webhooks.subscriptions()) == sorted([receiver.url, other.url])
            for project in (unwatched, watched):
                row = _row(sandbox.credentials().get_client().get_project(project.project_hash))
                row.save()
                row.workflow_complete()
            assert [(b["event_type"], b["payload"]["project_hash"]) for b in receiver.wait_for(2)] == [
                ("task_submitted_event", watched.project_hash),
                ("task_completed_event", watched.project_hash),
            ]
            assert [b["payload"]["project_hash"] for b in other.wait_for(2)] == [
                unwatched.project_hash,
                watched.project_hash,
            ]
            assert sandbox.remove_webhook(other.url) == 1
            assert [w.url for w in sandbox.webhooks.subscriptions()] == [receiver.url]
            with pytest.raises(InvalidArgument, match="absolute http"):
                sandbox.add_webhook("ftp://example.invalid/x")
            with pytest.raises(InvalidArgument, match="events"):
                sandbox.add_webhook(receiver.url, events=("digest_event",))
    finally:
        other.close()
