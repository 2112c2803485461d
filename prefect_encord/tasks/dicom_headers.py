"""Read the headers of DICOM objects in a bucket, only their first bytes, so a registration can group slices into
series without downloading them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.planning.dicom import HEADER_READ_SIZES, DicomHeader, HeaderIncomplete, parse_dicom_header
from prefect_encord.planning.objects import ObjectRecord

#: DICOM headers read at once; reads are small range requests, so latency, not bandwidth, bounds them.
_HEADER_READERS = 16


def read_dicom_headers(
    storage: CloudStorageIntegration, records: Iterable[ObjectRecord]
) -> Mapping[str, DicomHeader | None]:
    """The header of each DICOM object (key -> header, None if unreadable), reading only its first bytes.

    Each object is read as a 64 KiB range first, and whole only if its header is longer. Reads run
    concurrently because each is a small request whose cost is latency.
    """

    def header(record: ObjectRecord) -> DicomHeader | None:
        for size in HEADER_READ_SIZES:
            try:
                data = storage.read_object(record.key, 0, size)
            except FileNotFoundError:
                return None
            try:
                return parse_dicom_header(data, complete=size is None or len(data) < size)
            except HeaderIncomplete:
                continue
        return None

    records = list(records)
    with ThreadPoolExecutor(max_workers=_HEADER_READERS, thread_name_prefix="dicom-header") as pool:
        return dict(zip((r.key for r in records), pool.map(header, records), strict=True))
