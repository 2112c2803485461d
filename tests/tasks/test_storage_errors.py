"""A sandbox that cannot write its data directory says so, naming it: not "HTTP 500", not an unnamed SQLite error.

Each test has a sandbox of its own, so breaking its data directory touches no other test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from encord_sandbox import Sandbox, samples

from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.uploads import upload_directory
from prefect_encord.testing import credentials_block


def test_an_upload_the_sandbox_cannot_store_fails_per_file_naming_its_data_directory(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for n in range(2):
        (media / f"shot-{n}.png").write_bytes(samples.png(color=(n, 1, 2)))
    with Sandbox(tmp_path / "sandbox") as sandbox:
        credentials = credentials_block(sandbox)
        folder = get_or_create_folder.fn(credentials, "cannot-store")
        blobs = sandbox.data_dir / "blobs"
        shutil.rmtree(blobs)
        blobs.write_text("a file where the blob directory was: every write of a blob now fails")

        result = upload_directory.fn(credentials, folder, media, retry_policy=RetryPolicy(backoff_seconds=0))

    assert result.items == {} and sorted(result.failed) == ["shot-0.png", "shot-1.png"]
    for reason in result.failed.values():
        assert f"HTTP 507 from the upload URL: the sandbox cannot write its data directory {sandbox.data_dir}" in reason


def test_a_database_the_sandbox_cannot_open_is_named(tmp_path: Path) -> None:
    data = tmp_path / "sandbox"
    (data / "sandbox.sqlite3").mkdir(parents=True)  # a directory where the database file should be
    with pytest.raises(OSError, match=f"the sandbox cannot open its database {data / 'sandbox.sqlite3'}: "):
        Sandbox(data).start()
