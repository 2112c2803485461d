"""Ctrl-C in a real CLI process early in a 2,500-file upload: it stops within seconds, starts no new job, and
its receipt rolls back everything it created. And kill -9 leaves no process behind.

The signal is sent once the first upload job has started (the task's own log line), so that the other two
batches of 1,000 files are still to come: before, they were sent and registered anyway, and the run died
without a receipt that any rollback could use.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from encord_sandbox import Sandbox, samples
from prefect.settings import PREFECT_API_URL

from prefect_encord.flows.rollback import rollback
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.testing import credentials_block

FILES = 2500
BLOCK = "interrupts-sandbox"


def _items(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one(
        "SELECT count(*) AS n FROM items WHERE folder = ? AND is_placeholder = 0", (folder,)
    )
    assert row is not None
    return int(row["n"])


def _jobs(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one("SELECT count(*) AS n FROM jobs WHERE folder = ?", (folder,))
    assert row is not None
    return int(row["n"])


def _media(directory: Path) -> Path:
    directory.mkdir()
    for n in range(FILES):
        (directory / f"frame-{n:04d}.png").write_bytes(samples.png(width=2, height=2, color=(n % 256, n // 256, 9)))
    return directory


def _cli() -> str:
    return str(Path(sys.executable).parent / "prefect-encord")


def _until_first_job(child: subprocess.Popen[str]) -> list[str]:
    """The child's output up to its first upload job's start."""
    assert child.stdout is not None
    output = []
    for line in child.stdout:
        output.append(line)
        if "started data-upload job" in line:
            break
    return output


def _children(pid: int) -> set[int]:
    return {int(child) for path in Path(f"/proc/{pid}/task").glob("*/children") for child in path.read_text().split()}


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has ended; only its exit status waits to be read


def test_kill_9_leaves_no_temporary_prefect_server_behind(tmp_path: Path) -> None:
    """With no Prefect API configured the CLI starts a temporary server (and its embedded sandbox); a SIGKILL'd
    CLI runs no exit handler, and the server (and the watchdog that stops it) must still be gone within seconds."""
    media = _media(tmp_path / "media")
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY": str(tmp_path),
    }
    command = [_cli(), "ingest", str(media), "--folder", f"interrupts/{uuid.uuid4().hex[:8]}", "--home",
               str(tmp_path / "home")]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = _until_first_job(child)
    spawned = _children(child.pid)
    child.kill()
    child.wait(timeout=30)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert len(spawned) == 2, "".join(output)[-3000:]  # the temporary server and its watchdog
    assert not [pid for pid in spawned if _alive(pid)]


def test_ctrl_c_early_in_a_big_upload_stops_within_seconds_and_rolls_back_completely(
    prefect_harness: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = _media(tmp_path / "media")
    credentials = credentials_block(sandbox)
    credentials.save(BLOCK, overwrite=True)
    folder_path = f"interrupts/{uuid.uuid4().hex[:8]}"
    runs = tmp_path / "runs"
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY": str(runs),
    }
    command = [_cli(), "ingest", str(media), "--folder", folder_path,
               "--credentials-block", BLOCK, "--home", str(tmp_path / "home")]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = _until_first_job(child)  # the other two of the three upload jobs are still to come
    child.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    rest, _ = child.communicate(timeout=120)
    stopped_in = time.monotonic() - signalled
    text = "".join(output) + rest
    print(f"stopped {stopped_in:.1f} s after SIGINT")

    assert child.returncode == 130, text[-3000:]
    assert stopped_in < 10, text[-3000:]
    assert "stopped after the files step" in text and "Traceback" not in text
    folder = get_or_create_folder.fn(credentials, folder_path)
    created = _items(sandbox, folder)
    assert 0 < created < FILES and _jobs(sandbox, folder) < 3  # what started was finished; nothing new started

    (run_id,) = set(re.findall(r"prefect-encord rollback ([0-9a-f-]{36})", text))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(runs))
    undone = rollback(run_id, credentials=credentials)
    assert len(undone.deleted) == created and not undone.failed
    assert _items(sandbox, folder) == 0
