"""Request bodies from strangers, bounded (pure): too big or too deep is refused before it is parsed.

The webhook relay listens where anyone who finds it can post. Without a size limit it read a 64 MB body into
memory whole; Python's ``json`` parser recurses once per level of nesting, so 100,000 nested arrays ended in a
``RecursionError`` (a 500). The payloads it serves are small and shallow: an Encord workflow webhook nests
three levels (about 100 bytes per label row), an SNS message is at most 256 KB, an Event Grid delivery at
most 1 MB, a Pub/Sub push at most 10 MB (each cloud's documented maximum).
"""

from __future__ import annotations

#: The largest body the relay reads: a Pub/Sub push's documented maximum (10 MB), above every other sender's.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: Levels of nesting a body may have; the senders' payloads use fewer than ten.
MAX_DEPTH = 64

_BRACKETS = b"[]{}"
_OTHER_BYTES = bytes(byte for byte in range(256) if byte not in _BRACKETS)


class BodyRefused(ValueError):
    """A request body is too large or too deeply nested; ``status`` is the HTTP answer (413 or 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_size(size: int, limit: int = MAX_BODY_BYTES) -> None:
    """Refuse (413) a body of ``size`` bytes above ``limit``: checked on the declared length and while reading."""
    if size > limit:
        raise BodyRefused(413, f"the body is larger than {limit:,} bytes; the relay reads no more")


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse (400) a JSON body nested more than ``limit`` levels, without parsing it.

    Brackets inside strings do not count: strings are skipped (escapes included) before the brackets that
    remain are counted, so the walk is over the brackets alone, not every byte.
    """
    depth = 0
    for bracket in _outside_strings(body).translate(None, delete=_OTHER_BYTES):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            raise BodyRefused(400, f"the body nests deeper than {limit} levels")


def _outside_strings(body: bytes) -> bytes:
    """``body`` with the contents of its JSON strings removed (an unterminated string runs to the end)."""
    parts: list[bytes] = []
    position, length = 0, len(body)
    while position < length:
        quote = body.find(b'"', position)
        if quote < 0:
            parts.append(body[position:])
            break
        parts.append(body[position:quote])
        position = quote + 1
        while position < length:  # to the closing quote, stepping over escapes
            end = body.find(b'"', position)
            if end < 0:
                return b"".join(parts)
            backslashes = 0
            while body[end - 1 - backslashes] == ord("\\"):
                backslashes += 1
            position = end + 1
            if backslashes % 2 == 0:
                break
    return b"".join(parts)
