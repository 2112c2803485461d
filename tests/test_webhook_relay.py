"""The webhook relay: Encord's workflow webhooks in, Prefect events out (read back from a real Prefect API).

The relay runs for real on loopback (uvicorn in a thread, stopped at the end of the module). Validation
needs no Prefect; emitting runs under ``prefect_harness``, once with a documented payload and once over
the whole offline loop: the SDK saves and completes a label row in a sandbox whose webhooks go to the
relay, and the events are read back from the Prefect API.
"""

from __future__ import annotations

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
from prefect.events.schemas.events import ReceivedEvent

from prefect_encord import webhook_relay
from prefect_encord.events import LABELS_COMPLETED_EVENT, TASK_COMPLETED_EVENT, TASK_SUBMITTED_EVENT
from prefect_encord.webhook_relay import WEBHOOK_PATH, RelayServer, parse_webhook


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
def relay() -> Iterator[httpx.Client]:
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


def test_no_prefect_api_means_503(relay: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_relay, "emit_event", lambda *args, **kwargs: None)
    response = relay.post(WEBHOOK_PATH, json=_webhook())
    assert response.status_code == 503 and "PREFECT_API_URL" in response.json()["message"]


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
