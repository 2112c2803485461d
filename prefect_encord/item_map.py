"""The item map: which Encord item each source (object URL or local path) became, written as work settles.

A registration of ten million objects cannot hold ten million URL → UUID pairs in memory, nor return them
as a task result (Prefect would serialise them) or an artifact. So each settled job appends its pairs to
a JSON-lines file and the task returns the file's path with the counts: memory stays bounded by the jobs
in flight, whatever the bucket's size. The file is also the run's audit trail of where every file went,
which is why it is kept rather than deleted: a line per source, ``{"source", "item", "status"}``, where
``status`` is ``created`` (this run made the item) or ``present`` (the item was already there).

**Where.** A file the caller names, or a new one under ``$PREFECT_HOME/encord/item-maps``
(``PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_DIRECTORY`` overrides it), named after the folder and the time.
The ``ingest`` flow writes its map next to the run's receipt instead. Nothing prunes either directory; a
scheduled run that passes ``modified_since`` lists (and maps) only what changed. A task on a worker of
another machine writes the map there: give workers and flow a shared directory, as for the job ledger.
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

from prefect.settings import get_current_settings
from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

Status = Literal["created", "present"]


class ItemMapSettings(PrefectBaseSettings):
    """Where item maps go by default; read from ``PREFECT_INTEGRATIONS_ENCORD_ITEM_MAP_*``."""

    model_config = build_settings_config(("integrations", "encord", "item_map"))

    directory: Path | None = Field(default=None, description="Directory of item maps written without a path.")


def default_path(folder_uuid: str) -> Path:
    """A new file for one registration into ``folder_uuid``: folder, UTC time and a random suffix, never reused."""
    configured = ItemMapSettings().directory
    directory = configured if configured is not None else Path(get_current_settings().home) / "encord" / "item-maps"
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
    """A finished item map: its file, read back lazily, and how many lines of each status it holds."""

    path: Path
    created: int
    present: int

    @classmethod
    def read(cls, path: Path | str) -> ItemMap:
        """The map in ``path`` (e.g. an ingest summary's ``item_map``), counted in one streaming pass."""
        counts = Counter(mapped.status for mapped in cls(Path(path), 0, 0))
        return cls(Path(path), created=counts["created"], present=counts["present"])

    def __iter__(self) -> Iterator[MappedItem]:
        """Every line, in the order written; streams the file, so any size can be read."""
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                yield MappedItem(record["source"], record["item"], record["status"])

    def to_dict(self, status: Status | None = None) -> dict[str, str]:
        """Source → item UUID (of one ``status``, or all): loads the map into memory, so mind its size."""
        return {m.source: m.item for m in self if status is None or m.status == status}


class ItemMapWriter:
    """Appends to an item map as work settles; :meth:`close` gives the :class:`ItemMap`.

    Used as a context manager, the file is closed however the block ends. Each :meth:`write` is flushed,
    so a crashed run's map still holds every pair settled before the crash.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("w", encoding="utf-8")
        self._counts: dict[Status, int] = {"created": 0, "present": 0}

    def write(self, pairs: Mapping[str, str], status: Status) -> None:
        """Append source → item pairs of one ``status``."""
        self._stream.writelines(
            json.dumps({"source": source, "item": item, "status": status}, ensure_ascii=False) + "\n"
            for source, item in pairs.items()
        )
        self._stream.flush()
        self._counts[status] += len(pairs)

    def close(self) -> ItemMap:
        self._stream.close()
        return ItemMap(self.path, created=self._counts["created"], present=self._counts["present"])

    def __enter__(self) -> ItemMapWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stream.close()
