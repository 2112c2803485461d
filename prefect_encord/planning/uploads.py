"""Plan a local-directory upload (pure): which files form which Encord items, and which requests carry them.

A local upload goes through three calls per batch, not per file: reserve upload slots (signed URLs, up to
1,000 per item type and request), PUT the bytes, then register every uploaded unit in one data-upload job
(``DataUploadItems`` with ``placeholderItemUuid``s). This module decides everything that needs no I/O:
what each file is, how files combine into image groups, image sequences and DICOM series, the identity
that makes re-runs create nothing new, the slot requests, the job bodies, and how a finished job's answer
maps back to the files.

**Identity.** A unit is its path relative to the directory plus the SHA-256 of its content: for a single
file the hex digest of its bytes (what ``sha256sum`` prints); for an image group, image sequence or DICOM
series the digest of its kind and its frames' digests in order. Both go into the item's client metadata;
:mod:`prefect_encord.planning.identity` decides, from them, which units a folder already holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from uuid import UUID

from encord.orm.dataset import LongPollingStatus
from encord.orm.storage import (
    DataUploadAudio,
    DataUploadDicomSeries,
    DataUploadDicomSeriesDicomFile,
    DataUploadImage,
    DataUploadImageGroup,
    DataUploadImageGroupImage,
    DataUploadItems,
    DataUploadPDF,
    DataUploadText,
    DataUploadVideo,
    UploadLongPollingState,
    UploadSignedUrl,
)

from prefect_encord.limits import MAX_SEQUENCE_FRAMES, MAX_UPLOAD_SLOTS
from prefect_encord.planning.identity_keys import identity_metadata
from prefect_encord.planning.ids import is_utf8, printable
from prefect_encord.planning.ordering import natural_key
from prefect_encord.planning.specs import DataKind, data_kind

SlotType = Literal["image", "video", "audio", "plainText", "pdf", "dicomFile"]
UnitKind = Literal["image", "video", "audio", "plainText", "pdf", "imageGroup", "imageSequence", "dicomSeries"]

# What Encord takes (``specs.data_kind``, shared with cloud registration) → the upload slot it needs.
_SLOT_TYPES: dict[DataKind, SlotType] = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "text": "plainText",
    "pdf": "pdf",
    "dicom": "dicomFile",
}
# The Content-Types the SDK's own upload helpers send (StorageFolder._get_content_type): the guessed type for
# images and text (text must be text/*, JSON or XML), fixed ones for the rest.
_FIXED_CONTENT_TYPES: dict[SlotType, str] = {
    "video": "application/octet-stream",
    "audio": "application/octet-stream",
    "pdf": "application/pdf",
    "dicomFile": "application/dicom",
}
_TEXT_TYPES = ("text/", "application/json", "application/xml")
_COMPOSITE_KINDS = ("imageGroup", "imageSequence", "dicomSeries")
# Single-file unit kind → the DataUploadItems entry model and the list it goes in.
_SINGLE_ENTRIES: dict[
    str, tuple[type[DataUploadImage | DataUploadVideo | DataUploadAudio | DataUploadText | DataUploadPDF], str]
] = {
    "image": (DataUploadImage, "images"),
    "video": (DataUploadVideo, "videos"),
    "audio": (DataUploadAudio, "audio"),
    "plainText": (DataUploadText, "text"),
    "pdf": (DataUploadPDF, "pdf"),
}


def media_type(path: str) -> tuple[SlotType, str] | None:
    """The upload slot type and PUT Content-Type of a file, from its extension; None if Encord takes no such file."""
    kind = data_kind(path)
    if kind is None:
        return None
    slot = _SLOT_TYPES[kind]
    guessed = mimetypes.guess_type(path)[0]
    if slot == "image":
        return slot, guessed or "application/octet-stream"
    if slot == "plainText":
        return slot, guessed if guessed and guessed.startswith(_TEXT_TYPES) else "text/plain"
    return slot, _FIXED_CONTENT_TYPES[slot]


def is_candidate(path: str, exclude: Sequence[str] = ()) -> bool:
    """Whether a relative path takes part in the upload at all.

    Hidden files and directories (``.DS_Store``, ``.git/…``) never do; nor does anything matching an
    ``exclude`` pattern (``fnmatch`` on the relative POSIX path, where ``*`` also crosses ``/``).
    Files that pass but have no known media type are reported as failures rather than silently dropped.
    """
    if any(part.startswith(".") for part in PurePosixPath(path).parts):
        return False
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in exclude)


@dataclass(frozen=True)
class UploadUnit:
    """One Encord item to create: a single file, or the ordered frames of a composite item.

    ``key`` names the unit in results: the file's relative path, or the directory's for a composite
    (``"."`` for the root itself). ``files`` are relative POSIX paths; a single file has exactly one.
    ``slot_type`` is the upload slot each of its files needs (frames of image groups are images).
    """

    key: str
    kind: UnitKind
    title: str
    files: tuple[str, ...]
    slot_type: SlotType

    @property
    def is_composite(self) -> bool:
        return self.kind in _COMPOSITE_KINDS


@dataclass(frozen=True)
class UploadPlan:
    """The units to create and the paths that cannot become one (path or directory → reason)."""

    units: tuple[UploadUnit, ...]
    rejected: dict[str, str]


def plan_units(
    paths: Iterable[str],
    root_name: str,
    image_groups: Sequence[str] = (),
    image_sequences: Sequence[str] = (),
) -> UploadPlan:
    """Turn candidate relative paths into units.

    Every ``.dcm`` file in a directory joins that directory's DICOM series. The images directly inside a
    directory whose relative path matches an ``image_groups`` (or ``image_sequences``) pattern become one
    image group (or sequence); ``"."`` matches the root itself. Frames are in natural file-name order.
    Everything else is one unit per file. A composite is titled by its directory (the root's own name for
    ``"."``), so titles of composites are unique and a finished job's items can be matched back to them.
    """
    singles: list[UploadUnit] = []
    frames: dict[tuple[str, UnitKind, SlotType], list[str]] = defaultdict(list)
    rejected: dict[str, str] = {}
    for path in sorted(paths, key=natural_key):
        if not is_utf8(path):
            rejected[printable(path)] = _not_utf8(path)
            continue
        media = media_type(path)
        if media is None:
            rejected[path] = f"unsupported file type {PurePosixPath(path).suffix or '(no extension)'!r}"
            continue
        slot, directory = media[0], str(PurePosixPath(path).parent)
        grouped = slot == "image" and _matches(directory, image_groups)
        sequenced = slot == "image" and _matches(directory, image_sequences)
        if grouped and sequenced:
            rejected[path] = f"directory {directory!r} matches both an image_groups and an image_sequences pattern"
        elif slot == "dicomFile":
            frames[(directory, "dicomSeries", slot)].append(path)
        elif grouped or sequenced:
            frames[(directory, "imageGroup" if grouped else "imageSequence", slot)].append(path)
        else:
            singles.append(
                UploadUnit(key=path, kind=slot, title=PurePosixPath(path).name, files=(path,), slot_type=slot)
            )
    composites: list[UploadUnit] = []
    titled: dict[str, str] = {}
    for (directory, kind, slot), members in sorted(frames.items(), key=lambda entry: natural_key(entry[0][0])):
        title = root_name if directory == "." else directory
        if not is_utf8(title):
            rejected[directory] = _not_utf8(title)
        elif kind == "imageSequence" and len(members) > MAX_SEQUENCE_FRAMES:
            rejected[directory] = (
                f"image sequence has {len(members)} frames; Encord allows at most {MAX_SEQUENCE_FRAMES}"
            )
        elif title in titled:
            rejected[directory] = f"its {kind} would share the title {title!r} with the {titled[title]} of that name"
        else:
            titled[title] = kind
            composites.append(UploadUnit(key=directory, kind=kind, title=title, files=tuple(members), slot_type=slot))
    return UploadPlan(units=(*singles, *composites), rejected=rejected)


def _not_utf8(name: str) -> str:
    """Why a name cannot be uploaded: not UTF-8 on disk, it reaches Python as lone surrogates no request carries."""
    return f"the name '{printable(name)}' is not valid UTF-8 (undecodable bytes shown as \\xNN); rename it to upload it"


def _matches(directory: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(directory, pattern) for pattern in patterns)


def unit_digest(unit: UploadUnit, file_digests: Mapping[str, str]) -> str:
    """The unit's identity (see the module docstring) from the SHA-256 hex digests of its files."""
    if not unit.is_composite:
        return file_digests[unit.files[0]]
    frames = "\n".join(file_digests[path] for path in unit.files)
    return hashlib.sha256(f"{unit.kind}\n{frames}".encode()).hexdigest()


def job_batches(units: Sequence[UploadUnit], job_size: int = MAX_UPLOAD_SLOTS) -> list[tuple[UploadUnit, ...]]:
    """Units in registration jobs of at most ``job_size`` units: the fewest jobs the API allows."""
    if job_size < 1:
        raise ValueError(f"job_size {job_size} must be at least 1")
    return [tuple(units[i : i + job_size]) for i in range(0, len(units), job_size)]


def slot_requests(units: Sequence[UploadUnit]) -> list[tuple[SlotType, int]]:
    """The signed-URL requests a batch needs: one per slot type and 1,000 slots, covering every file."""
    needed: dict[SlotType, int] = defaultdict(int)
    for unit in units:
        needed[unit.slot_type] += len(unit.files)
    return [
        (slot, min(MAX_UPLOAD_SLOTS, count - start))
        for slot, count in needed.items()
        for start in range(0, count, MAX_UPLOAD_SLOTS)
    ]


def assign_slots(
    units: Sequence[UploadUnit], slots: Mapping[SlotType, Sequence[UploadSignedUrl]]
) -> dict[str, UploadSignedUrl]:
    """Give every file of ``units`` one of the reserved slots of its type (file path → slot)."""
    remaining = {slot: list(reserved) for slot, reserved in slots.items()}
    assigned: dict[str, UploadSignedUrl] = {}
    for unit in units:
        for path in unit.files:
            if not remaining.get(unit.slot_type):
                raise ValueError(f"no {unit.slot_type} upload slot left for {path}")
            assigned[path] = remaining[unit.slot_type].pop(0)
    return assigned


def registration(
    units: Sequence[UploadUnit],
    slots: Mapping[str, UploadSignedUrl],
    digests: Mapping[str, str],
    client_metadata: Mapping[str, Any] | None = None,
) -> DataUploadItems:
    """One job body registering every unit by its placeholders, each tagged with its identity.

    ``objectUrl`` is sent as the slot's object key, as the SDK's helpers do; Encord ignores it when a
    placeholder is given.
    """
    items = DataUploadItems()
    for unit in units:
        metadata = {**(client_metadata or {}), **identity_metadata(unit.key, digests[unit.key])}
        if unit.kind == "dicomSeries":
            dicom_files = [
                DataUploadDicomSeriesDicomFile(
                    url=slots[p].object_key, placeholder_item_uuid=slots[p].item_uuid, title=PurePosixPath(p).name
                )
                for p in unit.files
            ]
            items.dicom_series.append(
                DataUploadDicomSeries(dicom_files=dicom_files, title=unit.title, client_metadata=metadata)
            )
        elif unit.is_composite:
            images = [
                DataUploadImageGroupImage(
                    url=slots[p].object_key, placeholder_item_uuid=slots[p].item_uuid, title=PurePosixPath(p).name
                )
                for p in unit.files
            ]
            group = DataUploadImageGroup(
                images=images, title=unit.title, client_metadata=metadata, create_video=unit.kind == "imageSequence"
            )
            items.image_groups.append(group)
        else:
            model, field = _SINGLE_ENTRIES[unit.kind]
            slot = slots[unit.files[0]]
            entry = model(
                object_url=slot.object_key,
                placeholder_item_uuid=slot.item_uuid,
                title=unit.title,
                client_metadata=metadata,
            )
            getattr(items, field).append(entry)
    return items


def settle(
    units: Sequence[UploadUnit], slots: Mapping[str, UploadSignedUrl], state: UploadLongPollingState
) -> tuple[dict[str, str], dict[str, str]]:
    """Map a finished job back to its units: (key → item UUID, key → error).

    A single file's item keeps its placeholder's UUID. Other items are matched by title where the title is
    unambiguous (always so for composites, whose titles are unique per plan). Unit errors name their
    object URLs, i.e. our slots' object keys. A unit neither created nor failed (the job was cancelled or
    is still pending) is reported as failed with the job's status, so nothing is ever silently lost.
    """
    created: dict[str, str] = {}
    failed: dict[str, str] = {}
    returned = {entry.item_uuid: entry.name for entry in state.items_with_names}
    unmatched: list[UploadUnit] = []
    for unit in units:
        placeholder = slots[unit.files[0]].item_uuid
        if not unit.is_composite and placeholder in returned:
            created[unit.key] = str(placeholder)
            del returned[placeholder]
        else:
            unmatched.append(unit)
    by_title: dict[str, list[UUID]] = defaultdict(list)
    for item_uuid, name in returned.items():
        by_title[name].append(item_uuid)
    titles = [unit.title for unit in unmatched]
    owner = {slots[path].object_key: unit.key for unit in unmatched for path in unit.files}
    for error in state.unit_errors:
        for url in error.object_urls:
            if url in owner:
                failed.setdefault(owner[url], error.error)
    for unit in unmatched:
        if unit.key in failed:
            continue
        candidates = by_title.get(unit.title, [])
        if len(candidates) == 1 and titles.count(unit.title) == 1:
            created[unit.key] = str(candidates[0])
        else:
            reason = "; ".join(state.errors) if state.errors else "no item or error was reported for it"
            failed[unit.key] = f"not registered: the job ended {_status(state.status)} ({reason})"
    return created, failed


def _status(status: LongPollingStatus) -> str:
    return "still pending" if status == LongPollingStatus.PENDING else f"with status {status.value}"
