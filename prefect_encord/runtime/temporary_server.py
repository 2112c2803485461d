"""The temporary Prefect server a CLI command starts never outlives the command.

With no Prefect API configured, Prefect starts a temporary server (a uvicorn child process) the first time a
flow needs one, and stops it from an exit handler. A command killed with SIGKILL runs no exit handler, and
its server would go on running with nobody to use it. :func:`guard_temporary_server` makes the server
Prefect starts one that brings a watchdog (:mod:`prefect_encord.runtime.server_watchdog`) along, which stops it
within a fraction of a second of the command's death. Nothing starts earlier than before: a command that
fails on its arguments still starts no server.

The server runs in a session of its own (``setsid``): a terminal's Ctrl-C signals the whole foreground process
group, and a server in the CLI's group died with the CLI's first signal, while the CLI still had started jobs to
finish and record through it.

Prefect keeps one temporary server per port in ``SubprocessASGIServer._instances`` and asks for the one
without a port; registering a subclass there first is what makes Prefect start this one (verified on the
oldest and newest Prefect this package supports).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

WATCHDOG = Path(__file__).with_name("server_watchdog.py")
#: What the server's command line holds, so the watchdog never stops another process that reuses its pid.
SERVER_MARKER = "prefect.server.api.server:create_app"


def guard_temporary_server() -> None:
    """If this process would start a temporary Prefect server, make it one that stops when the process dies.

    Prefect's server code is imported only then: with an API configured, nothing is.
    """
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api import server as server_module
    from prefect.server.api.server import SubprocessASGIServer

    class GuardedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            with _in_a_session_of_its_own(server_module):
                server = super()._run_uvicorn_command()
            subprocess.Popen(
                [sys.executable, str(WATCHDOG), str(os.getpid()), str(server.pid), SERVER_MARKER],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return server

    if None not in SubprocessASGIServer._instances:
        GuardedServer()


@contextlib.contextmanager
def _in_a_session_of_its_own(module: types.ModuleType) -> Iterator[None]:
    """While in it, the processes ``module`` starts through ``subprocess.Popen`` start a new session.

    Prefect's server module starts its server with ``subprocess.Popen`` and no way to pass options: its own
    name ``subprocess`` is pointed, for that one call, at a stand-in whose ``Popen`` adds ``start_new_session``.
    """
    stand_in = types.SimpleNamespace(**vars(subprocess))
    stand_in.Popen = functools.partial(subprocess.Popen, start_new_session=True)
    module.subprocess = stand_in  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module.subprocess = subprocess  # type: ignore[attr-defined]
