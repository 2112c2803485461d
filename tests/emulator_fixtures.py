"""Session-scoped pytest fixtures for the storage emulators, registered with
``pytest_plugins = ["tests.emulator_fixtures"]``.

Each emulator starts the first time a test asks for it and stops when the session ends, so a run that
needs none of them pays nothing, and one that needs all three pays about a second (Azurite's start).
State lives for the whole session: tests isolate themselves with unique bucket and container names
(:func:`unique_name`) instead of restarting servers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.emulators import azurite, fake_gcs, moto_s3


def unique_name(prefix: str = "t") -> str:
    """A bucket/container name valid on S3, GCS and Azure (3–63 lowercase letters, digits, hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of a moto S3 server; any credentials are accepted."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of a fake-gcs-server; use anonymous credentials."""
    with fake_gcs() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def azure_connection_string() -> Iterator[str]:
    """Connection string for Azurite's ``devstoreaccount1``, with a path-style ``BlobEndpoint``."""
    with azurite() as connection_string:
        yield connection_string
