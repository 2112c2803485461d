"""A full disk under the run's books: the run stops with one line naming the file and the run, and its rollback
(once there is room again) removes every item it created.

The run-ledger directory (receipt and item map) is a tmpfs of 128 KiB, which an upload of 1,500 files or more fills
after about a thousand lines of its item map, once all of its jobs have started. Mounting needs root; the test
is skipped without it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from encord_sandbox import samples

from tests.hardening.test_terminal_interrupts import FILES, _env, _items

CLI = str(Path(sys.executable).parent / "prefect-encord")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "runs"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_in_one_line_and_its_rollback_removes_everything(
    small_disk: Path, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for n in range(FILES):
        (media / f"frame-{n:04d}.png").write_bytes(samples.png(width=2, height=2, color=(n % 256, n // 256, 5)))
    home, env = (
        tmp_path / "home",
        _env(tmp_path) | {"PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY": str(small_disk)},
    )
    command = [CLI, "ingest", str(media), "--folder", f"full/{uuid.uuid4().hex[:8]}", "--home", str(home)]

    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("prefect-encord ingest:")]
    (run_id,) = set(re.findall(r"rollback ([0-9a-f-]{36})", line))
    assert f"cannot write the item map {small_disk}/{run_id}.items.jsonl: No space left on device" in line, line
    created = _items(home)
    assert created == FILES, run.stderr[-3000:]  # every job had started when the disk filled
    print(f"the run stopped with: {line}")

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)  # room again
    undone = subprocess.run([CLI, "rollback", run_id, "--home", str(home)], capture_output=True, text=True,
                            env=env, timeout=300)  # fmt: skip
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert f"deleted {created}," in undone.stdout, undone.stdout
    assert _items(home) == 0
