"""Dataset and project tasks against the sandbox: get-or-create by title, linking with each duplicate
behaviour (by list, folder and item type), refusals isolated, and attaching datasets only once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.objects import OntologyStructure, Shape
from encord.orm.dataset import DatasetType
from encord.orm.storage import DataGroupGrid
from encord.storage import StorageFolder
from encord_sandbox import Sandbox

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.links import AlreadyLinked
from prefect_encord.planning.titles import AmbiguousTitle
from prefect_encord.tasks import datasets as dataset_tasks
from prefect_encord.tasks.datasets import get_or_create_dataset, link_folder_to_dataset, link_items_to_dataset
from prefect_encord.tasks.projects import OntologyMismatch, attach_datasets, get_or_create_project
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog


def _token() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def credentials(sandbox: Sandbox) -> EncordCredentials:
    return credentials_block(sandbox)


@pytest.fixture
def items(folder: StorageFolder, media_dir: Path) -> dict[str, str]:
    """Two images, an image group (two frames), a text file and a data group, in the test's folder."""
    m = media_dir
    made = {
        "red.png": folder.upload_image(m / "red.png"),
        "blue.png": folder.upload_image(m / "blue.png"),
        "ig": folder.create_image_group([m / "red.png", m / "green.jpg"], title="ig"),
        "notes.txt": folder.upload_text(m / "notes.txt"),
    }
    made["grp"] = folder.create_data_group(
        DataGroupGrid(name="grp", layout_contents=[made["red.png"], made["notes.txt"]])
    )
    return {name: str(item) for name, item in made.items()}


def _new_dataset(client: EncordUserClient) -> str:
    return client.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE).dataset_hash


def _linked_items(client: EncordUserClient, dataset_hash: str) -> list[str]:
    return sorted(str(row.backing_item_uuid) for row in client.get_dataset(dataset_hash).data_rows)


# --- datasets -----------------------------------------------------------------------------------


def test_get_or_create_dataset_is_idempotent(credentials: EncordCredentials, client: EncordUserClient) -> None:
    title = f"training {_token()}"
    first = get_or_create_dataset.fn(credentials, title, description="for training")
    again = get_or_create_dataset.fn(credentials, title)

    assert first.created and not again.created
    assert again.dataset_hash == first.dataset_hash
    dataset = client.get_dataset(first.dataset_hash)
    assert (dataset.title, dataset.description, dataset.backing_folder_uuid) == (title, "for training", None)


def test_a_title_shared_by_two_datasets_is_refused(credentials: EncordCredentials, client: EncordUserClient) -> None:
    title = f"shared {_token()}"
    hashes = sorted(client.create_dataset(title, DatasetType.CORD_STORAGE).dataset_hash for _ in range(2))
    with pytest.raises(AmbiguousTitle, match=rf"2 datasets are titled '{title}' \({hashes[0]}, {hashes[1]}\)"):
        get_or_create_dataset.fn(credentials, title)


def test_link_skip_on_rerun_links_nothing(
    credentials: EncordCredentials, client: EncordUserClient, items: dict[str, str], http_log: HttpLog
) -> None:
    dataset = _new_dataset(client)
    wanted = [items["red.png"], items["ig"], items["grp"]]

    first = link_items_to_dataset.fn(credentials, dataset, wanted)
    assert sorted(first.linked) == sorted(wanted) and first.already_present == {} and first.failed == {}

    http_log.api.clear()
    again = link_items_to_dataset.fn(credentials, dataset, [*wanted, items["blue.png"]])

    assert again.already_present == first.linked  # the same data hashes, found rather than made
    assert list(again.linked) == [items["blue.png"]]
    assert again.data_hashes == {**first.linked, **again.linked}
    assert http_log.calls("POST", "/public") == 2  # read the dataset's rows, link the one new item
    assert _linked_items(client, dataset) == sorted([*wanted, items["blue.png"]])

    http_log.api.clear()
    third = link_items_to_dataset.fn(credentials, dataset, wanted)
    assert third.linked == {} and http_log.calls("POST", "/public") == 1  # nothing left to link: no link call


def test_link_fail_leaves_nothing_linked(
    credentials: EncordCredentials, client: EncordUserClient, items: dict[str, str]
) -> None:
    dataset = _new_dataset(client)
    link_items_to_dataset.fn(credentials, dataset, [items["red.png"]])

    with pytest.raises(AlreadyLinked, match=f"1 of 3 items are already in the dataset \\({items['red.png']}\\)"):
        link_items_to_dataset.fn(credentials, dataset, [items["blue.png"], items["red.png"], items["ig"]], "FAIL")

    assert _linked_items(client, dataset) == [items["red.png"]]
    linked = link_items_to_dataset.fn(credentials, dataset, [items["blue.png"]], "FAIL")
    assert list(linked.linked) == [items["blue.png"]]


def test_link_duplicate_makes_new_data_units(
    credentials: EncordCredentials, client: EncordUserClient, items: dict[str, str]
) -> None:
    dataset = _new_dataset(client)
    first = link_items_to_dataset.fn(credentials, dataset, [items["red.png"]])
    second = link_items_to_dataset.fn(credentials, dataset, [items["red.png"]], "DUPLICATE")

    assert second.linked[items["red.png"]] != first.linked[items["red.png"]]
    assert _linked_items(client, dataset) == [items["red.png"]] * 2


def test_refused_items_are_isolated_and_the_rest_linked(
    credentials: EncordCredentials, client: EncordUserClient, items: dict[str, str], http_log: HttpLog
) -> None:
    dataset = _new_dataset(client)
    missing = str(uuid.uuid4())
    wanted = [items["red.png"], items["blue.png"], missing, items["notes.txt"]]

    http_log.api.clear()
    result = link_items_to_dataset.fn(credentials, dataset, wanted)

    assert sorted(result.linked) == sorted([items["red.png"], items["blue.png"], items["notes.txt"]])
    assert list(result.failed) == [missing] and "refused by Encord" in result.failed[missing]
    # read rows; the bundle of 4 refused → halves: [red, blue] linked, [missing, notes] refused → 1 + 1
    assert http_log.calls("POST", "/public") == 1 + 5


def test_link_a_folder_in_bundles_and_pages(
    credentials: EncordCredentials,
    client: EncordUserClient,
    folder: StorageFolder,
    items: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dataset_tasks, "MAX_PAGE_SIZE", 2)
    dataset = _new_dataset(client)

    result = link_folder_to_dataset.fn(credentials, dataset, folder.uuid, bundle_size=2)

    # Every item of the folder, groups included; frames of the image group are part of it, not items.
    assert sorted(result.linked) == sorted(items.values())
    assert _linked_items(client, dataset) == sorted(items.values())
    assert link_folder_to_dataset.fn(credentials, dataset, str(folder.uuid)).linked == {}


def test_link_a_folder_by_item_type(
    credentials: EncordCredentials, client: EncordUserClient, folder: StorageFolder, items: dict[str, str]
) -> None:
    dataset = _new_dataset(client)

    images = link_folder_to_dataset.fn(credentials, dataset, folder.uuid, item_types=["image"])
    assert sorted(images.linked) == sorted([items["red.png"], items["blue.png"]])

    more = link_folder_to_dataset.fn(credentials, dataset, folder.uuid, item_types=["IMAGE_GROUP", "group", "image"])
    assert sorted(more.linked) == sorted([items["ig"], items["grp"]])
    assert sorted(more.already_present) == sorted(images.linked)


# --- projects -----------------------------------------------------------------------------------


def _ontology(client: EncordUserClient) -> str:
    structure = OntologyStructure()
    structure.add_object(name="box", shape=Shape.BOUNDING_BOX)
    return client.create_ontology(f"boxes-{_token()}", structure=structure).ontology_hash


def test_attach_datasets_only_once(credentials: EncordCredentials, client: EncordUserClient, http_log: HttpLog) -> None:
    first, second = _new_dataset(client), _new_dataset(client)
    project = client.create_project(f"p-{_token()}", [first])

    attached = attach_datasets.fn(credentials, project, [second, first, second.upper()])
    assert (attached.attached, attached.already_attached) == ([second], [first])

    http_log.api.clear()
    again = attach_datasets.fn(credentials, project, [first, second])
    assert (again.attached, again.already_attached) == ([], [first, second])
    assert http_log.calls("POST", "/public") == 0  # nothing was sent to attach
    assert sorted(str(d.dataset_hash) for d in client.get_project(project).list_datasets()) == sorted([first, second])


def test_get_or_create_project_is_idempotent(credentials: EncordCredentials, client: EncordUserClient) -> None:
    title, ontology = f"annotate {_token()}", _ontology(client)
    first_ds, second_ds = _new_dataset(client), _new_dataset(client)

    created = get_or_create_project.fn(credentials, title, ontology, [first_ds], description="boxes")
    found = get_or_create_project.fn(credentials, title, ontology, [first_ds, second_ds])
    any_ontology = get_or_create_project.fn(credentials, title)

    assert created.created and not found.created and not any_ontology.created
    assert found.project_hash == created.project_hash == any_ontology.project_hash
    assert created.ontology_hash == ontology == found.ontology_hash
    assert (created.datasets.attached, found.datasets.attached) == ([first_ds], [second_ds])
    assert found.datasets.already_attached == [first_ds]
    project = client.get_project(created.project_hash)
    assert (project.title, project.description, project.ontology_hash) == (title, "boxes", ontology)


def test_get_or_create_project_refuses_another_ontology_or_a_shared_title(
    credentials: EncordCredentials, client: EncordUserClient
) -> None:
    title = f"labels {_token()}"
    made = get_or_create_project.fn(credentials, title, _ontology(client))
    other = _ontology(client)
    with pytest.raises(OntologyMismatch, match=f"uses ontology {made.ontology_hash}, not {other}"):
        get_or_create_project.fn(credentials, title, other)

    twin = client.create_project(title, [])
    with pytest.raises(AmbiguousTitle, match=f"2 projects are titled '{title}' .*{twin}"):
        get_or_create_project.fn(credentials, title)
