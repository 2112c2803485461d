"""A sandbox of the hardening tests' own, so "the state is unchanged" is checked against nothing but them.

The session sandbox is shared by every test module, some of which leave jobs running or webhooks queued;
comparing whole tables there would be flaky. (The sandbox's own security tests, with a
second user, live with the sandbox: ``sandbox/tests/test_sandbox_security.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from encord_sandbox.server import Sandbox

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.testing import credentials_block


@pytest.fixture(scope="package")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("hardened-sandbox")) as sb:
        yield sb


@pytest.fixture(scope="package")
def admin(hardened: Sandbox) -> EncordCredentials:
    return credentials_block(hardened)
