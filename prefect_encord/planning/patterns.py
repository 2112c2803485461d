"""Check glob-pattern parameters (pure) before a listing or an upload starts.

A pattern list given as one string (``exclude="*.mp4"``) is a sequence of one-character patterns to Python,
and ``"*"`` among them matches every file: the run would silently exclude (or include) everything. Flow
parameters are typed lists, which pydantic enforces; tasks called from Python are not, so they check here.
"""

from __future__ import annotations

from collections.abc import Sequence


def check_patterns(**named: Sequence[str]) -> None:
    """Refuse a pattern parameter that is a bare string or holds anything but non-empty strings.

    Raises:
        TypeError: Naming the parameter and its value, e.g. ``exclude='*.mp4' is one string ...``.
    """
    for name, patterns in named.items():
        if isinstance(patterns, str | bytes):
            raise TypeError(f"{name}={patterns!r} is one string; give a list of patterns, e.g. {name}=[{patterns!r}]")
        bad = [pattern for pattern in patterns if not isinstance(pattern, str) or not pattern]
        if bad:
            raise TypeError(f"{name} must hold non-empty glob patterns (strings), not {bad[0]!r}")
