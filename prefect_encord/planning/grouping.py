"""Grouping rules (pure): which items belong together in a data group, and in which role.

Items arrive as ``source → item UUID``, where the source is whatever named the item on the way in: a
file's relative path from an upload, an object URL from a cloud registration. A rule turns them into
named groups of members, each member optionally playing a *role* (``front``, ``rear`` …) that a layout
template places. Two rules cover what people do by hand today:

* :class:`KeyPattern`: a regular expression with named groups, e.g.
  ``(?P<key>scene-\\d+)_(?P<role>front|rear|left)``; items whose name (or full path) matches with the same
  ``key`` form one group, and ``role`` (``tile`` is accepted too) names their place in it.
* :class:`Manifest`: an explicit list, group name → ``{role: item}`` or an ordered list of items; a flow
  parameter names a :class:`GroupsFile` (CSV or JSON) holding it, which the Prefect UI shows as a path field.

Nothing here can fail halfway: :func:`group_items` returns every group it could build, the problems of the
others (named by group, role and source), and the items no rule claimed.

Patterns run on the ``regex`` module (``re``'s syntax, its V0 mode) for one reason: a time limit. A pattern
that backtracks catastrophically (``(?P<key>(a|a)+)b``) would otherwise stall a run on one 34-character name
for hours, deaf to Ctrl-C; with :data:`MATCH_TIMEOUT_SECONDS` it fails the grouping, naming the pattern and
the name, before any group is created.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from uuid import UUID

import regex
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from prefect_encord.planning.ordering import natural_key
from prefect_encord.planning.parameter_models import ParameterModel
from prefect_encord.planning.strict_parsing import loads_json

_ROLE_GROUPS = ("role", "tile")


@dataclass(frozen=True)
class Member:
    """One item in a group: the source that named it, its UUID and its role (None where roles are not used)."""

    source: str
    item_uuid: str
    role: str | None = None


@dataclass(frozen=True)
class Group:
    """A named group of members, in display order unless a layout template reorders them by role."""

    name: str
    members: tuple[Member, ...]


@dataclass
class Grouping:
    """Groups built, problems found (group name → reason) and sources no rule claimed."""

    groups: list[Group] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


#: The longest one name may take to match. A sane pattern takes microseconds on a file name or URL; one that
#: takes this long is backtracking catastrophically, and would take far longer on the next name.
MATCH_TIMEOUT_SECONDS = 0.5


class PatternTooSlow(ValueError):
    """A grouping pattern took longer than :data:`MATCH_TIMEOUT_SECONDS` on one name."""


class KeyPattern(ParameterModel):
    """Group items by a key taken from their name or path with a regular expression.

    The pattern must have a named group ``key``; an optional named group ``role`` (or ``tile``) gives the
    member's role. It is searched (like ``re.search``) in the item's file name, or in its whole source string
    with ``match_on="path"``. The group is named by ``name_format``, filled with the pattern's named groups.
    """

    model_config = ConfigDict(title="Key pattern")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["key_pattern"]] = Field(default="key_pattern", exclude=True)  # see parameter_models
    pattern: str = Field(description="Regular expression with a named group 'key' and optionally 'role' or 'tile'.")
    match_on: Literal["name", "path"] = Field(
        default="name", description="Match the file name (last path segment) or the whole source string."
    )
    name_format: str = Field(
        default="{key}", description="Group name, formatted with the pattern's named groups, e.g. 'drive-{key}'."
    )

    @field_validator("pattern")
    @classmethod
    def _has_key_group(cls, pattern: str) -> str:
        try:
            groups = regex.compile(pattern).groupindex
        except regex.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from exc
        if "key" not in groups:
            raise ValueError(f"pattern {pattern!r} needs a named group (?P<key>...) naming the data group")
        if all(role in groups for role in _ROLE_GROUPS):
            raise ValueError(f"pattern {pattern!r} names both a 'role' and a 'tile' group; use one")
        return pattern

    @model_validator(mode="after")
    def _name_format_fits(self) -> KeyPattern:
        groups = regex.compile(self.pattern).groupindex
        try:
            self.name_format.format(**dict.fromkeys(groups, "x"))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"name_format {self.name_format!r} must use only the pattern's named groups {sorted(groups)}: {exc!r}"
            ) from exc
        return self


class Manifest(ParameterModel):
    """Groups listed explicitly: group name → ``{role: item}`` or an ordered list of items.

    An item is named by its source exactly, or by its file name when exactly one source has that name.
    """

    model_config = ConfigDict(title="Listed groups")  # the Prefect UI's label, not the class name

    kind: Literal["manifest"] = "manifest"
    groups: dict[str, dict[str, str] | list[str]] = Field(description="Group name → {role: item} or [item, ...].")


class GroupsFile(ParameterModel):
    """Groups listed in a file: what :class:`Manifest` holds, written where a person keeps it.

    A CSV has the columns ``group``, ``item`` and optionally ``role``, one member a row, in display order; a
    JSON file maps each group name to ``{role: item}`` or to ``[item, ...]`` (a name twice is refused).
    """

    model_config = ConfigDict(title="Groups file")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["groups_file"]] = Field(default="groups_file", exclude=True)  # see parameter_models
    path: str = Field(description="A CSV (columns group, item, role) or JSON file listing the groups' members.")

    @field_validator("path")
    @classmethod
    def _known_format(cls, path: str) -> str:
        if PurePosixPath(path).suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"groups file {path!r} must be a .csv or .json file")
        return path

    def load(self) -> Manifest:
        """The :class:`Manifest` the file lists.

        Raises:
            ValueError: Naming the file and the row or key, if it cannot be read as groups.
        """
        text = Path(self.path).expanduser().read_text(encoding="utf-8")
        if self.path.lower().endswith(".json"):
            try:
                groups = loads_json(text)
            except ValueError as exc:
                raise ValueError(f"groups file {self.path}: {exc}") from exc
            try:
                return Manifest(groups=groups)
            except ValidationError as exc:
                raise ValueError(f"groups file {self.path}: each group must map roles to items or list items: "
                                 f"{exc.errors()[0]['msg']}") from None  # fmt: skip
        return Manifest(groups=_groups_from_csv(self.path, text))


def _groups_from_csv(path: str, text: str) -> dict[str, dict[str, str] | list[str]]:
    """Group → {role: item} (rows with roles) or [item, ...] (rows without), from the CSV's rows in order."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"group", "item"} <= set(reader.fieldnames):
        raise ValueError(f"groups file {path} needs the columns 'group' and 'item' (and optionally 'role')")
    groups: dict[str, dict[str, str] | list[str]] = {}
    for number, row in enumerate(reader, start=1):
        name, item, role = (row.get("group") or "").strip(), (row.get("item") or "").strip(), row.get("role")
        if not name or not item:
            raise ValueError(f"groups file {path}, row {number}: 'group' and 'item' must both be given")
        members = groups.setdefault(name, {} if role else [])
        if isinstance(members, dict) != bool(role):
            raise ValueError(f"groups file {path}, row {number}: group {name!r} mixes rows with and without a role")
        if isinstance(members, dict):
            if role in members:
                raise ValueError(f"groups file {path}, row {number}: group {name!r} has role {role!r} twice")
            members[str(role)] = item
        else:
            members.append(item)
    return groups


GroupingRule = KeyPattern | Manifest | GroupsFile
_BY_KIND: TypeAdapter[GroupingRule] = TypeAdapter(Annotated[GroupingRule, Field(discriminator="kind")])
#: A form's value names no kind: its fields tell (see parameter_models).
_BY_FIELDS: TypeAdapter[GroupingRule] = TypeAdapter(GroupingRule)


def parse_rule(value: GroupingRule | Mapping[str, Any]) -> KeyPattern | Manifest:
    """A rule from itself or its dict form (``{"kind": "key_pattern", "pattern": ...}``, e.g. a flow parameter);
    a groups file is read into the :class:`Manifest` it lists."""
    if isinstance(value, KeyPattern | Manifest | GroupsFile):
        rule: GroupingRule = value
    else:
        rule = (_BY_KIND if "kind" in value else _BY_FIELDS).validate_python(value)
    return rule.load() if isinstance(rule, GroupsFile) else rule


def group_items(items: Mapping[str, str | UUID], rule: KeyPattern | Manifest) -> Grouping:
    """Apply ``rule`` to ``items`` (source → item UUID); a :class:`GroupsFile` is read by :func:`parse_rule`."""
    if isinstance(rule, KeyPattern):
        return _by_pattern(items, rule)
    return _by_manifest(items, rule)


def _by_pattern(items: Mapping[str, str | UUID], rule: KeyPattern) -> Grouping:
    compiled = regex.compile(rule.pattern)
    role_group = next((g for g in _ROLE_GROUPS if g in compiled.groupindex), None)
    result = Grouping()
    members: dict[str, list[Member]] = defaultdict(list)
    for source in sorted(items, key=natural_key):
        subject = source if rule.match_on == "path" else PurePosixPath(source).name
        try:
            match = compiled.search(subject, timeout=MATCH_TIMEOUT_SECONDS)
        except TimeoutError:
            raise PatternTooSlow(
                f"the group pattern {rule.pattern!r} took over {MATCH_TIMEOUT_SECONDS} s on {subject!r} "
                f"({len(subject)} characters): it backtracks catastrophically; rewrite it without nested or "
                "overlapping repetition such as (a|a)+ or (a+)+"
            ) from None
        if match is None or match.group("key") is None:
            result.unmatched.append(source)
            continue
        name = rule.name_format.format(**{k: v or "" for k, v in match.groupdict().items()})
        role = match.group(role_group) if role_group else None
        members[name].append(Member(source=source, item_uuid=str(items[source]), role=role))
    for name, group_members in members.items():
        _add(result, name, group_members)
    return result


def _by_manifest(items: Mapping[str, str | UUID], rule: Manifest) -> Grouping:
    by_name: dict[str, list[str]] = defaultdict(list)
    for source in items:
        by_name[PurePosixPath(source).name].append(source)
    result = Grouping()
    claimed: set[str] = set()
    for name, listed in rule.groups.items():
        entries: list[tuple[str | None, str]] = (
            list(listed.items()) if isinstance(listed, dict) else [(None, ref) for ref in listed]
        )
        members: list[Member] = []
        missing: list[str] = []
        for role, ref in entries:
            found = _resolve(ref, items, by_name)
            if found is None:
                ambiguous = len(by_name.get(ref, ())) > 1
                missing.append(f"{ref!r} ({'names several items' if ambiguous else 'is not among the items'})")
            else:
                members.append(Member(source=found, item_uuid=str(items[found]), role=role))
                claimed.add(found)
        if missing:
            result.problems[name] = f"group {name!r}: item {', '.join(missing)}"
        else:
            _add(result, name, members)
    result.unmatched = sorted((s for s in items if s not in claimed), key=natural_key)
    return result


def _resolve(ref: str, items: Mapping[str, object], by_name: Mapping[str, list[str]]) -> str | None:
    """The source a manifest entry names: itself if it is a source, else the only source with that file name."""
    if ref in items:
        return ref
    named = by_name.get(ref, [])
    return named[0] if len(named) == 1 else None


def _add(result: Grouping, name: str, members: list[Member]) -> None:
    """Add a group unless two members claim one role or one item appears twice."""
    if not name.strip():
        result.problems[name] = f"group name {name!r} is empty"
        return
    for attribute, what in (("role", "role"), ("item_uuid", "item")):
        seen: dict[str, str] = {}
        for member in members:
            value = getattr(member, attribute)
            if value is None:
                continue
            if value in seen:
                result.problems[name] = (
                    f"group {name!r}: {what} {value!r} is claimed by both {seen[value]!r} and {member.source!r}"
                )
                return
            seen[value] = member.source
    result.groups.append(Group(name=name, members=tuple(members)))
