"""What a child process of the crash and concurrency tests runs: one ``ingest`` flow run, in an environment and a
log of its own.

Children are forked from a ``forkserver`` that imported this module (and so Prefect, the SDK and the flow)
once: each run then starts in well under a second instead of the ten an interpreter takes to import them,
and is still a process of its own that ``os._exit`` kills for real.
"""

from __future__ import annotations

import os
from typing import Any

from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_encord.flows.ingest import ingest


def run_ingest(env: dict[str, str], api_url: str, log_path: str, parameters: dict[str, Any]) -> None:
    """Run the ingest flow with ``parameters``; its output goes to ``log_path`` (a crash point's line too)."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(env)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        ingest(**parameters)
