"""Two real CLI processes with different ``PREFECT_HOME``s (two profiles, two users) ingesting into one folder of
one Encord at once, local and from a bucket: every file becomes one item.

Their locks used to live under ``PREFECT_HOME``, so the two never met and both uploaded everything (600 items for
300); bucket ingests took no lock at all. Each round writes into a new folder, so the two also race to create it.
``PREFECT_ENCORD_TEST_ROUNDS`` sets the rounds (2 here; the closing figure of hardening part 3 used 20).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from encord_sandbox import Sandbox, samples
from prefect.settings import PREFECT_API_URL

from tests.integration_buckets import add_sandbox_integration, new_bucket

ROUNDS = int(os.environ.get("PREFECT_ENCORD_TEST_ROUNDS", "2"))
FILES = 300
CLI = str(Path(sys.executable).parent / "prefect-encord")


def _env(home: Path, sandbox: Sandbox) -> dict[str, str]:
    """One user's shell: their own PREFECT_HOME, the shared Prefect API and Encord, no lock directory set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_INTEGRATIONS_ENCORD_", "ENCORD_"))}
    credentials = sandbox.credentials()
    return env | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "ENCORD_SSH_KEY_FILE": str(credentials.ssh_private_key_path),
        "ENCORD_DOMAIN": credentials.domain,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def _items_by_name(sandbox: Sandbox, leaf: str) -> tuple[int, Counter[str]]:
    """How many folders are named ``leaf`` (the round's own name), and the items of all of them by name."""
    folders = [
        str(row["uuid"]) for row in sandbox.backend.store.query("SELECT uuid FROM folders WHERE name = ?", (leaf,))
    ]
    marks = ",".join("?" * len(folders))
    rows = sandbox.backend.store.query(
        f"SELECT name FROM items WHERE folder IN ({marks}) AND is_placeholder = 0 AND frame_of IS NULL",  # noqa: S608
        tuple(folders),
    )
    return len(folders), Counter(str(row["name"]) for row in rows)


def _created(output: str) -> str | None:
    found = re.search(r"^files: (\d+) created", output, flags=re.MULTILINE)
    return found.group(1) if found else None


def _at_once(arguments: list[str], sandbox: Sandbox, tmp_path: Path) -> list[str]:
    children = [
        subprocess.Popen(
            [CLI, "ingest", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(tmp_path / f"home-{n}", sandbox),
        )  # fmt: skip
        for n in (1, 2)
    ]
    outputs = [child.communicate(timeout=600)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output[-3000:]
    return outputs


@pytest.mark.parametrize("source", ["local", "bucket"])
def test_two_prefect_homes_into_one_folder_leave_each_file_once(
    prefect_harness: None, sandbox: Sandbox, tmp_path: Path, request: pytest.FixtureRequest, source: str
) -> None:
    files = {f"frame-{n:02d}.png": samples.png(width=2, height=2, color=(n, 7, 99)) for n in range(FILES)}
    if source == "local":
        media = tmp_path / "media"
        media.mkdir()
        for name, data in files.items():
            (media / name).write_bytes(data)
        arguments = [str(media)]
    else:
        block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
        name = f"two-homes-{uuid.uuid4().hex[:8]}"
        block.save(name, overwrite=True)
        arguments = ["--bucket-block", f"encord-s3-integration/{name}"]

    for round_ in range(ROUNDS):
        leaf = f"{source}-{uuid.uuid4().hex[:8]}"
        outputs = _at_once([*arguments, "--folder", f"two-homes/{leaf}"], sandbox, tmp_path / f"round-{round_}")
        folders, items = _items_by_name(sandbox, leaf)
        print(f"{source} round {round_ + 1}: {folders} folder(s), {sum(items.values())} items for {FILES} files")
        assert folders == 1 and sum(items.values()) == FILES and set(items.values()) == {1}, outputs[0][-2000:]
        # and each says what it did: one created them, the other found them there (not "created" twice)
        created = sorted(int(m) if (m := _created(output)) else 0 for output in outputs)
        assert created == [0, FILES], [output[-1500:] for output in outputs]


def test_two_embedded_sandboxes_at_once_each_get_every_file(tmp_path: Path) -> None:
    """Two users, no Prefect API and no Encord credentials: each CLI starts its own temporary Prefect server and
    its own embedded sandbox (under its own --home), at the same time, and neither disturbs the other."""
    media = tmp_path / "media"
    media.mkdir()
    for n in range(5):
        (media / f"frame-{n:02d}.png").write_bytes(samples.png(width=2, height=2, color=(n, 1, 2)))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and not k.startswith("ENCORD_")}
    children = [
        subprocess.Popen([CLI, "ingest", str(media), "--home", str(tmp_path / f"sandbox-{n}")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env | {"PREFECT_HOME": str(tmp_path / f"home-{n}")})
        for n in (1, 2)
    ]  # fmt: skip
    outputs = [child.communicate(timeout=600)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output[-3000:]
        assert "files: 5 created" in output, output[-3000:]
