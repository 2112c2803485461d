"""The job ledger: a durable, atomic record of submitted registration jobs, keyed by what they register."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from prefect_encord.state.job_ledger import JobLedger, JobRecord, default_directory, job_key

SPEC = {"images": [{"objectUrl": "s3://b/a.png", "title": "a.png"}], "skip_duplicate_urls": True}


def record(key: str = "k" * 64) -> JobRecord:
    return JobRecord(
        key=key,
        job_id="7a9f2a9e-2f4b-4b7e-9a53-1d0c8d1b2c3d",
        folder_uuid="f",
        integration_id="i",
        submitted_at=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc),
        units=1,
    )


def test_a_recorded_job_is_found_until_forgotten(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "ledger")
    assert ledger.find(record().key) is None
    ledger.record(record())
    assert JobLedger(tmp_path / "ledger").find(record().key) == record()  # a fresh instance, as after a restart
    ledger.forget(record().key)
    assert ledger.find(record().key) is None
    ledger.forget(record().key)  # forgetting twice is fine


def test_records_are_written_atomically_without_leftovers(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path)
    ledger.record(record("a" * 64))
    ledger.record(record("a" * 64))
    assert [p.name for p in tmp_path.iterdir()] == ["a" * 64 + ".json"]


def test_an_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    (tmp_path / ("b" * 64 + ".json")).write_text("{not json")
    assert JobLedger(tmp_path).find("b" * 64) is None


def test_the_key_changes_with_folder_integration_and_spec_but_not_key_order() -> None:
    key = job_key("folder", "integration", SPEC)
    assert key == job_key("folder", "integration", dict(reversed(list(SPEC.items()))))
    assert len({key, job_key("other", "integration", SPEC), job_key("folder", "other", SPEC)}) == 3
    assert key != job_key("folder", "integration", {**SPEC, "upsert_metadata": True})


def test_the_directory_comes_from_the_setting_else_prefect_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(tmp_path / "jobs"))
    assert default_directory() == tmp_path / "jobs"
    assert JobLedger().directory == tmp_path / "jobs"
    monkeypatch.delenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY")
    assert default_directory().parts[-2:] == ("encord", "job-ledger")
