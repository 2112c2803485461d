"""Typed flow parameters: what the Prefect UI renders as forms (defaults, descriptions, dropdowns).

Only names, paths, plain values and blocks travel here — never secrets or clients. Credentials are a
block parameter of each flow (an ``EncordCredentials``) and a bucket is a cloud integration block
(:data:`~prefect_encord.blocks.CloudBlock`): the UI offers a block picker for each, and a run stores a
reference to the saved block, never its keys, so its parameters can be shown, stored and re-run safely.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from prefect_encord.blocks import CloudBlock
from prefect_encord.planning.grouping import GroupsFile, KeyPattern
from prefect_encord.planning.layouts import CarouselLayout, GridLayout, LayoutFile, RolesLayout
from prefect_encord.planning.manifest_readers import check_readable
from prefect_encord.planning.parameter_models import ParameterModel
from prefect_encord.planning.sidecars import check_suffix
from prefect_encord.state.settings import local_directory


class LocalSource(ParameterModel):
    """Files on the machine running the flow, uploaded through signed URLs."""

    model_config = ConfigDict(title="Local directory")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["local"]] = Field(default="local", exclude=True)  # see parameter_models
    directory: str = Field(description="Directory whose files are uploaded (recursively).")
    image_groups: list[str] = Field(
        default_factory=list, description="Glob patterns of sub-directories whose images form one image group."
    )
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of files to leave out.")


class CloudSource(ParameterModel):
    """Objects in a bucket, registered through an Encord cloud integration (Encord reads them itself)."""

    model_config = ConfigDict(title="Bucket")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["cloud"]] = Field(default="cloud", exclude=True)  # see parameter_models
    block: CloudBlock = Field(
        description="A saved cloud integration block (S3, GCS or Azure): the bucket and the Encord integration "
        "that reads it."
    )
    include: list[str] = Field(default_factory=list, description="Glob patterns of keys to register (all if empty).")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of keys to leave out.")
    modified_since: datetime | None = Field(default=None, description="Only objects modified at or after this.")
    # Not ``keys``: Prefect copies a model passed to a subflow with dict(model), which calls a ``keys`` attribute.
    object_keys: list[str] = Field(
        default_factory=list,
        description="Only the objects of these keys' directories, e.g. the keys of a bucket notification "
        "event (the ingest-on-upload deployment passes them); empty or unset: the whole bucket.",
    )
    refresh_inventory: bool = Field(
        default=False,
        description="Send every object to Encord again (it skips what it holds) instead of only those the "
        "inventory of earlier runs lacks: for when items may have been deleted in Encord itself.",
    )
    on_changed: Literal["report", "replace"] = Field(
        default="report",
        description="What to do with the items of objects overwritten in the bucket since they were registered: "
        "report them (the item keeps pointing at the changed bytes), or replace them (the old item deleted, the "
        "object registered anew, as Encord's cloud sync updates a changed file).",
    )
    replace_labelled_items: bool = Field(
        default=False,
        description="With on_changed=replace, also replace items that carry labels (their labels are lost); off, "
        "such an item is kept and reported as failed.",
    )
    on_vanished: Literal["report", "archive", "delete"] = Field(
        default="report",
        description="What to do with the items of objects deleted from the bucket since they were registered: "
        "report them; archive them (moved to the archive folder with their labels, and back if the object "
        "returns); or delete them from Encord, with their labels.",
    )
    archive_folder: str = Field(
        default="",
        description="Folder path the items of vanished objects are moved to with on_vanished=archive; empty: "
        "'archive' inside the ingest's folder.",
    )
    max_deletions: int = Field(
        default=100,
        ge=0,
        description="With on_vanished=archive or delete, do nothing and fail the step if more items than this "
        "vanished (a wrong prefix or an emptied bucket must not empty the folder).",
    )

    sidecar_suffix: str = Field(
        default="",
        description="Read an object named like another plus this suffix, e.g. '.metadata.json' as Encord's "
        "cloud sync does ('x.jpg.metadata.json' for 'x.jpg'), as that object's custom metadata, checked against "
        "the metadata schema; it is not registered itself, and is read again only when it changes. Empty: off.",
    )
    sidecar_mode: Literal["merge", "overwrite"] = Field(
        default="merge",
        description="merge sets the keys a sidecar gives and keeps the item's others; overwrite makes the item's "
        "metadata exactly the sidecar's.",
    )
    sidecar_unknown_keys: bool = Field(
        default=False,
        description="Write sidecar keys the metadata schema does not declare (unchecked); off, a sidecar with one "
        "is reported and not applied, since it is most often a typo.",
    )

    method: Literal["register", "encord-cloud-sync"] = Field(
        default="register",
        description="register: our registration (data groups, DICOM series, sequences; overwrites and deletions as "
        "chosen here). encord-cloud-sync: the folder is an Encord cloud-synced folder of this bucket and prefix, "
        "and each run asks Encord to sync it (new files become items, deleted ones tombstones, changed ones "
        "updated; images, videos, audio, PDFs and text only).",
    )
    changed_at: datetime | None = Field(
        default=None,
        description="With encord-cloud-sync: when the bucket changed (the event-driven deployment passes the "
        "notification's time); a sync that started later already saw it, so none is started.",
    )
    dry_run: bool = Field(
        default=False,
        description="List and compare only, and report what the run would register, replace, archive, delete and "
        "restore; nothing in Encord is changed (the metadata, groups and dataset steps are not planned).",
    )

    @field_validator("sidecar_suffix")
    @classmethod
    def _usable_suffix(cls, suffix: str) -> str:
        """Refuse, before the run writes anything, a suffix Encord would not take (1 to 128 characters, no '/')."""
        return check_suffix(suffix) if suffix else suffix

    @model_validator(mode="before")
    @classmethod
    def _names_its_block(cls, value: Any) -> Any:
        """A cloud source without its block (``ingest-hourly`` as shipped) says so, not "'local' was expected"."""
        if (
            isinstance(value, dict)
            and value.get("block") is None
            and (value.get("kind") == "cloud" or "directory" not in value)
        ):
            raise ValueError(
                "a bucket source needs its saved cloud integration block: pick it in the form's Block "
                "picker, or name it in prefect.yaml as block: {$ref: {block_document_slug: ...}}"
            )
        return value


#: A plain union (``anyOf``), which the Prefect UI renders as a choice of forms; a discriminated one
#: (``oneOf`` + ``discriminator``) it shows as a raw JSON box. ``kind`` still tells the two apart.
Source = LocalSource | CloudSource


class MetadataStep(ParameterModel):
    """A metadata schema to apply additively, and/or a manifest of per-item metadata to import."""

    model_config = ConfigDict(title="Metadata")  # the Prefect UI's label, not the class name

    # Plain strings, empty for none: an optional string is a "str | None" choice in the Prefect UI.
    schema_file: str = Field(default="", description="JSON or YAML file declaring the metadata schema (empty: none).")
    manifest: str = Field(
        default="", description="CSV, JSON, JSONL or Parquet manifest of item metadata (empty: none)."
    )
    key_by: Literal["name", "url", "uuid"] = Field(
        default="name",
        description="How the manifest names each item: by its file name, its URL (bucket objects) or its "
        "item UUID; the manifest's column of that name holds it.",
    )
    mode: Literal["merge", "overwrite"] = Field(
        default="merge", description="merge keeps keys absent from the manifest; overwrite replaces them."
    )
    allow_unknown_keys: bool = Field(
        default=False,
        description="Write manifest columns the metadata schema does not declare (unchecked); off, a row with "
        "one is refused, since it is most often a typo.",
    )

    @field_validator("manifest")
    @classmethod
    def _readable_manifest(cls, manifest: str) -> str:
        """Refuse, before the run writes anything, a manifest of unknown format or one needing a missing extra."""
        if manifest:
            check_readable(manifest)
        return manifest


class GroupingStep(ParameterModel):
    """How items form data groups, and the layout every group gets."""

    model_config = ConfigDict(title="Data groups")  # the Prefect UI's label, not the class name

    rule: KeyPattern | GroupsFile = Field(
        description="A key pattern over file names or paths (a named group 'key', optionally 'role'), or a "
        "CSV or JSON file listing each group's members."
    )
    layout: RolesLayout | LayoutFile = Field(
        default=RolesLayout(),
        description="A grid (the default) or a carousel, in the order of the roles given; or a JSON file with a "
        "custom layout tree over the rule's roles.",
    )

    @field_validator("layout", mode="before")
    @classmethod
    def _grid_or_carousel(cls, value: Any) -> Any:
        """A ``GridLayout``/``CarouselLayout`` (or its dict, with its kind) is the form's grid-or-carousel choice."""
        if isinstance(value, dict) and value.get("kind") in ("grid", "carousel"):
            value = GridLayout(**value) if value["kind"] == "grid" else CarouselLayout(**value)
        return RolesLayout.of(value) if isinstance(value, GridLayout | CarouselLayout) else value


class DatasetStep(ParameterModel):
    """Link what was ingested into a dataset, and optionally attach that dataset to a project."""

    model_config = ConfigDict(title="Dataset and project")  # the Prefect UI's label, not the class name

    title: str = Field(description="Dataset title; created if no dataset has it.")
    project: str = Field(default="", description="Project title or hash to attach the dataset to (empty: none).")


class LocalDestination(ParameterModel):
    """Label exports into a directory of the machine running the flow."""

    model_config = ConfigDict(title="Local directory")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["local"]] = Field(default="local", exclude=True)  # see parameter_models
    directory: str = Field(
        default="",
        description="Where exports go. Empty: the 'encord/exports' folder of PREFECT_HOME on the machine running "
        "the flow (or PREFECT_INTEGRATIONS_ENCORD_EXPORT_DIRECTORY). A relative path is taken within that folder, "
        "never within the deployment's working directory.",
    )
    prefix: str = Field(default="", description="Folder within the directory, e.g. 'labels/nightly'.")

    def root(self) -> Path:
        """The absolute directory: ``directory`` if absolute, else within the configured exports folder."""
        directory = Path(self.directory).expanduser()
        return directory if directory.is_absolute() else local_directory("export") / directory


class CloudDestination(ParameterModel):
    """Label exports into a bucket, through a saved cloud integration block."""

    model_config = ConfigDict(title="Bucket")  # the Prefect UI's label, not the class name

    kind: SkipJsonSchema[Literal["cloud"]] = Field(default="cloud", exclude=True)  # see parameter_models
    block: CloudBlock = Field(description="A saved cloud integration block (S3, GCS or Azure) to write into.")
    prefix: str = Field(default="", description="Folder within the bucket, e.g. 'labels/nightly'.")


#: Where an export goes; a plain union, like :data:`Source`.
Destination = LocalDestination | CloudDestination
