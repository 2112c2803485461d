"""Typed flow parameters: what the Prefect UI renders as forms (defaults, descriptions, dropdowns).

Only names, paths and plain values travel here — never secrets or clients. Credentials are a block
parameter of each flow (an ``EncordCredentials``): a run stores a reference to the saved block, never
the key, so its parameters can be shown, stored and re-run safely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from prefect_encord.planning.grouping import KeyPattern, Manifest
from prefect_encord.planning.layouts import CarouselLayout, CustomLayout, GridLayout
from prefect_encord.planning.manifests import check_readable


class LocalSource(BaseModel):
    """Files on the machine running the flow, uploaded through signed URLs."""

    kind: Literal["local"] = "local"
    directory: str = Field(description="Directory whose files are uploaded (recursively).")
    image_groups: list[str] = Field(
        default_factory=list, description="Glob patterns of sub-directories whose images form one image group."
    )
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of files to leave out.")


class CloudSource(BaseModel):
    """Objects in a bucket, registered through an Encord cloud integration (Encord reads them itself)."""

    kind: Literal["cloud"] = "cloud"
    block: str = Field(
        description="A saved cloud integration block, as block type slug, a slash and the block name, "
        "e.g. 'encord-s3-integration/raw-footage'."
    )
    include: list[str] = Field(default_factory=list, description="Glob patterns of keys to register (all if empty).")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of keys to leave out.")
    modified_since: datetime | None = Field(default=None, description="Only objects modified at or after this.")


#: A plain union (``anyOf``), which the Prefect UI renders as a choice of forms; a discriminated one
#: (``oneOf`` + ``discriminator``) it shows as a raw JSON box. ``kind`` still tells the two apart.
Source = LocalSource | CloudSource


class MetadataStep(BaseModel):
    """A metadata schema to apply additively, and/or a manifest of per-item metadata to import."""

    schema_file: str | None = Field(default=None, description="JSON or YAML file declaring the metadata schema.")
    manifest: str | None = Field(default=None, description="CSV, JSON, JSONL or Parquet manifest of item metadata.")
    key_by: Literal["name", "url", "uuid"] = Field(default="name", description="Manifest column naming the item.")
    mode: Literal["merge", "overwrite"] = Field(
        default="merge", description="merge keeps keys absent from the manifest; overwrite replaces them."
    )

    @field_validator("manifest")
    @classmethod
    def _readable_manifest(cls, manifest: str | None) -> str | None:
        """Refuse, before the run writes anything, a manifest of unknown format or one needing a missing extra."""
        if manifest is not None:
            check_readable(manifest)
        return manifest


class GroupingStep(BaseModel):
    """How items form data groups, and the layout every group gets."""

    rule: KeyPattern | Manifest = Field(
        description="A key pattern over file names or paths (a named group 'key', optionally 'role'), or a "
        "manifest listing each group's members."
    )
    layout: GridLayout | CarouselLayout | CustomLayout = Field(
        default=GridLayout(),
        description="A grid (the default) or a carousel, in the order of the roles given; or a custom layout "
        "tree over the rule's roles.",
    )


class DatasetStep(BaseModel):
    """Link what was ingested into a dataset, and optionally attach that dataset to a project."""

    title: str = Field(description="Dataset title; created if no dataset has it.")
    project: str | None = Field(default=None, description="Project title or hash to attach the dataset to.")
