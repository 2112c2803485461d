"""Compare a declared metadata schema with the organisation's (pure): what would be added, which enum options are new,
which keys would change type or be removed, and what is refused (see :mod:`prefect_encord.planning.schema` for the
rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prefect_encord.planning.schema import (
    MAX_ENUM_VALUES,
    REMOVED,
    SCALAR_KINDS,
    DesiredSchema,
    KeyType,
    embedding_type,
    enum_type,
)


class ExistingKey(BaseModel):
    """A key of the organisation's schema as Encord stores it.

    ``type`` is None when this library does not manage the key's Encord type (``user``) or the key was
    hard-deleted. ``retypable``: stored as an Encord ``variant`` scalar, whose type the SDK can change.
    """

    model_config = ConfigDict(frozen=True)

    type: KeyType | None
    encord_type: str
    deleted: bool = False
    retypable: bool = False

    def __str__(self) -> str:
        if self.deleted:
            return f"deleted {self.type}" if self.type else "hard-deleted"
        return str(self.type) if self.type else self.encord_type


def parse_encord_schema(document: Mapping[str, Any] | None) -> dict[str, ExistingKey]:
    """The keys of a v2 schema document as Encord serves it (``{key: {"ty": ..., ...}}``; None is no schema)."""
    return {key: _existing(spec) for key, spec in (document or {}).items()}


def _existing(spec: Mapping[str, Any]) -> ExistingKey:
    ty = spec.get("ty")
    if ty == "tombstone":
        deleted = spec.get("deleted_ty")
        if deleted is None:
            return ExistingKey(type=None, encord_type="tombstone", deleted=True)
        inner = _existing(deleted)
        return inner.model_copy(update={"deleted": True})
    if ty == "variant":
        return ExistingKey(type=KeyType(kind=spec["hint"]), encord_type="variant", retypable=True)
    if ty in SCALAR_KINDS or ty == "geospatial":
        return ExistingKey(type=KeyType(kind=ty), encord_type=ty)
    if ty == "enum":
        return ExistingKey(type=enum_type(spec["values"]), encord_type=ty)
    if ty == "embedding":
        return ExistingKey(type=embedding_type(spec["size"]), encord_type=ty)
    return ExistingKey(type=None, encord_type=str(ty))


def value_types(existing: Mapping[str, ExistingKey]) -> dict[str, KeyType]:
    """The types item metadata must fit: live keys of a known type (deleted keys are no longer checked)."""
    return {key: spec.type for key, spec in existing.items() if spec.type is not None and not spec.deleted}


class TypeChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    current: KeyType
    desired: KeyType


class Refusal(BaseModel):
    """A change the apply would not make, with the key, its current and desired type, and what to do instead."""

    model_config = ConfigDict(frozen=True)

    key: str
    current: str
    desired: str
    reason: str

    def __str__(self) -> str:
        return f"metadata key {self.key!r} is {self.current} in Encord but declared {self.desired}: {self.reason}"


class SchemaDiff(BaseModel):
    """What applying a declared schema to the organisation's schema changes, and what it refuses to."""

    added: dict[str, KeyType] = Field(default_factory=dict, description="New keys.")
    restored: dict[str, KeyType] = Field(default_factory=dict, description="Soft-deleted keys declared again.")
    enum_options_added: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="New options of existing enums (options are never removed)."
    )
    type_changes: dict[str, TypeChange] = Field(default_factory=dict, description="Keys declared with another type.")
    removals: dict[str, str] = Field(default_factory=dict, description="Keys declared removed → their current type.")
    refused: list[Refusal] = Field(
        default_factory=list, description="Changes that will not be applied; applying raises while any are left."
    )
    unchanged: list[str] = Field(default_factory=list, description="Declared keys that already match.")
    unmanaged: list[str] = Field(
        default_factory=list, description="Live keys of the organisation the declaration does not mention; kept."
    )
    applied: bool = Field(default=False, description="The changes were saved to Encord and read back.")

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.restored or self.enum_options_added or self.type_changes or self.removals)

    def __str__(self) -> str:
        parts = [
            *(f"+ {k}: {t}" for k, t in self.added.items()),
            *(f"+ {k}: {t} (restored)" for k, t in self.restored.items()),
            *(f"+ {k}: options {', '.join(v)}" for k, v in self.enum_options_added.items()),
            *(f"~ {k}: {c.current} -> {c.desired}" for k, c in self.type_changes.items()),
            *(f"- {k}: {t}" for k, t in self.removals.items()),
            *(f"! {r}" for r in self.refused),
        ]
        return "\n".join(parts) or "no changes"


class SchemaChangeRefused(ValueError):
    """Applying a schema would change types or remove keys without permission, or make a change Encord cannot."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = list(refusals)
        super().__init__("; ".join(str(r) for r in self.refusals))


def diff_schema(
    existing: Mapping[str, ExistingKey],
    desired: DesiredSchema,
    *,
    allow_type_changes: bool = False,
    allow_removals: bool = False,
) -> SchemaDiff:
    """Compare a declaration with the organisation's schema; ``refused`` lists what the flags do not allow.

    An enum whose declared options are a subset of Encord's is unchanged: options are only ever added,
    since items may hold the others.
    """
    diff = SchemaDiff()
    for key, want in desired.keys.items():
        have = existing.get(key)
        if have is None:
            diff.added[key] = want
            continue
        if have.type is None:
            why = (
                "a hard-deleted key cannot be used again; declare a new name"
                if have.deleted
                else f"keys of Encord type {have.encord_type!r} are not managed here"
            )
            diff.refused.append(Refusal(key=key, current=str(have), desired=str(want), reason=why))
            continue
        if have.type.kind != want.kind or have.type.size != want.size:
            diff.type_changes[key] = TypeChange(current=have.type, desired=want)
            blocked = _type_change_refusal(have, want, allow_type_changes)
            if blocked:
                diff.refused.append(Refusal(key=key, current=str(have), desired=str(want), reason=blocked))
            continue
        new_options = tuple(sorted(set(want.values) - set(have.type.values)))
        if len(new_options) + len(have.type.values) > MAX_ENUM_VALUES:
            why = f"an enum may have at most {MAX_ENUM_VALUES} options, and it would have more"
            diff.refused.append(Refusal(key=key, current=str(have), desired=str(want), reason=why))
            continue
        if new_options:
            diff.enum_options_added[key] = new_options
        if have.deleted:
            diff.restored[key] = want
        elif not new_options:
            diff.unchanged.append(key)
    for key in desired.removed:
        have = existing.get(key)
        if have is None or have.deleted:
            continue  # already gone
        diff.removals[key] = str(have)
        if not allow_removals:
            why = "pass allow_removals=True to remove it"
            diff.refused.append(Refusal(key=key, current=str(have), desired=REMOVED, reason=why))
    declared = set(desired.keys) | set(desired.removed)
    diff.unmanaged = sorted(k for k, v in existing.items() if not v.deleted and k not in declared)
    return diff


def _type_change_refusal(have: ExistingKey, want: KeyType, allowed: bool) -> str | None:
    if not (have.retypable and want.is_scalar):
        return (
            "Encord only changes the type of scalar keys (the SDK will not redefine an enum, embedding or "
            "geospatial key); declare a new name instead"
        )
    return None if allowed else "pass allow_type_changes=True to change its type"
