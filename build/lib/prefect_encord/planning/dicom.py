"""Read the two DICOM header fields that decide series membership and order, from bytes (pure).

Grouping DICOM files by ``SeriesInstanceUID`` needs only the header, which sits before the pixel data and
is usually a few kilobytes, so the shell reads a byte range of each object rather than the whole scan.
A range may end inside the header; parsing must then say so instead of returning a value cut short
(pydicom reads a truncated element silently, which would turn ``1.2.840.1234`` into ``1.2.8`` and split a
series). :class:`HeaderIncomplete` is that signal: the caller reads more and tries again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError

#: Byte ranges the shell tries in turn: almost every header fits the first; ``None`` means the whole object.
HEADER_READ_SIZES: tuple[int | None, ...] = (64 * 1024, None)

# pydicom reports damaged encodings through several unrelated exception types.
_PARSE_ERRORS = (InvalidDicomError, NotImplementedError, ValueError, KeyError, TypeError, EOFError, OSError)


class HeaderIncomplete(Exception):
    """The bytes given end inside the DICOM header; read a longer range of the object."""


@dataclass(frozen=True)
class DicomHeader:
    """Series membership (``SeriesInstanceUID``) and position (``InstanceNumber``, if present) of one file."""

    series_uid: str
    instance_number: int | None = None


class _EndIsNotEOF(io.BytesIO):
    """A buffer holding only the start of an object: reading past its end means "need more", not end of file."""

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and len(data) < size:
            raise HeaderIncomplete
        return data


def parse_dicom_header(data: bytes, *, complete: bool) -> DicomHeader | None:
    """The series UID and instance number in ``data``; None if it is not DICOM or has no SeriesInstanceUID.

    ``complete`` says whether ``data`` is the whole object. When it is not, running out of bytes before
    the pixel data raises :class:`HeaderIncomplete` rather than trusting a value that may be cut short.
    """
    buffer = io.BytesIO(data) if complete else _EndIsNotEOF(data)
    try:
        dataset = pydicom.dcmread(
            buffer, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "InstanceNumber"]
        )
    except HeaderIncomplete:
        raise
    except _PARSE_ERRORS:
        return None
    series_uid = str(dataset.get("SeriesInstanceUID", "") or "").strip()
    if not series_uid:
        return None
    return DicomHeader(series_uid=series_uid, instance_number=_instance_number(dataset.get("InstanceNumber")))


def _instance_number(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
