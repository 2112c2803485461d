"""Natural ordering of file names, so ``slice-2`` comes before ``slice-10`` as people number them."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key comparing digit runs as numbers and everything else case-insensitively.

    Frames of a sequence or series and members of a group are ordered by their file names; plain
    string order would put ``frame-10`` before ``frame-2`` and scramble any numbered set.
    """
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower()) for part in _DIGITS.split(name) if part)
