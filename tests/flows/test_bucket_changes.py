"""An ingest from a bucket, run again after the bucket changed: only new objects go to Encord, overwritten ones
are reported, and the items of deleted objects are reported, or deleted when asked, never beyond the limit.

Real parts: the flow under a real Prefect API, the S3 emulator, the sandbox reading it through its integration.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from uuid import UUID

import pytest
from encord.orm.dataset import DatasetType
from encord_sandbox import Sandbox, samples
from prefect.client.schemas.objects import State

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.ingest_summary import IngestSummary
from prefect_encord.flows.parameters import CloudSource
from prefect_encord.state.item_map import ItemMap
from prefect_encord.state.run_ledger import load
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.testing import credentials_block
from tests.integration_buckets import add_sandbox_integration, new_bucket


@pytest.fixture(autouse=True)
def own_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY", str(tmp_path / "inventory"))
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(tmp_path / "runs"))


def _items(sandbox: Sandbox, folder: str) -> int:
    row = sandbox.backend.store.query_one(
        "SELECT count(*) AS n FROM items WHERE folder = ? AND is_placeholder = 0", (folder,)
    )
    assert row is not None
    return int(row["n"])


def test_deleted_objects_are_reported_then_deleted_within_the_limit(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    files = {f"cams/{n}.png": samples.png(color=(n, 9, 9)) for n in range(6)}
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    credentials = credentials_block(sandbox)
    folder_path = f"bucket-changes/{uuid.uuid4().hex[:8]}"

    def run(**options: object) -> IngestSummary:
        state = ingest(CloudSource(block=block, **options), folder_path, credentials=credentials, return_state=True)
        summary = state.result()
        assert isinstance(summary, IngestSummary)
        return summary

    first = run()
    assert first.created == 6
    for key in ("cams/1.png", "cams/2.png"):
        block._client().delete_object(Bucket=block.bucket_name, Key=key)
    block.write_object("cams/3.png", samples.png(color=(200, 1, 1)))

    reported = run()
    assert (reported.created, reported.already_present, reported.changed, reported.vanished) == (0, 3, 1, 2)
    assert _items(sandbox, first.folder_uuid) == 6
    # Every affected key is named: in the summary, the run's receipt and its item map.
    gone, rewritten = (
        sorted(block.object_url(k) for k in ("cams/1.png", "cams/2.png")),
        [block.object_url("cams/3.png")],
    )
    assert sorted(reported.vanished_sources) == gone and reported.changed_sources == rewritten
    receipt = load(reported.run_id, tmp_path / "runs")
    assert sorted(receipt.sources_vanished) == gone and list(receipt.sources_changed) == rewritten
    item_map = ItemMap.read(reported.item_map)
    assert sorted(item_map.notes("vanished")) == gone and list(item_map.notes("changed")) == rewritten
    assert len(item_map.to_dict()) == 4  # the notes are not items: the present ones are

    state = ingest(CloudSource(block=block, on_vanished="delete", max_deletions=1), folder_path,
                   credentials=credentials, return_state=True)  # fmt: skip
    assert state.is_failed() and state.message is not None and "2 in files" in state.message
    assert _items(sandbox, first.folder_uuid) == 6  # above the limit: nothing deleted

    deleted = run(on_vanished="delete", max_deletions=2)
    assert deleted.deleted == 2 and deleted.failed == 0
    assert _items(sandbox, first.folder_uuid) == 4
    after = run(on_vanished="delete")
    assert (after.deleted, after.vanished, after.changed, after.already_present) == (0, 0, 0, 4)  # reported once


def test_sidecars_describe_their_objects_and_a_bad_one_is_named_in_the_run(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    key = f"shift-{uuid.uuid4().hex[:6]}"
    apply_metadata_schema.fn(credentials_block(sandbox), {key: "number"})
    files = {"cams/a.png": samples.png(color=(1, 1, 1)), "cams/a.png.meta": json.dumps({key: 2}).encode(),
             "cams/b.png": samples.png(color=(2, 2, 2)), "cams/b.png.meta": b'{"shfit": 1}'}  # fmt: skip
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))

    state = ingest(CloudSource(block=block, sidecar_suffix=".meta"), f"sidecars/{key}", max_failures=1,
                   credentials=credentials_block(sandbox), return_state=True)  # fmt: skip

    summary = state.result()
    assert isinstance(summary, IngestSummary) and state.name == "Completed with failures", state
    assert (summary.created, summary.metadata_updated) == (2, 1)  # the sidecars are not items
    assert summary.failures == 1 and state.message is not None and "1 in metadata items" in state.message, state
    failed_row = next(line for line in summary.markdown.splitlines() if "cams/b.png.meta" in line)
    assert "sidecar not applied: key 'shfit'" in failed_row, summary.markdown  # the sidecar, named, and why
    items = sandbox.backend.store.query(
        "SELECT name, client_metadata FROM items WHERE folder = ? ORDER BY name", (summary.folder_uuid,)
    )
    assert [(row["name"], json.loads(row["client_metadata"])) for row in items] == [
        ("cams/a.png", {key: 2}),
        ("cams/b.png", {}),
    ]


def _item_of(sandbox: Sandbox, folder: str, url: str) -> str | None:
    row = sandbox.backend.store.query_one(
        "SELECT uuid FROM items WHERE folder = ? AND url = ? AND is_placeholder = 0", (folder, url)
    )
    return None if row is None else str(row["uuid"])


def test_vanished_objects_are_archived_within_the_limit_and_restored_when_they_return(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    files = {f"cams/{n}.png": samples.png(color=(n, 7, 7)) for n in range(5)}
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    credentials, folder_path = credentials_block(sandbox), f"archive/{uuid.uuid4().hex[:8]}"

    def run(**options: object) -> tuple[State[IngestSummary], IngestSummary]:
        state = ingest(CloudSource(block=block, **options), folder_path, credentials=credentials, return_state=True,
                       max_failures=10)  # fmt: skip
        summary = state.result()
        assert isinstance(summary, IngestSummary)
        return state, summary

    _, first = run()
    urls = {n: block.object_url(f"cams/{n}.png") for n in range(5)}
    items = {n: _item_of(sandbox, first.folder_uuid, urls[n]) for n in range(5)}
    for n in (1, 2):
        block.delete_object(f"cams/{n}.png")

    refused_state, refused = run(on_vanished="archive", max_deletions=1)
    assert refused.failed == 2 and refused.archived == 0 and _items(sandbox, first.folder_uuid) == 5
    assert refused_state.name == "Completed with failures"

    _, archived = run(on_vanished="archive")
    archive = sandbox.backend.store.query_one(
        "SELECT uuid FROM folders WHERE parent = ? AND name = 'archive'", (first.folder_uuid,)
    )
    assert archive is not None and archived.archived == 2 and archived.failed == 0
    assert _items(sandbox, first.folder_uuid) == 3 and _items(sandbox, archive["uuid"]) == 2
    assert {_item_of(sandbox, archive["uuid"], urls[n]) for n in (1, 2)} == {items[1], items[2]}  # the same items
    assert sorted(archived.vanished_sources) == sorted([urls[1], urls[2]])
    assert sorted(ItemMap.read(archived.item_map).notes("archived")) == sorted([urls[1], urls[2]])
    assert load(archived.run_id, tmp_path / "runs").sources_archived == {urls[n]: items[n] for n in (1, 2)}

    _, quiet = run(on_vanished="archive")
    assert (quiet.archived, quiet.vanished, quiet.failed) == (0, 0, 0)  # archived once, not again

    block.write_object("cams/1.png", files["cams/1.png"])  # it returns
    _, back = run(on_vanished="archive")
    assert (back.restored, back.created, back.restored_sources) == (1, 0, [urls[1]])
    assert _item_of(sandbox, first.folder_uuid, urls[1]) == items[1]  # moved back, not registered again
    assert _items(sandbox, first.folder_uuid) == 4 and _items(sandbox, archive["uuid"]) == 1
    assert ItemMap.read(back.item_map).to_dict()[urls[1]] == items[1]
    assert load(back.run_id, tmp_path / "runs").sources_restored == {urls[1]: items[1]}


def test_overwritten_objects_are_replaced_and_a_labelled_item_only_when_forced(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    files = {f"cams/{n}.png": samples.png(color=(n, 5, 5)) for n in range(3)}
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials, folder_path = credentials_block(sandbox), f"replace/{uuid.uuid4().hex[:8]}"
    first = ingest(CloudSource(block=block), folder_path, credentials=credentials, return_state=True).result()
    assert isinstance(first, IngestSummary)
    urls = {n: block.object_url(f"cams/{n}.png") for n in range(3)}
    old = {n: _item_of(sandbox, first.folder_uuid, urls[n]) for n in range(3)}
    client = credentials.get_client()
    dataset = client.create_dataset(f"replace-{uuid.uuid4().hex[:6]}", DatasetType.CORD_STORAGE,
                                    create_backing_folder=False)  # fmt: skip
    client.get_dataset(dataset.dataset_hash).link_items([UUID(str(old[2]))])
    project = client.get_project(client.create_project(f"replace-{uuid.uuid4().hex[:6]}", [dataset.dataset_hash]))
    (row,) = project.list_label_rows_v2()
    row.initialise_labels()
    row.save()  # item 2 now carries a (started) label row
    for n in (1, 2):
        block.write_object(f"cams/{n}.png", samples.png(color=(200 + n, 1, 1)))

    state = ingest(CloudSource(block=block, on_changed="replace"), folder_path, credentials=credentials,
                   return_state=True, max_failures=1)  # fmt: skip
    summary = state.result()
    assert isinstance(summary, IngestSummary) and (summary.replaced, summary.failed) == (1, 1), summary.markdown
    new = _item_of(sandbox, first.folder_uuid, urls[1])
    assert new is not None and new != old[1] and _items(sandbox, first.folder_uuid) == 3  # one item per object
    assert _item_of(sandbox, first.folder_uuid, urls[2]) == old[2]  # labelled: kept
    assert "has labels" in next(line for line in summary.markdown.splitlines() if urls[2] in line)
    assert ItemMap.read(summary.item_map).notes("replaced") == {urls[1]: new}
    assert load(summary.run_id, tmp_path / "runs").sources_replaced == {urls[1]: new}

    forced = ingest(CloudSource(block=block, on_changed="replace", replace_labelled_items=True), folder_path,
                    credentials=credentials, return_state=True).result()  # fmt: skip
    assert isinstance(forced, IngestSummary) and (forced.replaced, forced.failed) == (1, 0), forced.markdown
    assert _item_of(sandbox, first.folder_uuid, urls[2]) not in (None, old[2])
    assert _items(sandbox, first.folder_uuid) == 3


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    prefect_harness: None, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    files = {f"cams/{n}.png": samples.png(color=(n, 3, 3)) for n in range(5)}
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials, folder_path = credentials_block(sandbox), f"plan/{uuid.uuid4().hex[:8]}"
    options = {"on_changed": "replace", "on_vanished": "archive"}

    def run(**more: object) -> tuple[State[IngestSummary], IngestSummary]:
        state = ingest(CloudSource(block=block, **options, **more), folder_path, credentials=credentials,
                       return_state=True)  # fmt: skip
        summary = state.result()
        assert isinstance(summary, IngestSummary)
        return state, summary

    state, unborn = run(dry_run=True)  # the folder does not exist yet: everything would be registered
    assert unborn.counts == {"files": {"to register": 5}} and unborn.folder_uuid == ""
    assert state.message == "Dry run, nothing changed: the run would succeed."
    _, first = run()
    block.write_object("cams/5.png", samples.png(color=(5, 3, 3)))
    block.write_object("cams/1.png", samples.png(color=(99, 3, 3)))
    for n in (2, 3):
        block.delete_object(f"cams/{n}.png")

    state, plan = run(dry_run=True)

    assert plan.counts == {"files": {"to register": 1, "skipped": 2, "to replace": 1, "to archive": 2}}, plan.counts
    assert plan.changed_sources == [block.object_url("cams/1.png")] and len(plan.vanished_sources) == 2
    assert f"- to replace (1): {block.object_url('cams/1.png')}\n" in plan.markdown, plan.markdown
    assert "- to archive (2): " in plan.markdown
    assert _items(sandbox, first.folder_uuid) == 5 and state.message is not None and "succeed" in state.message
    archive = "SELECT uuid FROM folders WHERE parent = ? AND name = 'archive'"
    assert sandbox.backend.store.query_one(archive, (first.folder_uuid,)) is None  # no archive folder made
    _, over = run(dry_run=True, max_deletions=1)
    assert over.counts["files"]["failed"] == 2 and over.failures == 2  # the run would stop there

    _, real = run()  # the plan left the inventory as it was: the real run does what the plan said
    assert (real.created, real.replaced, real.archived, real.failed) == (1, 1, 2, 0), real.markdown
