"""The sandbox's own "bucket": PUT and GET on URLs it signed (the routes in docs/sandbox.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from encord_sandbox.backend import Backend
from encord_sandbox.deps import backend_of
from encord_sandbox.errors import Forbidden, NotFound

router = APIRouter(prefix="/_blobs")

MAX_UPLOAD_BYTES = 5 * 1024**3


def _check(request: Request, key: str, op: str) -> Backend:
    backend = backend_of(request)
    params = request.query_params
    if params.get("op") != op:
        raise Forbidden(f"this URL was not signed for {op.upper()}")
    backend.blobs.check(key, op, params.get("expires", ""), params.get("sig", ""))
    return backend


@router.put("/{key}")
async def put_blob(key: str, request: Request) -> Response:
    backend = _check(request, key, "put")
    data = await request.body()
    if len(data) > MAX_UPLOAD_BYTES:
        raise Forbidden(f"upload of {len(data)} bytes exceeds the sandbox's limit")
    backend.blobs.write(key, data)
    return Response(status_code=200)


@router.get("/{key}")
def get_blob(key: str, request: Request) -> Response:
    backend = _check(request, key, "get")
    data = backend.blobs.read(key)
    if data is None:
        raise NotFound(f"blob {key} does not exist")
    return Response(content=data, media_type="application/octet-stream")
