"""Data groups through the real SDK (the routes in docs/sandbox.md).

``folder.create_data_groups`` posts grid, carousel and custom layouts; the sandbox validates them (grid ≤ 12
units, ≤ 50 per group, split 5–95, carousel size 10–70, keys that exist, bounded nesting, real non-group
members) and stores each group atomically. ``get_child_items`` and ``get_summary`` read them back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.orm.group_layout import (
    DataUnitCarouselTile,
    DataUnitTile,
    LayoutGrid,
    LayoutSettings,
    TileSettings,
)
from encord.orm.storage import DataGroupCarousel, DataGroupCustom, DataGroupGrid, DataGroupInput, StorageItemType
from encord.storage import StorageFolder
from encord_sandbox.server import Sandbox


@pytest.fixture(scope="module")
def local_integration(sandbox: Sandbox, media_dir: Path) -> str:
    return sandbox.add_integration("group media", "local", root=str(media_dir))


@pytest.fixture
def members(folder: StorageFolder, local_integration: str, media_dir: Path) -> list[UUID]:
    """Fourteen real images in the test's folder, named m00 … m13 (registered in one job)."""
    files = ["red.png", "blue.png", "green.jpg"]
    spec = {"images": [{"objectUrl": (media_dir / files[i % 3]).as_uri(), "title": f"m{i:02d}"} for i in range(14)]}
    job = folder.add_private_data_to_folder_start(local_integration, spec)
    result = folder.add_private_data_to_folder_get_result(job, timeout_seconds=30)
    assert result.status == "DONE"
    by_name = {i.name: i.item_uuid for i in result.items_with_names}
    return [by_name[f"m{i:02d}"] for i in range(14)]


def groups_in(folder: StorageFolder) -> list[UUID]:
    return sorted(i.uuid for i in folder.list_items(item_types=[StorageItemType.GROUP]))


def nested(depth: int, keys: tuple[str, str] = ("a", "b")) -> LayoutGrid | DataUnitTile:
    """A layout tree whose deepest tile sits ``depth`` levels down (the root is level 1)."""
    if depth == 1:
        return DataUnitTile(key=keys[1])
    return LayoutGrid(direction="row", first=DataUnitTile(key=keys[0]), second=nested(depth - 1), split_percentage=50)


def test_grid_carousel_and_custom_groups(client: EncordUserClient, folder: StorageFolder, members: list[UUID]) -> None:
    layout = LayoutGrid(
        direction="row",
        first=DataUnitTile(key="main"),
        second=LayoutGrid(
            direction="column",
            first=DataUnitTile(key="notes"),
            second=DataUnitCarouselTile(keys=["s1", "s2"], carousel_position="bottom", carousel_size=30),
            split_percentage=70,
        ),
        split_percentage=60,
    )
    settings = LayoutSettings(
        fixed_layout=True, tile_settings={"notes": TileSettings(title="Notes", is_read_only=True)}
    )
    grid_members = [members[4], members[0], members[7], members[2]]
    grid, carousel, custom = folder.create_data_groups(
        [
            DataGroupGrid(name="grid", layout_contents=grid_members, client_metadata={"kind": "grid"}),
            DataGroupCarousel(name="carousel", layout_contents=members[8:11]),
            DataGroupCustom(
                name="custom",
                layout_contents={"main": members[0], "notes": members[1], "s1": members[2], "s2": members[3]},
                layout=layout,
                settings=settings,
                timeline=["s1"],
            ),
        ]
    )

    assert groups_in(folder) == sorted([grid, carousel, custom])

    grid_item = client.get_storage_item(grid)
    assert (grid_item.item_type, grid_item.name, grid_item.client_metadata) == (
        StorageItemType.GROUP,
        "grid",
        {"kind": "grid"},
    )
    assert [c.uuid for c in grid_item.get_child_items()] == grid_members  # order = grid position
    grid_layout = grid_item.get_summary().data_group
    assert grid_layout is not None
    assert {k: v.uuid for k, v in grid_layout.layout_contents.items()} == {
        str(i): u for i, u in enumerate(grid_members)
    }

    carousel_item = client.get_storage_item(carousel)
    assert [c.uuid for c in carousel_item.get_child_items()] == members[8:11]
    carousel_layout = carousel_item.get_summary().data_group
    assert carousel_layout is not None
    assert list(carousel_layout.layout_contents) == ["0", "1", "2"]

    custom_item = client.get_storage_item(custom)
    assert [c.uuid for c in custom_item.get_child_items()] == members[0:4]
    custom_layout = custom_item.get_summary().data_group
    assert custom_layout is not None
    assert {k: v.uuid for k, v in custom_layout.layout_contents.items()} == {
        "main": members[0],
        "notes": members[1],
        "s1": members[2],
        "s2": members[3],
    }
    assert custom_layout.layout == layout  # parsed back into the SDK's LayoutGrid tree
    assert custom_layout.layout_settings.fixed_layout is True
    assert custom_layout.layout_settings.tile_settings == {"notes": TileSettings(title="Notes", is_read_only=True)}
    assert custom_layout.timeline == ["s1"]

    # A member knows which groups show it: members[0] is in the grid and the custom group.
    summary = client.get_storage_item(members[0]).get_summary()
    assert summary.frame_in_groups == 2
    assert sorted((g.name, g.uuid) for g in summary.accessible_group_items) == [("custom", custom), ("grid", grid)]
    assert all(g.item_type == StorageItemType.GROUP for g in summary.accessible_group_items)
    assert all(g.parent_uuid == folder.uuid and g.parent_name == folder.name for g in summary.accessible_group_items)
    assert client.get_storage_item(members[13]).get_summary().frame_in_groups == 0


def test_limits_are_inclusive(folder: StorageFolder, members: list[UUID]) -> None:
    """12 grid units, split 5 and 95, carousel size 10 and 70 and eight levels of nesting are all accepted."""
    pair = {"a": members[0], "b": members[1]}
    created = folder.create_data_groups(
        [
            DataGroupGrid(layout_contents=members[:12]),
            DataGroupCustom(
                layout_contents=pair,
                layout=LayoutGrid(
                    direction="column", first=DataUnitTile(key="a"), second=DataUnitTile(key="b"), split_percentage=5
                ),
            ),
            DataGroupCustom(
                layout_contents=pair,
                layout=LayoutGrid(
                    direction="row",
                    first=DataUnitCarouselTile(keys=["a"], carousel_position="left", carousel_size=10),
                    second=DataUnitCarouselTile(keys=["b"], carousel_position="right", carousel_size=70),
                    split_percentage=95,
                ),
            ),
            DataGroupCustom(layout_contents=pair, layout=nested(8)),
            members[12:14],  # a plain list of UUIDs is a carousel
        ]
    )
    assert groups_in(folder) == sorted(created)


def _custom(pair: dict[str, UUID], **kwargs: Any) -> DataGroupCustom:
    return DataGroupCustom(layout_contents=pair, **kwargs)


INVALID_GROUPS: dict[str, tuple[Callable[[list[UUID]], DataGroupInput], str]] = {
    "grid-of-13": (
        lambda m: DataGroupGrid(layout_contents=m[:13]),
        "has 13 data units; a grid holds at most 12",
    ),
    "unknown-tile-key": (
        lambda m: _custom(
            {"a": m[0], "b": m[1]},
            layout=DataUnitTile(key="a"),
            settings=LayoutSettings(tile_settings={"ghost": TileSettings(title="?")}),
        ),
        "refers to key 'ghost', which is not in layoutContents ['a', 'b']",
    ),
    "layout-key-missing": (
        lambda m: _custom(
            {"a": m[0]},
            layout=LayoutGrid(
                direction="row", first=DataUnitTile(key="a"), second=DataUnitTile(key="zz"), split_percentage=50
            ),
        ),
        "refers to key 'zz'",
    ),  # fmt: skip
    "split-99": (
        lambda m: _custom(
            {"a": m[0], "b": m[1]},
            layout=LayoutGrid(
                direction="row", first=DataUnitTile(key="a"), second=DataUnitTile(key="b"), split_percentage=99
            ),
        ),
        "splitPercentage 99.0 must be a number from 5 to 95",
    ),
    "carousel-size-5": (
        lambda m: _custom(
            {"a": m[0], "b": m[1]},
            layout=DataUnitCarouselTile(keys=["a", "b"], carousel_position="top", carousel_size=5),
        ),
        "carouselSize 5.0 must be a number from 10 to 70",
    ),
    "duplicate-member": (
        lambda m: DataGroupCarousel(layout_contents=[m[0], m[1], m[0]]),
        "more than once",
    ),
    "too-deep": (
        lambda m: _custom({"a": m[0], "b": m[1]}, layout=nested(9)),
        "nests deeper than 8 levels",
    ),
    "timeline-unknown-key": (
        lambda m: _custom({"a": m[0]}, layout=DataUnitTile(key="a"), timeline=["nope"]),
        "timeline ['nope'] must list keys of layoutContents",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_GROUPS))
def test_invalid_group_is_refused_and_nothing_is_created(folder: StorageFolder, members: list[UUID], case: str) -> None:
    build, message = INVALID_GROUPS[case]
    valid = DataGroupGrid(name="would-be-valid", layout_contents=members[:2])

    with pytest.raises(InvalidArgumentsError) as excinfo:
        folder.create_data_groups([valid, build(members)])  # the valid sibling is not created either

    assert message in excinfo.value.message
    assert excinfo.value.message.startswith("groups[1]")
    assert groups_in(folder) == []


def test_duplicate_member_error_names_the_item(folder: StorageFolder, members: list[UUID]) -> None:
    with pytest.raises(InvalidArgumentsError, match=str(members[5])):
        folder.create_data_groups([DataGroupGrid(layout_contents=[members[5], members[6], members[5]])])
    assert groups_in(folder) == []


def test_group_cannot_contain_a_group(folder: StorageFolder, members: list[UUID]) -> None:
    inner = folder.create_data_group(DataGroupGrid(name="inner", layout_contents=members[:2]))

    with pytest.raises(InvalidArgumentsError, match=f"item {inner} is itself a data group"):
        folder.create_data_groups([DataGroupGrid(layout_contents=[members[3], inner])])
    assert groups_in(folder) == [inner]


def test_frame_of_an_image_group_cannot_be_a_member(
    client: EncordUserClient, folder: StorageFolder, members: list[UUID], media_dir: Path
) -> None:
    image_group = client.get_storage_item(
        folder.create_image_group([media_dir / "red.png", media_dir / "blue.png"], title="ig")
    )
    frame = next(iter(image_group.get_child_items())).uuid

    with pytest.raises(InvalidArgumentsError, match=f"item {frame} is a frame of another item"):
        folder.create_data_groups([DataGroupGrid(layout_contents=[members[0], frame])])
    assert groups_in(folder) == []


def test_unknown_member_is_not_found(folder: StorageFolder, members: list[UUID]) -> None:
    with pytest.raises(ResourceNotFoundError):
        folder.create_data_groups([DataGroupGrid(layout_contents=[members[0], uuid4()])])
    assert groups_in(folder) == []


def test_other_users_items_cannot_be_grouped(
    other_client: EncordUserClient, folder: StorageFolder, members: list[UUID]
) -> None:
    """Another user's folder cannot take this user's items as members."""
    theirs = other_client.create_storage_folder(f"other-{uuid4().hex[:8]}")

    with pytest.raises(AuthorisationError):
        theirs.create_data_groups([DataGroupGrid(layout_contents=members[:2])])
    assert list(theirs.list_items(item_types=[StorageItemType.GROUP])) == []
