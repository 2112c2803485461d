"""The FastAPI application: authentication on every API call, SDK-shaped errors, the routers.

The SDK treats anything but 200/204 as an error on v2 (201 included) and expects 400, not
FastAPI's 422, for bad input; v1 RPC answers travel in an envelope. Both are enforced here so
routers only deal with rules.
"""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from encord_sandbox import access, datasets, labels, projects
from encord_sandbox.auth import AuthError, SignedRequest, authenticate
from encord_sandbox.blobs import BlobStore
from encord_sandbox.chaos import Chaos, ChaosConfig
from encord_sandbox.errors import InvalidArgument, SandboxError, StorageUnavailable, Unauthenticated
from encord_sandbox.jobs import JobRunner
from encord_sandbox.store import STORE_FILE_NAME, Store

RPC_PATHS = ("/public", "/public/user")


class Backend:
    """Everything a request may touch: state, blobs and the job runner of one data directory."""

    def __init__(
        self, data_dir: Path, job_workers: int = 4, latency_ms: float = 0.0, chaos: ChaosConfig | None = None
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.latency_seconds = latency_ms / 1000
        self.chaos = Chaos(chaos) if chaos is not None else None
        self.store = Store(data_dir / STORE_FILE_NAME)
        for ddl in (access.DDL, datasets.DDL, projects.DDL, labels.DDL):
            self.store.ensure_schema(ddl)
        self.blobs = BlobStore(data_dir / "blobs", BlobStore.load_or_create_secret(data_dir / "url-signing.secret"))
        self.runner = JobRunner(self.store, self.blobs, self.metadata_schema, workers=job_workers, chaos=self.chaos)

    def metadata_schema(self) -> dict[str, Any] | None:
        row = self.store.metadata_schema("v2")
        return json.loads(row["body"]) if row else None

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()


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
        user = authenticate(signed, backend.store.user_for_key, time.time(), allow_v1=not raw_path.startswith("/v2/"))
    except AuthError as exc:
        raise Unauthenticated(str(exc)) from exc
    return Caller(user=user, body=body, base_url=str(request.base_url).rstrip("/"))


Authenticated = Depends(caller)


#: OS errors that mean the data directory cannot be written (full, read-only, over quota, not a directory …).
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
                   errno.EFBIG, errno.EIO, errno.ENOENT}  # fmt: skip
#: What SQLite says when its file cannot be written (its error names are Python ≥ 3.11 only).
_SQLITE_STORAGE_MESSAGES = ("disk", "readonly", "unable to open", "no such file")


def _is_storage_failure(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_STORAGE_MESSAGES)
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS


def create_app(backend: Backend) -> FastAPI:
    from encord_sandbox.api import annotate, blobs, organisation, rpc, storage

    app = FastAPI(title="Encord sandbox", docs_url="/docs", openapi_url="/openapi.json")
    app.state.backend = backend

    @app.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        if request.url.path in RPC_PATHS:
            return rpc.envelope_error(exc)
        return JSONResponse(status_code=exc.status, content={"message": exc.message, "detail": exc.message})

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.OperationalError)
    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        """A write to the data directory failed: say which directory and why, not "Internal Server Error".

        Other errors of these types (a lost connection, a locked database) stay what they are: a bug's 500.
        """
        if not _is_storage_failure(exc):
            raise exc
        reason = getattr(exc, "strerror", None) or str(exc)
        problem = StorageUnavailable(f"the sandbox cannot write its data directory {backend.data_dir}: {reason}")
        return await sandbox_error(request, problem)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        if request.url.path in RPC_PATHS:
            return rpc.envelope_error(InvalidArgument(problems))
        return JSONResponse(status_code=400, content={"message": problems, "detail": problems})

    if backend.latency_seconds > 0:

        @app.middleware("http")
        async def simulated_latency(request: Request, call_next: Any) -> Any:
            """Delay every answer, so benchmarks see the cost of a round trip as on a real network."""
            await asyncio.sleep(backend.latency_seconds)
            return await call_next(request)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (storage, organisation, blobs, annotate, rpc):
        app.include_router(module.router)
    return app
