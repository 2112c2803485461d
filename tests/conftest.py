"""Shared fixtures: one sandbox and one set of emulators per test session, fresh folders per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.storage import StorageFolder

from prefect_encord.sandbox.server import Sandbox, generate_key_pair

pytest_plugins = ["tests.emulator_fixtures"]

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
# The S3 emulator accepts any credentials; boto3 (ours, the sandbox's, subprocesses') needs some.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Run receipts, item maps and the job ledger of tests stay out of the developer's $PREFECT_HOME.
_ledgers = tempfile.mkdtemp(prefix="prefect-encord-tests-")
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", os.path.join(_ledgers, "runs"))
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", os.path.join(_ledgers, "jobs"))
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_DIRECTORY", os.path.join(_ledgers, "item-maps"))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture(scope="session")
def client(sandbox: Sandbox) -> EncordUserClient:
    return sandbox.credentials().get_client()


@pytest.fixture(scope="session")
def other_client(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> EncordUserClient:
    """A second user of the same sandbox, to prove users cannot reach each other's data."""
    key_path = tmp_path_factory.mktemp("other-user") / "id_ed25519"
    sandbox.register_public_key(generate_key_pair(key_path), email="other@sandbox.local")
    return EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=key_path, domain=sandbox.domain)


@pytest.fixture
def folder(client: EncordUserClient) -> StorageFolder:
    return client.create_storage_folder(f"test-{uuid.uuid4().hex[:8]}", description="a test folder")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real media files (PNG, JPEG, MP4, WAV, PDF, text, a DICOM series) made once per session."""
    from prefect_encord.sandbox.samples import write_sample_tree

    root = tmp_path_factory.mktemp("media")
    write_sample_tree(root)
    return root


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API (temporary SQLite, its own server process), started once: it takes 30–60 s here."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
