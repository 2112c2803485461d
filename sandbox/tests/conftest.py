"""The sandbox's own tests: the unmodified SDK against it (contract), its integrations, its security."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord_sandbox.emulators import use_emulator_credentials
from encord_sandbox.server import Sandbox, generate_key_pair

pytest_plugins = ["encord_sandbox.pytest_plugin"]

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
use_emulator_credentials()
INTRUDER_EMAIL = "intruder@sandbox.local"


@pytest.fixture(scope="session")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox of the security tests' own, so "the state is unchanged" is checked against nothing but them.

    It has two users: the admin (the sandbox's own key) and an intruder with a key of their own.
    """
    with Sandbox(tmp_path_factory.mktemp("hardened-sandbox")) as sb:
        yield sb


@pytest.fixture(scope="session")
def intruder_key(hardened: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    key_path = tmp_path_factory.mktemp("intruder") / "id_ed25519"
    hardened.register_public_key(generate_key_pair(key_path), email=INTRUDER_EMAIL)
    return key_path


@pytest.fixture(scope="session")
def intruder(hardened: Sandbox, intruder_key: Path) -> EncordUserClient:
    return EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=str(intruder_key), domain=hardened.domain)
