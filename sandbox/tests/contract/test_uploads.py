"""Local-file uploads through the real SDK (docs/sandbox.md): signed-URL PUT, upload job, probed item facts.

Every ``folder.upload_*`` / ``create_*`` call below runs the SDK's whole flow against the sandbox over HTTP:
reserve upload slots, PUT the bytes to the signed URL, start a data-upload job with placeholder items and
long-poll it. The assertions are about what the sandbox learned by decoding the bytes it received.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import requests
from encord import EncordUserClient
from encord.exceptions import EncordException
from encord.orm.storage import StorageItemType, StorageLocationName
from encord.storage import StorageFolder
from encord_sandbox import samples

DICOM_SLICES = [f"dicom/series-1/slice-{n}.dcm" for n in (1, 2, 3)]


def _download(url: str | None) -> bytes:
    assert url, "the item has no signed URL"
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.content


def test_upload_png_and_jpeg_are_probed_and_downloadable(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    png_uuid = folder.upload_image(media_dir / "red.png", client_metadata={"camera": "front", "n": 1})
    jpeg_uuid = folder.upload_image(media_dir / "green.jpg", title="renamed.jpg")

    png = client.get_storage_item(png_uuid, sign_url=True)
    assert png.item_type == StorageItemType.IMAGE
    assert (png.width, png.height) == (8, 6)
    assert png.mime_type == "image/png"
    assert png.file_size == (media_dir / "red.png").stat().st_size
    assert png.name == "red.png"
    assert png.client_metadata == {"camera": "front", "n": 1}
    assert png.storage_location == StorageLocationName.ENCORD
    assert png.parent_folder_uuid == folder.uuid
    # The bytes PUT to the signed upload URL are exactly what the item's signed download URL serves.
    assert _download(png.get_signed_url()) == (media_dir / "red.png").read_bytes()

    jpeg = client.get_storage_item(jpeg_uuid)
    assert (jpeg.item_type, jpeg.width, jpeg.height, jpeg.mime_type) == (StorageItemType.IMAGE, 8, 6, "image/jpeg")
    assert jpeg.name == "renamed.jpg"

    assert sorted(i.uuid for i in folder.list_items()) == sorted([png_uuid, jpeg_uuid])


def test_upload_video_reports_fps_frames_and_geometry(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    item = client.get_storage_item(folder.upload_video(media_dir / "clip.mp4"))

    assert item.item_type == StorageItemType.VIDEO
    assert item.fps == pytest.approx(5.0)
    assert item.frame_count == 10
    assert (item.width, item.height) == (32, 24)
    assert item.duration == pytest.approx(2.0, abs=0.01)
    assert item.mime_type == "video/mp4"
    assert item.file_size == (media_dir / "clip.mp4").stat().st_size


def test_upload_audio_reports_sample_rate_channels_and_codec(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    item = client.get_storage_item(folder.upload_audio(media_dir / "tone.wav"))

    assert item.item_type == StorageItemType.AUDIO
    assert item.audio_sample_rate == 8000
    assert item.audio_num_channels == 1
    assert item.audio_bit_depth == 16
    assert item.audio_codec == "pcm_s16le"
    assert item.duration == pytest.approx(0.5, abs=0.01)
    assert item.mime_type == "audio/wav"


def test_upload_text_and_pdf(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    text = client.get_storage_item(folder.upload_text(media_dir / "notes.txt"))
    pdf = client.get_storage_item(folder.upload_pdf(media_dir / "report.pdf"))

    assert (text.item_type, text.mime_type) == (StorageItemType.PLAIN_TEXT, "text/plain")
    assert text.file_size == len((media_dir / "notes.txt").read_bytes())
    assert (pdf.item_type, pdf.mime_type) == (StorageItemType.PDF, "application/pdf")
    assert pdf.file_size == (media_dir / "report.pdf").stat().st_size


def test_create_image_group_keeps_frame_order(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    files = [media_dir / "blue.png", media_dir / "green.jpg", media_dir / "red.png"]
    group = client.get_storage_item(folder.create_image_group(files, title="views", client_metadata={"site": "A"}))

    assert group.item_type == StorageItemType.IMAGE_GROUP
    assert group.name == "views"
    assert group.frame_count == 3
    assert group.client_metadata == {"site": "A"}
    children = list(group.get_child_items())
    assert [c.name for c in children] == ["blue.png", "green.jpg", "red.png"]
    assert [c.mime_type for c in children] == ["image/png", "image/jpeg", "image/png"]
    assert all(c.item_type == StorageItemType.IMAGE and (c.width, c.height) == (8, 6) for c in children)
    # Frames belong to the group: the folder lists the group only.
    assert [i.uuid for i in folder.list_items()] == [group.uuid]


def test_create_image_group_without_title_gets_a_generated_one(folder: StorageFolder, media_dir: Path) -> None:
    """The SDK documents the title of create_image_group as optional ("randomly generated" if unspecified)."""
    group_uuid = folder.create_image_group([media_dir / "red.png", media_dir / "blue.png"])

    (item,) = folder.list_items()
    assert item.uuid == group_uuid
    assert item.item_type == StorageItemType.IMAGE_GROUP
    assert item.name.startswith("image-group-")


def test_create_image_sequence(client: EncordUserClient, folder: StorageFolder, media_dir: Path) -> None:
    files = [media_dir / "red.png", media_dir / "blue.png", media_dir / "green.jpg"]
    sequence = client.get_storage_item(folder.create_image_sequence(files, title="timelapse"))

    assert sequence.item_type == StorageItemType.IMAGE_SEQUENCE
    assert sequence.frame_count == 3
    assert (sequence.width, sequence.height) == (8, 6)
    assert [c.name for c in sequence.get_child_items()] == ["red.png", "blue.png", "green.jpg"]


def test_image_sequence_of_mixed_sizes_is_refused(folder: StorageFolder, media_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(samples.png(width=16, height=12))

    with pytest.raises(EncordException, match="mixes frame sizes"):
        folder.create_image_sequence([media_dir / "red.png", big], title="mixed")
    assert list(folder.list_items()) == []


def test_create_dicom_series_has_ordered_slices_and_uids(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    files = [media_dir / name for name in DICOM_SLICES]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    series = client.get_storage_item(folder.create_dicom_series(files, title="ct-1"))

    assert series.item_type == StorageItemType.DICOM_SERIES
    assert series.name == "ct-1"
    assert series.frame_count == 3
    assert series.dicom_study_uid == str(headers[0].StudyInstanceUID)
    assert series.dicom_series_uid == str(headers[0].SeriesInstanceUID)
    assert series.mime_type == "application/dicom"
    slices = list(series.get_child_items())
    assert [s.name for s in slices] == ["slice-1.dcm", "slice-2.dcm", "slice-3.dcm"]
    assert all(s.item_type == StorageItemType.DICOM_FILE for s in slices)
    assert [s.dicom_instance_uid for s in slices] == [str(h.SOPInstanceUID) for h in headers]
    assert {s.dicom_series_uid for s in slices} == {series.dicom_series_uid}
    assert {s.dicom_study_uid for s in slices} == {series.dicom_study_uid}
    assert all((s.width, s.height) == (4, 4) for s in slices)
    # Each slice knows it is a frame of the series.
    summary = slices[1].get_summary()
    assert summary.frame_in_groups == 1
    assert [g.uuid for g in summary.accessible_group_items] == [series.uuid]


def test_dicom_slice_missing_a_required_tag_fails_the_series(
    folder: StorageFolder, media_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "no-patient.dcm"
    broken.write_bytes(samples.dicom(omit=("PatientID",)))

    with pytest.raises(EncordException, match=r"no-patient\.dcm: DICOM file is missing required tags: PatientID"):
        folder.create_dicom_series([media_dir / DICOM_SLICES[0], broken], title="broken")
    assert list(folder.list_items()) == []


def test_corrupt_png_upload_raises_and_leaves_no_item(folder: StorageFolder, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(samples.png()[:40])  # a real PNG header, truncated before the pixel data

    with pytest.raises(EncordException, match=r"corrupt\.png: not a readable image"):
        folder.upload_image(corrupt)
    assert list(folder.list_items()) == []


def test_wrong_media_type_is_refused(folder: StorageFolder, media_dir: Path) -> None:
    """An MP4 passed to upload_image is decoded as an image, so it is rejected rather than stored."""
    with pytest.raises(EncordException, match=r"clip\.mp4: not a readable image"):
        folder.upload_image(media_dir / "clip.mp4")
    with pytest.raises(EncordException, match=r"report\.pdf: not a readable audio"):
        folder.upload_audio(media_dir / "report.pdf")
    assert list(folder.list_items()) == []
