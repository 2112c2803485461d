"""Tell from a file's first bytes that it cannot be the media its name says (pure), before it is uploaded.

Encord decodes every file it stores and fails the unit of one it cannot read, but its unit errors carry a
message and no code, so a client cannot tell a corrupt file from a passing fault and would retry it. The
content digest of a local file is computed anyway, from bytes that are read once; checking their start
against the magic numbers of the file's kind costs nothing more and refuses, before anything is written, a
file that no retry can fix.

The check is deliberately loose: any format of the kind passes (a JPEG named ``.png`` is still an image, and
Encord decodes it as one), and text, which has no signature, is not checked. What passes may still fail
in Encord (a truncated image); what is refused cannot succeed.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect_encord.planning.specs import DataKind, data_kind

HEAD_BYTES = 1024
"""How many leading bytes the check needs: a PDF's ``%PDF-`` may sit anywhere in the first kilobyte."""

_Test = Callable[[bytes], bool]


def _at(offset: int, magic: bytes) -> _Test:
    return lambda head: head[offset : offset + len(magic)] == magic


def _riff(form: bytes) -> _Test:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _frame_sync(head: bytes) -> bool:
    """An MPEG audio or ADTS (AAC) frame header: eleven set bits."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


_ISO_MEDIA = _at(4, b"ftyp")  # MP4, MOV, M4A, AVIF/HEIF
_QUICKTIME_ATOMS = tuple(_at(4, atom) for atom in (b"moov", b"mdat", b"wide", b"free", b"skip"))
_MATROSKA = _at(0, b"\x1a\x45\xdf\xa3")  # MKV, WebM

_SIGNATURES: dict[DataKind, tuple[str, tuple[_Test, ...]]] = {
    "image": (
        "PNG, JPEG, GIF, WebP, BMP or TIFF image",
        (
            _at(0, b"\x89PNG\r\n\x1a\n"),
            _at(0, b"\xff\xd8\xff"),
            _at(0, b"GIF87a"),
            _at(0, b"GIF89a"),
            _riff(b"WEBP"),
            _at(0, b"BM"),
            _at(0, b"II*\x00"),
            _at(0, b"MM\x00*"),
            _ISO_MEDIA,
        ),
    ),
    "video": ("MP4, QuickTime, Matroska/WebM or AVI video", (_ISO_MEDIA, *_QUICKTIME_ATOMS, _MATROSKA, _riff(b"AVI "))),
    "audio": (
        "WAV, MP3, FLAC, Ogg, M4A or AAC audio",
        (_riff(b"WAVE"), _at(0, b"ID3"), _frame_sync, _at(0, b"fLaC"), _at(0, b"OggS"), _ISO_MEDIA, _at(0, b"ADIF")),
    ),
    "pdf": ("PDF", (lambda head: b"%PDF-" in head[:HEAD_BYTES],)),
    # A DICOM file (DICOM PS3.10, section 7.1) opens with a 128-byte preamble and the prefix DICM.
    "dicom": ("DICOM file", (_at(128, b"DICM"),)),
}


def refusal(path: str, head: bytes) -> str | None:
    """Why the file at ``path`` whose first bytes are ``head`` cannot be uploaded, or None if it may be what its
    name says. ``head`` is the whole file when it is shorter than :data:`HEAD_BYTES`. The reason does not repeat
    the path: a report lists it beside the file already."""
    if not head:
        return "file is empty"
    kind = data_kind(path)
    if kind not in _SIGNATURES:
        return None
    what, tests = _SIGNATURES[kind]
    if any(test(head) for test in tests):
        return None
    return f"not a {what} (it starts {head[:12]!r}), so it was not uploaded"
