"""Datasets: the unmodified SDK against the running sandbox (the routes in docs/sandbox.md).

Creating datasets with and without a backing folder, reading their data rows back with the facts the
sandbox probed from real media, ``list_data_rows`` filters (SQL LIKE semantics for ``title_like``) and
``link_items`` with each duplicate behaviour, including what the server chose for ``SKIP``: the rows
of *every* requested item come back, already-linked ones included, so callers get all data hashes.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import pytest
from encord import EncordUserClient
from encord.constants.enums import DataType
from encord.dataset import Dataset
from encord.exceptions import (
    AuthorisationError,
    InvalidArgumentsError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from encord.orm.dataset import DataLinkDuplicatesBehavior, DataRow, DatasetAccessSettings, DatasetType
from encord.orm.storage import DataGroupGrid
from encord.storage import StorageFolder, StorageItem


def _token() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def media_folder(client: EncordUserClient) -> StorageFolder:
    return client.create_storage_folder(f"datasets-{_token()}", description="media for dataset tests")


@pytest.fixture(scope="module")
def items(media_folder: StorageFolder, media_dir: Path) -> dict[str, UUID]:
    """One item of every kind the storage half accepts, uploaded for real (probed by the sandbox)."""
    f, m = media_folder, media_dir
    uploaded = {
        "red.png": f.upload_image(m / "red.png", client_metadata={"colour": "red"}),
        "blue.png": f.upload_image(m / "blue.png"),
        "green.jpg": f.upload_image(m / "green.jpg"),
        "red_png": f.upload_image(m / "red.png", title="red_png"),
        "clip.mp4": f.upload_video(m / "clip.mp4"),
        "tone.wav": f.upload_audio(m / "tone.wav"),
        "report.pdf": f.upload_pdf(m / "report.pdf"),
        "notes.txt": f.upload_text(m / "notes.txt"),
        "ig": f.create_image_group([m / "red.png", m / "blue.png"], title="ig"),
        "ct": f.create_dicom_series([m / f"dicom/series-1/slice-{n}.dcm" for n in (1, 2, 3)], title="ct"),
    }
    uploaded["grp"] = f.create_data_group(
        DataGroupGrid(name="grp", layout_contents=[uploaded["red.png"], uploaded["notes.txt"]])
    )
    return uploaded


def _new_dataset(client: EncordUserClient, **kwargs: object) -> Dataset:
    created = client.create_dataset(f"ds-{_token()}", DatasetType.CORD_STORAGE, **kwargs)  # type: ignore[arg-type]
    return client.get_dataset(created.dataset_hash)


def _titles(rows: list[DataRow]) -> list[str]:
    return sorted(r.title for r in rows)


# --- create / get -------------------------------------------------------------------------------


def test_create_dataset_with_backing_folder(client: EncordUserClient) -> None:
    title = f"backed-{_token()}"
    created = client.create_dataset(title, DatasetType.CORD_STORAGE, dataset_description="with a folder")

    assert created.title == title
    assert created.backing_folder_uuid is not None
    backing = client.get_storage_folder(created.backing_folder_uuid)
    assert backing.name == title

    dataset = client.get_dataset(created.dataset_hash)
    assert dataset.dataset_hash == created.dataset_hash
    assert dataset.title == title
    assert dataset.description == "with a folder"
    assert dataset.backing_folder_uuid == created.backing_folder_uuid
    assert dataset.storage_location == DatasetType.CORD_STORAGE
    assert dataset.data_rows == []


def test_create_dataset_without_backing_folder(client: EncordUserClient) -> None:
    created = client.create_dataset(f"bare-{_token()}", DatasetType.CORD_STORAGE, create_backing_folder=False)

    assert created.backing_folder_uuid is None
    dataset = client.get_dataset(created.dataset_hash)
    assert dataset.backing_folder_uuid is None
    assert dataset.description == ""
    assert dataset.data_rows == []


def test_get_unknown_dataset_is_not_found(client: EncordUserClient) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ResourceNotFoundError, match=missing):
        client.get_dataset(missing)


def test_data_rows_reflect_the_probed_media(client: EncordUserClient, items: dict[str, UUID], media_dir: Path) -> None:
    dataset = _new_dataset(client)
    linked = dataset.link_items(list(items.values()))
    assert len(linked) == len(items)

    dataset = client.get_dataset(dataset.dataset_hash)
    rows = {r.title: r for r in dataset.data_rows}
    # The data group's members are linked as hidden children: only top-level units are data rows.
    assert sorted(rows) == sorted(items)
    assert {r.uid for r in dataset.data_rows} == {r.uid for r in linked}
    assert {r.backing_item_uuid for r in dataset.data_rows} == set(items.values())

    red = rows["red.png"]
    assert (red.data_type, red.width, red.height, red.file_type) == (DataType.IMAGE, 8, 6, "image/png")
    assert red.file_size == (media_dir / "red.png").stat().st_size
    assert red.frames_per_second is None and red.duration is None
    assert rows["green.jpg"].file_type == "image/jpeg"

    clip = rows["clip.mp4"]
    assert clip.data_type == DataType.VIDEO
    assert (clip.width, clip.height, clip.frames_per_second, clip.duration) == (32, 24, 5, 2)
    assert clip.file_type == "video/mp4"
    assert clip.file_size == (media_dir / "clip.mp4").stat().st_size

    tone = rows["tone.wav"]
    assert (tone.data_type, tone.file_type) == (DataType.AUDIO, "audio/wav")
    assert tone["duration"] == 0.5  # the SDK's `duration` property answers None for anything but video
    assert (tone.width, tone.height) == (None, None)

    assert (rows["report.pdf"].data_type, rows["report.pdf"].file_type) == (DataType.PDF, "application/pdf")
    assert (rows["notes.txt"].data_type, rows["notes.txt"].file_type) == (DataType.PLAIN_TEXT, "text/plain")
    assert rows["ig"].data_type == DataType.IMG_GROUP
    assert (rows["ct"].data_type, rows["ct"].width, rows["ct"].height) == (DataType.DICOM, 4, 4)
    assert rows["grp"].data_type == DataType.GROUP
    for row in dataset.data_rows:
        assert row.created_at.tzinfo is not None
        assert row.last_edited_at >= row.created_at


def test_get_dataset_without_rows_and_with_client_metadata(client: EncordUserClient, items: dict[str, UUID]) -> None:
    dataset = _new_dataset(client)
    dataset.link_items([items["red.png"], items["blue.png"]])

    bare = client.get_dataset(dataset.dataset_hash, include_data_rows=False)
    assert bare.title == dataset.title

    rows = {r.title: r for r in dataset.list_data_rows()}
    assert rows["red.png"].client_metadata is None  # not asked for

    dataset.set_access_settings(DatasetAccessSettings(fetch_client_metadata=True))
    with_metadata = {r.title: r for r in dataset.data_rows}
    assert dict(with_metadata["red.png"].client_metadata or {}) == {"colour": "red"}
    assert dict(with_metadata["blue.png"].client_metadata or {}) == {}


# --- list_data_rows filters ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def filtered(client: EncordUserClient, items: dict[str, UUID]) -> tuple[Dataset, datetime]:
    """A dataset linked in two batches, with the moment between them."""
    dataset = _new_dataset(client)
    first = [items[n] for n in ("red.png", "blue.png", "green.jpg", "red_png", "clip.mp4", "ig")]
    dataset.link_items(first)
    time.sleep(0.01)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    dataset.link_items([items["tone.wav"], items["notes.txt"]])
    return dataset, between


def test_list_data_rows_without_filters_lists_every_row(filtered: tuple[Dataset, datetime]) -> None:
    dataset, _ = filtered
    assert _titles(dataset.list_data_rows()) == sorted(
        ["red.png", "blue.png", "green.jpg", "red_png", "clip.mp4", "ig", "tone.wav", "notes.txt"]
    )


def test_list_data_rows_title_eq(filtered: tuple[Dataset, datetime]) -> None:
    dataset, _ = filtered
    assert _titles(dataset.list_data_rows(title_eq="red.png")) == ["red.png"]
    assert dataset.list_data_rows(title_eq="red") == []


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%.png", ["blue.png", "red.png"]),  # % is any run
        ("red_png", ["red.png", "red_png"]),  # _ is exactly one character, "." included
        ("red.png", ["red.png"]),  # "." is literal, not a regex wildcard
        ("red.p.g", []),
        ("_ed%", ["red.png", "red_png"]),
        ("red", []),  # LIKE matches the whole title, not a substring
        ("%e%n%", ["blue.png", "green.jpg", "red.png", "red_png"]),  # "tone.wav" has its "n" before its "e"
        ("%", ["blue.png", "clip.mp4", "green.jpg", "ig", "notes.txt", "red.png", "red_png", "tone.wav"]),
        ("__", ["ig"]),
    ],
)
def test_list_data_rows_title_like_has_sql_like_semantics(
    filtered: tuple[Dataset, datetime], pattern: str, expected: list[str]
) -> None:
    dataset, _ = filtered
    assert _titles(dataset.list_data_rows(title_like=pattern)) == expected


def test_list_data_rows_data_types(filtered: tuple[Dataset, datetime]) -> None:
    dataset, _ = filtered
    assert _titles(dataset.list_data_rows(data_types=[DataType.IMAGE])) == [
        "blue.png",
        "green.jpg",
        "red.png",
        "red_png",
    ]
    assert _titles(dataset.list_data_rows(data_types=[DataType.VIDEO, DataType.AUDIO])) == ["clip.mp4", "tone.wav"]
    assert _titles(dataset.list_data_rows(data_types=[DataType.IMG_GROUP])) == ["ig"]
    assert dataset.list_data_rows(data_types=[DataType.PDF]) == []


def test_list_data_rows_data_hashes(filtered: tuple[Dataset, datetime]) -> None:
    dataset, _ = filtered
    rows = {r.title: r for r in dataset.list_data_rows()}
    wanted = [rows["clip.mp4"].uid, rows["notes.txt"].uid]
    assert _titles(dataset.list_data_rows(data_hashes=wanted)) == ["clip.mp4", "notes.txt"]
    assert dataset.list_data_rows(data_hashes=[str(uuid.uuid4())]) == []


def test_list_data_rows_created_after_and_before(filtered: tuple[Dataset, datetime]) -> None:
    dataset, between = filtered
    assert _titles(dataset.list_data_rows(created_after=between)) == ["notes.txt", "tone.wav"]
    assert _titles(dataset.list_data_rows(created_before=between)) == sorted(
        ["red.png", "blue.png", "green.jpg", "red_png", "clip.mp4", "ig"]
    )
    # ISO strings work too, and filters combine.
    assert _titles(dataset.list_data_rows(created_after=between.isoformat(), title_like="%.txt")) == ["notes.txt"]
    assert dataset.list_data_rows(created_after=datetime.now(timezone.utc)) == []


# --- link_items ---------------------------------------------------------------------------------


def test_link_skip_on_rerun_returns_the_same_rows_and_links_nothing(
    client: EncordUserClient, items: dict[str, UUID]
) -> None:
    dataset = _new_dataset(client)
    requested = [items["red.png"], items["clip.mp4"], items["ig"]]
    first = dataset.link_items(requested, duplicates_behavior=DataLinkDuplicatesBehavior.SKIP)
    again = dataset.link_items(requested, duplicates_behavior=DataLinkDuplicatesBehavior.SKIP)

    assert [r.uid for r in again] == [r.uid for r in first]
    assert [r.backing_item_uuid for r in again] == requested
    assert len(client.get_dataset(dataset.dataset_hash).data_rows) == 3

    # SKIP with a mix: the new item is linked; every requested item's row comes back, in request order.
    mixed = dataset.link_items([items["tone.wav"], items["red.png"]])
    assert mixed[1].uid == first[0].uid
    assert mixed[0].uid not in {r.uid for r in first}
    assert len(client.get_dataset(dataset.dataset_hash).data_rows) == 4


def test_link_fail_with_an_already_linked_item_links_nothing(client: EncordUserClient, items: dict[str, UUID]) -> None:
    dataset = _new_dataset(client)
    dataset.link_items([items["red.png"]])

    with pytest.raises(ResourceExistsError, match=str(items["red.png"])):
        dataset.link_items([items["blue.png"], items["red.png"]], duplicates_behavior=DataLinkDuplicatesBehavior.FAIL)

    rows = client.get_dataset(dataset.dataset_hash).data_rows
    assert _titles(rows) == ["red.png"]  # blue.png, the new item of the failed call, was not linked

    # With nothing already there, FAIL links normally.
    linked = dataset.link_items([items["blue.png"]], duplicates_behavior=DataLinkDuplicatesBehavior.FAIL)
    assert [r.title for r in linked] == ["blue.png"]
    assert _titles(client.get_dataset(dataset.dataset_hash).data_rows) == ["blue.png", "red.png"]


def test_link_duplicate_makes_a_new_data_unit_each_time(client: EncordUserClient, items: dict[str, UUID]) -> None:
    dataset = _new_dataset(client)
    first = dataset.link_items([items["red.png"]])
    second = dataset.link_items([items["red.png"]], duplicates_behavior=DataLinkDuplicatesBehavior.DUPLICATE)
    third = dataset.link_items([items["red.png"]], duplicates_behavior=DataLinkDuplicatesBehavior.DUPLICATE)

    hashes = [first[0].uid, second[0].uid, third[0].uid]
    assert len(set(hashes)) == 3
    rows = client.get_dataset(dataset.dataset_hash).data_rows
    assert sorted(r.uid for r in rows) == sorted(hashes)
    assert {r.backing_item_uuid for r in rows} == {items["red.png"]}


def test_link_unknown_item_names_it_and_links_nothing(client: EncordUserClient, items: dict[str, UUID]) -> None:
    dataset = _new_dataset(client)
    unknown = uuid.uuid4()
    with pytest.raises(ResourceNotFoundError, match=str(unknown)):
        dataset.link_items([items["red.png"], unknown])
    assert client.get_dataset(dataset.dataset_hash).data_rows == []


def test_link_a_frame_of_an_image_group_is_invalid(
    client: EncordUserClient, media_folder: StorageFolder, items: dict[str, UUID]
) -> None:
    group = StorageItem._get_item(media_folder._api_client, items["ig"], get_signed_url=False)
    frames = list(group.get_child_items())
    assert len(frames) == 2

    dataset = _new_dataset(client)
    with pytest.raises(InvalidArgumentsError, match=str(frames[0].uuid)):
        dataset.link_items([frames[0].uuid])
    assert client.get_dataset(dataset.dataset_hash).data_rows == []


def test_link_another_users_item_is_refused(
    client: EncordUserClient, other_client: EncordUserClient, items: dict[str, UUID]
) -> None:
    created = other_client.create_dataset(f"other-{_token()}", DatasetType.CORD_STORAGE)
    theirs = other_client.get_dataset(created.dataset_hash)
    with pytest.raises(AuthorisationError):
        theirs.link_items([items["red.png"]])
    assert other_client.get_dataset(created.dataset_hash).data_rows == []


def test_link_a_data_group_links_its_members_as_hidden_children(
    client: EncordUserClient, items: dict[str, UUID]
) -> None:
    dataset = _new_dataset(client)
    rows = dataset.link_items([items["grp"]])
    assert [(r.title, r.data_type) for r in rows] == [("grp", DataType.GROUP)]
    assert _titles(client.get_dataset(dataset.dataset_hash).data_rows) == ["grp"]

    project = client.get_project(client.create_project(f"grp-{_token()}", [dataset.dataset_hash]))
    assert [r.data_title for r in project.list_label_rows_v2()] == ["grp"]
    children = [r for r in project.list_label_rows_v2(include_children=True) if r.data_title != "grp"]
    assert sorted((r.data_title, r.data_type) for r in children) == [
        ("notes.txt", DataType.PLAIN_TEXT),
        ("red.png", DataType.IMAGE),
    ]
    assert {r.backing_item_uuid for r in children} == {items["red.png"], items["notes.txt"]}
