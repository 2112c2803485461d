"""Shared fixtures: the sandbox's (one sandbox, one of each storage emulator per session), and Prefect's."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from encord_sandbox.emulators import use_emulator_credentials

from tests.sns import trust_test_certificate

pytest_plugins = ["encord_sandbox.pytest_plugin"]

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
use_emulator_credentials()
# Run receipts, item maps, locks and the job ledger of tests stay out of the developer's $PREFECT_HOME.
_ledgers = tempfile.mkdtemp(prefix="prefect-encord-tests-")
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", os.path.join(_ledgers, "runs"))
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", os.path.join(_ledgers, "jobs"))
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_DIRECTORY", os.path.join(_ledgers, "item-maps"))
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_LOCK_DIRECTORY", os.path.join(_ledgers, "locks"))
# The relays of the tests find the test certificate there, as if they had fetched it from SNS (tests/sns.py).
os.environ.setdefault("PREFECT_INTEGRATIONS_ENCORD_SNS_CERTIFICATE_DIRECTORY", os.path.join(_ledgers, "sns"))
trust_test_certificate(Path(os.environ["PREFECT_INTEGRATIONS_ENCORD_SNS_CERTIFICATE_DIRECTORY"]))


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API (temporary SQLite, its own server process), started once: it takes 30–60 s here."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
