"""What a bucket listing yields, and which listed objects a run takes (pure).

Every cloud integration block lists its bucket as a stream of :class:`ObjectRecord`; planning turns those
records into registration entries and never needs to know which cloud they came from. Objects that cannot
be registered are not dropped silently: they become :class:`Skipped` records carrying the reason, so a
run's report accounts for every object it saw.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class ObjectRecord:
    """One object of a bucket or container.

    ``key`` is the full object key (bucket-relative, never including the bucket); ``url`` is the same
    object in the form the Encord integration expects, which is what registration sends. ``etag`` is the
    provider's entity tag without quotes (for single-part uploads, the MD5 of the content on S3).
    ``last_modified`` is timezone-aware (UTC) whenever the provider reports it.
    """

    key: str
    url: str
    size: int | None = None
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Skipped:
    """An object (or a group of objects, named by its directory URL) that will not be registered, and why."""

    url: str
    reason: str


def folder_prefix(prefix: str) -> str:
    """A prefix as a folder: ``"cams"``, ``"/cams/"`` and ``"cams/"`` all become ``"cams/"``; blank stays ``""``.

    Treating the prefix as a folder means ``cams`` never also selects ``cams-old/…``, the surprise a raw
    key prefix gives.
    """
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


#: The directory ``prefect-encord check-notifications`` writes its probe objects into (under the block's prefix):
#: never listed for ingest, and the relay announces their notifications as probes, never as changes to ingest.
PROBE_DIRECTORY = ".prefect-encord-probe"


def is_probe(key: str) -> bool:
    """Whether ``key`` is a notification probe's object (in a :data:`PROBE_DIRECTORY` at any depth)."""
    return PROBE_DIRECTORY in key.split("/")[:-1]


def is_selected(
    relative_key: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> bool:
    """Whether a key (relative to the block's prefix) passes the include and exclude glob patterns.

    Patterns use ``fnmatch`` case-sensitively, as object keys are case-sensitive; ``*`` also crosses
    ``/``, so ``*.png`` selects PNGs at any depth. No include pattern means everything is included;
    an exclude pattern always wins. A notification probe's object is never selected.
    """
    if is_probe(relative_key):
        return False
    if include and not any(fnmatch.fnmatchcase(relative_key, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(relative_key, pattern) for pattern in exclude)


def is_modified_since(last_modified: datetime | None, watermark: datetime | None) -> bool:
    """Whether an object passes a ``modified_since`` watermark (inclusive; naive datetimes are taken as UTC).

    Inclusive, so that an object written in the same instant as the previous run's newest one is not
    missed; registering it again is harmless because registration skips duplicate URLs. An object whose
    provider reports no modification time is always kept: dropping it could lose data.
    """
    if watermark is None or last_modified is None:
        return True
    return as_utc(last_modified) >= as_utc(watermark)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is assumed to already be in UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def key_directories(keys: Sequence[str], base: str) -> list[str]:
    """The directories (relative to ``base``, each ending in ``/``; ``""`` for ``base`` itself) to list so that
    every unit holding one of ``keys`` is seen whole: an image group or DICOM series is a whole directory.

    Keys outside ``base`` are not the block's and are left out. A directory inside another one listed is left
    out too: listing the outer one lists it.
    """
    wanted = sorted({key[len(base) :].rpartition("/")[0] + "/" for key in keys if key.startswith(base)})
    kept: list[str] = []
    for directory in ("" if d == "/" else d for d in wanted):
        if not any(directory.startswith(outer) for outer in kept):
            kept.append(directory)
    return kept
