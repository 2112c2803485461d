"""Apply a declared custom-metadata schema to the organisation: diffed first, additive by default, read back after.

Saving a schema in Encord replaces the whole organisation's schema, so a script that saves only the keys it
knows wipes everyone else's. This task never writes a declaration as such. It reads the current schema
through the SDK's :class:`~encord.metadata_schema.MetadataSchema`, decides with
:func:`~prefect_encord.planning.schema_diff.diff_schema` what the declaration adds or changes, makes only those
changes on the object it read (so every other key is sent back as it was), saves, and reads the schema
again to check that the changes are there.

Requests to Encord: one read; when something changes, one save and one read to verify. A dry run, or a
declaration already in place, makes the read only.

Encord offers no conditional save: a change someone else saves between this task's read and its save is
lost. The verifying read only checks this task's own changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from encord import EncordUserClient
from encord.metadata_schema import MetadataSchema, MetadataSchemaScalarType
from prefect import task

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.schema import KeyType
from prefect_encord.planning.schema_diff import (
    ExistingKey,
    SchemaChangeRefused,
    SchemaDiff,
    diff_schema,
    parse_encord_schema,
)
from prefect_encord.planning.schema_sources import SchemaSource, declare_schema
from prefect_encord.runtime.run_logger import run_logger


def read_organisation_schema(client: EncordUserClient) -> tuple[MetadataSchema, dict[str, ExistingKey]]:
    """The SDK's schema object (one request) and its keys as :class:`ExistingKey` s.

    The keys are parsed from the object's ``repr``, the SDK's JSON rendering of the stored schema: its
    getters say nothing about deleted keys, which decide whether a key can be restored.
    """
    schema = client.metadata_schema()
    return schema, parse_encord_schema(json.loads(repr(schema)))


@task
def apply_metadata_schema(
    credentials: EncordCredentials,
    desired: SchemaSource,
    allow_type_changes: bool = False,
    allow_removals: bool = False,
    dry_run: bool = False,
) -> SchemaDiff:
    """Bring the organisation's metadata schema in line with ``desired``, adding what is missing.

    New keys, new enum options and re-declared soft-deleted keys are applied. Keys ``desired`` does not
    mention are left alone. A key declared with another type changes only with ``allow_type_changes`` (and
    only between scalar types, which is all Encord allows); a key declared ``removed`` is removed (soft-deleted,
    so restorable) only with ``allow_removals``.

    Args:
        credentials: Encord credentials.
        desired: A pydantic model class, a mapping of key to type, a JSON/YAML file path, or a
            :class:`~prefect_encord.planning.schema.DesiredSchema`; see
            :func:`~prefect_encord.planning.schema_sources.declare_schema`.
        allow_type_changes: Change the type of keys declared with another scalar type.
        allow_removals: Remove keys declared ``removed``.
        dry_run: Only compute and return the diff; nothing is written, and nothing is refused.

    Returns:
        The diff; ``applied`` is True when changes were saved and read back.

    Raises:
        SchemaDeclarationError: If the declaration is invalid (a bad key, an unmappable type); before any request.
        SchemaChangeRefused: If the diff holds changes the flags do not allow, or that Encord cannot make;
            nothing is written.
        RuntimeError: If the schema read back after saving lacks a change (someone saved over it meanwhile).
    """
    declared = declare_schema(desired)
    client = credentials.get_client()
    schema, existing = read_organisation_schema(client)
    diff = diff_schema(existing, declared, allow_type_changes=allow_type_changes, allow_removals=allow_removals)
    logger = run_logger(__name__)
    logger.info("Metadata schema diff (%d keys left unmanaged):\n%s", len(diff.unmanaged), diff)
    if dry_run:
        return diff
    if diff.refused:
        raise SchemaChangeRefused(diff.refused)
    if not diff.has_changes:
        return diff
    _merge_into(schema, diff)
    schema.save()
    _, saved = read_organisation_schema(client)
    left = diff_schema(saved, declared, allow_type_changes=True, allow_removals=True)
    if left.has_changes:
        raise RuntimeError(f"the metadata schema read back after saving still differs from the declaration:\n{left}")
    logger.info("Metadata schema saved and verified")
    return diff.model_copy(update={"applied": True})


def _merge_into(schema: MetadataSchema, diff: SchemaDiff) -> None:
    """Make the diff's changes on the schema object as read, through the SDK's own checked mutators."""
    for key, key_type in diff.added.items():
        _add(schema, key, key_type)
    for key in diff.restored:
        schema.restore_key(key)
    for key, options in diff.enum_options_added.items():
        schema.add_enum_options(key, values=list(options))
    for key, change in diff.type_changes.items():
        # diff_schema refuses every type change but scalar to scalar, which the SDK makes by re-hinting.
        schema.add_scalar(key, data_type=MetadataSchemaScalarType(change.desired.kind))
    for key in diff.removals:
        schema.delete_key(key)


def _add(schema: MetadataSchema, key: str, key_type: KeyType) -> None:
    if key_type.kind == "enum":
        schema.add_enum(key, values=list(key_type.values))
    elif key_type.kind == "embedding":
        assert key_type.size is not None  # KeyType validates it
        schema.add_embedding(key, size=key_type.size)
    elif key_type.kind == "geospatial":
        schema.add_geospatial(key)
    else:
        schema.add_scalar(key, data_type=MetadataSchemaScalarType(key_type.kind))


@task
def remove_schema_keys(credentials: EncordCredentials, keys: Sequence[str]) -> list[str]:
    """Soft-delete ``keys`` from the organisation's metadata schema (the undoing of a run that added them);
    returns those removed. Encord keeps a soft-deleted key restorable (``MetadataSchema.restore_key``, or
    declaring it again) and items keep their values; keys already gone are skipped."""
    schema, existing = read_organisation_schema(credentials.get_client())
    doomed = [key for key in dict.fromkeys(keys) if key in existing and not existing[key].deleted]
    if doomed:
        for key in doomed:
            schema.delete_key(key)
        schema.save()
        run_logger(__name__).info("removed %d metadata schema keys: %s", len(doomed), ", ".join(doomed))
    return doomed
