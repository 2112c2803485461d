"""Turn listed objects into Encord registration entries and job specs (pure; the shell does all I/O).

A registration job lists object URLs in Encord's JSON import format (``images``, ``videos``, ``audio``,
``text``, ``pdf``, ``image_groups`` with ordered ``objectUrl_N`` and ``createVideo``, ``dicom_series``).
This module decides, without touching the network:

- **what each object is**, from its extension; anything else is :class:`Skipped` with the reason;
- **which objects form one unit**: with ``images="group"`` / ``"sequence"`` the images of each directory
  become one image group / image sequence; the ``.dcm`` files of each directory become one DICOM series,
  or, with ``dicom_series_by="series_uid"``, the files sharing a ``SeriesInstanceUID`` do (the shell reads
  the headers; see :mod:`prefect_encord.planning.dicom`);
- **titles**: the object key for single files and the directory key for composites, so titles are unique
  and a finished job's ``itemsWithNames`` maps back to the objects without another request;
- **client metadata**: one mapping for every entry, overridden key by key per title;
- **customer-provided image facts** (``PlanOptions.image_size``): when every image has one known size, each
  single image carries ``imageMetadata`` (MIME type from its extension, byte size from the listing), so
  Encord records those facts instead of fetching the file, as its strict client-only access requires;
- **jobs**: chunks of at most ``DEFAULT_JOB_SIZE`` units, each a complete, valid spec.

Entries are produced as a stream: single files as soon as they are seen, composites (which need all their
members) at the end. Memory therefore grows with the grouped objects only, never with the whole bucket.
Problems found here (unknown extension, URL outside the bucket, empty object, over-long sequence or title)
are reported before anything is submitted, and never make a job half-valid.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, TypeVar, get_args

from prefect_encord.limits import MAX_SEQUENCE_FRAMES, MAX_TITLE_LENGTH
from prefect_encord.planning.dicom import DicomHeader
from prefect_encord.planning.objects import ObjectRecord, Skipped, key_directories
from prefect_encord.planning.ordering import natural_key

DEFAULT_JOB_SIZE = 1_000
"""Units per registration job. Small enough that a job finishes (and reports) quickly; large enough that a
big bucket needs few requests. Encord accepts far more per job, but smaller jobs show up sooner."""

DataKind = Literal["image", "video", "audio", "text", "pdf", "dicom"]
EntryKind = Literal["image", "video", "audio", "text", "pdf", "image_group", "image_sequence", "dicom_series"]
ImageMode = Literal["single", "group", "sequence"]
DicomGrouping = Literal["directory", "series_uid"]

_EXTENSIONS: dict[str, DataKind] = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"), "image"),
    **dict.fromkeys((".mp4", ".mov", ".webm", ".avi", ".mkv"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"), "audio"),
    **dict.fromkeys((".txt", ".md", ".html", ".htm", ".json", ".csv", ".xml"), "text"),
    ".pdf": "pdf",
    **dict.fromkeys((".dcm", ".dicom"), "dicom"),
}
# Entry kind -> the JSON spec's top-level key. Image sequences are image groups with createVideo.
_SPEC_KEYS: dict[EntryKind, str] = {
    "image": "images",
    "video": "videos",
    "audio": "audio",
    "text": "text",
    "pdf": "pdf",
    "image_group": "image_groups",
    "image_sequence": "image_groups",
    "dicom_series": "dicom_series",
}
# Extension -> MIME type, for the customer-provided ``imageMetadata`` of single images.
_IMAGE_MIME_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".gif": "image/gif",
}
_COMPOSITE_KINDS: frozenset[EntryKind] = frozenset({"image_group", "image_sequence", "dicom_series"})
_SINGLE_KINDS: dict[DataKind, EntryKind] = {kind: kind for kind in ("image", "video", "audio", "text", "pdf")}
T = TypeVar("T")

ReadDicomHeaders = Callable[[Sequence[ObjectRecord]], Mapping[str, DicomHeader | None]]
"""Reads the headers of DICOM objects: object key -> header (None when unreadable). Supplied by the shell."""


def data_kind(key: str) -> DataKind | None:
    """What an object is, from its extension (case-insensitive); None if Encord cannot register it."""
    return _EXTENSIONS.get(posixpath.splitext(key)[1].lower())


def single_unit_kind(key: str, options: PlanOptions) -> EntryKind | None:
    """The kind of unit the object ``key`` is on its own, as :func:`plan_registration` makes it, or None when it
    may belong to a composite (an image while images form groups or sequences, a DICOM file) or Encord cannot
    take it."""
    kind = data_kind(key)
    if kind is None or kind == "dicom" or (kind == "image" and options.images != "single"):
        return None
    return _SINGLE_KINDS[kind]


@dataclass(frozen=True)
class Entry:
    """One registration unit: a single file, or the ordered frames of an image group, sequence or DICOM series.

    ``urls[0]`` is the unit's identity URL: Encord matches duplicates on it, and results are keyed by it.
    ``image_metadata`` is the customer-provided facts of a single image (``mimeType``, ``fileSize``, ``width``,
    ``height``): Encord stores them instead of fetching and scanning the file.
    """

    kind: EntryKind
    title: str
    urls: tuple[str, ...]
    client_metadata: Mapping[str, Any] = field(default_factory=dict)
    image_metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"{self.kind} {self.title!r} has no objects; Encord cannot register an empty unit")
        if self.kind not in _COMPOSITE_KINDS and len(self.urls) != 1:
            raise ValueError(f"a {self.kind} entry names exactly one object, got {len(self.urls)}")
        if self.image_metadata and self.kind != "image":
            raise ValueError(f"image_metadata is for single images, not a {self.kind} entry ({self.title!r})")

    @property
    def url(self) -> str:
        return self.urls[0]

    def to_spec(self) -> dict[str, Any]:
        """This entry as an element of its JSON-spec list."""
        spec: dict[str, Any] = {"title": self.title}
        if self.kind in _COMPOSITE_KINDS:
            if self.kind != "dicom_series":
                spec["createVideo"] = self.kind == "image_sequence"
            spec.update({f"objectUrl_{position}": url for position, url in enumerate(self.urls)})
        else:
            spec["objectUrl"] = self.url
        if self.client_metadata:
            spec["clientMetadata"] = dict(self.client_metadata)
        if self.image_metadata:
            spec["imageMetadata"] = dict(self.image_metadata)
        return spec


@dataclass(frozen=True)
class PlanOptions:
    """How objects become entries; plain data so that it can be a flow or task parameter.

    ``images``: ``"single"`` registers each image on its own; ``"group"`` / ``"sequence"`` make the images
    directly inside each directory one image group / image sequence, frames in natural file-name order.
    ``dicom_series_by``: ``"directory"`` makes the ``.dcm`` files of each directory one series, in natural
    file-name order; ``"series_uid"`` groups by the ``SeriesInstanceUID`` in each file's header and orders
    by ``InstanceNumber``. ``client_metadata`` goes on every entry; ``metadata_by_title`` adds or overrides
    keys for the entry of that title (an object key, or a directory key for a composite).
    ``image_size``: ``(width, height)`` shared by *every* selected image, e.g. the frames of one camera model.
    Each single image is then registered with customer-provided facts (``imageMetadata``: that size, the MIME
    type of its extension and the byte size from the listing), which Encord records instead of fetching and
    scanning the file; a wrong size is not detected. Images the listing gives no size for are registered as
    usual. ``None`` (the default): Encord reads every image.
    """

    images: ImageMode = "single"
    dicom_series_by: DicomGrouping = "directory"
    client_metadata: Mapping[str, Any] = field(default_factory=dict)
    metadata_by_title: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.images not in get_args(ImageMode):
            raise ValueError(f"images={self.images!r}; expected one of {get_args(ImageMode)}")
        if self.dicom_series_by not in get_args(DicomGrouping):
            raise ValueError(f"dicom_series_by={self.dicom_series_by!r}; expected one of {get_args(DicomGrouping)}")
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size):
                raise ValueError(f"image_size={self.image_size!r}; expected (width, height) in whole pixels > 0")
            object.__setattr__(self, "image_size", size)  # a list (from JSON) becomes a tuple

    def metadata_for(self, title: str) -> dict[str, Any]:
        return {**self.client_metadata, **self.metadata_by_title.get(title, {})}


@dataclass(frozen=True)
class NamedKeys:
    """How a run given object keys (a bucket notification's) reaches them without listing the bucket: the keys
    that are units on their own, read one by one (``singles``), and the directories (relative to the block's
    prefix, as :func:`~prefect_encord.planning.objects.key_directories` gives them) whose objects form one unit
    together and are listed whole (``directories``)."""

    singles: tuple[str, ...]
    directories: tuple[str, ...]
    #: Keys not under the block's prefix (another bucket folder's): not the block's to register.
    outside: tuple[str, ...] = ()


def named_keys(keys: Sequence[str], base: str, options: PlanOptions) -> NamedKeys:
    """Split ``keys`` (full object keys) into units on their own and directories to list (see :class:`NamedKeys`).

    A key can belong to a composite only if it is an image while images form groups or sequences, or a DICOM
    file (a series is a directory, or is found among a directory's headers): its directory is listed. Every other
    key (a video, a PDF, an image registered on its own, a file Encord cannot take) is one unit, or none, by
    itself. A key inside a directory that is listed anyway is not read again; keys outside ``base`` are left out.
    """
    ours = sorted({key for key in keys if key.startswith(base) and not key.endswith("/")})

    def in_a_composite(key: str) -> bool:
        kind = data_kind(key)
        return kind == "dicom" or (kind == "image" and options.images != "single")

    directories = tuple(key_directories([key for key in ours if in_a_composite(key)], base))
    singles = tuple(
        key for key in ours if not in_a_composite(key) and not any(key[len(base) :].startswith(d) for d in directories)
    )
    outside = tuple(sorted({key for key in keys if not key.startswith(base)}))
    return NamedKeys(singles, directories, outside)


def plan_registration(
    records: Iterable[ObjectRecord],
    *,
    root_url: str,
    options: PlanOptions | None = None,
    read_dicom_headers: ReadDicomHeaders | None = None,
) -> Iterator[Entry | Skipped]:
    """Stream the entries (and skipped objects) for ``records``, all of which should lie under ``root_url``.

    ``root_url`` is the bucket's URL root as the integration block writes it (``gs://bucket/``); a record
    elsewhere is skipped, because Encord would refuse to fetch it through this integration.
    ``read_dicom_headers`` is required with ``dicom_series_by="series_uid"`` and called once, with every
    DICOM record, after the other records have been planned.
    """
    options = options or PlanOptions()
    if options.dicom_series_by == "series_uid" and read_dicom_headers is None:
        raise ValueError("dicom_series_by='series_uid' needs read_dicom_headers to read each file's header")
    grouped_images: dict[str, list[ObjectRecord]] = defaultdict(list)
    dicom_files: list[ObjectRecord] = []
    for record in records:
        extension = posixpath.splitext(record.key)[1].lower()  # once per object: a re-run plans every one
        kind = _EXTENSIONS.get(extension)
        problem = _problem(record, kind, root_url)
        if problem is not None:
            yield Skipped(record.url, problem)
        elif kind == "dicom":
            dicom_files.append(record)
        elif kind == "image" and options.images != "single":
            grouped_images[posixpath.dirname(record.key)].append(record)
        else:
            assert kind is not None  # _problem rejects unknown kinds
            title = record.key
            provided = _image_metadata(record, extension, options.image_size) if kind == "image" else {}
            yield Entry(_SINGLE_KINDS[kind], title, (record.url,), options.metadata_for(title), provided)
    image_kind: EntryKind = "image_sequence" if options.images == "sequence" else "image_group"
    titles: set[str] = set()
    for directory in sorted(grouped_images, key=natural_key):
        frames = sorted(grouped_images[directory], key=lambda r: natural_key(r.key))
        yield from _composite(image_kind, directory or root_url.rstrip("/"), frames, options, titles)
    if options.dicom_series_by == "directory":
        yield from _dicom_by_directory(dicom_files, root_url, options, titles)
    elif dicom_files:
        assert read_dicom_headers is not None
        yield from _dicom_by_series_uid(dicom_files, read_dicom_headers(dicom_files), options, titles)


def _image_metadata(record: ObjectRecord, extension: str, size: tuple[int, int] | None) -> dict[str, Any]:
    """The customer-provided facts of one image (``extension`` lower-case), or none when its size or byte count is
    unknown."""
    if size is None or record.size is None:
        return {}
    return {"mimeType": _IMAGE_MIME_TYPES[extension], "fileSize": record.size, "width": size[0], "height": size[1]}


def _problem(record: ObjectRecord, kind: DataKind | None, root_url: str) -> str | None:
    if not record.url.startswith(root_url):
        return f"the URL is outside the integration's bucket ({root_url})"
    if kind is None:
        extension = posixpath.splitext(record.key)[1]
        return f"unsupported file type {extension or '(no extension)'!r}"
    if record.size == 0:
        return "the object is empty"
    if kind != "dicom" and len(record.key) > MAX_TITLE_LENGTH:
        return f"the key is longer than Encord's {MAX_TITLE_LENGTH}-character limit on titles"
    return None


def _composite(
    kind: EntryKind,
    title: str,
    members: Sequence[ObjectRecord],
    options: PlanOptions,
    titles: set[str],
) -> Iterator[Entry | Skipped]:
    """One composite entry from ``members`` in the order given, or the reason it cannot be registered.

    ``titles`` holds the composite titles already used: an image group and a DICOM series in the same
    directory would otherwise share one, and the DICOM series gets a suffix.
    """
    if kind == "dicom_series" and title in titles:
        title = f"{title} (DICOM)"
    where = _directory_url(members[0].url)
    if kind == "image_sequence" and len(members) > MAX_SEQUENCE_FRAMES:
        yield Skipped(where, f"an image sequence of {len(members)} frames; Encord allows at most {MAX_SEQUENCE_FRAMES}")
        return
    if len(title) > MAX_TITLE_LENGTH:
        yield Skipped(where, f"the title is longer than Encord's {MAX_TITLE_LENGTH}-character limit")
        return
    titles.add(title)
    urls = tuple(member.url for member in members)
    yield Entry(kind=kind, title=title, urls=urls, client_metadata=options.metadata_for(title))


def _dicom_by_directory(
    files: Sequence[ObjectRecord], root_url: str, options: PlanOptions, titles: set[str]
) -> Iterator[Entry | Skipped]:
    by_directory: dict[str, list[ObjectRecord]] = defaultdict(list)
    for record in files:
        by_directory[posixpath.dirname(record.key)].append(record)
    for directory in sorted(by_directory, key=natural_key):
        members = sorted(by_directory[directory], key=lambda r: natural_key(r.key))
        yield from _composite("dicom_series", directory or root_url.rstrip("/"), members, options, titles)


def _dicom_by_series_uid(
    files: Sequence[ObjectRecord],
    headers: Mapping[str, DicomHeader | None],
    options: PlanOptions,
    titles: set[str],
) -> Iterator[Entry | Skipped]:
    by_series: dict[str, list[tuple[DicomHeader, ObjectRecord]]] = defaultdict(list)
    for record in files:
        header = headers.get(record.key)
        if header is None:
            yield Skipped(record.url, "no SeriesInstanceUID could be read from the DICOM header")
        else:
            by_series[header.series_uid].append((header, record))
    for series_uid in sorted(by_series):
        members = sorted(by_series[series_uid], key=lambda pair: _instance_order(*pair))
        yield from _composite("dicom_series", series_uid, [r for _, r in members], options, titles)


def _instance_order(header: DicomHeader, record: ObjectRecord) -> tuple[Any, ...]:
    """InstanceNumber first (files without one last), then the key, so the order never depends on listing."""
    number = header.instance_number
    return (number is None, number or 0, natural_key(record.key))


def _directory_url(url: str) -> str:
    """The URL of the directory holding an object, which names a composite in skip reports."""
    return url[: url.rfind("/") + 1]


def chunked(entries: Iterable[T], size: int = DEFAULT_JOB_SIZE) -> Iterator[tuple[T, ...]]:
    """Consecutive jobs of at most ``size`` units (or pages of objects), pulled lazily from ``entries``."""
    if size < 1:
        raise ValueError(f"job size {size} must be at least 1")
    iterator = iter(entries)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def registration_spec(entries: Sequence[Entry], *, upsert_metadata: bool = False) -> dict[str, Any]:
    """The JSON spec of one job registering ``entries``.

    ``skip_duplicate_urls`` is always on: it is what makes a re-run (or a resubmitted job) return the
    existing items instead of creating copies. ``upsert_metadata`` replaces the client metadata of those
    existing items with the entries' own.
    """
    spec: dict[str, Any] = {}
    for entry in entries:
        spec.setdefault(_SPEC_KEYS[entry.kind], []).append(entry.to_spec())
    spec["skip_duplicate_urls"] = True
    spec["upsert_metadata"] = upsert_metadata
    return spec
