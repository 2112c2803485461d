"""What a rollback removes and what it keeps, from the run's receipt (pure): the functional core of ``rollback``.

A rollback undoes everything one ingest run made, in the order Encord allows: data groups, then items (a
group's members go only once it is gone), then the folders the run created, innermost first (each only once
empty), the run's attachments of datasets to projects, and the schema keys it added. It keeps, naming why:

* schema keys another run of this machine's ledger (not itself rolled back) declares: its items use them;
* the attachment of a dataset to a project when another such run linked items into that dataset: they are
  labelled in that project;
* the datasets and projects the run created: Encord's SDK and API cannot delete either ("Datasets cannot be
  deleted using the SDK or the API", https://docs.encord.com/sdk-documentation/datasets-sdk/sdk-create-and-view-datasets;
  the same for projects, https://docs.encord.com/reference/sdk-list-and-create-projects). Emptied and detached,
  they are for a person to delete in the Encord app, which the rollback's summary says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prefect_encord.state.run_ledger import Receipt

#: Why a dataset or project the run created stays.
NOT_DELETABLE = "Encord's SDK and API cannot delete a {kind}: delete it in the Encord app (it is {state} now)"


@dataclass(frozen=True)
class RollbackPlan:
    """The removals of one rollback, in order, and what stays (thing → why)."""

    items: list[str]
    folders: list[str]
    detach: dict[str, list[str]]
    schema_keys: list[str]
    kept: dict[str, str] = field(default_factory=dict)


def plan_rollback(receipt: Receipt, items_created: Iterable[str], others: Iterable[Receipt]) -> RollbackPlan:
    """The plan for undoing ``receipt``'s run; ``others`` are the other receipts of the ledger."""
    in_use: dict[str, str] = {}
    linked_since: dict[str, str] = {}
    for other in others:
        if other.run_id != receipt.run_id and other.rolled_back_at is None:
            for key in other.schema_keys_declared:
                in_use.setdefault(key, other.run_id)
            for dataset in other.datasets_linked:
                linked_since.setdefault(dataset, other.run_id)
    kept = {f"schema key {key}": f"run {in_use[key]} declares it too" for key in receipt.schema_keys_added
            if key in in_use}  # fmt: skip
    detach = {project: [d for d in datasets if d not in linked_since]
              for project, datasets in receipt.projects_attached.items()}  # fmt: skip
    kept.update({f"dataset {d} in project {project}": f"run {linked_since[d]} linked items into it too"
                 for project, datasets in receipt.projects_attached.items() for d in datasets
                 if d in linked_since})  # fmt: skip
    kept.update({f"dataset {d}": NOT_DELETABLE.format(kind="dataset", state="empty of this run's items")
                 for d in receipt.datasets_created})  # fmt: skip
    kept.update({f"project {p}": NOT_DELETABLE.format(kind="project", state="without this run's datasets")
                 for p in receipt.projects_created})  # fmt: skip
    return RollbackPlan(
        items=[*receipt.groups_created, *sorted(items_created)],
        folders=list(reversed(receipt.folders_created)),
        detach={project: datasets for project, datasets in detach.items() if datasets},
        schema_keys=[key for key in receipt.schema_keys_added if key not in in_use],
        kept=kept,
    )
