"""Label rows: list them with any of Encord's filters, and initialise their labels a bundle at a time.

Listing is one request however many rows match (``labelrowmetadata`` answers with every row).
Labels are not part of a listing: each row must be initialised, which the SDK does one request per
row unless the calls are bundled; :func:`initialise_in_bundles` sends one request per 1,000 rows
(Encord's limit per bundled call), so reading 10,000 rows of labels takes ten requests.

:func:`find_labelled_items` answers what a rollback must know before it deletes: which of some items carry
labels someone made, in any project the credentials can see.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime

from encord import Project
from encord.http.limits import LABEL_ROW_BUNDLE_GET_LIMIT
from encord.objects import LabelRowV2
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.label_rows import LabelRowFilters, LabelRowSummary
from prefect_encord.tasks.lookups import open_project

#: Rows per bundled initialise request: Encord's maximum.
BUNDLE_SIZE = LABEL_ROW_BUNDLE_GET_LIMIT


# Never cached: the rows depend on the project's state when the task runs, not on its inputs.
@task(cache_policy=NO_CACHE)
def list_label_rows(
    credentials: EncordCredentials, project_hash: str, filters: LabelRowFilters | None = None
) -> list[LabelRowSummary]:
    """Summaries of a project's label rows that pass ``filters`` (every row, if None), in Encord's order.

    Rows nobody has started are included, with ``label_hash`` None. One request to open the project
    (and one for its ontology), one to list.

    Args:
        credentials: Encord credentials.
        project_hash: The project.
        filters: Which rows; see :class:`~prefect_encord.planning.label_rows.LabelRowFilters`.
    """
    project = open_project(credentials.get_client(), project_hash)
    return [summarise(row) for row in list_rows(project, filters or LabelRowFilters())]


def list_rows(project: Project, filters: LabelRowFilters, edited_after: datetime | None = None) -> list[LabelRowV2]:
    """The project's rows passing ``filters`` (and edited after ``edited_after``, if later), not yet initialised."""
    return project.list_label_rows_v2(**filters.sdk_arguments(edited_after))


def summarise(row: LabelRowV2) -> LabelRowSummary:
    """What the listing says about one row (workflow projects hide label and task status, so neither is used)."""
    node = row.workflow_graph_node
    return LabelRowSummary(
        data_hash=row.data_hash,
        label_hash=row.label_hash,
        branch_name=row.branch_name,
        dataset_hash=row.dataset_hash,
        dataset_title=row.dataset_title,
        data_title=row.data_title,
        data_type=row.data_type.value,
        created_at=row.created_at,
        last_edited_at=row.last_edited_at,
        workflow_node=node.title if node is not None else None,
        backing_item_uuid=str(row.backing_item_uuid) if row.backing_item_uuid is not None else None,
        client_metadata=row.client_metadata,
    )


def initialise_in_bundles(
    project: Project, rows: Sequence[LabelRowV2], bundle_size: int = BUNDLE_SIZE
) -> Iterator[Sequence[LabelRowV2]]:
    """Initialise ``rows`` one bundle (one request) at a time, yielding each bundle once its labels are in.

    Yielding lets a caller write a bundle out and let it go before the next is fetched, so memory
    holds one bundle of labels, not the project. A row nobody has started is *created* by its
    initialisation (that is the SDK's behaviour); pass only started rows to read without writing.

    Raises:
        ValueError: If ``bundle_size`` is not between 1 and 1,000.
    """
    if not 1 <= bundle_size <= BUNDLE_SIZE:
        raise ValueError(f"bundle_size {bundle_size} must be between 1 and {BUNDLE_SIZE}")
    for start in range(0, len(rows), bundle_size):
        chunk = rows[start : start + bundle_size]
        with project.create_bundle(bundle_size=bundle_size) as bundle:
            for row in chunk:
                row.initialise_labels(bundle=bundle)
        yield chunk


class LabelledItems(BaseModel):
    """The items that carry labels, per project: ``{project title and hash: [item UUID, …]}``."""

    by_project: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def items(self) -> set[str]:
        return {item for items in self.by_project.values() for item in items}

    def describe(self) -> str:
        """Counts per project, the largest first, e.g. "project 'Cars' (3f…): 12 items"."""
        ranked = sorted(self.by_project.items(), key=lambda entry: (-len(entry[1]), entry[0]))
        return "; ".join(f"project {name}: {len(items)} item{'s' * (len(items) != 1)}" for name, items in ranked)


@task(cache_policy=NO_CACHE)
def find_labelled_items(credentials: EncordCredentials, item_uuids: Collection[str]) -> LabelledItems:
    """Which of ``item_uuids`` have a started label row (on any branch) in a project the credentials can see.

    A started row is one someone opened and saved: even without objects it is a person's verdict ("nothing
    here"), so it counts. A row names its storage item as ``backing_item_uuid``. Each project is listed once, whole, and
    matched here: one request per project however many items are asked about (a filter of a million data
    hashes would be a request body of tens of megabytes). Projects the credentials cannot see are not looked at.
    """
    wanted = {str(item) for item in item_uuids}
    found = LabelledItems()
    if not wanted:
        return found
    for project in credentials.get_client().list_projects():
        rows = project.list_label_rows_v2(include_all_label_branches=True, include_workflow_graph_node=False)
        started = (str(row.backing_item_uuid) for row in rows if row.label_hash is not None)
        labelled = sorted(wanted.intersection(started))
        if labelled:
            found.by_project[f"'{project.title}' ({project.project_hash})"] = labelled
    return found
