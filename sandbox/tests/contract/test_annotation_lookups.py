"""Title lookups of datasets and projects: the unmodified SDK against the running sandbox.

``get_datasets`` (``GET /v2/public/datasets/list``, one ``{"result": [...]}`` answer) and
``list_projects`` (``GET /v2/public/projects``, paged): the filters as the SDK sends them (camelCase
query parameters, SQL LIKE for ``*_like``, ``*_before`` strict and ``*_after`` inclusive), only the
caller's own resources, and the caller's role on each.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.orm.dataset import DatasetType, DatasetUserRole
from encord.utilities.project_user import ProjectUserRole
from encord_sandbox.projects import routes as annotate


def _token() -> str:
    return uuid.uuid4().hex[:8]


def test_get_datasets_by_exact_title_returns_every_dataset_of_that_title(client: EncordUserClient) -> None:
    title = f"lookup {_token()}"
    first = client.create_dataset(title, DatasetType.CORD_STORAGE, dataset_description="first")
    second = client.create_dataset(title, DatasetType.CORD_STORAGE, create_backing_folder=False)
    client.create_dataset(f"{title} (copy)", DatasetType.CORD_STORAGE)

    found = client.get_datasets(title_eq=title)

    assert [f["dataset"].dataset_hash for f in found] == [first.dataset_hash, second.dataset_hash]
    info = found[0]["dataset"]
    assert (info.title, info.description, info.type) == (title, "first", 0)
    assert info.backing_folder_uuid == first.backing_folder_uuid and found[1]["dataset"].backing_folder_uuid is None
    assert {f["user_role"] for f in found} == {DatasetUserRole.ADMIN}
    assert info.created_at.tzinfo is not None and info.last_edited_at == info.created_at


def test_get_datasets_filters_like_description_and_dates(client: EncordUserClient) -> None:
    token = _token()
    made = client.create_dataset(f"Cams {token} north", DatasetType.CORD_STORAGE, dataset_description=f"d-{token}")
    created_at = client.get_datasets(title_eq=f"Cams {token} north")[0]["dataset"].created_at

    def hashes(**filters: object) -> list[str]:
        return [f["dataset"].dataset_hash for f in client.get_datasets(**filters)]  # type: ignore[arg-type]

    assert hashes(title_like=f"cams {token}%") == [made.dataset_hash]  # LIKE is case-insensitive, as ILIKE
    assert hashes(title_like=f"cams_{token}%") == [made.dataset_hash]  # _ is any one character
    assert hashes(title_like=f"{token}") == []
    assert hashes(desc_eq=f"d-{token}") == [made.dataset_hash]
    assert hashes(desc_like=f"%{token}") == [made.dataset_hash]
    assert hashes(title_eq=f"Cams {token} north", created_after=created_at) == [made.dataset_hash]  # inclusive
    assert hashes(title_eq=f"Cams {token} north", created_before=created_at) == []  # strict
    later = created_at + timedelta(seconds=1)
    assert hashes(title_eq=f"Cams {token} north", edited_after=later) == []


def test_linking_items_edits_a_dataset(client: EncordUserClient, media_dir: Path) -> None:
    title = f"edited {_token()}"
    made = client.create_dataset(title, DatasetType.CORD_STORAGE)
    before = client.get_datasets(title_eq=title)[0]["dataset"].last_edited_at
    item = client.create_storage_folder(f"f-{_token()}").upload_image(media_dir / "red.png")
    client.get_dataset(made.dataset_hash).link_items([item])

    after = client.get_datasets(title_eq=title)[0]["dataset"].last_edited_at

    assert after > before


def test_users_see_only_their_own_datasets(client: EncordUserClient, other_client: EncordUserClient) -> None:
    title = f"private {_token()}"
    client.create_dataset(title, DatasetType.CORD_STORAGE)
    assert other_client.get_datasets(title_eq=title) == []


def test_list_projects_by_title(client: EncordUserClient) -> None:
    title = f"project {_token()}"
    dataset = client.create_dataset(f"ds {_token()}", DatasetType.CORD_STORAGE).dataset_hash
    made = client.create_project(title, [dataset], project_description="a project")
    sibling = client.create_project(f"{title} 2", [])

    (found,) = client.list_projects(title_eq=title)

    assert (found.project_hash, found.title, found.description) == (made, title, "a project")
    assert found.user_role == ProjectUserRole.ADMIN
    assert found.ontology_hash == client.get_project(made).ontology_hash
    assert [str(d.dataset_hash) for d in found.list_datasets()] == [dataset]
    assert [p.project_hash for p in client.list_projects(title_like=f"{title}%")] == [made, sibling]
    assert list(client.list_projects(title_eq=title, tags_anyof=["any"])) == []  # the sandbox keeps no tags
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert list(client.list_projects(title_eq=title, created_after=now)) == []


def test_list_projects_pages_through_every_project(client: EncordUserClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(annotate, "PROJECTS_PAGE_SIZE", 2)
    token = _token()
    made = [client.create_project(f"paged {token} {n}", []) for n in range(5)]

    assert [p.project_hash for p in client.list_projects(title_like=f"paged {token}%")] == made


def test_users_see_only_their_own_projects(client: EncordUserClient, other_client: EncordUserClient) -> None:
    title = f"private project {_token()}"
    client.create_project(title, [])
    assert list(other_client.list_projects(title_eq=title)) == []
