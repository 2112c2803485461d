"""Refusing files that cannot be what their name says, from their first bytes; real files of every format pass."""

from __future__ import annotations

import io

import av
import pytest
from encord_sandbox import samples
from PIL import Image

from prefect_encord.planning.signatures import HEAD_BYTES, refusal


def _pillow(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format=fmt)
    return buffer.getvalue()


def _audio(fmt: str, codec: str) -> bytes:
    """Half a second of silence in ``fmt``, encoded by PyAV (the sandbox's decoder)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=44100)
        frame = av.AudioFrame(format="s16", layout="mono", samples=22050)
        frame.planes[0].update(bytes(44100))
        frame.sample_rate = 44100
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return buffer.getvalue()


def _video(fmt: str) -> bytes:
    """Three frames in the container ``fmt``, encoded by PyAV with the MPEG-4 part 2 codec every container takes."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for shade in (0, 100, 200):
            container.mux(stream.encode(av.VideoFrame.from_image(Image.new("RGB", (16, 16), (shade, 0, 0)))))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _real_files() -> dict[str, bytes]:
    return {
        "a.png": samples.png(),
        "a.jpg": samples.jpeg(),
        "a.gif": _pillow("GIF"),
        "a.webp": _pillow("WEBP"),
        "a.bmp": _pillow("BMP"),
        "a.tiff": _pillow("TIFF"),
        "named-wrongly.png": samples.jpeg(),  # still an image: Encord decodes it as one
        "a.mp4": samples.mp4(),
        "a.mkv": _video("matroska"),
        "a.avi": _video("avi"),
        "a.mov": _video("mov"),
        "a.wav": samples.wav(),
        "a.flac": _audio("flac", "flac"),
        "a.mp3": _audio("mp3", "mp3"),
        "a.m4a": _audio("ipod", "aac"),
        "a.pdf": samples.pdf(),
        "a.txt": samples.text(),
        "a.dcm": samples.dicom(),
    }


def test_a_real_file_of_each_format_passes() -> None:
    files = _real_files()
    assert {name: refusal(name, data[:HEAD_BYTES]) for name, data in files.items()} == dict.fromkeys(files)


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("broken.png", b"not an image at all", "image"),
        ("clip.mp4", samples.png(), "video"),  # an image is no video
        ("tone.wav", samples.pdf(), "audio"),
        ("paper.pdf", b"<html>not a pdf</html>", "PDF"),
        ("scan.dcm", b"not dicom", "DICOM"),
    ],
)
def test_bytes_of_no_format_of_the_kind_are_refused_naming_the_file(name: str, data: bytes, kind: str) -> None:
    message = refusal(name, data[:HEAD_BYTES])
    assert message is not None and message.startswith("not a ") and kind in message
    assert repr(data[:12]) in message


def test_an_empty_file_is_refused_whatever_its_kind() -> None:
    assert refusal("notes.txt", b"") == "file is empty"
    assert refusal("a.png", b"") == "file is empty"
