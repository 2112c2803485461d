"""Decide which storage items to link into a dataset, given what it already holds (pure).

``link_items`` takes a duplicates behaviour, but what a server answers for ``SKIP`` (only the new rows,
or every requested row) is not specified, so the answer alone cannot tell a new link from an item that
was already there. The dataset's rows are therefore read once up front and the request is planned
against them: ``SKIP`` sends only the items not yet linked (a re-run sends nothing at all), ``FAIL``
refuses before anything is sent if any item is already linked (so a call that must fail leaves nothing
behind, whichever bundle the duplicate falls in), and ``DUPLICATE`` sends everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from encord.orm.dataset import DataLinkDuplicatesBehavior
from encord.orm.storage import StorageItemType

DuplicateBehaviour = Literal["SKIP", "FAIL", "DUPLICATE"]


class AlreadyLinked(ValueError):
    """``FAIL`` was asked for, and some items are already linked into the dataset; nothing was linked."""


@dataclass(frozen=True)
class LinkPlan:
    """What to send, and what is already there (item UUID -> its existing data hash)."""

    to_link: tuple[str, ...]
    already_present: dict[str, str]


def normalise_item_uuid(value: str | UUID) -> str:
    """The canonical text of an item UUID.

    Raises:
        ValueError: If ``value`` is not a UUID; the message names it.
    """
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise ValueError(f"item {value!r} is not a UUID") from None


def plan_links(requested: Iterable[str | UUID], present: Mapping[str, str], behaviour: DuplicateBehaviour) -> LinkPlan:
    """Plan one link call; ``present`` maps each item already in the dataset to its data hash.

    Items are deduplicated (first occurrence kept), so a repeated UUID never becomes two data units.

    Raises:
        AlreadyLinked: For ``FAIL``, if any requested item is already in the dataset.
        ValueError: If an item is not a UUID.
    """
    wanted = list(dict.fromkeys(normalise_item_uuid(u) for u in requested))
    if behaviour == "DUPLICATE":
        return LinkPlan(tuple(wanted), {})
    found = {u: present[u] for u in wanted if u in present}
    if behaviour == "FAIL" and found:
        listed = ", ".join(sorted(found)[:10]) + (" …" if len(found) > 10 else "")
        raise AlreadyLinked(
            f"{len(found)} of {len(wanted)} items are already in the dataset ({listed}); nothing was linked. "
            "Use SKIP to link only the others, or DUPLICATE to link them again."
        )
    return LinkPlan(tuple(u for u in wanted if u not in found), found)


def sdk_behaviour(behaviour: DuplicateBehaviour) -> DataLinkDuplicatesBehavior:
    """The SDK's enum for a behaviour name.

    Raises:
        ValueError: If ``behaviour`` is not SKIP, FAIL or DUPLICATE.
    """
    try:
        return DataLinkDuplicatesBehavior[behaviour]
    except KeyError:
        raise ValueError(f"duplicates behaviour {behaviour!r} is not one of SKIP, FAIL, DUPLICATE") from None


def parse_item_types(values: Sequence[StorageItemType | str]) -> list[StorageItemType]:
    """Item types given as the SDK's enum, its value (``"image"``, ``"imageGroup"``) or its name (``"IMAGE"``).

    Raises:
        ValueError: If a value names no item type; the message lists the valid names.
    """
    by_value = {t.value: t for t in StorageItemType}
    parsed = []
    for value in values:
        if isinstance(value, StorageItemType):
            parsed.append(value)
            continue
        found = by_value.get(value) or StorageItemType.__members__.get(value.upper())
        if found is None:
            raise ValueError(
                f"{value!r} is not a storage item type; use one of {', '.join(StorageItemType.__members__)}"
            )
        parsed.append(found)
    return parsed
