"""The webhook relay: Encord's workflow webhooks in, Prefect events out (read back from a real Prefect API).

The relay runs for real on loopback (uvicorn in a thread, stopped at the end of the module). Validation
needs no Prefect; emitting runs under ``prefect_harness``, once with a documented payload and once over
the whole offline loop: the SDK saves and completes a label row in a sandbox whose webhooks go to the
relay, and the events are read back from the Prefect API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from encord.orm.dataset import DatasetType
from encord_sandbox.samples import png
from encord_sandbox.server import Sandbox
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent, ResourceSpecification
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_encord.events.encord_webhooks import parse_webhook
from prefect_encord.events.names import LABELS_COMPLETED_EVENT, TASK_COMPLETED_EVENT, TASK_SUBMITTED_EVENT
from prefect_encord.events.relay import WEBHOOK_PATH, RelayServer
from prefect_encord.planning.bounded_json import MAX_BODY_BYTES


def _webhook(event_type: str = "task_completed_event", **payload: Any) -> dict[str, Any]:
    """A payload as documented by Encord (docs.encord.com, Webhooks and Notifications)."""
    return {
        "uid": str(uuid.uuid4()),
        "version": 1,
        "source": "Encord",
        "event_type": event_type,
        "event_created_timestamp": "2024-04-13T14:35:11.791161+00:00",
        "payload": payload
        or {
            "project_hash": str(uuid.uuid4()),
            "data_hashes": [str(uuid.uuid4())],
            "label_hashes": [str(uuid.uuid4())],
        },
    }


@pytest.fixture(scope="module")
def relay(prefect_harness: None) -> Iterator[httpx.Client]:
    with RelayServer() as server, httpx.Client(base_url=server.url.removesuffix(WEBHOOK_PATH), trust_env=False) as http:
        yield http


def _events(resource_id: str, names: list[str], expected: int, timeout: float = 20.0) -> list[ReceivedEvent]:
    """Events about one resource, read back from the Prefect API (the events worker sends them in the background)."""
    event_filter = EventFilter(resource=EventResourceFilter(id=[resource_id]), event=EventNameFilter(name=names))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_events(filter=event_filter, limit=50).events
            if len(found) >= expected or time.monotonic() > deadline:
                return sorted(found, key=lambda e: e.occurred)
            time.sleep(0.25)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[]", "must be a JSON object"),
        ({**_webhook(), "source": "Elsewhere"}, "source: Input should be 'Encord'"),
        ({k: v for k, v in _webhook().items() if k != "uid"}, "uid: Field required"),
        (_webhook(data_hashes=["d"], label_hashes=["l"]), "payload.project_hash: Field required"),
        (_webhook("digest_event"), "event_type 'digest_event' is not relayed"),
        (_webhook(project_hash="p", data_hashes=[], label_hashes=[]), "names no label row"),
        ({**_webhook(), "event_created_timestamp": "yesterday"}, "event_created_timestamp"),
    ],
)
def test_malformed_or_unknown_payloads_are_refused_with_the_reason(
    relay: httpx.Client, body: Any, problem: str
) -> None:
    response = (
        relay.post(WEBHOOK_PATH, content=body) if isinstance(body, bytes) else relay.post(WEBHOOK_PATH, json=body)
    )
    assert response.status_code == 400
    assert problem in response.json()["message"]


def test_hashes_as_strings_or_singular_are_accepted() -> None:
    both = parse_webhook(b'{"uid": "u", "source": "Encord", "event_type": "task_sumbitted_event", '
                         b'"payload": {"project_hash": "p", "data_hashes": "d", "label_hashes": "l"}}')  # fmt: skip
    assert both.payload.rows() == [("l", "d")]
    legacy = parse_webhook(b'{"uid": "u", "source": "Encord", "event_type": "task_completed_event", '
                           b'"payload": {"project_hash": "p", "label_hash": "l"}}')  # fmt: skip
    assert legacy.payload.rows() == [("l", None)]


def test_without_a_prefect_api_every_route_answers_503_so_the_sender_retries() -> None:
    """Events sent into a temporary server of the relay's own would be lost, and the sender would not retry."""
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        RelayServer() as server,
        httpx.Client(trust_env=False) as http,
    ):
        webhook = http.post(server.url, json=_webhook())
        bucket = http.post(server.notifications_url, json={"Records": []})
    for answer in (webhook, bucket):
        assert answer.status_code == 503 and "PREFECT_API_URL" in answer.json()["message"]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_ENCORD_") and k != "PREFECT_API_URL"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "prefect-encord"), "webhook-relay", *args],
        capture_output=True, text=True, timeout=120, env={**clean, **env},
    )  # fmt: skip


def test_the_relay_refuses_to_start_without_a_prefect_api_or_open_to_all_without_a_token(
    prefect_harness: None, tmp_path: Path
) -> None:
    home = {"PREFECT_HOME": str(tmp_path)}  # no profile naming an API either
    no_api = _cli("--port", "0", **home)
    assert no_api.returncode == 1 and "needs a Prefect server" in no_api.stderr and "PREFECT_API_URL" in no_api.stderr
    assert "Traceback" not in no_api.stderr and "listening" not in no_api.stdout
    open_to_all = _cli("--host", "0.0.0.0", "--port", "0", PREFECT_API_URL=str(PREFECT_API_URL.value()), **home)
    assert open_to_all.returncode == 1 and "listening on 0.0.0.0 needs a token" in open_to_all.stderr
    assert "PREFECT_ENCORD_RELAY_TOKEN" in open_to_all.stderr and "listening" not in open_to_all.stdout


@pytest.fixture(scope="module")
def guarded(prefect_harness: None) -> Iterator[RelayServer]:
    with RelayServer(token="s3cret") as server:
        yield server


def test_every_route_takes_only_requests_with_the_token(guarded: RelayServer) -> None:
    with httpx.Client(trust_env=False) as http:
        stranger = http.post(guarded.url, json=_webhook())
        wrong = http.post(guarded.url, json=_webhook(), headers={"X-Prefect-Encord-Token": "guess"})
        bucket = http.post(guarded.notifications_url, json={"Records": []})
        with_token = http.post(f"{guarded.url}?token=s3cret", json=_webhook())
        health = http.get(guarded.url.replace(WEBHOOK_PATH, "/healthz"))
    assert stranger.status_code == wrong.status_code == bucket.status_code == 401
    assert "token" in stranger.json()["message"]
    assert with_token.status_code == 200, with_token.text
    assert health.status_code == 200


def test_a_body_too_large_is_413_and_too_deep_is_400_before_it_is_read_whole(guarded: RelayServer) -> None:
    url = f"{guarded.url}?token=s3cret"
    chunk = b" " * (1024 * 1024)

    def endless() -> Iterator[bytes]:  # no Content-Length: the relay stops reading at its limit
        for _ in range(64):
            yield chunk

    with httpx.Client(trust_env=False, timeout=60) as http:
        declared = http.post(url, content=b"{" + b" " * MAX_BODY_BYTES + b"}")
        streamed = http.post(url, content=endless())
        deep = http.post(url, content=b"[" * 100_000 + b"]" * 100_000)
    assert declared.status_code == streamed.status_code == 413, streamed.text
    assert "larger than" in streamed.json()["message"]
    assert deep.status_code == 400 and "nests deeper" in deep.json()["message"]


def test_more_rows_in_one_webhook_than_the_server_queues_reach_prefect_every_one(relay: httpx.Client) -> None:
    """The Prefect server queues 10,000 events per subscriber and drops the rest: the relay sends them in batches.
    ``PREFECT_ENCORD_TEST_ROWS`` sets the rows (12,000 here; hardening part 3's closing figure used 20,000)."""
    rows = int(os.environ.get("PREFECT_ENCORD_TEST_ROWS", "12000"))
    body = _webhook(project_hash=str(uuid.uuid4()), label_hashes=[str(uuid.uuid4()) for _ in range(rows)])
    answer = relay.post(WEBHOOK_PATH, json=body, timeout=600)
    assert answer.status_code == 200 and len(answer.json()["emitted"]) == rows
    uid_filter = EventFilter(
        event=EventNameFilter(name=[TASK_COMPLETED_EVENT]),
        resource=EventResourceFilter(labels=ResourceSpecification({"encord.webhook-uid": body["uid"]})),
    )
    deadline, stored = time.monotonic() + 120, 0
    with get_client(sync_client=True) as client:
        while stored < rows and time.monotonic() < deadline:
            stored = client.read_events(filter=uid_filter, limit=1).total
            time.sleep(1)
    print(f"{rows} rows in one webhook: {stored} events stored by the Prefect server")
    assert stored == rows


# --- emitting -----------------------------------------------------------------------------------


def test_a_completed_task_becomes_a_prefect_event(prefect_harness: None, relay: httpx.Client) -> None:
    project, data, label = (str(uuid.uuid4()) for _ in range(3))
    body = _webhook(project_hash=project, data_hashes=[data], label_hashes=[label])

    first = relay.post(WEBHOOK_PATH, json=body)
    again = relay.post(WEBHOOK_PATH, json=body)  # a re-delivered webhook makes the same event

    assert first.status_code == 200, first.text
    assert first.json() == again.json()
    (event,) = _events(f"encord.label-row.{label}", [TASK_COMPLETED_EVENT], 1)
    assert str(event.id) == first.json()["emitted"][0]["id"]
    assert event.event == "encord.task.completed"
    assert event.resource.root == {
        "prefect.resource.id": f"encord.label-row.{label}",
        "prefect.resource.role": "label-row",
        "encord.project-hash": project,
        "encord.data-hash": data,
        "encord.label-hash": label,
        "encord.webhook-uid": body["uid"],
    }
    assert [r.root for r in event.related] == [
        {"prefect.resource.id": f"encord.project.{project}", "prefect.resource.role": "project"},
        {"prefect.resource.id": f"encord.data-unit.{data}", "prefect.resource.role": "data-unit"},
    ]
    assert event.payload["event_created_timestamp"] == "2024-04-13T14:35:11.791161+00:00"
    assert event.payload["uid"] == body["uid"] and event.payload["event_type"] == "task_completed_event"


def test_the_sandbox_webhooks_reach_prefect_through_the_relay(prefect_harness: None, tmp_path: Path) -> None:
    """The whole loop, offline: SDK → sandbox → webhook → relay → Prefect event."""
    with RelayServer() as relay, Sandbox(tmp_path / "sb", webhook_url=relay.url) as sandbox:
        client = sandbox.credentials().get_client()
        folder = client.create_storage_folder("relay")
        (tmp_path / "cat.png").write_bytes(png(color=(9, 9, 9)))
        item = folder.upload_image(tmp_path / "cat.png")
        dataset = client.create_dataset("relay", DatasetType.CORD_STORAGE)
        client.get_dataset(dataset.dataset_hash).link_items([item])
        project = client.get_project(client.create_project("relay", [dataset.dataset_hash]))
        (row,) = project.list_label_rows_v2()
        row.initialise_labels()
        row.save()
        row.workflow_complete()
        assert sandbox.webhooks.wait_idle()
        assert [d["status"] for d in sandbox.webhooks.deliveries()] == ["DELIVERED", "DELIVERED"]

    events = _events(f"encord.label-row.{row.label_hash}", [TASK_SUBMITTED_EVENT, TASK_COMPLETED_EVENT], 2)
    assert [e.event for e in events] == [TASK_SUBMITTED_EVENT, TASK_COMPLETED_EVENT]
    assert {e.resource["encord.project-hash"] for e in events} == {project.project_hash}
    assert {e.resource["encord.data-hash"] for e in events} == {row.data_hash}


def test_our_own_event_name_is_distinct() -> None:
    assert LABELS_COMPLETED_EVENT == "prefect-encord.labels.completed"
    assert len({LABELS_COMPLETED_EVENT, TASK_SUBMITTED_EVENT, TASK_COMPLETED_EVENT}) == 3
