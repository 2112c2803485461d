"""Label exports: where each file goes, what a run must fetch, and the watermark it leaves (pure).

**Layout.** One export tree per project and label branch, under a caller's prefix::

    <prefix>/<project_hash>/labels/<data_hash>.json   one Encord JSON file per label row
    <prefix>/<project_hash>/index.jsonl               one line per exported row (summary + file path)
    <prefix>/<project_hash>/coco.json                 COCO of every image-like row in the index (optional)
    <prefix>/<project_hash>/_watermark.json           written last: what the next run may skip

A branch other than ``main`` gets its own tree under ``<project_hash>/branches/<branch>/``. Paths are
built from hashes, never titles (titles repeat and may hold any character), so they are
deterministic: re-exporting a row overwrites its file. Every segment is checked, so a prefix such as
``../x`` or a branch named ``..`` cannot escape the destination (:class:`UnsafeExportPath`).

**Incremental runs.** The watermark is the highest ``last_edited_at`` among the rows a run *listed*,
as Encord's clock stamped them (never ours, so clock skew cannot lose rows). The next run lists only
rows edited after ``watermark - overlap``. Two edges make the overlap necessary:

- *Equal timestamps and late commits.* ``edited_after`` is strict, and a save stamped just before the
  watermark may become visible only after the listing that set it. Rows in the overlap window are
  listed again; those the index already holds at the same ``last_edited_at`` are skipped without a
  fetch, so the overlap costs no label requests, and writing a row again is idempotent anyway.
- *Rows edited during an export.* The watermark comes from the listing, not from the fetched labels;
  a row edited between listing and fetching has a newer stamp than the one indexed, so the next run
  exports it again rather than missing it.

The marker records a fingerprint of the filters; if they change, the next run is a full export of
the new selection. Incremental runs only see what advances a row's ``last_edited_at``; changes Encord does
not stamp are picked up by a full run (``incremental=False``), which also rebuilds the index from scratch.

**Rows that leave.** Every run, incremental or full, also learns which rows the selection holds now (one
listing), and the rows the previous index holds that it no longer does (:func:`removed_rows`: deleted in
Encord, or moved out of a filtered workflow stage) leave the index and their files are deleted, unless the
caller keeps them; either way the run says how many.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from encord.objects import OntologyStructure
from pydantic import BaseModel, ValidationError

from prefect_encord.planning.label_rows import MAIN_BRANCH, LabelRowFilters, LabelRowSummary

LABELS_DIR = "labels"
INDEX_NAME = "index.jsonl"
COCO_NAME = "coco.json"
WATERMARK_NAME = "_watermark.json"
#: How far before the watermark a run lists again (see the module docstring); unchanged rows cost nothing.
DEFAULT_OVERLAP = timedelta(minutes=10)
#: Label-row data types the COCO exporter turns into images; text, audio and PDF have none, and data groups
#: are split into their image and video spaces first (:func:`coco_rows`).
COCO_DATA_TYPES = frozenset({"image", "img_group", "video", "dicom", "nifti"})
#: Rows whose labels a COCO file is built from: the image-like ones and data groups.
COCO_SOURCES = COCO_DATA_TYPES | {"group"}


class UnsafeExportPath(ValueError):
    """A prefix, hash or branch name would put a file outside the export destination."""


def key_segments(path: str, what: str) -> list[str]:
    """The ``/``-separated segments of a relative path, each checked; ``""`` and a trailing ``/`` are allowed.

    Raises:
        UnsafeExportPath: If the path is absolute, or a segment is empty, ``.``, ``..``, or holds a
            backslash or a control character; the message names the path and what is wrong.
    """
    if path.startswith("/"):
        raise UnsafeExportPath(f"{what} {path!r} is absolute; give a path relative to the destination")
    trimmed = path.rstrip("/")
    if not trimmed:
        return []
    segments = trimmed.split("/")
    for segment in segments:
        _check_segment(segment, f"{what} {path!r}")
    return segments


def _check_segment(segment: str, where: str) -> None:
    if segment in ("", ".", ".."):
        raise UnsafeExportPath(f"{where} has the segment {segment!r}; empty, '.' and '..' segments could escape")
    if "\\" in segment or "/" in segment or any(ord(c) < 32 or ord(c) == 127 for c in segment):
        raise UnsafeExportPath(f"{where} has a segment with a slash, backslash or control character: {segment!r}")


@dataclass(frozen=True)
class ExportLayout:
    """The keys of one project's (and branch's) export tree; every key is relative to the destination."""

    root: str

    @classmethod
    def of(cls, prefix: str, project_hash: str, branch_name: str = MAIN_BRANCH) -> ExportLayout:
        """The tree of ``project_hash`` under ``prefix``.

        Raises:
            UnsafeExportPath: If the prefix, the project hash or the branch name could escape.
        """
        segments = key_segments(prefix, "export prefix")
        _check_segment(project_hash, f"project hash {project_hash!r}")
        segments.append(project_hash)
        if branch_name != MAIN_BRANCH:
            branch = quote(branch_name, safe="")
            _check_segment(branch, f"branch name {branch_name!r}")
            segments += ["branches", branch]
        return cls("/".join(segments))

    def key(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def label_path(self, data_hash: str) -> str:
        """The file of one row, relative to the root.

        Raises:
            UnsafeExportPath: If the data hash could escape (it comes from the server; it is still checked).
        """
        _check_segment(data_hash, f"data hash {data_hash!r}")
        return f"{LABELS_DIR}/{data_hash}.json"

    @property
    def index_key(self) -> str:
        return self.key(INDEX_NAME)

    @property
    def coco_key(self) -> str:
        return self.key(COCO_NAME)

    @property
    def watermark_key(self) -> str:
        return self.key(WATERMARK_NAME)


# --- the index ----------------------------------------------------------------------------------


class IndexEntry(LabelRowSummary):
    """One exported row: its summary at the time it was listed, and its file relative to the export root."""

    path: str
    members: dict[str, str] | None = None
    """A data group's members: space id → file name (Encord's label JSON of a group does not name them)."""


def render_index(entries: Iterable[IndexEntry]) -> bytes:
    """JSON Lines, one entry per line, ordered by data hash so equal exports give equal bytes."""
    lines = [entry.model_dump_json() for entry in sorted(entries, key=lambda e: e.data_hash)]
    return "".join(f"{line}\n" for line in lines).encode()


def parse_index(data: bytes, where: str) -> dict[str, IndexEntry]:
    """Data hash -> entry of an index written by :func:`render_index`.

    Raises:
        ValueError: If a line is not an entry; the message names the line (an index is never guessed at,
            as a misread one would make a run skip rows).
    """
    entries: dict[str, IndexEntry] = {}
    for number, line in enumerate(data.decode().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = IndexEntry.model_validate_json(line)
        except ValidationError as exc:
            raise ValueError(
                f"line {number} of {where} is not an index entry ({exc}); delete the index to export everything again"
            ) from None
        entries[entry.data_hash] = entry
    return entries


def merge_index(
    previous: Mapping[str, IndexEntry], fresh: Iterable[IndexEntry], incremental: bool
) -> dict[str, IndexEntry]:
    """The index after a run: the previous one updated with this run's rows, or (full run) this run's rows."""
    merged = dict(previous) if incremental else {}
    merged.update((entry.data_hash, entry) for entry in fresh)
    return merged


# --- the watermark ------------------------------------------------------------------------------


class Watermark(BaseModel):
    """The marker an export leaves; ``project_hash`` and ``branch_name`` are there for people reading it."""

    format: Literal[1] = 1
    project_hash: str
    branch_name: str
    selection: str
    last_edited_at: datetime | None


def parse_watermark(data: bytes, where: str) -> Watermark:
    """The marker read back.

    Raises:
        ValueError: If it is not a marker this version wrote; a guessed watermark could skip rows.
    """
    try:
        return Watermark.model_validate_json(data)
    except ValidationError as exc:
        raise ValueError(f"{where} is not an export watermark ({exc}); delete it to export everything again") from None


@dataclass(frozen=True)
class RunPlan:
    """How a run lists rows: ``edited_after`` for the listing, and whether earlier exports carry over."""

    incremental: bool
    edited_after: datetime | None
    reason: str


_COCO_MARK = "+coco"


def selection_key(filters: LabelRowFilters, coco: bool) -> str:
    """What a watermark is valid for: the filters, and whether the export keeps a COCO file.

    Turning COCO on makes the next run a full one, so the COCO file covers every row from the start.
    """
    return f"{filters.fingerprint()}{_COCO_MARK if coco else ''}"


def plan_run(
    previous: Watermark | None, selection: str, incremental: bool, overlap: timedelta, has_index: bool
) -> RunPlan:
    """Incremental from ``previous`` if asked for and valid for this selection; a full export otherwise.

    An incremental run needs the previous index as well as the watermark: it carries the rows that
    this run will not list, so without it the new index (and COCO file) would silently lose them.
    """
    if overlap < timedelta(0):
        raise ValueError(f"overlap {overlap} must not be negative")
    if not incremental:
        return RunPlan(False, None, "a full export was asked for")
    if previous is None:
        return RunPlan(False, None, "no watermark yet")
    if previous.selection != selection:
        options_only = previous.selection.removesuffix(_COCO_MARK) == selection.removesuffix(_COCO_MARK)
        what = "the export options changed (COCO on or off)" if options_only else "the filters changed"
        return RunPlan(False, None, f"{what} since the watermark was written")
    if previous.last_edited_at is None:
        return RunPlan(False, None, "no row was exported before")
    if not has_index:
        return RunPlan(False, None, "the index of the previous export is missing")
    after = previous.last_edited_at - overlap
    return RunPlan(True, after, f"rows edited after {after.isoformat()} (the watermark less {overlap})")


@dataclass(frozen=True)
class RowSelection:
    """What a run does with each listed row."""

    to_fetch: list[LabelRowSummary]
    unchanged: list[LabelRowSummary]
    not_started: list[LabelRowSummary]


def select_rows(listed: Sequence[LabelRowSummary], index: Mapping[str, IndexEntry], incremental: bool) -> RowSelection:
    """Fetch what is new or changed; skip what the index holds at the same version; leave unstarted rows out.

    A row nobody has started (no ``label_hash``) has no labels to export, and creating it just to
    export it would change the project, so it is only counted.
    """
    to_fetch, unchanged, not_started = [], [], []
    for row in listed:
        known = index.get(row.data_hash) if incremental else None
        if row.label_hash is None:
            not_started.append(row)
        elif (
            known is not None
            and known.label_hash == row.label_hash
            and known.last_edited_at is not None
            and known.last_edited_at == row.last_edited_at
        ):
            unchanged.append(row)
        else:
            to_fetch.append(row)
    return RowSelection(to_fetch, unchanged, not_started)


def removed_rows(index: Mapping[str, IndexEntry], present: Iterable[str]) -> list[IndexEntry]:
    """The rows the previous export holds (``index``) that the selection no longer lists (``present``: data
    hashes), in data-hash order."""
    still = set(present)
    return [index[data_hash] for data_hash in sorted(index) if data_hash not in still]


def next_watermark(previous: datetime | None, listed: Iterable[LabelRowSummary]) -> datetime | None:
    """The highest ``last_edited_at`` of the started rows listed, never lower than ``previous``."""
    stamps = [row.last_edited_at for row in listed if row.label_hash is not None and row.last_edited_at is not None]
    if previous is not None:
        stamps.append(previous)
    return max(stamps, default=None)


# --- file contents ------------------------------------------------------------------------------


def render_json(document: Any, indent: int | None = None) -> bytes:
    """Deterministic JSON (sorted keys), so an unchanged row is rewritten with identical bytes."""
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(document, sort_keys=True, indent=indent, separators=separators, ensure_ascii=False).encode()


@dataclass(frozen=True)
class CocoExport:
    """A COCO document, and the rows (or data-group spaces) it could not express, by title."""

    document: dict[str, Any]
    left_out: tuple[str, ...]

    @property
    def images(self) -> int:
        return len(self.document.get("images", []))

    @property
    def annotations(self) -> int:
        return len(self.document.get("annotations", []))


#: Data-group space types COCO can express, and the data-unit MIME type each becomes for the exporter.
_COCO_SPACES = {"image": "image", "video": "video/mp4"}


def coco_rows(
    labels: Iterable[dict[str, Any]], members: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows COCO takes (each data-group image or video space as a row of its own), and what it cannot take.

    Encord's exporter reads only a row's ``data_units``; a data group keeps its members' labels in
    ``spaces`` instead, so without this its boxes would vanish from the COCO file. Each space becomes an
    image (or video) titled ``group/member`` whose id is the group's data hash and the space's, so a member
    that is also a row of its own (its own labels) stays a separate image. Text, audio, PDF and HTML
    (rows or spaces) have no pixels: they are returned by title, for the summary to name. ``members``
    names each group's spaces (group data hash → space id → file name); a space it does not name is
    titled by its id.
    """
    members = members or {}
    taken: list[dict[str, Any]] = []
    left_out: list[str] = []
    for row in labels:
        if row.get("data_type") in COCO_DATA_TYPES:
            taken.append(row)
        elif row.get("data_type") == "group":
            for space_id, space in sorted((row.get("spaces") or {}).items()):
                member = f"{row['data_title']}/{members.get(row['data_hash'], {}).get(space_id, space_id)}"
                if space.get("space_type") in _COCO_SPACES:
                    taken.append(_space_row(row, space_id, space, member))
                else:
                    left_out.append(member)
        else:
            left_out.append(str(row.get("data_title", row.get("data_hash"))))
    return taken, left_out


def _space_row(row: dict[str, Any], space_id: str, space: dict[str, Any], title: str) -> dict[str, Any]:
    """One data-group space as the image (or video) row Encord's COCO exporter reads."""
    mime = _COCO_SPACES[space["space_type"]]
    labels = space.get("labels") or {}
    unit_labels = labels if mime.startswith("video") else labels.get("0", {"objects": [], "classifications": []})
    data_hash = f"{row['data_hash']}:{space_id}"
    unit = {
        "data_hash": data_hash,
        "data_title": title,
        "data_type": mime,
        "data_link": "",
        "width": space.get("width"),
        "height": space.get("height"),
        "labels": unit_labels,
    }
    return {
        **{key: row[key] for key in ("label_hash", "object_answers", "classification_answers") if key in row},
        "object_actions": row.get("object_actions", {}),
        "data_hash": data_hash,
        "data_title": title,
        "data_type": "video" if mime.startswith("video") else "image",
        "data_units": {data_hash: unit},
    }


def coco_document(
    labels: Iterable[dict[str, Any]],
    ontology: OntologyStructure,
    members: Mapping[str, Mapping[str, str]] | None = None,
) -> CocoExport:
    """COCO (with Encord's extra fields) of the image-like rows and data-group spaces among ``labels``.

    Rows are ordered by data hash first, because the exporter numbers images and annotations in the
    order it is given them: the same rows always get the same ids.
    """
    from encord.utilities.coco.exporter import CocoExporter  # needs the coco extra (numpy, pycocotools, …)

    taken, left_out = coco_rows(labels, members)
    selected = sorted(taken, key=lambda r: r["data_hash"])
    return CocoExport(CocoExporter(selected, ontology=ontology).export(), tuple(sorted(left_out)))
