"""Which item in a folder a local file already is (pure): its path relative to the source, and its content.

Every item a local upload creates carries two client-metadata keys of prefect-encord's own namespace:
:data:`PATH_KEY`, the unit's path relative to the uploaded directory (a directory's, for an image group,
image sequence or DICOM series; ``"."`` for the directory itself), and :data:`IDENTITY_KEY`, the SHA-256 of
its content (see :func:`~prefect_encord.planning.uploads.unit_digest`). A unit is *the same* item only when
both match, so:

* same path, same bytes → already there (nothing is sent);
* same path, new bytes → **changed**: reported, the item kept as it is (as for an overwritten bucket object);
* another path with the same bytes (a calibration frame kept under two names, a copy) → an item of its own:
  two files are never merged into one item.

Two kinds of item are recognised without a path key, so that nothing is uploaded twice:

* items of prefect-encord before the path key (content digest only): each is claimed by one unit with its
  digest, the unit of the same title first; the other units with that content get items of their own;
* items whose client metadata was replaced outside prefect-encord (the Encord UI, the SDK), so they carry
  neither key: claimed by the one unit of the same title (and, for a single file, the same size) when no
  other such item competes.

Either way the claimed item is listed in :attr:`Pending.restamp`, and the upload writes both keys back onto
it, so the next run finds it by path and content again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY

if TYPE_CHECKING:
    from prefect_encord.planning.uploads import UploadUnit


@dataclass(frozen=True)
class KnownItem:
    """What a folder listing says of one item, as far as identity goes."""

    uuid: str
    title: str
    path: str | None = None
    digest: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, uuid: str, title: str, client_metadata: Mapping[str, Any] | None, size: int | None) -> KnownItem:
        metadata = client_metadata or {}
        path, digest = metadata.get(PATH_KEY), metadata.get(IDENTITY_KEY)
        return cls(
            uuid=uuid,
            title=title,
            path=path if isinstance(path, str) else None,
            digest=digest if isinstance(digest, str) else None,
            size=size,
        )


@dataclass
class FolderIndex:
    """A folder's items by identity: built from one listing, read by :func:`pending_units`."""

    by_identity: dict[tuple[str, str], str] = field(default_factory=dict)
    """(path, digest) → item."""
    by_path: dict[str, str] = field(default_factory=dict)
    """path → an item of that path (with other content than the file has now, if by_identity has no match)."""
    legacy: dict[str, list[KnownItem]] = field(default_factory=lambda: defaultdict(list))
    """digest → items with a digest and no path: uploaded before the path key."""
    untagged: dict[str, list[KnownItem]] = field(default_factory=lambda: defaultdict(list))
    """title → items with neither key: their metadata replaced outside prefect-encord, or not ours."""

    def add(self, item: KnownItem) -> None:
        if item.path is not None and item.digest is not None:
            self.by_identity.setdefault((item.path, item.digest), item.uuid)
            self.by_path.setdefault(item.path, item.uuid)
        elif item.digest is not None:
            self.legacy[item.digest].append(item)
        elif item.path is None:
            self.untagged[item.title].append(item)


def index_folder(items: Iterable[KnownItem]) -> FolderIndex:
    """The :class:`FolderIndex` of a folder's items."""
    index = FolderIndex()
    for item in items:
        index.add(item)
    return index


@dataclass(frozen=True)
class Pending:
    """What is left to upload once the folder's items are known.

    ``upload`` are the units to send; ``present`` maps the keys of units already in the folder to their
    item; ``changed`` maps the keys of units whose path has an item of other content to that item (kept, not
    uploaded); ``restamp`` maps items recognised without their path key to the unit key to write onto them.
    """

    upload: tuple[UploadUnit, ...]
    present: dict[str, str]
    changed: dict[str, str]
    restamp: dict[str, str]


def pending_units(
    units: Sequence[UploadUnit],
    digests: Mapping[str, str],
    index: FolderIndex,
    sizes: Mapping[str, int] | None = None,
) -> Pending:
    """Split ``units`` (``digests``: key → content digest; ``sizes``: file → bytes) by what the folder holds.

    Matching runs strongest first over all units, so that a weaker rule never takes an item a stronger one
    would give another unit: path and content; path alone (changed); content of an item without a path, same
    title first; title (and size) of an item with neither key.
    """
    present: dict[str, str] = {}
    changed: dict[str, str] = {}
    restamp: dict[str, str] = {}
    open_units: list[UploadUnit] = []
    for unit in units:
        if (item := index.by_identity.get((unit.key, digests[unit.key]))) is not None:
            present[unit.key] = item
        elif (item := index.by_path.get(unit.key)) is not None:
            changed[unit.key] = item
        else:
            open_units.append(unit)

    def claim(pool: list[KnownItem], unit: UploadUnit, chosen: KnownItem) -> None:
        pool.remove(chosen)
        present[unit.key] = chosen.uuid
        restamp[chosen.uuid] = unit.key

    for same_title in (True, False):
        for unit in open_units:
            pool = index.legacy.get(digests[unit.key], [])
            if unit.key in present or not pool:
                continue
            titled = [known for known in pool if known.title == unit.title]
            if titled or not same_title:
                claim(pool, unit, (titled or pool)[0])
    for unit, known in _unique_pairs([u for u in open_units if u.key not in present], index.untagged, sizes):
        claim(index.untagged[unit.title], unit, known)
    upload = tuple(unit for unit in open_units if unit.key not in present)
    return Pending(upload=upload, present=present, changed=changed, restamp=restamp)


def _unique_pairs(
    units: Sequence[UploadUnit], untagged: Mapping[str, list[KnownItem]], sizes: Mapping[str, int] | None
) -> list[tuple[UploadUnit, KnownItem]]:
    """Units and items without keys that can only be each other: same title and, for single files, the same
    size, with no second unit or item that would match either."""

    def fits(unit: UploadUnit, known: KnownItem) -> bool:
        size = None if unit.is_composite or sizes is None else sizes.get(unit.files[0])
        return size is None or known.size is None or known.size == size

    titled: dict[str, list[UploadUnit]] = defaultdict(list)
    for unit in units:
        if unit.title in untagged:
            titled[unit.title].append(unit)
    pairs = []
    for title, same in titled.items():
        for unit in same:
            candidates = [known for known in untagged[title] if fits(unit, known)]
            rivals = [other for other in same if candidates and fits(other, candidates[0])]
            if len(candidates) == 1 and len(rivals) == 1:
                pairs.append((unit, candidates[0]))
    return pairs
