"""Identifiers as callers give them (pure): checked once, with errors that name the offending value.

``uuid.UUID("nope")`` says only "badly formed hexadecimal UUID string", which leaves a user guessing which
of a task's arguments was wrong; these checks say which argument, and what it held.
"""

from __future__ import annotations

from uuid import UUID


def as_uuid(value: str | UUID, what: str) -> UUID:
    """``value`` as a UUID; ``what`` names it in the error (e.g. ``"folder_uuid"``).

    Raises:
        ValueError: If ``value`` is not a UUID; the message names ``what`` and the value.
    """
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a UUID") from None


def is_uuid(value: str) -> bool:
    """Whether ``value`` reads as a UUID (e.g. a project given by hash rather than by title)."""
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be sent as UTF-8: a file name that was not UTF-8 on disk holds lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with its undecodable bytes shown as ``\\xNN`` escapes, for messages about non-UTF-8 names."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no undecodable byte made (e.g. from JSON)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
