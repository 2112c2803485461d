"""Ontologies and projects: the unmodified SDK against the running sandbox (the routes in docs/sandbox.md).

A project is created over datasets on the v1 user querier, read back on v2 with Encord's default
workflow (Annotate → Review → Complete), and its datasets are attached and detached; its label rows
follow. Creating a project needs a role on every dataset (and the ontology) it names.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from uuid import UUID

import pytest
from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.objects import Object, OntologyStructure, Shape
from encord.objects.attributes import RadioAttribute
from encord.orm.dataset import DatasetType
from encord.orm.project import ProjectType
from encord.orm.workflow import WorkflowStageType
from encord.storage import StorageFolder


def _token() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def media_folder(client: EncordUserClient) -> StorageFolder:
    return client.create_storage_folder(f"projects-{_token()}")


@pytest.fixture(scope="module")
def images(media_folder: StorageFolder, media_dir: Path) -> dict[str, UUID]:
    return {name: media_folder.upload_image(media_dir / name) for name in ("red.png", "blue.png", "green.jpg")}


def _dataset(client: EncordUserClient, item_uuids: list[UUID]) -> str:
    created = client.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE, dataset_description="for a project")
    if item_uuids:
        client.get_dataset(created.dataset_hash).link_items(item_uuids)
    return created.dataset_hash


def _structure() -> OntologyStructure:
    structure = OntologyStructure()
    box = structure.add_object(name="box", shape=Shape.BOUNDING_BOX)
    colour = box.add_attribute(RadioAttribute, name="colour")
    colour.add_option(label="red")
    colour.add_option(label="blue")
    structure.add_object(name="outline", shape=Shape.POLYGON)
    return structure


# --- ontologies ---------------------------------------------------------------------------------


def test_create_and_get_ontology_round_trips_the_structure(client: EncordUserClient) -> None:
    structure = _structure()
    title = f"ontology-{_token()}"
    created = client.create_ontology(title, description="boxes and outlines", structure=structure)

    for ontology in (created, client.get_ontology(created.ontology_hash)):
        assert ontology.ontology_hash == created.ontology_hash
        assert ontology.title == title
        assert ontology.description == "boxes and outlines"
        assert ontology.structure.to_dict() == structure.to_dict()
        assert [o.name for o in ontology.structure.objects] == ["box", "outline"]
        assert [o.shape for o in ontology.structure.objects] == [Shape.BOUNDING_BOX, Shape.POLYGON]
        box = ontology.structure.get_child_by_title("box", type_=Object)
        assert box.feature_node_hash == structure.objects[0].feature_node_hash
        assert ontology.created_at <= ontology.last_edited_at


def test_create_ontology_without_structure_is_empty(client: EncordUserClient) -> None:
    ontology = client.create_ontology(f"empty-{_token()}")
    fetched = client.get_ontology(ontology.ontology_hash)
    assert fetched.structure.objects == [] and fetched.structure.classifications == []


def test_another_users_ontology_is_refused(client: EncordUserClient, other_client: EncordUserClient) -> None:
    ontology = client.create_ontology(f"private-{_token()}", structure=_structure())
    with pytest.raises(AuthorisationError):
        other_client.get_ontology(ontology.ontology_hash)
    with pytest.raises(ResourceNotFoundError):
        client.get_ontology(str(uuid.uuid4()))


# --- projects -----------------------------------------------------------------------------------


def test_create_project_over_datasets_with_the_default_workflow(
    client: EncordUserClient, images: dict[str, UUID]
) -> None:
    first = _dataset(client, [images["red.png"]])
    second = _dataset(client, [images["blue.png"], images["green.jpg"]])
    ontology = client.create_ontology(f"ontology-{_token()}", structure=_structure())
    title = f"project-{_token()}"

    project_hash = client.create_project(title, [first, second], "two datasets", ontology.ontology_hash)
    project = client.get_project(project_hash)

    assert project.project_hash == project_hash
    assert project.title == title
    assert project.description == "two datasets"
    assert project.project_type == ProjectType.WORKFLOW
    assert project.ontology_hash == ontology.ontology_hash
    assert project.ontology_structure.to_dict() == ontology.structure.to_dict()
    assert project.created_at <= project.last_edited_at

    stages = project.workflow.stages
    assert [(s.title, s.stage_type) for s in stages] == [
        ("Annotate", WorkflowStageType.ANNOTATION),
        ("Review", WorkflowStageType.REVIEW),
        ("Complete", WorkflowStageType.DONE),
    ]
    assert len({s.uuid for s in stages}) == 3
    assert project.workflow.get_stage(name="Review").uuid == stages[1].uuid
    # The stage UUIDs are stable: a second read sees the same workflow.
    assert [s.uuid for s in client.get_project(project_hash).workflow.stages] == [s.uuid for s in stages]

    assert [(str(d.dataset_hash), d.title) for d in project.list_datasets()] == [
        (first, client.get_dataset(first).title),
        (second, client.get_dataset(second).title),
    ]
    rows = project.list_label_rows_v2()
    assert sorted(r.data_title for r in rows) == ["blue.png", "green.jpg", "red.png"]
    for row in rows:
        assert row.label_hash is None  # listed before any label row is created
        assert row.workflow_graph_node is not None
        assert (row.workflow_graph_node.title, row.workflow_graph_node.uuid) == ("Annotate", str(stages[0].uuid))
        assert row.dataset_hash in (first, second)


def test_create_project_without_ontology_gets_an_empty_one(client: EncordUserClient) -> None:
    project = client.get_project(client.create_project(f"no-ontology-{_token()}", [_dataset(client, [])]))
    assert project.ontology_hash
    assert project.ontology_structure.objects == [] and project.ontology_structure.classifications == []
    assert client.get_ontology(project.ontology_hash).structure.to_dict() == project.ontology_structure.to_dict()
    assert project.list_label_rows_v2() == []


def test_create_project_with_no_datasets_and_bad_input(client: EncordUserClient) -> None:
    project = client.get_project(client.create_project(f"empty-{_token()}", []))
    assert list(project.list_datasets()) == []
    with pytest.raises(InvalidArgumentsError, match="not-a-uuid"):
        client.create_project(f"bad-{_token()}", ["not-a-uuid"])
    with pytest.raises(ResourceNotFoundError):
        client.create_project(f"missing-{_token()}", [str(uuid.uuid4())])
    with pytest.raises(ResourceNotFoundError):
        client.get_project(str(uuid.uuid4()))


def test_add_and_remove_datasets(client: EncordUserClient, images: dict[str, UUID]) -> None:
    first = _dataset(client, [images["red.png"]])
    second = _dataset(client, [images["blue.png"], images["green.jpg"]])
    project = client.get_project(client.create_project(f"grow-{_token()}", [first]))
    assert [r.data_title for r in project.list_label_rows_v2()] == ["red.png"]

    assert project.add_datasets([second]) is True
    assert [str(d.dataset_hash) for d in project.list_datasets()] == [first, second]
    rows = project.list_label_rows_v2()
    assert sorted((r.data_title, r.dataset_hash) for r in rows) == sorted(
        [("red.png", first), ("blue.png", second), ("green.jpg", second)]
    )
    # The rows of the new dataset are real rows of the project: they can be created and saved.
    new_row = next(r for r in rows if r.data_title == "blue.png")
    new_row.initialise_labels()
    new_row.save()
    assert new_row.label_hash is not None

    # Adding an attached dataset again changes nothing.
    project.add_datasets([second])
    assert [str(d.dataset_hash) for d in project.list_datasets()] == [first, second]

    assert project.remove_datasets([first]) is True
    assert [str(d.dataset_hash) for d in project.list_datasets()] == [second]
    assert sorted(r.data_title for r in project.list_label_rows_v2()) == ["blue.png", "green.jpg"]

    with pytest.raises(ResourceNotFoundError, match=first):
        project.remove_datasets([first])  # no longer attached


def test_create_project_over_a_dataset_without_a_role_is_refused(
    client: EncordUserClient, other_client: EncordUserClient, images: dict[str, UUID]
) -> None:
    theirs = _dataset(client, [images["red.png"]])
    with pytest.raises(AuthorisationError):
        other_client.create_project(f"stolen-{_token()}", [theirs])

    # Nor may a project of one's own take in someone else's dataset afterwards.
    own = other_client.create_dataset(f"own-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    project = other_client.get_project(other_client.create_project(f"own-{_token()}", [own]))
    with pytest.raises(AuthorisationError):
        project.add_datasets([theirs])
    assert [str(d.dataset_hash) for d in project.list_datasets()] == [own]


def test_another_users_project_and_ontology_are_refused(
    client: EncordUserClient, other_client: EncordUserClient
) -> None:
    ontology = client.create_ontology(f"mine-{_token()}", structure=_structure())
    project_hash = client.create_project(
        f"mine-{_token()}", [_dataset(client, [])], ontology_hash=ontology.ontology_hash
    )
    with pytest.raises(AuthorisationError):
        other_client.get_project(project_hash)

    own = other_client.create_dataset(f"own-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    with pytest.raises(AuthorisationError):
        other_client.create_project(f"borrow-{_token()}", [own], ontology_hash=ontology.ontology_hash)
