"""Map a finished registration job back to the entries it was given (pure).

A job's answer lists items by name (``itemsWithNames``) and failures by URL (``unitErrors``). Because the
planner titles every entry uniquely (object key, or directory for composites), names map back to entries
directly; an item carrying another name (an existing duplicate someone renamed) is matched by the URL the
bulk item lookup reports. The same lookup tells new items from skipped duplicates: with
``skip_duplicate_urls`` Encord answers a duplicate with the *existing* item, which was created before the
job was submitted. One ``get-bulk`` request per 1,000 items answers both questions.

Clock caveat: ``submitted_at`` is the submitting machine's clock and ``created_at`` Encord's. With a clock
skew of *s* seconds, an item created within *s* seconds of the submission may be counted on the wrong
side. The URL -> item UUID mapping is exact either way; only the created/duplicate split can be off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from encord.orm.storage import UploadLongPollingState

from prefect_encord.planning.objects import Skipped, as_utc
from prefect_encord.planning.sidecars import SidecarOutcome
from prefect_encord.planning.specs import Entry
from prefect_encord.state.item_map import ItemMap


@dataclass(frozen=True)
class UnitFailure:
    """One unit Encord could not register: its object URLs (all frames, for a composite) and why."""

    urls: tuple[str, ...]
    error: str
    action: str


@dataclass(frozen=True)
class ItemFacts:
    """What a bulk item lookup says about one returned item."""

    url: str | None
    created_at: datetime


@dataclass(frozen=True)
class JobResult:
    """The outcome of one registration job, keyed by each entry's identity URL (its first object URL).

    ``created``: items this job made. ``skipped_duplicates``: entries whose URL was already registered in
    the folder, with the existing item. ``unit_errors``: units that failed; their siblings are unaffected.
    ``not_registered``: entries with neither an item nor an error (the job was cancelled).
    ``unmatched_items``: items the job returned that no entry could be matched to (never expected; kept so
    that nothing is silently lost). ``resumed``: this attempt found the job already submitted and only polled.
    """

    job_id: str
    status: str
    resumed: bool
    created: dict[str, str]
    skipped_duplicates: dict[str, str]
    unit_errors: tuple[UnitFailure, ...]
    not_registered: tuple[str, ...]
    unmatched_items: tuple[str, ...]

    @property
    def items(self) -> dict[str, str]:
        """Every registered entry's item, new or existing: identity URL -> item UUID."""
        return {**self.skipped_duplicates, **self.created}

    def summary(self) -> JobSummary:
        """This result without its URL -> item pairs, which a bucket's registration writes to its item map."""
        return JobSummary(
            job_id=self.job_id,
            status=self.status,
            resumed=self.resumed,
            created=len(self.created),
            present=len(self.skipped_duplicates),
            unit_errors=self.unit_errors,
            not_registered=self.not_registered,
            unmatched_items=self.unmatched_items,
        )


@dataclass(frozen=True)
class JobSummary:
    """One settled job of a bucket's registration: counts instead of URL -> item pairs, so a bucket of any
    size keeps a few hundred bytes per job of 1,000 units (the pairs are in the :class:`ItemMap`)."""

    job_id: str
    status: str
    resumed: bool
    created: int
    present: int
    unit_errors: tuple[UnitFailure, ...]
    not_registered: tuple[str, ...]
    unmatched_items: tuple[str, ...]


def settle_job(
    entries: Sequence[Entry],
    state: UploadLongPollingState,
    items: Mapping[str, ItemFacts],
    *,
    job_id: str,
    submitted_at: datetime,
    resumed: bool,
) -> JobResult:
    """The :class:`JobResult` of a finished job, from its final state and the facts of its items (UUID -> facts)."""
    by_title: dict[str, list[Entry]] = defaultdict(list)
    for planned in entries:
        by_title[planned.title].append(planned)
    by_url = {planned.url: planned for planned in entries}
    claimed: dict[str, str] = {}
    unmatched: list[str] = []
    for returned in state.items_with_names:
        item_uuid = str(returned.item_uuid)
        named = [e for e in by_title.get(returned.name, []) if e.url not in claimed]
        facts = items.get(item_uuid)
        if len(named) == 1:
            match: Entry | None = named[0]
        else:
            match = by_url.get(facts.url) if facts is not None and facts.url else None
        if match is None or match.url in claimed:
            unmatched.append(item_uuid)
        else:
            claimed[match.url] = item_uuid
    failures = tuple(
        UnitFailure(urls=tuple(error.object_urls), error=error.error, action=error.action_description)
        for error in state.unit_errors
    )
    failed = {failure.urls[0] for failure in failures if failure.urls}
    created: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for url, item_uuid in claimed.items():
        facts = items.get(item_uuid)
        # An item the lookup did not return cannot be shown to be older: count it as created.
        if facts is not None and as_utc(facts.created_at) < as_utc(submitted_at):
            duplicates[url] = item_uuid
        else:
            created[url] = item_uuid
    return JobResult(
        job_id=job_id,
        status=state.status.value,
        resumed=resumed,
        created=created,
        skipped_duplicates=duplicates,
        unit_errors=failures,
        not_registered=tuple(e.url for e in entries if e.url not in claimed and e.url not in failed),
        unmatched_items=tuple(unmatched),
    )


@dataclass(frozen=True)
class BucketRegistration:
    """Everything one bucket registration did: its jobs, where its items are, the objects it skipped, and the
    next watermark.

    ``item_map`` holds every registered object's URL -> item UUID, on disk (see :mod:`prefect_encord.state.item_map`);
    ``created`` and ``skipped_duplicates`` read it into memory, which is fine for thousands of objects, while
    a caller of a bucket with millions should iterate ``item_map`` instead.

    ``watermark`` is the newest ``last_modified`` among the listed objects: pass it as ``modified_since``
    next time to list only what changed since. Objects that failed (``unit_errors``) are not listed again
    until they change; and a bucket written to while it is listed may get objects stamped just before the
    watermark after the listing passed them, so subtract a margin (the longest upload) if that happens.
    """

    jobs: tuple[JobSummary, ...]
    item_map: ItemMap
    skipped: tuple[Skipped, ...]
    watermark: datetime | None
    #: Units the inventory held as listed now: not sent to Encord, their items in the item map as present.
    unchanged: int = 0
    #: (URL, item) of units whose objects were overwritten since they were registered: kept as they are.
    changed: tuple[tuple[str, str], ...] = ()
    #: (URL, item) of registered units a complete listing no longer lists: deleted from the bucket.
    vanished: tuple[tuple[str, str], ...] = ()
    #: (URL, item) of units whose objects returned to the bucket: their archived items moved back into the folder.
    restored: tuple[tuple[str, str], ...] = ()
    #: Units a dry run would have sent Encord (new, or all when upserting metadata); 0 for a real run.
    planned: int = 0
    #: What the metadata sidecars did (a registration given a sidecar suffix), else None.
    sidecars: SidecarOutcome | None = None

    @property
    def created(self) -> dict[str, str]:
        """URL -> item of the objects this registration created (read from the item map)."""
        return self.item_map.to_dict("created")

    @property
    def skipped_duplicates(self) -> dict[str, str]:
        """URL -> existing item of the objects that were already registered (read from the item map)."""
        return self.item_map.to_dict("present")

    @property
    def unit_errors(self) -> tuple[UnitFailure, ...]:
        return tuple(failure for job in self.jobs for failure in job.unit_errors)
