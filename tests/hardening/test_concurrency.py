"""Two identical ingests at once, in two real processes, 10 times over: every file lands once, in one folder.

Each round ingests the same directory from two child processes started together (forked from a preloaded
forkserver, so they really overlap), into a folder that does not exist yet (both race to create it, then to
upload) or, every other round, into one that does (only the uploads race). The locks of
:mod:`prefect_encord.state.locks` make the second run wait and find what the first made.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from encord_sandbox import Sandbox, samples
from prefect.settings import PREFECT_API_URL

from prefect_encord.flows.parameters import LocalSource
from prefect_encord.runtime.crashpoints import CRASH_AT_ENV
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.testing import credentials_block
from tests.chaos.crash_worker import run_ingest

ROUNDS = 6  # every other round into a new folder: three of each kind of race
FILES = 12


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("concurrent-media")
    for n in range(FILES):
        (root / f"frame-{n:02d}.png").write_bytes(samples.png(color=(n, 3, 200)))
    return root


def test_two_identical_ingests_at_once_leave_each_file_once(
    prefect_harness: None, sandbox: Sandbox, media: Path, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.chaos.crash_worker"])
    credentials = credentials_block(sandbox)
    client = credentials.get_client()
    env = {CRASH_AT_ENV: "", "PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY": str(tmp_path / "locks")}
    token = uuid.uuid4().hex[:8]
    seen: dict[str, tuple[int, Counter[str]]] = {}
    started = time.perf_counter()
    for round_ in range(ROUNDS):
        name = f"concurrent-{token}-{round_}"
        if round_ % 2:  # the folder exists: only the uploads race
            get_or_create_folder.fn(credentials, name)
        parameters = {"source": LocalSource(directory=str(media)), "folder_path": name, "credentials": credentials}
        logs = [tmp_path / f"{name}-{n}.log" for n in range(2)]
        children = [
            context.Process(target=run_ingest, args=(env, str(PREFECT_API_URL.value()), str(log), parameters))
            for log in logs
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=180)
        assert [child.exitcode for child in children] == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
        folders = [folder for folder in client.find_storage_folders(search=name) if folder.name == name]
        items = Counter(item.name for folder in folders for item in folder.list_items())
        seen[name] = (len(folders), items)
    print(f"{ROUNDS} rounds of two concurrent ingests of {FILES} files in {time.perf_counter() - started:.1f} s")
    twins = {name: count for name, (count, _) in seen.items() if count != 1}
    duplicated = {name: [n for n, k in items.items() if k > 1] for name, (_, items) in seen.items()}
    assert twins == {}, f"folders created twice: {twins}"
    assert {name: names for name, names in duplicated.items() if names} == {}
    assert all(len(items) == FILES for _, items in seen.values())
