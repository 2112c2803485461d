"""The sandbox's error vocabulary, one class per HTTP status the SDK maps to its own exception.

Rules raise these; the app turns them into the v2 ``{"message": ...}`` body or the v1 envelope
(``{"status": N, "response": ["CODE"], "payload": message}``), so the SDK raises the exception a
real Encord would make it raise, with our message naming the offending value.
"""

from __future__ import annotations

import uuid
from typing import Any


class SandboxError(Exception):
    status = 500
    v1_code = "UNKNOWN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(SandboxError):
    status = 400
    v1_code = "INVALID_ARGUMENTS_ERROR"


class Unauthenticated(SandboxError):
    status = 401
    v1_code = "AUTHENTICATION_ERROR"


class Forbidden(SandboxError):
    status = 403
    v1_code = "AUTHORISATION_ERROR"


class NotFound(SandboxError):
    status = 404
    v1_code = "RESOURCE_NOT_FOUND_ERROR"


class Conflict(SandboxError):
    status = 409
    v1_code = "RESOURCE_EXISTS_ERROR"


class StorageUnavailable(SandboxError):
    """The sandbox could not write its data directory (disk full, read-only, gone): the answer names it.

    507 Insufficient Storage, as WebDAV defines it: a server error, so a client may retry once space is freed.
    """

    status = 507


def parse_uuid(value: Any, what: str) -> str:
    """Normalise a UUID coming off the wire, or fail with a 400 naming the value."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidArgument(f"{what} {value!r} is not a valid UUID") from exc
