"""Probing reads real facts from real media and rejects bad files with errors that name them."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import pytest
from encord_sandbox import samples
from encord_sandbox.jobs.probing import ProbeError, item_type_for_name, probe
from PIL import Image


def test_png_facts() -> None:
    data = samples.png(width=8, height=6)
    facts = probe(data, "red.png", "image")
    assert (facts.item_type, facts.mime_type, facts.file_size) == ("image", "image/png", len(data))
    assert (facts.width, facts.height) == (8, 6)


def test_jpeg_facts() -> None:
    facts = probe(samples.jpeg(width=20, height=10), "photo.jpg", "image")
    assert (facts.mime_type, facts.width, facts.height) == ("image/jpeg", 20, 10)


def test_mp4_facts() -> None:
    facts = probe(samples.mp4(frames=10, fps=5, width=32, height=24), "clip.mp4", "video")
    assert (facts.item_type, facts.mime_type) == ("video", "video/mp4")
    assert (facts.width, facts.height, facts.fps, facts.frame_count) == (32, 24, 5.0, 10)
    assert facts.duration == pytest.approx(2.0)


def _encode_video(container_format: str, codec: str, frames: int = 10, fps: int = 5) -> bytes:
    """A 32x24 video in a container other than MP4, for the metadata those containers lack."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_image(Image.new("RGB", (32, 24)))))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_webm_facts_without_recorded_frame_count_or_stream_duration() -> None:
    data = _encode_video("webm", "libvpx")
    with av.open(io.BytesIO(data)) as container:  # the fallbacks below are what this test is about
        assert (container.streams.video[0].frames, container.streams.video[0].duration) == (0, None)
    facts = probe(data, "clip.webm", "video")
    assert (facts.mime_type, facts.fps, facts.frame_count) == ("video/webm", 5.0, 10)
    assert facts.duration == pytest.approx(2.0)
    assert probe(data, "clip.mkv", "video").mime_type == "video/x-matroska"


def test_quicktime_is_told_from_mp4_by_brand() -> None:
    facts = probe(_encode_video("mov", "mpeg4"), "clip.mp4", "video")
    assert (facts.mime_type, facts.frame_count) == ("video/quicktime", 10)


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_facts(channels: int) -> None:
    facts = probe(samples.wav(seconds=0.5, sample_rate=8000, channels=channels), "tone.wav", "audio")
    assert (facts.item_type, facts.mime_type, facts.audio_codec) == ("audio", "audio/wav", "pcm_s16le")
    assert (facts.audio_sample_rate, facts.audio_num_channels, facts.audio_bit_depth) == (8000, channels, 16)
    assert facts.duration == pytest.approx(0.5)


def test_24_bit_wav_reports_stored_depth_not_decoded_depth() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(3)
        writer.setframerate(8000)
        writer.writeframes(bytes(3 * 800))
    facts = probe(buffer.getvalue(), "deep.wav", "audio")
    assert (facts.audio_bit_depth, facts.audio_codec) == (24, "pcm_s24le")
    assert facts.duration == pytest.approx(0.1)


def test_pdf_facts() -> None:
    facts = probe(samples.pdf(pages=3), "report.pdf", "pdf")
    assert (facts.item_type, facts.mime_type, facts.num_pages) == ("pdf", "application/pdf", 3)


@pytest.mark.parametrize(
    ("name", "mime_type"),
    [
        ("notes.txt", "text/plain"),
        ("README.MD", "text/markdown"),
        ("page.html", "text/html"),
        ("data.json", "application/json"),
        ("table.csv", "text/csv"),
        ("no-extension", "text/plain"),
    ],
)
def test_text_mime_type_follows_extension(name: str, mime_type: str) -> None:
    facts = probe(samples.text("héllo"), name, "plainText")
    assert (facts.item_type, facts.mime_type, facts.file_size) == ("plainText", mime_type, 6)


def test_dicom_facts_carry_the_uids_written() -> None:
    data = samples.dicom(study_uid="1.2.3", series_uid="1.2.3.4", instance_number=7, rows=4, columns=6)
    facts = probe(data, "scan-7.dcm", "dicomFile")
    assert (facts.item_type, facts.mime_type) == ("dicomFile", "application/dicom")
    assert (facts.dicom_study_uid, facts.dicom_series_uid, facts.dicom_instance_number) == (
        "1.2.3",
        "1.2.3.4",
        7,
    )
    assert facts.dicom_instance_uid and facts.dicom_instance_uid not in ("1.2.3", "1.2.3.4")
    assert (facts.width, facts.height) == (6, 4)


def test_dicom_without_instance_number_is_accepted() -> None:
    facts = probe(samples.dicom(omit=("InstanceNumber",)), "scan.dcm", "dicomFile")
    assert facts.dicom_instance_number is None


def test_sample_tree_probes_as_its_extensions_claim(tmp_path: Path) -> None:
    paths = samples.write_sample_tree(tmp_path)
    assert sorted(paths) == [
        "blue.png",
        "clip.mp4",
        "dicom/series-1/slice-1.dcm",
        "dicom/series-1/slice-2.dcm",
        "dicom/series-1/slice-3.dcm",
        "green.jpg",
        "notes.txt",
        "red.png",
        "report.pdf",
        "tone.wav",
    ]
    facts = {}
    for name, path in paths.items():
        assert path == tmp_path / name
        item_type = item_type_for_name(name)
        assert item_type is not None
        facts[name] = probe(path.read_bytes(), name, item_type)
    series = [facts[f"dicom/series-1/slice-{n}.dcm"] for n in (1, 2, 3)]
    assert len({(f.dicom_study_uid, f.dicom_series_uid) for f in series}) == 1
    assert len({f.dicom_instance_uid for f in series}) == 3
    assert [f.dicom_instance_number for f in series] == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "item_type"),
    [
        ("a.png", "image"),
        ("A.JPEG", "image"),
        ("scans/b.tiff", "image"),
        ("c.mov", "video"),
        ("d.MKV", "video"),
        ("e.m4a", "audio"),
        ("f.flac", "audio"),
        ("g.htm", "plainText"),
        ("h.xml", "plainText"),
        ("i.pdf", "pdf"),
        ("j.DCM", "dicomFile"),
        ("k.nii", None),
        ("archive.zip", None),
        ("no-extension", None),
    ],
)
def test_item_type_for_name(name: str, item_type: str | None) -> None:
    assert item_type_for_name(name) == item_type


def _probe_error(data: bytes, name: str, expected_type: str) -> str:
    with pytest.raises(ProbeError) as caught:
        probe(data, name, expected_type)
    return str(caught.value)


def test_corrupt_png_is_rejected() -> None:
    data = bytearray(samples.png(width=64, height=64))
    data[60:80] = b"x" * 20  # inside the IDAT chunk
    message = _probe_error(bytes(data), "broken.png", "image")
    assert message.startswith("broken.png: not a readable image:")


def test_text_claimed_as_video_is_rejected() -> None:
    message = _probe_error(samples.text("not a video"), "clip.mp4", "video")
    assert message == "clip.mp4: not a readable video: Invalid data found when processing input"


def test_audio_claimed_as_video_is_rejected() -> None:
    message = _probe_error(samples.wav(), "tone.wav", "video")
    assert message == "tone.wav: not a readable video: 'wav' is not a supported video container"


@pytest.mark.parametrize("expected_type", ["image", "video", "audio", "plainText", "pdf", "dicomFile"])
def test_empty_file_is_rejected(expected_type: str) -> None:
    message = _probe_error(b"", "empty.bin", expected_type)
    assert message == f"empty.bin: file is empty, expected {expected_type}"


def test_non_utf8_text_is_rejected() -> None:
    message = _probe_error("café".encode("latin-1"), "menu.txt", "plainText")
    assert message.startswith("menu.txt: not a readable plainText: not valid UTF-8 (byte 3:")


def test_dicom_missing_tags_are_all_named() -> None:
    data = samples.dicom(omit=("PatientID", "SOPInstanceUID"))
    message = _probe_error(data, "scan-3.dcm", "dicomFile")
    assert message == "scan-3.dcm: DICOM file is missing required tags: PatientID, SOPInstanceUID"


def test_dicom_missing_geometry_is_rejected() -> None:
    message = _probe_error(samples.dicom(omit=("Rows",)), "scan.dcm", "dicomFile")
    assert message == "scan.dcm: DICOM file is missing required tags: Rows"


def test_non_dicom_bytes_are_rejected() -> None:
    message = _probe_error(samples.png(), "scan.dcm", "dicomFile")
    assert message.startswith("scan.dcm: not a readable dicomFile:")


def test_truncated_pdf_is_rejected() -> None:
    data = samples.pdf(pages=3)
    message = _probe_error(data[: len(data) // 2], "report.pdf", "pdf")
    assert message.startswith("report.pdf: not a readable pdf:")


def test_nifti_is_unsupported() -> None:
    message = _probe_error(b"\x00" * 352, "brain.nii", "nifti")
    assert message == "brain.nii: probing item type 'nifti' is unsupported"


def test_odd_video_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="must be even"):
        samples.mp4(width=31, height=24)
