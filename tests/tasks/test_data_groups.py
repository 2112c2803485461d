"""The data-group task against the sandbox: every layout, batching, re-runs, refusals; and one real flow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from encord.orm.group_layout import DataUnitCarouselTile, LayoutGrid
from encord.orm.storage import StorageItemType
from encord.storage import StorageFolder
from encord_sandbox import Sandbox
from encord_sandbox.samples import png
from prefect import flow
from pydantic import ValidationError

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.grouping import KeyPattern, Manifest
from prefect_encord.planning.layouts import CarouselLayout, GridLayout
from prefect_encord.tasks.data_groups import DataGroupsResult, create_data_groups
from prefect_encord.tasks.uploads import UploadResult, upload_directory
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog

SCENE_RULE = KeyPattern(pattern=r"(?P<key>scene-\d+)_(?P<tile>front|rear|left)")
CAMERAS = {
    "kind": "custom",
    "layout": {
        "direction": "row",
        "first": {"type": "data_unit", "key": "front"},
        "second": {
            "direction": "column",
            "first": {"type": "data_unit", "key": "rear"},
            "second": {"type": "data_unit_list", "keys": ["left"], "carousel_position": "bottom", "carousel_size": 25},
            "split_percentage": 40,
        },
        "split_percentage": 60,
    },
    "settings": {"fixed_layout": True, "tile_settings": {"rear": {"title": "Rear", "is_read_only": True}}},
}


def _write_scenes(root: Path, scenes: int, cameras: tuple[str, ...] = ("front", "rear", "left")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for scene in range(1, scenes + 1):
        for index, camera in enumerate(cameras):
            (root / f"scene-{scene}_{camera}.png").write_bytes(png(color=(scene, index, 99)))
    return root


@pytest.fixture
def credentials(sandbox: Sandbox) -> EncordCredentials:
    return credentials_block(sandbox)


@pytest.fixture
def scenes(credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path) -> UploadResult:
    """Three scenes of three cameras each, uploaded into the test's folder."""
    uploaded = upload_directory.fn(credentials, folder.uuid, _write_scenes(tmp_path / "cams", 3))
    assert uploaded.failed == {}
    return uploaded


def _groups(folder: StorageFolder) -> dict[str, Any]:
    return {item.name: item for item in folder.list_items(item_types=[StorageItemType.GROUP])}


def _contents(group: Any) -> dict[str, uuid.UUID]:
    summary = group.get_summary().data_group
    return {key: child.uuid for key, child in summary.layout_contents.items()}


def test_custom_layout_groups_are_created_in_one_request(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult, http_log: HttpLog
) -> None:
    result = create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, CAMERAS, {"rig": "A"})

    assert set(result.groups) == {"scene-1", "scene-2", "scene-3"} and result.failed == {} and result.skipped == []
    assert http_log.calls("POST", "/create-group-items") == 1
    groups = _groups(folder)
    assert {name: str(g.uuid) for name, g in groups.items()} == result.groups
    scene2 = groups["scene-2"]
    assert scene2.client_metadata == {"rig": "A"}
    assert _contents(scene2) == {r: uuid.UUID(scenes.items[f"scene-2_{r}.png"]) for r in ("front", "rear", "left")}
    layout = scene2.get_summary().data_group
    assert isinstance(layout.layout, LayoutGrid) and layout.layout.split_percentage == 60
    assert isinstance(layout.layout.second, LayoutGrid)
    assert (
        isinstance(layout.layout.second.second, DataUnitCarouselTile)
        and layout.layout.second.second.carousel_size == 25
    )
    assert layout.layout_settings.fixed_layout is True
    assert layout.layout_settings.tile_settings["rear"].title == "Rear"


def test_grid_and_carousel_groups_follow_the_role_order(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult
) -> None:
    grid = create_data_groups.fn(
        credentials, folder.uuid, scenes.items, SCENE_RULE.model_copy(update={"name_format": "grid-{key}"}),
        GridLayout(roles=["left", "front", "rear"]),
    )  # fmt: skip
    fronts = Manifest(groups={"all-fronts": [f"scene-{i}_front.png" for i in (3, 1, 2)]})
    carousel = create_data_groups.fn(credentials, folder.uuid, scenes.items, fronts, CarouselLayout())

    assert grid.failed == {} == carousel.failed
    assert carousel.unmatched == sorted(set(scenes.items) - {f"scene-{i}_front.png" for i in (1, 2, 3)})
    groups = _groups(folder)
    assert list(_contents(groups["grid-scene-1"]).values()) == [
        uuid.UUID(scenes.items[f"scene-1_{r}.png"]) for r in ("left", "front", "rear")
    ]
    assert groups["all-fronts"].get_summary().data_group.layout is None
    assert list(_contents(groups["all-fronts"]).values()) == [
        uuid.UUID(scenes.items[f"scene-{i}_front.png"]) for i in (3, 1, 2)
    ]


def test_a_rerun_is_idempotent_by_group_name(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult, http_log: HttpLog
) -> None:
    first = create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, CAMERAS)
    http_log.api.clear()
    second = create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, CAMERAS)

    assert second.groups == first.groups and sorted(second.skipped) == sorted(first.groups)
    assert http_log.calls("POST", "/create-group-items") == 0
    assert len(_groups(folder)) == 3


def test_groups_are_created_in_batches(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult, http_log: HttpLog
) -> None:
    result = create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, CAMERAS, batch_size=2)
    assert len(result.groups) == 3 and http_log.calls("POST", "/create-group-items") == 2


def test_an_invalid_template_is_refused_before_any_request(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult, http_log: HttpLog
) -> None:
    http_log.api.clear()
    bad = {**CAMERAS, "layout": {**CAMERAS["layout"], "split_percentage": 120}}
    with pytest.raises(ValidationError, match="layout: split_percentage 120 is outside 5–95"):
        create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, bad)
    assert http_log.api == [] and _groups(folder) == {}


def test_a_group_that_does_not_fit_fails_alone(
    credentials: EncordCredentials, folder: StorageFolder, tmp_path: Path
) -> None:
    _write_scenes(tmp_path / "cams", 2)
    (tmp_path / "cams" / "scene-3_front.png").write_bytes(png(color=(3, 3, 3)))  # no rear, no left
    uploaded = upload_directory.fn(credentials, folder.uuid, tmp_path / "cams")

    result = create_data_groups.fn(credentials, folder.uuid, uploaded.items, SCENE_RULE, CAMERAS)

    assert set(result.groups) == {"scene-1", "scene-2"}
    assert result.failed == {"scene-3": "group 'scene-3' has no member for role(s) ['rear', 'left'] of the layout"}
    assert set(_groups(folder)) == {"scene-1", "scene-2"}


def test_a_group_encord_refuses_is_isolated_and_the_rest_of_its_batch_created(
    credentials: EncordCredentials, folder: StorageFolder, scenes: UploadResult, http_log: HttpLog
) -> None:
    existing = create_data_groups.fn(credentials, folder.uuid, scenes.items, SCENE_RULE, CarouselLayout())
    items = {**scenes.items, "a-group": existing.groups["scene-1"]}  # a group cannot be a member of another
    manifest = Manifest(
        groups={f"pair-{i}": [f"scene-{i}_front.png", f"scene-{i}_rear.png"] for i in (1, 2, 3)}
        | {"nested": ["scene-1_left.png", "a-group"]}
    )
    http_log.api.clear()

    result = create_data_groups.fn(credentials, folder.uuid, items, manifest, GridLayout())

    assert set(result.groups) == {"pair-1", "pair-2", "pair-3"}
    assert list(result.failed) == ["nested"] and "is itself a data group" in result.failed["nested"]
    assert http_log.calls("POST", "/create-group-items") == 5  # 4 → 2 + 2 → the bad pair split → 1 + 1


def test_upload_and_group_inside_a_flow(prefect_harness: None, sandbox: Sandbox, tmp_path: Path) -> None:
    """The tasks run as real Prefect tasks: a block and plain values in, serialisable results out."""

    @flow
    def ingest(directory: str, folder_name: str) -> tuple[UploadResult, DataGroupsResult]:
        credentials = credentials_block(sandbox)
        folder = str(credentials.get_client().create_storage_folder(folder_name).uuid)
        uploaded = upload_directory.submit(credentials, folder, directory).result()
        grouped = create_data_groups(credentials, folder, uploaded.items, SCENE_RULE, CAMERAS)
        return uploaded, grouped

    uploaded, grouped = ingest(str(_write_scenes(tmp_path / "cams", 2)), f"flow-{uuid.uuid4().hex[:6]}")

    assert len(uploaded.items) == 6 and uploaded.failed == {}
    assert set(grouped.groups) == {"scene-1", "scene-2"}
    assert DataGroupsResult.model_validate_json(grouped.model_dump_json()) == grouped
