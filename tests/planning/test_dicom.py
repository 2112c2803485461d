"""Reading SeriesInstanceUID and InstanceNumber from the start of a DICOM file, never a value cut short."""

from __future__ import annotations

import io

import pydicom
import pytest
from encord_sandbox import samples

from prefect_encord.planning.dicom import HEADER_READ_SIZES, DicomHeader, HeaderIncomplete, parse_dicom_header

SERIES = "1.2.826.0.1.3680043.8.498.1"


def dicom_with_padding(padding: int) -> bytes:
    """A valid file whose header carries ``padding`` bytes (a private element) before the series UID."""
    dataset = pydicom.dcmread(io.BytesIO(samples.dicom(series_uid=SERIES, instance_number=7)))
    dataset.add_new(0x00091010, "OB", b"\0" * padding)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_whole_file_gives_series_and_instance_number() -> None:
    data = samples.dicom(series_uid=SERIES, instance_number=3)
    assert parse_dicom_header(data, complete=True) == DicomHeader(SERIES, 3)


def test_any_prefix_either_parses_exactly_or_asks_for_more() -> None:
    data = samples.dicom(series_uid=SERIES, instance_number=3)
    outcomes = set()
    for cut in range(0, len(data)):
        try:
            header = parse_dicom_header(data[:cut], complete=False)
        except HeaderIncomplete:
            outcomes.add("more")
        else:
            assert header == DicomHeader(SERIES, 3), f"a {cut}-byte prefix gave {header}"
            outcomes.add("parsed")
    assert outcomes == {"more", "parsed"}


def test_header_longer_than_the_first_range_needs_the_whole_file() -> None:
    first = HEADER_READ_SIZES[0]
    assert first is not None
    data = dicom_with_padding(first + 1000)
    with pytest.raises(HeaderIncomplete):
        parse_dicom_header(data[:first], complete=False)
    assert parse_dicom_header(data, complete=True) == DicomHeader(SERIES, 7)


def test_not_dicom_or_no_series_uid_is_none() -> None:
    assert parse_dicom_header(b"this is a text file, not DICOM" * 20, complete=True) is None
    assert parse_dicom_header(samples.dicom(omit=["SeriesInstanceUID"]), complete=True) is None
    assert parse_dicom_header(b"", complete=True) is None


def test_missing_instance_number_is_none() -> None:
    data = samples.dicom(series_uid=SERIES, omit=["InstanceNumber"])
    assert parse_dicom_header(data, complete=True) == DicomHeader(SERIES, None)
