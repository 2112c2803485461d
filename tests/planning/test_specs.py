"""Objects → registration entries → job specs, for every data type and every rule, without any I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest

from prefect_encord.limits import MAX_SEQUENCE_FRAMES
from prefect_encord.planning.dicom import DicomHeader
from prefect_encord.planning.objects import ObjectRecord, Skipped
from prefect_encord.planning.specs import (
    Entry,
    PlanOptions,
    chunked,
    data_kind,
    named_keys,
    plan_registration,
    registration_spec,
)

ROOT = "gs://bucket/"


def obj(key: str, size: int | None = 10) -> ObjectRecord:
    return ObjectRecord(key=key, url=ROOT + key, size=size)


def plan(
    keys: Sequence[str],
    options: PlanOptions | None = None,
    headers: Mapping[str, DicomHeader | None] | None = None,
) -> list[Entry | Skipped]:
    read = (lambda records: {r.key: (headers or {}).get(r.key) for r in records}) if headers is not None else None
    return list(plan_registration((obj(k) for k in keys), root_url=ROOT, options=options, read_dicom_headers=read))


def entries(planned: Sequence[Entry | Skipped]) -> list[Entry]:
    return [p for p in planned if isinstance(p, Entry)]


def skipped(planned: Sequence[Entry | Skipped]) -> dict[str, str]:
    return {p.url: p.reason for p in planned if isinstance(p, Skipped)}


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("a.png", "image"),
        ("a.JPG", "image"),
        ("a.jpeg", "image"),
        ("a.webp", "image"),
        ("a.tiff", "image"),
        ("a.mp4", "video"),
        ("a.MOV", "video"),
        ("a.wav", "audio"),
        ("a.mp3", "audio"),
        ("a.txt", "text"),
        ("a.json", "text"),
        ("a.pdf", "pdf"),
        ("a.dcm", "dicom"),
        ("a.exe", None),
        ("README", None),
        ("dir.png/file", None),
    ],
)
def test_data_kind_comes_from_the_extension(key: str, kind: str | None) -> None:
    assert data_kind(key) == kind


def test_every_single_file_type_becomes_its_own_entry_titled_by_key() -> None:
    keys = ["i/a.png", "v/b.mp4", "s/c.wav", "t/d.txt", "p/e.pdf"]
    planned = entries(plan(keys))
    assert [(e.kind, e.title, e.urls) for e in planned] == [
        ("image", "i/a.png", (ROOT + "i/a.png",)),
        ("video", "v/b.mp4", (ROOT + "v/b.mp4",)),
        ("audio", "s/c.wav", (ROOT + "s/c.wav",)),
        ("text", "t/d.txt", (ROOT + "t/d.txt",)),
        ("pdf", "p/e.pdf", (ROOT + "p/e.pdf",)),
    ]
    spec = registration_spec(planned)
    assert spec == {
        "images": [{"title": "i/a.png", "objectUrl": ROOT + "i/a.png"}],
        "videos": [{"title": "v/b.mp4", "objectUrl": ROOT + "v/b.mp4"}],
        "audio": [{"title": "s/c.wav", "objectUrl": ROOT + "s/c.wav"}],
        "text": [{"title": "t/d.txt", "objectUrl": ROOT + "t/d.txt"}],
        "pdf": [{"title": "p/e.pdf", "objectUrl": ROOT + "p/e.pdf"}],
        "skip_duplicate_urls": True,
        "upsert_metadata": False,
    }


def test_images_of_a_directory_become_one_image_group_in_natural_order() -> None:
    planned = plan(
        ["cam/f10.png", "cam/f2.png", "cam/f1.png", "other/x.png", "cam/clip.mp4"], PlanOptions(images="group")
    )
    by_title = {e.title: e for e in entries(planned)}
    assert by_title["cam"].kind == "image_group"
    assert by_title["cam"].urls == tuple(ROOT + f"cam/f{n}.png" for n in (1, 2, 10))
    assert by_title["other"].urls == (ROOT + "other/x.png",)
    assert by_title["cam/clip.mp4"].kind == "video"  # only images are grouped
    assert by_title["cam"].to_spec() == {
        "title": "cam",
        "createVideo": False,
        "objectUrl_0": ROOT + "cam/f1.png",
        "objectUrl_1": ROOT + "cam/f2.png",
        "objectUrl_2": ROOT + "cam/f10.png",
    }
    assert set(registration_spec(entries(planned))) == {
        "image_groups",
        "videos",
        "skip_duplicate_urls",
        "upsert_metadata",
    }


def test_images_become_image_sequences_with_create_video() -> None:
    (sequence,) = entries(plan(["run/0002.jpg", "run/0001.jpg"], PlanOptions(images="sequence")))
    assert sequence.kind == "image_sequence"
    assert sequence.to_spec() == {
        "title": "run",
        "createVideo": True,
        "objectUrl_0": ROOT + "run/0001.jpg",
        "objectUrl_1": ROOT + "run/0002.jpg",
    }
    assert registration_spec([sequence])["image_groups"] == [sequence.to_spec()]


def test_images_at_the_bucket_root_are_titled_by_the_bucket() -> None:
    (group,) = entries(plan(["a.png", "b.png"], PlanOptions(images="group")))
    assert group.title == "gs://bucket"


def test_sequences_longer_than_encord_allows_are_skipped_whole() -> None:
    keys = [f"long/{n:05d}.png" for n in range(MAX_SEQUENCE_FRAMES + 1)] + ["ok/1.png"]
    planned = plan(keys, PlanOptions(images="sequence"))
    assert [e.title for e in entries(planned)] == ["ok"]
    assert skipped(planned) == {
        ROOT + "long/": f"an image sequence of {MAX_SEQUENCE_FRAMES + 1} frames; Encord allows at most 32767"
    }


def test_a_sequence_of_exactly_the_maximum_is_kept() -> None:
    keys = [f"max/{n:05d}.png" for n in range(MAX_SEQUENCE_FRAMES)]
    (sequence,) = plan(keys, PlanOptions(images="sequence"))
    assert isinstance(sequence, Entry) and len(sequence.urls) == MAX_SEQUENCE_FRAMES


def test_dicom_files_of_a_directory_form_one_series_by_default() -> None:
    planned = entries(plan(["ct/s1/slice-10.dcm", "ct/s1/slice-2.dcm", "ct/s2/a.dcm", "ct/s1/slice-1.dcm"]))
    assert [(e.kind, e.title, e.urls) for e in planned] == [
        ("dicom_series", "ct/s1", tuple(ROOT + f"ct/s1/slice-{n}.dcm" for n in (1, 2, 10))),
        ("dicom_series", "ct/s2", (ROOT + "ct/s2/a.dcm",)),
    ]
    assert planned[0].to_spec() == {
        "title": "ct/s1",
        "objectUrl_0": ROOT + "ct/s1/slice-1.dcm",
        "objectUrl_1": ROOT + "ct/s1/slice-2.dcm",
        "objectUrl_2": ROOT + "ct/s1/slice-10.dcm",
    }
    assert list(registration_spec(planned)) == ["dicom_series", "skip_duplicate_urls", "upsert_metadata"]


def test_dicom_series_by_uid_groups_across_directories_in_instance_order() -> None:
    headers = {
        "a/1.dcm": DicomHeader("1.2.3", 2),
        "b/2.dcm": DicomHeader("1.2.3", 1),
        "b/3.dcm": DicomHeader("1.2.3", None),
        "a/4.dcm": DicomHeader("9.9", 1),
        "a/broken.dcm": None,
    }
    planned = plan(list(headers), PlanOptions(dicom_series_by="series_uid"), headers)
    assert [(e.title, e.urls) for e in entries(planned)] == [
        ("1.2.3", (ROOT + "b/2.dcm", ROOT + "a/1.dcm", ROOT + "b/3.dcm")),
        ("9.9", (ROOT + "a/4.dcm",)),
    ]
    assert skipped(planned) == {ROOT + "a/broken.dcm": "no SeriesInstanceUID could be read from the DICOM header"}


def test_headers_are_read_once_for_dicom_records_only_after_the_rest_is_planned() -> None:
    calls: list[list[str]] = []
    seen: list[str] = []

    def read(records: Sequence[ObjectRecord]) -> dict[str, DicomHeader | None]:
        calls.append([r.key for r in records])
        return {r.key: DicomHeader("1.2", None) for r in records}

    def records() -> Iterator[ObjectRecord]:
        for key in ["x.dcm", "a.png", "y.dcm"]:
            seen.append(key)
            yield obj(key)

    options = PlanOptions(dicom_series_by="series_uid")
    stream = plan_registration(records(), root_url=ROOT, options=options, read_dicom_headers=read)
    first = next(stream)
    assert isinstance(first, Entry) and first.title == "a.png" and seen == ["x.dcm", "a.png"]  # streamed
    assert calls == []
    rest = list(stream)
    assert calls == [["x.dcm", "y.dcm"]]
    assert [e.title for e in entries(rest)] == ["1.2"]


def test_series_uid_grouping_needs_a_header_reader() -> None:
    with pytest.raises(ValueError, match="read_dicom_headers"):
        plan(["a.dcm"], PlanOptions(dicom_series_by="series_uid"))


def test_image_group_and_dicom_series_in_one_directory_get_distinct_titles() -> None:
    planned = entries(plan(["scan/a.png", "scan/b.dcm"], PlanOptions(images="group")))
    assert [(e.kind, e.title) for e in planned] == [("image_group", "scan"), ("dicom_series", "scan (DICOM)")]


def test_unknown_extensions_empty_objects_foreign_urls_and_long_keys_are_skipped_with_reasons() -> None:
    long_key = "d/" + "x" * 300 + ".png"
    records = [
        obj("notes.docx"),
        obj("Makefile"),
        obj("empty.png", size=0),
        ObjectRecord(key="elsewhere.png", url="gs://other-bucket/elsewhere.png"),
        obj(long_key),
        obj("good.png"),
    ]
    planned = list(plan_registration(records, root_url=ROOT))
    assert [e.title for e in entries(planned)] == ["good.png"]
    assert skipped(planned) == {
        ROOT + "notes.docx": "unsupported file type '.docx'",
        ROOT + "Makefile": "unsupported file type '(no extension)'",
        ROOT + "empty.png": "the object is empty",
        "gs://other-bucket/elsewhere.png": "the URL is outside the integration's bucket (gs://bucket/)",
        ROOT + long_key: "the key is longer than Encord's 300-character limit on titles",
    }


def test_unknown_size_is_not_taken_for_empty() -> None:
    (entry,) = list(plan_registration([obj("a.png", size=None)], root_url=ROOT))
    assert isinstance(entry, Entry)


def test_client_metadata_applies_to_all_and_is_overridden_per_title() -> None:
    options = PlanOptions(
        images="group",
        client_metadata={"source": "s3", "batch": 1},
        metadata_by_title={"cam": {"batch": 2, "site": "north"}, "v.mp4": {"fps_hint": 25}},
    )
    by_title = {e.title: e for e in entries(plan(["cam/1.png", "v.mp4", "doc.pdf"], options))}
    assert by_title["cam"].client_metadata == {"source": "s3", "batch": 2, "site": "north"}
    assert by_title["v.mp4"].to_spec()["clientMetadata"] == {"source": "s3", "batch": 1, "fps_hint": 25}
    assert by_title["doc.pdf"].client_metadata == {"source": "s3", "batch": 1}


def test_no_metadata_means_no_client_metadata_key() -> None:
    (entry,) = entries(plan(["a.png"]))
    assert "clientMetadata" not in entry.to_spec()


def test_single_files_stream_out_before_the_listing_ends() -> None:
    def endless() -> Iterator[ObjectRecord]:
        n = 0
        while True:
            n += 1
            yield obj(f"{n}.png")

    stream = plan_registration(endless(), root_url=ROOT)
    assert [e.title for e in entries([next(stream) for _ in range(3)])] == ["1.png", "2.png", "3.png"]


def test_entries_refuse_to_be_empty_or_malformed() -> None:
    with pytest.raises(ValueError, match="no objects"):
        Entry(kind="image_group", title="g", urls=())
    with pytest.raises(ValueError, match="exactly one object"):
        Entry(kind="image", title="i", urls=("a", "b"))


@pytest.mark.parametrize("options", [{"images": "tiles"}, {"dicom_series_by": "study"}])
def test_unknown_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        PlanOptions(**options)  # type: ignore[arg-type]


def test_chunks_hold_at_most_job_size_units_and_are_pulled_lazily() -> None:
    pulled: list[int] = []

    def stream() -> Iterator[Entry]:
        for n in range(7):
            pulled.append(n)
            yield Entry(kind="image", title=f"{n}.png", urls=(f"{ROOT}{n}.png",))

    chunks = chunked(stream(), 3)
    assert [e.title for e in next(chunks)] == ["0.png", "1.png", "2.png"]
    assert pulled == [0, 1, 2]
    assert [len(c) for c in chunks] == [3, 1]
    with pytest.raises(ValueError, match="at least 1"):
        next(chunked([], 0))


def test_a_group_counts_as_one_unit_in_a_chunk() -> None:
    planned = entries(plan([f"g{g}/{n}.png" for g in range(4) for n in range(5)], PlanOptions(images="group")))
    assert [len(chunk) for chunk in chunked(planned, 3)] == [3, 1]


def test_upsert_metadata_is_passed_through_and_duplicates_are_always_skipped() -> None:
    spec = registration_spec(entries(plan(["a.png"])), upsert_metadata=True)
    assert spec["skip_duplicate_urls"] is True and spec["upsert_metadata"] is True


def test_named_keys_are_looked_up_alone_unless_their_directory_makes_one_unit() -> None:
    keys = ["raw/cams/a.png", "raw/clips/b.mp4", "raw/scans/1.dcm", "raw/scans/2.dcm", "elsewhere/c.png", "raw/d.pdf"]
    single = named_keys(keys, "raw/", PlanOptions())
    assert single.singles == ("raw/cams/a.png", "raw/clips/b.mp4", "raw/d.pdf")
    assert single.directories == ("scans/",)  # a DICOM series is its directory; elsewhere/ is not the block's
    assert single.outside == ("elsewhere/c.png",)  # named, so the run can say it left it out

    grouped = named_keys([*keys, "raw/scans/notes.txt"], "raw/", PlanOptions(images="group"))
    assert grouped.directories == ("cams/", "scans/")
    assert grouped.singles == ("raw/clips/b.mp4", "raw/d.pdf")  # scans/notes.txt comes with its listed directory

    at_the_top = named_keys(["top.png", "deep/x.mp4"], "", PlanOptions(images="sequence"))
    assert at_the_top == type(at_the_top)(singles=(), directories=("",))  # the whole prefix is listed, once
