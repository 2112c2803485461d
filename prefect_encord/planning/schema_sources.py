"""Where a declared metadata schema comes from (pure): a pydantic model (field types mapped deliberately, see
:func:`schema_from_model`), a mapping of key to type name, or a JSON or YAML file holding such a mapping.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import annotated_types
import yaml
from pydantic import BaseModel, ValidationError

from prefect_encord.planning.schema import (
    _ALIASES,
    KEY_KINDS,
    REMOVED,
    DesiredSchema,
    Embedding,
    KeyType,
    LongText,
    SchemaDeclarationError,
    check_key,
)
from prefect_encord.planning.strict_parsing import DuplicateKey, loads_json, loads_yaml

SchemaSource = DesiredSchema | type[BaseModel] | Mapping[str, Any] | str | Path


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
