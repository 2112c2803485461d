"""Layout templates: validation of every limit, and instantiation per group, pure."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from encord.orm.group_layout import DataUnitCarouselTile, DataUnitTile, LayoutGrid, LayoutSettings, TileSettings
from encord.orm.storage import DataGroupCarousel, DataGroupCustom, DataGroupGrid
from pydantic import ValidationError

from prefect_encord.planning.grouping import Group, Member
from prefect_encord.planning.layouts import (
    CarouselLayout,
    CustomLayout,
    GridLayout,
    LayoutFile,
    TemplateError,
    instantiate,
    parse_layout,
)


def _group(name: str = "scene-1", roles: tuple[str | None, ...] = ("front", "rear", "left")) -> Group:
    return Group(name, tuple(Member(f"{name}_{r}.png", str(uuid.uuid4()), r) for r in roles))


def _custom(layout: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": "custom", "layout": layout, **extra}


def _split(first: Any, second: Any, split: float = 50, direction: str = "row") -> dict[str, Any]:
    return {"direction": direction, "first": first, "second": second, "split_percentage": split}


def _tile(role: str) -> dict[str, str]:
    return {"type": "data_unit", "key": role}


def _refused(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_layout(value)


# --- grid and carousel --------------------------------------------------------------------------


def test_a_grid_orders_members_by_its_roles() -> None:
    group = _group()
    grid = instantiate(GridLayout(roles=["left", "front", "rear"]), group, client_metadata={"scene": 1})
    assert isinstance(grid, DataGroupGrid) and grid.name == "scene-1" and grid.client_metadata == {"scene": 1}
    by_role = {m.role: uuid.UUID(m.item_uuid) for m in group.members}
    assert grid.layout_contents == [by_role["left"], by_role["front"], by_role["rear"]]


def test_without_roles_a_grid_or_carousel_keeps_the_group_order() -> None:
    group = _group(roles=(None, None))
    assert instantiate(GridLayout(), group).layout_contents == [uuid.UUID(m.item_uuid) for m in group.members]
    assert isinstance(instantiate(CarouselLayout(), group), DataGroupCarousel)


def test_a_grid_holds_at_most_12_units_and_a_carousel_50() -> None:
    twelve = _group(roles=(None,) * 12)
    assert len(instantiate(GridLayout(), twelve).layout_contents) == 12
    with pytest.raises(TemplateError, match="group 'big' has 13 members; a grid holds at most 12"):
        instantiate(GridLayout(), _group("big", (None,) * 13))
    assert len(instantiate(CarouselLayout(), _group(roles=(None,) * 50)).layout_contents) == 50
    with pytest.raises(TemplateError, match="group 'long' has 51 members; a carousel holds at most 50"):
        instantiate(CarouselLayout(), _group("long", (None,) * 51))


def test_members_must_play_the_roles_of_a_grid_that_names_roles() -> None:
    with pytest.raises(TemplateError) as refused:
        instantiate(GridLayout(roles=["front", "rear"]), _group(roles=("front", "top", None)))
    assert str(refused.value) == (
        "group 'scene-1': 'scene-1_top.png' has role 'top', which the layout lacks (roles: ['front', 'rear']); "
        "group 'scene-1': 'scene-1_None.png' has no role, but the layout places members by role"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "grid", "roles": [str(i) for i in range(13)]}, "roles: 13 roles; a grid holds at most 12 units"),
        ({"kind": "carousel", "roles": [str(i) for i in range(51)]}, "roles: 51 roles; a carousel holds at most 50"),
        ({"kind": "grid", "roles": ["front", "front"]}, "roles: 'front' is listed twice"),
        ({"kind": "grid", "roles": [" "]}, "roles: ' ' must be a non-empty string"),
        ({"kind": "mosaic"}, "does not match any of the expected tags"),
    ],
)
def test_invalid_grid_and_carousel_templates_are_refused(value: dict[str, Any], message: str) -> None:
    _refused(value, message)


# --- custom -------------------------------------------------------------------------------------

CAMERAS = _custom(
    _split(
        _tile("front"),
        _split(
            _tile("rear"),
            {"type": "data_unit_list", "keys": ["left", "right"], "carousel_position": "bottom", "carouselSize": 30},
            split=40,
            direction="column",
        ),
        split=60,
    ),
    settings={"fixed_layout": True, "tile_settings": {"rear": {"title": "Rear camera", "is_read_only": True}}},
    timeline=["front", "audio"],
)


def test_a_custom_template_is_written_with_the_sdk_classes_or_their_dicts() -> None:
    template = parse_layout(CAMERAS)
    assert isinstance(template, CustomLayout) and parse_layout(template) is template
    assert template.roles == ["front", "rear", "left", "right", "audio"]
    assert isinstance(template.layout, LayoutGrid) and isinstance(template.layout.first, DataUnitTile)
    same = CustomLayout(
        layout=LayoutGrid(
            direction="row",
            first=DataUnitTile(key="front"),
            second=LayoutGrid(
                direction="column",
                first=DataUnitTile(key="rear"),
                second=DataUnitCarouselTile(keys=["left", "right"], carousel_position="bottom", carousel_size=30),
                split_percentage=40,
            ),
            split_percentage=60,
        ),
        settings=LayoutSettings(
            fixed_layout=True, tile_settings={"rear": TileSettings(title="Rear camera", is_read_only=True)}
        ),
        timeline=["front", "audio"],
    )
    assert same == template


def test_a_custom_template_is_instantiated_per_group_keyed_by_role() -> None:
    template = parse_layout(CAMERAS)
    group = _group(roles=("audio", "right", "left", "rear", "front"))
    custom = instantiate(template, group, client_metadata={"k": "v"})
    assert isinstance(custom, DataGroupCustom)
    by_role = {m.role: uuid.UUID(m.item_uuid) for m in group.members}
    assert custom.layout_contents == {r: by_role[r] for r in ["front", "rear", "left", "right", "audio"]}
    assert list(custom.layout_contents) == template.roles
    assert custom.layout == template.layout and custom.settings == template.settings
    assert custom.timeline == ["front", "audio"] and custom.client_metadata == {"k": "v"}
    wire = custom.to_dict()
    assert wire["layout"]["splitPercentage"] == 60 and wire["layout"]["second"]["second"]["carouselSize"] == 30
    assert wire["settings"]["tileSettings"]["rear"] == {"title": "Rear camera", "isReadOnly": True}


def test_a_group_must_fill_every_role_of_a_custom_layout_and_no_other() -> None:
    template = parse_layout(_custom(_split(_tile("front"), _tile("rear"))))
    with pytest.raises(TemplateError) as refused:
        instantiate(template, _group("scene-7", ("front", "top")))
    assert str(refused.value) == (
        "group 'scene-7': 'scene-7_top.png' has role 'top', which the layout lacks (roles: ['front', 'rear']); "
        "group 'scene-7' has no member for role(s) ['rear'] of the layout"
    )


@pytest.mark.parametrize("split", [5, 95, 50.5])
def test_split_percentages_from_5_to_95_are_accepted(split: float) -> None:
    parse_layout(_custom(_split(_tile("a"), _tile("b"), split=split)))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (_split(_tile("a"), _tile("b"), split=4.9), "layout: split_percentage 4.9 is outside 5–95"),
        (
            _split(_tile("a"), _split(_tile("b"), _tile("c"), split=150)),
            "layout.second: split_percentage 150 is outside 5–95",
        ),
        (
            {"type": "data_unit_list", "keys": ["a"], "carousel_position": "left", "carousel_size": 71},
            "layout: carousel_size 71 is outside 10–70",
        ),
        (
            _split(
                _tile("a"), {"type": "data_unit_list", "keys": ["b"], "carousel_position": "top", "carousel_size": 9}
            ),
            "layout.second: carousel_size 9 is outside 10–70",
        ),
        (
            {"type": "data_unit_list", "keys": [], "carousel_position": "left", "carousel_size": 20},
            "layout: a carousel tile needs at least one role in keys",
        ),
        (
            {"type": "data_unit_list", "keys": ["a"], "carousel_position": "middle", "carousel_size": 20},
            "carousel_position",
        ),
        (_split(_tile("a"), _tile("a")), "layout: role 'a' is placed in more than one tile"),
        (_split(_tile("a"), _tile("b"), direction="diagonal"), "direction"),
    ],
)
def test_invalid_custom_trees_are_refused_naming_position_and_value(layout: dict[str, Any], message: str) -> None:
    _refused(_custom(layout), message)


def test_custom_settings_timeline_and_size_are_checked() -> None:
    _refused(
        _custom(_tile("a"), settings={"tile_settings": {"b": {"title": "B"}}}),
        "settings.tile_settings: role 'b' is not placed by the layout (roles: ['a'])",
    )
    _refused({"kind": "custom"}, "a custom layout needs a layout tree or a timeline")
    _refused(_custom(_tile("a"), timeline=["b", "b"]), "timeline: role 'b' is listed twice")
    carousel = {
        "type": "data_unit_list",
        "keys": [str(i) for i in range(51)],
        "carousel_position": "left",
        "carousel_size": 20,
    }
    _refused(_custom(carousel), "the layout has 51 roles; a data group holds at most 50 units")
    assert parse_layout({"kind": "custom", "timeline": ["audio"]}).roles == ["audio"]


def test_every_problem_of_a_template_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_layout(_custom(_split(_tile("a"), _tile("a"), split=99), settings={"tile_settings": {"z": {}}}))
    message = str(refused.value)
    assert "split_percentage 99" in message and "role 'a' is placed in more than one tile" in message
    assert "role 'z' is not placed" in message


def test_a_layout_file_holds_a_custom_layout_and_a_bad_one_is_named(tmp_path: Path) -> None:
    good = tmp_path / "cameras.json"
    good.write_text(json.dumps(CAMERAS))
    template = parse_layout({"kind": "layout_file", "path": str(good)})
    assert isinstance(template, CustomLayout) and template.roles == ["front", "rear", "left", "right", "audio"]
    twice = tmp_path / "twice.json"
    twice.write_text('{"timeline": ["a"], "timeline": ["b"]}')
    with pytest.raises(ValueError, match=r"layout file .*twice.json: .*timeline"):
        parse_layout(LayoutFile(path=str(twice)))
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(ValueError, match=r"empty.json: .*needs a layout tree or a timeline"):
        parse_layout(LayoutFile(path=str(empty)))
