"""Planning a dataset link against what the dataset holds, and resolving a title to one resource."""

from __future__ import annotations

import uuid

import pytest
from encord.orm.dataset import DataLinkDuplicatesBehavior
from encord.orm.storage import StorageItemType

from prefect_encord.planning.links import AlreadyLinked, parse_item_types, plan_links, sdk_behaviour
from prefect_encord.planning.titles import AmbiguousTitle, single_match

A, B, C = (str(uuid.uuid4()) for _ in range(3))
PRESENT = {A: "data-a"}


def test_skip_sends_only_items_not_yet_in_the_dataset() -> None:
    plan = plan_links([A, B, C], PRESENT, "SKIP")
    assert plan.to_link == (B, C)
    assert plan.already_present == {A: "data-a"}


def test_skip_of_items_all_present_sends_nothing() -> None:
    assert plan_links([A], PRESENT, "SKIP").to_link == ()


def test_fail_refuses_the_whole_call_if_any_item_is_present() -> None:
    with pytest.raises(AlreadyLinked, match=rf"1 of 3 items are already in the dataset \({A}\); nothing was linked"):
        plan_links([B, A, C], PRESENT, "FAIL")
    assert plan_links([B, C], PRESENT, "FAIL").to_link == (B, C)


def test_duplicate_sends_every_item_again() -> None:
    plan = plan_links([A, B], PRESENT, "DUPLICATE")
    assert plan.to_link == (A, B) and plan.already_present == {}


def test_items_are_normalised_and_deduplicated_in_order() -> None:
    plan = plan_links([C, uuid.UUID(B), B.upper(), C], {}, "SKIP")
    assert plan.to_link == (C, B)


def test_an_item_that_is_not_a_uuid_is_named() -> None:
    with pytest.raises(ValueError, match="item 'cat.png' is not a UUID"):
        plan_links([A, "cat.png"], {}, "SKIP")


def test_behaviour_names_map_to_the_sdk_enum() -> None:
    assert sdk_behaviour("FAIL") is DataLinkDuplicatesBehavior.FAIL
    with pytest.raises(ValueError, match="'skip' is not one of SKIP, FAIL, DUPLICATE"):
        sdk_behaviour("skip")  # type: ignore[arg-type]


def test_item_types_by_enum_value_or_name() -> None:
    assert parse_item_types([StorageItemType.VIDEO, "image", "imageGroup", "dicom_series", "GROUP"]) == [
        StorageItemType.VIDEO,
        StorageItemType.IMAGE,
        StorageItemType.IMAGE_GROUP,
        StorageItemType.DICOM_SERIES,
        StorageItemType.GROUP,
    ]
    with pytest.raises(ValueError, match="'photo' is not a storage item type; use one of VIDEO, IMAGE"):
        parse_item_types(["photo"])


def test_a_title_resolves_to_its_one_resource_exactly() -> None:
    assert single_match("dataset", "cams", [("h1", "cams"), ("h2", "Cams"), ("h3", "cams 2")]) == "h1"
    assert single_match("dataset", "cams", [("h2", "Cams")]) is None
    assert single_match("dataset", "cams", []) is None


def test_a_shared_title_is_refused_with_the_hashes() -> None:
    with pytest.raises(AmbiguousTitle, match=r"2 projects are titled 'cams' \(h1, h2\); pass the hash"):
        single_match("project", "cams", [("h2", "cams"), ("h1", "cams")])
