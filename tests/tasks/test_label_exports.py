"""Label rows out, against the sandbox: listing with every filter, and exports (Encord JSON, the JSONL index,
COCO) to a local directory and to each cloud emulator, incremental by watermark, refusing to escape."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from encord import EncordUserClient, Project
from encord.objects import LabelRowV2, Object, ObjectInstance, OntologyStructure, Shape
from encord.objects.coordinates import BoundingBoxCoordinates
from encord.orm.dataset import DatasetType
from encord.orm.label_row import AnnotationTaskStatus
from encord.orm.storage import DataGroupGrid
from encord.storage import StorageFolder
from encord_sandbox import Sandbox
from prefect import flow

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.exports import ExportLayout, UnsafeExportPath, parse_index
from prefect_encord.planning.label_rows import LabelRowFilters, LabelRowSummary
from prefect_encord.tasks.datasets import LinkResult, get_or_create_dataset, link_items_to_dataset
from prefect_encord.tasks.exports import ExportResult, export_label_rows
from prefect_encord.tasks.label_rows import list_label_rows
from prefect_encord.tasks.projects import AttachResult, attach_datasets
from prefect_encord.testing import credentials_block
from tests.integration_buckets import CLOUDS, new_bucket
from tests.tasks.conftest import HttpLog

BOX = BoundingBoxCoordinates(height=0.5, width=0.25, top_left_x=0.25, top_left_y=0.125)
TOP_LEVEL = ["blue.png", "grp", "notes.txt", "red.png"]


def _token() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def items(client: EncordUserClient, media_dir: Path) -> dict[str, uuid.UUID]:
    folder = client.create_storage_folder(f"exports-{_token()}")
    made = {
        "red.png": folder.upload_image(media_dir / "red.png", client_metadata={"camera": "north"}),
        "blue.png": folder.upload_image(media_dir / "blue.png"),
        "notes.txt": folder.upload_text(media_dir / "notes.txt"),
    }
    made["grp"] = folder.create_data_group(
        DataGroupGrid(name="grp", layout_contents=[made["blue.png"], made["notes.txt"]])
    )
    return made


@pytest.fixture(scope="module")
def dataset_hash(client: EncordUserClient, items: dict[str, uuid.UUID]) -> str:
    created = client.create_dataset(f"exports-{_token()}", DatasetType.CORD_STORAGE)
    client.get_dataset(created.dataset_hash).link_items(list(items.values()))
    return created.dataset_hash


@pytest.fixture(scope="module")
def ontology_hash(client: EncordUserClient) -> str:
    structure = OntologyStructure()
    structure.add_object(name="box", shape=Shape.BOUNDING_BOX)
    return client.create_ontology(f"boxes-{_token()}", structure=structure).ontology_hash


@pytest.fixture
def credentials(sandbox: Sandbox) -> EncordCredentials:
    return credentials_block(sandbox)


@pytest.fixture
def project(client: EncordUserClient, dataset_hash: str, ontology_hash: str) -> Project:
    """A fresh project whose rows are: red.png labelled with a box, blue.png and grp started, notes.txt not."""
    made = client.get_project(client.create_project(f"exports-{_token()}", [dataset_hash], ontology_hash=ontology_hash))
    rows = [r for r in made.list_label_rows_v2() if r.data_title in ("blue.png", "grp", "red.png")]
    with made.create_bundle() as bundle:
        for row in rows:
            row.initialise_labels(bundle=bundle)
    for row in sorted(rows, key=lambda r: r.data_title):  # blue, grp, red: saved in this order
        row.save()
    add_box(made, "red.png")
    return made


def row_of(project: Project, title: str) -> LabelRowV2:
    (row,) = project.list_label_rows_v2(data_title_eq=title)
    return row


def add_box(project: Project, title: str) -> None:
    row = row_of(project, title)
    row.initialise_labels()
    instance: ObjectInstance = project.ontology_structure.get_child_by_title("box", type_=Object).create_instance()
    instance.set_for_frames(BOX, frames=0)
    row.add_object_instance(instance)
    row.save()


def tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def versions(root: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and mtime: a local export replaces a file it writes by a new one (a new inode)."""
    return {name: (path.stat().st_ino, path.stat().st_mtime_ns) for name, path in tree(root).items()}


# --- listing ------------------------------------------------------------------------------------


def test_list_label_rows_with_every_filter(credentials: EncordCredentials, project: Project) -> None:
    row_of(project, "red.png").workflow_complete()
    red, blue = row_of(project, "red.png"), row_of(project, "blue.png")

    def titles(**filters: Any) -> list[str]:
        rows = list_label_rows.fn(credentials, project.project_hash, LabelRowFilters(**filters))
        return sorted(r.data_title for r in rows)

    everything = list_label_rows.fn(credentials, project.project_hash)
    assert sorted(r.data_title for r in everything) == TOP_LEVEL
    by_title = {r.data_title: r for r in everything}
    assert by_title["notes.txt"].label_hash is None and by_title["red.png"].label_hash == red.label_hash
    assert by_title["red.png"].workflow_node == "Complete" and by_title["blue.png"].workflow_node == "Annotate"
    assert by_title["red.png"].client_metadata is None and by_title["red.png"].data_type == "image"

    assert titles(data_title_eq="red.png") == ["red.png"]
    assert titles(data_title_like="%.PNG") == ["blue.png", "red.png"]
    assert titles(workflow_node_eq="Complete") == ["red.png"]
    assert titles(workflow_node_like="Ann%") == ["blue.png", "grp", "notes.txt"]
    assert titles(statuses=[AnnotationTaskStatus.COMPLETED]) == ["red.png"]
    assert titles(statuses=["QUEUED"]) == ["blue.png", "grp", "notes.txt"]
    assert titles(data_hashes=[blue.data_hash]) == ["blue.png"]
    assert titles(label_hashes=[red.label_hash]) == ["red.png"]
    assert titles(edited_after=blue.last_edited_at) == ["grp", "red.png"]  # strictly after
    assert titles(edited_before=red.last_edited_at) == ["blue.png", "grp"]  # unstarted rows were never edited
    assert titles(branch_name="experiment") == TOP_LEVEL

    (with_metadata,) = list_label_rows.fn(
        credentials, project.project_hash, LabelRowFilters(data_title_eq="red.png", include_client_metadata=True)
    )
    assert with_metadata.client_metadata == {"camera": "north"}
    # The group's members (blue.png, notes.txt) listed again as child rows of their own.
    assert titles(include_children=True) == sorted([*TOP_LEVEL, "blue.png", "notes.txt"])


# --- exports to a local directory ---------------------------------------------------------------


def test_export_json_index_and_coco_to_a_local_directory(
    credentials: EncordCredentials, project: Project, tmp_path: Path, http_log: HttpLog
) -> None:
    http_log.api.clear()
    result = export_label_rows.fn(credentials, project.project_hash, tmp_path, prefix="exports/nightly", coco=True)
    # Two requests to open the project (project, ontology), one v1 call to list, one to fetch every row's labels.
    assert [path for _, path in http_log.api].count(f"/v2/public/projects/{project.project_hash}") == 1
    assert http_log.calls("POST", "/public") == 2

    rows = {r.data_title: r for r in project.list_label_rows_v2()}
    root = tmp_path / "exports" / "nightly" / project.project_hash
    started = sorted(rows[t].data_hash for t in ("blue.png", "grp", "red.png"))
    assert sorted(tree(root)) == sorted(
        ["_watermark.json", "coco.json", "index.jsonl", *(f"labels/{h}.json" for h in started)]
    )
    assert not result.incremental and sorted(result.exported) == started
    assert (result.unchanged, result.not_started) == (0, 1)  # notes.txt was never started, nor created now
    assert rows["notes.txt"].label_hash is None
    assert result.index == str(root / "index.jsonl") and result.coco == str(root / "coco.json")

    red = json.loads((root / "labels" / f"{rows['red.png'].data_hash}.json").read_text())
    assert (red["label_hash"], red["data_title"]) == (rows["red.png"].label_hash, "red.png")
    (unit,) = red["data_units"].values()
    (box,) = unit["labels"]["objects"]
    assert (box["name"], box["boundingBox"]) == ("box", {"h": 0.5, "w": 0.25, "x": 0.25, "y": 0.125})
    group = json.loads((root / "labels" / f"{rows['grp'].data_hash}.json").read_text())
    assert group["data_type"] == "group" and len(group["spaces"]) == 2

    index = parse_index((root / "index.jsonl").read_bytes(), "index")
    assert sorted(index) == started
    red_entry = index[rows["red.png"].data_hash]
    assert red_entry.path == f"labels/{rows['red.png'].data_hash}.json"
    assert (red_entry.label_hash, red_entry.last_edited_at) == (
        rows["red.png"].label_hash,
        rows["red.png"].last_edited_at,
    )

    coco = json.loads((root / "coco.json").read_text())
    # The group's image space is an image of its own; its text member has no pixels and is named, not dropped.
    assert sorted(i["image_title"] for i in coco["images"]) == ["blue.png", "grp/blue.png", "red.png"]
    assert result.coco_left_out == ["grp/notes.txt"] and result.coco_images == 3
    (annotation,) = coco["annotations"]
    assert annotation["bbox"] == pytest.approx([2.0, 0.75, 2.0, 3.0])  # 8×6 px

    newest = rows["red.png"].last_edited_at
    assert newest is not None and result.watermark == newest
    marker = json.loads((root / "_watermark.json").read_text())
    assert marker["last_edited_at"] == newest.isoformat().replace("+00:00", "Z")


def test_export_fetches_labels_in_bundles(
    credentials: EncordCredentials, project: Project, tmp_path: Path, http_log: HttpLog
) -> None:
    http_log.api.clear()
    result = export_label_rows.fn(credentials, project.project_hash, tmp_path, bundle_size=2)
    assert len(result.exported) == 3
    assert http_log.calls("POST", "/public") == 1 + 2  # list, then bundles of 2 and 1


def test_incremental_export_after_a_label_edit_exports_only_the_edited_row(
    credentials: EncordCredentials, project: Project, tmp_path: Path
) -> None:
    first = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True)
    root = tmp_path / project.project_hash
    before = versions(root)

    add_box(project, "blue.png")
    blue = row_of(project, "blue.png")
    second = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True)

    assert second.incremental and second.previous_watermark == first.watermark
    assert second.exported == [blue.data_hash]
    assert second.unchanged == 2  # red and grp are inside the overlap window, but already exported as they are
    assert second.watermark == blue.last_edited_at
    assert second.watermark is not None and first.watermark is not None and second.watermark > first.watermark
    after = tree(root)
    changed = sorted(name for name, version in versions(root).items() if version != before.get(name))
    assert changed == sorted(["_watermark.json", "coco.json", "index.jsonl", f"labels/{blue.data_hash}.json"])
    exported_blue = json.loads(after[f"labels/{blue.data_hash}.json"].read_text())
    assert [o["name"] for o in next(iter(exported_blue["data_units"].values()))["labels"]["objects"]] == ["box"]
    index = parse_index(after["index.jsonl"].read_bytes(), "index")
    assert len(index) == 3 and index[blue.data_hash].last_edited_at == blue.last_edited_at
    coco = json.loads(after["coco.json"].read_text())  # rebuilt from every exported row, not only the new one
    # red, blue and the group's image space (blue.png); a box on red and on blue
    assert len(coco["images"]) == 3 and len(coco["annotations"]) == 2

    unchanged = versions(root)
    third = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True)
    assert third.exported == [] and third.watermark == second.watermark
    assert versions(root) == unchanged  # nothing changed, nothing was written


def test_changed_filters_or_a_full_run_rebuild_the_export(
    credentials: EncordCredentials, project: Project, tmp_path: Path
) -> None:
    pngs = LabelRowFilters(data_title_like="%.png")
    first = export_label_rows.fn(credentials, project.project_hash, tmp_path, filters=pngs)
    assert len(first.exported) == 2

    widened = export_label_rows.fn(credentials, project.project_hash, tmp_path)
    assert not widened.incremental and "filters changed" in widened.reason and len(widened.exported) == 3

    only_red = LabelRowFilters(data_title_eq="red.png")
    rebuilt = export_label_rows.fn(credentials, project.project_hash, tmp_path, filters=only_red, incremental=False)
    index = parse_index((tmp_path / project.project_hash / "index.jsonl").read_bytes(), "index")
    assert [e.data_title for e in index.values()] == ["red.png"] == [row_of(project, "red.png").data_title]
    assert rebuilt.exported == [row_of(project, "red.png").data_hash]


@pytest.fixture
def doomed(
    client: EncordUserClient, media_dir: Path, ontology_hash: str
) -> tuple[Project, StorageFolder, dict[str, str]]:
    """A project of its own over two labelled images, whose items a test may delete: (project, folder, title →
    item UUID)."""
    folder = client.create_storage_folder(f"doomed-{_token()}")
    made = {name: str(folder.upload_image(media_dir / name)) for name in ("red.png", "blue.png")}
    dataset = client.create_dataset(f"doomed-{_token()}", DatasetType.CORD_STORAGE)
    client.get_dataset(dataset.dataset_hash).link_items([uuid.UUID(u) for u in made.values()])
    created = client.create_project(f"doomed-{_token()}", [dataset.dataset_hash], ontology_hash=ontology_hash)
    project = client.get_project(created)
    for title in made:
        add_box(project, title)
    return project, folder, made


@pytest.mark.parametrize("keep_removed", [False, True], ids=["deleted", "kept"])
def test_rows_deleted_in_encord_leave_the_export_unless_kept(
    credentials: EncordCredentials,
    doomed: tuple[Project, StorageFolder, dict[str, str]],
    tmp_path: Path,
    keep_removed: bool,
) -> None:
    project, folder, made = doomed
    first = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True)
    blue = first.files[row_of(project, "blue.png").data_hash]
    blue_hash = row_of(project, "blue.png").data_hash
    assert len(first.exported) == 2 and Path(blue).exists() and first.removed == []

    folder.delete_storage_items([uuid.UUID(made["blue.png"])])  # its data unit and label row go with it
    second = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True, keep_removed=keep_removed)

    assert second.incremental and second.exported == [] and second.removed == [blue_hash]
    assert second.kept_removed is keep_removed and Path(blue).exists() is keep_removed
    root = tmp_path / project.project_hash
    index = parse_index((root / "index.jsonl").read_bytes(), "index")
    assert (blue_hash in index) is keep_removed and row_of(project, "red.png").data_hash in index
    assert len(json.loads((root / "coco.json").read_text())["images"]) == (2 if keep_removed else 1)

    third = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True, keep_removed=keep_removed)
    assert third.removed == ([blue_hash] if keep_removed else [])  # kept rows are named again; deleted ones are gone


def test_a_full_run_deletes_the_files_of_rows_gone_from_encord(
    credentials: EncordCredentials,
    doomed: tuple[Project, StorageFolder, dict[str, str]],
    request: pytest.FixtureRequest,
) -> None:
    project, folder, made = doomed
    block = new_bucket("s3", request, {})
    layout = ExportLayout.of("exports", project.project_hash)
    export_label_rows.fn(credentials, project.project_hash, block, prefix="exports")
    red_hash = row_of(project, "red.png").data_hash

    folder.delete_storage_items([uuid.UUID(made["red.png"])])
    full = export_label_rows.fn(credentials, project.project_hash, block, prefix="exports", incremental=False)

    assert not full.incremental and full.removed == [red_hash]
    keys = {record.key for record in block.list_objects()}
    assert layout.key(layout.label_path(red_hash)) not in keys and len(full.exported) == 1
    assert red_hash not in parse_index(block.read_object(layout.index_key), "index")


def test_another_branch_is_exported_to_its_own_tree(
    credentials: EncordCredentials, project: Project, tmp_path: Path
) -> None:
    (row,) = project.list_label_rows_v2(data_title_eq="red.png", branch_name="experiment")
    row.initialise_labels()
    row.save()
    result = export_label_rows.fn(
        credentials, project.project_hash, tmp_path, filters=LabelRowFilters(branch_name="experiment")
    )
    assert result.exported == [row.data_hash]
    assert (tmp_path / project.project_hash / "branches" / "experiment" / "labels" / f"{row.data_hash}.json").exists()


def test_paths_that_escape_the_destination_are_refused_before_any_request(
    credentials: EncordCredentials, project: Project, tmp_path: Path, http_log: HttpLog
) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    http_log.api.clear()
    for prefix in ("../escaped", "exports/../../escaped", "/etc"):
        with pytest.raises(UnsafeExportPath):
            export_label_rows.fn(credentials, project.project_hash, destination, prefix=prefix)
    with pytest.raises(UnsafeExportPath, match="branch name '..'"):
        export_label_rows.fn(credentials, project.project_hash, destination, filters=LabelRowFilters(branch_name=".."))
    # A link inside the destination that points out of it is caught when the path is resolved.
    (destination / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(UnsafeExportPath, match="outside the export directory"):
        export_label_rows.fn(credentials, project.project_hash, destination, prefix="linked")
    with pytest.raises(ValueError, match="is a URL; pass the bucket's S3, GCS or Azure block"):
        export_label_rows.fn(credentials, project.project_hash, "s3://bucket/exports")
    assert http_log.api == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


# --- exports to the cloud emulators -------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_export_into_a_cloud_bucket(
    cloud: str, request: pytest.FixtureRequest, credentials: EncordCredentials, project: Project
) -> None:
    block = new_bucket(cloud, request, {"unrelated/keep.txt": b"keep"})
    result = export_label_rows.fn(credentials, project.project_hash, block, prefix="exports/nightly", coco=True)

    layout = ExportLayout.of("exports/nightly", project.project_hash)
    rows = {r.data_title: r for r in project.list_label_rows_v2()}
    started = sorted(rows[t].data_hash for t in ("blue.png", "grp", "red.png"))
    keys = sorted(record.key for record in block.list_objects())
    assert keys == sorted(
        [
            "unrelated/keep.txt",
            layout.index_key,
            layout.coco_key,
            layout.watermark_key,
            *(layout.key(layout.label_path(h)) for h in started),
        ]
    )
    assert result.index == block.object_url(layout.index_key)
    red = json.loads(block.read_object(layout.key(layout.label_path(rows["red.png"].data_hash))))
    assert red["label_hash"] == rows["red.png"].label_hash
    assert sorted(parse_index(block.read_object(layout.index_key), "index")) == started
    assert len(json.loads(block.read_object(layout.coco_key))["annotations"]) == 1
    marker = json.loads(block.read_object(layout.watermark_key))
    assert marker["project_hash"] == project.project_hash and marker["last_edited_at"] is not None

    add_box(project, "blue.png")
    again = export_label_rows.fn(credentials, project.project_hash, block, prefix="exports/nightly", coco=True)
    assert again.incremental and again.exported == [rows["blue.png"].data_hash]
    assert len(json.loads(block.read_object(layout.coco_key))["annotations"]) == 2


# --- inside a flow ------------------------------------------------------------------------------


def test_link_attach_list_and_export_inside_a_flow(
    prefect_harness: None,
    sandbox: Sandbox,
    client: EncordUserClient,
    project: Project,
    items: dict[str, uuid.UUID],
    tmp_path: Path,
) -> None:
    """The tasks run as real Prefect tasks: blocks and plain values in, serialisable results out."""

    @flow
    def deliver(
        title: str, item_uuids: list[str], project_hash: str, destination: str
    ) -> tuple[LinkResult, AttachResult, list[LabelRowSummary], ExportResult]:
        credentials = credentials_block(sandbox)
        dataset = get_or_create_dataset(credentials, title)
        linked = link_items_to_dataset(credentials, dataset.dataset_hash, item_uuids)
        attached = attach_datasets(credentials, project_hash, [dataset.dataset_hash])
        listed = list_label_rows(credentials, project_hash, LabelRowFilters(workflow_node_eq="Annotate"))
        exported = export_label_rows.submit(credentials, project_hash, destination, prefix="labels").result()
        return linked, attached, listed, exported

    title = f"flow-{_token()}"
    linked, attached, listed, exported = deliver(title, [str(items["red.png"])], project.project_hash, str(tmp_path))

    assert list(linked.linked) == [str(items["red.png"])]
    assert attached.attached == [client.get_datasets(title_eq=title)[0]["dataset"].dataset_hash]
    assert sorted(r.data_title for r in listed) == sorted([*TOP_LEVEL, "red.png"])  # red.png, linked again
    assert len(exported.exported) == 3 and exported.not_started == 2
    assert LinkResult.model_validate_json(linked.model_dump_json()) == linked
    assert ExportResult.model_validate_json(exported.model_dump_json()) == exported
    assert (tmp_path / "labels" / project.project_hash / "index.jsonl").exists()


def test_coco_of_a_grid_group_holds_the_boxes_drawn_on_each_of_its_image_spaces(
    client: EncordUserClient, media_dir: Path, ontology_hash: str, credentials: EncordCredentials, tmp_path: Path
) -> None:
    folder = client.create_storage_folder(f"coco-groups-{_token()}")
    front, rear = folder.upload_image(media_dir / "red.png"), folder.upload_image(media_dir / "blue.png")
    group = folder.create_data_group(DataGroupGrid(name="scene-1", layout_contents=[front, rear]))
    dataset = client.create_dataset(f"coco-groups-{_token()}", DatasetType.CORD_STORAGE)
    client.get_dataset(dataset.dataset_hash).link_items([group])
    project = client.get_project(
        client.create_project(f"coco-groups-{_token()}", [dataset.dataset_hash], ontology_hash=ontology_hash)
    )
    (row,) = [r for r in project.list_label_rows_v2() if r.data_title == "scene-1"]
    row.initialise_labels()
    box = project.ontology_structure.get_child_by_title("box", type_=Object)
    spaces = [space for space in row.get_spaces() if space.space_id != "root"]
    assert len(spaces) == 2
    for space in spaces:
        space.put_object_instance(box.create_instance(), coordinates=BOX)  # type: ignore[attr-defined]
    row.save()

    result = export_label_rows.fn(credentials, project.project_hash, tmp_path, coco=True)

    coco = json.loads((tmp_path / project.project_hash / "coco.json").read_text())
    titles = {image["id"]: image["image_title"] for image in coco["images"]}
    assert sorted(titles.values()) == ["scene-1/blue.png", "scene-1/red.png"]
    boxes_per_image = sorted(titles[a["image_id"]] for a in coco["annotations"])
    assert boxes_per_image == ["scene-1/blue.png", "scene-1/red.png"]  # one box on each space
    assert (result.coco_images, result.coco_annotations, result.coco_left_out) == (2, 2, [])
