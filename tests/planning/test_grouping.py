"""Grouping rules: key patterns and manifests, pure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from prefect_encord.planning.grouping import (
    MATCH_TIMEOUT_SECONDS,
    GroupsFile,
    KeyPattern,
    Manifest,
    Member,
    PatternTooSlow,
    group_items,
    parse_rule,
)

SCENES = {
    "cams/scene-2_rear.png": "u2r",
    "cams/scene-2_front.png": "u2f",
    "cams/scene-10_front.png": "u10f",
    "cams/scene-2_left.png": "u2l",
    "cams/readme.txt": "ureadme",
}


def test_a_key_pattern_groups_by_key_with_roles_in_natural_order() -> None:
    grouping = group_items(SCENES, KeyPattern(pattern=r"(?P<key>scene-\d+)_(?P<role>front|rear|left)"))
    assert [g.name for g in grouping.groups] == ["scene-2", "scene-10"]
    scene2 = grouping.groups[0]
    assert [(m.role, m.item_uuid) for m in scene2.members] == [("front", "u2f"), ("left", "u2l"), ("rear", "u2r")]
    assert grouping.unmatched == ["cams/readme.txt"] and grouping.problems == {}


def test_tile_names_the_role_as_in_the_issue_example() -> None:
    grouping = group_items(SCENES, KeyPattern(pattern=r"(?P<key>scene-\d+)_(?P<tile>front|rear|left)"))
    assert {m.role for m in grouping.groups[0].members} == {"front", "rear", "left"}


def test_without_a_role_group_members_have_no_role() -> None:
    grouping = group_items(SCENES, KeyPattern(pattern=r"(?P<key>scene-\d+)_"))
    assert all(m.role is None for g in grouping.groups for m in g.members)


def test_matching_on_the_path_and_naming_groups_with_a_format() -> None:
    items = {"drive-1/front.png": "a", "drive-1/rear.png": "b", "drive-2/front.png": "c"}
    assert group_items(items, KeyPattern(pattern=r"(?P<key>drive-\d+)")).unmatched == list(items)  # file names only
    rule = KeyPattern(pattern=r"(?P<key>drive-\d+)/(?P<role>\w+)\.png$", match_on="path", name_format="run-{key}")
    grouping = group_items(items, rule)
    assert [(g.name, len(g.members)) for g in grouping.groups] == [("run-drive-1", 2), ("run-drive-2", 1)]


def test_two_items_claiming_one_role_make_a_problem_for_their_group_only() -> None:
    items = {"scene-1_front.png": "a", "scene-1_front.jpg": "b", "scene-2_front.png": "c"}
    grouping = group_items(items, KeyPattern(pattern=r"(?P<key>scene-\d+)_(?P<role>front)"))
    assert [g.name for g in grouping.groups] == ["scene-2"]
    assert grouping.problems == {
        "scene-1": "group 'scene-1': role 'front' is claimed by both 'scene-1_front.jpg' and 'scene-1_front.png'"
    }


@pytest.mark.parametrize(
    ("pattern", "name_format", "message"),
    [
        (r"scene-\d+", "{key}", "needs a named group (?P<key>...)"),
        (r"(?P<key>scene-(\d+)", "{key}", "is not a regular expression"),
        (r"(?P<key>s)(?P<role>f)(?P<tile>r)", "{key}", "names both a 'role' and a 'tile' group"),
        (r"(?P<key>s)", "{scene}", "must use only the pattern's named groups ['key']"),
    ],
)
def test_invalid_key_patterns_are_refused_when_built(pattern: str, name_format: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        KeyPattern(pattern=pattern, name_format=name_format)


def test_a_manifest_lists_members_by_role_or_in_order_and_by_source_or_unique_file_name() -> None:
    items = {"a/front.png": "f", "a/rear.png": "r", "b/rear.png": "r2", "notes.txt": "n"}
    manifest = Manifest(
        groups={"pair": {"front": "front.png", "rear": "a/rear.png"}, "list": ["notes.txt", "b/rear.png"]}
    )
    grouping = group_items(items, manifest)
    pair, listed = grouping.groups
    assert pair.members == (Member("a/front.png", "f", "front"), Member("a/rear.png", "r", "rear"))
    assert [m.item_uuid for m in listed.members] == ["n", "r2"] and listed.members[0].role is None
    assert grouping.unmatched == [] and grouping.problems == {}


def test_manifest_entries_that_name_no_item_or_several_fail_their_group() -> None:
    items = {"a/rear.png": "1", "b/rear.png": "2", "c.png": "3", "d.png": "4"}
    grouping = group_items(
        items, Manifest(groups={"bad": ["rear.png", "ghost.png"], "good": ["c.png"], "twice": ["d.png", "d.png"]})
    )
    assert [g.name for g in grouping.groups] == ["good"]
    assert grouping.problems["bad"] == (
        "group 'bad': item 'rear.png' (names several items), 'ghost.png' (is not among the items)"
    )
    assert grouping.problems["twice"] == "group 'twice': item '4' is claimed by both 'd.png' and 'd.png'"
    assert grouping.unmatched == ["a/rear.png", "b/rear.png"]


def test_rules_parse_from_their_dict_form() -> None:
    rule = parse_rule({"kind": "key_pattern", "pattern": r"(?P<key>x)"})
    assert isinstance(rule, KeyPattern) and parse_rule(rule) is rule
    assert isinstance(parse_rule({"kind": "manifest", "groups": {"g": ["a"]}}), Manifest)
    with pytest.raises(ValidationError):
        parse_rule({"kind": "folders"})


def test_a_pattern_that_backtracks_catastrophically_is_stopped_and_named() -> None:
    rule = KeyPattern(pattern="(?P<key>(a|a)+)b")
    with pytest.raises(PatternTooSlow, match=rf"took over {MATCH_TIMEOUT_SECONDS} s on '{'a' * 40}' \(40 characters\)"):
        group_items({"ok-1.png": "u1", "a" * 40: "u2"}, rule)


def test_a_groups_file_in_csv_or_json_lists_what_a_manifest_holds(tmp_path: Path) -> None:
    csv_file = tmp_path / "groups.csv"
    csv_file.write_text("group,role,item\nscene-1,front,a.png\nscene-1,rear,b.png\n")
    json_file = tmp_path / "groups.json"
    json_file.write_text('{"scene-1": {"front": "a.png", "rear": "b.png"}, "all": ["a.png", "b.png"]}')
    scene = Manifest(groups={"scene-1": {"front": "a.png", "rear": "b.png"}})
    assert parse_rule(GroupsFile(path=str(csv_file))) == scene
    assert parse_rule({"kind": "groups_file", "path": str(json_file)}) == Manifest(
        groups={"scene-1": {"front": "a.png", "rear": "b.png"}, "all": ["a.png", "b.png"]}
    )


def test_a_bad_groups_file_is_refused_naming_the_file_and_row(tmp_path: Path) -> None:
    twice = tmp_path / "twice.csv"
    twice.write_text("group,role,item\ng,front,a.png\ng,front,b.png\n")
    with pytest.raises(ValueError, match=r"twice.csv, row 2: group 'g' has role 'front' twice"):
        parse_rule(GroupsFile(path=str(twice)))
    repeated = tmp_path / "repeated.json"
    repeated.write_text('{"g": ["a.png"], "g": ["b.png"]}')
    with pytest.raises(ValueError, match=r"repeated.json: .*'g'"):
        parse_rule(GroupsFile(path=str(repeated)))
    with pytest.raises(ValueError, match=r"must be a .csv or .json file"):
        GroupsFile(path="groups.xlsx")
