"""Which label rows to read, and what is known about one before its labels are fetched (pure).

:class:`LabelRowFilters` names every filter ``list_label_rows_v2`` offers for a workflow project, in
one serialisable model, so a flow (or a deployment's parameters) can carry a selection, and an
incremental export can tell whether the selection changed since its last run (:meth:`fingerprint`).
:class:`LabelRowSummary` is one listed row: enough to decide whether to fetch it and to index it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from encord.orm.label_row import AnnotationTaskStatus
from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_encord.planning.parameter_models import ParameterModel

MAIN_BRANCH = "main"


class LabelRowFilters(ParameterModel):
    """Filters of ``project.list_label_rows_v2``; unset filters select everything.

    ``*_like`` filters use SQL LIKE syntax (``%`` any run, ``_`` one character). Times without a zone
    are taken as UTC.
    """

    model_config = ConfigDict(title="Label row filters")  # the Prefect UI's label, not the class name

    # Plain lists, empty for any: the Prefect UI's form hangs on an optional list's "list" tab.
    data_hashes: list[str] = Field(default_factory=list, description="Only rows of these data units (empty: any).")
    label_hashes: list[str] = Field(default_factory=list, description="Only these label rows (empty: any).")
    edited_before: datetime | None = Field(default=None, description="Only rows last edited before this time.")
    edited_after: datetime | None = Field(default=None, description="Only rows last edited after this time.")
    statuses: list[AnnotationTaskStatus] = Field(
        default_factory=list, description="Only rows whose task has one of these statuses (QUEUED, … COMPLETED)."
    )
    # Plain strings, empty for any: an optional string is a "str | None" choice in the Prefect UI.
    data_title_eq: str = Field(default="", description="Only rows whose data title is exactly this (empty: any).")
    data_title_like: str = Field(default="", description="Only rows whose data title matches (SQL LIKE; empty: any).")
    workflow_node_eq: str = Field(default="", description="Only rows at the workflow stage of this title (empty: any).")
    workflow_node_like: str = Field(
        default="", description="Only rows at a workflow stage whose title matches (SQL LIKE; empty: any)."
    )
    include_client_metadata: bool = Field(default=False, description="Carry each data unit's client metadata.")
    include_children: bool = Field(
        default=False,
        description="Also list the child data units of data groups as rows of their own (deprecated by Encord "
        "in favour of the group row's spaces, which a group row's labels always carry).",
    )
    branch_name: str = Field(default=MAIN_BRANCH, min_length=1, description="The label branch to read.")

    @field_validator("edited_before", "edited_after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value

    def sdk_arguments(self, edited_after: datetime | None = None) -> dict[str, Any]:
        """Keyword arguments for ``list_label_rows_v2``; ``edited_after`` (if later) overrides the filter's."""
        after = self.edited_after
        if edited_after is not None and (after is None or edited_after > after):
            after = edited_after
        return {
            "data_hashes": self.data_hashes or None,
            "label_hashes": self.label_hashes or None,
            "edited_before": self.edited_before,
            "edited_after": after,
            "label_statuses": self.statuses or None,
            "data_title_eq": self.data_title_eq or None,
            "data_title_like": self.data_title_like or None,
            "workflow_graph_node_title_eq": self.workflow_node_eq or None,
            "workflow_graph_node_title_like": self.workflow_node_like or None,
            "include_client_metadata": self.include_client_metadata,
            "include_children": self.include_children,
            "branch_name": self.branch_name,
        }

    def fingerprint(self) -> str:
        """A digest of the selection: equal filters give equal fingerprints, across processes and runs.

        Lists are compared as sets (the order hashes or statuses were given in selects nothing different).
        """
        fields = {k: sorted(v) if isinstance(v, list) else v for k, v in self.model_dump(mode="json").items()}
        fields.update({k: None for k, v in fields.items() if v in ("", [])})  # as when empty was None: same digests
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class LabelRowSummary(BaseModel):
    """One listed label row, as the listing describes it (no labels).

    ``label_hash`` is None for a row nobody has started: it exists in Encord only once created.
    ``last_edited_at`` is the server's clock, which is what makes it usable as a watermark.
    """

    data_hash: str
    label_hash: str | None
    branch_name: str
    dataset_hash: str
    dataset_title: str
    data_title: str
    data_type: str
    created_at: datetime | None
    last_edited_at: datetime | None
    workflow_node: str | None = Field(description="Title of the workflow stage the row's task is at.")
    backing_item_uuid: str | None
    client_metadata: dict[str, Any] | None = None
