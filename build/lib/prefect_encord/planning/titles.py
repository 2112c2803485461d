"""Resolve a title to the one Encord resource that carries it (pure).

Encord titles are not unique keys: two datasets (or projects) may share a title, and a get-or-create
by title must then not guess. Picking the oldest would silently send data to whichever one happened
to be created first, which may be a colleague's; the safe answer is to stop and name the candidates,
so the caller can pass a hash instead or rename one of them.
"""

from __future__ import annotations

from collections.abc import Iterable


class AmbiguousTitle(ValueError):
    """More than one resource of a kind carries the title asked for."""


def single_match(kind: str, title: str, candidates: Iterable[tuple[str, str]]) -> str | None:
    """The hash of the one candidate titled exactly ``title`` (case-sensitive), or None if there is none.

    Args:
        kind: What is looked up ("dataset", "project"), for the error message.
        title: The exact title.
        candidates: ``(hash, title)`` pairs from a server-side title search; matched again here so a
            server that compares case-insensitively cannot widen the match.

    Raises:
        AmbiguousTitle: If several candidates carry the title; the message lists their hashes.
    """
    matches = sorted({resource_hash for resource_hash, candidate in candidates if candidate == title})
    if len(matches) > 1:
        raise AmbiguousTitle(
            f"{len(matches)} {kind}s are titled {title!r} ({', '.join(matches)}); pass the hash of the one "
            f"to use, or rename the others"
        )
    return matches[0] if matches else None
