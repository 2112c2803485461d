"""Bulk calls that isolate refusals: one bad element never costs its siblings.

Encord refuses a whole bulk call (create groups, link items, bundled updates, bulk lookups, deletes)
for a single bad element. Sending each half again until the refused elements stand alone finds them
in O(k log n) calls and still sends everything else in as few calls as the API allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def send_isolating(
    batch: Sequence[T],
    send: Callable[[Sequence[T]], None],
    refusals: type[Exception] | tuple[type[Exception], ...],
    refused: Callable[[T, Exception], None],
) -> None:
    """``send(batch)`` in one call; if it raises one of ``refusals``, halve and retry down to single elements.

    ``send`` records what succeeded; ``refused(element, error)`` records an element refused on its own.
    """
    try:
        send(batch)
    except refusals as exc:
        if len(batch) == 1:
            refused(batch[0], exc)
            return
        middle = len(batch) // 2
        send_isolating(batch[:middle], send, refusals, refused)
        send_isolating(batch[middle:], send, refusals, refused)
