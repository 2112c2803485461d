"""The sandbox served by another process (``encord-sandbox serve``), for tests and benchmarks.

A client that is killed (crash-resume tests) must not take the service down with it, and a service that
probes thousands of files should not share an interpreter lock with the client it is measured against.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from encord_sandbox.chaos import ChaosConfig
from encord_sandbox.cli import chaos_arguments
from encord_sandbox.server import _free_port

_READY = "Encord sandbox listening on "


@contextmanager
def sandbox_process(
    data_dir: Path,
    *,
    chaos: ChaosConfig | None = None,
    job_workers: int = 4,
    startup_timeout: float = 120.0,
) -> Iterator[str]:
    """Serve the sandbox of ``data_dir`` on 127.0.0.1 in a child process; yields its domain, stops it after.

    Prepare ``data_dir`` first (``Sandbox(data_dir)`` creates the admin key; ``add_integration``; then
    ``backend.close()``), and build credentials with the key at ``data_dir / ADMIN_KEY_NAME``.

    Raises:
        RuntimeError: If the sandbox does not report that it listens within ``startup_timeout`` seconds;
            the message carries the child's last lines of output.
    """
    port = _free_port("127.0.0.1")
    command = [sys.executable, "-m", "encord_sandbox.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--job-workers", str(job_workers)]
    command += chaos_arguments(chaos)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: collections.deque[str] = collections.deque(maxlen=50)
    ready = threading.Event()
    threading.Thread(target=_follow, args=(child, output, ready), name="sandbox-output", daemon=True).start()
    try:
        if not ready.wait(startup_timeout) or child.poll() is not None:
            raise RuntimeError(f"the sandbox did not start on port {port}:\n" + "".join(output))
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()  # SIGTERM: the server stops and closes its database cleanly
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _follow(child: subprocess.Popen[str], output: collections.deque[str], ready: threading.Event) -> None:
    """Keep the child's output flowing (a full pipe would block it) and notice when it listens."""
    assert child.stdout is not None
    for line in child.stdout:
        output.append(line)
        if line.startswith(_READY):
            ready.set()
    ready.set()  # it exited: the caller checks poll()
