"""Chaos mode: the sandbox misbehaves the way a busy service and a flaky network do, reproducibly.

Enabled with ``Sandbox(..., chaos=ChaosConfig(...))`` or ``encord-sandbox serve --chaos-seed N
--chaos-error-rate 0.05 …``. Each API request the config covers draws at most one fault:

* **error**: answered ``503`` before its handler runs, so it had no effect;
* **throttle**: answered ``429`` with ``Retry-After: <retry_after_seconds>``, before its handler runs;
* **drop**: the connection is closed without any answer. Before the handler runs, except for requests
  matching ``lost_answer_routes`` (by default the one that *starts a data-upload job*): there the handler
  runs and only its answer is lost, so the client cannot know whether the write happened. That is the
  real-world case worth proving for writes the SDK never retries (job starts; with ``lost_answer_routes=
  (".",)``, every create and link too);
* **slow**: answered normally after ``slow_seconds``.

And inside the job runner:

* **unit failure**: a unit fails with a transient error (a storage read timeout) and stores nothing. It is
  transient: the same unit (same title, else URL) succeeds when it is registered again;
* **poll timeout**: a long poll answers at once with the job's current state (``PENDING`` while it runs)
  instead of holding the request until the job finishes.

No fault ever corrupts state: every fault but a lost answer happens before the handler, and that one
after it completes. Unsigned routes (health, docs, ``/_chaos``) are never touched unless
``include_health``; signed-URL blob transfers are, unless ``include_blobs`` is off.

**Reproducible** means: for one seed, the *n*-th request of each stream (method plus path with ids
replaced by ``{id}``, e.g. ``GET /v2/public/storage/folders/{id}/data-upload-jobs/{id}``) always draws the
same fault, and the units that fail are always the same ones (a pure function of seed and unit). When a
client sends requests of one stream concurrently (parallel PUTs), the sequence of faults is the same but
which of the concurrent requests gets which depends on their arrival order; faults per stream and in total
are the same when the client's request sequence is. ``GET /_chaos`` reports what was injected.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

STATS_PATH = "/_chaos"
_UNSIGNED_PATHS = ("/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", STATS_PATH)
_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: The stream whose drops lose the answer by default: starting a data-upload job.
JOB_START_ROUTE = r"^POST /v2/public/storage/folders/\{id\}/data-upload-jobs$"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _option(flag: str, help: str, **more: Any) -> dict[str, Any]:
    """A field's command-line option (``encord-sandbox serve``), declared with the field itself."""
    return {"flag": flag, "help": help, **more}


@dataclass(frozen=True)
class ChaosConfig:
    """What share of requests and units misbehave, and how. Rates are probabilities per request (or unit).

    Each field declares its ``encord-sandbox serve`` option in its metadata, and the command line is built from
    them (:mod:`encord_sandbox.cli`): one place per setting.
    """

    seed: int = field(default=0, metadata=_option("--chaos-seed", "seed of the fault generators (turns chaos on)"))
    error_rate: float = field(default=0.0, metadata=_option("--chaos-error-rate", "answer 503 before the handler"))
    throttle_rate: float = field(default=0.0, metadata=_option("--chaos-throttle-rate", "answer 429 with Retry-After"))
    retry_after_seconds: int = field(default=1, metadata=_option("--chaos-retry-after", "Retry-After seconds of a 429"))
    drop_rate: float = field(
        default=0.0, metadata=_option("--chaos-drop-rate", "close without an answer (see --chaos-lost-answer-route)")
    )
    slow_rate: float = field(default=0.0, metadata=_option("--chaos-slow-rate", "answer after --chaos-slow-seconds"))
    slow_seconds: float = field(default=2.0, metadata=_option("--chaos-slow-seconds", "delay of a slow answer"))
    unit_failure_rate: float = field(
        default=0.0, metadata=_option("--chaos-unit-failure-rate", "units failing once, transiently")
    )
    poll_timeout_rate: float = field(
        default=0.0, metadata=_option("--chaos-poll-timeout-rate", "long polls answering at once")
    )
    #: Regular expressions searched in ``"METHOD /path"``; a request is covered if one matches. Empty: all.
    routes: tuple[str, ...] = field(
        default=(), metadata=_option("--chaos-route", "regex on 'METHOD /path' of covered requests (repeatable)")
    )
    include_blobs: bool = field(
        default=True, metadata=_option("--chaos-spare-blobs", "never touch signed-URL transfers")
    )
    include_health: bool = False
    #: Regular expressions searched in ``"METHOD /path"``: a dropped request matching one is dropped *after*
    #: its handler ran (a lost answer). Empty: every drop comes before the handler.
    lost_answer_routes: tuple[str, ...] = field(
        default=(JOB_START_ROUTE,),
        metadata=_option(
            "--chaos-lost-answer-route",
            "regex on 'METHOD /path' whose drops come after the handler ran (repeatable; default: job starts)",
            empty_flag="--chaos-no-lost-answers",
            empty_help="every drop comes before the handler",
        ),
    )
    #: Stop injecting after this many faults of any kind (None: never), e.g. to drop exactly one job start.
    max_faults: int | None = field(
        default=None, metadata=_option("--chaos-max-faults", "stop after this many faults", type=int)
    )

    def __post_init__(self) -> None:
        rates = {name: value for name, value in asdict(self).items() if name.endswith("_rate")}
        for name, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"chaos {name} {value} must be between 0 and 1")
        request_rates = self.error_rate + self.throttle_rate + self.drop_rate + self.slow_rate
        if request_rates > 1.0:
            raise ValueError(f"chaos error, throttle, drop and slow rates add up to {request_rates:g}, more than 1")
        if self.retry_after_seconds < 0 or self.slow_seconds < 0:
            raise ValueError("chaos retry_after_seconds and slow_seconds cannot be negative")
        for pattern in (*self.routes, *self.lost_answer_routes):
            try:  # a bad pattern fails here, at start-up, not on the first request
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"chaos route {pattern!r} is not a regular expression: {error}") from None


@dataclass(frozen=True)
class Fault:
    """One drawn fault: its kind (error, throttle, drop, slow) and, for a drop, whether the handler runs first."""

    kind: str
    after_handler: bool = False


class Chaos:
    """Draws faults from seeded per-stream generators and counts what it injected; safe across threads."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self._routes = [re.compile(pattern) for pattern in config.routes]
        self._lost_answer_routes = [re.compile(pattern) for pattern in config.lost_answer_routes]
        self._streams: dict[str, random.Random] = {}
        self._failed_units: set[str] = set()
        self._injected: Counter[str] = Counter()
        self._requests = 0
        self._transfers = 0
        self._covered = 0
        self._lock = threading.Lock()

    def draw(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any; every request is counted."""
        stream = f"{method} {_ID.sub('{id}', path)}"
        with self._lock:
            self._requests += 1
            self._transfers += path.startswith("/_blobs/")
            if not self._covers(stream, path):
                return None
            self._covered += 1
            kind = self._kind(self._stream(stream).random())
            after = kind == "drop" and any(route.search(stream) for route in self._lost_answer_routes)
            if kind is None or not self._spend("lost_answer" if after else kind):
                return None
        return Fault(kind, after_handler=after)

    def unit_failure(self, unit_key: str) -> str | None:
        """The transient error a unit fails with on its first attempt, or None. A pure function of seed and key."""
        digest = hashlib.sha256(f"{self.config.seed}/unit/{unit_key}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.config.unit_failure_rate:
            return None
        with self._lock:
            if unit_key in self._failed_units or not self._spend("unit_failure"):
                return None
            self._failed_units.add(unit_key)
        return (
            f"{unit_key}: timed out reading the object from storage (sandbox chaos: a transient fault); "
            "registering it again will succeed"
        )

    def poll_times_out(self) -> bool:
        """Whether this long poll answers at once instead of waiting for the job."""
        with self._lock:
            timed_out = self._stream("long-poll").random() < self.config.poll_timeout_rate
            return timed_out and self._spend("poll_timeout")

    def stats(self) -> dict[str, Any]:
        """Requests seen (``transfers`` of them to signed blob URLs), requests the config covers, and faults
        injected by kind (a request dropped after its handler ran is ``lost_answer``; any other, ``drop``)."""
        with self._lock:
            return {
                "seed": self.config.seed,
                "requests": self._requests,
                "transfers": self._transfers,
                "covered": self._covered,
                "faults": dict(sorted(self._injected.items())),
            }

    def _covers(self, stream: str, path: str) -> bool:
        if path in _UNSIGNED_PATHS or path.startswith("/docs"):
            return self.config.include_health and path != STATS_PATH
        if path.startswith("/_blobs/") and not self.config.include_blobs:
            return False
        return not self._routes or any(route.search(stream) for route in self._routes)

    def _kind(self, roll: float) -> str | None:
        bands = (
            ("error", self.config.error_rate),
            ("throttle", self.config.throttle_rate),
            ("drop", self.config.drop_rate),
            ("slow", self.config.slow_rate),
        )
        for kind, rate in bands:
            if roll < rate:
                return kind
            roll -= rate
        return None

    def _spend(self, kind: str) -> bool:
        """Count a fault of ``kind`` unless the budget (``max_faults``) is used up. Call with the lock held."""
        if self.config.max_faults is not None and sum(self._injected.values()) >= self.config.max_faults:
            return False
        self._injected[kind] += 1
        return True

    def _stream(self, name: str) -> random.Random:
        if name not in self._streams:
            self._streams[name] = random.Random(f"{self.config.seed}/{name}")
        return self._streams[name]


class ChaosMiddleware:
    """ASGI wrapper injecting :class:`Chaos` faults around the sandbox app; also serves ``GET /_chaos``.

    It must wrap the app *outside* Starlette's own middleware, so that ``send`` is uvicorn's: dropping a
    connection needs uvicorn's transport, which only its ``send`` carries.
    """

    def __init__(self, app: ASGIApp, chaos: Chaos) -> None:
        self.app = app
        self.chaos = chaos

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STATS_PATH and scope["method"] == "GET":
            await _answer(send, 200, self.chaos.stats())
            return
        fault = self.chaos.draw(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "slow":
            await asyncio.sleep(self.chaos.config.slow_seconds)
            await self.app(scope, receive, send)
        elif fault.after_handler:
            await self.app(scope, receive, _discard)
            await _drop(send)
        else:
            await self._refuse(fault, receive, send)

    async def _refuse(self, fault: Fault, receive: Receive, send: Send) -> None:
        """Answer (or drop) without running the handler, after reading the body as a real server would."""
        await _drain(receive)
        if fault.kind == "drop":
            await _drop(send)
        elif fault.kind == "throttle":
            seconds = self.chaos.config.retry_after_seconds
            await _answer(send, 429, _error_body(429, "rate limit exceeded"), {"retry-after": str(seconds)})
        else:
            await _answer(send, 503, _error_body(503, "service temporarily unavailable"))


def _error_body(status: int, what: str) -> dict[str, Any]:
    """A body both SDK halves read: v2 takes ``message``/``detail``, v1 the ``status``/``response`` envelope."""
    message = f"sandbox chaos: {what}; nothing was done, try again"
    return {"message": message, "detail": message, "status": status, "response": ["UNKNOWN_ERROR"], "payload": message}


async def _answer(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _discard(message: Message) -> None:
    """A ``send`` that loses the answer: the handler ran, the client will never hear of it."""


async def _drop(send: Send) -> None:
    """Close the connection without a byte of answer; the client sees "closed without response"."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("chaos drops need the sandbox's uvicorn server (its send carries the transport)")
    transport.close()
    await asyncio.sleep(0)  # let uvicorn see the connection is lost, so it does not try to answer
