"""The webhook relay: a small ASGI app that turns Encord workflow webhooks, and bucket notifications, into
Prefect events.

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
message naming the problem; if this process cannot emit Prefect events (no Prefect API configured: events
sent into a temporary server of its own would be lost), 503, so the sender retries later. A webhook of many
rows is sent in bounded batches (:data:`EMIT_BATCH` events, then the relay waits until the server has stored
them), so a burst never overflows the Prefect server's event queues, which drop what does not fit.

``POST /buckets/notifications`` takes the notifications of S3 (through SNS, EventBridge or a forwarder), GCS
(Pub/Sub push) and Azure (Event Grid), read by :mod:`prefect_encord.planning.notifications`, and batches their
keys into :data:`~prefect_encord.events.names.BUCKET_OBJECTS_CHANGED_EVENT` events (see
:mod:`~prefect_encord.events.bucket_notifications`).
It answers Event Grid's validation handshake with its code, confirms an
SNS subscription by visiting its URL when that URL is Amazon's (``https://sns.<region>.amazonaws.com``).

Every route but ``/healthz`` is guarded by the relay's token (``PREFECT_ENCORD_RELAY_TOKEN``, or the older
``PREFECT_ENCORD_NOTIFICATION_TOKEN``; never a command-line argument, which any process list shows): a request
that does not carry it as ``?token=`` or the ``X-Prefect-Encord-Token`` header is refused (401). Give the token
in the URL each sender posts to (Encord's workflow webhooks are not signed, so the URL's token is their only
proof). :func:`serve` refuses to listen beyond loopback without a token, and to start without a Prefect API.
Bodies are bounded (:mod:`prefect_encord.planning.bounded_json`): too large is 413, too deep 400.

Run it with :func:`serve` or, in tests and embedded use, :class:`RelayServer` (a background thread on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prefect.context import FlowRunContext, TaskRunContext
from prefect.events import emit_event
from prefect.events.worker import EventsWorker, should_emit_events
from prefect.settings import PREFECT_API_URL

from prefect_encord.events.bucket_notifications import DEFAULT_WITHIN_SECONDS, KeyBatch, NotificationBatcher
from prefect_encord.events.encord_webhooks import EVENT_NAMES, EncordWebhook, WebhookRejected, parse_webhook
from prefect_encord.events.names import (
    BUCKET_OBJECTS_CHANGED_EVENT,
    bucket_resource,
    data_unit_resource,
    label_row_resource,
    project_resource,
)
from prefect_encord.events.notification_probe import emit_probe
from prefect_encord.events.sns_signatures import SignatureRefused, SnsVerifier
from prefect_encord.planning.bounded_json import BodyRefused, check_depth, check_size
from prefect_encord.planning.notifications import (
    NotificationError,
    SubscriptionConfirmation,
    ValidationRequest,
    parse_notification,
)
from prefect_encord.planning.objects import is_probe
from prefect_encord.planning.sns_messages import is_sns_message, is_sns_url

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/encord/webhook"
NOTIFICATIONS_PATH = "/buckets/notifications"
RELAY_TOKEN_ENV = "PREFECT_ENCORD_RELAY_TOKEN"
NOTIFICATION_TOKEN_ENV = "PREFECT_ENCORD_NOTIFICATION_TOKEN"  # its older name, when it guarded one route
#: Events sent before the relay waits for the server to store them: the Prefect server queues at most 10,000
#: per subscriber and drops the rest (prefect.server.utilities.messaging.memory), so a webhook of 20,000 rows
#: sent at once lost half of them.
EMIT_BATCH = 1_000
#: How long the relay waits for one batch to be stored before it sends the next anyway (and says so).
STORED_TIMEOUT_SECONDS = 120.0
_EVENT_ID_NAMESPACE = uuid.UUID("1d3c2f7e-52a4-4f0e-9a43-8f3c5d9b1a6e")
_REMEMBERED = 10_000
_relayed: OrderedDict[uuid.UUID, dict[str, Any]] = OrderedDict()
_relayed_lock = threading.Lock()
T = TypeVar("T")


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
        if len(emitted) % EMIT_BATCH == 0:
            _wait_until_stored(name, webhook.uid, len(emitted))
    logger.info("relayed %s for %d label rows of project %s", webhook.event_type, len(emitted), project_hash)
    return emitted


def _wait_until_stored(name: str, webhook_uid: str, count: int) -> None:
    """Wait until the Prefect server holds ``count`` events of this webhook: the flow control its queues lack."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.schemas.events import ResourceSpecification

    EventsWorker.instance().wait_until_empty()  # sent, first
    stored_filter = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(labels=ResourceSpecification({"encord.webhook-uid": webhook_uid})),
    )
    deadline = time.monotonic() + STORED_TIMEOUT_SECONDS
    with get_client(sync_client=True) as client:
        while (stored := client.read_events(filter=stored_filter, limit=1).total) < count:
            if time.monotonic() > deadline:
                logger.warning("the Prefect server holds %d of %d events of webhook %s; sending on", stored, count,
                               webhook_uid)  # fmt: skip
                return
            time.sleep(0.5)


def emit_batch(batch: KeyBatch) -> None:
    """Emit one bucket batch as a Prefect event (its id derived from its keys: a batch sent twice is stored once)."""

    def send() -> None:
        event = emit_event(
            BUCKET_OBJECTS_CHANGED_EVENT,
            resource=bucket_resource(batch.cloud, batch.bucket),
            occurred=datetime.now(timezone.utc),
            payload={"cloud": batch.cloud, "bucket": batch.bucket, "object_keys": list(batch.keys)},
            id=batch.event_id,
        )
        if event is None:
            logger.error("%d keys of bucket %s were not relayed: no Prefect API", len(batch.keys), batch.bucket)
        else:
            logger.info("relayed %d changed keys of %s bucket %s", len(batch.keys), batch.cloud, batch.bucket)

    _outside_any_run(send)


def _notification(body: bytes, batcher: NotificationBatcher, sns: SnsVerifier, refused: Counter[str]) -> JSONResponse:
    """Answer one bucket notification delivery: its handshake, or accept its keys into the batcher. An SNS message
    must carry SNS's signature, checked first: a forged or replayed one is refused (403) and counted."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None  # parse_notification says what is wrong with it
    if is_sns_message(document):
        try:
            sns.verify(document)
        except SignatureRefused as exc:
            refused["sns"] += 1
            raise WebhookRejected(403, f"SNS message refused: {exc}") from None
    try:
        parsed = parse_notification(body)
    except NotificationError as exc:
        raise WebhookRejected(400, str(exc)) from None
    if isinstance(parsed, ValidationRequest):
        return JSONResponse({"validationResponse": parsed.code})
    if isinstance(parsed, SubscriptionConfirmation):
        _confirm(parsed)
        return JSONResponse({"confirmed": parsed.topic_arn})
    probes = [notice for notice in parsed if is_probe(notice.key)]
    for probe in probes:  # announced at once and never batched: a probe is not ingested
        _outside_any_run(partial(emit_probe, probe))
    news = batcher.add(notice for notice in parsed if not is_probe(notice.key))
    return JSONResponse(status_code=202, content={"accepted": len(parsed), "new": news, "probes": len(probes)})


def _confirm(confirmation: SubscriptionConfirmation) -> None:
    if not is_sns_url(confirmation.subscribe_url):
        raise WebhookRejected(400, f"SubscribeURL {confirmation.subscribe_url!r} is not Amazon SNS's: not visited")
    response = httpx.get(confirmation.subscribe_url, timeout=30)
    if not response.is_success:
        raise WebhookRejected(502, f"SNS answered {response.status_code} to the subscription confirmation")


def relay_token(given: str | None = None) -> str | None:
    """The token every request must carry: ``given``, else the environment's; None accepts any request."""
    return given or os.environ.get(RELAY_TOKEN_ENV) or os.environ.get(NOTIFICATION_TOKEN_ENV) or None


async def _checked_body(request: Request, token: str | None) -> bytes:
    """The body of a request that carries the token and that the relay can pass on, read within its bounds.

    Raises:
        WebhookRejected: 401 without the token, 503 without a Prefect API, 413 or 400 for a body too large or
            too deep, before any of it is parsed.
    """
    given = request.query_params.get("token") or request.headers.get("x-prefect-encord-token") or ""
    if token is not None and not hmac.compare_digest(token.encode(), given.encode()):
        raise WebhookRejected(401, "this relay takes requests only with its token (?token=… in the sender's URL)")
    if not PREFECT_API_URL.value() or not should_emit_events():
        raise WebhookRejected(503, "this relay cannot emit Prefect events: set PREFECT_API_URL (or log in)")
    try:
        declared = request.headers.get("content-length", "")
        check_size(int(declared) if declared.isdigit() else 0)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            check_size(size)
            chunks.append(chunk)
        body = b"".join(chunks)
        check_depth(body)
    except BodyRefused as refused:
        raise WebhookRejected(refused.status, str(refused)) from None
    return body


def create_app(
    within_seconds: float = DEFAULT_WITHIN_SECONDS, token: str | None = None, sns: SnsVerifier | None = None
) -> FastAPI:
    """The relay's ASGI app: ``POST /encord/webhook``, ``POST /buckets/notifications`` and ``GET /healthz``.

    Its lifespan runs the bucket notification batcher: started with the app, and on shutdown every key still
    waiting is emitted.

    Args:
        within_seconds: How long a bucket's first notified key waits for others before its batch is emitted.
        token: The secret every request must carry; None (and none in the environment, see
            :func:`relay_token`) accepts any, which suits a relay listening on loopback only.
        sns: What checks SNS messages' signatures (by default one keeping certificates in the settings'
            directory); the refusals are counted in ``GET /healthz``.
    """
    notifications = NotificationBatcher(emit_batch, within_seconds=within_seconds)
    sns = sns or SnsVerifier()
    refused: Counter[str] = Counter()
    token = relay_token(token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        notifications.start()
        try:
            yield
        finally:
            notifications.stop()

    app = FastAPI(title="Encord webhook relay", lifespan=lifespan)

    @app.post(NOTIFICATIONS_PATH)
    async def receive_notification(request: Request) -> JSONResponse:
        try:
            return _notification(await _checked_body(request, token), notifications, sns, refused)
        except WebhookRejected as exc:
            logger.warning("bucket notification refused (%d): %s", exc.status, exc.message)
            return JSONResponse(status_code=exc.status, content={"message": exc.message, "detail": exc.message})

    @app.post(WEBHOOK_PATH)
    async def receive(request: Request) -> JSONResponse:
        try:
            webhook = parse_webhook(await _checked_body(request, token))
            emitted = await asyncio.to_thread(relay, webhook)  # it waits for its batches to leave
        except WebhookRejected as exc:
            logger.warning("webhook refused (%d): %s", exc.status, exc.message)
            return JSONResponse(status_code=exc.status, content={"message": exc.message, "detail": exc.message})
        return JSONResponse({"emitted": emitted})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "refused": dict(refused)}

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    within_seconds: float = DEFAULT_WITHIN_SECONDS,
    token: str | None = None,
) -> None:
    """Run the relay in the foreground until interrupted (loopback by default).

    Raises:
        ValueError: Before listening, without a Prefect API (the events would go to a temporary server and be
            lost) or, beyond loopback, without a token (anyone who reaches it could start exports).
    """
    if not PREFECT_API_URL.value():
        raise ValueError("the relay needs a Prefect server to send events to: set PREFECT_API_URL")
    if relay_token(token) is None and not _loopback(host):
        raise ValueError(
            f"listening on {host} needs a token, or anyone who reaches the relay could start flows: "
            f"set {RELAY_TOKEN_ENV} and give it as ?token= in the URLs that post to the relay"
        )
    print(f"Encord webhook relay listening on http://{host}:{port}{WEBHOOK_PATH} and {NOTIFICATIONS_PATH}", flush=True)
    try:
        uvicorn.run(create_app(within_seconds, token), host=host, port=port, log_level="warning")
    finally:
        EventsWorker.drain_all(timeout=10)  # send what was emitted before the process goes


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class RelayServer:
    """The relay on a background thread (loopback, a free port by default): ``with RelayServer() as r: r.url``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        within_seconds: float = DEFAULT_WITHIN_SECONDS,
        token: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.within_seconds = within_seconds
        self.token = token
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The webhook URL to give Encord or the sandbox."""
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

    @property
    def notifications_url(self) -> str:
        """The URL bucket notifications are posted to."""
        return f"http://{self.host}:{self.port}{NOTIFICATIONS_PATH}"

    def start(self) -> RelayServer:
        if self.port == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, 0))
                self.port = int(probe.getsockname()[1])
        app = create_app(self.within_seconds, self.token)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        context = contextvars.copy_context()  # the caller's Prefect settings, e.g. a test harness's
        self._thread = threading.Thread(target=context.run, args=(self._server.run,), name="encord-webhook-relay",
                                        daemon=True)  # fmt: skip
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
