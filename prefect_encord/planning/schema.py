"""The custom-metadata schema as code (pure): declare it, compare it with the organisation's, decide what may change.

Encord keeps one metadata schema per organisation, and saving one *replaces* the whole schema. Teams lose
keys when a script saves only the keys it knows about, or change a key's type under data that other
people already filter on. So a declared schema here is never written as such: it is compared with what
the organisation has, and the comparison (:class:`~.schema_diff.SchemaDiff`) says what would be added, which enum
options are new, and which keys would change type or be removed. Applying it (see
:mod:`prefect_encord.tasks.metadata_schema`) is additive by default.

Three rules come from sharing one schema between teams:

- Keys the declaration does not mention are *unmanaged*: they are left alone and only listed. Another
  team's keys are therefore safe, and a declaration need not be complete.
- Removing a key takes two explicit steps: declaring it ``removed`` and passing ``allow_removals``.
- Changing a key's type takes passing ``allow_type_changes``. Even then, only keys stored as Encord
  scalars (``variant``) can change: the SDK refuses to redefine an enum, embedding or geospatial key, and
  so do we, with the key, its current and its declared type in the message.

This module holds the types a declaration is made of; where declarations come from (a pydantic model, a
mapping, a JSON or YAML file) is :mod:`.schema_sources`, and the comparison is :mod:`.schema_diff`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ScalarKind = Literal["boolean", "varchar", "text", "number", "datetime", "uuid"]
KeyKind = Literal["boolean", "varchar", "text", "number", "datetime", "uuid", "enum", "embedding", "geospatial"]
SCALAR_KINDS: tuple[ScalarKind, ...] = get_args(ScalarKind)
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)

#: Encord's own aliases for two scalar types (the SDK's ``add_scalar`` accepts them too).
_ALIASES = {"string": "varchar", "long_string": "text"}
#: What a mapping declaration writes for a key to be removed.
REMOVED = "removed"
#: The SDK's ``add_enum`` refuses 256 values or more, although Encord's documentation says 256.
MAX_ENUM_VALUES = 255
MAX_EMBEDDING_SIZE = 4096
_KEY_CHARACTERS = re.compile(r"^[A-Za-z0-9 _\-.]+$")


class SchemaDeclarationError(ValueError):
    """A declared schema that cannot be a valid Encord schema; the message names the key."""


# --- types -------------------------------------------------------------------------------------------------------


class KeyType(BaseModel):
    """An Encord metadata type: a scalar kind, an enum with its options, an embedding with its size, or geospatial."""

    model_config = ConfigDict(frozen=True)

    kind: KeyKind
    values: tuple[str, ...] = Field(default=(), description="Enum options, sorted; empty for other kinds.")
    size: int | None = Field(default=None, description="Embedding dimensions; None for other kinds.")

    @field_validator("values", mode="after")
    @classmethod
    def _sorted_options(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        """Sorted and unique, as Encord stores them, so that equal enums compare equal."""
        return tuple(sorted(set(values)))

    @model_validator(mode="after")
    def _parameters_fit_the_kind(self) -> KeyType:
        if self.kind == "enum":
            if not 1 <= len(self.values) <= MAX_ENUM_VALUES:
                raise ValueError(f"an enum needs 1–{MAX_ENUM_VALUES} options, got {len(self.values)}")
        elif self.values:
            raise ValueError(f"only an enum has options, not {self.kind}")
        if self.kind == "embedding":
            if self.size is None or not 1 <= self.size <= MAX_EMBEDDING_SIZE:
                raise ValueError(f"an embedding needs a size from 1 to {MAX_EMBEDDING_SIZE}, got {self.size}")
        elif self.size is not None:
            raise ValueError(f"only an embedding has a size, not {self.kind}")
        return self

    @property
    def is_scalar(self) -> bool:
        return self.kind in SCALAR_KINDS

    def __str__(self) -> str:
        if self.kind == "enum":
            return f"enum({', '.join(self.values)})"
        if self.kind == "embedding":
            return f"embedding({self.size})"
        return self.kind


def enum_type(values: Iterable[str]) -> KeyType:
    return KeyType(kind="enum", values=tuple(values))


def embedding_type(size: int) -> KeyType:
    return KeyType(kind="embedding", size=size)


# --- declaring a schema ------------------------------------------------------------------------------------------


class LongText:
    """Marks a ``str`` field as Encord ``text`` (long text) instead of ``varchar``.

    ``notes: Annotated[str, LongText]``. Encord caps ``varchar`` at 8,192 characters and does not cap ``text``.
    """


class Embedding:
    """Marks a list of floats as an Encord embedding of ``size`` dimensions: ``Annotated[list[float], Embedding(512)]``.

    A list with a fixed length (``conlist(float, min_length=512, max_length=512)``) maps to the same type.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Embedding({self.size})"


class GeoPoint(BaseModel):
    """A point on Earth, Encord's ``geospatial`` value. Any model with exactly these two fields maps to it."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class DesiredSchema(BaseModel):
    """A declared schema: the keys it manages with their types, and the keys it wants removed.

    Build it with :func:`~prefect_encord.planning.schema_sources.declare_schema` (or the ``schema_from_*``
    functions), which check the keys.
    """

    model_config = ConfigDict(frozen=True)

    keys: dict[str, KeyType] = Field(default_factory=dict)
    removed: tuple[str, ...] = ()


def check_key(key: str) -> None:
    """Refuse a key Encord (and the SDK, which checks client-side) would refuse, naming it.

    The rules: not empty, no leading ``$``, only ASCII letters, digits, space, ``-``, ``_`` and ``.``, and not
    the reserved ``keyframes``. Like the SDK, a key that is only separators, or that spells ``keyframes`` once
    separators are dropped (``key-frames``), is refused too.
    """
    if not isinstance(key, str) or not key:
        raise SchemaDeclarationError(f"metadata key {key!r} must be a non-empty string")
    if key.startswith("$"):
        raise SchemaDeclarationError(f"metadata key {key!r} must not start with '$'")
    if not _KEY_CHARACTERS.match(key):
        raise SchemaDeclarationError(f"metadata key {key!r} may only use letters, digits, space, '-', '_' and '.'")
    bare = re.sub(r"[ _\-.]", "", key)
    if not bare:
        raise SchemaDeclarationError(f"metadata key {key!r} needs at least one letter or digit")
    if bare == "keyframes":
        raise SchemaDeclarationError(f"metadata key {key!r} is reserved: Encord uses 'keyframes' for video key frames")


# --- the organisation's schema -----------------------------------------------------------------------------------


# --- the diff ----------------------------------------------------------------------------------------------------
