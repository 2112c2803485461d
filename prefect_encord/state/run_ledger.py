"""The run ledger: a durable receipt of everything one ingest run did to Encord, for audit and rollback.

Each mutation is bracketed: an *intent* line is written before it ("registering 1,000 objects into
folder F") and the *result* after it (job ids, UUIDs of groups created, items linked into a dataset).
If the process dies in between, the receipt still says what may have happened, so an operator knows
where to look. Items are recorded in the run's :mod:`item map <prefect_encord.state.item_map>` next to the
receipt, which grows as each job settles: a million items need no million-entry receipt, and a crash in
the middle of a registration still leaves every item created so far on record. :func:`load` reads a
receipt back and the ``rollback`` flow removes exactly what the run created. Receipts are JSON files
under ``$PREFECT_HOME/encord/runs/<run id>.json`` (``PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY``
overrides it), written atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from prefect_encord.state.durable_files import write_atomically
from prefect_encord.state.item_map import ItemMap
from prefect_encord.state.settings import local_directory


def default_directory() -> Path:
    """The configured receipt directory, else ``$PREFECT_HOME/encord/runs``."""
    return local_directory("run_ledger")


class Receipt(BaseModel):
    """What one run did. Only the items its item map marks ``created`` and ``groups_created`` are undone by a
    rollback (see :func:`items_created`)."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    intents: list[str] = Field(default_factory=list, description="Mutations announced before they ran.")
    jobs: list[str] = Field(default_factory=list, description="Data-upload jobs started or resumed.")
    folder_uuid: str | None = Field(
        default=None,
        description="The storage folder the run wrote into; a rollback first checks the Encord it is given has it.",
    )
    folder_path: str | None = Field(default=None, description="The path of that folder, for people.")
    encord: str | None = Field(default=None, description="The Encord (API domain) the run wrote to.")
    folders_created: list[str] = Field(default_factory=list)
    item_map: str | None = Field(default=None, description="The run's item map: where every file went.")
    groups_created: list[str] = Field(default_factory=list)
    datasets_linked: dict[str, list[str]] = Field(
        default_factory=dict, description="Dataset hash → items this run linked into it."
    )
    datasets_created: list[str] = Field(default_factory=list, description="Datasets this run created.")
    projects_created: list[str] = Field(default_factory=list, description="Projects this run created.")
    projects_attached: dict[str, list[str]] = Field(
        default_factory=dict, description="Project hash → datasets this run attached to it."
    )
    sources_changed: dict[str, str] = Field(
        default_factory=dict,
        description="Source (path or URL) → item of each file overwritten since its item was made (the item it had).",
    )
    sources_vanished: dict[str, str] = Field(
        default_factory=dict, description="URL → item of each object deleted from its bucket since it was registered."
    )
    sources_restored: dict[str, str] = Field(
        default_factory=dict, description="URL → item of each object back in its bucket, its item moved back."
    )
    sources_replaced: dict[str, str] = Field(
        default_factory=dict, description="URL → new item of each overwritten object whose item was replaced."
    )
    sources_archived: dict[str, str] = Field(
        default_factory=dict, description="URL → item of each vanished object whose item was moved to the archive."
    )
    schema_keys_added: list[str] = Field(
        default_factory=list, description="Metadata schema keys this run added to the organisation's schema."
    )
    schema_keys_declared: list[str] = Field(
        default_factory=list,
        description="Every key the run's schema declared: a rollback of another run keeps a key this run uses.",
    )
    rolled_back_at: datetime | None = None


class RunLedger:
    """The receipt of one run, rewritten after every change so it is never more than one step behind."""

    def __init__(self, run_id: str, directory: Path | str | None = None) -> None:
        self.path = Path(directory) if directory is not None else default_directory()
        self.path.mkdir(parents=True, exist_ok=True)
        self.file = self.path / f"{_safe(run_id)}.json"
        #: Where the run's :mod:`item map <prefect_encord.state.item_map>` goes: next to its receipt.
        self.item_map_path = self.path / f"{_safe(run_id)}.items.jsonl"
        if self.file.exists():
            self.receipt = Receipt.model_validate_json(self.file.read_text())
        else:
            self.receipt = Receipt(
                run_id=run_id, started_at=datetime.now(timezone.utc), item_map=str(self.item_map_path)
            )
            self._write()

    def target(self, folder_uuid: str, encord: str, folder_path: str | None = None) -> None:
        """Record where the run writes, so its rollback can refuse another Encord."""
        self.receipt.folder_uuid, self.receipt.encord, self.receipt.folder_path = folder_uuid, encord, folder_path
        self._write()

    def before(self, intent: str) -> None:
        self.receipt.intents.append(f"{datetime.now(timezone.utc).isoformat()} {intent}")
        self._write()

    def after(
        self,
        *,
        jobs: Iterable[str] = (),
        groups: Iterable[str] = (),
        folders: Iterable[str] = (),
        dataset: str | None = None,
        linked: Iterable[str] = (),
        datasets: Iterable[str] = (),
        projects: Iterable[str] = (),
        attached: tuple[str, str] | None = None,
        schema_added: Iterable[str] = (),
        schema_declared: Iterable[str] = (),
        changed: Mapping[str, str] | None = None,
        vanished: Mapping[str, str] | None = None,
        restored: Mapping[str, str] | None = None,
        replaced: Mapping[str, str] | None = None,
        archived: Mapping[str, str] | None = None,
    ) -> None:
        """Record what a step did: jobs, and what it created (groups, folders, datasets, projects, schema keys),
        linked (items into ``dataset``) or attached (``(project, dataset)``), and the sources it found
        ``changed`` or ``vanished``, and what became of them: ``restored``, ``replaced`` (the new item) or
        ``archived`` (source → item)."""
        receipt = self.receipt
        _extend(receipt.jobs, jobs)
        _extend(receipt.groups_created, groups)
        _extend(receipt.folders_created, folders)
        if dataset is not None:
            _extend(receipt.datasets_linked.setdefault(dataset, []), linked)
        _extend(receipt.datasets_created, datasets)
        _extend(receipt.projects_created, projects)
        if attached is not None:
            _extend(receipt.projects_attached.setdefault(attached[0], []), [attached[1]])
        _extend(receipt.schema_keys_added, schema_added)
        _extend(receipt.schema_keys_declared, schema_declared)
        receipt.sources_changed.update(changed or {})
        receipt.sources_vanished.update(vanished or {})
        receipt.sources_restored.update(restored or {})
        receipt.sources_replaced.update(replaced or {})
        receipt.sources_archived.update(archived or {})
        self._write()

    def finish(self) -> None:
        self.receipt.finished_at = datetime.now(timezone.utc)
        self._write()

    def mark_rolled_back(self) -> None:
        self.receipt.rolled_back_at = datetime.now(timezone.utc)
        self._write()

    def _write(self) -> None:
        write_atomically(self.file, self.receipt.model_dump_json(indent=2), "the run's receipt")


def load(run_id: str, directory: Path | str | None = None) -> Receipt:
    """The receipt of a past run; a clear error if there is none."""
    path = (Path(directory) if directory is not None else default_directory()) / f"{_safe(run_id)}.json"
    if not path.exists():
        raise FileNotFoundError(f"no receipt for run {run_id!r} in {path.parent}")
    return Receipt.model_validate_json(path.read_text())


def receipts(directory: Path | str | None = None) -> Iterator[Receipt]:
    """Every receipt in the run ledger (unreadable files are skipped: they name no run to compare with)."""
    root = Path(directory) if directory is not None else default_directory()
    for path in sorted(root.glob("*.json")):
        try:
            yield Receipt.model_validate_json(path.read_text())
        except (OSError, ValueError):
            continue


def items_created(receipt: Receipt) -> set[str]:
    """The items the run created, in any of its attempts, from its item map (none if it never wrote one)."""
    if receipt.item_map is None or not Path(receipt.item_map).exists():
        return set()
    return {mapped.item for mapped in ItemMap.read(receipt.item_map) if mapped.status == "created"}


def unsettled_jobs(receipt: Receipt) -> dict[str, str]:
    """The data jobs the run journalled as starting or started and that nobody settled since: ledger key → job
    id. Their items are not in the item map, so a rollback cannot remove them
    (see :mod:`prefect_encord.state.item_map`)."""
    if receipt.item_map is None or not Path(receipt.item_map).exists():
        return {}
    return ItemMap.read(receipt.item_map).unsettled_jobs()


def _extend(target: list[str], values: Iterable[str]) -> None:
    seen = set(target)
    for value in values:
        if value not in seen:
            target.append(value)
            seen.add(value)


def _safe(run_id: str) -> str:
    if not run_id or any(c in run_id for c in "/\\") or run_id.startswith("."):
        raise ValueError(f"run id {run_id!r} cannot name a receipt file")
    return run_id
