"""What changed in a bucket since the inventory last saw it: each planned unit new, unchanged or changed (pure).

A re-run of an ingest lists the bucket again; Encord would skip what it already holds, but only after being
sent every chunk of it. Comparing each planned unit with what the :mod:`inventory <prefect_encord.state.inventory>`
recorded lets a re-run send Encord only what is new. A unit is compared by its *fingerprint*: its kind and,
for each of its objects in order, URL, size and entity tag (ETag, or GCS's generation-bearing one). Any
object overwritten, added to or removed from an image group changes it.

An object whose provider reports neither size nor ETag cannot be told from its overwrite: its unit's
fingerprint is None and a known unit counts as unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from prefect_encord.planning.objects import ObjectRecord, is_selected
from prefect_encord.planning.specs import Entry, PlanOptions, single_unit_kind

Change = Literal["new", "unchanged", "changed"]


@dataclass(frozen=True)
class Known:
    """What the inventory holds for one unit: its identity URL, its item, its fingerprint when it was recorded."""

    url: str
    key: str
    item: str
    fingerprint: str | None


def fingerprint(entry: Entry, records: Mapping[str, ObjectRecord]) -> str | None:
    """The digest of ``entry``'s objects as listed (``records`` by URL); None if no object has a size or ETag."""
    if len(entry.urls) == 1:  # most units: the same digest, without the lists (a re-run computes one per object)
        record = records.get(entry.urls[0])
        if record is None or (record.size is None and record.etag is None):
            return None
        return _single_fingerprint(entry.kind, record)
    described = [(url, records[url].size, records[url].etag) for url in entry.urls if url in records]
    if len(described) != len(entry.urls) or all(size is None and etag is None for _, size, etag in described):
        return None
    text = "\n".join([entry.kind, *(f"{url}\t{size}\t{etag}" for url, size, etag in described)])
    return hashlib.sha256(text.encode()).hexdigest()


def _single_fingerprint(kind: str, record: ObjectRecord) -> str:
    """The fingerprint of a unit of one object: what :func:`fingerprint` gives it (the same text, digested)."""
    return hashlib.sha256(f"{kind}\n{record.url}\t{record.size}\t{record.etag}".encode()).hexdigest()


def single_unit_fingerprints(records: Iterable[ObjectRecord], options: PlanOptions) -> dict[str, str]:
    """URL -> fingerprint of the ``records`` that can only be units on their own (see
    :func:`~prefect_encord.planning.specs.single_unit_kind`) and have a size or ETag: what their units'
    :func:`fingerprint` will be, known without planning. An inventory that holds one of them with this fingerprint
    holds it unchanged, so a re-run of a large bucket confirms most objects a page at a time."""
    fingerprints: dict[str, str] = {}
    for record in records:
        kind = single_unit_kind(record.key, options)
        if kind is not None and (record.size is not None or record.etag is not None):
            fingerprints[record.url] = _single_fingerprint(kind, record)
    return fingerprints


def classify(current: str | None, known: Known | None) -> Change:
    """Whether a unit with fingerprint ``current`` is new, unchanged or changed against what is ``known``."""
    if known is None:
        return "new"
    if current is None or current == known.fingerprint:
        return "unchanged"
    return "changed"


def in_selection(key: str, base: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a listing of ``base`` with these patterns would list ``key``: if it did not, the object vanished."""
    return key.startswith(base) and is_selected(key[len(base) :], include, exclude)
