"""Layout templates (pure): a data group's layout defined once over roles, instantiated for every group.

A template never names items, only *roles* (``front``, ``rear``, ``instructions`` …); each group fills
the roles with its members (see :mod:`prefect_encord.planning.grouping`). Three kinds, matching the SDK's
data-group inputs:

* :class:`GridLayout` → ``DataGroupGrid``: a fixed grid of at most 12 units, ordered by ``roles`` if given.
* :class:`CarouselLayout` → ``DataGroupCarousel``: a scrollable list plus the selected unit, at most 50.
* :class:`CustomLayout` → ``DataGroupCustom``: a tree of row/column splits (``LayoutGrid``) with
  single-unit tiles (``DataUnitTile``) and carousel tiles (``DataUnitCarouselTile``), tile settings
  (``title``, ``is_read_only``) and a timeline, written with the SDK's own ``encord.orm.group_layout``
  classes (or the equivalent dicts) whose keys are roles; a flow parameter names a :class:`LayoutFile` (JSON)
  holding one, since the Prefect UI cannot draw a recursive form.

The SDK checks only types; Encord documents the limits (12 grid units, 50 per group, ``split_percentage``
5–95, ``carousel_size`` 10–70) and refuses a whole request when one group breaks them. Templates are
therefore checked when built, and each group when instantiated, so a bad value is named (with the group,
role or tree position) before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from encord.orm.group_layout import DataGroupLayout, DataUnitCarouselTile, DataUnitTile, LayoutGrid, LayoutSettings
from encord.orm.storage import DataGroupCarousel, DataGroupCustom, DataGroupGrid, DataGroupInput
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from prefect_encord.limits import CAROUSEL_SIZE_RANGE, MAX_GRID_UNITS, MAX_GROUP_UNITS, SPLIT_PERCENTAGE_RANGE
from prefect_encord.planning.grouping import Group, Member
from prefect_encord.planning.ids import is_uuid
from prefect_encord.planning.parameter_models import ParameterModel
from prefect_encord.planning.strict_parsing import loads_json


class TemplateError(ValueError):
    """A layout template or one group's fit to it is invalid; the message names every problem."""


class GridLayout(ParameterModel):
    """A fixed grid of up to 12 units, in the order of ``roles`` if given, else in the group's order."""

    model_config = ConfigDict(title="Grid")  # the Prefect UI's label, not the class name

    kind: Literal["grid"] = "grid"
    # A plain list, empty for none: the Prefect UI's form hangs on an optional list's "list" tab.
    roles: list[str] = Field(
        default_factory=list, description="Roles in grid order; members must play one of them (empty: none)."
    )

    @model_validator(mode="after")
    def _valid(self) -> GridLayout:
        _raise(_role_list_problems(self.roles, MAX_GRID_UNITS, "grid"))
        return self


class CarouselLayout(ParameterModel):
    """A carousel of up to 50 units, in the order of ``roles`` if given, else in the group's order."""

    model_config = ConfigDict(title="Carousel")  # the Prefect UI's label, not the class name

    kind: Literal["carousel"] = "carousel"
    roles: list[str] = Field(
        default_factory=list, description="Roles in carousel order; members must play one (empty: none)."
    )

    @model_validator(mode="after")
    def _valid(self) -> CarouselLayout:
        _raise(_role_list_problems(self.roles, MAX_GROUP_UNITS, "carousel"))
        return self


class RolesLayout(ParameterModel):
    """A grid or a carousel over roles, as a form offers them: one choice with a style. As two choices they
    would have the same fields, and a form tells its choices apart by their fields (see parameter_models)."""

    model_config = ConfigDict(title="Grid or carousel")  # the Prefect UI's label, not the class name

    style: Literal["grid", "carousel"] = Field(
        default="grid", description="A grid of up to 12 units, or a carousel of up to 50."
    )
    roles: list[str] = Field(
        default_factory=list, description="Roles in display order; members must play one of them (empty: none)."
    )

    def template(self) -> GridLayout | CarouselLayout:
        return GridLayout(roles=self.roles) if self.style == "grid" else CarouselLayout(roles=self.roles)

    @model_validator(mode="after")
    def _valid(self) -> RolesLayout:
        self.template()  # the grid's or the carousel's own checks, naming the problem
        return self

    @classmethod
    def of(cls, template: GridLayout | CarouselLayout) -> RolesLayout:
        return cls(style=template.kind, roles=template.roles)


class CustomLayout(ParameterModel):
    """A custom layout tree over roles: every role it mentions must be filled by exactly one member."""

    model_config = ConfigDict(title="Custom layout")  # the Prefect UI's label, not the class name

    kind: Literal["custom"] = "custom"
    layout: DataGroupLayout | None = Field(
        default=None, description="LayoutGrid / DataUnitTile / DataUnitCarouselTile tree whose keys are roles."
    )
    settings: LayoutSettings | None = Field(default=None, description="fixed_layout and per-role tile_settings.")
    timeline: list[str] = Field(default_factory=list, description="Roles shown in the timeline.")

    @property
    def roles(self) -> list[str]:
        """Every role the template places, in tree order, then the timeline's."""
        placed = list(_tile_keys(self.layout)) if self.layout is not None else []
        return list(dict.fromkeys([*placed, *self.timeline]))

    @model_validator(mode="after")
    def _valid(self) -> CustomLayout:
        problems: list[str] = []
        if self.layout is None and not self.timeline:
            problems.append("a custom layout needs a layout tree or a timeline")
        if self.layout is not None:
            problems.extend(_tree_problems(self.layout, "layout"))
            placed = list(_tile_keys(self.layout))
            problems.extend(f"layout: role {r!r} is placed in more than one tile" for r in _duplicates(placed))
        problems.extend(f"timeline: role {r!r} is listed twice" for r in _duplicates(self.timeline))
        roles = self.roles
        problems.extend(f"role {r!r} must be a non-empty string" for r in roles if not r.strip())
        if len(roles) > MAX_GROUP_UNITS:
            problems.append(f"the layout has {len(roles)} roles; a data group holds at most {MAX_GROUP_UNITS} units")
        tile_settings = (self.settings.tile_settings or {}) if self.settings is not None else {}
        problems.extend(
            f"settings.tile_settings: role {r!r} is not placed by the layout (roles: {roles})"
            for r in tile_settings
            if r not in roles
        )
        _raise(problems)
        return self


class LayoutFile(ParameterModel):
    """A custom layout written in a JSON file: what :class:`CustomLayout` holds (``layout``, ``settings``,
    ``timeline``), for a form. The layout tree is recursive, and the Prefect UI, drawing a recursive form,
    stops answering: a flow parameter names the file instead."""

    model_config = ConfigDict(title="Custom layout file")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["layout_file"]] = Field(default="layout_file", exclude=True)  # see parameter_models
    path: str = Field(description="A JSON file with the custom layout: layout (the tree), settings, timeline.")

    def load(self) -> CustomLayout:
        """The :class:`CustomLayout` the file holds.

        Raises:
            ValueError: Naming the file, if it is not JSON (a key twice included) or not a valid layout.
        """
        try:
            document = loads_json(Path(self.path).expanduser().read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"layout file {self.path}: {exc}") from exc
        if not isinstance(document, dict):
            raise ValueError(f"layout file {self.path}: must hold an object with layout, settings and timeline")
        try:
            return CustomLayout.model_validate({**document, "kind": "custom"})
        except ValidationError as exc:
            problems = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
            raise ValueError(f"layout file {self.path}: {problems}") from None


LayoutTemplate = GridLayout | CarouselLayout | CustomLayout | LayoutFile | RolesLayout
_BY_KIND: TypeAdapter[GridLayout | CarouselLayout | CustomLayout | LayoutFile] = TypeAdapter(
    Annotated[GridLayout | CarouselLayout | CustomLayout | LayoutFile, Field(discriminator="kind")]
)
#: A form's value names no kind: its fields tell (see parameter_models).
_BY_FIELDS: TypeAdapter[RolesLayout | LayoutFile] = TypeAdapter(RolesLayout | LayoutFile)


def parse_layout(value: LayoutTemplate | Mapping[str, Any]) -> GridLayout | CarouselLayout | CustomLayout:
    """A template from itself or its dict form (``{"kind": "custom", "layout": {...}}``, e.g. a flow parameter);
    a layout file is read into the :class:`CustomLayout` it holds. An invalid one raises pydantic's
    ``ValidationError`` (a file's, ``ValueError``) naming every problem."""
    known = (GridLayout, CarouselLayout, CustomLayout, LayoutFile, RolesLayout)
    if isinstance(value, known):
        template: LayoutTemplate = value
    else:
        template = (_BY_KIND if "kind" in value else _BY_FIELDS).validate_python(value)
    if isinstance(template, RolesLayout):
        return template.template()
    return template.load() if isinstance(template, LayoutFile) else template


def instantiate(
    template: GridLayout | CarouselLayout | CustomLayout, group: Group, client_metadata: dict[str, Any] | None = None
) -> DataGroupInput:
    """The SDK input creating ``group`` with ``template``; raises :class:`TemplateError` naming the group."""
    where = f"group {group.name!r}"
    malformed = [m for m in group.members if not is_uuid(m.item_uuid)]
    _raise([f"{where}: {m.source!r} has item UUID {m.item_uuid!r}, which is not a UUID" for m in malformed])
    if isinstance(template, CustomLayout):
        roles = template.roles
        problems = _role_problems(group.members, roles, where)
        by_role = {m.role: m.item_uuid for m in group.members if m.role is not None}
        missing = [r for r in roles if r not in by_role]
        if missing:
            problems.append(f"{where} has no member for role(s) {missing} of the layout")
        _raise(problems)
        return DataGroupCustom(
            name=group.name,
            layout_contents={r: UUID(by_role[r]) for r in roles},
            layout=template.layout,
            settings=template.settings,
            timeline=list(template.timeline),
            client_metadata=client_metadata,
        )
    limit, kind = (MAX_GRID_UNITS, "grid") if isinstance(template, GridLayout) else (MAX_GROUP_UNITS, "carousel")
    members = list(group.members)
    problems = []
    order = template.roles
    if order:
        problems = _role_problems(members, order, where)
        members.sort(key=lambda m: order.index(m.role) if m.role in order else len(order))
    if len(members) > limit:
        problems.append(f"{where} has {len(members)} members; a {kind} holds at most {limit}")
    _raise(problems)
    contents = [UUID(m.item_uuid) for m in members]
    if isinstance(template, GridLayout):
        return DataGroupGrid(name=group.name, layout_contents=contents, client_metadata=client_metadata)
    return DataGroupCarousel(name=group.name, layout_contents=contents, client_metadata=client_metadata)


def _role_problems(members: Sequence[Member], roles: list[str], where: str) -> list[str]:
    problems = []
    for member in members:
        if member.role is None:
            problems.append(f"{where}: {member.source!r} has no role, but the layout places members by role")
        elif member.role not in roles:
            problems.append(
                f"{where}: {member.source!r} has role {member.role!r}, which the layout lacks (roles: {roles})"
            )
    return problems


def _role_list_problems(roles: list[str], limit: int, kind: str) -> list[str]:
    problems = [f"roles: {r!r} is listed twice" for r in _duplicates(roles)]
    problems.extend(f"roles: {r!r} must be a non-empty string" for r in roles if not r.strip())
    if len(roles) > limit:
        problems.append(f"roles: {len(roles)} roles; a {kind} holds at most {limit} units")
    return problems


def _tree_problems(node: DataGroupLayout, where: str) -> Iterator[str]:
    if isinstance(node, LayoutGrid):
        yield from _range_problem(node.split_percentage, SPLIT_PERCENTAGE_RANGE, f"{where}: split_percentage")
        yield from _tree_problems(node.first, f"{where}.first")
        yield from _tree_problems(node.second, f"{where}.second")
    elif isinstance(node, DataUnitCarouselTile):
        yield from _range_problem(node.carousel_size, CAROUSEL_SIZE_RANGE, f"{where}: carousel_size")
        if not node.keys:
            yield f"{where}: a carousel tile needs at least one role in keys"


def _range_problem(value: float, bounds: tuple[float, float], what: str) -> Iterator[str]:
    low, high = bounds
    if not low <= value <= high:
        yield f"{what} {value:g} is outside {low:g}–{high:g}"


def _tile_keys(node: DataGroupLayout) -> Iterator[str]:
    if isinstance(node, LayoutGrid):
        yield from _tile_keys(node.first)
        yield from _tile_keys(node.second)
    elif isinstance(node, DataUnitCarouselTile):
        yield from node.keys
    elif isinstance(node, DataUnitTile):
        yield node.key


def _duplicates(values: list[str]) -> list[str]:
    return sorted({v for v in values if values.count(v) > 1})


def _raise(problems: list[str]) -> None:
    if problems:
        raise TemplateError("; ".join(problems))
