"""Export planning: the file layout and its guard against escaping, the index, and the watermark's rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from encord.objects import OntologyStructure, Shape
from encord.orm.label_row import AnnotationTaskStatus

from prefect_encord.planning.exports import (
    ExportLayout,
    IndexEntry,
    UnsafeExportPath,
    Watermark,
    coco_document,
    coco_rows,
    merge_index,
    next_watermark,
    parse_index,
    parse_watermark,
    plan_run,
    render_index,
    render_json,
    select_rows,
    selection_key,
)
from prefect_encord.planning.label_rows import LabelRowFilters, LabelRowSummary

PROJECT = "0b6a1a8c-7c4e-4a59-9a43-3a1f2b1f0c11"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def row(data_hash: str, label_hash: str | None = "L", edited: datetime | None = T0, **extra: Any) -> LabelRowSummary:
    return LabelRowSummary(
        data_hash=data_hash,
        label_hash=label_hash,
        branch_name="main",
        dataset_hash="D",
        dataset_title="ds",
        data_title=f"{data_hash}.png",
        data_type=extra.pop("data_type", "image"),
        created_at=T0,
        last_edited_at=edited,
        workflow_node="Annotate",
        backing_item_uuid=None,
        **extra,
    )


def entry(summary: LabelRowSummary) -> IndexEntry:
    return IndexEntry(**summary.model_dump(), path=f"labels/{summary.data_hash}.json")


def watermark(stamp: datetime | None, selection: str = "s") -> Watermark:
    return Watermark(project_hash=PROJECT, branch_name="main", selection=selection, last_edited_at=stamp)


# --- layout -------------------------------------------------------------------------------------


def test_layout_of_the_main_branch() -> None:
    layout = ExportLayout.of("exports/labels/", PROJECT)
    assert layout.root == f"exports/labels/{PROJECT}"
    assert layout.key(layout.label_path("d1")) == f"exports/labels/{PROJECT}/labels/d1.json"
    assert layout.index_key == f"exports/labels/{PROJECT}/index.jsonl"
    assert layout.coco_key == f"exports/labels/{PROJECT}/coco.json"
    assert layout.watermark_key == f"exports/labels/{PROJECT}/_watermark.json"
    assert ExportLayout.of("", PROJECT).root == PROJECT


def test_another_branch_gets_its_own_tree_with_its_name_encoded() -> None:
    assert ExportLayout.of("x", PROJECT, "experiment/2 a").root == f"x/{PROJECT}/branches/experiment%2F2%20a"


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("../outside", "the segment '..'"),
        ("exports/../../outside", "the segment '..'"),
        ("exports/./labels", "the segment '.'"),
        ("exports//labels", "the segment ''"),
        ("/etc", "is absolute"),
        ("exports\\..\\outside", "backslash"),
        ("exports/\x00", "control character"),
    ],
)
def test_a_prefix_that_could_escape_is_refused(prefix: str, problem: str) -> None:
    with pytest.raises(UnsafeExportPath, match=problem):
        ExportLayout.of(prefix, PROJECT)


def test_a_branch_or_hash_that_could_escape_is_refused() -> None:
    with pytest.raises(UnsafeExportPath, match="branch name '..'"):
        ExportLayout.of("x", PROJECT, "..")
    with pytest.raises(UnsafeExportPath, match="project hash '..'"):
        ExportLayout.of("x", "..")
    with pytest.raises(UnsafeExportPath, match="data hash '../../evil'"):
        ExportLayout.of("x", PROJECT).label_path("../../evil")


# --- index --------------------------------------------------------------------------------------


def test_index_round_trips_and_is_ordered_by_data_hash() -> None:
    entries = [entry(row("b", client_metadata={"camera": "north"})), entry(row("a"))]
    data = render_index(entries)
    assert [line.split('"')[3] for line in data.decode().splitlines()] == ["a", "b"]
    assert render_index(reversed(entries)) == data
    parsed = parse_index(data, "index.jsonl")
    assert list(parsed) == ["a", "b"] and parsed["b"] == entries[0]


def test_a_damaged_index_is_refused_not_guessed() -> None:
    good = render_index([entry(row("a"))])
    with pytest.raises(ValueError, match="line 2 of dest/index.jsonl is not an index entry"):
        parse_index(good + b'{"data_hash": "b"}\n', "dest/index.jsonl")


def test_merge_updates_an_incremental_index_and_replaces_a_full_one() -> None:
    previous = {"a": entry(row("a")), "b": entry(row("b"))}
    changed = entry(row("b", edited=T0 + HOUR))
    assert merge_index(previous, [changed], incremental=True) == {"a": previous["a"], "b": changed}
    assert merge_index(previous, [changed], incremental=False) == {"b": changed}


# --- watermark ----------------------------------------------------------------------------------


def test_watermark_round_trips_and_a_damaged_one_is_refused() -> None:
    marker = watermark(T0)
    assert parse_watermark(render_json(marker.model_dump(mode="json"), indent=2), "w") == marker
    with pytest.raises(ValueError, match="dest/_watermark.json is not an export watermark"):
        parse_watermark(b"{}", "dest/_watermark.json")


def test_an_incremental_run_lists_from_the_watermark_less_the_overlap() -> None:
    plan = plan_run(watermark(T0), "s", incremental=True, overlap=timedelta(minutes=10), has_index=True)
    assert plan.incremental and plan.edited_after == T0 - timedelta(minutes=10)


@pytest.mark.parametrize(
    ("previous", "incremental", "has_index", "reason"),
    [
        (None, True, False, "no watermark yet"),
        (watermark(T0, selection="other"), True, True, "the filters changed"),
        (watermark(T0, selection="s+coco"), True, True, "the export options changed (COCO on or off)"),
        (watermark(None), True, True, "no row was exported before"),
        (watermark(T0), True, False, "the index of the previous export is missing"),
        (watermark(T0), False, True, "a full export was asked for"),
    ],
)
def test_when_a_run_is_full(previous: Watermark | None, incremental: bool, has_index: bool, reason: str) -> None:
    plan = plan_run(previous, "s", incremental, timedelta(minutes=10), has_index)
    assert not plan.incremental and plan.edited_after is None and reason in plan.reason


def test_a_negative_overlap_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        plan_run(watermark(T0), "s", True, timedelta(seconds=-1), True)


def test_rows_in_the_overlap_already_exported_at_the_same_version_are_not_fetched() -> None:
    index = {"same": entry(row("same")), "edited": entry(row("edited")), "relabelled": entry(row("relabelled"))}
    listed = [
        row("same"),
        row("edited", edited=T0 + HOUR),
        row("relabelled", label_hash="L2"),
        row("new"),
        row("unstarted", label_hash=None, edited=None),
    ]
    chosen = select_rows(listed, index, incremental=True)
    assert [r.data_hash for r in chosen.to_fetch] == ["edited", "relabelled", "new"]
    assert [r.data_hash for r in chosen.unchanged] == ["same"]
    assert [r.data_hash for r in chosen.not_started] == ["unstarted"]
    assert [r.data_hash for r in select_rows(listed, index, incremental=False).to_fetch] == [
        "same",
        "edited",
        "relabelled",
        "new",
    ]


def test_the_watermark_is_the_newest_listed_stamp_and_never_goes_back() -> None:
    listed = [row("a", edited=T0), row("b", edited=T0 + HOUR), row("c", label_hash=None, edited=T0 + 2 * HOUR)]
    assert next_watermark(None, listed) == T0 + HOUR  # an unstarted row does not count
    assert next_watermark(T0 + 3 * HOUR, listed) == T0 + 3 * HOUR
    assert next_watermark(T0, []) == T0
    assert next_watermark(None, []) is None


def test_selection_key_follows_the_filters_and_the_coco_file() -> None:
    base = LabelRowFilters()
    assert selection_key(base, coco=False) == selection_key(LabelRowFilters(), coco=False)
    assert selection_key(base, coco=True) != selection_key(base, coco=False)
    assert selection_key(LabelRowFilters(workflow_node_eq="Complete"), coco=False) != selection_key(base, coco=False)
    a = LabelRowFilters(data_hashes=["x", "y"], statuses=[AnnotationTaskStatus.COMPLETED, AnnotationTaskStatus.QUEUED])
    b = LabelRowFilters(data_hashes=["y", "x"], statuses=["QUEUED", "COMPLETED"])  # type: ignore[list-item]
    assert a.fingerprint() == b.fingerprint()


def test_filters_become_sdk_arguments_and_a_later_watermark_wins() -> None:
    filters = LabelRowFilters(edited_after=datetime(2026, 1, 1), workflow_node_like="Rev%", branch_name="b")
    arguments = filters.sdk_arguments()
    assert arguments["edited_after"] == datetime(2026, 1, 1, tzinfo=timezone.utc)  # naive is UTC
    assert arguments["workflow_graph_node_title_like"] == "Rev%" and arguments["branch_name"] == "b"
    assert filters.sdk_arguments(T0)["edited_after"] == T0
    assert filters.sdk_arguments(datetime(2025, 1, 1, tzinfo=timezone.utc))["edited_after"] == datetime(
        2026, 1, 1, tzinfo=timezone.utc
    )


# --- contents -----------------------------------------------------------------------------------


def test_json_is_deterministic() -> None:
    assert render_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()
    assert render_json({"b": 1, "a": 2}, indent=2) == b'{\n  "a": 2,\n  "b": 1\n}'


def _image_label(data_hash: str, data_type: str = "image") -> dict[str, Any]:
    unit = {"data_hash": data_hash, "data_title": f"{data_hash}.png", "data_type": "image/png", "data_sequence": 0,
            "data_link": None, "width": 8, "height": 6, "labels": {"objects": [], "classifications": []}}  # fmt: skip
    return {"data_hash": data_hash, "data_title": f"{data_hash}.png", "data_type": data_type,
            "data_units": {data_hash: unit}, "object_answers": {}, "object_actions": {},
            "classification_answers": {}, "spaces": {}}  # fmt: skip


def test_coco_numbers_images_by_data_hash_and_leaves_out_rows_without_images() -> None:
    ontology = OntologyStructure()
    ontology.add_object(name="box", shape=Shape.BOUNDING_BOX)
    labels = [_image_label("b"), _image_label("a"), _image_label("t", data_type="plain_text")]

    exported = coco_document(labels, ontology)

    document = exported.document
    assert [(i["id"], i["image_title"]) for i in document["images"]] == [(0, "a.png"), (1, "b.png")]
    assert [c["name"] for c in document["categories"]] == ["box"]
    assert exported.left_out == ("t.png",)  # named, never dropped silently
    assert coco_document(list(reversed(labels)), ontology) == exported


def test_a_data_group_becomes_one_image_per_image_space_titled_by_its_member() -> None:
    box = {"objectHash": "o1", "featureHash": "f", "name": "box", "shape": "bounding_box", "value": "box",
           "boundingBox": {"x": 0.5, "y": 0.5, "w": 0.25, "h": 0.5}}  # fmt: skip
    group = {"data_hash": "g", "data_title": "scene-1", "data_type": "group", "object_answers": {},
             "object_actions": {}, "classification_answers": {}, "data_units": {},
             "spaces": {"s1": {"space_type": "image", "width": 8, "height": 6, "labels": {"0": {"objects": [box]}}},
                        "s2": {"space_type": "image", "width": 4, "height": 4, "labels": {}},
                        "s3": {"space_type": "text", "labels": {}}}}  # fmt: skip

    taken, left_out = coco_rows([group], {"g": {"s1": "front.png", "s2": "rear.png", "s3": "notes.txt"}})

    assert [(row["data_hash"], row["data_title"], row["data_type"]) for row in taken] == [
        ("g:s1", "scene-1/front.png", "image"),
        ("g:s2", "scene-1/rear.png", "image"),
    ]
    ((unit_hash, unit),) = taken[0]["data_units"].items()
    assert unit_hash == "g:s1" and unit["labels"]["objects"] == [box] and (unit["width"], unit["height"]) == (8, 6)
    assert taken[1]["data_units"]["g:s2"]["labels"] == {"objects": [], "classifications": []}
    assert left_out == ["scene-1/notes.txt"]
    assert coco_rows([group])[1] == ["scene-1/s3"]  # members not named: titled by space id
