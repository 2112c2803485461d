"""Request dependencies: the sandbox behind a request, its authenticated caller, and query-string reading as
the SDK writes it (booleans as ``True``/``False``, lists as repeated keys)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from encord_sandbox.auth import AuthError, SignedRequest, authenticate
from encord_sandbox.backend import Backend
from encord_sandbox.datasets.models import TitleFilters
from encord_sandbox.errors import InvalidArgument, Unauthenticated
from encord_sandbox.organisation import models as organisation_models


@dataclass(frozen=True)
class Caller:
    """An authenticated request: who sent it, its raw body, and the sandbox's own base URL."""

    user: str
    body: bytes
    base_url: str

    def json(self) -> Any:
        try:
            value = json.loads(self.body or b"null")
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"request body is not valid JSON: {exc}") from exc
        _refuse_lone_surrogates(value)
        return value


def _refuse_lone_surrogates(value: Any) -> None:
    """JSON may escape half a UTF-16 pair (``"\\udce9"``); no name, title or URL can store it, so say so."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(f"{value!r} is not valid Unicode text") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key)
            _refuse_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_lone_surrogates(item)


def backend_of(request: Request) -> Backend:
    """The sandbox behind the app that serves ``request``."""
    backend: Backend = request.app.state.backend
    return backend


async def caller(request: Request) -> Caller:
    """FastAPI dependency: verify the request's signature and name its user (401 otherwise)."""
    backend = backend_of(request)
    body = await request.body()
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    signed = SignedRequest(
        method=request.method,
        target=raw_path + ("?" + query if query else ""),
        headers=dict(request.headers),
        body=body,
    )
    try:
        user = authenticate(
            signed,
            lambda key: organisation_models.user_for_key(backend.store, key),
            time.time(),
            allow_v1=not raw_path.startswith("/v2/"),
        )
    except AuthError as exc:
        raise Unauthenticated(str(exc)) from exc
    return Caller(user=user, body=body, base_url=str(request.base_url).rstrip("/"))


Authenticated = Depends(caller)


#: The longest a long poll holds a request: well below the SDK's 180 s read timeout.
LONG_POLL_CAP_SECONDS = 50.0


def hold_long_poll(request: Request, finished: Callable[[], bool]) -> None:
    """Hold a long poll (a data-upload job's, a cloud sync's) until ``finished()`` or the ``timeoutSeconds`` the
    caller asked for, at most :data:`LONG_POLL_CAP_SECONDS`."""
    raw = request.query_params.get("timeoutSeconds", "60")
    try:
        timeout = min(max(float(raw), 0.0), LONG_POLL_CAP_SECONDS)
    except ValueError as exc:
        raise InvalidArgument(f"timeoutSeconds {raw!r} is not a number") from exc
    backend_of(request).runner.wait(finished, timeout)


def flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"query parameter {name}={value!r} is not a boolean")


def page_size(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("pageSize", str(default))
    try:
        size = int(raw)
    except ValueError as exc:
        raise InvalidArgument(f"pageSize {raw!r} is not an integer") from exc
    if not 1 <= size <= 1000:
        raise InvalidArgument(f"pageSize {size} must be between 1 and 1000")
    return size


def order(request: Request) -> str:
    value = request.query_params.get("order", "name")
    if value not in ("name", "createdAt"):
        raise InvalidArgument(f"order {value!r} must be 'name' or 'createdAt'")
    return value


def json_object_body(caller: Caller) -> dict[str, Any]:
    body = caller.json()
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


def title_filters(request: Request, description: str) -> TitleFilters:
    """The listing filters as the SDK spells them; ``description`` is the key stem (datasets and projects differ)."""
    query = request.query_params
    flag(request, "includeOrgAccess")  # validated only: the sandbox has no organisation admins
    return TitleFilters(
        title_eq=query.get("titleEq"),
        title_like=query.get("titleLike"),
        description_eq=query.get(f"{description}Eq"),
        description_like=query.get(f"{description}Like"),
        created_before=query.get("createdBefore"),
        created_after=query.get("createdAfter"),
        edited_before=query.get("editedBefore"),
        edited_after=query.get("editedAfter"),
    )
