"""The README's main command end to end: `prefect-encord ingest` (embedded sandbox), a no-op re-run, rollback.

No ``--home``: the embedded sandbox lives under ``$PREFECT_HOME``, so a rollback run from another directory
talks to the same one, and another ``PREFECT_HOME`` (another user, another profile) to another.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from encord_sandbox import samples
from encord_sandbox.db import Database
from prefect.settings import PREFECT_API_URL

CLI = str(Path(sys.executable).parent / "prefect-encord")


def _run(*args: str, home: Path, cwd: Path, code: int = 0) -> str:
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(home),  # the sandbox and run receipts go here, not into the developer's home
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name in ("ENCORD_SSH_KEY_FILE", "ENCORD_SSH_KEY"):  # no credentials: the embedded sandbox
        env.pop(name, None)
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout if code == 0 else done.stderr


def _visible_items(home: Path) -> int:
    store = Database(home / "encord" / "sandbox" / "sandbox.sqlite3")
    try:
        (row,) = store.query("SELECT count(*) AS n FROM items WHERE is_placeholder = 0 AND frame_of IS NULL")
        return int(row["n"])
    finally:
        store.close()


def test_ingest_the_example_twice_then_roll_the_first_run_back(prefect_harness: None, tmp_path: Path) -> None:
    home, project = tmp_path / "prefect-home", tmp_path / "project"
    first = _run("ingest", home=home, cwd=project)
    assert "Ingesting into the embedded sandbox" in first
    assert (project / ".prefect-encord" / "example" / "media").is_dir()  # the example, beside the project
    assert "files: 8 created\n" in first
    assert "data groups: 2 created\n" in first and "metadata items: 4 updated\n" in first
    run_id = re.search(r"rollback ([0-9a-f-]{36})", first)
    assert run_id, first
    assert _visible_items(home) == 10  # 8 files + 2 data groups

    again = _run("ingest", home=home, cwd=project)
    assert "files: 8 already there\n" in again

    # Another embedded sandbox (another --home) has other item UUIDs: the rollback refuses it, deleting nothing.
    elsewhere = _run("rollback", run_id.group(1), "--home", str(tmp_path / "other"), home=home, cwd=project, code=1)
    assert re.search(r"wrote into folder [0-9a-f-]{36} of http://127\.0\.0\.1:\d+, which the Encord at", elsewhere)
    assert "roll back with the credentials the run used" in elsewhere and "Traceback" not in elsewhere
    assert _visible_items(home) == 10

    undone = _run("rollback", run_id.group(1), home=home, cwd=tmp_path / "somewhere" / "else")  # the same sandbox
    assert "deleted 10, already gone 0, failed 0" in undone
    assert _visible_items(home) == 0
    twice = _run("rollback", run_id.group(1), home=home, cwd=project)
    assert "deleted 0, already gone 10, failed 0" in twice


def test_a_rerun_names_the_files_changed_since_they_were_ingested(prefect_harness: None, tmp_path: Path) -> None:
    home, footage = tmp_path / "prefect-home", tmp_path / "footage"
    footage.mkdir()
    for n in range(12):
        (footage / f"cam-{n:02d}.png").write_bytes(samples.png(color=(n, 3, 3)))
    _run("ingest", str(footage), home=home, cwd=tmp_path)
    for n in range(11):  # more than the command line names one by one
        (footage / f"cam-{n:02d}.png").write_bytes(samples.png(color=(n, 200, 3)))

    again = " ".join(_run("ingest", str(footage), home=home, cwd=tmp_path).split())  # as one line, however wrapped

    named = re.search(r"11 files changed since ingested \(their items kept\): (.*?) and (\d+) more", again)
    assert named, again
    assert [name.strip() for name in named.group(1).split(",")] == [f"cam-{n:02d}.png" for n in range(10)]
    assert named.group(2) == "1" and "1 more (every one in the run's receipt and item map)" in again
