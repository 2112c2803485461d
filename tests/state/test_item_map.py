"""The item map file: written as work settles, read back streaming and counted; a default path is new per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefect_encord.state.item_map import ItemMap, ItemMapWriter, MappedItem, default_path


def test_pairs_are_written_as_they_settle_and_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "map.jsonl"
    with ItemMapWriter(path) as writer:
        writer.write({"s3://b/a.png": "i1", "s3://b/ü ñ.png": "i2"}, "created")
        # Flushed per write: a crash after this point still leaves these lines on disk.
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2
        writer.write({"s3://b/c.png": "i3"}, "present")
        item_map = writer.close()
    assert (item_map.created, item_map.present) == (2, 1)
    assert list(item_map) == [
        MappedItem("s3://b/a.png", "i1", "created"),
        MappedItem("s3://b/ü ñ.png", "i2", "created"),
        MappedItem("s3://b/c.png", "i3", "present"),
    ]
    assert item_map.to_dict("present") == {"s3://b/c.png": "i3"}
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[1])["source"] == "s3://b/ü ñ.png"
    assert ItemMap.read(path) == item_map


def test_a_failure_inside_the_block_still_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "map.jsonl"
    with pytest.raises(RuntimeError), ItemMapWriter(path) as writer:
        writer.write({"a": "i1"}, "created")
        raise RuntimeError("job failed")
    assert ItemMap.read(path).to_dict() == {"a": "i1"}


def test_default_paths_are_new_per_call_and_honour_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_DIRECTORY", str(tmp_path))
    first, second = default_path("folder-1"), default_path("folder-1")
    assert first != second and first.parent == tmp_path and first.name.startswith("folder-1-")


def test_a_writer_appends_after_an_earlier_attempt_and_its_map_covers_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "map.jsonl"
    with ItemMapWriter(path) as first:
        first.write({"a": "i1"}, "created")
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"source": "b", "ite')  # a crash in the middle of a line
    with ItemMapWriter(path) as second:
        second.write({"a": "i1"}, "present")
        second.write({"c": "i3"}, "created")
        resumed = second.close()
    assert list(resumed) == [MappedItem("a", "i1", "present"), MappedItem("c", "i3", "created")]
    whole = ItemMap.read(path)  # the torn line is skipped; both attempts' lines are kept
    assert (whole.created, whole.present) == (2, 1)
    assert whole.to_dict() == {"a": "i1", "c": "i3"}


def test_the_journal_names_each_job_until_it_settles_and_readers_of_items_skip_it(tmp_path: Path) -> None:
    path = tmp_path / "run.items.jsonl"
    with ItemMapWriter(path) as writer:
        writer.job("key-a", "starting")
        writer.job("key-b", "starting")
        writer.job("key-a", "started", "job-a")
        writer.write({"a.png": "item-a"}, "created")
        writer.job("key-a", "settled", "job-a")
        writer.job("key-b", "started", "job-b")
        writer.job("key-c", "starting")
    whole = ItemMap.read(path)
    assert (whole.created, whole.present) == (1, 0)
    assert list(whole) == [MappedItem("a.png", "item-a", "created")]
    assert whole.unsettled_jobs() == {"key-b": "job-b", "key-c": ""}
    with ItemMapWriter(path) as later:  # another attempt (or a rollback's finisher) settles the rest
        later.job("key-b", "settled", "job-b")
        later.job("key-c", "settled", "job-c")
    assert ItemMap.read(path).unsettled_jobs() == {}
