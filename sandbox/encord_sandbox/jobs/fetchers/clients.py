"""What the cloud fetchers share: timeouts, retries and one client per integration configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from encord_sandbox.jobs.integrations import IntegrationConfig

CONNECT_TIMEOUT_S = 10.0
#: Per socket read, not per object: large videos stream for longer than this without tripping it.
READ_TIMEOUT_S = 60.0
RETRY_ATTEMPTS = 3
#: Integrations are few; the bound only stops a churn of edited configs from keeping old clients alive.
CLIENT_CACHE_SIZE = 32

_client_lock = threading.Lock()
_Client = TypeVar("_Client")


def cached_client(factory: Callable[[IntegrationConfig], _Client], config: IntegrationConfig) -> _Client:
    """Build each config's client once even when many worker threads ask at the same moment.

    The lru_caches are thread-safe for their own bookkeeping but would let two threads both run the
    factory; the lock makes the first build the only one. Built clients are used concurrently without it:
    boto3 and azure-storage-blob document their clients as thread-safe, and a google-cloud-storage read
    only shares the client's requests session, whose urllib3 connection pool is thread-safe.
    """
    with _client_lock:
        return factory(config)
