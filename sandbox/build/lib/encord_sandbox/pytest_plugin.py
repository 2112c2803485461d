"""pytest fixtures for code that talks to Encord: a sandbox per session, and the storage emulators.

Opt in from a ``conftest.py`` (it is not auto-loaded, so installing the sandbox never changes anyone's
fixtures): ``pytest_plugins = ["encord_sandbox.pytest_plugin"]``. Then a test asks for

* ``sandbox``: a :class:`~encord_sandbox.Sandbox` serving on 127.0.0.1 for the whole session;
* ``client``: the official SDK's ``EncordUserClient`` signed in as its admin; ``other_client``: a second
  user of the same sandbox, who must not see the admin's data; ``folder``: a fresh storage folder;
* ``media_dir``: real media files (PNG, JPEG, MP4, WAV, PDF, text, a DICOM series), made once;
* ``s3_endpoint``, ``gcs_endpoint``, ``azure_connection_string``: moto S3, fake-gcs-server and Azurite,
  each started the first time a test asks for it (the ``emulators`` extra; Azurite needs Node.js).
  State lives for the session: isolate tests with :func:`~encord_sandbox.emulators.unique_name` buckets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from encord_sandbox.server import Sandbox, generate_key_pair

if TYPE_CHECKING:
    from encord import EncordUserClient
    from encord.storage import StorageFolder


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
    from encord import EncordUserClient

    key_path = tmp_path_factory.mktemp("other-user") / "id_ed25519"
    sandbox.register_public_key(generate_key_pair(key_path), email="other@sandbox.local")
    return EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=str(key_path), domain=sandbox.domain)


@pytest.fixture
def folder(client: EncordUserClient) -> StorageFolder:
    return client.create_storage_folder(f"test-{uuid.uuid4().hex[:8]}", description="a test folder")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real media files (PNG, JPEG, MP4, WAV, PDF, text, a DICOM series) made once per session."""
    from encord_sandbox.samples import write_sample_tree

    root = tmp_path_factory.mktemp("media")
    write_sample_tree(root)
    return root


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of a moto S3 server; any credentials are accepted."""
    from encord_sandbox.emulators import moto_s3

    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of a fake-gcs-server; use anonymous credentials."""
    from encord_sandbox.emulators import fake_gcs

    with fake_gcs() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def azure_connection_string() -> Iterator[str]:
    """Connection string for Azurite's ``devstoreaccount1``, with a path-style ``BlobEndpoint``."""
    from encord_sandbox.emulators import azurite

    with azurite() as connection_string:
        yield connection_string
