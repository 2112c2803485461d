"""The custom-metadata schema as code (pure): declare it, compare it with the organisation's, decide what may change.

Encord keeps one metadata schema per organisation, and saving one *replaces* the whole schema. Teams lose
keys when a script saves only the keys it knows about, or change a key's type under data that other
people already filter on. So a declared schema here is never written as such: it is compared with what
the organisation has, and the comparison (:class:`SchemaDiff`) says what would be added, which enum
options are new, and which keys would change type or be removed. Applying it (see
:mod:`prefect_encord.tasks.metadata_schema`) is additive by default.

Three rules come from sharing one schema between teams:

- Keys the declaration does not mention are *unmanaged*: they are left alone and only listed. Another
  team's keys are therefore safe, and a declaration need not be complete.
- Removing a key takes two explicit steps: declaring it ``removed`` and passing ``allow_removals``.
- Changing a key's type takes passing ``allow_type_changes``. Even then, only keys stored as Encord
  scalars (``variant``) can change: the SDK refuses to redefine an enum, embedding or geospatial key, and
  so do we, with the key, its current and its declared type in the message.

Declarations come from a pydantic model (field types are mapped deliberately, see :func:`schema_from_model`),
from a mapping of key to type name, or from a JSON or YAML file holding such a mapping.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefect_encord.planning.strict_parsing import DuplicateKey, loads_json, loads_yaml

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

    Build it with :func:`declare_schema` (or the ``schema_from_*`` functions), which check the keys.
    """

    model_config = ConfigDict(frozen=True)

    keys: dict[str, KeyType] = Field(default_factory=dict)
    removed: tuple[str, ...] = ()


SchemaSource = DesiredSchema | type[BaseModel] | Mapping[str, Any] | str | Path


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


def declare_schema(source: SchemaSource, *, removed: Iterable[str] = ()) -> DesiredSchema:
    """The :class:`DesiredSchema` of a model class, a mapping, or a ``.json``/``.yaml``/``.yml`` file path.

    ``removed`` adds keys to remove (a model cannot say so itself; a mapping can, with ``"removed"``).
    """
    if isinstance(source, DesiredSchema):
        desired = source
    elif isinstance(source, type) and issubclass(source, BaseModel):
        desired = schema_from_model(source)
    elif isinstance(source, Mapping):
        desired = schema_from_mapping(source)
    elif isinstance(source, (str, Path)):
        desired = schema_from_file(source)
    else:
        raise TypeError(f"cannot declare a metadata schema from {type(source).__name__}")
    desired = DesiredSchema(keys=desired.keys, removed=tuple(dict.fromkeys((*desired.removed, *removed))))
    for key in (*desired.keys, *desired.removed):
        check_key(key)
    both = sorted(set(desired.keys) & set(desired.removed))
    if both:
        raise SchemaDeclarationError(f"metadata key {both[0]!r} is both declared and removed")
    return desired


def schema_from_file(path: str | Path) -> DesiredSchema:
    """Read a mapping declaration (see :func:`schema_from_mapping`) from a JSON or YAML file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise SchemaDeclarationError(f"{path}: a schema file must end in .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaDeclarationError(
            f"{path} is not UTF-8 text: byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r}; save it as UTF-8"
        ) from None
    try:
        document = loads_json(text) if suffix == ".json" else loads_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError, DuplicateKey) as exc:
        raise SchemaDeclarationError(f"{path} is not valid {suffix[1:].upper()}: {exc}") from exc
    if not isinstance(document, Mapping):
        raise SchemaDeclarationError(f"{path} must hold a mapping of metadata key to type")
    return schema_from_mapping(document)


def schema_from_mapping(declaration: Mapping[str, Any]) -> DesiredSchema:
    """A schema from ``{key: type}``.

    A type is a scalar name (``boolean``, ``varchar`` or ``string``, ``text`` or ``long_string``, ``number``,
    ``datetime``, ``uuid``), ``geospatial``, ``{"type": "enum", "values": [...]}``,
    ``{"type": "embedding", "size": 512}``, or ``removed`` to remove the key. Example (YAML)::

        camera: varchar
        notes: text
        weather: {type: enum, values: [rain, sunny]}
        clip: {type: embedding, size: 512}
        old_camera: removed
    """
    keys: dict[str, KeyType] = {}
    removed: list[str] = []
    for key, spec in declaration.items():
        check_key(key)
        if spec == REMOVED:
            removed.append(key)
        else:
            keys[key] = _declared_type(key, spec)
    return DesiredSchema(keys=keys, removed=tuple(removed))


def _declared_type(key: str, spec: Any) -> KeyType:
    if isinstance(spec, KeyType):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise SchemaDeclarationError(f"metadata key {key!r}: expected a type name or {{type: ...}}, got {spec!r}")
    name: str = spec["type"]
    kind = _ALIASES.get(name, name)
    allowed = {"enum": {"type", "values"}, "embedding": {"type", "size"}}.get(kind, {"type"})
    unknown = set(spec) - allowed
    if kind not in KEY_KINDS:
        raise SchemaDeclarationError(
            f"metadata key {key!r} has unknown type {spec['type']!r}; expected one of "
            f"{', '.join(KEY_KINDS)}, string, long_string or {REMOVED!r}"
        )
    if unknown:
        raise SchemaDeclarationError(f"metadata key {key!r} ({kind}) has unexpected fields {sorted(unknown)}")
    values = spec.get("values", ())
    if kind == "enum" and (
        isinstance(values, str) or not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values)
    ):
        raise SchemaDeclarationError(f"metadata key {key!r}: enum values must be a list of strings, got {values!r}")
    size = spec.get("size")
    if kind == "embedding" and (not isinstance(size, int) or isinstance(size, bool)):
        raise SchemaDeclarationError(f"metadata key {key!r}: an embedding needs an integer size, got {size!r}")
    return _key_type(key, kind=kind, values=tuple(values), size=size)


def _key_type(key: str, **fields: Any) -> KeyType:
    try:
        return KeyType(**fields)
    except ValidationError as exc:
        reasons = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise SchemaDeclarationError(f"metadata key {key!r}: {reasons}") from None


def schema_from_model(model: type[BaseModel]) -> DesiredSchema:
    """A schema from a pydantic model's fields: each field is a key (its alias, if it has one), typed as follows.

    ======================================================  =====================
    Field type                                              Encord type
    ======================================================  =====================
    ``bool``                                                ``boolean``
    ``str``                                                 ``varchar``
    ``Annotated[str, LongText]``                            ``text``
    ``int``, ``float``                                      ``number``
    ``datetime``                                            ``datetime``
    ``UUID``                                                ``uuid``
    ``Literal["a", "b"]``, an ``Enum`` of strings           ``enum`` with those options
    ``Annotated[list[float], Embedding(512)]``, or a
    ``list[float]`` with a fixed length (``conlist``)       ``embedding`` of that size
    :class:`GeoPoint`, or a model of exactly
    ``latitude`` and ``longitude``                          ``geospatial``
    ======================================================  =====================

    ``Optional[...]`` is unwrapped: an item may always lack a key. Anything else (a ``date``, a nested model, a
    union of two types, a list without a fixed length) is refused with the key's name rather than guessed at.
    Aliases matter because Encord keys may hold characters a Python name cannot (``"video.fps"``).
    """
    keys: dict[str, KeyType] = {}
    for name, field in model.model_fields.items():
        key = field.serialization_alias or field.alias or name
        check_key(key)
        keys[key] = _type_of(key, field.annotation, list(field.metadata))
    return DesiredSchema(keys=keys)


def _type_of(key: str, annotation: Any, metadata: list[Any]) -> KeyType:
    annotation, metadata = _unwrap(key, annotation, metadata)
    size = next((m.size for m in metadata if isinstance(m, Embedding)), None)
    if any(m is LongText or isinstance(m, LongText) for m in metadata):
        if annotation is not str:
            raise SchemaDeclarationError(f"metadata key {key!r}: LongText marks a str, not {_name(annotation)}")
        return KeyType(kind="text")
    if size is not None or get_origin(annotation) in (list, tuple, Sequence):
        return _key_type(key, kind="embedding", size=_embedding_size(key, annotation, metadata, size))
    if annotation is bool:
        return KeyType(kind="boolean")
    if annotation is str:
        return KeyType(kind="varchar")
    if annotation in (int, float):
        return KeyType(kind="number")
    if annotation is datetime:
        return KeyType(kind="datetime")
    if annotation is UUID:
        return KeyType(kind="uuid")
    if get_origin(annotation) is Literal:
        options = get_args(annotation)
        if not all(isinstance(option, str) for option in options):
            raise SchemaDeclarationError(f"metadata key {key!r}: enum options must be strings, got {options!r}")
        return _key_type(key, kind="enum", values=options)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        options = tuple(member.value for member in annotation)
        if not all(isinstance(option, str) for option in options):
            raise SchemaDeclarationError(f"metadata key {key!r}: {annotation.__name__} must have string values")
        return _key_type(key, kind="enum", values=options)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if set(annotation.model_fields) == {"latitude", "longitude"}:
            return KeyType(kind="geospatial")
        raise SchemaDeclarationError(
            f"metadata key {key!r}: a nested model maps to geospatial only if its fields are exactly "
            f"latitude and longitude; {annotation.__name__} has {sorted(annotation.model_fields)}"
        )
    raise SchemaDeclarationError(
        f"metadata key {key!r}: {_name(annotation)} has no Encord metadata type; use bool, str, "
        "Annotated[str, LongText], int, float, datetime, UUID, a Literal or Enum of strings, "
        "Annotated[list[float], Embedding(n)] or GeoPoint"
    )


def _unwrap(key: str, annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (keeping its metadata) and ``Optional`` until a concrete type remains."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata = [*metadata, *extra]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                raise SchemaDeclarationError(
                    f"metadata key {key!r}: {_name(annotation)} is a union; an Encord key has one type"
                )
            annotation = members[0]
        else:
            return annotation, metadata


def _embedding_size(key: str, annotation: Any, metadata: list[Any], size: int | None) -> int:
    args = get_args(annotation)
    element = args[0] if args else None
    if get_origin(annotation) is tuple and (len(args) != 2 or args[1] is not Ellipsis):
        element = None  # tuple[float, float] is a fixed record, not a vector
    if element is not float:
        raise SchemaDeclarationError(f"metadata key {key!r}: an embedding is a list of floats, not {_name(annotation)}")
    lower = max((m.min_length for m in metadata if isinstance(m, (annotated_types.Len, annotated_types.MinLen))),
                default=0)  # fmt: skip
    upper = min((m.max_length for m in metadata if isinstance(m, (annotated_types.Len, annotated_types.MaxLen))
                 and m.max_length is not None), default=None)  # fmt: skip
    if size is None:
        if upper is None or lower != upper:
            raise SchemaDeclarationError(
                f"metadata key {key!r}: a list of floats maps to an embedding only with a fixed length; use "
                "Annotated[list[float], Embedding(n)] or conlist(float, min_length=n, max_length=n)"
            )
        return upper
    if (lower or upper is not None) and not lower == size == upper:
        raise SchemaDeclarationError(f"metadata key {key!r}: Embedding({size}) contradicts the list's length bounds")
    return size


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


# --- the organisation's schema -----------------------------------------------------------------------------------


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


# --- the diff ----------------------------------------------------------------------------------------------------


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
