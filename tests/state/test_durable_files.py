"""Durable writes fail with an error that names the file and says what it was, and leave nothing half-written."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from prefect_encord.state.durable_files import write_atomically
from prefect_encord.state.item_map import ItemMapWriter


def test_a_full_disk_names_the_item_map_it_could_not_write() -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    writer = ItemMapWriter("/dev/full")
    with pytest.raises(OSError, match=r"^\[Errno 28\] cannot write the item map /dev/full: No space left") as caught:
        writer.write({"s3://bucket/a.png": "3f1c"}, "created")
    assert caught.value.errno == errno.ENOSPC


def test_an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "receipt.json"
    target.write_text("old")
    write_atomically(target, "new", "the run's receipt")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["receipt.json"]


def test_an_atomic_write_that_cannot_start_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("a file where the receipts' directory should be")
    target = tmp_path / "runs" / "receipt.json"
    with pytest.raises(OSError, match=f"cannot write the run's receipt {target}: "):
        write_atomically(target, "{}", "the run's receipt")
