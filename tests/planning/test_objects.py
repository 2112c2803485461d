"""Which listed objects a run takes: prefix as a folder, include/exclude globs, the modified_since watermark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prefect_encord.planning.objects import (
    as_utc,
    folder_prefix,
    is_modified_since,
    is_probe,
    is_selected,
    key_directories,
)

NOON = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", ""), ("/", ""), ("cams", "cams/"), ("/cams/", "cams/"), ("cams/2026", "cams/2026/")],
)
def test_folder_prefix_is_a_folder(prefix: str, expected: str) -> None:
    assert folder_prefix(prefix) == expected


def test_no_patterns_select_everything() -> None:
    assert is_selected("a/b/c.png")


def test_include_star_crosses_directories_and_is_case_sensitive() -> None:
    assert is_selected("a/b/c.png", include=["*.png"])
    assert not is_selected("a/b/c.PNG", include=["*.png"])
    assert is_selected("a/b/c.jpg", include=["*.png", "a/*"])
    assert not is_selected("b/c.jpg", include=["*.png", "a/*"])


def test_exclude_wins_over_include() -> None:
    assert not is_selected("tmp/c.png", include=["*.png"], exclude=["tmp/*"])
    assert not is_selected("x/.DS_Store", exclude=["*/.DS_Store"])
    assert is_selected("x/c.png", exclude=["tmp/*"])


def test_watermark_is_inclusive() -> None:
    assert is_modified_since(NOON, NOON)
    assert is_modified_since(NOON + timedelta(microseconds=1), NOON)
    assert not is_modified_since(NOON - timedelta(seconds=1), NOON)


def test_watermark_compares_instants_across_time_zones_and_takes_naive_as_utc() -> None:
    two_hours_east = timezone(timedelta(hours=2))
    assert is_modified_since(datetime(2026, 5, 1, 14, 0, tzinfo=two_hours_east), NOON)
    assert not is_modified_since(datetime(2026, 5, 1, 13, 59, tzinfo=two_hours_east), NOON)
    assert is_modified_since(NOON, datetime(2026, 5, 1, 12, 0))
    assert as_utc(datetime(2026, 5, 1, 12, 0)) == NOON


def test_objects_without_a_modification_time_are_kept() -> None:
    assert is_modified_since(None, NOON)
    assert is_modified_since(NOON, None)


def test_the_directories_to_list_for_notified_keys() -> None:
    keys = ["cams/a/1.png", "cams/a/2.png", "cams/a/b/3.png", "cams/c/4.png", "other/5.png", "cams/6.png"]
    assert key_directories(keys, "cams/") == [""]  # cams/6.png sits in the base itself: list it all
    assert key_directories(keys[:4], "cams/") == ["a/", "c/"]
    assert key_directories(["x.png"], "") == [""]
    assert key_directories(["other/5.png"], "cams/") == []


def test_a_notification_probe_is_never_selected_at_any_depth() -> None:
    assert is_probe(".prefect-encord-probe/1.txt") and is_probe("cams/.prefect-encord-probe/1.txt")
    assert not is_probe("cams/.prefect-encord-probe") and not is_probe("cams/prefect-encord-probe/1.txt")
    assert not is_selected(".prefect-encord-probe/1.txt") and not is_selected(".prefect-encord-probe/1.txt", ["*"])
    assert is_selected("cams/1.png")
