"""A unit is new, unchanged or changed by its fingerprint: kind, and each object's URL, size and ETag, in order."""

from __future__ import annotations

import hashlib

from prefect_encord.planning.changes import Known, classify, fingerprint, in_selection, single_unit_fingerprints
from prefect_encord.planning.objects import ObjectRecord
from prefect_encord.planning.specs import Entry, PlanOptions, plan_registration

A, B = "s3://b/cams/a.png", "s3://b/cams/b.png"


def _records(**etags: str | None) -> dict[str, ObjectRecord]:
    urls = {"a": A, "b": B}
    return {urls[name]: ObjectRecord(key=f"cams/{name}.png", url=urls[name], size=10, etag=etag)
            for name, etag in etags.items()}  # fmt: skip


def _known(fingerprint: str | None) -> Known:
    return Known(url=A, key="cams/a.png", item="item-a", fingerprint=fingerprint)


def test_an_overwritten_object_changes_its_units_fingerprint_and_a_relisting_does_not() -> None:
    image = Entry(kind="image", title="a.png", urls=(A,))
    first = fingerprint(image, _records(a="e1"))
    assert first is not None
    assert fingerprint(image, _records(a="e1")) == first
    assert fingerprint(image, _records(a="e2")) != first


def test_fingerprints_keep_their_format_so_an_upgrade_finds_its_inventory_unchanged() -> None:
    """Inventories written by earlier versions hold these digests: a new format would call every unit changed."""
    records = _records(a="e1", b="e2")
    single = hashlib.sha256(f"image\n{A}\t10\te1".encode()).hexdigest()
    group = hashlib.sha256(f"image_group\n{A}\t10\te1\n{B}\t10\te2".encode()).hexdigest()
    assert fingerprint(Entry(kind="image", title="a.png", urls=(A,)), records) == single
    assert fingerprint(Entry(kind="image_group", title="cams", urls=(A, B)), records) == group


def test_a_group_changes_when_a_frame_is_overwritten_or_the_frames_reorder() -> None:
    records = _records(a="e1", b="e2")
    group = fingerprint(Entry(kind="image_group", title="cams", urls=(A, B)), records)
    assert fingerprint(Entry(kind="image_group", title="cams", urls=(B, A)), records) != group
    assert fingerprint(Entry(kind="image_group", title="cams", urls=(A, B)), _records(a="e1", b="e3")) != group
    assert fingerprint(Entry(kind="image_sequence", title="cams", urls=(A, B)), records) != group


def test_objects_without_size_or_etag_have_no_fingerprint() -> None:
    bare = {A: ObjectRecord(key="cams/a.png", url=A)}
    assert fingerprint(Entry(kind="image", title="a.png", urls=(A,)), bare) is None
    assert fingerprint(Entry(kind="image", title="a.png", urls=(A,)), {}) is None  # an object not listed


def test_classify() -> None:
    assert classify("f1", None) == "new"
    assert classify("f1", _known("f1")) == "unchanged"
    assert classify("f2", _known("f1")) == "changed"
    assert classify(None, _known("f1")) == "unchanged"  # nothing to compare: keep what Encord holds


def test_a_unit_outside_this_runs_selection_has_not_vanished() -> None:
    assert in_selection("cams/a.png", "cams/", (), ())
    assert not in_selection("other/a.png", "cams/", (), ())
    assert not in_selection("cams/a.png", "cams/", ("*.jpg",), ())
    assert not in_selection("cams/a.png", "cams/", (), ("a.*",))


def test_a_single_objects_fingerprint_is_known_before_planning_and_only_for_units_of_one_object() -> None:
    """What lets a re-run confirm unchanged objects a page at a time: the same digest the planned unit gets."""
    root = "s3://b/"
    keys = ["cams/a.png", "clips/c.mp4", "docs/d.pdf", "scans/s1.dcm", "notes/n.txt", "misc/x.xyz", "cams/bare.png"]
    records = [ObjectRecord(key=k, url=root + k, size=None if "bare" in k else 5, etag=None) for k in keys]
    by_url = {record.url: record for record in records}
    for options in (PlanOptions(), PlanOptions(images="group")):
        known = single_unit_fingerprints(records, options)
        planned = {e.url: fingerprint(e, by_url) for e in plan_registration(records, root_url=root, options=options)
                   if isinstance(e, Entry) and len(e.urls) == 1}  # fmt: skip
        assert known and all(planned.get(url) == digest for url, digest in known.items()), options
    singles = single_unit_fingerprints(records, PlanOptions())
    assert sorted(url[len(root) :] for url in singles) == ["cams/a.png", "clips/c.mp4", "docs/d.pdf", "notes/n.txt"]
    assert root + "cams/a.png" not in single_unit_fingerprints(records, PlanOptions(images="group"))  # may be grouped
