"""Projects: attach datasets only where missing, and get or create a project by title with its ontology.

``add_datasets`` is not retried by the SDK and its behaviour on an already attached dataset is the
server's choice, so attaching always reads ``project.list_datasets()`` first and sends only what is
missing: a re-run sends nothing. Requests: two to open the project (project and ontology), one to
list its datasets, and, only if something is missing, one to attach and one that the SDK makes to
refresh the project.

Reads are retried (:func:`~prefect_encord.jobs.api_retries.call_with_retries`). The project create and the attach
are sent again after a transient failure only if a lookup shows the failed attempt did not take effect
(:func:`~prefect_encord.jobs.api_retries.create_once`): the project by title, the datasets by listing the
project's. A blind repeat could make a second project of the title, or send an attach whose outcome for
datasets already attached is, again, the server's choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from encord import EncordUserClient, Project
from encord.exceptions import ResourceNotFoundError
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.jobs.api_retries import call_with_retries, create_once
from prefect_encord.planning.titles import single_match
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.lookups import open_project


class AttachResult(BaseModel):
    """Which datasets an attach call added, and which the project already had."""

    project_hash: str
    title: str = ""
    attached: list[str] = Field(default_factory=list, description="Datasets this call attached.")
    already_attached: list[str] = Field(default_factory=list, description="Datasets the project already had.")


class ProjectRef(BaseModel):
    """A project found or created by title, with the datasets it was asked to have."""

    project_hash: str
    title: str
    ontology_hash: str
    created: bool = Field(description="True if this call created the project, False if it already existed.")
    datasets: AttachResult


class OntologyMismatch(ValueError):
    """The project found by title uses another ontology than the one asked for."""


@task
def attach_datasets(credentials: EncordCredentials, project_hash: str, dataset_hashes: Sequence[str]) -> AttachResult:
    """Attach datasets to a project, skipping those it already has.

    Args:
        credentials: Encord credentials.
        project_hash: The project.
        dataset_hashes: Datasets that must be attached (duplicates are ignored).
    """
    client = credentials.get_client()
    project = call_with_retries(lambda: open_project(client, project_hash), f"opening project {project_hash}")
    return _attach(project, dataset_hashes)


@task
def detach_datasets(credentials: EncordCredentials, project_hash: str, dataset_hashes: Sequence[str]) -> list[str]:
    """Detach datasets from a project (the undoing of :func:`attach_datasets`); returns those it detached.

    A project that is gone, or no longer has a dataset, is left as it is: there is nothing to undo.
    """
    client = credentials.get_client()
    try:
        project = call_with_retries(lambda: open_project(client, project_hash), f"opening project {project_hash}")
    except ResourceNotFoundError:
        return []
    present = call_with_retries(lambda: _attached(project), f"listing the datasets of project {project_hash}")
    doomed = [d for d in _unique_hashes(dataset_hashes) if d in present]
    if doomed:
        call_with_retries(lambda: project.remove_datasets(doomed), f"detaching datasets from project {project_hash}")
        run_logger(__name__).info("Project %s: %d datasets detached", project_hash, len(doomed))
    return doomed


@task
def get_or_create_project(
    credentials: EncordCredentials,
    title: str,
    ontology_hash: str | None = None,
    dataset_hashes: Sequence[str] = (),
    description: str = "",
) -> ProjectRef:
    """The project titled exactly ``title`` with ``dataset_hashes`` attached, created if there is none.

    Idempotent: a second run finds the project and attaches only datasets it lacks. A project is
    created with Encord's default workflow (Annotate → Review → Complete).

    Args:
        credentials: Encord credentials.
        title: The project's exact title.
        ontology_hash: The ontology the project labels with. When creating, None lets Encord make an
            empty one; when the project exists, None accepts whatever ontology it has.
        dataset_hashes: Datasets the project must have.
        description: Description of the project, if created.

    Raises:
        AmbiguousTitle: If several projects visible to the user carry ``title``; the message lists their hashes.
        OntologyMismatch: If the existing project uses another ontology than ``ontology_hash``: a project's
            labels are only meaningful with its own ontology, so it is never silently swapped.
    """
    if not title.strip():
        raise ValueError(f"a project title must not be blank, got {title!r}")
    client = credentials.get_client()
    wanted = _unique_hashes(dataset_hashes)
    project = call_with_retries(lambda: _find_project(client, title), f"looking up project {title!r}")
    if project is None:
        project = create_once(
            lambda: _find_project(client, title),
            lambda: _create_project(client, title, wanted, description, ontology_hash),
            f"creating project {title!r}",
        )
        run_logger(__name__).info("Created project %r: %s", title, project.project_hash)
        return ProjectRef(
            project_hash=project.project_hash,
            title=title,
            ontology_hash=project.ontology_hash,
            created=True,
            datasets=AttachResult(project_hash=project.project_hash, title=title, attached=wanted),
        )
    if ontology_hash is not None and project.ontology_hash != ontology_hash:
        raise OntologyMismatch(
            f"project {title!r} ({project.project_hash}) uses ontology {project.ontology_hash}, not {ontology_hash}; "
            "use another title, or omit the ontology to accept the project's own"
        )
    run_logger(__name__).info("Project %r exists: %s", title, project.project_hash)
    return ProjectRef(
        project_hash=project.project_hash,
        title=title,
        ontology_hash=project.ontology_hash,
        created=False,
        datasets=_attach(project, wanted),
    )


def _create_project(
    client: EncordUserClient, title: str, dataset_hashes: list[str], description: str, ontology_hash: str | None
) -> Project:
    """Create the project with its datasets (one POST, not retried by the SDK), then open it.

    Opening it is part of the create so that, should that read fail, the project is found by title rather than
    lost: :func:`~prefect_encord.jobs.api_retries.create_once` looks before sending anything again.
    """
    project_hash = client.create_project(
        title, dataset_hashes, project_description=description, ontology_hash=ontology_hash or ""
    )
    return client.get_project(project_hash)


def _find_project(client: EncordUserClient, title: str) -> Project | None:
    """The one project titled exactly ``title``, or None (raises ``AmbiguousTitle`` for several)."""
    listed = {p.project_hash: p for p in client.list_projects(title_eq=title)}
    found = single_match("project", title, ((h, p.title) for h, p in listed.items()))
    return listed[found] if found is not None else None


def _attach(project: Project, dataset_hashes: Sequence[str]) -> AttachResult:
    wanted = _unique_hashes(dataset_hashes)
    present = call_with_retries(lambda: _attached(project), f"listing the datasets of project {project.project_hash}")
    missing = [d for d in wanted if d not in present]
    if missing:
        create_once(
            lambda: missing if set(missing) <= _attached(project) else None,
            lambda: _add(project, missing),
            f"attaching {len(missing)} datasets to project {project.project_hash}",
        )
    result = AttachResult(
        project_hash=project.project_hash,
        title=project.title,
        attached=missing,
        already_attached=[d for d in wanted if d in present],
    )
    run_logger(__name__).info(
        "Project %s: %d datasets attached, %d already attached",
        project.project_hash, len(result.attached), len(result.already_attached),
    )  # fmt: skip
    return result


def _attached(project: Project) -> set[str]:
    """The hashes of the datasets the project has now (a read)."""
    return {str(d.dataset_hash) for d in project.list_datasets()}


def _add(project: Project, dataset_hashes: list[str]) -> list[str]:
    """Attach the datasets (the SDK then refreshes the project); the hashes attached."""
    project.add_datasets(dataset_hashes)
    return dataset_hashes


def _unique_hashes(dataset_hashes: Sequence[str]) -> list[str]:
    """Dataset hashes in canonical UUID form, first occurrence kept, so comparisons with Encord's are exact."""
    try:
        return list(dict.fromkeys(str(UUID(str(h))) for h in dataset_hashes))
    except ValueError:
        raise ValueError(f"dataset hashes must be UUIDs, got {list(dataset_hashes)!r}") from None
