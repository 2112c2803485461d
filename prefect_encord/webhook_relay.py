"""The webhook relay: a small ASGI app that turns Encord workflow webhooks into Prefect events.

Point an Encord workflow stage's webhook (or the sandbox's, ``Sandbox(webhook_url=...)``) at
``POST /encord/webhook``. Each documented payload (see :mod:`encord_sandbox.webhooks`) becomes
one Prefect event per label row, which deployment triggers can react to:

* ``task_submitted_event`` → ``encord.task.submitted``; ``task_completed_event`` → ``encord.task.completed``
* resource ``encord.label-row.<label_hash>`` (role ``label-row``), labelled with ``encord.project-hash``,
  ``encord.data-hash``, ``encord.label-hash`` and ``encord.webhook-uid``;
* related resources ``encord.project.<project_hash>`` (role ``project``) and
  ``encord.data-unit.<data_hash>`` (role ``data-unit``);
* the payload is the webhook's fields, its ``event_created_timestamp`` included; ``occurred`` is when the
  relay received it, so a webhook retried hours later (or sent by a skewed clock) still counts as news
  for triggers;
* the event id is derived from the webhook's ``uid`` and the label hash, so a webhook delivered twice
  makes the same event, which Prefect stores once (and this process sends once: it remembers the last
  10,000 ids it relayed).

A body that is not JSON, not an Encord workflow task event or misses a field is answered 400 with a
message naming the problem; if this process cannot emit Prefect events (no Prefect API configured),
503, so the sender retries later. Run it with :func:`serve` or, in tests and embedded use,
:class:`RelayServer` (a background thread on loopback).
"""

from __future__ import annotations

import contextvars
import json
import logging
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefect_encord.events import (
    TASK_COMPLETED_EVENT,
    TASK_SUBMITTED_EVENT,
    data_unit_resource,
    label_row_resource,
    project_resource,
)

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/encord/webhook"
EVENT_NAMES = {
    "task_submitted_event": TASK_SUBMITTED_EVENT,
    "task_sumbitted_event": TASK_SUBMITTED_EVENT,  # the spelling one version of Encord's docs shows
    "task_completed_event": TASK_COMPLETED_EVENT,
}
_EVENT_ID_NAMESPACE = uuid.UUID("1d3c2f7e-52a4-4f0e-9a43-8f3c5d9b1a6e")
_REMEMBERED = 10_000
_relayed: OrderedDict[uuid.UUID, dict[str, Any]] = OrderedDict()
_relayed_lock = threading.Lock()
T = TypeVar("T")


class WebhookPayload(BaseModel):
    """The ``payload`` object of a workflow task event; older docs use ``label_hash``/``data_hash``."""

    model_config = ConfigDict(extra="allow")

    project_hash: str = Field(min_length=1)
    data_hashes: list[str] = Field(default_factory=list)
    label_hashes: list[str] = Field(default_factory=list)
    data_hash: str | None = None
    label_hash: str | None = None

    @field_validator("data_hashes", "label_hashes", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """Encord's docs type ``data_hashes``/``label_hashes`` as string but name them as lists: accept both."""
        return [value] if isinstance(value, str) else value

    def rows(self) -> list[tuple[str, str | None]]:
        """``(label_hash, data_hash)`` pairs; data hashes pair by position when the lists line up."""
        labels = self.label_hashes or ([self.label_hash] if self.label_hash else [])
        data = self.data_hashes or ([self.data_hash] if self.data_hash else [])
        if len(data) == len(labels):
            return list(zip(labels, data, strict=True))
        if len(data) == 1:
            return [(label, data[0]) for label in labels]
        return [(label, None) for label in labels]


class EncordWebhook(BaseModel):
    """An Encord workflow webhook as documented: uid, version, source, event type, timestamp, payload."""

    model_config = ConfigDict(extra="allow")

    uid: str = Field(min_length=1)
    version: int = 1
    source: Literal["Encord"]
    event_type: str
    event_created_timestamp: datetime | None = None
    payload: WebhookPayload


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_webhook(body: bytes) -> EncordWebhook:
    """Validate a webhook body; raises :class:`WebhookRejected` (400) naming what is wrong."""
    try:
        raw = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise WebhookRejected(400, "the body must be a JSON object (an Encord webhook payload)")
    try:
        webhook = EncordWebhook.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise WebhookRejected(400, f"not an Encord webhook payload: {problems}") from exc
    if webhook.event_type not in EVENT_NAMES:
        expected = ["task_submitted_event", "task_completed_event"]
        raise WebhookRejected(400, f"event_type {webhook.event_type!r} is not relayed; expected one of {expected}")
    if not webhook.payload.rows():
        raise WebhookRejected(400, "payload names no label row: label_hashes is empty")
    return webhook


def relay(webhook: EncordWebhook) -> list[dict[str, Any]]:
    """Emit one Prefect event per label row of a validated webhook; returns what was emitted."""
    with _relayed_lock:
        return _outside_any_run(lambda: _emit(webhook))


def _outside_any_run(function: Callable[[], T]) -> T:
    """Run ``function`` in a context that says "no flow or task run".

    Prefect's events worker attaches the flow/task run of the context an event was sent from, but only
    the variables that context sets: if the worker itself was started inside a run (a flow ran earlier
    in this process), that run would be attached to every relayed webhook. Setting them to None
    explicitly keeps webhooks free of unrelated runs.
    """

    def isolated() -> T:
        FlowRunContext.__var__.set(None)  # type: ignore[arg-type]
        TaskRunContext.__var__.set(None)  # type: ignore[arg-type]
        return function()

    return contextvars.copy_context().run(isolated)


def _emit(webhook: EncordWebhook) -> list[dict[str, Any]]:
    name = EVENT_NAMES[webhook.event_type]
    created = webhook.event_created_timestamp
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    project_hash = webhook.payload.project_hash
    emitted = []
    for label_hash, data_hash in webhook.payload.rows():
        event_id = uuid.uuid5(_EVENT_ID_NAMESPACE, f"{webhook.uid}/{label_hash}")
        if event_id in _relayed:  # delivered again: already sent from here
            emitted.append(_relayed[event_id])
            continue
        resource = {
            **label_row_resource(label_hash),
            "encord.project-hash": project_hash,
            "encord.label-hash": label_hash,
            "encord.webhook-uid": webhook.uid,
        }
        related = [project_resource(project_hash)]
        if data_hash:
            resource["encord.data-hash"] = data_hash
            related.append(data_unit_resource(data_hash))
        event = emit_event(
            name,
            resource=resource,
            occurred=datetime.now(timezone.utc),
            related=related,
            payload={
                "uid": webhook.uid,
                "event_type": webhook.event_type,
                "version": webhook.version,
                "project_hash": project_hash,
                "label_hash": label_hash,
                "data_hash": data_hash,
                "event_created_timestamp": created.isoformat() if created else None,
            },
            id=event_id,
        )
        if event is None:
            raise WebhookRejected(503, "this relay cannot emit Prefect events: set PREFECT_API_URL (or log in)")
        _relayed[event_id] = {"id": str(event.id), "event": name, "resource": resource["prefect.resource.id"]}
        while len(_relayed) > _REMEMBERED:
            _relayed.popitem(last=False)
        emitted.append(_relayed[event_id])
    logger.info("relayed %s for %d label rows of project %s", webhook.event_type, len(emitted), project_hash)
    return emitted


def create_app() -> FastAPI:
    """The relay's ASGI app: ``POST /encord/webhook`` and ``GET /healthz``."""
    app = FastAPI(title="Encord webhook relay")

    @app.post(WEBHOOK_PATH)
    async def receive(request: Request) -> JSONResponse:
        try:
            webhook = parse_webhook(await request.body())
            emitted = relay(webhook)
        except WebhookRejected as exc:
            logger.warning("webhook refused (%d): %s", exc.status, exc.message)
            return JSONResponse(status_code=exc.status, content={"message": exc.message, "detail": exc.message})
        return JSONResponse({"emitted": emitted})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(host: str = "127.0.0.1", port: int = 8787) -> None:
    """Run the relay in the foreground until interrupted (loopback by default)."""
    print(f"Encord webhook relay listening on http://{host}:{port}{WEBHOOK_PATH}", flush=True)
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")
    finally:
        EventsWorker.drain_all(timeout=10)  # send what was emitted before the process goes


class RelayServer:
    """The relay on a background thread (loopback, a free port by default): ``with RelayServer() as r: r.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The webhook URL to give Encord or the sandbox."""
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

    def start(self) -> RelayServer:
        if self.port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(create_app(), host=self.host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="encord-webhook-relay", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the webhook relay did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
