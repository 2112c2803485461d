"""A sandbox of the hardening tests' own, so "the state is unchanged" is checked against nothing but them.

The session sandbox is shared by every test module, some of which leave jobs running or webhooks queued;
comparing whole tables there would be flaky. This one has two users: the admin (the sandbox's own key) and
an intruder with a key of their own, for the security tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from encord import EncordUserClient

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.sandbox.server import Sandbox, generate_key_pair

INTRUDER_EMAIL = "intruder@sandbox.local"


@pytest.fixture(scope="package")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("hardened-sandbox")) as sb:
        yield sb


@pytest.fixture(scope="package")
def admin(hardened: Sandbox) -> EncordCredentials:
    return hardened.credentials()


@pytest.fixture(scope="package")
def intruder_key(hardened: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    key_path = tmp_path_factory.mktemp("intruder") / "id_ed25519"
    hardened.register_public_key(generate_key_pair(key_path), email=INTRUDER_EMAIL)
    return key_path


@pytest.fixture(scope="package")
def intruder(hardened: Sandbox, intruder_key: Path) -> EncordUserClient:
    return EncordCredentials(ssh_private_key_path=intruder_key, domain=hardened.domain).get_client()
