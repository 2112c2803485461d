"""Label rows: the unmodified SDK against the running sandbox (the routes in docs/sandbox.md).

Every filter of ``list_label_rows_v2``; ``initialise_labels()`` on every data type the storage half
accepts, with the facts the SDK builds from the skeleton; the seed's data-group flow end to end; a
bounding-box round trip; bundled create/fetch/save and the 1,000-row limit; workflow moves; and
``export_coco_labels`` (the ``coco`` extra of encord: pycocotools, shapely, opencv-python, numpy).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pydicom
import pytest
from encord import EncordUserClient, Project
from encord.constants.enums import DataType
from encord.exceptions import InvalidArgumentsError, LabelRowError, MultiLabelLimitError, ResourceNotFoundError
from encord.objects import LabelRowV2, Object, ObjectInstance, OntologyStructure, Shape
from encord.objects.coordinates import BoundingBoxCoordinates
from encord.objects.metadata import DataGroupMetadata, DICOMSeriesMetadata
from encord.objects.spaces.base_space import Space
from encord.objects.spaces.image_space import ImageSpace
from encord.objects.spaces.multiframe_space.video_space import VideoSpace
from encord.objects.spaces.range_space.text_space import TextSpace
from encord.objects.spaces.types import DataGroupMetadata as SpaceDataGroupMetadata
from encord.orm.dataset import DatasetType
from encord.orm.group_layout import DataUnitTile, LayoutGrid
from encord.orm.label_row import AnnotationTaskStatus, LabelStatus
from encord.orm.storage import DataGroupCustom, DataGroupGrid, StorageItemType
from encord_sandbox import rpc

TOP_LEVEL = ["red.png", "blue.png", "clip.mp4", "tone.wav", "report.pdf", "notes.txt", "ig", "seq", "ct", "grp"]
BOX = BoundingBoxCoordinates(height=0.5, width=0.25, top_left_x=0.25, top_left_y=0.125)


def _token() -> str:
    return uuid.uuid4().hex[:8]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def items(client: EncordUserClient, media_dir: Path) -> dict[str, UUID]:
    """One item of every data type, uploaded for real and probed by the sandbox."""
    f = client.create_storage_folder(f"label-rows-{_token()}")
    m = media_dir
    made = {
        "red.png": f.upload_image(m / "red.png", client_metadata={"camera": "north"}),
        "blue.png": f.upload_image(m / "blue.png"),
        "clip.mp4": f.upload_video(m / "clip.mp4"),
        "tone.wav": f.upload_audio(m / "tone.wav"),
        "report.pdf": f.upload_pdf(m / "report.pdf"),
        "notes.txt": f.upload_text(m / "notes.txt"),
        "ig": f.create_image_group([m / "red.png", m / "blue.png"], title="ig"),
        "seq": f.create_image_sequence([m / "red.png", m / "blue.png", m / "green.jpg"], title="seq"),
        "ct": f.create_dicom_series([m / f"dicom/series-1/slice-{n}.dcm" for n in (1, 2, 3)], title="ct"),
    }
    made["grp"] = f.create_data_group(
        DataGroupGrid(name="grp", layout_contents=[made["red.png"], made["clip.mp4"], made["notes.txt"]])
    )
    return made


@pytest.fixture(scope="module")
def dataset_hash(client: EncordUserClient, items: dict[str, UUID]) -> str:
    created = client.create_dataset(f"label-rows-{_token()}", DatasetType.CORD_STORAGE)
    client.get_dataset(created.dataset_hash).link_items([items[name] for name in TOP_LEVEL])
    return created.dataset_hash


@pytest.fixture(scope="module")
def ontology_hash(client: EncordUserClient) -> str:
    structure = OntologyStructure()
    structure.add_object(name="box", shape=Shape.BOUNDING_BOX)
    return client.create_ontology(f"boxes-{_token()}", structure=structure).ontology_hash


@pytest.fixture
def project(client: EncordUserClient, dataset_hash: str, ontology_hash: str) -> Project:
    """A fresh project (so fresh label rows) over the shared dataset."""
    return client.get_project(client.create_project(f"rows-{_token()}", [dataset_hash], ontology_hash=ontology_hash))


def _by_title(rows: list[LabelRowV2]) -> dict[str, LabelRowV2]:
    by_title = {r.data_title: r for r in rows}
    assert len(by_title) == len(rows), "titles must be unique in these tests"
    return by_title


def _titles(rows: list[LabelRowV2]) -> list[str]:
    return sorted(r.data_title for r in rows)


def _wire_status(project: Project, row: LabelRowV2) -> AnnotationTaskStatus | None:
    """The row's task status as served: the SDK hides ``annotation_task_status`` on workflow projects."""
    (metadata,) = project._client.list_label_rows(data_hashes=[row.data_hash], include_uninitialised_labels=True)
    return metadata.annotation_task_status


def _layout_key(space: Space) -> str | None:
    assert isinstance(space.metadata, SpaceDataGroupMetadata), space.metadata
    return space.metadata.layout_key


def _box(project: Project) -> Object:
    return project.ontology_structure.get_child_by_title("box", type_=Object)


class Spy:
    """Records the uids of every call to one v1 route while the real handler still answers it."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []


@pytest.fixture
def spy_route(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Spy]:
    def install(query_type: str, method: str) -> Spy:
        resource_type, roles, handler = rpc.HANDLERS[(query_type, method)]
        spy = Spy()

        def recording(call: rpc.Call) -> Any:
            spy.calls.append(list(call.uid) if isinstance(call.uid, list) else [call.uid])
            return handler(call)

        monkeypatch.setitem(rpc.HANDLERS, (query_type, method), (resource_type, roles, recording))
        return spy

    return install


# --- initialise_labels per data type ------------------------------------------------------------


def test_initialise_labels_for_every_data_type(project: Project, items: dict[str, UUID], media_dir: Path) -> None:
    rows = _by_title(project.list_label_rows_v2())
    assert sorted(rows) == sorted(TOP_LEVEL)
    for row in rows.values():
        assert row.label_hash is None and not row.is_labelling_initialised
        row.initialise_labels()
        assert row.is_labelling_initialised and row.label_hash is not None
        assert row.backing_item_uuid == items[row.data_title]

    red = rows["red.png"]
    assert (red.data_type, red.width, red.height, red.number_of_frames) == (DataType.IMAGE, 8, 6, 1)
    assert red.file_type == "image/png"
    assert red.get_frame_view(0).image_hash == red.data_hash
    assert red.get_frame_view(0).width == 8

    clip = rows["clip.mp4"]
    assert clip.data_type == DataType.VIDEO
    assert (clip.number_of_frames, clip.fps, clip.duration, clip.width, clip.height) == (10, 5, 2.0, 32, 24)
    assert [v.frame for v in clip.get_frame_views()] == list(range(10))

    group = rows["ig"]
    assert (group.data_type, group.number_of_frames) == (DataType.IMG_GROUP, 2)
    frame_hashes = [group.get_frame_view(i).image_hash for i in range(2)]
    assert len(set(frame_hashes)) == 2 and group.data_hash not in frame_hashes
    assert [group.get_frame_view(h).frame for h in frame_hashes] == [0, 1]

    sequence = rows["seq"]  # an image sequence is a video made of its images, as in Encord
    assert (sequence.data_type, sequence.number_of_frames, sequence.width, sequence.height) == (DataType.VIDEO, 3, 8, 6)

    tone = rows["tone.wav"]
    assert tone.data_type == DataType.AUDIO
    assert (tone.audio_codec, tone.audio_sample_rate, tone.audio_bit_depth, tone.audio_num_channels) == (
        "pcm_s16le",
        8000,
        16,
        1,
    )
    assert (tone.duration, tone.file_type) == (0.5, "audio/wav")

    notes = rows["notes.txt"]
    assert (notes.data_type, notes.file_type) == (DataType.PLAIN_TEXT, "text/plain")

    report = rows["report.pdf"]
    assert (report.data_type, report.number_of_frames, report.file_type) == (DataType.PDF, 2, "application/pdf")

    ct = rows["ct"]
    slices = [pydicom.dcmread(media_dir / f"dicom/series-1/slice-{n}.dcm") for n in (1, 2, 3)]
    assert (ct.data_type, ct.number_of_frames, ct.width, ct.height) == (DataType.DICOM, 3, 4, 4)
    assert isinstance(ct.metadata, DICOMSeriesMetadata)
    assert (ct.metadata.study_uid, ct.metadata.series_uid) == (slices[0].StudyInstanceUID, slices[0].SeriesInstanceUID)
    slice_metadata = [ct.get_frame_view(i).metadata for i in range(3)]
    assert [m.dicom_instance_uid for m in slice_metadata if m is not None] == [s.SOPInstanceUID for s in slices]
    assert all(m is not None and (m.width, m.height) == (4, 4) for m in slice_metadata)

    grp = rows["grp"]
    assert grp.data_type == DataType.GROUP
    assert isinstance(grp.metadata, DataGroupMetadata)
    assert [(c.name, c.layout_key) for c in grp.metadata.children] == [
        ("red.png", "0"),
        ("clip.mp4", "1"),
        ("notes.txt", "2"),
    ]
    spaces = grp.get_spaces()
    assert [type(s) for s in spaces] == [ImageSpace, VideoSpace, TextSpace]
    assert [(s.space_id, _layout_key(s)) for s in spaces] == [
        (c.data_hash, c.layout_key) for c in grp.metadata.children
    ]

    # Every row saves, and reads back the same server facts after the save.
    for row in rows.values():
        row.save()
    again = _by_title(project.list_label_rows_v2())
    for title, row in again.items():
        assert row.label_hash == rows[title].label_hash
        row.initialise_labels()
    assert again["ct"].metadata == ct.metadata
    assert again["ct"].get_frame_view(2).metadata == slice_metadata[2]
    assert isinstance(again["grp"].metadata, DataGroupMetadata)
    assert [c.name for c in again["grp"].metadata.children] == ["red.png", "clip.mp4", "notes.txt"]
    assert again["ig"].number_of_frames == 2


def test_images_data_describes_each_frame_of_an_image_group(project: Project) -> None:
    with_frames = _by_title(project.list_label_rows_v2(include_images_data=True))["ig"]
    frames = with_frames.get_frames_metadata()
    assert [(f.frame_number, f.title, f.width, f.height, f.file_type) for f in frames] == [
        (0, "red.png", 8, 6, "image/png"),
        (1, "blue.png", 8, 6, "image/png"),
    ]
    # The image hashes of images_data are the frame data units of the initialised row.
    with_frames.initialise_labels()
    assert [f.image_hash for f in frames] == [with_frames.get_frame_view(i).image_hash for i in range(2)]

    without = _by_title(project.list_label_rows_v2())["ig"]
    with pytest.raises(LabelRowError, match="Image data is not present"):
        without.get_frames_metadata()


# --- the seed's data-group flow -----------------------------------------------------------------


def test_data_group_flow_of_the_seed(client: EncordUserClient, media_dir: Path) -> None:
    folder = client.create_storage_folder(f"groups-{_token()}")
    red = folder.upload_image(media_dir / "red.png")
    clip = folder.upload_video(media_dir / "clip.mp4")
    notes = folder.upload_text(media_dir / "notes.txt", title="instructions.txt")
    tone = folder.upload_audio(media_dir / "tone.wav")
    report = folder.upload_pdf(media_dir / "report.pdf")

    created = folder.create_data_groups(
        [
            DataGroupGrid(name="grid", layout_contents=[red, clip, tone, report], client_metadata={"key": "value"}),
            DataGroupCustom(
                name="custom",
                layout=LayoutGrid(
                    direction="row",
                    first=DataUnitTile(key="instructions"),
                    second=DataUnitTile(key="image"),
                    split_percentage=30,
                ),
                layout_contents={"instructions": notes, "image": red},
            ),
        ]
    )
    group_items = list(folder.list_items(item_types=[StorageItemType.GROUP]))
    assert sorted(i.uuid for i in group_items) == sorted(created)

    dataset_hash = client.create_dataset(f"groups-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    dataset = client.get_dataset(dataset_hash)
    linked = dataset.link_items([item.uuid for item in group_items])
    assert sorted(r.title for r in linked) == ["custom", "grid"]

    project = client.get_project(client.create_project(f"groups-{_token()}", [dataset_hash]))
    rows = project.list_label_rows_v2(include_children=True)
    # Children are listed as rows of their own when asked for (deprecated in the SDK, but served).
    assert sorted(r.data_title for r in rows) == sorted(
        ["grid", "custom", "red.png", "clip.mp4", "tone.wav", "report.pdf", "instructions.txt", "red.png"]
    )
    assert sorted(r.data_title for r in project.list_label_rows_v2()) == ["custom", "grid"]

    children: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row.data_type == DataType.GROUP:
            row.initialise_labels()
            assert isinstance(row.metadata, DataGroupMetadata)
            children[row.data_title] = [(c.name, c.layout_key) for c in row.metadata.children]
    assert children == {
        "grid": [("red.png", "0"), ("clip.mp4", "1"), ("tone.wav", "2"), ("report.pdf", "3")],
        "custom": [("instructions.txt", "instructions"), ("red.png", "image")],
    }

    custom = next(r for r in rows if r.data_title == "custom")
    assert sorted(str(_layout_key(s)) for s in custom.get_spaces()) == ["image", "instructions"]
    grid = next(r for r in rows if r.data_title == "grid")
    assert [type(s).__name__ for s in grid.get_spaces()] == ["ImageSpace", "VideoSpace", "AudioSpace", "PdfSpace"]

    # After a save the group keeps its children and its spaces (same ids) on the next initialise.
    image_space = custom.get_space(layout_key="image", type_="image")
    custom.save()
    custom_again = next(r for r in project.list_label_rows_v2() if r.data_title == "custom")
    custom_again.initialise_labels()
    assert isinstance(custom_again.metadata, DataGroupMetadata)
    assert [c.layout_key for c in custom_again.metadata.children] == ["instructions", "image"]
    assert custom_again.get_space(layout_key="image", type_="image").space_id == image_space.space_id


def test_a_box_on_a_data_group_tile_round_trips(
    client: EncordUserClient, dataset_hash: str, ontology_hash: str
) -> None:
    project = client.get_project(client.create_project(f"tile-{_token()}", [dataset_hash], ontology_hash=ontology_hash))
    group = _by_title(project.list_label_rows_v2())["grp"]
    group.initialise_labels()
    space = group.get_space(layout_key="0", type_="image")
    instance = _box(project).create_instance()
    space.put_object_instance(instance, BOX)
    group.save()

    again = _by_title(project.list_label_rows_v2())["grp"]
    again.initialise_labels()
    read = again.get_space(layout_key="0", type_="image").get_object_instances()
    assert [o.object_hash for o in read] == [instance.object_hash]
    assert read[0].get_annotations()[0].coordinates == BOX
    assert again.get_space(layout_key="1", type_="video").get_object_instances() == []


# --- list_label_rows_v2 filters -----------------------------------------------------------------


@pytest.fixture
def staged(project: Project) -> Iterator[tuple[Project, dict[str, LabelRowV2], datetime]]:
    """red.png saved and completed, then (after ``between``) clip.mp4 saved; the rest untouched."""
    rows = _by_title(project.list_label_rows_v2())
    red, clip = rows["red.png"], rows["clip.mp4"]
    red.initialise_labels()
    red.save()
    red.workflow_complete()
    time.sleep(0.01)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    clip.initialise_labels()
    clip.save()
    yield project, _by_title(project.list_label_rows_v2()), between


def test_filter_data_hashes_and_label_hashes(staged: tuple[Project, dict[str, LabelRowV2], datetime]) -> None:
    project, rows, _ = staged
    wanted = [rows["red.png"].data_hash, rows["notes.txt"].data_hash]
    assert _titles(project.list_label_rows_v2(data_hashes=wanted)) == ["notes.txt", "red.png"]
    assert _titles(project.list_label_rows_v2(data_hashes=[UUID(rows["ct"].data_hash)])) == ["ct"]
    assert project.list_label_rows_v2(data_hashes=[str(uuid.uuid4())]) == []

    label_hash = rows["clip.mp4"].label_hash
    assert label_hash is not None
    assert _titles(project.list_label_rows_v2(label_hashes=[label_hash])) == ["clip.mp4"]
    assert project.list_label_rows_v2(label_hashes=[str(uuid.uuid4())]) == []


def test_filter_edited_before_and_after(staged: tuple[Project, dict[str, LabelRowV2], datetime]) -> None:
    project, rows, between = staged
    assert _titles(project.list_label_rows_v2(edited_after=between)) == ["clip.mp4"]
    assert _titles(project.list_label_rows_v2(edited_before=between)) == ["red.png"]
    assert _titles(project.list_label_rows_v2(edited_after=between.isoformat())) == ["clip.mp4"]
    assert project.list_label_rows_v2(edited_after=datetime.now(timezone.utc)) == []
    assert rows["red.png"].last_edited_at is not None and rows["notes.txt"].last_edited_at is None


def test_filter_label_statuses(staged: tuple[Project, dict[str, LabelRowV2], datetime]) -> None:
    project, rows, _ = staged
    assert _titles(project.list_label_rows_v2(label_statuses=[AnnotationTaskStatus.COMPLETED])) == ["red.png"]
    queued = project.list_label_rows_v2(label_statuses=[AnnotationTaskStatus.QUEUED])
    assert _titles(queued) == sorted(t for t in TOP_LEVEL if t != "red.png")
    both = [AnnotationTaskStatus.QUEUED, AnnotationTaskStatus.COMPLETED]
    assert len(project.list_label_rows_v2(label_statuses=both)) == len(TOP_LEVEL)
    assert project.list_label_rows_v2(label_statuses=[AnnotationTaskStatus.IN_REVIEW]) == []
    assert _wire_status(project, rows["red.png"]) == AnnotationTaskStatus.COMPLETED


def test_filter_data_title_eq_and_like(staged: tuple[Project, dict[str, LabelRowV2], datetime]) -> None:
    project, _, _ = staged
    assert _titles(project.list_label_rows_v2(data_title_eq="clip.mp4")) == ["clip.mp4"]
    assert project.list_label_rows_v2(data_title_eq="clip") == []
    assert _titles(project.list_label_rows_v2(data_title_like="%.p_g")) == ["blue.png", "red.png"]
    assert _titles(project.list_label_rows_v2(data_title_like="r%")) == ["red.png", "report.pdf"]
    assert _titles(project.list_label_rows_v2(data_title_like="__")) == ["ct", "ig"]
    assert project.list_label_rows_v2(data_title_like="red.p.g") == []  # "." is literal


def test_filter_workflow_graph_node_title(staged: tuple[Project, dict[str, LabelRowV2], datetime]) -> None:
    project, rows, _ = staged
    assert _titles(project.list_label_rows_v2(workflow_graph_node_title_eq="Complete")) == ["red.png"]
    annotate = project.list_label_rows_v2(workflow_graph_node_title_like="Ann%")
    assert _titles(annotate) == sorted(t for t in TOP_LEVEL if t != "red.png")
    assert len(project.list_label_rows_v2(workflow_graph_node_title_like="%e")) == len(TOP_LEVEL)
    assert project.list_label_rows_v2(workflow_graph_node_title_eq="Review") == []
    assert rows["red.png"].workflow_graph_node is not None
    assert rows["red.png"].workflow_graph_node.title == "Complete"


def test_include_client_metadata(project: Project) -> None:
    plain = _by_title(project.list_label_rows_v2())
    assert plain["red.png"].client_metadata is None
    rich = _by_title(project.list_label_rows_v2(include_client_metadata=True))
    assert rich["red.png"].client_metadata == {"camera": "north"}
    assert rich["blue.png"].client_metadata == {}


def test_include_children_lists_the_members_of_data_groups(project: Project, items: dict[str, UUID]) -> None:
    top = project.list_label_rows_v2()
    everything = project.list_label_rows_v2(include_children=True)
    extra = [r for r in everything if r.data_hash not in {t.data_hash for t in top}]
    assert sorted((r.data_title, r.data_type) for r in extra) == [
        ("clip.mp4", DataType.VIDEO),
        ("notes.txt", DataType.PLAIN_TEXT),
        ("red.png", DataType.IMAGE),
    ]
    assert {r.backing_item_uuid for r in extra} == {items["red.png"], items["clip.mp4"], items["notes.txt"]}
    group = _by_title(top)["grp"]
    group.initialise_labels()
    assert sorted(c.data_hash for c in group.metadata.children) == sorted(r.data_hash for r in extra)  # type: ignore[union-attr]


def test_branches(project: Project) -> None:
    main = _by_title(project.list_label_rows_v2())
    main["red.png"].initialise_labels()
    main["red.png"].save()
    main_hash = main["red.png"].label_hash

    branch = _by_title(project.list_label_rows_v2(branch_name="experiment"))
    assert {r.branch_name for r in branch.values()} == {"experiment"}
    assert all(r.label_hash is None for r in branch.values())
    branch["red.png"].initialise_labels()
    instance = _box(project).create_instance()
    instance.set_for_frames(BOX, frames=0)
    branch["red.png"].add_object_instance(instance)
    branch["red.png"].save()
    assert branch["red.png"].label_hash not in (None, main_hash)

    # The main branch is untouched by the experiment.
    red_main = _by_title(project.list_label_rows_v2())["red.png"]
    assert (red_main.label_hash, red_main.branch_name) == (main_hash, "main")
    red_main.initialise_labels()
    assert red_main.get_object_instances() == []

    red_branch = _by_title(project.list_label_rows_v2(branch_name="experiment"))["red.png"]
    red_branch.initialise_labels()
    assert [o.object_hash for o in red_branch.get_object_instances()] == [instance.object_hash]

    every = [r for r in project.list_label_rows_v2(include_all_label_branches=True) if r.data_title == "red.png"]
    assert sorted((r.branch_name, r.label_hash) for r in every) == sorted(
        [("main", main_hash), ("experiment", branch["red.png"].label_hash)]
    )
    # "A branch name cannot be specified if include_all_label_branches is set": the SDK leaves it to the server.
    with pytest.raises(InvalidArgumentsError, match="branch_name"):
        project.list_label_rows_v2(branch_name="experiment", include_all_label_branches=True)


# --- a label round trip -------------------------------------------------------------------------


def test_bounding_box_round_trip(project: Project) -> None:
    row = _by_title(project.list_label_rows_v2(data_title_eq="red.png"))["red.png"]
    row.initialise_labels()
    before_save = datetime.now(timezone.utc)
    time.sleep(0.01)
    instance: ObjectInstance = _box(project).create_instance()
    instance.set_for_frames(BOX, frames=0, confidence=0.75)
    row.add_object_instance(instance)
    row.save()

    changed = project.list_label_rows_v2(edited_after=before_save)
    assert [(r.data_title, r.label_hash) for r in changed] == [("red.png", row.label_hash)]
    fresh = changed[0]
    assert fresh.last_edited_at is not None and fresh.last_edited_at > before_save

    fresh.initialise_labels()
    read = fresh.get_object_instances()
    assert [(o.object_hash, o.ontology_item.name) for o in read] == [(instance.object_hash, "box")]
    annotation = read[0].get_annotation(0)
    assert annotation.coordinates == BOX
    assert annotation.confidence == 0.75

    # On the wire the row is LABELLED now (the SDK hides label_status on workflow projects).
    assert row.label_hash is not None
    wire = project._client.list_label_rows(label_hashes=[row.label_hash], include_uninitialised_labels=True)
    assert [m.label_status for m in wire] == [LabelStatus.LABELLED]


# --- bundles and limits -------------------------------------------------------------------------


def test_bundled_create_fetch_and_save(project: Project, spy_route: Callable[[str, str], Spy]) -> None:
    creates, fetches, saves = spy_route("labelrow", "PUT"), spy_route("labelrow", "GET"), spy_route("labelrow", "POST")
    rows = project.list_label_rows_v2()
    with project.create_bundle() as bundle:
        for row in rows:
            row.initialise_labels(bundle=bundle)
    assert [len(c) for c in creates.calls] == [len(TOP_LEVEL)]
    assert sorted(creates.calls[0]) == sorted(r.data_hash for r in rows)
    assert all(r.is_labelling_initialised and r.label_hash for r in rows)

    image_rows = [r for r in rows if r.data_type == DataType.IMAGE]
    for row in image_rows:
        instance = _box(project).create_instance()
        instance.set_for_frames(BOX, frames=0)
        row.add_object_instance(instance)
    with project.create_bundle() as bundle:
        for row in rows:
            row.save(bundle=bundle)
    assert [len(c) for c in saves.calls] == [len(TOP_LEVEL)]

    again = project.list_label_rows_v2()
    with project.create_bundle(bundle_size=4) as bundle:
        for row in again:
            row.initialise_labels(bundle=bundle)
    assert [len(c) for c in fetches.calls] == [4, 4, 2]
    assert len(creates.calls) == 1  # nothing was created the second time
    labelled = {r.data_title: len(r.get_object_instances()) for r in again}
    assert labelled == {t: int(t in ("red.png", "blue.png")) for t in TOP_LEVEL}


def test_more_than_1000_rows_in_one_call_is_the_sdks_limit_error(project: Project) -> None:
    too_many = [str(uuid.uuid4()) for _ in range(1001)]
    with pytest.raises(MultiLabelLimitError) as fetch_error:
        project._client.get_label_rows(too_many)
    assert fetch_error.value.maximum_labels_allowed == 1000
    with pytest.raises(MultiLabelLimitError):
        project._client.create_label_rows(too_many)
    with pytest.raises(MultiLabelLimitError):
        project._client.save_label_rows(too_many, [{} for _ in too_many])  # type: ignore[misc]
    # 1000 is within the limit: those uids are then checked one by one.
    with pytest.raises(ResourceNotFoundError):
        project._client.get_label_rows(too_many[:1000])


# --- workflow -----------------------------------------------------------------------------------


def test_workflow_complete_and_reopen(project: Project) -> None:
    row = _by_title(project.list_label_rows_v2())["blue.png"]
    with pytest.raises(LabelRowError):
        row.workflow_complete()  # the SDK needs a created row first
    row.initialise_labels()
    assert row.workflow_graph_node is not None and row.workflow_graph_node.title == "Annotate"

    row.workflow_complete()
    moved = _by_title(project.list_label_rows_v2())["blue.png"]
    complete = project.workflow.get_stage(name="Complete")
    assert moved.workflow_graph_node is not None
    assert (moved.workflow_graph_node.title, moved.workflow_graph_node.uuid) == ("Complete", str(complete.uuid))
    assert _wire_status(project, moved) == AnnotationTaskStatus.COMPLETED
    assert _titles(project.list_label_rows_v2(workflow_graph_node_title_eq="Complete")) == ["blue.png"]

    moved.workflow_reopen()
    back = _by_title(project.list_label_rows_v2())["blue.png"]
    assert back.workflow_graph_node is not None and back.workflow_graph_node.title == "Annotate"
    assert _wire_status(project, back) == AnnotationTaskStatus.QUEUED


# --- COCO export --------------------------------------------------------------------------------


def test_export_coco_labels(client: EncordUserClient, items: dict[str, UUID], ontology_hash: str) -> None:
    created = client.create_dataset(f"coco-{_token()}", DatasetType.CORD_STORAGE)
    client.get_dataset(created.dataset_hash).link_items([items["red.png"], items["blue.png"]])
    project = client.get_project(
        client.create_project(f"coco-{_token()}", [created.dataset_hash], ontology_hash=ontology_hash)
    )
    red = _by_title(project.list_label_rows_v2())["red.png"]
    red.initialise_labels()
    instance = _box(project).create_instance()
    instance.set_for_frames(BOX, frames=0)
    red.add_object_instance(instance)
    red.save()

    coco = project.export_coco_labels()

    assert [(c["name"], c["supercategory"]) for c in coco["categories"]] == [("box", "bounding_box")]
    # Both rows are exported as images (the unlabelled one too), with the probed sizes.
    images = {i["image_title"]: i for i in coco["images"]}
    assert sorted(images) == ["blue.png", "red.png"]
    assert all((i["width"], i["height"]) == (8, 6) for i in images.values())
    (annotation,) = coco["annotations"]
    assert annotation["image_id"] == images["red.png"]["id"]
    assert annotation["category_id"] == coco["categories"][0]["id"]
    # 8×6 px image; the box is 0.25 wide and 0.5 high at (0.25, 0.125) in relative coordinates.
    assert annotation["bbox"] == pytest.approx([2.0, 0.75, 2.0, 3.0])
    assert annotation["area"] == pytest.approx(6.0)
