"""Servers the tests start as processes: waiting until one answers, or saying that it exited instead."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx


def wait_until_answering(url: str, process: subprocess.Popen[Any], what: str, timeout: float = 180) -> None:
    """Return once ``url`` answers 200; fail naming ``what`` if ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not answer at {url}")
