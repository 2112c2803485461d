"""Tiny, real media files for testing flows offline.

The sandbox probes registered media with the same libraries a real pipeline would use, so sample data has
to be genuine: every generator here produces bytes that Pillow, PyAV, pypdf or pydicom decode for real.
Users exercise their flows against these samples without cloud storage; our tests and examples use them
too. Each file is a few hundred bytes to a few kilobytes.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Iterable
from pathlib import Path

import av
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pypdf import PdfWriter

RGB = tuple[int, int, int]

# H.264 is what browsers (and Encord's editor) play; MPEG-4 Part 2 is the fallback for PyAV builds
# whose bundled ffmpeg lacks libx264.
_VIDEO_CODECS = ("libx264", "mpeg4")
_TONE_HZ = 440.0
_PDF_PAGE_SIZE = (612, 792)  # US Letter in points


def _pillow_bytes(width: int, height: int, color: RGB, fmt: str) -> bytes:
    """Encode a solid-colour RGB image, the smallest input every image decoder accepts."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def png(width: int = 8, height: int = 6, color: RGB = (255, 0, 0)) -> bytes:
    """A solid-colour PNG, so tests can assert exact dimensions from a lossless format."""
    return _pillow_bytes(width, height, color, "PNG")


def jpeg(width: int = 8, height: int = 6, color: RGB = (255, 0, 0)) -> bytes:
    """A solid-colour JPEG, the most common lossy format users register."""
    return _pillow_bytes(width, height, color, "JPEG")


def _video_codec() -> str:
    """Pick the first preferred encoder this PyAV build ships, since bundled codecs vary by wheel."""
    for codec in _VIDEO_CODECS:
        if codec in av.codecs_available:
            return codec
    raise RuntimeError(f"PyAV has none of the video encoders {', '.join(_VIDEO_CODECS)}")


def mp4(frames: int = 10, fps: int = 5, width: int = 32, height: int = 24) -> bytes:
    """An MP4 of `frames` frames at `fps`, so its duration is exactly frames / fps seconds.

    Frames fade from black to red so the stream is not a single repeated picture. yuv420p halves the
    chroma resolution, so both dimensions must be even.
    """
    if width % 2 or height % 2:
        raise ValueError(f"mp4 dimensions must be even for yuv420p, got {width}x{height}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(_video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            shade = 255 * index // max(frames - 1, 1)
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (shade, 0, 0)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def wav(seconds: float = 0.5, sample_rate: int = 8000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of a 440 Hz tone, written with the stdlib so it needs no encoder."""
    frame_count = round(seconds * sample_rate)
    samples = (int(12000 * math.sin(2 * math.pi * _TONE_HZ * i / sample_rate)) for i in range(frame_count))
    pcm = b"".join(struct.pack("<h", sample) * channels for sample in samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def pdf(pages: int = 2) -> bytes:
    """A PDF of `pages` blank Letter pages, enough for page-count checks."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(*_PDF_PAGE_SIZE)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def text(content: str = "hello") -> bytes:
    """UTF-8 text, the only encoding the sandbox accepts for plainText items."""
    return content.encode("utf-8")


def dicom(
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    patient_id: str = "ANON",
    rows: int = 4,
    columns: int = 4,
    omit: Iterable[str] = (),
) -> bytes:
    """A Part 10 DICOM secondary-capture image with an 8-bit greyscale ramp as pixel data.

    Pass the same `study_uid`/`series_uid` to several calls to build a series. `omit` names dataset
    keywords (e.g. "PatientID") to delete before saving, so tests can produce invalid files; an unknown
    keyword raises AttributeError rather than silently producing a valid file.
    """
    instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = instance_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.InstanceNumber = instance_number
    ds.PatientID = patient_id
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(i % 256 for i in range(rows * columns))
    for keyword in omit:
        delattr(ds, keyword)

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_sample_tree(root: Path) -> dict[str, Path]:
    """Write one small file of every supported kind under `root`, plus a three-slice DICOM series.

    Keys are the POSIX paths relative to `root`, so callers can refer to files by stable names.
    """
    study_uid, series_uid = generate_uid(), generate_uid()
    contents = {
        "red.png": png(color=(255, 0, 0)),
        "blue.png": png(color=(0, 0, 255)),
        "green.jpg": jpeg(color=(0, 255, 0)),
        "clip.mp4": mp4(),
        "tone.wav": wav(),
        "report.pdf": pdf(),
        "notes.txt": text("Sample notes for the Encord sandbox.\n"),
    }
    for number in (1, 2, 3):
        contents[f"dicom/series-1/slice-{number}.dcm"] = dicom(study_uid, series_uid, instance_number=number)

    paths: dict[str, Path] = {}
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[name] = path
    return paths
