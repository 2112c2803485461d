"""The local-upload planner and the transfer retry policy: pure, no sandbox."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import pytest
from encord.orm.storage import UploadLongPollingState, UploadSignedUrl

from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY
from prefect_encord.planning.ordering import natural_key
from prefect_encord.planning.retries import RetryPolicy
from prefect_encord.planning.uploads import (
    MAX_SEQUENCE_FRAMES,
    UploadUnit,
    assign_slots,
    is_candidate,
    job_batches,
    media_type,
    plan_units,
    registration,
    settle,
    slot_requests,
    unit_digest,
)


def _units(plan_paths: list[str], **rules: list[str]) -> dict[str, UploadUnit]:
    return {unit.key: unit for unit in plan_units(plan_paths, "root", **rules).units}


def _slot(key: str | None = None) -> UploadSignedUrl:
    item = uuid.uuid4()
    return UploadSignedUrl(item_uuid=item, object_key=key or str(item), signed_url=f"http://blobs/{item}")


def _state(
    created: list[tuple[uuid.UUID, str]],
    errors: Sequence[tuple[list[str], str]] = (),
    status: str = "DONE",
) -> UploadLongPollingState:
    return UploadLongPollingState.from_dict(
        {
            "status": status,
            "itemsWithNames": [{"itemUuid": str(u), "name": n} for u, n in created],
            "errors": [e for _, e in errors],
            "unitsPendingCount": 0,
            "unitsDoneCount": len(created),
            "unitsErrorCount": len(errors),
            "unitsCancelledCount": 0,
            "unitErrors": [
                {"objectUrls": urls, "error": e, "subtaskUuid": str(uuid.uuid4()), "actionDescription": "Uploading"}
                for urls, e in errors
            ],
        }
    )


# --- what a file is, and which files take part --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.PNG", ("image", "image/png")),
        ("a.jpeg", ("image", "image/jpeg")),
        ("clip.mp4", ("video", "application/octet-stream")),
        ("tone.wav", ("audio", "application/octet-stream")),
        ("notes.txt", ("plainText", "text/plain")),
        ("data.json", ("plainText", "application/json")),
        ("report.pdf", ("pdf", "application/pdf")),
        ("slice.dcm", ("dicomFile", "application/dicom")),
        ("archive.zip", None),
        ("Makefile", None),
    ],
)
def test_media_type_follows_the_extension(name: str, expected: tuple[str, str] | None) -> None:
    assert media_type(name) == expected


def test_hidden_and_excluded_paths_take_no_part() -> None:
    assert is_candidate("cams/front.png")
    assert not is_candidate(".DS_Store")
    assert not is_candidate(".git/objects/ab.png")
    assert not is_candidate("cams/.thumbs/front.png")
    assert not is_candidate("raw/front.png", exclude=["raw/*"])
    assert is_candidate("cams/raw.png", exclude=["raw/*"])


def test_natural_order_compares_numbers_as_numbers() -> None:
    assert sorted(["f10.png", "f2.png", "F1.png"], key=natural_key) == ["F1.png", "f2.png", "f10.png"]


# --- units --------------------------------------------------------------------------------------


def test_every_single_file_is_its_own_unit_titled_by_its_name() -> None:
    units = _units(["a.png", "v/clip.mp4", "tone.wav", "notes.txt", "report.pdf"])
    assert {k: (u.kind, u.title, u.files) for k, u in units.items()} == {
        "a.png": ("image", "a.png", ("a.png",)),
        "v/clip.mp4": ("video", "clip.mp4", ("v/clip.mp4",)),
        "tone.wav": ("audio", "tone.wav", ("tone.wav",)),
        "notes.txt": ("plainText", "notes.txt", ("notes.txt",)),
        "report.pdf": ("pdf", "report.pdf", ("report.pdf",)),
    }
    assert not any(u.is_composite for u in units.values())


def test_dicom_files_of_a_directory_form_one_series_in_natural_order() -> None:
    units = _units(["ct/s-10.dcm", "ct/s-2.dcm", "ct/s-1.dcm", "mr/a.dcm"])
    assert units["ct"].kind == "dicomSeries" and units["ct"].slot_type == "dicomFile"
    assert units["ct"].files == ("ct/s-1.dcm", "ct/s-2.dcm", "ct/s-10.dcm")
    assert units["ct"].title == "ct" and units["mr"].files == ("mr/a.dcm",)


def test_image_directories_become_groups_or_sequences_by_pattern() -> None:
    units = _units(
        ["views/b.png", "views/a.png", "drives/d1/f2.jpg", "drives/d1/f1.jpg", "drives/d1/notes.txt", "x.png"],
        image_groups=["views"],
        image_sequences=["drives/*"],
    )
    assert (units["views"].kind, units["views"].files) == ("imageGroup", ("views/a.png", "views/b.png"))
    assert units["drives/d1"].kind == "imageSequence" and units["drives/d1"].slot_type == "image"
    assert units["drives/d1"].files == ("drives/d1/f1.jpg", "drives/d1/f2.jpg")
    assert units["drives/d1/notes.txt"].kind == "plainText"  # only images join a group
    assert units["x.png"].kind == "image"


def test_the_root_directory_is_dot_and_its_composite_is_titled_by_the_root_name() -> None:
    units = _units(["a.png", "b.png"], image_groups=["."])
    assert units["."].title == "root" and units["."].files == ("a.png", "b.png")


def test_unusable_paths_are_rejected_with_a_reason() -> None:
    plan = plan_units(
        ["a.xyz", "both/a.png", "root/s.dcm", "s.dcm"], "root", image_groups=["both"], image_sequences=["both"]
    )
    assert plan.rejected["a.xyz"] == "unsupported file type '.xyz'"
    assert "matches both an image_groups and an image_sequences pattern" in plan.rejected["both/a.png"]
    # The root's series would be titled "root", like the series of the sub-directory "root".
    assert "share the title 'root'" in plan.rejected["root"]
    assert [u.key for u in plan.units] == ["."]


def test_an_image_sequence_over_the_frame_limit_is_rejected() -> None:
    frames = [f"long/{i}.png" for i in range(MAX_SEQUENCE_FRAMES + 1)]
    plan = plan_units(frames, "root", image_sequences=["long"])
    assert plan.units == () and "32768 frames" in plan.rejected["long"]


# --- identity -----------------------------------------------------------------------------------


def test_a_single_file_is_identified_by_its_sha256_and_a_composite_by_kind_and_ordered_frames() -> None:
    single = UploadUnit("a.png", "image", "a.png", ("a.png",), "image")
    group = UploadUnit("g", "imageGroup", "g", ("g/1.png", "g/2.png"), "image")
    digests = {"a.png": "aa", "g/1.png": "11", "g/2.png": "22"}
    assert unit_digest(single, digests) == "aa"
    assert unit_digest(group, digests) == hashlib.sha256(b"imageGroup\n11\n22").hexdigest()
    sequence = UploadUnit("g", "imageSequence", "g", group.files, "image")
    reordered = UploadUnit("g", "imageGroup", "g", ("g/2.png", "g/1.png"), "image")
    assert len({unit_digest(u, digests) for u in (group, sequence, reordered)}) == 3


# --- requests -----------------------------------------------------------------------------------


def test_units_are_batched_into_as_few_jobs_as_the_job_size_allows() -> None:
    units = [UploadUnit(str(i), "image", str(i), (str(i),), "image") for i in range(2500)]
    assert [len(b) for b in job_batches(units)] == [1000, 1000, 500]
    assert [len(b) for b in job_batches(units[:3], job_size=2)] == [2, 1]
    with pytest.raises(ValueError, match="job_size 0"):
        job_batches(units, job_size=0)


def test_slot_requests_cover_every_file_by_type_in_requests_of_at_most_1000() -> None:
    units = [UploadUnit(f"{i}.png", "image", "", (f"{i}.png",), "image") for i in range(1500)]
    units.append(UploadUnit("seq", "imageSequence", "seq", tuple(f"seq/{i}.png" for i in range(600)), "image"))
    units.append(UploadUnit("ct", "dicomSeries", "ct", ("ct/1.dcm", "ct/2.dcm"), "dicomFile"))
    units.append(UploadUnit("n.txt", "plainText", "n.txt", ("n.txt",), "plainText"))
    assert slot_requests(units) == [
        ("image", 1000),
        ("image", 1000),
        ("image", 100),
        ("dicomFile", 2),
        ("plainText", 1),
    ]


def test_each_file_gets_a_slot_of_its_type() -> None:
    units = [
        UploadUnit("a.png", "image", "a.png", ("a.png",), "image"),
        UploadUnit("ct", "dicomSeries", "ct", ("ct/1.dcm", "ct/2.dcm"), "dicomFile"),
    ]
    images, dicoms = [_slot()], [_slot(), _slot()]
    assigned = assign_slots(units, {"image": images, "dicomFile": dicoms})
    assert assigned == {"a.png": images[0], "ct/1.dcm": dicoms[0], "ct/2.dcm": dicoms[1]}
    with pytest.raises(ValueError, match="no dicomFile upload slot left for ct/2.dcm"):
        assign_slots(units, {"image": images, "dicomFile": dicoms[:1]})


def test_one_job_body_registers_every_kind_by_placeholder_with_its_identity() -> None:
    units = [
        UploadUnit("a.png", "image", "a.png", ("a.png",), "image"),
        UploadUnit("v.mp4", "video", "v.mp4", ("v.mp4",), "video"),
        UploadUnit("t.wav", "audio", "t.wav", ("t.wav",), "audio"),
        UploadUnit("n.txt", "plainText", "n.txt", ("n.txt",), "plainText"),
        UploadUnit("r.pdf", "pdf", "r.pdf", ("r.pdf",), "pdf"),
        UploadUnit("g", "imageGroup", "g", ("g/1.png", "g/2.png"), "image"),
        UploadUnit("s", "imageSequence", "s", ("s/1.png",), "image"),
        UploadUnit("ct", "dicomSeries", "ct", ("ct/1.dcm", "ct/2.dcm"), "dicomFile"),
    ]
    slots = {path: _slot() for unit in units for path in unit.files}
    digests = {unit.key: f"digest-{unit.key}" for unit in units}
    items = registration(units, slots, digests, client_metadata={"source": "lab"})

    assert [e.title for e in items.images + items.videos + items.audio + items.text + items.pdf] == [
        "a.png", "v.mp4", "t.wav", "n.txt", "r.pdf",
    ]  # fmt: skip
    image = items.images[0]
    assert image.placeholder_item_uuid == slots["a.png"].item_uuid and image.object_url == slots["a.png"].object_key
    assert image.client_metadata == {"source": "lab", PATH_KEY: "a.png", IDENTITY_KEY: "digest-a.png"}
    group, sequence = items.image_groups
    assert (group.title, group.create_video, sequence.create_video) == ("g", False, True)
    assert [f.placeholder_item_uuid for f in group.images] == [slots["g/1.png"].item_uuid, slots["g/2.png"].item_uuid]
    assert [f.title for f in group.images] == ["1.png", "2.png"]
    (series,) = items.dicom_series
    assert [f.url for f in series.dicom_files] == [slots["ct/1.dcm"].object_key, slots["ct/2.dcm"].object_key]
    assert series.client_metadata == {"source": "lab", PATH_KEY: "ct", IDENTITY_KEY: "digest-ct"}
    wire = items.to_dict()
    assert wire["images"][0]["placeholderItemUuid"] == str(slots["a.png"].item_uuid)


# --- mapping a finished job back ----------------------------------------------------------------


def test_settle_matches_files_by_placeholder_composites_by_title_and_errors_by_object_key() -> None:
    units = [
        UploadUnit("a.png", "image", "a.png", ("a.png",), "image"),
        UploadUnit("b.png", "image", "b.png", ("b.png",), "image"),
        UploadUnit("ct", "dicomSeries", "ct", ("ct/1.dcm", "ct/2.dcm"), "dicomFile"),
        UploadUnit("g", "imageGroup", "g", ("g/1.png",), "image"),
    ]
    slots = {path: _slot() for unit in units for path in unit.files}
    series_uuid = uuid.uuid4()
    state = _state(
        created=[(slots["a.png"].item_uuid, "a.png"), (series_uuid, "ct")],
        errors=[([slots["b.png"].object_key], "b.png: not a readable image"), ([slots["g/1.png"].object_key], "bad")],
    )
    created, failed = settle(units, slots, state)
    assert created == {"a.png": str(slots["a.png"].item_uuid), "ct": str(series_uuid)}
    assert failed == {"b.png": "b.png: not a readable image", "g": "bad"}


def test_settle_reports_units_of_an_unfinished_job_as_failed() -> None:
    units = [UploadUnit("a.png", "image", "a.png", ("a.png",), "image")]
    slots = {"a.png": _slot()}
    created, failed = settle(units, slots, _state(created=[], status="PENDING"))
    assert created == {} and "still pending" in failed["a.png"]
    cancelled = _state(created=[], status="CANCELLED")
    assert "with status CANCELLED" in settle(units, slots, cancelled)[1]["a.png"]


def test_settle_never_guesses_between_items_of_the_same_title() -> None:
    units = [UploadUnit("x/a.png", "image", "a.png", ("x/a.png",), "image")]
    slots = {"x/a.png": _slot()}
    state = _state(created=[(uuid.uuid4(), "a.png"), (uuid.uuid4(), "a.png")])
    assert "no item or error was reported" in settle(units, slots, state)[1]["x/a.png"]


# --- retries ------------------------------------------------------------------------------------


def test_only_transient_statuses_are_retried() -> None:
    assert [s for s in (400, 403, 404, 408, 429, 500, 503) if RetryPolicy.retryable(s)] == [408, 429, 500, 503]


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_full() -> None:
    policy = RetryPolicy(backoff_seconds=1, max_backoff_seconds=5)
    assert [policy.delay(a, jitter=0.999999) for a in (1, 2, 3, 4)] == pytest.approx([1, 2, 4, 5])
    assert policy.delay(2, jitter=0) == 1


def test_a_server_asking_for_longer_than_the_backoff_is_waited_for_and_a_date_is_not() -> None:
    policy = RetryPolicy(backoff_seconds=1, max_backoff_seconds=5)
    assert policy.wait(1, jitter=0, retry_after=None) == 0.5
    assert policy.wait(1, jitter=0, retry_after=3) == 3  # the SDK's RateLimitExceededError.retry_after
    assert policy.wait(1, jitter=0, retry_after="4") == 4  # a Retry-After header
    assert policy.wait(3, jitter=0, retry_after="1") == 2  # the backoff is longer
    assert policy.wait(1, jitter=0, retry_after="Wed, 21 Oct 2026 07:28:00 GMT") == 0.5


def test_a_retry_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts 0"):
        RetryPolicy(max_attempts=0)
