"""Fixtures of the chaos tests: sandboxes with chaos in this process, or served by another one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.storage import StorageFolder
from encord_sandbox.chaos import ChaosConfig
from encord_sandbox.emulators import MOTO_ACCESS_KEY_ID, MOTO_REGION, MOTO_SECRET_ACCESS_KEY
from encord_sandbox.server import ADMIN_KEY_NAME, Sandbox

from prefect_encord import EncordCredentials

ChaoticSandbox = Callable[[ChaosConfig], Sandbox]


@pytest.fixture
def chaotic_sandbox(tmp_path: Path) -> Iterator[ChaoticSandbox]:
    """Start an in-process sandbox with the given chaos; every one started is stopped after the test."""
    with ExitStack() as stack:

        def start(config: ChaosConfig) -> Sandbox:
            return stack.enter_context(Sandbox(tmp_path / f"sandbox-{uuid.uuid4().hex[:6]}", chaos=config))

        yield start


def new_folder(sandbox: Sandbox) -> tuple[EncordUserClient, StorageFolder]:
    """A client of ``sandbox`` and a fresh folder (created before any chaos the test aims at, or retried)."""
    client = sandbox.credentials().get_client()
    return client, client.create_storage_folder(f"chaos-{uuid.uuid4().hex[:8]}")


def prepare_served_sandbox(data_dir: Path, s3_endpoint: str, integration: str) -> None:
    """Create the state of a sandbox to be served by another process: admin key, an integration reading S3."""
    setup = Sandbox(data_dir)
    setup.add_integration(integration, "s3", endpoint_url=s3_endpoint, access_key_id=MOTO_ACCESS_KEY_ID,
                          secret_access_key=MOTO_SECRET_ACCESS_KEY, region=MOTO_REGION)  # fmt: skip
    setup.backend.close()


def served_credentials(data_dir: Path, domain: str) -> EncordCredentials:
    """Credentials of the admin user of the sandbox in ``data_dir``, served at ``domain``."""
    return EncordCredentials(ssh_private_key_path=data_dir / ADMIN_KEY_NAME, domain=domain)
