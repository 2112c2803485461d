"""Prefect's own server and the sandbox run side by side on one pinned FastAPI.

Prefect 3.8's server breaks on FastAPI >= 0.151 and the sandbox is FastAPI too; this test fails
if the pinned range ever stops suiting both. It also proves the block registers with the
``prefect.collections`` entry point and round-trips through the Prefect API without leaking its key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from encord import EncordUserClient
from encord_sandbox.server import Sandbox
from prefect import flow, task
from prefect.settings import PREFECT_API_URL

from prefect_encord import EncordCredentials
from prefect_encord.testing import credentials_block


@task
def create_folder(credentials_block: str, name: str) -> str:
    """Tasks receive a block *name* and build the client themselves: clients don't cross task boundaries."""
    client = EncordCredentials.load(credentials_block).get_client()
    return str(client.create_storage_folder(name).uuid)


@flow
def make_folder(credentials_block: str, name: str) -> str:
    return create_folder(credentials_block, name)


def test_flow_talks_to_sandbox_through_saved_block(prefect_harness: None, sandbox: Sandbox) -> None:
    block_name = f"sandbox-{uuid.uuid4().hex[:6]}"
    credentials_block(sandbox).save(block_name)

    folder_uuid = make_folder(block_name, "from-a-flow")

    folder = sandbox.credentials().get_client().get_storage_folder(uuid.UUID(folder_uuid))
    assert folder.name == "from-a-flow"
    loaded = EncordCredentials.load(block_name)
    assert isinstance(loaded.get_client(), EncordUserClient)
    assert "OPENSSH" not in repr(loaded) and "OPENSSH" not in loaded.model_dump_json()


def test_block_register_command_finds_the_collection(prefect_harness: None) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "block", "register", "-m", "prefect_encord"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Encord Credentials" in result.stdout
