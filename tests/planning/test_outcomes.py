"""Mapping a finished job's answer back to its entries: new items, existing duplicates, failures, leftovers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from encord.orm.dataset import DataUnitError, LongPollingStatus
from encord.orm.storage import StorageItemWithName, UploadLongPollingState

from prefect_encord.planning.objects import Skipped
from prefect_encord.planning.outcomes import (
    BucketRegistration,
    ItemFacts,
    JobResult,
    JobSummary,
    UnitFailure,
    settle_job,
)
from prefect_encord.planning.specs import Entry
from prefect_encord.state.item_map import ItemMapWriter

ROOT = "https://bucket.s3.amazonaws.com/"
SUBMITTED = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
BEFORE, AFTER = SUBMITTED - timedelta(days=3), SUBMITTED + timedelta(seconds=2)


def image(key: str) -> Entry:
    return Entry(kind="image", title=key, urls=(ROOT + key,))


def state(
    items: Sequence[tuple[str, str]],
    errors: Sequence[Sequence[str]] = (),
    status: LongPollingStatus = LongPollingStatus.DONE,
) -> UploadLongPollingState:
    return UploadLongPollingState(
        status=status,
        items_with_names=[StorageItemWithName(item_uuid=uuid.UUID(u), name=n) for u, n in items],
        errors=[],
        units_pending_count=0,
        units_done_count=len(items),
        units_error_count=len(errors),
        units_cancelled_count=0,
        unit_errors=[
            DataUnitError(object_urls=list(urls), error="boom", subtask_uuid=uuid.uuid4(), action_description="Up")
            for urls in errors
        ],
    )


def settle(entries: Sequence[Entry], job: UploadLongPollingState, facts: dict[str, ItemFacts]) -> JobResult:
    return settle_job(entries, job, facts, job_id="job-1", submitted_at=SUBMITTED, resumed=False)


def new_uuid() -> str:
    return str(uuid.uuid4())


def test_items_older_than_the_submission_are_skipped_duplicates() -> None:
    fresh, old = new_uuid(), new_uuid()
    entries = [image("a.png"), image("b.png")]
    result = settle(
        entries,
        state([(fresh, "a.png"), (old, "b.png")]),
        {fresh: ItemFacts(ROOT + "a.png", AFTER), old: ItemFacts(ROOT + "b.png", BEFORE)},
    )
    assert result.created == {ROOT + "a.png": fresh}
    assert result.skipped_duplicates == {ROOT + "b.png": old}
    assert result.items == {ROOT + "a.png": fresh, ROOT + "b.png": old}
    assert (result.job_id, result.status, result.resumed) == ("job-1", "DONE", False)
    assert result.unit_errors == () and result.not_registered == () and result.unmatched_items == ()


def test_a_renamed_existing_item_is_matched_by_its_url() -> None:
    old = new_uuid()
    result = settle([image("a.png")], state([(old, "renamed in the UI")]), {old: ItemFacts(ROOT + "a.png", BEFORE)})
    assert result.skipped_duplicates == {ROOT + "a.png": old}


def test_naive_creation_times_are_taken_as_utc() -> None:
    old = new_uuid()
    result = settle([image("a.png")], state([(old, "a.png")]), {old: ItemFacts(None, BEFORE.replace(tzinfo=None))})
    assert result.skipped_duplicates == {ROOT + "a.png": old}


def test_unit_errors_are_reported_and_siblings_kept() -> None:
    good = new_uuid()
    group = Entry(kind="image_group", title="g", urls=(ROOT + "g/1.png", ROOT + "g/2.png"))
    entries = [image("a.png"), image("bad.png"), group]
    result = settle(
        entries,
        state(
            [(good, "a.png")],
            errors=[[ROOT + "bad.png"], [ROOT + "g/1.png", ROOT + "g/2.png"]],
            status=LongPollingStatus.ERROR,
        ),
        {good: ItemFacts(ROOT + "a.png", AFTER)},
    )
    assert result.status == "ERROR"
    assert result.created == {ROOT + "a.png": good}
    assert result.unit_errors == (
        UnitFailure((ROOT + "bad.png",), "boom", "Up"),
        UnitFailure((ROOT + "g/1.png", ROOT + "g/2.png"), "boom", "Up"),
    )
    assert result.not_registered == ()


def test_entries_with_neither_item_nor_error_are_not_registered() -> None:
    result = settle([image("a.png"), image("b.png")], state([], status=LongPollingStatus.CANCELLED), {})
    assert result.status == "CANCELLED"
    assert result.not_registered == (ROOT + "a.png", ROOT + "b.png")


def test_items_no_entry_claims_are_kept_as_unmatched() -> None:
    stray, known = new_uuid(), new_uuid()
    result = settle(
        [image("a.png")],
        state([(known, "a.png"), (stray, "who knows")]),
        {known: ItemFacts(ROOT + "a.png", AFTER), stray: ItemFacts("s3://elsewhere/x.png", AFTER)},
    )
    assert result.created == {ROOT + "a.png": known}
    assert result.unmatched_items == (stray,)


def test_an_item_the_lookup_did_not_return_counts_as_created() -> None:
    item = new_uuid()
    assert settle([image("a.png")], state([(item, "a.png")]), {}).created == {ROOT + "a.png": item}


def test_a_job_summary_keeps_counts_and_failures_not_pairs() -> None:
    failure = UnitFailure(("u3",), "bad", "Up")
    result = JobResult("j2", "ERROR", True, {"u4": "i4", "u5": "i5"}, {"u2": "i2"}, (failure,), ("u6",), ("i9",))
    assert result.summary() == JobSummary("j2", "ERROR", True, 2, 1, (failure,), ("u6",), ("i9",))


def test_bucket_registration_aggregates_its_jobs_and_reads_items_from_its_map(tmp_path: Path) -> None:
    one = JobResult("j1", "DONE", False, {"u1": "i1"}, {"u2": "i2"}, (), (), ())
    failure = UnitFailure(("u3",), "bad", "Up")
    two = JobResult("j2", "ERROR", True, {"u4": "i4"}, {}, (failure,), (), ())
    with ItemMapWriter(tmp_path / "map.jsonl") as writer:
        for job in (one, two):
            writer.write(job.created, "created")
            writer.write(job.skipped_duplicates, "present")
        item_map = writer.close()
    run = BucketRegistration(
        jobs=(one.summary(), two.summary()), item_map=item_map, skipped=(Skipped("u5", "why"),), watermark=None
    )
    assert run.created == {"u1": "i1", "u4": "i4"}
    assert run.skipped_duplicates == {"u2": "i2"}
    assert run.unit_errors == (failure,)
