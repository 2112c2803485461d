"""The FastAPI application: SDK-shaped errors and every area's router (each call authenticated in :mod:`.deps`).

The SDK treats anything but 200/204 as an error on v2 (201 included) and expects 400, not
FastAPI's 422, for bad input; v1 RPC answers travel in an envelope. Both are enforced here so
routers only deal with rules.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from encord_sandbox import rpc
from encord_sandbox.backend import Backend
from encord_sandbox.datasets import routes as dataset_routes
from encord_sandbox.errors import InvalidArgument, SandboxError, StorageUnavailable
from encord_sandbox.labels import routes as label_routes
from encord_sandbox.organisation import routes as organisation_routes
from encord_sandbox.projects import routes as project_routes
from encord_sandbox.storage import blob_routes
from encord_sandbox.storage import routes as storage_routes
from encord_sandbox.syncs import routes as sync_routes

#: Every area's router; the v1 RPC router last, after the areas registered their RPC handlers on import.
ROUTERS = (
    storage_routes.router,
    sync_routes.router,
    blob_routes.router,
    organisation_routes.router,
    dataset_routes.router,
    project_routes.router,
    label_routes.router,
    rpc.router,
)

RPC_PATHS = ("/public", "/public/user")


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
    from encord_sandbox import rpc

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

    for router in ROUTERS:
        app.include_router(router)
    return app
