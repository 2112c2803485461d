"""Snapshots of a sandbox's whole state, to prove that a refused call (or a no-op run) wrote nothing.

Every table of the sandbox's database (users, keys, folders, items and placeholders, groups, jobs and their
units, datasets, data units, projects, label rows, roles, ontologies, schemas, integrations, webhooks) is
read in full, plus the names of the files in its blob store; two snapshots are equal only if nothing was
written. Jobs are waited for first, so a case that starts one cannot pass by finishing after the check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from encord_sandbox.server import Sandbox

State = dict[str, list[tuple[Any, ...]]]


def tables(sandbox: Sandbox) -> list[str]:
    rows = sandbox.backend.store.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [str(r["name"]) for r in rows if not str(r["name"]).startswith("sqlite_")]


def settle(sandbox: Sandbox, timeout: float = 30.0) -> None:
    """Wait until no data-upload job is pending (a job left running would write after the snapshot)."""
    deadline = time.monotonic() + timeout
    while sandbox.backend.store.query("SELECT 1 FROM jobs WHERE status = 'PENDING' LIMIT 1"):
        if time.monotonic() > deadline:
            raise AssertionError("a data-upload job is still pending; the sandbox state cannot be compared")
        time.sleep(0.05)


def snapshot(sandbox: Sandbox) -> State:
    store = sandbox.backend.store
    state: State = {t: sorted(map(tuple, store.query(f"SELECT * FROM {t}")), key=repr) for t in tables(sandbox)}  # noqa: S608
    state["blob files"] = [(p.name,) for p in sorted(sandbox.backend.blobs.root.iterdir())]
    return state


def counts(sandbox: Sandbox) -> dict[str, int]:
    return {name: len(rows) for name, rows in snapshot(sandbox).items()}


def differences(before: State, after: State) -> list[str]:
    found = []
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, []))
        if old != new:
            added, removed = sorted(new - old, key=repr), sorted(old - new, key=repr)
            found.append(f"{name}: {len(added)} rows added {added[:3]}, {len(removed)} removed {removed[:3]}")
    return found


@contextmanager
def unchanged(sandbox: Sandbox) -> Iterator[None]:
    """Assert that the ``with`` block leaves the sandbox exactly as it found it (also when it raises)."""
    settle(sandbox)
    before = snapshot(sandbox)
    try:
        yield
    finally:
        settle(sandbox)
        changed = differences(before, snapshot(sandbox))
        assert not changed, "the sandbox state changed:\n" + "\n".join(changed)
