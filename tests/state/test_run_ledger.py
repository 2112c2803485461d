"""The run ledger keeps a durable, crash-safe receipt of what a run did."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_encord.state import run_ledger
from prefect_encord.state.item_map import ItemMapWriter
from prefect_encord.state.run_ledger import RunLedger


def test_receipt_records_intents_and_results_and_survives_a_restart(tmp_path: Path) -> None:
    ledger = RunLedger("run-1", tmp_path)
    ledger.before("upload /data into folder F")
    ledger.after(jobs=["job-1"], groups=["g"], dataset="d", linked=["a"])
    ledger.after(groups=["g"], dataset="d", linked=["a", "b"])  # repeats are recorded once

    reopened = RunLedger("run-1", tmp_path)  # a restarted process continues the same receipt
    reopened.finish()

    receipt = run_ledger.load("run-1", tmp_path)
    assert receipt.intents[0].endswith("upload /data into folder F")
    assert receipt.jobs == ["job-1"]
    assert receipt.item_map == str(tmp_path / "run-1.items.jsonl")
    assert receipt.groups_created == ["g"]
    assert receipt.datasets_linked == {"d": ["a", "b"]}
    assert receipt.finished_at is not None and receipt.rolled_back_at is None
    assert not list(tmp_path.glob(".receipt-*")), "temporary files are renamed into place, never left behind"


def test_unknown_run_and_unsafe_run_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no receipt for run 'nope'"):
        run_ledger.load("nope", tmp_path)
    with pytest.raises(ValueError, match=r"run id '\.\./escape'"):
        RunLedger("../escape", tmp_path)


def test_the_items_a_run_created_in_any_attempt_come_from_its_item_map(tmp_path: Path) -> None:
    ledger = RunLedger("run-2", tmp_path)
    assert run_ledger.items_created(run_ledger.load("run-2", tmp_path)) == set()  # no map written yet
    with ItemMapWriter(ledger.item_map_path) as first_attempt:
        first_attempt.write({"s3://b/a.png": "i-a", "s3://b/b.png": "i-b"}, "created")
    with ItemMapWriter(ledger.item_map_path) as resumed:  # what the crashed attempt made is now "present"
        resumed.write({"s3://b/a.png": "i-a", "s3://b/b.png": "i-b"}, "present")
        resumed.write({"s3://b/c.png": "i-c"}, "created")
        this_attempt = resumed.close()
    assert (this_attempt.created, this_attempt.present) == (1, 2)
    assert run_ledger.items_created(run_ledger.load("run-2", tmp_path)) == {"i-a", "i-b", "i-c"}
