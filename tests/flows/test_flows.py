"""The flows under a real Prefect API against the sandbox: what they do, what a user sees, and re-runs.

One module-scoped ingest of the bundled example (media, schema, manifest, key-pattern groups, dataset and
project) feeds the assertions about artifacts, events, the receipt, a no-op re-run, a label export and a
metadata sync.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from encord_sandbox import Sandbox
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.cli import example_data
from prefect_encord.events.reporting import add_progress_listener, artifact_key
from prefect_encord.flows.export_labels import export_labels
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.ingest_summary import IngestSummary
from prefect_encord.flows.parameters import DatasetStep, GroupingStep, LocalDestination, LocalSource, MetadataStep
from prefect_encord.flows.sync_metadata import sync_metadata
from prefect_encord.state import run_ledger
from prefect_encord.state.item_map import ItemMap
from prefect_encord.testing import credentials_block

BLOCK = "flows-sandbox"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return example_data.write_example(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def credentials(prefect_harness: None, sandbox: Sandbox) -> EncordCredentials:
    """The sandbox's credentials, saved: a flow run's parameters then hold a reference to the block."""
    block = credentials_block(sandbox)
    block.save(BLOCK, overwrite=True)
    return block


@pytest.fixture(scope="module")
def parameters(example: dict[str, Path], credentials: EncordCredentials) -> dict[str, Any]:
    token = uuid.uuid4().hex[:6]
    return {
        "source": LocalSource(directory=str(example["media"])),
        "folder_path": f"flows/{token}/example",
        "credentials": credentials,
        "metadata": MetadataStep(schema_file=str(example["schema"]), manifest=str(example["manifest"])),
        "grouping": GroupingStep(
            rule={"kind": "key_pattern", "pattern": example_data.GROUP_PATTERN}, layout=example_data.GROUP_LAYOUT
        ),
        "dataset": DatasetStep(title=f"flows {token}", project=f"flows {token}"),
    }


@pytest.fixture(scope="module")
def heard() -> list[tuple[float, str]]:
    """The progress the first run told (fraction, message), as the CLI's progress bar hears it."""
    return []


@pytest.fixture(scope="module")
def first_run(parameters: dict[str, Any], heard: list[tuple[float, str]]) -> Iterator[IngestSummary]:
    stop = add_progress_listener(lambda fraction, message: heard.append((fraction, message)))
    try:
        summary = ingest(**parameters)
    finally:
        stop()
    yield summary


def _count_table(markdown: str) -> dict[str, dict[str, int]]:
    """The summary's count table as {kind: {column: count}}."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    header, *body = [[cell.strip() for cell in row] for row in rows if not set("".join(row)) <= set("-")]
    return {row[0]: dict(zip(header[1:], map(int, row[1:]), strict=True)) for row in body if row[0]}


def _events(prefix: str, about: str, since: float, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Events named ``prefix…`` about resource ``about`` (as subject or related), polled until ``expected`` arrive."""
    deadline = time.monotonic() + timeout
    body = {
        "filter": {"event": {"prefix": [prefix]}, "any_resource": {"id": [about]}, "occurred": {"since": _iso(since)}},
        "limit": 50,
    }
    while True:
        events = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body).json()["events"]
        if len(events) >= expected or time.monotonic() > deadline:
            return list(events)
        time.sleep(0.5)


def _iso(timestamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def test_ingest_creates_everything_the_example_declares(first_run: IngestSummary, sandbox: Sandbox) -> None:
    assert (first_run.created, first_run.already_present, first_run.failed) == (8, 0, 0)
    assert first_run.groups_created == 2 and first_run.metadata_updated == 4
    # Two groups plus the four files that belong to no group are linked: 6 data units.
    assert first_run.linked == 6 and first_run.project_hash is not None
    client = sandbox.credentials().get_client()
    folder = client.get_storage_folder(uuid.UUID(first_run.folder_uuid))
    by_name = {item.name: item for item in folder.list_items()}
    assert by_name["scene-2_front.png"].client_metadata["example.weather"] == "rain"
    groups = [item for item in by_name.values() if item.item_type.value == "group"]
    assert sorted(g.name for g in groups) == ["scene-1", "scene-2"]
    project = client.get_project(first_run.project_hash)
    assert len(project.list_label_rows_v2()) == 6


def test_a_user_sees_artifacts_events_and_a_receipt(first_run: IngestSummary) -> None:
    with get_client(sync_client=True) as prefect:
        key = artifact_key("encord-ingest", first_run.folder_path)
        keys = [f"{key}-summary", f"{key}-outcomes", f"{key}-progress"]
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=keys),
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(first_run.run_id)]),
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == set(keys)
    summary = str(by_key[f"{key}-summary"].data)
    # One row per kind of thing, so files, groups, keys and links are never added up together.
    table = _count_table(summary)
    assert table["files"]["created"] == 8 and table["data groups"]["created"] == 2
    assert table["metadata items"]["updated"] == 4 and table["dataset items"]["linked"] == 6
    # The schema keys are the organisation's: created by this run, or already there from another test's.
    keys = table["schema keys"]
    assert keys["created"] + keys.get("already there", 0) == 3 == sum(keys.values())
    assert f"dataset **{first_run.dataset_title}**" in summary and f"project **{first_run.project_title}**" in summary
    assert by_key[f"{key}-progress"].data == 100.0
    # The schema keys are the organisation's: another test of the session may have created them already.
    ending = by_key[f"{key}-progress"].description
    assert ending is not None and ending.startswith("finished: 8 files created, ")
    assert ending.endswith(
        "4 metadata items updated, 2 data groups created, 6 dataset items linked, 1 project attached"
    )
    folder = f"encord.folder.{first_run.folder_uuid}"
    events = _events("prefect-encord.", about=folder, since=time.time() - 3600, expected=5)
    names = {e["event"] for e in events}
    assert {
        "prefect-encord.items.registered",
        "prefect-encord.metadata.imported",
        "prefect-encord.groups.created",
        "prefect-encord.dataset.linked",
        "prefect-encord.project.attached",
    } <= names
    # Every event names what it is about, so the feed reads "… in examples/…", not a bare UUID.
    assert all(e["resource"].get("prefect.resource.name") for e in events)
    registered = next(e for e in events if e["event"] == "prefect-encord.items.registered")
    assert registered["resource"]["prefect.resource.name"] == first_run.folder_path
    assert (registered["payload"]["created"], registered["payload"]["failed"]) == (8, 0)
    linked = next(
        e
        for e in events
        if e["event"] == "prefect-encord.dataset.linked"
        and e["resource"]["prefect.resource.id"] == f"encord.dataset.{first_run.dataset_hash}"
    )
    related_roles = {r["prefect.resource.role"] for r in linked["related"]}
    assert {"folder", "project"} <= related_roles
    receipt = run_ledger.load(first_run.run_id)
    assert len(run_ledger.items_created(receipt)) == 8 and len(receipt.groups_created) == 2 and receipt.finished_at


def test_the_files_step_tells_how_far_it_is_while_it_runs(
    first_run: IngestSummary, heard: list[tuple[float, str]]
) -> None:
    messages = [message for _, message in heard]
    folder = next(i for i, message in enumerate(messages) if message.startswith("folder: "))
    sent, registered = messages.index("ingest: 8 of 8 files sent"), messages.index("ingest: 8 of 8 files registered")
    done = messages.index("ingest: 8 of 8 files uploaded, 0 already there, 0 failed")
    assert folder < sent < registered < done
    fractions = [fraction for fraction, _ in heard]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # never backwards


def test_a_rerun_over_unchanged_data_writes_nothing(first_run: IngestSummary, parameters: dict[str, Any]) -> None:
    again = ingest(**parameters)
    assert (again.created, again.already_present, again.failed) == (0, 8, 0)
    assert (again.groups_created, again.groups_already_present) == (0, 2)
    assert again.metadata_updated == 0 and again.linked == 0
    assert ItemMap.read(again.item_map).to_dict() == ItemMap.read(first_run.item_map).to_dict()
    assert run_ledger.items_created(run_ledger.load(again.run_id)) == set()


def test_export_labels_is_incremental(
    first_run: IngestSummary, sandbox: Sandbox, credentials: EncordCredentials, tmp_path: Path
) -> None:
    assert first_run.project_hash
    client = sandbox.credentials().get_client()
    destination = LocalDestination(directory=str(tmp_path), prefix="labels")
    nothing_yet = export_labels(first_run.project_hash, destination=destination, credentials=credentials)
    assert nothing_yet.exported == []

    project = client.get_project(first_run.project_hash)
    (row,) = [r for r in project.list_label_rows_v2() if r.data_title == "street.mp4"]
    row.initialise_labels()
    row.save()  # the example project's ontology is empty: a saved row without objects is still a labelled row

    first = export_labels(first_run.project_hash, destination=destination, credentials=credentials)
    assert first.exported == [row.data_hash]
    written = tmp_path / "labels" / first_run.project_hash / "labels" / f"{row.data_hash}.json"
    assert written.exists()
    second = export_labels(first_run.project_hash, destination=destination, credentials=credentials)
    assert second.exported == [] and second.incremental


def test_sync_metadata_dry_run_then_write(
    first_run: IngestSummary, parameters: dict[str, Any], credentials: EncordCredentials, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("name,example.weather\nscene-1_front.png,fog\n")
    folder_path = parameters["folder_path"]
    step = MetadataStep(manifest=str(manifest), mode="merge")
    dry = sync_metadata(folder_path, step, dry_run=True, credentials=credentials)
    assert dry is not None and dry.updated == 1
    done = sync_metadata(folder_path, step, credentials=credentials)
    assert done is not None and done.updated == 1
    again = sync_metadata(folder_path, step, credentials=credentials)
    assert again is not None and again.updated == 0 and again.unchanged == 1
