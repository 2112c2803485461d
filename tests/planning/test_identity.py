"""Which item a local file already is: path and content together, never content alone (pure, no sandbox)."""

from __future__ import annotations

from prefect_encord.planning.identity import KnownItem, index_folder, pending_units
from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY
from prefect_encord.planning.uploads import UploadUnit


def _single(path: str) -> UploadUnit:
    return UploadUnit(path, "image", path.rpartition("/")[2], (path,), "image")


def test_twelve_files_with_the_same_bytes_are_twelve_units_to_upload_in_an_empty_folder() -> None:
    units = [_single(f"blank-{n:02d}.png") for n in range(12)]
    pending = pending_units(units, dict.fromkeys((u.key for u in units), "B"), index_folder([]))
    assert [u.key for u in pending.upload] == [u.key for u in units]
    assert (pending.present, pending.changed, pending.restamp) == ({}, {}, {})


def test_same_path_and_bytes_is_present_new_bytes_is_changed_and_a_copy_elsewhere_is_new() -> None:
    index = index_folder([KnownItem("i-a", "a.png", path="a.png", digest="A")])
    units = [_single("a.png"), _single("copy/a.png"), _single("b.png")]
    pending = pending_units(units, {"a.png": "A", "copy/a.png": "A", "b.png": "B"}, index)
    assert pending.present == {"a.png": "i-a"}
    assert [u.key for u in pending.upload] == ["copy/a.png", "b.png"]

    rewritten = pending_units([_single("a.png")], {"a.png": "A2"}, index)
    assert (rewritten.changed, rewritten.upload, rewritten.present) == ({"a.png": "i-a"}, (), {})


def test_items_of_the_digest_only_version_are_claimed_once_each_by_the_unit_of_their_title_first() -> None:
    # Before the path key, twelve identical files became one item, titled after the first of them.
    legacy = [KnownItem("old", "blank-05.png", digest="B"), KnownItem("solo", "c.png", digest="C")]
    units = [_single(f"blank-{n:02d}.png") for n in range(12)] + [_single("renamed-c.png")]
    digests = {**dict.fromkeys((u.key for u in units[:12]), "B"), "renamed-c.png": "C"}
    pending = pending_units(units, digests, index_folder(legacy))
    assert pending.present == {"blank-05.png": "old", "renamed-c.png": "solo"}
    assert pending.restamp == {"old": "blank-05.png", "solo": "renamed-c.png"}
    assert len(pending.upload) == 11 and "blank-05.png" not in {u.key for u in pending.upload}


def test_an_item_whose_metadata_was_replaced_outside_is_claimed_by_title_and_size_when_unambiguous() -> None:
    edited = [KnownItem("x", "a.png", size=10), KnownItem("y", "b.png", size=10), KnownItem("z", "b.png", size=20)]
    units = [_single("a.png"), _single("one/b.png"), _single("two/b.png"), _single("c.png")]
    sizes = {"a.png": 10, "one/b.png": 20, "two/b.png": 10, "c.png": 10}
    pending = pending_units(units, {u.key: u.key for u in units}, index_folder(edited), sizes)
    assert pending.present == {"a.png": "x", "one/b.png": "z", "two/b.png": "y"}
    assert [u.key for u in pending.upload] == ["c.png"]

    rivals = [_single("one/a.png"), _single("two/a.png")]  # two units could be the one item: neither claims it
    pending = pending_units(rivals, {u.key: u.key for u in rivals}, index_folder(edited[:1]), dict.fromkeys(
        (u.key for u in rivals), 10))  # fmt: skip
    assert pending.present == {} and len(pending.upload) == 2


def test_known_items_read_both_keys_from_client_metadata() -> None:
    item = KnownItem.of("u", "a.png", {PATH_KEY: "d/a.png", IDENTITY_KEY: "A", "camera": 3}, 7)
    assert (item.path, item.digest, item.size) == ("d/a.png", "A", 7)
    assert KnownItem.of("u", "a.png", None, None).path is None
