"""Read the facts Encord stores about a media file from its real bytes.

The sandbox fills storage items (dimensions, fps, duration, page counts, DICOM UIDs) the way Encord does: by
decoding the media. Probing uses the field libraries (Pillow, PyAV, pypdf, pydicom) rather than header
parsing, so a file that cannot be decoded is rejected at registration, as it would be by Encord. Every
error names the file, because registrations arrive in batches and users must know which file to fix.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import PurePosixPath
from typing import TypeVar

import av
import pydicom
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition, Stream
from av.video.stream import VideoStream
from PIL import Image, UnidentifiedImageError
from pydicom.errors import BytesLengthException, InvalidDicomError
from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError


@dataclass(frozen=True)
class MediaFacts:
    """What the sandbox learned from a file's bytes; fields that do not apply to its type are None."""

    item_type: str
    mime_type: str
    file_size: int
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    frame_count: int | None = None
    num_pages: int | None = None
    audio_sample_rate: int | None = None
    audio_bit_depth: int | None = None
    audio_num_channels: int | None = None
    audio_codec: str | None = None
    dicom_study_uid: str | None = None
    dicom_series_uid: str | None = None
    dicom_instance_uid: str | None = None
    dicom_instance_number: int | None = None


class ProbeError(ValueError):
    """The bytes are not readable as the claimed item type; the message starts with the file name."""


_EXTENSION_ITEM_TYPES = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"), "image"),
    **dict.fromkeys((".mp4", ".mov", ".webm", ".avi", ".mkv"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"), "audio"),
    **dict.fromkeys((".txt", ".md", ".html", ".htm", ".json", ".csv", ".xml"), "plainText"),
    ".pdf": "pdf",
    ".dcm": "dicomFile",
}

# Pillow format -> MIME, limited to the image formats Encord accepts so that exotic formats Pillow can
# sniff (e.g. XBM, which plain text can resemble) are not mistaken for images.
_IMAGE_MIME_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG written by many cameras
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)

# FFmpeg demuxer name -> MIME. Demuxers not listed (e.g. png_pipe, which opens images) are refused.
_MP4_FAMILY = "mov,mp4,m4a,3gp,3g2,mj2"
_VIDEO_MIME_TYPES = {
    _MP4_FAMILY: "video/mp4",
    "matroska,webm": "video/webm",
    "avi": "video/x-msvideo",
    "mpegts": "video/mp2t",
    "mpeg": "video/mpeg",
    "ogg": "video/ogg",
    "flv": "video/x-flv",
}
_AUDIO_MIME_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    _MP4_FAMILY: "audio/mp4",
    "matroska,webm": "audio/webm",
}
_AV_ERRORS = (av.FFmpegError, OSError, ValueError)
_PCM_CODEC = re.compile(r"pcm_[suf](\d+)")

_TEXT_MIME_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".csv": "text/csv",
    ".xml": "application/xml",
}

# pypdf reports damage through its own hierarchy but lets lower-level errors escape on some inputs.
_PDF_ERRORS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError)

_DICOM_REQUIRED_TAGS = (
    "Rows",
    "Columns",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientID",
)
# pydicom signals damaged element encodings through several unrelated exception types.
_DICOM_ERRORS = (
    InvalidDicomError,
    BytesLengthException,
    NotImplementedError,  # unknown value representation
    struct.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    TypeError,
)

_StreamT = TypeVar("_StreamT", bound=Stream)


def item_type_for_name(name: str) -> str | None:
    """Guess the Encord item type from the file extension, for registrations that do not state one."""
    return _EXTENSION_ITEM_TYPES.get(PurePosixPath(name).suffix.lower())


def probe(data: bytes, name: str, expected_type: str) -> MediaFacts:
    """Decode `data` as the Encord item type `expected_type` and return its facts.

    Raises ProbeError naming `name` if the bytes are empty, not of that type, or damaged.
    """
    prober = _PROBERS.get(expected_type)
    if prober is None:
        raise ProbeError(f"{name}: probing item type {expected_type!r} is unsupported")
    if not data:
        raise ProbeError(f"{name}: file is empty, expected {expected_type}")
    return prober(data, name)


@contextmanager
def _reading(name: str, item_type: str, errors: tuple[type[Exception], ...]) -> Iterator[None]:
    """Turn a library's failure to parse the bytes into a ProbeError that names the file."""
    try:
        yield
    except ProbeError:
        raise
    except errors as exc:
        raise ProbeError(f"{name}: not a readable {item_type}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    """A library error as a short reason, without the object reprs and errno prefixes some messages carry."""
    if isinstance(exc, UnidentifiedImageError):
        return "unrecognised image format"
    if isinstance(exc, av.FFmpegError):
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


def _probe_image(data: bytes, name: str) -> MediaFacts:
    """Fully decode the image so truncated or corrupt pixel data is caught, not just a valid header."""
    with _reading(name, "image", _IMAGE_ERRORS), Image.open(io.BytesIO(data)) as image:
        mime_type = _IMAGE_MIME_TYPES.get(image.format or "")
        if mime_type is None:
            raise ProbeError(f"{name}: not a readable image: {image.format} is not a supported image format")
        image.load()
        width, height = image.size
    return MediaFacts("image", mime_type, len(data), width=width, height=height)


def _probe_video(data: bytes, name: str) -> MediaFacts:
    """Read geometry, rate and length from the first video stream and check that it decodes."""
    with _reading(name, "video", _AV_ERRORS), av.open(io.BytesIO(data)) as container:
        mime_type = _video_mime_type(container, name)
        stream = _media_stream(container.streams.video, "video", name)
        packets = _count_packets_and_decode(container, stream, name)
        rate = stream.average_rate or stream.guessed_rate
        frame_count = stream.frames or packets
        duration = _duration_seconds(container, stream)
        if duration is None and rate:
            duration = frame_count / float(rate)
        codec_context = stream.codec_context
        return MediaFacts(
            "video",
            mime_type,
            len(data),
            width=codec_context.width,
            height=codec_context.height,
            fps=float(rate) if rate else None,
            duration=duration,
            frame_count=frame_count,
        )


def _video_mime_type(container: InputContainer, name: str) -> str:
    """Map the demuxer to a MIME type, telling QuickTime from MP4 by brand and WebM from MKV by name."""
    demuxer = container.format.name
    mime_type = _VIDEO_MIME_TYPES.get(demuxer)
    if mime_type is None:
        raise ProbeError(f"{name}: not a readable video: {demuxer!r} is not a supported video container")
    if demuxer == _MP4_FAMILY and container.metadata.get("major_brand", "").strip() == "qt":
        return "video/quicktime"
    if demuxer == "matroska,webm" and PurePosixPath(name).suffix.lower() != ".webm":
        return "video/x-matroska"
    return mime_type


def _probe_audio(data: bytes, name: str) -> MediaFacts:
    """Read the first audio stream's format and check that it decodes; files with real video are refused."""
    with _reading(name, "audio", _AV_ERRORS), av.open(io.BytesIO(data)) as container:
        mime_type = _AUDIO_MIME_TYPES.get(container.format.name)
        if mime_type is None:
            raise ProbeError(
                f"{name}: not a readable audio: {container.format.name!r} is not a supported audio container"
            )
        if _content_streams(container.streams.video):
            raise ProbeError(f"{name}: not a readable audio: the file contains video; register it as video")
        stream = _media_stream(container.streams.audio, "audio", name)
        _count_packets_and_decode(container, stream, name)
        codec_context = stream.codec_context
        codec = codec_context.codec.canonical_name  # "mp3", not the decoder's name "mp3float"
        return MediaFacts(
            "audio",
            mime_type,
            len(data),
            duration=_duration_seconds(container, stream),
            audio_sample_rate=codec_context.sample_rate,
            audio_bit_depth=_pcm_bit_depth(codec),
            audio_num_channels=codec_context.channels,
            audio_codec=codec,
        )


def _pcm_bit_depth(codec_name: str) -> int | None:
    """Bit depth of PCM audio from its codec name (pcm_s24le -> 24).

    FFmpeg decodes 24-bit PCM into 32-bit samples, so the decoded sample format would overstate the depth;
    compressed codecs have no fixed bit depth at all.
    """
    match = _PCM_CODEC.match(codec_name)
    return int(match.group(1)) if match else None


def _content_streams(streams: Sequence[_StreamT]) -> list[_StreamT]:
    """The streams that are media, not the cover art audio files carry as a one-picture video stream."""
    return [stream for stream in streams if not stream.disposition & Disposition.attached_pic]


def _media_stream(streams: Sequence[_StreamT], kind: str, name: str) -> _StreamT:
    """The first content stream of `kind`; a file without one is not that kind of media."""
    streams = _content_streams(streams)
    if not streams:
        raise ProbeError(f"{name}: not a readable {kind}: the file has no {kind} stream")
    return streams[0]


def _count_packets_and_decode(container: InputContainer, stream: VideoStream | AudioStream, name: str) -> int:
    """Count the stream's packets in one demux pass, decoding only until the first frame appears.

    Demuxing alone would accept a stream whose codec data is garbage; decoding everything would be slow
    for long files. One packet carries one video frame, so the count stands in for a frame count when the
    container does not record one.
    """
    packets = 0
    decoded = False
    for packet in container.demux(stream):
        if packet.size == 0:  # end-of-stream marker, not media
            continue
        packets += 1
        if not decoded:
            decoded = bool(packet.decode())
    if not decoded:
        decoded = bool(stream.decode(None))
    if not decoded:
        raise ProbeError(f"{name}: not a readable {stream.type}: no {stream.type} frame could be decoded")
    return packets


def _duration_seconds(container: InputContainer, stream: Stream) -> float | None:
    """Stream duration when recorded, else the container's (WebM records only the latter)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(Fraction(container.duration, av.time_base))
    return None


def _probe_pdf(data: bytes, name: str) -> MediaFacts:
    """Count pages with pypdf, which parses the cross-reference table and fails on truncated files."""
    with _reading(name, "pdf", _PDF_ERRORS):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ProbeError(f"{name}: not a readable pdf: the PDF is password-protected")
        num_pages = len(reader.pages)
    return MediaFacts("pdf", "application/pdf", len(data), num_pages=num_pages)


def _probe_text(data: bytes, name: str) -> MediaFacts:
    """Accept only UTF-8, the encoding Encord's text editor renders; the MIME type follows the extension."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProbeError(f"{name}: not a readable plainText: not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    mime_type = _TEXT_MIME_TYPES.get(PurePosixPath(name).suffix.lower(), "text/plain")
    return MediaFacts("plainText", mime_type, len(data))


def _probe_dicom(data: bytes, name: str) -> MediaFacts:
    """Read the header tags Encord groups DICOM by; pixel data is skipped, but image geometry is required."""
    with _reading(name, "dicomFile", _DICOM_ERRORS):
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        missing = sorted(tag for tag in _DICOM_REQUIRED_TAGS if dataset.get(tag) in (None, ""))
        if missing:
            raise ProbeError(f"{name}: DICOM file is missing required tags: {', '.join(missing)}")
        instance_number = dataset.get("InstanceNumber")
        return MediaFacts(
            "dicomFile",
            "application/dicom",
            len(data),
            width=int(dataset.Columns),
            height=int(dataset.Rows),
            dicom_study_uid=str(dataset.StudyInstanceUID),
            dicom_series_uid=str(dataset.SeriesInstanceUID),
            dicom_instance_uid=str(dataset.SOPInstanceUID),
            dicom_instance_number=None if instance_number in (None, "") else int(instance_number),
        )


_PROBERS: dict[str, Callable[[bytes, str], MediaFacts]] = {
    "image": _probe_image,
    "video": _probe_video,
    "audio": _probe_audio,
    "plainText": _probe_text,
    "pdf": _probe_pdf,
    "dicomFile": _probe_dicom,
}
