"""Request counting for task tests: every SDK call (requests) and every signed-URL transfer (httpx)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests.adapters
from prefect.settings import PREFECT_API_URL


@dataclass
class HttpLog:
    """``(method, path)`` of every request sent, split into Encord API calls and object-storage transfers."""

    api: list[tuple[str, str]] = field(default_factory=list)
    transfers: list[tuple[str, str]] = field(default_factory=list)

    def calls(self, method: str, path_suffix: str) -> int:
        return sum(1 for m, p in self.api if m == method and p.endswith(path_suffix))


@pytest.fixture
def http_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpLog]:
    log = HttpLog()
    sdk_send = requests.adapters.HTTPAdapter.send
    httpx_send = httpx.HTTPTransport.handle_request
    # The patch is process-wide: a thread an earlier test left running (a Prefect worker, a straggling pool)
    # must not be counted. Threads this test starts, and the test's own thread, are.
    earlier = {t.ident for t in threading.enumerate()} - {threading.get_ident()}

    def ours() -> bool:
        return threading.get_ident() not in earlier

    def record_sdk(self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        if ours():
            log.api.append((str(request.method), urlsplit(str(request.url)).path))
        return sdk_send(self, request, **kwargs)

    prefect_api = urlsplit(str(PREFECT_API_URL.value() or "")).netloc

    def record_httpx(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if ours() and request.url.netloc.decode() != prefect_api:  # the folder's server lock is not a transfer
            log.transfers.append((request.method, request.url.path))
        return httpx_send(self, request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", record_sdk)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", record_httpx)
    yield log
