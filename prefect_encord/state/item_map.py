"""The item map: which Encord item each source (object URL or local path) became, written as work settles.

A registration of ten million objects cannot hold ten million URL → UUID pairs in memory, nor return them
as a task result (Prefect would serialise them) or an artifact. So each settled job appends its pairs to
a JSON-lines file and the task returns the file's path with the counts: memory stays bounded by the jobs
in flight, whatever the bucket's size. The file is also the run's audit trail of where every file went,
which is why it is kept rather than deleted: a line per source, ``{"source", "item", "status"}``, where
``status`` is ``created`` (this run made the item) or ``present`` (the item was already there).

**Notes.** A source the run found overwritten since its item was made (the item kept) or gone from its bucket
gets a line ``{"source", "item", "note": "changed" | "vanished"}`` (:meth:`ItemMap.notes`), so every key a run
touched or left alone is named here; readers of items skip these lines.

**The job journal.** The map also holds the books of the run's data jobs, written *ahead* of the work: a
``{"job", "event": "starting"}`` line once the job's body is in the :mod:`job ledger <prefect_encord.state.job_ledger>`
and before Encord is asked to start it, ``"started"`` with its id, and ``"settled"`` once its items are in the
map. A job that is starting or started but never settled (a kill -9, a lost machine) created items this map
does not list yet: whoever finishes the job from the ledger writes them here, and a rollback that still finds
such a job refuses to call the run undone (:meth:`ItemMap.unsettled_jobs`). Readers of items skip these lines.

**Where.** A file the caller names, or a new one under ``$PREFECT_HOME/encord/item-maps``
(``PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_DIRECTORY`` overrides it), named after the folder and the time.
The ``ingest`` flow writes its map next to the run's receipt instead. Nothing prunes either directory; a
scheduled run that passes ``modified_since`` lists (and maps) only what changed. A task on a worker of
another machine writes the map on that machine, with the receipt of a flow run there.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal

from prefect_encord.state.durable_files import naming
from prefect_encord.state.settings import local_directory

#: A string as JSON, as ``json.dumps(text, ensure_ascii=False)`` writes it (a string takes the encoder's C path).
_quoted = json.JSONEncoder(ensure_ascii=False).encode

Status = Literal["created", "present"]
#: What a note says of a source: overwritten since its item was made, deleted from its bucket, its item moved to
#: the archive folder, moved back from it (the object returned), or replaced by a new item (``item`` the new one).
Note = Literal["changed", "vanished", "archived", "restored", "replaced"]
#: The life of a data job in the journal: body in the ledger, start asked → id known → items in the map.
JobEvent = Literal["starting", "started", "settled"]


def default_path(folder_uuid: str) -> Path:
    """A new file for one registration into ``folder_uuid``: folder, UTC time and a random suffix, never reused."""
    directory = local_directory("item_map")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return directory / f"{folder_uuid}-{stamp}-{secrets.token_hex(3)}.jsonl"


@dataclass(frozen=True)
class MappedItem:
    """One line of an item map."""

    source: str
    item: str
    status: Status


@dataclass(frozen=True)
class ItemMap:
    """Lines of an item map file from byte ``start`` on (one writer's, or with ``start`` 0 the whole file),
    read back lazily, and how many of each status they are."""

    path: Path
    created: int
    present: int
    start: int = 0

    @classmethod
    def read(cls, path: Path | str) -> ItemMap:
        """The whole map in ``path`` (e.g. an ingest summary's ``item_map``), counted in one streaming pass."""
        counts = Counter(mapped.status for mapped in cls(Path(path), 0, 0))
        return cls(Path(path), created=counts["created"], present=counts["present"])

    def __iter__(self) -> Iterator[MappedItem]:
        """Every line, in the order written; streams the file, so any size can be read. A line torn by a crash
        mid-write is skipped."""
        with self.path.open("rb") as lines:
            lines.seek(self.start)
            for line in lines:
                try:
                    record = json.loads(line)
                    yield MappedItem(record["source"], record["item"], record["status"])
                except (ValueError, KeyError, TypeError):
                    continue

    def unsettled_jobs(self) -> dict[str, str]:
        """Jobs of the whole file (every attempt) journalled as starting or started and never settled: ledger
        key → job id (empty if its start was never confirmed)."""
        unsettled: dict[str, str] = {}
        with self.path.open("rb") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                    key, event = record["job"], record["event"]
                except (ValueError, KeyError, TypeError):
                    continue
                if event == "settled":
                    unsettled.pop(key, None)
                else:
                    unsettled[key] = record.get("job_id") or unsettled.get(key, "")
        return unsettled

    def notes(self, note: Note) -> dict[str, str]:
        """Source → item of every line noting ``note`` (see the module), this writer's lines or the whole file."""
        found: dict[str, str] = {}
        with self.path.open("rb") as lines:
            lines.seek(self.start)
            for line in lines:
                try:
                    record = json.loads(line)
                    if record.get("note") == note:
                        found[record["source"]] = record["item"]
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
        return found

    def to_dict(self, status: Status | None = None) -> dict[str, str]:
        """Source → item UUID (of one ``status``, or all): loads the map into memory, so mind its size."""
        return {m.source: m.item for m in self if status is None or m.status == status}


class ItemMapWriter:
    """Appends to an item map as work settles; :meth:`close` gives the :class:`ItemMap` of what it wrote.

    Appends, never truncates: a resumed run adds its lines after those of the attempt that crashed, so the
    file keeps every item the run created in any attempt (what a rollback removes), while the returned map
    covers this writer's lines only. Each :meth:`write` is flushed, so a crash loses at most the line being
    written. Used as a context manager, the file is closed however the block ends.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("a", encoding="utf-8")
        if _ends_mid_line(self.path):
            self._stream.write("\n")  # end a line torn by a crash, so that it stands alone and is skipped
            self._stream.flush()
        self._start = self.path.stat().st_size
        self._counts: dict[Status, int] = {"created": 0, "present": 0}

    def write(self, pairs: Mapping[str, str], status: Status) -> None:
        """Append source → item pairs of one ``status``."""
        self._lines(pairs, "status", status)
        self._counts[status] += len(pairs)

    def note(self, pairs: Mapping[str, str], note: Note) -> None:
        """Append a note on each source → item pair: ``changed`` or ``vanished`` (see the module)."""
        self._lines(pairs, "note", note)

    def _lines(self, pairs: Mapping[str, str], field: str, value: str) -> None:
        # json.dumps({"source": …, "item": …, field: value}, ensure_ascii=False), byte for byte, without building a
        # dict per line: a re-run of a large bucket writes a line per object it lists.
        tail = f", {_quoted(field)}: {_quoted(value)}}}\n"
        lines = (f'{{"source": {_quoted(source)}, "item": {_quoted(item)}{tail}' for source, item in pairs.items())
        text = "".join(lines)
        with naming(self.path, "the item map"):
            self._stream.write(text)  # one write, so one system call however many lines (each hands the GIL over)
            self._stream.flush()

    def job(self, key: str, event: JobEvent, job_id: str = "") -> None:
        """Journal a data job's step (see the module): ``starting`` only once its ledger record is written."""
        with naming(self.path, "the item map"):
            self._stream.write(json.dumps({"job": key, "event": event, "job_id": job_id}) + "\n")
            self._stream.flush()

    def close(self) -> ItemMap:
        self._stream.close()
        return ItemMap(self.path, self._counts["created"], self._counts["present"], start=self._start)

    def __enter__(self) -> ItemMapWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stream.close()


def _ends_mid_line(path: Path) -> bool:
    """Whether the file's last line has no newline (a write cut short by a crash)."""
    with path.open("rb") as stream:
        if stream.seek(0, 2) == 0:
            return False
        stream.seek(-1, 2)
        return stream.read(1) != b"\n"
