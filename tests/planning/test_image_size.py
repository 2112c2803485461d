"""``PlanOptions.image_size``: single images carry customer-provided facts (``imageMetadata``) in the spec."""

from __future__ import annotations

import pytest

from prefect_encord.planning.objects import ObjectRecord
from prefect_encord.planning.specs import Entry, PlanOptions, plan_registration, registration_spec

ROOT = "s3://cams/"


def _record(key: str, size: int | None = 77) -> ObjectRecord:
    return ObjectRecord(key=key, url=ROOT + key, size=size)


def _spec(options: PlanOptions, *records: ObjectRecord) -> dict[str, object]:
    entries = [e for e in plan_registration(records, root_url=ROOT, options=options) if isinstance(e, Entry)]
    return registration_spec(entries)


def test_each_image_gets_its_mime_type_listed_size_and_the_given_dimensions() -> None:
    spec = _spec(PlanOptions(image_size=(1920, 1080)), _record("a.png", 77), _record("b.JPG", 5_000))
    assert spec["images"] == [
        {"title": "a.png", "objectUrl": ROOT + "a.png",
         "imageMetadata": {"mimeType": "image/png", "fileSize": 77, "width": 1920, "height": 1080}},
        {"title": "b.JPG", "objectUrl": ROOT + "b.JPG",
         "imageMetadata": {"mimeType": "image/jpeg", "fileSize": 5_000, "width": 1920, "height": 1080}},
    ]  # fmt: skip


def test_without_image_size_or_a_listed_size_encord_reads_the_image() -> None:
    assert "imageMetadata" not in _spec(PlanOptions(), _record("a.png"))["images"][0]  # type: ignore[index]
    unsized = _spec(PlanOptions(image_size=(8, 6)), _record("a.png", size=None))
    assert "imageMetadata" not in unsized["images"][0]  # type: ignore[index]


def test_only_single_images_carry_it() -> None:
    options = PlanOptions(image_size=(8, 6), images="group")
    spec = _spec(options, _record("d/a.png"), _record("d/b.png"), _record("clip.mp4"))
    assert "imageMetadata" not in spec["image_groups"][0]  # type: ignore[index]
    assert "imageMetadata" not in spec["videos"][0]  # type: ignore[index]
    with pytest.raises(ValueError, match="single images"):
        Entry(kind="video", title="v", urls=("u",), image_metadata={"width": 1})


@pytest.mark.parametrize("size", [(0, 6), (8,), (8.0, 6), (True, 6), (-1, 5)])
def test_a_bad_image_size_is_refused(size: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="image_size"):
        PlanOptions(image_size=size)  # type: ignore[arg-type]


def test_a_list_from_json_becomes_a_tuple() -> None:
    assert PlanOptions(image_size=[8, 6]).image_size == (8, 6)  # type: ignore[arg-type]
