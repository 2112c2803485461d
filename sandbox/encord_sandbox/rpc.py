"""The legacy v1 RPC endpoint (``POST /public`` and ``/public/user``) and its dispatcher.

The SDK names the operation in the body (``query_type`` = a lowercased class name, ``query_method``)
and the resource in unsigned ``ResourceType``/``ResourceID`` headers, so each handler declares the
resource type and roles it needs and the dispatcher checks the caller's role *before* the handler
runs. Answers travel in the ``{"status": 200, "response": ...}`` envelope; errors as a one-element
code list with the message in ``payload`` (see :mod:`encord_sandbox.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from encord_sandbox.backend import Backend
from encord_sandbox.deps import Authenticated, Caller, backend_of
from encord_sandbox.errors import InvalidArgument, SandboxError, parse_uuid
from encord_sandbox.organisation import access
from encord_sandbox.organisation import models as organisation_models

router = APIRouter()


@dataclass(frozen=True)
class Call:
    """One v1 call, authorised: who, on which resource, with what uid and payload."""

    backend: Backend
    user: str
    resource: str
    uid: Any
    payload: Any

    def payload_dict(self) -> dict[str, Any]:
        if self.payload is None:
            return {}
        if not isinstance(self.payload, dict):
            raise InvalidArgument(f"payload must be an object, got {self.payload!r}")
        return self.payload


Handler = Callable[[Call], Any]
HANDLERS: dict[tuple[str, str], tuple[str | None, Collection[int], Handler]] = {}


def handles(
    query_type: str, method: str, resource_type: str | None, roles: Collection[int] = ()
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[(query_type, method)] = (resource_type, roles, handler)
        return handler

    return register


def envelope_error(exc: SandboxError) -> JSONResponse:
    """The v1 error envelope; an error may carry a structured payload (``v1_payload``) the SDK reads."""
    payload = getattr(exc, "v1_payload", None) or exc.message
    return JSONResponse({"status": exc.status, "response": [exc.v1_code], "payload": payload})


@router.post("/public")
@router.post("/public/user")
def rpc(request: Request, caller: Caller = Authenticated) -> JSONResponse:
    backend = backend_of(request)
    body = caller.json()
    if not isinstance(body, dict) or "query_type" not in body or "query_method" not in body:
        raise InvalidArgument("a v1 request needs query_type, query_method and values")
    key = (str(body["query_type"]), str(body["query_method"]))
    if key not in HANDLERS:
        raise InvalidArgument(f"the sandbox does not serve {key[0]}/{key[1]}")
    resource_type, roles, handler = HANDLERS[key]
    values = body.get("values") or {}
    resource = request.headers.get("ResourceID", "")
    if resource_type is not None:
        if request.headers.get("ResourceType", "") != resource_type or not resource:
            raise InvalidArgument(f"{key[0]}/{key[1]} needs ResourceType {resource_type!r} and a ResourceID")
        resource = parse_uuid(resource, resource_type)
        access.require(backend.store, resource_type, resource, caller.user, roles)
    call = Call(backend, caller.user, resource, values.get("uid"), values.get("payload"))
    return JSONResponse({"status": 200, "response": handler(call)})


def add_members(
    call: Call, resource_type: str, roles: dict[int, str], may_grant: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """Give the call's ``user_emails`` the ``user_role`` on its dataset or project (``resource_type``), creating
    users as needed; ``may_grant`` refuses a role the caller may not give."""
    payload = call.payload_dict()
    emails, role = payload.get("user_emails"), payload.get("user_role")
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise InvalidArgument(f"user_emails {emails!r} must be a list of email addresses")
    if role not in roles:
        raise InvalidArgument(f"user_role {role!r} is not one of {sorted(roles)}")
    if may_grant is not None:
        may_grant(role)
    store = call.backend.store
    for email in emails:
        access.grant(store, resource_type, call.resource, organisation_models.ensure_user(store, email), role)
    return [{"user_email": e, "user_role": role, f"{resource_type}_hash": call.resource} for e in emails]
