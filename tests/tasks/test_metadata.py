"""import_metadata against the sandbox: merge and overwrite, bad rows, bundling, read-back, idempotent re-runs.

Items are registered from a local-directory integration with customer-provided image facts, so thousands
of them cost one job and no files. Metadata keys carry a per-module token: the schema is organisation-wide.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from encord import EncordUserClient
from encord.storage import StorageFolder, StorageItem
from encord_sandbox.server import Sandbox
from prefect import flow

from prefect_encord.planning.schema_diff import SchemaDiff
from prefect_encord.tasks import metadata as metadata_task
from prefect_encord.tasks.metadata import MetadataImporter, MetadataImportResult, import_metadata
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog

T = uuid.uuid4().hex[:6]
WEATHER, COUNT, TAKEN, CLIP, FLAG, LEGACY = (
    f"{k}-{T}" for k in ("weather", "count", "taken", "clip", "flag", "legacy")
)
IMAGE_FACTS = {"width": 8, "height": 6, "mimeType": "image/png", "fileSize": 100}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metadata-bucket")


@pytest.fixture(scope="module")
def integration(sandbox: Sandbox, root: Path) -> str:
    return sandbox.add_integration(f"metadata {T}", "local", root=str(root))


@pytest.fixture(scope="module", autouse=True)
def schema(sandbox: Sandbox) -> SchemaDiff:
    return apply_metadata_schema.fn(
        credentials_block(sandbox),
        {
            WEATHER: {"type": "enum", "values": ["rain", "sunny"]},
            COUNT: "number",
            TAKEN: "datetime",
            CLIP: {"type": "embedding", "size": 3},
            FLAG: "boolean",
        },
    )


def register(
    folder: StorageFolder, integration: str, root: Path, metadata: Mapping[str, dict[str, Any]]
) -> dict[str, StorageItem]:
    """Register one image per name, with its client metadata, without fetching anything; name -> item."""
    spec = {
        "images": [
            {"objectUrl": (root / f"{folder.uuid}-{n}").as_uri(), "title": name, "imageMetadata": IMAGE_FACTS,
             "clientMetadata": md}
            for n, (name, md) in enumerate(metadata.items())
        ]
    }  # fmt: skip
    job = folder.add_private_data_to_folder_start(integration, spec)
    result = folder.add_private_data_to_folder_get_result(job, timeout_seconds=120)
    assert result.unit_errors == []
    return {item.name: item for item in folder.list_items(page_size=1000)}


def write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def metadata_by_name(folder: StorageFolder) -> dict[str, dict[str, Any]]:
    return {item.name: item.client_metadata or {} for item in folder.list_items(page_size=1000)}


def run(sandbox: Sandbox, manifest: Path, folder: StorageFolder | None, **kwargs: Any) -> MetadataImportResult:
    folder_uuid = str(folder.uuid) if folder is not None else None
    return import_metadata.fn(credentials_block(sandbox), manifest, folder_uuid=folder_uuid, **kwargs)


def test_a_column_the_schema_lacks_is_refused_unless_allowed(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    """A column outside the schema is most often a typo of a key in it: without permission, its rows fail."""
    register(folder, integration, root, {"a": {}})
    manifest = write_csv(tmp_path / "m.csv", ["name", COUNT, "cuont"], [["a", "1", "2"]])

    refused = run(sandbox, manifest, folder)
    assert refused.updated == 0 and [(e.row, e.key) for e in refused.invalid] == [(1, "cuont")]
    assert "is not in the metadata schema (a typo?)" in refused.invalid[0].message
    assert metadata_by_name(folder) == {"a": {}}

    allowed = run(sandbox, manifest, folder, allow_unknown_keys=True)
    assert allowed.updated == 1 and allowed.unknown_keys == ["cuont"]
    assert metadata_by_name(folder) == {"a": {COUNT: 1, "cuont": "2"}}


def test_merge_keeps_other_keys_and_overwrite_replaces_them(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    existing = {"keep": "me", COUNT: 1, WEATHER: "rain"}
    register(folder, integration, root, {"a": existing, "b": existing})
    manifest = write_csv(tmp_path / "m.csv", ["name", COUNT, TAKEN], [["a", "2", "2024-05-01T10:00:00Z"]])

    merged = run(sandbox, manifest, folder, mode="merge")
    assert (merged.updated, merged.unchanged) == (1, 0)
    overwrite = write_csv(tmp_path / "o.csv", ["name", COUNT, TAKEN], [["b", "2", "2024-05-01T10:00:00Z"]])
    overwritten = run(sandbox, overwrite, folder, mode="overwrite")
    assert overwritten.updated == 1

    assert metadata_by_name(folder) == {
        "a": {"keep": "me", COUNT: 2, WEATHER: "rain", TAKEN: "2024-05-01T10:00:00+00:00"},
        "b": {COUNT: 2, TAKEN: "2024-05-01T10:00:00+00:00"},
    }
    # Overwriting with what is already there is a no-op; merging the same row into "b" is too.
    assert run(sandbox, overwrite, folder, mode="overwrite").unchanged == 1
    assert run(sandbox, overwrite, folder, mode="merge").unchanged == 1


def test_bad_rows_are_reported_by_row_and_key_and_good_rows_are_written(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path, http_log: HttpLog
) -> None:
    register(folder, integration, root, {name: {"keep": name} for name in ("a", "b", "c", "d", "e")})
    manifest = write_csv(
        tmp_path / "m.csv",
        ["name", WEATHER, COUNT, CLIP, "note"],
        [
            ["a", "rain", "1", "[1, 2, 3]", "first"],  # row 1: good
            ["b", "hail", "2", "", ""],  # row 2: not an option
            ["c", "sunny", "three", "[1, 2]", ""],  # row 3: two problems
            ["ghost", "rain", "", "", ""],  # row 4: no such item
            ["a", "sunny", "", "", ""],  # row 5: a again
            ["d", "", "4", "", "x"],  # row 6: good
        ],
    )
    http_log.api.clear()
    result = run(sandbox, manifest, folder, allow_unknown_keys=True)

    assert (result.rows_read, result.updated, result.unchanged, result.invalid_rows) == (6, 2, 0, 3)
    assert [str(e) for e in result.invalid] == [
        f"row 2 (item 'b'), key '{WEATHER}': 'hail' is not one of the enum options ['rain', 'sunny']",
        f"row 3 (item 'c'), key '{COUNT}': 'three' is not a number",
        f"row 3 (item 'c'), key '{CLIP}': has 2 numbers; the embedding has 3",
        "row 5 (item 'a'): the item is also in row 1; give each item once",
    ]
    assert [(e.row, e.item) for e in result.not_found] == [(4, "ghost")]
    assert result.unknown_keys == ["note"] and result.rejected == result.mismatched == []
    assert metadata_by_name(folder) == {
        "a": {"keep": "a", WEATHER: "rain", COUNT: 1, CLIP: [1.0, 2.0, 3.0], "note": "first"},
        "b": {"keep": "b"},
        "c": {"keep": "c"},
        "d": {"keep": "d", COUNT: 4, "note": "x"},
        "e": {"keep": "e"},
    }
    assert http_log.calls("PATCH", "/items/patch-bulk") == 1


def test_2500_rows_are_written_in_3_bundles_and_a_rerun_writes_nothing(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path, http_log: HttpLog
) -> None:
    names = [f"img-{i:05d}" for i in range(2500)]
    register(folder, integration, root, {name: {"keep": i} for i, name in enumerate(names)})
    manifest = write_csv(
        tmp_path / "m.csv", ["name", WEATHER, COUNT], ([n, ("rain", "sunny")[i % 2], i] for i, n in enumerate(names))
    )
    http_log.api.clear()

    first = run(sandbox, manifest, folder)

    assert (first.rows_read, first.updated, first.unchanged) == (2500, 2500, 0)
    listing = f"/storage/folders/{folder.uuid}/items"
    assert http_log.calls("PATCH", "/items/patch-bulk") == 3
    assert http_log.calls("POST", "/items/get-bulk") == 3  # the read-back, one per bundle
    assert http_log.calls("GET", listing) == 3  # one listing page per 1,000 items
    # + the schema and the folder: 11 requests for 2,500 rows.
    assert len(http_log.api) == 11
    stored = metadata_by_name(folder)
    assert stored["img-00001"] == {"keep": 1, WEATHER: "sunny", COUNT: 1}
    assert stored["img-02498"] == {"keep": 2498, WEATHER: "rain", COUNT: 2498}

    http_log.api.clear()
    again = run(sandbox, manifest, folder)
    assert (again.updated, again.unchanged) == (0, 2500)
    assert http_log.calls("PATCH", "/items/patch-bulk") == 0 and len(http_log.api) == 5


def test_a_dry_run_counts_but_writes_nothing(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path, http_log: HttpLog
) -> None:
    register(folder, integration, root, {"a": {}, "b": {COUNT: 1}})
    manifest = write_csv(tmp_path / "m.csv", ["name", COUNT], [["a", "1"], ["b", "1"]])
    http_log.api.clear()
    result = run(sandbox, manifest, folder, dry_run=True, mode="overwrite")
    assert (result.dry_run, result.updated, result.unchanged) == (True, 1, 1)
    assert [m for m, _ in http_log.api] == ["GET", "GET", "GET"]  # schema, folder, listing
    assert metadata_by_name(folder) == {"a": {}, "b": {COUNT: 1}}


def test_keyed_by_uuid_in_jsonl_across_folders(
    sandbox: Sandbox, client: EncordUserClient, integration: str, root: Path, tmp_path: Path, http_log: HttpLog
) -> None:
    home, elsewhere = (client.create_storage_folder(f"uuid-{n}-{T}") for n in ("home", "elsewhere"))
    items = register(home, integration, root, {"a": {}, "b": {}, "c": {}})
    (outside,) = register(elsewhere, integration, root, {"x": {}}).values()
    ghost = str(uuid.uuid4())
    manifest = tmp_path / "m.jsonl"
    records = [{"uuid": str(items[n].uuid).upper(), FLAG: True, TAKEN: "2024-01-01"} for n in "abc"]
    records += [{"uuid": ghost, FLAG: False}, {"uuid": str(outside.uuid), FLAG: False}]
    manifest.write_text("\n".join(json.dumps(r) for r in records))
    http_log.api.clear()

    anywhere = run(sandbox, manifest, None, key_by="uuid", dry_run=True)
    assert (anywhere.updated, [e.item for e in anywhere.not_found]) == (4, [ghost])
    # Encord refuses a bulk lookup with an unknown UUID, so it is halved around it: 5 ✗ → 2 ✓ + 3 ✗ → 1 ✓ + 2 ✗
    # → 1 ✗ + 1 ✓. Seven lookups find the four that exist (one, when none is missing).
    assert http_log.calls("POST", "/items/get-bulk") == 7

    in_home = run(sandbox, manifest, home, key_by="uuid")
    assert in_home.updated == 3
    assert {e.item for e in in_home.not_found} == {ghost, str(outside.uuid)}
    assert metadata_by_name(home)["b"] == {FLAG: True, TAKEN: "2024-01-01T00:00:00+00:00"}
    assert metadata_by_name(elsewhere) == {"x": {}}


def test_keyed_by_url_from_parquet(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    items = register(folder, integration, root, {"a": {}, "b": {}})
    table = pa.table({"source": [items["a"].url, items["b"].url], CLIP: [[0.1, 0.2, 0.3], None], COUNT: [None, 7]})
    pq.write_table(table, tmp_path / "m.parquet")
    result = run(sandbox, tmp_path / "m.parquet", folder, key_by="url", key_column="source")
    assert result.updated == 2
    assert metadata_by_name(folder) == {"a": {CLIP: [0.1, 0.2, 0.3]}, "b": {COUNT: 7}}


def test_items_sharing_a_name_are_not_guessed_between(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    register(folder, integration, root, {"twin": {}})
    register(folder, integration, root, {"twin": {}})
    result = run(sandbox, write_csv(tmp_path / "m.csv", ["name", COUNT], [["twin", "1"]]), folder)
    assert [str(e) for e in result.invalid] == [
        "row 1 (item 'twin'): 2 items in the folder have this name; key the manifest by uuid"
    ]
    assert result.updated == 0


def test_a_merge_will_not_resend_an_existing_value_the_schema_now_refuses(
    sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    """Values written before their key was declared would make Encord refuse the whole bundle if sent back."""
    register(folder, integration, root, {"old": {LEGACY: "five"}, "new": {LEGACY: 5}})
    apply_metadata_schema.fn(credentials_block(sandbox), {LEGACY: "number"})
    manifest = write_csv(tmp_path / "m.csv", ["name", COUNT], [["old", "1"], ["new", "1"]])

    merged = run(sandbox, manifest, folder, mode="merge")
    assert merged.updated == 1
    assert [str(e) for e in merged.invalid] == [
        f"row 1 (item 'old'), key '{LEGACY}': the item's existing value no longer fits the schema: "
        "'five' is text, not a number value"
    ]
    assert run(sandbox, manifest, folder, mode="overwrite").updated == 2
    assert metadata_by_name(folder) == {"old": {COUNT: 1}, "new": {COUNT: 1}}


def test_a_bundle_encord_refuses_is_split_around_the_refused_item(
    sandbox: Sandbox,
    folder: StorageFolder,
    integration: str,
    root: Path,
    tmp_path: Path,
    http_log: HttpLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the schema changes between the check and the write, Encord refuses the bundle; only the bad item is lost."""
    register(folder, integration, root, {n: {} for n in "abcd"})
    # As if the schema had been read before WEATHER was declared.
    monkeypatch.setattr(metadata_task, "read_organisation_schema", lambda client: (None, {}))
    rows = [["a", "rain"], ["b", "rain"], ["c", "hail"], ["d", "sunny"]]
    manifest = write_csv(tmp_path / "m.csv", ["name", WEATHER], rows)
    http_log.api.clear()

    result = run(sandbox, manifest, folder, allow_unknown_keys=True)  # the key is unknown to the stale read

    assert result.updated == 3 and result.invalid == []
    ((row, item, message),) = [(e.row, e.item, e.message) for e in result.rejected]
    assert (row, item) == (3, "c") and "Encord refused the update" in message and "'hail'" in message
    assert http_log.calls("PATCH", "/items/patch-bulk") == 5  # 4 → 2 + 2 → the bad pair split → 1 + 1
    assert metadata_by_name(folder) == {
        "a": {WEATHER: "rain"},
        "b": {WEATHER: "rain"},
        "c": {},
        "d": {WEATHER: "sunny"},
    }


def test_the_read_back_reports_items_changed_behind_the_import(
    sandbox: Sandbox,
    client: EncordUserClient,
    folder: StorageFolder,
    integration: str,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = register(folder, integration, root, {"a": {}, "b": {}})
    write = MetadataImporter._write

    def racing_write(self: MetadataImporter, batch: Any) -> Any:
        written = write(self, batch)
        client.get_storage_item(items["b"].uuid).update(client_metadata={COUNT: 99})  # another writer, meanwhile
        return written

    monkeypatch.setattr(MetadataImporter, "_write", racing_write)
    result = run(sandbox, write_csv(tmp_path / "m.csv", ["name", COUNT], [["a", "1"], ["b", "2"]]), folder)

    assert result.updated == 1
    assert [str(e) for e in result.mismatched] == [
        f"row 2 (item 'b'): read back with different values for keys ['{COUNT}']"
    ]


def test_arguments_are_checked_before_any_request(sandbox: Sandbox, tmp_path: Path, http_log: HttpLog) -> None:
    manifest = write_csv(tmp_path / "m.csv", ["name"], [])
    with pytest.raises(ValueError, match="needs folder_uuid"):
        run(sandbox, manifest, None)
    with pytest.raises(ValueError, match="bundle_size 1001"):
        run(sandbox, manifest, None, key_by="uuid", bundle_size=1001)
    with pytest.raises(ValueError, match="mode must be"):
        run(sandbox, manifest, None, key_by="uuid", mode="replace")
    with pytest.raises(ValueError, match="key_by must be"):
        run(sandbox, manifest, None, key_by="title")
    with pytest.raises(ValueError, match="cannot tell the manifest format"):
        run(sandbox, tmp_path / "m.xlsx", None, key_by="uuid")
    assert http_log.api == []


def test_schema_and_import_inside_a_flow(
    prefect_harness: None, sandbox: Sandbox, folder: StorageFolder, integration: str, root: Path, tmp_path: Path
) -> None:
    """The tasks run as real Prefect tasks: a block, a path and plain values in, serialisable results out."""
    register(folder, integration, root, {"a": {"keep": True}})
    key = f"flow-{T}"
    manifest = write_csv(tmp_path / "m.csv", ["name", key], [["a", "2024-05-01T00:00:00Z"]])

    @flow
    def shape(manifest: str, folder_uuid: str) -> tuple[SchemaDiff, MetadataImportResult]:
        credentials = credentials_block(sandbox)
        diff = apply_metadata_schema(credentials, {key: "datetime"})
        imported = import_metadata.submit(credentials, manifest, folder_uuid=folder_uuid).result()
        return diff, imported

    diff, imported = shape(str(manifest), str(folder.uuid))

    assert diff.applied and imported.updated == 1
    assert MetadataImportResult.model_validate_json(imported.model_dump_json()) == imported
    assert metadata_by_name(folder) == {"a": {"keep": True, key: "2024-05-01T00:00:00+00:00"}}
