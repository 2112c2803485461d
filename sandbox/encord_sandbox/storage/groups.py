"""Data-group rules (pure): what makes a grid, carousel or custom layout valid, and its content keys.

The SDK only checks types, so the sandbox decides the limits, following Encord's documentation:
a grid shows at most 12 data units (the SDK's Data Groups page), every layout at most 50 (the
Index page), split percentages 5–95 and carousel sizes 10–70 (the SDK docstrings). Grid and
carousel contents are keyed ``"0"``, ``"1"``, … in the order given; a custom layout keeps the
caller's keys, and every key its tree, timeline or tile settings mention must exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from encord_sandbox.errors import InvalidArgument, parse_uuid
from encord_sandbox.limits import CAROUSEL_SIZE_RANGE, MAX_GRID_UNITS, MAX_GROUP_UNITS, SPLIT_RANGE

#: Nesting of a custom layout the sandbox accepts (its own guard: Encord documents none).
MAX_LAYOUT_DEPTH = 8
LAYOUT_TYPES = ("default-grid", "default-list", "custom")


@dataclass(frozen=True)
class GroupPlan:
    """A validated group: its name, ordered ``(key, item uuid)`` children and layout to store."""

    name: str | None
    children: list[tuple[str, str]]
    layout: dict[str, Any]
    client_metadata: dict[str, Any]


def plan_group(raw: Any, where: str) -> GroupPlan:
    """Validate one ``DataGroupInput``; ``where`` (e.g. ``groups[2]``) prefixes every error."""
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where} must be an object")
    layout_type = raw.get("layoutType")
    if layout_type not in LAYOUT_TYPES:
        raise InvalidArgument(f"{where}.layoutType {layout_type!r} is not one of {list(LAYOUT_TYPES)}")
    contents = raw.get("layoutContents")
    if layout_type == "custom":
        children = _keyed_contents(contents, where)
    else:
        children = _listed_contents(contents, where, MAX_GRID_UNITS if layout_type == "default-grid" else None)
    uuids = [child for _, child in children]
    duplicates = sorted({u for u in uuids if uuids.count(u) > 1})
    if duplicates:
        raise InvalidArgument(f"{where} lists item {duplicates[0]} more than once")
    keys = {key for key, _ in children}
    layout = raw.get("layout") if layout_type == "custom" else None
    if layout is not None:
        _check_tile(layout, keys, f"{where}.layout", depth=1)
    timeline = raw.get("timeline") or []
    if not isinstance(timeline, list) or any(k not in keys for k in timeline):
        raise InvalidArgument(f"{where}.timeline {timeline!r} must list keys of layoutContents")
    settings = _settings(raw.get("settings"), keys, where)
    metadata = raw.get("clientMetadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidArgument(f"{where}.clientMetadata must be an object")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidArgument(f"{where}.name {name!r} must be a non-empty string")
    stored = {"layoutType": layout_type, "layout": layout, "layoutSettings": settings, "timeline": timeline}
    return GroupPlan(name=name, children=children, layout=stored, client_metadata=metadata)


def _listed_contents(contents: Any, where: str, limit: int | None) -> list[tuple[str, str]]:
    if not isinstance(contents, list) or not contents:
        raise InvalidArgument(f"{where}.layoutContents must be a non-empty list of item UUIDs")
    maximum = limit or MAX_GROUP_UNITS
    if len(contents) > maximum:
        kind = "a grid" if limit else "a data group"
        raise InvalidArgument(f"{where} has {len(contents)} data units; {kind} holds at most {maximum}")
    return [(str(i), parse_uuid(u, f"{where}.layoutContents[{i}]")) for i, u in enumerate(contents)]


def _keyed_contents(contents: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(contents, dict) or not contents:
        raise InvalidArgument(f"{where}.layoutContents must be a non-empty object of key → item UUID")
    if len(contents) > MAX_GROUP_UNITS:
        raise InvalidArgument(f"{where} has {len(contents)} data units; a data group holds at most {MAX_GROUP_UNITS}")
    for key in contents:
        if not key.strip() or len(key) > 128:
            raise InvalidArgument(f"{where}.layoutContents key {key!r} must be 1–128 characters")
    return [(key, parse_uuid(u, f"{where}.layoutContents[{key!r}]")) for key, u in contents.items()]


def _check_tile(node: Any, keys: set[str], where: str, depth: int) -> None:
    if depth > MAX_LAYOUT_DEPTH:
        raise InvalidArgument(f"{where} nests deeper than {MAX_LAYOUT_DEPTH} levels")
    if not isinstance(node, dict):
        raise InvalidArgument(f"{where} must be a tile object, got {node!r}")
    kind = node.get("type")
    if kind == "data_unit":
        _known_key(node.get("key"), keys, where)
    elif kind == "data_unit_list":
        tile_keys = node.get("keys")
        if not isinstance(tile_keys, list) or not tile_keys:
            raise InvalidArgument(f"{where}.keys must be a non-empty list")
        for key in tile_keys:
            _known_key(key, keys, where)
        position = node.get("carouselPosition", node.get("carousel_position", "bottom"))
        if position not in ("left", "right", "top", "bottom"):
            raise InvalidArgument(f"{where}.carouselPosition {position!r} is not left/right/top/bottom")
        size = node.get("carouselSize", node.get("carousel_size"))
        if size is not None:
            _in_range(size, CAROUSEL_SIZE_RANGE, f"{where}.carouselSize")
    elif "direction" in node or "first" in node:
        if node.get("direction") not in ("row", "column"):
            raise InvalidArgument(f"{where}.direction {node.get('direction')!r} is not 'row' or 'column'")
        _in_range(node.get("splitPercentage", node.get("split_percentage")), SPLIT_RANGE, f"{where}.splitPercentage")
        _check_tile(node.get("first"), keys, f"{where}.first", depth + 1)
        _check_tile(node.get("second"), keys, f"{where}.second", depth + 1)
    else:
        raise InvalidArgument(f"{where} has unknown tile type {kind!r}")


def _known_key(key: Any, keys: set[str], where: str) -> None:
    if key not in keys:
        raise InvalidArgument(f"{where} refers to key {key!r}, which is not in layoutContents {sorted(keys)}")


def _in_range(value: Any, bounds: tuple[float, float], where: str) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidArgument(f"{where} {value!r} must be a number from {low:g} to {high:g}")


def _settings(raw: Any, keys: set[str], where: str) -> dict[str, Any]:
    if raw is None:
        return {"fixedLayout": False, "tileSettings": {}}
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where}.settings must be an object")
    tiles = raw.get("tileSettings", raw.get("tile_settings")) or {}
    if not isinstance(tiles, dict):
        raise InvalidArgument(f"{where}.settings.tileSettings must be an object")
    for key in tiles:
        _known_key(key, keys, f"{where}.settings.tileSettings")
    return {**raw, "tileSettings": tiles}
